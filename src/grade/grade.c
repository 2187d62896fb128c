/* grade.c — owns grading dispatch by task kind (math vs code), the answer equality used by majority
 * vote, and the task-kind names. Math and code graders themselves live in math_grade.c /
 * code_grade.c. See include/pika/grade.h. */
#include "pika/grade.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/util.h"

static const char *const KIND_NAMES[] = {"math", "humaneval", "mbpp", "stdio"};

int pika_task_kind_parse(const char *name, pika_task_kind *out) {
    for (int k = 0; k < 4; k++)
        if (name && !strcmp(name, KIND_NAMES[k])) { *out = (pika_task_kind)k; return 0; }
    return pika_set_error("unknown task kind '%s' (math, humaneval, mbpp or stdio)", name ? name : "");
}

const char *pika_task_kind_name(pika_task_kind kind) {
    return (int)kind >= 0 && (int)kind < 4 ? KIND_NAMES[kind] : "math";
}

void pika_grade_opts_default(pika_grade_opts *o) {
    memset(o, 0, sizeof *o);
    pika_extract_opts_default(&o->math);
    pika_sandbox_opts_default(&o->sandbox);
}

void pika_grade_result_free(pika_grade_result *r) {
    free(r->answer);
    free(r->detail);
    memset(r, 0, sizeof *r);
}

static int grade_math_one(const pika_example *ex, const char *text, const pika_grade_opts *o, pika_grade_result *r) {
    if (!ex->gold) return pika_set_error("row '%s' has no gold answer", ex->id);
    r->correct = pika_math_grade(text, ex->gold, &o->math, &r->answer) ? 1 : 0;
    r->verdict = r->correct ? PIKA_VERDICT_PASS : PIKA_VERDICT_FAIL;
    return 0;
}

int pika_grade(pika_task_kind kind, const pika_example *ex, const char *text, const pika_grade_opts *o, pika_grade_result *r) {
    memset(r, 0, sizeof *r);
    if (kind == PIKA_TASK_MATH) return grade_math_one(ex, text, o, r);
    return pika_grade_batch(kind, &ex, &text, 1, o, r);
}

int pika_grade_batch(pika_task_kind kind, const pika_example *const *ex, const char *const *texts, int n,
                     const pika_grade_opts *o, pika_grade_result *res) {
    if (kind == PIKA_TASK_MATH) {
        for (int i = 0; i < n; i++) {
            memset(&res[i], 0, sizeof res[i]);
            if (grade_math_one(ex[i], texts[i], o, &res[i])) {
                res[i].verdict = PIKA_VERDICT_ERROR;
                res[i].detail = pika_strdup(pika_last_error());
            }
        }
        return 0;
    }
    pika_code_job *jobs = pika_calloc((size_t)(n > 0 ? n : 1), sizeof *jobs);
    for (int i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].answer = pika_code_extract(texts[i]);
        jobs[i] = (pika_code_job){kind, ex[i], res[i].answer, {0}};
    }
    pika_code_grade_batch(&o->sandbox, jobs, n, o->n_workers);
    for (int i = 0; i < n; i++) {
        res[i].verdict = jobs[i].res.verdict;
        res[i].correct = jobs[i].res.verdict == PIKA_VERDICT_PASS;
        res[i].detail = jobs[i].res.detail;
        jobs[i].res.detail = NULL;
        pika_code_result_free(&jobs[i].res);
    }
    free(jobs);
    return 0;
}

int pika_answers_equal(pika_task_kind kind, const char *a, const char *b) {
    if (!a || !b) return 0;
    if (!strcmp(a, b)) return 1;
    return kind == PIKA_TASK_MATH && pika_math_equiv(a, b);
}

/* ---------------------------------------------------------------- graded files */

static void set_field(cJSON *o, const char *k, cJSON *v) {
    if (cJSON_GetObjectItemCaseSensitive(o, k)) cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
    else cJSON_AddItemToObject(o, k, v);
}

static int write_line(FILE *f, const cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    int bad = fputs(s, f) < 0 || fputc('\n', f) == EOF || fflush(f) != 0;
    cJSON_free(s);
    return bad ? pika_set_error("write error") : 0;
}

static FILE *open_out(const char *path) {
    if (!path || !strcmp(path, "-")) return stdout;
    FILE *f = fopen(path, "w");
    if (!f) pika_set_error("cannot write %s", path);
    return f;
}

static int close_out(FILE *f, int rc) {
    if (f == stdout) return fflush(stdout) == 0 ? rc : pika_set_error("write error");
    if (fclose(f) != 0 && !rc) return pika_set_error("write error");
    return rc;
}

/* A string field, or (for "gold") a number by the one JSON-number rule; NULL + error when absent. */
static const char *text_field(const cJSON *o, const char *k, char buf[40], const char *path, long ln, int numbers_ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsString(v)) return v->valuestring;
    if (numbers_ok && cJSON_IsNumber(v)) {
        const char *t = pika_json_id(v, buf);
        if (t) return t;
    }
    if (!v || cJSON_IsNull(v)) pika_set_error("%s:%ld: missing field \"%s\"", path, ln, k);
    else pika_set_error("%s:%ld: field \"%s\" must be a string", path, ln, k);
    return NULL;
}

typedef struct {
    FILE *out;
    const pika_extract_opts *eo;
    pika_grade_stats *st;
    int wrc;
} pairs_ctx;

static int pair_line(void *obj, const char *path, long ln, void *vc) {
    pairs_ctx *c = vc;
    cJSON *o = obj;
    char gb[40];
    const char *pred = text_field(o, "pred", gb, path, ln, 0);
    if (!pred) return -1;
    const char *gold = text_field(o, "gold", gb, path, ln, 1);
    if (!gold) return -1;
    char *ans = NULL;
    int eq = pika_math_grade(pred, gold, c->eo, &ans);
    set_field(o, "equivalent", cJSON_CreateBool(eq));
    set_field(o, "answer", ans ? cJSON_CreateString(ans) : cJSON_CreateNull());
    free(ans);
    c->st->n_graded++;
    c->st->n_correct += eq ? 1 : 0;
    if (!c->wrc) c->wrc = write_line(c->out, o);
    return 0;
}

int pika_grade_math_pairs(const char *path, const pika_extract_opts *eo, const char *out_path, pika_jsonl_bad_fn bad,
                          void *bad_ctx, pika_grade_stats *st) {
    memset(st, 0, sizeof *st);
    FILE *out = open_out(out_path);
    if (!out) return -1;
    pairs_ctx c = {out, eo, st, 0};
    int64_t nb = pika_jsonl_read(path, pair_line, &c, bad, bad_ctx, NULL);
    int rc = nb < 0 ? -1 : c.wrc;
    if (nb > 0) st->n_bad = nb;
    return close_out(out, rc);
}

typedef struct {
    const pika_dataset *d;
    cJSON **objs;
    const pika_example **ex;
    const char **texts;
    int n, cap;
} rollouts_ctx;

static int rollout_line(void *obj, const char *path, long ln, void *vc) {
    rollouts_ctx *c = vc;
    cJSON *o = obj;
    const cJSON *iv = cJSON_GetObjectItemCaseSensitive(o, "id");
    char ib[40], tb[40];
    const char *id = pika_json_id(iv, ib);
    if (!id) return pika_set_error("%s:%ld: %s field \"id\"", path, ln, iv ? "non-string/number" : "missing");
    if (!text_field(o, "text", tb, path, ln, 0)) return -1;
    const pika_example *ex = pika_dataset_find((pika_dataset *)c->d, id);
    if (!ex) return pika_set_error("%s:%ld: id \"%s\" is not in %s", path, ln, id, c->d->name);
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->objs = pika_realloc(c->objs, (size_t)c->cap * sizeof *c->objs);
        c->ex = pika_realloc(c->ex, (size_t)c->cap * sizeof *c->ex);
    }
    c->objs[c->n] = cJSON_Duplicate(o, 1);
    c->ex[c->n] = ex;
    c->n++;
    return 0;
}

int pika_grade_rollouts(const char *path, const pika_dataset *d, const pika_grade_opts *o, const char *out_path,
                        pika_jsonl_bad_fn bad, void *bad_ctx, pika_grade_stats *st) {
    memset(st, 0, sizeof *st);
    rollouts_ctx c = {.d = d};
    int64_t nb = pika_jsonl_read(path, rollout_line, &c, bad, bad_ctx, NULL);
    int rc = 0;
    if (nb < 0) rc = -1;
    else {
        st->n_bad = nb;
        if (c.n == 0) rc = pika_set_error("%s: no rollouts to grade%s", path, nb ? " (every line was bad)" : " (empty file)");
    }
    FILE *out = rc ? NULL : open_out(out_path);
    if (!rc && !out) rc = -1;
    if (!rc) {
        int code = d->kind != PIKA_TASK_MATH;
        /* graded in chunks, each written as soon as it is done, so an interrupted run keeps its work */
        int chunk = code ? 64 * (o->n_workers > 0 ? o->n_workers : pika_n_cores()) : c.n;
        const char **texts = pika_calloc((size_t)c.n, sizeof *texts);
        pika_grade_result *res = pika_calloc((size_t)c.n, sizeof *res);
        for (int i = 0; i < c.n; i++) texts[i] = cJSON_GetObjectItemCaseSensitive(c.objs[i], "text")->valuestring;
        pika_progress pg;
        if (code) pika_progress_begin(&pg, "grade", c.n, 0);
        for (int c0 = 0; c0 < c.n && !rc; c0 += chunk) {
            int c1 = c0 + chunk < c.n ? c0 + chunk : c.n;
            pika_grade_batch(d->kind, c.ex + c0, texts + c0, c1 - c0, o, res + c0);
            for (int i = c0; i < c1; i++) {
                set_field(c.objs[i], "correct", cJSON_CreateBool(res[i].correct));
                set_field(c.objs[i], "answer", res[i].answer ? cJSON_CreateString(res[i].answer) : cJSON_CreateNull());
                if (code) {
                    set_field(c.objs[i], "verdict", cJSON_CreateString(pika_verdict_name(res[i].verdict)));
                    set_field(c.objs[i], "detail", res[i].detail ? cJSON_CreateString(res[i].detail) : cJSON_CreateNull());
                }
                if (!rc) rc = write_line(out, c.objs[i]);
                st->n_graded++;
                st->n_correct += res[i].correct ? 1 : 0;
            }
            if (code) pika_progress_update(&pg, c1);
        }
        if (code) pika_progress_end(&pg, c.n);
        for (int i = 0; i < c.n; i++) pika_grade_result_free(&res[i]);
        free(texts);
        free(res);
        rc = close_out(out, rc);
    }
    for (int i = 0; i < c.n; i++) cJSON_Delete(c.objs[i]);
    free(c.objs);
    free(c.ex);
    return rc;
}

int pika_grade_references(const pika_dataset *d, const pika_sandbox_opts *so, int n_workers, const char *out_path, int counts[4]) {
    if (d->kind == PIKA_TASK_MATH) return pika_set_error("%s is not a code dataset", d->name);
    pika_code_job *jobs = pika_calloc((size_t)(d->n > 0 ? d->n : 1), sizeof *jobs);
    for (int i = 0; i < d->n; i++) jobs[i] = (pika_code_job){d->kind, &d->rows[i], d->rows[i].gold, {0}};
    pika_code_grade_batch(so, jobs, d->n, n_workers);
    FILE *out = open_out(out_path);
    int rc = out ? 0 : -1;
    for (int i = 0; i < d->n; i++) {
        if (!rc) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", d->rows[i].id);
            cJSON_AddStringToObject(o, "verdict", pika_verdict_name(jobs[i].res.verdict));
            if (jobs[i].res.detail) cJSON_AddStringToObject(o, "detail", jobs[i].res.detail);
            cJSON_AddNumberToObject(o, "wall_s", jobs[i].res.wall_s);
            rc = write_line(out, o);
            cJSON_Delete(o);
        }
        if ((int)jobs[i].res.verdict >= 0 && (int)jobs[i].res.verdict < 4) counts[jobs[i].res.verdict]++;
        pika_code_result_free(&jobs[i].res);
    }
    free(jobs);
    return out ? close_out(out, rc) : rc;
}
