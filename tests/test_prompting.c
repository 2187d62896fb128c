/* test_prompting.c — the prompting baseline: the model's yes-vs-no score (prompting.h) against an
 * independent prefill, determinism and the question's effect; the baseline kind "prompting" (CV +
 * Platt on a planted score, predict needs scores); the CLI (train/predict, the file's record of
 * model + question, another model or a missing --model refused). Uses models/pool/pika-math-s.gguf. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pika/baseline.h"
#include "pika/metrics.h"
#include "pika/model.h"
#include "pika/prompting.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"

#define MS "models/pool/pika-math-s.gguf"
#define MM "models/pool/pika-math-m.gguf"

static void test_scores(void) {
    if (access(MS, R_OK) != 0) SKIP_TEST("%s is missing", MS);
    char *texts[3] = {"What is 2 + 3?", "Sue has 6 cards. She loses 4. How many cards does she have now?", "What is 17 * 23 - 5?"};
    pika_prompting_opts o;
    pika_prompting_opts_default(&o);
    o.n_threads = 1;
    double s[3], s2[3], s3[3];
    char *prov = NULL;
    REQUIRE(pika_prompting_scores(MS, texts, 3, &o, s, &prov) == 0, "%s", pika_last_error());
    for (int i = 0; i < 3; i++) CHECK(isfinite(s[i]), "score %d finite: %g", i, s[i]);
    CHECK(prov && strstr(prov, "\"fingerprint\"") && strstr(prov, "\"yes_ids\":[") && strstr(prov, "will you solve this problem"),
          "provenance: %s", prov ? prov : "(null)");
    REQUIRE(pika_prompting_scores(MS, texts, 3, &o, s2, NULL) == 0, "%s", pika_last_error());
    CHECK(!memcmp(s, s2, sizeof s), "deterministic (one prefill, no sampling)");
    o.question = "\n\nAre you sure? yes or no.";
    REQUIRE(pika_prompting_scores(MS, texts, 3, &o, s3, NULL) == 0, "%s", pika_last_error());
    CHECK(s3[0] != s[0] || s3[1] != s[1], "the question is part of the prompt");
    /* independent: the same prompt through the engine, log P(yes) - log P(no) over the recorded ids */
    pika_model *m = pika_model_load(MS);
    REQUIRE(m, "%s", pika_last_error());
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    po.user_suffix = PIKA_PROMPTING_QUESTION;
    pika_prompt_recipe *r = pika_prompt_recipe_new(pika_model_gguf(m), tok, &po);
    REQUIRE(r, "%s", pika_last_error());
    pika_prompt p;
    REQUIRE(pika_prompt_build(r, texts[1], &p) == 0, "%s", pika_last_error());
    CHECK(strstr(p.text, "Answer yes or no."), "question appended inside the chat prompt");
    pika_ctx *c = pika_ctx_new(m, 1);
    int V = pika_model_hparams(m)->n_vocab;
    float *lg = malloc(sizeof(float) * V);
    pika_forward_req req = {0, NULL, 0, NULL, NULL, lg};
    REQUIRE(pika_forward(c, p.ids, p.n_ids, &req) == 0, "%s", pika_last_error());
    /* the ids from the provenance */
    double py = 0, pn = 0, mx = -INFINITY, z = 0;
    for (int v = 0; v < V; v++) if (lg[v] > mx) mx = lg[v];
    for (int v = 0; v < V; v++) z += exp(lg[v] - mx);
    const char *yi = strstr(prov, "\"yes_ids\":["), *ni = strstr(prov, "\"no_ids\":[");
    REQUIRE(yi && ni, "ids in provenance");
    for (const char *q = yi + 11; *q && *q != ']'; q++) { char *e; long id = strtol(q, &e, 10); if (e != q) { py += exp(lg[id] - mx) / z; q = e - 1; } }
    for (const char *q = ni + 10; *q && *q != ']'; q++) { char *e; long id = strtol(q, &e, 10); if (e != q) { pn += exp(lg[id] - mx) / z; q = e - 1; } }
    double want = log(py) - log(pn);
    CHECK(fabs(want - s[1]) < 1e-6 * (1 + fabs(want)), "score = log P(yes) - log P(no) of the prefill: %.9g vs %.9g", s[1], want);
    free(lg);
    pika_prompt_free(&p);
    pika_ctx_free(c);
    pika_prompt_recipe_free(r);
    pika_tokenizer_free(tok);
    pika_model_free(m);
    free(prov);
    CHECK(pika_prompting_scores("/nonexistent.gguf", texts, 3, &o, s, NULL) == -1, "missing model is an error");
}

static void test_baseline_kind(void) {
    int n = 200;
    char **tx = malloc(sizeof(char *) * n);
    double *sc = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    pika_rng r;
    pika_rng_seed(&r, 3);
    for (int i = 0; i < n; i++) {
        tx[i] = "q";
        double zz = pika_rng_uniform(&r) * 4 - 2;
        y[i] = zz + (pika_rng_uniform(&r) - 0.5) > 0;
        sc[i] = zz;
    }
    pika_baseline_opts bo;
    pika_baseline_opts_default(&bo);
    bo.kind = "prompting";
    bo.target = "correct";
    bo.provenance_json = "{\"model\":{\"file\":\"x.gguf\",\"fingerprint\":\"abc\"},\"question\":\"q?\",\"prompt\":{}}";
    pika_probe *p;
    REQUIRE(pika_baseline_train(tx, sc, n, y, &bo, &p) == 0, "%s", pika_last_error());
    double sd;
    CHECK(!strcmp(pika_probe_kind(p), "prompting") && pika_probe_cv_score(p, &sd) > 0.85, "planted score recovered: CV %.3f",
          pika_probe_cv_score(p, &sd));
    double *s = malloc(sizeof(double) * n), *pr = malloc(sizeof(double) * n);
    REQUIRE(pika_baseline_predict(p, tx, sc, n, s, pr) == 0, "%s", pika_last_error());
    CHECK(pika_auroc(y, s, n) > 0.85 && pr[0] > 0 && pr[0] < 1, "predict: AUROC %.3f, calibrated prob", pika_auroc(y, s, n));
    CHECK(pika_baseline_predict(p, tx, NULL, n, s, pr) == -1 && strstr(pika_last_error(), "--model"), "predict without scores: %s", pika_last_error());
    CHECK(pika_baseline_check_scorer(p, bo.provenance_json) == 0, "same scorer passes");
    CHECK(pika_baseline_check_scorer(p, "{\"model\":{\"fingerprint\":\"zzz\"},\"question\":\"q?\",\"prompt\":{}}") == -1, "another model refused");
    CHECK(pika_baseline_check_scorer(p, "{\"model\":{\"fingerprint\":\"abc\"},\"question\":\"other\",\"prompt\":{}}") == -1, "another question refused");
    CHECK(pika_baseline_check_scorer(p, NULL) == -1, "no scorer refused");
    const char *d = test_tmpdir();
    char f[512];
    snprintf(f, sizeof f, "%s/b.json", d);
    REQUIRE(pika_probe_save(p, f) == 0, "%s", pika_last_error());
    pika_probe *l = pika_probe_load(f);
    REQUIRE(l, "%s", pika_last_error());
    double *s2 = malloc(sizeof(double) * n);
    REQUIRE(pika_baseline_predict(l, tx, sc, n, s2, NULL) == 0, "%s", pika_last_error());
    CHECK(fabs(s2[7] - s[7]) < 1e-12 && pika_baseline_check_scorer(l, bo.provenance_json) == 0, "file round trip keeps model and scorer");
    pika_probe_free(p);
    sc[3] = NAN;
    CHECK(pika_baseline_train(tx, sc, n, y, &bo, &p) == -1 || (pika_probe_free(p), 0), "a non-finite score is an error");
    pika_probe_free(l);
    free(s2); free(s); free(pr); free(tx); free(sc); free(y);
}

static void test_cli(void) {
    if (access(MS, R_OK) != 0 || access(MM, R_OK) != 0 || access(test_pika_bin(), X_OK) != 0) SKIP_TEST("pool models or pika missing");
    const char *d = test_tmpdir();
    char cmd[4096];
    const char *b = getenv("PIKA_BUILD");
    snprintf(cmd, sizeof cmd, "%s/tools/mathtask_data --split test --n 60 --out %s/p.jsonl > /dev/null 2>&1 && "
                              "awk -F'\"id\":\"' '{split($2, a, \"\\\"\"); printf \"{\\\"id\\\":\\\"%%s\\\",\\\"ok\\\":%%d,\\\"split\\\":\\\"%%s\\\"}\\n\", a[1], NR %% 3 == 0, NR %% 4 == 0 ? \"test\" : \"train\"}' %s/p.jsonl > %s/l.jsonl",
             b && *b ? b : "build", d, d, d);
    int st;
    free(test_run(cmd, &st));
    REQUIRE(st == 0, "data: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s baseline train --kind prompting --model %s --data %s/p.jsonl --labels %s/l.jsonl --target ok --split split=train "
                              "--threads 1 -o %s/pb.json 2>&1", test_pika_bin(), MS, d, d, d);
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "prompting baseline: alpha"), "train: %d %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/pb.json", d);
    char *js = pika_read_file(cmd, NULL);
    CHECK(js && strstr(js, "\"kind\":\t\"prompting\"") && strstr(js, "pika-math-s.gguf") && strstr(js, "Answer yes or no."), "file records model and question");
    free(js);
    snprintf(cmd, sizeof cmd, "%s baseline predict --baseline %s/pb.json --model %s --data %s/p.jsonl --threads 1 -o %s/pb.pred.jsonl 2>&1",
             test_pika_bin(), d, MS, d, d);
    out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "wrote 60 predictions"), "predict: %d %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s baseline predict --baseline %s/pb.json --model %s --data %s/p.jsonl --threads 1 -o %s/x.jsonl 2>&1",
             test_pika_bin(), d, MM, d, d);
    out = test_run(cmd, &st);
    CHECK(st != 0 && strstr(out, "trained with model"), "another model refused: %d %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s baseline predict --baseline %s/pb.json --data %s/p.jsonl -o %s/x.jsonl 2>&1", test_pika_bin(), d, d, d);
    out = test_run(cmd, &st);
    CHECK(st != 0 && strstr(out, "--model"), "missing --model refused: %d %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s baseline train --kind prompting --data %s/p.jsonl --labels %s/l.jsonl --target ok -o %s/y.json 2>&1",
             test_pika_bin(), d, d, d);
    out = test_run(cmd, &st);
    CHECK(st != 0 && strstr(out, "needs --model"), "train without --model: %d %s", st, out);
    free(out);
}

int main(void) {
    RUN(test_scores);
    RUN(test_baseline_kind);
    RUN(test_cli);
    return test_summary("prompting");
}
