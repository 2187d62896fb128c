/* generate.h — the decode loop: from a prefilled prompt, sample tokens until an end-of-generation
 * token, a stop string or the token limit, handing UTF-8-safe text pieces to a callback as they
 * are decided (for streaming). `pika generate`, `pika sample` (rollout.h) and the server all decode
 * through it. Also owns the generation options (sampling parameters + max tokens + stop strings)
 * and their one command-line / request parser and validator.
 *
 *   pika_gen_opts o; pika_gen_opts_default(&o);
 *   pika_gen_parse_flag(&o, "--temperature", "0.7");      // 1 = taken, 0 = not a generation flag, -1 + error
 *   if (pika_gen_opts_validate(&o)) ...                    // -1 + "temperature must be ..., got nan"
 *   pika_gen_result res;
 *   pika_generate(ctx, tok, ids, n_ids, &o, on_piece, user, &res);   // res.text, res.finish
 *   pika_gen_result_free(&res);
 *
 * Text: pieces are decoded with pika_detok_stream (specials not rendered) and repaired to valid UTF-8
 * (stray bytes become U+FFFD); the concatenation of all pieces equals result.text. With stop
 * strings, text that could still turn out to be the start of a stop string is held back until it
 * cannot; the stop string itself and anything after it is never emitted (OpenAI semantics).
 *
 * Threads: one pika_ctx per thread; the model, tokenizer and options may be shared.
 */
#ifndef PIKA_GENERATE_H
#define PIKA_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pika/model.h"
#include "pika/sampler.h"
#include "pika/tokenizer.h"

#define PIKA_GEN_MAX_STOP 16

typedef struct {
    pika_sampling sampling; /* temperature, top-k, top-p, min-p, seed (sampler.h) */
    int max_tokens;         /* generated tokens at most, >= 0 (default 256) */
    int n_stop;
    const char *stop[PIKA_GEN_MAX_STOP]; /* stop strings (borrowed, non-empty) */
    int ignore_eog;         /* 1: do not stop at end-of-generation tokens */
} pika_gen_opts;

void pika_gen_opts_default(pika_gen_opts *o);

/* One command-line flag (or request field) of the generation options: --temperature/--temp T,
 * --top-k K, --top-p P, --min-p P, --seed S, --max-tokens/-n/--n-predict N, --stop TEXT (repeatable,
 * up to PIKA_GEN_MAX_STOP; value borrowed). Returns 1 when the flag was one of these and its value
 * parsed (the range is checked by pika_gen_opts_validate), 0 when the flag is not a generation flag,
 * -1 + error ("--top-k must be an integer, got '1.5'") when the value does not parse. */
int pika_gen_parse_flag(pika_gen_opts *o, const char *flag, const char *value);
/* The same options from an OpenAI-style request object (for the server): "temperature", "top_p",
 * "top_k", "min_p", "seed", "max_tokens" (or "max_completion_tokens"), "stop" (a string or an array of
 * strings; borrowed from req, which must outlive o). Absent or null keys keep o's values; a key of the
 * wrong type is an error ("temperature must be a number"). Ranges are then checked as by
 * pika_gen_opts_validate. 0 or -1 + error. */
int pika_gen_opts_from_json(pika_gen_opts *o, const cJSON *req);
/* Sampling ranges (pika_sampling_validate) + max_tokens >= 0 + non-empty stop strings. 0 or -1 + error. */
int pika_gen_opts_validate(const pika_gen_opts *o);
/* Help text of the generation flags (static, lines of "  --flag ...  what\n"). */
const char *pika_gen_flags_help(void);
/* The options as a JSON object {"temperature", "top_k", "top_p", "min_p", "seed", "max_tokens",
 * "stop": [...]} (for provenance; caller deletes). */
cJSON *pika_gen_opts_json(const pika_gen_opts *o);

/* Called with each decided piece of text (len > 0 bytes, valid UTF-8, not NUL-terminated).
 * Return nonzero to stop generating (finish = "cancelled"). */
typedef int (*pika_piece_fn)(const char *piece, size_t len, void *user);

typedef struct {
    char *text;        /* generated text (malloc'ed, NUL-terminated, valid UTF-8), stop string excluded */
    size_t len;
    int32_t *ids;      /* generated ids [n_ids] (malloc'ed), the end-of-generation token excluded */
    int n_ids;
    const char *finish;/* "stop" (end-of-generation token or stop string), "length" or "cancelled" */
    int stop_index;    /* index of the stop string that ended it, -1 otherwise */
} pika_gen_result;
void pika_gen_result_free(pika_gen_result *r);

/* Reset the context, prefill prompt[0..n_prompt) and decode. tok may be NULL (ids only: no text, no
 * stop strings, end-of-generation = the GGUF's EOS id). on_piece may be NULL. 0 or -1 + error (the
 * result then holds what was generated before the error). */
int pika_generate(pika_ctx *c, const pika_tokenizer *tok, const int32_t *prompt, int n_prompt, const pika_gen_opts *o,
                  pika_piece_fn on_piece, void *user, pika_gen_result *out);

/* Decode from a context that holds a prefilled prompt: keep its first n_keep tokens (the prompt),
 * start from logits[n_vocab] (those of the prompt's last token) and decode as pika_generate does.
 * Sampling k answers from one prompt: prefill once, then call this k times with the same n_keep and
 * logits (the KV cache of the prompt is reused). */
int pika_generate_from(pika_ctx *c, const pika_tokenizer *tok, int n_keep, const float *logits, const pika_gen_opts *o,
                       pika_piece_fn on_piece, void *user, pika_gen_result *out);

/* The same decode loop one token at a time, for a caller that runs the model itself (the server
 * batches many sequences into one forward step; pika_generate_from is this loop around pika_forward,
 * so both give the same tokens, text and finish reason):
 *   pika_decoder *d = pika_decoder_new(model, tok, &o, on_piece, user);    // NULL + error (bad options)
 *   int32_t t;
 *   while (pika_decoder_next(d, logits, &t) == 1) logits = <logits after running t>;
 *   pika_gen_result res; pika_decoder_finish(d, &res); pika_decoder_free(d);
 * pika_decoder_next samples from logits[n_vocab]: 1 = t was generated and the model must run it next,
 * 0 = generation is over (a token may still have been added: pika_decoder_n_ids tells), -1 + error.
 * on_piece is called from pika_decoder_next and pika_decoder_finish (held-back text is flushed there).
 * The options are copied; their stop strings stay borrowed. */
typedef struct pika_decoder pika_decoder;
pika_decoder *pika_decoder_new(const pika_model *m, const pika_tokenizer *tok, const pika_gen_opts *o, pika_piece_fn on_piece,
                               void *user);
int pika_decoder_next(pika_decoder *d, const float *logits, int32_t *next);
int pika_decoder_n_ids(const pika_decoder *d);
const int32_t *pika_decoder_ids(const pika_decoder *d);
/* The result (text, ids, finish, stop index); call once, after the last pika_decoder_next. */
void pika_decoder_finish(pika_decoder *d, pika_gen_result *out);
void pika_decoder_free(pika_decoder *d);

#endif
