/* http.h — a small HTTP/1.1 server for pika's JSON APIs (libmicrohttpd underneath), shared by
 * `pika serve-model` (issue 12) and `pika serve` (issue 13).
 *
 *   pika_http_opts o; pika_http_opts_default(&o); o.port = 8080;
 *   pika_http_server *s = pika_http_new(&o);
 *   pika_http_route(s, "GET", "/health", on_health, app);
 *   pika_http_route(s, "POST", "/v1/", on_v1, app);  (a path ending in * matches as a prefix)
 *   if (pika_http_start(s)) die(pika_last_error());             // bind + listen
 *   ... pika_http_stop(s); pika_http_free(s);
 *
 *   static void on_health(pika_http_request *r, void *app) {
 *       cJSON *body = pika_http_json_body(r);                  // NULL: a 400 was already sent
 *       pika_http_respond_json(r, 200, reply);                 // or pika_http_respond_error(...)
 *   }
 *
 * Threads: one thread per connection (bounded by max_connections; connections past it are
 * refused). A handler runs on its connection's thread once the whole body has arrived and may block
 * (e.g. wait for an inference job); it must call exactly one pika_http_respond* function before it
 * returns (otherwise the layer answers 500). While it waits it can poll pika_http_client_gone().
 *
 * Built in: routing by method + path (unknown path → 404, known path with another method → 405
 * with Allow), a body size limit (Content-Length over it → 413 before the body is read; a chunked
 * body that grows past it is discarded and answered 413), JSON body parsing (→ 400 with the parse
 * position), OpenAI-style error objects {"error": {"message", "type", "param", "code"}}, request ids
 * ("X-Request-Id" response header; the client's own X-Request-Id is kept when it is sane), one
 * access-log line per request, and a graceful stop.
 *
 * Streaming (server-sent events): pika_http_respond_stream() sends the status and headers and returns
 * a pika_http_stream that any thread may write to; bytes go out as they are written (chunked
 * encoding). The stream notices a client that went away (a failed write, or a closed socket seen
 * while waiting for data) and from then on every write returns -1, so a producer learns it can stop.
 * Memory per stream is bounded (max_stream_buffer): a client that does not read is treated as gone.
 * An event stream that stays silent for sse_keepalive_s gets a ": keep-alive" comment line (clients
 * ignore comments), so proxies and client timeouts do not close a stream that waits in a queue.
 */
#ifndef PIKA_HTTP_H
#define PIKA_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct {
    const char *host;         /* address to bind: "127.0.0.1" (default), "0.0.0.0", "::1", "::" */
    int port;                 /* 0 = any free port (see pika_http_port) */
    size_t max_body;          /* request bodies larger than this get 413 (default 4 MiB) */
    int max_connections;      /* concurrent connections (threads) at most (default 256) */
    unsigned timeout_s;       /* an idle connection is closed after this (default 600) */
    size_t max_stream_buffer; /* unsent bytes a stream may hold before the client counts as gone (default 8 MiB) */
    const char *server_name;  /* "Server" response header (default "pika") */
    int log;                  /* 1: one line per request on stderr (default 1) */
    double sse_keepalive_s;   /* an event stream idle this long gets a ": keep-alive" comment (default 15; 0 = never) */
} pika_http_opts;

void pika_http_opts_default(pika_http_opts *o);

typedef struct pika_http_server pika_http_server;
typedef struct pika_http_request pika_http_request;
typedef struct pika_http_stream pika_http_stream;

typedef void (*pika_http_handler)(pika_http_request *r, void *user);

/* A server (not yet listening). Options are copied. */
pika_http_server *pika_http_new(const pika_http_opts *o);
/* Route METHOD PATH to fn (before pika_http_start). PATH is matched exactly, or as a prefix when it
 * ends with '*'; the first matching route wins. HEAD is answered by the GET route. 0 or -1 + error. */
int pika_http_route(pika_http_server *s, const char *method, const char *path, pika_http_handler fn, void *user);
/* Bind and listen; handlers run from now on. 0, or -1 + error ("cannot listen on 127.0.0.1:8080: ..."). */
int pika_http_start(pika_http_server *s);
/* The port actually bound (after pika_http_start; useful with port 0). */
int pika_http_port(const pika_http_server *s);
/* Stop accepting connections, mark every open stream and waiting handler as gone (writes return -1,
 * pika_http_client_gone() returns 1), then wait for all connection threads to finish. Handlers that
 * block must therefore poll pika_http_client_gone() (or be woken by their application). Idempotent. */
void pika_http_stop(pika_http_server *s);
/* 1 once pika_http_stop has begun. */
int pika_http_stopping(const pika_http_server *s);
/* Stops the server if needed and frees it. */
void pika_http_free(pika_http_server *s);

/* Counters since start (for /metrics). */
typedef struct {
    int64_t requests;        /* requests answered (any status) */
    int64_t status_2xx, status_4xx, status_5xx;
    int64_t status_413, status_503;
    int64_t streams_started, streams_client_gone;
    int64_t bytes_in, bytes_out; /* request bodies / response bodies (stream bytes included) */
    int active_connections;
} pika_http_stats;
void pika_http_get_stats(const pika_http_server *s, pika_http_stats *out);

/* ---- the request (valid inside the handler only) ---- */
const char *pika_http_method(const pika_http_request *r);  /* "GET", "POST", ... */
const char *pika_http_path(const pika_http_request *r);    /* without the query string */
const char *pika_http_header(const pika_http_request *r, const char *name); /* case-insensitive; NULL if absent */
const char *pika_http_query(const pika_http_request *r, const char *key);   /* URL-decoded; NULL if absent */
const char *pika_http_body(const pika_http_request *r, size_t *len);        /* NUL-terminated ("" when none) */
const char *pika_http_request_id(const pika_http_request *r);               /* "req-1a2b..." */
/* The body parsed as a JSON object (caller deletes). NULL after answering 400 itself: an empty body,
 * malformed JSON ("invalid JSON at byte 17: ..."), trailing bytes, or a value that is not an object. */
cJSON *pika_http_json_body(pika_http_request *r);
/* 1 when the client has closed its connection (or the server is stopping). Cheap, non-blocking:
 * call it periodically while a handler waits. */
int pika_http_client_gone(pika_http_request *r);

/* ---- responses: call exactly one, once ---- */
/* Add a header to the response about to be sent (before a respond call; at most 16). */
void pika_http_add_header(pika_http_request *r, const char *name, const char *value);
int pika_http_respond(pika_http_request *r, int status, const char *content_type, const void *body, size_t len);
int pika_http_respond_json(pika_http_request *r, int status, const cJSON *body);
/* {"error": {"message": <printf>, "type": type or pika_http_error_type(status), "param": param|null,
 *  "code": code|null}} with the given status. */
int pika_http_respond_error(pika_http_request *r, int status, const char *type, const char *param, const char *code,
                            const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The error object itself (caller deletes), e.g. to send as the last event of a stream. */
cJSON *pika_http_error_json(int status, const char *type, const char *param, const char *code, const char *message);
/* OpenAI's error type for a status: 400/405/413/422 "invalid_request_error", 401 "authentication_error",
 * 404 "not_found_error", 429 "rate_limit_error", 503 "unavailable_error", other 5xx "server_error". */
const char *pika_http_error_type(int status);

/* Start a streaming response: status + headers now (content_type "text/event-stream" adds
 * Cache-Control: no-cache and X-Accel-Buffering: no), body as written. The stream belongs to the
 * caller until pika_http_stream_close(); the layer keeps its own reference while sending. NULL + error
 * if a response was already sent. */
pika_http_stream *pika_http_respond_stream(pika_http_request *r, int status, const char *content_type);
/* Queue bytes (any thread). 0, or -1 once the client is gone (the bytes are dropped). */
int pika_http_stream_write(pika_http_stream *st, const void *p, size_t n);
/* One server-sent event "data: <data>\n\n" (data must hold no newline; JSON from cJSON_PrintUnformatted
 * never does). 0 or -1 as above. */
int pika_http_stream_sse(pika_http_stream *st, const char *data);
int pika_http_stream_sse_json(pika_http_stream *st, const cJSON *j);
/* An SSE comment line (": text\n\n"), e.g. a keep-alive; clients ignore it. */
int pika_http_stream_sse_comment(pika_http_stream *st, const char *text);
/* 1 when the client is gone (or the server stopping): writes are dropped from now on. */
int pika_http_stream_gone(const pika_http_stream *st);
/* Call fn(user) (from the connection's thread) when the stream is found gone; user must outlive the
 * stream (e.g. the application's scheduler, to wake it). Set it right after pika_http_respond_stream. */
void pika_http_stream_on_gone(pika_http_stream *st, void (*fn)(void *user), void *user);
/* End of the body: what was written is still sent; releases the caller's reference. */
void pika_http_stream_close(pika_http_stream *st);

/* ---- small helpers for JSON payloads ---- */
/* Standard base64 (RFC 4648, with padding) of n bytes: malloc'ed, NUL-terminated. */
char *pika_base64_encode(const void *p, size_t n);
/* Decode (padding optional, no white space): malloc'ed bytes and *n, or NULL + error. */
void *pika_base64_decode(const char *s, size_t *n);

#endif
