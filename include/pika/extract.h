/* extract.h — pre-generation activations for a whole dataset: render each question with the
 * model's chat template, run the prompt through the model (prefill only, stopping after the last
 * layer needed) and store the residual stream at the end-of-instruction (EOI) tokens, at the
 * requested layers, in an activation store (acts.h). Memory-bounded (one prompt at a time),
 * resumable (a killed run continues where its last flush left off), with progress on a TTY.
 */
#ifndef PIKA_EXTRACT_H
#define PIKA_EXTRACT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "pika/model.h"
#include "pika/tokenizer.h"

typedef struct {
    const char *template_src; /* Jinja chat template; NULL = raw text (BOS as the vocab asks; EOI = last token) */
    const char *template_name;/* recorded in provenance only */
    const char *system;       /* optional system message */
    const char *user_suffix;  /* appended to every question, e.g. "\nPlease reason step by step, ..." */
    const char *bos_token, *eos_token;
    const cJSON *kwargs;      /* template variables, e.g. {"enable_thinking": false} */
    const char *date;         /* pins strftime_now() */
    int n_layers;             /* -1 = all (0..n_layer) */
    const int32_t *layers;
    int n_pos;                /* -1 = the EOI positions -n_eoi..-1 */
    const int32_t *positions; /* negative offsets from the prompt end */
    int dtype;                /* PIKA_NPY_F16 (default) or PIKA_NPY_F32 */
    int resume;               /* continue an existing store made with the same model and prompt */
    int flush_every;          /* examples between durable flushes (default 16) */
    const char *model_path;   /* recorded in provenance */
} pika_eoi_opts;

void pika_eoi_opts_default(pika_eoi_opts *o);

typedef struct {
    int64_t done;      /* rows in the store at the end */
    int64_t resumed;   /* rows that were already there */
    int n_eoi;         /* EOI tokens of the template */
    int64_t tokens;    /* prompt tokens processed in this run */
    double seconds;
} pika_eoi_stats;

/* Render the prompt of one question as the extractor does (for inspection / tests).
 * Returns malloc'ed ids (*n_ids) and the EOI count, or -1 + error. */
int pika_eoi_prompt(const pika_tokenizer *tok, const pika_eoi_opts *o, const char *question, int32_t **ids,
                        int *n_ids, int *n_eoi);

/* Extract rows for ids[0..n) / questions[0..n) into out_dir. Returns 0 or -1 + error; rows finished
 * before an error are flushed and kept. */
int pika_eoi_extract(pika_ctx *c, const pika_tokenizer *tok, int64_t n, char *const *ids, char *const *questions,
                 const char *out_dir, const pika_eoi_opts *o, pika_eoi_stats *st);

#endif
