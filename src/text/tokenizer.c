/* tokenizer.c — the tokenizer built from GGUF metadata (tokenizer.ggml.*), following
 * llama.cpp's llama-vocab.cpp: vocab loading with llama.cpp's defaults (BOS/EOS/EOG, token
 * attributes), special-token partitioning of the input, the SPM (scores + byte fallback) and
 * byte-level BPE (merge ranks + PCRE2 pre-tokenizer, see tokenizer_pre.c) encoders, and
 * detokenization (whole and streaming).
 *
 * Both encoders merge with a binary heap over a linked list of symbols, so a word of n
 * characters costs O(n log n); a 1 MB input is never quadratic.
 */
#include "pika/tokenizer.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

/* ---------------------------------------------------------------- hash map: bytes -> int32 */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = pika_hash_bytes(s, n, PIKA_HASH_SEED);
    return h ^ (h >> 29);
}

static void htab_init(tok_htab *h, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 1) cap <<= 1;
    h->e = pika_calloc(cap, sizeof *h->e);
    h->mask = cap - 1;
}

/* Insert if absent (the first occurrence wins, like std::unordered_map::emplace). */
static void htab_put(tok_htab *h, const char *key, uint32_t len, int32_t val) {
    size_t i = hash_bytes(key, len) & h->mask;
    while (h->e[i].key) {
        if (h->e[i].len == len && !memcmp(h->e[i].key, key, len)) return;
        i = (i + 1) & h->mask;
    }
    h->e[i].key = key;
    h->e[i].len = len;
    h->e[i].val = val;
}

int32_t tok_htab_get(const tok_htab *h, const char *key, size_t len) {
    if (!h->e) return -1;
    size_t i = hash_bytes(key, len) & h->mask;
    while (h->e[i].key) {
        if (h->e[i].len == len && !memcmp(h->e[i].key, key, len)) return h->e[i].val;
        i = (i + 1) & h->mask;
    }
    return -1;
}

/* ---------------------------------------------------------------- growable int32 vector */

void tok_ivec_push(tok_ivec *v, int32_t x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 64;
        v->a = pika_realloc(v->a, v->cap * sizeof *v->a);
    }
    v->a[v->n++] = x;
}

/* ---------------------------------------------------------------- UTF-8 helpers */

int tok_utf8_len(unsigned char c) {
    static const int lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

int tok_utf8_encode(uint32_t c, char *out) {
    if (c < 0x80) { out[0] = (char)c; return 1; }
    if (c < 0x800) { out[0] = (char)(0xC0 | (c >> 6)); out[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* One code point at s[*i] as llama.cpp's unicode_cpt_from_utf8 reads it; -1 (and *i += 1) when
 * the bytes do not decode. */
int64_t tok_utf8_decode(const unsigned char *s, size_t n, size_t *i) {
    size_t p = *i;
    unsigned c = s[p];
    if (!(c & 0x80)) { *i = p + 1; return c; }
    if (!(c & 0x40)) { *i = p + 1; return -1; }
    int len = !(c & 0x20) ? 2 : !(c & 0x10) ? 3 : !(c & 0x08) ? 4 : 0;
    if (len == 0 || p + len > n) { *i = p + 1; return -1; }
    uint32_t cp = c & (0x7F >> len);
    for (int k = 1; k < len; k++) {
        if ((s[p + k] & 0xC0) != 0x80) { *i = p + 1; return -1; }
        cp = (cp << 6) | (s[p + k] & 0x3F);
    }
    *i = p + len;
    return cp;
}

/* ---------------------------------------------------------------- loading */

/* The token texts llama.cpp's llama-vocab.cpp (the version node-llama-cpp 3.22.1 ships) recognises
 * by text: the EOT candidates, and the end-of-generation set. Every token found this way is made
 * CONTROL, so e.g. qwen2's NORMAL-typed "</s>" is matched as a special with --parse-special. */
#define DEEPSEEK_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
static const char *const EOT_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
    "_<EOT>", "[EOT]", DEEPSEEK_EOS, "<end_of_utterance>", NULL};
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", DEEPSEEK_EOS, "[e~[", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const FIM_SUF_TEXTS[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const FIM_MID_TEXTS[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};

/* First id (lowest) whose text is in list, or -1. */
static int32_t find_first(const pika_tokenizer *t, const char *const *list) {
    int32_t best = -1;
    for (int k = 0; list[k]; k++) {
        int32_t id = tok_htab_get(&t->vocab, list[k], strlen(list[k]));
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    return best;
}

static void read_special_id(const pika_gguf *g, const char *key, int32_t n_vocab, int32_t *id) {
    if (*id >= n_vocab) *id = -1; /* default out of range: disable */
    const pika_gguf_value *v = pika_gguf_get(g, key);
    if (!v) return;
    int64_t x = pika_gguf_get_int(g, key, -1);
    if (x < 0 || x >= n_vocab) return; /* bad id (e.g. 0xFFFFFFFF = none): keep the default */
    *id = (int32_t)x;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const pika_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tlen[x] != t->tlen[y]) return t->tlen[x] > t->tlen[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void build_pieces(pika_tokenizer *t) {
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) total += t->tlen[i];
    t->pieces = pika_malloc(total + 1);
    t->piece_off = pika_malloc((size_t)t->n_vocab * sizeof *t->piece_off);
    t->piece_len = pika_malloc((size_t)t->n_vocab * sizeof *t->piece_len);
    size_t off = 0;
    t->max_piece = 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text[id];
        uint32_t n = t->tlen[id];
        char *o = t->pieces + off;
        uint32_t m = 0;
        int attr = t->attr[id];
        if (attr & (PIKA_TOKEN_UNKNOWN | PIKA_TOKEN_CONTROL | PIKA_TOKEN_USER_DEFINED)) {
            memcpy(o, s, n);
            m = n;
        } else if (attr & PIKA_TOKEN_NORMAL) {
            if (t->type == TOK_SPM) {
                for (uint32_t i = 0; i < n;) {
                    if (i + 3 <= n && !memcmp(s + i, "\xe2\x96\x81", 3)) { o[m++] = ' '; i += 3; }
                    else o[m++] = s[i++];
                }
            } else {
                /* byte-level: every char maps back to one byte; a char outside the map is kept */
                for (size_t i = 0; i < n;) {
                    size_t i0 = i;
                    int64_t cp = tok_utf8_decode((const unsigned char *)s, n, &i);
                    if (cp >= 0 && cp < 0x144 && t->u2b[cp] >= 0) o[m++] = (char)t->u2b[cp];
                    else { memcpy(o + m, s + i0, i - i0); m += (uint32_t)(i - i0); }
                }
            }
        } else if (attr & PIKA_TOKEN_BYTE) {
            unsigned v;
            if (n == 6 && sscanf(s, "<0x%2x>", &v) == 1) o[m++] = (char)v;
            else { memcpy(o, s, n); m = n; }
        }
        t->piece_off[id] = (uint32_t)off;
        t->piece_len[id] = m;
        off += m;
        if ((int)m > t->max_piece) t->max_piece = (int)m;
    }
}

static void init_byte_maps(pika_tokenizer *t) {
    /* GPT-2 bytes_to_unicode: printable latin-1 bytes map to themselves, the rest to U+0100.. */
    int n = 0;
    for (int i = 0; i < 0x144; i++) t->u2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = keep ? (uint32_t)b : (uint32_t)(256 + n++);
        t->b2u_len[b] = (uint8_t)tok_utf8_encode(cp, t->b2u[b]);
        t->u2b[cp] = (int16_t)b;
    }
}

pika_tokenizer *pika_tokenizer_from_gguf(const pika_gguf *g) {
    char *model = pika_gguf_get_string(g, "tokenizer.ggml.model");
    if (!model) { pika_set_error("%s: no tokenizer.ggml.model in the GGUF", g->path); return NULL; }
    int type;
    if (!strcmp(model, "llama")) type = TOK_SPM;
    else if (!strcmp(model, "gpt2")) type = TOK_BPE;
    else {
        pika_set_error("%s: unsupported tokenizer model '%s' (supported: llama, gpt2)", g->path, model);
        free(model);
        return NULL;
    }
    const pika_gguf_value *toks = pika_gguf_get_array(g, "tokenizer.ggml.tokens");
    if (!toks || toks->v.arr.type != PIKA_GGUF_STRING || toks->v.arr.n == 0 || toks->v.arr.n > 0x7fffffff) {
        pika_set_error("%s: tokenizer.ggml.tokens missing or not a string array", g->path);
        free(model);
        return NULL;
    }
    const pika_gguf_value *scores = pika_gguf_get_array(g, "tokenizer.ggml.scores");
    const pika_gguf_value *ttype = pika_gguf_get_array(g, "tokenizer.ggml.token_type");
    const pika_gguf_value *merges = pika_gguf_get_array(g, "tokenizer.ggml.merges");
    int32_t n = (int32_t)toks->v.arr.n;
    if (scores && (scores->v.arr.n < (uint64_t)n || (scores->v.arr.type != PIKA_GGUF_FLOAT32 &&
                                                    scores->v.arr.type != PIKA_GGUF_INT32))) {
        pika_set_error("%s: tokenizer.ggml.scores has a bad type or length", g->path);
        free(model);
        return NULL;
    }
    if (ttype && (ttype->v.arr.n < (uint64_t)n || ttype->v.arr.type != PIKA_GGUF_INT32)) {
        pika_set_error("%s: tokenizer.ggml.token_type has a bad type or length", g->path);
        free(model);
        return NULL;
    }
    if (type == TOK_BPE && !merges) {
        pika_set_error("%s: BPE tokenizer without tokenizer.ggml.merges", g->path);
        free(model);
        return NULL;
    }
    if (merges && merges->v.arr.type != PIKA_GGUF_STRING) { /* found by fuzzing: read as strings, it crashed */
        pika_set_error("%s: tokenizer.ggml.merges is an array of %s, not of strings", g->path,
                       pika_gguf_vtype_name(merges->v.arr.type));
        free(model);
        return NULL;
    }

    pika_tokenizer *t = pika_calloc(1, sizeof *t);
    t->type = type;
    t->model = model;
    t->n_vocab = n;
    char *pre = pika_gguf_get_string(g, "tokenizer.ggml.pre");
    t->pre = pre ? pre : pika_strdup("default");
    init_byte_maps(t);

    /* vocabulary text, scores, attributes */
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) total += toks->v.arr.items[i].v.str.len;
    t->arena = pika_malloc(total + 1);
    t->text = pika_malloc((size_t)n * sizeof *t->text);
    t->tlen = pika_malloc((size_t)n * sizeof *t->tlen);
    t->score = pika_malloc((size_t)n * sizeof *t->score);
    t->attr = pika_malloc((size_t)n * sizeof *t->attr);
    htab_init(&t->vocab, (size_t)n);
    size_t off = 0;
    for (int32_t i = 0; i < n; i++) {
        pika_str s = toks->v.arr.items[i].v.str;
        memcpy(t->arena + off, s.ptr, s.len);
        t->text[i] = t->arena + off;
        t->tlen[i] = (uint32_t)s.len;
        off += s.len;
        if (s.len > 0) htab_put(&t->vocab, t->text[i], t->tlen[i], i);
        t->score[i] = scores ? (float)pika_gguf_arr_float(scores, (uint64_t)i) : 0.0f;
        int a = PIKA_TOKEN_NORMAL;
        if (ttype) {
            switch (pika_gguf_arr_int(ttype, (uint64_t)i)) {
            case 1: a = PIKA_TOKEN_NORMAL; break;
            case 2: a = PIKA_TOKEN_UNKNOWN; break;
            case 3: a = PIKA_TOKEN_CONTROL; break;
            case 4: a = PIKA_TOKEN_USER_DEFINED; break;
            case 5: a = PIKA_TOKEN_UNUSED; break;
            case 6: a = PIKA_TOKEN_BYTE; break;
            default: a = 0; break;
            }
        }
        t->attr[i] = (uint16_t)a;
    }

    {
        int32_t nonempty = 0;
        for (int32_t i = 0; i < n; i++) nonempty += t->tlen[i] > 0;
        if (nonempty == 0) {
            pika_set_error("%s: tokenizer.ggml.tokens has %d token%s, all empty: no text can be encoded", g->path, n,
                           n == 1 ? "" : "s");
            pika_tokenizer_free(t);
            return NULL;
        }
    }

    /* merges: "left right" -> rank */
    if (merges) {
        uint64_t nm = merges->v.arr.n;
        size_t mt = 0;
        for (uint64_t i = 0; i < nm; i++) mt += merges->v.arr.items[i].v.str.len;
        t->merge_arena = pika_malloc(mt + 1);
        htab_init(&t->merges, (size_t)nm);
        size_t mo = 0;
        for (uint64_t i = 0; i < nm; i++) {
            pika_str s = merges->v.arr.items[i].v.str;
            const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
            if (!sp) continue;
            memcpy(t->merge_arena + mo, s.ptr, s.len);
            htab_put(&t->merges, t->merge_arena + mo, (uint32_t)s.len, (int32_t)(i > 0x7fffffff ? 0x7fffffff : i));
            if ((int)s.len > t->max_merge_len) t->max_merge_len = (int)s.len;
            mo += s.len;
        }
    }

    /* special ids and flags, with llama.cpp's defaults */
    t->bos = type == TOK_SPM ? 1 : 11;
    t->eos = type == TOK_SPM ? 2 : 11;
    t->unk = type == TOK_SPM ? 0 : -1;
    t->eot = t->eom = t->pad = t->sep = -1;
    int32_t fim_pad = -1, fim_rep = -1, fim_sep = -1;
    t->add_space_prefix = type == TOK_SPM;
    t->add_bos = type == TOK_SPM;
    t->add_eos = false;
    if (type == TOK_BPE) {
        if (tok_pre_init(t) != 0) { pika_tokenizer_free(t); return NULL; }
        if (t->no_bos) t->bos = -1; /* chatglm: no default BOS (a key may still set one) */
    }
    t->add_space_prefix = pika_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
    read_special_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos);
    read_special_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos);
    read_special_id(g, "tokenizer.ggml.eot_token_id", n, &t->eot);
    read_special_id(g, "tokenizer.ggml.eom_token_id", n, &t->eom);
    read_special_id(g, "tokenizer.ggml.unknown_token_id", n, &t->unk);
    read_special_id(g, "tokenizer.ggml.seperator_token_id", n, &t->sep);
    read_special_id(g, "tokenizer.ggml.padding_token_id", n, &t->pad);
    read_special_id(g, "tokenizer.ggml.fim_pad_token_id", n, &fim_pad);
    read_special_id(g, "tokenizer.ggml.fim_rep_token_id", n, &fim_rep);
    read_special_id(g, "tokenizer.ggml.fim_sep_token_id", n, &fim_sep);
    t->add_bos = pika_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", t->add_bos);
    t->add_eos = pika_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", t->add_eos);
    if (t->add_bos && t->bos < 0) {
        pika_set_error("%s: tokenizer.ggml.add_bos_token is true, but there is no BOS token", g->path);
        pika_tokenizer_free(t);
        return NULL;
    }
    if (t->add_eos && t->eos < 0) {
        pika_set_error("%s: tokenizer.ggml.add_eos_token is true, but there is no EOS token", g->path);
        pika_tokenizer_free(t);
        return NULL;
    }

    /* EOT/EOM/FIM tokens not given by key are found by text and marked CONTROL (llama.cpp) */
    int32_t found;
    if (t->eot < 0 && (found = find_first(t, EOT_TEXTS)) >= 0) { t->eot = found; t->attr[found] |= PIKA_TOKEN_CONTROL; }
    if (t->eom < 0 && (found = find_first(t, EOM_TEXTS)) >= 0) { t->eom = found; t->attr[found] |= PIKA_TOKEN_CONTROL; }
    if (fim_pad < 0 && (found = find_first(t, FIM_PAD_TEXTS)) >= 0) { fim_pad = found; t->attr[found] |= PIKA_TOKEN_CONTROL; }
    if (fim_rep < 0 && (found = find_first(t, FIM_REP_TEXTS)) >= 0) { fim_rep = found; t->attr[found] |= PIKA_TOKEN_CONTROL; }
    if (fim_sep < 0 && (found = find_first(t, FIM_SEP_TEXTS)) >= 0) { fim_sep = found; t->attr[found] |= PIKA_TOKEN_CONTROL; }
    {
        const char *const *fim_lists[] = {FIM_PRE_TEXTS, FIM_SUF_TEXTS, FIM_MID_TEXTS};
        const char *fim_keys[] = {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id",
                                  "tokenizer.ggml.fim_mid_token_id"};
        const char *old_keys[] = {"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id",
                                  "tokenizer.ggml.middle_token_id"};
        for (int k = 0; k < 3; k++) {
            int32_t id = -1;
            read_special_id(g, fim_keys[k], n, &id);
            read_special_id(g, old_keys[k], n, &id);
            if (id < 0 && (found = find_first(t, fim_lists[k])) >= 0) t->attr[found] |= PIKA_TOKEN_CONTROL;
        }
    }
    int32_t marks[] = {fim_pad, fim_rep, fim_sep};

    /* end-of-generation set */
    t->eog = pika_calloc((size_t)n, 1);
    for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++)
        if (marks[k] >= 0) t->eog[marks[k]] = 1;
    for (int k = 0; EOG_TEXTS[k]; k++) {
        int32_t id = tok_htab_get(&t->vocab, EOG_TEXTS[k], strlen(EOG_TEXTS[k]));
        if (id >= 0) { t->eog[id] = 1; t->attr[id] |= PIKA_TOKEN_CONTROL; }
    }
    /* gpt-oss: these are always rendered */
    static const char *const HARMONY[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL};
    for (int k = 0; HARMONY[k]; k++) {
        int32_t id = tok_htab_get(&t->vocab, HARMONY[k], strlen(HARMONY[k]));
        if (id >= 0) t->attr[id] = PIKA_TOKEN_USER_DEFINED;
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;
    {
        /* o200k_harmony: <|end|> is not EOG when <|return|> and <|call|> exist */
        int32_t ret = pika_tokenizer_find(t, "<|return|>", 10), call = pika_tokenizer_find(t, "<|call|>", 8);
        int32_t end = pika_tokenizer_find(t, "<|end|>", 7);
        if (ret >= 0 && call >= 0 && end >= 0 && t->eog[ret] && t->eog[call] && t->eog[end]) {
            t->eog[end] = 0;
            t->attr[end] = PIKA_TOKEN_USER_DEFINED;
        }
    }

    /* special tokens cache: CONTROL | USER_DEFINED | UNKNOWN, longest text first */
    t->special = pika_malloc((size_t)n * sizeof *t->special);
    for (int32_t id = 0; id < n; id++)
        if ((t->attr[id] & (PIKA_TOKEN_CONTROL | PIKA_TOKEN_USER_DEFINED | PIKA_TOKEN_UNKNOWN)) && t->tlen[id] > 0)
            t->special[t->n_special++] = id;
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special, t);
    t->special_by_first = pika_malloc((size_t)(t->n_special ? t->n_special : 1) * sizeof *t->special_by_first);
    for (int k = 0; k < t->n_special; k++) t->first_start[(unsigned char)t->text[t->special[k]][0] + 1]++;
    for (int b = 0; b < 256; b++) t->first_start[b + 1] += t->first_start[b];
    {
        int32_t fill[256];
        memcpy(fill, t->first_start, sizeof fill);
        for (int k = 0; k < t->n_special; k++) t->special_by_first[fill[(unsigned char)t->text[t->special[k]][0]]++] = k;
    }

    build_pieces(t); /* before the strip flags below: they do not change pieces */

    /* per-model attributes llama.cpp sets by name: Phi-3 special tokens strip spaces on the right */
    char *name = pika_gguf_get_string(g, "general.name");
    if (name) {
        for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
        if (strstr(name, "phi-3") || strstr(name, "phi3")) {
            for (int k = 0; k < t->n_special; k++) t->attr[t->special[k]] |= PIKA_TOKEN_RSTRIP;
            int32_t id = pika_tokenizer_find(t, "</s>", 4);
            if (id >= 0) t->attr[id] |= PIKA_TOKEN_RSTRIP;
            static const char *const off_[] = {"<unk>", "<s>", "<|endoftext|>", NULL};
            for (int k = 0; off_[k]; k++) {
                id = pika_tokenizer_find(t, off_[k], strlen(off_[k]));
                if (id >= 0) t->attr[id] &= (uint16_t)~PIKA_TOKEN_RSTRIP;
            }
        }
        free(name);
    }

    /* SPM: can the text be cut in front of "▁" (see spm_encode)? Only if no token has "▁"
     * right after a character that is not "▁". */
    t->spm_split_ok = type == TOK_SPM;
    for (int32_t id = 0; id < n && t->spm_split_ok; id++) {
        const char *x = t->text[id];
        for (uint32_t i = 1; i + 3 <= t->tlen[id]; i++)
            if (!memcmp(x + i, "\xe2\x96\x81", 3) && !(i >= 3 && !memcmp(x + i - 3, "\xe2\x96\x81", 3))) {
                t->spm_split_ok = false;
                break;
            }
    }

    /* byte -> token for byte fallback */
    for (int b = 0; b < 256; b++) {
        int32_t id = -1;
        if (type == TOK_SPM) {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            id = tok_htab_get(&t->vocab, hex, 6);
            if (id < 0) { char c = (char)b; id = tok_htab_get(&t->vocab, &c, 1); }
        } else {
            id = tok_htab_get(&t->vocab, t->b2u[b], t->b2u_len[b]);
        }
        t->byte_tok[b] = id >= 0 ? id : t->unk;
    }
    return t;
}

void pika_tokenizer_free(pika_tokenizer *t) {
    if (!t) return;
    tok_pre_free(t);
    free(t->model);
    free(t->pre);
    free(t->arena);
    free(t->text);
    free(t->tlen);
    free(t->score);
    free(t->attr);
    free(t->vocab.e);
    free(t->merges.e);
    free(t->merge_arena);
    free(t->eog);
    free(t->special);
    free(t->special_by_first);
    free(t->pieces);
    free(t->piece_off);
    free(t->piece_len);
    free(t);
}

int32_t pika_tokenizer_n_vocab(const pika_tokenizer *t) { return t->n_vocab; }
int32_t pika_tokenizer_bos(const pika_tokenizer *t) { return t->bos; }
int32_t pika_tokenizer_eos(const pika_tokenizer *t) { return t->eos; }
int32_t pika_tokenizer_eot(const pika_tokenizer *t) { return t->eot; }
int pika_tokenizer_is_eog(const pika_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab && t->eog[id]; }
bool pika_tokenizer_adds_bos(const pika_tokenizer *t) { return t->add_bos; }
bool pika_tokenizer_adds_eos(const pika_tokenizer *t) { return t->add_eos; }
const char *pika_tokenizer_model(const pika_tokenizer *t) { return t->model; }
const char *pika_tokenizer_pre(const pika_tokenizer *t) { return t->pre; }
int pika_tokenizer_max_piece_len(const pika_tokenizer *t) { return t->max_piece; }

int32_t pika_tokenizer_find(const pika_tokenizer *t, const char *text, size_t len) {
    return tok_htab_get(&t->vocab, text, len);
}

const char *pika_tokenizer_token_text(const pika_tokenizer *t, int32_t id, int *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = (int)t->tlen[id];
    return t->text[id];
}

int pika_tokenizer_token_attr(const pika_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->attr[id] : 0;
}

/* ---------------------------------------------------------------- special-token partition */

typedef struct {
    int32_t tok;  /* >= 0: a special token; -1: raw text [off, off+len) */
    size_t off, len;
} frag;

typedef struct {
    frag *a;
    size_t n, cap;
} fragvec;

static void frag_push(fragvec *v, int32_t tok, size_t off, size_t len) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 16;
        v->a = pika_realloc(v->a, v->cap * sizeof *v->a);
    }
    v->a[v->n].tok = tok;
    v->a[v->n].off = off;
    v->a[v->n].len = len;
    v->n++;
}

static int is_c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* llama.cpp's tokenizer_st_partition: for each special token (longest first), split every raw
 * fragment at each occurrence. Tokens that occur nowhere in the text are skipped up front, which
 * changes nothing but the cost. */
static void partition(const pika_tokenizer *t, const char *text, size_t len, bool parse_special, fragvec *out) {
    out->n = 0;
    if (len == 0) return;
    frag_push(out, -1, 0, len);
    if (t->n_special == 0) return;
    /* which special tokens occur at all */
    uint8_t *present = NULL;
    int any = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        for (int32_t q = t->first_start[c]; q < t->first_start[c + 1]; q++) {
            int k = t->special_by_first[q];
            int32_t id = t->special[k];
            uint32_t n = t->tlen[id];
            if (n <= len - i && !memcmp(t->text[id], text + i, n)) {
                if (!present) present = pika_calloc((size_t)t->n_special, 1);
                present[k] = 1;
                any = 1;
            }
        }
    }
    if (!any) { free(present); return; }
    fragvec tmp = {0};
    for (int k = 0; k < t->n_special; k++) {
        if (!present[k]) continue;
        int32_t id = t->special[k];
        int attr = t->attr[id];
        if (!parse_special && (attr & (PIKA_TOKEN_CONTROL | PIKA_TOKEN_UNKNOWN))) continue;
        const char *tt = t->text[id];
        size_t tn = t->tlen[id];
        tmp.n = 0;
        for (size_t f = 0; f < out->n; f++) {
            frag fr = out->a[f];
            if (fr.tok >= 0) { frag_push(&tmp, fr.tok, 0, 0); continue; }
            size_t base = fr.off, blen = fr.len;
            for (;;) {
                const char *m = memmem(text + base, blen, tt, tn);
                if (!m) { frag_push(&tmp, -1, base, blen); break; }
                size_t match = (size_t)(m - text);
                if (match > base) {
                    size_t ll = match - base;
                    if (attr & PIKA_TOKEN_LSTRIP)
                        while (ll > 0 && is_c_space(text[base + ll - 1])) ll--;
                    if (ll > 0) frag_push(&tmp, -1, base, ll);
                }
                frag_push(&tmp, id, 0, 0);
                if (match + tn < base + blen) {
                    size_t roff = match + tn, rlen = base + blen - roff;
                    if (attr & PIKA_TOKEN_RSTRIP)
                        while (rlen > 0 && is_c_space(text[roff])) { roff++; rlen--; }
                    if (rlen == 0) break;
                    base = roff;
                    blen = rlen;
                } else {
                    break;
                }
            }
        }
        fragvec sw = *out;
        *out = tmp;
        tmp = sw;
    }
    free(tmp.a);
    free(present);
}

/* ---------------------------------------------------------------- SPM encoder */

/* A candidate merge of symbols left+right. Both encoders pop the smallest key first, ties to the
 * lower left index: SPM uses key = -score (best score first), BPE key = merge rank. */
typedef struct {
    int32_t left, right;
    double key;
    uint32_t size;
} bigram;

static int bigram_before(const bigram *a, const bigram *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

typedef struct {
    bigram *a;
    size_t n, cap;
} bigram_heap;

static void heap_push(bigram_heap *h, bigram x) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->a = pika_realloc(h->a, h->cap * sizeof *h->a);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&x, &h->a[p])) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = x;
}

static bigram heap_pop(bigram_heap *h) {
    bigram top = h->a[0], x = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->a[c + 1], &h->a[c])) c++;
        if (!bigram_before(&h->a[c], &x)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = x;
    return top;
}

typedef struct {
    int32_t prev, next;
    uint32_t start, n; /* byte range in the word; n == 0: merged away */
} tok_sym;

static void spm_try_bigram(const pika_tokenizer *t, const char *s, const tok_sym *sym, int32_t l, int32_t r, bigram_heap *h) {
    if (l < 0 || r < 0) return;
    uint32_t n = sym[l].n + sym[r].n;
    int32_t id = tok_htab_get(&t->vocab, s + sym[l].start, n);
    if (id < 0) return;
    bigram b = {l, r, -(double)t->score[id], n};
    heap_push(h, b);
}

static int is_escaped_space(const char *s, const tok_sym *y) {
    return y->n == 3 && !memcmp(s + y->start, "\xe2\x96\x81", 3);
}

static int ends_with_escaped_space(const char *s, const tok_sym *y) {
    return y->n >= 3 && !memcmp(s + y->start + y->n - 3, "\xe2\x96\x81", 3);
}

/* s: the escaped text (spaces already "▁"). llama.cpp merges over the whole text at once; when no
 * token has "▁" right after a non-"▁" character (t->spm_split_ok, checked at load) no merge can
 * cross the boundary in front of a "▁" symbol that follows a non-"▁" one, so the text is cut
 * there into words that are merged one at a time with the same result, and a small heap. */
static size_t spm_encode(const pika_tokenizer *t, const char *s, size_t n, tok_ivec *out, unsigned char *first_dropped) {
    size_t dropped = 0;
    if (n == 0) return 0;
    tok_sym *sym = pika_malloc(n * sizeof *sym);
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = (size_t)tok_utf8_len((unsigned char)s[off]);
        if (cl > n - off) cl = n - off;
        sym[ns].start = (uint32_t)off;
        sym[ns].n = (uint32_t)cl;
        off += cl;
        ns++;
    }
    bigram_heap h = {0};
    for (int32_t a = 0; a < ns;) {
        int32_t b = a + 1;
        if (t->spm_split_ok)
            while (b < ns && !(is_escaped_space(s, &sym[b]) && !ends_with_escaped_space(s, &sym[b - 1]))) b++;
        else
            b = ns;
        for (int32_t i = a; i < b; i++) {
            sym[i].prev = i == a ? -1 : i - 1;
            sym[i].next = i + 1 == b ? -1 : i + 1;
        }
        h.n = 0;
        for (int32_t i = a + 1; i < b; i++) spm_try_bigram(t, s, sym, i - 1, i, &h);
        while (h.n) {
            bigram bg = heap_pop(&h);
            tok_sym *L = &sym[bg.left], *R = &sym[bg.right];
            if (L->n == 0 || R->n == 0 || L->n + R->n != bg.size) continue;
            L->n += R->n;
            R->n = 0;
            L->next = R->next;
            if (R->next >= 0) sym[R->next].prev = bg.left;
            spm_try_bigram(t, s, sym, L->prev, bg.left, &h);
            spm_try_bigram(t, s, sym, bg.left, L->next, &h);
        }
        for (int32_t i = a; i != -1; i = sym[i].next) {
            int32_t id = tok_htab_get(&t->vocab, s + sym[i].start, sym[i].n);
            if (id >= 0) { tok_ivec_push(out, id); continue; }
            for (uint32_t k = 0; k < sym[i].n; k++) {
                int32_t bt = t->byte_tok[(unsigned char)s[sym[i].start + k]];
                if (bt >= 0) tok_ivec_push(out, bt);
                else if (!dropped++) *first_dropped = (unsigned char)s[sym[i].start + k];
            }
        }
        a = b;
    }
    free(h.a);
    free(sym);
    return dropped;
}

/* ---------------------------------------------------------------- BPE encoder */

struct tok_bpe_work {
    tok_sym *sym;
    size_t sym_cap;
    bigram_heap heap;
    char key[1024];
    size_t dropped;      /* symbols bytes with no token at all (lost text) */
    char dropped_sym[8]; /* the first such symbol (byte-level text) */
    int dropped_len;
};

size_t tok_bpe_work_dropped(const tok_bpe_work *wk, const char **sym, int *len) {
    *sym = wk->dropped_sym;
    *len = wk->dropped_len;
    return wk->dropped;
}

static void bpe_try_bigram(const pika_tokenizer *t, const char *w, tok_bpe_work *wk, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const tok_sym *sym = wk->sym;
    uint32_t nl = sym[l].n, nr = sym[r].n;
    if ((int)(nl + nr + 1) > t->max_merge_len || nl + nr + 1 > sizeof wk->key) return;
    memcpy(wk->key, w + sym[l].start, nl);
    wk->key[nl] = ' ';
    memcpy(wk->key + nl + 1, w + sym[r].start, nr);
    int32_t rank = tok_htab_get(&t->merges, wk->key, nl + nr + 1);
    if (rank < 0) return;
    bigram b = {l, r, (double)rank, nl + nr};
    heap_push(&wk->heap, b);
}

/* One pre-token word, already byte-level encoded. */
void tok_bpe_word(const pika_tokenizer *t, const char *w, size_t n, tok_bpe_work *wk, tok_ivec *out) {
    if (n == 0) return;
    if (t->ignore_merges) {
        int32_t id = tok_htab_get(&t->vocab, w, n);
        if (id >= 0) { tok_ivec_push(out, id); return; }
    }
    if (wk->sym_cap < n) {
        wk->sym_cap = n;
        wk->sym = pika_realloc(wk->sym, n * sizeof *wk->sym);
    }
    tok_sym *sym = wk->sym;
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = (size_t)tok_utf8_len((unsigned char)w[off]);
        if (cl > n - off) cl = n - off;
        sym[ns].start = (uint32_t)off;
        sym[ns].n = (uint32_t)cl;
        sym[ns].prev = ns - 1;
        off += cl;
        sym[ns].next = off == n ? -1 : ns + 1;
        ns++;
    }
    wk->heap.n = 0;
    for (int32_t i = 1; i < ns; i++) bpe_try_bigram(t, w, wk, i - 1, i);
    while (wk->heap.n) {
        bigram b = heap_pop(&wk->heap);
        tok_sym *L = &sym[b.left], *R = &sym[b.right];
        if (L->n == 0 || R->n == 0 || L->n + R->n != b.size) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sym[R->next].prev = b.left;
        bpe_try_bigram(t, w, wk, L->prev, b.left);
        bpe_try_bigram(t, w, wk, b.left, L->next);
    }
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        int32_t id = tok_htab_get(&t->vocab, w + sym[i].start, sym[i].n);
        if (id >= 0) { tok_ivec_push(out, id); continue; }
        for (uint32_t k = 0; k < sym[i].n; k++) { /* as llama.cpp: single bytes of the symbol text */
            int32_t b = tok_htab_get(&t->vocab, w + sym[i].start + k, 1);
            if (b >= 0) tok_ivec_push(out, b);
            else if (!wk->dropped++) { /* llama.cpp drops it silently; pika reports it (see pika_tokenize) */
                size_t m = sym[i].n < sizeof wk->dropped_sym ? sym[i].n : sizeof wk->dropped_sym;
                memcpy(wk->dropped_sym, w + sym[i].start, m);
                wk->dropped_len = (int)m;
            }
        }
    }
}

tok_bpe_work *tok_bpe_work_new(void) { return pika_calloc(1, sizeof(tok_bpe_work)); }

void tok_bpe_work_free(tok_bpe_work *wk) {
    if (!wk) return;
    free(wk->sym);
    free(wk->heap.a);
    free(wk);
}

/* ---------------------------------------------------------------- NFC normalization */

void pika_tokenizer_set_nfc(pika_tokenizer *t, bool on) { t->nfc = on; }
bool pika_tokenizer_nfc(const pika_tokenizer *t) { return t->nfc; }

/* Append the NFC form of the valid UTF-8 run s[0..n) to *o (capacity grows as needed). */
static void nfc_run(const char *s, size_t n, char **o, size_t *m, size_t *cap) {
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = n ? utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE)
                           : 0;
    const char *src = r >= 0 && dst ? (const char *)dst : s;
    size_t len = r >= 0 && dst ? (size_t)r : n;
    if (*m + len > *cap) { *cap = 2 * (*m + len) + 16; *o = pika_realloc(*o, *cap); }
    memcpy(*o + *m, src, len);
    *m += len;
    free(dst);
}

/* NFC of text[0..n) as a malloc'ed buffer: each maximal run of valid UTF-8 is normalized, bytes
 * that do not decode are copied unchanged. */
static char *nfc_normalize(const char *text, size_t n, size_t *out_n) {
    size_t cap = n + 16, m = 0, run = 0, i = 0;
    char *o = pika_malloc(cap);
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)text + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k > 0) { i += (size_t)k; continue; }
        nfc_run(text + run, i - run, &o, &m, &cap);
        if (m + 1 > cap) { cap = 2 * cap; o = pika_realloc(o, cap); }
        o[m++] = text[i++];
        run = i;
    }
    nfc_run(text + run, n - run, &o, &m, &cap);
    *out_n = m;
    return o;
}

/* ---------------------------------------------------------------- tokenize */

int pika_tokenize(const pika_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                  int32_t **ids) {
    *ids = NULL;
    if (!text && len) return pika_set_error("tokenize: NULL text");
    if (len > 0x7fffffffu / 4) return pika_set_error("tokenize: input of %zu bytes is too large", len);
    fragvec fr = {0};
    partition(t, text, len, parse_special, &fr);
    tok_ivec out = {0};
    int rc = 0;
    if (t->type == TOK_SPM) {
        bool prev_special = true;
        if (add_special && t->add_bos && t->bos >= 0) tok_ivec_push(&out, t->bos);
        char *buf = NULL;
        size_t cap = 0;
        for (size_t f = 0; f < fr.n; f++) {
            if (fr.a[f].tok >= 0) { tok_ivec_push(&out, fr.a[f].tok); prev_special = true; continue; }
            const char *s = text + fr.a[f].off;
            size_t n = fr.a[f].len;
            char *norm = NULL;
            if (t->nfc) { norm = nfc_normalize(s, n, &n); s = norm; }
            size_t need = 3 * (n + 1);
            if (need > cap) { cap = need; buf = pika_realloc(buf, cap); }
            size_t m = 0;
            if (t->add_space_prefix && prev_special) { memcpy(buf, "\xe2\x96\x81", 3); m = 3; }
            for (size_t i = 0; i < n; i++) {
                if (s[i] == ' ') { memcpy(buf + m, "\xe2\x96\x81", 3); m += 3; }
                else buf[m++] = s[i];
            }
            unsigned char bad = 0;
            if (spm_encode(t, buf, m, &out, &bad) && rc == 0)
                rc = pika_set_error("tokenize: the vocab has no token for byte 0x%02X (no byte token <0x%02X>, no "
                                    "unknown token): the text cannot be encoded", bad, bad);
            free(norm);
            prev_special = false;
        }
        free(buf);
        if (add_special && t->add_eos && t->eos >= 0) tok_ivec_push(&out, t->eos);
    } else {
        if (add_special && t->add_bos && t->bos >= 0) tok_ivec_push(&out, t->bos);
        for (size_t f = 0; f < fr.n && rc == 0; f++) {
            if (fr.a[f].tok >= 0) { tok_ivec_push(&out, fr.a[f].tok); continue; }
            if (t->nfc) {
                size_t nn;
                char *norm = nfc_normalize(text + fr.a[f].off, fr.a[f].len, &nn);
                rc = tok_bpe_encode(t, norm, nn, &out);
                free(norm);
            } else {
                rc = tok_bpe_encode(t, text + fr.a[f].off, fr.a[f].len, &out);
            }
        }
        if (add_special && t->add_eos && t->eos >= 0) tok_ivec_push(&out, t->eos);
    }
    free(fr.a);
    if (rc != 0) { free(out.a); return -1; }
    if (!out.a) out.a = pika_malloc(sizeof(int32_t));
    *ids = out.a;
    return (int)out.n;
}

/* ---------------------------------------------------------------- detokenize */

static const char *piece_of(const pika_tokenizer *t, int32_t id, bool render_special, uint32_t *n) {
    if (!render_special && (t->attr[id] & (PIKA_TOKEN_UNKNOWN | PIKA_TOKEN_CONTROL))) { *n = 0; return ""; }
    *n = t->piece_len[id];
    return t->pieces + t->piece_off[id];
}

int pika_token_to_piece(const pika_tokenizer *t, int32_t id, bool render_special, char *buf, int cap) {
    if (id < 0 || id >= t->n_vocab) return pika_set_error("token id %d out of range [0, %d)", id, t->n_vocab);
    uint32_t n;
    const char *p = piece_of(t, id, render_special, &n);
    if (buf && cap > 0) memcpy(buf, p, n < (uint32_t)cap ? n : (size_t)cap);
    return (int)n;
}

int pika_detokenize(const pika_tokenizer *t, const int32_t *ids, int n, bool render_special, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return pika_set_error("token id %d out of range [0, %d)", ids[i], t->n_vocab);
        uint32_t m;
        piece_of(t, ids[i], render_special, &m);
        total += m;
    }
    char *o = pika_malloc(total + 1);
    size_t k = 0;
    bool remove_space = t->add_space_prefix;
    for (int i = 0; i < n; i++) {
        uint32_t m;
        const char *p = piece_of(t, ids[i], render_special, &m);
        if (remove_space && !(i == 0 && ids[i] == t->bos)) {
            if (m > 0 && p[0] == ' ') { p++; m--; }
            remove_space = false;
        }
        memcpy(o + k, p, m);
        k += m;
    }
    o[k] = 0;
    *out = o;
    if (len) *len = k;
    return 0;
}

/* ---------------------------------------------------------------- streaming detokenize */

void pika_detok_stream_init(pika_detok_stream *s, const pika_tokenizer *t, bool render_special) {
    memset(s, 0, sizeof *s);
    s->t = t;
    s->render_special = render_special;
}

/* Length of the trailing bytes of b[0..n) that start a valid but incomplete UTF-8 sequence. */
static int incomplete_tail(const unsigned char *b, int n) {
    for (int back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = b[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation: keep looking for the lead */
        int need = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

int pika_detok_stream_push(pika_detok_stream *s, int32_t id, char *out, int cap) {
    const pika_tokenizer *t = s->t;
    if (id < 0 || id >= t->n_vocab) return pika_set_error("token id %d out of range [0, %d)", id, t->n_vocab);
    uint32_t m;
    const char *p = piece_of(t, id, s->render_special, &m);
    /* only a BOS pushed first is exempt from the leading-space rule, as in pika_detokenize */
    bool leading_bos = s->n_pushed == 0 && id == t->bos;
    s->n_pushed++;
    if (!s->started && !leading_bos) {
        s->started = true;
        if (t->add_space_prefix && m > 0 && p[0] == ' ') { p++; m--; }
    }
    if ((int64_t)s->n_held + m > (int64_t)cap) return pika_set_error("detok stream: output buffer of %d bytes is too small", cap);
    memcpy(out, s->held, (size_t)s->n_held);
    memcpy(out + s->n_held, p, m);
    int n = s->n_held + (int)m;
    int tail = incomplete_tail((const unsigned char *)out, n);
    memcpy(s->held, out + n - tail, (size_t)tail);
    s->n_held = tail;
    return n - tail;
}

int pika_detok_stream_flush(pika_detok_stream *s, char *out, int cap) {
    if (s->n_held > cap) return pika_set_error("detok stream: output buffer of %d bytes is too small", cap);
    int n = s->n_held;
    memcpy(out, s->held, (size_t)n);
    s->n_held = 0;
    return n;
}
