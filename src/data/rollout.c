/* rollout.c — the rollouts JSONL format: one record to/from JSON, the whole-file reader (rollout.h), and the
 * graded-rollouts view that label aggregation reads (labels.h's pika_rollout). Lines come from the one JSONL
 * reader (dataset.h), ids through the one JSON-id rule (pika_json_id). */
#include "pika/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/dataset.h"
#include "pika/labels.h"
#include "pika/util.h"

void pika_rollout_rec_free(pika_rollout_rec *r) {
    if (!r) return;
    free(r->id); free(r->text); free(r->model); free(r->finish); free(r->answer);
    memset(r, 0, sizeof *r);
}

char *pika_rollout_rec_json(const pika_rollout_rec *r) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", r->id ? r->id : "");
    cJSON_AddNumberToObject(j, "sample", r->sample);
    /* a sample cut off mid-character (or a model emitting stray bytes) must still be valid JSON
     * text: invalid bytes become U+FFFD, as Hugging Face's and vLLM's decoders do */
    const char *t = r->text ? r->text : "";
    char *clean = pika_utf8_repair(t, strlen(t), NULL);
    cJSON_AddStringToObject(j, "text", clean);
    free(clean);
    cJSON_AddNumberToObject(j, "tokens_in", (double)r->tokens_in);
    cJSON_AddNumberToObject(j, "tokens_out", (double)r->tokens_out);
    cJSON_AddStringToObject(j, "model", r->model ? r->model : "");
    cJSON_AddStringToObject(j, "finish", r->finish ? r->finish : "length");
    if (r->correct >= 0) {
        cJSON_AddBoolToObject(j, "correct", r->correct);
        if (r->answer) cJSON_AddStringToObject(j, "answer", r->answer);
        else cJSON_AddNullToObject(j, "answer");
    }
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return line;
}

static int opt_str(const cJSON *o, const char *k, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return pika_set_error("field \"%s\" must be a string", k);
    *out = pika_strdup(v->valuestring);
    return 0;
}

static int opt_int(const cJSON *o, const char *k, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    *out = -1;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) || v->valuedouble > 9e15)
        return pika_set_error("field \"%s\" must be a non-negative integer", k);
    *out = (int64_t)v->valuedouble;
    return 0;
}

int pika_rollout_rec_parse(const cJSON *o, pika_rollout_rec *r) {
    memset(r, 0, sizeof *r);
    r->sample = -1;
    r->correct = -1;
    if (!cJSON_IsObject(o)) return pika_set_error("not a JSON object");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    char b[40];
    const char *ids = pika_json_id(id, b);
    if (!ids) return pika_set_error("%s field \"id\"", id ? "non-string/number" : "missing");
    r->id = pika_strdup(ids);
    int64_t s;
    if (opt_int(o, "sample", &s) || opt_int(o, "tokens_in", &r->tokens_in) || opt_int(o, "tokens_out", &r->tokens_out) ||
        opt_str(o, "text", &r->text) || opt_str(o, "model", &r->model) || opt_str(o, "finish", &r->finish) ||
        opt_str(o, "answer", &r->answer))
        goto fail;
    if (s > 1 << 30) { pika_set_error("field \"sample\" is too large"); goto fail; }
    r->sample = (int)s;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "correct");
    if (cJSON_IsBool(c)) r->correct = cJSON_IsTrue(c);
    else if (cJSON_IsNumber(c)) r->correct = c->valuedouble != 0; /* 0/1 from other tools */
    else if (c && !cJSON_IsNull(c)) { pika_set_error("field \"correct\" must be a boolean or a number"); goto fail; }
    return 0;
fail:
    pika_rollout_rec_free(r);
    return -1;
}

void pika_rollouts_free(pika_rollout_rec *rows, int64_t n) {
    for (int64_t i = 0; rows && i < n; i++) pika_rollout_rec_free(&rows[i]);
    free(rows);
}

typedef struct {
    pika_rollout_rec *rows;
    int64_t n, cap;
} read_ctx;

static int read_line(void *obj, const char *path, long ln, void *vc) {
    read_ctx *c = vc;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->rows = pika_realloc(c->rows, sizeof *c->rows * (size_t)c->cap);
    }
    if (pika_rollout_rec_parse(obj, &c->rows[c->n])) return pika_error_context("%s:%ld", path, ln);
    c->n++;
    return 0;
}

int pika_rollouts_read(const char *path, int ignore_torn_tail, pika_rollout_rec **rows, int64_t *n) {
    read_ctx c = {0};
    *rows = NULL;
    *n = 0;
    if (pika_jsonl_read_ex(path, ignore_torn_tail ? PIKA_JSONL_SKIP_TORN_TAIL : 0, read_line, &c, NULL, NULL, NULL) < 0) {
        pika_rollouts_free(c.rows, c.n);
        return -1;
    }
    *rows = c.rows;
    *n = c.n;
    return 0;
}

/* ---- graded rollouts, as label aggregation reads them (labels.h's pika_rollout) ---- */

typedef struct {
    pika_rollout *r;
    int n, cap;
} graded_ctx;

static int graded_line(void *obj, const char *path, long ln, void *vc) {
    graded_ctx *c = vc;
    pika_rollout_rec rec;
    if (pika_rollout_rec_parse(obj, &rec)) return pika_error_context("%s:%ld", path, ln);
    if (rec.correct < 0) {
        int absent = !cJSON_GetObjectItemCaseSensitive((const cJSON *)obj, "correct");
        pika_rollout_rec_free(&rec);
        return pika_set_error("%s:%ld: %s field \"correct\" (grade the rollouts first: pika grade rollouts)", path, ln,
                              absent ? "missing" : "null");
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->r = pika_realloc(c->r, (size_t)c->cap * sizeof *c->r);
    }
    pika_rollout *r = &c->r[c->n];
    r->id = rec.id;
    r->model = rec.model ? rec.model : pika_strdup("");
    r->answer = rec.answer;
    r->sample = rec.sample >= 0 ? rec.sample : c->n;
    r->tokens_in = rec.tokens_in >= 0 ? rec.tokens_in : 0;
    r->tokens_out = rec.tokens_out >= 0 ? rec.tokens_out : 0;
    r->correct = rec.correct;
    free(rec.text);
    free(rec.finish);
    c->n++;
    return 0;
}

void pika_rollouts_graded_free(pika_rollout *r, int n) {
    for (int i = 0; r && i < n; i++) { free(r[i].id); free(r[i].model); free(r[i].answer); }
    free(r);
}

int pika_rollouts_read_graded(const char *path, pika_rollout **out, int *n_out, void (*bad)(const char *msg, void *bad_ctx),
                              void *bad_ctx, int64_t *n_bad) {
    graded_ctx c = {0};
    *out = NULL;
    *n_out = 0;
    if (n_bad) *n_bad = 0;
    int64_t nb = pika_jsonl_read(path, graded_line, &c, bad, bad_ctx, NULL);
    if (nb < 0) { pika_rollouts_graded_free(c.r, c.n); return -1; }
    if (n_bad) *n_bad = nb;
    if (c.n == 0) {
        pika_rollouts_graded_free(c.r, c.n);
        return pika_set_error("%s: no graded rollouts%s", path, nb ? " (every line was bad)" : " (empty file)");
    }
    *out = c.r;
    *n_out = c.n;
    return 0;
}
char *pika_rollouts_meta_path(const char *path) {
    pika_buf b = {0};
    pika_buf_puts(&b, path);
    pika_buf_puts(&b, ".meta.json");
    return b.s;
}
