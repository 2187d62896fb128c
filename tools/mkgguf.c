/* mkgguf.c — write a random-weight GGUF model (llama / qwen2 / qwen3) of a given shape and tensor
 * type, for benchmarks and tests. Standard llama.cpp tensor names and metadata keys, plus a
 * minimal "llama" (SPM) tokenizer of n_vocab tokens (<unk> <s> </s>, 256 byte tokens, then
 * made-up pieces) so the model loads in pika and llama.cpp.
 *
 *   mkgguf --arch llama|qwen2|qwen3 --type F32|F16|BF16|Q8_0|Q4_0|Q4_1|Q5_0|Q5_1|Q4_K|Q5_K|Q6_K|Q4_K_M
 *          [--preset qwen2.5-0.5b|tiny] [--seed N] [--threads N] --out FILE.gguf
 *          [--n-embd N --n-layer N --n-head N --n-head-kv N --n-ff N --n-vocab N --head-dim N
 *           --ctx N --rope-base F --eps F --tied | --untied]
 *          [--vocab-from VOCAB.gguf] [--chat-template-name NAME | --chat-template-file FILE]
 *
 * --vocab-from copies every tokenizer.* key of VOCAB.gguf (e.g. llama.cpp's ggml-vocab-qwen2.gguf:
 * model, pre, tokens, token_type, merges, special ids, add_bos, chat_template...) instead of the
 * dummy tokenizer; n_vocab becomes its token count (--n-vocab must agree when given).
 * --chat-template-name writes pika's built-in template NAME (pika prompt --list-templates) as
 * tokenizer.chat_template, --chat-template-file the bytes of FILE; either replaces a copied one.
 *
 * Weights: matrices N(0, 1/n_in) (rows of n_in inputs), token embedding N(0, 0.15^2), norm weights
 * 1 + N(0, 0.05^2), q/k/v biases N(0, 0.1^2); norms and biases are always F32.
 * Row i of tensor t is drawn from an RNG seeded by (seed, t, i), so the file does not depend on
 * --threads. K-quant types need rows that are multiples of 256; other rows fall back as in
 * llama.cpp: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0.
 * Q4_K_M approximates llama.cpp's mix: Q6_K for output.weight (token_embd when tied), for attn_v
 * and ffn_down in layers where llama.cpp's use_more_bits() holds (first and last eighth, every
 * third in between), Q4_K elsewhere; then the fallbacks above.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/chat.h"
#include "pika/gguf.h"
#include "pika/gguf_write.h"
#include "pika/quant.h"
#include "pika/util.h"

typedef struct {
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, head_dim, ctx, tied;
    float rope_base, eps;
} hparams;

/* ---------------------------------------------------------------- per-row RNG */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s;
} rng;
static inline double rng_unif(rng *r) { return (double)(mix64(r->s += 0x9E3779B97F4A7C15ull) >> 11) / 9007199254740992.0; }

/* Fill x[0..n) with N(mean, sd^2). */
static void fill_normal(rng *r, float *x, int64_t n, float mean, float sd) {
    for (int64_t i = 0; i < n; i += 2) {
        double u = rng_unif(r), v = rng_unif(r);
        if (u < 1e-300) u = 1e-300;
        double m = sqrt(-2 * log(u));
        x[i] = mean + sd * (float)(m * cos(6.283185307179586 * v));
        if (i + 1 < n) x[i + 1] = mean + sd * (float)(m * sin(6.283185307179586 * v));
    }
}

/* ---------------------------------------------------------------- threaded tensor generation */
typedef struct {
    uint32_t type;
    int64_t ne0, rows;
    float mean, sd;
    uint64_t seed;
    uint8_t *out;
    int64_t r0, r1;
    int failed;
} job;

static void *gen_rows(void *arg) {
    job *j = arg;
    float *row = pika_malloc((size_t)j->ne0 * sizeof(float));
    size_t rb = pika_row_bytes(j->type, j->ne0);
    for (int64_t r = j->r0; r < j->r1; r++) {
        rng g = {mix64(j->seed ^ mix64((uint64_t)r + 0x1234567ull))};
        fill_normal(&g, row, j->ne0, j->mean, j->sd);
        if (pika_quantize_row(j->type, row, j->out + (size_t)r * rb, j->ne0)) j->failed = 1;
    }
    free(row);
    return NULL;
}

static int n_threads = 1;

static int add_random(pika_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                      float mean, float sd, uint64_t seed, uint64_t tensor_idx) {
    int64_t rows = n_dims > 1 ? ne[1] : 1;
    size_t nbytes = pika_row_bytes(type, ne[0]) * (size_t)rows;
    uint8_t *out = pika_malloc(nbytes);
    int nt = n_threads < rows ? n_threads : (int)rows;
    if (nt < 1) nt = 1;
    job jobs[64];
    pthread_t th[64];
    if (nt > 64) nt = 64;
    for (int t = 0; t < nt; t++) {
        jobs[t] = (job){type, ne[0], rows, mean, sd, mix64(seed * 1000003ull + tensor_idx), out,
                        rows * t / nt, rows * (t + 1) / nt, 0};
        pthread_create(&th[t], NULL, gen_rows, &jobs[t]);
    }
    int failed = 0;
    for (int t = 0; t < nt; t++) {
        pthread_join(th[t], NULL);
        failed |= jobs[t].failed;
    }
    int rc = failed ? -1 : pika_gguf_add_tensor_raw(w, name, type, n_dims, ne, out, nbytes);
    free(out);
    return rc;
}

/* ---------------------------------------------------------------- type mix */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* llama.cpp's fallback for rows that are not a multiple of 256. */
static uint32_t fallback(uint32_t t, int64_t ne0) {
    if (ne0 % 256 == 0) return t;
    if (t == PIKA_TYPE_Q4_K) return PIKA_TYPE_Q5_0;
    if (t == PIKA_TYPE_Q5_K) return PIKA_TYPE_Q5_1;
    if (t == PIKA_TYPE_Q6_K) return PIKA_TYPE_Q8_0;
    return t;
}

/* kind: 0 other matrix, 1 attn_v, 2 ffn_down, 3 output (or tied embedding). */
static uint32_t matrix_type(uint32_t base, int q4km, int kind, int layer, int n_layer, int64_t ne0) {
    uint32_t t = base;
    if (q4km) {
        t = PIKA_TYPE_Q4_K;
        if (kind == 3) t = PIKA_TYPE_Q6_K;
        if ((kind == 1 || kind == 2) && use_more_bits(layer, n_layer)) t = PIKA_TYPE_Q6_K;
    }
    return fallback(t, ne0);
}

static uint32_t file_type_of(const char *tname) {
    static const struct { const char *n; uint32_t ft; } F[] = {
        {"F32", 0}, {"F16", 1}, {"Q4_0", 2}, {"Q4_1", 3}, {"Q8_0", 7}, {"Q5_0", 8}, {"Q5_1", 9},
        {"Q4_K", 14}, {"Q4_K_M", 15}, {"Q5_K", 16}, {"Q6_K", 18}, {"BF16", 32},
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++)
        if (!strcmp(F[i].n, tname)) return F[i].ft;
    return 0;
}

/* ---------------------------------------------------------------- tokenizer */
static void add_tokenizer(pika_gguf_writer *w, int n_vocab) {
    char **tok = pika_malloc((size_t)n_vocab * sizeof(char *));
    float *score = pika_malloc((size_t)n_vocab * sizeof(float));
    int32_t *ttype = pika_malloc((size_t)n_vocab * sizeof(int32_t));
    for (int i = 0; i < n_vocab; i++) {
        char b[64];
        if (i == 0) snprintf(b, sizeof b, "<unk>"), ttype[i] = 2;
        else if (i == 1) snprintf(b, sizeof b, "<s>"), ttype[i] = 3;
        else if (i == 2) snprintf(b, sizeof b, "</s>"), ttype[i] = 3;
        else if (i < 3 + 256) snprintf(b, sizeof b, "<0x%02X>", i - 3), ttype[i] = 6;
        else {
            /* "\u2581" (SPM word start) on even ids, then the id in base 26 letters: unique */
            int k = 0, v = i - 259;
            if (i % 2 == 0) { b[k++] = (char)0xE2; b[k++] = (char)0x96; b[k++] = (char)0x81; }
            do { b[k++] = (char)('a' + v % 26); v /= 26; } while (v && k < 60);
            b[k] = 0;
            ttype[i] = 1;
        }
        tok[i] = pika_strdup(b);
        score[i] = i < 259 ? 0.0f : -(float)(i - 259) / 100.0f;
    }
    pika_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (size_t)n_vocab);
    pika_gguf_set_arr_f32(w, "tokenizer.ggml.scores", score, (size_t)n_vocab);
    pika_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", ttype, (size_t)n_vocab);
    pika_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    pika_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    pika_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    pika_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    for (int i = 0; i < n_vocab; i++) free(tok[i]);
    free(tok);
    free(score);
    free(ttype);
}

/* Copy every tokenizer.* key of v into w; returns the token count (length of tokenizer.ggml.tokens). */
static int copy_tokenizer(pika_gguf_writer *w, const pika_gguf *v, const char *path) {
    int n_copied = 0;
    for (uint64_t i = 0; i < v->n_kv; i++) {
        const pika_gguf_kv *kv = &v->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10)) continue;
        char *key = pika_malloc(kv->key.len + 1);
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = 0;
        const pika_gguf_value *x = &kv->val;
        switch (x->type) {
        case PIKA_GGUF_UINT8: pika_gguf_set_u8(w, key, (uint8_t)x->v.u64); break;
        case PIKA_GGUF_INT8: pika_gguf_set_i8(w, key, (int8_t)x->v.i64); break;
        case PIKA_GGUF_UINT16: pika_gguf_set_u16(w, key, (uint16_t)x->v.u64); break;
        case PIKA_GGUF_INT16: pika_gguf_set_i16(w, key, (int16_t)x->v.i64); break;
        case PIKA_GGUF_UINT32: pika_gguf_set_u32(w, key, (uint32_t)x->v.u64); break;
        case PIKA_GGUF_INT32: pika_gguf_set_i32(w, key, (int32_t)x->v.i64); break;
        case PIKA_GGUF_UINT64: pika_gguf_set_u64(w, key, x->v.u64); break;
        case PIKA_GGUF_INT64: pika_gguf_set_i64(w, key, x->v.i64); break;
        case PIKA_GGUF_FLOAT32: pika_gguf_set_f32(w, key, (float)x->v.f64); break;
        case PIKA_GGUF_FLOAT64: pika_gguf_set_f64(w, key, x->v.f64); break;
        case PIKA_GGUF_BOOL: pika_gguf_set_bool(w, key, x->v.b); break;
        case PIKA_GGUF_STRING: {
            if (memchr(x->v.str.ptr, 0, x->v.str.len)) pika_die("%s: %s holds a NUL byte", path, key);
            char *s = pika_malloc(x->v.str.len + 1);
            memcpy(s, x->v.str.ptr, x->v.str.len);
            s[x->v.str.len] = 0;
            pika_gguf_set_str(w, key, s);
            free(s);
            break;
        }
        case PIKA_GGUF_ARRAY:
            if (x->v.arr.type == PIKA_GGUF_STRING) {
                uint64_t n = x->v.arr.n;
                char **a = pika_malloc((n ? n : 1) * sizeof(char *));
                for (uint64_t k = 0; k < n; k++) {
                    const pika_str *e = &x->v.arr.items[k].v.str;
                    if (memchr(e->ptr, 0, e->len)) pika_die("%s: %s[%llu] holds a NUL byte", path, key, (unsigned long long)k);
                    a[k] = pika_malloc(e->len + 1);
                    memcpy(a[k], e->ptr, e->len);
                    a[k][e->len] = 0;
                }
                pika_gguf_set_arr_str(w, key, (const char *const *)a, (size_t)n);
                for (uint64_t k = 0; k < n; k++) free(a[k]);
                free(a);
            } else if (x->v.arr.type == PIKA_GGUF_ARRAY) {
                pika_die("%s: %s is an array of arrays, which mkgguf does not copy", path, key);
            } else {
                pika_gguf_set_arr(w, key, x->v.arr.type, x->v.arr.data, (size_t)x->v.arr.n);
            }
            break;
        default: pika_die("%s: %s has value type %u, which mkgguf does not copy", path, key, x->type);
        }
        free(key);
        n_copied++;
    }
    const pika_gguf_value *toks = pika_gguf_get_array(v, "tokenizer.ggml.tokens");
    if (!toks || toks->v.arr.type != PIKA_GGUF_STRING || toks->v.arr.n < 3 || toks->v.arr.n > (1u << 30))
        pika_die("%s: no usable tokenizer.ggml.tokens array", path);
    fprintf(stderr, "mkgguf: %d tokenizer keys from %s (%llu tokens)\n", n_copied, path, (unsigned long long)toks->v.arr.n);
    return (int)toks->v.arr.n;
}

/* --help: usage on stdout, exit 0; a usage error: on stderr, exit 2. */
static void usage(int status) {
    fprintf(status ? stderr : stdout,
            "usage: mkgguf --arch llama|qwen2|qwen3 --type F32|F16|BF16|Q8_0|Q4_0|Q4_1|Q5_0|Q5_1|Q4_K|Q5_K|Q6_K|Q4_K_M\n"
            "              [--preset qwen2.5-0.5b|tiny] [--seed N] [--threads N] --out FILE.gguf\n"
            "              [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N] [--n-vocab N]\n"
            "              [--head-dim N] [--ctx N] [--rope-base F] [--eps F] [--tied | --untied]\n"
            "              [--vocab-from VOCAB.gguf] [--chat-template-name NAME | --chat-template-file FILE]\n"
            "  --vocab-from VOCAB.gguf    copy all tokenizer.* keys of VOCAB.gguf (n_vocab = its token count)\n"
            "  --chat-template-name NAME  write pika's built-in chat template NAME as tokenizer.chat_template\n"
            "                             (%s)\n"
            "  --chat-template-file FILE  write the bytes of FILE as tokenizer.chat_template\n",
            pika_chat_builtin_list());
    exit(status);
}

static long parse_int(const char *flag, const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v <= 0 || v > (1l << 30)) pika_die("%s: expected a positive integer, got '%s'", flag, s);
    return v;
}

int main(int argc, char **argv) {
    const char *arch = NULL, *tname = NULL, *out = NULL, *preset = "tiny";
    const char *vocab_from = NULL, *tmpl_name = NULL, *tmpl_file = NULL;
    uint64_t seed = 1;
    hparams ov = {0};
    float ov_rope = 0, ov_eps = 0;
    int ov_tied = -1;
    n_threads = pika_n_cores();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tied")) { ov_tied = 1; continue; }
        if (!strcmp(a, "--untied")) { ov_tied = 0; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) usage(0);
        if (i + 1 >= argc) pika_die("%s needs a value (see mkgguf --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--type")) tname = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) n_threads = (int)parse_int(a, v);
        else if (!strcmp(a, "--n-embd")) ov.n_embd = (int)parse_int(a, v);
        else if (!strcmp(a, "--n-layer")) ov.n_layer = (int)parse_int(a, v);
        else if (!strcmp(a, "--n-head")) ov.n_head = (int)parse_int(a, v);
        else if (!strcmp(a, "--n-head-kv")) ov.n_head_kv = (int)parse_int(a, v);
        else if (!strcmp(a, "--n-ff")) ov.n_ff = (int)parse_int(a, v);
        else if (!strcmp(a, "--n-vocab")) ov.n_vocab = (int)parse_int(a, v);
        else if (!strcmp(a, "--head-dim")) ov.head_dim = (int)parse_int(a, v);
        else if (!strcmp(a, "--ctx")) ov.ctx = (int)parse_int(a, v);
        else if (!strcmp(a, "--rope-base")) ov_rope = strtof(v, NULL);
        else if (!strcmp(a, "--eps")) ov_eps = strtof(v, NULL);
        else if (!strcmp(a, "--vocab-from")) vocab_from = v;
        else if (!strcmp(a, "--chat-template-name")) tmpl_name = v;
        else if (!strcmp(a, "--chat-template-file")) tmpl_file = v;
        else pika_die("unknown option '%s' (see mkgguf --help)", a);
    }
    if (!arch || !tname || !out) usage(2);
    int a_llama = !strcmp(arch, "llama"), a_qwen2 = !strcmp(arch, "qwen2"), a_qwen3 = !strcmp(arch, "qwen3");
    if (!a_llama && !a_qwen2 && !a_qwen3) pika_die("--arch must be llama, qwen2 or qwen3, not '%s'", arch);

    int q4km = !strcmp(tname, "Q4_K_M");
    uint32_t base = PIKA_TYPE_COUNT;
    for (uint32_t t = 0; t < PIKA_TYPE_COUNT && !q4km; t++)
        if (pika_type_supported(t) && !strcmp(pika_type_name(t), tname)) base = t;
    if (q4km) base = PIKA_TYPE_Q4_K;
    if (base == PIKA_TYPE_COUNT) pika_die("--type '%s' is not one of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M", tname);

    hparams hp;
    if (!strcmp(preset, "qwen2.5-0.5b"))
        hp = (hparams){896, 24, 14, 2, 4864, 151936, 64, 32768, 1, 1e6f, 1e-6f};
    else if (!strcmp(preset, "tiny"))
        hp = (hparams){256, 2, 4, 2, 512, 512, 64, 2048, a_llama ? 0 : 1, a_llama ? 1e4f : 1e6f, a_llama ? 1e-5f : 1e-6f};
    else
        pika_die("--preset must be qwen2.5-0.5b or tiny, not '%s'", preset);
    if (ov.n_embd) hp.n_embd = ov.n_embd;
    if (ov.n_layer) hp.n_layer = ov.n_layer;
    if (ov.n_head) hp.n_head = ov.n_head;
    if (ov.n_head_kv) hp.n_head_kv = ov.n_head_kv;
    if (ov.n_ff) hp.n_ff = ov.n_ff;
    if (ov.n_vocab) hp.n_vocab = ov.n_vocab;
    if (ov.head_dim) hp.head_dim = ov.head_dim;
    if (ov.ctx) hp.ctx = ov.ctx;
    if (ov_rope > 0) hp.rope_base = ov_rope;
    if (ov_eps > 0) hp.eps = ov_eps;
    if (ov_tied >= 0) hp.tied = ov_tied;
    if (tmpl_name && tmpl_file) pika_die("--chat-template-name and --chat-template-file exclude each other");
    char *tmpl = NULL;
    if (tmpl_name) {
        const char *t = pika_chat_builtin(tmpl_name);
        if (!t) pika_die("--chat-template-name: no built-in template '%s' (%s)", tmpl_name, pika_chat_builtin_list());
        tmpl = pika_strdup(t);
    } else if (tmpl_file) {
        size_t len;
        tmpl = pika_read_file(tmpl_file, &len);
        if (!tmpl) pika_die("%s", pika_last_error());
        if (memchr(tmpl, 0, len)) pika_die("%s: holds a NUL byte", tmpl_file);
    }
    pika_gguf *vocab = NULL;
    if (vocab_from) {
        vocab = pika_gguf_open(vocab_from);
        if (!vocab) pika_die("%s", pika_last_error());
        const pika_gguf_value *toks = pika_gguf_get_array(vocab, "tokenizer.ggml.tokens");
        if (!toks || toks->v.arr.type != PIKA_GGUF_STRING || toks->v.arr.n < 3 || toks->v.arr.n > (1u << 30))
            pika_die("%s: no usable tokenizer.ggml.tokens array", vocab_from);
        int nv = (int)toks->v.arr.n;
        if (ov.n_vocab && ov.n_vocab != nv)
            pika_die("--n-vocab %d disagrees with the %d tokens of %s", ov.n_vocab, nv, vocab_from);
        hp.n_vocab = nv;
    }
    if (hp.n_head % hp.n_head_kv) pika_die("--n-head %d is not a multiple of --n-head-kv %d", hp.n_head, hp.n_head_kv);
    if (hp.n_vocab < 3) pika_die("--n-vocab must be at least 3");
    int bl = pika_type_block_elems(base);
    int64_t q_dim = (int64_t)hp.n_head * hp.head_dim, kv_dim = (int64_t)hp.n_head_kv * hp.head_dim;
    int64_t ins[] = {hp.n_embd, q_dim, hp.n_ff};
    for (int i = 0; i < 3; i++)
        if (ins[i] % 32 && bl > 1)
            pika_die("row length %lld is not a multiple of 32, which %s needs", (long long)ins[i], tname);

    pika_gguf_writer *w = pika_gguf_writer_new();
    char key[128];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    pika_gguf_set_str(w, "general.architecture", arch);
    char name[128];
    snprintf(name, sizeof name, "pika-random-%s-%s-%s", preset, arch, tname);
    pika_gguf_set_str(w, "general.name", name);
    pika_gguf_set_u32(w, "general.file_type", file_type_of(tname));
    pika_gguf_set_u32(w, "general.quantization_version", 2);
    pika_gguf_set_u32(w, K("context_length"), (uint32_t)hp.ctx);
    pika_gguf_set_u32(w, K("embedding_length"), (uint32_t)hp.n_embd);
    pika_gguf_set_u32(w, K("block_count"), (uint32_t)hp.n_layer);
    pika_gguf_set_u32(w, K("feed_forward_length"), (uint32_t)hp.n_ff);
    pika_gguf_set_u32(w, K("attention.head_count"), (uint32_t)hp.n_head);
    pika_gguf_set_u32(w, K("attention.head_count_kv"), (uint32_t)hp.n_head_kv);
    pika_gguf_set_u32(w, K("attention.key_length"), (uint32_t)hp.head_dim);
    pika_gguf_set_u32(w, K("attention.value_length"), (uint32_t)hp.head_dim);
    pika_gguf_set_f32(w, K("attention.layer_norm_rms_epsilon"), hp.eps);
    pika_gguf_set_f32(w, K("rope.freq_base"), hp.rope_base);
    if (a_llama) {
        pika_gguf_set_u32(w, K("rope.dimension_count"), (uint32_t)hp.head_dim);
        pika_gguf_set_u32(w, K("vocab_size"), (uint32_t)hp.n_vocab);
    }
    if (vocab) {
        hp.n_vocab = copy_tokenizer(w, vocab, vocab_from);
        pika_gguf_close(vocab);
    } else {
        add_tokenizer(w, hp.n_vocab);
    }
    if (tmpl) pika_gguf_set_str(w, "tokenizer.chat_template", tmpl);
    free(tmpl);

    uint64_t ti = 0;
    int rc = 0;
    double t0 = pika_now();
    int64_t ne[2];
#define MAT(nm, kind, layer, n_in, n_out)                                                                     \
    do {                                                                                                      \
        ne[0] = (n_in); ne[1] = (n_out);                                                                      \
        uint32_t ty_ = matrix_type(base, q4km, kind, layer, hp.n_layer, ne[0]);                               \
        rc |= add_random(w, nm, ty_, 2, ne, 0.0f, 1.0f / sqrtf((float)(n_in)), seed, ti++);                   \
    } while (0)
#define VEC(nm, n, mean, sd)                                                                                  \
    do {                                                                                                      \
        ne[0] = (n);                                                                                          \
        rc |= add_random(w, nm, PIKA_TYPE_F32, 1, ne, mean, sd, seed, ti++);                                  \
    } while (0)

    ne[0] = hp.n_embd;
    ne[1] = hp.n_vocab;
    rc |= add_random(w, "token_embd.weight", matrix_type(base, q4km, hp.tied ? 3 : 0, 0, hp.n_layer, hp.n_embd), 2, ne,
                     0.0f, 0.15f, seed, ti++);
    for (int l = 0; l < hp.n_layer && !rc; l++) {
        char nm[96];
#define N(s) (snprintf(nm, sizeof nm, "blk.%d.%s", l, s), nm)
        VEC(N("attn_norm.weight"), hp.n_embd, 1.0f, 0.05f);
        MAT(N("attn_q.weight"), 0, l, hp.n_embd, q_dim);
        MAT(N("attn_k.weight"), 0, l, hp.n_embd, kv_dim);
        MAT(N("attn_v.weight"), 1, l, hp.n_embd, kv_dim);
        if (a_qwen2) {
            VEC(N("attn_q.bias"), q_dim, 0.0f, 0.1f);
            VEC(N("attn_k.bias"), kv_dim, 0.0f, 0.1f);
            VEC(N("attn_v.bias"), kv_dim, 0.0f, 0.1f);
        }
        if (a_qwen3) {
            VEC(N("attn_q_norm.weight"), hp.head_dim, 1.0f, 0.05f);
            VEC(N("attn_k_norm.weight"), hp.head_dim, 1.0f, 0.05f);
        }
        MAT(N("attn_output.weight"), 0, l, q_dim, hp.n_embd);
        VEC(N("ffn_norm.weight"), hp.n_embd, 1.0f, 0.05f);
        MAT(N("ffn_gate.weight"), 0, l, hp.n_embd, hp.n_ff);
        MAT(N("ffn_up.weight"), 0, l, hp.n_embd, hp.n_ff);
        MAT(N("ffn_down.weight"), 2, l, hp.n_ff, hp.n_embd);
#undef N
    }
    VEC("output_norm.weight", hp.n_embd, 1.0f, 0.05f);
    if (!hp.tied) MAT("output.weight", 3, hp.n_layer, hp.n_embd, hp.n_vocab);
    if (rc) pika_die("%s", pika_last_error());
    size_t nt = pika_gguf_writer_n_tensors(w);
    if (pika_gguf_writer_write(w, out)) pika_die("%s", pika_last_error());
    pika_gguf_writer_free(w);
    fprintf(stderr, "mkgguf: wrote %s (%s %s, %zu tensors) in %.1f s\n", out, arch, tname, nt, pika_now() - t0);
    return 0;
}
