/* serve.h — `pika serve`: a live OpenAI-compatible router in front of a pool of models.
 *
 * Per request: render the prompt with the recipe the probes were trained with, prefill the reader
 * model only up to the deepest probe layer (no lm_head), score every member's probe on that hidden
 * state, choose by utility (p − λ·c̃, the offline library's pika_route_utility on a one-row table),
 * cascade, or budget (utility with λ adjusted online), forward to the chosen member and stream its
 * answer back; fall back to the next member by utility on connect errors / 5xx / timeouts before the
 * first byte; a circuit breaker per member; every request in a SQLite decision log (WAL).
 *
 * Pieces, each usable alone:
 *   pika_serve_config  the pool.json file (README "pika serve" documents every field)
 *   pika_reader        reader model + prompt recipe + probes: text/messages -> p[n_members]
 *   pika_serve_decide  the decision: ranked members for a policy, λ, per-request budget, health
 *   pika_breaker       per-member circuit breaker (clock passed in: no hidden time)
 *   pika_budget        online λ controller keeping the rolling mean cost at a target
 *   pika_serve_log     the SQLite decision log and its summary (`pika route log`)
 *   pika_server        the HTTP front (net/http.h on libmicrohttpd) + forwarding (libcurl)
 *   pika_stub          a tiny OpenAI-like stub member (tests, bench)
 */
#ifndef PIKA_SERVE_H
#define PIKA_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "pika/route.h"

enum { PIKA_SERVE_UTILITY = 0, PIKA_SERVE_CASCADE = 1, PIKA_SERVE_BUDGET = 2 };

typedef struct {
    char *name;          /* model name clients use for bypass; also the x-pika-member value */
    char *url;           /* base URL, e.g. http://127.0.0.1:8081/v1 (the path /chat/completions is appended) */
    char *api_model;     /* "model" sent upstream (default: name) */
    char *probe;         /* probe file on the reader's activations (NULL: member is never routed to by probe; p = 0) */
    char *api_key_env;   /* environment variable holding the member's API key (NULL: none) */
    char *arm;           /* arm name in a router file (default: name) */
    double price_in, price_out; /* cost units per 1M tokens */
    double mean_cost;    /* cost per query for c̃ (router file, or given; NaN: price_in + price_out) */
    double timeout_s;    /* first-byte timeout (default 30) */
    double connect_timeout_s; /* default 2 */
} pika_serve_member;

typedef struct {
    /* reader */
    char *reader_model;
    char *template_name, *template_file, *system, *user_prefix, *user_suffix, *kwargs_json, *date;
    int no_template;
    int reader_contexts; /* concurrent reader prefills (default 2) */
    char *reader_url;    /* remote reader: base URL of a pika serve-model of reader_model (prefill + hidden
                          * states there, "pika": {"hidden_layers", "positions"}); NULL: local */
    /* policy */
    int policy;          /* PIKA_SERVE_* */
    double lambda;       /* utility / budget start */
    double threshold;    /* cascade */
    int cascade_order[PIKA_ROUTE_MAX_ARMS], n_cascade; /* member indices (default: by c̃) */
    double cost_per_query; /* budget target */
    int budget_window;   /* rolling window in requests (default 100) */
    double budget_gain;  /* λ step per unit relative error (default 0.05) */
    double lambda_max;   /* default 10 */
    /* members */
    int n_members;
    pika_serve_member members[PIKA_ROUTE_MAX_ARMS];
    double ct[PIKA_ROUTE_MAX_ARMS];     /* c̃ per member (min-max of mean_cost, as route.h) */
    /* serving */
    int max_attempts;    /* members tried per request (default 3) */
    int breaker_failures;/* consecutive failures that open a member's breaker (default 3) */
    double breaker_cooldown_s; /* default 10 */
    int64_t max_body;    /* request body limit in bytes (default 1 MiB) -> 413 */
    char *log_path;      /* SQLite decision log (NULL: none) */
} pika_serve_config;

/* Parse pool.json (text) / load it from a file. Errors name the field. Relative paths stay relative
 * to the working directory. A "policy": {"router": FILE} takes λ / threshold / cascade order and each
 * member's mean cost from a `pika route calibrate` router file (members matched by "arm"). */
int pika_serve_config_parse(const char *json, pika_serve_config *c);
int pika_serve_config_load(const char *path, pika_serve_config *c);
void pika_serve_config_free(pika_serve_config *c);
/* Member index by name, -1 when none. */
int pika_serve_member_index(const pika_serve_config *c, const char *name);

/* ---- the reader: prompt -> every member's probability ---- */
typedef struct pika_reader pika_reader;
/* Load the reader model, make the recipe, load every member's probe and check it was trained on this
 * model's activations with this recipe (else NULL + error naming the member). */
pika_reader *pika_reader_new(const pika_serve_config *c);
void pika_reader_free(pika_reader *r);
/* The deepest layer any probe reads (the prefill stops after it). */
int pika_reader_depth(const pika_reader *r);
const char *pika_reader_fingerprint(const pika_reader *r);
/* p[n_members] for a question (rendered with the recipe: system, prefix, suffix) or a conversation
 * (a single user message is treated as the question; otherwise the messages are rendered with the
 * template). Thread-safe (a pool of reader contexts). *n_tokens (may be NULL) = prompt tokens. */
int pika_reader_score_text(pika_reader *r, const char *question, double *p, int *n_tokens);
int pika_reader_score_messages(pika_reader *r, const cJSON *messages, double *p, int *n_tokens);

/* ---- the decision ---- */
typedef struct {
    int policy;          /* PIKA_SERVE_UTILITY or PIKA_SERVE_CASCADE (budget = utility with its λ) */
    double lambda;
    double threshold;
    double max_cost;     /* per-request budget: members with mean cost above it are skipped (NaN: none) */
    const int *healthy;  /* [n_members] 0 = breaker open (skipped unless nothing else is left); NULL = all */
} pika_decide_opts;
/* order[0..*n) = members to try, best first: [0] is the policy's choice (utility: pika_route_utility's
 * argmax over the allowed members, ties to config order; cascade: pika_route_cascade), the rest by
 * utility. Returns *n. */
int pika_serve_decide(const pika_serve_config *c, const double *p, const pika_decide_opts *o, int *order);

/* ---- circuit breaker ---- */
typedef struct {
    int failures;        /* consecutive */
    double open_until;   /* > now: open */
    int trial;           /* half-open: one trial request in flight */
} pika_breaker;
/* 1 when a request may go to the member at time now (closed, or half-open and no trial out). */
int pika_breaker_allow(pika_breaker *b, double now);
/* 1 when the member counts as healthy (for /health and the decision) at time now. */
int pika_breaker_healthy(const pika_breaker *b, double now);
void pika_breaker_record(pika_breaker *b, int ok, double now, int max_failures, double cooldown_s);

/* ---- budget mode: λ ← clamp(λ + gain·(mean − target)/target, 0, λ_max) after each request ---- */
typedef struct {
    double target, lambda, gain, lambda_max;
    int window, n, head;
    double *ring, sum;
    int64_t total_n;
    double total_cost;
} pika_budget;
void pika_budget_init(pika_budget *b, double target, double lambda0, int window, double gain, double lambda_max);
void pika_budget_free(pika_budget *b);
void pika_budget_observe(pika_budget *b, double cost);
double pika_budget_mean(const pika_budget *b); /* rolling mean (0 when none) */

/* ---- decision log (SQLite, WAL) ----
 * table requests(id INTEGER PRIMARY KEY, ts REAL (unix s), request_id TEXT, endpoint TEXT, model TEXT,
 *   policy TEXT, lambda REAL, prompt_hash TEXT, prompt TEXT (NULL unless --log-prompts), p TEXT (JSON
 *   object member -> p̂), member TEXT, attempts INTEGER, fallbacks INTEGER, status INTEGER, error TEXT,
 *   stream INTEGER, tokens_in INTEGER, tokens_out INTEGER, cost REAL, route_ms REAL, upstream_ms REAL) */
typedef struct {
    double ts;
    const char *request_id, *endpoint, *model, *policy;
    double lambda;
    const char *prompt_hash, *prompt, *p_json, *member, *error;
    int attempts, fallbacks, status, stream;
    int64_t tokens_in, tokens_out;
    double cost, route_ms, upstream_ms;
} pika_serve_log_row;
typedef struct pika_serve_log pika_serve_log;
pika_serve_log *pika_serve_log_open(const char *path);
int pika_serve_log_write(pika_serve_log *l, const pika_serve_log_row *r); /* thread-safe */
void pika_serve_log_close(pika_serve_log *l);                                /* flushes (WAL checkpoint) */
/* `pika route log`: requests, share per member, error rate, realised cost (total and per query),
 * mean routing / upstream latency; json = 1 prints one JSON object; jsonl = 1 prints every row. */
int pika_serve_log_summary(const char *path, FILE *out, int json);
int pika_serve_log_dump(const char *path, FILE *out);
/* New labels from real traffic: graded rollouts (pika grade rollouts; "id" = the request id the client
 * sent as X-Request-Id, "correct") joined with the log -> one JSONL row per graded answer that the log
 * holds: {"id", "member", "correct", "p" (every member's p̂), "cost", "tokens_in", "tokens_out",
 * "prompt_hash"}. *n = rows written. */
int pika_serve_log_labels(const char *path, const char *graded, FILE *out, int64_t *n);

/* ---- the server ---- */
typedef struct {
    const char *host;    /* default 127.0.0.1 */
    int port;            /* 0: a free port (pika_server_port tells) */
    int log_prompts;
    int access_log;      /* 1: one line per request on stderr (the HTTP layer's access log) */
} pika_server_opts;
typedef struct pika_server pika_server;
/* Load the reader (unless every member lacks a probe), open the log, bind and start serving. */
pika_server *pika_server_start(const pika_serve_config *c, const pika_server_opts *o);
int pika_server_port(const pika_server *s);
/* Stop accepting, wait up to drain_s for in-flight requests, stop, flush the log, free. */
void pika_server_stop(pika_server *s, double drain_s);
/* Requests in flight now. */
int pika_server_in_flight(pika_server *s);

/* ---- stub member: OpenAI-like, answers instantly "NAME: <last user content>" ---- */
typedef struct {
    int fail_status;     /* answer every request with this status (0: succeed) */
    int chunks;          /* stream chunks (default 3) */
    int hold;            /* 1: every request waits until pika_stub_release (drain tests) */
    int stream_hold;     /* 1: a stream sends its first event, then waits for pika_stub_release */
    int stream_abort;    /* 1: a stream sends its first event, then breaks the connection */
} pika_stub_opts;
typedef struct pika_stub pika_stub;
pika_stub *pika_stub_start(const char *name, int port, const pika_stub_opts *o);
int pika_stub_port(const pika_stub *s);
int64_t pika_stub_requests(const pika_stub *s); /* requests received (counted before any hold) */
void pika_stub_release(pika_stub *s);
/* The Authorization header of the last completion request ("" when none). */
void pika_stub_last_auth(pika_stub *s, char *out, size_t cap);
void pika_stub_stop(pika_stub *s);

#endif
