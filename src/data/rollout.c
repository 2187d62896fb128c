/* rollout.c — the rollouts JSONL format: one record to/from JSON, whole-file reader (rollout.h). */
#include "pika/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    char b[64];
    if (cJSON_IsString(id)) {
        r->id = pika_strdup(id->valuestring);
    } else if (cJSON_IsNumber(id)) {
        if (id->valuedouble == (double)(long long)id->valuedouble) snprintf(b, sizeof b, "%lld", (long long)id->valuedouble);
        else snprintf(b, sizeof b, "%.17g", id->valuedouble);
        r->id = pika_strdup(b);
    } else {
        return pika_set_error("%s field \"id\"", id ? "non-string/number" : "missing");
    }
    int64_t s;
    if (opt_int(o, "sample", &s) || opt_int(o, "tokens_in", &r->tokens_in) || opt_int(o, "tokens_out", &r->tokens_out) ||
        opt_str(o, "text", &r->text) || opt_str(o, "model", &r->model) || opt_str(o, "finish", &r->finish) ||
        opt_str(o, "answer", &r->answer))
        goto fail;
    if (s > 1 << 30) { pika_set_error("field \"sample\" is too large"); goto fail; }
    r->sample = (int)s;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "correct");
    if (cJSON_IsBool(c)) r->correct = cJSON_IsTrue(c);
    else if (c && !cJSON_IsNull(c)) { pika_set_error("field \"correct\" must be a boolean"); goto fail; }
    return 0;
fail:
    pika_rollout_rec_free(r);
    return -1;
}

void pika_rollouts_free(pika_rollout_rec *rows, int64_t n) {
    for (int64_t i = 0; rows && i < n; i++) pika_rollout_rec_free(&rows[i]);
    free(rows);
}

int pika_rollouts_read(const char *path, int ignore_torn_tail, pika_rollout_rec **rows, int64_t *n) {
    *rows = NULL;
    *n = 0;
    size_t len;
    char *txt = !strcmp(path, "-") ? pika_read_stream(stdin, &len) : pika_read_file(path, &len);
    if (!txt) return -1;
    int64_t cap = 0;
    long lineno = 0;
    for (char *line = txt; line < txt + len;) {
        char *nl = memchr(line, '\n', (size_t)(txt + len - line));
        if (!nl && ignore_torn_tail) break;
        char *end = nl ? nl : txt + len;
        *end = 0;
        lineno++;
        char *p = line;
        line = end + 1;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) continue;
        cJSON *j = cJSON_Parse(p);
        if (!j) {
            pika_set_error("%s:%ld: not a JSON object", path, lineno);
            goto fail;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            *rows = pika_realloc(*rows, sizeof **rows * (size_t)cap);
        }
        int rc = pika_rollout_rec_parse(j, &(*rows)[*n]);
        cJSON_Delete(j);
        if (rc) {
            pika_error_context("%s:%ld", path, lineno);
            goto fail;
        }
        (*n)++;
    }
    free(txt);
    return 0;
fail:
    free(txt);
    pika_rollouts_free(*rows, *n);
    *rows = NULL;
    *n = 0;
    return -1;
}

char *pika_rollouts_meta_path(const char *path) {
    pika_buf b = {0};
    pika_buf_puts(&b, path);
    pika_buf_puts(&b, ".meta.json");
    return b.s;
}
