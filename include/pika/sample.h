/* sample.h — `pika sample` as a library job: k sampled answers per question with the local engine,
 * written as rollouts JSONL (rollout.h), the input of `pika grade`. Prompts come from a prompt
 * recipe (prompt.h), the same one `pika extract` uses, so a probe reads the activations of the very
 * prompt the answers were generated from; decoding is generate.h's loop. Each (question, sample)
 * draws with its own seed derived from (seed, id, sample): a resumed run writes what an
 * uninterrupted one would have. The prompt is prefilled once per question and its KV cache reused by
 * all k samples.
 *
 * Output safety: a non-empty output is never overwritten unless force, and only continued (resume)
 * when its provenance sidecar (FILE.meta.json: model, prompt recipe, sampling) matches this run.
 */
#ifndef PIKA_SAMPLE_H
#define PIKA_SAMPLE_H

#include <stdint.h>

#include "pika/generate.h"
#include "pika/model.h"
#include "pika/prompt.h"
#include "pika/tokenizer.h"

typedef struct {
    int k;                 /* samples per question, >= 1 (default 1) */
    pika_gen_opts gen;     /* sampling (seed = the base seed), max_tokens >= 1 (default 256), stop strings */
    const char *model_name;/* "model" field of each rollout (default: the GGUF file name) */
    const char *model_path;/* recorded in the provenance sidecar */
    int resume;            /* keep (id, sample) pairs already in the output (provenance must match) */
    int force;             /* overwrite a non-empty output */
} pika_rollout_opts;

void pika_rollout_opts_default(pika_rollout_opts *o);

typedef struct {
    int64_t written, skipped;
    int64_t existing;      /* rollouts in the output before this run (kept on resume) */
    int started;           /* 1 once the output was opened for writing (its rows are safe on disk) */
    int64_t tokens_out;
    double seconds;
} pika_rollout_stats;

/* The seed of sample s of question id (the first draws of a resumed run equal an uninterrupted one's). */
uint64_t pika_rollout_seed(uint64_t seed, const char *id, int sample);

/* Generate for questions[0..n) into out_path (JSONL, appended and flushed line by line). n must be
 * >= 1. 0, or -1 + error; rows written before an error are kept (st->written says how many). */
int pika_rollouts(pika_ctx *c, const pika_tokenizer *tok, const pika_prompt_recipe *recipe, int64_t n,
                  char *const *ids, char *const *questions, const pika_rollout_opts *o, const char *out_path,
                  pika_rollout_stats *st);

#endif
