/* extract.h — pre-generation activations for a whole dataset: render each question with the
 * model's chat template, run the prompt through the model (prefill only, stopping after the last
 * layer needed) and store the residual stream at the end-of-instruction (EOI) tokens, at the
 * requested layers, in an activation store (acts.h). Memory-bounded (one pack of prompts at a time),
 * resumable (a killed run continues where its last flush left off), with progress on a TTY.
 * Prompts come from a prompt recipe (prompt.h), the same one `pika sample` uses.
 */
#ifndef PIKA_EXTRACT_H
#define PIKA_EXTRACT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "pika/model.h"
#include "pika/prompt.h"
#include "pika/tokenizer.h"

typedef struct {
    int n_layers;             /* -1 = all (0..n_layer) */
    const int32_t *layers;
    int n_pos;                /* -1 = the EOI positions -n_eoi..-1 */
    const int32_t *positions; /* negative offsets from the prompt end */
    int dtype;                /* PIKA_NPY_F16 (default) or PIKA_NPY_F32 */
    int resume;               /* continue an existing store made with the same model, prompt and layout */
    int force;                /* overwrite an existing non-empty store */
    int flush_every;          /* examples between durable flushes (default 16) */
    const char *model_path;   /* recorded in provenance */
    int pack_tokens;          /* consecutive prompts run in one forward pass (pika_forward_packed) while their
                               * tokens after the shared prefix add up to at most this (default 512; a longer
                               * prompt gets a pass of its own); <= 1: one prompt per pass */
    int no_prefix_cache;      /* 1: run every prompt from its first token; 0 (default): the prefix the prompts
                               * share (the template's opening) is run once and kept in the KV cache, and only
                               * the rest of each prompt is run (results equal within F32 rounding) */
} pika_eoi_opts;

void pika_eoi_opts_default(pika_eoi_opts *o);

typedef struct {
    int64_t done;      /* rows in the store at the end */
    int64_t resumed;   /* rows that were already there */
    int started;       /* 1 once the store was opened for writing (rows in done are safe on disk) */
    int n_eoi;         /* EOI tokens of the template */
    int64_t tokens;    /* prompt tokens run through the model in this run */
    int64_t tokens_reused; /* prompt tokens of this run's rows not run again: read from the cached prefix */
    double seconds;
} pika_eoi_stats;

/* Extract rows for ids[0..n) / questions[0..n) (n >= 1) into out_dir, prompts from the recipe
 * (prompt.h; "prompt" in meta.json is its provenance + "n_eoi"). A non-empty store is only reopened
 * with resume (and must then match: model, prompt, layers, positions, dtype, ids) or overwritten
 * with force. Returns 0 or -1 + error; rows finished before an error are flushed and kept. */
int pika_eoi_extract(pika_ctx *c, const pika_prompt_recipe *recipe, int64_t n, char *const *ids,
                     char *const *questions, const char *out_dir, const pika_eoi_opts *o, pika_eoi_stats *st);

#endif
