/* train.c — owns pika's trainer for the llama architecture: parameter layout and init, forward +
 * backward (embeddings, RMSNorm, RoPE, causal GQA attention, SwiGLU, output head, cross-entropy),
 * AdamW with warmup + cosine decay and gradient clipping, GGUF checkpoints with the task's
 * tokenizer, and the math-task training run. See train.h for the model and threading contract.
 *
 * Shapes (per thread chunk; N = tokens of the chunk's sequences, M = target rows):
 *   x [N, E]  xn [N, E]  q [N, H*D]  k, v [N, Hkv*D]  P [H, T, T] per sequence  g, u, a [N, F]
 *   logits [M, V] (only target rows go through the output head)
 */
#include "pika/train.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pika/gguf.h"
#include "pika/gguf_write.h"
#include "pika/quant.h"
#include "pika/threadpool.h"
#include "pika/util.h"

/* ---------------------------------------------------------------- ops */

void pika_tr_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int n, int E, float eps) {
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * E;
        float *yr = y + (size_t)t * E;
        double ss = 0;
        for (int i = 0; i < E; i++) ss += (double)(xr[i] * xr[i]);
        float r = 1.0f / sqrtf((float)(ss / E) + eps);
        rstd[t] = r;
        for (int i = 0; i < E; i++) yr[i] = xr[i] * r * w[i];
    }
}

/* y_i = x_i r w_i, r = (mean x² + eps)^-1/2:  dx_i = r w_i dy_i - r³/E x_i Σ_j dy_j w_j x_j */
void pika_tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rstd,
                         int n, int E) {
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * E, *dyr = dy + (size_t)t * E;
        float *dxr = dx + (size_t)t * E;
        float r = rstd[t];
        double dot = 0;
        for (int i = 0; i < E; i++) dot += (double)dyr[i] * w[i] * xr[i];
        float c = (float)(dot * r * r * r / E);
        for (int i = 0; i < E; i++) {
            dxr[i] += r * w[i] * dyr[i] - c * xr[i];
            dw[i] += dyr[i] * xr[i] * r;
        }
    }
}

void pika_tr_rope_tables(float *cs, float *sn, int n_ctx, int D, float base) {
    for (int p = 0; p < n_ctx; p++)
        for (int i = 0; i < D / 2; i++) {
            double a = (double)p * pow((double)base, -2.0 * i / D);
            cs[(size_t)p * (D / 2) + i] = (float)cos(a);
            sn[(size_t)p * (D / 2) + i] = (float)sin(a);
        }
}

void pika_tr_rope(float *x, int n, int n_heads, int D, int pos0, const float *cs, const float *sn, int inverse) {
    for (int t = 0; t < n; t++) {
        const float *c = cs + (size_t)(pos0 + t) * (D / 2), *s = sn + (size_t)(pos0 + t) * (D / 2);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * D;
            for (int i = 0; i < D / 2; i++) {
                float x0 = v[2 * i], x1 = v[2 * i + 1], si = inverse ? -s[i] : s[i];
                v[2 * i] = x0 * c[i] - x1 * si;
                v[2 * i + 1] = x0 * si + x1 * c[i];
            }
        }
    }
}

void pika_tr_attn_fwd(float *out, float *P, const float *q, const float *k, const float *v, int T, int H, int Hkv,
                      int D) {
    const int qw = H * D, kw = Hkv * D, group = H / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    for (int h = 0; h < H; h++) {
        const int g = h / group;
        for (int i = 0; i < T; i++) {
            float *p = P + ((size_t)h * T + i) * T;
            const float *qi = q + (size_t)i * qw + h * D;
            float mx = -INFINITY;
            for (int j = 0; j <= i; j++) {
                const float *kj = k + (size_t)j * kw + g * D;
                float s = 0;
                for (int d = 0; d < D; d++) s += qi[d] * kj[d];
                p[j] = s * scale;
                mx = p[j] > mx ? p[j] : mx;
            }
            double sum = 0;
            for (int j = 0; j <= i; j++) { p[j] = expf(p[j] - mx); sum += p[j]; }
            float inv = (float)(1.0 / sum);
            for (int j = 0; j <= i; j++) p[j] *= inv;
            for (int j = i + 1; j < T; j++) p[j] = 0;
            float *o = out + (size_t)i * qw + h * D;
            for (int d = 0; d < D; d++) o[d] = 0;
            for (int j = 0; j <= i; j++) {
                const float *vj = v + (size_t)j * kw + g * D;
                for (int d = 0; d < D; d++) o[d] += p[j] * vj[d];
            }
        }
    }
}

void pika_tr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *P, const float *q,
                      const float *k, const float *v, int T, int H, int Hkv, int D) {
    const int qw = H * D, kw = Hkv * D, group = H / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    memset(dq, 0, sizeof(float) * (size_t)T * qw);
    memset(dk, 0, sizeof(float) * (size_t)T * kw);
    memset(dv, 0, sizeof(float) * (size_t)T * kw);
    float *dp = pika_malloc(sizeof(float) * (size_t)T);
    for (int h = 0; h < H; h++) {
        const int g = h / group;
        for (int i = 0; i < T; i++) {
            const float *p = P + ((size_t)h * T + i) * T;
            const float *doi = dout + (size_t)i * qw + h * D, *qi = q + (size_t)i * qw + h * D;
            float *dqi = dq + (size_t)i * qw + h * D;
            double dot = 0;
            for (int j = 0; j <= i; j++) {
                const float *vj = v + (size_t)j * kw + g * D;
                float *dvj = dv + (size_t)j * kw + g * D;
                float s = 0;
                for (int d = 0; d < D; d++) { s += doi[d] * vj[d]; dvj[d] += p[j] * doi[d]; }
                dp[j] = s;
                dot += (double)s * p[j];
            }
            for (int j = 0; j <= i; j++) {
                float ds = p[j] * (dp[j] - (float)dot) * scale;
                const float *kj = k + (size_t)j * kw + g * D;
                float *dkj = dk + (size_t)j * kw + g * D;
                for (int d = 0; d < D; d++) { dqi[d] += ds * kj[d]; dkj[d] += ds * qi[d]; }
            }
        }
    }
    free(dp);
}

void pika_tr_swiglu_fwd(float *a, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void pika_tr_swiglu_bwd(float *dg, float *du, const float *da, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-g[i]));
        du[i] = da[i] * g[i] * s;
        dg[i] = da[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

double pika_tr_xent(float *dlogits, const float *logits, const int32_t *targets, int n, int V, float scale) {
    double loss = 0;
    for (int t = 0; t < n; t++) {
        const float *l = logits + (size_t)t * V;
        float *dl = dlogits + (size_t)t * V;
        float mx = l[0];
        for (int i = 1; i < V; i++) mx = l[i] > mx ? l[i] : mx;
        double sum = 0;
        for (int i = 0; i < V; i++) sum += exp((double)(l[i] - mx));
        loss += log(sum) + mx - l[targets[t]];
        for (int i = 0; i < V; i++) dl[i] = (float)(exp((double)(l[i] - mx)) / sum) * scale;
        dl[targets[t]] -= scale;
    }
    return loss;
}

/* ---------------------------------------------------------------- GEMM helpers (row-major) */

/* Y[N,out] = X[N,in] · Wᵀ  (W [out,in]) */
static void mm_fwd(float *Y, const float *X, const float *W, int N, int in, int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, X, in, W, in, 0.0f, Y, out);
}
/* dX[N,in] (beta: 0 overwrite, 1 accumulate) += dY[N,out] · W ;  dW[out,in] += dYᵀ · X */
static void mm_bwd(float *dX, float beta, float *dW, const float *dY, const float *X, const float *W, int N, int in,
                   int out) {
    if (dX) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dY, out, W, in, beta, dX, in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dY, out, X, in, 1.0f, dW, in);
}

/* ---------------------------------------------------------------- model */

typedef struct {
    size_t attn_norm, wq, wk, wv, wo, ffn_norm, wg, wu, wd;
} layer_off;

typedef struct {
    size_t cap;   /* floats in buf */
    float *buf;
    float *grad;  /* [n_params] (thread 0 uses the model's) */
    double loss;
    int err;
} thread_ws;

struct pika_lm {
    pika_lm_config c;
    int D;
    size_t n_params;
    float *p, *g, *m1, *m2;
    uint8_t *decay; /* [n_params] 1 = weight decay */
    size_t tok_embd, output_norm, output;
    layer_off *L;
    float *rope_cs, *rope_sn; /* [n_ctx, D/2] */
    pika_pool *pool;
    int nth;
    thread_ws *ws;
    int64_t adam_t;
};

const pika_lm_config *pika_lm_cfg(const pika_lm *m) { return &m->c; }
size_t pika_lm_n_params(const pika_lm *m) { return m->n_params; }
float *pika_lm_params(pika_lm *m) { return m->p; }
float *pika_lm_grads(pika_lm *m) { return m->g; }

static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s) {
    double u1 = ((sm64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (sm64(s) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

pika_lm *pika_lm_new(const pika_lm_config *cfg, uint64_t seed, int n_threads) {
    const pika_lm_config *c = cfg;
    if (c->n_vocab <= 0 || c->n_embd <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 ||
        c->n_ff <= 0 || c->n_ctx <= 0 || c->n_head % c->n_head_kv || c->n_embd % c->n_head ||
        (c->n_embd / c->n_head) % 2) {
        pika_set_error("train: bad model shape (vocab %d, embd %d, layers %d, heads %d/%d, ff %d, ctx %d): "
                       "need embd divisible by heads, even head size, heads divisible by kv heads",
                       c->n_vocab, c->n_embd, c->n_layer, c->n_head, c->n_head_kv, c->n_ff, c->n_ctx);
        return NULL;
    }
    pika_lm *m = pika_calloc(1, sizeof *m);
    m->c = *c;
    if (m->c.rms_eps <= 0) m->c.rms_eps = 1e-5f;
    if (m->c.rope_base <= 0) m->c.rope_base = 10000.0f;
    const int E = c->n_embd, V = c->n_vocab, F = c->n_ff, D = E / c->n_head;
    const size_t qw = (size_t)c->n_head * D, kw = (size_t)c->n_head_kv * D;
    m->D = D;
    m->L = pika_calloc((size_t)c->n_layer, sizeof(layer_off));
    size_t off = 0;
    m->tok_embd = off; off += (size_t)V * E;
    for (int l = 0; l < c->n_layer; l++) {
        layer_off *L = &m->L[l];
        L->attn_norm = off; off += E;
        L->wq = off; off += qw * E;
        L->wk = off; off += kw * E;
        L->wv = off; off += kw * E;
        L->wo = off; off += (size_t)E * qw;
        L->ffn_norm = off; off += E;
        L->wg = off; off += (size_t)F * E;
        L->wu = off; off += (size_t)F * E;
        L->wd = off; off += (size_t)E * F;
    }
    m->output_norm = off; off += E;
    m->output = c->tied ? m->tok_embd : off;
    if (!c->tied) off += (size_t)V * E;
    m->n_params = off;
    m->p = pika_calloc(off, sizeof(float));
    m->g = pika_calloc(off, sizeof(float));
    m->m1 = pika_calloc(off, sizeof(float));
    m->m2 = pika_calloc(off, sizeof(float));
    m->decay = pika_calloc(off, 1);

    uint64_t s = seed ^ 0x1234abcd5678ef01ull;
#define INIT(o, n, std)                                                                    \
    do {                                                                                   \
        for (size_t i_ = 0; i_ < (size_t)(n); i_++) { m->p[(o) + i_] = gauss(&s) * (std); m->decay[(o) + i_] = 1; } \
    } while (0)
#define ONES(o, n) do { for (size_t i_ = 0; i_ < (size_t)(n); i_++) m->p[(o) + i_] = 1.0f; } while (0)
    const float res = 1.0f / sqrtf(2.0f * c->n_layer);
    INIT(m->tok_embd, (size_t)V * E, c->tied ? 1.0f / sqrtf((float)E) : 1.0f);
    for (int l = 0; l < c->n_layer; l++) {
        layer_off *L = &m->L[l];
        ONES(L->attn_norm, E);
        INIT(L->wq, qw * E, 1.0f / sqrtf((float)E));
        INIT(L->wk, kw * E, 1.0f / sqrtf((float)E));
        INIT(L->wv, kw * E, 1.0f / sqrtf((float)E));
        INIT(L->wo, (size_t)E * qw, res / sqrtf((float)qw));
        ONES(L->ffn_norm, E);
        INIT(L->wg, (size_t)F * E, 1.0f / sqrtf((float)E));
        INIT(L->wu, (size_t)F * E, 1.0f / sqrtf((float)E));
        INIT(L->wd, (size_t)E * F, res / sqrtf((float)F));
    }
    ONES(m->output_norm, E);
    if (!c->tied) INIT(m->output, (size_t)V * E, 0.5f / sqrtf((float)E));
#undef INIT
#undef ONES
    m->rope_cs = pika_malloc(sizeof(float) * (size_t)c->n_ctx * (D / 2));
    m->rope_sn = pika_malloc(sizeof(float) * (size_t)c->n_ctx * (D / 2));
    pika_tr_rope_tables(m->rope_cs, m->rope_sn, c->n_ctx, D, m->c.rope_base);
    if (n_threads <= 0) n_threads = pika_n_cores();
    m->pool = pika_pool_new(n_threads);
    m->nth = pika_pool_size(m->pool);
    openblas_set_num_threads(1);
    m->ws = pika_calloc((size_t)m->nth, sizeof(thread_ws));
    for (int i = 1; i < m->nth; i++) m->ws[i].grad = pika_calloc(off, sizeof(float));
    m->ws[0].grad = m->g;
    return m;
}

void pika_lm_free(pika_lm *m) {
    if (!m) return;
    for (int i = 0; i < m->nth; i++) {
        free(m->ws[i].buf);
        if (i) free(m->ws[i].grad);
    }
    free(m->ws);
    pika_pool_free(m->pool);
    free(m->p); free(m->g); free(m->m1); free(m->m2); free(m->decay);
    free(m->L); free(m->rope_cs); free(m->rope_sn);
    free(m);
}

int64_t pika_lm_tensor_offset(const pika_lm *m, const char *name, int64_t *n_elems) {
    const int E = m->c.n_embd, V = m->c.n_vocab, F = m->c.n_ff;
    const int64_t qw = (int64_t)m->c.n_head * m->D, kw = (int64_t)m->c.n_head_kv * m->D;
    int64_t n = 0, off = -1;
    if (!strcmp(name, "token_embd.weight")) { off = (int64_t)m->tok_embd; n = (int64_t)V * E; }
    else if (!strcmp(name, "output_norm.weight")) { off = (int64_t)m->output_norm; n = E; }
    else if (!strcmp(name, "output.weight")) { if (!m->c.tied) { off = (int64_t)m->output; n = (int64_t)V * E; } }
    else {
        int l, k;
        char rest[64];
        if (sscanf(name, "blk.%d.%63s%n", &l, rest, &k) == 2 && l >= 0 && l < m->c.n_layer) {
            const layer_off *L = &m->L[l];
            if (!strcmp(rest, "attn_norm.weight")) { off = (int64_t)L->attn_norm; n = E; }
            else if (!strcmp(rest, "attn_q.weight")) { off = (int64_t)L->wq; n = qw * E; }
            else if (!strcmp(rest, "attn_k.weight")) { off = (int64_t)L->wk; n = kw * E; }
            else if (!strcmp(rest, "attn_v.weight")) { off = (int64_t)L->wv; n = kw * E; }
            else if (!strcmp(rest, "attn_output.weight")) { off = (int64_t)L->wo; n = E * qw; }
            else if (!strcmp(rest, "ffn_norm.weight")) { off = (int64_t)L->ffn_norm; n = E; }
            else if (!strcmp(rest, "ffn_gate.weight")) { off = (int64_t)L->wg; n = (int64_t)F * E; }
            else if (!strcmp(rest, "ffn_up.weight")) { off = (int64_t)L->wu; n = (int64_t)F * E; }
            else if (!strcmp(rest, "ffn_down.weight")) { off = (int64_t)L->wd; n = (int64_t)E * F; }
        }
    }
    if (n_elems) *n_elems = off >= 0 ? n : 0;
    return off;
}

/* ---------------------------------------------------------------- forward + backward of a chunk */

typedef struct {
    pika_lm *m;
    const pika_lm_seq *seqs;
    int n_seqs;
    int grad;
    float scale; /* 1 / total targets of the batch */
    float *logits_out; /* pika_lm_logits: [n, V] of the single sequence (then no loss) */
} chunk_job;

static float *ws_need(thread_ws *w, size_t n) {
    if (n > w->cap) {
        free(w->buf);
        w->buf = pika_malloc(sizeof(float) * n);
        w->cap = n;
    }
    return w->buf;
}

/* Runs sequences [s0, s1) of the job. */
static int run_chunk(chunk_job *j, thread_ws *w, int s0, int s1) {
    pika_lm *m = j->m;
    const pika_lm_config *c = &m->c;
    const int E = c->n_embd, V = c->n_vocab, F = c->n_ff, H = c->n_head, Hkv = c->n_head_kv, D = m->D, Lc = c->n_layer;
    const int qw = H * D, kw = Hkv * D;
    const float *P = m->p;
    int N = 0, M = 0;
    size_t np = 0; /* attention probabilities per layer */
    for (int s = s0; s < s1; s++) {
        const pika_lm_seq *q = &j->seqs[s];
        N += q->n;
        M += j->logits_out ? q->n : q->n - q->n_prompt;
        np += (size_t)H * q->n * q->n;
    }
    if (N == 0) return 0;
    /* per-layer saved activations */
    const size_t per_layer = (size_t)N * (2 * E + qw + 2 * kw + qw + 2 * E + 3 * F) + 2 * (size_t)N + np;
    const size_t fixed = (size_t)N * (3 * E) + N + (size_t)M * (V + 2 * E) +
                         (size_t)N * (2 * E + 2 * qw + 2 * kw + 3 * F);
    float *buf = ws_need(w, per_layer * Lc + fixed + 64);
    float *cur = buf;
#define TAKE(n) (cur += (n), cur - (n))
    float *x = TAKE((size_t)N * E); /* the residual stream, updated in place */
    struct la { float *x_in, *xn1, *r1, *q, *k, *v, *o, *x_mid, *xn2, *r2, *g, *u, *a, *P; } *la =
        pika_malloc(sizeof(struct la) * (size_t)Lc);
    for (int l = 0; l < Lc; l++) {
        la[l].x_in = TAKE((size_t)N * E); la[l].xn1 = TAKE((size_t)N * E); la[l].r1 = TAKE((size_t)N);
        la[l].q = TAKE((size_t)N * qw); la[l].k = TAKE((size_t)N * kw); la[l].v = TAKE((size_t)N * kw);
        la[l].o = TAKE((size_t)N * qw); la[l].x_mid = TAKE((size_t)N * E); la[l].xn2 = TAKE((size_t)N * E);
        la[l].r2 = TAKE((size_t)N); la[l].g = TAKE((size_t)N * F); la[l].u = TAKE((size_t)N * F);
        la[l].a = TAKE((size_t)N * F); la[l].P = TAKE(np);
    }
    float *xf = TAKE((size_t)N * E), *rf = TAKE((size_t)N), *tmp = TAKE((size_t)N * E);
    float *xsel = TAKE((size_t)M * E), *logits = TAKE((size_t)M * V);
    int32_t *tgt = pika_malloc(sizeof(int32_t) * (size_t)(M ? M : 1));
    int *row = pika_malloc(sizeof(int) * (size_t)(M ? M : 1));

    /* embeddings + target rows */
    {
        int r = 0, mi = 0;
        for (int s = s0; s < s1; s++) {
            const pika_lm_seq *q = &j->seqs[s];
            for (int t = 0; t < q->n; t++, r++) {
                memcpy(x + (size_t)r * E, P + m->tok_embd + (size_t)q->tokens[t] * E, sizeof(float) * E);
                if (j->logits_out) { row[mi] = r; tgt[mi] = 0; mi++; }
                else if (t >= q->n_prompt - 1 && t < q->n - 1) { row[mi] = r; tgt[mi] = q->tokens[t + 1]; mi++; }
            }
        }
        M = mi;
    }
    for (int l = 0; l < Lc; l++) {
        const layer_off *Lo = &m->L[l];
        struct la *A = &la[l];
        memcpy(A->x_in, x, sizeof(float) * (size_t)N * E);
        pika_tr_rmsnorm_fwd(A->xn1, A->r1, x, P + Lo->attn_norm, N, E, c->rms_eps);
        mm_fwd(A->q, A->xn1, P + Lo->wq, N, E, qw);
        mm_fwd(A->k, A->xn1, P + Lo->wk, N, E, kw);
        mm_fwd(A->v, A->xn1, P + Lo->wv, N, E, kw);
        int r = 0;
        size_t po = 0;
        for (int s = s0; s < s1; s++) {
            int T = j->seqs[s].n;
            pika_tr_rope(A->q + (size_t)r * qw, T, H, D, 0, m->rope_cs, m->rope_sn, 0);
            pika_tr_rope(A->k + (size_t)r * kw, T, Hkv, D, 0, m->rope_cs, m->rope_sn, 0);
            pika_tr_attn_fwd(A->o + (size_t)r * qw, A->P + po, A->q + (size_t)r * qw, A->k + (size_t)r * kw,
                             A->v + (size_t)r * kw, T, H, Hkv, D);
            r += T;
            po += (size_t)H * T * T;
        }
        mm_fwd(tmp, A->o, P + Lo->wo, N, qw, E);
        for (size_t i = 0; i < (size_t)N * E; i++) x[i] += tmp[i];
        memcpy(A->x_mid, x, sizeof(float) * (size_t)N * E);
        pika_tr_rmsnorm_fwd(A->xn2, A->r2, x, P + Lo->ffn_norm, N, E, c->rms_eps);
        mm_fwd(A->g, A->xn2, P + Lo->wg, N, E, F);
        mm_fwd(A->u, A->xn2, P + Lo->wu, N, E, F);
        pika_tr_swiglu_fwd(A->a, A->g, A->u, (size_t)N * F);
        mm_fwd(tmp, A->a, P + Lo->wd, N, F, E);
        for (size_t i = 0; i < (size_t)N * E; i++) x[i] += tmp[i];
    }
    pika_tr_rmsnorm_fwd(xf, rf, x, P + m->output_norm, N, E, c->rms_eps);
    for (int i = 0; i < M; i++) memcpy(xsel + (size_t)i * E, xf + (size_t)row[i] * E, sizeof(float) * E);
    if (M) mm_fwd(logits, xsel, P + m->output, M, E, V);
    if (j->logits_out) {
        memcpy(j->logits_out, logits, sizeof(float) * (size_t)M * V);
        goto done;
    }
    float *dlog = logits; /* overwritten in place below: xent reads a row before writing it */
    {
        /* xent row by row so dlogits can reuse the logits buffer */
        double loss = 0;
        for (int i = 0; i < M; i++)
            loss += pika_tr_xent(dlog + (size_t)i * V, logits + (size_t)i * V, tgt + i, 1, V, j->scale);
        w->loss = loss;
    }
    if (!j->grad) goto done;
    {
        float *G = w->grad;
        /* scratch for the backward: reuse region after the forward buffers */
        float *dx = TAKE((size_t)N * E), *dxn = TAKE((size_t)N * E), *dq = TAKE((size_t)N * qw);
        float *dk = TAKE((size_t)N * kw), *dv = TAKE((size_t)N * kw), *dox = TAKE((size_t)N * qw);
        float *dg = TAKE((size_t)N * F), *du = TAKE((size_t)N * F), *da = TAKE((size_t)N * F);
        float *dxsel = TAKE((size_t)M * E);
        /* output head */
        if (M) mm_bwd(dxsel, 0.0f, G + m->output, dlog, xsel, P + m->output, M, E, V);
        memset(dxn, 0, sizeof(float) * (size_t)N * E);
        for (int i = 0; i < M; i++) {
            float *d = dxn + (size_t)row[i] * E;
            const float *sv = dxsel + (size_t)i * E;
            for (int e = 0; e < E; e++) d[e] += sv[e];
        }
        memset(dx, 0, sizeof(float) * (size_t)N * E);
        pika_tr_rmsnorm_bwd(dx, G + m->output_norm, dxn, x, P + m->output_norm, rf, N, E);
        for (int l = Lc - 1; l >= 0; l--) {
            const layer_off *Lo = &m->L[l];
            struct la *A = &la[l];
            /* ffn: x_out = x_mid + Wd a */
            mm_bwd(da, 0.0f, G + Lo->wd, dx, A->a, P + Lo->wd, N, F, E);
            pika_tr_swiglu_bwd(dg, du, da, A->g, A->u, (size_t)N * F);
            mm_bwd(dxn, 0.0f, G + Lo->wg, dg, A->xn2, P + Lo->wg, N, E, F);
            mm_bwd(dxn, 1.0f, G + Lo->wu, du, A->xn2, P + Lo->wu, N, E, F);
            pika_tr_rmsnorm_bwd(dx, G + Lo->ffn_norm, dxn, A->x_mid, P + Lo->ffn_norm, A->r2, N, E);
            /* attention: x_mid = x_in + Wo o */
            mm_bwd(dox, 0.0f, G + Lo->wo, dx, A->o, P + Lo->wo, N, qw, E);
            int r = 0;
            size_t po = 0;
            for (int s = s0; s < s1; s++) {
                int T = j->seqs[s].n;
                pika_tr_attn_bwd(dq + (size_t)r * qw, dk + (size_t)r * kw, dv + (size_t)r * kw, dox + (size_t)r * qw,
                                 A->P + po, A->q + (size_t)r * qw, A->k + (size_t)r * kw, A->v + (size_t)r * kw, T, H,
                                 Hkv, D);
                pika_tr_rope(dq + (size_t)r * qw, T, H, D, 0, m->rope_cs, m->rope_sn, 1);
                pika_tr_rope(dk + (size_t)r * kw, T, Hkv, D, 0, m->rope_cs, m->rope_sn, 1);
                r += T;
                po += (size_t)H * T * T;
            }
            mm_bwd(dxn, 0.0f, G + Lo->wq, dq, A->xn1, P + Lo->wq, N, E, qw);
            mm_bwd(dxn, 1.0f, G + Lo->wk, dk, A->xn1, P + Lo->wk, N, E, kw);
            mm_bwd(dxn, 1.0f, G + Lo->wv, dv, A->xn1, P + Lo->wv, N, E, kw);
            pika_tr_rmsnorm_bwd(dx, G + Lo->attn_norm, dxn, A->x_in, P + Lo->attn_norm, A->r1, N, E);
        }
        int r = 0;
        for (int s = s0; s < s1; s++) {
            const pika_lm_seq *q = &j->seqs[s];
            for (int t = 0; t < q->n; t++, r++) {
                float *ge = G + m->tok_embd + (size_t)q->tokens[t] * E;
                const float *d = dx + (size_t)r * E;
                for (int e = 0; e < E; e++) ge[e] += d[e];
            }
        }
    }
done:
#undef TAKE
    free(la);
    free(tgt);
    free(row);
    return 0;
}

static void chunk_worker(void *arg, int ith, int nth) {
    chunk_job *j = arg;
    thread_ws *w = &j->m->ws[ith];
    int s0 = (int)((int64_t)j->n_seqs * ith / nth), s1 = (int)((int64_t)j->n_seqs * (ith + 1) / nth);
    w->loss = 0;
    if (j->grad) memset(w->grad, 0, sizeof(float) * j->m->n_params);
    w->err = run_chunk(j, w, s0, s1);
}

static void reduce_worker(void *arg, int ith, int nth) {
    pika_lm *m = arg;
    size_t a = m->n_params * (size_t)ith / (size_t)nth, b = m->n_params * (size_t)(ith + 1) / (size_t)nth;
    for (int t = 1; t < m->nth; t++) {
        const float *g = m->ws[t].grad;
        for (size_t i = a; i < b; i++) m->g[i] += g[i];
    }
}

static int check_seqs(const pika_lm *m, const pika_lm_seq *seqs, int n_seqs, int *n_targets) {
    *n_targets = 0;
    for (int s = 0; s < n_seqs; s++) {
        const pika_lm_seq *q = &seqs[s];
        if (q->n <= 0 || q->n > m->c.n_ctx)
            return pika_set_error("train: sequence %d has %d tokens (context is %d)", s, q->n, m->c.n_ctx);
        if (q->n_prompt < 1 || q->n_prompt > q->n)
            return pika_set_error("train: sequence %d has a bad prompt length %d", s, q->n_prompt);
        for (int t = 0; t < q->n; t++)
            if (q->tokens[t] < 0 || q->tokens[t] >= m->c.n_vocab)
                return pika_set_error("train: token %d at %d of sequence %d is out of range", q->tokens[t], t, s);
        *n_targets += q->n - q->n_prompt;
    }
    return 0;
}

double pika_lm_loss_grad(pika_lm *m, const pika_lm_seq *seqs, int n_seqs, int grad) {
    int nt;
    if (check_seqs(m, seqs, n_seqs, &nt)) return -1;
    if (nt == 0) return pika_set_error("train: the batch has no target tokens");
    chunk_job j = {m, seqs, n_seqs, grad, 1.0f / (float)nt, NULL};
    pika_pool_run(m->pool, chunk_worker, &j);
    if (grad && m->nth > 1) pika_pool_run(m->pool, reduce_worker, m);
    double loss = 0;
    for (int t = 0; t < m->nth; t++) loss += m->ws[t].loss;
    return loss / nt;
}

int pika_lm_logits(pika_lm *m, const int32_t *tokens, int n, float *logits) {
    pika_lm_seq q = {tokens, n, 1};
    int nt;
    if (check_seqs(m, &q, 1, &nt)) return -1;
    chunk_job j = {m, &q, 1, 0, 1.0f, logits};
    return run_chunk(&j, &m->ws[0], 0, 1);
}

/* ---------------------------------------------------------------- optimizer */

float pika_lr_schedule(int step, int total, int warmup, float lr_max, float lr_min) {
    if (step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    int span = total - warmup - 1;
    double f = span > 0 ? (double)(step - warmup) / span : 1.0;
    if (f > 1) f = 1;
    return (float)(lr_min + 0.5 * (lr_max - lr_min) * (1.0 + cos(3.141592653589793 * f)));
}

double pika_lm_adamw_step(pika_lm *m, const pika_adamw *o) {
    double ss = 0;
    for (size_t i = 0; i < m->n_params; i++) ss += (double)m->g[i] * m->g[i];
    double norm = sqrt(ss);
    float clip = (o->clip > 0 && norm > o->clip) ? (float)(o->clip / norm) : 1.0f;
    m->adam_t++;
    const double bc1 = 1.0 - pow(o->beta1, (double)m->adam_t), bc2 = 1.0 - pow(o->beta2, (double)m->adam_t);
    const float a = (float)(o->lr / bc1), inv_bc2 = (float)(1.0 / bc2);
    for (size_t i = 0; i < m->n_params; i++) {
        float g = m->g[i] * clip;
        m->m1[i] = o->beta1 * m->m1[i] + (1 - o->beta1) * g;
        m->m2[i] = o->beta2 * m->m2[i] + (1 - o->beta2) * g * g;
        float upd = a * m->m1[i] / (sqrtf(m->m2[i] * inv_bc2) + o->eps);
        if (m->decay[i]) m->p[i] -= o->lr * o->weight_decay * m->p[i];
        m->p[i] -= upd;
    }
    return norm;
}

/* ---------------------------------------------------------------- checkpoint */

int pika_lm_save(const pika_lm *m, const pika_math_vocab *v, const char *path, uint32_t wtype, const char *name,
                 const char *notes) {
    const pika_lm_config *c = &m->c;
    if (v->n != c->n_vocab) return pika_set_error("save: vocabulary has %d tokens, model %d", v->n, c->n_vocab);
    if (wtype != PIKA_TYPE_F32 && wtype != PIKA_TYPE_F16) return pika_set_error("save: matrix type must be f32 or f16");
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "general.architecture", "llama");
    pika_gguf_set_str(w, "general.name", name ? name : "pika-math");
    pika_gguf_set_u32(w, "general.file_type", wtype == PIKA_TYPE_F16 ? 1 : 0);
    pika_gguf_set_u32(w, "general.alignment", 32);
    pika_gguf_set_u32(w, "llama.context_length", (uint32_t)c->n_ctx);
    pika_gguf_set_u32(w, "llama.embedding_length", (uint32_t)c->n_embd);
    pika_gguf_set_u32(w, "llama.block_count", (uint32_t)c->n_layer);
    pika_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)c->n_ff);
    pika_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_head);
    pika_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_head_kv);
    pika_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", c->rms_eps);
    pika_gguf_set_f32(w, "llama.rope.freq_base", c->rope_base);
    pika_gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)m->D);
    pika_gguf_set_u32(w, "llama.vocab_size", (uint32_t)c->n_vocab);
    pika_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    pika_gguf_set_str(w, "tokenizer.ggml.pre", "default");
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->text, (size_t)v->n);
    pika_gguf_set_arr_f32(w, "tokenizer.ggml.scores", v->scores, (size_t)v->n);
    pika_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", v->types, (size_t)v->n);
    pika_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", PIKA_MATH_BOS);
    pika_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", PIKA_MATH_EOS);
    pika_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", PIKA_MATH_UNK);
    pika_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", PIKA_MATH_UNK);
    pika_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    pika_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    pika_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", true);
    pika_gguf_set_str(w, "tokenizer.chat_template",
                      "{% for message in messages %}{% if message['role'] == 'user' %}"
                      "{{ '[INST]' + message['content'] + '[/INST]' }}{% elif message['role'] == 'assistant' %}"
                      "{{ message['content'] + eos_token }}{% endif %}{% endfor %}");
    pika_gguf_set_str(w, "pika.task", "math-v1");
    if (notes) pika_gguf_set_str(w, "pika.train", notes);

    const int E = c->n_embd, V = c->n_vocab, F = c->n_ff;
    const int64_t qw = (int64_t)c->n_head * m->D, kw = (int64_t)c->n_head_kv * m->D;
    int rc = 0;
#define ADD(nm, type, nd, n0, n1, off)                                                      \
    do {                                                                                   \
        int64_t ne_[2] = {(n0), (n1)};                                                     \
        if (!rc) rc = pika_gguf_add_tensor(w, nm, type, nd, ne_, m->p + (off));            \
    } while (0)
    ADD("token_embd.weight", wtype, 2, E, V, m->tok_embd);
    ADD("output_norm.weight", PIKA_TYPE_F32, 1, E, 1, m->output_norm);
    if (!c->tied) ADD("output.weight", wtype, 2, E, V, m->output);
    for (int l = 0; l < c->n_layer && !rc; l++) {
        const layer_off *L = &m->L[l];
        char n[64];
#define NM(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        ADD(NM("attn_norm.weight"), PIKA_TYPE_F32, 1, E, 1, L->attn_norm);
        ADD(NM("attn_q.weight"), wtype, 2, E, qw, L->wq);
        ADD(NM("attn_k.weight"), wtype, 2, E, kw, L->wk);
        ADD(NM("attn_v.weight"), wtype, 2, E, kw, L->wv);
        ADD(NM("attn_output.weight"), wtype, 2, qw, E, L->wo);
        ADD(NM("ffn_norm.weight"), PIKA_TYPE_F32, 1, E, 1, L->ffn_norm);
        ADD(NM("ffn_gate.weight"), wtype, 2, E, F, L->wg);
        ADD(NM("ffn_up.weight"), wtype, 2, E, F, L->wu);
        ADD(NM("ffn_down.weight"), wtype, 2, F, E, L->wd);
#undef NM
    }
#undef ADD
    if (!rc) rc = pika_gguf_writer_write(w, path);
    pika_gguf_writer_free(w);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------- math-task run */

int pika_lm_answer(pika_lm *m, const pika_math_vocab *v, const pika_math_problem *p, char *buf, size_t cap) {
    int32_t *ids;
    int np;
    pika_math_sequence(v, p, &ids, &np); /* only the prompt part is used */
    const int V = m->c.n_vocab, max_new = 12;
    ids = pika_realloc(ids, sizeof(int32_t) * (size_t)(np + max_new));
    float *logits = pika_malloc(sizeof(float) * (size_t)(np + max_new) * V);
    int n = np;
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < max_new && n < m->c.n_ctx; k++) {
        if (pika_lm_logits(m, ids, n, logits)) { free(ids); free(logits); return -1; }
        const float *l = logits + (size_t)(n - 1) * V;
        int best = 0;
        for (int i = 1; i < V; i++) if (l[i] > l[best]) best = i;
        if (best == PIKA_MATH_EOS) break;
        const char *t = v->text[best];
        size_t tl = strlen(t);
        if (v->types[best] == 1 && len + tl + 1 < cap) { memcpy(buf + len, t, tl); len += tl; buf[len] = 0; }
        ids[n++] = best;
    }
    free(ids);
    free(logits);
    return 0;
}

void pika_train_run_default(pika_train_run *r) {
    memset(r, 0, sizeof *r);
    r->cfg.n_embd = 64; r->cfg.n_layer = 2; r->cfg.n_head = 4; r->cfg.n_head_kv = 2; r->cfg.n_ff = 192;
    r->cfg.n_ctx = 128; r->cfg.rms_eps = 1e-5f; r->cfg.rope_base = 10000.0f;
    r->steps = 1000; r->batch = 32; r->warmup = 50;
    r->lr = 3e-3f; r->lr_min = 3e-4f; r->weight_decay = 0.01f; r->clip = 1.0f;
    r->seed = 1; r->task_seed = 1; r->n_threads = 2; r->eval_n = 200;
    r->wtype = PIKA_TYPE_F32;
    r->name = "pika-math";
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int pika_train_math(const pika_train_run *r, const char *out_path, FILE *log_csv, int log_every, double *test_acc) {
    if (r->steps <= 0 || r->batch <= 0) return pika_set_error("train: steps and batch must be positive");
    pika_math_vocab *v = pika_math_vocab_new();
    pika_lm_config cfg = r->cfg;
    cfg.n_vocab = v->n;
    pika_lm *m = pika_lm_new(&cfg, r->seed, r->n_threads);
    if (!m) { pika_math_vocab_free(v); return -1; }
    pika_lm_seq *seqs = pika_calloc((size_t)r->batch, sizeof *seqs);
    int32_t **ids = pika_calloc((size_t)r->batch, sizeof *ids);
    double t0 = pika_now(), c0 = cpu_seconds(), loss_avg = 0;
    int n_avg = 0, rc = 0;
    if (log_csv) fprintf(log_csv, "step,loss,lr,grad_norm,cpu_s,wall_s\n");
    for (int step = 0; step < r->steps && !rc; step++) {
        for (int b = 0; b < r->batch; b++) {
            pika_math_problem p;
            int64_t idx = (int64_t)step * r->batch + b + (int64_t)(r->seed % 1000003) * 100000000;
            pika_math_problem_at(r->task_seed, PIKA_MATH_TRAIN, idx, &p);
            free(ids[b]);
            int np;
            int n = pika_math_sequence(v, &p, &ids[b], &np);
            if (n > cfg.n_ctx) n = cfg.n_ctx, np = np < n ? np : n - 1;
            seqs[b].tokens = ids[b]; seqs[b].n = n; seqs[b].n_prompt = np;
        }
        double loss = pika_lm_loss_grad(m, seqs, r->batch, 1);
        if (loss < 0) { rc = -1; break; }
        pika_adamw o = {pika_lr_schedule(step, r->steps, r->warmup, r->lr, r->lr_min), 0.9f, 0.99f, 1e-8f,
                        r->weight_decay, r->clip};
        double gn = pika_lm_adamw_step(m, &o);
        if (!isfinite(loss) || !isfinite(gn)) { rc = pika_set_error("train: loss diverged at step %d", step); break; }
        loss_avg += loss; n_avg++;
        if (log_csv && (((step + 1) % (log_every > 0 ? log_every : 1)) == 0 || step == r->steps - 1)) {
            fprintf(log_csv, "%d,%.5f,%.6g,%.4f,%.2f,%.2f\n", step + 1, loss_avg / n_avg, o.lr, gn, cpu_seconds() - c0,
                    pika_now() - t0);
            fflush(log_csv);
            loss_avg = 0; n_avg = 0;
        }
    }
    double acc = 0;
    if (!rc && r->eval_n > 0) {
        int ok = 0;
        for (int i = 0; i < r->eval_n; i++) {
            pika_math_problem p;
            pika_math_problem_at(r->task_seed, PIKA_MATH_TEST, i, &p);
            char ans[64];
            if (pika_lm_answer(m, v, &p, ans, sizeof ans)) { rc = -1; break; }
            ok += pika_math_check(ans, p.answer);
        }
        acc = (double)ok / r->eval_n;
    }
    if (test_acc) *test_acc = acc;
    if (!rc && out_path) {
        char notes[512];
        snprintf(notes, sizeof notes,
                 "steps=%d batch=%d warmup=%d lr=%g lr_min=%g wd=%g clip=%g seed=%llu task_seed=%llu threads=%d",
                 r->steps, r->batch, r->warmup, r->lr, r->lr_min, r->weight_decay, r->clip,
                 (unsigned long long)r->seed, (unsigned long long)r->task_seed, r->n_threads);
        rc = pika_lm_save(m, v, out_path, r->wtype, r->name, notes);
    }
    for (int b = 0; b < r->batch; b++) free(ids[b]);
    free(ids);
    free(seqs);
    pika_lm_free(m);
    pika_math_vocab_free(v);
    return rc;
}
