/* route_table.c — the routing table JSONL reader and writer (line-numbered errors) and the builder of
 * `pika route table` from labels and prediction files (see include/pika/route.h). */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/dataset.h"
#include "pika/labels.h"
#include "pika/route.h"
#include "pika/util.h"

static int json_num(const cJSON *o, const char *k, int allow_bool, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (allow_bool && cJSON_IsBool(v)) { *out = cJSON_IsTrue(v) ? 1.0 : 0.0; return 1; }
    if (!cJSON_IsNumber(v)) return v && !cJSON_IsNull(v) ? -1 : 0;
    *out = v->valuedouble;
    return isfinite(*out) ? 1 : -1;
}

typedef struct {
    int64_t q;
    int arm;
    double p, correct, cost, tin, tout, reader;
    int64_t line;
} raw_row;

typedef struct {
    pika_strmap ids;
    char *arms[PIKA_ROUTE_MAX_ARMS];
    int n_arms;
    char **qid;
    int8_t *qsplit;
    int64_t *qline, nq, qcap;
    raw_row *rows;
    int64_t nr, rcap;
} table_ctx;

/* One table row (obj from the one JSONL reader): validate, intern its arm and id, append. */
static int table_line(void *obj, const char *path, long lineno, void *vc) {
    table_ctx *c = vc;
    const cJSON *o = obj;
    long long line = lineno;
    char idb[40];
    const char *id = pika_json_id(cJSON_GetObjectItemCaseSensitive(o, "id"), idb);
    const cJSON *arm = cJSON_GetObjectItemCaseSensitive(o, "arm");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "split");
    raw_row r = {0};
    r.line = line;
    r.tin = r.tout = NAN;
    const char *bad = NULL;
    int k;
    if (!id) bad = "\"id\" must be a non-empty string or a number";
    else if (!cJSON_IsString(arm) || !arm->valuestring[0]) bad = "\"arm\" must be a non-empty string";
    else if (json_num(o, "p", 0, &r.p) != 1 || r.p < 0 || r.p > 1) bad = "\"p\" must be a finite number in [0,1]";
    else if (json_num(o, "correct", 1, &r.correct) != 1 || r.correct < 0 || r.correct > 1)
        bad = "\"correct\" must be a boolean or a number in [0,1]";
    else if (json_num(o, "cost", 0, &r.cost) != 1 || r.cost < 0) bad = "\"cost\" must be a finite number >= 0";
    else if (!cJSON_IsString(sp) || pika_route_split_parse(sp->valuestring, 0) < 0)
        bad = "\"split\" must be \"train\", \"val\" or \"test\"";
    else if ((k = json_num(o, "tokens_in", 0, &r.tin)) < 0 || (k == 1 && r.tin < 0)) bad = "\"tokens_in\" must be a number >= 0";
    else if ((k = json_num(o, "tokens_out", 0, &r.tout)) < 0 || (k == 1 && r.tout < 0)) bad = "\"tokens_out\" must be a number >= 0";
    else if ((k = json_num(o, "reader_cost", 0, &r.reader)) < 0 || (k == 1 && r.reader < 0)) bad = "\"reader_cost\" must be a number >= 0";
    if (bad) return pika_set_error("%s:%lld: %s", path, line, bad);
    int a = 0;
    while (a < c->n_arms && strcmp(c->arms[a], arm->valuestring)) a++;
    if (a == c->n_arms) {
        if (c->n_arms == PIKA_ROUTE_MAX_ARMS) return pika_set_error("%s:%lld: more than %d arms", path, line, PIKA_ROUTE_MAX_ARMS);
        c->arms[c->n_arms++] = pika_strdup(arm->valuestring);
    }
    r.arm = a;
    int split = pika_route_split_parse(sp->valuestring, 0);
    int64_t q = pika_strmap_get(&c->ids, id);
    if (q < 0) {
        if (c->nq == c->qcap) {
            c->qcap = c->qcap ? c->qcap * 2 : 256;
            c->qid = pika_realloc(c->qid, sizeof(char *) * (size_t)c->qcap);
            c->qsplit = pika_realloc(c->qsplit, (size_t)c->qcap);
            c->qline = pika_realloc(c->qline, sizeof(int64_t) * (size_t)c->qcap);
        }
        q = c->nq++;
        c->qid[q] = pika_strdup(id);
        c->qsplit[q] = (int8_t)split;
        c->qline[q] = line;
        pika_strmap_put(&c->ids, id, q);
    } else if (c->qsplit[q] != split) {
        return pika_set_error("%s:%lld: id '%s' has split '%s' here but '%s' on line %lld", path, line, c->qid[q],
                              sp->valuestring, pika_route_split_name(c->qsplit[q]), (long long)c->qline[q]);
    }
    r.q = q;
    if (c->nr == c->rcap) {
        c->rcap = c->rcap ? c->rcap * 2 : 1024;
        c->rows = pika_realloc(c->rows, sizeof(raw_row) * (size_t)c->rcap);
    }
    c->rows[c->nr++] = r;
    return 0;
}

int pika_route_table_read(const char *path, pika_route_table *t) {
    memset(t, 0, sizeof *t);
    table_ctx c;
    memset(&c, 0, sizeof c);
    pika_strmap_init(&c.ids);
    int rc = -1;
    if (pika_jsonl_read(path, table_line, &c, NULL, NULL, NULL) < 0) goto done;
    /* the rest works on the collected rows under their old names */
    char **arms = c.arms, **qid = c.qid;
    int n_arms = c.n_arms;
    int8_t *qsplit = c.qsplit;
    int64_t *qline = c.qline, nq = c.nq, nr = c.nr;
    raw_row *rows = c.rows;
    if (nq == 0) {
        pika_set_error("%s: no rows", path);
        goto done;
    }
    pika_route_table_alloc(t, n_arms, nq);
    int64_t *seen = pika_malloc(sizeof(int64_t) * (size_t)nq * (size_t)n_arms);
    memset(seen, 0, sizeof(int64_t) * (size_t)nq * (size_t)n_arms);
    for (int64_t i = 0; i < nr; i++) {
        size_t c = (size_t)rows[i].q * (size_t)n_arms + (size_t)rows[i].arm;
        if (seen[c]) {
            pika_set_error("%s:%lld: duplicate row for id '%s', arm '%s' (first on line %lld)", path, (long long)rows[i].line,
                           qid[rows[i].q], arms[rows[i].arm], (long long)seen[c]);
            free(seen);
            goto done;
        }
        seen[c] = rows[i].line;
        t->p[c] = rows[i].p;
        t->correct[c] = rows[i].correct;
        t->cost[c] = rows[i].cost;
        t->tokens_in[c] = rows[i].tin;
        t->tokens_out[c] = rows[i].tout;
        t->reader_cost[c] = rows[i].reader;
    }
    for (int64_t q = 0; q < nq; q++)
        for (int a = 0; a < n_arms; a++)
            if (!seen[(size_t)q * (size_t)n_arms + (size_t)a]) {
                pika_set_error("%s:%lld: id '%s' has no row for arm '%s'", path, (long long)qline[q], qid[q], arms[a]);
                free(seen);
                goto done;
            }
    free(seen);
    for (int a = 0; a < n_arms; a++) { t->arms[a] = arms[a]; arms[a] = NULL; }
    for (int64_t q = 0; q < nq; q++) { t->ids[q] = qid[q]; qid[q] = NULL; t->split[q] = qsplit[q]; }
    rc = 0;
done:
    if (rc) {
        for (int a = 0; a < c.n_arms; a++) free(c.arms[a]);
        for (int64_t q = 0; q < c.nq; q++) free(c.qid[q]);
        if (t->arms) {
            memset(t->arms, 0, sizeof(char *) * (size_t)t->n_arms);
            memset(t->ids, 0, sizeof(char *) * (size_t)t->n_q);
            pika_route_table_free(t);
        }
    }
    free(c.qid);
    free(c.qsplit);
    free(c.qline);
    free(c.rows);
    pika_strmap_free(&c.ids);
    return rc;
}

static void put_num(FILE *f, const char *k, double v) {
    if (v == floor(v) && fabs(v) < 1e15) fprintf(f, ",\"%s\":%.0f", k, v);
    else fprintf(f, ",\"%s\":%.17g", k, v);
}

static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

int pika_route_table_write(FILE *f, const pika_route_table *t) {
    int A = t->n_arms;
    for (int64_t q = 0; q < t->n_q; q++)
        for (int a = 0; a < A; a++) {
            size_t c = (size_t)q * (size_t)A + (size_t)a;
            fputs("{\"id\":", f);
            put_str(f, t->ids[q]);
            fputs(",\"arm\":", f);
            put_str(f, t->arms[a]);
            put_num(f, "p", t->p[c]);
            put_num(f, "correct", t->correct[c]);
            put_num(f, "cost", t->cost[c]);
            fprintf(f, ",\"split\":\"%s\"", pika_route_split_name(t->split[q]));
            if (!isnan(t->tokens_in[c])) put_num(f, "tokens_in", t->tokens_in[c]);
            if (!isnan(t->tokens_out[c])) put_num(f, "tokens_out", t->tokens_out[c]);
            if (t->reader_cost[c] != 0) put_num(f, "reader_cost", t->reader_cost[c]);
            fputs("}\n", f);
        }
    return ferror(f) ? pika_set_error("write error") : 0;
}

/* ---------------------------------------------------------------- builder */


/* Labels rows with the fields the builder needs, and the optional split (a second read without the split
 * requirement when the labels have none). */
static int read_labels(const char *path, const char *target, pika_labels *L, int *has_split) {
    const char *f[4] = {target, "tokens_in", "total_tokens_out", "n"};
    if (pika_labels_read(L, path, "id", 4, f, "split") == 0) { *has_split = 1; return 0; }
    *has_split = 0;
    return pika_labels_read(L, path, "id", 4, f, NULL);
}

int pika_route_table_build(const pika_route_arm_spec *arms, int n_arms, double val_frac, pika_route_table *t) {
    memset(t, 0, sizeof *t);
    if (n_arms < 1 || n_arms > PIKA_ROUTE_MAX_ARMS) return pika_set_error("route table: %d arms (1..%d)", n_arms, PIKA_ROUTE_MAX_ARMS);
    pika_labels P0;
    const char *pf[1] = {"prob"};
    if (pika_labels_read(&P0, arms[0].pred, "id", 1, pf, NULL)) return -1;
    int64_t nq = P0.n;
    pika_route_table_alloc(t, n_arms, nq);
    for (int64_t q = 0; q < nq; q++) t->ids[q] = pika_strdup(P0.ids[q]);
    int64_t *row = pika_malloc(sizeof(int64_t) * (size_t)(nq ? nq : 1));
    int rc = 0;
    for (int a = 0; a < n_arms && !rc; a++) {
        const pika_route_arm_spec *s = &arms[a];
        for (int b = 0; b < a; b++)
            if (!strcmp(arms[b].name, s->name)) { rc = pika_set_error("route table: arm name '%s' given twice", s->name); break; }
        if (rc) break;
        t->arms[a] = pika_strdup(s->name);
        pika_labels P, L;
        if (pika_labels_read(&P, s->pred, "id", 1, pf, NULL)) { rc = pika_error_context("arm %s", s->name); break; }
        if (P.n != nq || pika_labels_join(&P, t->ids, nq, row)) {
            /* name an id of the first arm missing here, or one extra here */
            const char *miss = NULL;
            for (int64_t q = 0; q < nq && !miss; q++)
                if (pika_strmap_get(&P.id_index, t->ids[q]) < 0) miss = t->ids[q];
            if (miss) rc = pika_set_error("route table: %s: no prediction for id '%s' (arm %s)", s->pred, miss, s->name);
            else {
                for (int64_t i = 0; i < P.n && !miss; i++)
                    if (pika_strmap_get(&P0.id_index, P.ids[i]) < 0) miss = P.ids[i];
                rc = pika_set_error("route table: %s: id '%s' is not predicted for arm %s (%s)", s->pred, miss ? miss : "?",
                                    arms[0].name, arms[0].pred);
            }
            pika_labels_free(&P);
            break;
        }
        for (int64_t q = 0; q < nq; q++) {
            double p = P.vals[row[q]];
            if (!(p >= 0 && p <= 1)) {
                rc = pika_set_error("route table: %s: prob of id '%s' is %g, not in [0,1]", s->pred, t->ids[q], p);
                break;
            }
            t->p[q * n_arms + a] = p;
        }
        pika_labels_free(&P);
        if (rc) break;
        int has_split;
        const char *target = s->target && *s->target ? s->target : "majority_vote_is_correct";
        if (read_labels(s->labels, target, &L, &has_split)) { rc = pika_error_context("arm %s", s->name); break; }
        if (pika_labels_join(&L, t->ids, nq, row)) {
            rc = pika_error_context("route table: arm %s: labels %s", s->name, s->labels);
            pika_labels_free(&L);
            break;
        }
        for (int64_t q = 0; q < nq && !rc; q++) {
            const double *v = L.vals + row[q] * 4;
            double y = v[0], tin = v[1], tout = v[2], n = v[3];
            if (!(y >= 0 && y <= 1)) rc = pika_set_error("route table: %s: %s of id '%s' is %g, not in [0,1]", s->labels, target, t->ids[q], y);
            else if (!(n >= 1)) rc = pika_set_error("route table: %s: id '%s' has n = %g samples", s->labels, t->ids[q], n);
            if (rc) break;
            double k = s->k > 0 ? s->k : n;
            double out = tout * k / n;
            size_t c = (size_t)q * (size_t)n_arms + (size_t)a;
            t->correct[c] = y;
            t->tokens_in[c] = tin;
            t->tokens_out[c] = out;
            t->cost[c] = (tin * s->price_in + out * s->price_out) / 1e6;
            t->reader_cost[c] = s->prefill + tin * s->prefill_price / 1e6;
            if (a == 0) {
                int sp = PIKA_SPLIT_TEST;
                if (has_split) {
                    sp = pika_route_split_parse(L.split[row[q]], 0);
                    if (sp < 0) {
                        rc = pika_set_error("route table: %s: id '%s' has split '%s' (train, val or test expected)", s->labels,
                                            t->ids[q], L.split[row[q]]);
                        break;
                    }
                }
                if (val_frac > 0 && sp != PIKA_SPLIT_TRAIN)
                    sp = (double)(pika_hash_str(t->ids[q]) % 10000) < val_frac * 10000.0 ? PIKA_SPLIT_VAL : PIKA_SPLIT_TEST;
                t->split[q] = (int8_t)sp;
            }
        }
        pika_labels_free(&L);
    }
    free(row);
    pika_labels_free(&P0);
    if (rc) pika_route_table_free(t);
    return rc;
}
