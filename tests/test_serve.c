/* test_serve.c — the router path: prefill a prompt with the engine, take the hidden vector the probe
 * reads (pika_probe_layer / pika_probe_position), check the probe against this model's fingerprint
 * and prompt recipe, and score it with pika_probe_score_hidden — no activation store involved. The
 * result equals the store path (pika_probe_predict on a store holding the same vector). */
#include <math.h>

#include "pika/acts.h"
#include "pika/gguf_write.h"
#include "pika/model.h"
#include "pika/probe.h"
#include "pika/util.h"
#include "probe/probe_internal.h" /* builds a probe by hand */
#include "test.h"
#include "tiny_model.h"

static void test_prefill_and_score(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/tiny.gguf", dir);
    write_tiny(p);
    pika_model *m = pika_model_load(p);
    REQUIRE(m, "%s", pika_last_error());
    const int E = 16;
    /* a probe on layer 1, position -1 of this model (weights made up: the serving path is under test) */
    pika_probe pr = {0};
    snprintf(pr.kind, sizeof pr.kind, "probe");
    pr.task = PIKA_TARGET_BINARY;
    pr.layer = 1;
    pr.position = -1;
    pr.d_model = E;
    pr.lin.d = E;
    pr.lin.mean = pika_calloc(E, sizeof(double));
    pr.lin.scale = pika_malloc(E * sizeof(double));
    pr.lin.w = pika_malloc(E * sizeof(double));
    for (int j = 0; j < E; j++) { pr.lin.mean[j] = 0.01 * j; pr.lin.scale[j] = 1.0 + 0.1 * j; pr.lin.w[j] = (j % 3 - 1) * 0.5; }
    pr.lin.b = 0.25;
    pr.has_platt = 1;
    pr.platt_a = 1.5;
    pr.platt_b = -0.5;
    char mj[256];
    snprintf(mj, sizeof mj, "{\"file\":\"tiny.gguf\",\"fingerprint\":\"%s\"}", pika_model_fingerprint(m));
    pr.model_json = pika_strdup(mj);
    pr.prompt_json = pika_strdup("{\"template\":\"none\",\"n_eoi\":1}");
    /* the router: check, prefill, read the probe's hidden vector, score */
    REQUIRE(pika_probe_check_reader(&pr, pika_model_fingerprint(m), "{\"n_eoi\":1,\"template\":\"none\"}") == 0, "%s",
            pika_last_error());
    CHECK(pika_probe_check_reader(&pr, "0000000000000000", NULL) == -1, "another model is refused");
    pika_ctx *c = pika_ctx_new(m, 1);
    int32_t ids[7] = {1, 5, 9, 3, 17, 2, 8};
    int layer = pika_probe_layer(&pr), pos = pika_probe_position(&pr);
    float h[16];
    pika_forward_req req = {1, &layer, 1, &pos, h, NULL};
    REQUIRE(pika_forward(c, ids, 7, &req) == 0, "%s", pika_last_error());
    double s, prob;
    REQUIRE(pika_probe_score_hidden(&pr, h, pika_probe_d_model(&pr), &s, &prob) == 0, "%s", pika_last_error());
    double want = pr.lin.b;
    for (int j = 0; j < E; j++) want += pr.lin.w[j] * ((double)h[j] - pr.lin.mean[j]) / pr.lin.scale[j];
    CHECK(fabs(s - want) < 1e-12, "score %g vs %g", s, want);
    CHECK(fabs(prob - 1.0 / (1.0 + exp(-(1.5 * want - 0.5)))) < 1e-12, "Platt probability %g", prob);
    /* the store path gives the same score for the same vector */
    snprintf(p, sizeof p, "%s/acts", dir);
    int32_t ls[1] = {1}, ps[1] = {-1};
    pika_acts_writer w;
    REQUIRE(pika_acts_writer_open(&w, p, E, 1, ls, 1, ps, PIKA_NPY_F32, pr.model_json, pr.prompt_json, 0) == 0, "%s", pika_last_error());
    REQUIRE(pika_acts_writer_append(&w, "q0", h) == 0 && pika_acts_writer_close(&w) == 0, "%s", pika_last_error());
    pika_acts a;
    REQUIRE(pika_acts_open(&a, p) == 0, "%s", pika_last_error());
    memcpy(pr.fingerprint, a.fingerprint, sizeof pr.fingerprint);
    double s2, p2;
    REQUIRE(pika_probe_predict(&pr, &a, NULL, 1, &s2, &p2) == 0, "%s", pika_last_error());
    CHECK(s2 == s && p2 == prob, "store path %g / %g vs serving path %g / %g", s2, p2, s, prob);
    pika_acts_close(&a);
    pika_ctx_free(c);
    pika_model_free(m);
    probe_clear(&pr);
}

int main(void) {
    RUN(test_prefill_and_score);
    return test_summary("serve");
}
