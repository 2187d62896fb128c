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
#include "pika/openai_client.h"
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
    int64_t failed;        /* remote: questions skipped because their requests kept failing */
} pika_rollout_stats;

/* The seed of sample s of question id (the first draws of a resumed run equal an uninterrupted one's). */
uint64_t pika_rollout_seed(uint64_t seed, const char *id, int sample);

/* Generate for questions[0..n) into out_path (JSONL, appended and flushed line by line). n must be
 * >= 1. 0, or -1 + error; rows written before an error are kept (st->written says how many). */
int pika_rollouts(pika_ctx *c, const pika_tokenizer *tok, const pika_prompt_recipe *recipe, int64_t n,
                  char *const *ids, char *const *questions, const pika_rollout_opts *o, const char *out_path,
                  pika_rollout_stats *st);

/* The remote backend (`pika sample --backend openai`): the same rollouts + sidecar, with the answers
 * from an OpenAI-compatible server. /v1/completions gets the prompt rendered by the recipe (the very
 * bytes `pika extract` reads activations from); /v1/chat/completions gets the recipe's messages
 * (the server applies its own template). One request with n = k per question (a server that returns
 * fewer choices gets the rest as one request per sample), or k requests (one_per_request); sample s
 * of a one-sample request uses seed pika_rollout_seed(seed, id, s), the n = k request seed (id, 0).
 * A question's rows are written together once all its answers are in (rows of different questions
 * come in completion order); a question whose requests keep failing is reported on stderr, counted
 * in st->failed and not written, and the call then returns -1 ("N questions failed ...; rerun with
 * --resume"), so a rerun completes it. Rows carry the local fields plus "latency_s" (seconds of the
 * request that produced them) and "reasoning_content" when the server returned one; tokens_in and
 * tokens_out come from the response's usage (tokens_out then includes reasoning tokens), else from
 * tok (when given), else 0; with n = k the per-answer tokens_out is tok's count when tok is given,
 * else usage.completion_tokens split evenly. Provenance "model": {"backend": "openai", "api",
 * "api_model", "url", "name", "fingerprint": "openai/API/API_MODEL", "file" (the GGUF, if any)}; the
 * API key is never recorded. */
typedef struct {
    pika_oai_opts client;   /* base_url, api_key (borrowed, never written), concurrency, retries, timeout */
    const char *api_model;  /* "model" of each request (required) */
    pika_oai_endpoint api;  /* PIKA_OAI_COMPLETIONS (needs a recipe with a template or raw mode) or PIKA_OAI_CHAT */
    int one_per_request;    /* 1: k requests of n = 1 instead of one with n = k */
    const char *extra_body; /* a JSON object merged into every request body (e.g. {"add_special_tokens": false}), or NULL */
    int pika_seeds;         /* for `pika serve-model`: send the base seed and "pika": {"id", "first_sample"}, so
                               the server draws sample s of question id with pika_rollout_seed (answers equal a
                               local run's); other servers do not know the "pika" object */
} pika_remote_opts;

void pika_remote_opts_default(pika_remote_opts *r);

/* recipe: may be NULL with api = CHAT (messages from prompt_opts' system, prefix and suffix; the server
 * applies its template); prompt_opts is used only then. tok: may be NULL (no token-count fallback). */
int pika_rollouts_remote(const pika_prompt_recipe *recipe, const pika_prompt_opts *prompt_opts, const pika_tokenizer *tok,
                         int64_t n, char *const *ids, char *const *questions, const pika_rollout_opts *o,
                         const pika_remote_opts *ro, const char *out_path, pika_rollout_stats *st);

#endif
