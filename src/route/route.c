/* route.c — routing policies and metrics over a routing table (see include/pika/route.h). No I/O. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/route.h"
#include "pika/util.h"

int pika_route_split_parse(const char *s, int allow_all) {
    if (!s) return -1;
    if (!strcmp(s, "train")) return PIKA_SPLIT_TRAIN;
    if (!strcmp(s, "val")) return PIKA_SPLIT_VAL;
    if (!strcmp(s, "test")) return PIKA_SPLIT_TEST;
    if (allow_all && !strcmp(s, "all")) return PIKA_SPLIT_ALL;
    return -1;
}

const char *pika_route_split_name(int split) {
    switch (split) {
    case PIKA_SPLIT_TRAIN: return "train";
    case PIKA_SPLIT_VAL: return "val";
    case PIKA_SPLIT_TEST: return "test";
    default: return "all";
    }
}

const char *pika_route_policy_name(int p) {
    static const char *names[] = {"always", "utility", "max_prob", "min_cost", "random", "oracle", "oracle_utility", "cascade"};
    return p >= 0 && p <= PIKA_POL_CASCADE ? names[p] : "?";
}

void pika_route_table_alloc(pika_route_table *t, int n_arms, int64_t n_q) {
    memset(t, 0, sizeof *t);
    t->n_arms = n_arms;
    t->n_q = n_q;
    size_t m = (size_t)n_q * (size_t)n_arms;
    t->arms = pika_calloc((size_t)n_arms ? (size_t)n_arms : 1, sizeof(char *));
    t->ids = pika_calloc(n_q ? (size_t)n_q : 1, sizeof(char *));
    t->p = pika_calloc(m ? m : 1, sizeof(double));
    t->correct = pika_calloc(m ? m : 1, sizeof(double));
    t->cost = pika_calloc(m ? m : 1, sizeof(double));
    t->tokens_in = pika_malloc((m ? m : 1) * sizeof(double));
    t->tokens_out = pika_malloc((m ? m : 1) * sizeof(double));
    t->reader_cost = pika_calloc(m ? m : 1, sizeof(double));
    for (size_t i = 0; i < m; i++) t->tokens_in[i] = t->tokens_out[i] = NAN;
    t->split = pika_calloc(n_q ? (size_t)n_q : 1, 1);
}

void pika_route_table_free(pika_route_table *t) {
    if (t->arms)
        for (int a = 0; a < t->n_arms; a++) free(t->arms[a]);
    if (t->ids)
        for (int64_t q = 0; q < t->n_q; q++) free(t->ids[q]);
    free(t->arms);
    free(t->ids);
    free(t->p);
    free(t->correct);
    free(t->cost);
    free(t->tokens_in);
    free(t->tokens_out);
    free(t->reader_cost);
    free(t->split);
    memset(t, 0, sizeof *t);
}

void pika_route_norm_costs(const pika_route_table *t, double *mean_cost, double *ct) {
    int A = t->n_arms;
    int64_t n_train = 0;
    for (int64_t q = 0; q < t->n_q; q++) n_train += t->split[q] == PIKA_SPLIT_TRAIN;
    for (int a = 0; a < A; a++) {
        double s = 0;
        int64_t k = 0;
        for (int64_t q = 0; q < t->n_q; q++) {
            if (n_train && t->split[q] != PIKA_SPLIT_TRAIN) continue;
            s += t->cost[q * A + a];
            k++;
        }
        mean_cost[a] = k ? s / (double)k : 0;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int a = 0; a < A; a++) {
        if (mean_cost[a] < lo) lo = mean_cost[a];
        if (mean_cost[a] > hi) hi = mean_cost[a];
    }
    for (int a = 0; a < A; a++) ct[a] = hi > lo ? (mean_cost[a] - lo) / (hi - lo) : 0.0;
}

int64_t *pika_route_rows(const pika_route_table *t, int split, int64_t *n) {
    int64_t *r = pika_malloc(sizeof(int64_t) * (t->n_q ? (size_t)t->n_q : 1));
    int64_t k = 0;
    for (int64_t q = 0; q < t->n_q; q++)
        if (split == PIKA_SPLIT_ALL || t->split[q] == split) r[k++] = q;
    *n = k;
    return r;
}

void pika_route_utility(const pika_route_table *t, const int64_t *rows, int64_t n, const double *ct, double lambda,
                        int use_correct, int *choice) {
    int A = t->n_arms;
    const double *y = use_correct ? t->correct : t->p;
    double pen[PIKA_ROUTE_MAX_ARMS];
    for (int a = 0; a < A; a++) pen[a] = lambda * ct[a];
    for (int64_t i = 0; i < n; i++) {
        const double *yq = y + rows[i] * A;
        int best = 0;
        double bu = yq[0] - pen[0];
        for (int a = 1; a < A; a++) {
            double u = yq[a] - pen[a];
            if (u > bu) { bu = u; best = a; }
        }
        choice[i] = best;
    }
}

void pika_route_max_prob(const pika_route_table *t, const int64_t *rows, int64_t n, int *choice) {
    int A = t->n_arms;
    for (int64_t i = 0; i < n; i++) {
        const double *pq = t->p + rows[i] * A;
        int best = 0;
        for (int a = 1; a < A; a++)
            if (pq[a] > pq[best]) best = a;
        choice[i] = best;
    }
}

static int cheapest_arm(const double *ct, int A) {
    int best = 0;
    for (int a = 1; a < A; a++)
        if (ct[a] < ct[best]) best = a;
    return best;
}

void pika_route_min_cost(const pika_route_table *t, int64_t n, const double *ct, int *choice) {
    int best = cheapest_arm(ct, t->n_arms);
    for (int64_t i = 0; i < n; i++) choice[i] = best;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void pika_route_random(const pika_route_table *t, int64_t n, uint64_t seed, int *choice) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) choice[i] = (int)(splitmix64(&s) % (uint64_t)t->n_arms);
}

/* Arms sorted by c̃ ascending, ties in table order (stable insertion sort). */
static void arms_by_cost(const double *ct, int A, int *order) {
    for (int a = 0; a < A; a++) {
        int j = a;
        while (j > 0 && ct[order[j - 1]] > ct[a]) { order[j] = order[j - 1]; j--; }
        order[j] = a;
    }
}

void pika_route_oracle(const pika_route_table *t, const int64_t *rows, int64_t n, const double *ct, int *choice) {
    int A = t->n_arms, order[PIKA_ROUTE_MAX_ARMS];
    arms_by_cost(ct, A, order);
    for (int64_t i = 0; i < n; i++) {
        const double *yq = t->correct + rows[i] * A;
        int c = order[0];
        for (int j = 0; j < A; j++)
            if (yq[order[j]] >= 0.5) { c = order[j]; break; }
        choice[i] = c;
    }
}

void pika_route_cascade(const pika_route_table *t, const int64_t *rows, int64_t n, const int *order, int n_order,
                        const double *thresholds, int *choice, int *tried) {
    int A = t->n_arms;
    for (int64_t i = 0; i < n; i++) {
        const double *pq = t->p + rows[i] * A;
        int j = 0;
        while (j < n_order - 1 && pq[order[j]] <= thresholds[j]) j++;
        choice[i] = order[j];
        if (tried) tried[i] = j + 1;
    }
}

void pika_route_score_choices(const pika_route_table *t, const int64_t *rows, int64_t n, const int *choice,
                              const int *order, const int *tried, pika_route_score *s) {
    int A = t->n_arms;
    memset(s, 0, sizeof *s);
    double acc = 0, cost = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t b = rows[i] * A;
        int a = choice[i];
        acc += t->correct[b + a];
        if (order && tried)
            for (int j = 0; j < tried[i]; j++) cost += t->cost[b + order[j]];
        else cost += t->cost[b + a];
        s->calls[a]++;
    }
    s->n = n;
    s->accuracy = n ? acc / (double)n : NAN;
    s->cost = cost;
}

double pika_route_reader_cost(const pika_route_table *t, const int64_t *rows, int64_t n, int policy, const int *order,
                              int n_order, const int *tried) {
    int A = t->n_arms;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        const double *rq = t->reader_cost + rows[i] * A;
        if (policy == PIKA_POL_UTILITY || policy == PIKA_POL_MAX_PROB)
            for (int a = 0; a < A; a++) s += rq[a];
        else if (policy == PIKA_POL_CASCADE && order && tried) {
            int m = tried[i] < n_order ? tried[i] : n_order - 1;
            for (int j = 0; j < m; j++) s += rq[order[j]];
        }
    }
    return s;
}

/* ---------------------------------------------------------------- frontier metrics */

static const double *g_cost, *g_acc;
static int cmp_cost_acc(const void *x, const void *y) {
    int i = *(const int *)x, j = *(const int *)y;
    if (g_cost[i] != g_cost[j]) return g_cost[i] < g_cost[j] ? -1 : 1;
    if (g_acc[i] != g_acc[j]) return g_acc[i] > g_acc[j] ? -1 : 1;
    return i - j;
}

static void sort_points(const double *cost, const double *acc, int n, int *idx) {
    for (int i = 0; i < n; i++) idx[i] = i;
    g_cost = cost;
    g_acc = acc;
    qsort(idx, (size_t)n, sizeof(int), cmp_cost_acc);
}

int pika_route_pareto(const double *cost, const double *acc, int n, int *idx_out) {
    if (n <= 0) return 0;
    int *idx = pika_malloc(sizeof(int) * (size_t)n);
    sort_points(cost, acc, n, idx);
    int k = 0;
    double best = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (acc[idx[i]] > best + 1e-12) {
            idx_out[k++] = idx[i];
            best = acc[idx[i]];
        }
    }
    free(idx);
    return k;
}

double pika_route_aiq(const double *cost, const double *acc, int n, double c_lo, double c_hi) {
    if (!(c_hi > c_lo) || n <= 0) return NAN;
    int *fr = pika_malloc(sizeof(int) * (size_t)n);
    int m = pika_route_pareto(cost, acc, n, fr);
    /* upper convex hull of the (increasing) frontier: monotone chain */
    double *hx = pika_malloc(sizeof(double) * (size_t)m), *hy = pika_malloc(sizeof(double) * (size_t)m);
    int h = 0;
    for (int i = 0; i < m; i++) {
        double x = cost[fr[i]], y = acc[fr[i]];
        while (h >= 2) {
            double cr = (hx[h - 1] - hx[h - 2]) * (y - hy[h - 2]) - (hy[h - 1] - hy[h - 2]) * (x - hx[h - 2]);
            if (cr >= 0) h--; /* middle point on or below the chord */
            else break;
        }
        hx[h] = x;
        hy[h] = y;
        h++;
    }
    /* integrate over [c_lo, c_hi]: 0 left of hx[0], linear between hull points, flat right of the last */
    double area = 0;
    for (int i = 0; i + 1 < h; i++) {
        double a = fmax(hx[i], c_lo), b = fmin(hx[i + 1], c_hi);
        if (b <= a) continue;
        double slope = (hy[i + 1] - hy[i]) / (hx[i + 1] - hx[i]);
        double ya = hy[i] + slope * (a - hx[i]), yb = hy[i] + slope * (b - hx[i]);
        area += 0.5 * (ya + yb) * (b - a);
    }
    if (h > 0) {
        double a = fmax(hx[h - 1], c_lo);
        if (c_hi > a) area += hy[h - 1] * (c_hi - a);
    }
    free(fr);
    free(hx);
    free(hy);
    return area / (c_hi - c_lo);
}

int pika_route_cheapest_at(const double *cost, const double *acc, int n, double best_acc, double frac) {
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (!(acc[i] >= frac * best_acc - 1e-12)) continue;
        if (best < 0 || cost[i] < cost[best]) best = i;
    }
    return best;
}

/* ---------------------------------------------------------------- APGR / CPT */

static const double *g_key;
static const int64_t *g_rows;
static int cmp_key(const void *x, const void *y) {
    int64_t i = *(const int64_t *)x, j = *(const int64_t *)y;
    if (g_key[i] != g_key[j]) return g_key[i] < g_key[j] ? -1 : 1;
    return g_rows[i] < g_rows[j] ? -1 : g_rows[i] > g_rows[j];
}

void pika_route_apgr(const pika_route_table *t, const int64_t *rows, int64_t n, int weak, int strong,
                     pika_route_pgr *out) {
    int A = t->n_arms;
    out->apgr = out->cpt50 = out->cpt80 = NAN;
    out->r_weak = out->r_strong = NAN;
    if (n <= 0) return;
    double *key = pika_malloc(sizeof(double) * (size_t)n);
    int64_t *ord = pika_malloc(sizeof(int64_t) * (size_t)n);
    double sw = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) {
        key[i] = t->p[rows[i] * A + weak];
        ord[i] = i;
        sw += t->correct[rows[i] * A + weak];
        ss += t->correct[rows[i] * A + strong];
    }
    out->r_weak = sw / (double)n;
    out->r_strong = ss / (double)n;
    double gap = out->r_strong - out->r_weak;
    if (fabs(gap) < 1e-15) { free(key); free(ord); return; }
    g_key = key;
    g_rows = rows;
    qsort(ord, (size_t)n, sizeof(int64_t), cmp_key);
    /* r(m): first m questions of ord go to strong */
    double *r = pika_malloc(sizeof(double) * (size_t)(n + 1));
    double s = sw;
    r[0] = s / (double)n;
    for (int64_t m = 1; m <= n; m++) {
        int64_t q = rows[ord[m - 1]] * A;
        s += t->correct[q + strong] - t->correct[q + weak];
        r[m] = s / (double)n;
    }
    double ap = 0;
    for (int i = 1; i <= 10; i++) {
        int64_t m = (int64_t)ceil((double)i / 10.0 * (double)n - 1e-9);
        if (m > n) m = n;
        ap += (r[m] - out->r_weak) / gap;
    }
    out->apgr = ap / 10.0;
    for (int64_t m = 0; m <= n; m++) {
        double pgr = (r[m] - out->r_weak) / gap;
        if (isnan(out->cpt50) && pgr >= 0.5 - 1e-12) out->cpt50 = (double)m / (double)n;
        if (isnan(out->cpt80) && pgr >= 0.8 - 1e-12) out->cpt80 = (double)m / (double)n;
    }
    free(r);
    free(key);
    free(ord);
}

/* ---------------------------------------------------------------- bootstrap */

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void pct_ci(double *v, int nb, double *lo, double *hi) {
    qsort(v, (size_t)nb, sizeof(double), cmp_double);
    int i = (int)floor(0.025 * (nb - 1)), j = (int)ceil(0.975 * (nb - 1));
    *lo = v[i];
    *hi = v[j];
}

void pika_route_bootstrap(const pika_route_table *t, const int64_t *rows, int64_t n, const int *ca, const int *cb,
                          int n_boot, uint64_t seed, pika_route_boot *out) {
    memset(out, 0, sizeof *out);
    int A = t->n_arms;
    if (n <= 0 || n_boot <= 0) return;
    double *v[5];
    for (int k = 0; k < 5; k++) v[k] = pika_malloc(sizeof(double) * (size_t)n_boot);
    double da = 0, db = 0;
    for (int64_t i = 0; i < n; i++) {
        da += t->correct[rows[i] * A + ca[i]];
        db += t->correct[rows[i] * A + cb[i]];
    }
    out->diff = (db - da) / (double)n;
    uint64_t s = seed;
    int le = 0, ge = 0;
    for (int b = 0; b < n_boot; b++) {
        double aa = 0, ab = 0, xa = 0, xb = 0;
        for (int64_t k = 0; k < n; k++) {
            int64_t i = (int64_t)(splitmix64(&s) % (uint64_t)n);
            int64_t base = rows[i] * A;
            aa += t->correct[base + ca[i]];
            ab += t->correct[base + cb[i]];
            xa += t->cost[base + ca[i]];
            xb += t->cost[base + cb[i]];
        }
        v[0][b] = aa / (double)n;
        v[1][b] = ab / (double)n;
        v[2][b] = xa;
        v[3][b] = xb;
        v[4][b] = (ab - aa) / (double)n;
        le += v[4][b] <= 0;
        ge += v[4][b] >= 0;
    }
    pct_ci(v[0], n_boot, &out->acc_lo[0], &out->acc_hi[0]);
    pct_ci(v[1], n_boot, &out->acc_lo[1], &out->acc_hi[1]);
    pct_ci(v[2], n_boot, &out->cost_lo[0], &out->cost_hi[0]);
    pct_ci(v[3], n_boot, &out->cost_lo[1], &out->cost_hi[1]);
    pct_ci(v[4], n_boot, &out->diff_lo, &out->diff_hi);
    double p = 2.0 * (double)(le < ge ? le : ge) / (double)n_boot;
    out->p_value = p > 1 ? 1 : p;
    for (int k = 0; k < 5; k++) free(v[k]);
}

/* ---------------------------------------------------------------- the full evaluation */

static void lambda_grid(int n, const double *given, double *out) {
    for (int i = 0; i < n; i++) out[i] = given ? given[i] : (n == 1 ? 0.0 : (double)i / (double)(n - 1));
}

static pika_route_point *add_point(pika_route_result *r, int *cap, int policy) {
    if (r->n_pts == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        r->pts = pika_realloc(r->pts, sizeof(pika_route_point) * (size_t)*cap);
    }
    pika_route_point *p = &r->pts[r->n_pts++];
    memset(p, 0, sizeof *p);
    p->policy = policy;
    p->arm = -1;
    p->lambda = NAN;
    p->threshold = NAN;
    return p;
}

int pika_route_eval(const pika_route_table *t, const pika_route_eval_opts *o, pika_route_result *r) {
    memset(r, 0, sizeof *r);
    int A = t->n_arms;
    if (A < 1 || A > PIKA_ROUTE_MAX_ARMS) return pika_set_error("route: %d arms (1..%d supported)", A, PIKA_ROUTE_MAX_ARMS);
    int64_t n;
    int64_t *rows = pika_route_rows(t, o->split, &n);
    if (n == 0) {
        free(rows);
        return pika_set_error("route: the table has no question in split '%s'", pika_route_split_name(o->split));
    }
    r->split = o->split;
    r->n = n;
    r->seed = o->seed ? o->seed : 42;
    pika_route_norm_costs(t, r->mean_cost, r->ct);
    int cap = 0;
    int *choice = pika_malloc(sizeof(int) * (size_t)n), *tried = pika_malloc(sizeof(int) * (size_t)n);
    /* always */
    for (int a = 0; a < A; a++) {
        for (int64_t i = 0; i < n; i++) choice[i] = a;
        pika_route_point *p = add_point(r, &cap, PIKA_POL_ALWAYS);
        p->arm = a;
        pika_route_score_choices(t, rows, n, choice, NULL, NULL, &p->s);
    }
    r->best_single = 0;
    for (int a = 1; a < A; a++) {
        const pika_route_score *b = &r->pts[r->best_single].s, *c = &r->pts[a].s;
        if (c->accuracy > b->accuracy + 1e-12 || (fabs(c->accuracy - b->accuracy) <= 1e-12 && c->cost < b->cost))
            r->best_single = a;
    }
    /* utility sweep */
    int nl = o->lambdas ? o->n_lambdas : (o->n_lambdas > 0 ? o->n_lambdas : 50);
    double *lam = pika_malloc(sizeof(double) * (size_t)(nl ? nl : 1));
    lambda_grid(nl, o->lambdas, lam);
    int first_util = r->n_pts;
    double reader_all = pika_route_reader_cost(t, rows, n, PIKA_POL_UTILITY, NULL, 0, NULL);
    for (int l = 0; l < nl; l++) {
        pika_route_utility(t, rows, n, r->ct, lam[l], 0, choice);
        pika_route_point *p = add_point(r, &cap, PIKA_POL_UTILITY);
        p->lambda = lam[l];
        pika_route_score_choices(t, rows, n, choice, NULL, NULL, &p->s);
        p->s.reader_cost = reader_all;
    }
    int n_util = r->n_pts - first_util;
    pika_route_max_prob(t, rows, n, choice);
    pika_route_point *mp = add_point(r, &cap, PIKA_POL_MAX_PROB);
    pika_route_score_choices(t, rows, n, choice, NULL, NULL, &mp->s);
    mp->s.reader_cost = reader_all;
    pika_route_min_cost(t, n, r->ct, choice);
    pika_route_score_choices(t, rows, n, choice, NULL, NULL, &add_point(r, &cap, PIKA_POL_MIN_COST)->s);
    pika_route_random(t, n, r->seed, choice);
    pika_route_score_choices(t, rows, n, choice, NULL, NULL, &add_point(r, &cap, PIKA_POL_RANDOM)->s);
    pika_route_oracle(t, rows, n, r->ct, choice);
    pika_route_score_choices(t, rows, n, choice, NULL, NULL, &add_point(r, &cap, PIKA_POL_ORACLE)->s);
    for (int l = 0; l < nl; l++) {
        pika_route_utility(t, rows, n, r->ct, lam[l], 1, choice);
        pika_route_point *p = add_point(r, &cap, PIKA_POL_ORACLE_UTILITY);
        p->lambda = lam[l];
        pika_route_score_choices(t, rows, n, choice, NULL, NULL, &p->s);
    }
    /* cascade */
    if (o->cascade_order && o->n_cascade > 0) {
        r->n_cascade = o->n_cascade;
        memcpy(r->cascade_order, o->cascade_order, sizeof(int) * (size_t)o->n_cascade);
    } else {
        r->n_cascade = A;
        arms_by_cost(r->ct, A, r->cascade_order);
    }
    r->cascade_cost_all = o->cascade_cost_all;
    static const double TH_DEFAULT[9] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
    const double *th = o->thresholds ? o->thresholds : TH_DEFAULT;
    int nth = o->thresholds ? o->n_thresholds : 9;
    if (r->n_cascade >= 2) {
        double thv[PIKA_ROUTE_MAX_ARMS];
        for (int k = 0; k < nth; k++) {
            for (int j = 0; j < r->n_cascade; j++) thv[j] = th[k];
            pika_route_cascade(t, rows, n, r->cascade_order, r->n_cascade, thv, choice, tried);
            pika_route_point *p = add_point(r, &cap, PIKA_POL_CASCADE);
            p->threshold = th[k];
            pika_route_score_choices(t, rows, n, choice, o->cascade_cost_all ? r->cascade_order : NULL,
                                     o->cascade_cost_all ? tried : NULL, &p->s);
            p->s.reader_cost = pika_route_reader_cost(t, rows, n, PIKA_POL_CASCADE, r->cascade_order, r->n_cascade, tried);
        }
    }
    /* frontier, savings, AIQ over the utility sweep */
    double *uc = pika_malloc(sizeof(double) * (size_t)(n_util + A + 1)), *ua = pika_malloc(sizeof(double) * (size_t)(n_util + A + 1));
    for (int i = 0; i < n_util; i++) {
        uc[i] = r->pts[first_util + i].s.cost;
        ua[i] = r->pts[first_util + i].s.accuracy;
    }
    r->pareto = pika_malloc(sizeof(int) * (size_t)(n_util ? n_util : 1));
    r->n_pareto = pika_route_pareto(uc, ua, n_util, r->pareto);
    for (int i = 0; i < r->n_pareto; i++) r->pareto[i] += first_util;
    const pika_route_score *bs = &r->pts[r->best_single].s;
    int i100 = pika_route_cheapest_at(uc, ua, n_util, bs->accuracy, 1.0);
    int i99 = pika_route_cheapest_at(uc, ua, n_util, bs->accuracy, 0.99);
    r->savings_at = i100 >= 0 ? first_util + i100 : -1;
    r->savings99_at = i99 >= 0 ? first_util + i99 : -1;
    r->savings = i100 >= 0 && bs->cost > 0 ? 1.0 - uc[i100] / bs->cost : NAN;
    r->savings99 = i99 >= 0 && bs->cost > 0 ? 1.0 - uc[i99] / bs->cost : NAN;
    r->savings_reader = i100 >= 0 && bs->cost > 0 ? 1.0 - (uc[i100] + reader_all) / bs->cost : NAN;
    double zc[PIKA_ROUTE_MAX_ARMS], za[PIKA_ROUTE_MAX_ARMS];
    double c_lo = INFINITY, c_hi = -INFINITY;
    for (int a = 0; a < A; a++) {
        zc[a] = r->pts[a].s.cost;
        za[a] = r->pts[a].s.accuracy;
        c_lo = fmin(c_lo, zc[a]);
        c_hi = fmax(c_hi, zc[a]);
    }
    for (int i = 0; i < n_util; i++) {
        c_lo = fmin(c_lo, uc[i]);
        c_hi = fmax(c_hi, uc[i]);
    }
    r->aiq_router = pika_route_aiq(uc, ua, n_util, c_lo, c_hi);
    r->aiq_zero = pika_route_aiq(zc, za, A, c_lo, c_hi);
    /* pair */
    r->has_pair = o->pair_weak >= 0 && o->pair_strong >= 0 && o->pair_weak < A && o->pair_strong < A;
    if (r->has_pair) {
        r->pair_weak = o->pair_weak;
        r->pair_strong = o->pair_strong;
        pika_route_apgr(t, rows, n, o->pair_weak, o->pair_strong, &r->pgr);
    }
    /* router point matched with best_single, and the bootstrap */
    r->match_point = r->savings_at;
    if (r->match_point < 0 && n_util > 0) {
        r->match_point = first_util;
        for (int i = 1; i < n_util; i++) {
            const pika_route_score *c = &r->pts[first_util + i].s, *b = &r->pts[r->match_point].s;
            if (c->accuracy > b->accuracy + 1e-12 || (fabs(c->accuracy - b->accuracy) <= 1e-12 && c->cost < b->cost))
                r->match_point = first_util + i;
        }
    }
    if (o->n_boot > 0 && r->match_point >= 0) {
        int *cb = pika_malloc(sizeof(int) * (size_t)n);
        for (int64_t i = 0; i < n; i++) choice[i] = r->best_single;
        pika_route_utility(t, rows, n, r->ct, r->pts[r->match_point].lambda, 0, cb);
        pika_route_bootstrap(t, rows, n, choice, cb, o->n_boot, r->seed, &r->boot);
        r->has_boot = 1;
        free(cb);
    }
    free(uc);
    free(ua);
    free(lam);
    free(choice);
    free(tried);
    free(rows);
    return 0;
}

void pika_route_result_free(pika_route_result *r) {
    free(r->pts);
    free(r->pareto);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- calibration */

static int better_budget(const pika_route_score *c, const pika_route_score *b) {
    return c->accuracy > b->accuracy + 1e-12 || (fabs(c->accuracy - b->accuracy) <= 1e-12 && c->cost < b->cost);
}

/* Score one grid value (λ, or a cascade threshold) on rows. */
static void route_cal_one(const pika_route_table *t, const pika_route_cal_opts *o, const pika_route_cal *c, const int64_t *rows,
                          int64_t n, double v, int *choice, int *tried, pika_route_score *s) {
    if (o->cascade) {
        double th[PIKA_ROUTE_MAX_ARMS];
        for (int j = 0; j < c->n_cascade; j++) th[j] = v;
        pika_route_cascade(t, rows, n, c->cascade_order, c->n_cascade, th, choice, tried);
        pika_route_score_choices(t, rows, n, choice, o->cascade_cost_all ? c->cascade_order : NULL,
                                 o->cascade_cost_all ? tried : NULL, s);
        s->reader_cost = pika_route_reader_cost(t, rows, n, PIKA_POL_CASCADE, c->cascade_order, c->n_cascade, tried);
    } else {
        pika_route_utility(t, rows, n, c->ct, v, 0, choice);
        pika_route_score_choices(t, rows, n, choice, NULL, NULL, s);
        s->reader_cost = pika_route_reader_cost(t, rows, n, PIKA_POL_UTILITY, NULL, 0, NULL);
    }
}

int pika_route_calibrate(const pika_route_table *t, const pika_route_cal_opts *o, pika_route_cal *c) {
    memset(c, 0, sizeof *c);
    int A = t->n_arms;
    if (A < 1 || A > PIKA_ROUTE_MAX_ARMS) return pika_set_error("route: %d arms (1..%d supported)", A, PIKA_ROUTE_MAX_ARMS);
    int64_t nc, ne;
    int64_t *rc = pika_route_rows(t, o->cal_split, &nc), *re = pika_route_rows(t, o->eval_split, &ne);
    if (nc == 0 || ne == 0) {
        free(rc);
        free(re);
        return pika_set_error("route calibrate: no question in split '%s'",
                              pika_route_split_name(nc == 0 ? o->cal_split : o->eval_split));
    }
    if (o->objective == PIKA_CAL_MAX_SHARE && (o->share_arm < 0 || o->share_arm >= A)) {
        free(rc);
        free(re);
        return pika_set_error("route calibrate: --max-share arm out of range");
    }
    pika_route_norm_costs(t, c->mean_cost, c->ct);
    static const double TH_DEFAULT[9] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
    int nl;
    double *lam;
    if (o->cascade) {
        if (o->cascade_order && o->n_cascade > 0) {
            c->n_cascade = o->n_cascade;
            memcpy(c->cascade_order, o->cascade_order, sizeof(int) * (size_t)o->n_cascade);
        } else {
            c->n_cascade = A;
            arms_by_cost(c->ct, A, c->cascade_order);
        }
        if (c->n_cascade < 2) {
            free(rc);
            free(re);
            return pika_set_error("route calibrate: a cascade needs at least two arms");
        }
        nl = o->thresholds ? o->n_thresholds : 9;
        lam = pika_malloc(sizeof(double) * (size_t)(nl ? nl : 1));
        memcpy(lam, o->thresholds ? o->thresholds : TH_DEFAULT, sizeof(double) * (size_t)nl);
    } else {
        nl = o->lambdas ? o->n_lambdas : (o->n_lambdas > 0 ? o->n_lambdas : 50);
        lam = pika_malloc(sizeof(double) * (size_t)(nl ? nl : 1));
        lambda_grid(nl, o->lambdas, lam);
    }
    int *choice = pika_malloc(sizeof(int) * (size_t)(nc > ne ? nc : ne));
    int *tried = pika_malloc(sizeof(int) * (size_t)(nc > ne ? nc : ne));
    int best = -1, fb = -1, feasible = 0;
    pika_route_score bs = {0}, fs = {0}, s;
    for (int l = 0; l < nl; l++) {
        route_cal_one(t, o, c, rc, nc, lam[l], choice, tried, &s);
        int ok;
        double cpq = s.cost / (double)nc, share = (double)s.calls[o->share_arm < 0 ? 0 : o->share_arm] / (double)nc;
        if (o->objective == PIKA_CAL_BUDGET) {
            ok = cpq <= o->value + 1e-12;
            if (ok && (best < 0 || better_budget(&s, &bs))) { best = l; bs = s; }
            if (fb < 0 || s.cost < fs.cost) { fb = l; fs = s; }
        } else if (o->objective == PIKA_CAL_TARGET_ACC) {
            ok = s.accuracy >= o->value - 1e-12;
            if (ok && (best < 0 || s.cost < bs.cost)) { best = l; bs = s; }
            if (fb < 0 || better_budget(&s, &fs)) { fb = l; fs = s; }
        } else {
            ok = share <= o->value + 1e-12;
            if (ok && (best < 0 || better_budget(&s, &bs))) { best = l; bs = s; }
            if (fb < 0 || s.calls[o->share_arm] < fs.calls[o->share_arm]) { fb = l; fs = s; }
        }
        if (ok) feasible = 1;
    }
    int pick = best >= 0 ? best : fb;
    c->feasible = feasible;
    c->lambda = o->cascade ? NAN : lam[pick];
    c->threshold = o->cascade ? lam[pick] : NAN;
    c->cal = best >= 0 ? bs : fs;
    route_cal_one(t, o, c, re, ne, lam[pick], choice, tried, &c->eval);
    free(lam);
    free(tried);
    free(choice);
    free(rc);
    free(re);
    return 0;
}
