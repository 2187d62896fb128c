/* probe_sparse.c — owns probes on sparse CSR rows (TF-IDF baselines): ridge by conjugate gradients
 * with implicit centering, logistic through liblinear, CV with a per-fold refit of the caller's
 * vectorizer. See include/pika/probe.h. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"
#include "pika/util.h"
#include "pika/metrics.h"

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
            probe_lr_job J = {.Z = &Z, .n = n, .d = Z.d, .y = y, .fold = fold, .f = f, .o = &o2, .alphas = o->alpha, .A = A, .pred = pred};
            rc = probe_lr_run_jobs(&J, 1, 1);
        }
        pika_csr_free(&Z);
    }
    if (!rc) {
        probe_finish_scores(pred, n, y, fold, k, A, task, scores);
        probe_summarize(scores, k, A, cv_mean, cv_std);
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
    probe_lr_job J = {.Z = Z, .n = Z->n, .d = d, .y = y, .f = -1, .o = o, .alphas = &alpha, .A = 1, .W = m->w, .bias = &m->b};
    int rc = probe_lr_run_jobs(&J, 1, 1);
    if (rc) pika_linear_free(m);
    return rc;
}
