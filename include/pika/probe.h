/* probe.h — linear probes: standardization, ridge over an alpha grid (one factorization per fold),
 * L2 logistic regression, stratified seeded k-fold CV on the training rows only,
 * (layer, position, alpha) selection, Platt calibration on out-of-fold scores, the probe file, and
 * serving (score one hidden vector, check a reader). A trained or loaded probe is an opaque
 * pika_probe handle (pika_probe_train / pika_probe_load create it, pika_probe_free frees it).
 *
 * Objectives (alpha as in the paper / scikit-learn):
 *   ridge    min_w,b ||y - Zw - b||^2 + alpha ||w||^2              (b unpenalized; = sklearn Ridge)
 *            Solved for the whole alpha grid from one factorization per fold: Cholesky per alpha
 *            (auto for <= 12 alphas) or one eigendecomposition (dsyevd) + a diagonal rescale per alpha;
 *            primal (d x d Gram) when d <= training rows, dual (n x n kernel) otherwise.
 *   logistic min_w,b 1/2 ||w||^2 + C sum_i log(1 + exp(-s_i (z_i.w + b)))   with C = 1/alpha and
 *            s_i = +-1 (= sklearn LogisticRegression(C=1/alpha), the paper's mapping).
 *            Dense features (default): pika's truncated Newton-CG, all k folds solved together (one
 *            pass over the data serves every fold), warm starts from the largest alpha down, b
 *            unpenalized, stopping rule as liblinear's: ||grad|| <= eps min(#pos,#neg)/n ||grad(0)||.
 *            liblinear (L2R_LR, option, and always for sparse TF-IDF features): liblinear 2.3
 *            penalizes its bias, so the intercept is a feature of constant value B
 *            (opts.bias_scale, default 10) whose weight is penalized by b^2 / (2 B^2) — negligible.
 *   Z = standardized features: (x - mean) / std over the fitting rows (population std; a zero std
 *   becomes 1). Without standardization Z = X (centered only when an intercept is fitted, ridge).
 * Selection: for each (layer, position, alpha) the CV score = mean over folds of the fold metric
 * (AUROC for binary targets, Spearman for continuous). The best is the highest mean; ties keep the
 * first in (layer, position, alpha) order. The final model is refit on all training rows at the
 * selected alpha. Platt: p = 1/(1+exp(-(A s + B))) fitted on the pooled out-of-fold scores of the
 * selected configuration, minimizing log loss + A^2/2 (= sklearn LogisticRegression() on s).
 */
#ifndef PIKA_PROBE_H
#define PIKA_PROBE_H

#include <stdint.h>
#include <stdio.h>

#include "pika/acts.h"

/* Kind of probe target (not to be confused with pika_task_kind, the grading kind of a dataset row). */
enum { PIKA_TARGET_AUTO = 0, PIKA_TARGET_BINARY = 1, PIKA_TARGET_CONTINUOUS = 2 };
enum { PIKA_RIDGE_AUTO = 0, PIKA_RIDGE_EIG = 1, PIKA_RIDGE_CHOL = 2 };
enum { PIKA_LOGISTIC_NEWTON = 0, PIKA_LOGISTIC_LIBLINEAR = 1 };
#define PIKA_MAX_ALPHA 32
#define PIKA_PROBE_VERSION 1

struct cJSON;

typedef struct {
    int task;                     /* target kind PIKA_TARGET_* (AUTO: binary when every y is 0 or 1) */
    int n_alpha;
    double alpha[PIKA_MAX_ALPHA]; /* default {1, 10, 100, 1000, 10000} */
    int standardize;              /* default 1 */
    int intercept;                /* default 1 */
    int k_folds;                  /* default 5 */
    uint64_t seed;                /* default 42 */
    double eps;                   /* stopping tolerance (liblinear's rule), default 1e-3 */
    double bias_scale;            /* liblinear bias feature value B, default 10 */
    int ridge_solver;             /* PIKA_RIDGE_*: AUTO = Cholesky per alpha when n_alpha <= 12, else one eigendecomposition */
    int n_threads;                /* folds trained in parallel (liblinear); default = cores */
    int logistic_solver;          /* dense features: PIKA_LOGISTIC_NEWTON (default, batched over folds) or _LIBLINEAR */
} pika_fit_opts;

void pika_fit_opts_default(pika_fit_opts *o);
/* "paper" raw setting: no standardization, no intercept. */
void pika_fit_opts_paper(pika_fit_opts *o);

/* Task of y: binary if all values are 0/1. Errors: fewer than 2 rows, one class (binary), constant
 * target (continuous), or a non-0/1 value when task is BINARY. Returns the resolved task or -1. */
int pika_resolve_task(int task, const double *y, int64_t n);

/* Seeded stratified k-fold assignment fold[i] in [0, k): binary -> per class round robin over a
 * shuffled order; continuous -> rows sorted by y, each consecutive group of k gets a random
 * permutation of folds. Error if a class has fewer than k members or n < 2k. */
int pika_make_folds(const double *y, int64_t n, int task, int k, uint64_t seed, int *fold);

/* A fitted linear model on d features: score(x) = sum_j w_j (x_j - mean_j) / scale_j + b. */
typedef struct {
    int d;
    double *mean;   /* [d] (zeros when not centering) */
    double *scale;  /* [d] (ones when not standardizing) */
    double *w;      /* [d] */
    double b;
} pika_linear;
void pika_linear_free(pika_linear *m);
double pika_linear_score(const pika_linear *m, const double *x);

/* Dense design X [n x d] row-major, y [n], folds. Writes cv_mean[a], cv_std[a] (fold metric mean/std
 * for each alpha) and, when oof != NULL, out-of-fold scores oof[a*n + i]. */
int pika_cv_dense(const double *X, int64_t n, int d, const double *y, int task, const int *fold,
                  const pika_fit_opts *o, double *cv_mean, double *cv_std, double *oof);
/* Fit on all rows at one alpha. */
int pika_fit_dense(const double *X, int64_t n, int d, const double *y, int task, double alpha,
                   const pika_fit_opts *o, pika_linear *m);

/* Sparse rows (CSR, column indices 0-based and increasing within a row). No standardization
 * (features are expected pre-normalized, e.g. TF-IDF); the intercept follows opts.intercept.
 * Ridge is solved by conjugate gradients on (Z'Z + alpha I) w = Z'y with implicit centering. */
typedef struct {
    int64_t n;
    int d;
    int64_t *rowptr;  /* [n+1] */
    int32_t *col;     /* [nnz] */
    double *val;      /* [nnz] */
} pika_csr;
void pika_csr_free(pika_csr *m);
/* Rows of a sparse design for CV; build(fold_or_-1, ctx) lets the caller refit its vectorizer on the
 * training part of each fold: it must return the design for ALL n rows fitted on rows with
 * fold[i] != k (k = -1: all rows). */
typedef int (*pika_csr_builder)(int k, const int *fold, void *ctx, pika_csr *out);
int pika_cv_sparse(pika_csr_builder build, void *ctx, int64_t n, const double *y, int task, const int *fold,
                   const pika_fit_opts *o, double *cv_mean, double *cv_std, double *oof);
int pika_fit_sparse(const pika_csr *Z, const double *y, int task, double alpha, const pika_fit_opts *o, pika_linear *m);
double pika_linear_score_sparse(const pika_linear *m, const pika_csr *Z, int64_t row);

/* Platt scaling on scores s (binary y). */
int pika_platt_fit(const double *s, const double *y, int64_t n, double *A, double *B);
static inline double pika_sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + __builtin_exp(-z)) : __builtin_exp(z) / (1.0 + __builtin_exp(z)); }

/* ---- probe (an opaque handle; also the baselines of baseline.h) ---- */
typedef struct pika_probe pika_probe;

/* Free a probe (NULL is fine). */

void pika_probe_free(pika_probe *p);
int pika_probe_save(const pika_probe *p, const char *path);
/* The CV curve as TSV: header "layer position alpha cv_mean cv_std", one line per configuration. */
int pika_probe_write_cv_table(const pika_probe *p, const char *path);
/* Load a probe file; NULL + error on failure. */
pika_probe *pika_probe_load(const char *path);
/* What the probe is: kind "probe" (activations), "length" or "tfidf"; its target kind
 * (PIKA_TARGET_BINARY / _CONTINUOUS) and label field; the selected alpha and CV score (mean, and std
 * over folds into *std when non-NULL) in the metric of pika_probe_target_kind (AUROC / Spearman). */
const char *pika_probe_kind(const pika_probe *p);
int pika_probe_target_kind(const pika_probe *p);
const char *pika_probe_target(const pika_probe *p);
/* The pool member a reader probe predicts (training.member), NULL for a probe of the reader's own labels. */
const char *pika_probe_member(const pika_probe *p);
/* The fingerprint of the activations the probe was trained on (its reader). */
const char *pika_probe_fingerprint(const pika_probe *p);
double pika_probe_alpha(const pika_probe *p);
double pika_probe_cv_score(const pika_probe *p, double *std);
/* Error unless the store matches the probe's provenance (fingerprint, d_model, layer, position). */
int pika_probe_check_acts(const pika_probe *p, const pika_acts *a);
/* ---- serving: score a hidden vector the caller just computed (no activation store) ----
 * Which hidden vector the probe reads: the residual stream after block pika_probe_layer(p) (0 =
 * token embeddings) at pika_probe_position(p) (a negative offset from the prompt end, -1 = last
 * prompt token), d_model = pika_probe_d_model(p) values. */
int pika_probe_layer(const pika_probe *p);
int pika_probe_position(const pika_probe *p);
int pika_probe_d_model(const pika_probe *p);
/* h [d] float32 -> raw score and calibrated probability (either may be NULL). Errors: a baseline
 * probe, d != the probe's d_model, a non-finite value. */
int pika_probe_score_hidden(const pika_probe *p, const float *h, int d, double *score, double *prob);
/* Error unless this probe was trained on activations of the model with this fingerprint
 * (pika_model_fingerprint) and, when recipe_json != NULL, the same prompt recipe (the JSON object the
 * activation store's meta.json records as "prompt"; compared as JSON values, so key order and
 * whitespace do not matter). */
int pika_probe_check_reader(const pika_probe *p, const char *model_fingerprint, const char *recipe_json);

/* Calibrated probability for a raw score (Platt for binary; clip to [0,1] for continuous). */
double pika_probe_prob(const pika_probe *p, double score);

/* Options of the full sweep on an activation store (pika_probe_train_opts_default: all layers and
 * positions, pika_fit_opts_default, no log, no out-of-fold copy). */
typedef struct {
    const char *target;         /* label field name recorded in the probe ("" when NULL) */
    const int32_t *layers;      /* [n_layers] layer numbers to sweep; NULL = every layer of the store */
    int n_layers;
    const int32_t *positions;   /* [n_pos] position offsets to sweep; NULL = every position */
    int n_pos;
    pika_fit_opts fit;
    FILE *log;                  /* progress and the per-layer CV table (NULL = silent) */
    double *oof_out;            /* [n] when non-NULL: pooled out-of-fold scores of the selected configuration */
    const char *labels_path;    /* provenance only: recorded in the probe file ("training": {"labels", "split"}) */
    const char *split;
    const int *folds;           /* [n] when non-NULL: the CV fold of each training row (0..fit.k_folds-1), e.g. one
                                 * assignment shared by every member of a pool (pika_pool_folds); NULL = stratified on y */
    const char *member;         /* reader probe: the pool member whose labels y are (recorded as training.member) */
} pika_probe_train_opts;
void pika_probe_train_opts_default(pika_probe_train_opts *o);

/* The full sweep on an activation store: rows[0..n) are the TRAINING rows (nothing else is read; NULL
 * = rows 0..n-1), y [n] their targets. */
int pika_probe_train(pika_acts *a, const int64_t *rows, int64_t n, const double *y, const pika_probe_train_opts *o,
                     pika_probe **out);
/* Scores for rows of a store (checks provenance first). score[i], prob[i]. */
int pika_probe_predict(const pika_probe *p, pika_acts *a, const int64_t *rows, int64_t n, double *score, double *prob);

#endif
