/* generate.c — the decode loop with stop rules and streaming pieces; generation options and their
 * parser (generate.h). */
#include "pika/generate.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/gguf.h"
#include "pika/util.h"

void pika_gen_opts_default(pika_gen_opts *o) {
    memset(o, 0, sizeof *o);
    pika_sampling_default(&o->sampling);
    o->max_tokens = 256;
}

static int parse_double(const char *flag, const char *v, float *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end) return pika_set_error("%s must be a number, got '%s'", flag, v);
    *out = (float)x;
    return 0;
}

static int parse_int(const char *flag, const char *v, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end) return pika_set_error("%s must be an integer, got '%s'", flag, v);
    if (errno == ERANGE || x < -(1L << 30) || x > (1L << 30)) return pika_set_error("%s: %s is out of range", flag, v);
    *out = (int)x;
    return 0;
}

int pika_gen_parse_flag(pika_gen_opts *o, const char *flag, const char *v) {
    if (!strcmp(flag, "--temperature") || !strcmp(flag, "--temp")) {
        if (!v) return pika_set_error("%s needs a value", flag);
        return parse_double(flag, v, &o->sampling.temperature) ? -1 : 1;
    }
    if (!strcmp(flag, "--top-p") || !strcmp(flag, "--min-p")) {
        if (!v) return pika_set_error("%s needs a value", flag);
        return parse_double(flag, v, flag[2] == 't' ? &o->sampling.top_p : &o->sampling.min_p) ? -1 : 1;
    }
    if (!strcmp(flag, "--top-k")) {
        if (!v) return pika_set_error("%s needs a value", flag);
        return parse_int(flag, v, &o->sampling.top_k) ? -1 : 1;
    }
    if (!strcmp(flag, "--max-tokens") || !strcmp(flag, "-n") || !strcmp(flag, "--n-predict")) {
        if (!v) return pika_set_error("%s needs a value", flag);
        return parse_int(flag, v, &o->max_tokens) ? -1 : 1;
    }
    if (!strcmp(flag, "--seed")) {
        if (!v) return pika_set_error("%s needs a value", flag);
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || v[0] == '-' || v[0] == '+' || errno == ERANGE)
            return pika_set_error("--seed must be an integer in [0, 2^64), got '%s'", v);
        o->sampling.seed = (uint64_t)x;
        return 1;
    }
    if (!strcmp(flag, "--stop")) {
        if (!v) return pika_set_error("%s needs a value", flag);
        if (o->n_stop >= PIKA_GEN_MAX_STOP) return pika_set_error("--stop: at most %d stop strings", PIKA_GEN_MAX_STOP);
        o->stop[o->n_stop++] = v;
        return 1;
    }
    return 0;
}

static int json_number(const cJSON *req, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(req, key);
    if (!x || cJSON_IsNull(x)) return 0;
    if (!cJSON_IsNumber(x)) return pika_set_error("%s must be a number", key);
    *v = x->valuedouble;
    return 1;
}

static int json_int(const cJSON *req, const char *key, long long lo, long long hi, long long *v) {
    double d;
    int r = json_number(req, key, &d);
    if (r <= 0) return r;
    if (d != floor(d) || d < (double)lo || d > (double)hi) return pika_set_error("%s must be an integer in [%lld, %lld], got %g", key, lo, hi, d);
    *v = (long long)d;
    return 1;
}

int pika_gen_opts_from_json(pika_gen_opts *o, const cJSON *req) {
    if (!cJSON_IsObject(req)) return pika_set_error("the request must be a JSON object");
    double d;
    long long v;
    int r;
    if ((r = json_number(req, "temperature", &d)) < 0) return -1;
    if (r) o->sampling.temperature = (float)d;
    if ((r = json_number(req, "top_p", &d)) < 0) return -1;
    if (r) o->sampling.top_p = (float)d;
    if ((r = json_number(req, "min_p", &d)) < 0) return -1;
    if (r) o->sampling.min_p = (float)d;
    if ((r = json_int(req, "top_k", -(1LL << 30), 1LL << 30, &v)) < 0) return -1;
    if (r) o->sampling.top_k = (int)v;
    if ((r = json_int(req, "seed", 0, 1LL << 53, &v)) < 0) return -1;
    if (r) o->sampling.seed = (uint64_t)v;
    const char *mt = cJSON_GetObjectItemCaseSensitive(req, "max_tokens") ? "max_tokens" : "max_completion_tokens";
    if ((r = json_int(req, mt, -(1LL << 30), 1LL << 30, &v)) < 0) return -1;
    if (r) o->max_tokens = (int)v;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (st && !cJSON_IsNull(st)) {
        o->n_stop = 0;
        if (cJSON_IsString(st)) {
            o->stop[o->n_stop++] = st->valuestring;
        } else if (cJSON_IsArray(st)) {
            const cJSON *it;
            cJSON_ArrayForEach(it, st) {
                if (!cJSON_IsString(it)) return pika_set_error("stop must be a string or an array of strings");
                if (o->n_stop >= PIKA_GEN_MAX_STOP) return pika_set_error("stop: at most %d stop strings", PIKA_GEN_MAX_STOP);
                o->stop[o->n_stop++] = it->valuestring;
            }
        } else {
            return pika_set_error("stop must be a string or an array of strings");
        }
    }
    return pika_gen_opts_validate(o);
}

int pika_gen_opts_validate(const pika_gen_opts *o) {
    if (pika_sampling_validate(&o->sampling)) return -1;
    if (o->max_tokens < 0) return pika_set_error("max tokens must be an integer >= 0, got %d", o->max_tokens);
    if (o->n_stop < 0 || o->n_stop > PIKA_GEN_MAX_STOP) return pika_set_error("at most %d stop strings", PIKA_GEN_MAX_STOP);
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i] || !o->stop[i][0]) return pika_set_error("a stop string must not be empty");
    return 0;
}

const char *pika_gen_flags_help(void) {
    return "  --temperature T       0 = greedy; finite, >= 0 (default 1)\n"
           "  --top-k K             keep the K most probable tokens; 0 = off (default)\n"
           "  --top-p P             nucleus mass in (0, 1]; 1 = off (default)\n"
           "  --min-p P             drop tokens below P x the best one's probability, in [0, 1]; 0 = off (default)\n"
           "  --seed S              random seed, an integer >= 0 (default 42)\n"
           "  --stop TEXT           stop before TEXT (repeatable); the stop string is not part of the answer\n";
}

/* a float as the shortest decimal that reads back as the same float (0.9f -> 0.9, not 0.899999976) */
static double short_float(float f) {
    char b[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)f);
        if ((float)strtod(b, NULL) == f) break;
    }
    return strtod(b, NULL);
}

cJSON *pika_gen_opts_json(const pika_gen_opts *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "temperature", short_float(o->sampling.temperature));
    cJSON_AddNumberToObject(j, "top_k", o->sampling.top_k);
    cJSON_AddNumberToObject(j, "top_p", short_float(o->sampling.top_p));
    cJSON_AddNumberToObject(j, "min_p", short_float(o->sampling.min_p));
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->sampling.seed);
    cJSON_AddStringToObject(j, "seed", seed); /* a string: JSON numbers lose 64-bit integers */
    cJSON_AddNumberToObject(j, "max_tokens", o->max_tokens);
    cJSON *st = cJSON_AddArrayToObject(j, "stop");
    for (int i = 0; i < o->n_stop; i++) cJSON_AddItemToArray(st, cJSON_CreateString(o->stop[i]));
    cJSON_AddBoolToObject(j, "ignore_eog", o->ignore_eog != 0);
    return j;
}

void pika_gen_result_free(pika_gen_result *r) {
    if (!r) return;
    free(r->text);
    free(r->ids);
    memset(r, 0, sizeof *r);
}

/* Decoded text so far and how much of it went out through on_piece. */
typedef struct {
    pika_buf text;
    size_t emitted;
    const pika_gen_opts *o;
    pika_piece_fn fn;
    void *user;
    int cancelled;
    int stop_index;
} text_state;

static void emit(text_state *s, size_t upto) {
    if (upto <= s->emitted) return;
    if (s->fn && !s->cancelled && s->fn(s->text.s + s->emitted, upto - s->emitted, s->user)) s->cancelled = 1;
    s->emitted = upto;
}

/* Append a decoded piece; returns 1 when a stop string now occurs (text cut before it). */
static int add_piece(text_state *s, const char *p, int n, int final) {
    if (n > 0) {
        size_t rl;
        char *clean = pika_utf8_repair(p, (size_t)n, &rl);
        pika_buf_add(&s->text, clean, rl);
        free(clean);
    }
    size_t len = s->text.n;
    const pika_gen_opts *o = s->o;
    /* the earliest stop string that now occurs (searching from where a new match could start) */
    size_t best = (size_t)-1;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        size_t from = s->emitted;
        if (sl > len) continue;
        for (size_t k = from; k + sl <= len; k++)
            if (!memcmp(s->text.s + k, o->stop[i], sl)) {
                if (k < best) { best = k; s->stop_index = i; }
                break;
            }
    }
    if (best != (size_t)-1) {
        s->text.n = best;
        s->text.s[best] = 0;
        emit(s, best);
        return 1;
    }
    if (final) { emit(s, len); return 0; }
    /* hold back the longest tail that is a proper prefix of a stop string */
    size_t hold = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        for (size_t l = sl - 1; l > hold; l--)
            if (l <= len - s->emitted && !memcmp(s->text.s + len - l, o->stop[i], l)) { hold = l; break; }
    }
    size_t upto = len - hold;
    while (upto > s->emitted && ((unsigned char)s->text.s[upto] & 0xC0) == 0x80) upto--; /* whole characters */
    emit(s, upto);
    return 0;
}

struct pika_decoder {
    pika_gen_opts o;
    const pika_tokenizer *tok;
    int n_vocab;
    int64_t eos;
    pika_sampler *smp;
    text_state ts;
    pika_detok_stream ds;
    char *piece;
    int cap;
    int32_t *ids;
    int n_ids;
    const char *finish;
    int stopped, over, failed;
};

pika_decoder *pika_decoder_new(const pika_model *m, const pika_tokenizer *tok, const pika_gen_opts *o, pika_piece_fn on_piece,
                               void *user) {
    if (pika_gen_opts_validate(o)) return NULL;
    if (!tok && o->n_stop) { pika_set_error("stop strings need the model's tokenizer"); return NULL; }
    pika_decoder *d = pika_calloc(1, sizeof *d);
    d->o = *o;
    d->tok = tok;
    d->n_vocab = pika_model_hparams(m)->n_vocab;
    d->eos = tok ? -1 : pika_gguf_get_int(pika_model_gguf(m), "tokenizer.ggml.eos_token_id", -1);
    d->ids = pika_malloc(sizeof(int32_t) * (size_t)(o->max_tokens > 0 ? o->max_tokens : 1));
    d->smp = pika_sampler_new(&o->sampling, d->n_vocab);
    d->ts = (text_state){.o = &d->o, .fn = on_piece, .user = user, .stop_index = -1};
    d->cap = tok ? pika_tokenizer_max_piece_len(tok) + 8 : 8;
    d->piece = pika_malloc((size_t)d->cap);
    if (tok) pika_detok_stream_init(&d->ds, tok, false);
    d->finish = "length";
    return d;
}

int pika_decoder_next(pika_decoder *d, const float *logits, int32_t *next) {
    if (d->over) return d->failed ? -1 : 0;
    if (d->n_ids >= d->o.max_tokens) { d->over = 1; return 0; }
    int32_t t = pika_sample(d->smp, logits);
    int eog = d->tok ? pika_tokenizer_is_eog(d->tok, t) : t == d->eos;
    if (eog && !d->o.ignore_eog) { d->finish = "stop"; d->over = 1; return 0; }
    d->ids[d->n_ids++] = t;
    if (d->tok) {
        int w = pika_detok_stream_push(&d->ds, t, d->piece, d->cap);
        if (w < 0) { d->over = d->failed = 1; return -1; }
        if (add_piece(&d->ts, d->piece, w, 0)) { d->stopped = 1; d->finish = "stop"; d->over = 1; return 0; }
        if (d->ts.cancelled) { d->finish = "cancelled"; d->over = 1; return 0; }
    }
    if (d->n_ids >= d->o.max_tokens) { d->over = 1; return 0; }
    *next = t;
    return 1;
}

int pika_decoder_n_ids(const pika_decoder *d) { return d->n_ids; }
const int32_t *pika_decoder_ids(const pika_decoder *d) { return d->ids; }

void pika_decoder_finish(pika_decoder *d, pika_gen_result *out) {
    memset(out, 0, sizeof *out);
    if (d->tok && !d->stopped) {
        int w = pika_detok_stream_flush(&d->ds, d->piece, d->cap);
        if (w >= 0 && add_piece(&d->ts, d->piece, w, 1)) d->finish = "stop";
        else if (w >= 0) emit(&d->ts, d->ts.text.n);
    }
    d->stopped = 1; /* flushed: a second finish adds nothing */
    if (d->ts.cancelled && strcmp(d->finish, "stop")) d->finish = "cancelled";
    out->finish = d->finish;
    out->stop_index = d->ts.stop_index;
    out->text = d->ts.text.s ? d->ts.text.s : pika_strdup("");
    out->len = d->ts.text.n;
    memset(&d->ts.text, 0, sizeof d->ts.text);
    out->ids = d->ids;
    out->n_ids = d->n_ids;
    d->ids = NULL;
    d->n_ids = 0;
}

void pika_decoder_free(pika_decoder *d) {
    if (!d) return;
    pika_sampler_free(d->smp);
    free(d->ts.text.s);
    free(d->piece);
    free(d->ids);
    free(d);
}

int pika_generate_from(pika_ctx *c, const pika_tokenizer *tok, int n_keep, const float *logits_in, const pika_gen_opts *o,
                       pika_piece_fn on_piece, void *user, pika_gen_result *out) {
    memset(out, 0, sizeof *out);
    out->stop_index = -1;
    out->finish = "length";
    const pika_model *m = pika_ctx_model(c);
    pika_decoder *d = pika_decoder_new(m, tok, o, on_piece, user);
    if (!d) return -1;
    const int V = pika_model_hparams(m)->n_vocab;
    pika_ctx_truncate(c, n_keep);
    float *logits = pika_malloc(sizeof(float) * (size_t)V);
    memcpy(logits, logits_in, sizeof(float) * (size_t)V);
    pika_forward_req req = {0, NULL, 0, NULL, NULL, logits};
    int rc = 0, r;
    int32_t t;
    while ((r = pika_decoder_next(d, logits, &t)) == 1)
        if (pika_forward(c, &t, 1, &req)) { rc = -1; break; }
    if (r < 0) rc = -1;
    pika_decoder_finish(d, out);
    pika_decoder_free(d);
    free(logits);
    return rc;
}

int pika_generate(pika_ctx *c, const pika_tokenizer *tok, const int32_t *prompt, int n_prompt, const pika_gen_opts *o,
                  pika_piece_fn on_piece, void *user, pika_gen_result *out) {
    memset(out, 0, sizeof *out);
    out->stop_index = -1;
    out->finish = "length";
    if (n_prompt <= 0) return pika_set_error("the prompt is empty");
    const int V = pika_model_hparams(pika_ctx_model(c))->n_vocab;
    float *logits = pika_malloc(sizeof(float) * (size_t)V);
    pika_forward_req req = {0, NULL, 0, NULL, NULL, logits};
    pika_ctx_reset(c);
    int rc = pika_forward(c, prompt, n_prompt, &req);
    if (rc == 0) rc = pika_generate_from(c, tok, n_prompt, logits, o, on_piece, user, out);
    free(logits);
    return rc;
}
