/* rollout.h — sample k answers per question with the local engine and write them as rollouts
 * JSONL ({id, sample, text, tokens_in, tokens_out, model, finish}), the input of `pika grade`.
 * The prompt is built exactly as for activation extraction (extract.h), so the activations a probe
 * reads come from the very prompt the answers were generated from. Each (question, sample) draws
 * with its own seed derived from (seed, id, sample): a resumed run writes what an uninterrupted one
 * would have. The prompt is prefilled once per question and its KV cache reused by all k samples.
 */
#ifndef PIKA_ROLLOUT_H
#define PIKA_ROLLOUT_H

#include <stdint.h>

#include "pika/extract.h"
#include "pika/model.h"
#include "pika/tokenizer.h"

typedef struct {
    int k;                 /* samples per question (default 1) */
    int max_tokens;        /* generated tokens per sample (default 256) */
    pika_sampling sampling;/* temperature 0 = greedy */
    const char *model_name;/* "model" field of each rollout (default: the GGUF file name) */
    int resume;            /* keep (id, sample) pairs already in the output file */
} pika_rollout_opts;

void pika_rollout_opts_default(pika_rollout_opts *o);

typedef struct {
    int64_t written, skipped;
    int64_t tokens_out;
    double seconds;
} pika_rollout_stats;

/* Generate for questions[0..n) into out_path (JSONL, appended and flushed line by line). */
int pika_rollouts(pika_ctx *c, const pika_tokenizer *tok, int64_t n, char *const *ids, char *const *questions,
                  const pika_eoi_opts *prompt, const pika_rollout_opts *o, const char *out_path,
                  pika_rollout_stats *st);

#endif
