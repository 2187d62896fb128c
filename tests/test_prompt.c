/* test_prompt.c — the prompt recipe (prompt.h): the same ids and EOI count as the chat module's
 * render + tokenize + EOI search for the fixture and pool models; raw mode; every template source;
 * stable provenance JSON; resume matching (incl. records written before the recipe existed); the
 * recipe flag parser; --suffix-file; clear errors. */
#include <unistd.h>

#include "pika/chat.h"
#include "pika/gguf.h"
#include "pika/prompt.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"

static const char *QUESTIONS[] = {"What is 2+2?", "Compute 3*7, then add 5.", "Solve x+1=3 for x. 日本語 \\boxed{}", ""};

/* The reference: what extract did before the recipe (chat.h's build on the template source). */
static int reference(const pika_tokenizer *tok, const char *tmpl, const char *system, const char *user, const char *bos,
                     const char *eos, const char *date, pika_chat_prompt *p) {
    cJSON *msgs = pika_chat_messages(system, user);
    pika_chat_opts co = {true, bos, eos, NULL, date};
    int rc = pika_chat_prompt_build(tok, tmpl, msgs, &co, p);
    cJSON_Delete(msgs);
    return rc;
}

static void compare_model(const char *path, const char *tname) {
    pika_gguf *g = pika_gguf_open(path);
    REQUIRE(g, "%s", pika_last_error());
    pika_tokenizer *tok = pika_tokenizer_from_gguf(g);
    REQUIRE(tok, "%s", pika_last_error());
    char *tmpl, *bos, *eos;
    pika_chat_from_gguf(g, NULL, &tmpl, &bos, &eos);
    const char *src = tname ? pika_chat_builtin(tname) : tmpl;
    REQUIRE(src, "%s: no template", path);
    const char *systems[] = {NULL, "You are a careful math tutor."};
    for (int si = 0; si < 2; si++) {
        pika_prompt_opts o;
        pika_prompt_opts_default(&o);
        o.template_name = tname;
        o.system = systems[si];
        o.user_suffix = "\nPlease reason step by step, and put your final answer within \\boxed{}.";
        o.date = "2024-01-01";
        pika_prompt_recipe *r = pika_prompt_recipe_new(g, tok, &o);
        REQUIRE(r, "%s: %s", path, pika_last_error());
        for (int q = 0; q < 4; q++) {
            char user[512];
            snprintf(user, sizeof user, "%s%s", QUESTIONS[q], o.user_suffix);
            pika_chat_prompt ref;
            REQUIRE(reference(tok, src, systems[si], user, bos, eos, o.date, &ref) == 0, "%s", pika_last_error());
            pika_prompt p;
            REQUIRE(pika_prompt_build(r, QUESTIONS[q], &p) == 0, "%s: %s", path, pika_last_error());
            CHECK(p.n_ids == ref.n_ids && !memcmp(p.ids, ref.ids, sizeof(int32_t) * (size_t)p.n_ids), "%s q%d: ids differ", path, q);
            CHECK(p.n_eoi == ref.n_eoi && p.n_eoi > 0, "%s q%d: n_eoi %d vs %d", path, q, p.n_eoi, ref.n_eoi);
            CHECK(p.len == ref.len && !memcmp(p.text, ref.text, p.len), "%s q%d: text differs", path, q);
            size_t tl;
            char *t = pika_prompt_render(r, QUESTIONS[q], &tl);
            CHECK(t && tl == ref.len && !memcmp(t, ref.text, tl), "%s q%d: render differs from build", path, q);
            free(t);
            pika_prompt_free(&p);
            pika_chat_prompt_free(&ref);
        }
        pika_prompt_recipe_free(r);
    }
    free(tmpl); free(bos); free(eos);
    pika_tokenizer_free(tok);
    pika_gguf_close(g);
}

static void test_same_ids_as_chat_build(void) {
    REQUIRE_SHARED(q2, "fixtures/models/qwen2-tiny.gguf");
    compare_model(q2, NULL);
    compare_model(q2, "qwen2.5");
    const char *q3 = test_shared_path("fixtures/models/qwen3-tiny.gguf");
    if (q3) compare_model(q3, NULL);
    const char *ll = test_shared_path("fixtures/models/llama-tiny.gguf");
    if (ll) { compare_model(ll, "llama-3.1"); compare_model(ll, "chatml"); compare_model(ll, "gpt-oss"); }
}

static void test_pool_models(void) {
    const char *names[] = {"models/pool/pika-math-s.gguf", "models/pool/pika-math-m.gguf", "models/pool/pika-math-l.gguf"};
    int any = 0;
    for (int i = 0; i < 3; i++) {
        if (access(names[i], R_OK) != 0) continue;
        any = 1;
        compare_model(names[i], NULL);
        /* the pool's own template: "What is 12+30?" -> the ids pika prompt --ids printed before the recipe */
        pika_gguf *g = pika_gguf_open(names[i]);
        pika_tokenizer *tok = pika_tokenizer_from_gguf(g);
        pika_prompt_opts o;
        pika_prompt_opts_default(&o);
        pika_prompt_recipe *r = pika_prompt_recipe_new(g, tok, &o);
        REQUIRE(r, "%s", pika_last_error());
        pika_prompt p;
        REQUIRE(pika_prompt_build(r, "What is 12+30?", &p) == 0, "%s", pika_last_error());
        const int32_t want[] = {3, 339, 341, 261, 263, 264, 328, 265, 262, 326, 4};
        CHECK(p.n_ids == 11 && !memcmp(p.ids, want, sizeof want) && p.n_eoi == 1, "%s: pool prompt ids (n=%d eoi=%d)",
              names[i], p.n_ids, p.n_eoi);
        pika_prompt_free(&p);
        pika_prompt_recipe_free(r);
        pika_tokenizer_free(tok);
        pika_gguf_close(g);
    }
    if (!any) SKIP_TEST("models/pool is missing");
}

static void test_raw_mode(void) {
    REQUIRE_SHARED(path, "fixtures/models/stories260K.gguf");
    pika_gguf *g = pika_gguf_open(path);
    pika_tokenizer *tok = pika_tokenizer_from_gguf(g);
    REQUIRE(g && tok, "%s", pika_last_error());
    pika_prompt_opts o;
    pika_prompt_opts_default(&o);
    /* no template in this GGUF: a clear error naming the ways out */
    pika_prompt_recipe *r = pika_prompt_recipe_new(g, tok, &o);
    CHECK(!r && strstr(pika_last_error(), "no chat template") && strstr(pika_last_error(), "--no-template") &&
              strstr(pika_last_error(), "chatml"), "no template: %s", pika_last_error());
    o.no_template = 1;
    o.user_prefix = "Once";
    r = pika_prompt_recipe_new(g, tok, &o);
    REQUIRE(r, "%s", pika_last_error());
    CHECK(pika_prompt_recipe_is_raw(r), "raw");
    pika_prompt p;
    REQUIRE(pika_prompt_build(r, " upon a time", &p) == 0, "%s", pika_last_error());
    int32_t *ids;
    int n = pika_tokenize(tok, "Once upon a time", 16, true, false, &ids);
    CHECK(n == p.n_ids && !memcmp(ids, p.ids, sizeof(int32_t) * (size_t)n) && p.n_eoi == 1, "raw ids");
    CHECK(!strcmp(p.text, "Once upon a time"), "raw text '%s'", p.text);
    CHECK(strstr(pika_prompt_recipe_json(r), "\"template\":\"none\"") && strstr(pika_prompt_recipe_json(r), "\"bos\":\"vocab\""),
          "raw provenance %s", pika_prompt_recipe_json(r));
    free(ids);
    pika_prompt_free(&p);
    pika_prompt_recipe_free(r);
    pika_tokenizer_free(tok);
    pika_gguf_close(g);
}

static void test_sources_and_provenance(void) {
    REQUIRE_SHARED(path, "fixtures/models/qwen2-tiny.gguf");
    pika_gguf *g = pika_gguf_open(path);
    pika_tokenizer *tok = pika_tokenizer_from_gguf(g);
    REQUIRE(g && tok, "%s", pika_last_error());
    const char *dir = test_tmpdir();
    char tf[512];
    snprintf(tf, sizeof tf, "%s/chatml.jinja", dir);
    const char *chatml = pika_chat_builtin("chatml");
    REQUIRE(pika_write_file_atomic(tf, chatml, strlen(chatml)) == 0, "write");
    pika_prompt_opts o;
    pika_prompt_opts_default(&o);
    o.system = "S";
    o.user_suffix = "\nX";
    o.kwargs_json = "{\"enable_thinking\": false}";
    o.date = "2024-02-03";
    pika_prompt_recipe *a = pika_prompt_recipe_new(g, tok, &o), *b = pika_prompt_recipe_new(g, tok, &o);
    REQUIRE(a && b, "%s", pika_last_error());
    CHECK(!strcmp(pika_prompt_recipe_json(a), pika_prompt_recipe_json(b)), "provenance not stable");
    const char *head = "{\"template\":\"gguf\",\"template_fingerprint\":\"";
    CHECK(!strncmp(pika_prompt_recipe_json(a), head, strlen(head)) &&
              strstr(pika_prompt_recipe_json(a), "\"system\":\"S\",\"user_suffix\":\"\\nX\",\"kwargs\":{\"enable_thinking\":false},"
                                                 "\"template_source\":\"gguf\",\"user_prefix\":\"\",\"date\":\"2024-02-03\""),
          "provenance keys: %s", pika_prompt_recipe_json(a));
    /* builtin and file with the same source: same fingerprint, different source */
    pika_prompt_opts ob = o, of = o;
    ob.template_name = "chatml";
    of.template_file = tf;
    pika_prompt_recipe *rb = pika_prompt_recipe_new(g, tok, &ob), *rf = pika_prompt_recipe_new(g, tok, &of);
    REQUIRE(rb && rf, "%s", pika_last_error());
    cJSON *jb = pika_prompt_recipe_provenance(rb), *jf = pika_prompt_recipe_provenance(rf), *ja = pika_prompt_recipe_provenance(a);
    CHECK(!strcmp(cJSON_GetObjectItem(jb, "template_source")->valuestring, "builtin") &&
              !strcmp(cJSON_GetObjectItem(jf, "template_source")->valuestring, "file") &&
              !strcmp(cJSON_GetObjectItem(jf, "template")->valuestring, tf),
          "sources");
    CHECK(!strcmp(cJSON_GetObjectItem(jb, "template_fingerprint")->valuestring,
                  cJSON_GetObjectItem(jf, "template_fingerprint")->valuestring),
          "same template text, same fingerprint");
    CHECK(pika_prompt_provenance_matches(ja, ja, NULL) && !pika_prompt_provenance_matches(ja, jb, NULL), "matches");
    /* template_name wins over template_file, as before */
    pika_prompt_opts both = of;
    both.template_name = "chatml";
    pika_prompt_recipe *r2 = pika_prompt_recipe_new(g, tok, &both);
    REQUIRE(r2, "%s", pika_last_error());
    CHECK(strstr(pika_prompt_recipe_json(r2), "\"template_source\":\"builtin\""), "name wins");
    pika_prompt_recipe_free(r2);
    /* a record from before the recipe: the five old keys (+ n_eoi) */
    cJSON *legacy = cJSON_Parse("{\"template\":\"gguf\",\"template_fingerprint\":\"x\",\"system\":\"S\",\"user_suffix\":\"\\nX\"}");
    cJSON_ReplaceItemInObject(legacy, "template_fingerprint", cJSON_Duplicate(cJSON_GetObjectItem(ja, "template_fingerprint"), 1));
    CHECK(!pika_prompt_provenance_matches(legacy, ja, NULL), "legacy record without kwargs must not match a recipe with kwargs");
    cJSON_AddItemToObject(legacy, "kwargs", cJSON_Parse("{\"enable_thinking\":false}"));
    CHECK(pika_prompt_provenance_matches(legacy, ja, NULL), "legacy record of the same recipe must match");
    cJSON_ReplaceItemInObject(legacy, "user_suffix", cJSON_CreateString("\\nX"));
    CHECK(!pika_prompt_provenance_matches(legacy, ja, NULL), "legacy record with a literal backslash-n suffix must not match");
    /* a new-format record missing a key does not match */
    cJSON *cut = cJSON_Duplicate(ja, 1);
    cJSON_DeleteItemFromObject(cut, "date");
    CHECK(!pika_prompt_provenance_matches(cut, ja, NULL), "missing key matched");
    cJSON_Delete(cut);
    cJSON_Delete(legacy);
    cJSON_Delete(ja); cJSON_Delete(jb); cJSON_Delete(jf);
    /* messages list, conversation render, build_messages */
    cJSON *m = pika_prompt_messages(a, "Q");
    char *ms = cJSON_PrintUnformatted(m);
    CHECK(!strcmp(ms, "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Q\\nX\"}]"), "messages %s", ms);
    size_t l1, l2;
    char *t1 = pika_prompt_render_messages(a, m, &l1), *t2 = pika_prompt_render(a, "Q", &l2);
    CHECK(t1 && t2 && l1 == l2 && !memcmp(t1, t2, l1), "render of the messages list = render of the question");
    pika_prompt p1, p2;
    REQUIRE(pika_prompt_build_messages(a, m, &p1) == 0 && pika_prompt_build(a, "Q", &p2) == 0, "%s", pika_last_error());
    CHECK(p1.n_ids == p2.n_ids && p1.n_eoi == p2.n_eoi && !memcmp(p1.ids, p2.ids, sizeof(int32_t) * (size_t)p1.n_ids),
          "build_messages = build");
    pika_prompt_free(&p1);
    pika_prompt_free(&p2);
    free(t1); free(t2); free(ms);
    cJSON_Delete(m);
    pika_prompt_recipe_free(a); pika_prompt_recipe_free(b); pika_prompt_recipe_free(rb); pika_prompt_recipe_free(rf);
    pika_tokenizer_free(tok);
    pika_gguf_close(g);
}

static void test_errors_and_flags(void) {
    pika_prompt_opts o;
    pika_prompt_opts_default(&o);
    o.template_name = "no-such";
    CHECK(!pika_prompt_recipe_new(NULL, NULL, &o) && strstr(pika_last_error(), "qwen3"), "unknown: %s", pika_last_error());
    pika_prompt_opts_default(&o);
    CHECK(!pika_prompt_recipe_new(NULL, NULL, &o) && strstr(pika_last_error(), "--template NAME"), "none: %s", pika_last_error());
    o.template_name = "chatml";
    o.kwargs_json = "[1]";
    CHECK(!pika_prompt_recipe_new(NULL, NULL, &o) && strstr(pika_last_error(), "JSON object"), "kwargs: %s", pika_last_error());
    o.kwargs_json = NULL;
    o.template_name = NULL;
    o.template_file = "/nonexistent/t.jinja";
    CHECK(!pika_prompt_recipe_new(NULL, NULL, &o) && strstr(pika_last_error(), "/nonexistent/t.jinja"), "file: %s", pika_last_error());
    const char *dir = test_tmpdir();
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.jinja", dir);
    REQUIRE(pika_write_file_atomic(bad, "{% for m in messages %}", 23) == 0, "write");
    o.template_file = bad;
    CHECK(!pika_prompt_recipe_new(NULL, NULL, &o) && strstr(pika_last_error(), "endfor"), "syntax: %s", pika_last_error());
    /* text-only recipe: render works, build needs a tokenizer */
    pika_prompt_opts_default(&o);
    o.template_name = "chatml";
    pika_prompt_recipe *r = pika_prompt_recipe_new(NULL, NULL, &o);
    REQUIRE(r, "%s", pika_last_error());
    size_t n;
    char *t = pika_prompt_render(r, "Hi", &n);
    CHECK(t && !strcmp(t, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), "chatml text '%s'", t ? t : "");
    free(t);
    pika_prompt p;
    CHECK(pika_prompt_build(r, "Hi", &p) < 0 && strstr(pika_last_error(), "tokenizer"), "build without tokenizer");
    pika_prompt_recipe_free(r);
    /* flags */
    pika_prompt_opts_default(&o);
    CHECK(pika_prompt_flag_arity("--suffix") == 1 && pika_prompt_flag_arity("--no-template") == 0 &&
              pika_prompt_flag_arity("--out") == -1, "arity");
    CHECK(pika_prompt_parse_flag(&o, "--suffix", "\nS") == 1 && !strcmp(o.user_suffix, "\nS"), "--suffix");
    CHECK(pika_prompt_parse_flag(&o, "--no-template", NULL) == 1 && o.no_template, "--no-template");
    CHECK(pika_prompt_parse_flag(&o, "--no-generation-prompt", NULL) == 1 && !o.add_generation_prompt, "--no-generation-prompt");
    CHECK(pika_prompt_parse_flag(&o, "--system", NULL) == -1 && strstr(pika_last_error(), "needs a value"), "missing value");
    CHECK(pika_prompt_parse_flag(&o, "--seed", "1") == 0, "not a recipe flag");
    CHECK(strstr(pika_prompt_flags_help(), "$'\\n") != NULL && strstr(pika_prompt_flags_help(), "--suffix-file"),
          "help shows a real newline in the shell");
    /* --suffix-file: exact bytes, one final newline dropped; exclusive with --suffix */
    char sf[512];
    snprintf(sf, sizeof sf, "%s/suffix.txt", dir);
    const char *suf = "\nPlease reason step by step, and put your final answer within \\boxed{}.\n";
    REQUIRE(pika_write_file_atomic(sf, suf, strlen(suf)) == 0, "write");
    pika_prompt_opts_default(&o);
    o.template_name = "chatml";
    o.user_suffix_file = sf;
    r = pika_prompt_recipe_new(NULL, NULL, &o);
    REQUIRE(r, "%s", pika_last_error());
    t = pika_prompt_render(r, "Q", &n);
    CHECK(t && strstr(t, "user\nQ\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>"),
          "suffix file: '%s'", t ? t : "");
    free(t);
    pika_prompt_recipe_free(r);
    o.user_suffix = "x";
    CHECK(!pika_prompt_recipe_new(NULL, NULL, &o) && strstr(pika_last_error(), "not both"), "both suffixes");
}

/* pika prompt over the recipe: --provenance, --prefix/--suffix, --no-template. */
static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(s, f); fclose(f); }
}

/* the messages-file format of `pika prompt --messages` (and of the server's chat requests) */
static void test_messages_file(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/m.json", dir);
    write_text(p, "[{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"q\"}]");
    cJSON *m = pika_prompt_messages_read(p);
    CHECK(m && cJSON_GetArraySize(m) == 2, "two messages: %s", m ? "" : pika_last_error());
    cJSON_Delete(m);
    write_text(p, "[{\"role\": \"user\"}, {\"content\": \"no role\"}]");
    CHECK(!pika_prompt_messages_read(p) && strstr(pika_last_error(), "m.json") && strstr(pika_last_error(), "message 1"),
          "missing role names message 1: %s", pika_last_error());
    write_text(p, "{\"role\": \"user\"}");
    CHECK(!pika_prompt_messages_read(p) && strstr(pika_last_error(), "not a JSON array"), "object: %s", pika_last_error());
    write_text(p, "[{");
    CHECK(!pika_prompt_messages_read(p) && strstr(pika_last_error(), "malformed"), "malformed: %s", pika_last_error());
}

static void test_cli(void) {
    REQUIRE_SHARED(path, "fixtures/models/qwen2-tiny.gguf");
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("%s not built", test_pika_bin());
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "%s prompt --model %s --provenance --suffix ' Go.' --date 2024-01-01 2>&1", test_pika_bin(), path);
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "\"template\":\"gguf\"") && strstr(out, "\"user_suffix\":\" Go.\"") &&
              strstr(out, "\"date\":\"2024-01-01\""), "--provenance: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s prompt --template chatml --user Q --prefix 'P: ' --suffix ' S' 2>&1", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 0 && !strcmp(out, "<|im_start|>user\nP: Q S<|im_end|>\n<|im_start|>assistant\n"), "prefix/suffix: [%s]", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s prompt --model %s --no-template --user 'What is 2+2?' --ids 2>&1", test_pika_bin(), path);
    out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "\neoi 1\n") && !strstr(out, "151644"), "--no-template --ids: %s", out);
    free(out);
}

int main(void) {
    RUN(test_cli);
    RUN(test_messages_file);
    RUN(test_same_ids_as_chat_build);
    RUN(test_pool_models);
    RUN(test_raw_mode);
    RUN(test_sources_and_provenance);
    RUN(test_errors_and_flags);
    return test_summary("prompt");
}
