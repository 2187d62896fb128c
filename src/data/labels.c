/* labels.c — owns per-question label aggregation from graded rollouts (success rate, unbiased pass@k,
 * majority vote, token counts, cost), the price-table reader, and the two label-side file formats:
 * the labels JSONL file and graded rollouts. See include/pika/labels.h. */
#include "pika/labels.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/dataset.h" /* the JSONL reader and the JSON-id rule */
#include "pika/util.h"

double pika_pass_at_k(int n, int c, int k) {
    if (k < 1 || k > n || n < 1 || c < 0 || c > n) return NAN;
    if (n - c < k) return 1.0;
    /* 1 - prod_{i=n-c+1}^{n} (1 - k/i) */
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / (double)i;
    return 1.0 - prod;
}

int pika_price_table_load(const char *path, pika_price_table *t) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) return pika_set_error("%s: cannot open price table", path);
    char line[2048];
    long ln = 0;
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        for (char *p = line; *p; p++) if (*p == ',' || *p == '\t' || *p == '\r' || *p == '\n') *p = ' ';
        char model[1024];
        double a, b;
        char extra[8];
        int k = sscanf(line, "%1023s %lf %lf %7s", model, &a, &b, extra);
        if (k <= 0) continue;
        if (k != 3 || a < 0 || b < 0 || !isfinite(a) || !isfinite(b)) {
            /* a header line "model in out" is allowed as the first content line */
            if (t->n == 0 && k >= 1 && !strcmp(model, "model")) continue;
            fclose(f);
            pika_price_table_free(t);
            return pika_set_error("%s:%ld: expected 'MODEL IN_USD_PER_1M OUT_USD_PER_1M'", path, ln);
        }
        if (t->n == cap) {
            cap = cap ? cap * 2 : 16;
            t->p = pika_realloc(t->p, (size_t)cap * sizeof *t->p);
        }
        t->p[t->n].model = pika_strdup(model);
        t->p[t->n].in_per_m = a;
        t->p[t->n].out_per_m = b;
        t->n++;
    }
    fclose(f);
    return 0;
}

const pika_price *pika_price_find(const pika_price_table *t, const char *model) {
    if (!t) return NULL;
    for (int i = 0; i < t->n; i++) if (!strcmp(t->p[i].model, model)) return &t->p[i];
    return NULL;
}

void pika_price_table_free(pika_price_table *t) {
    for (int i = 0; i < t->n; i++) free(t->p[i].model);
    free(t->p);
    t->p = NULL;
    t->n = 0;
}

void pika_label_free(pika_label *l, int n) {
    if (!l) return;
    for (int i = 0; i < n; i++) {
        free(l[i].id);
        free(l[i].model);
        free(l[i].ks);
        free(l[i].pass_at);
        free(l[i].majority_answer);
    }
    free(l);
}

/* (model, id) key of the one string map: "<strlen(model)>:<model><id>" (unambiguous for any bytes). */
static char *group_key(const char *model, const char *id, char *buf, size_t cap) {
    size_t need = strlen(model) + strlen(id) + 24;
    char *k = need <= cap ? buf : pika_malloc(need);
    snprintf(k, need, "%zu:%s%s", strlen(model), model, id);
    return k;
}

int pika_label_aggregate(const pika_rollout *r, int n, const pika_label_opts *o, pika_label **out, int *n_out) {
    const int *ks = o->ks;
    int nk = o->nk;
    const pika_price_table *prices = o->prices;
    /* group: (model, id) -> group index in first-seen order; members as index lists */
    pika_strmap groups;
    pika_strmap_init(&groups);
    int *group_of = pika_malloc((size_t)(n > 0 ? n : 1) * sizeof *group_of);
    int *first = pika_malloc((size_t)(n > 0 ? n : 1) * sizeof *first);
    int ng = 0;
    for (int i = 0; i < n; i++) {
        char kb[512];
        char *key = group_key(r[i].model ? r[i].model : "", r[i].id, kb, sizeof kb);
        int64_t g = pika_strmap_get(&groups, key);
        if (g < 0) { g = ng; first[ng++] = i; pika_strmap_put(&groups, key, g); }
        group_of[i] = (int)g;
        if (key != kb) free(key);
    }
    pika_strmap_free(&groups);
    /* member lists in order */
    int *start = pika_calloc((size_t)ng + 1, sizeof *start);
    for (int i = 0; i < n; i++) start[group_of[i] + 1]++;
    for (int g = 0; g < ng; g++) start[g + 1] += start[g];
    int *members = pika_malloc((size_t)(n > 0 ? n : 1) * sizeof *members);
    int *fill = pika_calloc((size_t)ng + 1, sizeof *fill);
    for (int i = 0; i < n; i++) members[start[group_of[i]] + fill[group_of[i]]++] = i;
    free(fill);

    pika_label *L = pika_calloc((size_t)(ng > 0 ? ng : 1), sizeof *L);
    int *cl_rep = pika_malloc((size_t)(n > 0 ? n : 1) * sizeof *cl_rep);
    int *cl_cnt = pika_malloc((size_t)(n > 0 ? n : 1) * sizeof *cl_cnt);
    for (int g = 0; g < ng; g++) {
        pika_label *l = &L[g];
        const pika_rollout *f = &r[first[g]];
        l->id = pika_strdup(f->id);
        l->model = pika_strdup(f->model ? f->model : "");
        l->tokens_in = f->tokens_in;
        int nm = start[g + 1] - start[g];
        l->n = nm;
        int ncl = 0, none_cnt = 0, none_first = -1;
        for (int j = 0; j < nm; j++) {
            const pika_rollout *x = &r[members[start[g] + j]];
            l->n_correct += x->correct ? 1 : 0;
            l->total_tokens_in += x->tokens_in;
            l->total_tokens_out += x->tokens_out;
            if (!x->answer || !*x->answer) {
                if (none_first < 0) none_first = j;
                none_cnt++;
                continue;
            }
            int c = 0;
            for (; c < ncl; c++) {
                const char *rep = r[members[start[g] + cl_rep[c]]].answer;
                if (!strcmp(rep, x->answer) || (o->answers_equal && o->answers_equal(x->answer, rep, o->eq_ctx))) break;
            }
            if (c == ncl) { cl_rep[ncl] = j; cl_cnt[ncl] = 0; ncl++; }
            cl_cnt[c]++;
        }
        /* plurality; ties → first seen (cluster order = first-seen order; "no answer" competes by its first position) */
        int best = -1, best_cnt = 0, best_pos = n + 1;
        for (int c = 0; c < ncl; c++)
            if (cl_cnt[c] > best_cnt || (cl_cnt[c] == best_cnt && cl_rep[c] < best_pos)) { best = c; best_cnt = cl_cnt[c]; best_pos = cl_rep[c]; }
        if (none_cnt > best_cnt || (none_cnt == best_cnt && none_cnt > 0 && none_first < best_pos)) {
            l->majority_answer = NULL;
            l->majority_count = none_cnt;
            l->majority_correct = 0;
        } else if (best >= 0) {
            const pika_rollout *x = &r[members[start[g] + cl_rep[best]]];
            l->majority_answer = pika_strdup(x->answer);
            l->majority_count = best_cnt;
            l->majority_correct = x->correct ? 1 : 0;
        }
        l->success_rate = nm ? (double)l->n_correct / nm : 0;
        l->nk = nk;
        l->ks = pika_malloc((size_t)(nk > 0 ? nk : 1) * sizeof *l->ks);
        l->pass_at = pika_malloc((size_t)(nk > 0 ? nk : 1) * sizeof *l->pass_at);
        for (int k = 0; k < nk; k++) {
            l->ks[k] = ks[k];
            l->pass_at[k] = pika_pass_at_k(nm, l->n_correct, ks[k]);
        }
        const pika_price *p = pika_price_find(prices, l->model);
        if (p) {
            l->has_cost = 1;
            l->input_cost_once = (double)l->tokens_in * p->in_per_m / 1e6;
            l->output_cost = (double)l->total_tokens_out * p->out_per_m / 1e6;
            l->total_cost = l->input_cost_once + l->output_cost;
        }
    }
    free(cl_rep);
    free(cl_cnt);
    free(members);
    free(start);
    free(group_of);
    free(first);
    *out = L;
    *n_out = ng;
    return 0;
}

/* ---------------------------------------------------------------- the labels file */

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

int pika_labels_write(FILE *out, const pika_label *L, int nl, const pika_dataset *d, int with_costs,
                      void (*warn)(const char *msg, void *ctx), void *warn_ctx) {
    int warned_price = 0;
    char msg[1024];
    for (int i = 0; i < nl; i++) {
        const pika_label *l = &L[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", l->id);
        cJSON_AddStringToObject(o, "model", l->model);
        if (d) {
            const pika_example *e = pika_dataset_find((pika_dataset *)d, l->id);
            if (e && e->level) cJSON_AddNumberToObject(o, "level", e->level);
            if (e && e->split) cJSON_AddStringToObject(o, "split", e->split);
            else if (!e && warn) {
                snprintf(msg, sizeof msg, "id \"%s\" is not in %s", l->id, d->name);
                warn(msg, warn_ctx);
            }
        }
        cJSON_AddNumberToObject(o, "n", l->n);
        cJSON_AddNumberToObject(o, "n_correct", l->n_correct);
        cJSON_AddNumberToObject(o, "success_rate", l->success_rate);
        for (int k = 0; k < l->nk; k++) {
            char key[32];
            snprintf(key, sizeof key, "pass@%d", l->ks[k]);
            cJSON_AddItemToObject(o, key, num_or_null(l->pass_at[k]));
        }
        cJSON_AddNumberToObject(o, "pass_at_n", l->n_correct > 0 ? 1 : 0);
        cJSON_AddItemToObject(o, "majority_answer", l->majority_answer ? cJSON_CreateString(l->majority_answer) : cJSON_CreateNull());
        cJSON_AddNumberToObject(o, "majority_count", l->majority_count);
        cJSON_AddBoolToObject(o, "majority_vote_is_correct", l->majority_correct);
        cJSON_AddNumberToObject(o, "tokens_in", (double)l->tokens_in);
        cJSON_AddNumberToObject(o, "total_tokens_in", (double)l->total_tokens_in);
        cJSON_AddNumberToObject(o, "total_tokens_out", (double)l->total_tokens_out);
        cJSON_AddNumberToObject(o, "mean_tokens_out", l->n ? (double)l->total_tokens_out / l->n : 0);
        if (with_costs) {
            if (l->has_cost) {
                cJSON_AddNumberToObject(o, "input_cost_usd_once", l->input_cost_once);
                cJSON_AddNumberToObject(o, "total_output_cost_usd", l->output_cost);
                cJSON_AddNumberToObject(o, "total_cost_usd", l->total_cost);
            } else {
                cJSON_AddNullToObject(o, "input_cost_usd_once");
                cJSON_AddNullToObject(o, "total_output_cost_usd");
                cJSON_AddNullToObject(o, "total_cost_usd");
                if (!warned_price++ && warn) {
                    snprintf(msg, sizeof msg, "model \"%s\" is not in the price table; its costs are null", l->model);
                    warn(msg, warn_ctx);
                }
            }
        }
        char *txt = cJSON_PrintUnformatted(o);
        int bad = fputs(txt, out) < 0 || fputc('\n', out) == EOF;
        cJSON_free(txt);
        cJSON_Delete(o);
        if (bad) return pika_set_error("labels: write error");
    }
    return fflush(out) == 0 ? 0 : pika_set_error("labels: write error");
}

void pika_labels_free(pika_labels *L) {
    for (int64_t i = 0; i < L->n; i++) {
        free(L->ids[i]);
        if (L->split) free(L->split[i]);
    }
    for (int j = 0; j < L->n_fields; j++) free(L->fields[j]);
    free(L->ids);
    free(L->split);
    free(L->fields);
    free(L->vals);
    pika_strmap_free(&L->id_index);
    memset(L, 0, sizeof *L);
}

typedef struct {
    pika_labels *L;
    const char *id_field, *split_field;
    int64_t cap;
} labels_read_ctx;

static int labels_line(void *obj, const char *path, long ln, void *vc) {
    labels_read_ctx *c = vc;
    pika_labels *L = c->L;
    cJSON *o = obj;
    int nf = L->n_fields;
    if (L->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        L->ids = pika_realloc(L->ids, sizeof(char *) * (size_t)c->cap);
        L->vals = pika_realloc(L->vals, sizeof(double) * (size_t)c->cap * (size_t)(nf ? nf : 1));
        if (c->split_field) L->split = pika_realloc(L->split, sizeof(char *) * (size_t)c->cap);
    }
    char buf[40];
    const char *id = pika_json_id(cJSON_GetObjectItemCaseSensitive(o, c->id_field), buf);
    if (!id) return pika_set_error("%s:%ld: missing field \"%s\" (string or number id)", path, ln, c->id_field);
    for (int j = 0; j < nf; j++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, L->fields[j]);
        double x;
        if (cJSON_IsBool(v)) x = cJSON_IsTrue(v) ? 1.0 : 0.0;
        else if (cJSON_IsNumber(v)) x = v->valuedouble;
        else return pika_set_error("%s:%ld: id '%s': missing or non-numeric field \"%s\"", path, ln, id, L->fields[j]);
        if (!isfinite(x)) return pika_set_error("%s:%ld: field \"%s\" is not finite", path, ln, L->fields[j]);
        L->vals[L->n * nf + j] = x;
    }
    char *split = NULL;
    if (c->split_field) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, c->split_field);
        if (!cJSON_IsString(s)) return pika_set_error("%s:%ld: id '%s': missing string field \"%s\"", path, ln, id, c->split_field);
        split = pika_strdup(s->valuestring);
    }
    if (pika_strmap_put(&L->id_index, id, L->n) >= 0) {
        free(split);
        return pika_set_error("%s:%ld: duplicate id '%s'", path, ln, id);
    }
    if (c->split_field) L->split[L->n] = split;
    L->ids[L->n] = pika_strdup(id);
    L->n++;
    return 0;
}

int pika_labels_read(pika_labels *L, const char *path, const char *id_field, int n_fields,
                     const char *const *fields, const char *split_field) {
    memset(L, 0, sizeof *L);
    L->n_fields = n_fields;
    L->fields = pika_calloc((size_t)(n_fields ? n_fields : 1), sizeof(char *));
    for (int j = 0; j < n_fields; j++) L->fields[j] = pika_strdup(fields[j]);
    pika_strmap_init(&L->id_index);
    labels_read_ctx c = {L, id_field, split_field, 0};
    int rc = pika_jsonl_read(path, labels_line, &c, NULL, NULL, NULL) < 0 ? -1 : 0;
    if (rc == 0 && L->n == 0) rc = pika_set_error("%s: no labelled lines", path);
    if (rc) pika_labels_free(L); /* only frees: the error message stays */
    return rc;
}

int pika_labels_join(const pika_labels *L, char *const *ids, int64_t n, int64_t *row_out) {
    int64_t missing = 0;
    const char *first = NULL;
    for (int64_t i = 0; i < n; i++) {
        row_out[i] = pika_strmap_get(&L->id_index, ids[i]);
        if (row_out[i] < 0 && missing++ == 0) first = ids[i];
    }
    if (missing)
        return pika_set_error("id mismatch: %lld of %lld activation ids have no label (first: '%s')", (long long)missing,
                              (long long)n, first);
    return 0;
}

typedef struct {
    pika_labels_info *info;
    int n_models;
} describe_ctx;

static int describe_line(void *obj, const char *path, long ln, void *vc) {
    (void)path; (void)ln;
    describe_ctx *c = vc;
    pika_labels_info *I = c->info;
    I->n_rows++;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive((cJSON *)obj, "model");
    if (cJSON_IsString(m) && m->valuestring[0]) {
        char pat[300];
        snprintf(pat, sizeof pat, "%s", m->valuestring);
        int seen = 0;
        for (const char *q = I->models; *q && !seen;) { /* exact match against the joined list */
            const char *e = strstr(q, ", ");
            size_t l = e ? (size_t)(e - q) : strlen(q);
            seen = l == strlen(pat) && !strncmp(q, pat, l);
            q = e ? e + 2 : q + l;
        }
        if (!seen) {
            size_t u = strlen(I->models);
            if (c->n_models < 4) snprintf(I->models + u, sizeof I->models - u, "%s%s", u ? ", " : "", pat);
            else if (c->n_models == 4) snprintf(I->models + u, sizeof I->models - u, ", ...");
            c->n_models++;
        }
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive((cJSON *)obj, "n");
    if (cJSON_IsNumber(n) && n->valuedouble >= 1) {
        int k = (int)n->valuedouble;
        if (I->k_min == 0 || k < I->k_min) I->k_min = k;
        if (k > I->k_max) I->k_max = k;
    }
    return 0;
}

int pika_labels_describe(const char *path, pika_labels_info *info) {
    memset(info, 0, sizeof *info);
    describe_ctx c = {info, 0};
    return pika_jsonl_read(path, describe_line, &c, NULL, NULL, NULL) < 0 ? -1 : 0;
}

int64_t pika_labels_select(const char *labels_path, const char *id_field, const char *target, const char *split_spec,
                           char *const *ids, int64_t n, int64_t **rows, double **y) {
    *rows = NULL;
    if (y) *y = NULL;
    char *sf = NULL, *sv = NULL;
    if (split_spec) {
        const char *eq = strchr(split_spec, '=');
        if (!eq || eq == split_spec) return pika_set_error("split must look like FIELD=VALUE (e.g. split=train), got '%s'", split_spec);
        sf = pika_strndup(split_spec, (size_t)(eq - split_spec));
        sv = pika_strdup(eq + 1);
    }
    pika_labels L;
    const char *f[1] = {target};
    if (pika_labels_read(&L, labels_path, id_field ? id_field : "id", target ? 1 : 0, f, sf)) { free(sf); free(sv); return -1; }
    int64_t *lrow = pika_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    int64_t m = -1;
    if (pika_labels_join(&L, ids, n, lrow) == 0) {
        *rows = pika_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        if (y) *y = pika_malloc(sizeof(double) * (size_t)(n ? n : 1));
        m = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t r = lrow[i];
            if (sf && strcmp(L.split[r], sv)) continue;
            (*rows)[m] = i;
            if (y && target) (*y)[m] = L.vals[r];
            m++;
        }
        if (m == 0) {
            pika_set_error("no rows selected%s%s", sf ? " for split " : "", sf ? split_spec : "");
            free(*rows);
            *rows = NULL;
            if (y) { free(*y); *y = NULL; }
            m = -1;
        }
    }
    pika_labels_free(&L);
    free(lrow);
    free(sf);
    free(sv);
    return m;
}
