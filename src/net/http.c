/* http.c — the HTTP server of pika's JSON APIs on libmicrohttpd (http.h).
 *
 * libmicrohttpd runs one thread per connection (MHD_USE_THREAD_PER_CONNECTION): a handler may block,
 * and a stream's content-reader callback blocks on a condition variable until the producer writes,
 * waking every STREAM_POLL_MS to look at the socket (a client that closed it is noticed even while
 * nothing is being written) and at the server's stop flag.
 */
#include "pika/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pika/util.h"

#define MAX_ROUTES 64
#define MAX_EXTRA_HEADERS 16
#define STREAM_POLL_MS 100
#define MAX_JSON_DEPTH 128

typedef struct {
    char method[16];
    char *path;
    size_t len;
    int prefix;
    pika_http_handler fn;
    void *user;
} route;

struct pika_http_server {
    pika_http_opts o;
    char *host, *server_name;
    route routes[MAX_ROUTES];
    int n_routes;
    struct MHD_Daemon *d;
    int listen_fd;
    int port;
    atomic_int stopping;
    atomic_uint_fast64_t next_id;
    pthread_mutex_t mu; /* streams list + stats */
    pika_http_stream *streams;
    pika_http_stats st;
};

struct pika_http_request {
    pika_http_server *srv;
    struct MHD_Connection *conn;
    char method[16];
    char *path;
    char id[72];
    pika_buf body;
    size_t body_len;
    int too_large;
    int responded;
    int status;
    int streaming;
    double t0;
    int n_extra;
    char *extra_name[MAX_EXTRA_HEADERS], *extra_value[MAX_EXTRA_HEADERS];
};

struct pika_http_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pika_buf buf;
    size_t off;        /* bytes of buf already handed to MHD */
    int refs;          /* the caller's + the layer's */
    int closed;        /* the producer called close */
    atomic_int gone;   /* the client is gone (or the server stopping): writes are dropped */
    int gone_notified;
    int fd;
    pika_http_server *srv;
    int sse;           /* text/event-stream: idle streams get keep-alive comments */
    double last_out;   /* when bytes last went out */
    void (*on_gone)(void *);
    void *on_gone_user;
    pika_http_stream *prev, *next; /* the server's list of live streams */
};

/* ------------------------------------------------------------------ options, helpers */

void pika_http_opts_default(pika_http_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->max_body = 4u << 20;
    o->max_connections = 256;
    o->timeout_s = 600;
    o->max_stream_buffer = 8u << 20;
    o->server_name = "pika";
    o->log = 1;
    o->sse_keepalive_s = 15;
}

const char *pika_http_error_type(int status) {
    switch (status) {
    case 400: case 405: case 411: case 413: case 415: case 422: return "invalid_request_error";
    case 401: case 403: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

cJSON *pika_http_error_json(int status, const char *type, const char *param, const char *code, const char *message) {
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", message ? message : "");
    cJSON_AddStringToObject(e, "type", type ? type : pika_http_error_type(status));
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNullToObject(e, "code");
    return root;
}

/* 1 when the peer of fd has closed the connection (EOF, reset, hang-up). Non-blocking. */
static int socket_closed(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return 1;
    if (p.revents & POLLIN) {
        char c;
        ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0) return 1;
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 1;
    }
    return 0;
}

static int connection_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static void count_status(pika_http_server *s, int status, size_t bytes) {
    pthread_mutex_lock(&s->mu);
    s->st.requests++;
    if (status >= 200 && status < 300) s->st.status_2xx++;
    else if (status >= 400 && status < 500) s->st.status_4xx++;
    else if (status >= 500) s->st.status_5xx++;
    if (status == 413) s->st.status_413++;
    if (status == 503) s->st.status_503++;
    s->st.bytes_out += (int64_t)bytes;
    pthread_mutex_unlock(&s->mu);
}

void pika_http_get_stats(const pika_http_server *s, pika_http_stats *out) {
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    *out = s->st;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
}

/* ------------------------------------------------------------------ server */

pika_http_server *pika_http_new(const pika_http_opts *o) {
    pika_http_server *s = pika_calloc(1, sizeof *s);
    if (o) s->o = *o;
    else pika_http_opts_default(&s->o);
    s->host = pika_strdup(s->o.host ? s->o.host : "127.0.0.1");
    s->server_name = pika_strdup(s->o.server_name ? s->o.server_name : "pika");
    s->o.host = s->host;
    s->o.server_name = s->server_name;
    if (!s->o.max_body) s->o.max_body = 4u << 20;
    if (s->o.max_connections <= 0) s->o.max_connections = 256;
    if (!s->o.max_stream_buffer) s->o.max_stream_buffer = 8u << 20;
    s->listen_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    /* request ids differ between server runs: start the counter from the clock */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store(&s->next_id, ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec);
    return s;
}

int pika_http_route(pika_http_server *s, const char *method, const char *path, pika_http_handler fn, void *user) {
    if (s->d) return pika_set_error("http: routes must be added before the server starts");
    if (s->n_routes >= MAX_ROUTES) return pika_set_error("http: at most %d routes", MAX_ROUTES);
    if (!method || !path || !fn || strlen(method) >= sizeof s->routes[0].method)
        return pika_set_error("http: a route needs a method, a path and a handler");
    route *r = &s->routes[s->n_routes++];
    snprintf(r->method, sizeof r->method, "%s", method);
    r->path = pika_strdup(path);
    r->len = strlen(path);
    r->prefix = r->len && path[r->len - 1] == '*';
    if (r->prefix) r->path[--r->len] = 0;
    r->fn = fn;
    r->user = user;
    return 0;
}

int pika_http_stopping(const pika_http_server *s) { return atomic_load(&s->stopping); }
int pika_http_port(const pika_http_server *s) { return s->port; }

static int path_matches(const route *r, const char *path) {
    return r->prefix ? !strncmp(path, r->path, r->len) : !strcmp(path, r->path);
}

/* ------------------------------------------------------------------ responses */

static void add_common_headers(pika_http_request *r, struct MHD_Response *resp, const char *content_type) {
    if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, r->srv->server_name);
    for (int i = 0; i < r->n_extra; i++) MHD_add_response_header(resp, r->extra_name[i], r->extra_value[i]);
}

void pika_http_add_header(pika_http_request *r, const char *name, const char *value) {
    if (r->n_extra >= MAX_EXTRA_HEADERS || !name || !value) return;
    r->extra_name[r->n_extra] = pika_strdup(name);
    r->extra_value[r->n_extra] = pika_strdup(value);
    r->n_extra++;
}

int pika_http_respond(pika_http_request *r, int status, const char *content_type, const void *body, size_t len) {
    if (r->responded) return pika_set_error("http: a response was already sent for %s", r->id);
    r->responded = 1;
    r->status = status;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)(len ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (!resp) return pika_set_error("http: cannot create a response");
    add_common_headers(r, resp, content_type);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    count_status(r->srv, status, len);
    return ok == MHD_YES ? 0 : pika_set_error("http: cannot queue the response (connection closed?)");
}

int pika_http_respond_json(pika_http_request *r, int status, const cJSON *body) {
    char *s = cJSON_PrintUnformatted(body);
    if (!s) return pika_http_respond(r, 500, "application/json", "{}", 2);
    size_t n = strlen(s);
    s = pika_realloc(s, n + 2);
    s[n++] = '\n';
    s[n] = 0;
    int rc = pika_http_respond(r, status, "application/json; charset=utf-8", s, n);
    free(s);
    return rc;
}

int pika_http_respond_error(pika_http_request *r, int status, const char *type, const char *param, const char *code,
                            const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *e = pika_http_error_json(status, type, param, code, msg);
    int rc = pika_http_respond_json(r, status, e);
    cJSON_Delete(e);
    return rc;
}

/* ------------------------------------------------------------------ streams */

static void stream_unref(pika_http_stream *st) {
    pthread_mutex_lock(&st->mu);
    int left = --st->refs;
    pthread_mutex_unlock(&st->mu);
    if (left) return;
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st->buf.s);
    free(st);
}

/* Mark gone (caller holds st->mu); returns 1 when the on-gone callback should now be called. */
static int mark_gone_locked(pika_http_stream *st) {
    if (!atomic_load(&st->gone)) atomic_store(&st->gone, 1);
    pthread_cond_broadcast(&st->cv);
    if (st->gone_notified || !st->on_gone) return 0;
    st->gone_notified = 1;
    return 1;
}

static void count_gone(pika_http_server *s) {
    pthread_mutex_lock(&s->mu);
    s->st.streams_client_gone++;
    pthread_mutex_unlock(&s->mu);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    pika_http_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        if (atomic_load(&st->gone)) {
            int notify = mark_gone_locked(st);
            pthread_mutex_unlock(&st->mu);
            if (notify) st->on_gone(st->on_gone_user);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        size_t avail = st->buf.n - st->off;
        if (avail) {
            size_t n = avail < max ? avail : max;
            memcpy(out, st->buf.s + st->off, n);
            st->off += n;
            if (st->off == st->buf.n) st->off = st->buf.n = 0;
            st->last_out = pika_now();
            pthread_mutex_unlock(&st->mu);
            pthread_mutex_lock(&st->srv->mu);
            st->srv->st.bytes_out += (int64_t)n;
            pthread_mutex_unlock(&st->srv->mu);
            return (ssize_t)n;
        }
        if (st->closed) {
            pthread_mutex_unlock(&st->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += STREAM_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        int w = pthread_cond_timedwait(&st->cv, &st->mu, &ts);
        if (w == ETIMEDOUT && st->buf.n == st->off && !st->closed) {
            if (atomic_load(&st->srv->stopping)) atomic_store(&st->gone, 1);
            else if (socket_closed(st->fd)) { atomic_store(&st->gone, 1); count_gone(st->srv); }
            else if (st->sse && st->srv->o.sse_keepalive_s > 0 && pika_now() - st->last_out >= st->srv->o.sse_keepalive_s &&
                     max >= 14) {
                /* a comment line keeps proxies and client timeouts from closing an idle stream */
                memcpy(out, ": keep-alive\n\n", 14);
                st->last_out = pika_now();
                pthread_mutex_unlock(&st->mu);
                return 14;
            }
        }
    }
}

/* The layer is done with the stream (sent all of it, or the connection failed). */
static void stream_free_cb(void *cls) {
    pika_http_stream *st = cls;
    pika_http_server *s = st->srv;
    pthread_mutex_lock(&s->mu);
    if (st->prev) st->prev->next = st->next;
    else if (s->streams == st) s->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    st->prev = st->next = NULL;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&st->mu);
    int notify = 0;
    if (!st->closed || st->buf.n > st->off) {
        /* the body did not go out in full: the connection broke */
        if (!atomic_load(&st->gone)) count_gone(s);
        notify = mark_gone_locked(st);
    } else {
        atomic_store(&st->gone, 1); /* nothing more can be sent */
    }
    st->fd = -1;
    pthread_mutex_unlock(&st->mu);
    if (notify) st->on_gone(st->on_gone_user);
    stream_unref(st);
}

pika_http_stream *pika_http_respond_stream(pika_http_request *r, int status, const char *content_type) {
    if (r->responded) {
        pika_set_error("http: a response was already sent for %s", r->id);
        return NULL;
    }
    pika_http_stream *st = pika_calloc(1, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->refs = 2;
    st->srv = r->srv;
    st->fd = connection_fd(r->conn);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, st, stream_free_cb);
    if (!resp) {
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        free(st);
        pika_set_error("http: cannot create a streaming response");
        return NULL;
    }
    add_common_headers(r, resp, content_type);
    st->last_out = pika_now();
    if (content_type && !strncmp(content_type, "text/event-stream", 17)) {
        st->sse = 1;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    }
    pika_http_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    st->next = s->streams;
    if (s->streams) s->streams->prev = st;
    s->streams = st;
    s->st.streams_started++;
    pthread_mutex_unlock(&s->mu);
    r->responded = 1;
    r->streaming = 1;
    r->status = status;
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp); /* frees now (→ stream_free_cb) if it was not queued */
    count_status(s, status, 0);
    if (ok != MHD_YES) {
        pthread_mutex_lock(&st->mu);
        atomic_store(&st->gone, 1);
        pthread_mutex_unlock(&st->mu);
    }
    return st;
}

void pika_http_stream_on_gone(pika_http_stream *st, void (*fn)(void *), void *user) {
    pthread_mutex_lock(&st->mu);
    st->on_gone = fn;
    st->on_gone_user = user;
    pthread_mutex_unlock(&st->mu);
}

int pika_http_stream_gone(const pika_http_stream *st) { return atomic_load(&st->gone); }

int pika_http_stream_write(pika_http_stream *st, const void *p, size_t n) {
    pthread_mutex_lock(&st->mu);
    if (atomic_load(&st->gone) || st->closed) {
        pthread_mutex_unlock(&st->mu);
        return -1;
    }
    if (st->buf.n - st->off + n > st->srv->o.max_stream_buffer) {
        /* the client does not read: drop it rather than grow without bound */
        count_gone(st->srv);
        int notify = mark_gone_locked(st);
        pthread_mutex_unlock(&st->mu);
        if (notify) st->on_gone(st->on_gone_user);
        return -1;
    }
    if (st->off && st->off == st->buf.n) st->off = st->buf.n = 0;
    pika_buf_add(&st->buf, p, n);
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return 0;
}

int pika_http_stream_sse(pika_http_stream *st, const char *data) {
    size_t n = strlen(data);
    char *b = pika_malloc(n + 9);
    memcpy(b, "data: ", 6);
    memcpy(b + 6, data, n);
    b[n + 6] = '\n';
    b[n + 7] = '\n';
    int rc = pika_http_stream_write(st, b, n + 8);
    free(b);
    return rc;
}

int pika_http_stream_sse_json(pika_http_stream *st, const cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    if (!s) return -1;
    int rc = pika_http_stream_sse(st, s);
    free(s);
    return rc;
}

int pika_http_stream_sse_comment(pika_http_stream *st, const char *text) {
    size_t n = strlen(text);
    char *b = pika_malloc(n + 5);
    memcpy(b, ": ", 2);
    memcpy(b + 2, text, n);
    b[n + 2] = '\n';
    b[n + 3] = '\n';
    int rc = pika_http_stream_write(st, b, n + 4);
    free(b);
    return rc;
}

void pika_http_stream_close(pika_http_stream *st) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->closed = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    stream_unref(st);
}

/* ------------------------------------------------------------------ requests */

const char *pika_http_method(const pika_http_request *r) { return r->method; }
const char *pika_http_path(const pika_http_request *r) { return r->path; }
const char *pika_http_request_id(const pika_http_request *r) { return r->id; }

const char *pika_http_header(const pika_http_request *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *pika_http_query(const pika_http_request *r, const char *key) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *pika_http_body(const pika_http_request *r, size_t *len) {
    if (len) *len = r->body.n;
    return r->body.s ? r->body.s : "";
}

int pika_http_client_gone(pika_http_request *r) {
    if (atomic_load(&r->srv->stopping)) return 1;
    return socket_closed(connection_fd(r->conn));
}

/* Deepest nesting of [ and { outside strings (cJSON parses recursively; bound it first). */
static int json_depth(const char *s, size_t n) {
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max) max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

cJSON *pika_http_json_body(pika_http_request *r) {
    size_t n;
    const char *b = pika_http_body(r, &n);
    size_t i = 0;
    while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) i++;
    if (i == n) {
        pika_http_respond_error(r, 400, NULL, NULL, "invalid_json", "the request body is empty (a JSON object was expected)");
        return NULL;
    }
    if (json_depth(b, n) > MAX_JSON_DEPTH) {
        pika_http_respond_error(r, 400, NULL, NULL, "invalid_json", "the request body nests JSON deeper than %d levels",
                                MAX_JSON_DEPTH);
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(b, n, &end, 0);
    if (!j) {
        size_t at = end && end >= b && end <= b + n ? (size_t)(end - b) : 0;
        char near[24] = {0};
        size_t k = 0;
        for (size_t p = at; p < n && k < 16; p++) near[k++] = (b[p] >= 32 && b[p] < 127) ? b[p] : '?';
        pika_http_respond_error(r, 400, NULL, NULL, "invalid_json", "invalid JSON in the request body at byte %zu%s%s%s",
                                at, k ? " (near '" : "", near, k ? "')" : "");
        return NULL;
    }
    size_t at = (size_t)(end - b);
    while (at < n && (b[at] == ' ' || b[at] == '\t' || b[at] == '\r' || b[at] == '\n' || b[at] == 0)) at++;
    if (at < n) {
        cJSON_Delete(j);
        pika_http_respond_error(r, 400, NULL, NULL, "invalid_json", "unexpected data after the JSON value at byte %zu", at);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        pika_http_respond_error(r, 400, NULL, NULL, "invalid_json", "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

static int id_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static void dispatch(pika_http_server *s, pika_http_request *r) {
    const char *m = !strcmp(r->method, "HEAD") ? "GET" : r->method;
    const route *hit = NULL;
    char allow[128] = "";
    for (int i = 0; i < s->n_routes; i++) {
        const route *rt = &s->routes[i];
        if (!path_matches(rt, r->path)) continue;
        if (!strcmp(rt->method, m)) { hit = rt; break; }
        if (!strstr(allow, rt->method) && strlen(allow) + strlen(rt->method) + 3 < sizeof allow) {
            if (*allow) strcat(allow, ", ");
            strcat(allow, rt->method);
        }
    }
    if (hit) {
        hit->fn(r, hit->user);
        if (!r->responded)
            pika_http_respond_error(r, 500, NULL, NULL, NULL, "internal error: the handler of %s %s sent no response",
                                    r->method, r->path);
        return;
    }
    if (*allow) {
        pika_http_add_header(r, "Allow", allow);
        pika_http_respond_error(r, 405, NULL, NULL, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                                r->method, r->path, allow);
        return;
    }
    pika_http_respond_error(r, 404, NULL, NULL, "not_found", "no such endpoint: %s %s", r->method, r->path);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    pika_http_server *s = cls;
    pika_http_request *r = *con_cls;
    if (!r) {
        r = pika_calloc(1, sizeof *r);
        *con_cls = r;
        r->srv = s;
        r->conn = conn;
        r->t0 = pika_now();
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = pika_strdup(url);
        const char *cid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (id_ok(cid)) snprintf(r->id, sizeof r->id, "%s", cid);
        else snprintf(r->id, sizeof r->id, "req-%llx", (unsigned long long)atomic_fetch_add(&s->next_id, 1));
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno == ERANGE || v > s->o.max_body) {
                /* refuse before reading the body (libmicrohttpd closes the connection after this reply) */
                r->too_large = 1;
                pika_http_respond_error(r, 413, NULL, NULL, "request_too_large",
                                        "the request body (%s bytes) is larger than the limit of %zu bytes", cl, s->o.max_body);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_large) {
            if (r->body.n + *upload_size > s->o.max_body) {
                r->too_large = 1;
                free(r->body.s);
                memset(&r->body, 0, sizeof r->body);
            } else {
                pika_buf_add(&r->body, upload, *upload_size);
            }
        }
        r->body_len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->responded) return MHD_YES;
    pthread_mutex_lock(&s->mu);
    s->st.bytes_in += (int64_t)r->body_len;
    pthread_mutex_unlock(&s->mu);
    if (r->too_large) {
        pika_http_respond_error(r, 413, NULL, NULL, "request_too_large", "the request body is larger than the limit of %zu bytes",
                                s->o.max_body);
        return MHD_YES;
    }
    if (atomic_load(&s->stopping)) {
        pika_http_respond_error(r, 503, NULL, NULL, "shutting_down", "the server is shutting down");
        return MHD_YES;
    }
    dispatch(s, r);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    pika_http_server *s = cls;
    pika_http_request *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (s->o.log) {
        const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                          : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client closed the connection)"
                          : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (server stopping)"
                          : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timeout)"
                          : " (connection error)";
        fprintf(stderr, "http: %s %s %s -> %d%s, %zu bytes in, %.1f ms%s\n", r->id, r->method, r->path, r->status,
                r->streaming ? " stream" : "", r->body_len, (pika_now() - r->t0) * 1e3, how);
    }
    for (int i = 0; i < r->n_extra; i++) { free(r->extra_name[i]); free(r->extra_value[i]); }
    free(r->body.s);
    free(r->path);
    free(r);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context, enum MHD_ConnectionNotificationCode code) {
    (void)conn;
    (void)socket_context;
    pika_http_server *s = cls;
    pthread_mutex_lock(&s->mu);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) s->st.active_connections++;
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED) s->st.active_connections--;
    pthread_mutex_unlock(&s->mu);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    fprintf(stderr, "http: libmicrohttpd: %s\n", msg);
}

int pika_http_start(pika_http_server *s) {
    if (s->d) return pika_set_error("http: the server is already started");
    if (s->o.port < 0 || s->o.port > 65535) return pika_set_error("http: port %d is out of range [0, 65535]", s->o.port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    int g = getaddrinfo(s->host, port, &hints, &ai);
    if (g) return pika_set_error("http: cannot resolve the address '%s': %s", s->host, gai_strerror(g));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return pika_set_error("http: socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int family = ai->ai_family;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
        int e = errno;
        close(fd);
        freeaddrinfo(ai);
        return pika_set_error("http: cannot listen on %s:%d: %s", s->host, s->o.port, strerror(e));
    }
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        s->port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port) : ntohs(((struct sockaddr_in *)&sa)->sin_port);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (family == AF_INET6) flags |= MHD_USE_IPv6;
    if (s->o.log) flags |= MHD_USE_ERROR_LOG;
    s->d = MHD_start_daemon(flags, (uint16_t)s->port, NULL, NULL, on_access, s,
                            MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.timeout_s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                            MHD_OPTION_END);
    if (!s->d) {
        close(fd);
        return pika_set_error("http: libmicrohttpd could not start on %s:%d", s->host, s->port);
    }
    s->listen_fd = fd;
    return 0;
}

void pika_http_stop(pika_http_server *s) {
    if (!s->d || atomic_exchange(&s->stopping, 1)) return;
    MHD_socket lfd = MHD_quiesce_daemon(s->d); /* no new connections */
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    s->listen_fd = -1;
    /* wake every stream reader: they end their responses */
    pthread_mutex_lock(&s->mu);
    for (pika_http_stream *st = s->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        atomic_store(&st->gone, 1);
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->d); /* joins the connection threads */
    s->d = NULL;
}

void pika_http_free(pika_http_server *s) {
    if (!s) return;
    pika_http_stop(s);
    if (s->listen_fd >= 0) close(s->listen_fd);
    for (int i = 0; i < s->n_routes; i++) free(s->routes[i].path);
    pthread_mutex_destroy(&s->mu);
    free(s->host);
    free(s->server_name);
    free(s);
}

/* ------------------------------------------------------------------ base64 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *pika_base64_encode(const void *p, size_t n) {
    const unsigned char *b = p;
    char *out = pika_malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

void *pika_base64_decode(const char *s, size_t *n) {
    size_t len = strlen(s);
    while (len && s[len - 1] == '=') len--;
    if (len % 4 == 1) { pika_set_error("base64: bad length"); return NULL; }
    unsigned char *out = pika_malloc(len / 4 * 3 + 3), *o = out;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *q = strchr(B64, s[i]);
        if (!q || !s[i]) { free(out); pika_set_error("base64: bad character at %zu", i); return NULL; }
        v = v << 6 | (uint32_t)(q - B64);
        bits += 6;
        if (bits >= 8) { bits -= 8; *o++ = (unsigned char)(v >> bits); }
    }
    *n = (size_t)(o - out);
    return out;
}
