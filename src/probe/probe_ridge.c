/* probe_ridge.c — owns ridge regression over an alpha grid: one factorization per fold (Cholesky
 * per alpha or one eigendecomposition), primal Gram matrices from per-fold blocks or the dual
 * kernel, CV scores and out-of-fold predictions (OpenBLAS + LAPACKE). See include/pika/probe.h. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"
#include "pika/util.h"
#include "pika/metrics.h"

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
int probe_ridge_fit_all(const double *X, int64_t n, int d, const double *y, const pika_fit_opts *o, const double *alphas,
                         int A, double *mean, double *scale, double *W, double *b) {
    probe_col_stats(X, n, d, o, mean, scale);
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

/* Ridge CV. Primal (d <= smallest training fold): Gram matrices of each fold block are computed once
 * (on rows shifted by the global mean, for accuracy) and each fold's training Gram is the total
 * minus its own block, corrected for that fold's centering and scaling. Dual otherwise. */
int probe_ridge_cv(const double *X, int64_t n, int d, const double *y, const int *fold, const pika_fit_opts *o,
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
        double *Xb = probe_scratch_get(0, sizeof(double) * (size_t)n * (size_t)d); /* shifted rows in fold order */
        double *yb = pika_malloc(sizeof(double) * (size_t)n);
        for (int64_t t = 0; t < n; t++) {
            const double *src = X + order[t] * d;
            for (int j = 0; j < d; j++) Xb[t * d + j] = src[j] - c[j];
            yb[t] = y[order[t]];
        }
        double *S = probe_scratch_get(1, sizeof(double) * dd * (size_t)(k + 1)); /* S[k] = total */
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
            rc = probe_ridge_fit_all(Xt, m, d, yt, o, o->alpha, A, mean, scale, W, &b);
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
                scores[f * A + a] = probe_fold_metric(o->task, ys, ps, q);
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
