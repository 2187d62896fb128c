/* metrics.h — evaluation metrics for probes and baselines, with seeded bootstrap intervals.
 *
 * Definitions (all match scikit-learn / scipy to ~1e-12 on the same inputs; see tests/sklearn_check.py):
 *   AUROC     Mann-Whitney U / (n1 n0) with average ranks for ties (= sklearn roc_auc_score).
 *             NaN when y has one class.
 *   Spearman  Pearson correlation of average ranks (= scipy.stats.spearmanr). NaN if a side is constant.
 *   Pearson   sum((x-mx)(y-my)) / sqrt(sum((x-mx)^2) sum((y-my)^2)).
 *   Brier     mean (p - y)^2 (= sklearn brier_score_loss for 0/1 y).
 *   Log loss  -mean(y ln p + (1-y) ln(1-p)) with p clipped to [1e-15, 1-1e-15].
 *   ECE       10 equal-width bins with edges e_i = i*0.1; a prediction p goes to bin
 *             b = #{i in 1..9 : e_i < p} (so bins are [0,.1], (.1,.2], ..., (.9,1]; this is exactly the
 *             binning of sklearn.calibration.calibration_curve(strategy="uniform")).
 *             ECE = sum_b (n_b / N) |mean(y in b) - mean(p in b)| over non-empty bins.
 * Bootstrap: B resamples of n rows with replacement from a splitmix64 stream seeded by `seed`.
 * Resamples where the metric is NaN (e.g. one class) are skipped. Interval: median-centered
 * percentile, [est + q2.5 - q50, est + q97.5 - q50] of the resampled metric q, clipped to the metric's
 * range. It has the width of the plain percentile interval but is placed around the point estimate,
 * so it always contains it: a plain percentile interval of ECE excludes its own estimate because
 * resamples are systematically worse calibrated than the sample (duplicated rows).
 */
#ifndef PIKA_METRICS_H
#define PIKA_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum { PIKA_M_AUROC, PIKA_M_SPEARMAN, PIKA_M_PEARSON, PIKA_M_BRIER, PIKA_M_LOGLOSS, PIKA_M_ECE, PIKA_M_COUNT };
extern const char *const pika_metric_names[PIKA_M_COUNT]; /* "auroc", "spearman", ... */

/* Seeded RNG (splitmix64). */
typedef struct { uint64_t s; } pika_rng;
void pika_rng_seed(pika_rng *r, uint64_t seed);
uint64_t pika_rng_next(pika_rng *r);
double pika_rng_uniform(pika_rng *r);            /* [0, 1) */
int64_t pika_rng_below(pika_rng *r, int64_t n);   /* [0, n) */
void pika_rng_shuffle(pika_rng *r, int64_t *a, int64_t n);

/* Average ranks (1-based, ties get the mean rank) of x[0..n) into r. */
void pika_rank_avg(const double *x, int64_t n, double *r);

double pika_auroc(const double *y, const double *s, int64_t n);  /* y in {0,1} */
double pika_spearman(const double *x, const double *y, int64_t n);
double pika_pearson(const double *x, const double *y, int64_t n);
double pika_brier(const double *y, const double *p, int64_t n);
double pika_logloss(const double *y, const double *p, int64_t n);
double pika_ece(const double *y, const double *p, int64_t n, int n_bins);

/* Reliability curve: per bin count, mean prediction and mean outcome (NaN for empty bins). */
void pika_reliability(const double *y, const double *p, int64_t n, int n_bins, int64_t *count, double *mean_p, double *mean_y);

/* Metric `which` (PIKA_M_*) of score/probability s against y. */
double pika_metric(int which, const double *y, const double *s, int64_t n);

/* Bootstrap percentile 95% CI of metric `which`. Returns the point estimate; lo/hi set (NaN if
 * no valid resample). */
double pika_bootstrap_ci(int which, const double *y, const double *s, int64_t n, int n_boot, uint64_t seed,
                         double *lo, double *hi);

/* "p < 1/B" when no resample of B crossed zero (p == 0), "p = 0.0123" otherwise, "p n/a" for NaN.
 * Returns buf. */
const char *pika_format_p(double p, int n_boot, char *buf, size_t cap);

/* Paired bootstrap of metric(a) - metric(b) on the same resampled rows. Returns the observed
 * difference; lo/hi = 95% CI of the difference; p = two-sided bootstrap p-value
 * (2 * min(frac(diff <= 0), frac(diff >= 0)), capped at 1). */
double pika_paired_bootstrap(int which, const double *y, const double *a, const double *b, int64_t n, int n_boot,
                             uint64_t seed, double *lo, double *hi, double *p);

#endif
