/* probe.c — linear probes on dense (activation) and sparse (TF-IDF) features: ridge over an alpha
 * grid from one factorization per fold (Gram matrices from per-fold blocks, OpenBLAS + LAPACKE),
 * L2 logistic regression (batched Newton-CG over all folds, or liblinear) with warm starts along
 * the alpha path, stratified seeded k-fold CV, (layer, position, alpha) selection, Platt calibration
 * on out-of-fold scores, and the probe file (JSON, versioned). Objectives and conventions: include/pika/probe.h. */
#include "pika/probe.h"

#include <cJSON.h>
#include <cblas.h>
#include <lapacke.h>
#include <linear.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/metrics.h"
#include "pika/threadpool.h"
#include "pika/util.h"

void pika_fit_opts_default(pika_fit_opts *o) {
    memset(o, 0, sizeof *o);
    o->task = PIKA_TARGET_AUTO;
    o->n_alpha = 5;
    double a[5] = {1, 10, 100, 1000, 10000};
    memcpy(o->alpha, a, sizeof a);
    o->standardize = 1;
    o->intercept = 1;
    o->k_folds = 5;
    o->seed = 42;
    o->eps = 1e-3;
    o->bias_scale = 10;
    o->ridge_solver = PIKA_RIDGE_AUTO;
    o->n_threads = pika_n_cores();
}

void pika_fit_opts_paper(pika_fit_opts *o) {
    pika_fit_opts_default(o);
    o->standardize = 0;
    o->intercept = 0;
}

int pika_resolve_task(int task, const double *y, int64_t n) {
    if (n < 2) return pika_set_error("need at least 2 labelled training rows (got %lld)", (long long)n);
    int all01 = 1;
    int64_t pos = 0;
    double lo = y[0], hi = y[0];
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) return pika_set_error("target is not finite at row %lld", (long long)i);
        if (y[i] != 0 && y[i] != 1) all01 = 0;
        pos += y[i] == 1;
        if (y[i] < lo) lo = y[i];
        if (y[i] > hi) hi = y[i];
    }
    if (task == PIKA_TARGET_AUTO) task = all01 ? PIKA_TARGET_BINARY : PIKA_TARGET_CONTINUOUS;
    if (task == PIKA_TARGET_BINARY) {
        if (!all01) return pika_set_error("binary target must be 0/1 (or true/false)");
        if (pos == 0 || pos == n)
            return pika_set_error("one-class labels: all %lld training rows are %d; a probe needs both classes", (long long)n,
                                  pos ? 1 : 0);
    } else if (lo == hi) {
        return pika_set_error("constant target (all values %g); nothing to predict", lo);
    }
    return task;
}

/* ---------------------------------------------------------------- folds */

int pika_make_folds(const double *y, int64_t n, int task, int k, uint64_t seed, int *fold) {
    if (k < 2) return pika_set_error("need at least 2 folds");
    if (n < 2 * k) return pika_set_error("%lld training rows are too few for %d folds", (long long)n, k);
    pika_rng r;
    pika_rng_seed(&r, seed);
    int64_t *idx = pika_malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    pika_rng_shuffle(&r, idx, n);
    if (task == PIKA_TARGET_BINARY) {
        int64_t cnt[2] = {0, 0};
        for (int64_t i = 0; i < n; i++) cnt[y[i] == 1]++;
        if (cnt[0] < k || cnt[1] < k) {
            free(idx);
            return pika_set_error("stratified %d-fold CV needs at least %d rows of each class (have %lld zeros, %lld ones)", k, k,
                                  (long long)cnt[0], (long long)cnt[1]);
        }
        int64_t c[2] = {pika_rng_below(&r, k), 0};
        c[1] = c[0] + cnt[0]; /* continue the round robin so fold sizes stay balanced */
        for (int64_t t = 0; t < n; t++) {
            int64_t i = idx[t];
            int cl = y[i] == 1;
            if (cl == 0) fold[i] = (int)(c[0]++ % k);
        }
        for (int64_t t = 0; t < n; t++) {
            int64_t i = idx[t];
            if (y[i] == 1) fold[i] = (int)(c[1]++ % k);
        }
    } else {
        /* stable sort of the shuffled order by y (insertion into merge sort) */
        int64_t *tmp = pika_malloc(sizeof(int64_t) * (size_t)n);
        for (int64_t w = 1; w < n; w *= 2) {
            for (int64_t lo = 0; lo < n; lo += 2 * w) {
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
                int64_t i = lo, j = mid, q = lo;
                while (i < mid && j < hi) tmp[q++] = y[idx[j]] < y[idx[i]] ? idx[j++] : idx[i++];
                while (i < mid) tmp[q++] = idx[i++];
                while (j < hi) tmp[q++] = idx[j++];
            }
            memcpy(idx, tmp, sizeof(int64_t) * (size_t)n);
        }
        free(tmp);
        int64_t perm[64];
        for (int64_t g = 0; g < n; g += k) {
            for (int j = 0; j < k; j++) perm[j] = j;
            pika_rng_shuffle(&r, perm, k);
            for (int j = 0; j < k && g + j < n; j++) fold[idx[g + j]] = (int)perm[j];
        }
    }
    free(idx);
    return 0;
}

/* ---------------------------------------------------------------- linear model */

void pika_linear_free(pika_linear *m) {
    free(m->mean);
    free(m->scale);
    free(m->w);
    memset(m, 0, sizeof *m);
}

double pika_linear_score(const pika_linear *m, const double *x) {
    double s = m->b;
    for (int j = 0; j < m->d; j++) s += m->w[j] * (x[j] - m->mean[j]) / m->scale[j];
    return s;
}

static double fold_metric(int task, const double *y, const double *s, int64_t n) {
    return task == PIKA_TARGET_BINARY ? pika_auroc(y, s, n) : pika_spearman(s, y, n);
}

/* Mean / scale over rows (all rows of X [n x d]) per the options. */
static void col_stats(const double *X, int64_t n, int d, const pika_fit_opts *o, double *mean, double *scale) {
    for (int j = 0; j < d; j++) { mean[j] = 0; scale[j] = 1; }
    if (!o->standardize && !o->intercept) return;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mean[j] += X[i * d + j];
    for (int j = 0; j < d; j++) mean[j] /= (double)n;
    if (!o->standardize) return;
    double *v = pika_calloc((size_t)d, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double t = X[i * d + j] - mean[j];
            v[j] += t * t;
        }
    for (int j = 0; j < d; j++) {
        double s = sqrt(v[j] / (double)n);
        scale[j] = s > 1e-12 * (1 + fabs(mean[j])) ? s : 1.0;
    }
    free(v);
}

/* ---------------------------------------------------------------- ridge core */

/* out[a*m ..] = (M + alpha_a I)^{-1} rhs for a symmetric PSD M [m x m] (upper triangle used). */
static int solve_shifted(const double *M, int m, const double *rhs, const double *alphas, int A, int method, double *out) {
    size_t mm = (size_t)m * (size_t)m;
    double *W = pika_malloc(sizeof(double) * mm);
    if (method == PIKA_RIDGE_AUTO) method = A <= 12 ? PIKA_RIDGE_CHOL : PIKA_RIDGE_EIG; /* measured crossover, d = 1536 */
    int rc = 0;
    if (method == PIKA_RIDGE_EIG) {
        double *lam = pika_malloc(sizeof(double) * (size_t)m), *t = pika_malloc(sizeof(double) * (size_t)m);
        memcpy(W, M, sizeof(double) * mm);
        /* The row-major upper triangle is the column-major lower one: no transposition copies.
         * On return (column-major) eigenvector j is column j, i.e. row j of W seen row-major. */
        if (LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', m, W, m, lam) != 0) rc = pika_set_error("ridge: eigendecomposition failed");
        if (!rc) {
            /* t_j = v_j . rhs */
            cblas_dgemv(CblasRowMajor, CblasNoTrans, m, m, 1.0, W, m, rhs, 1, 0.0, t, 1);
            double *c = pika_malloc(sizeof(double) * (size_t)m * (size_t)A); /* [m x A] */
            for (int j = 0; j < m; j++) {
                double l = lam[j] > 0 ? lam[j] : 0;
                for (int a = 0; a < A; a++) c[(size_t)j * A + a] = t[j] / (l + alphas[a]);
            }
            /* out' [m x A] = sum_j v_j c_j = W' c, stored as out [A x m] */
            double *o2 = pika_malloc(sizeof(double) * (size_t)m * (size_t)A);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, A, m, 1.0, W, m, c, A, 0.0, o2, A);
            for (int j = 0; j < m; j++)
                for (int a = 0; a < A; a++) out[(size_t)a * m + j] = o2[(size_t)j * A + a];
            free(c);
            free(o2);
        }
        free(lam);
        free(t);
    } else {
        for (int a = 0; a < A && !rc; a++) {
            memcpy(W, M, sizeof(double) * mm);
            for (int j = 0; j < m; j++) W[(size_t)j * m + j] += alphas[a];
            memcpy(out + (size_t)a * m, rhs, sizeof(double) * (size_t)m);
            if (LAPACKE_dposv(LAPACK_COL_MAJOR, 'L', m, 1, W, m, out + (size_t)a * m, m) != 0)
                rc = pika_set_error("ridge: Cholesky failed (alpha=%g)", alphas[a]);
        }
    }
    free(W);
    return rc;
}

/* Fit ridge on explicit rows X [n x d] for all alphas: W [A x d] in standardized space,
 * mean/scale/intercept b (same for all alphas). */
static int ridge_fit_all(const double *X, int64_t n, int d, const double *y, const pika_fit_opts *o, const double *alphas,
                         int A, double *mean, double *scale, double *W, double *b) {
    col_stats(X, n, d, o, mean, scale);
    double ym = 0;
    if (o->intercept) {
        for (int64_t i = 0; i < n; i++) ym += y[i];
        ym /= (double)n;
    }
    *b = ym;
    double *Z = pika_malloc(sizeof(double) * (size_t)n * (size_t)d), *yc = pika_malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        yc[i] = y[i] - ym;
        for (int j = 0; j < d; j++) Z[i * d + j] = (X[i * d + j] - mean[j]) / scale[j];
    }
    int rc;
    if (n >= d) {
        double *G = pika_malloc(sizeof(double) * (size_t)d * (size_t)d), *r = pika_malloc(sizeof(double) * (size_t)d);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, (int)n, 1.0, Z, d, 0.0, G, d);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, d, 1.0, Z, d, yc, 1, 0.0, r, 1);
        rc = solve_shifted(G, d, r, alphas, A, o->ridge_solver, W);
        free(G);
        free(r);
    } else {
        double *K = pika_malloc(sizeof(double) * (size_t)n * (size_t)n), *beta = pika_malloc(sizeof(double) * (size_t)n * A);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, d, 1.0, Z, d, 0.0, K, (int)n);
        rc = solve_shifted(K, (int)n, yc, alphas, A, o->ridge_solver, beta);
        if (!rc) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, A, d, (int)n, 1.0, beta, (int)n, Z, d, 0.0, W, d);
        free(K);
        free(beta);
    }
    free(Z);
    free(yc);
    return rc;
}

/* Large per-sweep buffers are kept between (layer, position) configurations of one thread: freeing
 * and re-mapping ~200 MB per configuration costs more in page faults than the solves save.
 * pika_probe_train releases them at the end. */
static _Thread_local struct { void *p; size_t cap; } g_scratch[2];

static void *scratch_get(int slot, size_t bytes) {
    if (g_scratch[slot].cap < bytes) {
        free(g_scratch[slot].p);
        g_scratch[slot].p = pika_malloc(bytes);
        g_scratch[slot].cap = bytes;
    }
    return g_scratch[slot].p;
}

/* The worker threads of the probe solvers: one pika_pool (core/threadpool) per calling thread, kept
 * between solver passes of a sweep and released with the scratch buffers. */
static _Thread_local pika_pool *g_pool;

static pika_pool *probe_pool(int nt) {
    if (g_pool && pika_pool_size(g_pool) != nt) { pika_pool_free(g_pool); g_pool = NULL; }
    if (!g_pool) g_pool = pika_pool_new(nt);
    return g_pool;
}

static void scratch_release(void) {
    if (g_pool) { pika_pool_free(g_pool); g_pool = NULL; }
    for (int i = 0; i < 2; i++) {
        free(g_scratch[i].p);
        g_scratch[i].p = NULL;
        g_scratch[i].cap = 0;
    }
}

/* Ridge CV. Primal (d <= smallest training fold): Gram matrices of each fold block are computed once
 * (on rows shifted by the global mean, for accuracy) and each fold's training Gram is the total
 * minus its own block, corrected for that fold's centering and scaling. Dual otherwise. */
static int ridge_cv(const double *X, int64_t n, int d, const double *y, const int *fold, const pika_fit_opts *o,
                    double *scores /* [k][A] */, double *oof /* [A*n] or NULL */) {
    int k = o->k_folds, A = o->n_alpha;
    int64_t *cnt = pika_calloc((size_t)k, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) cnt[fold[i]]++;
    int64_t min_train = n;
    for (int f = 0; f < k; f++)
        if (n - cnt[f] < min_train) min_train = n - cnt[f];
    int rc = 0;
    double *pred = pika_malloc(sizeof(double) * (size_t)n * A); /* [n x A] in fold-block order */
    int64_t *order = pika_malloc(sizeof(int64_t) * (size_t)n), *start = pika_calloc((size_t)k + 1, sizeof(int64_t));
    for (int f = 0; f < k; f++) start[f + 1] = start[f] + cnt[f];
    {
        int64_t *pos = pika_malloc(sizeof(int64_t) * (size_t)k);
        for (int f = 0; f < k; f++) pos[f] = start[f];
        for (int64_t i = 0; i < n; i++) order[pos[fold[i]]++] = i;
        free(pos);
    }
    if (d <= min_train) {
        size_t dd = (size_t)d * (size_t)d;
        double *c = pika_calloc((size_t)d, sizeof(double));
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < d; j++) c[j] += X[i * d + j];
        for (int j = 0; j < d; j++) c[j] /= (double)n;
        double *Xb = scratch_get(0, sizeof(double) * (size_t)n * (size_t)d); /* shifted rows in fold order */
        double *yb = pika_malloc(sizeof(double) * (size_t)n);
        for (int64_t t = 0; t < n; t++) {
            const double *src = X + order[t] * d;
            for (int j = 0; j < d; j++) Xb[t * d + j] = src[j] - c[j];
            yb[t] = y[order[t]];
        }
        double *S = scratch_get(1, sizeof(double) * dd * (size_t)(k + 1)); /* S[k] = total */
        double *sk = pika_calloc((size_t)(k + 1) * d, sizeof(double));  /* column sums */
        double *pk = pika_calloc((size_t)(k + 1) * d, sizeof(double));  /* X'^T y per block */
        double *ysum = pika_calloc((size_t)k + 1, sizeof(double));
        memset(S + dd * k, 0, sizeof(double) * dd);
        for (int f = 0; f < k; f++) {
            const double *B = Xb + start[f] * d;
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, (int)cnt[f], 1.0, B, d, 0.0, S + dd * f, d);
            cblas_daxpy((int)dd, 1.0, S + dd * f, 1, S + dd * k, 1);
            cblas_dgemv(CblasRowMajor, CblasTrans, (int)cnt[f], d, 1.0, B, d, yb + start[f], 1, 0.0, pk + (size_t)f * d, 1);
            for (int64_t t = start[f]; t < start[f + 1]; t++) {
                for (int j = 0; j < d; j++) sk[(size_t)f * d + j] += Xb[t * d + j];
                ysum[f] += yb[t];
            }
            for (int j = 0; j < d; j++) {
                sk[(size_t)k * d + j] += sk[(size_t)f * d + j];
                pk[(size_t)k * d + j] += pk[(size_t)f * d + j];
            }
            ysum[k] += ysum[f];
        }
        double *G = pika_malloc(sizeof(double) * dd), *r = pika_malloc(sizeof(double) * d), *W = pika_malloc(sizeof(double) * d * A);
        double *m = pika_malloc(sizeof(double) * d), *sc = pika_malloc(sizeof(double) * d), *s = pika_malloc(sizeof(double) * d);
        double *U = pika_malloc(sizeof(double) * d * A), *P = pika_malloc(sizeof(double) * (size_t)n * A);
        for (int f = 0; f < k && !rc; f++) {
            double nt = (double)(n - cnt[f]);
            for (int j = 0; j < d; j++) s[j] = sk[(size_t)k * d + j] - sk[(size_t)f * d + j];
            /* centering vector m' (shifted coords) */
            int center = o->standardize || o->intercept;
            for (int j = 0; j < d; j++) m[j] = center ? s[j] / nt : -c[j];
            /* M = S_T - s m' - m s' + nt m m' */
            const double *Sf = S + dd * f, *St = S + dd * k;
            for (int i = 0; i < d; i++)
                for (int j = i; j < d; j++)
                    G[(size_t)i * d + j] = St[(size_t)i * d + j] - Sf[(size_t)i * d + j] - s[i] * m[j] - m[i] * s[j] + nt * m[i] * m[j];
            for (int j = 0; j < d; j++) {
                sc[j] = 1.0;
                if (o->standardize) {
                    double v = G[(size_t)j * d + j] / nt, sd = sqrt(v > 0 ? v : 0);
                    sc[j] = sd > 1e-12 * (1 + fabs(m[j] + c[j])) ? sd : 1.0;
                }
            }
            if (o->standardize)
                for (int i = 0; i < d; i++)
                    for (int j = i; j < d; j++) G[(size_t)i * d + j] /= sc[i] * sc[j];
            double ysumT = ysum[k] - ysum[f], ym = o->intercept ? ysumT / nt : 0;
            /* r = D^-1 (X'_T^T y - ym s - m (ysumT - nt ym)) */
            for (int j = 0; j < d; j++) {
                double xy = pk[(size_t)k * d + j] - pk[(size_t)f * d + j];
                r[j] = (xy - ym * s[j] - m[j] * (ysumT - nt * ym)) / sc[j];
            }
            rc = solve_shifted(G, d, r, o->alpha, A, o->ridge_solver, W);
            if (rc) break;
            /* held-out: score = X'_V (w/sc) - m.(w/sc) + ym */
            for (int a = 0; a < A; a++)
                for (int j = 0; j < d; j++) U[(size_t)j * A + a] = W[(size_t)a * d + j] / sc[j];
            double off[PIKA_MAX_ALPHA];
            for (int a = 0; a < A; a++) {
                off[a] = ym;
                for (int j = 0; j < d; j++) off[a] -= m[j] * U[(size_t)j * A + a];
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cnt[f], A, d, 1.0, Xb + start[f] * d, d, U, A, 0.0,
                        P + start[f] * A, A);
            for (int64_t t = start[f]; t < start[f + 1]; t++)
                for (int a = 0; a < A; a++) pred[t * A + a] = P[t * A + a] + off[a];
        }
        free(G); free(r); free(W); free(m); free(sc); free(s); free(U); free(P);
        free(sk); free(pk); free(ysum); free(yb); free(c);
    } else {
        /* dual, explicit per fold */
        double *Xt = pika_malloc(sizeof(double) * (size_t)n * d), *yt = pika_malloc(sizeof(double) * (size_t)n);
        double *mean = pika_malloc(sizeof(double) * d), *scale = pika_malloc(sizeof(double) * d), *W = pika_malloc(sizeof(double) * d * A);
        for (int f = 0; f < k && !rc; f++) {
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++)
                if (fold[i] != f) { memcpy(Xt + m * d, X + i * d, sizeof(double) * d); yt[m++] = y[i]; }
            double b;
            rc = ridge_fit_all(Xt, m, d, yt, o, o->alpha, A, mean, scale, W, &b);
            for (int64_t t = start[f]; t < start[f + 1] && !rc; t++) {
                const double *x = X + order[t] * d;
                for (int a = 0; a < A; a++) {
                    double sc = b;
                    for (int j = 0; j < d; j++) sc += W[(size_t)a * d + j] * (x[j] - mean[j]) / scale[j];
                    pred[t * A + a] = sc;
                }
            }
        }
        free(Xt); free(yt); free(mean); free(scale); free(W);
    }
    if (!rc) {
        double *ys = pika_malloc(sizeof(double) * n), *ps = pika_malloc(sizeof(double) * n);
        for (int f = 0; f < k; f++) {
            for (int a = 0; a < A; a++) {
                int64_t q = 0;
                for (int64_t t = start[f]; t < start[f + 1]; t++, q++) { ys[q] = y[order[t]]; ps[q] = pred[t * A + a]; }
                scores[f * A + a] = fold_metric(o->task, ys, ps, q);
            }
        }
        if (oof)
            for (int64_t t = 0; t < n; t++)
                for (int a = 0; a < A; a++) oof[(size_t)a * n + order[t]] = pred[t * A + a];
        free(ys);
        free(ps);
    }
    free(pred); free(order); free(start); free(cnt);
    return rc;
}

/* ---------------------------------------------------------------- logistic (liblinear) */

static void ll_quiet(const char *s) { (void)s; }

/* One fold (or a full fit when fold == NULL) of L2 logistic regression over all alphas, strongest
 * regularization first with warm starts. Rows are given densely (X [n x d]) or sparsely (Z). */
typedef struct {
    const double *X;
    const pika_csr *Z;
    int64_t n;
    int d;
    const double *y;
    const int *fold;
    int f;                   /* held-out fold, -1 = fit on all rows */
    const pika_fit_opts *o;
    const double *alphas;
    int A;
    /* outputs */
    double *pred;            /* [A x n]: scores for held-out rows (others untouched) */
    double *W;               /* [A x d] weights in standardized space (full fit only) */
    double *bias;            /* [A] */
    double *mean, *scale;    /* [d] (dense only) */
    int rc;
    char err[256];
} lr_job;

static void *lr_run(void *arg) {
    lr_job *J = arg;
    const pika_fit_opts *o = J->o;
    int d = J->d, A = J->A;
    int64_t n = J->n, m = 0;
    for (int64_t i = 0; i < n; i++) m += !J->fold || J->fold[i] != J->f;
    double *mean = J->mean ? J->mean : pika_malloc(sizeof(double) * d), *scale = J->scale ? J->scale : pika_malloc(sizeof(double) * d);
    for (int j = 0; j < d; j++) { mean[j] = 0; scale[j] = 1; }
    if (J->X) {
        /* stats over training rows */
        double *Xt = pika_malloc(sizeof(double) * (size_t)m * d);
        int64_t q = 0;
        for (int64_t i = 0; i < n; i++)
            if (!J->fold || J->fold[i] != J->f) memcpy(Xt + (q++) * d, J->X + i * d, sizeof(double) * d);
        col_stats(Xt, m, d, o, mean, scale);
        free(Xt);
    }
    int use_bias = o->intercept;
    double B = o->bias_scale;
    /* build liblinear problem */
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++)
        if (!J->fold || J->fold[i] != J->f) nnz += (J->X ? d : J->Z->rowptr[i + 1] - J->Z->rowptr[i]) + 2;
    struct feature_node *space = pika_malloc(sizeof(struct feature_node) * (size_t)nnz);
    struct feature_node **xs = pika_malloc(sizeof(struct feature_node *) * (size_t)m);
    double *ly = pika_malloc(sizeof(double) * (size_t)m);
    int64_t q = 0, p = 0;
    for (int64_t i = 0; i < n; i++) {
        if (J->fold && J->fold[i] == J->f) continue;
        xs[q] = space + p;
        if (J->X) {
            for (int j = 0; j < d; j++) {
                space[p].index = j + 1;
                space[p++].value = (J->X[i * d + j] - mean[j]) / scale[j];
            }
        } else {
            for (int64_t t = J->Z->rowptr[i]; t < J->Z->rowptr[i + 1]; t++) {
                space[p].index = J->Z->col[t] + 1;
                space[p++].value = J->Z->val[t];
            }
        }
        if (use_bias) { space[p].index = d + 1; space[p++].value = B; }
        space[p++].index = -1;
        ly[q++] = J->y[i] == 1 ? 1.0 : -1.0;
    }
    struct problem prob = {.l = (int)m, .n = d + (use_bias ? 1 : 0), .y = ly, .x = xs, .bias = use_bias ? B : -1};
    int nw = d + (use_bias ? 1 : 0);
    double *init = pika_calloc((size_t)nw, sizeof(double));
    /* alphas ordered from largest to smallest (warm start along the path) */
    int ord[PIKA_MAX_ALPHA];
    for (int a = 0; a < A; a++) ord[a] = a;
    for (int a = 1; a < A; a++)
        for (int b = a; b > 0 && J->alphas[ord[b]] > J->alphas[ord[b - 1]]; b--) { int t = ord[b]; ord[b] = ord[b - 1]; ord[b - 1] = t; }
    double *w = pika_malloc(sizeof(double) * (size_t)nw);
    for (int ai = 0; ai < A && !J->rc; ai++) {
        int a = ord[ai];
        struct parameter par = {.solver_type = L2R_LR, .eps = o->eps, .C = 1.0 / J->alphas[a], .p = 0.1, .init_sol = init};
        const char *e = check_parameter(&prob, &par);
        if (e) { J->rc = -1; snprintf(J->err, sizeof J->err, "liblinear: %s", e); break; }
        struct model *mod = train(&prob, &par);
        double sign = mod->label[0] == 1 ? 1.0 : -1.0; /* decision value is for label[0] */
        for (int j = 0; j < nw; j++) { w[j] = sign * mod->w[j]; init[j] = mod->w[j]; }
        free_and_destroy_model(&mod);
        double bb = use_bias ? w[d] * B : 0.0;
        if (J->W) {
            memcpy(J->W + (size_t)a * d, w, sizeof(double) * d);
            J->bias[a] = bb;
        }
        if (J->pred && J->fold) {
            for (int64_t i = 0; i < n; i++) {
                if (J->fold[i] != J->f) continue;
                double s = bb;
                if (J->X) for (int j = 0; j < d; j++) s += w[j] * (J->X[i * d + j] - mean[j]) / scale[j];
                else for (int64_t t = J->Z->rowptr[i]; t < J->Z->rowptr[i + 1]; t++) s += w[J->Z->col[t]] * J->Z->val[t];
                J->pred[(size_t)a * n + i] = s;
            }
        }
    }
    free(w); free(init); free(space); free(xs); free(ly);
    if (!J->mean) free(mean);
    if (!J->scale) free(scale);
    return NULL;
}

typedef struct {
    lr_job *jobs;
    int k;
} lr_batch;

static void lr_pool_fn(void *ctx, int ith, int nth) {
    lr_batch *b = ctx;
    for (int f = ith; f < b->k; f += nth) lr_run(&b->jobs[f]);
}

static int run_jobs(lr_job *jobs, int k, int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > k) n_threads = k;
    set_print_string_function(ll_quiet);
    lr_batch b = {jobs, k};
    pika_pool_run(probe_pool(n_threads), lr_pool_fn, &b);
    for (int f = 0; f < k; f++)
        if (jobs[f].rc) return pika_set_error("%s", jobs[f].err);
    return 0;
}

static void finish_scores(const double *pred, int64_t n, const double *y, const int *fold, int k, int A, int task,
                          double *scores) {
    double *ys = pika_malloc(sizeof(double) * n), *ps = pika_malloc(sizeof(double) * n);
    for (int f = 0; f < k; f++)
        for (int a = 0; a < A; a++) {
            int64_t q = 0;
            for (int64_t i = 0; i < n; i++)
                if (fold[i] == f) { ys[q] = y[i]; ps[q++] = pred[(size_t)a * n + i]; }
            scores[f * A + a] = fold_metric(task, ys, ps, q);
        }
    free(ys);
    free(ps);
}

static void summarize(const double *scores, int k, int A, double *cv_mean, double *cv_std) {
    for (int a = 0; a < A; a++) {
        double s = 0, s2 = 0;
        for (int f = 0; f < k; f++) s += scores[f * A + a];
        s /= k;
        for (int f = 0; f < k; f++) s2 += (scores[f * A + a] - s) * (scores[f * A + a] - s);
        cv_mean[a] = s;
        cv_std[a] = sqrt(s2 / k);
    }
}

/* ---------------------------------------------------------------- logistic (batched Newton-CG) */

/* Margins pass over X [n x d] (float32 rows, double sums), split over threads by rows:
 *   M[i*F+f] = X_i . T[f] + cst[f]        (T: [F x d])
 * Used for the exact margins of a solution; the gradient and Hessian-vector passes are hv_run below. */
typedef struct {
    const float *X;
    int64_t i0, i1;
    int d, F;
    const double *T, *cst;
    double *M;
    int simd;          /* use the AVX2 kernel (pika_simd_level() >= AVX2) */
} mm_job;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static double dot_avx2(const float *x, const double *t, int d) {
    int d16 = d & ~15, j = 0;
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    for (; j < d16; j += 16) {
        a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j)), _mm256_loadu_pd(t + j), a0);
        a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j + 4)), _mm256_loadu_pd(t + j + 4), a1);
        a2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j + 8)), _mm256_loadu_pd(t + j + 8), a2);
        a3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j + 12)), _mm256_loadu_pd(t + j + 12), a3);
    }
    __m256d a = _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3));
    double buf[4];
    _mm256_storeu_pd(buf, a);
    double acc = (buf[0] + buf[1]) + (buf[2] + buf[3]);
    for (; j < d; j++) acc += x[j] * t[j];
    return acc;
}
#endif

static void *mm_work(void *arg) {
    mm_job *J = arg;
    int d = J->d, F = J->F;
    for (int64_t i = J->i0; i < J->i1; i++) {
        const float *x = J->X + i * d;
        for (int f = 0; f < F; f++) {
            const double *t = J->T + (size_t)f * d;
#if defined(__x86_64__) && defined(__GNUC__)
            if (J->simd) {
                J->M[i * F + f] = dot_avx2(x, t, d) + J->cst[f];
                continue;
            }
#endif
            double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            int j = 0;
            for (; j + 4 <= d; j += 4) { a0 += x[j] * t[j]; a1 += x[j + 1] * t[j + 1]; a2 += x[j + 2] * t[j + 2]; a3 += x[j + 3] * t[j + 3]; }
            for (; j < d; j++) a0 += x[j] * t[j];
            J->M[i * F + f] = (a0 + a1) + (a2 + a3) + J->cst[f];
        }
    }
    return NULL;
}

static void mm_pool_fn(void *ctx, int ith, int nth) {
    (void)nth;
    mm_work(&((mm_job *)ctx)[ith]);
}

static void mm_run(const float *X, int64_t n, int d, int F, const double *T, double *M, const double *cst) {
    int nt = pika_n_cores();
    if (nt > 16) nt = 16;
    if ((int64_t)nt * 64 > n) nt = 1;
    mm_job jobs[16];
    int simd = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    simd = pika_simd_level() >= PIKA_SIMD_AVX2; /* the one CPU-feature check (util.h) */
#endif
    for (int t = 0; t < nt; t++)
        jobs[t] = (mm_job){.X = X, .i0 = n * t / nt, .i1 = n * (t + 1) / nt, .d = d, .F = F, .T = T, .cst = cst, .M = M, .simd = simd};
    pika_pool_run(probe_pool(nt), mm_pool_fn, jobs);
}

/* Hessian-vector pass in float32 (the CG inner loop, ~3/4 of the solver's work): for each row i and
 * each active problem f (rows with fold[i] != f):
 *   u = X_i . T[f] + cst[f];  U[i*F+f] = u;  r = Dw[i*F+f] u;  G[f] += r X_i;  rs[f] += r
 * Products and the per-row sums run in float (8 or 16 lanes), r and the totals in double: sums over rows
 * are accumulated in float for at most HV_FLUSH rows, then added to the double G. Relative error
 * ~1e-6, far below what truncated CG needs (the gradient and the margins stay double). */
#define HV_FLUSH 64
typedef struct {
    const float *X;
    int64_t i0, i1;
    int d, F;
    const float *T;        /* [F x d] */
    const double *cst, *Dw;/* [F], [n x F] */
    const double *R;       /* [n x F]: backward mode (no T): r = R[i*F+f] */
    const int *fold;       /* NULL: every row is in every problem */
    const int *act;        /* [F] problems to compute */
    double *G, *rs, *U;    /* [F x d] (this thread's part), [F], [n x F] (rows in problem f only) */
    float *acc;            /* [F x d] scratch */
    int simd;
} hv_job;

static void hv_flush(hv_job *J) {
    size_t fd = (size_t)J->F * J->d;
    for (size_t q = 0; q < fd; q++) { J->G[q] += J->acc[q]; J->acc[q] = 0; }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static double hsum8(__m256 a) {
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    double b[4];
    _mm256_storeu_pd(b, _mm256_add_pd(lo, hi));
    return (b[0] + b[1]) + (b[2] + b[3]);
}

/* Four rows at a time: each T[f] chunk is loaded once for 4 dot products, each G chunk once for 4 axpys. */
__attribute__((target("avx2,fma"))) static void hv_work_avx2(hv_job *J) {
    int d = J->d, F = J->F, d8 = d & ~7;
    int64_t blk = 0;
    for (int64_t i = J->i0; i < J->i1; i += 4, blk++) {
        int nb = J->i1 - i < 4 ? (int)(J->i1 - i) : 4;
        const float *x0 = J->X + i * d, *x1 = J->X + (i + (nb > 1)) * d, *x2 = J->X + (i + (nb > 2 ? 2 : 0)) * d,
                    *x3 = J->X + (i + (nb > 3 ? 3 : 0)) * d;
        for (int f = 0; f < F; f++) {
            if (!J->act[f]) continue;
            float r[4] = {0, 0, 0, 0};
            int any = 0, j = 0;
            if (J->R) {
                for (int b = 0; b < nb; b++) {
                    double rr = J->R[(i + b) * F + f];
                    J->rs[f] += rr;
                    r[b] = (float)rr;
                    any |= rr != 0;
                }
            } else {
                const float *t = J->T + (size_t)f * d;
                __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
                for (; j < d8; j += 8) {
                    __m256 tv = _mm256_loadu_ps(t + j);
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + j), tv, a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + j), tv, a1);
                    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + j), tv, a2);
                    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + j), tv, a3);
                }
                double u[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
                for (; j < d; j++) { u[0] += x0[j] * t[j]; u[1] += x1[j] * t[j]; u[2] += x2[j] * t[j]; u[3] += x3[j] * t[j]; }
                for (int b = 0; b < nb; b++) {
                    int64_t q = (i + b) * F + f;
                    if (J->fold && J->fold[i + b] == f) continue;
                    double v = u[b] + J->cst[f], rr = J->Dw[q] * v;
                    if (J->U) J->U[q] = v;
                    J->rs[f] += rr;
                    r[b] = (float)rr;
                    any |= rr != 0;
                }
            }
            if (!any) continue;
            float *g = J->acc + (size_t)f * d;
            __m256 r0 = _mm256_set1_ps(r[0]), r1 = _mm256_set1_ps(r[1]), r2 = _mm256_set1_ps(r[2]), r3 = _mm256_set1_ps(r[3]);
            for (j = 0; j < d8; j += 8) {
                __m256 gv = _mm256_loadu_ps(g + j);
                gv = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + j), r0, gv);
                gv = _mm256_fmadd_ps(_mm256_loadu_ps(x1 + j), r1, gv);
                gv = _mm256_fmadd_ps(_mm256_loadu_ps(x2 + j), r2, gv);
                gv = _mm256_fmadd_ps(_mm256_loadu_ps(x3 + j), r3, gv);
                _mm256_storeu_ps(g + j, gv);
            }
            for (; j < d; j++) g[j] += r[0] * x0[j] + r[1] * x1[j] + r[2] * x2[j] + r[3] * x3[j];
        }
        if (blk % (HV_FLUSH / 4) == HV_FLUSH / 4 - 1) hv_flush(J);
    }
}

__attribute__((target("avx512f"))) static double hsum16(__m512 a) {
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a)), hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}

/* Row weights r[b] of rows i..i+nb for problem f from the dot products u[b] (or from R). Returns
 * whether any is nonzero. */
static int hv_weights(hv_job *J, int64_t i, int nb, int f, const double *u, float *r) {
    int any = 0, F = J->F;
    for (int b = 0; b < 4; b++) r[b] = 0;
    for (int b = 0; b < nb; b++) {
        int64_t q = (i + b) * F + f;
        double rr;
        if (J->R) {
            rr = J->R[q];
        } else {
            if (J->fold && J->fold[i + b] == f) continue;
            double v = u[b] + J->cst[f];
            rr = J->Dw[q] * v;
            if (J->U) J->U[q] = v;
        }
        J->rs[f] += rr;
        r[b] = (float)rr;
        any |= rr != 0;
    }
    return any;
}

/* The same with 16 lanes, two problems per sweep over the 4 rows (each x chunk loaded once for 8
 * FMAs): about half the loads per FMA of the AVX2 kernel. */
__attribute__((target("avx512f"))) static void hv_work_avx512(hv_job *J) {
    int d = J->d, F = J->F, d16 = d & ~15, na = 0, fl[64];
    for (int f = 0; f < F; f++)
        if (J->act[f]) fl[na++] = f;
    int64_t blk = 0;
    for (int64_t i = J->i0; i < J->i1; i += 4, blk++) {
        int nb = J->i1 - i < 4 ? (int)(J->i1 - i) : 4;
        const float *x0 = J->X + i * d, *x1 = J->X + (i + (nb > 1)) * d, *x2 = J->X + (i + (nb > 2 ? 2 : 0)) * d,
                    *x3 = J->X + (i + (nb > 3 ? 3 : 0)) * d;
        for (int k = 0; k < na; k += 2) {
            int fa = fl[k], fb = k + 1 < na ? fl[k + 1] : fl[k], two = k + 1 < na;
            double ua[4] = {0, 0, 0, 0}, ub[4] = {0, 0, 0, 0};
            int j = 0;
            if (!J->R) {
                const float *ta = J->T + (size_t)fa * d, *tb = J->T + (size_t)fb * d;
                __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
                __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
                for (; j < d16; j += 16) {
                    __m512 tva = _mm512_loadu_ps(ta + j), tvb = _mm512_loadu_ps(tb + j), x;
                    x = _mm512_loadu_ps(x0 + j); a0 = _mm512_fmadd_ps(x, tva, a0); b0 = _mm512_fmadd_ps(x, tvb, b0);
                    x = _mm512_loadu_ps(x1 + j); a1 = _mm512_fmadd_ps(x, tva, a1); b1 = _mm512_fmadd_ps(x, tvb, b1);
                    x = _mm512_loadu_ps(x2 + j); a2 = _mm512_fmadd_ps(x, tva, a2); b2 = _mm512_fmadd_ps(x, tvb, b2);
                    x = _mm512_loadu_ps(x3 + j); a3 = _mm512_fmadd_ps(x, tva, a3); b3 = _mm512_fmadd_ps(x, tvb, b3);
                }
                ua[0] = hsum16(a0); ua[1] = hsum16(a1); ua[2] = hsum16(a2); ua[3] = hsum16(a3);
                ub[0] = hsum16(b0); ub[1] = hsum16(b1); ub[2] = hsum16(b2); ub[3] = hsum16(b3);
                for (; j < d; j++) {
                    ua[0] += x0[j] * ta[j]; ua[1] += x1[j] * ta[j]; ua[2] += x2[j] * ta[j]; ua[3] += x3[j] * ta[j];
                    ub[0] += x0[j] * tb[j]; ub[1] += x1[j] * tb[j]; ub[2] += x2[j] * tb[j]; ub[3] += x3[j] * tb[j];
                }
            }
            float ra[4], rb[4] = {0, 0, 0, 0};
            int any = hv_weights(J, i, nb, fa, ua, ra);
            if (two) any |= hv_weights(J, i, nb, fb, ub, rb);
            if (!any) continue;
            /* with one problem left, fb == fa and rb == 0: the second accumulator adds nothing */
            float *ga = J->acc + (size_t)fa * d, *gb = J->acc + (size_t)fb * d;
            __m512 ra0 = _mm512_set1_ps(ra[0]), ra1 = _mm512_set1_ps(ra[1]), ra2 = _mm512_set1_ps(ra[2]), ra3 = _mm512_set1_ps(ra[3]);
            __m512 rb0 = _mm512_set1_ps(rb[0]), rb1 = _mm512_set1_ps(rb[1]), rb2 = _mm512_set1_ps(rb[2]), rb3 = _mm512_set1_ps(rb[3]);
            if (two) {
                for (j = 0; j < d16; j += 16) {
                    __m512 gva = _mm512_loadu_ps(ga + j), gvb = _mm512_loadu_ps(gb + j), x;
                    x = _mm512_loadu_ps(x0 + j); gva = _mm512_fmadd_ps(x, ra0, gva); gvb = _mm512_fmadd_ps(x, rb0, gvb);
                    x = _mm512_loadu_ps(x1 + j); gva = _mm512_fmadd_ps(x, ra1, gva); gvb = _mm512_fmadd_ps(x, rb1, gvb);
                    x = _mm512_loadu_ps(x2 + j); gva = _mm512_fmadd_ps(x, ra2, gva); gvb = _mm512_fmadd_ps(x, rb2, gvb);
                    x = _mm512_loadu_ps(x3 + j); gva = _mm512_fmadd_ps(x, ra3, gva); gvb = _mm512_fmadd_ps(x, rb3, gvb);
                    _mm512_storeu_ps(ga + j, gva);
                    _mm512_storeu_ps(gb + j, gvb);
                }
                for (; j < d; j++) {
                    ga[j] += ra[0] * x0[j] + ra[1] * x1[j] + ra[2] * x2[j] + ra[3] * x3[j];
                    gb[j] += rb[0] * x0[j] + rb[1] * x1[j] + rb[2] * x2[j] + rb[3] * x3[j];
                }
            } else {
                for (j = 0; j < d16; j += 16) {
                    __m512 gva = _mm512_loadu_ps(ga + j);
                    gva = _mm512_fmadd_ps(_mm512_loadu_ps(x0 + j), ra0, gva);
                    gva = _mm512_fmadd_ps(_mm512_loadu_ps(x1 + j), ra1, gva);
                    gva = _mm512_fmadd_ps(_mm512_loadu_ps(x2 + j), ra2, gva);
                    gva = _mm512_fmadd_ps(_mm512_loadu_ps(x3 + j), ra3, gva);
                    _mm512_storeu_ps(ga + j, gva);
                }
                for (; j < d; j++) ga[j] += ra[0] * x0[j] + ra[1] * x1[j] + ra[2] * x2[j] + ra[3] * x3[j];
            }
        }
        if (blk % (HV_FLUSH / 4) == HV_FLUSH / 4 - 1) hv_flush(J);
    }
}
#endif

static void *hv_work(void *arg) {
    hv_job *J = arg;
    int d = J->d, F = J->F;
    memset(J->G, 0, sizeof(double) * (size_t)F * d);
    memset(J->acc, 0, sizeof(float) * (size_t)F * d);
    for (int f = 0; f < F; f++) J->rs[f] = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (J->simd == 2) {
        hv_work_avx512(J);
        hv_flush(J);
        return NULL;
    }
    if (J->simd) {
        hv_work_avx2(J);
        hv_flush(J);
        return NULL;
    }
#endif
    for (int64_t i = J->i0; i < J->i1; i++) {
        const float *x = J->X + i * d;
        for (int f = 0; f < F; f++) {
            if (!J->act[f] || (J->fold && J->fold[i] == f)) continue;
            int64_t q = i * F + f;
            int j = 0;
            double rr;
            if (J->R) {
                rr = J->R[q];
            } else {
                const float *t = J->T + (size_t)f * d;
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (; j + 4 <= d; j += 4) { a0 += x[j] * t[j]; a1 += x[j + 1] * t[j + 1]; a2 += x[j + 2] * t[j + 2]; a3 += x[j + 3] * t[j + 3]; }
                for (; j < d; j++) a0 += x[j] * t[j];
                double v = ((double)a0 + a1) + ((double)a2 + a3) + J->cst[f];
                rr = J->Dw[q] * v;
                if (J->U) J->U[q] = v;
            }
            J->rs[f] += rr;
            if (rr == 0) continue;
            float r = (float)rr, *g = J->acc + (size_t)f * d;
            for (j = 0; j < d; j++) g[j] += r * x[j];
        }
        if ((i - J->i0) % HV_FLUSH == HV_FLUSH - 1) hv_flush(J);
    }
    hv_flush(J);
    return NULL;
}

/* G [F x d] and rs [F] over all rows, split over threads. */
static void hv_pool_fn(void *ctx, int ith, int nth) {
    (void)nth;
    hv_work(&((hv_job *)ctx)[ith]);
}

static void hv_run(const float *X, int64_t n, int d, int F, const float *T, const double *cst, const double *Dw, const double *R,
                   const int *fold, const int *act, double *G, double *rs, double *U) {
    int nt = pika_n_cores();
    if (nt > 16) nt = 16;
    if ((int64_t)nt * 64 > n) nt = 1;
    hv_job jobs[16];
    size_t fd = (size_t)F * d;
    double *part = nt > 1 ? pika_malloc(sizeof(double) * (size_t)(nt - 1) * fd) : NULL;
    float *acc = pika_malloc(sizeof(float) * (size_t)nt * fd);
    double rsp[16][64];
    int simd = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    simd = pika_simd_level() >= PIKA_SIMD_AVX512 ? 2 : pika_simd_level() >= PIKA_SIMD_AVX2; /* util.h's one check */
#endif
    for (int t = 0; t < nt; t++)
        jobs[t] = (hv_job){.X = X, .i0 = n * t / nt, .i1 = n * (t + 1) / nt, .d = d, .F = F, .T = T, .cst = cst, .Dw = Dw, .R = R,
                           .fold = fold, .act = act, .G = t == 0 ? G : part + (size_t)(t - 1) * fd, .rs = rsp[t], .U = U,
                           .acc = acc + (size_t)t * fd, .simd = simd};
    pika_pool_run(probe_pool(nt), hv_pool_fn, jobs);
    for (int t = 1; t < nt; t++)
        for (size_t q = 0; q < fd; q++) G[q] += part[(size_t)(t - 1) * fd + q];
    for (int f = 0; f < F; f++) {
        rs[f] = 0;
        for (int t = 0; t < nt; t++) rs[f] += rsp[t][f];
    }
    free(part);
    free(acc);
}

/* F logistic problems sharing one dense matrix: problem f trains on rows with fold[i] != f (all rows
 * when fold == NULL, F == 1) with features z = (x' - mu_f) / sig_f, where x' = x - c are rows shifted by
 * the global column mean (for accuracy). Objective per problem (= sklearn lbfgs, intercept unpenalized):
 *   1/2 ||w||^2 + C sum_i log(1 + exp(-s_i (z_i.w + b)))
 * Truncated Newton with a Jacobi-preconditioned CG; every matrix product serves all F problems at
 * once (one pass over X per product: GEMM with F columns instead of F GEMVs). Per Newton iteration:
 * one gradient pass, one pass per CG step (float32 Hessian-vector products that also give the
 * margins of the step, so the line search needs no pass); one double margins pass per alpha. */
typedef struct {
    const float *X;   /* [n x d] shifted rows (float32: halves the memory traffic) */
    const float *X2;  /* [n x d] squares of X (Jacobi preconditioner; NULL when standardized) */
    int64_t n;
    int d, F, intercept;
    const double *s;  /* [n] +-1 */
    const int *fold;
    const double *mu, *sig; /* [F x d] */
} lrb;

static long g_newton_iters, g_cg_iters; /* statistics (PIKA_DEBUG_NEWTON=1 prints them) */

static int lrb_in(const lrb *P, int64_t i, int f) { return !P->fold || P->fold[i] != f; }

/* M[i*F+f] = z_i(f) . V[f][0..d) + V[f][d]  (V: [F x (d+1)]) */
static void lrb_margins(const lrb *P, const double *V, double *M, double *tmp /* [F x d] */) {
    int d = P->d, F = P->F;
    double cst[64];
    for (int f = 0; f < F; f++) {
        cst[f] = P->intercept ? V[(size_t)f * (d + 1) + d] : 0;
        for (int j = 0; j < d; j++) {
            double v = V[(size_t)f * (d + 1) + j] / P->sig[(size_t)f * d + j];
            tmp[(size_t)f * d + j] = v;
            cst[f] -= P->mu[(size_t)f * d + j] * v;
        }
    }
    mm_run(P->X, P->n, d, F, tmp, M, cst);
}

/* G[f] = Z_f' R[:,f] (+ bias component); R must be zero on rows outside problem f. */
static void lrb_back(const lrb *P, const double *R, double *G, double *tmp /* [F x d] */) {
    int d = P->d, F = P->F;
    double rs[64];
    int act[64];
    for (int f = 0; f < 64; f++) act[f] = 1;
    hv_run(P->X, P->n, d, F, NULL, NULL, NULL, R, P->fold, act, tmp, rs, NULL);
    for (int f = 0; f < F; f++) {
        for (int j = 0; j < d; j++)
            G[(size_t)f * (d + 1) + j] = (tmp[(size_t)f * d + j] - P->mu[(size_t)f * d + j] * rs[f]) / P->sig[(size_t)f * d + j];
        G[(size_t)f * (d + 1) + d] = P->intercept ? rs[f] : 0;
    }
}

/* Hp[f] = Z_f' D_f (Z_f V[f] + bias) for the problems with act[f] (D = Dw), one float32 pass over X;
 * identity not added. U[i*F+f] = z_i(f).V[f] + bias for the rows of active problem f. */
static void lrb_hv(const lrb *P, const double *V, const double *Dw, const int *act, double *Hp, float *Tf /* [F x d] */,
                   double *tmp2 /* [F x d] */, double *U) {
    int d = P->d, F = P->F;
    double cst[64], rs[64];
    for (int f = 0; f < F; f++) {
        cst[f] = P->intercept ? V[(size_t)f * (d + 1) + d] : 0;
        for (int j = 0; j < d; j++) {
            double v = V[(size_t)f * (d + 1) + j] / P->sig[(size_t)f * d + j];
            Tf[(size_t)f * d + j] = (float)v;
            cst[f] -= P->mu[(size_t)f * d + j] * v;
        }
    }
    hv_run(P->X, P->n, d, F, Tf, cst, Dw, NULL, P->fold, act, tmp2, rs, U);
    for (int f = 0; f < F; f++) {
        if (!act[f]) continue;
        for (int j = 0; j < d; j++)
            Hp[(size_t)f * (d + 1) + j] = (tmp2[(size_t)f * d + j] - P->mu[(size_t)f * d + j] * rs[f]) / P->sig[(size_t)f * d + j];
        Hp[(size_t)f * (d + 1) + d] = P->intercept ? rs[f] : 0;
    }
}

static double log1pexp(double t) { return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)); }

/* Solve all F problems at C, warm-starting from W [F x (d+1)] (updated in place). M [n x F] holds the
 * margins Z W (+ b) on entry and gets the exact margins of the solution on return (one double pass).
 * g0[f] = ||grad f(0)|| / C (the gradient at w = 0 is linear in C). Inside, the margins of the step
 * come from the CG products (Ms = sum_k a_k Z p_k), so a Newton iteration costs one gradient pass
 * plus its CG passes. */
static void lrb_solve(const lrb *P, double C, double eps, const double *g0unit, double *W, double *M) {
    int d = P->d, F = P->F, D1 = d + 1;
    int64_t n = P->n;
    size_t nf = (size_t)n * F, fd = (size_t)F * D1;
    double *Ms = pika_malloc(sizeof(double) * nf), *R = pika_malloc(sizeof(double) * nf), *U = pika_malloc(sizeof(double) * nf);
    double *Dw = pika_malloc(sizeof(double) * nf), *tmp = pika_malloc(sizeof(double) * (size_t)d * F);
    double *G = pika_malloc(sizeof(double) * fd), *S = pika_malloc(sizeof(double) * fd), *Rc = pika_malloc(sizeof(double) * fd);
    double *Zc = pika_malloc(sizeof(double) * fd), *Pd = pika_malloc(sizeof(double) * fd), *Hp = pika_malloc(sizeof(double) * fd);
    double *Pre = pika_malloc(sizeof(double) * fd), *S1 = pika_malloc(sizeof(double) * (size_t)d * F), *S2 = pika_malloc(sizeof(double) * (size_t)d * F);
    float *Tf = pika_malloc(sizeof(float) * (size_t)d * F);
    double g0[64], tol[64], loss[64];
    int done[64] = {0};
    /* tolerance as liblinear: eps * max(min(#pos, #neg), 1) / l * ||grad f(0)|| */
    for (int f = 0; f < F; f++) {
        double np_ = 0, nn = 0;
        for (int64_t i = 0; i < n; i++)
            if (lrb_in(P, i, f)) { if (P->s[i] > 0) np_++; else nn++; }
        double mn = np_ < nn ? np_ : nn;
        tol[f] = eps * (mn > 1 ? mn : 1) / (np_ + nn);
        g0[f] = C * g0unit[f];
        if (!(g0[f] > 0)) g0[f] = 1;
    }
    /* rescaled warm start: along the path the solution grows roughly like C while the loss is nearly
     * linear, so first minimize the objective over W -> s W (margins scale exactly: M -> s M), a 1-D
     * Newton problem per fold with no pass over X */
    for (int f = 0; f < F; f++) {
        double w2 = 0, sc = 1;
        for (int j = 0; j < d; j++) w2 += W[(size_t)f * D1 + j] * W[(size_t)f * D1 + j];
        if (!(w2 > 0)) continue;
        for (int k = 0; k < 8; k++) {
            double g1 = sc * w2, h1 = w2;
            for (int64_t i = 0; i < n; i++) {
                if (!lrb_in(P, i, f)) continue;
                double m = P->s[i] * M[(size_t)i * F + f], sg = pika_sigmoid(-sc * m);
                g1 -= C * m * sg;
                h1 += C * m * m * sg * (1 - sg);
            }
            double step = g1 / h1, ns = sc - step;
            if (ns < 0.5 * sc) ns = 0.5 * sc;
            if (ns > 2 * sc) ns = 2 * sc;
            sc = ns;
            if (fabs(step) < 1e-3 * sc) break;
        }
        double l1 = 0.5 * w2, ls = 0.5 * sc * sc * w2; /* keep the rescale only if it lowers the objective */
        for (int64_t i = 0; i < n; i++)
            if (lrb_in(P, i, f)) {
                double m = P->s[i] * M[(size_t)i * F + f];
                l1 += C * log1pexp(-m);
                ls += C * log1pexp(-sc * m);
            }
        if (!(ls < l1)) continue;
        for (int j = 0; j < D1; j++) W[(size_t)f * D1 + j] *= sc;
        for (int64_t i = 0; i < n; i++) M[(size_t)i * F + f] *= sc;
    }
    for (int it = 0; it < 100; it++) {
        g_newton_iters++;
        for (int f = 0; f < F; f++) loss[f] = 0;
        for (int64_t i = 0; i < n; i++)
            for (int f = 0; f < F; f++) {
                size_t q = (size_t)i * F + f;
                if (!lrb_in(P, i, f)) { R[q] = 0; Dw[q] = 0; continue; }
                double ym = P->s[i] * M[q], sg = pika_sigmoid(-ym); /* sigma(-ym) */
                loss[f] += C * log1pexp(-ym);
                R[q] = -C * P->s[i] * sg;
                Dw[q] = C * sg * (1 - sg);
            }
        lrb_back(P, R, G, tmp);
        int active = 0;
        double gn[64];
        for (int f = 0; f < F; f++) {
            double g2 = 0, w2 = 0;
            for (int j = 0; j < d; j++) { G[(size_t)f * D1 + j] += W[(size_t)f * D1 + j]; w2 += W[(size_t)f * D1 + j] * W[(size_t)f * D1 + j]; }
            loss[f] += 0.5 * w2;
            for (int j = 0; j < D1; j++) g2 += G[(size_t)f * D1 + j] * G[(size_t)f * D1 + j];
            gn[f] = sqrt(g2);
            if (!done[f] && gn[f] <= tol[f] * g0[f]) done[f] = 1;
            active += !done[f];
        }
        if (!active) break;
        /* Jacobi preconditioner: diag of I + Z' D Z (bias: sum D). Standardized columns have
         * sum_i z_ij^2 = n_f, so the diagonal is ~ 1 + mean(D) n_f: a scalar, no pass over X. */
        if (P->X2) {
            double rs2[64];
            int all[64];
            for (int f = 0; f < 64; f++) all[f] = 1;
            hv_run(P->X2, n, d, F, NULL, NULL, NULL, Dw, P->fold, all, S2, rs2, NULL);
            hv_run(P->X, n, d, F, NULL, NULL, NULL, Dw, P->fold, all, S1, rs2, NULL);
        }
        for (int f = 0; f < F; f++) {
            double sd = 0;
            for (int64_t i = 0; i < n; i++) sd += Dw[(size_t)i * F + f];
            for (int j = 0; j < d; j++) {
                double mu = P->mu[(size_t)f * d + j], sg = P->sig[(size_t)f * d + j];
                double h = P->X2 ? (S2[(size_t)f * d + j] - 2 * mu * S1[(size_t)f * d + j] + mu * mu * sd) / (sg * sg) : sd;
                Pre[(size_t)f * D1 + j] = 1 + (h > 0 ? h : 0);
            }
            Pre[(size_t)f * D1 + d] = P->intercept ? (sd > 1e-12 ? sd : 1e-12) : 1;
        }
        /* PCG on H s = -g for the active problems; Ms accumulates the margins of s */
        double rz[64], cg_tol[64];
        int cg_act[64];
        for (int f = 0; f < F; f++) {
            rz[f] = 0;
            cg_act[f] = !done[f];
            double e = gn[f] / (g0[f] > 0 ? g0[f] : 1);
            cg_tol[f] = (e < 0.5 ? e : 0.5) * gn[f];
            if (cg_tol[f] < 1e-3 * tol[f] * g0[f]) cg_tol[f] = 1e-3 * tol[f] * g0[f];
            for (int j = 0; j < D1; j++) {
                size_t q = (size_t)f * D1 + j;
                S[q] = 0;
                Rc[q] = done[f] ? 0 : -G[q];
                Zc[q] = Rc[q] / Pre[q];
                Pd[q] = Zc[q];
                rz[f] += Rc[q] * Zc[q];
            }
        }
        memset(Ms, 0, sizeof(double) * nf);
        for (int cg = 0; cg < 500; cg++) {
            g_cg_iters++;
            int any = 0;
            for (int f = 0; f < F; f++) any |= cg_act[f];
            if (!any) break;
            /* Hp = P + Z' D Z P (no identity on the bias), one fused pass over X */
            lrb_hv(P, Pd, Dw, cg_act, Hp, Tf, S1, U);
            for (int f = 0; f < F; f++) {
                if (!cg_act[f]) continue;
                double pHp = 0;
                for (int j = 0; j < D1; j++) {
                    size_t q = (size_t)f * D1 + j;
                    if (j < d || !P->intercept) Hp[q] += Pd[q];
                    pHp += Pd[q] * Hp[q];
                }
                double a = rz[f] / (pHp > 1e-300 ? pHp : 1e-300), r2 = 0, rz2 = 0;
                for (int64_t i = 0; i < n; i++)
                    if (lrb_in(P, i, f)) Ms[(size_t)i * F + f] += a * U[(size_t)i * F + f];
                for (int j = 0; j < D1; j++) {
                    size_t q = (size_t)f * D1 + j;
                    S[q] += a * Pd[q];
                    Rc[q] -= a * Hp[q];
                    Zc[q] = Rc[q] / Pre[q];
                    r2 += Rc[q] * Rc[q];
                    rz2 += Rc[q] * Zc[q];
                }
                if (sqrt(r2) <= cg_tol[f]) { cg_act[f] = 0; continue; }
                double beta = rz2 / (rz[f] > 1e-300 ? rz[f] : 1e-300);
                rz[f] = rz2;
                for (int j = 0; j < D1; j++) Pd[(size_t)f * D1 + j] = Zc[(size_t)f * D1 + j] + beta * Pd[(size_t)f * D1 + j];
            }
        }
        /* backtracking line search; margins are linear in the step (Ms = Z s, rows of the problem) */
        for (int f = 0; f < F; f++) {
            if (done[f]) continue;
            double gs = 0, ws = 0, ss = 0, w2 = 0;
            for (int j = 0; j < D1; j++) gs += G[(size_t)f * D1 + j] * S[(size_t)f * D1 + j];
            for (int j = 0; j < d; j++) {
                ws += W[(size_t)f * D1 + j] * S[(size_t)f * D1 + j];
                ss += S[(size_t)f * D1 + j] * S[(size_t)f * D1 + j];
                w2 += W[(size_t)f * D1 + j] * W[(size_t)f * D1 + j];
            }
            double t = 1;
            for (int ls = 0; ls < 30; ls++, t *= 0.5) {
                double L = 0.5 * (w2 + 2 * t * ws + t * t * ss);
                for (int64_t i = 0; i < n; i++)
                    if (lrb_in(P, i, f)) L += C * log1pexp(-P->s[i] * (M[(size_t)i * F + f] + t * Ms[(size_t)i * F + f]));
                if (L <= loss[f] + 1e-4 * t * gs) break;
            }
            for (int j = 0; j < D1; j++) W[(size_t)f * D1 + j] += t * S[(size_t)f * D1 + j];
            for (int64_t i = 0; i < n; i++)
                if (lrb_in(P, i, f)) M[(size_t)i * F + f] += t * Ms[(size_t)i * F + f];
            if (t < 1e-8) done[f] = 1; /* no progress possible in floating point */
        }
    }
    lrb_margins(P, W, M, tmp); /* exact margins of the solution, held-out rows included */
    if (getenv("PIKA_DEBUG_NEWTON") && atoi(getenv("PIKA_DEBUG_NEWTON")) > 1)
        fprintf(stderr, "newton: C=%g total newton=%ld cg=%ld\n", C, g_newton_iters, g_cg_iters);
    free(Ms); free(R); free(U); free(Dw); free(tmp); free(G); free(S); free(Rc); free(Zc); free(Pd); free(Hp);
    free(Pre); free(S1); free(S2); free(Tf);
}

/* CV (fold != NULL, F = k problems) or a full fit (fold == NULL, F = 1) over all alphas (largest
 * first, warm starts). pred [A x n] gets held-out scores; Wout [A x d] / bout [A] / mean / scale the
 * full-fit model (original coordinates). */
static void lr_newton(const double *X, int64_t n, int d, const double *y, const int *fold, int F, const pika_fit_opts *o,
                      const double *alphas, int A, double *pred, double *Wout, double *bout, double *mean, double *scale) {
    double *c = pika_calloc((size_t)d, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) c[j] += X[i * d + j];
    for (int j = 0; j < d; j++) c[j] /= (double)n;
    float *Xs = pika_malloc(sizeof(float) * (size_t)n * d), *X2 = o->standardize ? NULL : pika_malloc(sizeof(float) * (size_t)n * d);
    double *s = pika_malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++) {
        s[i] = y[i] == 1 ? 1.0 : -1.0;
        for (int j = 0; j < d; j++) {
            float v = (float)(X[i * d + j] - c[j]);
            Xs[i * d + j] = v;
            if (X2) X2[i * d + j] = v * v;
        }
    }
    double *mu = pika_malloc(sizeof(double) * (size_t)F * d), *sig = pika_malloc(sizeof(double) * (size_t)F * d);
    /* column sums and sums of squares of each fold's rows (one pass), then each problem's from the others */
    double *bs = pika_calloc((size_t)F * d, sizeof(double)), *bq = pika_calloc((size_t)F * d, sizeof(double)), bc[64] = {0};
    for (int64_t i = 0; i < n; i++) {
        int g = fold ? fold[i] : 0;
        double *sb = bs + (size_t)g * d, *qb = bq + (size_t)g * d;
        const float *x = Xs + i * d;
        bc[g]++;
        for (int j = 0; j < d; j++) { sb[j] += x[j]; qb[j] += (double)x[j] * x[j]; }
    }
    for (int f = 0; f < F; f++) {
        double *m = mu + (size_t)f * d, *sg = sig + (size_t)f * d, cnt = 0;
        for (int j = 0; j < d; j++) m[j] = sg[j] = 0;
        for (int g = 0; g < F; g++) {
            if (fold && g == f) continue;
            cnt += bc[g];
            for (int j = 0; j < d; j++) { m[j] += bs[(size_t)g * d + j]; sg[j] += bq[(size_t)g * d + j]; }
        }
        int center = o->standardize || o->intercept;
        for (int j = 0; j < d; j++) {
            double mm = m[j] / cnt, v = sg[j] / cnt - mm * mm, sd = sqrt(v > 0 ? v : 0);
            m[j] = center ? mm : -c[j];
            sg[j] = o->standardize && sd > 1e-12 * (1 + fabs(mm + c[j])) ? sd : 1.0;
        }
    }
    free(bs);
    free(bq);
    lrb P = {.X = Xs, .X2 = X2, .n = n, .d = d, .F = F, .intercept = o->intercept, .s = s, .fold = fold, .mu = mu, .sig = sig};
    double *W = pika_calloc((size_t)F * (d + 1), sizeof(double)), *M = pika_calloc((size_t)n * F, sizeof(double)),
           *tmp = pika_malloc(sizeof(double) * (size_t)d * F), *R = pika_malloc(sizeof(double) * (size_t)n * F),
           *G = pika_malloc(sizeof(double) * (size_t)F * (d + 1));
    /* ||grad f(0)|| / C: at w = 0 every margin is 0, so the loss gradient is -C s_i / 2 */
    double g0unit[64];
    for (int64_t i = 0; i < n; i++)
        for (int f = 0; f < F; f++) R[(size_t)i * F + f] = lrb_in(&P, i, f) ? -0.5 * s[i] : 0;
    lrb_back(&P, R, G, tmp);
    for (int f = 0; f < F; f++) {
        double g2 = 0;
        for (int j = 0; j <= d; j++) g2 += G[(size_t)f * (d + 1) + j] * G[(size_t)f * (d + 1) + j];
        g0unit[f] = sqrt(g2);
    }
    free(R);
    free(G);
    int ord[PIKA_MAX_ALPHA];
    for (int a = 0; a < A; a++) ord[a] = a;
    for (int a = 1; a < A; a++)
        for (int b = a; b > 0 && alphas[ord[b]] > alphas[ord[b - 1]]; b--) { int t = ord[b]; ord[b] = ord[b - 1]; ord[b - 1] = t; }
    for (int ai = 0; ai < A; ai++) {
        int a = ord[ai];
        lrb_solve(&P, 1.0 / alphas[a], o->eps, g0unit, W, M);
        if (pred && fold) {
            for (int64_t i = 0; i < n; i++) pred[(size_t)a * n + i] = M[(size_t)i * F + fold[i]];
        }
        if (Wout) {
            memcpy(Wout + (size_t)a * d, W, sizeof(double) * d);
            bout[a] = o->intercept ? W[d] : 0;
        }
    }
    if (mean)
        for (int j = 0; j < d; j++) { mean[j] = mu[j] + c[j]; scale[j] = sig[j]; }
    if (getenv("PIKA_DEBUG_NEWTON"))
        fprintf(stderr, "newton: F=%d A=%d newton_iters=%ld cg_iters=%ld\n", F, A, g_newton_iters, g_cg_iters);
    free(c); free(Xs); free(X2); free(s); free(mu); free(sig); free(W); free(M); free(tmp);
}

int pika_cv_dense(const double *X, int64_t n, int d, const double *y, int task, const int *fold,
                  const pika_fit_opts *o, double *cv_mean, double *cv_std, double *oof) {
    int k = o->k_folds, A = o->n_alpha;
    if (A < 1 || A > PIKA_MAX_ALPHA) return pika_set_error("alpha grid must have 1..%d values", PIKA_MAX_ALPHA);
    pika_fit_opts o2 = *o;
    o2.task = task;
    double *scores = pika_malloc(sizeof(double) * k * A);
    int rc;
    if (task == PIKA_TARGET_CONTINUOUS) {
        rc = ridge_cv(X, n, d, y, fold, &o2, scores, oof);
    } else if (o->logistic_solver == PIKA_LOGISTIC_NEWTON) {
        if (k > 64) { free(scores); return pika_set_error("at most 64 folds"); }
        double *pred = oof ? oof : pika_malloc(sizeof(double) * (size_t)A * n);
        lr_newton(X, n, d, y, fold, k, &o2, o->alpha, A, pred, NULL, NULL, NULL, NULL);
        finish_scores(pred, n, y, fold, k, A, task, scores);
        if (!oof) free(pred);
        rc = 0;
    } else {
        double *pred = oof ? oof : pika_malloc(sizeof(double) * (size_t)A * n);
        lr_job *jobs = pika_calloc((size_t)k, sizeof(lr_job));
        for (int f = 0; f < k; f++)
            jobs[f] = (lr_job){.X = X, .n = n, .d = d, .y = y, .fold = fold, .f = f, .o = &o2, .alphas = o->alpha, .A = A, .pred = pred};
        rc = run_jobs(jobs, k, o->n_threads < k ? o->n_threads : k);
        if (!rc) finish_scores(pred, n, y, fold, k, A, task, scores);
        free(jobs);
        if (!oof) free(pred);
    }
    if (!rc) summarize(scores, k, A, cv_mean, cv_std);
    free(scores);
    return rc;
}

int pika_fit_dense(const double *X, int64_t n, int d, const double *y, int task, double alpha,
                   const pika_fit_opts *o, pika_linear *m) {
    memset(m, 0, sizeof *m);
    m->d = d;
    m->mean = pika_malloc(sizeof(double) * d);
    m->scale = pika_malloc(sizeof(double) * d);
    m->w = pika_malloc(sizeof(double) * d);
    int rc;
    if (task == PIKA_TARGET_CONTINUOUS) {
        rc = ridge_fit_all(X, n, d, y, o, &alpha, 1, m->mean, m->scale, m->w, &m->b);
    } else if (o->logistic_solver == PIKA_LOGISTIC_NEWTON) {
        lr_newton(X, n, d, y, NULL, 1, o, &alpha, 1, NULL, m->w, &m->b, m->mean, m->scale);
        rc = 0;
    } else {
        lr_job J = {.X = X, .n = n, .d = d, .y = y, .f = -1, .o = o, .alphas = &alpha, .A = 1, .W = m->w, .bias = &m->b,
                    .mean = m->mean, .scale = m->scale};
        rc = run_jobs(&J, 1, 1);
    }
    if (rc) pika_linear_free(m);
    return rc;
}

/* ---------------------------------------------------------------- sparse */

void pika_csr_free(pika_csr *m) {
    free(m->rowptr);
    free(m->col);
    free(m->val);
    memset(m, 0, sizeof *m);
}

double pika_linear_score_sparse(const pika_linear *m, const pika_csr *Z, int64_t row) {
    double s = m->b;
    for (int64_t t = Z->rowptr[row]; t < Z->rowptr[row + 1]; t++)
        if (Z->col[t] < m->d) s += m->w[Z->col[t]] * Z->val[t];
    return s;
}

/* Sparse ridge by CG on (Zc'Zc + alpha I) w = Zc'yc over rows with use[i]; Zc = Z - 1 mu'. */
static void ridge_sparse_cg(const pika_csr *Z, const double *y, const unsigned char *use, const pika_fit_opts *o,
                            const double *alphas, int A, double *W /* [A x d] */, double *bias /* [A] */) {
    int64_t n = Z->n;
    int d = Z->d;
    double nt = 0, ym = 0;
    double *mu = pika_calloc((size_t)d, sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        if (!use[i]) continue;
        nt += 1;
        ym += y[i];
        for (int64_t t = Z->rowptr[i]; t < Z->rowptr[i + 1]; t++) mu[Z->col[t]] += Z->val[t];
    }
    if (!o->intercept) { ym = 0; memset(mu, 0, sizeof(double) * d); }
    else { ym /= nt; for (int j = 0; j < d; j++) mu[j] /= nt; }
    double *u = pika_malloc(sizeof(double) * n);
    /* matvec: out = Zc'(Zc v) + alpha v */
#define ZC_T(uu, out)                                                                              \
    do {                                                                                           \
        double su = 0;                                                                             \
        memset(out, 0, sizeof(double) * d);                                                        \
        for (int64_t i = 0; i < n; i++) {                                                          \
            if (!use[i]) continue;                                                                 \
            su += uu[i];                                                                           \
            for (int64_t t = Z->rowptr[i]; t < Z->rowptr[i + 1]; t++) out[Z->col[t]] += Z->val[t] * uu[i]; \
        }                                                                                          \
        for (int j = 0; j < d; j++) out[j] -= mu[j] * su;                                          \
    } while (0)
    double *rhs = pika_malloc(sizeof(double) * d), *w = pika_calloc((size_t)d, sizeof(double));
    double *r = pika_malloc(sizeof(double) * d), *p = pika_malloc(sizeof(double) * d), *Ap = pika_malloc(sizeof(double) * d);
    for (int64_t i = 0; i < n; i++) u[i] = use[i] ? y[i] - ym : 0;
    ZC_T(u, rhs);
    double rhs_norm = sqrt(cblas_ddot(d, rhs, 1, rhs, 1)) + 1e-300;
    int ord[PIKA_MAX_ALPHA];
    for (int a = 0; a < A; a++) ord[a] = a;
    for (int a = 1; a < A; a++)
        for (int b = a; b > 0 && alphas[ord[b]] > alphas[ord[b - 1]]; b--) { int t = ord[b]; ord[b] = ord[b - 1]; ord[b - 1] = t; }
    for (int ai = 0; ai < A; ai++) {
        double al = alphas[ord[ai]];
        /* Aw */
        {
            double mw = cblas_ddot(d, mu, 1, w, 1);
            for (int64_t i = 0; i < n; i++) {
                double s = 0;
                if (use[i]) for (int64_t t = Z->rowptr[i]; t < Z->rowptr[i + 1]; t++) s += Z->val[t] * w[Z->col[t]];
                u[i] = use[i] ? s - mw : 0;
            }
            ZC_T(u, Ap);
            for (int j = 0; j < d; j++) { r[j] = rhs[j] - Ap[j] - al * w[j]; p[j] = r[j]; }
        }
        double rr = cblas_ddot(d, r, 1, r, 1);
        for (int it = 0; it < 2000 && sqrt(rr) > 1e-10 * rhs_norm; it++) {
            double mp = cblas_ddot(d, mu, 1, p, 1);
            for (int64_t i = 0; i < n; i++) {
                double s = 0;
                if (use[i]) for (int64_t t = Z->rowptr[i]; t < Z->rowptr[i + 1]; t++) s += Z->val[t] * p[Z->col[t]];
                u[i] = use[i] ? s - mp : 0;
            }
            ZC_T(u, Ap);
            for (int j = 0; j < d; j++) Ap[j] += al * p[j];
            double pAp = cblas_ddot(d, p, 1, Ap, 1), step = rr / pAp;
            cblas_daxpy(d, step, p, 1, w, 1);
            cblas_daxpy(d, -step, Ap, 1, r, 1);
            double rr2 = cblas_ddot(d, r, 1, r, 1);
            for (int j = 0; j < d; j++) p[j] = r[j] + rr2 / rr * p[j];
            rr = rr2;
        }
        memcpy(W + (size_t)ord[ai] * d, w, sizeof(double) * d);
        bias[ord[ai]] = ym - cblas_ddot(d, mu, 1, w, 1);
    }
#undef ZC_T
    free(mu); free(u); free(rhs); free(w); free(r); free(p); free(Ap);
}

int pika_cv_sparse(pika_csr_builder build, void *ctx, int64_t n, const double *y, int task, const int *fold,
                   const pika_fit_opts *o, double *cv_mean, double *cv_std, double *oof) {
    int k = o->k_folds, A = o->n_alpha;
    double *scores = pika_malloc(sizeof(double) * k * A);
    double *pred = oof ? oof : pika_malloc(sizeof(double) * (size_t)A * n);
    int rc = 0;
    for (int f = 0; f < k && !rc; f++) {
        pika_csr Z;
        if (build(f, fold, ctx, &Z)) { rc = -1; break; }
        if (task == PIKA_TARGET_CONTINUOUS) {
            unsigned char *use = pika_malloc((size_t)n);
            for (int64_t i = 0; i < n; i++) use[i] = fold[i] != f;
            double *W = pika_malloc(sizeof(double) * (size_t)A * Z.d), bias[PIKA_MAX_ALPHA];
            ridge_sparse_cg(&Z, y, use, o, o->alpha, A, W, bias);
            for (int a = 0; a < A; a++) {
                pika_linear m = {.d = Z.d, .w = W + (size_t)a * Z.d, .b = bias[a]};
                for (int64_t i = 0; i < n; i++)
                    if (fold[i] == f) pred[(size_t)a * n + i] = pika_linear_score_sparse(&m, &Z, i);
            }
            free(W);
            free(use);
        } else {
            pika_fit_opts o2 = *o;
            lr_job J = {.Z = &Z, .n = n, .d = Z.d, .y = y, .fold = fold, .f = f, .o = &o2, .alphas = o->alpha, .A = A, .pred = pred};
            rc = run_jobs(&J, 1, 1);
        }
        pika_csr_free(&Z);
    }
    if (!rc) {
        finish_scores(pred, n, y, fold, k, A, task, scores);
        summarize(scores, k, A, cv_mean, cv_std);
    }
    if (!oof) free(pred);
    free(scores);
    return rc;
}

int pika_fit_sparse(const pika_csr *Z, const double *y, int task, double alpha, const pika_fit_opts *o, pika_linear *m) {
    memset(m, 0, sizeof *m);
    int d = Z->d;
    m->d = d;
    m->mean = pika_calloc((size_t)d, sizeof(double));
    m->scale = pika_malloc(sizeof(double) * d);
    for (int j = 0; j < d; j++) m->scale[j] = 1;
    m->w = pika_malloc(sizeof(double) * d);
    if (task == PIKA_TARGET_CONTINUOUS) {
        unsigned char *use = pika_malloc((size_t)Z->n);
        memset(use, 1, (size_t)Z->n);
        ridge_sparse_cg(Z, y, use, o, &alpha, 1, m->w, &m->b);
        free(use);
        return 0;
    }
    lr_job J = {.Z = Z, .n = Z->n, .d = d, .y = y, .f = -1, .o = o, .alphas = &alpha, .A = 1, .W = m->w, .bias = &m->b};
    int rc = run_jobs(&J, 1, 1);
    if (rc) pika_linear_free(m);
    return rc;
}

/* ---------------------------------------------------------------- Platt */

int pika_platt_fit(const double *s, const double *y, int64_t n, double *A, double *B) {
    double a = 0, b = 0, ym = 0;
    for (int64_t i = 0; i < n; i++) ym += y[i];
    ym /= (double)n;
    if (ym <= 0 || ym >= 1) return pika_set_error("Platt: needs both classes");
    b = log(ym / (1 - ym));
#define PLATT_LOSS(a_, b_, out)                                                      \
    do {                                                                             \
        double L_ = 0.5 * (a_) * (a_);                                               \
        for (int64_t i = 0; i < n; i++) {                                            \
            double f_ = (a_) * s[i] + (b_);                                          \
            /* log(1+exp(f)) - y f, stably */                                        \
            L_ += (f_ > 0 ? f_ + log1p(exp(-f_)) : log1p(exp(f_))) - y[i] * f_;      \
        }                                                                            \
        out = L_;                                                                    \
    } while (0)
    double L;
    PLATT_LOSS(a, b, L);
    for (int it = 0; it < 100; it++) {
        double ga = a, gb = 0, haa = 1, hab = 0, hbb = 1e-12;
        for (int64_t i = 0; i < n; i++) {
            double p = pika_sigmoid(a * s[i] + b), r = p - y[i], w = p * (1 - p);
            ga += r * s[i];
            gb += r;
            haa += w * s[i] * s[i];
            hab += w * s[i];
            hbb += w;
        }
        double det = haa * hbb - hab * hab;
        if (!(det > 0)) break;
        double da = -(hbb * ga - hab * gb) / det, db = -(-hab * ga + haa * gb) / det;
        double step = 1, Ln = L;
        for (int ls = 0; ls < 40; ls++, step *= 0.5) {
            PLATT_LOSS(a + step * da, b + step * db, Ln);
            if (Ln <= L + 1e-4 * step * (ga * da + gb * db)) break;
        }
        a += step * da;
        b += step * db;
        double dec = L - Ln;
        L = Ln;
        if (fabs(ga) + fabs(gb) < 1e-10 * (double)n || dec < 1e-14 * (1 + fabs(L))) break;
    }
#undef PLATT_LOSS
    *A = a;
    *B = b;
    return 0;
}

/* ---------------------------------------------------------------- probe file */

void pika_probe_free(pika_probe *p) {
    pika_linear_free(&p->lin);
    free(p->target);
    free(p->layers);
    free(p->positions);
    free(p->alphas);
    free(p->cv_mean);
    free(p->cv_std);
    free(p->model_json);
    free(p->prompt_json);
    cJSON_Delete(p->extra);
    memset(p, 0, sizeof *p);
}

/* Exact doubles: cJSON prints 15 significant digits when that is "close enough", so numbers go in
 * as raw "%.17g" text (bit-exact round trip through strtod). */
static cJSON *num_exact(double v) {
    char b[40];
    if (!isfinite(v)) return cJSON_CreateNull();
    snprintf(b, sizeof b, "%.17g", v);
    return cJSON_CreateRaw(b);
}

static void add_num(cJSON *o, const char *k, double v) { cJSON_AddItemToObject(o, k, num_exact(v)); }

static cJSON *num_array(const double *v, int64_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(a, num_exact(v[i]));
    return a;
}

static cJSON *int_array(const int32_t *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

int pika_probe_save(const pika_probe *p, const char *path) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "format", "pika-probe");
    cJSON_AddNumberToObject(r, "version", PIKA_PROBE_VERSION);
    cJSON_AddStringToObject(r, "kind", p->kind);
    cJSON_AddStringToObject(r, "task", p->task == PIKA_TARGET_BINARY ? "binary" : "continuous");
    cJSON_AddStringToObject(r, "model_type", p->task == PIKA_TARGET_BINARY ? "logistic" : "ridge");
    cJSON_AddStringToObject(r, "target", p->target ? p->target : "");
    if (!strcmp(p->kind, "probe")) {
        cJSON_AddNumberToObject(r, "layer", p->layer);
        cJSON_AddNumberToObject(r, "position", p->position);
    }
    add_num(r, "alpha", p->alpha);
    add_num(r, "cv_score", p->cv_score);
    add_num(r, "cv_score_std", p->cv_score_std);
    cJSON_AddStringToObject(r, "cv_metric", p->task == PIKA_TARGET_BINARY ? "auroc" : "spearman");
    cJSON *tr = cJSON_AddObjectToObject(r, "training");
    cJSON_AddNumberToObject(tr, "n_train", (double)p->n_train);
    add_num(tr, "pos_rate", p->pos_rate);
    cJSON_AddBoolToObject(tr, "standardize", p->standardize);
    cJSON_AddBoolToObject(tr, "intercept", p->intercept);
    cJSON_AddNumberToObject(tr, "k_folds", p->k_folds);
    cJSON_AddNumberToObject(tr, "seed", (double)p->seed);
    cJSON *sc = cJSON_AddObjectToObject(r, "scaler");
    cJSON_AddItemToObject(sc, "mean", num_array(p->lin.mean, p->lin.d));
    cJSON_AddItemToObject(sc, "scale", num_array(p->lin.scale, p->lin.d));
    cJSON_AddNumberToObject(r, "d", p->lin.d);
    cJSON_AddItemToObject(r, "weights", num_array(p->lin.w, p->lin.d));
    add_num(r, "bias", p->lin.b);
    if (p->has_platt) {
        cJSON *pl = cJSON_AddObjectToObject(r, "platt");
        add_num(pl, "A", p->platt_a);
        add_num(pl, "B", p->platt_b);
    } else {
        cJSON_AddNullToObject(r, "platt");
    }
    cJSON *cv = cJSON_AddObjectToObject(r, "cv");
    cJSON_AddItemToObject(cv, "layers", int_array(p->layers, p->n_layers));
    cJSON_AddItemToObject(cv, "positions", int_array(p->positions, p->n_pos));
    cJSON_AddItemToObject(cv, "alphas", num_array(p->alphas, p->n_alpha));
    int64_t nc = (int64_t)p->n_layers * p->n_pos * p->n_alpha;
    cJSON_AddItemToObject(cv, "mean", num_array(p->cv_mean, nc));
    cJSON_AddItemToObject(cv, "std", num_array(p->cv_std, nc));
    cJSON *pv = cJSON_AddObjectToObject(r, "provenance");
    cJSON_AddNumberToObject(pv, "d_model", p->d_model);
    cJSON_AddStringToObject(pv, "fingerprint", p->fingerprint);
    cJSON *mj = cJSON_Parse(p->model_json ? p->model_json : "null"), *pj = cJSON_Parse(p->prompt_json ? p->prompt_json : "null");
    cJSON_AddItemToObject(pv, "model", mj ? mj : cJSON_CreateNull());
    cJSON_AddItemToObject(pv, "prompt", pj ? pj : cJSON_CreateNull());
    if (p->extra) cJSON_AddItemReferenceToObject(r, "extra", p->extra);
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    int rc = pika_write_file_atomic(path, s, strlen(s));
    free(s);
    return rc;
}

static char *print_json(const cJSON *v) {
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    char *r = pika_strdup(s ? s : "null");
    free(s);
    return r;
}

static int get_nums(const cJSON *a, double **out, int64_t want, const char *name, const char *path) {
    if (!cJSON_IsArray(a) || (want >= 0 && cJSON_GetArraySize(a) != want))
        return pika_set_error("%s: \"%s\" missing or of the wrong length", path, name);
    int64_t n = cJSON_GetArraySize(a), i = 0;
    *out = pika_malloc(sizeof(double) * (size_t)(n ? n : 1));
    const cJSON *it;
    cJSON_ArrayForEach(it, a) (*out)[i++] = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    return (int)n;
}

int pika_probe_load(pika_probe *p, const char *path) {
    memset(p, 0, sizeof *p);
    char *txt = pika_read_file(path, NULL);
    if (!txt) return -1;
    cJSON *r = cJSON_Parse(txt);
    free(txt);
    if (!r) return pika_set_error("%s: not valid JSON", path);
    int rc = -1;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(r, "format"), *v = cJSON_GetObjectItemCaseSensitive(r, "version");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, "pika-probe")) { pika_set_error("%s: not a pika probe file", path); goto done; }
    if (!cJSON_IsNumber(v) || v->valueint < 1 || v->valueint > PIKA_PROBE_VERSION) {
        pika_set_error("%s: probe format version %d not supported (this pika reads %d)", path, cJSON_IsNumber(v) ? v->valueint : -1,
                       PIKA_PROBE_VERSION);
        goto done;
    }
#define GETS(key) cJSON_GetObjectItemCaseSensitive(r, key)
    const cJSON *kind = GETS("kind"), *task = GETS("task"), *d = GETS("d");
    if (!cJSON_IsString(kind) || !cJSON_IsString(task) || !cJSON_IsNumber(d) || d->valueint < 1) {
        pika_set_error("%s: missing kind/task/d", path);
        goto done;
    }
    snprintf(p->kind, sizeof p->kind, "%s", kind->valuestring);
    p->task = strcmp(task->valuestring, "binary") ? PIKA_TARGET_CONTINUOUS : PIKA_TARGET_BINARY;
    p->target = pika_strdup(cJSON_IsString(GETS("target")) ? GETS("target")->valuestring : "");
    p->layer = cJSON_IsNumber(GETS("layer")) ? GETS("layer")->valueint : 0;
    p->position = cJSON_IsNumber(GETS("position")) ? GETS("position")->valueint : 0;
    p->alpha = cJSON_IsNumber(GETS("alpha")) ? GETS("alpha")->valuedouble : NAN;
    p->cv_score = cJSON_IsNumber(GETS("cv_score")) ? GETS("cv_score")->valuedouble : NAN;
    p->cv_score_std = cJSON_IsNumber(GETS("cv_score_std")) ? GETS("cv_score_std")->valuedouble : NAN;
    int dd = d->valueint;
    p->lin.d = dd;
    const cJSON *sc = GETS("scaler");
    if (get_nums(GETS("weights"), &p->lin.w, dd, "weights", path) < 0) goto done;
    if (get_nums(cJSON_GetObjectItemCaseSensitive(sc, "mean"), &p->lin.mean, dd, "scaler.mean", path) < 0) goto done;
    if (get_nums(cJSON_GetObjectItemCaseSensitive(sc, "scale"), &p->lin.scale, dd, "scaler.scale", path) < 0) goto done;
    for (int j = 0; j < dd; j++)
        if (!isfinite(p->lin.w[j]) || !isfinite(p->lin.mean[j]) || !(p->lin.scale[j] > 0)) {
            pika_set_error("%s: non-finite weight or scaler entry %d", path, j);
            goto done;
        }
    p->lin.b = cJSON_IsNumber(GETS("bias")) ? GETS("bias")->valuedouble : 0;
    const cJSON *pl = GETS("platt");
    if (cJSON_IsObject(pl)) {
        p->has_platt = 1;
        p->platt_a = cJSON_GetObjectItemCaseSensitive(pl, "A")->valuedouble;
        p->platt_b = cJSON_GetObjectItemCaseSensitive(pl, "B")->valuedouble;
    }
    const cJSON *tr = GETS("training");
    if (tr) {
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "n_train"))) p->n_train = (int64_t)x->valuedouble;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "pos_rate"))) p->pos_rate = x->valuedouble;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "standardize"))) p->standardize = cJSON_IsTrue(x);
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "intercept"))) p->intercept = cJSON_IsTrue(x);
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "k_folds"))) p->k_folds = x->valueint;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "seed"))) p->seed = (uint64_t)x->valuedouble;
    }
    const cJSON *cv = GETS("cv");
    if (cv) {
        double *t = NULL;
        int nl = get_nums(cJSON_GetObjectItemCaseSensitive(cv, "layers"), &t, -1, "cv.layers", path);
        if (nl < 0) goto done;
        p->n_layers = nl;
        p->layers = pika_malloc(sizeof(int32_t) * (nl ? nl : 1));
        for (int i = 0; i < nl; i++) p->layers[i] = (int32_t)t[i];
        free(t);
        int np = get_nums(cJSON_GetObjectItemCaseSensitive(cv, "positions"), &t, -1, "cv.positions", path);
        if (np < 0) goto done;
        p->n_pos = np;
        p->positions = pika_malloc(sizeof(int32_t) * (np ? np : 1));
        for (int i = 0; i < np; i++) p->positions[i] = (int32_t)t[i];
        free(t);
        int na = get_nums(cJSON_GetObjectItemCaseSensitive(cv, "alphas"), &p->alphas, -1, "cv.alphas", path);
        if (na < 0) goto done;
        p->n_alpha = na;
        int64_t nc = (int64_t)nl * np * na;
        if (get_nums(cJSON_GetObjectItemCaseSensitive(cv, "mean"), &p->cv_mean, nc, "cv.mean", path) < 0) goto done;
        if (get_nums(cJSON_GetObjectItemCaseSensitive(cv, "std"), &p->cv_std, nc, "cv.std", path) < 0) goto done;
    }
    const cJSON *pv = GETS("provenance");
    if (pv) {
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(pv, "d_model")) && cJSON_IsNumber(x)) p->d_model = x->valueint;
        if ((x = cJSON_GetObjectItemCaseSensitive(pv, "fingerprint")) && cJSON_IsString(x))
            snprintf(p->fingerprint, sizeof p->fingerprint, "%s", x->valuestring);
        p->model_json = print_json(cJSON_GetObjectItemCaseSensitive(pv, "model"));
        p->prompt_json = print_json(cJSON_GetObjectItemCaseSensitive(pv, "prompt"));
    }
    if (GETS("extra")) p->extra = cJSON_Duplicate(GETS("extra"), 1);
#undef GETS
    rc = 0;
done:
    cJSON_Delete(r);
    if (rc) {
        pika_probe_free(p); /* only frees: the error message stays */
    }
    return rc;
}

int pika_probe_check_acts(const pika_probe *p, const pika_acts *a) {
    if (strcmp(p->kind, "probe")) return pika_set_error("this is a %s baseline, not an activation probe", p->kind);
    if (p->d_model != a->d_model || p->lin.d != a->d_model)
        return pika_set_error("probe expects d_model=%d but activations %s have d_model=%d (different model?)", p->d_model, a->dir,
                              a->d_model);
    if (strcmp(p->fingerprint, a->fingerprint))
        return pika_set_error("activations %s come from a different model/prompt than the probe (fingerprint %s, probe %s; model %s vs %s)",
                              a->dir, a->fingerprint, p->fingerprint, a->model_json, p->model_json ? p->model_json : "null");
    if (pika_acts_layer_index(a, p->layer) < 0) return -1;
    if (pika_acts_pos_index(a, p->position) < 0) return -1;
    return 0;
}

double pika_probe_prob(const pika_probe *p, double score) {
    if (p->task == PIKA_TARGET_BINARY) return p->has_platt ? pika_sigmoid(p->platt_a * score + p->platt_b) : pika_sigmoid(score);
    return score < 0 ? 0 : score > 1 ? 1 : score;
}

int pika_probe_layer(const pika_probe *p) { return p->layer; }
int pika_probe_position(const pika_probe *p) { return p->position; }
int pika_probe_d_model(const pika_probe *p) { return p->d_model ? p->d_model : p->lin.d; }

int pika_probe_score_hidden(const pika_probe *p, const float *h, int d, double *score, double *prob) {
    if (strcmp(p->kind, "probe")) return pika_set_error("this is a %s baseline, not an activation probe", p->kind);
    if (d != p->lin.d) return pika_set_error("probe expects a hidden vector of %d values, got %d", p->lin.d, d);
    double s = p->lin.b;
    for (int j = 0; j < d; j++) {
        if (!isfinite(h[j])) return pika_set_error("hidden vector has a non-finite value at %d", j);
        s += p->lin.w[j] * (((double)h[j] - p->lin.mean[j]) / p->lin.scale[j]);
    }
    if (score) *score = s;
    if (prob) *prob = pika_probe_prob(p, s);
    return 0;
}

int pika_probe_check_reader(const pika_probe *p, const char *model_fingerprint, const char *recipe_json) {
    if (strcmp(p->kind, "probe")) return pika_set_error("this is a %s baseline, not an activation probe", p->kind);
    cJSON *m = cJSON_Parse(p->model_json ? p->model_json : "null");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(m, "fingerprint");
    int rc = 0;
    if (!cJSON_IsString(fp)) rc = pika_set_error("the probe records no model fingerprint (model %s)", p->model_json ? p->model_json : "null");
    else if (!model_fingerprint || strcmp(fp->valuestring, model_fingerprint))
        rc = pika_set_error("probe was trained on model %s, not on this model (fingerprint %s)", fp->valuestring,
                            model_fingerprint ? model_fingerprint : "(none)");
    cJSON_Delete(m);
    if (rc || !recipe_json) return rc;
    cJSON *mine = cJSON_Parse(recipe_json), *theirs = cJSON_Parse(p->prompt_json ? p->prompt_json : "null");
    if (!mine) rc = pika_set_error("prompt recipe is not valid JSON");
    else if (!theirs || !cJSON_Compare(mine, theirs, 1))
        rc = pika_set_error("probe was trained with prompt recipe %s, not %s", p->prompt_json ? p->prompt_json : "null", recipe_json);
    cJSON_Delete(mine);
    cJSON_Delete(theirs);
    return rc;
}

/* ---------------------------------------------------------------- sweep on a store */

void pika_probe_train_opts_default(pika_probe_train_opts *o) {
    memset(o, 0, sizeof *o);
    pika_fit_opts_default(&o->fit);
}

static int probe_train(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const char *target,
                       const int32_t *layers, int n_layers, const int32_t *positions, int n_pos,
                       const pika_fit_opts *o, pika_probe *out, FILE *log, double *oof_out);

int pika_probe_train(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const pika_probe_train_opts *o,
                     pika_probe *out) {
    return probe_train(a, rows, n, y, o->target, o->layers, o->n_layers, o->positions, o->n_pos, &o->fit, out, o->log,
                       o->oof_out);
}

static int probe_train(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const char *target,
                       const int32_t *layers, int n_layers, const int32_t *positions, int n_pos,
                       const pika_fit_opts *o, pika_probe *out, FILE *log, double *oof_out) {
    memset(out, 0, sizeof *out);
    int task = pika_resolve_task(o->task, y, n);
    if (task < 0) return -1;
    int k = o->k_folds, A = o->n_alpha, d = a->d_model;
    if (A < 1 || A > PIKA_MAX_ALPHA) return pika_set_error("alpha grid must have 1..%d values", PIKA_MAX_ALPHA);
    for (int i = 0; i < A; i++)
        if (!(o->alpha[i] > 0)) return pika_set_error("alpha values must be > 0");
    /* resolve layer / position indices */
    int nl = layers ? n_layers : a->n_layers, np = positions ? n_pos : a->n_pos;
    int *li = pika_malloc(sizeof(int) * nl), *pi = pika_malloc(sizeof(int) * np);
    for (int i = 0; i < nl; i++)
        if ((li[i] = layers ? pika_acts_layer_index(a, layers[i]) : i) < 0) { free(li); free(pi); return -1; }
    for (int i = 0; i < np; i++)
        if ((pi[i] = positions ? pika_acts_pos_index(a, positions[i]) : i) < 0) { free(li); free(pi); return -1; }
    int *fold = pika_malloc(sizeof(int) * n);
    if (pika_make_folds(y, n, task, k, o->seed, fold)) { free(li); free(pi); free(fold); return -1; }
    pika_fit_opts o2 = *o;
    o2.task = task;
    double *X = pika_malloc(sizeof(double) * (size_t)n * d);
    double *oof = pika_malloc(sizeof(double) * (size_t)A * n), *best_oof = pika_malloc(sizeof(double) * n);
    out->n_layers = nl; out->n_pos = np; out->n_alpha = A;
    out->layers = pika_malloc(sizeof(int32_t) * nl);
    out->positions = pika_malloc(sizeof(int32_t) * np);
    out->alphas = pika_malloc(sizeof(double) * A);
    for (int i = 0; i < nl; i++) out->layers[i] = a->layers[li[i]];
    for (int i = 0; i < np; i++) out->positions[i] = a->positions[pi[i]];
    memcpy(out->alphas, o->alpha, sizeof(double) * A);
    out->cv_mean = pika_malloc(sizeof(double) * nl * np * A);
    out->cv_std = pika_malloc(sizeof(double) * nl * np * A);
    double best = -INFINITY;
    int bl = -1, bp = -1, ba = -1, rc = 0;
    pika_progress prog;
    pika_progress_begin(&prog, "probe sweep", (int64_t)nl * np, 0);
    if (log) fprintf(log, "%-6s %-9s %-10s %-8s  (CV %s, %d-fold, n=%lld)\n", "layer", "best_pos", "best_alpha", "cv", task == PIKA_TARGET_BINARY ? "AUROC" : "Spearman", k, (long long)n);
    for (int l = 0; l < nl && !rc; l++) {
        double lbest = -INFINITY;
        int lp = 0, la = 0;
        for (int p = 0; p < np && !rc; p++) {
            if ((rc = pika_acts_read(a, li[l], pi[p], rows, n, X))) break;
            double *cm = out->cv_mean + ((size_t)l * np + p) * A, *cs = out->cv_std + ((size_t)l * np + p) * A;
            if ((rc = pika_cv_dense(X, n, d, y, task, fold, &o2, cm, cs, oof))) break;
            for (int q = 0; q < A; q++) {
                double s = isnan(cm[q]) ? -INFINITY : cm[q];
                if (s > best) {
                    best = s; bl = l; bp = p; ba = q;
                    memcpy(best_oof, oof + (size_t)q * n, sizeof(double) * n);
                }
                if (s > lbest) { lbest = s; lp = p; la = q; }
            }
            pika_progress_update(&prog, (int64_t)l * np + p + 1);
        }
        if (!rc && log) fprintf(log, "%-6d %-9d %-10g %.4f\n", a->layers[li[l]], a->positions[pi[lp]], o->alpha[la], lbest);
        pika_acts_release_layer(a, li[l]);
    }
    pika_progress_end(&prog, (int64_t)nl * np);
    if (!rc && bl < 0) rc = pika_set_error("no valid CV score (all NaN)");
    if (!rc) {
        snprintf(out->kind, sizeof out->kind, "probe");
        out->task = task;
        out->target = pika_strdup(target ? target : "");
        out->layer = a->layers[li[bl]];
        out->position = a->positions[pi[bp]];
        out->alpha = o->alpha[ba];
        out->cv_score = best;
        out->cv_score_std = out->cv_std[((size_t)bl * np + bp) * A + ba];
        out->standardize = o->standardize;
        out->intercept = o->intercept;
        out->k_folds = k;
        out->seed = o->seed;
        out->n_train = n;
        double pr = 0;
        for (int64_t i = 0; i < n; i++) pr += y[i];
        out->pos_rate = pr / (double)n;
        out->d_model = d;
        out->model_json = pika_strdup(a->model_json);
        out->prompt_json = pika_strdup(a->prompt_json);
        memcpy(out->fingerprint, a->fingerprint, sizeof out->fingerprint);
        rc = pika_acts_read(a, li[bl], pi[bp], rows, n, X);
        pika_acts_release_layer(a, li[bl]);
        if (!rc) rc = pika_fit_dense(X, n, d, y, task, out->alpha, &o2, &out->lin);
        if (!rc && task == PIKA_TARGET_BINARY) {
            rc = pika_platt_fit(best_oof, y, n, &out->platt_a, &out->platt_b);
            out->has_platt = rc == 0;
        }
        if (!rc && oof_out) memcpy(oof_out, best_oof, sizeof(double) * n);
        if (!rc && log)
            fprintf(log, "selected: layer %d position %d alpha %g  CV %s %.4f +- %.4f\n", out->layer, out->position, out->alpha,
                    task == PIKA_TARGET_BINARY ? "AUROC" : "Spearman", best, out->cv_score_std);
    }
    free(li); free(pi); free(fold); free(X); free(oof); free(best_oof);
    scratch_release();
    if (rc) {
        pika_probe_free(out); /* only frees: the error message stays */
    }
    return rc;
}

int pika_probe_predict(const pika_probe *p, pika_acts *a, const int64_t *rows, int64_t n, double *score, double *prob) {
    if (pika_probe_check_acts(p, a)) return -1;
    int li = pika_acts_layer_index(a, p->layer), pi = pika_acts_pos_index(a, p->position);
    int d = a->d_model;
    double *x = pika_malloc(sizeof(double) * d);
    int rc = 0;
    for (int64_t i = 0; i < n && !rc; i++) {
        int64_t r = rows ? rows[i] : i;
        if ((rc = pika_acts_read(a, li, pi, &r, 1, x))) break;
        score[i] = pika_linear_score(&p->lin, x);
        if (prob) prob[i] = pika_probe_prob(p, score[i]);
    }
    pika_acts_release_layer(a, li);
    free(x);
    return rc;
}
