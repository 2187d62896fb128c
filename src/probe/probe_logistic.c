/* probe_logistic.c — owns L2 logistic regression: liblinear per fold (dense or sparse rows) on the
 * worker pool, and pika's batched truncated Newton-CG over all folds at once (float32 SIMD margin and
 * Hessian-vector passes, warm starts along the alpha path). See include/pika/probe.h. */
#include <linear.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"
#include "pika/util.h"
#include "pika/metrics.h"
#include "pika/threadpool.h"

/* ---------------------------------------------------------------- logistic (liblinear) */

static void ll_quiet(const char *s) { (void)s; }



static void *lr_run(void *arg) {
    probe_lr_job *J = arg;
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
        probe_col_stats(Xt, m, d, o, mean, scale);
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
    probe_lr_job *jobs;
    int k;
} lr_batch;

static void lr_pool_fn(void *ctx, int ith, int nth) {
    lr_batch *b = ctx;
    for (int f = ith; f < b->k; f += nth) lr_run(&b->jobs[f]);
}

int probe_lr_run_jobs(probe_lr_job *jobs, int k, int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > k) n_threads = k;
    set_print_string_function(ll_quiet);
    lr_batch b = {jobs, k};
    pika_pool_run(probe_pool(n_threads), lr_pool_fn, &b);
    for (int f = 0; f < k; f++)
        if (jobs[f].rc) return pika_set_error("%s", jobs[f].err);
    return 0;
}

void probe_finish_scores(const double *pred, int64_t n, const double *y, const int *fold, int k, int A, int task,
                          double *scores) {
    double *ys = pika_malloc(sizeof(double) * n), *ps = pika_malloc(sizeof(double) * n);
    for (int f = 0; f < k; f++)
        for (int a = 0; a < A; a++) {
            int64_t q = 0;
            for (int64_t i = 0; i < n; i++)
                if (fold[i] == f) { ys[q] = y[i]; ps[q++] = pred[(size_t)a * n + i]; }
            scores[f * A + a] = probe_fold_metric(task, ys, ps, q);
        }
    free(ys);
    free(ps);
}

void probe_summarize(const double *scores, int k, int A, double *cv_mean, double *cv_std) {
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
void probe_lr_newton(const double *X, int64_t n, int d, const double *y, const int *fold, int F, const pika_fit_opts *o,
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
