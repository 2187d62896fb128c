/* tokenizer_pre.c — the byte-level BPE pre-tokenizer: the regex list for each
 * tokenizer.ggml.pre value (the lists llama.cpp's llama-vocab.cpp uses, run with PCRE2 in UTF +
 * Unicode-property mode with JIT), llama.cpp's splitting semantics (each regex splits every piece
 * left by the previous one; matches and the gaps between them both become pieces), the UTF-8
 * clean-up of the input, and the GPT-2 byte -> unicode mapping that feeds the merges.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- regex lists */

#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3 RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
/* deepseek-llm's explicit list of cased letters */
#define RE_DS_LETTERS                                                                                   \
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}" \
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}" \
    "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"        \
    "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"      \
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"      \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}" \
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}" \
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"       \
    "\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}"         \
    "\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"        \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"        \
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"      \
    "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"    \
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"                \
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"
#define RE_DS_PUNCT "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"
#define RE_UPPER_LOWER                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
#define RE_LOWER_UPPER                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"

typedef struct {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    int ignore_merges, add_bos, no_bos;
    const char *re[TOK_MAX_REGEX];
} pre_def;

static const pre_def PRE_DEFS[] = {
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2", 1, 1, 0, {RE_LLAMA3}},
    {"dbrx|smaug-bpe", 0, 0, 0, {RE_LLAMA3}},
    {"glm4|chatglm-bpe", 0, 0, 1, {RE_LLAMA3}},
    {"qwen2|deepseek-r1-qwen|megrez|stablelm2|hunyuan", 0, 0, 0, {RE_QWEN2}},
    {"qwen35", 0, 0, 0,
     {RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"deepseek-llm", 0, 0, 0, {"[\r\n]", RE_DS_LETTERS, RE_DS_PUNCT, "\\s+$", RE_CJK, "\\p{N}+"}},
    {"deepseek-coder", 0, 0, 0, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}},
    {"deepseek-v3|hunyuan-dense", 0, 0, 0,
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    {"falcon", 0, 0, 0, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", 0, 0, 0, {"\\p{N}", RE_GPT2}},
    {"gpt-2|mpt|olmo|jais|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|exaone4|trillion|"
     "granite-docling|jina-v1-en|jina-v2-code|roberta-bpe",
     0, 0, 0, {RE_GPT2}},
    {"poro-chat|bloom|gpt3-finnish", 0, 0, 0,
     {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+"}},
    {"tekken", 1, 1, 0,
     {RE_UPPER_LOWER "|" RE_LOWER_UPPER "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"gpt-4o|llama4", 0, 0, 0,
     {RE_UPPER_LOWER RE_CONTRACTIONS "?|" RE_LOWER_UPPER RE_CONTRACTIONS
      "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"seed-coder", 0, 0, 0,
     {RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"default", 0, 0, 0, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
};
#define N_PRE_DEFS (sizeof PRE_DEFS / sizeof PRE_DEFS[0])

static int name_in(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '|');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && !memcmp(p, name, n)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* PCRE2's \s also matches U+180E (MONGOLIAN VOWEL SEPARATOR), which Unicode (since 6.3), Oniguruma
 * (Hugging Face) and llama.cpp do not count as white space. Patterns are rewritten to use the
 * Unicode White_Space set instead: \s -> [WS] (WS alone inside a class), \S -> [^WS].
 * Returns a malloc'ed pattern, or NULL for a \S inside a class (not used by any list). */
#define WS_SET "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static char *rewrite_space(const char *re) {
    size_t n = strlen(re);
    char *o = pika_malloc(n * (sizeof WS_SET + 3) + 1);
    size_t m = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char d = re[++i];
            const char *rep = NULL;
            if (d == 's') rep = in_class ? WS_SET : "[" WS_SET "]";
            else if (d == 'S') {
                if (in_class) { free(o); return NULL; }
                rep = "[^" WS_SET "]";
            }
            if (rep) { memcpy(o + m, rep, strlen(rep)); m += strlen(rep); }
            else { o[m++] = '\\'; o[m++] = d; }
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            o[m++] = c;
            if (i + 1 < n && re[i + 1] == '^') o[m++] = re[++i];
            if (i + 1 < n && re[i + 1] == ']') o[m++] = re[++i]; /* a leading ']' is literal */
            continue;
        }
        if (c == ']' && in_class) in_class = 0;
        o[m++] = c;
    }
    o[m] = 0;
    return o;
}

static pcre2_code *compile_pre(const char *pattern, int *err, PCRE2_SIZE *eoff) {
    char *re = rewrite_space(pattern);
    if (!re) { *err = PCRE2_ERROR_INTERNAL; *eoff = 0; return NULL; }
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                                     err, eoff, NULL);
    free(re);
    return code;
}

int tok_pre_init(pika_tokenizer *t) {
    const pre_def *d = NULL;
    for (size_t i = 0; i < N_PRE_DEFS && !d; i++)
        if (name_in(PRE_DEFS[i].names, t->pre)) d = &PRE_DEFS[i];
    if (!d) {
        char list[2048];
        size_t k = 0;
        list[0] = 0;
        for (size_t i = 0; i < N_PRE_DEFS; i++) {
            int w = snprintf(list + k, sizeof list - k, "%s%s", i ? "|" : "", PRE_DEFS[i].names);
            if (w < 0 || (size_t)w >= sizeof list - k) break;
            k += (size_t)w;
        }
        return pika_set_error("unsupported pre-tokenizer tokenizer.ggml.pre='%s' (supported: %s)", t->pre, list);
    }
    t->ignore_merges = d->ignore_merges;
    t->add_bos = d->add_bos;
    t->no_bos = d->no_bos;
    for (int i = 0; i < TOK_MAX_REGEX && d->re[i]; i++) {
        int err;
        PCRE2_SIZE eoff;
        pcre2_code *re = compile_pre(d->re[i], &err, &eoff);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            return pika_set_error("pre-tokenizer '%s': regex %d does not compile at offset %zu: %s", t->pre, i,
                                  (size_t)eoff, (const char *)msg);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
        t->re[t->n_re++] = re;
    }
    return 0;
}

void tok_pre_free(pika_tokenizer *t) {
    for (int i = 0; i < t->n_re; i++) pcre2_code_free((pcre2_code *)t->re[i]);
    t->n_re = 0;
}

/* ---------------------------------------------------------------- splitting */

typedef struct {
    size_t *a; /* pairs: off, len */
    size_t n, cap;
} spanvec;

static void span_push(spanvec *v, size_t off, size_t len) {
    if (v->n + 2 > v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->a = pika_realloc(v->a, v->cap * sizeof *v->a);
    }
    v->a[v->n++] = off;
    v->a[v->n++] = len;
}

/* Apply one regex to every span of in, appending matches and gaps to out. */
static int split_one(const pcre2_code *re, const char *s, const spanvec *in, spanvec *out, pcre2_match_data *md,
                     pcre2_match_context *mc) {
    out->n = 0;
    for (size_t k = 0; k < in->n; k += 2) {
        const char *subj = s + in->a[k];
        size_t n = in->a[k + 1], pos = 0, last = 0;
        while (pos < n) {
            int rc = pcre2_match(re, (PCRE2_SPTR)subj, n, pos, PCRE2_NO_UTF_CHECK, md, mc);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return pika_set_error("pre-tokenizer regex failed: %s", (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me == ms) { /* empty match: step one character, the text stays in the gap */
                pos = ms + (size_t)tok_utf8_len((unsigned char)subj[ms]);
                continue;
            }
            if (ms > last) span_push(out, in->a[k] + last, ms - last);
            span_push(out, in->a[k] + ms, me - ms);
            last = pos = me;
        }
        if (last < n) span_push(out, in->a[k] + last, n - last);
    }
    return 0;
}

/* llama.cpp's unicode_cpts_from_utf8 + unicode_cpt_to_utf8: undecodable bytes, surrogates and
 * code points above U+10FFFF become U+FFFD. Returns a malloc'ed buffer. */
static char *clean_utf8(const char *text, size_t len, size_t *out_len) {
    char *o = pika_malloc(3 * len + 1);
    size_t m = 0;
    for (size_t i = 0; i < len;) {
        int64_t cp = tok_utf8_decode((const unsigned char *)text, len, &i);
        if (cp < 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
        m += (size_t)tok_utf8_encode((uint32_t)cp, o + m);
    }
    *out_len = m;
    return o;
}

int tok_bpe_encode(const pika_tokenizer *t, const char *text, size_t len, tok_ivec *out) {
    size_t n;
    char *s = clean_utf8(text, len, &n);
    spanvec a = {0}, b = {0};
    span_push(&a, 0, n);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (mc && js) pcre2_jit_stack_assign(mc, NULL, js);
    int rc = 0;
    for (int r = 0; r < t->n_re && rc == 0; r++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern((const pcre2_code *)t->re[r], NULL);
        rc = split_one((const pcre2_code *)t->re[r], s, &a, &b, md, mc);
        pcre2_match_data_free(md);
        spanvec sw = a;
        a = b;
        b = sw;
    }
    if (js) pcre2_jit_stack_free(js);
    if (mc) pcre2_match_context_free(mc);
    if (rc == 0) {
        tok_bpe_work *wk = tok_bpe_work_new();
        char *w = NULL;
        size_t wcap = 0;
        for (size_t k = 0; k < a.n; k += 2) {
            const unsigned char *p = (const unsigned char *)s + a.a[k];
            size_t pn = a.a[k + 1];
            if (2 * pn > wcap) { wcap = 2 * pn; w = pika_realloc(w, wcap); }
            size_t m = 0;
            for (size_t i = 0; i < pn; i++) {
                memcpy(w + m, t->b2u[p[i]], t->b2u_len[p[i]]);
                m += t->b2u_len[p[i]];
            }
            tok_bpe_word(t, w, m, wk, out);
        }
        const char *ds;
        int dl;
        if (tok_bpe_work_dropped(wk, &ds, &dl))
            rc = pika_set_error("tokenize: the vocab has no token for \"%.*s\" (nor for its single bytes): the text "
                                "cannot be encoded", dl, ds);
        free(w);
        tok_bpe_work_free(wk);
    }
    free(a.a);
    free(b.a);
    free(s);
    return rc;
}

int tok_pre_check_all(void) {
    for (size_t i = 0; i < N_PRE_DEFS; i++) {
        for (int k = 0; k < TOK_MAX_REGEX && PRE_DEFS[i].re[k]; k++) {
            int err;
            PCRE2_SIZE eoff;
            pcre2_code *re = compile_pre(PRE_DEFS[i].re[k], &err, &eoff);
            if (!re) return pika_set_error("pre-tokenizer '%s': regex %d does not compile", PRE_DEFS[i].names, k);
            pcre2_code_free(re);
        }
    }
    return 0;
}
