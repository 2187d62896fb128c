/* reader.c — the router's reader: the model whose activations the probes read, the prompt recipe
 * they were trained with (checked at start-up), and a pool of inference contexts so concurrent
 * requests prefill in parallel. One prefill per request, stopped after the deepest probe layer,
 * no lm_head; every member's probe scores its (layer, position) of that one pass. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pika/http.h"
#include "pika/model.h"
#include "pika/probe.h"
#include "pika/prompt.h"
#include "pika/serve.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "serve/upstream.h"

struct pika_reader {
    pika_model *m;
    pika_tokenizer *tok;
    pika_prompt_recipe *recipe;
    int n_members;
    pika_probe *probes[PIKA_ROUTE_MAX_ARMS];    /* NULL: no probe (p = 0) */
    int li[PIKA_ROUTE_MAX_ARMS], pi[PIKA_ROUTE_MAX_ARMS]; /* index into layers / positions */
    int layers[PIKA_ROUTE_MAX_ARMS], n_layers;
    int positions[PIKA_ROUTE_MAX_ARMS], n_pos;
    int depth, min_tokens;
    char *url;          /* remote reader: a pika serve-model of the same GGUF (prefill there) */
    double timeout_s;
    int n_ctx;
    pika_ctx **ctx;
    int *busy;
    int32_t **held;  /* per context: the prompt tokens its KV cache holds (reused as a prefix) */
    int *n_held;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

void pika_reader_free(pika_reader *r) {
    if (!r) return;
    for (int i = 0; i < r->n_ctx; i++) pika_ctx_free(r->ctx[i]);
    free(r->ctx);
    free(r->busy);
    for (int i = 0; i < r->n_ctx && r->held; i++) free(r->held[i]);
    free(r->held);
    free(r->n_held);
    free(r->url);
    for (int i = 0; i < r->n_members; i++) pika_probe_free(r->probes[i]);
    pika_prompt_recipe_free(r->recipe);
    pika_tokenizer_free(r->tok);
    pika_model_free(r->m);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

static int add_unique(int *v, int *n, int x) {
    for (int i = 0; i < *n; i++)
        if (v[i] == x) return i;
    v[*n] = x;
    return (*n)++;
}

pika_reader *pika_reader_new(const pika_serve_config *c) {
    if (!c->reader_model) { pika_set_error("reader.model: required when a member has a probe"); return NULL; }
    pika_reader *r = pika_calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->n_members = c->n_members;
    r->m = pika_model_load(c->reader_model);
    if (!r->m) { pika_error_context("reader.model %s", c->reader_model); goto fail; }
    r->tok = pika_tokenizer_from_gguf(pika_model_gguf(r->m));
    if (!r->tok) { pika_error_context("reader.model %s", c->reader_model); goto fail; }
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    po.template_name = c->template_name;
    po.template_file = c->template_file;
    po.no_template = c->no_template;
    po.system = c->system;
    po.user_prefix = c->user_prefix;
    po.user_suffix = c->user_suffix;
    po.kwargs_json = c->kwargs_json;
    po.date = c->date;
    r->recipe = pika_prompt_recipe_new(pika_model_gguf(r->m), r->tok, &po);
    if (!r->recipe) { pika_error_context("reader %s", c->reader_model); goto fail; }
    /* the recipe as activation stores record it: provenance + n_eoi */
    pika_prompt p0;
    if (pika_prompt_build(r->recipe, "1+1", &p0)) goto fail;
    cJSON *pj = pika_prompt_recipe_provenance(r->recipe);
    cJSON_AddNumberToObject(pj, "n_eoi", p0.n_eoi);
    char *recipe_json = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);
    pika_prompt_free(&p0);
    const pika_hparams *hp = pika_model_hparams(r->m);
    for (int i = 0; i < c->n_members; i++) {
        const pika_serve_member *mb = &c->members[i];
        if (!mb->probe) continue;
        r->probes[i] = pika_probe_load(mb->probe);
        if (!r->probes[i]) { pika_error_context("member %s: probe", mb->name); free(recipe_json); goto fail; }
        if (pika_probe_check_reader(r->probes[i], pika_model_fingerprint(r->m), recipe_json)) {
            pika_error_context("member %s: probe %s does not fit reader %s", mb->name, mb->probe, c->reader_model);
            free(recipe_json);
            goto fail;
        }
        int L = pika_probe_layer(r->probes[i]), P = pika_probe_position(r->probes[i]);
        if (L < 0 || L > hp->n_layer || P >= 0 || pika_probe_d_model(r->probes[i]) != hp->n_embd) {
            pika_set_error("member %s: probe %s reads layer %d position %d width %d, which reader %s lacks", mb->name, mb->probe, L,
                           P, pika_probe_d_model(r->probes[i]), c->reader_model);
            free(recipe_json);
            goto fail;
        }
        r->li[i] = add_unique(r->layers, &r->n_layers, L);
        r->pi[i] = add_unique(r->positions, &r->n_pos, P);
        if (L > r->depth) r->depth = L;
        if (-P > r->min_tokens) r->min_tokens = -P;
    }
    free(recipe_json);
    if (c->reader_url) { /* remote prefill: the local GGUF gives only tokenizer, template and fingerprint */
        r->url = pika_strdup(c->reader_url);
        r->timeout_s = 30;
        return r;
    }
    r->n_ctx = c->reader_contexts > 0 ? c->reader_contexts : 1;
    r->ctx = pika_calloc((size_t)r->n_ctx, sizeof *r->ctx);
    r->busy = pika_calloc((size_t)r->n_ctx, sizeof(int));
    r->held = pika_calloc((size_t)r->n_ctx, sizeof(int32_t *));
    r->n_held = pika_calloc((size_t)r->n_ctx, sizeof(int));
    for (int i = 0; i < r->n_ctx; i++) r->ctx[i] = pika_ctx_new(r->m, 1);
    return r;
fail:
    pika_reader_free(r);
    return NULL;
}

int pika_reader_depth(const pika_reader *r) { return r->depth; }
const char *pika_reader_fingerprint(const pika_reader *r) { return pika_model_fingerprint(r->m); }

/* The remote reader: POST /v1/completions {"prompt": ids, "max_tokens": 0, "pika": {"hidden_layers",
 * "positions"}} to a pika serve-model; its "pika.hidden[0]" holds the same [layers, positions, E]
 * float32 block a local forward writes (base64). */
static int remote_hidden(pika_reader *r, const int32_t *ids, int n, float *h, size_t floats) {
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "model", "reader");
    cJSON *pr = cJSON_AddArrayToObject(q, "prompt");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(pr, cJSON_CreateNumber(ids[i]));
    cJSON_AddNumberToObject(q, "max_tokens", 0);
    cJSON *pk = cJSON_AddObjectToObject(q, "pika");
    cJSON *hl = cJSON_AddArrayToObject(pk, "hidden_layers"), *hp = cJSON_AddArrayToObject(pk, "positions");
    for (int i = 0; i < r->n_layers; i++) cJSON_AddItemToArray(hl, cJSON_CreateNumber(r->layers[i]));
    for (int i = 0; i < r->n_pos; i++) cJSON_AddItemToArray(hp, cJSON_CreateNumber(r->positions[i]));
    char *body = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    char url[1024];
    size_t ul = strlen(r->url);
    while (ul > 0 && r->url[ul - 1] == '/') ul--;
    snprintf(url, sizeof url, "%.*s/completions", (int)ul, r->url);
    pika_upstream *u = pika_upstream_start(url, body, strlen(body), NULL, 2, r->timeout_s, NULL);
    free(body);
    int rc = -1;
    if (pika_upstream_finish(u) || u->status != 200) {
        pika_set_error("remote reader %s: %s", url, u->failed ? (u->error ? u->error : "failed") : "HTTP error");
        if (!u->failed) pika_set_error("remote reader %s: HTTP %ld %.200s", url, u->status, u->buf.s ? u->buf.s : "");
        pika_upstream_free(u);
        return -1;
    }
    cJSON *j = cJSON_ParseWithLength(u->buf.s, u->buf.n);
    const cJSON *h0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pika"), "hidden"), 0);
    const cJSON *data = cJSON_GetObjectItem(h0, "data");
    size_t nb = 0;
    void *raw = cJSON_IsString(data) ? pika_base64_decode(data->valuestring, &nb) : NULL;
    if (!raw || nb != floats * sizeof(float)) pika_set_error("remote reader %s: no hidden state of %zu floats in the answer", url, floats);
    else {
        memcpy(h, raw, nb);
        rc = 0;
    }
    free(raw);
    cJSON_Delete(j);
    pika_upstream_free(u);
    return rc;
}

static int score_ids(pika_reader *r, const int32_t *ids, int n, double *p) {
    for (int i = 0; i < r->n_members; i++) p[i] = 0;
    if (r->n_layers == 0) return 0;
    if (n < r->min_tokens) return pika_set_error("the prompt has %d tokens; the probes read position -%d", n, r->min_tokens);
    int E = pika_model_hparams(r->m)->n_embd;
    size_t floats = (size_t)r->n_layers * (size_t)r->n_pos * (size_t)E;
    float *h = pika_malloc(sizeof(float) * floats);
    if (r->url) {
        int rc = remote_hidden(r, ids, n, h, floats);
        for (int i = 0; i < r->n_members && rc == 0; i++) {
            if (!r->probes[i]) continue;
            const float *v = h + ((size_t)r->li[i] * (size_t)r->n_pos + (size_t)r->pi[i]) * (size_t)E;
            rc = pika_probe_score_hidden(r->probes[i], v, E, NULL, &p[i]);
        }
        free(h);
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    int k;
    for (;;) {
        for (k = 0; k < r->n_ctx && r->busy[k]; k++) {}
        if (k < r->n_ctx) break;
        pthread_cond_wait(&r->cv, &r->mu);
    }
    r->busy[k] = 1;
    pthread_mutex_unlock(&r->mu);
    /* Prefix reuse: the context keeps the last prompt's KV rows (for the blocks the probes read); a
     * prompt sharing its start (the template's system turn, say) runs only the rest — at least 4 tokens
     * and every probed position — which gives the same hidden states bit for bit (split-invariant
     * prefill, model.h). */
    int keep = pika_ids_common_prefix(r->held[k], r->n_held[k], ids, n);
    int rest_min = r->min_tokens > 4 ? r->min_tokens : 4;
    if (keep > n - rest_min) keep = n - rest_min;
    if (keep > 0 && pika_ctx_n_past(r->ctx[k]) >= keep && pika_ctx_kv_layers(r->ctx[k]) >= r->depth)
        pika_ctx_truncate(r->ctx[k], keep);
    else {
        keep = 0;
        pika_ctx_reset(r->ctx[k]);
    }
    pika_forward_req req = {r->n_layers, r->layers, r->n_pos, r->positions, h, NULL};
    int rc = pika_forward(r->ctx[k], ids + keep, n - keep, &req);
    if (rc == 0) {
        r->held[k] = pika_realloc(r->held[k], sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
        memcpy(r->held[k], ids, sizeof(int32_t) * (size_t)n);
        r->n_held[k] = n;
    } else {
        r->n_held[k] = 0;
        pika_ctx_reset(r->ctx[k]);
    }
    pthread_mutex_lock(&r->mu);
    r->busy[k] = 0;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < r->n_members && rc == 0; i++) {
        if (!r->probes[i]) continue;
        const float *v = h + ((size_t)r->li[i] * (size_t)r->n_pos + (size_t)r->pi[i]) * (size_t)E;
        rc = pika_probe_score_hidden(r->probes[i], v, E, NULL, &p[i]);
    }
    free(h);
    return rc;
}

int pika_reader_score_text(pika_reader *r, const char *question, double *p, int *n_tokens) {
    pika_prompt pr;
    if (pika_prompt_build(r->recipe, question, &pr)) return -1;
    if (n_tokens) *n_tokens = pr.n_ids;
    int rc = score_ids(r, pr.ids, pr.n_ids, p);
    pika_prompt_free(&pr);
    return rc;
}

int pika_reader_score_messages(pika_reader *r, const cJSON *messages, double *p, int *n_tokens) {
    if (!cJSON_IsArray(messages)) return pika_set_error("messages: expected an array");
    int n_user = 0, n_other = 0;
    const cJSON *m, *user = NULL;
    cJSON_ArrayForEach(m, messages) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(role) || !cJSON_IsString(content))
            return pika_set_error("messages: every message needs a string role and content");
        if (!strcmp(role->valuestring, "user")) { n_user++; user = content; }
        else if (strcmp(role->valuestring, "system")) n_other++;
    }
    if (n_user == 0) return pika_set_error("messages: no user message");
    /* one user turn: the question, rendered exactly as the probes' training prompts */
    if (n_user == 1 && n_other == 0) return pika_reader_score_text(r, user->valuestring, p, n_tokens);
    pika_prompt pr;
    if (pika_prompt_build_messages(r->recipe, messages, &pr)) return -1;
    if (n_tokens) *n_tokens = pr.n_ids;
    int rc = score_ids(r, pr.ids, pr.n_ids, p);
    pika_prompt_free(&pr);
    return rc;
}
