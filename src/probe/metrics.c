/* metrics.c — AUROC, Spearman, Pearson, Brier, log loss, ECE, reliability curves, seeded bootstrap
 * CIs and the paired bootstrap test. Definitions in include/pika/metrics.h. */
#include "pika/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/util.h"

const char *const pika_metric_names[PIKA_M_COUNT] = {"auroc", "spearman", "pearson", "brier", "logloss", "ece"};

void pika_rng_seed(pika_rng *r, uint64_t seed) { r->s = seed ^ 0x9E3779B97F4A7C15ULL; }

uint64_t pika_rng_next(pika_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double pika_rng_uniform(pika_rng *r) { return (double)(pika_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

int64_t pika_rng_below(pika_rng *r, int64_t n) { return (int64_t)(pika_rng_uniform(r) * (double)n); }

void pika_rng_shuffle(pika_rng *r, int64_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = pika_rng_below(r, i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Stable argsort (ascending), bottom-up merge sort (reentrant). */
static void argsort(const double *x, int64_t n, int64_t *idx) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    /* bottom-up merge sort, stable and reentrant */
    int64_t *tmp = pika_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = x[idx[j]] < x[idx[i]] ? idx[j++] : idx[i++];
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, sizeof(int64_t) * (size_t)n);
    }
    free(tmp);
}

void pika_rank_avg(const double *x, int64_t n, double *r) {
    int64_t *idx = pika_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    argsort(x, n, idx);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j + 1 < n && x[idx[j + 1]] == x[idx[i]]) j++;
        double avg = 0.5 * (double)(i + j) + 1.0;
        for (int64_t k = i; k <= j; k++) r[idx[k]] = avg;
        i = j + 1;
    }
    free(idx);
}

double pika_auroc(const double *y, const double *s, int64_t n) {
    double *r = pika_malloc(sizeof(double) * (size_t)(n ? n : 1));
    pika_rank_avg(s, n, r);
    double n1 = 0, sum = 0;
    for (int64_t i = 0; i < n; i++)
        if (y[i] > 0.5) { n1 += 1; sum += r[i]; }
    free(r);
    double n0 = (double)n - n1;
    if (n1 == 0 || n0 == 0) return NAN;
    return (sum - n1 * (n1 + 1) / 2) / (n1 * n0);
}

double pika_pearson(const double *x, const double *y, int64_t n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = x[i] - mx, b = y[i] - my;
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if (sxx == 0 || syy == 0) return NAN;
    return sxy / sqrt(sxx * syy);
}

double pika_spearman(const double *x, const double *y, int64_t n) {
    double *rx = pika_malloc(sizeof(double) * (size_t)(n ? n : 1)), *ry = pika_malloc(sizeof(double) * (size_t)(n ? n : 1));
    pika_rank_avg(x, n, rx);
    pika_rank_avg(y, n, ry);
    double r = pika_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

double pika_brier(const double *y, const double *p, int64_t n) {
    if (n < 1) return NAN;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (p[i] - y[i]) * (p[i] - y[i]);
    return s / (double)n;
}

double pika_logloss(const double *y, const double *p, int64_t n) {
    if (n < 1) return NAN;
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double q = p[i] < 1e-15 ? 1e-15 : p[i] > 1 - 1e-15 ? 1 - 1e-15 : p[i];
        s -= y[i] * log(q) + (1 - y[i]) * log(1 - q);
    }
    return s / (double)n;
}

static int bin_of(double p, int n_bins) {
    double step = 1.0 / n_bins;
    int b = 0;
    for (int i = 1; i < n_bins; i++)
        if (i * step < p) b = i;
    return b;
}

void pika_reliability(const double *y, const double *p, int64_t n, int n_bins, int64_t *count, double *mean_p, double *mean_y) {
    for (int b = 0; b < n_bins; b++) { count[b] = 0; mean_p[b] = 0; mean_y[b] = 0; }
    for (int64_t i = 0; i < n; i++) {
        int b = bin_of(p[i], n_bins);
        count[b]++;
        mean_p[b] += p[i];
        mean_y[b] += y[i];
    }
    for (int b = 0; b < n_bins; b++) {
        if (count[b]) { mean_p[b] /= (double)count[b]; mean_y[b] /= (double)count[b]; }
        else mean_p[b] = mean_y[b] = NAN;
    }
}

double pika_ece(const double *y, const double *p, int64_t n, int n_bins) {
    if (n < 1 || n_bins < 1 || n_bins > 1000) return NAN;
    int64_t cnt[1000];
    double mp[1000], my[1000];
    pika_reliability(y, p, n, n_bins, cnt, mp, my);
    double e = 0;
    for (int b = 0; b < n_bins; b++)
        if (cnt[b]) e += (double)cnt[b] / (double)n * fabs(my[b] - mp[b]);
    return e;
}

double pika_metric(int which, const double *y, const double *s, int64_t n) {
    switch (which) {
    case PIKA_M_AUROC: return pika_auroc(y, s, n);
    case PIKA_M_SPEARMAN: return pika_spearman(s, y, n);
    case PIKA_M_PEARSON: return pika_pearson(s, y, n);
    case PIKA_M_BRIER: return pika_brier(y, s, n);
    case PIKA_M_LOGLOSS: return pika_logloss(y, s, n);
    case PIKA_M_ECE: return pika_ece(y, s, n, 10);
    }
    return NAN;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Percentile with linear interpolation (numpy default) of sorted v[0..m). */
static double percentile(const double *v, int m, double q) {
    if (m < 1) return NAN;
    double pos = q / 100.0 * (m - 1);
    int i = (int)floor(pos);
    if (i >= m - 1) return v[m - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

/* Range of metric `which` (of a difference of two metrics when diff). */
static void metric_range(int which, int diff, double *lo, double *hi) {
    switch (which) {
    case PIKA_M_AUROC: case PIKA_M_BRIER: case PIKA_M_ECE: *lo = 0; *hi = 1; break;
    case PIKA_M_SPEARMAN: case PIKA_M_PEARSON: *lo = -1; *hi = 1; break;
    default: *lo = 0; *hi = INFINITY; break;
    }
    if (diff) { double w = *hi - *lo; *lo = -w; *hi = w; }
}

const char *pika_format_p(double p, int n_boot, char *buf, size_t cap) {
    if (isnan(p)) snprintf(buf, cap, "p n/a");
    else if (p <= 0 && n_boot > 0) snprintf(buf, cap, "p < 1/%d", n_boot);
    else snprintf(buf, cap, "p = %.4f", p);
    return buf;
}

double pika_bootstrap_ci(int which, const double *y, const double *s, int64_t n, int n_boot, uint64_t seed,
                         double *lo, double *hi) {
    return pika_paired_bootstrap(which, y, s, NULL, n, n_boot, seed, lo, hi, NULL);
}

double pika_paired_bootstrap(int which, const double *y, const double *a, const double *b, int64_t n, int n_boot,
                             uint64_t seed, double *lo, double *hi, double *p) {
    double est = pika_metric(which, y, a, n) - (b ? pika_metric(which, y, b, n) : 0.0);
    size_t sz = sizeof(double) * (size_t)(n ? n : 1);
    double *yb = pika_malloc(sz), *ab = pika_malloc(sz), *bb = pika_malloc(sz);
    double *vals = pika_malloc(sizeof(double) * (size_t)(n_boot > 0 ? n_boot : 1));
    pika_rng r;
    pika_rng_seed(&r, seed);
    int m = 0, le = 0, ge = 0;
    for (int t = 0; t < n_boot; t++) {
        for (int64_t i = 0; i < n; i++) {
            int64_t k = pika_rng_below(&r, n);
            yb[i] = y[k];
            ab[i] = a[k];
            if (b) bb[i] = b[k];
        }
        double v = pika_metric(which, yb, ab, n) - (b ? pika_metric(which, yb, bb, n) : 0.0);
        if (isnan(v)) continue;
        vals[m++] = v;
        if (v <= 0) le++;
        if (v >= 0) ge++;
    }
    qsort(vals, (size_t)m, sizeof(double), cmp_double);
    /* median-centered percentile interval: the spread of the bootstrap distribution around its median,
     * placed around the point estimate (so it always contains it), clipped to the metric's range */
    double med = percentile(vals, m, 50.0);
    *lo = est + (percentile(vals, m, 2.5) - med);
    *hi = est + (percentile(vals, m, 97.5) - med);
    double rlo, rhi;
    metric_range(which, b != NULL, &rlo, &rhi);
    if (*lo < rlo) *lo = rlo;
    if (*hi > rhi) *hi = rhi;
    if (p) {
        *p = m ? 2.0 * (double)(le < ge ? le : ge) / m : NAN;
        if (*p > 1) *p = 1;
    }
    free(yb);
    free(ab);
    free(bb);
    free(vals);
    return est;
}
