/* http_client.h — a tiny raw-socket HTTP/1.1 client for tests (header-only): one request per
 * connection ("Connection: close"), chunked bodies decoded, and an incremental reader for
 * server-sent events so a test can stop (or kill the connection) in the middle of a stream.
 *
 *   tc_resp r; tc_request(port, "POST", "/v1/completions", "{...}", -1, NULL, &r);
 *   r.status, r.body (decoded, NUL-terminated), tc_header(&r, "content-type"); tc_resp_free(&r);
 *
 *   tc_conn *c = tc_open(port, "POST", "/v1/completions", body, -1, NULL);  // sends; reads the head
 *   char *ev; while ((ev = tc_next_event(c))) { ...; free(ev); }              // "data: ..." payloads
 *   tc_close(c);                                                             // or tc_abort (RST)
 */
#ifndef PIKA_TEST_HTTP_CLIENT_H
#define PIKA_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int status;
    char *head;   /* status line + headers */
    char *body;   /* decoded body, NUL-terminated */
    size_t body_len;
} tc_resp;

typedef struct {
    int fd;
    int status;
    char *head;
    int chunked;
    long chunk_left; /* bytes left in the current chunk; -1 = a size line next, -2 = its CRLF next */
    int eof;
    char *buf;       /* raw bytes received and not consumed */
    size_t n, cap;
    char *data;      /* decoded body bytes not yet consumed by tc_next_event */
    size_t dn, dcap;
} tc_conn;

static inline void tc_resp_free(tc_resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* The server's IPv4 address (loopback unless a caller such as bench/bench_serve.c sets it). */
static const char *tc_host = "127.0.0.1";

static inline int tc_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, tc_host, &a.sin_addr) != 1) a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { close(fd); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline int tc_send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read more raw bytes (timeout in ms); 0 on EOF or timeout, -1 on error, else bytes. */
static inline ssize_t tc_fill(tc_conn *c, int timeout_ms) {
    if (c->eof) return 0;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&p, 1, timeout_ms);
    if (pr <= 0) return pr;
    if (c->n + 65536 > c->cap) { c->cap = (c->n + 65536) * 2; c->buf = realloc(c->buf, c->cap); }
    ssize_t r = recv(c->fd, c->buf + c->n, c->cap - c->n - 1, 0);
    if (r <= 0) { c->eof = 1; return r; }
    c->n += (size_t)r;
    c->buf[c->n] = 0;
    return r;
}

static inline const char *tc_find_header(const char *head, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, nl) && line[nl] == ':') {
            line += nl + 1;
            while (*line == ' ') line++;
            return line;
        }
    }
    return NULL;
}

/* Value of a response header (static buffer), or NULL. */
static inline const char *tc_header(const tc_resp *r, const char *name) {
    static char v[512];
    const char *p = r->head ? tc_find_header(r->head, name) : NULL;
    if (!p) return NULL;
    size_t k = 0;
    while (p[k] && p[k] != '\r' && k + 1 < sizeof v) { v[k] = p[k]; k++; }
    v[k] = 0;
    return v;
}

static inline void tc_data_add(tc_conn *c, const char *p, size_t n) {
    if (c->dn + n + 1 > c->dcap) { c->dcap = (c->dn + n + 1) * 2; c->data = realloc(c->data, c->dcap); }
    memcpy(c->data + c->dn, p, n);
    c->dn += n;
    c->data[c->dn] = 0;
}

/* Move decodable body bytes from buf to data. Returns 1 when the body is complete. */
static inline int tc_decode(tc_conn *c) {
    if (!c->chunked) {
        tc_data_add(c, c->buf, c->n);
        c->n = 0;
        return c->eof;
    }
    for (;;) {
        if (c->chunk_left == -2) {
            if (c->n < 2) return c->eof;
            memmove(c->buf, c->buf + 2, c->n - 2);
            c->n -= 2;
            c->chunk_left = -1;
        }
        if (c->chunk_left < 0) {
            char *nl = c->n ? memchr(c->buf, '\n', c->n) : NULL;
            if (!nl) return c->eof;
            long sz = strtol(c->buf, NULL, 16);
            size_t used = (size_t)(nl - c->buf) + 1;
            memmove(c->buf, c->buf + used, c->n - used);
            c->n -= used;
            if (sz == 0) return 1;
            c->chunk_left = sz;
        }
        size_t take = c->n < (size_t)c->chunk_left ? c->n : (size_t)c->chunk_left;
        tc_data_add(c, c->buf, take);
        memmove(c->buf, c->buf + take, c->n - take);
        c->n -= take;
        c->chunk_left -= (long)take;
        if (c->chunk_left > 0) return c->eof;
        c->chunk_left = -2; /* the CRLF after the chunk comes next */
    }
}

/* Read the response head from a connected fd whose request has been sent. NULL (fd closed) when no
 * head arrives within 30 s. */
static inline tc_conn *tc_attach(int fd) {
    tc_conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->chunk_left = -1;
    for (;;) {
        char *e = c->buf ? strstr(c->buf, "\r\n\r\n") : NULL;
        if (e) {
            size_t hl = (size_t)(e - c->buf) + 4;
            c->head = strndup(c->buf, hl);
            memmove(c->buf, c->buf + hl, c->n - hl);
            c->n -= hl;
            c->buf[c->n] = 0;
            break;
        }
        if (tc_fill(c, 30000) <= 0) {
            close(fd);
            free(c->buf);
            free(c);
            return NULL;
        }
    }
    c->status = atoi(c->head + 9);
    const char *te = tc_find_header(c->head, "Transfer-Encoding");
    c->chunked = te && !strncasecmp(te, "chunked", 7);
    return c;
}

/* Connect and send a POST request but its last byte, so several requests can be released at once:
 * send each one's last byte, then tc_attach each fd. -1 when the connection fails. */
static inline int tc_hold(int port, const char *path, const char *body) {
    int fd = tc_connect(port);
    if (fd < 0) return -1;
    char head[512];
    int hn = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", path, port, strlen(body));
    tc_send_all(fd, head, (size_t)hn);
    tc_send_all(fd, body, strlen(body) - 1);
    return fd;
}

/* Connect, send the request and read the response head. extra_headers: "Name: v\r\n..." or NULL.
 * body_len < 0: strlen(body). NULL when the connection fails or no head arrives within 30 s. */
static inline tc_conn *tc_open(int port, const char *method, const char *path, const char *body, long body_len,
                               const char *extra_headers) {
    int fd = tc_connect(port);
    if (fd < 0) return NULL;
    size_t bl = body ? (body_len < 0 ? strlen(body) : (size_t)body_len) : 0;
    char head[2048];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n%s%s%s",
                      method, path, tc_host, port, body ? "Content-Type: application/json\r\n" : "", extra_headers ? extra_headers : "",
                      body ? "" : "\r\n");
    if (body) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Length: %zu\r\n\r\n", bl);
    if (tc_send_all(fd, head, (size_t)hn) || (bl && tc_send_all(fd, body, bl))) {
        /* the server may answer (413) and close before the whole body went out: still read the answer */
    }
    return tc_attach(fd);
}

static inline void tc_close(tc_conn *c) {
    if (!c) return;
    close(c->fd);
    free(c->buf);
    free(c->head);
    free(c->data);
    free(c);
}

/* Close with a TCP reset (SO_LINGER 0), as a killed client would leave it. */
static inline void tc_abort(tc_conn *c) {
    struct linger l = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    tc_close(c);
}

/* The whole body (decoded). */
static inline void tc_read_all(tc_conn *c, tc_resp *out) {
    while (!tc_decode(c))
        if (tc_fill(c, 60000) <= 0 && !c->eof) break;
    out->status = c->status;
    out->head = c->head;
    c->head = NULL;
    out->body = c->data ? c->data : strdup("");
    out->body_len = c->dn;
    c->data = NULL;
    c->dn = c->dcap = 0;
}

/* One request, the whole response. 0, or -1 when no response came. */
static inline int tc_request(int port, const char *method, const char *path, const char *body, long body_len,
                             const char *extra_headers, tc_resp *out) {
    memset(out, 0, sizeof *out);
    tc_conn *c = tc_open(port, method, path, body, body_len, extra_headers);
    if (!c) return -1;
    tc_read_all(c, out);
    tc_close(c);
    return 0;
}

/* The payload of the next SSE "data:" event (malloc'ed), or NULL at the end of the stream. Comment
 * lines are skipped. */
static inline char *tc_next_event(tc_conn *c) {
    for (;;) {
        char *e = c->data ? strstr(c->data, "\n\n") : NULL;
        if (e) {
            size_t el = (size_t)(e - c->data);
            char *ev = strndup(c->data, el);
            memmove(c->data, c->data + el + 2, c->dn - el - 2);
            c->dn -= el + 2;
            c->data[c->dn] = 0;
            if (!strncmp(ev, "data: ", 6)) {
                memmove(ev, ev + 6, strlen(ev + 6) + 1);
                return ev;
            }
            free(ev);
            continue;
        }
        if (tc_decode(c)) {
            if (c->data && strstr(c->data, "\n\n")) continue;
            return NULL;
        }
        if (c->data && strstr(c->data, "\n\n")) continue;
        if (tc_fill(c, 60000) <= 0) c->eof = 1;
    }
}

#endif
