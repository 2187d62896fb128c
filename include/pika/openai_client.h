/* openai_client.h — a client of OpenAI-compatible servers (vLLM, SGLang, llama-server, a hosted API,
 * `pika serve-model`): POST /v1/chat/completions and /v1/completions over libcurl's multi interface.
 * Owns: a queue of requests, a bound on the requests in flight, retry with exponential backoff and
 * jitter on 429 / 5xx / transport errors and timeouts (a Retry-After header is honoured), a
 * per-request timeout, the Authorization header, parsing of a response into choices (text,
 * reasoning_content, finish_reason) and usage, and an SSE parser for streamed responses that hands
 * each chunk to a callback.
 *
 * Many requests, one thread driving them (pika sample --backend openai):
 *   pika_oai_opts o; pika_oai_opts_default(&o); o.base_url = "http://127.0.0.1:8000/v1"; o.concurrency = 16;
 *   pika_oai_client *c = pika_oai_client_new(&o);               // NULL + error
 *   pika_oai_submit(c, PIKA_OAI_COMPLETIONS, body_json, tag, on_done, NULL, user);  // on_chunk: NULL
 *   while (pika_oai_pending(c)) pika_oai_step(c, 1000);          // on_done runs inside step, once per request
 *   pika_oai_client_free(c);
 *
 * One request, blocking (a server thread forwarding a request; thread-safe, each call has its own
 * handles): pika_oai_request(&o, PIKA_OAI_CHAT, body, on_chunk, user, &res). When the body asks for
 * "stream": true the response is read as server-sent events and on_chunk sees every chunk as it
 * arrives (raw JSON + the parsed delta); the result then holds the concatenated choices as well.
 * A streamed request is retried only while no chunk has been handed out; a server that ignores
 * "stream" and answers application/json gives the whole result with no chunk calls.
 *
 * The API key is sent only as "Authorization: Bearer KEY"; it never appears in errors or results.
 * A client handle is used by one thread at a time; different handles are independent.
 */
#ifndef PIKA_OPENAI_CLIENT_H
#define PIKA_OPENAI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PIKA_OAI_CHAT = 0, PIKA_OAI_COMPLETIONS = 1 } pika_oai_endpoint;

typedef struct {
    const char *base_url;   /* e.g. "http://127.0.0.1:8000/v1" (a trailing "/" is fine); required */
    const char *api_key;    /* borrowed; NULL or "" = no Authorization header */
    int concurrency;        /* requests in flight at most (default 8) */
    int max_retries;        /* retries after the first attempt (default 6) */
    double timeout_s;       /* whole-request timeout per attempt (default 600) */
    double connect_timeout_s; /* default 10 */
    double backoff_base_s;  /* first retry delay before jitter (default 0.5); doubles each retry */
    double backoff_max_s;   /* cap of the delay (default 30) */
    double retry_after_max_s; /* a server's Retry-After is honoured up to this (default 300) */
    uint64_t jitter_seed;   /* seeds the jitter (default 1) */
} pika_oai_opts;

void pika_oai_opts_default(pika_oai_opts *o);

/* One choice of a response (all strings malloc'ed, NUL-terminated, valid UTF-8 or NULL). */
typedef struct {
    int index;
    char *text;        /* message.content (chat) or text (completions); "" when null */
    char *reasoning;   /* message.reasoning_content (or .reasoning), NULL when absent */
    char *finish;      /* finish_reason, NULL when absent */
} pika_oai_choice;

typedef struct {
    int ok;                 /* 1: HTTP 2xx and a parsable body */
    int status;             /* the last attempt's HTTP status, 0 = no response (transport error) */
    char *error;            /* one line when !ok (malloc'ed), NULL when ok */
    int attempts;           /* attempts made (1 + retries) */
    double latency_s;       /* the successful (or last) attempt's time */
    double waited_s;        /* time spent waiting between attempts (backoff, Retry-After) */
    int n_choices;
    pika_oai_choice *choices; /* sorted by index */
    int64_t prompt_tokens, completion_tokens, reasoning_tokens; /* usage, -1 when absent */
    char *model;            /* the response's "model", NULL when absent */
    char *body;             /* non-streamed: the response body as received (a proxy can forward it), else NULL */
    size_t body_len;
} pika_oai_result;

void pika_oai_result_free(pika_oai_result *r);

/* A streamed chunk: raw is the event's data (JSON text, not NUL-terminated); the rest is parsed from
 * it for the first choice in the chunk (index -1 and NULL pointers when the chunk has no choice, e.g.
 * a usage-only chunk). Return nonzero to cancel the request (it then fails with "cancelled"). */
typedef struct {
    const char *raw;
    size_t raw_len;
    int index;
    const char *text;       /* delta.content / text, NULL when absent */
    const char *reasoning;  /* delta.reasoning_content, NULL when absent */
    const char *finish;     /* finish_reason, NULL when absent */
} pika_oai_chunk;
typedef int (*pika_oai_chunk_fn)(const pika_oai_chunk *chunk, void *user);

/* Called once per submitted request when it finished (success, or failure after the retries). The
 * result is owned by the client and freed after the callback returns (copy or take what you need:
 * set a pointer field to NULL to keep it). */
typedef void (*pika_oai_done_fn)(uint64_t tag, pika_oai_result *res, void *user);

typedef struct pika_oai_client pika_oai_client;

pika_oai_client *pika_oai_client_new(const pika_oai_opts *o);
void pika_oai_client_free(pika_oai_client *c);   /* aborts requests still queued (no callbacks) */

/* Queue a request; body is a JSON object as text (copied). on_chunk may be NULL (used only when the
 * body asks for "stream": true). 0 or -1 + error. */
int pika_oai_submit(pika_oai_client *c, pika_oai_endpoint ep, const char *body, uint64_t tag, pika_oai_done_fn on_done,
                    pika_oai_chunk_fn on_chunk, void *user);
/* Requests submitted and not yet finished (queued, in flight or waiting to retry). */
int64_t pika_oai_pending(const pika_oai_client *c);
/* Start what may start, wait for activity up to timeout_ms, process it (done callbacks run here).
 * 0, or -1 + error on a libcurl failure of the whole client. */
int pika_oai_step(pika_oai_client *c, int timeout_ms);
/* Step until nothing is pending. */
int pika_oai_run(pika_oai_client *c);

/* One blocking request with its own client (thread-safe). Returns 0 when res->ok, else -1 + error
 * (the same line as res->error); res is filled either way (free with pika_oai_result_free). */
int pika_oai_request(const pika_oai_opts *o, pika_oai_endpoint ep, const char *body, pika_oai_chunk_fn on_chunk,
                     void *user, pika_oai_result *res);

/* Parse a non-streamed response body into res (choices, usage, model). 0 or -1 + error. */
int pika_oai_parse_response(const char *body, size_t len, pika_oai_result *res);

/* The endpoint's path below base_url: "chat/completions" or "completions". */
const char *pika_oai_endpoint_path(pika_oai_endpoint ep);

/* Delay before retry number `retry` (0-based): Retry-After when > 0 (capped at retry_after_max_s),
 * else min(backoff_max_s, backoff_base_s * 2^retry) scaled by a jitter factor in [0.5, 1). *rng is
 * the jitter state. Exposed for tests. */
double pika_oai_backoff_s(const pika_oai_opts *o, int retry, double retry_after_s, uint64_t *rng);

/* A Retry-After header value in seconds: delta-seconds or an HTTP date; -1 when it does not parse. */
double pika_oai_parse_retry_after(const char *value);

#endif
