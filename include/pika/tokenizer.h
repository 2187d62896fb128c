/* tokenizer.h — text <-> token ids exactly as llama.cpp / Hugging Face do it, from the
 * tokenizer metadata in a GGUF file (tokenizer.ggml.*):
 *   model "gpt2"  -> byte-level BPE with merge ranks; pre-tokenizer regex by tokenizer.ggml.pre
 *   model "llama" -> SentencePiece-style BPE with scores and byte fallback
 *
 * The tokenizer copies everything it needs out of the GGUF: the pika_gguf may be closed after
 * pika_tokenizer_from_gguf(). A built tokenizer is read-only, so one may be shared by threads.
 *
 * Defined behaviour on odd input (tested):
 *   - empty text -> 0 ids (plus BOS/EOS when add_special asks for them);
 *   - NUL bytes are ordinary bytes (lengths are explicit everywhere);
 *   - malformed UTF-8: the SPM tokenizer keeps the raw bytes (byte-fallback tokens <0xNN>), so it
 *     round-trips, except that, like llama.cpp, it cuts symbols by the lead byte's length, so a bad
 *     lead byte right before a space swallows the escaped space ("\xfe x" decodes to
 *     "\xfe\xe2\x96\x81x"); the BPE tokenizer decodes like llama.cpp (lead byte + continuation
 *     bytes, no overlong check) and replaces every byte that does not start a decodable sequence,
 *     and each sequence that decodes to a surrogate or a code point above U+10FFFF, with U+FFFD
 *     before pre-tokenizing.
 *   - white space in the pre-tokenizer regexes (\s) is Unicode White_Space, as in Hugging Face
 *     (Oniguruma) and llama.cpp: U+180E is not white space (PCRE2's own \s would say it is).
 */
#ifndef PIKA_TOKENIZER_H
#define PIKA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pika/gguf.h"

typedef struct pika_tokenizer pika_tokenizer;

/* Build from GGUF metadata. NULL + error when the model/pre is unsupported or metadata is bad. */
pika_tokenizer *pika_tokenizer_from_gguf(const pika_gguf *g);
void pika_tokenizer_free(pika_tokenizer *t);

int32_t pika_tokenizer_n_vocab(const pika_tokenizer *t);
int32_t pika_tokenizer_bos(const pika_tokenizer *t); /* -1 when none */
int32_t pika_tokenizer_eos(const pika_tokenizer *t); /* -1 when none */
int32_t pika_tokenizer_eot(const pika_tokenizer *t); /* -1 when none (<|eot_id|>, <|im_end|>, ... by text) */
/* 1 when id ends generation (EOS, EOT, <|im_end|>, <|eot_id|>, ... as the vocab marks them). */
int pika_tokenizer_is_eog(const pika_tokenizer *t, int32_t id);
/* Whether BOS/EOS are added by default (tokenizer.ggml.add_bos_token etc. with llama.cpp defaults). */
bool pika_tokenizer_adds_bos(const pika_tokenizer *t);
bool pika_tokenizer_adds_eos(const pika_tokenizer *t);
/* "gpt2" or "llama", and the pre-tokenizer name ("qwen2", "llama-bpe", "default", ...). */
const char *pika_tokenizer_model(const pika_tokenizer *t);
const char *pika_tokenizer_pre(const pika_tokenizer *t);

/* Unicode normalization of the input before encoding. Off by default, which is what llama.cpp
 * does (it normalizes nothing). Hugging Face's Qwen2 tokenizer (tokenizer.json "normalizer":
 * NFC) composes the text to NFC first; turn this on to match HF on such text (e.g. "e" + U+0301
 * becomes U+00E9 before pre-tokenizing). Applies to the text between special tokens; invalid
 * UTF-8 bytes are kept as they are and the valid runs around them are normalized (utf8proc).
 * Call it before sharing the tokenizer between threads. */
void pika_tokenizer_set_nfc(pika_tokenizer *t, bool on);
bool pika_tokenizer_nfc(const pika_tokenizer *t);

/* Encode len bytes of text. add_special: add BOS/EOS as the vocab asks (llama_tokenize semantics).
 * parse_special: match special/control token texts in the input. Returns the number of ids and a
 * malloc'ed array in *ids, or -1 + error. */
int pika_tokenize(const pika_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                  int32_t **ids);

/* Bytes of one token as it appears in decoded text (byte-fallback tokens give their byte; special
 * tokens give their text when render_special, else nothing). Returns length, writes up to cap bytes. */
int pika_token_to_piece(const pika_tokenizer *t, int32_t id, bool render_special, char *buf, int cap);

/* Decode ids to bytes (malloc'ed, NUL-terminated; *len gets the byte count). SPM's leading space
 * added at encode time is removed like llama.cpp does: one leading ' ' of the first token's piece
 * is dropped when the vocab adds a space prefix; a leading BOS id does not count as the first token.
 * No "clean up tokenization spaces" pass is applied: bytes come out exactly as the tokens hold them.
 * Returns 0 or -1 + error (bad id). */
int pika_detokenize(const pika_tokenizer *t, const int32_t *ids, int n, bool render_special, char **out, size_t *len);

/* Id of an exact token text, or -1. */
int32_t pika_tokenizer_find(const pika_tokenizer *t, const char *text, size_t len);

/* Raw vocabulary text of a token (as stored in the GGUF, e.g. "Ġthe" or "▁the"), not
 * NUL-terminated; *len gets its length. NULL for a bad id. */
const char *pika_tokenizer_token_text(const pika_tokenizer *t, int32_t id, int *len);

/* Token attributes (bit mask, llama.cpp's llama_token_attr numbering). 0 for a bad id. */
#define PIKA_TOKEN_UNKNOWN      (1 << 0)
#define PIKA_TOKEN_UNUSED       (1 << 1)
#define PIKA_TOKEN_NORMAL       (1 << 2)
#define PIKA_TOKEN_CONTROL      (1 << 3)
#define PIKA_TOKEN_USER_DEFINED (1 << 4)
#define PIKA_TOKEN_BYTE         (1 << 5)
#define PIKA_TOKEN_LSTRIP       (1 << 7)
#define PIKA_TOKEN_RSTRIP       (1 << 8)
int pika_tokenizer_token_attr(const pika_tokenizer *t, int32_t id);

/* Longest piece any token decodes to (bytes). */
int pika_tokenizer_max_piece_len(const pika_tokenizer *t);

/* Streaming decode for generation: feed ids one at a time; only bytes that complete UTF-8
 * characters come out, a trailing incomplete-but-valid sequence is held until the next id.
 * Bytes that can never become valid UTF-8 are passed through as they are (not held).
 *   pika_detok_stream s; pika_detok_stream_init(&s, tok, false);
 *   n = pika_detok_stream_push(&s, id, buf, sizeof buf);   // >= 0 bytes written, -1 + error
 *   n = pika_detok_stream_flush(&s, buf, sizeof buf);      // whatever is still held
 * cap must be at least pika_tokenizer_max_piece_len(t) + 4. The leading-space rule of
 * pika_detokenize applies to the first pushed id (after a leading BOS). */
typedef struct {
    const pika_tokenizer *t;
    bool render_special;
    bool started;      /* the leading-space rule has been applied (to the first id after a leading BOS) */
    int n_pushed;      /* ids pushed so far */
    int n_held;
    char held[4];
} pika_detok_stream;
void pika_detok_stream_init(pika_detok_stream *s, const pika_tokenizer *t, bool render_special);
int pika_detok_stream_push(pika_detok_stream *s, int32_t id, char *out, int cap);
int pika_detok_stream_flush(pika_detok_stream *s, char *out, int cap);

#endif
