/* test_batch.c — multi-sequence decode (pika_batch, model.h) against the single-sequence path:
 * for every model kind (llama F16 of the pool, qwen2/qwen3 F16, llama Q8_0 and Q4_K fixtures), slots
 * prefilled with different prompts and decoded together — joining at different steps, as in continuous
 * batching — give bit for bit the logits (and so the greedy tokens) of one pika_ctx per prompt;
 * copied prefixes (the n samples of one prompt) equal a context holding the same tokens; errors leave
 * the slots as they were. */
#include <unistd.h>

#include "pika/model.h"
#include "pika/util.h"
#include "test.h"

#define STEPS 10
#define NP 3

static int32_t argmax(const float *l, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static double maxdiff(const float *a, const float *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* model path: pool model when rel starts with "pool:", else a shared fixture */
static const char *model_path(const char *rel) {
    static char b[1024];
    if (!strncmp(rel, "pool:", 5)) {
        snprintf(b, sizeof b, "models/pool/%s", rel + 5);
        return access(b, R_OK) == 0 ? b : NULL;
    }
    return test_shared_path(rel);
}

static void check_model(const char *rel, int n_threads) {
    const char *path = model_path(rel);
    if (!path) SKIP_TEST("*** model %s is ABSENT: test skipped ***", rel);
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "load %s: %s", path, pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    const int V = hp->n_vocab;
    /* three prompts of different lengths (ids in range for every vocab) */
    int32_t prompts[NP][12];
    int plen[NP] = {5, 12, 1};
    for (int p = 0; p < NP; p++)
        for (int i = 0; i < plen[p]; i++) prompts[p][i] = (int32_t)((7 + 31 * i + 101 * p) % (V > 400 ? 400 : V));
    int start[NP] = {0, 3, 5}; /* the step at which each prompt joins the batch */

    /* reference: one context per prompt, greedy decode, logits of every step */
    float *ref = malloc(sizeof(float) * (size_t)NP * (STEPS + 1) * V);
    int32_t ref_tok[NP][STEPS + 1];
    pika_ctx *c = pika_ctx_new(m, n_threads);
    for (int p = 0; p < NP; p++) {
        pika_ctx_reset(c);
        float *lg = ref + (size_t)p * (STEPS + 1) * V;
        pika_forward_req req = {0, NULL, 0, NULL, NULL, lg};
        REQUIRE(pika_forward(c, prompts[p], plen[p], &req) == 0, "forward: %s", pika_last_error());
        for (int s = 0; s < STEPS; s++) {
            ref_tok[p][s] = argmax(lg + (size_t)s * V, V);
            req.logits = lg + (size_t)(s + 1) * V;
            REQUIRE(pika_forward(c, &ref_tok[p][s], 1, &req) == 0, "decode: %s", pika_last_error());
        }
        ref_tok[p][STEPS] = argmax(lg + (size_t)STEPS * V, V);
    }

    /* batched: slot p+1 holds prompt p (slot 0 stays unused, so slot numbers differ from positions) */
    pika_batch *b = pika_batch_new(m, NP + 1, 64, n_threads);
    REQUIRE(b, "batch: %s", pika_last_error());
    float *blog = malloc(sizeof(float) * (size_t)NP * V), *pl = malloc(sizeof(float) * (size_t)V);
    int32_t cur[NP];
    int done[NP] = {0}, nstep[NP] = {0};
    int bit_exact = 1, tokens_ok = 1;
    double worst = 0;
    for (int step = 0; step < STEPS + start[NP - 1] + 1; step++) {
        for (int p = 0; p < NP; p++)
            if (step == start[p]) {
                pika_forward_req req = {0, NULL, 0, NULL, NULL, pl};
                REQUIRE(pika_batch_prefill(b, p + 1, prompts[p], plen[p], &req) == 0, "prefill: %s", pika_last_error());
                const float *want = ref + (size_t)p * (STEPS + 1) * V;
                if (memcmp(pl, want, sizeof(float) * (size_t)V)) bit_exact = 0;
                worst = fmax(worst, maxdiff(pl, want, V));
                cur[p] = argmax(pl, V);
                if (cur[p] != ref_tok[p][0]) tokens_ok = 0;
            }
        int seqs[NP], n = 0, which[NP];
        int32_t toks[NP];
        for (int p = 0; p < NP; p++)
            if (step >= start[p] && !done[p]) { seqs[n] = p + 1; toks[n] = cur[p]; which[n] = p; n++; }
        if (!n) continue;
        REQUIRE(pika_batch_decode(b, n, seqs, toks, blog) == 0, "batch decode: %s", pika_last_error());
        for (int i = 0; i < n; i++) {
            int p = which[i], s = ++nstep[p];
            const float *want = ref + ((size_t)p * (STEPS + 1) + (size_t)s) * V;
            const float *got = blog + (size_t)i * V;
            if (memcmp(got, want, sizeof(float) * (size_t)V)) bit_exact = 0;
            worst = fmax(worst, maxdiff(got, want, V));
            cur[p] = argmax(got, V);
            if (cur[p] != ref_tok[p][s]) tokens_ok = 0;
            if (s == STEPS) done[p] = 1;
        }
    }
    CHECK(worst < 1e-4, "%s: batched logits differ from sequential by %g", rel, worst);
    CHECK(tokens_ok, "%s: greedy tokens differ", rel);
    CHECK(bit_exact, "%s: batched logits are not bit-identical (max diff %g)", rel, worst);
    for (int p = 0; p < NP; p++) CHECK(pika_batch_n_past(b, p + 1) == plen[p] + STEPS, "n_past %d", pika_batch_n_past(b, p + 1));

    /* shared prefix: slot 0 := the first prompt's tokens from slot 1 (prompt + STEPS generated), then
     * slot 0 and slot 1 decode different tokens together; each equals a context holding its tokens */
    pika_batch_seq_truncate(b, 1, plen[0] + 4);
    REQUIRE(pika_batch_seq_copy(b, 0, 1, plen[0] + 4) == 0, "copy: %s", pika_last_error());
    int32_t t2[2] = {11, 13};
    int seqs2[2] = {0, 1};
    REQUIRE(pika_batch_decode(b, 2, seqs2, t2, blog) == 0, "decode after copy: %s", pika_last_error());
    for (int k = 0; k < 2; k++) {
        pika_ctx_reset(c);
        pika_forward_req req = {0, NULL, 0, NULL, NULL, pl};
        pika_forward(c, prompts[0], plen[0], &req);
        pika_forward(c, ref_tok[0], 4, &req);
        pika_forward(c, &t2[k], 1, &req);
        /* the 4 generated tokens went in as one batch here, so allow rounding differences */
        CHECK(maxdiff(blog + (size_t)k * V, pl, V) < 1e-4, "%s: copied prefix, slot %d differs by %g", rel, k,
              maxdiff(blog + (size_t)k * V, pl, V));
    }

    /* errors: a repeated slot, a bad token, context overflow — and nothing changes */
    int np1 = pika_batch_n_past(b, 1);
    int dup[2] = {1, 1};
    CHECK(pika_batch_decode(b, 2, dup, t2, blog) != 0, "a repeated slot must fail");
    int32_t bad = V;
    CHECK(pika_batch_decode(b, 1, &seqs2[1], &bad, blog) != 0, "a bad token must fail");
    CHECK(pika_batch_n_past(b, 1) == np1, "a failed decode changed the slot");
    int32_t many[64] = {0};
    pika_forward_req req = {0, NULL, 0, NULL, NULL, pl};
    pika_batch_seq_reset(b, 2);
    CHECK(pika_batch_prefill(b, 2, many, 64, &req) == 0, "a full slot: %s", pika_last_error());
    int s2 = 2;
    CHECK(pika_batch_decode(b, 1, &s2, many, blog) != 0 && strstr(pika_last_error(), "overflow"), "overflow: %s",
          pika_last_error());
    pika_batch_seq_reset(b, 3);
    CHECK(pika_batch_prefill(b, 3, many, 65, &req) != 0, "a prompt longer than a slot must fail");
    CHECK(pika_batch_kv_bytes(b) > 0, "kv bytes");

    free(blog);
    free(pl);
    free(ref);
    pika_batch_free(b);
    pika_ctx_free(c);
    pika_model_free(m);
}

/* hidden states captured by a batch prefill equal pika_forward's */
static void test_prefill_capture(void) {
    const char *path = model_path("pool:pika-math-l.gguf");
    if (!path) SKIP_TEST("*** pool model absent ***");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    int32_t ids[6] = {1, 3, 40, 41, 42, 4};
    int layers[2] = {0, hp->n_layer}, pos[2] = {-2, -1};
    float *h1 = malloc(sizeof(float) * 4 * (size_t)hp->n_embd), *h2 = malloc(sizeof(float) * 4 * (size_t)hp->n_embd);
    float *l1 = malloc(sizeof(float) * (size_t)hp->n_vocab), *l2 = malloc(sizeof(float) * (size_t)hp->n_vocab);
    pika_ctx *c = pika_ctx_new(m, 2);
    pika_forward_req r1 = {2, layers, 2, pos, h1, l1}, r2 = {2, layers, 2, pos, h2, l2};
    REQUIRE(pika_forward(c, ids, 6, &r1) == 0, "%s", pika_last_error());
    pika_batch *b = pika_batch_new(m, 2, 32, 2);
    REQUIRE(pika_batch_prefill(b, 1, ids, 6, &r2) == 0, "%s", pika_last_error());
    CHECK(!memcmp(h1, h2, sizeof(float) * 4 * (size_t)hp->n_embd), "hidden states differ");
    CHECK(!memcmp(l1, l2, sizeof(float) * (size_t)hp->n_vocab), "logits differ");
    /* capture only (no logits): the slot starts over, as pika_forward's context does */
    pika_forward_req r3 = {1, layers, 1, pos, h2, NULL};
    pika_batch_seq_reset(b, 1);
    CHECK(pika_batch_prefill(b, 1, ids, 6, &r3) == 0, "%s", pika_last_error());
    CHECK(pika_batch_n_past(b, 1) == 0, "n_past after an early stop: %d", pika_batch_n_past(b, 1));
    free(h1); free(h2); free(l1); free(l2);
    pika_batch_free(b);
    pika_ctx_free(c);
    pika_model_free(m);
}

static void test_pool_f16(void) { check_model("pool:pika-math-l.gguf", 2); }
static void test_pool_f16_1thread(void) { check_model("pool:pika-math-s.gguf", 1); }
static void test_qwen2(void) { check_model("fixtures/models/qwen2-tiny.gguf", 2); }
static void test_qwen3(void) { check_model("fixtures/models/qwen3-tiny.gguf", 2); }
static void test_q8_0(void) { check_model("fixtures/models/llama-q-Q8_0.gguf", 2); }
static void test_q4_k(void) { check_model("fixtures/models/llama-q-Q4_K_M.gguf", 2); }

static void test_bad_sizes(void) {
    const char *path = model_path("pool:pika-math-s.gguf");
    if (!path) SKIP_TEST("*** pool model absent ***");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    CHECK(pika_batch_new(m, 0, 16, 1) == NULL, "0 slots");
    CHECK(pika_batch_new(m, 2, 0, 1) == NULL, "0 context");
    pika_model_free(m);
}

int main(void) {
    RUN(test_pool_f16);
    RUN(test_pool_f16_1thread);
    RUN(test_qwen2);
    RUN(test_qwen3);
    RUN(test_q8_0);
    RUN(test_q4_k);
    RUN(test_prefill_capture);
    RUN(test_bad_sizes);
    return test_summary("batch");
}
