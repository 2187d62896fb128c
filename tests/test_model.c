/* test_model.c — the forward pass against llama.cpp's reference outputs for every fixture model
 * (hidden states at every layer and position, last logits, greedy tokens), plus KV-cache decode,
 * early stop, threads, the CLI contract, and corrupt GGUF files. */
#include <cJSON.h>
#include <unistd.h>

#include "pika/gguf.h"
#include "pika/gemm.h"
#include "pika/gguf_write.h"
#include "pika/model.h"
#include "pika/npy.h"
#include "pika/quant.h"
#include "pika/util.h"
#include "test.h"

static cJSON *load_json(const char *path) {
    char *s = pika_read_file(path, NULL);
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static int32_t *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    return ids;
}

/* max |a-b| and relative RMS (||a-b|| / ||b||) over n values */
static void diff_stats(const float *a, const float *b, size_t n, double *maxabs, double *relrms) {
    double m = 0, se = 0, sb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
        se += d * d;
        sb += (double)b[i] * b[i];
    }
    *maxabs = m;
    *relrms = sb > 0 ? sqrt(se / sb) : sqrt(se);
}

static void check_model(const char *name) {
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "fixtures/models/%s.json", name);
    const char *jpath = test_shared_path(rel);
    if (!jpath) SKIP_TEST("*** ../shared fixture %s is ABSENT: test skipped ***", rel);
    cJSON *j = load_json(jpath);
    REQUIRE(j, "cannot parse %s", jpath);
    snprintf(path, sizeof path, "%s/fixtures/models/%s.gguf", test_shared_dir(), name);
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "load %s: %s", name, pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    int quantized = strstr(name, "llama-q-") != NULL;
    int f16 = !quantized && (strstr(name, "qwen") != NULL);
    pika_ctx *c = pika_ctx_new(m, 2);
    pika_ctx_set_exact(c, 1); /* the reference-matching mode; the default (q8 decode) is checked below */
    const cJSON *prompts = cJSON_GetObjectItem(j, "prompts");
    const cJSON *p;
    cJSON_ArrayForEach(p, prompts) {
        const char *pid = cJSON_GetObjectItem(p, "id")->valuestring;
        int n;
        int32_t *ids = json_ids(cJSON_GetObjectItem(p, "token_ids"), &n);
        size_t hsz = (size_t)(hp->n_layer + 1) * n * hp->n_embd;
        float *hidden = malloc(sizeof(float) * hsz), *logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
        pika_forward_req req = {-1, NULL, -1, NULL, hidden, logits};
        pika_ctx_reset(c);
        int rc = pika_forward(c, ids, n, &req);
        CHECK(rc == 0, "%s/%s forward: %s", name, pid, pika_last_error());
        /* native reference */
        snprintf(path, sizeof path, "%s/fixtures/models/%s", test_shared_dir(),
                 cJSON_GetObjectItem(cJSON_GetObjectItem(p, "files"), "hidden")->valuestring);
        int nd;
        int64_t shape[8];
        float *ref = pika_npy_load_f32(path, &nd, shape);
        CHECK(ref && nd == 3 && shape[0] == hp->n_layer + 1 && shape[1] == n && shape[2] == hp->n_embd,
              "%s/%s reference hidden shape", name, pid);
        for (int l = 0; ref && l <= hp->n_layer; l++) {
            double mx, rr;
            size_t off = (size_t)l * n * hp->n_embd, cnt = (size_t)n * hp->n_embd;
            diff_stats(hidden + off, ref + off, cnt, &mx, &rr);
            if (!quantized && !f16) CHECK(mx <= 1e-4, "%s/%s layer %d native hidden maxabs %.3g > 1e-4", name, pid, l, mx);
            else if (f16) CHECK(mx <= 3e-2 && rr <= 5e-3, "%s/%s layer %d F16 native hidden maxabs %.3g relrms %.3g", name, pid, l, mx, rr);
            else CHECK(rr <= 0.1, "%s/%s layer %d quantized native hidden relrms %.3g > 0.1", name, pid, l, rr);
        }
        free(ref);
        snprintf(path, sizeof path, "%s/fixtures/models/%s", test_shared_dir(),
                 cJSON_GetObjectItem(cJSON_GetObjectItem(p, "files"), "logits_last")->valuestring);
        ref = pika_npy_load_f32(path, NULL, NULL);
        if (ref) {
            double mx, rr;
            diff_stats(logits, ref, (size_t)hp->n_vocab, &mx, &rr);
            double tol = quantized ? 2.0 : f16 ? 3e-2 : 5e-4;
            CHECK(mx <= tol, "%s/%s native logits maxabs %.3g > %.3g", name, pid, mx, tol);
            free(ref);
        }
        /* q8 prefill (quantized models, CPUs with AVX2 or AVX512_VNNI): 8-bit activations as llama.cpp's
         * own prefill uses, so held to the native reference's tolerances; also against the exact pass */
        if (quantized && pika_prefill_available(PIKA_PREFILL_Q8)) {
            pika_ctx *c8 = pika_ctx_new(m, 2);
            CHECK(pika_ctx_set_prefill(c8, PIKA_PREFILL_Q8) == 0 && pika_ctx_prefill(c8) == PIKA_PREFILL_Q8, "q8 prefill on");
            float *h8 = malloc(sizeof(float) * hsz), *l8 = malloc(sizeof(float) * (size_t)hp->n_vocab);
            pika_forward_req r8 = {-1, NULL, -1, NULL, h8, l8};
            CHECK(pika_forward(c8, ids, n, &r8) == 0, "%s/%s q8 prefill: %s", name, pid, pika_last_error());
            snprintf(path, sizeof path, "%s/fixtures/models/%s", test_shared_dir(),
                     cJSON_GetObjectItem(cJSON_GetObjectItem(p, "files"), "hidden")->valuestring);
            float *nat = pika_npy_load_f32(path, NULL, NULL);
            double worst_nat = 0, worst_ex = 0, first_ex = 0, exact_nat = 0;
            for (int l = 1; nat && l <= hp->n_layer; l++) {
                double mx, rr, rx;
                size_t off = (size_t)l * n * hp->n_embd, cnt = (size_t)n * hp->n_embd;
                diff_stats(h8 + off, nat + off, cnt, &mx, &rr);
                diff_stats(h8 + off, hidden + off, cnt, &mx, &rx);
                worst_nat = fmax(worst_nat, rr);
                diff_stats(hidden + off, nat + off, cnt, &mx, &rr);
                exact_nat = fmax(exact_nat, rr);
                worst_ex = fmax(worst_ex, rx);
                if (l == 1) first_ex = rx;
            }
            CHECK(nat && worst_nat <= 0.1, "%s/%s q8 prefill vs native hidden relrms %.3g > 0.1", name, pid, worst_nat);
            CHECK(worst_ex > 0 && worst_ex <= 0.1, "%s/%s q8 prefill vs exact hidden relrms %.3g", name, pid, worst_ex);
            CHECK(first_ex < 3e-2, "%s/%s q8 prefill vs exact after block 1: relrms %.3g", name, pid, first_ex);
            double lx = 0;
            for (int v = 0; v < hp->n_vocab; v++) lx = fmax(lx, fabs(l8[v] - logits[v]));
            CHECK(lx <= 2.0, "%s/%s q8 prefill logits differ from exact by %.3g", name, pid, lx);
            if (!strcmp(pid, cJSON_GetObjectItem(cJSON_GetArrayItem(prompts, 0), "id")->valuestring))
                fprintf(stderr, "  %s q8 prefill: hidden relrms vs native <= %.3g (exact prefill vs native <= %.3g), vs exact <= %.3g; logits vs exact %.3g\n",
                        name, worst_nat, exact_nat, worst_ex, lx);
            /* the AVX2 integer kernel (maddubs) on the same prompt: the same integer sums as VNNI's; the other
             * kernels at that level round F32 differently, which moves some activations across an 8-bit
             * rounding boundary: held to half the q8-vs-exact tolerance after block 1, and to native's */
            if (pika_simd_level() >= PIKA_SIMD_AVX512 && pika_simd_override(PIKA_SIMD_AVX2) == 0) {
                float *h2 = malloc(sizeof(float) * hsz), *l2 = malloc(sizeof(float) * (size_t)hp->n_vocab);
                pika_forward_req r2 = {-1, NULL, -1, NULL, h2, l2};
                pika_ctx_reset(c8);
                CHECK(pika_forward(c8, ids, n, &r2) == 0, "%s/%s AVX2 q8 prefill: %s", name, pid, pika_last_error());
                pika_simd_override(-1);
                double w2 = 0, wn = 0, mx, rr;
                for (int l = 1; l <= hp->n_layer; l++) {
                    size_t off = (size_t)l * n * hp->n_embd, cnt = (size_t)n * hp->n_embd;
                    diff_stats(h2 + off, h8 + off, cnt, &mx, &rr);
                    w2 = fmax(w2, rr);
                    if (nat) {
                        diff_stats(h2 + off, nat + off, cnt, &mx, &rr);
                        wn = fmax(wn, rr);
                    }
                }
                CHECK(w2 < 1.5e-2, "%s/%s q8 prefill AVX2 vs AVX-512 VNNI hidden relrms %.3g", name, pid, w2);
                CHECK(wn <= 0.1, "%s/%s AVX2 q8 prefill vs native hidden relrms %.3g > 0.1", name, pid, wn);
                if (!strcmp(pid, cJSON_GetObjectItem(cJSON_GetArrayItem(prompts, 0), "id")->valuestring))
                    fprintf(stderr, "  %s AVX2 q8 prefill: vs VNNI <= %.3g, vs native <= %.3g\n", name, w2, wn);
                free(h2); free(l2);
            }
            free(nat); free(h8); free(l8);
            pika_ctx_free(c8);
        }
        /* exact-F32 reference (non-F32 models): the tight check */
        const cJSON *fw = cJSON_GetObjectItem(p, "f32_weights");
        const cJSON *greedy = cJSON_GetObjectItem(p, "greedy");
        if (fw) {
            greedy = cJSON_GetObjectItem(fw, "greedy");
            snprintf(path, sizeof path, "%s/fixtures/models/%s", test_shared_dir(),
                     cJSON_GetObjectItem(cJSON_GetObjectItem(fw, "files"), "hidden")->valuestring);
            ref = pika_npy_load_f32(path, NULL, NULL);
            CHECK(ref != NULL, "%s/%s f32w hidden missing", name, pid);
            for (int l = 0; ref && l <= hp->n_layer; l++) {
                double mx, rr;
                size_t off = (size_t)l * n * hp->n_embd, cnt = (size_t)n * hp->n_embd;
                diff_stats(hidden + off, ref + off, cnt, &mx, &rr);
                CHECK(mx <= 1e-4, "%s/%s layer %d f32w hidden maxabs %.3g > 1e-4", name, pid, l, mx);
            }
            free(ref);
            const cJSON *fl = cJSON_GetObjectItem(cJSON_GetObjectItem(fw, "files"), "logits_last");
            if (fl) {
                snprintf(path, sizeof path, "%s/fixtures/models/%s", test_shared_dir(), fl->valuestring);
                ref = pika_npy_load_f32(path, NULL, NULL);
                double mx = 1e9, rr;
                if (ref) diff_stats(logits, ref, (size_t)hp->n_vocab, &mx, &rr);
                CHECK(mx <= 5e-4, "%s/%s f32w logits maxabs %.3g > 5e-4", name, pid, mx);
                free(ref);
            }
            const cJSON *top, *top20 = cJSON_GetObjectItem(fw, "logits_last_top20");
            cJSON_ArrayForEach(top, top20) {
                int id = (int)cJSON_GetArrayItem(top, 0)->valuedouble;
                double v = cJSON_GetArrayItem(top, 1)->valuedouble;
                CHECK(fabs(logits[id] - v) <= 5e-4, "%s/%s f32w top-20 logit of %d: %.6f vs %.6f", name, pid, id, logits[id], v);
            }
        }
        /* greedy decode with the KV cache, compared up to the first low-margin step */
        int n_cmp = (int)cJSON_GetObjectItem(cJSON_GetObjectItem(greedy, "first_step_with_margin_below"), "1e-3")->valuedouble;
        int ng;
        int32_t *gids = json_ids(cJSON_GetObjectItem(greedy, "token_ids"), &ng);
        pika_sampling sp;
        pika_sampling_default(&sp);
        sp.temperature = 0;
        pika_sampler *s = pika_sampler_new(&sp, hp->n_vocab);
        pika_forward_req lreq = {0, NULL, 0, NULL, NULL, logits};
        for (int k = 0; k < n_cmp && k < ng; k++) {
            int32_t tok = pika_sample(s, logits);
            CHECK(tok == gids[k], "%s/%s greedy step %d: got %d, want %d", name, pid, k, tok, gids[k]);
            if (tok != gids[k]) break;
            if (pika_forward(c, &tok, 1, &lreq)) { CHECK(0, "decode: %s", pika_last_error()); break; }
        }
        /* the default decode path (8-bit activations, integer dots; prefill stays exact): the same
         * greedy tokens as the exact reference up to its first step with a top-2 margin below 1
         * (random-weight models amplify the activation rounding: flips were seen at margins ~0.3),
         * and decode logits within the native-reference tolerance of the exact path's */
        const cJSON *ng_ = greedy, *marg = cJSON_GetObjectItem(greedy, "margin");
        int n_nat = 0;
        while (n_nat < cJSON_GetArraySize(marg) && cJSON_GetArrayItem(marg, n_nat)->valuedouble >= 1.0) n_nat++;
        int nn;
        int32_t *nids = json_ids(cJSON_GetObjectItem(ng_, "token_ids"), &nn);
        pika_ctx *cq = pika_ctx_new(m, 2);
        float *lq = malloc(sizeof(float) * (size_t)hp->n_vocab), *le = malloc(sizeof(float) * (size_t)hp->n_vocab);
        pika_forward_req qreq = {0, NULL, 0, NULL, NULL, lq}, ereq = {0, NULL, 0, NULL, NULL, le};
        CHECK(!pika_ctx_exact(cq), "q8 decode is the default");
        pika_ctx_reset(c);
        CHECK(pika_forward(cq, ids, n, &qreq) == 0 && pika_forward(c, ids, n, &ereq) == 0, "prefill");
        double lmax = 0, lscale = 0;
        for (int k = 0; k < n_nat && k < nn; k++) {
            int32_t tok = pika_sample(s, lq);
            CHECK(tok == nids[k], "%s/%s q8 greedy step %d: got %d, want %d", name, pid, k, tok, nids[k]);
            if (tok != nids[k]) break;
            if (pika_forward(cq, &tok, 1, &qreq) || pika_forward(c, &tok, 1, &ereq)) { CHECK(0, "decode: %s", pika_last_error()); break; }
            for (int v = 0; v < hp->n_vocab; v++) {
                lmax = fmax(lmax, fabs(lq[v] - le[v]));
                lscale = fmax(lscale, fabs(le[v]));
            }
        }
        CHECK(lmax <= (quantized ? 2.0 : 1e-6), "%s/%s q8 decode logits differ from exact by %.3g (scale %.3g)", name, pid, lmax, lscale);
        if (!strcmp(pid, cJSON_GetObjectItem(cJSON_GetArrayItem(prompts, 0), "id")->valuestring))
            fprintf(stderr, "  %s q8 decode: max |logit - exact| %.3g of max |logit| %.3g\n", name, lmax, lscale);
        free(nids); free(lq); free(le);
        pika_ctx_free(cq);
        pika_sampler_free(s);
        free(gids);
        free(hidden);
        free(logits);
        free(ids);
    }
    pika_ctx_free(c);
    pika_model_free(m);
    cJSON_Delete(j);
}

static void test_llama_tiny(void) { check_model("llama-tiny"); }
static void test_qwen2_tiny(void) { check_model("qwen2-tiny"); }
static void test_qwen3_tiny(void) { check_model("qwen3-tiny"); }
static void test_llama_q8_0(void) { check_model("llama-q-Q8_0"); }
static void test_llama_q4_k(void) {
    check_model("llama-q-Q4_K_M");
    /* on AVX-512 Q4_K decodes with the exact kernel (faster there); the AVX2 level runs the q8 one */
    if (pika_simd_level() > PIKA_SIMD_AVX2 && pika_simd_override(PIKA_SIMD_AVX2) == 0) {
        check_model("llama-q-Q4_K_M");
        pika_simd_override(-1);
    }
}
static void test_stories260k(void) { check_model("stories260K"); }

/* Decoding token by token through the KV cache must give the same hidden states as one batch;
 * an early stop must give the same layers as the full pass; 1 and 2 threads agree. */
static void test_kv_cache_and_early_stop(void) {
    REQUIRE_SHARED(path, "fixtures/models/qwen3-tiny.gguf");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    const int n = 12, E = hp->n_embd, L = hp->n_layer;
    int32_t ids[12] = {785, 6722, 315, 9625, 374, 12095, 13, 576, 6722, 315, 9856, 374};
    float *full = malloc(sizeof(float) * (size_t)(L + 1) * n * E), *logits1 = malloc(sizeof(float) * hp->n_vocab);
    pika_ctx *c1 = pika_ctx_new(m, 1), *c2 = pika_ctx_new(m, 2);
    pika_forward_req req = {-1, NULL, -1, NULL, full, logits1};
    REQUIRE(pika_forward(c1, ids, n, &req) == 0, "%s", pika_last_error());
    /* one token at a time, capturing the last layer of each */
    float *step = malloc(sizeof(float) * (size_t)E), *logits2 = malloc(sizeof(float) * hp->n_vocab);
    int last = L, pos0 = 0;
    double worst = 0;
    for (int t = 0; t < n; t++) {
        pika_forward_req r1 = {1, &last, 1, &pos0, step, t == n - 1 ? logits2 : NULL};
        REQUIRE(pika_forward(c2, ids + t, 1, &r1) == 0, "%s", pika_last_error());
        for (int e = 0; e < E; e++) {
            double d = fabs(step[e] - full[((size_t)L * n + t) * E + e]);
            worst = d > worst ? d : worst;
        }
    }
    CHECK(worst < 1e-4, "token-by-token vs batch: max diff %.3g", worst);
    double lw = 0;
    for (int v = 0; v < hp->n_vocab; v++) lw = fmax(lw, fabs(logits1[v] - logits2[v]));
    CHECK(lw < 1e-4, "token-by-token vs batch logits: max diff %.3g", lw);
    /* early stop: layer 1 only, last 2 positions, no logits */
    int lay = 1, pos[2] = {-2, -1};
    float two[2 * 64];
    REQUIRE(E <= 64, "E");
    pika_ctx_reset(c1);
    pika_forward_req r2 = {1, &lay, 2, pos, two, NULL};
    REQUIRE(pika_forward(c1, ids, n, &r2) == 0, "%s", pika_last_error());
    double es = 0;
    for (int k = 0; k < 2; k++)
        for (int e = 0; e < E; e++) es = fmax(es, fabs(two[k * E + e] - full[((size_t)1 * n + (n - 2 + k)) * E + e]));
    CHECK(es < 1e-6, "early stop differs from the full pass by %.3g", es);
    CHECK(pika_ctx_n_past(c1) == n && pika_ctx_kv_layers(c1) == 1,
          "an early-stopped pass keeps its tokens with the blocks it ran: n_past %d, kv_layers %d",
          pika_ctx_n_past(c1), pika_ctx_kv_layers(c1));
    pika_ctx_reset(c1);
    /* bad requests */
    int bad_layer = L + 1, bad_pos = n;
    pika_forward_req r3 = {1, &bad_layer, 1, &pos0, two, NULL};
    CHECK(pika_forward(c1, ids, n, &r3) != 0, "layer out of range accepted");
    pika_forward_req r4 = {1, &lay, 1, &bad_pos, two, NULL};
    CHECK(pika_forward(c1, ids, n, &r4) != 0, "position out of range accepted");
    int32_t bad_id = hp->n_vocab;
    CHECK(pika_forward(c1, &bad_id, 1, NULL) != 0 && strstr(pika_last_error(), "out of range"), "bad token id accepted");
    free(full); free(step); free(logits1); free(logits2);
    pika_ctx_free(c1);
    pika_ctx_free(c2);
    pika_model_free(m);
}

/* Sampling: same seed -> same tokens; temperature 0 = argmax; top-k 1 = argmax. */
static void test_sampling(void) {
    float logits[6] = {0.1f, 2.0f, 1.9f, -1.0f, 2.0f, 0.5f};
    pika_sampling sp;
    pika_sampling_default(&sp);
    sp.temperature = 0;
    pika_sampler *g = pika_sampler_new(&sp, 6);
    CHECK(pika_sample(g, logits) == 1, "greedy ties must go to the lowest id");
    pika_sampler_free(g);
    sp.temperature = 1;
    sp.top_k = 1;
    g = pika_sampler_new(&sp, 6);
    for (int i = 0; i < 20; i++) CHECK(pika_sample(g, logits) == 1, "top-k 1 must be the argmax");
    pika_sampler_free(g);
    sp.top_k = 0;
    sp.seed = 7;
    pika_sampler *a = pika_sampler_new(&sp, 6), *b = pika_sampler_new(&sp, 6);
    int counts[6] = {0}, same = 1;
    for (int i = 0; i < 2000; i++) {
        int x = pika_sample(a, logits), y = pika_sample(b, logits);
        same &= x == y;
        counts[x]++;
    }
    CHECK(same, "same seed must give the same tokens");
    CHECK(counts[1] > 400 && counts[4] > 400 && counts[3] < 100, "sampled frequencies do not follow softmax: %d %d %d",
          counts[1], counts[4], counts[3]);
    pika_sampler_free(a);
    pika_sampler_free(b);
    /* top-p 0.5 keeps only the two top tokens (1 and 4 at p≈0.31 each) */
    sp.top_p = 0.5f;
    a = pika_sampler_new(&sp, 6);
    for (int i = 0; i < 200; i++) {
        int x = pika_sample(a, logits);
        CHECK(x == 1 || x == 4, "top-p 0.5 sampled %d", x);
    }
    pika_sampler_free(a);
    /* min-p 0.95 keeps tokens within 5% of the best: 1 and 4 */
    sp.top_p = 1;
    sp.min_p = 0.95f;
    a = pika_sampler_new(&sp, 6);
    for (int i = 0; i < 200; i++) {
        int x = pika_sample(a, logits);
        CHECK(x == 1 || x == 4, "min-p sampled %d", x);
    }
    pika_sampler_free(a);
}

/* The CLI contract: forward writes hidden.npy/logits.npy; generate prints the greedy ids. */
static void test_cli_forward_generate(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/stories260K.gguf");
    const char *dir = test_tmpdir();
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "%s forward --model %s --ids '1 403 407 261 378' --out %s/fw", test_pika_bin(), mpath, dir);
    free(test_run(cmd, &st));
    REQUIRE(st == 0, "pika forward exited %d", st);
    char p[1024];
    snprintf(p, sizeof p, "%s/fw/hidden.npy", dir);
    pika_npy a;
    REQUIRE(pika_npy_open(&a, p) == 0, "%s", pika_last_error());
    CHECK(a.dtype == PIKA_NPY_F32 && a.ndim == 3 && a.shape[0] == 6 && a.shape[1] == 5 && a.shape[2] == 64,
          "hidden.npy shape [%lld %lld %lld]", (long long)a.shape[0], (long long)a.shape[1], (long long)a.shape[2]);
    const char *ref = test_shared_path("fixtures/models/stories260K/short.hidden.npy");
    if (ref) {
        float *r = pika_npy_load_f32(ref, NULL, NULL);
        double mx, rr;
        diff_stats(a.data, r, (size_t)a.count, &mx, &rr);
        CHECK(mx <= 1e-4, "CLI hidden.npy differs from the reference by %.3g", mx);
        free(r);
    }
    pika_npy_close(&a);
    snprintf(p, sizeof p, "%s/fw/logits.npy", dir);
    CHECK(pika_npy_open(&a, p) == 0 && a.ndim == 1 && a.shape[0] == 512, "logits.npy shape");
    pika_npy_close(&a);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 403 407 261 378' -n 8 --temperature 0 --print-ids",
             test_pika_bin(), mpath);
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && !strcmp(out, "432 383 286 261 376 298 315 421\n"), "generate printed '%s'", out);
    free(out);
    /* --prompt tokenizes the text (BOS added as the vocab asks) and prints text: the same 8 tokens */
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt 'Once upon a time' -n 8 --temperature 0", test_pika_bin(), mpath);
    out = test_run(cmd, &st);
    snprintf(cmd, sizeof cmd, "%s detokenize --model %s --ids '432 383 286 261 376 298 315 421'", test_pika_bin(), mpath);
    char *want = test_run(cmd, &st);
    size_t wl = strlen(want);
    CHECK(st == 0 && wl > 0 && !strncmp(out, want, wl) && !strcmp(out + wl, "\n"), "generate --prompt printed '%s', want '%s'", out, want);
    free(want);
    free(out);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --user hi -n 2 2>&1", test_pika_bin(), mpath);
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "no chat template"), "--user without a template: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 403 99999' -n 2 2>&1", test_pika_bin(), mpath);
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "out of range"), "bad id: exit %d, '%s'", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s info %s", test_pika_bin(), mpath);
    out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "architecture:  llama") && strstr(out, "layers:        5"), "info printed '%s'", out);
    free(out);
}

/* ---------------------------------------------------------------- corrupt files */

static unsigned char *file_bytes(const char *path, size_t *n) { return (unsigned char *)pika_read_file(path, n); }

static int write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fwrite(b, 1, n, f);
    fclose(f);
    return 0;
}

/* Offset of the tensor-info record of `name` (its u64 length prefix). */
static size_t find_tensor_info(const unsigned char *b, size_t n, const char *name) {
    size_t nl = strlen(name);
    for (size_t i = 8; i + nl < n; i++) {
        uint64_t len;
        memcpy(&len, b + i - 8, 8);
        if (len == nl && !memcmp(b + i, name, nl)) return i - 8;
    }
    return 0;
}

/* Opening must fail with an error mentioning `want`, and the CLI must exit 2 with one line. */
static void expect_bad(const char *dir, const char *label, const void *bytes, size_t n, const char *want) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s.gguf", dir, label);
    write_bytes(p, bytes, n);
    pika_gguf *g = pika_gguf_open(p);
    CHECK(g == NULL, "%s: corrupt file was accepted", label);
    if (g) { pika_gguf_close(g); return; }
    CHECK(strstr(pika_last_error(), want) != NULL, "%s: error '%s' does not mention '%s'", label, pika_last_error(), want);
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "%s info %s 2>&1", test_pika_bin(), p);
    char *out = test_run(cmd, &st);
    int lines = 0;
    for (char *s = out; *s; s++) lines += *s == '\n';
    CHECK(st == 2 && lines == 1 && !strncmp(out, "pika: ", 6), "%s: CLI exit %d output '%s'", label, st, out);
    free(out);
}

static void test_corrupt_gguf(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/stories260K.gguf");
    size_t n;
    unsigned char *orig = file_bytes(mpath, &n);
    REQUIRE(orig, "read");
    unsigned char *b = malloc(n);
    const char *dir = test_tmpdir();
    /* truncated: header only, half the metadata, most of the data */
    expect_bad(dir, "trunc10", orig, 10, "not a GGUF");
    expect_bad(dir, "trunc_meta", orig, 2000, "truncated");
    expect_bad(dir, "trunc_data", orig, n - 4096, "past the end");
    memcpy(b, orig, n);
    memcpy(b, "GGML", 4);
    expect_bad(dir, "magic", b, n, "bad magic");
    memcpy(b, orig, n);
    b[4] = 99;
    expect_bad(dir, "version", b, n, "version");
    memcpy(b, orig, n);
    uint64_t huge = 1ull << 60;
    memcpy(b + 8, &huge, 8);
    expect_bad(dir, "tensor_count", b, n, "absurd counts");
    memcpy(b, orig, n);
    memcpy(b + 16, &huge, 8);
    expect_bad(dir, "kv_count", b, n, "absurd counts");
    size_t ti = find_tensor_info(orig, n, "output_norm.weight");
    REQUIRE(ti > 0, "tensor info not found");
    size_t after_name = ti + 8 + strlen("output_norm.weight");
    uint32_t ndims;
    memcpy(&ndims, orig + after_name, 4);
    REQUIRE(ndims == 1, "unexpected n_dims %u", ndims);
    memcpy(b, orig, n);
    uint64_t dim = 1ull << 45;
    memcpy(b + after_name + 4, &dim, 8);
    expect_bad(dir, "dims", b, n, "absurd dimension");
    memcpy(b, orig, n);
    uint32_t nd = 9;
    memcpy(b + after_name, &nd, 4);
    expect_bad(dir, "ndims", b, n, "dims");
    memcpy(b, orig, n);
    uint32_t badtype = 77;
    memcpy(b + after_name + 4 + 8, &badtype, 4);
    expect_bad(dir, "type", b, n, "unknown tensor type 77");
    memcpy(b, orig, n);
    uint64_t off = (uint64_t)n * 4 / 32 * 32;
    memcpy(b + after_name + 4 + 8 + 4, &off, 8);
    expect_bad(dir, "offset", b, n, "past the end");
    memcpy(b, orig, n);
    off = 3;
    memcpy(b + after_name + 4 + 8 + 4, &off, 8);
    expect_bad(dir, "misaligned", b, n, "aligned");
    /* a metadata string length running past the end */
    memcpy(b, orig, n);
    memcpy(b + 24, &huge, 8); /* first key's length */
    expect_bad(dir, "keylen", b, n, "truncated");
    /* a valid GGUF whose architecture is unsupported loads as GGUF but not as a model */
    const char *voc = test_shared_path("fixtures/tokenizer/ggml-vocab-gpt-2.gguf");
    if (voc) {
        pika_model *m = pika_model_load(voc);
        CHECK(m == NULL && strstr(pika_last_error(), "unsupported architecture 'gpt2'"), "gpt2 arch: %s", pika_last_error());
        pika_model_free(m);
    }
    free(b);
    free(orig);
}

/* A small two-tensor GGUF from the writer (alignment 32 stated explicitly), read back as bytes. */
static unsigned char *small_gguf(const char *dir, size_t *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/small.gguf", dir);
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_u32(w, "general.alignment", 32);
    pika_gguf_set_str(w, "general.architecture", "none");
    float data[64];
    for (int i = 0; i < 64; i++) data[i] = (float)i;
    int64_t ne[1] = {64};
    pika_gguf_add_tensor(w, "a", PIKA_TYPE_F32, 1, ne, data);
    pika_gguf_add_tensor(w, "b", PIKA_TYPE_F32, 1, ne, data);
    int rc = pika_gguf_writer_write(w, p);
    pika_gguf_writer_free(w);
    if (rc) return NULL;
    pika_gguf *g = pika_gguf_open(p);
    if (!g) return NULL;
    pika_gguf_close(g);
    return file_bytes(p, n);
}

/* Offset of the u32 value of the first u32 metadata entry named key. */
static size_t find_u32_value(const unsigned char *b, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 8; i + kl + 8 <= n; i++) {
        uint64_t len;
        memcpy(&len, b + i - 8, 8);
        uint32_t t;
        if (len == kl && !memcmp(b + i, key, kl) && (memcpy(&t, b + i + kl, 4), t == PIKA_GGUF_UINT32)) return i + kl + 4;
    }
    return 0;
}

/* Inputs found by fuzzing (regression files under fuzz/corpus/gguf/): overlapping tensor data,
 * general.alignment 2^31 (a power of two, but too large), and float array elements past int64. */
static void test_gguf_fuzz_regressions(void) {
    const char *dir = test_tmpdir();
    size_t n;
    unsigned char *orig = small_gguf(dir, &n);
    REQUIRE(orig, "small gguf: %s", pika_last_error());
    unsigned char *b = malloc(n);
    /* tensor b at tensor a's offset */
    size_t tb = find_tensor_info(orig, n, "b");
    REQUIRE(tb > 0, "tensor info b");
    size_t off_at = tb + 8 + 1 + 4 + 8 + 4;
    uint64_t off;
    memcpy(&off, orig + off_at, 8);
    CHECK(off == 256, "b's offset is %llu", (unsigned long long)off);
    memcpy(b, orig, n);
    uint64_t zero = 0;
    memcpy(b + off_at, &zero, 8);
    expect_bad(dir, "overlap", b, n, "overlaps");
    memcpy(b, orig, n);
    uint64_t mid = 128; /* aligned, but inside a's 256 bytes */
    memcpy(b + off_at, &mid, 8);
    expect_bad(dir, "overlap_mid", b, n, "overlaps");
    /* alignment */
    size_t av = find_u32_value(orig, n, "general.alignment");
    REQUIRE(av > 0, "general.alignment not found");
    memcpy(b, orig, n);
    uint32_t a31 = 1u << 31;
    memcpy(b + av, &a31, 4);
    expect_bad(dir, "align_2_31", b, n, "too large");
    CHECK(strstr(pika_last_error(), "not a power of two") == NULL, "2^31 called not a power of two: %s", pika_last_error());
    memcpy(b, orig, n);
    uint32_t a48 = 48;
    memcpy(b + av, &a48, 4);
    expect_bad(dir, "align_48", b, n, "not a power of two");
    memcpy(b, orig, n);
    uint32_t a0 = 0;
    memcpy(b + av, &a0, 4);
    expect_bad(dir, "align_0", b, n, "not a power of two");
    free(b);
    free(orig);
    /* float elements as integers: truncation toward zero, saturating, NaN -> 0 */
    double fv[6] = {3.9, -3.9, 1e19, -1e19, 9223372036854775808.0, NAN};
    pika_gguf_value arr = {.type = PIKA_GGUF_ARRAY};
    arr.v.arr.type = PIKA_GGUF_FLOAT64;
    arr.v.arr.n = 6;
    arr.v.arr.data = fv;
    CHECK(pika_gguf_arr_int(&arr, 0) == 3 && pika_gguf_arr_int(&arr, 1) == -3, "truncation");
    CHECK(pika_gguf_arr_int(&arr, 2) == INT64_MAX, "1e19 -> %lld", (long long)pika_gguf_arr_int(&arr, 2));
    CHECK(pika_gguf_arr_int(&arr, 3) == INT64_MIN, "-1e19 -> %lld", (long long)pika_gguf_arr_int(&arr, 3));
    CHECK(pika_gguf_arr_int(&arr, 4) == INT64_MAX, "2^63 -> %lld", (long long)pika_gguf_arr_int(&arr, 4));
    CHECK(pika_gguf_arr_int(&arr, 5) == 0, "NaN -> %lld", (long long)pika_gguf_arr_int(&arr, 5));
    float ff[2] = {3e19f, -0.5f};
    arr.v.arr.type = PIKA_GGUF_FLOAT32;
    arr.v.arr.n = 2;
    arr.v.arr.data = ff;
    CHECK(pika_gguf_arr_int(&arr, 0) == INT64_MAX && pika_gguf_arr_int(&arr, 1) == 0, "float32 elements");
}

/* Metadata of a real file reads back with the right types, incl. string arrays. */
static void test_gguf_metadata(void) {
    REQUIRE_SHARED(path, "fixtures/models/qwen2-tiny.gguf");
    pika_gguf *g = pika_gguf_open(path);
    REQUIRE(g, "%s", pika_last_error());
    CHECK(g->version == 3, "version %u", g->version);
    char *arch = pika_gguf_get_string(g, "general.architecture");
    CHECK(arch && !strcmp(arch, "qwen2"), "arch %s", arch ? arch : "(null)");
    free(arch);
    CHECK(pika_gguf_get_int(g, "qwen2.block_count", 0) == 3, "block_count");
    CHECK(fabs(pika_gguf_get_float(g, "qwen2.rope.freq_base", 0) - 1e6) < 1, "rope base");
    const pika_gguf_value *toks = pika_gguf_get_array(g, "tokenizer.ggml.tokens");
    REQUIRE(toks && toks->v.arr.type == PIKA_GGUF_STRING && toks->v.arr.n == 151936, "tokens array");
    const pika_str *s = &toks->v.arr.items[151644].v.str;
    CHECK(s->len == 12 && !memcmp(s->ptr, "<|im_start|>", 12), "token 151644 is '%.*s'", (int)s->len, s->ptr);
    const pika_gguf_tensor *t = pika_gguf_find_tensor(g, "blk.0.attn_q.bias");
    CHECK(t && t->n_dims == 1 && t->ne[0] == 64 && t->type == 0, "attn_q.bias info");
    CHECK(pika_gguf_find_tensor(g, "output.weight") == NULL, "qwen2-tiny is tied");
    CHECK(pika_gguf_get(g, "no.such.key") == NULL && pika_gguf_get_int(g, "no.such.key", -7) == -7, "missing key");
    pika_gguf_close(g);
}

/* A tiny random llama model written with the GGUF writer; rope: 0 plain, 1 rope_freqs all 1,
 * 2 rope_freqs all 2, 3 linear RoPE scaling factor 2 (no rope_freqs). */
static void write_tiny_llama(const char *path, int rope) {
    const int E = 16, H = 2, Hkv = 1, D = 8, F = 32, V = 20;
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "general.architecture", "llama");
    pika_gguf_set_u32(w, "llama.embedding_length", E);
    pika_gguf_set_u32(w, "llama.block_count", 1);
    pika_gguf_set_u32(w, "llama.attention.head_count", H);
    pika_gguf_set_u32(w, "llama.attention.head_count_kv", Hkv);
    pika_gguf_set_u32(w, "llama.feed_forward_length", F);
    pika_gguf_set_u32(w, "llama.context_length", 64);
    pika_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (rope == 3) {
        pika_gguf_set_str(w, "llama.rope.scaling.type", "linear");
        pika_gguf_set_f32(w, "llama.rope.scaling.factor", 2.0f);
    }
    float buf[4096];
    uint64_t x = 7;
    struct { const char *name; int64_t ne0, ne1; } t[] = {
        {"token_embd.weight", E, V}, {"blk.0.attn_q.weight", E, H * D}, {"blk.0.attn_k.weight", E, Hkv * D},
        {"blk.0.attn_v.weight", E, Hkv * D}, {"blk.0.attn_output.weight", H * D, E}, {"blk.0.ffn_gate.weight", E, F},
        {"blk.0.ffn_up.weight", E, F}, {"blk.0.ffn_down.weight", F, E}, {"output.weight", E, V},
        {"blk.0.attn_norm.weight", E, 0}, {"blk.0.ffn_norm.weight", E, 0}, {"output_norm.weight", E, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t ne[2] = {t[i].ne0, t[i].ne1 ? t[i].ne1 : 1};
        for (int64_t k = 0; k < ne[0] * ne[1]; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(x >> 11) / 9007199254740992.0;
            buf[k] = t[i].ne1 ? (float)((u - 0.5) * 1.5) : (float)(1.0 + (u - 0.5) * 0.2);
        }
        pika_gguf_add_tensor(w, t[i].name, 0, t[i].ne1 ? 2 : 1, ne, buf);
    }
    if (rope == 1 || rope == 2) {
        float f[4];
        for (int i = 0; i < D / 2; i++) f[i] = rope == 1 ? 1.0f : 2.0f;
        int64_t ne[1] = {D / 2};
        pika_gguf_add_tensor(w, "rope_freqs.weight", 0, 1, ne, f);
    }
    pika_gguf_writer_write(w, path);
    pika_gguf_writer_free(w);
}

/* llama3-style rope_freqs.weight divides each pair's frequency: all ones changes nothing; all twos
 * equals linear RoPE scaling by 2 (every angle halved). */
static void test_rope_freqs_and_scaling(void) {
    const char *dir = test_tmpdir();
    float out[4][12 * 16];
    int32_t ids[12] = {1, 5, 9, 3, 17, 2, 8, 8, 4, 19, 0, 6};
    for (int v = 0; v < 4; v++) {
        char p[512];
        snprintf(p, sizeof p, "%s/tiny%d.gguf", dir, v);
        write_tiny_llama(p, v);
        pika_model *m = pika_model_load(p);
        REQUIRE(m, "variant %d: %s", v, pika_last_error());
        pika_ctx *c = pika_ctx_new(m, 1);
        int layer = 1;
        pika_forward_req req = {1, &layer, -1, NULL, out[v], NULL};
        REQUIRE(pika_forward(c, ids, 12, &req) == 0, "%s", pika_last_error());
        pika_ctx_free(c);
        pika_model_free(m);
    }
    double d01 = 0, d02 = 0, d23 = 0;
    for (int i = 0; i < 12 * 16; i++) {
        d01 = fmax(d01, fabs(out[0][i] - out[1][i]));
        d02 = fmax(d02, fabs(out[0][i] - out[2][i]));
        d23 = fmax(d23, fabs(out[2][i] - out[3][i]));
    }
    CHECK(d01 == 0, "rope_freqs of ones changed the output by %.3g", d01);
    CHECK(d02 > 1e-3, "rope_freqs of twos did not change the output (%.3g)", d02);
    CHECK(d23 < 1e-6, "rope_freqs 2 and linear scaling 2 differ by %.3g", d23);
}

/* deterministic token ids in [0, V) */
static void rand_ids(int32_t *ids, int n, int V, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((seed >> 33) % (uint64_t)V);
    }
}

/* max |a - b| / max(1, max |b|) */
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, sc = 1;
    for (size_t i = 0; i < n; i++) { d = fmax(d, fabs(a[i] - b[i])); sc = fmax(sc, fabs(b[i])); }
    return d / sc;
}

/* pika_forward_packed: every sequence's hidden states (all layers, all positions) and last-token
 * logits equal a fresh one-sequence pika_forward of prefix + that sequence; the prefix stays intact. */
/* mode: the prefill precision of both the packed and the one-at-a-time contexts (PIKA_PREFILL_F32: exact) */
static void check_packed_mode(const char *name, int n_prefix, int mode) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/models/%s.gguf", name);
    const char *path = test_shared_path(rel);
    if (!path) SKIP_TEST("*** ../shared fixture %s is ABSENT: test skipped ***", rel);
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    const int E = hp->n_embd, L = hp->n_layer, V = hp->n_vocab;
    enum { NS = 5 };
    int len[NS] = {5, 1, 140, 7, 12}; /* 140 > the attention's query block */
    int n = 0, start[NS];
    for (int s = 0; s < NS; s++) { start[s] = n; n += len[s]; }
    int32_t *pre = malloc(sizeof(int32_t) * (size_t)(n_prefix + 1)), *toks = malloc(sizeof(int32_t) * (size_t)n);
    rand_ids(pre, n_prefix, V, 11);
    rand_ids(toks, n, V, 23);
    float *hp_all = malloc(sizeof(float) * (size_t)(L + 1) * n * E), *lg = malloc(sizeof(float) * (size_t)NS * V);
    pika_ctx *c = pika_ctx_new(m, 2);
    pika_ctx_set_exact(c, 1);
    if (mode != PIKA_PREFILL_F32) REQUIRE(pika_ctx_set_prefill(c, mode) == 0, "%s", pika_last_error());
    float dummy[1];
    if (n_prefix) {
        pika_forward_req pr = {1, &L, 0, NULL, dummy, NULL}; /* runs every block, keeps the tokens */
        REQUIRE(pika_forward(c, pre, n_prefix, &pr) == 0, "%s", pika_last_error());
    }
    pika_forward_req req = {-1, NULL, -1, NULL, hp_all, lg};
    for (int rep = 0; rep < 2; rep++) { /* twice: the scratch rows of the first pack must not leak */
        REQUIRE(pika_forward_packed(c, toks, NS, len, &req) == 0, "%s", pika_last_error());
        CHECK(pika_ctx_n_past(c) == n_prefix && pika_ctx_kv_layers(c) == L, "after a pack: n_past %d kv_layers %d",
              pika_ctx_n_past(c), pika_ctx_kv_layers(c));
    }
    /* references */
    pika_ctx *r = pika_ctx_new(m, 1);
    pika_ctx_set_exact(r, 1);
    if (mode != PIKA_PREFILL_F32) REQUIRE(pika_ctx_set_prefill(r, mode) == 0, "%s", pika_last_error());
    double worst = 0, lworst = 0;
    for (int s = 0; s < NS; s++) {
        int tn = n_prefix + len[s];
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)tn);
        memcpy(ids, pre, sizeof(int32_t) * (size_t)n_prefix);
        memcpy(ids + n_prefix, toks + start[s], sizeof(int32_t) * (size_t)len[s]);
        int *pos = malloc(sizeof(int) * (size_t)len[s]);
        for (int i = 0; i < len[s]; i++) pos[i] = n_prefix + i;
        float *h = malloc(sizeof(float) * (size_t)(L + 1) * len[s] * E), *rl = malloc(sizeof(float) * (size_t)V);
        pika_forward_req rr = {-1, NULL, len[s], pos, h, rl};
        pika_ctx_reset(r);
        REQUIRE(pika_forward(r, ids, tn, &rr) == 0, "%s", pika_last_error());
        for (int l = 0; l <= L; l++)
            worst = fmax(worst, rel_diff(hp_all + ((size_t)l * n + start[s]) * E, h + (size_t)l * len[s] * E,
                                         (size_t)len[s] * E));
        lworst = fmax(lworst, rel_diff(lg + (size_t)s * V, rl, (size_t)V));
        free(ids); free(pos); free(h); free(rl);
    }
    CHECK(worst <= 1e-4, "%s prefix %d: packed hidden states differ from one-at-a-time by %.3g (relative)", name,
          n_prefix, worst);
    /* q8: the references' logits are a 1-row product (the decode path, where Q4_K runs the exact kernel on
     * AVX-512), the pack's an NS-row q8 prefill product: they differ by the activation rounding */
    double ltol = mode == PIKA_PREFILL_Q8 ? 3e-2 : 1e-4;
    CHECK(lworst <= ltol, "%s prefix %d: packed logits differ by %.3g (relative)", name, n_prefix, lworst);
    /* the prefix cache is intact: continuing it with sequence 2 gives the packed result */
    {
        int l = L, pos[3] = {0, 70, 139};
        float h[3 * 256];
        REQUIRE(E <= 256, "E");
        pika_forward_req cr = {1, &l, 3, pos, h, NULL};
        REQUIRE(pika_forward(c, toks + start[2], len[2], &cr) == 0, "%s", pika_last_error());
        double d = 0;
        for (int k = 0; k < 3; k++)
            d = fmax(d, rel_diff(h + (size_t)k * E, hp_all + ((size_t)L * n + start[2] + pos[k]) * E, (size_t)E));
        CHECK(d <= 1e-4, "%s: continuing the prefix after packs differs by %.3g", name, d);
    }
    /* bad requests */
    int neg = -1, badlen[2] = {3, 0};
    pika_forward_req nr = {1, &L, 1, &neg, hp_all, NULL};
    pika_ctx_reset(c);
    CHECK(pika_forward_packed(c, toks, 2, len, &nr) != 0 && strstr(pika_last_error(), "position"),
          "a negative packed position was accepted");
    CHECK(pika_forward_packed(c, toks, 2, badlen, NULL) != 0, "an empty sequence was accepted");
    CHECK(pika_forward_packed(c, toks, 0, len, NULL) != 0, "no sequences accepted");
    free(pre); free(toks); free(hp_all); free(lg);
    pika_ctx_free(c);
    pika_ctx_free(r);
    pika_model_free(m);
}

static void check_packed(const char *name, int n_prefix) { check_packed_mode(name, n_prefix, PIKA_PREFILL_F32); }

static void test_packed_qwen2(void) { check_packed("qwen2-tiny", 0); check_packed("qwen2-tiny", 9); }
static void test_packed_llama(void) { check_packed("llama-tiny", 0); check_packed("llama-tiny", 17); }
static void test_packed_qwen3_q8(void) { check_packed("qwen3-tiny", 4); check_packed("llama-q-Q8_0", 6); }
/* q8 prefill: each row's activations are quantized on their own and multiplied in a fixed order, so packing
 * (and a cached prefix) changes nothing beyond F32 rounding here either */
static void test_packed_q8_prefill(void) {
    if (!pika_prefill_available(PIKA_PREFILL_Q8)) {
        printf("note: no AVX512_VNNI at this level: packed q8 prefill not checked\n");
        return;
    }
    check_packed_mode("llama-q-Q8_0", 6, PIKA_PREFILL_Q8);
    check_packed_mode("llama-q-Q4_K_M", 4, PIKA_PREFILL_Q8); /* every reference call >= 4 tokens: a prefill */
}

/* Prefix reuse after an early stop: the cached prefix (filled for the blocks run) continued by a
 * second pass equals a fresh pass; a pass deeper than the cache is refused with an error and changes
 * nothing; reset / truncate to 0 lift the limit. */
static void test_prefix_reuse_early_stop(void) {
    REQUIRE_SHARED(path, "fixtures/models/qwen2-tiny.gguf");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    const int E = hp->n_embd, L = hp->n_layer, V = hp->n_vocab;
    REQUIRE(L >= 3, "needs 3+ blocks");
    int32_t ids[40];
    rand_ids(ids, 40, V, 5);
    const int P = 25, S = 15;
    pika_ctx *fresh = pika_ctx_new(m, 1), *c = pika_ctx_new(m, 2);
    int lay[2] = {1, 2}, pos[S], pos_fresh[S];
    for (int i = 0; i < S; i++) { pos[i] = i; pos_fresh[i] = P + i; }
    float *ref = malloc(sizeof(float) * 2 * S * E), *got = malloc(sizeof(float) * 2 * S * E);
    pika_forward_req fr = {2, lay, S, pos_fresh, ref, NULL};
    REQUIRE(pika_forward(fresh, ids, P + S, &fr) == 0, "%s", pika_last_error());
    /* prefix stopped after block 2 */
    float dummy[1];
    int two = 2;
    pika_forward_req pr = {1, &two, 0, NULL, dummy, NULL};
    REQUIRE(pika_forward(c, ids, P, &pr) == 0, "%s", pika_last_error());
    CHECK(pika_ctx_n_past(c) == P && pika_ctx_kv_layers(c) == 2, "n_past %d kv_layers %d", pika_ctx_n_past(c),
          pika_ctx_kv_layers(c));
    /* deeper than cached: refused, context unchanged */
    int deep = 3;
    float *lg = malloc(sizeof(float) * (size_t)V);
    pika_forward_req dr = {1, &deep, 1, pos, got, NULL};
    CHECK(pika_forward(c, ids + P, S, &dr) != 0 && strstr(pika_last_error(), "filled for 2 of"),
          "a pass deeper than the cache was accepted (%s)", pika_last_error());
    pika_forward_req lr = {0, NULL, 0, NULL, NULL, lg};
    CHECK(pika_forward(c, ids + P, S, &lr) != 0, "logits over a half-filled cache accepted");
    CHECK(pika_forward_packed(c, ids + P, 1, &S, &dr) != 0, "a packed pass deeper than the cache was accepted");
    CHECK(pika_ctx_n_past(c) == P && pika_ctx_kv_layers(c) == 2, "a refused pass changed the context");
    /* continue at the cached depth (packed and plain) == fresh */
    pika_forward_req gr = {2, lay, S, pos, got, NULL};
    REQUIRE(pika_forward_packed(c, ids + P, 1, &S, &gr) == 0, "%s", pika_last_error());
    CHECK(rel_diff(got, ref, (size_t)2 * S * E) <= 1e-4, "packed over an early-stopped prefix differs from fresh");
    REQUIRE(pika_forward(c, ids + P, S, &gr) == 0, "%s", pika_last_error());
    CHECK(rel_diff(got, ref, (size_t)2 * S * E) <= 1e-4, "continuing an early-stopped prefix differs from fresh");
    CHECK(pika_ctx_n_past(c) == P + S && pika_ctx_kv_layers(c) == 2, "n_past %d kv_layers %d", pika_ctx_n_past(c),
          pika_ctx_kv_layers(c));
    /* a shallower pass narrows the cache further */
    int one = 1;
    pika_forward_req sr = {1, &one, 0, NULL, dummy, NULL};
    REQUIRE(pika_forward(c, ids, 1, &sr) == 0, "%s", pika_last_error());
    CHECK(pika_ctx_kv_layers(c) == 1, "kv_layers %d after a 1-block pass", pika_ctx_kv_layers(c));
    pika_ctx_truncate(c, 10);
    CHECK(pika_ctx_n_past(c) == 10 && pika_ctx_kv_layers(c) == 1, "truncate keeps the depth");
    pika_ctx_truncate(c, 0);
    CHECK(pika_ctx_kv_layers(c) == L, "truncate to 0 lifts the limit");
    CHECK(pika_forward(c, ids, P, &lr) == 0, "%s", pika_last_error());
    CHECK(pika_ctx_n_past(c) == P && pika_ctx_kv_layers(c) == L, "full pass: n_past %d kv_layers %d",
          pika_ctx_n_past(c), pika_ctx_kv_layers(c));
    pika_forward_req er = {1, &two, 0, NULL, dummy, NULL};
    REQUIRE(pika_forward(c, ids + P, 3, &er) == 0, "%s", pika_last_error());
    pika_ctx_reset(c);
    CHECK(pika_ctx_n_past(c) == 0 && pika_ctx_kv_layers(c) == L, "reset lifts the limit");
    free(ref); free(got); free(lg);
    pika_ctx_free(fresh);
    pika_ctx_free(c);
    pika_model_free(m);
}

/* Prefill attention: a sequence's hidden states do not depend on how it was split between a cached
 * prefix (pika_forward) and a packed pass, nor on what was packed with it — bit for bit with pika's
 * SGEMM (AVX-512), within F32 rounding otherwise — and stay within 1e-4 of BLAS attention
 * (pika_ctx_set_blas_attention). */
/* The last block of a pass that returns a few positions runs Wo and the feed-forward on those rows only
 * (forward's trim): the same states as a pass that returns every position (which runs them on all rows). */
static void test_last_block_trim(void) {
    REQUIRE_SHARED(path, "fixtures/models/qwen2-tiny.gguf");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    const int E = hp->n_embd, L = hp->n_layer, V = hp->n_vocab, N = 40;
    int32_t ids[40];
    rand_ids(ids, N, V, 5);
    float *full = malloc(sizeof(float) * (size_t)(L + 1) * N * E), *part = malloc(sizeof(float) * 2 * 6 * (size_t)E);
    pika_ctx *c = pika_ctx_new(m, 2);
    pika_ctx_set_exact(c, 1);
    pika_forward_req all = {-1, NULL, -1, NULL, full, NULL};
    REQUIRE(pika_forward(c, ids, N, &all) == 0, "%s", pika_last_error());
    /* one sequence: positions with a duplicate and one from the end; layers in any order */
    int lay[2] = {L, 1}, pos[6] = {3, 17, -1, 30, 3, 0}, at[6] = {3, 17, N - 1, 30, 3, 0};
    pika_forward_req few = {2, lay, 6, pos, part, NULL};
    pika_ctx_reset(c);
    REQUIRE(pika_forward(c, ids, N, &few) == 0, "%s", pika_last_error());
    double d = 0;
    for (int li = 0; li < 2; li++)
        for (int k = 0; k < 6; k++)
            d = fmax(d, rel_diff(part + ((size_t)li * 6 + k) * E, full + ((size_t)lay[li] * N + at[k]) * E, (size_t)E));
    CHECK(d <= 1e-5, "trimmed last block differs from the full pass by %.3g", d);
    CHECK(pika_ctx_n_past(c) == N && pika_ctx_kv_layers(c) == L, "after a trimmed pass: n_past %d kv_layers %d",
          pika_ctx_n_past(c), pika_ctx_kv_layers(c));
    /* its KV cache is whole: a next token gives what a full pass over N + 1 tokens gives */
    int32_t next = 7, ids2[41];
    memcpy(ids2, ids, sizeof ids);
    ids2[N] = next;
    float h1[256], h2[256];
    REQUIRE(E <= 256, "E");
    int last = -1;
    pika_forward_req one = {1, &L, 1, &last, h1, NULL};
    REQUIRE(pika_forward(c, &next, 1, &one) == 0, "%s", pika_last_error());
    pika_ctx *r = pika_ctx_new(m, 2);
    pika_ctx_set_exact(r, 1);
    pika_forward_req one2 = {1, &L, 1, &last, h2, NULL};
    REQUIRE(pika_forward(r, ids2, N + 1, &one2) == 0, "%s", pika_last_error());
    d = rel_diff(h1, h2, (size_t)E);
    CHECK(d <= 1e-4, "the token after a trimmed pass differs by %.3g", d);
    /* packed: two sequences, positions in both */
    int lens[2] = {25, 15}, pp[4] = {24, 2, 39, 30};
    pika_forward_req pk = {1, &L, 4, pp, part, NULL};
    pika_ctx_reset(c);
    REQUIRE(pika_forward_packed(c, ids, 2, lens, &pk) == 0, "%s", pika_last_error());
    /* references: each sequence alone, every position */
    float *ref = malloc(sizeof(float) * (size_t)(L + 1) * 25 * E);
    d = 0;
    for (int s = 0; s < 2; s++) {
        int off = s ? 25 : 0;
        pika_ctx_reset(r);
        pika_forward_req ra = {-1, NULL, -1, NULL, ref, NULL};
        REQUIRE(pika_forward(r, ids + off, lens[s], &ra) == 0, "%s", pika_last_error());
        for (int k = 0; k < 4; k++)
            if ((pp[k] >= off) == (s == 1) && pp[k] < off + lens[s])
                d = fmax(d, rel_diff(part + (size_t)k * E, ref + ((size_t)L * lens[s] + pp[k] - off) * E, (size_t)E));
    }
    CHECK(d <= 1e-5, "packed trimmed last block differs from one sequence at a time by %.3g", d);
    free(ref); free(full); free(part);
    pika_ctx_free(c);
    pika_ctx_free(r);
    pika_model_free(m);
}

static void test_attention_invariance(void) {
    REQUIRE_SHARED(path, "fixtures/models/llama-tiny.gguf");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    const int E = hp->n_embd, L = hp->n_layer, V = hp->n_vocab;
    const int N = 90;
    int32_t ids[90], other[30];
    rand_ids(ids, N, V, 99);
    rand_ids(other, 30, V, 7);
    int lay[2] = {1, L}, pos[3] = {N - 3, N - 2, N - 1};
    float a[2 * 3 * 256], b[2 * 3 * 256], r[2 * 3 * 256], dummy[1];
    REQUIRE(E <= 256, "E");
    /* one packed pass of the whole sequence */
    pika_ctx *c = pika_ctx_new(m, 2);
    int len = N;
    pika_forward_req q1 = {2, lay, 3, pos, a, NULL};
    REQUIRE(pika_forward_packed(c, ids, 1, &len, &q1) == 0, "%s", pika_last_error());
    /* 70 tokens cached with pika_forward, then the last 20 packed behind another sequence */
    CHECK(pika_ctx_blas_attention(c) == 0, "default: pika's split-invariant attention");
    pika_forward_req pr = {1, &L, 0, NULL, dummy, NULL};
    REQUIRE(pika_forward(c, ids, 70, &pr) == 0, "%s", pika_last_error());
    int32_t pack[50];
    memcpy(pack, other, sizeof(int32_t) * 30);
    memcpy(pack + 30, ids + 70, sizeof(int32_t) * 20);
    int lens[2] = {30, 20}, ppos[3] = {47, 48, 49};
    pika_forward_req q2 = {2, lay, 3, ppos, b, NULL};
    REQUIRE(pika_forward_packed(c, pack, 2, lens, &q2) == 0, "%s", pika_last_error());
    double d = rel_diff(b, a, (size_t)2 * 3 * E);
    CHECK(d <= 1e-5, "split + packed differs from one pass by %.3g", d);
    if (pika_sgemm_nt_avx512()) CHECK(memcmp(a, b, sizeof(float) * 2 * 3 * (size_t)E) == 0, "not bit-identical (%.3g)", d);
    /* BLAS attention: close, not necessarily equal */
    pika_ctx *c2 = pika_ctx_new(m, 1);
    pika_ctx_set_blas_attention(c2, 1);
    CHECK(pika_ctx_blas_attention(c2) == 1, "setter");
    pika_forward_req q3 = {2, lay, 3, pos, r, NULL};
    REQUIRE(pika_forward(c2, ids, N, &q3) == 0, "%s", pika_last_error());
    d = rel_diff(a, r, (size_t)2 * 3 * E);
    CHECK(d <= 1e-4, "pika's vs BLAS attention: %.3g", d);
    pika_ctx_free(c);
    pika_ctx_free(c2);
    pika_model_free(m);
}

int main(void) {
    RUN(test_rope_freqs_and_scaling);
    RUN(test_last_block_trim);
    RUN(test_gguf_metadata);
    RUN(test_llama_tiny);
    RUN(test_qwen2_tiny);
    RUN(test_qwen3_tiny);
    RUN(test_llama_q8_0);
    RUN(test_llama_q4_k);
    RUN(test_stories260k);
    RUN(test_kv_cache_and_early_stop);
    RUN(test_packed_qwen2);
    RUN(test_packed_llama);
    RUN(test_packed_qwen3_q8);
    RUN(test_packed_q8_prefill);
    RUN(test_prefix_reuse_early_stop);
    RUN(test_attention_invariance);
    RUN(test_sampling);
    RUN(test_cli_forward_generate);
    RUN(test_corrupt_gguf);
    RUN(test_gguf_fuzz_regressions);
    return test_summary("model");
}
