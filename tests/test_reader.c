/* test_reader.c — reader probes (pool.h): the shared fold assignment, a planted-signal pool where
 * the reader's activations encode member B's success and not member A's, the provenance a reader
 * probe file carries (reader fingerprint, member name), refusing another reader's store, joint
 * (layer, position) selection, and `pika probe train-pool` end to end. Stores come from
 * tools/synth_acts (--members, --model). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pika/acts.h"
#include "pika/metrics.h"
#include "pika/pool.h"
#include "pika/probe.h"
#include "pika/util.h"
#include "test.h"

static const char *synth_bin(void) {
    static char b[512];
    const char *d = getenv("PIKA_BUILD");
    snprintf(b, sizeof b, "%s/tools/synth_acts", d && *d ? d : "build");
    return b;
}

static int synth(const char *dir, const char *extra) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s %s > /dev/null 2>&1", synth_bin(), dir, extra);
    return system(cmd);
}

static char *path_in(const char *dir, const char *name) {
    static char b[8][1024];
    static int k;
    char *p = b[k++ & 7];
    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

static void test_pool_folds(void) {
    /* two binary members with different base rates + one continuous member */
    int64_t n = 203;
    double *y0 = malloc(sizeof(double) * n), *y1 = malloc(sizeof(double) * n), *y2 = malloc(sizeof(double) * n);
    pika_rng r;
    pika_rng_seed(&r, 5);
    for (int64_t i = 0; i < n; i++) {
        y0[i] = pika_rng_uniform(&r) < 0.5;
        y1[i] = pika_rng_uniform(&r) < 0.15;
        y2[i] = pika_rng_uniform(&r);
    }
    const double *y[3] = {y0, y1, y2};
    int *f = malloc(sizeof(int) * n), *g = malloc(sizeof(int) * n);
    REQUIRE(pika_pool_folds(y, 3, n, 5, 42, f) == 0, "%s", pika_last_error());
    REQUIRE(pika_pool_folds(y, 3, n, 5, 42, g) == 0, "%s", pika_last_error());
    CHECK(memcmp(f, g, sizeof(int) * n) == 0, "same seed, same folds");
    int size[5] = {0}, pos0[5] = {0}, pos1[5] = {0};
    double tot1 = 0;
    for (int64_t i = 0; i < n; i++) {
        REQUIRE(f[i] >= 0 && f[i] < 5, "fold %d out of range", f[i]);
        size[f[i]]++;
        pos0[f[i]] += y0[i] == 1;
        pos1[f[i]] += y1[i] == 1;
        tot1 += y1[i];
    }
    for (int k = 0; k < 5; k++) {
        CHECK(size[k] == 40 || size[k] == 41, "fold %d has %d rows (balanced: 40 or 41)", k, size[k]);
        CHECK(pos1[k] >= (int)(tot1 / 5) - 3 && pos1[k] <= (int)(tot1 / 5) + 3, "rare member's positives spread: fold %d has %d of %g", k, pos1[k], tot1);
        CHECK(pos0[k] > 10 && pos0[k] < size[k] - 10, "member 0 has both classes in fold %d (%d of %d)", k, pos0[k], size[k]);
    }
    /* a member with too few of a class is an error */
    for (int64_t i = 0; i < n; i++) y1[i] = i < 3;
    CHECK(pika_pool_folds(y, 3, n, 5, 42, f) == -1 && strstr(pika_last_error(), "member 1"), "rare class: %s", pika_last_error());
    free(y0); free(y1); free(y2); free(f); free(g);
}

/* The reader's store encodes member B's success (member-0.jsonl), not member A's (member-1.jsonl). */
static void test_planted_reader(void) {
    if (access(synth_bin(), X_OK) != 0) SKIP_TEST("*** %s not built ***", synth_bin());
    const char *dir = test_tmpdir(), *other = test_tmpdir();
    REQUIRE(synth(dir, "--n 400 --d 16 --layers 3 --positions 2 --signal-layer 1 --signal-pos -1 --strength 1.5 --members 2 --model readerR") == 0, "synth_acts");
    REQUIRE(synth(other, "--n 400 --d 16 --layers 3 --positions 2 --members 2 --model readerQ") == 0, "synth_acts (other reader)");
    pika_acts a, b;
    REQUIRE(pika_acts_open(&a, dir) == 0, "%s", pika_last_error());
    REQUIRE(pika_acts_open(&b, other) == 0, "%s", pika_last_error());
    const char *labels[2] = {path_in(dir, "member-0.jsonl"), path_in(dir, "member-1.jsonl")};
    const char *names[2] = {"B", "A"};
    int64_t *rows, n;
    double *y[2];
    REQUIRE(pika_pool_select(a.ids, a.n, 2, labels, "id", "correct", "split=train", &rows, &n, y) == 0, "%s", pika_last_error());
    CHECK(n == 300, "train rows %lld", (long long)n);
    pika_pool_opts o;
    pika_pool_opts_default(&o);
    o.train.target = "correct";
    pika_probe *p[2];
    REQUIRE(pika_probe_train_pool(&a, rows, n, 2, (const double *const *)y, names, labels, &o, p) == 0, "%s", pika_last_error());
    CHECK(pika_probe_layer(p[0]) == 1 && pika_probe_position(p[0]) == -1, "B's probe finds the planted layer/position: %d %d",
          pika_probe_layer(p[0]), pika_probe_position(p[0]));
    /* held-out AUROC: B recovered, A at chance */
    int64_t *trows, tn;
    double *ty[2];
    REQUIRE(pika_pool_select(a.ids, a.n, 2, labels, "id", "correct", "split=test", &trows, &tn, ty) == 0, "%s", pika_last_error());
    double *s = malloc(sizeof(double) * tn);
    REQUIRE(pika_probe_predict(p[0], &a, trows, tn, s, NULL) == 0, "%s", pika_last_error());
    double aucB = pika_auroc(ty[0], s, tn);
    REQUIRE(pika_probe_predict(p[1], &a, trows, tn, s, NULL) == 0, "%s", pika_last_error());
    double aucA = pika_auroc(ty[1], s, tn);
    CHECK(aucB > 0.85, "reader recovers member B's planted labels: held-out AUROC %.3f", aucB);
    CHECK(fabs(aucA - 0.5) < 0.15, "member A is not encoded: held-out AUROC %.3f", aucA);
    double sdB, sdA;
    CHECK(pika_probe_cv_score(p[0], &sdB) > pika_probe_cv_score(p[1], &sdA) + 0.2, "CV separates B from A");
    /* provenance: reader fingerprint + member name, through the file */
    const char *fB = path_in(dir, "B.json");
    REQUIRE(pika_probe_save(p[0], fB) == 0, "%s", pika_last_error());
    pika_probe *l = pika_probe_load(fB);
    REQUIRE(l, "%s", pika_last_error());
    CHECK(pika_probe_member(l) && !strcmp(pika_probe_member(l), "B"), "member name recorded: %s", pika_probe_member(l) ? pika_probe_member(l) : "(null)");
    CHECK(!strcmp(pika_probe_fingerprint(l), a.fingerprint), "reader fingerprint recorded: %s vs %s", pika_probe_fingerprint(l), a.fingerprint);
    CHECK(pika_probe_check_reader(l, "readerR", NULL) == 0, "the reader's model fingerprint passes: %s", pika_last_error());
    CHECK(pika_probe_check_reader(l, "readerQ", NULL) == -1, "another model is refused");
    CHECK(pika_probe_check_acts(l, &b) == -1 && strstr(pika_last_error(), "different model"), "another reader's store is refused: %s",
          pika_last_error());
    CHECK(pika_probe_predict(l, &b, NULL, 10, s, NULL) == -1, "predict on another reader's store fails");
    char *txt = pika_read_file(fB, NULL);
    CHECK(txt && strstr(txt, "\"member\":\t\"B\"") && strstr(txt, "member-0.jsonl") && strstr(txt, "readerR"), "file names member, labels, reader model");
    free(txt);
    pika_probe_free(l);
    /* joint selection: both members read the same (layer, position), B keeps its signal */
    pika_probe *q[2];
    o.joint = 1;
    REQUIRE(pika_probe_train_pool(&a, rows, n, 2, (const double *const *)y, names, labels, &o, q) == 0, "%s", pika_last_error());
    CHECK(pika_probe_layer(q[0]) == pika_probe_layer(q[1]) && pika_probe_position(q[0]) == pika_probe_position(q[1]),
          "joint: one layer/position for every member");
    CHECK(pika_probe_layer(q[1]) == 1 && pika_probe_position(q[1]) == -1, "joint picks the planted configuration (mean CV): %d %d",
          pika_probe_layer(q[1]), pika_probe_position(q[1]));
    for (int m = 0; m < 2; m++) { pika_probe_free(p[m]); pika_probe_free(q[m]); free(y[m]); free(ty[m]); }
    free(s); free(rows); free(trows);
    pika_acts_close(&a);
    pika_acts_close(&b);
}

static void test_cli_train_pool(void) {
    if (access(synth_bin(), X_OK) != 0 || access(test_pika_bin(), X_OK) != 0) SKIP_TEST("*** pika / synth_acts not built ***");
    const char *dir = test_tmpdir();
    REQUIRE(synth(dir, "--n 300 --d 8 --layers 2 --positions 1 --signal-pos -1 --members 3 --model readerC") == 0, "synth_acts");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s probe train-pool --acts %s --member big=%s/member-0.jsonl --member small=%s/member-1.jsonl --member mid=%s/member-2.jsonl "
             "--target correct --split split=train -o %s/pool 2>&1", test_pika_bin(), dir, dir, dir, dir, dir);
    int st;
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "member big") && strstr(out, "member mid") && strstr(out, "3 members"), "train-pool: %d %s", st, out);
    free(out);
    for (int m = 0; m < 3; m++) {
        const char *nm[3] = {"big", "small", "mid"};
        char f[1024];
        snprintf(f, sizeof f, "%s/pool/%s.json", dir, nm[m]);
        pika_probe *p = pika_probe_load(f);
        CHECK(p && pika_probe_member(p) && !strcmp(pika_probe_member(p), nm[m]), "%s carries its member name", f);
        pika_probe_free(p);
        snprintf(f, sizeof f, "%s/pool/%s.cv.tsv", dir, nm[m]);
        CHECK(access(f, R_OK) == 0, "%s written", f);
    }
    /* bad member spec */
    snprintf(cmd, sizeof cmd, "%s probe train-pool --acts %s --member big --target correct -o %s/pool2 2>&1", test_pika_bin(), dir, dir);
    out = test_run(cmd, &st);
    CHECK(st != 0 && strstr(out, "NAME=LABELS"), "bad --member: %d %s", st, out);
    free(out);
}

int main(void) {
    RUN(test_pool_folds);
    RUN(test_planted_reader);
    RUN(test_cli_train_pool);
    return test_summary("reader");
}
