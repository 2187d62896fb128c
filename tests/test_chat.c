/* test_chat.c — chat templates against the Hugging Face golden cases (../shared/fixtures/chat:
 * 84 cases, 9 template files, 14 family variants) byte for byte, with the files' templates and
 * with pika's built-in templates; EOI suffixes per family; EOI token positions with a real
 * tokenizer (qwen2-tiny.gguf); unknown / malformed templates; and the `pika prompt` CLI. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#include "pika/chat.h"
#include "pika/gguf.h"
#include "pika/jinja.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"

#define DATE "2024-07-26"

typedef struct {
    cJSON *all; /* array of case objects */
    int n;
} caseset;

static caseset load_cases(void) {
    caseset cs = {NULL, 0};
    const char *path = test_shared_path("fixtures/chat/cases.jsonl");
    if (!path) return cs;
    size_t n;
    char *txt = pika_read_file(path, &n);
    if (!txt) return cs;
    cs.all = cJSON_CreateArray();
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *c = cJSON_Parse(line);
        if (c) cJSON_AddItemToArray(cs.all, c);
    }
    free(txt);
    cs.n = cJSON_GetArraySize(cs.all);
    return cs;
}

static const char *sfield(const cJSON *c, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static pika_chat_opts case_opts(const cJSON *c) {
    pika_chat_opts o = {
        .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "add_generation_prompt")),
        .bos_token = sfield(c, "bos_token"),
        .eos_token = sfield(c, "eos_token"),
        .kwargs = cJSON_GetObjectItemCaseSensitive(c, "kwargs"),
        .date = DATE,
    };
    return o;
}

static char *case_template(const cJSON *c) {
    char rel[512];
    snprintf(rel, sizeof rel, "fixtures/chat/%s", sfield(c, "template_file"));
    const char *p = test_shared_path(rel);
    return p ? pika_read_file(p, NULL) : NULL;
}

/* family -> built-in template name */
static const char *builtin_for(const char *family) {
    static const char *map[][2] = {
        {"qwen2.5-instruct", "qwen2.5"},         {"qwen3", "qwen3"},
        {"llama-3.1-instruct", "llama-3.1"},     {"llama-3.2-instruct", "llama-3.2"},
        {"llama-3.3-instruct", "llama-3.3"},     {"mistral-nemo-instruct", "mistral-nemo"},
        {"phi-3.5-mini-instruct", "phi-3.5"},    {"deepseek-r1-distill-qwen", "deepseek-r1"},
        {"gpt-oss", "gpt-oss"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], family)) return map[i][1];
    return NULL;
}

static void show_diff(const char *id, const char *got, size_t gl, const char *exp) {
    size_t el = strlen(exp), k = 0;
    while (k < gl && k < el && got[k] == exp[k]) k++;
    fprintf(stderr, "  %s: first difference at byte %zu (got %zu bytes, expected %zu)\n  got: ...%.60s\n  exp: ...%.60s\n", id,
            k, gl, el, got + (k > 20 ? k - 20 : 0), exp + (k > 20 ? k - 20 : 0));
}

/* every golden case, rendered from the template file, byte for byte */
static void test_golden_cases(void) {
    REQUIRE_SHARED(p, "fixtures/chat/cases.jsonl");
    (void)p;
    caseset cs = load_cases();
    CHECK(cs.n == 84, "expected 84 cases, read %d", cs.n);
    int ok = 0;
    for (cJSON *c = cs.all ? cs.all->child : NULL; c; c = c->next) {
        const char *id = sfield(c, "id");
        char *tmpl = case_template(c);
        CHECK(tmpl != NULL, "%s: template file missing", id);
        if (!tmpl) continue;
        pika_chat_opts o = case_opts(c);
        size_t len;
        char *out = pika_chat_render(tmpl, cJSON_GetObjectItemCaseSensitive(c, "messages"), &o, &len);
        const char *exp = sfield(c, "expected");
        CHECK(out != NULL, "%s: %s", id, pika_last_error());
        if (out) {
            int same = len == strlen(exp) && !memcmp(out, exp, len);
            CHECK(same, "%s differs", id);
            if (!same) show_diff(id, out, len, exp);
            ok += same;
        }
        free(out);
        free(tmpl);
    }
    CHECK(ok == 84, "%d of 84 cases match", ok);
    cJSON_Delete(cs.all);
}

/* the built-in templates reproduce every golden case of their family */
static void test_golden_builtins(void) {
    REQUIRE_SHARED(p, "fixtures/chat/cases.jsonl");
    (void)p;
    caseset cs = load_cases();
    int ok = 0;
    for (cJSON *c = cs.all ? cs.all->child : NULL; c; c = c->next) {
        const char *id = sfield(c, "id");
        const char *name = builtin_for(sfield(c, "family"));
        CHECK(name != NULL, "%s: no built-in for family %s", id, sfield(c, "family"));
        const char *tmpl = pika_chat_builtin(name);
        CHECK(tmpl != NULL, "built-in %s missing", name);
        if (!tmpl) continue;
        pika_chat_opts o = case_opts(c);
        size_t len;
        char *out = pika_chat_render(tmpl, cJSON_GetObjectItemCaseSensitive(c, "messages"), &o, &len);
        const char *exp = sfield(c, "expected");
        CHECK(out != NULL, "%s (built-in %s): %s", id, name, pika_last_error());
        if (out) {
            int same = len == strlen(exp) && !memcmp(out, exp, len);
            CHECK(same, "%s differs with built-in %s", id, name);
            if (!same) show_diff(id, out, len, exp);
            ok += same;
        }
        free(out);
    }
    CHECK(ok == 84, "%d of 84 cases match with the built-ins", ok);
    cJSON_Delete(cs.all);
}

/* EOI suffix of each family: from the f_eoi case (placeholder content), and the same suffix from
 * every other case that ends with a user turn and a generation prompt */
static void test_eoi_suffix(void) {
    REQUIRE_SHARED(p, "fixtures/chat/cases.jsonl");
    (void)p;
    caseset cs = load_cases();
    int n_f = 0, n_other = 0;
    for (cJSON *c = cs.all ? cs.all->child : NULL; c; c = c->next) {
        const char *eoi = sfield(c, "eoi_suffix");
        if (!eoi) continue;
        n_f++;
        const char *id = sfield(c, "id");
        char *tmpl = case_template(c);
        if (!tmpl) continue;
        pika_chat_opts o = case_opts(c);
        char *suf;
        size_t sl;
        int rc = pika_chat_eoi_suffix(tmpl, cJSON_GetObjectItemCaseSensitive(c, "messages"), &o, &suf, &sl);
        CHECK(rc == 0, "%s: %s", id, pika_last_error());
        if (rc == 0) {
            CHECK(sl == strlen(eoi) && !memcmp(suf, eoi, sl), "%s: EOI suffix '%s', expected '%s'", id, suf, eoi);
            free(suf);
        }
        /* built-in gives the same suffix */
        rc = pika_chat_eoi_suffix(pika_chat_builtin(builtin_for(sfield(c, "family"))),
                                  cJSON_GetObjectItemCaseSensitive(c, "messages"), &o, &suf, &sl);
        CHECK(rc == 0 && sl == strlen(eoi) && !memcmp(suf, eoi, sl), "%s: built-in EOI suffix differs", id);
        if (rc == 0) free(suf);
        /* the other cases of this family/variant with a generation prompt */
        const char *prefix_end = strrchr(id, '/');
        for (cJSON *d = cs.all->child; d; d = d->next) {
            const char *did = sfield(d, "id");
            if (d == c || strncmp(did, id, (size_t)(prefix_end - id + 1)) || strchr(did + (prefix_end - id + 1), '/')) continue;
            const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(d, "messages");
            const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "add_generation_prompt"))) continue;
            if (strcmp(sfield(last, "role"), "user")) continue;
            pika_chat_opts od = case_opts(d);
            rc = pika_chat_eoi_suffix(tmpl, msgs, &od, &suf, &sl);
            CHECK(rc == 0 && sl == strlen(eoi) && !memcmp(suf, eoi, sl), "%s: EOI suffix differs from the family's", did);
            if (rc == 0) free(suf);
            n_other++;
        }
        free(tmpl);
    }
    CHECK(n_f == 14, "expected 14 f_eoi cases, got %d", n_f);
    CHECK(n_other >= 14 * 3, "only %d other cases checked", n_other);
    cJSON_Delete(cs.all);
}

/* Llama 3 trims the content: the EOI text starts right after the last non-space character */
static void test_eoi_trimmed_content(void) {
    const char *tmpl = pika_chat_builtin("llama-3.1");
    cJSON *msgs = pika_chat_messages(NULL, "Solve it.  \n\n");
    pika_chat_opts o = {.add_generation_prompt = true, .bos_token = "<|begin_of_text|>", .eos_token = "<|eot_id|>", .date = DATE};
    char *suf;
    size_t sl, rl;
    REQUIRE(pika_chat_eoi_suffix(tmpl, msgs, &o, &suf, &sl) == 0, "%s", pika_last_error());
    char *r = pika_chat_render(tmpl, msgs, &o, &rl);
    REQUIRE(r != NULL, "%s", pika_last_error());
    CHECK(!strcmp(suf, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"), "suffix '%s'", suf);
    CHECK(rl > sl && !memcmp(r + rl - sl - 9, "Solve it.", 9), "EOI does not start after the trimmed content");
    free(suf);
    free(r);
    /* no user message: an error, not a crash */
    cJSON *sys = pika_chat_messages("only a system message", NULL);
    CHECK(pika_chat_eoi_suffix(tmpl, sys, &o, &suf, &sl) == -1, "EOI without a user message should fail");
    cJSON_Delete(sys);
    cJSON_Delete(msgs);
}

/* ids and EOI positions with the qwen2 vocab: matches the ids llama.cpp recorded for the chat prompt */
static void test_prompt_ids_qwen2(void) {
    REQUIRE_SHARED(gpath, "fixtures/models/qwen2-tiny.gguf");
    REQUIRE_SHARED(jpath, "fixtures/models/qwen2-tiny.json");
    pika_gguf *g = pika_gguf_open(gpath);
    REQUIRE(g != NULL, "%s", pika_last_error());
    pika_tokenizer *tok = pika_tokenizer_from_gguf(g);
    if (!tok) {
        pika_gguf_close(g);
        SKIP_TEST("tokenizer unavailable: %s", pika_last_error());
    }
    char *tmpl, *bos, *eos;
    pika_chat_from_gguf(g, NULL, &tmpl, &bos, &eos);
    CHECK(tmpl != NULL, "qwen2-tiny.gguf has no chat template");
    char *js = pika_read_file(jpath, NULL);
    cJSON *j = cJSON_Parse(js);
    const cJSON *prompt = NULL, *pr;
    cJSON_ArrayForEach(pr, cJSON_GetObjectItemCaseSensitive(j, "prompts")) {
        const char *id = sfield(pr, "id");
        if (id && !strcmp(id, "chat")) prompt = pr;
    }
    REQUIRE(prompt != NULL && tmpl != NULL, "no chat prompt in the json");
    const cJSON *chat = cJSON_GetObjectItemCaseSensitive(prompt, "chat");
    cJSON *msgs = pika_chat_messages(sfield(chat, "system"), sfield(chat, "user"));
    pika_chat_opts o = {.add_generation_prompt = true, .bos_token = bos, .eos_token = eos, .date = DATE};
    pika_chat_prompt p;
    REQUIRE(pika_chat_prompt_build(tok, tmpl, msgs, &o, &p) == 0, "%s", pika_last_error());
    CHECK(!strcmp(p.text, sfield(prompt, "text")), "rendered text differs from llama.cpp's: %s", p.text);
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(prompt, "token_ids");
    CHECK(p.n_ids == cJSON_GetArraySize(ids), "n_ids %d vs %d", p.n_ids, cJSON_GetArraySize(ids));
    int k = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        if (k < p.n_ids) CHECK(p.ids[k] == id->valueint, "id %d: %d vs %d", k, p.ids[k], id->valueint);
        k++;
    }
    CHECK(p.n_eoi == 5, "Qwen EOI is 5 tokens, got %d", p.n_eoi);
    CHECK(p.eoi_start == p.n_ids - 5, "eoi_start %d", p.eoi_start);
    CHECK(p.n_ids >= 5 && p.ids[p.eoi_start] == 151645, "first EOI token should be <|im_end|>");
    CHECK(!strcmp(p.text + p.eoi_byte, "<|im_end|>\n<|im_start|>assistant\n"), "eoi text '%s'", p.text + p.eoi_byte);
    pika_chat_prompt_free(&p);

    /* Qwen3 no-thinking with the built-in: 5 + <think>\n\n</think>\n\n */
    cJSON *kw = cJSON_Parse("{\"enable_thinking\": false}");
    pika_chat_opts o3 = {.add_generation_prompt = true, .kwargs = kw, .date = DATE};
    REQUIRE(pika_chat_prompt_build(tok, pika_chat_builtin("qwen3"), msgs, &o3, &p) == 0, "%s", pika_last_error());
    CHECK(!strcmp(p.text + p.eoi_byte, "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"), "qwen3 eoi text '%s'",
          p.text + p.eoi_byte);
    /* the EOI tokens decode back to the EOI text */
    char *dec;
    size_t dl;
    REQUIRE(pika_detokenize(tok, p.ids + p.eoi_start, p.n_eoi, true, &dec, &dl) == 0, "%s", pika_last_error());
    CHECK(dl == p.len - p.eoi_byte && !memcmp(dec, p.text + p.eoi_byte, dl), "EOI tokens decode to '%s'", dec);
    CHECK(p.n_eoi > 5, "qwen3 no-thinking EOI %d tokens", p.n_eoi);
    free(dec);
    pika_chat_prompt_free(&p);

    /* no user message: no EOI */
    cJSON *sys = pika_chat_messages("sys", NULL);
    REQUIRE(pika_chat_prompt_build(tok, tmpl, sys, &o, &p) == 0, "%s", pika_last_error());
    CHECK(p.n_eoi == 0 && p.eoi_start == p.n_ids, "no user message: n_eoi %d", p.n_eoi);
    pika_chat_prompt_free(&p);

    cJSON_Delete(sys);
    cJSON_Delete(kw);
    cJSON_Delete(msgs);
    cJSON_Delete(j);
    free(js);
    free(tmpl);
    free(bos);
    free(eos);
    pika_tokenizer_free(tok);
    pika_gguf_close(g);
}

static void test_builtin_names(void) {
    CHECK(pika_chat_n_builtin() >= 10, "%d built-ins", pika_chat_n_builtin());
    for (int i = 0; i < pika_chat_n_builtin(); i++) {
        const char *name = pika_chat_builtin_name(i);
        CHECK(pika_chat_builtin(name) != NULL, "built-in %s not found by name", name);
        CHECK(strstr(pika_chat_builtin_list(), name) != NULL, "%s not in the list", name);
        /* every built-in renders a plain conversation */
        cJSON *m = pika_chat_messages("Be brief.", "Hi");
        pika_chat_opts o = {.add_generation_prompt = true, .bos_token = "<s>", .eos_token = "</s>", .date = DATE};
        size_t len;
        char *out = pika_chat_render(pika_chat_builtin(name), m, &o, &len);
        CHECK(out && strstr(out, "Hi") && strstr(out, "Be brief."), "built-in %s: %s", name, out ? out : pika_last_error());
        free(out);
        cJSON_Delete(m);
    }
    CHECK(pika_chat_builtin("llama3") == pika_chat_builtin("llama-3.1"), "alias llama3");
    CHECK(pika_chat_builtin("no-such-template") == NULL, "unknown name");
    /* Qwen2.5-Math default system message */
    cJSON *m = pika_chat_messages(NULL, "1+1?");
    pika_chat_opts o = {.add_generation_prompt = true};
    char *out = pika_chat_render(pika_chat_builtin("qwen2.5-math"), m, &o, NULL);
    CHECK(out && !strcmp(out, "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
                              "<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"),
          "qwen2.5-math: %s", out ? out : pika_last_error());
    free(out);
    cJSON_Delete(m);
}

/* a template that does not parse or render gives one clear error naming the --template choices */
static void test_unknown_template(void) {
    cJSON *m = pika_chat_messages(NULL, "hi");
    pika_chat_opts o = {.add_generation_prompt = true};
    const char *bad[] = {
        "{% bogus_tag %}",
        "{{ messages[0].content | no_such_filter }}",
        "{% for m in messages %}{{ m.content }}",
        "{{ undefined_function() }}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = pika_chat_render(bad[i], m, &o, NULL);
        CHECK(out == NULL, "'%s' should fail", bad[i]);
        free(out);
        const char *e = pika_last_error();
        CHECK(strstr(e, "chat template:") && strstr(e, "--template NAME") && strstr(e, "qwen2.5") && strstr(e, "gpt-oss"),
              "error lacks the choices: %s", e);
    }
    CHECK(pika_chat_render(NULL, m, &o, NULL) == NULL && strstr(pika_last_error(), "--template"), "NULL template");
    /* raise_exception: the template's own message */
    cJSON *bad_roles = cJSON_Parse("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]");
    char *out = pika_chat_render(pika_chat_builtin("mistral-nemo"), bad_roles, &o, NULL);
    CHECK(out == NULL && strstr(pika_last_error(), "must alternate"), "mistral role check: %s", pika_last_error());
    free(out);
    cJSON_Delete(bad_roles);
    cJSON_Delete(m);
}

/* truncations and corruptions of real templates never crash; they render or fail cleanly */
static void test_malformed_templates(void) {
    REQUIRE_SHARED(p, "fixtures/chat/templates/gpt-oss.jinja");
    const char *files[] = {"fixtures/chat/templates/gpt-oss.jinja", "fixtures/chat/templates/qwen3.jinja",
                           "fixtures/chat/templates/mistral-nemo-instruct.jinja", "fixtures/chat/templates/deepseek-r1-distill-qwen.jinja"};
    cJSON *m = pika_chat_messages("sys", "hi");
    pika_chat_opts o = {.add_generation_prompt = true, .bos_token = "<s>", .eos_token = "</s>", .date = DATE};
    int failed = 0, rendered = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        char *src = pika_read_file(test_shared_path(files[f]), &n);
        REQUIRE(src != NULL, "read %s", files[f]);
        char *buf = pika_malloc(n + 1);
        for (size_t cut = 0; cut < n; cut += 37) { /* truncations */
            memcpy(buf, src, cut);
            buf[cut] = 0;
            char *out = pika_chat_render(buf, m, &o, NULL);
            if (out) rendered++;
            else {
                failed++;
                CHECK(pika_last_error()[0] != 0, "empty error message");
            }
            free(out);
        }
        uint32_t seed = 12345;
        for (int k = 0; k < 200; k++) { /* random byte corruptions */
            memcpy(buf, src, n + 1);
            for (int j = 0; j < 3; j++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % n;
                seed = seed * 1103515245u + 12345u;
                buf[at] = "{}%#-+()[]'\"|.,x \n"[(seed >> 8) % 18];
            }
            char *out = pika_chat_render(buf, m, &o, NULL);
            if (out) rendered++;
            else failed++;
            free(out);
        }
        free(buf);
        free(src);
    }
    CHECK(failed > 0 && rendered > 0, "failed %d rendered %d", failed, rendered);
    cJSON_Delete(m);
    (void)p;
}

/* hostile inputs: deep nesting, runaway recursion, huge repetition, NUL bytes in content */
static void test_hostile(void) {
    cJSON *m = pika_chat_messages(NULL, "hi");
    pika_chat_opts o = {.add_generation_prompt = true};
    char deep[4000];
    size_t k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "{{ ");
    for (int i = 0; i < 1500; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1500; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    CHECK(pika_chat_render(deep, m, &o, NULL) == NULL, "deep nesting should fail cleanly");
    CHECK(pika_chat_render("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", m, &o, NULL) == NULL, "infinite recursion");
    CHECK(pika_chat_render("{{ 'x' * 1000000000 }}", m, &o, NULL) == NULL, "huge repetition");
    CHECK(pika_chat_render("{% for i in range(100000000) %}{% endfor %}", m, &o, NULL) == NULL, "huge range");
    /* content with a NUL byte survives: cJSON strings stop at NUL, so build it via the renderer */
    size_t len;
    char *out = pika_jinja_render_string("a{{ '\\x00' }}b", 14, NULL, NULL, &len);
    CHECK(out && len == 3 && out[1] == 0 && out[2] == 'b', "NUL in output");
    free(out);
    /* malformed UTF-8 in content is passed through byte for byte */
    cJSON *bad = pika_chat_messages(NULL, "\xff\xfe ok \xc3");
    out = pika_chat_render(pika_chat_builtin("chatml"), bad, &o, &len);
    CHECK(out && strstr(out, "\xff\xfe ok \xc3<|im_end|>"), "malformed UTF-8 content");
    free(out);
    cJSON_Delete(bad);
    /* empty conversation */
    cJSON *empty = cJSON_CreateArray();
    out = pika_chat_render(pika_chat_builtin("qwen2.5"), empty, &o, &len);
    CHECK(out != NULL, "empty conversation: %s", pika_last_error());
    free(out);
    cJSON_Delete(empty);
    cJSON_Delete(m);
}

/* Tools, tool calls, tool results, builtin_tools, developer/thinking fields: conversations beyond
 * the golden cases, rendered with the real templates (macros, tojson(indent=4), oneOf/enum/array
 * schemas in gpt-oss). Expected: byte length and FNV-1a 64 hash of what Python jinja2 3.1.6
 * renders with the transformers setup for the same variables (hash instead of text so no
 * template output is copied here). */
typedef struct {
    const char *file;
    const char *vars;
    uint64_t len, fnv;
} toolcase;

static const toolcase TOOLCASES[] = {
    {"qwen2.5-instruct.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}}]}, {\"role\": \"tool\", \"content\": \"{\\\"temp\\\": 20}\", \"tool_call_id\": \"abcdefghi\"}, {\"role\": \"assistant\", \"content\": \"<think>hmm</think>It is 20C.\", \"reasoning_content\": null}, {\"role\": \"user\", \"content\": \"Thanks \303\251\"}], \"eos_token\": \"<|im_end|>\"}",
     1461ULL, 0x6b87f7d730e044adULL},
    {"qwen3.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}}]}, {\"role\": \"tool\", \"content\": \"{\\\"temp\\\": 20}\", \"tool_call_id\": \"abcdefghi\"}, {\"role\": \"assistant\", \"content\": \"<think>hmm</think>It is 20C.\", \"reasoning_content\": null}, {\"role\": \"user\", \"content\": \"Thanks \303\251\"}], \"eos_token\": \"<|im_end|>\", \"enable_thinking\": false}",
     1462ULL, 0x76cf55a3de801443ULL},
    {"llama-3.1-instruct.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}}]}, {\"role\": \"ipython\", \"content\": \"{\\\"temp\\\": 20}\", \"tool_call_id\": \"abcdefghi\"}, {\"role\": \"assistant\", \"content\": \"<think>hmm</think>It is 20C.\", \"reasoning_content\": null}, {\"role\": \"user\", \"content\": \"Thanks \303\251\"}], \"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\"}",
     2751ULL, 0x905bd35efbef5f74ULL},
    {"llama-3.1-instruct.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}], \"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\", \"builtin_tools\": [\"brave_search\", \"code_interpreter\"]}",
     2431ULL, 0x34f886679d1cdbafULL},
    {"llama-3.2-instruct.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}}]}, {\"role\": \"tool\", \"content\": \"{\\\"temp\\\": 20}\", \"tool_call_id\": \"abcdefghi\"}, {\"role\": \"assistant\", \"content\": \"<think>hmm</think>It is 20C.\", \"reasoning_content\": null}, {\"role\": \"user\", \"content\": \"Thanks \303\251\"}], \"bos_token\": \"<|begin_of_text|>\", \"eos_token\": \"<|eot_id|>\", \"tools_in_user_message\": false}",
     2719ULL, 0x616417bc74b488bcULL},
    {"mistral-nemo-instruct.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}}]}, {\"role\": \"tool\", \"content\": \"{\\\"temp\\\": 20}\", \"tool_call_id\": \"abcdefghi\"}, {\"role\": \"assistant\", \"content\": \"It is 20C.\"}, {\"role\": \"user\", \"content\": \"Thanks \303\251\"}], \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}",
     974ULL, 0x710056b6c8c069f0ULL},
    {"gpt-oss.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"abcdefghi\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}}]}, {\"role\": \"tool\", \"content\": \"{\\\"temp\\\": 20}\", \"tool_call_id\": \"abcdefghi\"}, {\"role\": \"assistant\", \"content\": \"It is 20C.\", \"thinking\": \"t\"}, {\"role\": \"user\", \"content\": \"Thanks \303\251\"}], \"bos_token\": \"<|startoftext|>\", \"eos_token\": \"<|return|>\", \"builtin_tools\": [\"browser\", \"python\"], \"reasoning_effort\": \"low\"}",
     3286ULL, 0x5fbab1c3f3f4af82ULL},
    {"gpt-oss.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": false, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": \"Done\", \"thinking\": \"tt\"}], \"bos_token\": \"<|startoftext|>\", \"eos_token\": \"<|return|>\"}",
     893ULL, 0x5ab43290a043f329ULL},
    {"deepseek-r1-distill-qwen.jinja",
     "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"], \"default\": \"c\"}, \"days\": {\"type\": \"integer\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}, \"opts\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"boolean\"}}}, \"mix\": {\"oneOf\": [{\"type\": \"string\"}, {\"type\": \"number\", \"description\": \"num\"}]}, \"n\": {\"type\": [\"string\", \"null\"]}}, \"required\": [\"city\"]}}}, {\"type\": \"function\", \"function\": {\"name\": \"noargs\", \"description\": \"No args\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}], \"documents\": null, \"add_generation_prompt\": true, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris\077\"}, {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}}]}, {\"role\": \"tool\", \"content\": \"{\\\"temp\\\": 20}\", \"tool_call_id\": \"abcdefghi\"}, {\"role\": \"tool\", \"content\": \"more\"}, {\"role\": \"assistant\", \"content\": \"<think>hmm</think>It is 20C.\", \"reasoning_content\": null}, {\"role\": \"user\", \"content\": \"Thanks \303\251\"}], \"bos_token\": \"<\357\275\234begin\342\226\201of\342\226\201sentence\357\275\234>\", \"eos_token\": \"<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234>\", \"enable_thinking\": true}",
     578ULL, 0xf1b4d1a2f2013025ULL},
};

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void test_tools_vs_jinja2(void) {
    REQUIRE_SHARED(p, "fixtures/chat/templates/gpt-oss.jinja");
    (void)p;
    for (size_t i = 0; i < sizeof TOOLCASES / sizeof TOOLCASES[0]; i++) {
        const toolcase *c = &TOOLCASES[i];
        char rel[256];
        snprintf(rel, sizeof rel, "fixtures/chat/templates/%s", c->file);
        char *tmpl = pika_read_file(test_shared_path(rel), NULL);
        REQUIRE(tmpl != NULL, "read %s", rel);
        cJSON *vars = cJSON_Parse(c->vars);
        REQUIRE(vars != NULL, "vars %zu", i);
        size_t len;
        char *out = pika_jinja_render_string(tmpl, strlen(tmpl), vars, DATE, &len);
        CHECK(out != NULL, "%s: %s", c->file, pika_last_error());
        if (out) CHECK(len == c->len && fnv1a(out, len) == c->fnv, "tool case %zu (%s): %zu bytes, hash differs:\n%s", i, c->file, len, out);
        free(out);
        free(tmpl);
        cJSON_Delete(vars);
    }
}

/* ---------------------------------------------------------------- CLI */

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !memcmp(s + n - k, suf, k);
}

static char *run_cli(const char *args, int *st) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s prompt %s 2>/dev/null", test_pika_bin(), args);
    return test_run(cmd, st);
}

static void test_cli(void) {
    REQUIRE_SHARED(tdir, "fixtures/chat/templates");
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("%s not built", test_pika_bin());
    int st;
    char args[2048];
    /* qwen2.5 case (b), exact bytes, no newline added */
    snprintf(args, sizeof args,
             "--template-file %s/qwen2.5-instruct.jinja --system 'You are a careful math tutor. Put your final answer in "
             "\\boxed{}.' --user 'What is $1+1$?'",
             tdir);
    char *out = run_cli(args, &st);
    CHECK(st == 0 && !strcmp(out, "<|im_start|>system\nYou are a careful math tutor. Put your final answer in \\boxed{}.<|im_end|>\n"
                                  "<|im_start|>user\nWhat is $1+1$?<|im_end|>\n<|im_start|>assistant\n"),
          "qwen2.5 via CLI: [%s]", out);
    free(out);
    /* --messages file, --kwargs, --date, --no-generation-prompt */
    const char *tmp = test_tmpdir();
    char mpath[512];
    snprintf(mpath, sizeof mpath, "%s/m.json", tmp);
    const char *msgs = "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"<think>x</think>\\n\\nHello\"},"
                       "{\"role\":\"user\",\"content\":\"Bye\"}]";
    REQUIRE(pika_write_file_atomic(mpath, msgs, strlen(msgs)) == 0, "write %s", mpath);
    snprintf(args, sizeof args, "--template-file %s/qwen3.jinja --messages %s --kwargs '{\"enable_thinking\": false}'", tdir, mpath);
    out = run_cli(args, &st);
    CHECK(st == 0 && !strcmp(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                                  "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
          "qwen3 via CLI: [%s]", out);
    free(out);
    snprintf(args, sizeof args, "--template gpt-oss --user Hi --date 2025-01-02 --kwargs '{\"reasoning_effort\":\"high\"}'");
    out = run_cli(args, &st);
    CHECK(st == 0 && strstr(out, "Current date: 2025-01-02\n") && strstr(out, "Reasoning: high") &&
              ends_with(out, "<|start|>user<|message|>Hi<|end|><|start|>assistant"),
          "gpt-oss via CLI: [%s]", out);
    free(out);
    snprintf(args, sizeof args, "--template phi-3.5 --user Hi --no-generation-prompt --eos '<|endoftext|>'");
    out = run_cli(args, &st);
    CHECK(st == 0 && !strcmp(out, "<|user|>\nHi<|end|>\n<|endoftext|>"), "phi via CLI: [%s]", out);
    free(out);
    /* errors: exit 2 */
    out = run_cli("--template no-such-name --user Hi", &st);
    CHECK(st == 2 && !out[0], "unknown --template: status %d", st);
    free(out);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s prompt --template no-such-name --user Hi 2>&1", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "qwen3") && strstr(out, "llama-3.1"), "error lists the choices: %s", out);
    free(out);
    snprintf(args, sizeof args, "--template-file %s/no-such-file.jinja --user Hi", tmp);
    out = run_cli(args, &st);
    CHECK(st == 2 && !out[0], "missing template file: status %d", st);
    free(out);
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s/bad.jinja", tmp);
    REQUIRE(pika_write_file_atomic(tpath, "{% for m in messages %}", 23) == 0, "write %s", tpath);
    snprintf(cmd, sizeof cmd, "%s prompt --template-file %s --user Hi 2>&1", test_pika_bin(), tpath);
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "endfor") && strstr(out, "--template NAME"), "broken template: %d %s", st, out);
    free(out);
    out = run_cli("--template chatml", &st);
    CHECK(st == 2, "no conversation: status %d", st);
    free(out);
    out = run_cli("--template chatml --user Hi --kwargs '[1]'", &st);
    CHECK(st == 2, "bad kwargs: status %d", st);
    free(out);
    out = run_cli("--template chatml --user Hi --date 2024-13-45", &st);
    CHECK(st == 2, "bad date: status %d", st);
    free(out);
    out = run_cli("--list-templates", &st);
    CHECK(st == 0 && strstr(out, "mistral-nemo"), "list: %s", out);
    free(out);
}

static void test_cli_ids(void) {
    REQUIRE_SHARED(gpath, "fixtures/models/qwen2-tiny.gguf");
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("%s not built", test_pika_bin());
    int st;
    char args[1024];
    snprintf(args, sizeof args, "--model %s --system 'You are a helpful assistant.' --user 'What is 2+2?' --ids", gpath);
    char *out = run_cli(args, &st);
    CHECK(st == 0, "--ids status %d", st);
    CHECK(strncmp(out, "151644 8948 198 ", 16) == 0, "ids: %s", out);
    CHECK(strstr(out, " 151645 198 151644 77091 198\neoi 5\n") != NULL, "ids / eoi line: %s", out);
    free(out);
    /* the model's template (Qwen2 ChatML) without --ids prints the text */
    snprintf(args, sizeof args, "--model %s --user hi", gpath);
    out = run_cli(args, &st);
    CHECK(st == 0 && !strcmp(out, "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                                  "<|im_start|>assistant\n"),
          "model template: [%s]", out);
    free(out);
    snprintf(args, sizeof args, "--template-file /dev/null --user hi --ids");
    out = run_cli(args, &st);
    CHECK(st == 2, "--ids without --model: %d", st);
    free(out);
}

int main(void) {
    RUN(test_golden_cases);
    RUN(test_golden_builtins);
    RUN(test_eoi_suffix);
    RUN(test_eoi_trimmed_content);
    RUN(test_prompt_ids_qwen2);
    RUN(test_builtin_names);
    RUN(test_unknown_template);
    RUN(test_malformed_templates);
    RUN(test_hostile);
    RUN(test_tools_vs_jinja2);
    RUN(test_cli);
    RUN(test_cli_ids);
    return test_summary("chat");
}
