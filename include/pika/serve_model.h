/* serve_model.h — `pika serve-model`: one model behind an OpenAI-compatible HTTP API (http.h), with
 * continuous batching over S sequence slots (pika_batch, model.h) and generation by the decode loop of
 * generate.h, so a request gives what `pika generate` / `pika sample` give locally.
 *
 * Endpoints:
 *   GET  /health                 {"status": "ok", "slots_idle", "slots_processing", "queue_depth"}
 *   GET  /metrics                Prometheus text (requests, tokens in/out, prefill/decode tok/s, queue, slots)
 *   GET  /v1/models, /v1/models/ID
 *   POST /v1/completions         "prompt": a string, an array of strings, an array of token ids or an
 *                                array of such arrays (choices = prompts × n, prompt-major)
 *   POST /v1/chat/completions    "messages" rendered with the chat template of the server's recipe
 * Request fields: n, seed, temperature, top_p, top_k (-1 = off, as vLLM writes it), min_p, max_tokens (max_completion_tokens), stop,
 * logprobs (completions: top-N 0..20; chat: logprobs + top_logprobs), stream, stream_options.include_usage,
 * ignore_eos, and the extension object "pika": {"hidden_layers": [l, ...], "positions": [-5..-1],
 * "id": "question id", "first_sample": s}. Unsupported features that change the output (echo, suffix,
 * best_of > n, logit_bias, presence/frequency penalties, tools, response formats) are refused with 400.
 *
 * Semantics (also in README.md):
 *   - text prompts: tokenized with special-token texts parsed and the vocab's BOS added unless the text
 *     starts with a control token (BOS, [INST], <|im_start|>, ...) — a plain prompt gives the ids of
 *     `pika generate --prompt`, a prompt rendered by a chat template (pika_prompt_render) the ids of the
 *     template path;
 *   - seeds: choice j of a prompt samples with seed + j (j = 0: exactly `pika generate --seed S`); with
 *     "pika": {"id": ID} choice j uses pika_rollout_seed(seed, ID, first_sample + j), i.e. sample j of
 *     question ID in `pika sample --seed S`. No seed (or -1): a random one, reported as "pika": {"seed"};
 *   - logprobs: log-softmax of the model's logits (temperature 1, before any filter), as OpenAI reports;
 *   - max_tokens: default 16 (completions) or the rest of the slot's context (chat); always capped at
 *     the context left after the prompt (finish_reason "length"); a prompt longer than the slot's
 *     context is a 400 (code "context_length_exceeded");
 *   - the n samples of one prompt are prefilled once and the prompt's KV rows copied into n slots;
 *   - prompt cache (as llama-server's cache_prompt): a finished request's slot keeps its prompt's KV
 *     rows; a new prompt takes the free slot sharing its longest token prefix and prefills only the
 *     rest (at least 4 tokens, and every requested hidden-state position), which gives the full
 *     prefill's logits and hidden states bit for bit. usage.prompt_tokens_details.cached_tokens says how
 *     many were reused; "cache_prompt": false in a request (or no_prompt_cache) turns it off;
 *   - a request needs prompts × n free slots; it waits in a FIFO queue of at most queue_limit requests
 *     while the slots are busy, and gets 503 past that. Memory: S slots × ctx tokens of KV at most.
 */
#ifndef PIKA_SERVE_MODEL_H
#define PIKA_SERVE_MODEL_H

#include <stddef.h>

#include "pika/prompt.h"

typedef struct {
    const char *model_path;
    const char *alias;        /* model id in /v1/models and responses (default: file name without .gguf) */
    const char *host;         /* default 127.0.0.1 */
    int port;                 /* default 8080; 0 = any free port (pika_serve_model_port) */
    int n_threads;            /* compute threads (<= 0: all cores) */
    int n_parallel;           /* S sequence slots (default 4) */
    int n_ctx;                /* tokens per slot (0: min(the model's training context, 4096), 4096 when unknown) */
    int queue_limit;          /* requests waiting for slots at most (default 16); past it: 503 */
    size_t max_body;          /* request body limit in bytes (default 4 MiB); past it: 413 */
    int max_connections;      /* HTTP connections at most (default 256) */
    int log;                  /* one line per request on stderr (default 1) */
    int no_prompt_cache;      /* 1: every prompt is prefilled whole (default 0: prompt cache on) */
    pika_prompt_opts prompt;  /* chat template (template name/file, kwargs, date, BOS/EOS texts) */
} pika_serve_model_opts;

void pika_serve_model_opts_default(pika_serve_model_opts *o);

typedef struct pika_serve_model pika_serve_model;

/* Load the model, tokenizer and chat template and allocate the slots (not yet listening).
 * NULL + error. A model without a chat template still serves /v1/completions (chat requests then get
 * a 400 naming the problem). */
pika_serve_model *pika_serve_model_new(const pika_serve_model_opts *o);
/* Listen and start the scheduler. 0 or -1 + error ("cannot listen on ..."). */
int pika_serve_model_start(pika_serve_model *s);
int pika_serve_model_port(const pika_serve_model *s);
/* Stop: queued requests get 503, running ones are cancelled, then the HTTP server stops. Idempotent. */
void pika_serve_model_stop(pika_serve_model *s);
void pika_serve_model_free(pika_serve_model *s);

#endif
