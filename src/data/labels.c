/* labels.c — owns per-question label aggregation from graded rollouts (success rate, unbiased pass@k,
 * majority vote, token counts, cost) and the price-table reader. See include/pika/labels.h. */
#include "pika/labels.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/math_grade.h"
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

static uint64_t hash2(const char *a, const char *b) {
    uint64_t h = 1469598103934665603ull;
    for (; *a; a++) h = (h ^ (unsigned char)*a) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (; *b; b++) h = (h ^ (unsigned char)*b) * 1099511628211ull;
    return h;
}

int pika_label_aggregate(const pika_rollout *r, int n, const int *ks, int nk, int math_answers,
                          const pika_price_table *prices, pika_label **out, int *n_out) {
    /* group: hash table (model,id) → group index; members as index lists */
    int cap = 16;
    while (cap < 2 * n + 2) cap *= 2;
    int *table = pika_malloc((size_t)cap * sizeof *table);
    for (int i = 0; i < cap; i++) table[i] = -1;
    int *group_of = pika_malloc((size_t)(n > 0 ? n : 1) * sizeof *group_of);
    int *first = pika_malloc((size_t)(n > 0 ? n : 1) * sizeof *first);
    int ng = 0;
    for (int i = 0; i < n; i++) {
        const char *m = r[i].model ? r[i].model : "";
        uint64_t h = hash2(m, r[i].id) & (uint64_t)(cap - 1);
        while (table[h] >= 0) {
            const pika_rollout *f = &r[first[table[h]]];
            if (!strcmp(f->id, r[i].id) && !strcmp(f->model ? f->model : "", m)) break;
            h = (h + 1) & (uint64_t)(cap - 1);
        }
        if (table[h] < 0) { table[h] = ng; first[ng] = i; ng++; }
        group_of[i] = table[h];
    }
    free(table);
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
                if (!strcmp(rep, x->answer) || (math_answers && pika_math_equiv(x->answer, rep))) break;
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
