/* test_probe.c — activation store (write/read/resume), folds, ridge CV (Gram-trick vs explicit refits,
 * eig vs Cholesky), planted-signal sweeps, Platt, probe file round trip + provenance, baselines,
 * the no-leakage guarantee and bad-input errors (library and CLI). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pika/acts.h"
#include "pika/baseline.h"
#include "pika/labels.h"
#include "pika/metrics.h"
#include "pika/probe.h"
#include "probe/probe_internal.h" /* white-box: the fields behind the opaque pika_probe */
#include "test.h"

static double gauss(pika_rng *r) {
    double u = pika_rng_uniform(r), v = pika_rng_uniform(r);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* A store with n rows, layers 0..L-1, positions -P..-1, signal in (sl, sp) dims 0..7; labels.jsonl
 * with "correct" (binary), "rate" (continuous), "split" (last quarter = test). */
static int make_store(const char *dir, int n, int d, int L, int P, int sl, int sp, uint64_t seed, int f16) {
    int32_t layers[16], pos[16];
    for (int i = 0; i < L; i++) layers[i] = i;
    for (int i = 0; i < P; i++) pos[i] = -P + i;
    pika_acts_writer w;
    if (pika_acts_writer_open(&w, dir, d, L, layers, P, pos, f16 ? PIKA_NPY_F16 : PIKA_NPY_F32, "{\"name\":\"m\"}", "\"t\"", 0)) return -1;
    char path[512];
    snprintf(path, sizeof path, "%s/labels.jsonl", dir);
    FILE *lf = fopen(path, "w");
    pika_rng r;
    pika_rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * L * P * d);
    for (int i = 0; i < n; i++) {
        double z = gauss(&r);
        for (int l = 0; l < L; l++)
            for (int p = 0; p < P; p++)
                for (int j = 0; j < d; j++)
                    x[(l * P + p) * d + j] = (float)(gauss(&r) + 0.5 * j + (l == sl && pos[p] == sp && j < 8 ? 0.8 * z : 0));
        char id[32];
        snprintf(id, sizeof id, "q%04d", i);
        if (pika_acts_writer_append(&w, id, x)) return -1;
        fprintf(lf, "{\"id\":\"%s\",\"correct\":%s,\"rate\":%.3f,\"split\":\"%s\"}\n", id, z + 0.6 * gauss(&r) > 0 ? "true" : "false",
                1 / (1 + exp(-2 * z)) + 0.05 * gauss(&r), i >= n - n / 4 ? "test" : "train");
    }
    free(x);
    fclose(lf);
    return pika_acts_writer_close(&w);
}

static void test_store_roundtrip_resume(void) {
    const char *dir = test_tmpdir();
    int32_t layers[2] = {0, 3}, pos[2] = {-2, -1};
    pika_acts_writer w;
    REQUIRE(pika_acts_writer_open(&w, dir, 4, 2, layers, 2, pos, PIKA_NPY_F32, "{\"name\":\"x\"}", NULL, 0) == 0, "%s", pika_last_error());
    float x[16];
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 16; j++) x[j] = (float)(i * 100 + j);
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        REQUIRE(pika_acts_writer_append(&w, id, x) == 0, "%s", pika_last_error());
    }
    REQUIRE(pika_acts_writer_close(&w) == 0, "%s", pika_last_error());
    /* resume and add one more */
    REQUIRE(pika_acts_writer_open(&w, dir, 4, 2, layers, 2, pos, PIKA_NPY_F32, "{\"name\":\"x\"}", NULL, 1) == 0, "%s", pika_last_error());
    CHECK(w.n == 3, "resume keeps 3 rows (got %lld)", (long long)w.n);
    for (int j = 0; j < 16; j++) x[j] = (float)(300 + j);
    REQUIRE(pika_acts_writer_append(&w, "r3", x) == 0, "%s", pika_last_error());
    REQUIRE(pika_acts_writer_close(&w) == 0, "%s", pika_last_error());
    /* a layout change cannot resume */
    int32_t other[1] = {0};
    CHECK(pika_acts_writer_open(&w, dir, 4, 1, other, 2, pos, PIKA_NPY_F32, NULL, NULL, 1) != 0, "layout mismatch must fail");
    pika_acts a;
    REQUIRE(pika_acts_open(&a, dir) == 0, "%s", pika_last_error());
    CHECK(a.n == 4 && a.d_model == 4 && a.n_layers == 2 && a.layers[1] == 3 && a.positions[0] == -2, "meta");
    CHECK(!strcmp(a.ids[3], "r3"), "ids");
    double v[4];
    int64_t row = 3;
    REQUIRE(pika_acts_read(&a, 1, 1, &row, 1, v) == 0, "%s", pika_last_error());
    /* layer index 1 (layer 3), position index 1: offset (1*2 + 1)*4 = 12 within the example */
    CHECK(v[0] == 312 && v[3] == 315, "value %g %g", v[0], v[3]);
    CHECK(pika_acts_layer_index(&a, 7) < 0, "missing layer is an error");
    pika_acts_close(&a);
}

static void test_folds(void) {
    pika_rng r;
    pika_rng_seed(&r, 3);
    double y[103];
    for (int i = 0; i < 103; i++) y[i] = pika_rng_uniform(&r) < 0.3;
    int f[103], f2[103], cnt[5][2] = {{0}};
    REQUIRE(pika_make_folds(y, 103, PIKA_TARGET_BINARY, 5, 9, f) == 0, "%s", pika_last_error());
    pika_make_folds(y, 103, PIKA_TARGET_BINARY, 5, 9, f2);
    CHECK(!memcmp(f, f2, sizeof f), "seeded folds are deterministic");
    for (int i = 0; i < 103; i++) cnt[f[i]][(int)y[i]]++;
    int lo1 = 1000, hi1 = 0, lo = 1000, hi = 0;
    for (int k = 0; k < 5; k++) {
        int t = cnt[k][0] + cnt[k][1];
        lo = t < lo ? t : lo; hi = t > hi ? t : hi;
        lo1 = cnt[k][1] < lo1 ? cnt[k][1] : lo1; hi1 = cnt[k][1] > hi1 ? cnt[k][1] : hi1;
    }
    CHECK(hi - lo <= 1 && hi1 - lo1 <= 1, "stratified and balanced: sizes %d..%d, positives %d..%d", lo, hi, lo1, hi1);
    double one[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(pika_resolve_task(PIKA_TARGET_AUTO, one, 10) < 0 && strstr(pika_last_error(), "one-class"), "one-class: %s", pika_last_error());
}

/* Gram-trick ridge CV must equal refitting each fold explicitly (primal and dual paths). */
static void test_ridge_cv_exact(void) {
    for (int dual = 0; dual < 2; dual++) {
        int n = 120, d = dual ? 150 : 12, k = 4;
        pika_rng r;
        pika_rng_seed(&r, 11 + dual);
        double *X = malloc(sizeof(double) * n * d), *y = malloc(sizeof(double) * n);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) X[i * d + j] = gauss(&r) * (1 + j % 3) + 50.0 + j;
            y[i] = X[i * d] * 0.1 + gauss(&r);
        }
        int fold[120];
        REQUIRE(pika_make_folds(y, n, PIKA_TARGET_CONTINUOUS, k, 1, fold) == 0, "%s", pika_last_error());
        for (int variant = 0; variant < 3; variant++) {
            pika_fit_opts o;
            pika_fit_opts_default(&o);
            o.k_folds = k;
            if (variant == 1) o.ridge_solver = PIKA_RIDGE_EIG;
            if (variant == 2) { o.standardize = 0; o.intercept = 0; }
            double cm[5], cs[5], *oof = malloc(sizeof(double) * 5 * n);
            REQUIRE(pika_cv_dense(X, n, d, y, PIKA_TARGET_CONTINUOUS, fold, &o, cm, cs, oof) == 0, "%s", pika_last_error());
            double maxdiff = 0;
            for (int f = 0; f < k; f++) {
                double *Xt = malloc(sizeof(double) * n * d), *yt = malloc(sizeof(double) * n);
                int m = 0;
                for (int i = 0; i < n; i++)
                    if (fold[i] != f) { memcpy(Xt + m * d, X + i * d, sizeof(double) * d); yt[m++] = y[i]; }
                for (int a = 0; a < 5; a++) {
                    pika_linear lm;
                    REQUIRE(pika_fit_dense(Xt, m, d, yt, PIKA_TARGET_CONTINUOUS, o.alpha[a], &o, &lm) == 0, "%s", pika_last_error());
                    for (int i = 0; i < n; i++)
                        if (fold[i] == f) {
                            double e = fabs(pika_linear_score(&lm, X + i * d) - oof[a * n + i]);
                            if (e > maxdiff) maxdiff = e;
                        }
                    pika_linear_free(&lm);
                }
                free(Xt); free(yt);
            }
            CHECK(maxdiff < 1e-7, "dual=%d variant=%d: CV predictions differ from explicit refits by %g", dual, variant, maxdiff);
            free(oof);
        }
        free(X); free(y);
    }
}

/* The Newton-CG solver and liblinear agree on CV scores of a planted-signal problem. */
static void test_logistic_solvers_agree(void) {
    int n = 300, d = 30, k = 5;
    pika_rng r;
    pika_rng_seed(&r, 77);
    double *X = malloc(sizeof(double) * n * d), *y = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        double z = gauss(&r);
        for (int j = 0; j < d; j++) X[i * d + j] = gauss(&r) * (1 + j) + 3 * j + (j < 3 ? z : 0);
        y[i] = z + gauss(&r) > 0;
    }
    int fold[300];
    REQUIRE(pika_make_folds(y, n, PIKA_TARGET_BINARY, k, 1, fold) == 0, "%s", pika_last_error());
    double cm[2][5], cs[5];
    for (int s = 0; s < 2; s++) {
        pika_fit_opts o;
        pika_fit_opts_default(&o);
        o.eps = 1e-5;
        o.logistic_solver = s ? PIKA_LOGISTIC_LIBLINEAR : PIKA_LOGISTIC_NEWTON;
        REQUIRE(pika_cv_dense(X, n, d, y, PIKA_TARGET_BINARY, fold, &o, cm[s], cs, NULL) == 0, "%s", pika_last_error());
    }
    for (int a = 0; a < 5; a++) CHECK(fabs(cm[0][a] - cm[1][a]) < 0.003, "alpha %d: newton %g liblinear %g", a, cm[0][a], cm[1][a]);
    /* the portable (non-AVX2) kernels give the same scores */
    {
        pika_fit_opts o;
        pika_fit_opts_default(&o);
        o.eps = 1e-5;
        double cg[5];
        pika_simd_override(PIKA_SIMD_SCALAR); /* the one CPU check (util.h); PIKA_SIMD=scalar does the same */
        int rc = pika_cv_dense(X, n, d, y, PIKA_TARGET_BINARY, fold, &o, cg, cs, NULL);
        pika_simd_override(-1);
        REQUIRE(rc == 0, "%s", pika_last_error());
        for (int a = 0; a < 5; a++) CHECK(fabs(cg[a] - cm[0][a]) < 1e-6, "alpha %d: generic %g simd %g", a, cg[a], cm[0][a]);
    }
    CHECK(cm[0][0] > 0.6, "signal found: %g", cm[0][0]);
    /* paper setting (no standardization, no intercept) also runs and agrees */
    for (int s = 0; s < 2; s++) {
        pika_fit_opts o;
        pika_fit_opts_paper(&o);
        o.eps = 1e-5;
        o.logistic_solver = s ? PIKA_LOGISTIC_LIBLINEAR : PIKA_LOGISTIC_NEWTON;
        REQUIRE(pika_cv_dense(X, n, d, y, PIKA_TARGET_BINARY, fold, &o, cm[s], cs, NULL) == 0, "%s", pika_last_error());
    }
    for (int a = 0; a < 5; a++) CHECK(fabs(cm[0][a] - cm[1][a]) < 0.01, "paper alpha %d: newton %g liblinear %g", a, cm[0][a], cm[1][a]);
    free(X);
    free(y);
}

static void test_planted_signal(void) {
    const char *dir = test_tmpdir();
    REQUIRE(make_store(dir, 400, 24, 4, 3, 2, -2, 5, 1) == 0, "%s", pika_last_error());
    pika_acts a;
    REQUIRE(pika_acts_open(&a, dir) == 0, "%s", pika_last_error());
    char lp[512];
    snprintf(lp, sizeof lp, "%s/labels.jsonl", dir);
    const char *fields[2] = {"correct", "rate"};
    pika_labels L;
    REQUIRE(pika_labels_read(&L, lp, "id", 2, fields, "split") == 0, "%s", pika_last_error());
    int64_t *rows = malloc(sizeof(int64_t) * a.n), *lrow = malloc(sizeof(int64_t) * a.n);
    REQUIRE(pika_labels_join(&L, a.ids, a.n, lrow) == 0, "%s", pika_last_error());
    double *yb = malloc(sizeof(double) * a.n), *yc = malloc(sizeof(double) * a.n);
    int64_t n = 0;
    for (int64_t i = 0; i < a.n; i++)
        if (!strcmp(L.split[lrow[i]], "train")) { rows[n] = i; yb[n] = L.vals[lrow[i] * 2]; yc[n] = L.vals[lrow[i] * 2 + 1]; n++; }
    pika_fit_opts o;
    pika_fit_opts_default(&o);
    for (int t = 0; t < 2; t++) {
        pika_probe *p = NULL;
        pika_probe_train_opts to;
        pika_probe_train_opts_default(&to);
        to.target = t ? "rate" : "correct";
        to.fit = o;
        REQUIRE(pika_probe_train(&a, rows, n, t ? yc : yb, &to, &p) == 0, "%s", pika_last_error());
        CHECK(p->layer == 2 && p->position == -2, "task %d: planted (2,-2) found, got (%d,%d)", t, p->layer, p->position);
        CHECK(p->cv_score > (t ? 0.6 : 0.75), "task %d: CV score %g", t, p->cv_score);
        /* every other (layer, position) is noise */
        for (int l = 0; l < p->n_layers; l++)
            for (int q = 0; q < p->n_pos; q++)
                if (!(p->layers[l] == 2 && p->positions[q] == -2))
                    CHECK(fabs(p->cv_mean[(l * p->n_pos + q) * p->n_alpha + 4] - (t ? 0 : 0.5)) < 0.15, "noise config (%d,%d): %g", l, q,
                          p->cv_mean[(l * p->n_pos + q) * p->n_alpha + 4]);
        if (t == 0) {
            CHECK(p->has_platt && p->platt_a > 0, "Platt fitted, A=%g", p->platt_a);
            /* save / load round trip, predictions identical */
            char pp[512];
            snprintf(pp, sizeof pp, "%s/probe.json", dir);
            REQUIRE(pika_probe_save(p, pp) == 0, "%s", pika_last_error());
            pika_probe *q = NULL;
            REQUIRE((q = pika_probe_load(pp)) != NULL, "%s", pika_last_error());
            double s1[5], s2[5], p1[5], p2[5];
            REQUIRE(pika_probe_predict(p, &a, rows, 5, s1, p1) == 0 && pika_probe_predict(q, &a, rows, 5, s2, p2) == 0, "%s", pika_last_error());
            CHECK(!memcmp(s1, s2, sizeof s1) && !memcmp(p1, p2, sizeof p1), "loaded probe predicts identically");
            CHECK(q->n_layers == 4 && q->n_pos == 3 && q->n_alpha == 5 && q->cv_mean[7] == p->cv_mean[7], "CV curve saved");
            /* calibration on held-out test rows is sane */
            int64_t tr[100];
            double ty[100], ts[100], tp[100];
            int m = 0;
            for (int64_t i = 0; i < a.n && m < 100; i++)
                if (!strcmp(L.split[lrow[i]], "test")) { tr[m] = i; ty[m++] = L.vals[lrow[i] * 2]; }
            REQUIRE(pika_probe_predict(q, &a, tr, m, ts, tp) == 0, "%s", pika_last_error());
            CHECK(pika_auroc(ty, ts, m) > 0.7 && pika_ece(ty, tp, m, 10) < 0.2, "test AUROC %g ECE %g", pika_auroc(ty, ts, m), pika_ece(ty, tp, m, 10));
            pika_probe_free(q);
        }
        pika_probe_free(p);
    }
    free(rows); free(lrow); free(yb); free(yc);
    pika_labels_free(&L);
    pika_acts_close(&a);
}

static void test_pure_noise_ci(void) {
    /* signal planted nowhere that we look: restrict to layer 0 */
    const char *dir = test_tmpdir();
    REQUIRE(make_store(dir, 600, 16, 2, 1, 1, -1, 8, 0) == 0, "%s", pika_last_error());
    pika_acts a;
    REQUIRE(pika_acts_open(&a, dir) == 0, "%s", pika_last_error());
    char lp[512];
    snprintf(lp, sizeof lp, "%s/labels.jsonl", dir);
    const char *fields[1] = {"correct"};
    pika_labels L;
    REQUIRE(pika_labels_read(&L, lp, "id", 1, fields, "split") == 0, "%s", pika_last_error());
    int64_t *lrow = malloc(sizeof(int64_t) * a.n), tr[600], te[600];
    pika_labels_join(&L, a.ids, a.n, lrow);
    double ytr[600], yte[600], s[600];
    int ntr = 0, nte = 0;
    for (int64_t i = 0; i < a.n; i++) {
        if (!strcmp(L.split[lrow[i]], "train")) { tr[ntr] = i; ytr[ntr++] = L.vals[lrow[i]]; }
        else { te[nte] = i; yte[nte++] = L.vals[lrow[i]]; }
    }
    int32_t only0[1] = {0};
    pika_fit_opts o;
    pika_fit_opts_default(&o);
    pika_probe *p = NULL;
    pika_probe_train_opts to = {.target = "correct", .layers = only0, .n_layers = 1, .fit = o};
    REQUIRE(pika_probe_train(&a, tr, ntr, ytr, &to, &p) == 0, "%s", pika_last_error());
    REQUIRE(pika_probe_predict(p, &a, te, nte, s, NULL) == 0, "%s", pika_last_error());
    double lo, hi, est = pika_bootstrap_ci(PIKA_M_AUROC, yte, s, nte, 1000, 42, &lo, &hi);
    CHECK(lo < 0.5 && hi > 0.5, "pure-noise test AUROC %g CI [%g, %g] covers 0.5", est, lo, hi);
    pika_probe_free(p);
    pika_labels_free(&L);
    free(lrow);
    pika_acts_close(&a);
}

static void test_baselines(void) {
    /* texts: the word "hard" marks failures; length uninformative */
    int n = 300;
    char **tx = malloc(sizeof(char *) * n);
    double *y = malloc(sizeof(double) * n), *tk = malloc(sizeof(double) * n);
    pika_rng r;
    pika_rng_seed(&r, 4);
    for (int i = 0; i < n; i++) {
        y[i] = pika_rng_uniform(&r) < 0.5;
        int noisy = pika_rng_uniform(&r) < 0.15;
        int hard = (y[i] == 0) ^ noisy;
        char buf[256];
        snprintf(buf, sizeof buf, "Solve the %s Problem number %d about %s", hard ? "hard" : "easy", (int)(pika_rng_uniform(&r) * 50),
                 pika_rng_uniform(&r) < 0.5 ? "geometry" : "algebra");
        tx[i] = strdup(buf);
        tk[i] = (double)strlen(buf) / 4;
    }
    pika_fit_opts o;
    pika_fit_opts_default(&o);
    pika_tfidf_opts to;
    pika_tfidf_opts_default(&to);
    pika_probe *p = NULL;
    pika_baseline_opts bo = {.kind = "tfidf", .target = "y", .tfidf = to, .fit = o};
    REQUIRE(pika_baseline_train(tx, NULL, n, y, &bo, &p) == 0, "%s", pika_last_error());
    CHECK(p->cv_score > 0.8, "tfidf CV AUROC %g", p->cv_score);
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/tfidf.json", dir);
    REQUIRE(pika_probe_save(p, path) == 0, "%s", pika_last_error());
    pika_probe *q = NULL;
    REQUIRE((q = pika_probe_load(path)) != NULL, "%s", pika_last_error());
    double s1[300], s2[300];
    REQUIRE(pika_baseline_predict(p, tx, NULL, n, s1, NULL) == 0 && pika_baseline_predict(q, tx, NULL, n, s2, NULL) == 0, "%s", pika_last_error());
    double md = 0;
    for (int i = 0; i < n; i++) md = fmax(md, fabs(s1[i] - s2[i]));
    CHECK(md < 1e-12, "reloaded tfidf predicts identically (max diff %g)", md);
    pika_probe_free(q);
    pika_probe_free(p);
    /* continuous target through CG ridge */
    double *yc = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) yc[i] = y[i] + 0.3 * gauss(&r);
    bo.tfidf = to;
    bo.fit = o;
    REQUIRE(pika_baseline_train(tx, NULL, n, yc, &bo, &p) == 0, "%s", pika_last_error());
    CHECK(p->cv_score > 0.5, "tfidf ridge CV Spearman %g", p->cv_score);
    pika_probe_free(p);
    bo.kind = "length";
    bo.tfidf = to;
    bo.fit = o;
    REQUIRE(pika_baseline_train(tx, tk, n, y, &bo, &p) == 0, "%s", pika_last_error());
    CHECK(fabs(p->cv_score - 0.5) < 0.15, "length is uninformative here: %g", p->cv_score);
    CHECK(p->lin.d == 2, "length uses tokens + chars");
    pika_probe_free(p);
    for (int i = 0; i < n; i++) free(tx[i]);
    free(tx); free(y); free(tk); free(yc);
}

/* ---------------------------------------------------------------- CLI: no leakage, bad inputs */

static char *run_pika(const char *args, int *st) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", test_pika_bin(), args);
    return test_run(cmd, st);
}

static void test_no_leakage(void) {
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("*** %s not built ***", test_pika_bin());
    const char *d1 = test_tmpdir(), *d2 = test_tmpdir();
    REQUIRE(make_store(d1, 200, 8, 2, 2, 1, -1, 21, 1) == 0, "%s", pika_last_error());
    REQUIRE(make_store(d2, 200, 8, 2, 2, 1, -1, 21, 1) == 0, "%s", pika_last_error());
    /* scramble the TEST rows of store 2 (last quarter): features and labels */
    pika_acts a;
    REQUIRE(pika_acts_open(&a, d2) == 0, "%s", pika_last_error());
    pika_acts_close(&a);
    for (int l = 0; l < 2; l++) {
        char p[512];
        snprintf(p, sizeof p, "%s/layer_%02d.npy", d2, l);
        pika_npy x;
        REQUIRE(pika_npy_open(&x, p) == 0, "%s", pika_last_error());
        size_t off = (size_t)((const char *)x.data - (const char *)x.map.data), row = 2 * 8 * 2;
        pika_npy_close(&x);
        FILE *f = fopen(p, "r+b");
        fseek(f, (long)(off + 150 * row), SEEK_SET);
        for (size_t b = 0; b < 50 * row / 2; b++) { uint16_t h = pika_fp32_to_fp16((float)(b % 7) - 3.0f); fwrite(&h, 2, 1, f); }
        fclose(f);
    }
    char lp[512], cmd[2048];
    snprintf(lp, sizeof lp, "%s/labels.jsonl", d2);
    char *txt = pika_read_file(lp, NULL);
    for (char *q = txt; (q = strstr(q, "\"test\"")); q++) {
        char *c = q;
        while (c > txt && strncmp(c, "\"correct\":", 10)) c--;
        if (!strncmp(c + 10, "true", 4)) memcpy(c + 10, "1   ", 4);
        else memcpy(c + 10, "true ", 5);
    }
    FILE *f = fopen(lp, "w");
    fputs(txt, f);
    fclose(f);
    free(txt);
    int st;
    char *out;
    for (int k = 0; k < 2; k++) {
        const char *d = k ? d2 : d1;
        snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s/labels.jsonl --target correct --split split=train -o %s/probe.json", d, d, d);
        out = run_pika(cmd, &st);
        CHECK(st == 0, "train %d: %s", k, out);
        free(out);
    }
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/probe.json", d1);
    snprintf(p2, sizeof p2, "%s/probe.json", d2);
    char *a1 = pika_read_file(p1, NULL), *a2 = pika_read_file(p2, NULL);
    REQUIRE(a1 && a2, "probe files");
    CHECK(!strcmp(a1, a2), "changing test-split features and labels changed the probe (selection/calibration leak)");
    free(a1); free(a2);
    /* sanity: the edit took effect — training on ALL rows (test included) does give different probes */
    for (int k = 0; k < 2; k++) {
        const char *d = k ? d2 : d1;
        snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s/labels.jsonl --target correct -o %s/all.json", d, d, d);
        out = run_pika(cmd, &st);
        CHECK(st == 0, "train all %d: %s", k, out);
        free(out);
    }
    snprintf(p1, sizeof p1, "%s/all.json", d1);
    snprintf(p2, sizeof p2, "%s/all.json", d2);
    a1 = pika_read_file(p1, NULL);
    a2 = pika_read_file(p2, NULL);
    REQUIRE(a1 && a2, "probe files");
    CHECK(strcmp(a1, a2) != 0, "scrambling the test rows had no effect at all: the no-leakage check above proves nothing");
    free(a1); free(a2);
}

static void test_bad_inputs(void) {
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("*** %s not built ***", test_pika_bin());
    const char *d = test_tmpdir();
    REQUIRE(make_store(d, 80, 6, 2, 1, 1, -1, 2, 1) == 0, "%s", pika_last_error());
    char cmd[2048], lp[512];
    int st;
    char *out;
    snprintf(lp, sizeof lp, "%s/labels.jsonl", d);
    /* 1. id mismatch: labels missing ids */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad_ids.jsonl", d);
    FILE *f = fopen(bad, "w");
    for (int i = 0; i < 80; i++) fprintf(f, "{\"id\":\"x%04d\",\"correct\":%d}\n", i, i % 2);
    fclose(f);
    snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s --target correct -o %s/p.json", d, bad, d);
    out = run_pika(cmd, &st);
    CHECK(st == 2 && strstr(out, "id mismatch"), "id mismatch: status %d: %s", st, out);
    free(out);
    /* 2. missing field */
    snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s --target nosuch -o %s/p.json", d, lp, d);
    out = run_pika(cmd, &st);
    CHECK(st == 2 && strstr(out, "missing") && strstr(out, "nosuch"), "missing field: %d: %s", st, out);
    free(out);
    /* 3. one-class labels */
    snprintf(bad, sizeof bad, "%s/one.jsonl", d);
    f = fopen(bad, "w");
    for (int i = 0; i < 80; i++) fprintf(f, "{\"id\":\"q%04d\",\"correct\":1}\n", i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s --target correct -o %s/p.json", d, bad, d);
    out = run_pika(cmd, &st);
    CHECK(st == 2 && strstr(out, "one-class"), "one class: %d: %s", st, out);
    free(out);
    /* 4. NaN / Inf in features */
    const char *dn = test_tmpdir();
    REQUIRE(make_store(dn, 80, 6, 2, 1, 1, -1, 2, 0) == 0, "%s", pika_last_error());
    {
        char p[512];
        snprintf(p, sizeof p, "%s/layer_01.npy", dn);
        pika_npy x;
        REQUIRE(pika_npy_open(&x, p) == 0, "%s", pika_last_error());
        size_t off = (size_t)((const char *)x.data - (const char *)x.map.data);
        pika_npy_close(&x);
        f = fopen(p, "r+b");
        fseek(f, (long)(off + 4 * (6 * 7 + 2)), SEEK_SET);
        float inf = INFINITY;
        fwrite(&inf, 4, 1, f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s/labels.jsonl --target correct -o %s/p.json", dn, dn, dn);
    out = run_pika(cmd, &st);
    CHECK(st == 2 && strstr(out, "non-finite") && strstr(out, "q0007"), "Inf feature: %d: %s", st, out);
    free(out);
    /* 5. truncated .npy */
    {
        char p[512];
        snprintf(p, sizeof p, "%s/layer_00.npy", d);
        REQUIRE(truncate(p, 500) == 0, "truncate");
    }
    snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s --target correct -o %s/p.json", d, lp, d);
    out = run_pika(cmd, &st);
    CHECK(st == 2 && strstr(out, "layer_00.npy"), "truncated npy: %d: %s", st, out);
    free(out);
    /* 6. probe against activations of another model */
    const char *d3 = test_tmpdir(), *d4 = test_tmpdir();
    REQUIRE(make_store(d3, 80, 6, 2, 1, 1, -1, 2, 1) == 0, "%s", pika_last_error());
    snprintf(cmd, sizeof cmd, "probe train --acts %s --labels %s/labels.jsonl --target correct -o %s/p.json", d3, d3, d3);
    out = run_pika(cmd, &st);
    CHECK(st == 0, "train: %s", out);
    free(out);
    int32_t layers[2] = {0, 1}, pos[1] = {-1};
    pika_acts_writer w;
    REQUIRE(pika_acts_writer_open(&w, d4, 6, 2, layers, 1, pos, PIKA_NPY_F16, "{\"name\":\"other\"}", "\"t\"", 0) == 0, "%s", pika_last_error());
    float x[12] = {0};
    pika_acts_writer_append(&w, "a", x);
    pika_acts_writer_close(&w);
    snprintf(cmd, sizeof cmd, "probe predict --probe %s/p.json --acts %s -o %s/pred.jsonl", d3, d4, d4);
    out = run_pika(cmd, &st);
    CHECK(st == 2 && strstr(out, "different model"), "provenance: %d: %s", st, out);
    free(out);
    /* 7. ids.txt count disagreeing with meta.json */
    char ip[512];
    snprintf(ip, sizeof ip, "%s/ids.txt", d4);
    f = fopen(ip, "a");
    fputs("extra\n", f);
    fclose(f);
    pika_acts a;
    CHECK(pika_acts_open(&a, d4) != 0 && strstr(pika_last_error(), "ids"), "ids count: %s", pika_last_error());
}


/* Serving: score one hidden vector without writing a store, equal to the store path; reader checks. */
static void test_score_hidden_and_reader(void) {
    const char *dir = test_tmpdir();
    REQUIRE(make_store(dir, 120, 8, 2, 2, 1, -1, 5, 0) == 0, "%s", pika_last_error());
    pika_acts a;
    REQUIRE(pika_acts_open(&a, dir) == 0, "%s", pika_last_error());
    pika_labels L;
    const char *f[1] = {"correct"};
    char path[512];
    snprintf(path, sizeof path, "%s/labels.jsonl", dir);
    REQUIRE(pika_labels_read(&L, path, "id", 1, f, NULL) == 0, "%s", pika_last_error());
    int64_t *rows = malloc(sizeof(int64_t) * 120);
    double *y = malloc(sizeof(double) * 120);
    for (int64_t i = 0; i < 120; i++) { rows[i] = i; y[i] = L.vals[pika_strmap_get(&L.id_index, a.ids[i])]; }
    pika_probe_train_opts o;
    pika_probe_train_opts_default(&o);
    o.target = "correct";
    pika_probe *p = NULL;
    REQUIRE(pika_probe_train(&a, rows, 120, y, &o, &p) == 0, "%s", pika_last_error());
    double cs, cstd;
    cs = pika_probe_cv_score(p, &cstd);
    CHECK(!strcmp(pika_probe_kind(p), "probe") && pika_probe_target_kind(p) == PIKA_TARGET_BINARY && !strcmp(pika_probe_target(p), "correct") &&
              pika_probe_alpha(p) > 0 && cs > 0.5 && cstd >= 0, "accessors: %s %d %s %g %g", pika_probe_kind(p), pika_probe_target_kind(p),
          pika_probe_target(p), pika_probe_alpha(p), cs);
    CHECK(pika_probe_layer(p) == 1 && pika_probe_position(p) == -1 && pika_probe_d_model(p) == 8, "reads layer %d pos %d d %d",
          pika_probe_layer(p), pika_probe_position(p), pika_probe_d_model(p));
    double ss[10], pp[10], x[8];
    REQUIRE(pika_probe_predict(p, &a, rows, 10, ss, pp) == 0, "%s", pika_last_error());
    int li = pika_acts_layer_index(&a, pika_probe_layer(p)), pi = pika_acts_pos_index(&a, pika_probe_position(p));
    for (int64_t i = 0; i < 10; i++) {
        REQUIRE(pika_acts_read(&a, li, pi, &i, 1, x) == 0, "%s", pika_last_error());
        float h[8];
        for (int j = 0; j < 8; j++) h[j] = (float)x[j];
        double s1, p1;
        REQUIRE(pika_probe_score_hidden(p, h, 8, &s1, &p1) == 0, "%s", pika_last_error());
        CHECK(fabs(s1 - ss[i]) < 1e-12 && fabs(p1 - pp[i]) < 1e-12, "row %lld: %g vs %g", (long long)i, s1, ss[i]);
        CHECK(p1 > 0 && p1 < 1, "probability");
    }
    float h[8] = {0};
    CHECK(pika_probe_score_hidden(p, h, 7, NULL, NULL) == -1 && strstr(pika_last_error(), "8 values"), "d mismatch");
    h[3] = NAN;
    CHECK(pika_probe_score_hidden(p, h, 8, NULL, NULL) == -1, "NaN rejected");
    /* reader check: model fingerprint + prompt recipe */
    CHECK(pika_probe_check_reader(p, "abc", NULL) == -1 && strstr(pika_last_error(), "no model fingerprint"), "store without a fingerprint");
    free(p->model_json);
    free(p->prompt_json);
    p->model_json = pika_strdup("{\"file\":\"m.gguf\",\"fingerprint\":\"abc123\"}");
    p->prompt_json = pika_strdup("{\"template\":\"chatml\",\"n_eoi\":2}");
    CHECK(pika_probe_check_reader(p, "abc123", NULL) == 0, "model only: %s", pika_last_error());
    CHECK(pika_probe_check_reader(p, "abc123", "{ \"n_eoi\": 2, \"template\": \"chatml\" }") == 0, "same recipe: %s", pika_last_error());
    CHECK(pika_probe_check_reader(p, "abc124", NULL) == -1 && strstr(pika_last_error(), "abc123"), "other model: %s", pika_last_error());
    CHECK(pika_probe_check_reader(p, "abc123", "{\"template\":\"llama3\",\"n_eoi\":2}") == -1 && strstr(pika_last_error(), "recipe"),
          "other recipe: %s", pika_last_error());
    pika_probe_free(p);
    pika_labels_free(&L);
    pika_acts_close(&a);
    free(rows);
    free(y);
}

/* End to end through the CLI: train, predict, baselines (incl. --tokenizer), eval --json, report, difficulty. */
static void test_cli_pipeline(void) {
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("*** %s not built ***", test_pika_bin());
    const char *d = test_tmpdir();
    REQUIRE(make_store(d, 240, 8, 2, 2, 1, -1, 31, 1) == 0, "%s", pika_last_error());
    char path[512];
    snprintf(path, sizeof path, "%s/data.jsonl", d);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 240; i++) fprintf(f, "{\"id\":\"q%04d\",\"text\":\"Problem %d: compute the value\",\"n\":%d}\n", i, i, 5 + i % 7);
    fclose(f);
    char cmd[4096];
    int st;
    char *out;
    const char *steps[] = {
        "probe train --acts %1$s --labels %1$s/labels.jsonl --target correct --split split=train -o %1$s/p.json --cv-table %1$s/cv.tsv",
        "probe predict --probe %1$s/p.json --acts %1$s --labels %1$s/labels.jsonl --split split=test -o %1$s/pred.jsonl",
        "baseline train --kind length --data %1$s/data.jsonl --tokens-field n --labels %1$s/labels.jsonl --target correct --split split=train -o %1$s/len.json",
        "baseline predict --baseline %1$s/len.json --data %1$s/data.jsonl --tokens-field n --labels %1$s/labels.jsonl --split split=test -o %1$s/len.jsonl",
        "baseline train --kind tfidf --data %1$s/data.jsonl --labels %1$s/labels.jsonl --target rate --split split=train -o %1$s/tf.json --min-df 1 --sublinear",
        "report --out %1$s/rep --probe %1$s/p.json --baseline %1$s/len.json --pred probe=%1$s/pred.jsonl --pred length=%1$s/len.jsonl --labels %1$s/labels.jsonl --target correct --bootstrap 100",
        "difficulty --acts %1$s --labels %1$s/labels.jsonl --human rate --success correct --split split=train --bootstrap 50 --out %1$s/diff",
    };
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        char args[2048];
        snprintf(args, sizeof args, steps[k], d);
        out = run_pika(args, &st);
        CHECK(st == 0, "step %zu (%s): %s", k, args, out);
        free(out);
    }
    snprintf(cmd, sizeof cmd, "probe eval --pred %1$s/pred.jsonl --compare %1$s/len.jsonl --labels %1$s/labels.jsonl --target correct --json --bootstrap 100", d);
    out = run_pika(cmd, &st);
    CHECK(st == 0 && strstr(out, "\"auroc\":") && strstr(out, "\"paired\":"), "eval json: %s", out);
    free(out);
    snprintf(path, sizeof path, "%s/cv.tsv", d);
    char *tsv = pika_read_file(path, NULL);
    int tl = 0;
    for (const char *q = tsv ? tsv : ""; *q; q++) tl += *q == '\n';
    CHECK(tsv && !strncmp(tsv, "layer\tposition\talpha\tcv_mean\tcv_std\n", 36) && tl == 1 + 2 * 2 * 5, "cv table (%d lines): %s", tl,
          tsv ? tsv : "(missing)");
    free(tsv);
    snprintf(path, sizeof path, "%s/rep/report.md", d);
    char *md = pika_read_file(path, NULL);
    CHECK(md && strstr(md, "selected: **layer 1, position -1") && strstr(md, "Paired bootstrap"), "report.md: %s", md ? md : "(missing)");
    /* provenance: model, prompt recipe, activation fingerprint, N, k, base rate, labels file */
    CHECK(md && strstr(md, "## Provenance") && strstr(md, "- model file `(not recorded)`") && strstr(md, "- prompt recipe `\"t\"`") &&
              strstr(md, "- activation fingerprint `") && strstr(md, "N = 180 rows, 5-fold CV, base rate 0.") && strstr(md, ", labels `labels.jsonl`, split `split=train`") &&
              strstr(md, "labels.jsonl`: 240 questions, target `correct`") && strstr(md, "| base rate |"),
          "provenance in report.md: %s", md ? md : "(missing)");
    /* p-values from B resamples: "p < 1/B" or "p = x", never "p = 0.0000" */
    CHECK(md && (strstr(md, "p < 1/100") || strstr(md, ", p = ")) && !strstr(md, "p = 0.0000"), "p-value: %s", md ? md : "");
    free(md);
    /* --out with a trailing slash: the printed path has no "//" */
    snprintf(cmd, sizeof cmd, "report --out %1$s/rep2/ --probe %1$s/p.json --data %1$s/data.jsonl", d);
    out = run_pika(cmd, &st);
    CHECK(st == 0 && strstr(out, "rep2/report.md") && !strstr(out, "//"), "report path: %s", out);
    free(out);
    snprintf(path, sizeof path, "%s/rep2/report.md", d);
    md = pika_read_file(path, NULL);
    CHECK(md && strstr(md, "- dataset `") && strstr(md, "data.jsonl`"), "dataset in provenance: %s", md ? md : "(missing)");
    free(md);
    /* baseline text field defaults to pika's "problem" (then "text") */
    snprintf(path, sizeof path, "%s/problems.jsonl", d);
    f = fopen(path, "w");
    for (int i = 0; i < 240; i++) fprintf(f, "{\"id\":\"q%04d\",\"problem\":\"Problem %d: compute the value\"}\n", i, i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "baseline train --kind tfidf --data %1$s/problems.jsonl --labels %1$s/labels.jsonl --target correct --min-df 1 -o %1$s/tf2.json", d);
    out = run_pika(cmd, &st);
    CHECK(st == 0, "baseline on a problem field without --text-field: %s", out);
    free(out);
    snprintf(path, sizeof path, "%s/diff/difficulty.md", d);
    md = pika_read_file(path, NULL);
    CHECK(md && strstr(md, "Spearman(rate, correct)"), "difficulty.md");
    free(md);
    if (access("/usr/bin/gnuplot", X_OK) == 0) {
        snprintf(path, sizeof path, "%s/rep/cv_by_layer.png", d);
        struct stat sb;
        CHECK(stat(path, &sb) == 0 && sb.st_size > 1000, "gnuplot plot written");
    }
    /* --tokenizer: token counts from a GGUF vocabulary */
    const char *gg = test_shared_path("fixtures/models/llama-tiny.gguf");
    if (gg) {
        snprintf(cmd, sizeof cmd, "baseline train --kind length --data %1$s/data.jsonl --tokenizer %2$s --labels %1$s/labels.jsonl --target correct -o %1$s/len2.json", d, gg);
        out = run_pika(cmd, &st);
        CHECK(st == 0 && strstr(out, "n_tokens+n_chars"), "--tokenizer: %s", out);
        free(out);
    }
}

int main(void) {
    RUN(test_score_hidden_and_reader);
    RUN(test_store_roundtrip_resume);
    RUN(test_folds);
    RUN(test_ridge_cv_exact);
    RUN(test_logistic_solvers_agree);
    RUN(test_planted_signal);
    RUN(test_pure_noise_ci);
    RUN(test_baselines);
    RUN(test_no_leakage);
    RUN(test_bad_inputs);
    RUN(test_cli_pipeline);
    return test_summary("probe");
}
