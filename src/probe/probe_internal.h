/* probe_internal.h — private interface between the probe modules (probe.c, probe_ridge.c,
 * probe_logistic.c, probe_sparse.c, probe_file.c). Not installed; not part of the API. */
#ifndef PIKA_PROBE_INTERNAL_H
#define PIKA_PROBE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "pika/acts.h"
#include "pika/probe.h"
#include "pika/threadpool.h"

/* The probe behind the opaque pika_probe handle (probe kind and baselines). */
struct pika_probe {
    char kind[16];          /* "probe", "length", "tfidf" */
    int task;
    char *target;           /* label field */
    int layer, position;    /* selected (probe kind) */
    double alpha;
    double cv_score, cv_score_std;
    pika_linear lin;
    int has_platt;
    double platt_a, platt_b;
    /* CV curve [n_layers x n_pos x n_alpha] (mean, std over folds); for baselines n_layers = n_pos = 1 */
    int n_layers, n_pos, n_alpha;
    int32_t *layers, *positions;
    double *alphas;
    double *cv_mean, *cv_std;
    int standardize, intercept, k_folds;
    uint64_t seed;
    int64_t n_train;
    double pos_rate;        /* binary: fraction of positives in training */
    char *labels_path;      /* provenance: the labels file name (no directory) and split of the rows (NULL = not recorded) */
    char *split;
    char *member;           /* reader probe: the pool member whose success it predicts (NULL = the reader itself) */
    /* provenance of the activations (probe kind) */
    int d_model;
    char *model_json, *prompt_json;
    char fingerprint[17];
    struct cJSON *extra;    /* kind-specific payload (e.g. TF-IDF vocabulary), owned */
};

/* In-place forms of the public constructors (the struct is the caller's; clear frees its contents
 * and zeroes it, the error message stays). */
void probe_clear(pika_probe *p);
int probe_load_into(pika_probe *p, const char *path);
int probe_train_into(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const pika_probe_train_opts *o,
                     pika_probe *out);

/* probe.c: fold metric (AUROC for binary, Spearman for continuous) of held-out scores s vs y [n] */
double probe_fold_metric(int task, const double *y, const double *s, int64_t n);
/* probe.c: column mean / scale of X [n x d] under o (standardize, intercept) */
void probe_col_stats(const double *X, int64_t n, int d, const pika_fit_opts *o, double *mean, double *scale);
/* probe.c: per-thread scratch buffers (slot 0 / 1), kept across a sweep, and the per-thread worker
 * pool of nt threads; probe_scratch_release frees both (end of pika_probe_train). */
void *probe_scratch_get(int slot, size_t bytes);
pika_pool *probe_pool(int nt);
void probe_scratch_release(void);
/* probe_logistic.c: CV bookkeeping shared by the solvers: scores[f*A + a] from pooled held-out predictions
 * pred [A x n]; cv_mean / cv_std over folds. */
void probe_finish_scores(const double *pred, int64_t n, const double *y, const int *fold, int k, int A, int task,
                         double *scores);
void probe_summarize(const double *scores, int k, int A, double *cv_mean, double *cv_std);

/* probe_ridge.c */
int probe_ridge_fit_all(const double *X, int64_t n, int d, const double *y, const pika_fit_opts *o, const double *alphas,
                        int A, double *mean, double *scale, double *W, double *b);
int probe_ridge_cv(const double *X, int64_t n, int d, const double *y, const int *fold, const pika_fit_opts *o,
                   double *scores /* [k][A] */, double *oof /* [A*n] or NULL */);

/* probe_logistic.c */
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
} probe_lr_job;
int probe_lr_run_jobs(probe_lr_job *jobs, int k, int n_threads);
void probe_lr_newton(const double *X, int64_t n, int d, const double *y, const int *fold, int F, const pika_fit_opts *o,
                     const double *alphas, int A, double *pred, double *Wout, double *bout, double *mean, double *scale);

#endif
