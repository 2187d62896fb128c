/* eval.h — prediction files and their evaluation: the one home of the prediction JSONL format
 * (writer and reader), the join with a labels file, the metric table with bootstrap CIs, and the
 * paired comparison of two prediction files on their shared ids.
 *
 * Prediction file (JSONL, one line per example, written by `pika probe predict` /
 * `pika baseline predict`): {"id": "<id>", "score": s, "prob": p} — score is the raw linear score,
 * prob the calibrated probability (Platt for binary targets; the clipped score for continuous ones).
 * Numbers are written with %.17g (bit-exact round trip). Ids follow pika_json_id (dataset.h).
 */
#ifndef PIKA_EVAL_H
#define PIKA_EVAL_H

#include <stdint.h>

#include "pika/metrics.h"

/* Write predictions for rows[0..n) (rows == NULL: 0..n-1) of ids; score[i], prob[i] belong to row i.
 * Written atomically. */
int pika_pred_write(const char *path, char *const *ids, const int64_t *rows, int64_t n, const double *score,
                    const double *prob);

/* A prediction file read into memory (file order). */
typedef struct {
    int64_t n;
    char **ids;     /* [n] */
    double *score;  /* [n] */
    double *prob;   /* [n] */
} pika_preds;
int pika_pred_read(const char *path, pika_preds *p);
void pika_preds_free(pika_preds *p);

typedef struct {
    int task;                 /* PIKA_TARGET_BINARY or PIKA_TARGET_CONTINUOUS */
    int64_t n;
    double base_rate;         /* mean of y (binary: fraction of positives) */
    int n_boot;
    int has[PIKA_M_COUNT];
    double m[PIKA_M_COUNT], lo[PIKA_M_COUNT], hi[PIKA_M_COUNT]; /* point estimate and bootstrap 95% CI */
} pika_eval;

/* Join a prediction file with labels[target] by id (every prediction id must have a label). The
 * arrays are malloc'ed, in prediction-file order; ids may be NULL. */
int pika_eval_load(const char *pred_path, const char *labels_path, const char *target, const char *id_field,
                   double **y, double **score, double **prob, char ***ids, int64_t *n);
/* Binary: AUROC (score), Brier, log loss, ECE (prob), Spearman (score vs y). Continuous: Spearman,
 * Pearson (score), Brier = MSE (prob). task AUTO decides from y. n_boot = 0 skips the CIs (NaN). */
int pika_eval_compute(const double *y, const double *score, const double *prob, int64_t n, int task, int n_boot,
                      uint64_t seed, pika_eval *e);

/* Paired bootstrap of metric(a) - metric(b) (AUROC for binary, Spearman for continuous) over the
 * ids the two predictions share: a = (ids_a, score_a, y) [n_a], b = (ids_b, score_b) [n_b]. */
typedef struct {
    int metric;               /* PIKA_M_AUROC or PIKA_M_SPEARMAN */
    int64_t n;                /* shared ids */
    int n_boot;
    double delta, lo, hi, p;  /* p: two-sided; print with pika_format_p (p == 0 means p < 1/n_boot) */
} pika_paired;
int pika_eval_paired(int task, const double *y, char *const *ids_a, const double *score_a, int64_t n_a,
                     char *const *ids_b, const double *score_b, int64_t n_b, int n_boot, uint64_t seed, pika_paired *out);

#endif
