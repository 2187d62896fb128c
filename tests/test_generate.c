/* test_generate.c — the decode loop (generate.h): greedy output equal to the reference decode loop
 * (and to the ids `pika generate` printed before the loop existed), max tokens, stop strings,
 * streaming pieces that concatenate to the final text, cancellation, seeded sampling equal to the
 * per-(question, sample) seeds of `pika sample`, KV-cache reuse equal to a fresh prefill; and the one
 * option parser / validator: each bad value rejected with a clear message. */
#include <unistd.h>

#include "pika/generate.h"
#include "pika/model.h"
#include "pika/prompt.h"
#include "pika/sample.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"

/* The loop pika generate and pika sample ran before generate.c (kept here as the reference). */
static int reference_loop(pika_ctx *c, const pika_tokenizer *tok, const int32_t *ids, int n, const pika_sampling *sp,
                          int max_tokens, int32_t *out) {
    const int V = pika_model_hparams(pika_ctx_model(c))->n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)V);
    pika_forward_req req = {0, NULL, 0, NULL, NULL, logits};
    pika_ctx_reset(c);
    if (pika_forward(c, ids, n, &req)) { free(logits); return -1; }
    pika_sampler *s = pika_sampler_new(sp, V);
    int ng = 0;
    while (ng < max_tokens) {
        int32_t t = pika_sample(s, logits);
        if (pika_tokenizer_is_eog(tok, t)) break;
        out[ng++] = t;
        if (ng < max_tokens && pika_forward(c, &t, 1, &req)) break;
    }
    pika_sampler_free(s);
    free(logits);
    return ng;
}

typedef struct {
    pika_buf b;
    int calls, cancel_after;
    int bad_utf8;
} collect;

static int on_piece(const char *p, size_t n, void *u) {
    collect *c = u;
    c->calls++;
    if (!n || !pika_utf8_valid(p, n)) c->bad_utf8 = 1;
    pika_buf_add(&c->b, p, n);
    return c->cancel_after > 0 && c->calls >= c->cancel_after;
}

static void test_greedy_stories(void) {
    REQUIRE_SHARED(path, "fixtures/models/stories260K.gguf");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_ctx *c = pika_ctx_new(m, 1);
    pika_gen_opts o;
    pika_gen_opts_default(&o);
    o.sampling.temperature = 0;
    o.max_tokens = 8;
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    pika_gen_result r;
    REQUIRE(pika_generate(c, tok, prompt, 5, &o, NULL, NULL, &r) == 0, "%s", pika_last_error());
    const int32_t want[] = {432, 383, 286, 261, 376, 298, 315, 421}; /* what `pika generate --print-ids` printed */
    CHECK(r.n_ids == 8 && !memcmp(r.ids, want, sizeof want), "greedy ids");
    CHECK(!strcmp(r.finish, "length") && r.stop_index == -1, "finish %s", r.finish);
    char *dt;
    size_t dl;
    REQUIRE(pika_detokenize(tok, r.ids, r.n_ids, false, &dt, &dl) == 0, "%s", pika_last_error());
    CHECK(dl == r.len && !memcmp(dt, r.text, dl), "text = detokenized ids: '%s' vs '%s'", r.text, dt);
    free(dt);
    /* longer greedy run: streaming pieces, then stop strings cut at their first occurrence */
    o.max_tokens = 40;
    collect col = {0};
    pika_gen_result full;
    REQUIRE(pika_generate(c, tok, prompt, 5, &o, on_piece, &col, &full) == 0, "%s", pika_last_error());
    CHECK(col.b.n == full.len && !memcmp(col.b.s, full.text, full.len) && !col.bad_utf8 && col.calls > 1,
          "pieces concatenate to the text (%d calls)", col.calls);
    free(col.b.s);
    REQUIRE(full.len > 20, "greedy text too short: '%s'", full.text);
    /* a stop string taken from the middle of the text (4 bytes starting at byte 10) */
    char stop[5];
    memcpy(stop, full.text + 10, 4);
    stop[4] = 0;
    size_t first = (size_t)(strstr(full.text, stop) - full.text);
    o.n_stop = 2;
    o.stop[0] = "no such stop string";
    o.stop[1] = stop;
    collect c2 = {0};
    pika_gen_result st;
    REQUIRE(pika_generate(c, tok, prompt, 5, &o, on_piece, &c2, &st) == 0, "%s", pika_last_error());
    CHECK(st.len == first && !memcmp(st.text, full.text, first), "stop: '%s' (want the first %zu bytes of '%s')", st.text,
          first, full.text);
    CHECK(!strcmp(st.finish, "stop") && st.stop_index == 1, "stop finish %s %d", st.finish, st.stop_index);
    CHECK(c2.b.n == st.len && (!st.len || !memcmp(c2.b.s, st.text, st.len)) && !strstr(c2.b.s ? c2.b.s : "", stop),
          "streamed text never includes the stop string");
    CHECK(st.n_ids < full.n_ids, "generation ended at the stop string");
    free(c2.b.s);
    pika_gen_result_free(&st);
    /* cancellation from the callback */
    o.n_stop = 0;
    collect c3 = {.cancel_after = 2};
    REQUIRE(pika_generate(c, tok, prompt, 5, &o, on_piece, &c3, &st) == 0, "%s", pika_last_error());
    CHECK(!strcmp(st.finish, "cancelled") && c3.calls == 2 && st.n_ids < full.n_ids, "cancel: %s after %d", st.finish, c3.calls);
    free(c3.b.s);
    pika_gen_result_free(&st);
    /* max_tokens 0: nothing */
    o.max_tokens = 0;
    REQUIRE(pika_generate(c, tok, prompt, 5, &o, NULL, NULL, &st) == 0, "%s", pika_last_error());
    CHECK(st.n_ids == 0 && st.len == 0 && st.text && !strcmp(st.finish, "length"), "max 0");
    pika_gen_result_free(&st);
    pika_gen_result_free(&full);
    pika_gen_result_free(&r);
    pika_ctx_free(c);
    pika_tokenizer_free(tok);
    pika_model_free(m);
}

/* Seeded sampling through the recipe equals the reference loop with pika sample's seeds, and
 * decoding from a reused prompt KV cache equals a fresh prefill. */
static void test_seeded_like_sample(void) {
    REQUIRE_SHARED(path, "fixtures/models/qwen2-tiny.gguf");
    pika_model *m = pika_model_load(path);
    REQUIRE(m, "%s", pika_last_error());
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_ctx *c = pika_ctx_new(m, 1);
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    pika_prompt_recipe *rec = pika_prompt_recipe_new(pika_model_gguf(m), tok, &po);
    REQUIRE(rec, "%s", pika_last_error());
    pika_prompt p;
    REQUIRE(pika_prompt_build(rec, "What is 2+2?", &p) == 0, "%s", pika_last_error());
    const int V = pika_model_hparams(m)->n_vocab;
    float *logits = malloc(sizeof(float) * (size_t)V);
    pika_forward_req req = {0, NULL, 0, NULL, NULL, logits};
    pika_ctx_reset(c);
    REQUIRE(pika_forward(c, p.ids, p.n_ids, &req) == 0, "%s", pika_last_error());
    pika_gen_opts o;
    pika_gen_opts_default(&o);
    o.sampling.temperature = 0.9f;
    o.sampling.top_k = 40;
    o.sampling.top_p = 0.95f;
    o.max_tokens = 12;
    int32_t ref[12];
    for (int s = 0; s < 3; s++) {
        pika_gen_opts g = o;
        g.sampling.seed = pika_rollout_seed(7, "q1", s);
        pika_gen_result r;
        REQUIRE(pika_generate_from(c, tok, p.n_ids, logits, &g, NULL, NULL, &r) == 0, "%s", pika_last_error());
        pika_gen_result fresh;
        pika_ctx *c2 = pika_ctx_new(m, 1);
        REQUIRE(pika_generate(c2, tok, p.ids, p.n_ids, &g, NULL, NULL, &fresh) == 0, "%s", pika_last_error());
        int nr = reference_loop(c2, tok, p.ids, p.n_ids, &g.sampling, 12, ref);
        CHECK(nr == r.n_ids && !memcmp(ref, r.ids, sizeof(int32_t) * (size_t)nr), "sample %d: differs from the reference loop", s);
        CHECK(fresh.n_ids == r.n_ids && !memcmp(fresh.ids, r.ids, sizeof(int32_t) * (size_t)r.n_ids) && !strcmp(fresh.text, r.text),
              "sample %d: reused KV cache differs from a fresh prefill", s);
        pika_gen_result_free(&r);
        pika_gen_result_free(&fresh);
        pika_ctx_free(c2);
    }
    CHECK(pika_rollout_seed(7, "q1", 0) != pika_rollout_seed(7, "q1", 1) && pika_rollout_seed(7, "q1", 0) != pika_rollout_seed(7, "q2", 0),
          "per-(question, sample) seeds");
    free(logits);
    pika_prompt_free(&p);
    pika_prompt_recipe_free(rec);
    pika_ctx_free(c);
    pika_tokenizer_free(tok);
    pika_model_free(m);
}

static void expect_bad(const char *flag, const char *value, const char *msg) {
    pika_gen_opts o;
    pika_gen_opts_default(&o);
    int rc = pika_gen_parse_flag(&o, flag, value);
    if (rc == 1) rc = pika_gen_opts_validate(&o);
    CHECK(rc < 0 && strstr(pika_last_error(), msg), "%s %s: rc %d, error '%s' (want '%s')", flag, value, rc,
          pika_last_error(), msg);
}

static void test_option_parser(void) {
    expect_bad("--temperature", "nan", "temperature must be a finite number >= 0");
    expect_bad("--temperature", "-0.5", "temperature must be a finite number >= 0");
    expect_bad("--temperature", "inf", "temperature must be a finite number >= 0");
    expect_bad("--temp", "hot", "--temp must be a number, got 'hot'");
    expect_bad("--top-p", "nan", "top-p must be a number in (0, 1]");
    expect_bad("--top-p", "0", "top-p must be a number in (0, 1]");
    expect_bad("--top-p", "1.5", "top-p must be a number in (0, 1]");
    expect_bad("--min-p", "nan", "min-p must be a number in [0, 1]");
    expect_bad("--min-p", "-0.1", "min-p must be a number in [0, 1]");
    expect_bad("--top-k", "-4", "top-k must be an integer >= 0");
    expect_bad("--top-k", "1.5", "--top-k must be an integer, got '1.5'");
    expect_bad("--seed", "-1", "--seed must be an integer in [0, 2^64)");
    expect_bad("--seed", "x", "--seed must be an integer");
    expect_bad("--max-tokens", "-1", "max tokens must be an integer >= 0");
    expect_bad("-n", "ten", "-n must be an integer");
    expect_bad("--stop", "", "stop string must not be empty");
    expect_bad("--temperature", NULL, "needs a value");
    pika_gen_opts o;
    pika_gen_opts_default(&o);
    CHECK(pika_gen_parse_flag(&o, "--out", "x") == 0, "not a generation flag");
    CHECK(pika_gen_parse_flag(&o, "--temperature", "0") == 1 && pika_gen_parse_flag(&o, "--top-k", "0") == 1 &&
              pika_gen_parse_flag(&o, "--top-p", "1") == 1 && pika_gen_parse_flag(&o, "--min-p", "0") == 1 &&
              pika_gen_parse_flag(&o, "--seed", "18446744073709551615") == 1 && pika_gen_parse_flag(&o, "--stop", "\n\n") == 1 &&
              pika_gen_parse_flag(&o, "--max-tokens", "0") == 1 && pika_gen_opts_validate(&o) == 0,
          "good values: %s", pika_last_error());
    CHECK(o.sampling.seed == 18446744073709551615ull && o.n_stop == 1 && o.max_tokens == 0, "parsed values");
    cJSON *j = pika_gen_opts_json(&o);
    char *s = cJSON_PrintUnformatted(j);
    CHECK(!strcmp(s, "{\"temperature\":0,\"top_k\":0,\"top_p\":1,\"min_p\":0,\"seed\":\"18446744073709551615\",\"max_tokens\":0,"
                     "\"stop\":[\"\\n\\n\"],\"ignore_eog\":false}"), "json %s", s);
    free(s);
    cJSON_Delete(j);
    pika_gen_opts_default(&o);
    o.sampling.temperature = 0.9f;
    j = pika_gen_opts_json(&o);
    s = cJSON_PrintUnformatted(j);
    CHECK(strstr(s, "\"temperature\":0.9,"), "floats recorded as typed: %s", s);
    free(s);
    cJSON_Delete(j);
    for (int i = 0; i < PIKA_GEN_MAX_STOP; i++) pika_gen_parse_flag(&o, "--stop", "x");
    CHECK(pika_gen_parse_flag(&o, "--stop", "x") < 0 && strstr(pika_last_error(), "at most"), "too many stops");
    /* an OpenAI-style request goes through the same checks */
    cJSON *req = cJSON_Parse("{\"temperature\":0.5,\"top_p\":0.9,\"top_k\":5,\"min_p\":0.1,\"seed\":9,\"max_tokens\":7,"
                             "\"stop\":[\"\\n\",\"END\"]}");
    pika_gen_opts_default(&o);
    CHECK(pika_gen_opts_from_json(&o, req) == 0 && o.sampling.temperature == 0.5f && o.sampling.top_k == 5 &&
              o.sampling.seed == 9 && o.max_tokens == 7 && o.n_stop == 2 && !strcmp(o.stop[1], "END"),
          "request: %s", pika_last_error());
    cJSON_Delete(req);
    const char *bad_req[][2] = {{"{\"temperature\":-1}", "temperature"}, {"{\"temperature\":\"hot\"}", "temperature must be a number"},
                                {"{\"top_p\":0}", "top-p"}, {"{\"min_p\":2}", "min-p"}, {"{\"top_k\":-4}", "top-k"},
                                {"{\"top_k\":1.5}", "top_k must be an integer"}, {"{\"seed\":-1}", "seed"},
                                {"{\"max_tokens\":-1}", "max tokens"}, {"{\"stop\":[1]}", "stop must be"},
                                {"{\"stop\":\"\"}", "stop string must not be empty"}, {"[]", "JSON object"}};
    for (size_t i = 0; i < sizeof bad_req / sizeof bad_req[0]; i++) {
        req = cJSON_Parse(bad_req[i][0]);
        pika_gen_opts_default(&o);
        CHECK(pika_gen_opts_from_json(&o, req) < 0 && strstr(pika_last_error(), bad_req[i][1]), "request %s: '%s'", bad_req[i][0],
              pika_last_error());
        cJSON_Delete(req);
    }
    /* the sampler itself: NaN temperature is greedy, never garbage */
    pika_sampling sp;
    pika_sampling_default(&sp);
    sp.temperature = NAN;
    CHECK(pika_sampling_validate(&sp) < 0, "validate NaN");
    float logits[4] = {0.1f, 3.0f, 0.2f, 0.3f};
    pika_sampler *smp = pika_sampler_new(&sp, 4);
    CHECK(pika_sample(smp, logits) == 1, "NaN temperature samples greedily");
    pika_sampler_free(smp);
}

/* The CLI: pika generate with the shared parser, --stop, and clear errors for bad values. */
static void test_cli_generate(void) {
    REQUIRE_SHARED(path, "fixtures/models/stories260K.gguf");
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("%s not built", test_pika_bin());
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt 'Once upon a time' -n 20 --temperature 0", test_pika_bin(), path);
    char *full = test_run(cmd, &st);
    REQUIRE(st == 0 && strlen(full) > 12, "generate: %d '%s'", st, full);
    char stop[5];
    memcpy(stop, full + 8, 4);
    stop[4] = 0;
    size_t first = (size_t)(strstr(full, stop) - full);
    snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt 'Once upon a time' -n 20 --temperature 0 --stop '%s'",
             test_pika_bin(), path, stop);
    char *cut = test_run(cmd, &st);
    CHECK(st == 0 && strlen(cut) == first + 1 && !strncmp(cut, full, first) && cut[first] == '\n', "--stop '%s': '%s' of '%s'",
          stop, cut, full);
    free(cut);
    free(full);
    const char *bad[][2] = {{"--temperature nan", "temperature"}, {"--temperature -1", "temperature"},
                            {"--top-p nan", "top-p"}, {"--min-p nan", "min-p"}, {"--top-k -4", "top-k"},
                            {"--seed -3", "--seed"}, {"-n -2", "max tokens"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s generate --model %s --prompt 'Once' %s 2>&1", test_pika_bin(), path, bad[i][0]);
        char *out = test_run(cmd, &st);
        CHECK(st == 2 && strstr(out, bad[i][1]) && !strchr(strchr(out, '\n') ? strchr(out, '\n') + 1 : "", '\n'),
              "%s: exit %d, '%s'", bad[i][0], st, out);
        free(out);
    }
}

int main(void) {
    RUN(test_option_parser);
    RUN(test_greedy_stories);
    RUN(test_seeded_like_sample);
    RUN(test_cli_generate);
    return test_summary("generate");
}
