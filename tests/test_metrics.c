/* test_metrics.c — metrics on hand-checked cases, bootstrap behaviour, and agreement with
 * scikit-learn (tests/sklearn_check.py via /usr/bin/python3) for AUROC/Spearman/Pearson/Brier/ECE
 * (1e-9) and logistic / ridge fits at the same alpha (AUROC within 0.002). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pika/metrics.h"
#include "pika/npy.h"
#include "pika/probe.h"
#include "test.h"

static double gauss(pika_rng *r) {
    double u = pika_rng_uniform(r), v = pika_rng_uniform(r);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void test_auroc_ties(void) {
    double y[] = {0, 0, 1, 1, 1, 0};
    double s[] = {0.1, 0.4, 0.4, 0.8, 0.9, 0.2};
    /* pairs (pos, neg): 3*3 = 9; positives 0.4,0.8,0.9 vs negatives 0.1,0.4,0.2 -> 2.5 + 3 + 3 = 8.5 */
    CHECK(fabs(pika_auroc(y, s, 6) - 8.5 / 9) < 1e-15, "auroc %g", pika_auroc(y, s, 6));
    double y1[] = {1, 1, 1};
    CHECK(isnan(pika_auroc(y1, s, 3)), "one class -> NaN");
    double c[] = {1, 1, 1, 1, 1, 1};
    CHECK(fabs(pika_auroc(y, c, 6) - 0.5) < 1e-15, "constant score -> 0.5");
}

static void test_spearman_pearson(void) {
    double x[] = {1, 2, 2, 3, 4}, y[] = {10, 20, 20, 25, 100};
    CHECK(fabs(pika_spearman(x, y, 5) - 1.0) < 1e-12, "monotone with ties -> 1, got %g", pika_spearman(x, y, 5));
    double r[5];
    pika_rank_avg(x, 5, r);
    CHECK(r[0] == 1 && r[1] == 2.5 && r[2] == 2.5 && r[3] == 4 && r[4] == 5, "average ranks");
    double a[] = {1, 2, 3}, b[] = {2, 4, 6}, c[] = {3, 2, 1};
    CHECK(fabs(pika_pearson(a, b, 3) - 1) < 1e-15 && fabs(pika_pearson(a, c, 3) + 1) < 1e-15, "pearson +-1");
    double k[] = {1, 1, 1};
    CHECK(isnan(pika_spearman(a, k, 3)), "constant -> NaN");
}

static void test_brier_ece(void) {
    double y[] = {1, 0, 1, 0}, p[] = {0.9, 0.1, 0.6, 0.35};
    CHECK(fabs(pika_brier(y, p, 4) - (0.01 + 0.01 + 0.16 + 0.1225) / 4) < 1e-15, "brier");
    /* bins: 0.9 -> (0.8,0.9] = 8; 0.1 -> [0,0.1] = 0; 0.6 -> (0.5,0.6] = 5; 0.35 -> 3 */
    double e = pika_ece(y, p, 4, 10);
    double want = 0.25 * (0.1 + 0.1 + 0.4 + 0.35);
    CHECK(fabs(e - want) < 1e-15, "ece %g want %g", e, want);
    double y2[] = {1, 0}, p2[] = {0.0, 1.0};
    int64_t cnt[10];
    double mp[10], my[10];
    pika_reliability(y2, p2, 2, 10, cnt, mp, my);
    CHECK(cnt[0] == 1 && cnt[9] == 1, "0 goes to the first bin, 1 to the last");
    CHECK(fabs(pika_logloss(y, p, 4) - (-(log(0.9) + log(0.9) + log(0.6) + log(0.65)) / 4)) < 1e-12, "logloss");
}

static void test_bootstrap(void) {
    pika_rng r;
    pika_rng_seed(&r, 7);
    int n = 1000;
    double *y = malloc(sizeof(double) * n), *s = malloc(sizeof(double) * n), *s2 = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        y[i] = pika_rng_uniform(&r) < 0.4;
        s[i] = gauss(&r);             /* pure noise */
        s2[i] = y[i] + gauss(&r);     /* signal */
    }
    double lo, hi, lo2, hi2;
    double a = pika_bootstrap_ci(PIKA_M_AUROC, y, s, n, 500, 42, &lo, &hi);
    CHECK(lo < 0.5 && hi > 0.5, "noise AUROC CI [%g, %g] must cover 0.5 (est %g)", lo, hi, a);
    double a2 = pika_bootstrap_ci(PIKA_M_AUROC, y, s, n, 500, 42, &lo2, &hi2);
    CHECK(a == a2 && lo == lo2 && hi == hi2, "same seed -> same CI");
    double p, d = pika_paired_bootstrap(PIKA_M_AUROC, y, s2, s, n, 500, 42, &lo, &hi, &p);
    CHECK(d > 0.1 && lo > 0 && p < 0.01, "signal beats noise: delta %g [%g, %g] p %g", d, lo, hi, p);
    d = pika_paired_bootstrap(PIKA_M_AUROC, y, s, s, n, 200, 42, &lo, &hi, &p);
    CHECK(d == 0 && p == 1, "identical predictors: delta 0, p 1 (got %g, %g)", d, p);
    free(y); free(s); free(s2);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ECE of a calibrated predictor: every resample is worse calibrated than the sample, so a plain
 * percentile interval lies above its own estimate. The reported interval must contain it. */
static void test_bootstrap_ci_contains_estimate(void) {
    pika_rng r;
    pika_rng_seed(&r, 11);
    int n = 400, B = 300;
    double *y = malloc(sizeof(double) * n), *p = malloc(sizeof(double) * n);
    /* 10 bins x 40 rows at p = 0.05, 0.15, ..., 0.95 with exactly 40 p positives each: sample ECE 0 */
    for (int b = 0; b < 10; b++)
        for (int j = 0; j < 40; j++) {
            p[b * 40 + j] = 0.05 + 0.1 * b;
            y[b * 40 + j] = j < 2 + 4 * b;
        }
    for (int i = n - 1; i > 0; i--) { /* shuffle rows */
        int k = (int)pika_rng_below(&r, i + 1);
        double t = y[i]; y[i] = y[k]; y[k] = t;
        t = p[i]; p[i] = p[k]; p[k] = t;
    }
    /* the plain percentile interval, replayed with the library's resampling stream */
    double *yb = malloc(sizeof(double) * n), *pb = malloc(sizeof(double) * n), *v = malloc(sizeof(double) * B);
    pika_rng q;
    pika_rng_seed(&q, 42);
    for (int t = 0; t < B; t++) {
        for (int i = 0; i < n; i++) { int64_t k = pika_rng_below(&q, n); yb[i] = y[k]; pb[i] = p[k]; }
        v[t] = pika_ece(yb, pb, n, 10);
    }
    qsort(v, B, sizeof(double), cmp_d);
    double est0 = pika_ece(y, p, n, 10);
    double plain_lo = v[(int)(0.025 * (B - 1))];
    CHECK(plain_lo > est0, "fixture: the plain percentile interval excludes the estimate (%g > %g)", plain_lo, est0);
    double lo, hi, est = pika_bootstrap_ci(PIKA_M_ECE, y, p, n, B, 42, &lo, &hi);
    CHECK(est == est0, "estimate is the plain metric");
    CHECK(lo <= est && est <= hi, "ECE %.4f in [%.4f, %.4f]", est, lo, hi);
    CHECK(lo >= 0 && hi <= 1 && hi - lo > 0.005, "clipped to [0,1] with a real width [%g, %g]", lo, hi);
    /* the same holds for every metric on every seed tried */
    for (uint64_t seed = 1; seed <= 5; seed++)
        for (int w = 0; w < PIKA_M_COUNT; w++) {
            double e = pika_bootstrap_ci(w, y, p, n, 100, seed, &lo, &hi);
            CHECK(lo <= e && e <= hi, "metric %s seed %llu: %g in [%g, %g]", pika_metric_names[w], (unsigned long long)seed, e, lo, hi);
        }
    free(y); free(p); free(yb); free(pb); free(v);
}

static void test_format_p(void) {
    char b[64];
    CHECK(!strcmp(pika_format_p(0.0, 1000, b, sizeof b), "p < 1/1000"), "zero p: %s", b);
    CHECK(!strcmp(pika_format_p(0.0123, 1000, b, sizeof b), "p = 0.0123"), "p: %s", b);
    CHECK(!strcmp(pika_format_p(NAN, 1000, b, sizeof b), "p n/a"), "nan: %s", b);
}

static int save1(const char *dir, const char *name, const double *v, int64_t n, int64_t d) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    float *f = malloc(sizeof(float) * n * d);
    for (int64_t i = 0; i < n * d; i++) f[i] = (float)v[i];
    int64_t shape[2] = {n, d};
    int rc = pika_npy_write_f32(path, f, d > 1 ? 2 : 1, shape);
    free(f);
    return rc;
}

static void test_sklearn_agreement(void) {
    if (access("/usr/bin/python3", X_OK) != 0) SKIP_TEST("*** /usr/bin/python3 not found: sklearn agreement NOT checked ***");
    const char *dir = test_tmpdir();
    pika_rng r;
    pika_rng_seed(&r, 123);
    int n = 600;
    double *y = malloc(sizeof(double) * n), *s = malloc(sizeof(double) * n), *p = malloc(sizeof(double) * n),
           *yc = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        double z = gauss(&r);
        y[i] = z + gauss(&r) > 0;
        yc[i] = z + 0.5 * gauss(&r);
        s[i] = round((z + 0.7 * gauss(&r)) * 4) / 4; /* ties, values exact in float32 */
        p[i] = round(1 / (1 + exp(-2 * s[i])) * 64) / 64; /* exact in float32; includes bin edges */
        /* values stored as float32 in the .npy: make the C side use the same rounding */
        s[i] = (float)s[i];
        p[i] = (float)p[i];
        yc[i] = (float)yc[i];
    }
    /* fit data */
    int ntr = 400, nte = 200, d = 20;
    double *X = malloc(sizeof(double) * (ntr + nte) * d), *yb = malloc(sizeof(double) * (ntr + nte)), *c = malloc(sizeof(double) * (ntr + nte));
    for (int i = 0; i < ntr + nte; i++) {
        double z = gauss(&r);
        for (int j = 0; j < d; j++) X[i * d + j] = (float)(gauss(&r) * (1 + j * 0.3) + 2.0 * j + (j < 4 ? 0.6 * z : 0));
        yb[i] = z + gauss(&r) > 0.3;
        c[i] = (float)(z + gauss(&r));
    }
    char js[1 << 16];
    int len = snprintf(js, sizeof js, "{\"auroc\":%.17g,\"spearman\":%.17g,\"pearson\":%.17g,\"brier\":%.17g,\"ece\":%.17g,\"alphas\":[1,100,10000]",
                       pika_auroc(y, s, n), pika_spearman(s, yc, n), pika_pearson(s, yc, n), pika_brier(y, p, n), pika_ece(y, p, n, 10));
    pika_fit_opts o;
    pika_fit_opts_default(&o);
    /* default tolerance (eps = 1e-3): the agreement must hold for what users run */
    double alphas[3] = {1, 100, 10000};
    const char *key[2] = {"logit_pred", "ridge_pred"};
    for (int t = 0; t < 2; t++) {
        len += snprintf(js + len, sizeof js - len, ",\"%s\":[", key[t]);
        for (int a = 0; a < 3; a++) {
            pika_linear m;
            int rc = pika_fit_dense(X, ntr, d, t ? c : yb, t ? PIKA_TARGET_CONTINUOUS : PIKA_TARGET_BINARY, alphas[a], &o, &m);
            REQUIRE(rc == 0, "fit: %s", pika_last_error());
            len += snprintf(js + len, sizeof js - len, "%s[", a ? "," : "");
            for (int i = 0; i < nte; i++)
                len += snprintf(js + len, sizeof js - len, "%s%.17g", i ? "," : "", pika_linear_score(&m, X + (ntr + i) * d));
            len += snprintf(js + len, sizeof js - len, "]");
            pika_linear_free(&m);
        }
        len += snprintf(js + len, sizeof js - len, "]");
    }
    len += snprintf(js + len, sizeof js - len, "}");
    char path[512];
    snprintf(path, sizeof path, "%s/pika.json", dir);
    FILE *f = fopen(path, "w");
    fwrite(js, 1, (size_t)len, f);
    fclose(f);
    REQUIRE(save1(dir, "y.npy", y, n, 1) == 0 && save1(dir, "s.npy", s, n, 1) == 0 && save1(dir, "p.npy", p, n, 1) == 0 &&
            save1(dir, "yc.npy", yc, n, 1) == 0 && save1(dir, "Xtr.npy", X, ntr, d) == 0 && save1(dir, "Xte.npy", X + ntr * d, nte, d) == 0 &&
            save1(dir, "ytr.npy", yb, ntr, 1) == 0 && save1(dir, "yte.npy", yb + ntr, nte, 1) == 0 &&
            save1(dir, "ctr.npy", c, ntr, 1) == 0 && save1(dir, "cte.npy", c + ntr, nte, 1) == 0,
            "write npy");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/sklearn_check.py %s 2>&1", dir);
    int st;
    char *out = test_run(cmd, &st);
    if (st == 77) { fprintf(stderr, "%s", out); free(out); SKIP_TEST("*** numpy/scipy/sklearn missing: sklearn agreement NOT checked ***"); }
    CHECK(st == 0, "sklearn_check failed (status %d):\n%s", st, out);
    if (st == 0) fprintf(stderr, "%s", out);
    free(out);
    free(y); free(s); free(p); free(yc); free(X); free(yb); free(c);
}

int main(void) {
    RUN(test_auroc_ties);
    RUN(test_spearman_pearson);
    RUN(test_brier_ece);
    RUN(test_bootstrap);
    RUN(test_bootstrap_ci_contains_estimate);
    RUN(test_format_p);
    RUN(test_sklearn_agreement);
    return test_summary("metrics");
}
