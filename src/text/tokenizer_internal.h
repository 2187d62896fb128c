/* tokenizer_internal.h — the tokenizer struct and helpers shared by tokenizer.c (vocab, SPM,
 * BPE merges, detokenize) and tokenizer_pre.c (BPE pre-tokenizer regexes). Not public API. */
#ifndef PIKA_TOKENIZER_INTERNAL_H
#define PIKA_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pika/tokenizer.h"

enum { TOK_SPM = 1, TOK_BPE = 2 };

#define TOK_MAX_REGEX 8

typedef struct {
    const char *key; /* NULL: empty slot; points into an arena owned by the tokenizer */
    uint32_t len;
    int32_t val;
} tok_hent;

typedef struct {
    tok_hent *e;
    size_t mask;
} tok_htab;

typedef struct {
    int32_t *a;
    size_t n, cap;
} tok_ivec;

typedef struct tok_bpe_work tok_bpe_work;

struct pika_tokenizer {
    int type;                 /* TOK_SPM / TOK_BPE */
    char *model, *pre;        /* tokenizer.ggml.model / .pre ("default" when absent) */
    int32_t n_vocab;
    char *arena;              /* all token texts */
    const char **text;        /* [n_vocab] into arena, not NUL-terminated */
    uint32_t *tlen;           /* [n_vocab] */
    float *score;             /* [n_vocab] */
    uint16_t *attr;           /* [n_vocab] PIKA_TOKEN_* bits */
    tok_htab vocab;           /* text -> id */
    tok_htab merges;          /* "left right" -> rank */
    char *merge_arena;
    int max_merge_len;        /* longest "left right" string, bytes */
    int32_t bos, eos, eot, eom, unk, pad, sep;
    bool add_bos, add_eos, add_space_prefix, ignore_merges, no_bos;
    bool spm_split_ok;        /* SPM text may be cut in front of "▁" (no token has it mid-word) */
    uint8_t *eog;             /* [n_vocab] 1 = ends generation */
    int32_t *special;         /* special-token cache, longest text first */
    int n_special;
    int32_t *special_by_first;  /* [n_special] indices into special, grouped by first byte */
    int32_t first_start[257];   /* group of byte b: special_by_first[first_start[b] .. first_start[b+1]) */
    char *pieces;             /* decoded piece of every token (special ones as their text) */
    uint32_t *piece_off, *piece_len;
    int max_piece;
    int32_t byte_tok[256];    /* byte -> token for fallback (-1 / unk when absent) */
    char b2u[256][2];         /* GPT-2 byte -> unicode char, UTF-8 (1 or 2 bytes) */
    uint8_t b2u_len[256];
    int16_t u2b[0x144];       /* unicode code point -> byte, -1 when not in the map */
    bool nfc;                 /* NFC-normalize raw text before encoding (Hugging Face Qwen2); off = llama.cpp */
    /* BPE pre-tokenizer */
    int n_re;
    void *re[TOK_MAX_REGEX];  /* pcre2_code_8 * */
};

int32_t tok_htab_get(const tok_htab *h, const char *key, size_t len);
void tok_ivec_push(tok_ivec *v, int32_t x);
int tok_utf8_len(unsigned char c);
int tok_utf8_encode(uint32_t c, char *out);
int64_t tok_utf8_decode(const unsigned char *s, size_t n, size_t *i);

tok_bpe_work *tok_bpe_work_new(void);
void tok_bpe_work_free(tok_bpe_work *wk);
void tok_bpe_word(const pika_tokenizer *t, const char *w, size_t n, tok_bpe_work *wk, tok_ivec *out);
/* How many symbol bytes tok_bpe_word could not encode at all (llama.cpp drops them silently);
 * sym and len get the first such symbol. */
size_t tok_bpe_work_dropped(const tok_bpe_work *wk, const char **sym, int *len);

/* tokenizer_pre.c: pick and compile the regexes for t->pre (sets ignore_merges/add_bos
 * defaults too); -1 + error for an unknown pre. */
int tok_pre_init(pika_tokenizer *t);
void tok_pre_free(pika_tokenizer *t);
/* Compile every regex of every known pre-tokenizer (for tests): 0 or -1 + error. */
int tok_pre_check_all(void);
/* Encode one raw-text fragment with the BPE model: UTF-8 clean-up, regex split, byte-level
 * mapping, merges. Appends ids to out. */
int tok_bpe_encode(const pika_tokenizer *t, const char *text, size_t len, tok_ivec *out);

#endif
