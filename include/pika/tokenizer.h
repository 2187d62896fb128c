/* tokenizer.h — text <-> token ids exactly as llama.cpp / Hugging Face do it, from the
 * tokenizer metadata in a GGUF file (tokenizer.ggml.*):
 *   model "gpt2"  -> byte-level BPE with merge ranks; pre-tokenizer regex by tokenizer.ggml.pre
 *   model "llama" -> SentencePiece-style BPE with scores and byte fallback
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
/* 1 when id ends generation (EOS, EOT, <|im_end|>, <|eot_id|>, ... as the vocab marks them). */
int pika_tokenizer_is_eog(const pika_tokenizer *t, int32_t id);
/* Whether BOS/EOS are added by default (tokenizer.ggml.add_bos_token etc. with llama.cpp defaults). */
bool pika_tokenizer_adds_bos(const pika_tokenizer *t);
bool pika_tokenizer_adds_eos(const pika_tokenizer *t);

/* Encode len bytes of text. add_special: add BOS/EOS as the vocab asks (llama_tokenize semantics).
 * parse_special: match special/control token texts in the input. Returns the number of ids and a
 * malloc'ed array in *ids, or -1 + error. */
int pika_tokenize(const pika_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                  int32_t **ids);

/* Bytes of one token as it appears in decoded text (byte-fallback tokens give their byte; special
 * tokens give their text when render_special, else nothing). Returns length, writes up to cap bytes. */
int pika_token_to_piece(const pika_tokenizer *t, int32_t id, bool render_special, char *buf, int cap);

/* Decode ids to bytes (malloc'ed, NUL-terminated; *len gets the byte count). SPM's leading space
 * added at encode time is removed like llama.cpp does. Returns 0 or -1 + error (bad id). */
int pika_detokenize(const pika_tokenizer *t, const int32_t *ids, int n, bool render_special, char **out, size_t *len);

/* Id of an exact token text, or -1. */
int32_t pika_tokenizer_find(const pika_tokenizer *t, const char *text, size_t len);

#endif
