/* model.c — transformer forward pass for GGUF llama / qwen2 / qwen3 models.
 *
 * Shapes (E = n_embd, H = n_head, Hkv = n_head_kv, D = head_dim, F = n_ff, V = n_vocab,
 * n = tokens in this batch, T = n_past + n):
 *   x      [n, E]        residual stream
 *   xn     [n, E]        normed input of a sub-block
 *   q      [n, H*D]      k, v [n, Hkv*D] (then copied into the KV cache [T, Hkv*D] per layer)
 *   att    [n, H*D]      attention output before Wo
 *   gate   [n, F]        up [n, F]
 * Packed (pika_forward_packed): the n rows are n_seq sequences back to back, each after the same
 * n_past prefix rows of the cache; their K/V rows [n_past, n_past + n) are scratch.
 * A weight matrix W with GGUF ne = [in, out] is out rows of in elements; y = x · Wᵀ.
 * Matmuls: n >= MATVEC_MAX_N → each thread multiplies its slice of W's rows with pika_sgemm_nt_typed
 * (gemm.c: panels of W dequantized straight into the packed layout); where pika's kernels cannot run
 * it dequantizes the slice to F32 and calls pika_sgemm_nt (cblas); smaller n → matvec per token.
 */
#include "pika/model.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pika/gemm.h"
#include "pika/quant.h"
#include "pika/threadpool.h"
#include "pika/util.h"
#include "engine/vmath.h"

#define MATVEC_MAX_N 4   /* batches smaller than this use matvec instead of dequant + sgemm */
#define ATT_Q_BLOCK 128  /* query rows per attention block (bounds the score buffer) */

typedef struct {
    const pika_gguf_tensor *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;
    float *attn_norm, *ffn_norm;  /* [E] */
    float *bq, *bk, *bv;          /* [H*D], [Hkv*D], [Hkv*D] or NULL */
    float *q_norm, *k_norm;       /* [D] or NULL (qwen3) */
} layer_weights;

struct pika_model {
    pika_gguf *g;
    pika_hparams hp;
    const pika_gguf_tensor *tok_embd; /* ne = [E, V] */
    const pika_gguf_tensor *output;   /* ne = [E, V] (tok_embd when tied) */
    float *output_norm;               /* [E] */
    layer_weights *layers;            /* [L] */
    double *rope_inv_freq;            /* [D/2] angle per position for pair i */
    char fingerprint[17];
};

/* ---------------------------------------------------------------- loading */

static const char *arch_names[] = {"llama", "qwen2", "qwen3"};

static int load_err(pika_model *m, const char *fmt, const char *a, const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a, b);
    return pika_set_error("%s: %s", m->g->path, msg);
}

/* Find tensor `name` with ne = [ne0, ne1] (ne1 = 0: 1-D). Missing + required → error. */
static int get_tensor(pika_model *m, const char *name, int64_t ne0, int64_t ne1, int required,
                      const pika_gguf_tensor **out) {
    const pika_gguf_tensor *t = pika_gguf_find_tensor(m->g, name);
    *out = NULL;
    if (!t) return required ? load_err(m, "missing tensor %s%s", name, "") : 0;
    int ok = ne1 ? (t->n_dims == 2 && t->ne[0] == ne0 && t->ne[1] == ne1) : (t->n_elements == ne0);
    if (!ok) {
        char want[64], got[64];
        if (ne1) snprintf(want, sizeof want, "[%lld, %lld]", (long long)ne0, (long long)ne1);
        else snprintf(want, sizeof want, "[%lld]", (long long)ne0);
        snprintf(got, sizeof got, "[%lld, %lld, %lld, %lld] (%u dims)", (long long)t->ne[0], (long long)t->ne[1],
                 (long long)t->ne[2], (long long)t->ne[3], t->n_dims);
        return pika_set_error("%s: tensor %s has shape %s, expected %s", m->g->path, name, got, want);
    }
    if (!pika_type_supported(t->type))
        return pika_set_error("%s: tensor %s has type %s, which pika does not support yet", m->g->path, name,
                              pika_type_name(t->type));
    *out = t;
    return 0;
}

/* A small vector tensor (norm weight, bias) copied out as F32. */
static int get_vector(pika_model *m, const char *name, int64_t n, int required, float **out) {
    const pika_gguf_tensor *t;
    *out = NULL;
    if (get_tensor(m, name, n, 0, required, &t)) return -1;
    if (!t) return 0;
    *out = pika_malloc(sizeof(float) * (size_t)n);
    pika_dequantize_row(t->type, t->data, *out, n);
    return 0;
}

static int load_hparams(pika_model *m) {
    pika_hparams *hp = &m->hp;
    char *arch = pika_gguf_get_string(m->g, "general.architecture");
    if (!arch) return pika_set_error("%s: no general.architecture key (is this a model GGUF?)", m->g->path);
    hp->arch = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(arch, arch_names[i])) hp->arch = i;
    snprintf(hp->arch_name, sizeof hp->arch_name, "%s", arch);
    if (hp->arch < 0) {
        pika_set_error("%s: unsupported architecture '%s' (supported: llama, qwen2, qwen3)", m->g->path, arch);
        free(arch);
        return -1;
    }
    free(arch);
    char key[128];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", hp->arch_name, suffix), key)
    hp->n_embd = (int)pika_gguf_get_int(m->g, KEY("embedding_length"), 0);
    hp->n_layer = (int)pika_gguf_get_int(m->g, KEY("block_count"), 0);
    hp->n_head = (int)pika_gguf_get_int(m->g, KEY("attention.head_count"), 0);
    hp->n_head_kv = (int)pika_gguf_get_int(m->g, KEY("attention.head_count_kv"), hp->n_head);
    hp->n_ff = (int)pika_gguf_get_int(m->g, KEY("feed_forward_length"), 0);
    hp->n_ctx_train = (int)pika_gguf_get_int(m->g, KEY("context_length"), 0);
    hp->rms_eps = (float)pika_gguf_get_float(m->g, KEY("attention.layer_norm_rms_epsilon"), 1e-5);
    hp->rope_base = (float)pika_gguf_get_float(m->g, KEY("rope.freq_base"), 10000.0);
    double scale = pika_gguf_get_float(m->g, KEY("rope.scaling.factor"), 1.0);
    char *stype = pika_gguf_get_string(m->g, KEY("rope.scaling.type"));
    hp->rope_freq_scale = (stype && !strcmp(stype, "linear") && scale > 0) ? (float)(1.0 / scale) : 1.0f;
    free(stype);
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_ff <= 0 || hp->n_head_kv <= 0 ||
        hp->n_embd > (1 << 20) || hp->n_layer > 4096 || hp->n_head > 4096 || hp->n_ff > (1 << 22) ||
        hp->n_head % hp->n_head_kv != 0)
        return pika_set_error("%s: missing or inconsistent hyperparameters (embedding_length %d, block_count %d, "
                              "head_count %d, head_count_kv %d, feed_forward_length %d)",
                              m->g->path, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
    hp->head_dim = (int)pika_gguf_get_int(m->g, KEY("attention.key_length"), hp->n_embd / hp->n_head);
    int vdim = (int)pika_gguf_get_int(m->g, KEY("attention.value_length"), hp->head_dim);
#undef KEY
    if (hp->head_dim <= 0 || hp->head_dim % 2 || hp->head_dim > 4096 || vdim != hp->head_dim)
        return pika_set_error("%s: unsupported head dimensions (key_length %d, value_length %d)", m->g->path,
                              hp->head_dim, vdim);
    hp->rope_neox = hp->arch != PIKA_ARCH_LLAMA;
    return 0;
}

pika_model *pika_model_load(const char *path) {
    pika_model *m = pika_calloc(1, sizeof *m);
    m->g = pika_gguf_open(path);
    if (!m->g) { free(m); return NULL; }
    if (load_hparams(m)) goto fail;
    pika_hparams *hp = &m->hp;
    const int E = hp->n_embd, D = hp->head_dim, H = hp->n_head, Hkv = hp->n_head_kv, F = hp->n_ff;

    const pika_gguf_tensor *te = pika_gguf_find_tensor(m->g, "token_embd.weight");
    if (!te) { pika_set_error("%s: missing tensor token_embd.weight", path); goto fail; }
    hp->n_vocab = (int)te->ne[1];
    if (get_tensor(m, "token_embd.weight", E, hp->n_vocab, 1, &m->tok_embd)) goto fail;
    if (get_tensor(m, "output.weight", E, hp->n_vocab, 0, &m->output)) goto fail;
    hp->tied_output = m->output == NULL;
    if (!m->output) m->output = m->tok_embd;
    if (get_vector(m, "output_norm.weight", E, 1, &m->output_norm)) goto fail;

    m->layers = pika_calloc((size_t)hp->n_layer, sizeof(layer_weights));
    for (int l = 0; l < hp->n_layer; l++) {
        layer_weights *w = &m->layers[l];
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        if (get_vector(m, NAME("attn_norm.weight"), E, 1, &w->attn_norm) ||
            get_vector(m, NAME("ffn_norm.weight"), E, 1, &w->ffn_norm) ||
            get_tensor(m, NAME("attn_q.weight"), E, (int64_t)H * D, 1, &w->wq) ||
            get_tensor(m, NAME("attn_k.weight"), E, (int64_t)Hkv * D, 1, &w->wk) ||
            get_tensor(m, NAME("attn_v.weight"), E, (int64_t)Hkv * D, 1, &w->wv) ||
            get_tensor(m, NAME("attn_output.weight"), (int64_t)H * D, E, 1, &w->wo) ||
            get_tensor(m, NAME("ffn_gate.weight"), E, F, 1, &w->w_gate) ||
            get_tensor(m, NAME("ffn_up.weight"), E, F, 1, &w->w_up) ||
            get_tensor(m, NAME("ffn_down.weight"), F, E, 1, &w->w_down))
            goto fail;
        int biases = hp->arch == PIKA_ARCH_QWEN2;
        if (get_vector(m, NAME("attn_q.bias"), (int64_t)H * D, biases, &w->bq) ||
            get_vector(m, NAME("attn_k.bias"), (int64_t)Hkv * D, biases, &w->bk) ||
            get_vector(m, NAME("attn_v.bias"), (int64_t)Hkv * D, biases, &w->bv))
            goto fail;
        int qk_norm = hp->arch == PIKA_ARCH_QWEN3;
        if (get_vector(m, NAME("attn_q_norm.weight"), D, qk_norm, &w->q_norm) ||
            get_vector(m, NAME("attn_k_norm.weight"), D, qk_norm, &w->k_norm))
            goto fail;
#undef NAME
    }

    /* RoPE: angle(pos, i) = pos * freq_scale * base^(-2i/D) / freq_factor[i] (llama3 rope_freqs). */
    const pika_gguf_tensor *rf = NULL;
    if (get_tensor(m, "rope_freqs.weight", D / 2, 0, 0, &rf)) goto fail;
    float *factors = NULL;
    if (rf) {
        factors = pika_malloc(sizeof(float) * (size_t)(D / 2));
        pika_dequantize_row(rf->type, rf->data, factors, D / 2);
    }
    m->rope_inv_freq = pika_malloc(sizeof(double) * (size_t)(D / 2));
    for (int i = 0; i < D / 2; i++) {
        double f = pow((double)hp->rope_base, -2.0 * i / D) * hp->rope_freq_scale;
        if (factors) f /= factors[i];
        m->rope_inv_freq[i] = f;
    }
    free(factors);

    uint64_t h = PIKA_HASH_SEED;
    for (uint64_t i = 0; i < m->g->n_kv; i++) h = pika_hash_bytes(m->g->kv[i].key.ptr, (size_t)m->g->kv[i].key.len, h);
    for (uint64_t i = 0; i < m->g->n_tensors; i++) {
        const pika_gguf_tensor *t = &m->g->tensors[i];
        h = pika_hash_bytes(t->name, strlen(t->name), h);
        h = pika_hash_bytes(t->ne, sizeof t->ne, h);
        h = pika_hash_bytes(&t->type, sizeof t->type, h);
        /* a sample of the weights themselves: first 64 bytes of every tensor */
        h = pika_hash_bytes(t->data, t->nbytes < 64 ? (size_t)t->nbytes : 64, h);
    }
    snprintf(m->fingerprint, sizeof m->fingerprint, "%016llx", (unsigned long long)h);
    return m;
fail:
    pika_model_free(m);
    return NULL;
}

void pika_model_free(pika_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int l = 0; l < m->hp.n_layer; l++) {
            layer_weights *w = &m->layers[l];
            free(w->attn_norm); free(w->ffn_norm); free(w->bq); free(w->bk); free(w->bv);
            free(w->q_norm); free(w->k_norm);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_inv_freq);
    pika_gguf_close(m->g);
    free(m);
}

const pika_hparams *pika_model_hparams(const pika_model *m) { return &m->hp; }
const pika_gguf *pika_model_gguf(const pika_model *m) { return m->g; }
const char *pika_model_fingerprint(const pika_model *m) { return m->fingerprint; }

/* ---------------------------------------------------------------- context */

struct pika_ctx {
    pika_model *m;
    pika_pool *pool;
    int n_past;
    int kv_layers;    /* blocks whose K/V rows are filled for all n_past tokens (n_layer when n_past = 0):
                       * a pass that stopped early (pika_forward_req, no logits) keeps its tokens but
                       * leaves the deeper blocks' rows unfilled; a later pass may only run that deep */
    int cap;          /* KV capacity in tokens */
    float **k_cache;  /* [L][cap, Hkv*D] */
    float **v_cache;
    int scratch_n;    /* batch size the scratch buffers fit */
    float *x, *xn, *q, *k, *v, *att, *gate, *up;
    float *rope_cos, *rope_sin; /* [n, D/2] RoPE rotation of this batch's positions */
    float **wbuf;     /* per thread: dequantized weight slice */
    size_t wbuf_elems;
    float **scores;   /* per thread: [ATT_Q_BLOCK, cap] */
    size_t scores_elems;
    int exact;        /* 1: matvec in exact F32; 0: 8-bit activations + integer dots (pika_ctx_set_exact) */
    int prefill;      /* PIKA_PREFILL_*: how batches of MATVEC_MAX_N+ rows multiply (pika_ctx_set_prefill) */
    int8_t *aq;       /* q8 prefill: the batch's activations quantized once per matmul job: levels [n, in], */
    float *ad;        /*   scales [n, in/32], */
    int32_t *as16;    /*   level sums [n, in/16] (pika_quantize_act_q8_levels) */
    size_t aq_elems;
    int blas_attn;    /* 1: prefill attention with BLAS, not split-invariant (pika_ctx_set_blas_attention) */
};

pika_ctx *pika_ctx_new(pika_model *m, int n_threads) {
    pika_ctx *c = pika_calloc(1, sizeof *c);
    c->m = m;
    if (n_threads <= 0) n_threads = pika_n_cores();
    c->pool = pika_pool_new(n_threads);
    c->k_cache = pika_calloc((size_t)m->hp.n_layer, sizeof(float *));
    c->v_cache = pika_calloc((size_t)m->hp.n_layer, sizeof(float *));
    c->kv_layers = m->hp.n_layer;
    int nth = pika_pool_size(c->pool);
    c->wbuf = pika_calloc((size_t)nth, sizeof(float *));
    c->scores = pika_calloc((size_t)nth, sizeof(float *));
    const char *mm = getenv("PIKA_MATMUL");
    c->exact = mm && !strcmp(mm, "exact");
    const char *at = getenv("PIKA_ATTN"); /* "blas": prefill attention with BLAS (not split-invariant) */
    c->blas_attn = at && !strcmp(at, "blas");
    const char *pp = getenv("PIKA_PREFILL");
    int mode = pp ? pika_prefill_parse(pp) : PIKA_PREFILL_F32;
    if (!c->exact && mode > PIKA_PREFILL_F32 && pika_prefill_available(mode)) c->prefill = mode;
    return c;
}

void pika_ctx_set_exact(pika_ctx *c, int exact) {
    c->exact = exact != 0;
    if (c->exact) c->prefill = PIKA_PREFILL_F32;
}

int pika_prefill_parse(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "f32")) return PIKA_PREFILL_F32;
    if (!strcmp(name, "bf16")) return PIKA_PREFILL_BF16;
    if (!strcmp(name, "q8")) return PIKA_PREFILL_Q8;
    return -1;
}
const char *pika_prefill_name(int mode) {
    return mode == PIKA_PREFILL_BF16 ? "bf16" : mode == PIKA_PREFILL_Q8 ? "q8" : mode == PIKA_PREFILL_F32 ? "f32" : "?";
}
int pika_prefill_available(int mode) {
    switch (mode) {
    case PIKA_PREFILL_F32: return 1;
    case PIKA_PREFILL_BF16: return pika_simd_has_avx512_bf16();
    case PIKA_PREFILL_Q8: return pika_sgemm_nt_q8_native(PIKA_TYPE_Q8_0);
    default: return 0;
    }
}
int pika_ctx_set_prefill(pika_ctx *c, int mode) {
    if (mode == PIKA_PREFILL_BF16 && !pika_prefill_available(mode))
        return pika_set_error("BF16 prefill needs a CPU with AVX512_BF16 (and the AVX-512 path in use)");
    if (mode == PIKA_PREFILL_Q8 && !pika_prefill_available(mode))
        return pika_set_error("q8 prefill needs a CPU with AVX2 (and the AVX2 or AVX-512 path in use)");
    if (!pika_prefill_available(mode)) return pika_set_error("unknown prefill mode %d", mode);
    c->prefill = mode;
    if (mode != PIKA_PREFILL_F32) c->exact = 0;
    return 0;
}
int pika_ctx_prefill(const pika_ctx *c) { return pika_prefill_available(c->prefill) ? c->prefill : PIKA_PREFILL_F32; }
int pika_ctx_set_prefill_bf16(pika_ctx *c, int on) {
    if (on) return pika_ctx_set_prefill(c, PIKA_PREFILL_BF16);
    if (c->prefill == PIKA_PREFILL_BF16) c->prefill = PIKA_PREFILL_F32;
    return 0;
}
int pika_ctx_prefill_bf16(const pika_ctx *c) { return pika_ctx_prefill(c) == PIKA_PREFILL_BF16; }
void pika_ctx_set_blas_attention(pika_ctx *c, int on) { c->blas_attn = on != 0; }
int pika_ctx_blas_attention(const pika_ctx *c) { return c->blas_attn; }
int pika_ctx_exact(const pika_ctx *c) { return c->exact; }

void pika_ctx_free(pika_ctx *c) {
    if (!c) return;
    int nth = pika_pool_size(c->pool);
    for (int l = 0; l < c->m->hp.n_layer; l++) { free(c->k_cache[l]); free(c->v_cache[l]); }
    for (int i = 0; i < nth; i++) { free(c->wbuf[i]); free(c->scores[i]); }
    free(c->k_cache); free(c->v_cache); free(c->wbuf); free(c->scores);
    free(c->aq); free(c->ad); free(c->as16);
    free(c->x); free(c->xn); free(c->q); free(c->k); free(c->v); free(c->att); free(c->gate); free(c->up);
    free(c->rope_cos); free(c->rope_sin);
    pika_pool_free(c->pool);
    free(c);
}

void pika_ctx_reset(pika_ctx *c) { c->n_past = 0; c->kv_layers = c->m->hp.n_layer; }
void pika_ctx_truncate(pika_ctx *c, int n) {
    if (n >= 0 && n < c->n_past) c->n_past = n;
    if (c->n_past == 0) c->kv_layers = c->m->hp.n_layer;
}
int pika_ctx_n_past(const pika_ctx *c) { return c->n_past; }
int pika_ctx_kv_layers(const pika_ctx *c) { return c->kv_layers; }
const pika_model *pika_ctx_model(const pika_ctx *c) { return c->m; }

static void ensure_capacity(pika_ctx *c, int n) {
    const pika_hparams *hp = &c->m->hp;
    const size_t kvw = (size_t)hp->n_head_kv * hp->head_dim;
    int need = c->n_past + n;
    if (need > c->cap) {
        int cap = c->cap ? c->cap : 64;
        while (cap < need) cap *= 2;
        for (int l = 0; l < hp->n_layer; l++) {
            c->k_cache[l] = pika_realloc(c->k_cache[l], sizeof(float) * kvw * (size_t)cap);
            c->v_cache[l] = pika_realloc(c->v_cache[l], sizeof(float) * kvw * (size_t)cap);
        }
        c->cap = cap;
    }
    if (n > c->scratch_n) {
        size_t qw = (size_t)hp->n_head * hp->head_dim;
        size_t wide = qw > (size_t)hp->n_embd ? qw : (size_t)hp->n_embd;
#define GROW(p, w) (p = pika_realloc(p, sizeof(float) * (size_t)n * (w)))
        GROW(c->x, (size_t)hp->n_embd); GROW(c->xn, wide); GROW(c->q, qw); GROW(c->k, kvw); GROW(c->v, kvw);
        GROW(c->att, qw); GROW(c->gate, (size_t)hp->n_ff); GROW(c->up, (size_t)hp->n_ff);
        GROW(c->rope_cos, (size_t)hp->head_dim / 2); GROW(c->rope_sin, (size_t)hp->head_dim / 2);
#undef GROW
        c->scratch_n = n;
    }
    int nth = pika_pool_size(c->pool);
    size_t se = (size_t)ATT_Q_BLOCK * (size_t)c->cap;
    if (se > c->scores_elems) {
        for (int i = 0; i < nth; i++) c->scores[i] = pika_realloc(c->scores[i], sizeof(float) * se);
        c->scores_elems = se;
    }
}

/* ---------------------------------------------------------------- matmul */

#define MAX_FUSED 3 /* weight matrices sharing one input, multiplied in one pool job (q/k/v, gate/up) */

/* What a matmul job does to its outputs once a thread's columns are done (no extra hand-off):
 *   EPI_SWIGLU  Y_0 := silu(Y_0) * Y_1 (gate and up: same out, so the same columns per thread)
 *   EPI_ADD     res += Y_0 (the residual stream; res is [n, out_0] like Y_0) */
enum { EPI_NONE, EPI_SWIGLU, EPI_ADD };

typedef struct {
    pika_ctx *c;
    int count;
    const pika_gguf_tensor *W[MAX_FUSED]; /* ne = [in, out_k], same in for all */
    float *Y[MAX_FUSED];                  /* [n, out_k] */
    const float *X;                       /* [n, in] */
    int n;
    int epi;                              /* EPI_* */
    float *res;                           /* EPI_ADD: [n, out_0] */
    int q8;                               /* X quantized into c->aq/ad/as16 (q8 prefill) */
} matmul_job;

static void matmul_epilogue(const matmul_job *j, int ith, int nth) {
    if (j->epi == EPI_NONE) return;
    const int64_t out = j->W[0]->ne[1];
    const int64_t r0 = out * ith / nth, r1 = out * (ith + 1) / nth;
    for (int t = 0; t < j->n; t++) {
        float *y = j->Y[0] + (size_t)t * out;
        if (j->epi == EPI_SWIGLU) {
            pika_vm_swiglu(y + r0, j->Y[1] + (size_t)t * out + r0, (size_t)(r1 - r0));
        } else {
            float *x = j->res + (size_t)t * out;
            for (int64_t i = r0; i < r1; i++) x[i] += y[i];
        }
    }
}

/* Thread ith takes the same share of rows of every matrix in the job. */
static void matmul_rows(matmul_job *j, int ith, int nth) {
    for (int k = 0; k < j->count; k++) {
        const pika_gguf_tensor *W = j->W[k];
        const int64_t in = W->ne[0], out = W->ne[1];
        const int64_t r0 = out * ith / nth, r1 = out * (ith + 1) / nth;
        if (r1 <= r0) continue;
        if (j->n < MATVEC_MAX_N) {
            if (!j->c->exact && pika_q8_preferred(W->type) && in % 32 == 0) {
                void *xq = pika_malloc(pika_q8_act_bytes(in));
                for (int t = 0; t < j->n; t++) {
                    pika_quantize_act_q8(j->X + (size_t)t * in, xq, in);
                    pika_matvec_q8(W->type, W->data, xq, j->Y[k] + (size_t)t * out, in, r0, r1);
                }
                free(xq);
                continue;
            }
            for (int t = 0; t < j->n; t++)
                pika_matvec(W->type, W->data, j->X + (size_t)t * in, j->Y[k] + (size_t)t * out, in, r0, r1);
            continue;
        }
        const size_t row_bytes = pika_row_bytes(W->type, in);
        const uint8_t *base = (const uint8_t *)W->data + (size_t)r0 * row_bytes;
        if (j->q8 && pika_sgemm_nt_typed_q8a(j->n, (int)(r1 - r0), (int)in, j->c->aq, j->c->ad, j->c->as16, W->type, base,
                                             row_bytes, j->Y[k] + r0, (int)out) == 0)
            continue;
        if (j->c->prefill == PIKA_PREFILL_BF16 && pika_sgemm_nt_typed_bf16(j->n, (int)(r1 - r0), (int)in, j->X, (int)in, W->type, base,
                                                            row_bytes, j->Y[k] + r0, (int)out) == 0)
            continue;
        if (pika_sgemm_nt_typed(j->n, (int)(r1 - r0), (int)in, j->X, (int)in, W->type, base, row_bytes, j->Y[k] + r0,
                                (int)out) == 0)
            continue;
        const float *w;
        if (W->type == PIKA_TYPE_F32) {
            w = (const float *)base;
        } else {
            float *buf = j->c->wbuf[ith];
            for (int64_t r = r0; r < r1; r++)
                pika_dequantize_row(W->type, base + (size_t)(r - r0) * row_bytes, buf + (size_t)(r - r0) * in, in);
            w = buf;
        }
        pika_sgemm_nt(j->n, (int)(r1 - r0), (int)in, j->X, (int)in, w, (int)in, j->Y[k] + r0, (int)out);
    }
}

/* q8 prefill: rows [n*ith/nth, n*(ith+1)/nth) of the job's X quantized into c->aq/ad/as16 */
static void quantize_worker(void *arg, int ith, int nth) {
    matmul_job *j = arg;
    const int64_t in = j->W[0]->ne[0];
    for (int t = j->n * ith / nth; t < j->n * (ith + 1) / nth; t++)
        pika_quantize_act_q8_levels(j->X + (size_t)t * in, in, j->c->aq + (size_t)t * in, j->c->ad + (size_t)t * (in / 32),
                                    j->c->as16 + (size_t)t * (in / 16));
}

static void matmul_worker(void *arg, int ith, int nth) {
    matmul_job *j = arg;
    matmul_rows(j, ith, nth);
    matmul_epilogue(j, ith, nth);
}

/* Y_k[n, out_k] = X[n, in] · W_kᵀ for k < count (count <= MAX_FUSED), as one parallel job, then the
 * epilogue epi (EPI_*; res for EPI_ADD). */
static void matmul_fused(pika_ctx *c, int count, const pika_gguf_tensor *const *W, float *const *Y, const float *X, int n,
                         int epi, float *res) {
    int nth = pika_pool_size(c->pool);
    matmul_job j = {.c = c, .count = count, .X = X, .n = n, .epi = epi, .res = res};
    for (int k = 0; k < count; k++) {
        j.W[k] = W[k];
        j.Y[k] = Y[k];
        if (n >= MATVEC_MAX_N && W[k]->type != PIKA_TYPE_F32 && !pika_sgemm_nt_typed_native()) {
            size_t need = (size_t)((W[k]->ne[1] + nth - 1) / nth + 1) * (size_t)W[k]->ne[0];
            if (need > c->wbuf_elems) {
                for (int i = 0; i < nth; i++) c->wbuf[i] = pika_realloc(c->wbuf[i], sizeof(float) * need);
                c->wbuf_elems = need;
            }
        }
    }
    if (c->prefill == PIKA_PREFILL_Q8 && n >= MATVEC_MAX_N && W[0]->ne[0] % 32 == 0) {
        for (int k = 0; k < count; k++) j.q8 |= pika_sgemm_nt_q8_native(W[k]->type);
        if (j.q8) {
            size_t need = (size_t)n * (size_t)W[0]->ne[0];
            if (need > c->aq_elems) {
                c->aq = pika_realloc(c->aq, need);
                c->ad = pika_realloc(c->ad, sizeof(float) * (need / 32));
                c->as16 = pika_realloc(c->as16, sizeof(int32_t) * (need / 16));
                c->aq_elems = need;
            }
            pika_pool_run(c->pool, quantize_worker, &j);
        }
    }
    pika_pool_run(c->pool, matmul_worker, &j);
}

/* Y[n, out] = X[n, in] · Wᵀ */
static void matmul(pika_ctx *c, const pika_gguf_tensor *W, const float *X, float *Y, int n) {
    matmul_fused(c, 1, &W, &Y, X, n, EPI_NONE, NULL);
}

/* ---------------------------------------------------------------- small ops */

/* out[i] = x[i] / sqrt(mean(x²) + eps) * w[i], for one row of n. */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* rmsnorm of n rows of width E, the rows split across the pool (serial for small n). */
typedef struct {
    float *out;
    const float *x, *w;
    int n, E;
    float eps;
} norm_job;

static void norm_worker(void *arg, int ith, int nth) {
    norm_job *j = arg;
    for (int t = j->n * ith / nth; t < j->n * (ith + 1) / nth; t++)
        rmsnorm(j->out + (size_t)t * j->E, j->x + (size_t)t * j->E, j->w, j->E, j->eps);
}

static void rmsnorm_rows(pika_pool *pool, float *out, const float *x, const float *w, int n, int E, float eps) {
    norm_job j = {out, x, w, n, E, eps};
    if (n < 8) norm_worker(&j, 0, 1);
    else pika_pool_run(pool, norm_worker, &j);
}

static void add_bias(float *y, const float *b, int n_rows, int width) {
    if (!b) return;
    for (int t = 0; t < n_rows; t++)
        for (int i = 0; i < width; i++) y[(size_t)t * width + i] += b[i];
}

/* Rotate one head vector v[D] by the angles of its position (cs, sn: [D/2]). */
static void rope(float *v, int D, const float *cs, const float *sn, int neox) {
    for (int i = 0; i < D / 2; i++) {
        int i0 = neox ? i : 2 * i, i1 = neox ? i + D / 2 : 2 * i + 1;
        float x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * cs[i] - x1 * sn[i];
        v[i1] = x0 * sn[i] + x1 * cs[i];
    }
}

/* ---------------------------------------------------------------- attention */

typedef struct {
    pika_ctx *c;
    int layer, n;
} attn_job;

/* For each head (split across threads): S = Q_h · K_gᵀ · scale, causal mask, softmax, att_h = P · V_g. */
static void attn_worker(void *arg, int ith, int nth) {
    attn_job *j = arg;
    pika_ctx *c = j->c;
    const pika_hparams *hp = &c->m->hp;
    const int H = hp->n_head, D = hp->head_dim, group = H / hp->n_head_kv;
    const int qw = H * D, kvw = hp->n_head_kv * D;
    const float scale = 1.0f / sqrtf((float)D);
    const float *K = c->k_cache[j->layer], *V = c->v_cache[j->layer];
    float *S = c->scores[ith];
    for (int h = ith; h < H; h += nth) {
        const int g = h / group;
        for (int q0 = 0; q0 < j->n; q0 += ATT_Q_BLOCK) {
            int nq = j->n - q0 < ATT_Q_BLOCK ? j->n - q0 : ATT_Q_BLOCK;
            int tk = c->n_past + q0 + nq; /* keys visible to the last query of the block */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, tk, D, scale, c->q + (size_t)q0 * qw + h * D,
                        qw, K + g * D, kvw, 0.0f, S, tk);
            for (int i = 0; i < nq; i++) {
                float *s = S + (size_t)i * tk;
                int visible = c->n_past + q0 + i + 1;
                pika_vm_softmax(s, visible);
                for (int t = visible; t < tk; t++) s[t] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, D, tk, 1.0f, S, tk, V + g * D, kvw, 0.0f,
                        c->att + (size_t)q0 * qw + h * D, qw);
        }
    }
}

/* Prefill attention (pika_forward with 4+ tokens, pika_batch_prefill, pika_forward_packed): the batch's
 * n rows are n_seq sequences one after another (sequence s: rows seq_start[s] .. + seq_len[s], cache rows
 * n_past + those), each attending to the n_past prefix keys and to its own earlier keys only
 * (block-diagonal causal mask). Work item = (sequence, head); per block of ATT_Q_BLOCK queries:
 *   S[nq, tk] = Q · [K_prefix; K_own]ᵀ      (column t = absolute key position t, tk = n_past + q0 + nq)
 *   S *= 1/sqrt(D); softmax over each query's visible keys (0 beyond them)
 *   att[nq, D] = S · [V_prefix; V_own]
 * with gemm.c's fixed-order products (pika_sgemm_nt_split / _nn_split): every value depends only on
 * its query, its keys and their absolute positions, so a token's output is the same bit for bit however
 * its sequence was split between a cached prefix and calls, or packed with others. The score buffer
 * holds one query block (ATT_Q_BLOCK x keys), never T x T. */
typedef struct {
    pika_ctx *c;
    int layer, n_seq;
    const int *seq_start, *seq_len;
} attn_fixed_job;

static void attn_fixed_worker(void *arg, int ith, int nth) {
    attn_fixed_job *j = arg;
    pika_ctx *c = j->c;
    const pika_hparams *hp = &c->m->hp;
    const int H = hp->n_head, D = hp->head_dim, group = H / hp->n_head_kv;
    const int qw = H * D, kvw = hp->n_head_kv * D, np = c->n_past;
    const float scale = 1.0f / sqrtf((float)D);
    const float *K = c->k_cache[j->layer], *V = c->v_cache[j->layer];
    float *S = c->scores[ith];
    for (int p = ith; p < j->n_seq * H; p += nth) {
        const int s = p / H, h = p % H, g = h / group, st = j->seq_start[s], len = j->seq_len[s];
        const float *Ko = K + (size_t)(np + st) * kvw + g * D, *Vo = V + (size_t)(np + st) * kvw + g * D;
        for (int q0 = 0; q0 < len; q0 += ATT_Q_BLOCK) {
            const int nq = len - q0 < ATT_Q_BLOCK ? len - q0 : ATT_Q_BLOCK, tk = np + q0 + nq;
            pika_sgemm_nt_split(nq, tk, D, c->q + (size_t)(st + q0) * qw + h * D, qw, K + g * D, np, Ko, kvw, S, tk);
            for (int i = 0; i < nq; i++) {
                float *r = S + (size_t)i * tk;
                const int visible = np + q0 + i + 1;
                for (int t = 0; t < visible; t++) r[t] *= scale;
                pika_vm_softmax(r, visible);
                for (int t = visible; t < tk; t++) r[t] = 0.0f;
            }
            pika_sgemm_nn_split(nq, D, tk, S, tk, V + g * D, np, Vo, kvw, c->att + (size_t)(st + q0) * qw + h * D, qw);
        }
    }
}

/* ---------------------------------------------------------------- forward */

/* the batch row of a requested position (negative: from the end of the n rows) */
static inline int pos_row(int p, int n) { return p < 0 ? n + p : p; }

static void capture(const pika_ctx *c, const pika_forward_req *req, int layer, int n, const int *layers, int n_layers,
                    const int *pos, int n_pos) {
    const int E = c->m->hp.n_embd;
    for (int li = 0; li < n_layers; li++) {
        if (layers[li] != layer) continue;
        for (int pi = 0; pi < n_pos; pi++) {
            int p = pos_row(pos[pi], n);
            memcpy(req->hidden + ((size_t)li * n_pos + pi) * E, c->x + (size_t)p * E, sizeof(float) * (size_t)E);
        }
    }
}

/* n tokens after the context's n_past. seq_len == NULL: one sequence appended to the context
 * (pika_forward); else n_seq packed sequences (pika_forward_packed) whose KV rows are scratch. */
static int forward(pika_ctx *c, const int32_t *tokens, int n, int n_seq, const int *seq_len, const pika_forward_req *req);

/* Our pool threads split the work, so each sgemm runs single-threaded inside OpenBLAS — while any
 * forward call is running: the first of (possibly concurrent) calls saves the caller's OpenBLAS thread
 * count and sets 1, the last to finish restores it (no lasting process-wide side effect; pika_ctx_new
 * changes nothing). Counted under a mutex: two threads setting OpenBLAS's thread count at once corrupt
 * its heap, which a server with several contexts prefilling together would otherwise do. */
static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_active, blas_saved;

static void blas_single_begin(void) {
    pthread_mutex_lock(&blas_mu);
    if (blas_active++ == 0) {
        blas_saved = openblas_get_num_threads();
        if (blas_saved != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_mu);
}

static void blas_single_end(void) {
    pthread_mutex_lock(&blas_mu);
    if (--blas_active == 0 && blas_saved != 1) openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_mu);
}

int pika_forward(pika_ctx *c, const int32_t *tokens, int n, const pika_forward_req *req) {
    blas_single_begin();
    int rc = forward(c, tokens, n, 1, NULL, req);
    blas_single_end();
    return rc;
}

int pika_forward_packed(pika_ctx *c, const int32_t *tokens, int n_seq, const int *seq_len, const pika_forward_req *req) {
    if (n_seq <= 0 || !seq_len) return pika_set_error("forward packed: no sequences");
    int64_t n = 0;
    for (int s = 0; s < n_seq; s++) {
        if (seq_len[s] <= 0) return pika_set_error("forward packed: sequence %d has %d tokens (must be >= 1)", s, seq_len[s]);
        n += seq_len[s];
    }
    if (n > (1 << 24)) return pika_set_error("forward packed: %lld tokens in one pack (at most 2^24)", (long long)n);
    blas_single_begin();
    int rc = forward(c, tokens, (int)n, n_seq, seq_len, req);
    blas_single_end();
    return rc;
}

static int forward(pika_ctx *c, const int32_t *tokens, int n, int n_seq, const int *seq_len, const pika_forward_req *req) {
    const pika_model *m = c->m;
    const pika_hparams *hp = &m->hp;
    const int E = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv, D = hp->head_dim;
    const int qw = H * D, kvw = Hkv * D;
    const int packed = seq_len != NULL;
    if (n <= 0) return pika_set_error("forward: no tokens");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return pika_set_error("token id %d at position %d is out of range [0, %d)", tokens[i], i, hp->n_vocab);
    if ((int64_t)c->n_past + n > (1 << 24)) return pika_set_error("context too long (%d tokens)", c->n_past + n);

    /* which layers / positions to capture */
    int n_layers = 0, n_pos = 0, *all_layers = NULL, *all_pos = NULL;
    const int *layers = NULL, *pos = NULL;
    if (req && req->hidden) {
        if (req->n_layers < 0) {
            n_layers = hp->n_layer + 1;
            all_layers = pika_malloc(sizeof(int) * (size_t)n_layers);
            for (int i = 0; i < n_layers; i++) all_layers[i] = i;
            layers = all_layers;
        } else {
            n_layers = req->n_layers;
            layers = req->layers;
        }
        if (req->n_pos < 0) {
            n_pos = n;
            all_pos = pika_malloc(sizeof(int) * (size_t)n);
            for (int i = 0; i < n; i++) all_pos[i] = i;
            pos = all_pos;
        } else {
            n_pos = req->n_pos;
            pos = req->positions;
        }
        for (int i = 0; i < n_layers; i++)
            if (layers[i] < 0 || layers[i] > hp->n_layer) {
                free(all_layers); free(all_pos);
                return pika_set_error("requested layer %d is outside [0, %d]", layers[i], hp->n_layer);
            }
        for (int i = 0; i < n_pos; i++)
            if (pos[i] >= n || pos[i] < (packed ? 0 : -n)) {
                free(all_layers); free(all_pos);
                if (packed)
                    return pika_set_error("requested position %d is outside the %d packed tokens (packed positions "
                                          "index the concatenated tokens: 0 .. %d)", pos[i], n, n - 1);
                return pika_set_error("requested position %d is outside a batch of %d tokens", pos[i], n);
            }
    }
    int last_layer = hp->n_layer; /* blocks to run */
    if (!(req && req->logits)) {
        last_layer = 0;
        for (int i = 0; i < n_layers; i++) last_layer = layers[i] > last_layer ? layers[i] : last_layer;
    }
    if (c->n_past > 0 && last_layer > c->kv_layers) {
        free(all_layers); free(all_pos);
        return pika_set_error("the context's KV cache is filled for %d of %d blocks only (an earlier pass over its %d "
                              "tokens stopped early); this pass needs %d: reset or truncate the context to 0 first",
                              c->kv_layers, hp->n_layer, c->n_past, last_layer);
    }

    ensure_capacity(c, n);
    /* packed: sequence starts; RoPE position of row t = n_past + its offset in its sequence */
    int *seq_start = NULL, *offs = NULL;
    if (packed) {
        seq_start = pika_malloc(sizeof(int) * (size_t)n_seq);
        offs = pika_malloc(sizeof(int) * (size_t)n);
        for (int s = 0, t = 0; s < n_seq; s++) {
            seq_start[s] = t;
            for (int i = 0; i < seq_len[s]; i++) offs[t++] = i;
        }
    }
    /* embeddings */
    const size_t erow = pika_row_bytes(m->tok_embd->type, E);
    for (int t = 0; t < n; t++)
        pika_dequantize_row(m->tok_embd->type, (const uint8_t *)m->tok_embd->data + (size_t)tokens[t] * erow,
                            c->x + (size_t)t * E, E);
    if (n_layers) capture(c, req, 0, n, layers, n_layers, pos, n_pos);
    /* RoPE angles depend only on (position, pair): computed once, shared by every head and layer */
    for (int t = 0; t < n; t++)
        for (int i = 0; i < D / 2; i++) {
            double a = (double)(c->n_past + (packed ? offs[t] : t)) * m->rope_inv_freq[i];
            c->rope_cos[(size_t)t * (D / 2) + i] = (float)cos(a);
            c->rope_sin[(size_t)t * (D / 2) + i] = (float)sin(a);
        }

    for (int l = 0; l < last_layer; l++) {
        const layer_weights *w = &m->layers[l];
        /* attention */
        rmsnorm_rows(c->pool, c->xn, c->x, w->attn_norm, n, E, hp->rms_eps);
        const pika_gguf_tensor *qkv_w[3] = {w->wq, w->wk, w->wv};
        float *qkv_y[3] = {c->q, c->k, c->v};
        matmul_fused(c, 3, qkv_w, qkv_y, c->xn, n, EPI_NONE, NULL);
        add_bias(c->q, w->bq, n, qw);
        add_bias(c->k, w->bk, n, kvw);
        add_bias(c->v, w->bv, n, kvw);
        for (int t = 0; t < n; t++) {
            const float *cs = c->rope_cos + (size_t)t * (D / 2), *sn = c->rope_sin + (size_t)t * (D / 2);
            for (int h = 0; h < H; h++) {
                float *qh = c->q + (size_t)t * qw + h * D;
                if (w->q_norm) rmsnorm(qh, qh, w->q_norm, D, hp->rms_eps);
                rope(qh, D, cs, sn, hp->rope_neox);
            }
            for (int h = 0; h < Hkv; h++) {
                float *kh = c->k + (size_t)t * kvw + h * D;
                if (w->k_norm) rmsnorm(kh, kh, w->k_norm, D, hp->rms_eps);
                rope(kh, D, cs, sn, hp->rope_neox);
            }
        }
        memcpy(c->k_cache[l] + (size_t)c->n_past * kvw, c->k, sizeof(float) * (size_t)n * kvw);
        memcpy(c->v_cache[l] + (size_t)c->n_past * kvw, c->v, sizeof(float) * (size_t)n * kvw);
        if (packed) {
            attn_fixed_job aj = {c, l, n_seq, seq_start, seq_len};
            pika_pool_run(c->pool, attn_fixed_worker, &aj);
        } else if (!c->blas_attn && n >= MATVEC_MAX_N) { /* prefill; decode keeps the BLAS path batch decode matches */
            int zero = 0;
            attn_fixed_job aj = {c, l, 1, &zero, &n};
            pika_pool_run(c->pool, attn_fixed_worker, &aj);
        } else {
            attn_job aj = {c, l, n};
            pika_pool_run(c->pool, attn_worker, &aj);
        }
        /* The last block of a pass that returns only some positions' hidden states (extraction: the EOI
         * tokens): its K/V rows are in the cache for every token, and the rest of the block (Wo and the
         * feed-forward, ~93% of its multiplies) runs on the requested rows only, gathered (att into q,
         * x into xsel) and scattered back. Each row's result is the full pass's: every matmul is
         * row-independent and stays on the batch path (at least MATVEC_MAX_N rows). */
        const int trim = l == last_layer - 1 && !(req && req->logits) && n_layers > 0 && n_pos >= MATVEC_MAX_N &&
                         2 * n_pos <= n;
        float *xb = c->x, *ab = c->att, *xsel = NULL;
        int nb = n;
        if (trim) {
            xsel = pika_malloc(sizeof(float) * (size_t)n_pos * E);
            for (int i = 0; i < n_pos; i++) {
                int p = pos_row(pos[i], n);
                memcpy(c->q + (size_t)i * qw, c->att + (size_t)p * qw, sizeof(float) * (size_t)qw);
                memcpy(xsel + (size_t)i * E, c->x + (size_t)p * E, sizeof(float) * (size_t)E);
            }
            xb = xsel, ab = c->q, nb = n_pos;
        }
        matmul_fused(c, 1, &w->wo, &c->xn, ab, nb, EPI_ADD, xb); /* x += att · Woᵀ */
        /* feed-forward: down(silu(gate(xn)) * up(xn)) */
        rmsnorm_rows(c->pool, c->xn, xb, w->ffn_norm, nb, E, hp->rms_eps);
        const pika_gguf_tensor *gu_w[2] = {w->w_gate, w->w_up};
        float *gu_y[2] = {c->gate, c->up};
        matmul_fused(c, 2, gu_w, gu_y, c->xn, nb, EPI_SWIGLU, NULL); /* gate := silu(gate) * up */
        matmul_fused(c, 1, &w->w_down, &c->xn, c->gate, nb, EPI_ADD, xb); /* x += gate · W_downᵀ */
        if (trim) {
            for (int i = 0; i < n_pos; i++) {
                int p = pos_row(pos[i], n);
                memcpy(c->x + (size_t)p * E, xsel + (size_t)i * E, sizeof(float) * (size_t)E);
            }
            free(xsel);
        }
        if (n_layers) capture(c, req, l + 1, n, layers, n_layers, pos, n_pos);
    }
    if (!packed) {
        /* an early stop keeps the tokens; only the blocks it ran hold their K/V rows */
        if (c->n_past == 0 || last_layer < c->kv_layers) c->kv_layers = last_layer;
        c->n_past += n;
    } /* packed: the rows after n_past were scratch; the context still holds its prefix */
    if (req && req->logits) {
        /* normed last row of each sequence: [n_seq, E] in xn (n_seq <= n rows), then [n_seq, V] logits */
        for (int s = 0, end = 0; s < n_seq; s++) {
            end += packed ? seq_len[s] : n;
            rmsnorm(c->xn + (size_t)s * E, c->x + (size_t)(end - 1) * E, m->output_norm, E, hp->rms_eps);
        }
        matmul(c, m->output, c->xn, req->logits, n_seq);
    }
    free(seq_start);
    free(offs);
    free(all_layers);
    free(all_pos);
    return 0;
}

/* ---------------------------------------------------------------- several sequences (pika_batch) */

typedef struct {
    float **k, **v; /* [L][cap, Hkv*D] */
    int cap, n_past;
} batch_seq;

struct pika_batch {
    pika_ctx *c;      /* the pool, prefill scratch and weight buffers; its own KV cache stays empty */
    float **c_k, **c_v; /* the context's own (empty) cache arrays, restored after each prefill */
    int n_seq, n_ctx;
    batch_seq *seq;
    int scratch_n;    /* rows the decode scratch fits */
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *rope_cos, *rope_sin;
    float **scores;   /* per thread [n_ctx] */
};

pika_batch *pika_batch_new(pika_model *m, int n_seq, int n_ctx, int n_threads) {
    if (n_seq < 1 || n_seq > 4096) { pika_set_error("batch: n_seq must be in [1, 4096], got %d", n_seq); return NULL; }
    if (n_ctx < 1 || n_ctx > (1 << 24)) { pika_set_error("batch: n_ctx must be in [1, 2^24], got %d", n_ctx); return NULL; }
    pika_batch *b = pika_calloc(1, sizeof *b);
    b->c = pika_ctx_new(m, n_threads);
    b->c_k = b->c->k_cache;
    b->c_v = b->c->v_cache;
    b->n_seq = n_seq;
    b->n_ctx = n_ctx;
    b->seq = pika_calloc((size_t)n_seq, sizeof *b->seq);
    for (int s = 0; s < n_seq; s++) {
        b->seq[s].k = pika_calloc((size_t)m->hp.n_layer, sizeof(float *));
        b->seq[s].v = pika_calloc((size_t)m->hp.n_layer, sizeof(float *));
    }
    b->scores = pika_calloc((size_t)pika_pool_size(b->c->pool), sizeof(float *));
    return b;
}

void pika_batch_free(pika_batch *b) {
    if (!b) return;
    const int L = b->c->m->hp.n_layer;
    for (int s = 0; s < b->n_seq; s++) {
        for (int l = 0; l < L; l++) { free(b->seq[s].k[l]); free(b->seq[s].v[l]); }
        free(b->seq[s].k);
        free(b->seq[s].v);
    }
    free(b->seq);
    for (int i = 0; i < pika_pool_size(b->c->pool); i++) free(b->scores[i]);
    free(b->scores);
    free(b->x); free(b->xn); free(b->q); free(b->k); free(b->v); free(b->att); free(b->gate); free(b->up);
    free(b->rope_cos); free(b->rope_sin);
    b->c->k_cache = b->c_k;
    b->c->v_cache = b->c_v;
    b->c->cap = 0;
    pika_ctx_free(b->c);
    free(b);
}

int pika_batch_n_seq(const pika_batch *b) { return b->n_seq; }
int pika_batch_n_ctx(const pika_batch *b) { return b->n_ctx; }
const pika_model *pika_batch_model(const pika_batch *b) { return b->c->m; }
int pika_batch_n_past(const pika_batch *b, int seq) { return seq >= 0 && seq < b->n_seq ? b->seq[seq].n_past : -1; }

void pika_batch_seq_reset(pika_batch *b, int seq) {
    if (seq >= 0 && seq < b->n_seq) b->seq[seq].n_past = 0;
}

void pika_batch_seq_truncate(pika_batch *b, int seq, int n) {
    if (seq >= 0 && seq < b->n_seq && n >= 0 && n < b->seq[seq].n_past) b->seq[seq].n_past = n;
}

size_t pika_batch_kv_bytes(const pika_batch *b) {
    const pika_hparams *hp = &b->c->m->hp;
    size_t per_tok = 2 * sizeof(float) * (size_t)hp->n_head_kv * hp->head_dim * (size_t)hp->n_layer, t = 0;
    for (int s = 0; s < b->n_seq; s++) t += (size_t)b->seq[s].cap * per_tok;
    return t;
}

/* Grow a slot's cache to hold need tokens (doubling, capped at n_ctx). */
static void seq_reserve(pika_batch *b, batch_seq *s, int need) {
    if (need <= s->cap) return;
    const pika_hparams *hp = &b->c->m->hp;
    const size_t kvw = (size_t)hp->n_head_kv * hp->head_dim;
    int cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    if (cap > b->n_ctx) cap = b->n_ctx;
    if (cap < need) cap = need;
    for (int l = 0; l < hp->n_layer; l++) {
        s->k[l] = pika_realloc(s->k[l], sizeof(float) * kvw * (size_t)cap);
        s->v[l] = pika_realloc(s->v[l], sizeof(float) * kvw * (size_t)cap);
    }
    s->cap = cap;
}

int pika_batch_seq_copy(pika_batch *b, int dst, int src, int n) {
    if (dst < 0 || dst >= b->n_seq || src < 0 || src >= b->n_seq || dst == src)
        return pika_set_error("batch: cannot copy slot %d into slot %d", src, dst);
    batch_seq *s = &b->seq[src], *d = &b->seq[dst];
    if (n < 0 || n > s->n_past) return pika_set_error("batch: slot %d holds %d tokens, cannot copy %d", src, s->n_past, n);
    const pika_hparams *hp = &b->c->m->hp;
    const size_t kvw = (size_t)hp->n_head_kv * hp->head_dim;
    seq_reserve(b, d, n);
    for (int l = 0; l < hp->n_layer; l++) {
        memcpy(d->k[l], s->k[l], sizeof(float) * kvw * (size_t)n);
        memcpy(d->v[l], s->v[l], sizeof(float) * kvw * (size_t)n);
    }
    d->n_past = n;
    return 0;
}

int pika_batch_prefill(pika_batch *b, int seq, const int32_t *tokens, int n, const pika_forward_req *req) {
    if (seq < 0 || seq >= b->n_seq) return pika_set_error("batch: no slot %d (slots 0..%d)", seq, b->n_seq - 1);
    batch_seq *s = &b->seq[seq];
    if (n <= 0) return pika_set_error("forward: no tokens");
    if ((int64_t)s->n_past + n > b->n_ctx)
        return pika_set_error("context overflow: %d + %d tokens do not fit in a slot of %d", s->n_past, n, b->n_ctx);
    seq_reserve(b, s, s->n_past + n);
    /* run the single-sequence forward pass on the slot's cache */
    pika_ctx *c = b->c;
    c->k_cache = s->k;
    c->v_cache = s->v;
    c->cap = s->cap;
    c->n_past = s->n_past;
    c->kv_layers = c->m->hp.n_layer; /* a slot's cache is always filled for every block */
    int rc = pika_forward(c, tokens, n, req);
    /* an early-stopped pass (hidden states only) leaves the deeper blocks unfilled: the slot then
     * forgets its tokens rather than keep a half-filled cache */
    s->n_past = c->kv_layers < c->m->hp.n_layer ? 0 : c->n_past;
    c->kv_layers = c->m->hp.n_layer;
    s->cap = c->cap; /* unchanged: the slot was reserved above */
    c->k_cache = b->c_k;
    c->v_cache = b->c_v;
    c->cap = 0;
    c->n_past = 0;
    return rc;
}

static void batch_scratch(pika_batch *b, int n) {
    if (n <= b->scratch_n) return;
    const pika_hparams *hp = &b->c->m->hp;
    size_t qw = (size_t)hp->n_head * hp->head_dim, kvw = (size_t)hp->n_head_kv * hp->head_dim;
#define GROW(p, w) (p = pika_realloc(p, sizeof(float) * (size_t)n * (w)))
    GROW(b->x, (size_t)hp->n_embd); GROW(b->xn, qw > (size_t)hp->n_embd ? qw : (size_t)hp->n_embd); GROW(b->q, qw);
    GROW(b->k, kvw); GROW(b->v, kvw); GROW(b->att, qw); GROW(b->gate, (size_t)hp->n_ff); GROW(b->up, (size_t)hp->n_ff);
    GROW(b->rope_cos, (size_t)hp->head_dim / 2); GROW(b->rope_sin, (size_t)hp->head_dim / 2);
#undef GROW
    b->scratch_n = n;
}

/* Y_k[i] = W_k · X[i] for rows i < n, each matrix split into row blocks that stay in cache while every
 * row's matvec runs over them; per output row the kernel is the one single-sequence decode uses for that
 * weight type (matmul_worker): pika_matvec, or, unless the context is exact, the 8-bit-activation integer
 * dot pika_matvec_q8 — so a batched slot gets bit for bit the logits of a lone decode. */
typedef struct {
    int count, n;
    int exact;
    const pika_gguf_tensor *W[MAX_FUSED];
    float *Y[MAX_FUSED];
    const float *X;
} batch_mm_job;

#define BATCH_BLOCK_BYTES (64 * 1024)

static void batch_mm_worker(void *arg, int ith, int nth) {
    batch_mm_job *j = arg;
    for (int k = 0; k < j->count; k++) {
        const pika_gguf_tensor *W = j->W[k];
        const int64_t in = W->ne[0], out = W->ne[1];
        const int64_t r0 = out * ith / nth, r1 = out * (ith + 1) / nth;
        if (r1 <= r0) continue;
        const size_t rb = pika_row_bytes(W->type, in);
        int64_t blk = (int64_t)(BATCH_BLOCK_BYTES / (rb ? rb : 1));
        if (blk < 4) blk = 4;
        uint8_t *xq = NULL; /* [n, q8 row] the rows' 8-bit activations, when the q8 kernel applies */
        size_t qb = 0;
        if (!j->exact && pika_q8_preferred(W->type) && in % 32 == 0) {
            qb = pika_q8_act_bytes(in);
            xq = pika_malloc(qb * (size_t)j->n);
            for (int i = 0; i < j->n; i++) pika_quantize_act_q8(j->X + (size_t)i * in, xq + qb * (size_t)i, in);
        }
        for (int64_t b0 = r0; b0 < r1; b0 += blk) {
            int64_t b1 = b0 + blk < r1 ? b0 + blk : r1;
            for (int i = 0; i < j->n; i++) {
                if (xq) pika_matvec_q8(W->type, W->data, xq + qb * (size_t)i, j->Y[k] + (size_t)i * out, in, b0, b1);
                else pika_matvec(W->type, W->data, j->X + (size_t)i * in, j->Y[k] + (size_t)i * out, in, b0, b1);
            }
        }
        free(xq);
    }
}

static void batch_matmul(pika_batch *b, int count, const pika_gguf_tensor *const *W, float *const *Y, const float *X, int n) {
    batch_mm_job j = {.count = count, .n = n, .exact = b->c->exact, .X = X};
    for (int k = 0; k < count; k++) { j.W[k] = W[k]; j.Y[k] = Y[k]; }
    pika_pool_run(b->c->pool, batch_mm_worker, &j);
}

typedef struct {
    pika_batch *b;
    int layer, n;
    const int *seqs;
} batch_attn_job;

/* One query per slot: for each (slot, head) pair, the computation attn_worker does for a batch of one
 * token (same BLAS calls, same softmax), over the slot's own cache. */
static void batch_attn_worker(void *arg, int ith, int nth) {
    batch_attn_job *j = arg;
    pika_batch *b = j->b;
    const pika_hparams *hp = &b->c->m->hp;
    const int H = hp->n_head, D = hp->head_dim, group = H / hp->n_head_kv;
    const int qw = H * D, kvw = hp->n_head_kv * D;
    const float scale = 1.0f / sqrtf((float)D);
    float *S = b->scores[ith];
    for (int p = ith; p < j->n * H; p += nth) {
        const int i = p / H, h = p % H, g = h / group;
        const batch_seq *s = &b->seq[j->seqs[i]];
        const float *K = s->k[j->layer], *V = s->v[j->layer];
        const int tk = s->n_past + 1;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 1, tk, D, scale, b->q + (size_t)i * qw + h * D, qw,
                    K + g * D, kvw, 0.0f, S, tk);
        pika_vm_softmax(S, tk); /* as attn_worker */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, D, tk, 1.0f, S, tk, V + g * D, kvw, 0.0f,
                    b->att + (size_t)i * qw + h * D, qw);
    }
}

static int batch_decode(pika_batch *b, int n, const int *seqs, const int32_t *tokens, float *logits) {
    const pika_model *m = b->c->m;
    const pika_hparams *hp = &m->hp;
    const int E = hp->n_embd, H = hp->n_head, Hkv = hp->n_head_kv, D = hp->head_dim, F = hp->n_ff;
    const int qw = H * D, kvw = Hkv * D;
    if (n <= 0) return pika_set_error("batch decode: no sequences");
    if (n > b->n_seq) return pika_set_error("batch decode: %d sequences, the batch has %d slots", n, b->n_seq);
    int max_tk = 0;
    for (int i = 0; i < n; i++) {
        if (seqs[i] < 0 || seqs[i] >= b->n_seq) return pika_set_error("batch decode: no slot %d", seqs[i]);
        for (int k = 0; k < i; k++)
            if (seqs[k] == seqs[i]) return pika_set_error("batch decode: slot %d appears twice", seqs[i]);
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return pika_set_error("token id %d (slot %d) is out of range [0, %d)", tokens[i], seqs[i], hp->n_vocab);
        if (b->seq[seqs[i]].n_past + 1 > b->n_ctx)
            return pika_set_error("context overflow: slot %d already holds %d tokens (limit %d)", seqs[i], b->seq[seqs[i]].n_past, b->n_ctx);
        if (b->seq[seqs[i]].n_past + 1 > max_tk) max_tk = b->seq[seqs[i]].n_past + 1;
    }
    batch_scratch(b, n);
    for (int i = 0; i < n; i++) seq_reserve(b, &b->seq[seqs[i]], b->seq[seqs[i]].n_past + 1);
    const int nth = pika_pool_size(b->c->pool);
    for (int t = 0; t < nth; t++) b->scores[t] = pika_realloc(b->scores[t], sizeof(float) * (size_t)max_tk);

    const size_t erow = pika_row_bytes(m->tok_embd->type, E);
    for (int i = 0; i < n; i++) {
        pika_dequantize_row(m->tok_embd->type, (const uint8_t *)m->tok_embd->data + (size_t)tokens[i] * erow,
                            b->x + (size_t)i * E, E);
        const int pos = b->seq[seqs[i]].n_past;
        for (int k = 0; k < D / 2; k++) {
            double a = (double)pos * m->rope_inv_freq[k];
            b->rope_cos[(size_t)i * (D / 2) + k] = (float)cos(a);
            b->rope_sin[(size_t)i * (D / 2) + k] = (float)sin(a);
        }
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const layer_weights *w = &m->layers[l];
        for (int i = 0; i < n; i++) rmsnorm(b->xn + (size_t)i * E, b->x + (size_t)i * E, w->attn_norm, E, hp->rms_eps);
        const pika_gguf_tensor *qkv_w[3] = {w->wq, w->wk, w->wv};
        float *qkv_y[3] = {b->q, b->k, b->v};
        batch_matmul(b, 3, qkv_w, qkv_y, b->xn, n);
        add_bias(b->q, w->bq, n, qw);
        add_bias(b->k, w->bk, n, kvw);
        add_bias(b->v, w->bv, n, kvw);
        for (int i = 0; i < n; i++) {
            const float *cs = b->rope_cos + (size_t)i * (D / 2), *sn = b->rope_sin + (size_t)i * (D / 2);
            for (int h = 0; h < H; h++) {
                float *qh = b->q + (size_t)i * qw + h * D;
                if (w->q_norm) rmsnorm(qh, qh, w->q_norm, D, hp->rms_eps);
                rope(qh, D, cs, sn, hp->rope_neox);
            }
            for (int h = 0; h < Hkv; h++) {
                float *kh = b->k + (size_t)i * kvw + h * D;
                if (w->k_norm) rmsnorm(kh, kh, w->k_norm, D, hp->rms_eps);
                rope(kh, D, cs, sn, hp->rope_neox);
            }
            batch_seq *s = &b->seq[seqs[i]];
            memcpy(s->k[l] + (size_t)s->n_past * kvw, b->k + (size_t)i * kvw, sizeof(float) * (size_t)kvw);
            memcpy(s->v[l] + (size_t)s->n_past * kvw, b->v + (size_t)i * kvw, sizeof(float) * (size_t)kvw);
        }
        batch_attn_job aj = {b, l, n, seqs};
        pika_pool_run(b->c->pool, batch_attn_worker, &aj);
        const pika_gguf_tensor *wo = w->wo;
        batch_matmul(b, 1, &wo, &b->xn, b->att, n);
        for (size_t i = 0; i < (size_t)n * E; i++) b->x[i] += b->xn[i];
        for (int i = 0; i < n; i++) rmsnorm(b->xn + (size_t)i * E, b->x + (size_t)i * E, w->ffn_norm, E, hp->rms_eps);
        const pika_gguf_tensor *gu_w[2] = {w->w_gate, w->w_up};
        float *gu_y[2] = {b->gate, b->up};
        batch_matmul(b, 2, gu_w, gu_y, b->xn, n);
        pika_vm_swiglu(b->gate, b->up, (size_t)n * F); /* the function forward's epilogue applies */
        const pika_gguf_tensor *wd = w->w_down;
        batch_matmul(b, 1, &wd, &b->xn, b->gate, n);
        for (size_t i = 0; i < (size_t)n * E; i++) b->x[i] += b->xn[i];
    }
    for (int i = 0; i < n; i++) b->seq[seqs[i]].n_past++;
    for (int i = 0; i < n; i++) rmsnorm(b->xn + (size_t)i * E, b->x + (size_t)i * E, m->output_norm, E, hp->rms_eps);
    const pika_gguf_tensor *wout = m->output;
    batch_matmul(b, 1, &wout, &logits, b->xn, n);
    return 0;
}

int pika_batch_decode(pika_batch *b, int n, const int *seqs, const int32_t *tokens, float *logits) {
    blas_single_begin();
    int rc = batch_decode(b, n, seqs, tokens, logits);
    blas_single_end();
    return rc;
}
