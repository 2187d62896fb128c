/* test_tokenizer.c — the tokenizer against llama.cpp's own test vectors (../shared/fixtures/tokenizer,
 * six vocabs), the token ids recorded with the model fixtures (../shared/fixtures/models/M.json),
 * round trips, special tokens, BOS/EOS/EOG rules, odd inputs (malformed UTF-8, NUL, empty, 1 MB),
 * streaming decode and the CLI. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#include "pika/gguf.h"
#include "pika/gguf_write.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"
#include "text/tokenizer_internal.h"

typedef struct {
    const char *name;
    int32_t bos_added; /* BOS id prepended with add_special=true, -1 when none */
    bool lossless;     /* detokenize(tokenize(s)) == s for every test string */
} vocab_info;

static const vocab_info VOCABS[] = {
    {"qwen2", -1, true},       {"llama-bpe", 128000, true}, {"llama-spm", 1, true},
    {"gpt-2", -1, true},       {"phi-3", 1, true},          {"deepseek-coder", 32013, true},
};
#define N_VOCABS 6

static pika_tokenizer *g_tok[N_VOCABS];

/* Tokenizer for vocab k (cached), or NULL when the fixture is absent. */
static pika_tokenizer *vocab(int k) {
    if (g_tok[k]) return g_tok[k];
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf", VOCABS[k].name);
    const char *path = test_shared_path(rel);
    if (!path) return NULL;
    pika_gguf *g = pika_gguf_open(path);
    if (!g) { fprintf(stderr, "open %s: %s\n", path, pika_last_error()); return NULL; }
    g_tok[k] = pika_tokenizer_from_gguf(g);
    if (!g_tok[k]) fprintf(stderr, "tokenizer %s: %s\n", path, pika_last_error());
    pika_gguf_close(g); /* the tokenizer must not depend on the GGUF staying open */
    return g_tok[k];
}

/* The .inp strings: split on "\n__ggml_vocab_test__\n", dropping the empty piece after the last. */
typedef struct {
    char *buf;
    int n;
    const char *s[64];
    size_t len[64];
} inp_file;

static int read_inp(const char *path, inp_file *f) {
    size_t n;
    f->buf = pika_read_file(path, &n);
    f->n = 0;
    if (!f->buf) return -1;
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sl = strlen(sep);
    char *p = f->buf, *end = f->buf + n;
    while (p < end && f->n < 64) {
        char *q = memmem(p, (size_t)(end - p), sep, sl);
        if (!q) break;
        f->s[f->n] = p;
        f->len[f->n] = (size_t)(q - p);
        f->n++;
        p = q + sl;
    }
    return 0;
}

/* The .out lines: one per string, " id id ..." */
static int read_out(const char *path, int32_t **ids, int *n_ids, int max) {
    size_t n;
    char *b = pika_read_file(path, &n);
    if (!b) return -1;
    int line = 0;
    char *p = b;
    while (*p && line < max) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        n_ids[line] = pika_parse_int_list(p, &ids[line]);
        line++;
        if (!e) break;
        p = e + 1;
    }
    free(b);
    return line;
}

static void print_ids(const char *label, const int32_t *a, int n) {
    fprintf(stderr, "  %s (%d):", label, n);
    for (int i = 0; i < n && i < 60; i++) fprintf(stderr, " %d", a[i]);
    fprintf(stderr, "\n");
}

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || !memcmp(a, b, (size_t)na * sizeof *a));
}

/* Every vector of one vocab with the given flags; bos: id expected first (add_special) or -1. */
static void check_vectors(int k, bool add_special, bool parse_special) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf.inp", VOCABS[k].name);
    REQUIRE_SHARED(inp_path, rel);
    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf.out", VOCABS[k].name);
    REQUIRE_SHARED(out_path, rel);
    pika_tokenizer *t = vocab(k);
    REQUIRE(t != NULL, "tokenizer %s did not load", VOCABS[k].name);
    inp_file f;
    REQUIRE(read_inp(inp_path, &f) == 0, "read %s", inp_path);
    int32_t *want[64] = {0};
    int n_want[64] = {0};
    int lines = read_out(out_path, want, n_want, 64);
    CHECK(f.n == 46 && lines == 46, "%s: %d strings, %d lines (want 46)", VOCABS[k].name, f.n, lines);
    int bad = 0;
    for (int i = 0; i < f.n && i < lines; i++) {
        int32_t *got;
        int n = pika_tokenize(t, f.s[i], f.len[i], add_special, parse_special, &got);
        CHECK(n >= 0, "tokenize failed: %s", pika_last_error());
        if (n < 0) continue;
        int32_t *exp = want[i];
        int ne = n_want[i];
        int32_t tmp[1024];
        int32_t bos = add_special ? VOCABS[k].bos_added : -1;
        if (bos >= 0 && ne < 1023) {
            tmp[0] = bos;
            memcpy(tmp + 1, exp, (size_t)ne * sizeof *exp);
            exp = tmp;
            ne++;
        }
        if (!same_ids(got, n, exp, ne)) {
            if (bad++ < 3) {
                fprintf(stderr, "FAIL %s string %d (add_special=%d parse_special=%d): \"%.*s\"\n", VOCABS[k].name, i,
                        add_special, parse_special, (int)(f.len[i] > 80 ? 80 : f.len[i]), f.s[i]);
                print_ids("want", exp, ne);
                print_ids("got ", got, n);
            }
        }
        free(got);
    }
    CHECK(bad == 0, "%s: %d of %d vectors differ", VOCABS[k].name, bad, f.n);
    for (int i = 0; i < lines; i++) free(want[i]);
    free(f.buf);
}

static void test_vectors_qwen2(void) { check_vectors(0, false, false); check_vectors(0, false, true); }
static void test_vectors_llama_bpe(void) { check_vectors(1, false, false); check_vectors(1, false, true); }
static void test_vectors_llama_spm(void) { check_vectors(2, false, false); check_vectors(2, false, true); }
static void test_vectors_gpt2(void) { check_vectors(3, false, false); check_vectors(3, false, true); }
static void test_vectors_phi3(void) { check_vectors(4, false, false); check_vectors(4, false, true); }
static void test_vectors_deepseek_coder(void) { check_vectors(5, false, false); check_vectors(5, false, true); }

/* White-space edge cases (U+180E is not white space, U+0085 and U+3000 are; U+FEFF and U+200B
 * are not) and case-mixed contractions. Expected ids made with Hugging Face tokenizers.js 0.2.0
 * (Oniguruma regex semantics) from a tokenizer.json rebuilt from the same GGUF vocab and merges. */
static void test_whitespace_golden(void) {
    static const char *const texts[] = {
        "a\xe1\xa0\x8e b", "x \xe1\xa0\x8e\xe1\xa0\x8e y\n", "\xc2\x85 hi\xc2\x85\xc2\x85", "\xef\xbb\xbf'll \xef\xbb\xbf",
        "\xe3\x80\x80\xe3\x80\x80x\xe2\x80\xa8\xe2\x80\xa9 ", "it'S I'LL 'Re\xc2\xa0\xc2\xa0z",
        "\xd9\xa3\xe2\x91\xa0\xc2\xb2\xe2\x85\xab 12345", "e\xcc\x81\xcc\x80 \xcf\x89\xe2\x80\x8b!",
    };
    static const char *const want[2][8] = {
        {"64,123970,236,293", "87,86089,254,236,123970,236,379,198", "126,227,15588,126,227,126,227", "3225,6,654,75780",
         "22441,22441,87,378,101,378,102,220", "275,13272,358,6,4086,364,693,4102,4102,89",
         "149,96,48312,254,29456,70467,104,220,16,17,18,19,20", "68,53839,96549,17383,231,15692,0"},
        {"64,157,254,236,293", "87,87189,254,236,157,254,236,379,198", "116360,15960,116360,116360", "3305,6,657,76880",
         "23249,23249,87,378,101,378,102,220", "275,13575,358,6,4178,364,697,4194,111396",
         "117413,118075,30556,71567,104,220,4513,1774", "68,54939,97649,117774,16067,0"},
    };
    for (int v = 0; v < 2; v++) {
        pika_tokenizer *t = vocab(v);
        if (!t) SKIP_TEST("*** ../shared tokenizer fixtures are ABSENT: test skipped ***");
        for (int i = 0; i < 8; i++) {
            int32_t *ids, *exp;
            int n = pika_tokenize(t, texts[i], strlen(texts[i]), false, false, &ids);
            int ne = pika_parse_int_list(want[v][i], &exp);
            CHECK(same_ids(ids, n, exp, ne), "%s golden %d", VOCABS[v].name, i);
            if (!same_ids(ids, n, exp, ne)) { print_ids("want", exp, ne); print_ids("got ", ids, n); }
            free(ids);
            free(exp);
        }
    }
}

/* add_special=true: BOS exactly where the README table says, nothing else changes. */
static void test_vectors_add_special(void) {
    for (int k = 0; k < N_VOCABS; k++) check_vectors(k, true, false);
}

static void test_bos_eos_flags(void) {
    for (int k = 0; k < N_VOCABS; k++) {
        pika_tokenizer *t = vocab(k);
        if (!t) SKIP_TEST("*** ../shared fixture for vocab %s is ABSENT: test skipped ***", VOCABS[k].name);
        CHECK(pika_tokenizer_adds_bos(t) == (VOCABS[k].bos_added >= 0), "%s adds_bos", VOCABS[k].name);
        CHECK(!pika_tokenizer_adds_eos(t), "%s adds_eos", VOCABS[k].name);
        if (VOCABS[k].bos_added >= 0)
            CHECK(pika_tokenizer_bos(t) == VOCABS[k].bos_added, "%s bos %d", VOCABS[k].name, pika_tokenizer_bos(t));
        /* empty input: nothing, or just BOS */
        int32_t *ids;
        int n = pika_tokenize(t, "", 0, false, false, &ids);
        CHECK(n == 0, "%s: empty -> %d ids", VOCABS[k].name, n);
        free(ids);
        n = pika_tokenize(t, "", 0, true, true, &ids);
        CHECK(n == (VOCABS[k].bos_added >= 0 ? 1 : 0), "%s: empty + add_special -> %d ids", VOCABS[k].name, n);
        if (n == 1) CHECK(ids[0] == VOCABS[k].bos_added, "%s: BOS id %d", VOCABS[k].name, ids[0]);
        free(ids);
    }
}

static void test_eog(void) {
    struct { int k; const char *text; int eog; } cases[] = {
        {0, "<|im_end|>", 1}, {0, "<|endoftext|>", 1}, {0, "<|im_start|>", 0}, {0, "hello", 0},
        {1, "<|eot_id|>", 1}, {1, "<|end_of_text|>", 1}, {1, "<|begin_of_text|>", 0}, {1, "<|start_header_id|>", 0},
        {2, "</s>", 1}, {2, "<s>", 0}, {4, "<|end|>", 1}, {4, "<|endoftext|>", 1}, {4, "<|user|>", 0},
        {3, "<|endoftext|>", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pika_tokenizer *t = vocab(cases[i].k);
        if (!t) SKIP_TEST("*** ../shared tokenizer fixtures are ABSENT: test skipped ***");
        int32_t id = pika_tokenizer_find(t, cases[i].text, strlen(cases[i].text));
        REQUIRE(id >= 0, "%s: token %s not found", VOCABS[cases[i].k].name, cases[i].text);
        CHECK(pika_tokenizer_is_eog(t, id) == cases[i].eog, "%s: is_eog(%s)", VOCABS[cases[i].k].name, cases[i].text);
    }
    pika_tokenizer *q = vocab(0);
    if (q) {
        CHECK(pika_tokenizer_eos(q) == 151643, "qwen2 eos %d", pika_tokenizer_eos(q));
        CHECK(!pika_tokenizer_is_eog(q, -1) && !pika_tokenizer_is_eog(q, 1 << 30), "out of range ids are not EOG");
    }
}

/* detokenize(tokenize(s)) == s for every test string (render_special off: none occur). */
static void test_round_trip(void) {
    for (int k = 0; k < N_VOCABS; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf.inp", VOCABS[k].name);
        REQUIRE_SHARED(inp_path, rel);
        pika_tokenizer *t = vocab(k);
        REQUIRE(t != NULL, "vocab %s", VOCABS[k].name);
        inp_file f;
        REQUIRE(read_inp(inp_path, &f) == 0, "read");
        int bad = 0;
        for (int i = 0; i < f.n; i++) {
            for (int as = 0; as < 2; as++) {
                int32_t *ids;
                int n = pika_tokenize(t, f.s[i], f.len[i], as, false, &ids);
                char *out;
                size_t len;
                int rc = pika_detokenize(t, ids, n, false, &out, &len);
                CHECK(rc == 0, "detokenize: %s", pika_last_error());
                if (rc == 0 && (len != f.len[i] || memcmp(out, f.s[i], len))) {
                    if (bad++ < 3)
                        fprintf(stderr, "  %s string %d add_special=%d: \"%.*s\" -> \"%.*s\"\n", VOCABS[k].name, i, as,
                                (int)f.len[i], f.s[i], (int)len, out);
                }
                free(out);
                free(ids);
            }
        }
        CHECK(bad == 0 || !VOCABS[k].lossless, "%s: %d round trips differ", VOCABS[k].name, bad);
        free(f.buf);
    }
}

/* Special tokens: only with parse_special; user-defined ones always (llama.cpp semantics). */
static void test_parse_special(void) {
    pika_tokenizer *t = vocab(0);
    if (!t) SKIP_TEST("*** ../shared fixture ggml-vocab-qwen2.gguf is ABSENT: test skipped ***");
    const char *s = "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n";
    int32_t *ids;
    int n = pika_tokenize(t, s, strlen(s), true, true, &ids);
    REQUIRE(n > 0, "tokenize");
    CHECK(ids[0] == 151644, "first id %d", ids[0]);
    int n_start = 0, n_end = 0;
    for (int i = 0; i < n; i++) { n_start += ids[i] == 151644; n_end += ids[i] == 151645; }
    CHECK(n_start == 2 && n_end == 1, "im_start x%d im_end x%d", n_start, n_end);
    /* the Qwen chat suffix <|im_end|>\n<|im_start|>assistant\n is 5 tokens */
    CHECK(n >= 5 && ids[n - 5] == 151645 && ids[n - 4] == 198 && ids[n - 3] == 151644 && ids[n - 2] == 77091 &&
              ids[n - 1] == 198, "EOI suffix");
    char *out;
    size_t len;
    REQUIRE(pika_detokenize(t, ids, n, true, &out, &len) == 0, "detok");
    CHECK(len == strlen(s) && !memcmp(out, s, len), "render_special round trip: %s", out);
    free(out);
    REQUIRE(pika_detokenize(t, ids, n, false, &out, &len) == 0, "detok");
    CHECK(!strcmp(out, "user\nHi there\nassistant\n"), "specials hidden: '%s'", out);
    free(out);
    free(ids);
    /* parse_special=false: the texts are ordinary text */
    n = pika_tokenize(t, s, strlen(s), true, false, &ids);
    for (int i = 0; i < n; i++) CHECK(ids[i] < 151643, "special id %d without parse_special", ids[i]);
    REQUIRE(pika_detokenize(t, ids, n, true, &out, &len) == 0, "detok");
    CHECK(len == strlen(s) && !memcmp(out, s, len), "plain round trip");
    free(out);
    free(ids);
    /* a user-defined token ([PAD151646]) is split out even without parse_special */
    const char *u = "a[PAD151646]b";
    n = pika_tokenize(t, u, strlen(u), false, false, &ids);
    int found = 0;
    for (int i = 0; i < n; i++) found |= ids[i] == 151646;
    CHECK(found, "user-defined token matched");
    free(ids);
    /* SPM: text after a special token gets the space prefix again (llama.cpp) */
    pika_tokenizer *spm = vocab(2);
    if (spm) {
        const char *x = "Hi</s>Hi";
        n = pika_tokenize(spm, x, strlen(x), false, true, &ids);
        CHECK(n == 3 && ids[1] == 2 && ids[0] == ids[2], "spm special split: n=%d", n);
        free(ids);
    }
    /* Phi-3: special tokens strip spaces to their right */
    pika_tokenizer *phi = vocab(4);
    if (phi) {
        const char *x = "<|user|>\nHello<|end|>";
        n = pika_tokenize(phi, x, strlen(x), false, true, &ids);
        CHECK(n >= 3 && ids[0] == 32010 && ids[n - 1] == 32007, "phi-3 specials: n=%d first=%d", n, n ? ids[0] : -1);
        int32_t *ids2;
        int n2 = pika_tokenize(phi, "Hello", 5, false, false, &ids2);
        CHECK(n == n2 + 2 && !memcmp(ids + 1, ids2, (size_t)n2 * sizeof *ids), "phi-3: newline after <|user|> stripped");
        free(ids2);
        free(ids);
    }
}

/* The token ids recorded with the model fixtures: add_special=true, parse_special=true. */
static void test_model_prompts(void) {
    const char *models[] = {"llama-tiny", "qwen2-tiny", "qwen3-tiny", "stories260K", "llama-q-Q8_0", "llama-q-Q4_K_M"};
    int checked = 0;
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char rel[256];
        snprintf(rel, sizeof rel, "fixtures/models/%s.json", models[m]);
        const char *jp = test_shared_path(rel);
        snprintf(rel, sizeof rel, "fixtures/models/%s.gguf", models[m]);
        const char *gp = test_shared_path(rel);
        if (!jp || !gp) { fprintf(stderr, "SKIP part: %s absent\n", models[m]); continue; }
        char *js = pika_read_file(jp, NULL);
        cJSON *j = js ? cJSON_Parse(js) : NULL;
        REQUIRE(j != NULL, "parse %s", jp);
        pika_gguf *g = pika_gguf_open(gp);
        REQUIRE(g != NULL, "open %s: %s", gp, pika_last_error());
        pika_tokenizer *t = pika_tokenizer_from_gguf(g);
        pika_gguf_close(g);
        REQUIRE(t != NULL, "tokenizer %s: %s", gp, pika_last_error());
        cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "prompts")) {
            const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "text"));
            cJSON *want = cJSON_GetObjectItemCaseSensitive(p, "token_ids");
            cJSON *as = cJSON_GetObjectItemCaseSensitive(p, "add_special");
            cJSON *ps = cJSON_GetObjectItemCaseSensitive(p, "parse_special");
            if (!text || !cJSON_IsArray(want)) continue;
            int32_t *ids;
            int n = pika_tokenize(t, text, strlen(text), !as || cJSON_IsTrue(as), !ps || cJSON_IsTrue(ps), &ids);
            int nw = cJSON_GetArraySize(want), ok = n == nw;
            for (int i = 0; ok && i < n; i++) ok = ids[i] == (int32_t)cJSON_GetArrayItem(want, i)->valuedouble;
            CHECK(ok, "%s prompt \"%.40s...\": %d ids, want %d", models[m], text, n, nw);
            if (!ok) print_ids("got", ids, n);
            /* and back: the ids decode to the prompt text (specials rendered) */
            char *out;
            size_t len;
            CHECK(pika_detokenize(t, ids, n, true, &out, &len) == 0, "detok");
            const char *body = text;
            size_t blen = strlen(text);
            if (pika_tokenizer_adds_bos(t)) {
                int bl;
                const char *bt = pika_tokenizer_token_text(t, pika_tokenizer_bos(t), &bl);
                CHECK(len >= (size_t)bl && !memcmp(out, bt, (size_t)bl), "BOS text first");
                CHECK(len - (size_t)bl == blen && !memcmp(out + bl, body, blen), "%s: prompt round trip", models[m]);
            } else {
                CHECK(len == blen && !memcmp(out, body, blen), "%s: prompt round trip", models[m]);
            }
            free(out);
            free(ids);
            checked++;
        }
        pika_tokenizer_free(t);
        cJSON_Delete(j);
        free(js);
    }
    if (checked == 0) SKIP_TEST("*** ../shared/fixtures/models is ABSENT: test skipped ***");
    CHECK(checked >= 20, "only %d prompts checked", checked);
}

/* Reference for the BPE input clean-up: a byte that does not start a decodable sequence -> U+FFFD,
 * a decodable sequence giving a surrogate or > U+10FFFF -> one U+FFFD; everything else (NUL too)
 * kept. want must hold 3 * n bytes. Returns the length. */
static size_t clean_ref(const char *in, size_t n, char *want) {
    size_t m = 0;
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        int L = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
        int ok = L > 0 && i + (size_t)L <= n;
        for (int q = 1; ok && q < L; q++) ok = (s[i + q] & 0xC0) == 0x80;
        if (!ok) { memcpy(want + m, "\xef\xbf\xbd", 3); m += 3; i++; continue; }
        uint32_t cp = L == 1 ? c : (c & (0x7Fu >> L));
        for (int q = 1; q < L; q++) cp = (cp << 6) | (s[i + q] & 0x3F);
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) { memcpy(want + m, "\xef\xbf\xbd", 3); m += 3; }
        else { memcpy(want + m, s + i, (size_t)L); m += (size_t)L; }
        i += (size_t)L;
    }
    return m;
}

/* Deterministic fuzz: random mixes of ASCII, spaces, UTF-8, bad bytes, NULs and special-token
 * texts. Never a crash or an out-of-range id; BPE decodes to the cleaned input; SPM round-trips
 * valid UTF-8 without special texts exactly. */
static void test_fuzz(void) {
    static const char *const parts[] = {"a", "Z", "7", " ", "  ", "\n", "\t", "\r\n", "'s", "!", "\xc3\xa9", "\xe4\xb8\xad",
                                        "\xf0\x9f\xa6\x99", "\xe1\x9e\x80", "\xd0\xbf", "\xff", "\xc3", "\x80", "\xed\xa0\x80",
                                        "<|im_start|>", "<|im_end|>", "<s>", "</s>", "[PAD151650]", "<|endoftext|>", "\0"};
    const int n_parts = (int)(sizeof parts / sizeof parts[0]), n_clean = 15;
    uint64_t x = 88172645463325252ULL;
    for (int k = 0; k < N_VOCABS; k++) {
        pika_tokenizer *t = vocab(k);
        if (!t) SKIP_TEST("*** ../shared tokenizer fixtures are ABSENT: test skipped ***");
        bool spm = !strcmp(pika_tokenizer_model(t), "llama");
        for (int it = 0; it < 150; it++) {
            char s[600], want[1800];
            size_t n = 0;
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            int clean = (x >> 40) % 2, len = (int)((x >> 8) % 60);
            for (int i = 0; i < len; i++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                int p = (int)((x >> 20) % (uint64_t)(clean ? n_clean : n_parts));
                size_t pl = p == n_parts - 1 ? 1 : strlen(parts[p]);
                memcpy(s + n, parts[p], pl);
                n += pl;
            }
            bool ps = (x >> 3) & 1, as = (x >> 5) & 1;
            int32_t *ids;
            int m = pika_tokenize(t, s, n, as, ps, &ids);
            REQUIRE(m >= 0, "%s fuzz %d: %s", VOCABS[k].name, it, pika_last_error());
            int in_range = 1;
            for (int i = 0; i < m; i++) in_range &= ids[i] >= 0 && ids[i] < pika_tokenizer_n_vocab(t);
            CHECK(in_range, "%s fuzz %d: id out of range", VOCABS[k].name, it);
            char *out;
            size_t ol;
            REQUIRE(pika_detokenize(t, ids, m, true, &out, &ol) == 0, "detok");
            if (!spm && !ps) {
                int bl;
                const char *bt = as && pika_tokenizer_adds_bos(t) ? pika_tokenizer_token_text(t, pika_tokenizer_bos(t), &bl) : NULL;
                size_t off = bt ? (size_t)bl : 0;
                size_t wl = clean_ref(s, n, want);
                CHECK(ol == off + wl && !memcmp(out + off, want, wl), "%s fuzz %d: BPE decode != cleaned input", VOCABS[k].name, it);
            }
            if (spm && clean && !ps) {
                free(out);
                REQUIRE(pika_detokenize(t, ids, m, false, &out, &ol) == 0, "detok");
                CHECK(ol == n && !memcmp(out, s, n), "%s fuzz %d: SPM round trip", VOCABS[k].name, it);
            }
            free(out);
            free(ids);
        }
    }
}

/* Malformed UTF-8 and NUL bytes: no crash; SPM keeps the bytes, BPE turns bad bytes into U+FFFD. */
static void test_odd_input(void) {
    static const char bad[] = "ok \xff\xfe x\xc3( \xe2\x82 end \xf0\x9f\xa6 \x80\x80 \xed\xa0\x80 \xf7\xbf\xbf\xbf a\0b\0\0c";
    size_t bl = sizeof bad - 1;
    for (int k = 0; k < N_VOCABS; k++) {
        pika_tokenizer *t = vocab(k);
        if (!t) SKIP_TEST("*** ../shared tokenizer fixtures are ABSENT: test skipped ***");
        for (int ps = 0; ps < 2; ps++) {
            int32_t *ids;
            int n = pika_tokenize(t, bad, bl, true, ps, &ids);
            REQUIRE(n > 0, "%s: malformed input failed: %s", VOCABS[k].name, pika_last_error());
            for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < pika_tokenizer_n_vocab(t), "id in range");
            char *out;
            size_t len;
            REQUIRE(pika_detokenize(t, ids, n, false, &out, &len) == 0, "detok");
            if (!strcmp(pika_tokenizer_model(t), "llama")) {
                /* SPM cuts symbols by the lead byte's length (llama.cpp): a bad lead byte may swallow
                 * the escaped space after it, so the space comes back as the bytes of U+2581 */
                CHECK(len > 0, "%s: decodes", VOCABS[k].name);
            } else {
                char want[512];
                size_t m = clean_ref(bad, bl, want);
                CHECK(len == m && !memcmp(out, want, m), "%s: BPE clean-up of malformed UTF-8", VOCABS[k].name);
            }
            free(out);
            free(ids);
        }
        if (!strcmp(pika_tokenizer_model(t), "llama")) {
            /* no space right after a bad lead byte: the raw bytes come back exactly */
            static const char sb[] = "ok\xff\xfex\xc3(\xe2\x82" "end\xf0\x9f\xa6!!!\x80\x80 \xed\xa0\x80" "a\0b\0\0c";
            int32_t *ids;
            int n = pika_tokenize(t, sb, sizeof sb - 1, true, false, &ids);
            char *out;
            size_t len;
            REQUIRE(n > 0 && pika_detokenize(t, ids, n, false, &out, &len) == 0, "spm odd");
            CHECK(len == sizeof sb - 1 && !memcmp(out, sb, len), "%s: SPM keeps malformed bytes exactly", VOCABS[k].name);
            free(out);
            free(ids);
            /* llama.cpp's exact ids for a swallowed space: <0xFE> <0xE2> <0x96> <0x81> x */
            n = pika_tokenize(t, "\xfe x", 3, false, false, &ids);
            int32_t want[] = {29871, 257, 229, 153, 132, 29916};
            CHECK(n == 6 && !memcmp(ids, want, sizeof want), "%s: swallowed space ids (n=%d)", VOCABS[k].name, n);
            free(ids);
        }
        /* a lone NUL and a lone invalid byte */
        int32_t *ids;
        int n = pika_tokenize(t, "\0", 1, false, false, &ids);
        CHECK(n >= 1, "%s: NUL -> %d ids", VOCABS[k].name, n);
        free(ids);
        n = pika_tokenize(t, "\xff", 1, false, false, &ids);
        CHECK(n >= 1, "%s: 0xFF -> %d ids", VOCABS[k].name, n);
        free(ids);
    }
    /* bad ids are errors, not crashes */
    pika_tokenizer *t = vocab(0);
    if (t) {
        int32_t bad_ids[] = {5, -1};
        char *out;
        size_t len;
        CHECK(pika_detokenize(t, bad_ids, 2, false, &out, &len) == -1 && out == NULL, "bad id rejected");
        bad_ids[1] = pika_tokenizer_n_vocab(t);
        CHECK(pika_detokenize(t, bad_ids, 2, false, &out, &len) == -1, "id n_vocab rejected");
        char buf[8];
        CHECK(pika_token_to_piece(t, -3, true, buf, 8) == -1, "piece of bad id");
    }
}

/* 1 MB inputs (prose, one 1 MB "word", 1 MB of spaces): finish, and round trip. No timing asserts. */
static void test_one_megabyte(void) {
    size_t n = 1 << 20;
    char *prose = pika_malloc(n + 1), *word = pika_malloc(n + 1), *spaces = pika_malloc(n + 1);
    const char *frag = "The quick brown fox jumps over the lazy dog; 12345 times\n\tand then some (\xf0\x9f\xa6\x99 llama). ";
    size_t fl = strlen(frag);
    for (size_t i = 0; i < n; i++) { prose[i] = frag[i % fl]; word[i] = "ab"[(i * 7 / 3) & 1]; spaces[i] = ' '; }
    /* keep the emoji intact at the end */
    for (size_t i = n - 8; i < n; i++) prose[i] = '.';
    const char *inputs[] = {prose, word, spaces};
    int vk[] = {0, 1, 2};
    for (int v = 0; v < 3; v++) {
        pika_tokenizer *t = vocab(vk[v]);
        if (!t) continue;
        for (int i = 0; i < 3; i++) {
            double t0 = pika_now();
            int32_t *ids;
            int m = pika_tokenize(t, inputs[i], n, false, false, &ids);
            double dt = pika_now() - t0;
            REQUIRE(m > 0, "%s 1MB input %d failed: %s", VOCABS[vk[v]].name, i, pika_last_error());
            char *out;
            size_t len;
            REQUIRE(pika_detokenize(t, ids, m, false, &out, &len) == 0, "detok");
            CHECK(len == n && !memcmp(out, inputs[i], n), "%s 1MB input %d round trip", VOCABS[vk[v]].name, i);
            fprintf(stderr, "  %s 1MB input %d: %d tokens in %.3f s\n", VOCABS[vk[v]].name, i, m, dt);
            free(out);
            free(ids);
        }
    }
    free(prose);
    free(word);
    free(spaces);
}

/* The SPM word-cut speed-up (spm_split_ok) gives exactly llama.cpp's whole-text merge result. */
static void test_spm_cut_is_exact(void) {
    const int ks[] = {2, 4};
    for (int q = 0; q < 2; q++) {
        int k = ks[q];
        char rel[256];
        snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf.inp", VOCABS[k].name);
        REQUIRE_SHARED(inp_path, rel);
        pika_tokenizer *t = vocab(k);
        REQUIRE(t != NULL, "vocab");
        CHECK(t->spm_split_ok, "%s: the cut applies to this vocab", VOCABS[k].name);
        inp_file f;
        REQUIRE(read_inp(inp_path, &f) == 0, "read");
        /* all strings joined (with spaces and a few odd bytes) as one more case */
        size_t jl = 0;
        char *joined = pika_malloc(8192);
        for (int i = 0; i < f.n && jl + f.len[i] + 8 < 8192; i++) {
            memcpy(joined + jl, f.s[i], f.len[i]);
            jl += f.len[i];
            memcpy(joined + jl, i % 3 ? "  " : " \xfe ", i % 3 ? 2 : 3);
            jl += i % 3 ? 2 : 3;
        }
        for (int i = 0; i <= f.n; i++) {
            const char *s = i < f.n ? f.s[i] : joined;
            size_t n = i < f.n ? f.len[i] : jl;
            int32_t *a, *b;
            t->spm_split_ok = true;
            int na = pika_tokenize(t, s, n, true, false, &a);
            t->spm_split_ok = false;
            int nb = pika_tokenize(t, s, n, true, false, &b);
            t->spm_split_ok = true;
            CHECK(same_ids(a, na, b, nb), "%s string %d: cut and uncut differ", VOCABS[k].name, i);
            free(a);
            free(b);
        }
        free(joined);
        free(f.buf);
    }
}

/* Streaming decode gives the same bytes as whole decode, and never splits a UTF-8 character. */
static void test_stream(void) {
    for (int k = 0; k < N_VOCABS; k++) {
        pika_tokenizer *t = vocab(k);
        if (!t) SKIP_TEST("*** ../shared tokenizer fixtures are ABSENT: test skipped ***");
        const char *s = "Hello \xf0\x9f\xa6\x99 world \xe1\x9e\x80\xe1\x9e\x9a and \xd0\xbf\xd1\x80\xd0\xb8 \xe5\x9b\xbe!";
        int32_t *ids;
        int n = pika_tokenize(t, s, strlen(s), true, false, &ids);
        REQUIRE(n > 0, "tokenize");
        pika_detok_stream st;
        pika_detok_stream_init(&st, t, false);
        char acc[1024], buf[1024];
        size_t m = 0;
        for (int i = 0; i < n; i++) {
            int w = pika_detok_stream_push(&st, ids[i], buf, (int)sizeof buf);
            REQUIRE(w >= 0, "push: %s", pika_last_error());
            /* every emitted chunk is whole UTF-8 */
            size_t p = 0;
            while (p < (size_t)w) {
                unsigned c = (unsigned char)buf[p];
                int L = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
                CHECK(p + (size_t)L <= (size_t)w, "%s: chunk splits a character", VOCABS[k].name);
                p += (size_t)L;
            }
            memcpy(acc + m, buf, (size_t)w);
            m += (size_t)w;
        }
        int w = pika_detok_stream_flush(&st, buf, (int)sizeof buf);
        CHECK(w == 0, "nothing held at the end");
        CHECK(m == strlen(s) && !memcmp(acc, s, m), "%s: stream == text: '%.*s'", VOCABS[k].name, (int)m, acc);
        free(ids);
    }
    /* an incomplete sequence is held and then flushed raw */
    pika_tokenizer *t = vocab(2);
    if (t) {
        pika_detok_stream st;
        pika_detok_stream_init(&st, t, false);
        char buf[64];
        int32_t b0 = pika_tokenizer_find(t, "<0xF0>", 6);
        REQUIRE(b0 >= 0, "byte token");
        CHECK(pika_detok_stream_push(&st, b0, buf, 64) == 0, "lead byte held");
        CHECK(pika_detok_stream_flush(&st, buf, 64) == 1 && (unsigned char)buf[0] == 0xF0, "flushed");
        /* found by fuzzing (fuzz/corpus/tokenizer/regress-stream-two-bos): only a BOS pushed first is
         * exempt from the leading-space rule; "<s><ph" with add_special + parse_special is
         * BOS BOS "▁<" "ph", and both decoders keep the space after the second BOS */
        int32_t *ids;
        int n = pika_tokenize(t, "<s><ph", 6, true, true, &ids);
        REQUIRE(n == 4 && ids[0] == 1 && ids[1] == 1, "BOS BOS ...: n=%d", n);
        char *whole;
        size_t wl;
        REQUIRE(pika_detokenize(t, ids, n, true, &whole, &wl) == 0, "detokenize");
        pika_detok_stream_init(&st, t, true);
        char acc[64];
        int m = 0;
        for (int i = 0; i < n; i++) {
            int w = pika_detok_stream_push(&st, ids[i], buf, 64);
            memcpy(acc + m, buf, (size_t)w);
            m += w;
        }
        m += pika_detok_stream_flush(&st, acc + m, 64 - m);
        CHECK((size_t)m == wl && !memcmp(acc, whole, wl), "stream '%.*s' == whole '%s'", m, acc, whole);
        CHECK(!strcmp(whole, "<s><s> <ph"), "whole: '%s'", whole);
        free(whole);
        free(ids);
    }
}

/* The CLI: pika tokenize / detokenize agree with the library. */
static void test_cli(void) {
    REQUIRE_SHARED(gp, "fixtures/tokenizer/ggml-vocab-qwen2.gguf");
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("CLI %s not built", test_pika_bin());
    const char *dir = test_tmpdir();
    char inp[512], cmd[16384];
    snprintf(inp, sizeof inp, "%s/in.txt", dir);
    const char *s = "<|im_start|>user\nHello world  \xf0\x9f\xa6\x99<|im_end|>\n";
    FILE *f = fopen(inp, "wb");
    REQUIRE(f != NULL, "tmp file");
    fwrite(s, 1, strlen(s), f);
    fclose(f);
    pika_tokenizer *t = vocab(0);
    REQUIRE(t != NULL, "vocab");
    for (int ps = 0; ps < 2; ps++) {
        snprintf(cmd, sizeof cmd, "%s tokenize --model %s %s < %s", test_pika_bin(), gp, ps ? "--parse-special" : "", inp);
        int st;
        char *out = test_run(cmd, &st);
        CHECK(st == 0, "tokenize exit %d", st);
        int32_t *ids;
        int n = pika_tokenize(t, s, strlen(s), true, ps, &ids);
        char want[4096];
        size_t m = 0;
        for (int i = 0; i < n; i++) m += (size_t)snprintf(want + m, sizeof want - m, i ? " %d" : "%d", ids[i]);
        snprintf(want + m, sizeof want - m, "\n");
        CHECK(!strcmp(out, want), "CLI ids '%s' want '%s'", out, want);
        /* and back */
        char ids_arg[4096];
        snprintf(ids_arg, sizeof ids_arg, "%s", want);
        ids_arg[strlen(ids_arg) - 1] = 0;
        snprintf(cmd, sizeof cmd, "%s detokenize --model %s --ids \"%s\"", test_pika_bin(), gp, ids_arg);
        char *back = test_run(cmd, &st);
        CHECK(st == 0 && !strcmp(back, s), "CLI detokenize: '%s'", back);
        free(back);
        /* ids on stdin */
        snprintf(cmd, sizeof cmd, "%s tokenize --model %s %s < %s | %s detokenize --model %s", test_pika_bin(), gp,
                 ps ? "--parse-special" : "", inp, test_pika_bin(), gp);
        back = test_run(cmd, &st);
        CHECK(st == 0 && !strcmp(back, s), "CLI pipe: '%s'", back);
        free(back);
        free(out);
        free(ids);
    }
    /* empty stdin: an empty line; BOS for llama-bpe */
    snprintf(cmd, sizeof cmd, "%s tokenize --model %s < /dev/null", test_pika_bin(), gp);
    int st;
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && !strcmp(out, "\n"), "empty: '%s'", out);
    free(out);
    const char *bpe = test_shared_path("fixtures/tokenizer/ggml-vocab-llama-bpe.gguf");
    if (bpe) {
        snprintf(cmd, sizeof cmd, "printf 'Hello' | %s tokenize --model %s", test_pika_bin(), bpe);
        out = test_run(cmd, &st);
        CHECK(st == 0 && !strcmp(out, "128000 9906\n"), "llama-bpe Hello: '%s'", out);
        free(out);
        snprintf(cmd, sizeof cmd, "printf 'Hello' | %s tokenize --model %s --no-bos", test_pika_bin(), bpe);
        out = test_run(cmd, &st);
        CHECK(st == 0 && !strcmp(out, "9906\n"), "llama-bpe Hello --no-bos: '%s'", out);
        free(out);
    }
    /* errors: exit 2 with a message */
    snprintf(cmd, sizeof cmd, "%s tokenize --model /nonexistent.gguf < /dev/null 2>/dev/null", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 2, "missing model exit %d", st);
    free(out);
    snprintf(cmd, sizeof cmd, "%s detokenize --model %s --ids \"1 x\" 2>/dev/null", test_pika_bin(), gp);
    out = test_run(cmd, &st);
    CHECK(st == 2, "bad ids exit %d", st);
    free(out);
    snprintf(cmd, sizeof cmd, "%s detokenize --model %s --ids \"999999999\" 2>/dev/null", test_pika_bin(), gp);
    out = test_run(cmd, &st);
    CHECK(st == 2, "out of range id exit %d", st);
    free(out);
    unlink(inp);
    rmdir(dir);
}

/* Write a copy of the gpt-2 vocab with another tokenizer.ggml.pre / model to dir; returns the path. */
static const char *gpt2_variant(const char *dir, const char *model, const char *pre) {
    static char path[8][512];
    static int slot;
    const char *src = test_shared_path("fixtures/tokenizer/ggml-vocab-gpt-2.gguf");
    if (!src) return NULL;
    pika_gguf *g = pika_gguf_open(src);
    if (!g) return NULL;
    const pika_gguf_value *tk = pika_gguf_get_array(g, "tokenizer.ggml.tokens");
    const pika_gguf_value *mg = pika_gguf_get_array(g, "tokenizer.ggml.merges");
    char **tv = pika_malloc(tk->v.arr.n * sizeof *tv), **mv = pika_malloc(mg->v.arr.n * sizeof *mv);
    for (uint64_t i = 0; i < tk->v.arr.n; i++) tv[i] = pika_strndup(tk->v.arr.items[i].v.str.ptr, tk->v.arr.items[i].v.str.len);
    for (uint64_t i = 0; i < mg->v.arr.n; i++) mv[i] = pika_strndup(mg->v.arr.items[i].v.str.ptr, mg->v.arr.items[i].v.str.len);
    int32_t *tt = pika_malloc(tk->v.arr.n * sizeof *tt);
    for (uint64_t i = 0; i < tk->v.arr.n; i++) tt[i] = i == 50256 ? 3 : 1;
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "general.architecture", "gpt2");
    pika_gguf_set_str(w, "tokenizer.ggml.model", model);
    if (pre) pika_gguf_set_str(w, "tokenizer.ggml.pre", pre);
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tv, tk->v.arr.n);
    pika_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", tt, tk->v.arr.n);
    pika_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)mv, mg->v.arr.n);
    pika_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 50256);
    pika_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 50256);
    char *p = path[slot++ & 7];
    snprintf(p, 512, "%s/%s-%s.gguf", dir, model, pre ? pre : "none");
    int rc = pika_gguf_writer_write(w, p);
    pika_gguf_writer_free(w);
    for (uint64_t i = 0; i < tk->v.arr.n; i++) free(tv[i]);
    for (uint64_t i = 0; i < mg->v.arr.n; i++) free(mv[i]);
    free(tv);
    free(mv);
    free(tt);
    pika_gguf_close(g);
    return rc == 0 ? p : NULL;
}

/* Load a tokenizer from a temporary GGUF and delete the file. */
static pika_tokenizer *load_path(const char *path) {
    pika_gguf *g = path ? pika_gguf_open(path) : NULL;
    if (!g) return NULL;
    pika_tokenizer *t = pika_tokenizer_from_gguf(g);
    pika_gguf_close(g);
    unlink(path);
    return t;
}

/* tokenize(s) with pre-tokenizer X == the gpt-2 tokens of each expected piece, concatenated. */
static void check_split(pika_tokenizer *t, const char *s, const char *const *pieces) {
    pika_tokenizer *ref = vocab(3);
    int32_t *got, want[512];
    int n = pika_tokenize(t, s, strlen(s), false, false, &got), nw = 0;
    for (int k = 0; pieces[k]; k++) {
        int32_t *ids;
        int m = pika_tokenize(ref, pieces[k], strlen(pieces[k]), false, false, &ids);
        CHECK(m == 1 || strlen(pieces[k]) > 1, "piece");
        for (int i = 0; i < m && nw < 512; i++) want[nw++] = ids[i];
        free(ids);
    }
    CHECK(same_ids(got, n, want, nw), "pre '%s' on \"%s\"", pika_tokenizer_pre(t), s);
    if (!same_ids(got, n, want, nw)) { print_ids("want", want, nw); print_ids("got ", got, n); }
    free(got);
}

/* The pre-tokenizers without llama.cpp vectors, on the gpt-2 vocab: splitting semantics. */
static void test_other_pretokenizers(void) {
    if (!vocab(3)) SKIP_TEST("*** ../shared fixture ggml-vocab-gpt-2.gguf is ABSENT: test skipped ***");
    const char *dir = test_tmpdir();
    pika_tokenizer *t = load_path(gpt2_variant(dir, "gpt2", "starcoder"));
    REQUIRE(t != NULL, "starcoder variant: %s", pika_last_error());
    { const char *p[] = {"abc", " ", "1", "2", "3", "4", "5", " def", NULL}; check_split(t, "abc 12345 def", p); }
    CHECK(!pika_tokenizer_adds_bos(t), "starcoder adds no BOS");
    pika_tokenizer_free(t);
    t = load_path(gpt2_variant(dir, "gpt2", "falcon"));
    REQUIRE(t != NULL, "falcon variant: %s", pika_last_error());
    { const char *p[] = {"x", "=", "123", "456", "7", "!", " ok", NULL}; check_split(t, "x=1234567! ok", p); }
    pika_tokenizer_free(t);
    t = load_path(gpt2_variant(dir, "gpt2", "deepseek-llm"));
    REQUIRE(t != NULL, "deepseek-llm variant: %s", pika_last_error());
    { const char *p[] = {"Hello", " World", "\n", "\n", "123", " ", "\xe4\xb8\xad\xe6\x96\x87", "  ", NULL};
      check_split(t, "Hello World\n\n123 \xe4\xb8\xad\xe6\x96\x87  ", p); }
    pika_tokenizer_free(t);
    t = load_path(gpt2_variant(dir, "gpt2", "gpt-4o"));
    REQUIRE(t != NULL, "gpt-4o variant: %s", pika_last_error());
    { const char *p[] = {"Hello", "World's", " ", "123", "4", NULL}; check_split(t, "HelloWorld's 1234", p); }
    pika_tokenizer_free(t);
    t = load_path(gpt2_variant(dir, "gpt2", "mpt"));
    REQUIRE(t != NULL, "mpt variant: %s", pika_last_error());
    { const char *p[] = {"it", "'s", " 12345", "!!", NULL}; check_split(t, "it's 12345!!", p); }
    pika_tokenizer_free(t);
    t = load_path(gpt2_variant(dir, "gpt2", NULL)); /* no pre key: llama.cpp's "default" */
    REQUIRE(t != NULL, "default variant: %s", pika_last_error());
    CHECK(!strcmp(pika_tokenizer_pre(t), "default"), "pre %s", pika_tokenizer_pre(t));
    { const char *p[] = {"a", "+", "b", " ", "123", "45", NULL}; check_split(t, "a+b 12345", p); }
    pika_tokenizer_free(t);
    /* every listed pre-tokenizer compiles */
    CHECK(tok_pre_check_all() == 0, "pre regexes: %s", pika_last_error());
    /* unsupported: clear errors */
    t = load_path(gpt2_variant(dir, "gpt2", "no-such-pre"));
    CHECK(t == NULL && strstr(pika_last_error(), "no-such-pre") && strstr(pika_last_error(), "qwen2"),
          "unknown pre error: %s", pika_last_error());
    pika_tokenizer_free(t);
    t = load_path(gpt2_variant(dir, "bert", "default"));
    CHECK(t == NULL && strstr(pika_last_error(), "bert"), "unknown model error: %s", pika_last_error());
    pika_tokenizer_free(t);
    rmdir(dir);
}

/* Tiny hand-made SPM vocabs: bad metadata fails cleanly; minimal metadata still works. */
static void test_tiny_spm(void) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.gguf", dir);
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab"};
    float scores[] = {0, 0, 0, -1, -2, -2, -1.5f, -0.5f, -0.1f};
    int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1};
    /* 1: scores shorter than the vocab */
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 9);
    pika_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, 3);
    REQUIRE(pika_gguf_writer_write(w, path) == 0, "write: %s", pika_last_error());
    pika_gguf_writer_free(w);
    pika_tokenizer *t = load_path(path);
    CHECK(t == NULL && strstr(pika_last_error(), "scores"), "short scores: %s", pika_last_error());
    pika_tokenizer_free(t);
    /* 2: no scores, no token types: everything NORMAL, no byte tokens (bytes fall back to <unk>) */
    w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 9);
    REQUIRE(pika_gguf_writer_write(w, path) == 0, "write");
    pika_gguf_writer_free(w);
    t = load_path(path);
    REQUIRE(t != NULL, "minimal SPM: %s", pika_last_error());
    int32_t *ids;
    int n = pika_tokenize(t, "ab zz", 5, true, false, &ids);
    CHECK(n >= 3 && ids[0] == 1, "minimal SPM tokenizes (n=%d)", n);
    for (int i = 0; i < n; i++) CHECK(ids[i] >= 0 && ids[i] < 9, "id %d in range", ids[i]);
    free(ids);
    pika_tokenizer_free(t);
    /* 3: scores decide the merges: "▁ab" (-0.1) wins */
    w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 9);
    pika_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, 9);
    pika_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, 9);
    pika_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    REQUIRE(pika_gguf_writer_write(w, path) == 0, "write");
    pika_gguf_writer_free(w);
    t = load_path(path);
    REQUIRE(t != NULL, "scored SPM: %s", pika_last_error());
    CHECK(!pika_tokenizer_adds_bos(t), "add_bos_token=false wins");
    n = pika_tokenize(t, "ab", 2, true, false, &ids);
    CHECK(n == 1 && ids[0] == 8, "\"ab\" -> [8] (n=%d)", n);
    free(ids);
    n = pika_tokenize(t, "<s>ab", 5, true, true, &ids);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 8, "\"<s>ab\" with parse_special (n=%d)", n);
    free(ids);
    pika_tokenizer_free(t);
    rmdir(dir);
}

/* A byte-level BPE vocab of all printable ASCII plus extra tokens of the given types, no merges. */
static const char *tiny_bpe(const char *dir, const char *name, const char *const *extra, const int32_t *extra_type, int n_extra) {
    static char path[4][512];
    static int slot;
    const char *toks[128];
    int32_t types[128];
    char chars[95][2];
    int n = 0;
    for (int c = '!'; c <= '~'; c++) {
        chars[c - '!'][0] = (char)c;
        chars[c - '!'][1] = 0;
        toks[n] = chars[c - '!'];
        types[n++] = 1;
    }
    for (int k = 0; k < n_extra; k++) { toks[n] = extra[k]; types[n++] = extra_type[k]; }
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    pika_gguf_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, (size_t)n);
    pika_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)n);
    pika_gguf_set_arr_str(w, "tokenizer.ggml.merges", NULL, 0);
    pika_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 0);
    pika_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 0);
    char *p = path[slot++ & 3];
    snprintf(p, 512, "%s/%s.gguf", dir, name);
    int rc = pika_gguf_writer_write(w, p);
    pika_gguf_writer_free(w);
    return rc == 0 ? p : NULL;
}

/* 1 when tokenizing s gives exactly the single id want. */
static int single_id(const pika_tokenizer *t, const char *s, bool parse_special, int32_t want) {
    int32_t *ids;
    int n = pika_tokenize(t, s, strlen(s), false, parse_special, &ids);
    int ok = n == 1 && ids[0] == want;
    free(ids);
    return ok;
}

/* Which token types are matched as specials (llama.cpp's special-token cache: CONTROL,
 * USER_DEFINED and UNKNOWN; user-defined ones even without parse_special). */
static void test_special_token_types(void) {
    const char *dir = test_tmpdir();
    const char *extra[] = {"<usr>", "<unk>", "<ctl>", "<nrm>", "<unused>", "<byte>"};
    const int32_t ty[] = {4, 2, 3, 1, 5, 6};
    pika_tokenizer *t = load_path(tiny_bpe(dir, "types", extra, ty, 6));
    REQUIRE(t, "load: %s", pika_last_error());
    const int32_t base = 94;
    CHECK(single_id(t, "<usr>", true, base + 0), "user-defined <usr> with parse_special");
    CHECK(single_id(t, "<usr>", false, base + 0), "user-defined <usr> without parse_special");
    CHECK(single_id(t, "<unk>", true, base + 1), "unknown-type <unk> with parse_special");
    CHECK(!single_id(t, "<unk>", false, base + 1), "unknown-type <unk> is text without parse_special");
    CHECK(single_id(t, "<ctl>", true, base + 2), "control <ctl> with parse_special");
    CHECK(!single_id(t, "<ctl>", false, base + 2), "control <ctl> is text without parse_special");
    CHECK(!single_id(t, "<nrm>", true, base + 3), "a normal token is never matched as a special");
    CHECK(!single_id(t, "<unused>", true, base + 4), "an unused token is not matched");
    CHECK(!single_id(t, "<byte>", true, base + 5), "a byte token is not matched");
    int32_t *ids;
    int n = pika_tokenize(t, "a<usr>b<unk>c", 13, false, true, &ids);
    CHECK(n == 5 && ids[1] == base && ids[3] == base + 1, "mixed text: n=%d", n);
    free(ids);
    pika_tokenizer_free(t);
    /* In the real Qwen2 vocab </s> and <unk> are NORMAL tokens (type 1), but llama.cpp's loader makes every
     * token whose text is in its end-of-generation list ("</s>" among them) CONTROL. So with parse_special
     * "</s>" is the single id 128247 and without it the pre-tokenizer's "</" "s" ">"; "<unk>" is not in
     * the list: "<unk" + ">" either way. Checked against llama-tokenize built from the llama.cpp that
     * node-llama-cpp 3.22.1 ships: [128247], [522, 82, 29] (--no-parse-special), [128243, 29]. */
    pika_tokenizer *q = vocab(0);
    if (!q) SKIP_TEST("*** ../shared fixture ggml-vocab-qwen2.gguf is ABSENT: test skipped ***");
    int32_t eos = pika_tokenizer_find(q, "</s>", 4), unk = pika_tokenizer_find(q, "<unk>", 5);
    CHECK(eos == 128247 && (pika_tokenizer_token_attr(q, eos) & PIKA_TOKEN_CONTROL), "</s> = %d attr %d", eos,
          pika_tokenizer_token_attr(q, eos));
    CHECK(pika_tokenizer_is_eog(q, eos), "</s> is end-of-generation, as in llama.cpp");
    CHECK(unk == 128244 && pika_tokenizer_token_attr(q, unk) == PIKA_TOKEN_NORMAL, "<unk> = %d", unk);
    n = pika_tokenize(q, "</s>", 4, false, true, &ids);
    CHECK(n == 1 && ids[0] == 128247, "qwen2 </s> with parse_special: n=%d", n);
    free(ids);
    n = pika_tokenize(q, "a</s>b", 6, false, true, &ids);
    CHECK(n == 3 && ids[0] == 64 && ids[1] == 128247 && ids[2] == 65, "qwen2 a</s>b: n=%d", n);
    free(ids);
    n = pika_tokenize(q, "</s>", 4, false, false, &ids);
    CHECK(n == 3 && ids[0] == 522 && ids[1] == 82 && ids[2] == 29, "qwen2 </s> without parse_special: n=%d", n);
    free(ids);
    n = pika_tokenize(q, "<unk>", 5, false, true, &ids);
    CHECK(n == 2 && ids[0] == 128243 && ids[1] == 29, "qwen2 <unk>: n=%d", n);
    free(ids);
}

/* ids of s under t */
static int ids_of(pika_tokenizer *t, const char *s, int32_t **ids) { return pika_tokenize(t, s, strlen(s), false, false, ids); }

/* NFC (Hugging Face's Qwen2 normalizer) is an option; the default is llama.cpp's: none. */
static void test_nfc_option(void) {
    pika_tokenizer *q = vocab(0);
    if (!q) SKIP_TEST("*** ../shared fixture ggml-vocab-qwen2.gguf is ABSENT: test skipped ***");
    CHECK(!pika_tokenizer_nfc(q), "NFC is off by default");
    const char *decomposed = "caf" "e\xcc\x81", *composed = "caf\xc3\xa9";
    int32_t *a, *b;
    int na = ids_of(q, decomposed, &a), nb = ids_of(q, composed, &b);
    CHECK(na == 3 && nb == 2 && a[0] == b[0], "default: decomposed %d ids, composed %d", na, nb);
    free(a);
    pika_tokenizer_set_nfc(q, true);
    na = ids_of(q, decomposed, &a);
    CHECK(same_ids(a, na, b, nb), "NFC: e + U+0301 is tokenized as U+00E9");
    free(a);
    free(b);
    /* Hangul jamo compose; invalid bytes stay and the runs around them are still normalized */
    na = ids_of(q, "\xe1\x84\x80\xe1\x85\xa1", &a); /* U+1100 U+1161 -> U+AC00 */
    nb = ids_of(q, "\xea\xb0\x80", &b);
    CHECK(same_ids(a, na, b, nb), "jamo compose");
    free(a);
    free(b);
    na = ids_of(q, "e\xcc\x81\xff" "e\xcc\x81", &a);
    nb = ids_of(q, "\xc3\xa9\xff\xc3\xa9", &b);
    CHECK(same_ids(a, na, b, nb), "invalid byte kept, both sides normalized");
    free(a);
    free(b);
    /* special tokens are still matched with NFC on */
    int32_t *ids;
    int n = pika_tokenize(q, "<|im_start|>e\xcc\x81", 15, false, true, &ids);
    nb = ids_of(q, "\xc3\xa9", &b);
    CHECK(n == nb + 1 && ids[0] == 151644 && same_ids(ids + 1, n - 1, b, nb), "special + NFC text: n=%d", n);
    free(ids);
    free(b);
    pika_tokenizer_set_nfc(q, false);
    /* the SPM encoder honours it too */
    pika_tokenizer *spm = vocab(2);
    if (spm) {
        pika_tokenizer_set_nfc(spm, true);
        na = ids_of(spm, decomposed, &a);
        nb = ids_of(spm, composed, &b);
        CHECK(same_ids(a, na, b, nb), "SPM + NFC");
        free(a);
        free(b);
        pika_tokenizer_set_nfc(spm, false);
    }
    /* CLI --nfc */
    const char *v = test_shared_path("fixtures/tokenizer/ggml-vocab-qwen2.gguf");
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "printf 'cafe\\314\\201' | %s tokenize --model %s --nfc", test_pika_bin(), v);
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && !strcmp(out, "924 58858\n"), "CLI --nfc: %d '%s'", st, out);
    free(out);
}

/* Found by fuzzing: a one-token vocab whose token is empty turned "hello" into 0 ids, exit 0. */
static void test_empty_token_vocab(void) {
    const char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    const char *toks[] = {""};
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    pika_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 1);
    pika_gguf_set_arr_str(w, "tokenizer.ggml.merges", NULL, 0);
    REQUIRE(pika_gguf_writer_write(w, path) == 0, "write");
    pika_gguf_writer_free(w);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "printf hello | %s tokenize --model %s 2>&1", test_pika_bin(), path);
    int st;
    char *out = test_run(cmd, &st);
    CHECK(st != 0 && strstr(out, "empty"), "CLI: exit %d, output '%s'", st, out);
    free(out);
    pika_tokenizer *t = load_path(path);
    CHECK(t == NULL && strstr(pika_last_error(), "all empty"), "load: %s", pika_last_error());
    pika_tokenizer_free(t);
    /* found by fuzzing (fuzz/corpus/gguf/regress-merges-not-strings): merges of another element type */
    {
        char mp[512];
        snprintf(mp, sizeof mp, "%s/merges.gguf", dir);
        const char *mt[] = {"<unk>", "a"};
        int32_t mv[3] = {1, 2, 3};
        pika_gguf_writer *mw = pika_gguf_writer_new();
        pika_gguf_set_str(mw, "tokenizer.ggml.model", "llama");
        pika_gguf_set_arr_str(mw, "tokenizer.ggml.tokens", mt, 2);
        pika_gguf_set_arr_i32(mw, "tokenizer.ggml.merges", mv, 3);
        REQUIRE(pika_gguf_writer_write(mw, mp) == 0, "write");
        pika_gguf_writer_free(mw);
        pika_tokenizer *mtk = load_path(mp);
        CHECK(mtk == NULL && strstr(pika_last_error(), "merges is an array of int32"), "int merges: %s", pika_last_error());
        pika_tokenizer_free(mtk);
    }
    /* a vocab that cannot spell some text: an error, not silently fewer ids */
    const char *extra[] = {""};
    const int32_t ty[] = {1};
    t = load_path(tiny_bpe(dir, "ascii", extra, ty, 1));
    REQUIRE(t, "load: %s", pika_last_error());
    int32_t *ids;
    CHECK(pika_tokenize(t, "hello", 5, false, false, &ids) == 5, "ascii text");
    free(ids);
    CHECK(pika_tokenize(t, "h\xc3\xa9llo", 6, false, false, &ids) == -1 && strstr(pika_last_error(), "no token"),
          "text the vocab cannot spell: %s", pika_last_error());
    CHECK(pika_tokenize(t, "a b", 3, false, false, &ids) == -1, "a space (byte-level \"\xc4\xa0\") has no token");
    pika_tokenizer_free(t);
}

int main(void) {
    RUN(test_vectors_qwen2);
    RUN(test_vectors_llama_bpe);
    RUN(test_vectors_llama_spm);
    RUN(test_vectors_gpt2);
    RUN(test_vectors_phi3);
    RUN(test_vectors_deepseek_coder);
    RUN(test_vectors_add_special);
    RUN(test_whitespace_golden);
    RUN(test_bos_eos_flags);
    RUN(test_eog);
    RUN(test_round_trip);
    RUN(test_parse_special);
    RUN(test_model_prompts);
    RUN(test_odd_input);
    RUN(test_fuzz);
    RUN(test_one_megabyte);
    RUN(test_spm_cut_is_exact);
    RUN(test_stream);
    RUN(test_cli);
    RUN(test_other_pretokenizers);
    RUN(test_tiny_spm);
    RUN(test_special_token_types);
    RUN(test_empty_token_vocab);
    RUN(test_nfc_option);
    for (int k = 0; k < N_VOCABS; k++) pika_tokenizer_free(g_tok[k]);
    return test_summary("tokenizer");
}
