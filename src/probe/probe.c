/* probe.c — owns the probe sweep: fit options, target resolution, stratified seeded folds, the
 * linear model, the dense CV / fit dispatch (ridge or logistic), Platt calibration, the
 * (layer, position, alpha) sweep on an activation store and prediction from a store; plus the
 * per-thread scratch buffers and worker pool the solvers share. Solvers: probe_ridge.c,
 * probe_logistic.c, probe_sparse.c; the probe file: probe_file.c. Objectives and conventions:
 * include/pika/probe.h; internals: probe_internal.h. */
#include "pika/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"
#include "pika/util.h"
#include "pika/metrics.h"
#include "pika/threadpool.h"

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

double probe_fold_metric(int task, const double *y, const double *s, int64_t n) {
    return task == PIKA_TARGET_BINARY ? pika_auroc(y, s, n) : pika_spearman(s, y, n);
}

/* Mean / scale over rows (all rows of X [n x d]) per the options. */
void probe_col_stats(const double *X, int64_t n, int d, const pika_fit_opts *o, double *mean, double *scale) {
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

/* Large per-sweep buffers are kept between (layer, position) configurations of one thread: freeing
 * and re-mapping ~200 MB per configuration costs more in page faults than the solves save.
 * pika_probe_train releases them at the end. */
static _Thread_local struct { void *p; size_t cap; } g_scratch[2];

void *probe_scratch_get(int slot, size_t bytes) {
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

pika_pool *probe_pool(int nt) {
    if (g_pool && pika_pool_size(g_pool) != nt) { pika_pool_free(g_pool); g_pool = NULL; }
    if (!g_pool) g_pool = pika_pool_new(nt);
    return g_pool;
}

void probe_scratch_release(void) {
    if (g_pool) { pika_pool_free(g_pool); g_pool = NULL; }
    for (int i = 0; i < 2; i++) {
        free(g_scratch[i].p);
        g_scratch[i].p = NULL;
        g_scratch[i].cap = 0;
    }
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
        rc = probe_ridge_cv(X, n, d, y, fold, &o2, scores, oof);
    } else if (o->logistic_solver == PIKA_LOGISTIC_NEWTON) {
        if (k > 64) { free(scores); return pika_set_error("at most 64 folds"); }
        double *pred = oof ? oof : pika_malloc(sizeof(double) * (size_t)A * n);
        probe_lr_newton(X, n, d, y, fold, k, &o2, o->alpha, A, pred, NULL, NULL, NULL, NULL);
        probe_finish_scores(pred, n, y, fold, k, A, task, scores);
        if (!oof) free(pred);
        rc = 0;
    } else {
        double *pred = oof ? oof : pika_malloc(sizeof(double) * (size_t)A * n);
        probe_lr_job *jobs = pika_calloc((size_t)k, sizeof(probe_lr_job));
        for (int f = 0; f < k; f++)
            jobs[f] = (probe_lr_job){.X = X, .n = n, .d = d, .y = y, .fold = fold, .f = f, .o = &o2, .alphas = o->alpha, .A = A, .pred = pred};
        rc = probe_lr_run_jobs(jobs, k, o->n_threads < k ? o->n_threads : k);
        if (!rc) probe_finish_scores(pred, n, y, fold, k, A, task, scores);
        free(jobs);
        if (!oof) free(pred);
    }
    if (!rc) probe_summarize(scores, k, A, cv_mean, cv_std);
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
        rc = probe_ridge_fit_all(X, n, d, y, o, &alpha, 1, m->mean, m->scale, m->w, &m->b);
    } else if (o->logistic_solver == PIKA_LOGISTIC_NEWTON) {
        probe_lr_newton(X, n, d, y, NULL, 1, o, &alpha, 1, NULL, m->w, &m->b, m->mean, m->scale);
        rc = 0;
    } else {
        probe_lr_job J = {.X = X, .n = n, .d = d, .y = y, .f = -1, .o = o, .alphas = &alpha, .A = 1, .W = m->w, .bias = &m->b,
                    .mean = m->mean, .scale = m->scale};
        rc = probe_lr_run_jobs(&J, 1, 1);
    }
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

/* ---------------------------------------------------------------- sweep on a store */

void pika_probe_train_opts_default(pika_probe_train_opts *o) {
    memset(o, 0, sizeof *o);
    pika_fit_opts_default(&o->fit);
}

static int probe_train(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const char *target,
                       const int32_t *layers, int n_layers, const int32_t *positions, int n_pos,
                       const pika_fit_opts *o, pika_probe *out, FILE *log, double *oof_out, const char *labels_path,
                       const char *split, const int *folds);

int pika_probe_train(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const pika_probe_train_opts *o,
                     pika_probe **out) {
    pika_probe *p = pika_calloc(1, sizeof *p);
    if (probe_train_into(a, rows, n, y, o, p)) { free(p); *out = NULL; return -1; }
    *out = p;
    return 0;
}

int probe_train_into(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const pika_probe_train_opts *o,
                     pika_probe *out) {
    if (probe_train(a, rows, n, y, o->target, o->layers, o->n_layers, o->positions, o->n_pos, &o->fit, out, o->log,
                    o->oof_out, o->labels_path, o->split, o->folds))
        return -1;
    if (o->member) out->member = pika_strdup(o->member);
    return 0;
}

static int probe_train(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const char *target,
                       const int32_t *layers, int n_layers, const int32_t *positions, int n_pos,
                       const pika_fit_opts *o, pika_probe *out, FILE *log, double *oof_out, const char *labels_path,
                       const char *split, const int *folds) {
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
    if (folds) {
        for (int64_t i = 0; i < n; i++) {
            if (folds[i] < 0 || folds[i] >= k) { free(li); free(pi); free(fold); return pika_set_error("fold %d of row %lld outside 0..%d", folds[i], (long long)i, k - 1); }
            fold[i] = folds[i];
        }
    } else if (pika_make_folds(y, n, task, k, o->seed, fold)) { free(li); free(pi); free(fold); return -1; }
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
        const char *base = labels_path ? strrchr(labels_path, '/') : NULL; /* file name only: reproducible files */
        out->labels_path = labels_path ? pika_strdup(base ? base + 1 : labels_path) : NULL;
        out->split = split ? pika_strdup(split) : NULL;
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
    probe_scratch_release();
    if (rc) {
        probe_clear(out); /* only frees: the error message stays */
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
