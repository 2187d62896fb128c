/* serve_model.c — `pika serve-model`: an OpenAI-compatible API over one model with continuous
 * batching (serve_model.h).
 *
 * Threads: HTTP connection threads parse and validate a request, tokenize its prompts and put a job in
 * the FIFO queue (or answer 400/413/503 at once); one scheduler thread owns the model: it admits queued
 * jobs when enough slots are free, prefills each prompt into a slot (and copies its KV rows into the
 * slots of the prompt's other samples), then runs decode steps in which every running sequence of
 * every job advances one token in a single pika_batch_decode. A non-streaming handler waits for its
 * job (noticing a client that leaves); a streaming job's chunks are written by the scheduler to the
 * job's pika_http_stream after every step. Jobs are freed by whichever side lets go last (refs under
 * srv->mu). The scheduler never writes to a stream while holding srv->mu (a stream's on-gone callback
 * takes srv->mu).
 */
#include "pika/serve_model.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pika/generate.h"
#include "pika/http.h"
#include "pika/model.h"
#include "pika/prompt.h"
#include "pika/sample.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

#define MAX_TOP_LOGPROBS 20
#define MAX_HIDDEN_POS 64
#define PROMPT_CACHE_MIN_REST 4 /* tokens a cached prompt's rest is at least (model.c's MATVEC_MAX_N) */

enum { K_COMPLETIONS = 0, K_CHAT = 1 };
enum { J_QUEUED, J_RUNNING, J_DONE };

typedef struct {
    int32_t id;
    float lp;
} tok_lp;

typedef struct {
    int32_t id;
    float lp;
    int n_top;
    tok_lp top[MAX_TOP_LOGPROBS];
} lp_entry;

typedef struct job job;

typedef struct {
    job *j;
    int index;        /* choice index in the response (prompt-major) */
    int prompt;
    pika_gen_opts go; /* this choice's options (its own seed, capped max_tokens) */
    pika_decoder *dec;
    int slot;         /* -1: none */
    int32_t next;     /* the token to run next, when running */
    int running, done;
    pika_buf pending; /* streamed text not yet sent */
    pika_gen_result res;
    lp_entry *lp;
    int n_lp, cap_lp, lp_sent;
    long text_off;    /* completions logprobs: text offset of the next token */
    int finish_sent;
} choice;

struct job {
    pika_serve_model *srv;
    int refs;             /* under srv->mu */
    int kind;
    char id[96];
    long created;
    cJSON *req;           /* the parsed request: owns the stop strings of go */
    int n_prompts;
    int32_t **ids;
    int *n_ids;
    int n;                /* choices per prompt */
    int width;            /* slots needed = n_prompts * n */
    int n_choices;
    choice *ch;
    pika_gen_opts go;     /* the request's options */
    uint64_t seed;
    int seed_random;
    const char *sample_id;
    int first_sample;
    int max_tokens;       /* requested, or -1 for the endpoint's default */
    int stream, include_usage;
    int logprobs;         /* top-N, or -1 for none */
    int n_hl, n_hp;
    int hl[1024], hp[MAX_HIDDEN_POS];
    float **hidden;       /* per prompt [n_hl, n_hp, n_embd] */
    int state, ready, waiting; /* under srv->mu */
    atomic_int cancelled;
    int error_status;     /* set by the scheduler */
    char error[1024];
    pika_http_stream *st;
    pthread_cond_t cv;
    job *next;
    int prompt_tokens, completion_tokens;
    int cached_tokens;    /* of prompt_tokens, reused from the prompt cache */
    int cache_prompt;     /* request's "cache_prompt" (llama-server's name; default true) */
};

struct pika_serve_model {
    pika_serve_model_opts o;
    char *model_path, *alias, *host, *fingerprint;
    pika_model *m;
    pika_tokenizer *tok;
    pika_prompt_recipe *chat;
    char *chat_error;
    const pika_hparams *hp;
    int n_ctx, S, V;
    pika_batch *b;
    pika_http_server *http;
    pthread_t sched;
    int sched_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *q_head, *q_tail;
    int q_len, n_waiting, queued_width, slots_free, stopping;
    /* scheduler thread only */
    job **active;
    int n_active;
    int *slot_used;
    int32_t **slot_ids;   /* per slot: the prompt tokens its KV cache still holds (prompt cache) */
    int *slot_n;          /* per slot: how many (0 = empty) */
    float *logits, *plogits;
    int *seqs;
    int32_t *toks;
    choice **rows;
    /* metrics, under mu */
    struct {
        int64_t jobs[2], rejected, cancelled, errors, prompt_tokens, completion_tokens, prefill_tokens, decode_tokens;
        int64_t cached_tokens; /* prompt tokens not prefilled: reused from a slot's cache */
        int64_t steps, batched_steps, batch_rows, max_batch;
        double prefill_s, decode_s;
        size_t kv_bytes;
    } mt;
    long t_loaded;
    atomic_uint_fast64_t rng;
};

/* ------------------------------------------------------------------ small helpers */

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t random_seed(pika_serve_model *s) {
    uint64_t x = atomic_fetch_add(&s->rng, 0x9e3779b97f4a7c15ull);
    return splitmix(&x) & ((1ull << 53) - 1); /* a JSON number reads it back exactly */
}

static void wake_scheduler(void *u) {
    pika_serve_model *s = u;
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void job_free(job *j) {
    if (!j) return;
    for (int i = 0; i < j->n_choices; i++) {
        choice *c = &j->ch[i];
        pika_decoder_free(c->dec);
        free(c->pending.s);
        pika_gen_result_free(&c->res);
        free(c->lp);
    }
    free(j->ch);
    for (int p = 0; p < j->n_prompts; p++) {
        free(j->ids ? j->ids[p] : NULL);
        free(j->hidden ? j->hidden[p] : NULL);
    }
    free(j->ids);
    free(j->n_ids);
    free(j->hidden);
    cJSON_Delete(j->req);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* caller holds srv->mu */
static void job_unref_locked(job *j) {
    if (--j->refs == 0) job_free(j);
}

static void job_unref(job *j) {
    pika_serve_model *s = j->srv;
    pthread_mutex_lock(&s->mu);
    job_unref_locked(j);
    pthread_mutex_unlock(&s->mu);
}

/* A 4xx/5xx answer; returns -1 so parsers can `return bad(...)`. */
static int bad(pika_http_request *r, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int bad(pika_http_request *r, int status, const char *param, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pika_http_respond_error(r, status, NULL, param, code, "%s", msg);
    return -1;
}

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return x && !cJSON_IsNull(x) ? x : NULL;
}

static int is_int(const cJSON *x) { return cJSON_IsNumber(x) && x->valuedouble == floor(x->valuedouble) && fabs(x->valuedouble) < 9e15; }

/* The text of one token for logprobs (specials rendered, invalid UTF-8 repaired), malloc'ed; raw bytes in *raw. */
static char *token_text(const pika_serve_model *s, int32_t id, char *raw, int cap, int *raw_len) {
    int n = pika_token_to_piece(s->tok, id, true, raw, cap);
    if (n < 0) n = 0;
    if (n > cap) n = cap;
    *raw_len = n;
    size_t rl;
    return pika_utf8_repair(raw, (size_t)n, &rl);
}

/* ------------------------------------------------------------------ lifecycle */

void pika_serve_model_opts_default(pika_serve_model_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->n_parallel = 4;
    o->queue_limit = 16;
    o->max_body = 4u << 20;
    o->max_connections = 256;
    o->log = 1;
    pika_prompt_opts_default(&o->prompt);
}

static void h_health(pika_http_request *r, void *u);
static void h_metrics(pika_http_request *r, void *u);
static void h_models(pika_http_request *r, void *u);
static void h_model(pika_http_request *r, void *u);
static void h_completions(pika_http_request *r, void *u);
static void h_chat(pika_http_request *r, void *u);

pika_serve_model *pika_serve_model_new(const pika_serve_model_opts *o) {
    if (!o->model_path) { pika_set_error("serve-model: no model given"); return NULL; }
    if (o->n_parallel < 1 || o->n_parallel > 256) { pika_set_error("--parallel must be in [1, 256], got %d", o->n_parallel); return NULL; }
    if (o->queue_limit < 0) { pika_set_error("--queue must be >= 0, got %d", o->queue_limit); return NULL; }
    if (o->n_ctx < 0) { pika_set_error("--ctx must be >= 1, got %d", o->n_ctx); return NULL; }
    pika_serve_model *s = pika_calloc(1, sizeof *s);
    s->o = *o;
    s->model_path = pika_strdup(o->model_path);
    s->host = pika_strdup(o->host ? o->host : "127.0.0.1");
    s->o.model_path = s->model_path;
    s->o.host = s->host;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->m = pika_model_load(o->model_path);
    if (!s->m) goto fail;
    s->hp = pika_model_hparams(s->m);
    s->V = s->hp->n_vocab;
    s->tok = pika_tokenizer_from_gguf(pika_model_gguf(s->m));
    if (!s->tok) { pika_error_context("%s: the server needs the model's tokenizer", o->model_path); goto fail; }
    s->chat = pika_prompt_recipe_new(pika_model_gguf(s->m), s->tok, &o->prompt);
    if (!s->chat) s->chat_error = pika_strdup(pika_last_error());
    else if (pika_prompt_recipe_is_raw(s->chat)) {
        pika_prompt_recipe_free(s->chat);
        s->chat = NULL;
        s->chat_error = pika_strdup("the server runs without a chat template (--no-template)");
    }
    if (o->alias && *o->alias) s->alias = pika_strdup(o->alias);
    else {
        const char *base = strrchr(o->model_path, '/');
        base = base ? base + 1 : o->model_path;
        size_t n = strlen(base);
        if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
        s->alias = pika_strndup(base, n);
    }
    s->fingerprint = pika_strdup(pika_model_fingerprint(s->m));
    s->S = o->n_parallel;
    s->n_ctx = o->n_ctx ? o->n_ctx : (s->hp->n_ctx_train > 0 && s->hp->n_ctx_train < 4096 ? s->hp->n_ctx_train : 4096);
    s->b = pika_batch_new(s->m, s->S, s->n_ctx, o->n_threads);
    if (!s->b) goto fail;
    s->slots_free = s->S;
    s->active = pika_calloc((size_t)s->S + 1, sizeof(job *));
    s->slot_used = pika_calloc((size_t)s->S, sizeof(int));
    s->slot_ids = pika_calloc((size_t)s->S, sizeof(int32_t *));
    s->slot_n = pika_calloc((size_t)s->S, sizeof(int));
    s->logits = pika_malloc(sizeof(float) * (size_t)s->S * (size_t)s->V);
    s->plogits = pika_malloc(sizeof(float) * (size_t)s->V);
    s->seqs = pika_malloc(sizeof(int) * (size_t)s->S);
    s->toks = pika_malloc(sizeof(int32_t) * (size_t)s->S);
    s->rows = pika_malloc(sizeof(choice *) * (size_t)s->S);
    s->t_loaded = (long)time(NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store(&s->rng, ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec);

    pika_http_opts ho;
    pika_http_opts_default(&ho);
    ho.host = s->host;
    ho.port = o->port;
    ho.max_body = o->max_body ? o->max_body : ho.max_body;
    ho.max_connections = o->max_connections > 0 ? o->max_connections : ho.max_connections;
    ho.log = o->log;
    ho.server_name = "pika serve-model";
    s->http = pika_http_new(&ho);
    pika_http_route(s->http, "GET", "/health", h_health, s);
    pika_http_route(s->http, "GET", "/metrics", h_metrics, s);
    pika_http_route(s->http, "GET", "/v1/models", h_models, s);
    pika_http_route(s->http, "GET", "/v1/models/*", h_model, s);
    pika_http_route(s->http, "POST", "/v1/completions", h_completions, s);
    pika_http_route(s->http, "POST", "/v1/chat/completions", h_chat, s);
    return s;
fail:
    pika_serve_model_free(s);
    return NULL;
}

int pika_serve_model_port(const pika_serve_model *s) { return pika_http_port(s->http); }

static void *scheduler(void *arg);

int pika_serve_model_start(pika_serve_model *s) {
    if (s->sched_started) return pika_set_error("serve-model: already started");
    if (pthread_create(&s->sched, NULL, scheduler, s)) return pika_set_error("serve-model: cannot start the scheduler thread");
    s->sched_started = 1;
    if (pika_http_start(s->http)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", pika_last_error());
        pika_serve_model_stop(s);
        return pika_set_error("%s", msg);
    }
    return 0;
}

void pika_serve_model_stop(pika_serve_model *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->sched_started) {
        pthread_join(s->sched, NULL);
        s->sched_started = 0;
    }
    if (s->http) pika_http_stop(s->http);
}

void pika_serve_model_free(pika_serve_model *s) {
    if (!s) return;
    pika_serve_model_stop(s);
    pika_http_free(s->http);
    pika_batch_free(s->b);
    pika_prompt_recipe_free(s->chat);
    pika_tokenizer_free(s->tok);
    pika_model_free(s->m);
    if (s->slot_ids)
        for (int i = 0; i < s->S; i++) free(s->slot_ids[i]);
    free(s->slot_ids); free(s->slot_n);
    free(s->active); free(s->slot_used); free(s->logits); free(s->plogits); free(s->seqs); free(s->toks); free(s->rows);
    free(s->chat_error); free(s->model_path); free(s->alias); free(s->host); free(s->fingerprint);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ------------------------------------------------------------------ request parsing */

/* Text prompt -> ids: special-token texts parsed; the vocab's BOS (and EOS) added as raw-text
 * tokenization adds them unless the text starts with a control token (BOS itself, or the first token
 * of a rendered chat template such as [INST] or <|im_start|>: such text is already complete). */
static int tokenize_text(const pika_serve_model *s, const char *text, size_t len, int32_t **out) {
    int32_t *ids;
    int n = pika_tokenize(s->tok, text, len, false, true, &ids);
    if (n < 0) return -1;
    int32_t bos = pika_tokenizer_bos(s->tok), eos = pika_tokenizer_eos(s->tok);
    int rendered = n > 0 && (ids[0] == bos || (pika_tokenizer_token_attr(s->tok, ids[0]) & PIKA_TOKEN_CONTROL));
    int add_bos = pika_tokenizer_adds_bos(s->tok) && bos >= 0 && !rendered;
    int add_eos = pika_tokenizer_adds_eos(s->tok) && eos >= 0 && !rendered;
    int32_t *r = pika_malloc(sizeof(int32_t) * (size_t)(n + 2));
    int k = 0;
    if (add_bos) r[k++] = bos;
    memcpy(r + k, ids, sizeof(int32_t) * (size_t)n);
    k += n;
    if (add_eos) r[k++] = eos;
    free(ids);
    *out = r;
    return k;
}

static void job_add_prompt(job *j, int32_t *ids, int n) {
    j->ids = pika_realloc(j->ids, sizeof(int32_t *) * (size_t)(j->n_prompts + 1));
    j->n_ids = pika_realloc(j->n_ids, sizeof(int) * (size_t)(j->n_prompts + 1));
    j->ids[j->n_prompts] = ids;
    j->n_ids[j->n_prompts] = n;
    j->n_prompts++;
}

static int ids_from_json(const pika_serve_model *s, pika_http_request *r, const cJSON *arr, job *j) {
    int n = cJSON_GetArraySize(arr);
    if (n == 0) return bad(r, 400, "prompt", NULL, "a prompt of token ids must not be empty");
    int32_t *ids = pika_malloc(sizeof(int32_t) * (size_t)n);
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!is_int(it) || it->valuedouble < 0 || it->valuedouble >= s->V) {
            free(ids);
            return bad(r, 400, "prompt", NULL, "token ids must be integers in [0, %d)", s->V);
        }
        ids[k++] = (int32_t)it->valuedouble;
    }
    job_add_prompt(j, ids, n);
    return 0;
}

static int parse_prompts_completions(pika_serve_model *s, pika_http_request *r, job *j) {
    const cJSON *p = get(j->req, "prompt");
    if (!p) return bad(r, 400, "prompt", NULL, "'prompt' is required");
    if (cJSON_IsString(p)) {
        int32_t *ids;
        int n = tokenize_text(s, p->valuestring, strlen(p->valuestring), &ids);
        if (n < 0) return bad(r, 400, "prompt", NULL, "cannot tokenize the prompt: %s", pika_last_error());
        job_add_prompt(j, ids, n);
        return 0;
    }
    if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) == 0)
        return bad(r, 400, "prompt", NULL, "'prompt' must be a string, an array of strings, an array of token ids or an array of such arrays");
    const cJSON *first = p->child;
    if (cJSON_IsNumber(first)) return ids_from_json(s, r, p, j);
    const cJSON *it;
    cJSON_ArrayForEach(it, p) {
        if (cJSON_IsString(it) && cJSON_IsString(first)) {
            int32_t *ids;
            int n = tokenize_text(s, it->valuestring, strlen(it->valuestring), &ids);
            if (n < 0) return bad(r, 400, "prompt", NULL, "cannot tokenize a prompt: %s", pika_last_error());
            job_add_prompt(j, ids, n);
        } else if (cJSON_IsArray(it) && cJSON_IsArray(first)) {
            if (ids_from_json(s, r, it, j)) return -1;
        } else {
            return bad(r, 400, "prompt", NULL, "'prompt' must be a string, an array of strings, an array of token ids or an array of such arrays (not a mix)");
        }
        if (j->n_prompts > s->S)
            return bad(r, 400, "prompt", NULL, "%d prompts in one request: the server has %d slots", cJSON_GetArraySize(p), s->S);
    }
    return 0;
}

/* messages -> [{role, content: string}] (text content parts joined). */
static cJSON *normalize_messages(pika_http_request *r, const cJSON *msgs) {
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        bad(r, 400, "messages", NULL, "'messages' must be a non-empty array of {\"role\", \"content\"} objects");
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d]", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            cJSON_Delete(out);
            bad(r, 400, param, NULL, "each message must be an object with a string 'role'");
            return NULL;
        }
        const char *rl = role->valuestring;
        if (strcmp(rl, "system") && strcmp(rl, "user") && strcmp(rl, "assistant") && strcmp(rl, "developer") && strcmp(rl, "tool")) {
            cJSON_Delete(out);
            bad(r, 400, param, NULL, "unknown role '%s' (system, developer, user, assistant, tool)", rl);
            return NULL;
        }
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        pika_buf text = {0};
        if (cJSON_IsString(content)) {
            pika_buf_puts(&text, content->valuestring);
        } else if (cJSON_IsArray(content)) {
            const cJSON *part;
            cJSON_ArrayForEach(part, content) {
                const cJSON *ty = cJSON_GetObjectItemCaseSensitive(part, "type");
                const cJSON *tx = cJSON_GetObjectItemCaseSensitive(part, "text");
                if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "text") || !cJSON_IsString(tx)) {
                    free(text.s);
                    cJSON_Delete(out);
                    bad(r, 400, param, NULL, "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
                    return NULL;
                }
                pika_buf_puts(&text, tx->valuestring);
            }
        } else if (content && !cJSON_IsNull(content)) {
            cJSON_Delete(out);
            bad(r, 400, param, NULL, "'content' must be a string, an array of text parts or null");
            return NULL;
        } else if (strcmp(rl, "assistant")) {
            cJSON_Delete(out);
            bad(r, 400, param, NULL, "a %s message needs 'content'", rl);
            return NULL;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "role", !strcmp(rl, "developer") ? "system" : rl);
        cJSON_AddStringToObject(o, "content", text.s ? text.s : "");
        free(text.s);
        cJSON_AddItemToArray(out, o);
        i++;
    }
    return out;
}

static int parse_prompts_chat(pika_serve_model *s, pika_http_request *r, job *j) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j->req, "messages");
    if (!msgs) return bad(r, 400, "messages", NULL, "'messages' is required");
    cJSON *norm = normalize_messages(r, msgs);
    if (!norm) return -1;
    if (!s->chat) {
        cJSON_Delete(norm);
        return bad(r, 400, "messages", "no_chat_template", "chat completions need a chat template: %s", s->chat_error);
    }
    pika_prompt p;
    int rc = pika_prompt_build_messages(s->chat, norm, &p);
    cJSON_Delete(norm);
    if (rc) return bad(r, 400, "messages", NULL, "cannot render the messages with the chat template: %s", pika_last_error());
    job_add_prompt(j, p.ids, p.n_ids);
    p.ids = NULL;
    pika_prompt_free(&p);
    return 0;
}

/* Fields that would change the output and that pika does not implement: refuse them. */
static int check_unsupported(pika_http_request *r, const cJSON *q, int n) {
    const cJSON *x;
    if ((x = get(q, "echo")) && !cJSON_IsFalse(x)) return bad(r, 400, "echo", "unsupported", "'echo' is not supported");
    if ((x = get(q, "suffix")) && !(cJSON_IsString(x) && !*x->valuestring))
        return bad(r, 400, "suffix", "unsupported", "'suffix' is not supported");
    if ((x = get(q, "best_of")) && !(is_int(x) && (x->valuedouble == 1 || x->valuedouble == n)))
        return bad(r, 400, "best_of", "unsupported", "'best_of' other than 1 (or n) is not supported");
    if ((x = get(q, "logit_bias")) && !(cJSON_IsObject(x) && !x->child))
        return bad(r, 400, "logit_bias", "unsupported", "'logit_bias' is not supported");
    const char *pen[] = {"presence_penalty", "frequency_penalty", "repetition_penalty"};
    for (int i = 0; i < 3; i++)
        if ((x = get(q, pen[i]))) {
            if (!cJSON_IsNumber(x)) return bad(r, 400, pen[i], NULL, "'%s' must be a number", pen[i]);
            double neutral = i == 2 ? 1.0 : 0.0;
            if (x->valuedouble != neutral) return bad(r, 400, pen[i], "unsupported", "'%s' is not supported (only %g)", pen[i], neutral);
        }
    const char *tools[] = {"tools", "functions"};
    for (int i = 0; i < 2; i++)
        if ((x = get(q, tools[i])) && !(cJSON_IsArray(x) && !x->child))
            return bad(r, 400, tools[i], "unsupported", "'%s' (tool calls) is not supported", tools[i]);
    if ((x = get(q, "response_format"))) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "type");
        if (!cJSON_IsObject(x) || !cJSON_IsString(t) || strcmp(t->valuestring, "text"))
            return bad(r, 400, "response_format", "unsupported", "only the \"text\" response format is supported");
    }
    return 0;
}

static const char *gen_param(const char *msg) {
    static const char *keys[] = {"temperature", "top_p", "top_k", "min_p", "seed", "max_tokens", "max_completion_tokens", "stop",
                                 "top-p", "top-k", "min-p", "max tokens"};
    static const char *names[] = {"temperature", "top_p", "top_k", "min_p", "seed", "max_tokens", "max_completion_tokens", "stop",
                                  "top_p", "top_k", "min_p", "max_tokens"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strncmp(msg, keys[i], strlen(keys[i]))) return names[i];
    if (strstr(msg, "stop")) return "stop";
    return NULL;
}

static int parse_pika_ext(pika_serve_model *s, pika_http_request *r, job *j) {
    const cJSON *x = get(j->req, "pika");
    if (!x) return 0;
    if (!cJSON_IsObject(x)) return bad(r, 400, "pika", NULL, "'pika' must be an object");
    const cJSON *it;
    cJSON_ArrayForEach(it, x) {
        const char *k = it->string;
        if (!strcmp(k, "hidden_layers")) {
            if (!cJSON_IsArray(it) || !it->child) return bad(r, 400, "pika.hidden_layers", NULL, "'pika.hidden_layers' must be a non-empty array of layer indices");
            const cJSON *l;
            cJSON_ArrayForEach(l, it) {
                if (!is_int(l) || l->valuedouble < 0 || l->valuedouble > s->hp->n_layer)
                    return bad(r, 400, "pika.hidden_layers", NULL, "layer indices must be integers in [0, %d] (0 = embeddings)", s->hp->n_layer);
                if (j->n_hl >= s->hp->n_layer + 1 || j->n_hl >= (int)(sizeof j->hl / sizeof *j->hl))
                    return bad(r, 400, "pika.hidden_layers", NULL, "at most %d layers", s->hp->n_layer + 1);
                j->hl[j->n_hl++] = (int)l->valuedouble;
            }
        } else if (!strcmp(k, "positions")) {
            if (!cJSON_IsArray(it) || !it->child) return bad(r, 400, "pika.positions", NULL, "'pika.positions' must be a non-empty array of integers");
            const cJSON *p;
            cJSON_ArrayForEach(p, it) {
                if (!is_int(p)) return bad(r, 400, "pika.positions", NULL, "positions must be integers (negative: from the end of the prompt)");
                if (j->n_hp >= MAX_HIDDEN_POS) return bad(r, 400, "pika.positions", NULL, "at most %d positions", MAX_HIDDEN_POS);
                j->hp[j->n_hp++] = (int)p->valuedouble;
            }
        } else if (!strcmp(k, "id")) {
            if (!cJSON_IsString(it)) return bad(r, 400, "pika.id", NULL, "'pika.id' must be a string (a question id)");
            j->sample_id = it->valuestring;
        } else if (!strcmp(k, "first_sample")) {
            if (!is_int(it) || it->valuedouble < 0 || it->valuedouble > 1e9) return bad(r, 400, "pika.first_sample", NULL, "'pika.first_sample' must be an integer >= 0");
            j->first_sample = (int)it->valuedouble;
        } else {
            return bad(r, 400, "pika", NULL, "unknown field 'pika.%s' (hidden_layers, positions, id, first_sample)", k);
        }
    }
    if (j->n_hp && !j->n_hl) return bad(r, 400, "pika.positions", NULL, "'pika.positions' goes with 'pika.hidden_layers'");
    if (j->n_hl && !j->n_hp) j->hp[j->n_hp++] = -1;
    return 0;
}

/* Everything but the prompts. */
static int parse_request(pika_serve_model *s, pika_http_request *r, job *j) {
    cJSON *q = j->req;
    const cJSON *x;
    if ((x = get(q, "model")) && !cJSON_IsString(x)) return bad(r, 400, "model", NULL, "'model' must be a string");
    j->n = 1;
    if ((x = get(q, "n"))) {
        if (!is_int(x) || x->valuedouble < 1 || x->valuedouble > s->S)
            return bad(r, 400, "n", NULL, "'n' must be an integer in [1, %d] (the server's slots)", s->S);
        j->n = (int)x->valuedouble;
    }
    if (check_unsupported(r, q, j->n)) return -1;
    if ((x = get(q, "stream"))) {
        if (!cJSON_IsBool(x)) return bad(r, 400, "stream", NULL, "'stream' must be a boolean");
        j->stream = cJSON_IsTrue(x);
    }
    j->cache_prompt = s->o.no_prompt_cache ? 0 : 1;
    if ((x = get(q, "cache_prompt"))) { /* llama-server's request field */
        if (!cJSON_IsBool(x)) return bad(r, 400, "cache_prompt", NULL, "'cache_prompt' must be a boolean");
        j->cache_prompt = cJSON_IsTrue(x) && !s->o.no_prompt_cache;
    }
    if ((x = get(q, "stream_options"))) {
        if (!cJSON_IsObject(x)) return bad(r, 400, "stream_options", NULL, "'stream_options' must be an object");
        const cJSON *u = get(x, "include_usage");
        if (u && !cJSON_IsBool(u)) return bad(r, 400, "stream_options.include_usage", NULL, "'include_usage' must be a boolean");
        j->include_usage = cJSON_IsTrue(u);
    }
    pika_gen_opts_default(&j->go);
    if ((x = get(q, "ignore_eos"))) {
        if (!cJSON_IsBool(x)) return bad(r, 400, "ignore_eos", NULL, "'ignore_eos' must be a boolean");
        j->go.ignore_eog = cJSON_IsTrue(x);
    }
    /* seed: absent, null or -1 = a random one */
    x = get(q, "seed");
    if (!x || (cJSON_IsNumber(x) && x->valuedouble == -1)) {
        cJSON_DeleteItemFromObjectCaseSensitive(q, "seed");
        j->seed_random = 1;
    }
    cJSON *tk = cJSON_GetObjectItemCaseSensitive(q, "top_k");
    if (cJSON_IsNumber(tk) && tk->valuedouble == -1) cJSON_SetNumberValue(tk, 0); /* vLLM's "off" */
    const cJSON *mt = get(q, "max_tokens") ? get(q, "max_tokens") : get(q, "max_completion_tokens");
    j->go.max_tokens = 0;
    if (pika_gen_opts_from_json(&j->go, q))
        return bad(r, 400, gen_param(pika_last_error()), NULL, "%s", pika_last_error());
    j->max_tokens = mt ? j->go.max_tokens : -1;
    j->seed = j->seed_random ? random_seed(s) : j->go.sampling.seed;
    /* logprobs */
    j->logprobs = -1;
    x = get(q, "logprobs");
    if (j->kind == K_COMPLETIONS) {
        if (x) {
            if (!is_int(x) || x->valuedouble < 0 || x->valuedouble > MAX_TOP_LOGPROBS)
                return bad(r, 400, "logprobs", NULL, "'logprobs' must be an integer in [0, %d] (the number of top tokens)", MAX_TOP_LOGPROBS);
            j->logprobs = (int)x->valuedouble;
        }
    } else {
        if (x && !cJSON_IsBool(x)) return bad(r, 400, "logprobs", NULL, "'logprobs' must be a boolean");
        const cJSON *t = get(q, "top_logprobs");
        if (t && (!is_int(t) || t->valuedouble < 0 || t->valuedouble > MAX_TOP_LOGPROBS))
            return bad(r, 400, "top_logprobs", NULL, "'top_logprobs' must be an integer in [0, %d]", MAX_TOP_LOGPROBS);
        if (t && !cJSON_IsTrue(x)) return bad(r, 400, "top_logprobs", NULL, "'top_logprobs' needs 'logprobs': true");
        if (cJSON_IsTrue(x)) j->logprobs = t ? (int)t->valuedouble : 0;
    }
    return parse_pika_ext(s, r, j);
}

/* Prompts are parsed: lengths, hidden positions, choices. */
static int plan_job(pika_serve_model *s, pika_http_request *r, job *j) {
    const char *pname = j->kind == K_CHAT ? "messages" : "prompt";
    for (int p = 0; p < j->n_prompts; p++) {
        if (j->n_ids[p] == 0) return bad(r, 400, pname, NULL, "the prompt is empty (it tokenizes to nothing)");
        if (j->n_ids[p] > s->n_ctx)
            return bad(r, 400, pname, "context_length_exceeded",
                       "the prompt is %d tokens long, more than the context of %d tokens per slot", j->n_ids[p], s->n_ctx);
        for (int k = 0; k < j->n_hp; k++)
            if (j->hp[k] >= j->n_ids[p] || j->hp[k] < -j->n_ids[p])
                return bad(r, 400, "pika.positions", NULL, "position %d is outside the prompt of %d tokens", j->hp[k], j->n_ids[p]);
    }
    j->width = j->n_prompts * j->n;
    if (j->width > s->S)
        return bad(r, 400, "n", NULL, "%d prompts x n = %d sequences: more than the server's %d slots", j->n_prompts, j->width, s->S);
    j->n_choices = j->width;
    j->ch = pika_calloc((size_t)j->n_choices, sizeof(choice));
    if (j->n_hl) j->hidden = pika_calloc((size_t)j->n_prompts, sizeof(float *));
    for (int p = 0; p < j->n_prompts; p++) {
        if (j->n_hl) j->hidden[p] = pika_malloc(sizeof(float) * (size_t)j->n_hl * (size_t)j->n_hp * (size_t)s->hp->n_embd);
        int room = s->n_ctx - j->n_ids[p];
        int mt = j->max_tokens >= 0 ? j->max_tokens : j->kind == K_COMPLETIONS ? 16 : room;
        if (mt > room) mt = room;
        for (int k = 0; k < j->n; k++) {
            choice *c = &j->ch[p * j->n + k];
            c->j = j;
            c->index = p * j->n + k;
            c->prompt = p;
            c->slot = -1;
            c->go = j->go;
            c->go.max_tokens = mt;
            c->go.sampling.seed = j->sample_id ? pika_rollout_seed(j->seed, j->sample_id, j->first_sample + k) : j->seed + (uint64_t)k;
        }
        j->prompt_tokens += j->n_ids[p];
    }
    return 0;
}

/* ------------------------------------------------------------------ responses */

static cJSON *usage_json(const job *j) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", j->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", j->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", j->prompt_tokens + j->completion_tokens);
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details"); /* as OpenAI's API reports prompt caching */
    cJSON_AddNumberToObject(d, "cached_tokens", j->cached_tokens);
    return u;
}

static cJSON *chunk_base(const job *j, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->srv->alias);
    char fp[40];
    snprintf(fp, sizeof fp, "pika-%s", j->srv->fingerprint);
    cJSON_AddStringToObject(o, "system_fingerprint", fp);
    return o;
}

static cJSON *bytes_json(const char *raw, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((unsigned char)raw[i]));
    return a;
}

/* logprobs of entries [from, to) of a choice in the endpoint's format */
static cJSON *logprobs_json(const job *j, const choice *c, int from, int to) {
    const pika_serve_model *s = j->srv;
    char raw[512];
    int rl;
    cJSON *o = cJSON_CreateObject();
    if (j->kind == K_CHAT) {
        cJSON *content = cJSON_AddArrayToObject(o, "content");
        for (int i = from; i < to; i++) {
            const lp_entry *e = &c->lp[i];
            cJSON *t = cJSON_CreateObject();
            char *tx = token_text(s, e->id, raw, sizeof raw, &rl);
            cJSON_AddStringToObject(t, "token", tx);
            free(tx);
            cJSON_AddNumberToObject(t, "logprob", e->lp);
            cJSON_AddItemToObject(t, "bytes", bytes_json(raw, rl));
            cJSON *top = cJSON_AddArrayToObject(t, "top_logprobs");
            for (int k = 0; k < e->n_top; k++) {
                cJSON *a = cJSON_CreateObject();
                tx = token_text(s, e->top[k].id, raw, sizeof raw, &rl);
                cJSON_AddStringToObject(a, "token", tx);
                free(tx);
                cJSON_AddNumberToObject(a, "logprob", e->top[k].lp);
                cJSON_AddItemToObject(a, "bytes", bytes_json(raw, rl));
                cJSON_AddItemToArray(top, a);
            }
            cJSON_AddItemToArray(content, t);
        }
        cJSON_AddNullToObject(o, "refusal");
        return o;
    }
    cJSON *tokens = cJSON_AddArrayToObject(o, "tokens");
    cJSON *tlp = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *top = cJSON_AddArrayToObject(o, "top_logprobs");
    cJSON *off = cJSON_AddArrayToObject(o, "text_offset");
    long at = 0;
    for (int i = 0; i < to; i++) {
        const lp_entry *e = &c->lp[i];
        char *tx = token_text(s, e->id, raw, sizeof raw, &rl);
        if (i >= from) {
            cJSON_AddItemToArray(tokens, cJSON_CreateString(tx));
            cJSON_AddItemToArray(tlp, cJSON_CreateNumber(e->lp));
            cJSON *d = cJSON_CreateObject();
            for (int k = 0; k < e->n_top; k++) {
                char r2[512];
                int rl2;
                char *t2 = token_text(s, e->top[k].id, r2, sizeof r2, &rl2);
                if (!cJSON_GetObjectItemCaseSensitive(d, t2)) cJSON_AddNumberToObject(d, t2, e->top[k].lp);
                free(t2);
            }
            cJSON_AddItemToArray(top, d);
            cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at));
        }
        at += rl;
        free(tx);
    }
    return o;
}

static cJSON *hidden_json(const job *j) {
    const pika_serve_model *s = j->srv;
    cJSON *arr = cJSON_CreateArray();
    for (int p = 0; p < j->n_prompts; p++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddNumberToObject(h, "prompt_index", p);
        cJSON_AddNumberToObject(h, "n_prompt_tokens", j->n_ids[p]);
        cJSON *l = cJSON_AddArrayToObject(h, "layers"), *ps = cJSON_AddArrayToObject(h, "positions");
        for (int k = 0; k < j->n_hl; k++) cJSON_AddItemToArray(l, cJSON_CreateNumber(j->hl[k]));
        for (int k = 0; k < j->n_hp; k++) cJSON_AddItemToArray(ps, cJSON_CreateNumber(j->hp[k]));
        cJSON *sh = cJSON_AddArrayToObject(h, "shape");
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(j->n_hl));
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(j->n_hp));
        cJSON_AddItemToArray(sh, cJSON_CreateNumber(s->hp->n_embd));
        cJSON_AddStringToObject(h, "dtype", "float32");
        char *b64 = pika_base64_encode(j->hidden[p], sizeof(float) * (size_t)j->n_hl * (size_t)j->n_hp * (size_t)s->hp->n_embd);
        cJSON_AddStringToObject(h, "data", b64);
        free(b64);
        cJSON_AddItemToArray(arr, h);
    }
    return arr;
}

static cJSON *pika_ext_json(const job *j, int with_hidden) {
    cJSON *o = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)j->seed); /* printed exactly (< 2^53 when random) */
    cJSON_AddItemToObject(o, "seed", cJSON_CreateRaw(seed));
    if (with_hidden && j->n_hl) cJSON_AddItemToObject(o, "hidden", hidden_json(j));
    return o;
}

static cJSON *response_json(const job *j) {
    cJSON *o = chunk_base(j, j->kind == K_CHAT ? "chat.completion" : "text_completion");
    cJSON *chs = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < j->n_choices; i++) {
        const choice *c = &j->ch[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", c->index);
        const char *text = c->res.text ? c->res.text : "";
        if (j->kind == K_CHAT) {
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", text);
        } else {
            cJSON_AddStringToObject(ch, "text", text);
        }
        if (j->logprobs >= 0) cJSON_AddItemToObject(ch, "logprobs", logprobs_json(j, c, 0, c->n_lp));
        else cJSON_AddNullToObject(ch, "logprobs");
        cJSON_AddStringToObject(ch, "finish_reason", c->res.finish ? c->res.finish : "length");
        cJSON_AddItemToArray(chs, ch);
    }
    cJSON_AddItemToObject(o, "usage", usage_json(j));
    cJSON_AddItemToObject(o, "pika", pika_ext_json(j, 1));
    return o;
}

/* One streamed chunk for a choice: new text, new logprobs, the finish reason once. */
static cJSON *choice_chunk(const job *j, choice *c, int first) {
    cJSON *o = chunk_base(j, j->kind == K_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON *chs = cJSON_AddArrayToObject(o, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddNumberToObject(ch, "index", c->index);
    const char *text = first ? "" : c->pending.s ? c->pending.s : "";
    if (j->kind == K_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(ch, "delta");
        if (first) cJSON_AddStringToObject(d, "role", "assistant");
        if (first || *text) cJSON_AddStringToObject(d, "content", text);
    } else {
        cJSON_AddStringToObject(ch, "text", text);
    }
    if (!first && j->logprobs >= 0 && c->lp_sent < c->n_lp) {
        cJSON_AddItemToObject(ch, "logprobs", logprobs_json(j, c, c->lp_sent, c->n_lp));
        c->lp_sent = c->n_lp;
    } else {
        cJSON_AddNullToObject(ch, "logprobs");
    }
    if (!first && c->done && !c->finish_sent) {
        cJSON_AddStringToObject(ch, "finish_reason", c->res.finish ? c->res.finish : "length");
        c->finish_sent = 1;
    } else {
        cJSON_AddNullToObject(ch, "finish_reason");
    }
    cJSON_AddItemToArray(chs, ch);
    if (j->include_usage) cJSON_AddNullToObject(o, "usage");
    if (!first) {
        c->pending.n = 0;
        if (c->pending.s) c->pending.s[0] = 0;
    }
    return o;
}

static void stream_send(job *j, cJSON *o) {
    if (j->st) pika_http_stream_sse_json(j->st, o);
    cJSON_Delete(o);
}

/* ------------------------------------------------------------------ scheduler */

static int on_piece(const char *piece, size_t len, void *user) {
    choice *c = user;
    pika_buf_add(&c->pending, piece, len);
    return 0;
}

static void add_logprob(pika_serve_model *s, choice *c, const float *logits, int32_t tok) {
    const int V = s->V, N = c->j->logprobs;
    float mx = logits[0];
    for (int i = 1; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)logits[i] - mx);
    const double lse = mx + log(sum);
    if (c->n_lp == c->cap_lp) {
        c->cap_lp = c->cap_lp ? 2 * c->cap_lp : 16;
        c->lp = pika_realloc(c->lp, sizeof(lp_entry) * (size_t)c->cap_lp);
    }
    lp_entry *e = &c->lp[c->n_lp++];
    e->id = tok;
    e->lp = (float)(logits[tok] - lse);
    e->n_top = 0;
    for (int i = 0; i < V && N > 0; i++) { /* insertion into the top N (higher logit first, ties to the lower id) */
        float l = logits[i];
        if (e->n_top == N && !(l > logits[e->top[N - 1].id])) continue;
        int k = e->n_top < N ? e->n_top++ : N - 1;
        while (k > 0 && logits[e->top[k - 1].id] < l) { e->top[k] = e->top[k - 1]; k--; }
        e->top[k].id = i;
    }
    for (int k = 0; k < e->n_top; k++) e->top[k].lp = (float)(logits[e->top[k].id] - lse);
}

/* A finished choice's slot keeps its prompt's KV rows (the generated tokens' rows are dropped): the
 * prompt cache a later request with the same prefix starts from. */
static void free_slot(pika_serve_model *s, choice *c, int *freed) {
    if (c->slot < 0) return;
    int n = s->slot_n[c->slot];
    if (n > 0 && pika_batch_n_past(s->b, c->slot) >= n) pika_batch_seq_truncate(s->b, c->slot, n);
    else { pika_batch_seq_reset(s->b, c->slot); s->slot_n[c->slot] = 0; }
    s->slot_used[c->slot] = 0;
    c->slot = -1;
    (*freed)++;
}

/* A free slot: the one whose cached prompt shares the longest prefix with ids (n of them; ids NULL: any,
 * preferring empty slots so cached prompts survive). *lcp gets that prefix length. */
static int alloc_slot(pika_serve_model *s, const int32_t *ids, int n, int *lcp) {
    int best = -1, best_l = INT_MIN;
    for (int i = 0; i < s->S; i++) {
        if (s->slot_used[i]) continue;
        int l = ids ? pika_ids_common_prefix(s->slot_ids[i], s->slot_n[i], ids, n) : -s->slot_n[i];
        if (l > best_l) best = i, best_l = l;
    }
    if (best >= 0) s->slot_used[best] = 1;
    if (lcp) *lcp = ids && best_l > 0 ? best_l : 0;
    return best; /* -1 cannot happen: admission counted the free slots */
}

/* Remember that slot holds ids[0..n) (n = 0: empty). */
static void slot_set(pika_serve_model *s, int slot, const int32_t *ids, int n) {
    s->slot_ids[slot] = pika_realloc(s->slot_ids[slot], sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (n > 0) memcpy(s->slot_ids[slot], ids, sizeof(int32_t) * (size_t)n);
    s->slot_n[slot] = n;
}

static void job_fail(job *j, int status, const char *msg) {
    if (!j->error_status) {
        j->error_status = status;
        snprintf(j->error, sizeof j->error, "%s", msg);
    }
}

/* The choice is over: collect its result, release its slot. */
static void choice_end(pika_serve_model *s, choice *c, int *freed) {
    if (c->done) return;
    if (c->dec) {
        pika_decoder_finish(c->dec, &c->res);
        pika_decoder_free(c->dec);
        c->dec = NULL;
    } else {
        c->res.text = pika_strdup("");
        c->res.finish = "cancelled";
    }
    c->j->completion_tokens += c->res.n_ids;
    c->running = 0;
    c->done = 1;
    free_slot(s, c, freed);
}

/* Sample the choice's next token from logits. */
static void advance(pika_serve_model *s, choice *c, const float *logits, int *freed) {
    int before = pika_decoder_n_ids(c->dec);
    int32_t t;
    int r = pika_decoder_next(c->dec, logits, &t);
    if (c->j->logprobs >= 0 && pika_decoder_n_ids(c->dec) > before)
        add_logprob(s, c, logits, pika_decoder_ids(c->dec)[before]);
    if (r == 1) {
        c->next = t;
        c->running = 1;
        return;
    }
    if (r < 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "decoding failed: %s", pika_last_error());
        job_fail(c->j, 500, msg);
    }
    choice_end(s, c, freed);
}

/* Prefill every prompt of a newly admitted job into its slots and sample the first tokens. */
static void start_job(pika_serve_model *s, job *j, int *freed) {
    for (int p = 0; p < j->n_prompts && !j->error_status; p++) {
        int need_logits = 0;
        for (int k = 0; k < j->n; k++) need_logits |= j->ch[p * j->n + k].go.max_tokens > 0;
        choice *c0 = &j->ch[p * j->n];
        const int n_ids = j->n_ids[p];
        int lcp = 0;
        c0->slot = alloc_slot(s, j->cache_prompt ? j->ids[p] : NULL, n_ids, &lcp);
        /* Prompt cache: keep the slot's first `keep` tokens when they equal this prompt's and prefill the
         * rest. The rest stays at least PROMPT_CACHE_MIN_REST tokens (a batch that small would take the
         * decode kernels, whose 8-bit activations differ from prefill's exact products), and holds every
         * requested hidden-state position; with that, the result is the full prefill's bit for bit. */
        int keep = lcp < n_ids - PROMPT_CACHE_MIN_REST ? lcp : n_ids - PROMPT_CACHE_MIN_REST;
        int hp_call[MAX_HIDDEN_POS];
        for (int k = 0; k < j->n_hp; k++) {
            int q = j->hp[k] >= 0 ? j->hp[k] : n_ids + j->hp[k]; /* absolute position in the prompt */
            if (keep > q) keep = q;
        }
        if (keep < 0 || !(need_logits || j->n_hl)) keep = 0;
        for (int k = 0; k < j->n_hp; k++) hp_call[k] = j->hp[k] >= 0 ? j->hp[k] - keep : j->hp[k];
        if (keep > 0) pika_batch_seq_truncate(s->b, c0->slot, keep);
        else pika_batch_seq_reset(s->b, c0->slot);
        slot_set(s, c0->slot, NULL, 0);
        pika_forward_req req = {j->n_hl, j->hl, j->n_hp, hp_call, j->n_hl ? j->hidden[p] : NULL, need_logits ? s->plogits : NULL};
        double t0 = pika_now();
        int rc = (need_logits || j->n_hl) ? pika_batch_prefill(s->b, c0->slot, j->ids[p] + keep, n_ids - keep, &req) : 0;
        double dt = pika_now() - t0;
        if (rc == 0 && (need_logits || j->n_hl)) slot_set(s, c0->slot, j->ids[p], n_ids);
        j->cached_tokens += keep;
        pthread_mutex_lock(&s->mu);
        s->mt.prefill_tokens += n_ids - keep;
        s->mt.cached_tokens += keep;
        s->mt.prefill_s += dt;
        pthread_mutex_unlock(&s->mu);
        if (rc) {
            char msg[600];
            snprintf(msg, sizeof msg, "prefill failed: %s", pika_last_error());
            job_fail(j, 500, msg);
            break;
        }
        for (int k = 0; k < j->n; k++) {
            choice *c = &j->ch[p * j->n + k];
            if (k > 0) {
                c->slot = alloc_slot(s, NULL, 0, NULL);
                slot_set(s, c->slot, NULL, 0);
                if (need_logits && pika_batch_seq_copy(s->b, c->slot, c0->slot, j->n_ids[p])) {
                    job_fail(j, 500, pika_last_error());
                    break;
                }
                if (need_logits) slot_set(s, c->slot, j->ids[p], j->n_ids[p]);
            }
            c->dec = pika_decoder_new(s->m, s->tok, &c->go, j->stream ? on_piece : NULL, c);
            if (!c->dec) {
                char msg[600];
                snprintf(msg, sizeof msg, "%s", pika_last_error());
                job_fail(j, 500, msg);
                break;
            }
        }
        if (j->error_status) break;
        for (int k = 0; k < j->n; k++) advance(s, &j->ch[p * j->n + k], s->plogits, freed);
    }
    if (j->error_status)
        for (int i = 0; i < j->n_choices; i++) choice_end(s, &j->ch[i], freed);
    if (j->stream && !j->error_status) {
        if (j->n_hl) { /* the residual stream goes out first: a reader can use it before the text ends */
            cJSON *o = chunk_base(j, j->kind == K_CHAT ? "chat.completion.chunk" : "text_completion");
            cJSON_AddArrayToObject(o, "choices");
            cJSON_AddItemToObject(o, "pika", pika_ext_json(j, 1));
            stream_send(j, o);
        }
        if (j->kind == K_CHAT)
            for (int i = 0; i < j->n_choices; i++) stream_send(j, choice_chunk(j, &j->ch[i], 1));
    }
}

/* One decode step over every running choice of every active job. */
static void decode_step(pika_serve_model *s, int *freed) {
    int k = 0;
    for (int a = 0; a < s->n_active; a++) {
        job *j = s->active[a];
        for (int i = 0; i < j->n_choices; i++) {
            choice *c = &j->ch[i];
            if (!c->running) continue;
            s->seqs[k] = c->slot;
            s->toks[k] = c->next;
            s->rows[k] = c;
            k++;
        }
    }
    if (!k) return;
    double t0 = pika_now();
    int rc = pika_batch_decode(s->b, k, s->seqs, s->toks, s->logits);
    double dt = pika_now() - t0;
    pthread_mutex_lock(&s->mu);
    s->mt.decode_tokens += k;
    s->mt.decode_s += dt;
    s->mt.steps++;
    s->mt.batch_rows += k;
    if (k > 1) s->mt.batched_steps++;
    if (k > s->mt.max_batch) s->mt.max_batch = k;
    s->mt.kv_bytes = pika_batch_kv_bytes(s->b);
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "decoding failed: %s", pika_last_error());
        for (int i = 0; i < k; i++) {
            job_fail(s->rows[i]->j, 500, msg);
            choice_end(s, s->rows[i], freed);
        }
        return;
    }
    for (int i = 0; i < k; i++) advance(s, s->rows[i], s->logits + (size_t)i * s->V, freed);
}

static int job_finished(const job *j) {
    for (int i = 0; i < j->n_choices; i++)
        if (!j->ch[i].done) return 0;
    return 1;
}

/* Stream chunks for what the last step produced; the closing events once the job is over. */
static void stream_flush(job *j) {
    if (!j->stream || !j->st) return;
    for (int i = 0; i < j->n_choices; i++) {
        choice *c = &j->ch[i];
        int has = c->pending.n > 0 || (j->logprobs >= 0 && c->lp_sent < c->n_lp) || (c->done && !c->finish_sent);
        if (has && !j->error_status && !atomic_load(&j->cancelled)) stream_send(j, choice_chunk(j, c, 0));
    }
    if (!job_finished(j)) return;
    if (j->error_status) {
        cJSON *e = pika_http_error_json(j->error_status, NULL, NULL, NULL, j->error);
        stream_send(j, e);
    } else if (j->include_usage && !atomic_load(&j->cancelled)) {
        cJSON *o = chunk_base(j, j->kind == K_CHAT ? "chat.completion.chunk" : "text_completion");
        cJSON_AddArrayToObject(o, "choices");
        cJSON_AddItemToObject(o, "usage", usage_json(j));
        stream_send(j, o);
    }
    if (!atomic_load(&j->cancelled)) pika_http_stream_sse(j->st, "[DONE]");
    pika_http_stream_close(j->st);
    j->st = NULL;
}

/* Take the job out of the queue (caller holds mu). */
static void queue_remove_locked(pika_serve_model *s, job *j) {
    job **pp = &s->q_head, *prev = NULL;
    while (*pp && *pp != j) { prev = *pp; pp = &(*pp)->next; }
    if (!*pp) return;
    *pp = j->next;
    if (s->q_tail == j) s->q_tail = prev;
    j->next = NULL;
    s->q_len--;
    s->queued_width -= j->width;
    if (j->waiting) { s->n_waiting--; j->waiting = 0; }
}

/* A job that never ran ends (caller holds mu; its stream, if any, is closed by the caller outside mu). */
static void finish_unstarted_locked(pika_serve_model *s, job *j, int status, const char *msg) {
    queue_remove_locked(s, j);
    if (status) job_fail(j, status, msg);
    for (int i = 0; i < j->n_choices; i++) {
        j->ch[i].done = 1;
        j->ch[i].finish_sent = 1;
        if (!j->ch[i].res.text) { j->ch[i].res.text = pika_strdup(""); j->ch[i].res.finish = "cancelled"; }
    }
    j->state = J_DONE;
    pthread_cond_broadcast(&j->cv);
}

static void *scheduler(void *arg) {
    pika_serve_model *s = arg;
    job **adm = pika_calloc((size_t)s->S + 1, sizeof(job *));
    /* queued jobs: at most S that fit at once plus queue_limit waiting ones */
    job **dead = pika_calloc((size_t)s->S + (size_t)s->o.queue_limit + 1, sizeof(job *));
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int n_adm = 0, n_dead = 0;
        /* queued jobs whose client left, and everything queued when stopping */
        for (job *j = s->q_head, *nx; j; j = nx) {
            nx = j->next;
            if (!j->ready && !s->stopping) continue;
            int gone = atomic_load(&j->cancelled) || (j->st && pika_http_stream_gone(j->st));
            if (!gone && !s->stopping) continue;
            if (gone && !s->stopping) s->mt.cancelled++;
            finish_unstarted_locked(s, j, s->stopping ? 503 : 0, "the server is shutting down");
            dead[n_dead++] = j;
        }
        /* admit in FIFO order while the head fits */
        while (!s->stopping && s->q_head && s->q_head->ready && s->q_head->width <= s->slots_free) {
            job *j = s->q_head;
            queue_remove_locked(s, j);
            s->slots_free -= j->width;
            j->state = J_RUNNING;
            adm[n_adm++] = j;
        }
        if (s->stopping && !s->n_active && !n_adm && !s->q_head && !n_dead) break;
        if (!n_adm && !s->n_active && !n_dead) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);

        for (int d = 0; d < n_dead; d++) {
            job *j = dead[d];
            if (j->st) {
                if (j->error_status) stream_send(j, pika_http_error_json(j->error_status, NULL, NULL, NULL, j->error));
                pika_http_stream_close(j->st);
                j->st = NULL;
            }
        }
        int freed = 0;
        for (int a = 0; a < n_adm; a++) {
            s->active[s->n_active++] = adm[a];
            start_job(s, adm[a], &freed);
            stream_flush(adm[a]); /* the first token goes out before the next decode step */
        }
        decode_step(s, &freed);
        /* cancellations: the client left, or the server stops */
        int n_cancel = 0;
        for (int a = 0; a < s->n_active; a++) {
            job *j = s->active[a];
            int gone = atomic_load(&j->cancelled) || (j->st && pika_http_stream_gone(j->st));
            if ((gone || stopping) && !job_finished(j)) {
                if (gone) {
                    atomic_store(&j->cancelled, 1);
                    n_cancel++;
                } else {
                    job_fail(j, 503, "the server is shutting down");
                }
                for (int i = 0; i < j->n_choices; i++) choice_end(s, &j->ch[i], &freed);
            }
            stream_flush(j);
        }
        pthread_mutex_lock(&s->mu);
        s->mt.cancelled += n_cancel;
        s->slots_free += freed;
        for (int d = 0; d < n_dead; d++) job_unref_locked(dead[d]);
        for (int a = 0; a < s->n_active;) {
            job *j = s->active[a];
            if (!job_finished(j)) { a++; continue; }
            if (j->error_status) s->mt.errors++;
            else if (!atomic_load(&j->cancelled)) s->mt.jobs[j->kind]++;
            s->mt.prompt_tokens += j->prompt_tokens;
            s->mt.completion_tokens += j->completion_tokens;
            j->state = J_DONE;
            pthread_cond_broadcast(&j->cv);
            s->active[a] = s->active[--s->n_active];
            job_unref_locked(j);
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(adm);
    free(dead);
    return NULL;
}

/* ------------------------------------------------------------------ endpoints */

static void handle_generate(pika_http_request *r, pika_serve_model *s, int kind) {
    cJSON *req = pika_http_json_body(r);
    if (!req) return;
    job *j = pika_calloc(1, sizeof *j);
    j->srv = s;
    j->refs = 1;
    j->kind = kind;
    j->req = req;
    j->created = (long)time(NULL);
    snprintf(j->id, sizeof j->id, "%s-%s", kind == K_CHAT ? "chatcmpl" : "cmpl", pika_http_request_id(r));
    pthread_cond_init(&j->cv, NULL);
    if (parse_request(s, r, j) || (kind == K_CHAT ? parse_prompts_chat(s, r, j) : parse_prompts_completions(s, r, j)) ||
        plan_job(s, r, j)) {
        job_free(j);
        return;
    }
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        job_free(j);
        bad(r, 503, NULL, "shutting_down", "the server is shutting down");
        return;
    }
    int immediate = s->queued_width + j->width <= s->slots_free;
    if (!immediate && s->n_waiting >= s->o.queue_limit) {
        s->mt.rejected++;
        int busy = s->S - s->slots_free, waiting = s->n_waiting;
        pthread_mutex_unlock(&s->mu);
        job_free(j);
        bad(r, 503, NULL, "server_busy", "the server is busy: %d of %d slots in use and %d requests waiting (queue limit %d); retry later",
            busy, s->S, waiting, s->o.queue_limit);
        return;
    }
    j->waiting = !immediate;
    s->n_waiting += j->waiting;
    s->queued_width += j->width;
    s->q_len++;
    j->state = J_QUEUED;
    j->ready = !j->stream;
    j->refs++;
    if (s->q_tail) s->q_tail->next = j;
    else s->q_head = j;
    s->q_tail = j;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);

    if (j->stream) {
        pika_http_stream *st = pika_http_respond_stream(r, 200, "text/event-stream");
        if (st) pika_http_stream_on_gone(st, wake_scheduler, s);
        pthread_mutex_lock(&s->mu);
        int ended = j->state == J_DONE; /* failed while we made the stream (server stopping) */
        if (!ended) {
            j->st = st;
            if (!st) atomic_store(&j->cancelled, 1);
        }
        j->ready = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        if (ended && st) {
            cJSON *e = pika_http_error_json(503, NULL, NULL, "shutting_down", "the server is shutting down");
            pika_http_stream_sse_json(st, e);
            cJSON_Delete(e);
            pika_http_stream_close(st);
        }
        job_unref(j);
        return;
    }
    /* wait for the job, watching the client */
    pthread_mutex_lock(&s->mu);
    while (j->state != J_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &s->mu, &ts);
        if (j->state != J_DONE && !atomic_load(&j->cancelled)) {
            pthread_mutex_unlock(&s->mu);
            int gone = pika_http_client_gone(r);
            pthread_mutex_lock(&s->mu);
            if (gone) {
                atomic_store(&j->cancelled, 1);
                pthread_cond_broadcast(&s->cv);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (j->error_status) bad(r, j->error_status, NULL, NULL, "%s", j->error);
    else if (atomic_load(&j->cancelled)) bad(r, 503, NULL, "cancelled", "the request was cancelled");
    else {
        cJSON *o = response_json(j);
        pika_http_respond_json(r, 200, o);
        cJSON_Delete(o);
    }
    job_unref(j);
}

static void h_completions(pika_http_request *r, void *u) { handle_generate(r, u, K_COMPLETIONS); }
static void h_chat(pika_http_request *r, void *u) { handle_generate(r, u, K_CHAT); }

static void h_health(pika_http_request *r, void *u) {
    pika_serve_model *s = u;
    pthread_mutex_lock(&s->mu);
    int busy = s->S - s->slots_free, q = s->q_len, stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", stopping ? "shutting down" : "ok");
    cJSON_AddNumberToObject(o, "slots_idle", s->S - busy);
    cJSON_AddNumberToObject(o, "slots_processing", busy);
    cJSON_AddNumberToObject(o, "queue_depth", q);
    pika_http_respond_json(r, stopping ? 503 : 200, o);
    cJSON_Delete(o);
}

static cJSON *model_json(const pika_serve_model *s) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->alias);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->t_loaded);
    cJSON_AddStringToObject(m, "owned_by", "pika");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    const char *base = strrchr(s->model_path, '/');
    cJSON_AddStringToObject(meta, "file", base ? base + 1 : s->model_path);
    cJSON_AddStringToObject(meta, "architecture", s->hp->arch_name);
    cJSON_AddStringToObject(meta, "fingerprint", s->fingerprint);
    cJSON_AddNumberToObject(meta, "n_vocab", s->hp->n_vocab);
    cJSON_AddNumberToObject(meta, "n_embd", s->hp->n_embd);
    cJSON_AddNumberToObject(meta, "n_layer", s->hp->n_layer);
    cJSON_AddNumberToObject(meta, "n_ctx_train", s->hp->n_ctx_train);
    cJSON_AddNumberToObject(meta, "n_ctx", s->n_ctx);
    cJSON_AddNumberToObject(meta, "n_parallel", s->S);
    cJSON_AddBoolToObject(meta, "chat_template", s->chat != NULL);
    return m;
}

static void h_models(pika_http_request *r, void *u) {
    pika_serve_model *s = u;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data");
    cJSON_AddItemToArray(d, model_json(s));
    pika_http_respond_json(r, 200, o);
    cJSON_Delete(o);
}

static void h_model(pika_http_request *r, void *u) {
    pika_serve_model *s = u;
    const char *id = pika_http_path(r) + strlen("/v1/models/");
    if (strcmp(id, s->alias)) {
        bad(r, 404, "model", "model_not_found", "the model '%s' does not exist (this server has '%s')", id, s->alias);
        return;
    }
    cJSON *m = model_json(s);
    pika_http_respond_json(r, 200, m);
    cJSON_Delete(m);
}

static void metric(pika_buf *b, const char *name, const char *type, const char *help, double v) {
    char line[512];
    snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
    pika_buf_puts(b, line);
}

static void h_metrics(pika_http_request *r, void *u) {
    pika_serve_model *s = u;
    pika_http_stats hs;
    pika_http_get_stats(s->http, &hs);
    pthread_mutex_lock(&s->mu);
    __typeof__(s->mt) mt = s->mt;
    int busy = s->S - s->slots_free, q = s->q_len;
    pthread_mutex_unlock(&s->mu);
    pika_buf b = {0};
    char line[512];
    pika_buf_puts(&b, "# HELP pika_http_requests_total HTTP requests answered, by status class.\n"
                      "# TYPE pika_http_requests_total counter\n");
    snprintf(line, sizeof line, "pika_http_requests_total{code=\"2xx\"} %lld\npika_http_requests_total{code=\"4xx\"} %lld\n"
             "pika_http_requests_total{code=\"5xx\"} %lld\n",
             (long long)hs.status_2xx, (long long)hs.status_4xx, (long long)hs.status_5xx);
    pika_buf_puts(&b, line);
    pika_buf_puts(&b, "# HELP pika_requests_total Generation requests completed, by endpoint.\n"
                      "# TYPE pika_requests_total counter\n");
    snprintf(line, sizeof line, "pika_requests_total{endpoint=\"completions\"} %lld\npika_requests_total{endpoint=\"chat\"} %lld\n",
             (long long)mt.jobs[K_COMPLETIONS], (long long)mt.jobs[K_CHAT]);
    pika_buf_puts(&b, line);
    metric(&b, "pika_requests_rejected_total", "counter", "Requests refused with 503 because the queue was full.", (double)mt.rejected);
    metric(&b, "pika_requests_cancelled_total", "counter", "Requests whose client went away before the end.", (double)mt.cancelled);
    metric(&b, "pika_requests_failed_total", "counter", "Requests that failed inside the engine.", (double)mt.errors);
    metric(&b, "pika_prompt_tokens_total", "counter", "Prompt tokens of completed requests (tokens in).", (double)mt.prompt_tokens);
    metric(&b, "pika_completion_tokens_total", "counter", "Generated tokens of completed requests (tokens out).", (double)mt.completion_tokens);
    metric(&b, "pika_prefill_tokens_total", "counter", "Prompt tokens prefilled.", (double)mt.prefill_tokens);
    metric(&b, "pika_prompt_tokens_cached_total", "counter", "Prompt tokens reused from a slot's prompt cache (not prefilled).", (double)mt.cached_tokens);
    metric(&b, "pika_prefill_seconds_total", "counter", "Time spent prefilling.", mt.prefill_s);
    metric(&b, "pika_prefill_tokens_per_second", "gauge", "Prefill throughput since start.", mt.prefill_s > 0 ? mt.prefill_tokens / mt.prefill_s : 0);
    metric(&b, "pika_decode_tokens_total", "counter", "Tokens run through decode steps (all sequences).", (double)mt.decode_tokens);
    metric(&b, "pika_decode_seconds_total", "counter", "Time spent in decode steps.", mt.decode_s);
    metric(&b, "pika_decode_tokens_per_second", "gauge", "Decode throughput since start (all sequences together).", mt.decode_s > 0 ? mt.decode_tokens / mt.decode_s : 0);
    metric(&b, "pika_decode_steps_total", "counter", "Batched decode steps.", (double)mt.steps);
    metric(&b, "pika_decode_batched_steps_total", "counter", "Decode steps that advanced two or more sequences at once.", (double)mt.batched_steps);
    metric(&b, "pika_decode_batch_size_max", "gauge", "Most sequences advanced in one decode step.", (double)mt.max_batch);
    metric(&b, "pika_decode_batch_size_mean", "gauge", "Mean sequences per decode step.", mt.steps ? (double)mt.batch_rows / mt.steps : 0);
    metric(&b, "pika_queue_depth", "gauge", "Requests waiting for slots.", q);
    metric(&b, "pika_queue_limit", "gauge", "Waiting requests allowed before 503.", s->o.queue_limit);
    metric(&b, "pika_slots_busy", "gauge", "Sequence slots in use.", busy);
    metric(&b, "pika_slots_total", "gauge", "Sequence slots (--parallel).", s->S);
    metric(&b, "pika_kv_cache_bytes", "gauge", "KV cache memory allocated over all slots.", (double)mt.kv_bytes);
    metric(&b, "pika_http_connections", "gauge", "Open HTTP connections.", hs.active_connections);
    metric(&b, "pika_http_request_too_large_total", "counter", "Requests refused with 413.", (double)hs.status_413);
    metric(&b, "pika_stream_clients_gone_total", "counter", "Streams whose client went away.", (double)hs.streams_client_gone);
    pika_http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.s, b.n);
    free(b.s);
}
