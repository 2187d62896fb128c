/* test_extract.c — `pika extract`: EOI activations of a dataset's chat prompts into an activation
 * store, equal to a direct forward pass; resume after a partial / killed run; provenance checks;
 * bad input. Uses the qwen2-tiny fixture (Qwen2 ChatML template + vocab) and stories260K (no template). */
#include <unistd.h>

#include "pika/acts.h"
#include "pika/extract.h"
#include "pika/gemm.h"
#include "pika/model.h"
#include "pika/npy.h"
#include "pika/tokenizer.h"
#include "pika/prompt.h"
#include "pika/rollout.h"
#include "test.h"

static const char *QUESTIONS =
    "{\"id\":\"q1\",\"problem\":\"What is 2+2?\"}\n"
    "{\"id\":\"q2\",\"problem\":\"Compute 3*7, then add 5.\"}\n"
    "{\"id\":\"q3\",\"problem\":\"Solve x+1=3 for x.\"}\n"
    "{\"id\":\"q4\",\"problem\":\"How many primes are below 20?\"}\n";

static const char *write_questions(const char *dir) {
    static char p[512];
    snprintf(p, sizeof p, "%s/q.jsonl", dir);
    FILE *f = fopen(p, "w");
    fputs(QUESTIONS, f);
    fclose(f);
    return p;
}

static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s extract %s 2>/dev/null", test_pika_bin(), args);
    int st;
    free(test_run(cmd, &st));
    return st;
}

/* max |a - b| over layer li of two stores (same shape) */
static double store_diff(const char *d1, const char *d2) {
    pika_acts a, b;
    if (pika_acts_open(&a, d1) || pika_acts_open(&b, d2)) return 1e9;
    double worst = a.n == b.n ? 0 : 1e9;
    size_t m = (size_t)a.n * a.d_model;
    double *x = malloc(sizeof(double) * m), *y = malloc(sizeof(double) * m);
    for (int li = 0; li < a.n_layers && worst < 1e9; li++)
        for (int pi = 0; pi < a.n_pos; pi++) {
            if (pika_acts_read(&a, li, pi, NULL, a.n, x) || pika_acts_read(&b, li, pi, NULL, b.n, y)) { worst = 1e9; break; }
            for (size_t i = 0; i < m; i++) worst = fmax(worst, fabs(x[i] - y[i]));
        }
    free(x); free(y);
    pika_acts_close(&a);
    pika_acts_close(&b);
    return worst;
}

static void test_extract_matches_forward(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[2048];
    snprintf(args, sizeof args, "--model %s --data %s --out %s/acts --dtype f32 --threads 2", mpath, q, dir);
    REQUIRE(run(args) == 0, "pika extract failed");
    char sdir[1024];
    snprintf(sdir, sizeof sdir, "%s/acts", dir);
    pika_acts a;
    REQUIRE(pika_acts_open(&a, sdir) == 0, "%s", pika_last_error());
    CHECK(a.n == 4 && a.n_layers == 4 && a.n_pos == 5 && a.d_model == 64, "store shape n=%lld layers=%d pos=%d",
          (long long)a.n, a.n_layers, a.n_pos);
    CHECK(a.positions[0] == -5 && a.positions[4] == -1, "EOI positions");
    CHECK(!strcmp(a.ids[1], "q2"), "ids order");
    CHECK(strstr(a.model_json, "\"qwen2-tiny.gguf\"") && strstr(a.prompt_json, "\"n_eoi\":5"), "provenance %s %s",
          a.model_json, a.prompt_json);
    /* direct forward of q2's prompt: the last 5 positions at layer 2 */
    pika_model *m = pika_model_load(mpath);
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    REQUIRE(m && tok, "%s", pika_last_error());
    pika_prompt_opts o;
    pika_prompt_opts_default(&o);
    pika_prompt_recipe *rec = pika_prompt_recipe_new(pika_model_gguf(m), tok, &o);
    REQUIRE(rec, "%s", pika_last_error());
    pika_prompt pr;
    REQUIRE(pika_prompt_build(rec, "Compute 3*7, then add 5.", &pr) == 0, "%s", pika_last_error());
    int32_t *ids = pr.ids;
    int n = pr.n_ids, n_eoi = pr.n_eoi;
    CHECK(n_eoi == 5, "n_eoi %d", n_eoi);
    CHECK(ids[n - 5] == 151645 && ids[n - 3] == 151644, "EOI tokens are <|im_end|> \\n <|im_start|> assistant \\n");
    pika_ctx *c = pika_ctx_new(m, 1);
    float h[5 * 64];
    int layer = 2, pos[5] = {-5, -4, -3, -2, -1};
    pika_forward_req req = {1, &layer, 5, pos, h, NULL};
    REQUIRE(pika_forward(c, ids, n, &req) == 0, "%s", pika_last_error());
    double x[4 * 64], worst = 0;
    for (int pi = 0; pi < 5; pi++) {
        int64_t row = 1;
        REQUIRE(pika_acts_read(&a, 2, pi, &row, 1, x) == 0, "%s", pika_last_error());
        for (int e = 0; e < 64; e++) worst = fmax(worst, fabs(x[e] - h[pi * 64 + e]));
    }
    CHECK(worst < 1e-5, "store row differs from a direct forward pass by %.3g", worst);
    pika_prompt_free(&pr);
    pika_prompt_recipe_free(rec);
    pika_ctx_free(c);
    pika_tokenizer_free(tok);
    pika_model_free(m);
    pika_acts_close(&a);
}

static void test_resume(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[2048];
    snprintf(args, sizeof args, "--model %s --data %s --out %s/full --layers 1,3", mpath, q, dir);
    REQUIRE(run(args) == 0, "full run failed");
    /* a run that stopped after 2 questions, then resumed */
    snprintf(args, sizeof args, "--model %s --data %s --out %s/part --layers 1,3 --limit 2", mpath, q, dir);
    REQUIRE(run(args) == 0, "partial run failed");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/part --layers 1,3 --resume", mpath, q, dir);
    REQUIRE(run(args) == 0, "resume failed");
    char d1[1024], d2[1024];
    snprintf(d1, sizeof d1, "%s/full", dir);
    snprintf(d2, sizeof d2, "%s/part", dir);
    CHECK(store_diff(d1, d2) == 0, "resumed store differs from a fresh one");
    /* a killed run: last row half-written in one layer file, ids.txt ahead of it */
    char p[1024];
    snprintf(p, sizeof p, "%s/part/layer_03.npy", dir);
    FILE *f = fopen(p, "r+b");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fclose(f);
    CHECK(truncate(p, sz - 100) == 0, "truncate");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/part --layers 1,3 --resume", mpath, q, dir);
    REQUIRE(run(args) == 0, "resume after kill failed");
    CHECK(store_diff(d1, d2) == 0, "store resumed after a kill differs from a fresh one");
    /* resuming with another model or another prompt format is refused */
    const char *other = test_shared_path("fixtures/models/qwen3-tiny.gguf");
    if (other) {
        snprintf(args, sizeof args, "--model %s --data %s --out %s/part --layers 1,3 --resume", other, q, dir);
        CHECK(run(args) == 2, "resume with a different model accepted");
    }
    snprintf(args, sizeof args, "--model %s --data %s --out %s/part --layers 1,3 --resume --suffix ' Answer briefly.'", mpath, q, dir);
    CHECK(run(args) == 2, "resume with a different prompt suffix accepted");
    CHECK(store_diff(d1, d2) == 0, "a refused resume damaged the store");
}

/* --prefill bf16: where the CPU has AVX512_BF16, the store records it, stays close to the exact store
 * (hidden-state rounding only), and a resume with the other precision is refused both ways; elsewhere
 * the flag is refused with a clear error. A bad value is a usage error either way. */
static void test_prefill_bf16(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[2048];
    snprintf(args, sizeof args, "--model %s --data %s --out %s/x --prefill half", mpath, q, dir);
    CHECK(run(args) == 2, "--prefill half accepted");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/bf --layers 1,3 --dtype f32 --prefill bf16", mpath, q, dir);
    int st = run(args);
    if (!pika_simd_has_avx512_bf16()) {
        CHECK(st == 2, "--prefill bf16 without AVX512_BF16: status %d, want 2", st);
        printf("note: no AVX512_BF16 here: only the refusal of --prefill bf16 is checked\n");
        return;
    }
    REQUIRE(st == 0, "bf16 extract failed");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/ex --layers 1,3 --dtype f32", mpath, q, dir);
    REQUIRE(run(args) == 0, "exact extract failed");
    char d1[1024], d2[1024], path[1100];
    snprintf(d1, sizeof d1, "%s/bf", dir);
    snprintf(d2, sizeof d2, "%s/ex", dir);
    double d = store_diff(d1, d2);
    CHECK(d > 0 && d < 0.5, "bf16 vs exact store: max |diff| %g (want small, nonzero)", d);
    snprintf(path, sizeof path, "%s/meta.json", d1);
    char *meta = pika_read_file(path, NULL);
    CHECK(meta && strstr(meta, "\"prefill\"") && strstr(meta, "bf16"), "meta.json does not record the BF16 prefill");
    free(meta);
    snprintf(path, sizeof path, "%s/meta.json", d2);
    meta = pika_read_file(path, NULL);
    CHECK(meta && !strstr(meta, "\"prefill\""), "an exact store records a prefill key (older stores have none)");
    free(meta);
    snprintf(args, sizeof args, "--model %s --data %s --out %s/bf --layers 1,3 --dtype f32 --resume", mpath, q, dir);
    CHECK(run(args) == 2, "exact resume into a bf16 store accepted");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/ex --layers 1,3 --dtype f32 --resume --prefill bf16", mpath, q, dir);
    CHECK(run(args) == 2, "bf16 resume into an exact store accepted");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/bf --layers 1,3 --dtype f32 --resume --prefill bf16", mpath, q, dir);
    CHECK(run(args) == 0, "bf16 resume into its own store refused");
    /* sample records it too: a resume with the other precision is refused */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --out %s/r.jsonl -k 1 --max-tokens 3 --temperature 0 --limit 2 --prefill bf16 2>/dev/null",
             test_pika_bin(), mpath, q, dir);
    free(test_run(cmd, &st));
    CHECK(st == 0, "bf16 sample failed (%d)", st);
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --out %s/r.jsonl -k 1 --max-tokens 3 --temperature 0 --resume 2>&1",
             test_pika_bin(), mpath, q, dir);
    char *o = test_run(cmd, &st);
    CHECK(st == 2 && strstr(o, "prefill"), "exact resume into bf16 rollouts: status %d: %s", st, o);
    free(o);
}

/* --prefill q8 (8-bit integer products for quantized weights): where the CPU has AVX2, on a Q8_0
 * model the store differs from the exact one by activation rounding only, records the mode, and a resume
 * with another precision is refused; elsewhere the flag is refused with a clear error. */
static void test_prefill_q8(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/llama-q-Q8_0.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[2048], d1[1024], d2[1024], path[1100];
    snprintf(args, sizeof args, "--model %s --data %s --out %s/q8 --no-template --layers 1,2 --dtype f32 --prefill q8", mpath, q, dir);
    int st = run(args);
    if (!pika_prefill_available(PIKA_PREFILL_Q8)) {
        CHECK(st == 2, "--prefill q8 without AVX2: status %d, want 2", st);
        printf("note: no AVX2 at this level: only the refusal of --prefill q8 is checked\n");
        return;
    }
    REQUIRE(st == 0, "q8 extract failed");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/ex --no-template --layers 1,2 --dtype f32", mpath, q, dir);
    REQUIRE(run(args) == 0, "exact extract failed");
    snprintf(d1, sizeof d1, "%s/q8", dir);
    snprintf(d2, sizeof d2, "%s/ex", dir);
    double d = store_diff(d1, d2);
    CHECK(d > 0 && d < 1.0, "q8 vs exact store: max |diff| %g (want small, nonzero)", d);
    snprintf(path, sizeof path, "%s/meta.json", d1);
    char *meta = pika_read_file(path, NULL);
    CHECK(meta && strstr(meta, "\"prefill\":\t\"q8\""), "meta.json does not record the q8 prefill: %s", meta ? meta : "");
    free(meta);
    snprintf(args, sizeof args, "--model %s --data %s --out %s/q8 --no-template --layers 1,2 --dtype f32 --resume", mpath, q, dir);
    CHECK(run(args) == 2, "exact resume into a q8 store accepted");
    if (pika_prefill_available(PIKA_PREFILL_BF16)) {
        snprintf(args, sizeof args, "--model %s --data %s --out %s/q8 --no-template --layers 1,2 --dtype f32 --resume --prefill bf16",
                 mpath, q, dir);
        CHECK(run(args) == 2, "bf16 resume into a q8 store accepted");
    }
    snprintf(args, sizeof args, "--model %s --data %s --out %s/q8 --no-template --layers 1,2 --dtype f32 --resume --prefill q8", mpath, q, dir);
    CHECK(run(args) == 0, "q8 resume into its own store refused");
}

static void test_no_template_and_errors(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/stories260K.gguf");
    const char *dir = test_tmpdir();
    char p[1024], args[2048], cmd[4096];
    snprintf(p, sizeof p, "%s/s.jsonl", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"id\":\"s1\",\"problem\":\"Once upon a time\"}\n", f);
    fclose(f);
    /* stories260K has no chat template: without --no-template it is a clear error */
    snprintf(args, sizeof args, "--model %s --data %s --out %s/a", mpath, p, dir);
    CHECK(run(args) == 2, "missing template accepted");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/a --no-template --dtype f32", mpath, p, dir);
    REQUIRE(run(args) == 0, "--no-template failed");
    snprintf(p, sizeof p, "%s/a", dir);
    pika_acts a;
    REQUIRE(pika_acts_open(&a, p) == 0, "%s", pika_last_error());
    CHECK(a.n_pos == 1 && a.positions[0] == -1 && a.n_layers == 6, "raw prompt: one position, all layers");
    /* reference: hidden after block 5 at the last token of [BOS] Once upon a time */
    const char *ref = test_shared_path("fixtures/models/stories260K/short.hidden.npy");
    if (ref) {
        float *r = pika_npy_load_f32(ref, NULL, NULL);
        double x[64], worst = 0;
        REQUIRE(pika_acts_read(&a, 5, 0, NULL, 1, x) == 0, "%s", pika_last_error());
        for (int e = 0; e < 64; e++) worst = fmax(worst, fabs(x[e] - r[(5 * 5 + 4) * 64 + e]));
        CHECK(worst < 1e-4, "raw prompt activations differ from llama.cpp's by %.3g", worst);
        free(r);
    }
    pika_acts_close(&a);
    /* malformed JSONL: exit 2 and the line number */
    snprintf(p, sizeof p, "%s/bad.jsonl", dir);
    f = fopen(p, "w");
    fputs("{\"id\":\"s1\",\"problem\":\"ok\"}\n{\"id\":\"s2\",\"problem\":\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s extract --model %s --data %s --out %s/b --no-template 2>&1", test_pika_bin(), mpath, p, dir);
    int st;
    char *out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "2"), "malformed JSONL: exit %d '%s'", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s extract --model %s --data %s --out %s/c --no-template --positions 3 2>&1", test_pika_bin(), mpath, p, dir);
    out = test_run(cmd, &st);
    CHECK(st == 2, "positive position accepted");
    free(out);
}

static char *slurp(const char *path) {
    char *s = pika_read_file(path, NULL);
    return s ? s : strdup("");
}

/* pika sample: seeded answers; a killed-and-resumed run writes what an uninterrupted one writes. */
static void test_sample_resume(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char cmd[4096];
    int st;
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --out %s/full.jsonl -k 3 --max-tokens 6 --temperature 0.9 --seed 5 2>/dev/null",
             test_pika_bin(), mpath, q, dir);
    free(test_run(cmd, &st));
    REQUIRE(st == 0, "sample failed");
    char p[1024];
    snprintf(p, sizeof p, "%s/full.jsonl", dir);
    char *full = slurp(p);
    int lines = 0;
    for (char *c = full; *c; c++) lines += *c == '\n';
    CHECK(lines == 12, "expected 4 questions x 3 samples, got %d lines", lines);
    CHECK(pika_utf8_valid(full, strlen(full)), "rollouts must be valid UTF-8");
    CHECK(strstr(full, "\"id\":\"q1\",\"sample\":2") && strstr(full, "\"tokens_out\":6") && strstr(full, "\"finish\":\"length\""),
          "rollout fields: %.300s", full);
    /* killed run: keep the first 5 lines and half of the 6th, then resume */
    char *cut = full;
    for (int k = 0; k < 5; k++) cut = strchr(cut, '\n') + 1;
    snprintf(p, sizeof p, "%s/part.jsonl", dir);
    FILE *f = fopen(p, "w");
    fwrite(full, 1, (size_t)(cut - full) + 10, f);
    fclose(f);
    /* a killed run leaves its provenance sidecar (written before the first row) */
    char mp[1024], *meta;
    snprintf(mp, sizeof mp, "%s/full.jsonl.meta.json", dir);
    REQUIRE((meta = pika_read_file(mp, NULL)) != NULL, "no provenance sidecar %s", mp);
    snprintf(mp, sizeof mp, "%s/part.jsonl.meta.json", dir);
    REQUIRE(pika_write_file_atomic(mp, meta, strlen(meta)) == 0, "write %s", mp);
    free(meta);
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --out %s/part.jsonl -k 3 --max-tokens 6 --temperature 0.9 --seed 5 --resume 2>/dev/null",
             test_pika_bin(), mpath, q, dir);
    free(test_run(cmd, &st));
    REQUIRE(st == 0, "resume failed");
    char *part = slurp(p);
    CHECK(!strcmp(full, part), "resumed rollouts differ from an uninterrupted run");
    free(part);
    free(full);
    /* greedy: every sample is the same answer */
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --limit 1 --out %s/g.jsonl -k 2 --max-tokens 5 --temperature 0 2>/dev/null",
             test_pika_bin(), mpath, q, dir);
    free(test_run(cmd, &st));
    snprintf(p, sizeof p, "%s/g.jsonl", dir);
    char *g = slurp(p);
    char *l2 = strchr(g, '\n');
    REQUIRE(l2, "no output");
    *l2++ = 0;
    char *t1 = strstr(g, "\"text\""), *t2 = strstr(l2, "\"text\"");
    CHECK(t1 && t2 && !strncmp(t1, t2, (size_t)(strstr(t1, "\"tokens_in\"") - t1)), "greedy samples differ: %s | %s", g, l2);
    free(g);
}

/* Sampled text cut mid-character must still be valid UTF-8 in the rollouts (U+FFFD replaces bytes). */
static void test_utf8_repair(void) {
    size_t n;
    char *r = pika_utf8_repair("a\xc3\xa9" "b\xe2\x82", 6, &n); /* "aéb" + a truncated 3-byte char */
    CHECK(n == 10 && !memcmp(r, "a\xc3\xa9" "b\xef\xbf\xbd\xef\xbf\xbd", 10), "repair of a truncated char");
    CHECK(pika_utf8_valid(r, n), "repaired text is valid");
    free(r);
    r = pika_utf8_repair("\xed\xa0\x80x", 4, &n); /* a UTF-16 surrogate is not UTF-8 */
    CHECK(n == 10 && r[9] == 'x' && pika_utf8_valid(r, n), "surrogate bytes replaced");
    free(r);
    r = pika_utf8_repair("", 0, &n);
    CHECK(n == 0 && r && r[0] == 0, "empty");
    free(r);
}

/* Run `pika ARGS` capturing stdout+stderr. */
static char *run_all(const char *args, int *st) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", test_pika_bin(), args);
    return test_run(cmd, st);
}

static int count_lines(const char *path) {
    char *t = pika_read_file(path, NULL);
    int n = 0;
    for (char *c = t; c && *c; c++) n += *c == '\n';
    free(t);
    return t ? n : -1;
}

/* Issue 10.2 and 10.12: --help shows a suffix with a real newline ($'\n...'), --suffix-file, and
 * $PIKA_SHARED; a real newline reaches the prompt; a literal backslash-n draws a note. */
static void test_suffix_newline(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    int st;
    const char *cmds[] = {"extract --help", "sample --help"};
    for (int i = 0; i < 2; i++) {
        char *h = run_all(cmds[i], &st);
        CHECK(st == 0 && strstr(h, "--suffix $'\\nPlease reason step by step") && strstr(h, "--suffix-file") &&
                  strstr(h, "PIKA_SHARED") && !strstr(h, "\"\\nPlease"),
              "%s shows the shell form of a newline and $PIKA_SHARED: %s", cmds[i], h);
        free(h);
    }
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char sf[512], args[4096];
    snprintf(sf, sizeof sf, "%s/suffix.txt", dir);
    const char *suf = "\nPlease reason step by step, and put your final answer within \\boxed{}.\n";
    REQUIRE(pika_write_file_atomic(sf, suf, strlen(suf)) == 0, "write");
    /* a real newline (what $'\n...' gives in bash; here inside plain single quotes, for sh) and
     * --suffix-file give the same store */
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/a --layers 1 --limit 1 --suffix '\nPlease reason step by step, and put your final answer within \\boxed{}.'", mpath, q, dir);
    char *out = run_all(args, &st);
    CHECK(st == 0 && !strstr(out, "note:"), "real newline: %d %s", st, out);
    free(out);
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/b --layers 1 --limit 1 --suffix-file %s", mpath, q, dir, sf);
    out = run_all(args, &st);
    CHECK(st == 0, "--suffix-file: %d %s", st, out);
    free(out);
    char d1[1024], d2[1024];
    snprintf(d1, sizeof d1, "%s/a", dir);
    snprintf(d2, sizeof d2, "%s/b", dir);
    pika_acts a;
    REQUIRE(pika_acts_open(&a, d1) == 0, "%s", pika_last_error());
    CHECK(strstr(a.prompt_json, "\"user_suffix\":\"\\nPlease reason step by step, and put your final answer within \\\\boxed{}.\""),
          "the suffix starts with a real newline: %s", a.prompt_json);
    pika_acts_close(&a);
    CHECK(store_diff(d1, d2) == 0, "--suffix-file and --suffix $'...' differ");
    /* the mistake from the old docs: a literal backslash-n */
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/c --layers 1 --limit 1 --suffix '\\nPlease reason.'", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 0 && strstr(out, "note: --suffix contains a backslash followed by 'n'") && strstr(out, "$'\\n"), "literal \\n note: %s", out);
    free(out);
}

/* Issue 10.5 and 10.6: finished work is never silently overwritten; error messages mention stored
 * rows only when there are some, with no doubled prefix. */
static void test_no_silent_overwrite(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[4096], p[1024];
    int st;
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/acts --layers 1,2", mpath, q, dir);
    char *out = run_all(args, &st);
    REQUIRE(st == 0, "extract: %s", out);
    free(out);
    /* again without --resume: refused, store intact, message names both ways */
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/acts --layers 1,2 --limit 2", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 2 && strstr(out, "already holds 4 rows") && strstr(out, "--resume") && strstr(out, "--force") &&
              !strstr(out, "safely stored") && !strstr(out, "extract: extract:"),
          "overwrite refused: %s", out);
    free(out);
    snprintf(p, sizeof p, "%s/acts/ids.txt", dir);
    CHECK(count_lines(p) == 4, "the store was damaged");
    /* a refused resume (other layout) does not say "rerun with --resume" */
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/acts --layers 3 --resume", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 2 && strstr(out, "layers") && !strstr(out, "safely stored") && !strstr(out, "rerun with --resume"),
          "refused resume: %s", out);
    free(out);
    CHECK(count_lines(p) == 4, "a refused resume damaged the store");
    /* --force overwrites */
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/acts --layers 1,2 --limit 2 --force", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 0 && count_lines(p) == 2, "--force: %d %s", st, out);
    free(out);
    /* a bad flag: one line, no note about stored rows */
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/acts --dtype f8", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 2 && !strstr(out, "safely stored") && strchr(out, '\n') == out + strlen(out) - 1, "bad flag: %s", out);
    free(out);
    snprintf(args, sizeof args, "extract --model %s --data %s --out %s/acts --resume --force", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 2 && strstr(out, "exclusive"), "--resume --force: %s", out);
    free(out);
    /* pika sample: the same rule */
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s/r.jsonl --max-tokens 3", mpath, q, dir);
    out = run_all(args, &st);
    REQUIRE(st == 0, "sample: %s", out);
    free(out);
    snprintf(p, sizeof p, "%s/r.jsonl", dir);
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s/r.jsonl --max-tokens 3 --limit 1", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 2 && strstr(out, "--resume") && strstr(out, "--force") && !strstr(out, "are kept") && count_lines(p) == 4,
          "sample overwrite refused: %s", out);
    free(out);
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s/r.jsonl --max-tokens 3 --limit 1 --force", mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 0 && count_lines(p) == 1, "sample --force: %s", out);
    free(out);
}

/* Issue 10.7: empty inputs are an error for sample, as for extract (and say so once). */
static void test_empty_input(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    char e[512], args[4096];
    snprintf(e, sizeof e, "%s/empty.jsonl", dir);
    REQUIRE(pika_write_file_atomic(e, "", 0) == 0, "write");
    int st;
    const char *cmds[] = {"sample", "extract"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "%s --model %s --data %s --out %s/o%d", cmds[i], mpath, e, dir, i);
        char *out = run_all(args, &st);
        char dbl[64];
        snprintf(dbl, sizeof dbl, "%s: %s:", cmds[i], cmds[i]);
        CHECK(st == 2 && (strstr(out, "no questions") || strstr(out, "empty")) && !strstr(out, dbl) && !strstr(out, "safely stored"),
              "%s on empty data: exit %d '%s'", cmds[i], st, out);
        free(out);
    }
}

/* Issue 10.3: a resume is refused unless model, prompt recipe and sampling match the sidecar. */
static void test_sample_provenance(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[4096], p[1024];
    int st;
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s/r.jsonl -k 2 --max-tokens 3 --temperature 0.7 --seed 3 --limit 2",
             mpath, q, dir);
    char *out = run_all(args, &st);
    REQUIRE(st == 0, "sample: %s", out);
    free(out);
    snprintf(p, sizeof p, "%s/r.jsonl.meta.json", dir);
    char *meta = pika_read_file(p, NULL);
    CHECK(meta && strstr(meta, "\"fingerprint\"") && strstr(meta, "\"template_fingerprint\"") && strstr(meta, "\"temperature\":\t0.7") &&
              strstr(meta, "\"seed\":\t\"3\"") && strstr(meta, "\"k\":\t2"),
          "sidecar: %s", meta ? meta : "(none)");
    free(meta);
    snprintf(p, sizeof p, "%s/r.jsonl", dir);
    const char *other = test_shared_path("fixtures/models/qwen3-tiny.gguf");
    struct { const char *extra; const char *why; } bad[] = {
        {"-k 2 --max-tokens 3 --temperature 1 --seed 3", "temperature"},
        {"-k 2 --max-tokens 3 --temperature 0.7 --seed 4", "seed"},
        {"-k 2 --max-tokens 5 --temperature 0.7 --seed 3", "max_tokens"},
        {"-k 2 --max-tokens 3 --temperature 0.7 --seed 3 --suffix ' Be brief.'", "prompt"},
        {"-k 2 --max-tokens 3 --temperature 0.7 --seed 3 --model-name other", "another model"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "sample --model %s --data %s --out %s/r.jsonl --resume %s", mpath, q, dir, bad[i].extra);
        out = run_all(args, &st);
        CHECK(st == 2 && strstr(out, bad[i].why) && strstr(out, "cannot resume") && !strstr(out, "are kept"),
              "mismatched resume (%s) accepted or unclear: %s", bad[i].extra, out);
        CHECK(count_lines(p) == 4, "a refused resume changed the rollouts");
        free(out);
    }
    if (other) {
        snprintf(args, sizeof args, "sample --model %s --data %s --out %s/r.jsonl --resume -k 2 --max-tokens 3 --temperature 0.7 --seed 3 --model-name qwen2-tiny.gguf",
                 other, q, dir);
        out = run_all(args, &st);
        CHECK(st == 2 && strstr(out, "another model") && strstr(out, "fingerprint"), "other model accepted: %s", out);
        free(out);
    }
    /* the same settings resume; a larger k adds samples */
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s/r.jsonl --resume -k 3 --max-tokens 3 --temperature 0.7 --seed 3",
             mpath, q, dir);
    out = run_all(args, &st);
    CHECK(st == 0 && count_lines(p) == 12, "matching resume: %d lines, %s", count_lines(p), out);
    free(out);
    /* a rollouts file without a sidecar (an older pika, or another tool) is not resumed into */
    char lp[1024];
    snprintf(lp, sizeof lp, "%s/legacy.jsonl", dir);
    const char *row = "{\"id\":\"q1\",\"sample\":0,\"text\":\"x\",\"tokens_in\":1,\"tokens_out\":1,\"model\":\"m\",\"finish\":\"stop\"}\n";
    REQUIRE(pika_write_file_atomic(lp, row, strlen(row)) == 0, "write");
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s --resume --max-tokens 3", mpath, q, lp);
    out = run_all(args, &st);
    CHECK(st == 2 && strstr(out, "no provenance file") && count_lines(lp) == 1, "legacy resume: %s", out);
    free(out);
    /* --stop: the answer ends before the stop string, finish "stop" */
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s/g.jsonl --limit 1 --max-tokens 12 --temperature 0", mpath, q, dir);
    out = run_all(args, &st);
    free(out);
    snprintf(p, sizeof p, "%s/g.jsonl", dir);
    pika_rollout_rec *rows;
    int64_t nr;
    REQUIRE(st == 0 && pika_rollouts_read(p, 0, &rows, &nr) == 0 && nr == 1, "greedy sample");
    REQUIRE(strlen(rows[0].text) > 8, "greedy text too short: '%s'", rows[0].text);
    char stop[8] = {0};
    size_t at = 4;
    while (at > 0 && ((unsigned char)rows[0].text[at] & 0xC0) == 0x80) at--; /* start on a character */
    memcpy(stop, rows[0].text + at, 1);
    size_t k = 1;
    while (((unsigned char)rows[0].text[at + k] & 0xC0) == 0x80 && k < 6) { stop[k] = rows[0].text[at + k]; k++; }
    size_t first = (size_t)(strstr(rows[0].text, stop) - rows[0].text);
    char *greedy = pika_strdup(rows[0].text);
    pika_rollouts_free(rows, nr);
    snprintf(args, sizeof args, "sample --model %s --data %s --out %s/h.jsonl --limit 1 --max-tokens 12 --temperature 0 --stop '%s'",
             mpath, q, dir, stop);
    out = run_all(args, &st);
    free(out);
    snprintf(p, sizeof p, "%s/h.jsonl", dir);
    REQUIRE(st == 0 && pika_rollouts_read(p, 0, &rows, &nr) == 0 && nr == 1, "sample --stop");
    CHECK(strlen(rows[0].text) == first && !strncmp(rows[0].text, greedy, first) && !strcmp(rows[0].finish, "stop"),
          "--stop '%s': '%s' (finish %s) of '%s'", stop, rows[0].text, rows[0].finish, greedy);
    pika_rollouts_free(rows, nr);
    free(greedy);
    snprintf(p, sizeof p, "%s/r.jsonl", dir);
    /* bad sampling values on the command line: one clear line, nothing written */
    const char *vals[][2] = {{"--temperature nan", "temperature"}, {"--temperature -1", "temperature"},
                             {"--top-p nan", "top-p"}, {"--min-p nan", "min-p"}, {"--top-k -4", "top-k"},
                             {"-k 0", "-k"}, {"--max-tokens 0", "max-tokens"}};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        snprintf(args, sizeof args, "sample --model %s --data %s --out %s/bad%zu.jsonl %s", mpath, q, dir, i, vals[i][0]);
        out = run_all(args, &st);
        char bp[1024];
        snprintf(bp, sizeof bp, "%s/bad%zu.jsonl", dir, i);
        CHECK(st == 2 && strstr(out, vals[i][1]) && access(bp, F_OK) != 0, "%s: exit %d '%s'", vals[i][0], st, out);
        free(out);
    }
}

/* The rollouts reader (rollout.h) reads what pika sample writes. */
static void test_rollouts_reader(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/r.jsonl", dir);
    const char *txt = "{\"id\":\"a\",\"sample\":0,\"text\":\"x\",\"tokens_in\":3,\"tokens_out\":1,\"model\":\"m\",\"finish\":\"stop\"}\n"
                      "\n{\"id\":7,\"sample\":1,\"text\":\"y\",\"correct\":true,\"answer\":null}\n{\"id\":\"torn";
    REQUIRE(pika_write_file_atomic(p, txt, strlen(txt)) == 0, "write");
    pika_rollout_rec *rows;
    int64_t n;
    REQUIRE(pika_rollouts_read(p, 1, &rows, &n) == 0, "%s", pika_last_error());
    CHECK(n == 2 && !strcmp(rows[0].id, "a") && rows[0].tokens_in == 3 && !strcmp(rows[0].finish, "stop") && rows[0].correct == -1 &&
              !strcmp(rows[1].id, "7") && rows[1].sample == 1 && rows[1].correct == 1 && !rows[1].answer && rows[1].tokens_in == -1,
          "records");
    char *line = pika_rollout_rec_json(&rows[0]);
    CHECK(!strcmp(line, "{\"id\":\"a\",\"sample\":0,\"text\":\"x\",\"tokens_in\":3,\"tokens_out\":1,\"model\":\"m\",\"finish\":\"stop\"}"),
          "round trip: %s", line);
    free(line);
    pika_rollouts_free(rows, n);
    CHECK(pika_rollouts_read(p, 0, &rows, &n) < 0 && strstr(pika_last_error(), ":4:"), "torn line without ignore: %s", pika_last_error());
    const char *bad = "{\"id\":\"a\",\"sample\":\"zero\"}\n";
    REQUIRE(pika_write_file_atomic(p, bad, strlen(bad)) == 0, "write");
    CHECK(pika_rollouts_read(p, 1, &rows, &n) < 0 && strstr(pika_last_error(), ":1:") && strstr(pika_last_error(), "sample"),
          "bad field: %s", pika_last_error());
}

/* A store written before the prompt recipe existed ("prompt" with the five old keys) resumes when
 * the recipe is the same, keeps its recorded provenance (and so its fingerprint), and is refused
 * when the recipe differs. */
static void test_legacy_store_resume(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[4096], mp[1024], sdir[1024];
    snprintf(args, sizeof args, "--model %s --data %s --out %s/s --layers 1 --limit 2 --suffix ' Be brief.'", mpath, q, dir);
    REQUIRE(run(args) == 0, "extract");
    snprintf(mp, sizeof mp, "%s/s/meta.json", dir);
    snprintf(sdir, sizeof sdir, "%s/s", dir);
    char *txt = pika_read_file(mp, NULL);
    cJSON *meta = cJSON_Parse(txt);
    free(txt);
    cJSON *p = cJSON_GetObjectItem(meta, "prompt");
    const char *newkeys[] = {"template_source", "user_prefix", "date", "bos_token", "eos_token", "add_generation_prompt", "bos"};
    for (int i = 0; i < 7; i++) cJSON_DeleteItemFromObject(p, newkeys[i]);
    char *legacy = cJSON_Print(meta), *legacy_prompt = cJSON_PrintUnformatted(p);
    cJSON_Delete(meta);
    REQUIRE(pika_write_file_atomic(mp, legacy, strlen(legacy)) == 0, "write");
    free(legacy);
    pika_acts a;
    REQUIRE(pika_acts_open(&a, sdir) == 0, "%s", pika_last_error());
    char fp[64];
    snprintf(fp, sizeof fp, "%s", a.fingerprint);
    pika_acts_close(&a);
    snprintf(args, sizeof args, "--model %s --data %s --out %s/s --layers 1 --suffix ' Other.' --resume", mpath, q, dir);
    CHECK(run(args) == 2, "a legacy store resumed with another suffix");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/s --layers 1 --suffix ' Be brief.' --resume", mpath, q, dir);
    REQUIRE(run(args) == 0, "legacy store with the same recipe refused");
    REQUIRE(pika_acts_open(&a, sdir) == 0, "%s", pika_last_error());
    CHECK(a.n == 4 && !strcmp(a.fingerprint, fp) && !strcmp(a.prompt_json, legacy_prompt),
          "resumed legacy store: n=%lld, fingerprint %s (was %s), prompt %s", (long long)a.n, a.fingerprint, fp, a.prompt_json);
    pika_acts_close(&a);
    free(legacy_prompt);
}

static int files_equal(const char *a, const char *b) {
    size_t la = 0, lb = 0;
    char *x = pika_read_file(a, &la), *y = pika_read_file(b, &lb);
    int eq = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return eq;
}

/* --shard I/N slices + `pika acts merge` = one run, byte for byte (extract); shard rollouts
 * concatenated in order = one run (sample); bad shards and bad merges are refused. */
static void test_shards_merge(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_questions(dir);
    char args[2048], cmd[4096], a[1024], b[1024];
    int st;
    snprintf(args, sizeof args, "--model %s --data %s --out %s/one --threads 2", mpath, q, dir);
    REQUIRE(run(args) == 0, "pika extract (one run) failed");
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "--model %s --data %s --out %s/s%d --threads 2 --shard %d/3", mpath, q, dir, i, i);
        REQUIRE(run(args) == 0, "pika extract --shard %d/3 failed", i);
    }
    pika_acts sh;
    snprintf(a, sizeof a, "%s/s2", dir);
    REQUIRE(pika_acts_open(&sh, a) == 0, "%s", pika_last_error());
    CHECK(sh.n == 2 && !strcmp(sh.ids[0], "q3") && !strcmp(sh.ids[1], "q4"), "shard 2/3 holds q3, q4 (n=%lld)", (long long)sh.n);
    pika_acts_close(&sh);
    snprintf(cmd, sizeof cmd, "%s acts merge --out %s/merged %s/s0 %s/s1 %s/s2 2>/dev/null", test_pika_bin(), dir, dir, dir, dir);
    free(test_run(cmd, &st));
    REQUIRE(st == 0, "pika acts merge failed");
    static const char *FILES[] = {"meta.json", "ids.txt", "layer_00.npy", "layer_01.npy", "layer_02.npy", "layer_03.npy"};
    for (size_t k = 0; k < sizeof FILES / sizeof FILES[0]; k++) {
        snprintf(a, sizeof a, "%s/one/%s", dir, FILES[k]);
        snprintf(b, sizeof b, "%s/merged/%s", dir, FILES[k]);
        CHECK(files_equal(a, b), "merged %s differs from the one-run store", FILES[k]);
    }
    /* refusals: out of range shard, overlapping ids, existing output, layout mismatch */
    snprintf(args, sizeof args, "--model %s --data %s --out %s/bad --shard 3/3", mpath, q, dir);
    CHECK(run(args) != 0, "--shard 3/3 accepted");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/bad --shard 1/0", mpath, q, dir);
    CHECK(run(args) != 0, "--shard 1/0 accepted");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/bad --shard 0/5", mpath, q, dir);
    CHECK(run(args) != 0, "an empty shard (0/5 of 4) accepted");
    snprintf(cmd, sizeof cmd, "%s acts merge --out %s/dup %s/s0 %s/s0 2>/dev/null", test_pika_bin(), dir, dir, dir);
    free(test_run(cmd, &st));
    CHECK(st != 0, "merge of overlapping ids accepted");
    snprintf(cmd, sizeof cmd, "%s acts merge --out %s/merged %s/s0 2>/dev/null", test_pika_bin(), dir, dir);
    free(test_run(cmd, &st));
    CHECK(st != 0, "merge over an existing store without --force accepted");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/f32 --dtype f32 --shard 1/3", mpath, q, dir);
    REQUIRE(run(args) == 0, "f32 shard");
    snprintf(cmd, sizeof cmd, "%s acts merge --out %s/mix %s/s0 %s/f32 2>/dev/null", test_pika_bin(), dir, dir, dir);
    free(test_run(cmd, &st));
    CHECK(st != 0, "merge of f16 and f32 stores accepted");
    /* pika sample --shard: the shards' rollouts, concatenated in order, are the one run's */
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --out %s/r.jsonl -k 2 --max-tokens 4 --temperature 0.9 --seed 3 2>/dev/null",
             test_pika_bin(), mpath, q, dir);
    free(test_run(cmd, &st));
    REQUIRE(st == 0, "sample failed");
    char *cat = strdup("");
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --out %s/r%d.jsonl -k 2 --max-tokens 4 --temperature 0.9 --seed 3 --shard %d/2 2>/dev/null",
                 test_pika_bin(), mpath, q, dir, i, i);
        free(test_run(cmd, &st));
        REQUIRE(st == 0, "sample --shard %d/2 failed", i);
        snprintf(a, sizeof a, "%s/r%d.jsonl", dir, i);
        char *part = slurp(a);
        size_t l0 = strlen(cat), l1 = strlen(part);
        cat = realloc(cat, l0 + l1 + 1);
        memcpy(cat + l0, part, l1 + 1);
        free(part);
    }
    snprintf(a, sizeof a, "%s/r.jsonl", dir);
    char *one = slurp(a);
    CHECK(!strcmp(one, cat), "concatenated shard rollouts differ from one run");
    free(one);
    free(cat);
    snprintf(a, sizeof a, "%s/r.jsonl.meta.json", dir);
    snprintf(b, sizeof b, "%s/r1.jsonl.meta.json", dir);
    CHECK(files_equal(a, b), "shard rollouts provenance differs from one run's");
}

/* 14 questions of different lengths (1 to ~60 words) */
static const char *write_many(const char *dir) {
    static char p[512];
    snprintf(p, sizeof p, "%s/many.jsonl", dir);
    FILE *f = fopen(p, "w");
    const char *words[] = {"add", "seven", "to", "the", "square", "of", "x", "then", "divide", "by", "three", "and", "report"};
    for (int i = 0; i < 14; i++) {
        fprintf(f, "{\"id\":\"m%02d\",\"problem\":\"Q%d:", i, i);
        int nw = 1 + (i * 37) % 61;
        for (int k = 0; k < nw; k++) fprintf(f, " %s", words[(k + i) % 13]);
        fputs("?\"}\n", f);
    }
    fclose(f);
    return p;
}

static int ids_equal(const char *d1, const char *d2) {
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/ids.txt", d1);
    snprintf(b, sizeof b, "%s/ids.txt", d2);
    size_t la, lb;
    char *x = pika_read_file(a, &la), *y = pika_read_file(b, &lb);
    int eq = x && y && la == lb && !memcmp(x, y, la);
    free(x); free(y);
    return eq;
}

/* Packing + prefix reuse: the store equals the one-prompt-at-a-time store (F32, every layer), for
 * several pack budgets, with prefix reuse on and off, and with an early stop (layer 1 only: the
 * prefix is cached for one block); a partial packed run resumed (also after a simulated kill -9)
 * gives the same store. With pika's own SGEMM (AVX-512) the bytes are equal, not just close. */
static void test_pack_prefix_store(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    const char *q = write_many(dir);
    const int exact = pika_sgemm_nt_avx512();
    struct { const char *name, *flags; } cfg[] = {
        {"ref", "--pack-tokens 0 --no-prefix-cache"}, {"def", ""}, {"p40", "--pack-tokens 40"},
        {"p1", "--pack-tokens 1"}, {"nopre", "--no-prefix-cache --pack-tokens 300"}, {"big", "--pack-tokens 100000"},
    };
    char args[4096], ref[1024], d[1024];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        snprintf(args, sizeof args, "--model %s --data %s --out %s/%s --dtype f32 --threads 2 %s", mpath, q, dir,
                 cfg[k].name, cfg[k].flags);
        REQUIRE(run(args) == 0, "extract %s failed", cfg[k].flags);
        if (k == 0) continue;
        snprintf(d, sizeof d, "%s/%s", dir, cfg[k].name);
        double diff = store_diff(ref, d);
        CHECK(diff <= 1e-4 && ids_equal(ref, d), "store with %s differs from one prompt at a time by %.3g", cfg[k].flags, diff);
        if (exact) CHECK(diff == 0, "store with %s is not bit-identical (%.3g)", cfg[k].flags, diff);
    }
    /* early stop: only layer 1 (and the positions -1, -7) */
    snprintf(args, sizeof args, "--model %s --data %s --out %s/l1ref --dtype f32 --layers 1 --positions -7,-1 --pack-tokens 0 --no-prefix-cache", mpath, q, dir);
    REQUIRE(run(args) == 0, "l1 ref");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/l1 --dtype f32 --layers 1 --positions -7,-1 --pack-tokens 50", mpath, q, dir);
    REQUIRE(run(args) == 0, "l1 packed");
    char a1[1024], a2[1024];
    snprintf(a1, sizeof a1, "%s/l1ref", dir);
    snprintf(a2, sizeof a2, "%s/l1", dir);
    double diff = store_diff(a1, a2);
    CHECK(diff <= 1e-4 && (!exact || diff == 0), "early-stopped packed store differs by %.3g", diff);
    /* partial packed run, resumed with other packs; then a kill -9 mid-flush, resumed again */
    snprintf(args, sizeof args, "--model %s --data %s --out %s/part --dtype f32 --limit 5 --pack-tokens 60", mpath, q, dir);
    REQUIRE(run(args) == 0, "partial run");
    snprintf(args, sizeof args, "--model %s --data %s --out %s/part --dtype f32 --pack-tokens 200 --resume", mpath, q, dir);
    REQUIRE(run(args) == 0, "resume");
    snprintf(d, sizeof d, "%s/part", dir);
    diff = store_diff(ref, d);
    CHECK(diff <= 1e-4 && ids_equal(ref, d) && (!exact || diff == 0), "resumed packed store differs by %.3g", diff);
    char p[1024];
    snprintf(p, sizeof p, "%s/part/layer_02.npy", dir);
    FILE *f = fopen(p, "r+b");
    REQUIRE(f, "open %s", p);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fclose(f);
    CHECK(truncate(p, sz - 3 * 64 * 4 - 10) == 0, "truncate");
    REQUIRE(run(args) == 0, "resume after kill");
    diff = store_diff(ref, d);
    CHECK(diff <= 1e-4 && ids_equal(ref, d) && (!exact || diff == 0), "store resumed after a kill differs by %.3g", diff);
    /* flag validation */
    snprintf(args, sizeof args, "--model %s --data %s --out %s/bad --pack-tokens -3", mpath, q, dir);
    CHECK(run(args) != 0, "--pack-tokens -3 accepted");
}

/* The library call: every prompt token is either run or read from the cached prefix, the shared
 * prefix is read (not run) for all but the first prompt, and both-off runs every token. */
static void test_pack_stats(void) {
    REQUIRE_SHARED(mpath, "fixtures/models/qwen2-tiny.gguf");
    const char *dir = test_tmpdir();
    pika_model *m = pika_model_load(mpath);
    pika_tokenizer *tok = m ? pika_tokenizer_from_gguf(pika_model_gguf(m)) : NULL;
    REQUIRE(m && tok, "%s", pika_last_error());
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    pika_prompt_recipe *rec = pika_prompt_recipe_new(pika_model_gguf(m), tok, &po);
    REQUIRE(rec, "%s", pika_last_error());
    char *qs[6] = {"What is 2+2?", "Compute 3*7, then add 5.", "Solve x+1=3 for x.", "How many primes are below 20?",
                   "Name a prime.", "What is the derivative of x^2 with respect to x, evaluated at 3?"};
    char *idv[6] = {"a", "b", "c", "d", "e", "f"};
    int64_t total = 0, shared = -1;
    int32_t *first = NULL;
    for (int i = 0; i < 6; i++) {
        pika_prompt pr;
        REQUIRE(pika_prompt_build(rec, qs[i], &pr) == 0, "%s", pika_last_error());
        total += pr.n_ids;
        if (!first) {
            first = malloc(sizeof(int32_t) * (size_t)pr.n_ids);
            memcpy(first, pr.ids, sizeof(int32_t) * (size_t)pr.n_ids);
            shared = pr.n_ids;
        } else {
            int k = 0;
            while (k < shared && k < pr.n_ids && pr.ids[k] == first[k]) k++;
            shared = k;
        }
        pika_prompt_free(&pr);
    }
    free(first);
    REQUIRE(shared >= 4, "the template's prompts share only %lld tokens", (long long)shared);
    pika_ctx *c = pika_ctx_new(m, 2);
    pika_eoi_opts o;
    pika_eoi_opts_default(&o);
    CHECK(o.pack_tokens == 512 && o.no_prefix_cache == 0, "defaults: pack %d no_prefix_cache %d", o.pack_tokens, o.no_prefix_cache);
    o.dtype = PIKA_NPY_F32;
    pika_eoi_stats st;
    char out[1024];
    snprintf(out, sizeof out, "%s/on", dir);
    REQUIRE(pika_eoi_extract(c, rec, 6, idv, qs, out, &o, &st) == 0, "%s", pika_last_error());
    CHECK(st.done == 6 && st.tokens + st.tokens_reused == total, "tokens %lld + reused %lld != %lld prompt tokens",
          (long long)st.tokens, (long long)st.tokens_reused, (long long)total);
    CHECK(st.tokens_reused >= 5 * shared, "reused %lld < 5 x %lld shared prefix tokens", (long long)st.tokens_reused, (long long)shared);
    CHECK(pika_ctx_n_past(c) == 0 && pika_ctx_kv_layers(c) == pika_model_hparams(m)->n_layer && !pika_ctx_blas_attention(c),
          "the context is not left clean");
    o.no_prefix_cache = 1;
    o.pack_tokens = 0;
    snprintf(out, sizeof out, "%s/off", dir);
    REQUIRE(pika_eoi_extract(c, rec, 6, idv, qs, out, &o, &st) == 0, "%s", pika_last_error());
    CHECK(st.tokens == total && st.tokens_reused == 0, "both off: tokens %lld reused %lld (of %lld)", (long long)st.tokens,
          (long long)st.tokens_reused, (long long)total);
    char on[1024];
    snprintf(on, sizeof on, "%s/on", dir);
    double diff = store_diff(on, out);
    CHECK(diff <= 1e-4, "library store with packing differs by %.3g", diff);
    pika_ctx_free(c);
    pika_prompt_recipe_free(rec);
    pika_tokenizer_free(tok);
    pika_model_free(m);
}

int main(void) {
    RUN(test_legacy_store_resume);
    RUN(test_rollouts_reader);
    RUN(test_suffix_newline);
    RUN(test_no_silent_overwrite);
    RUN(test_empty_input);
    RUN(test_sample_provenance);
    RUN(test_utf8_repair);
    RUN(test_sample_resume);
    RUN(test_shards_merge);
    RUN(test_extract_matches_forward);
    RUN(test_resume);
    RUN(test_prefill_bf16);
    RUN(test_prefill_q8);
    RUN(test_no_template_and_errors);
    RUN(test_pack_prefix_store);
    RUN(test_pack_stats);
    return test_summary("extract");
}
