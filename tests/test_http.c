/* test_http.c — the HTTP layer (http.h) in-process: routing, status codes, body limit, JSON errors,
 * request ids, streams, client-disconnect detection, graceful stop, base64. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "http_client.h"
#include "pika/http.h"
#include "pika/util.h"
#include "test.h"

static pika_http_server *g_srv;
static int g_port;
static atomic_int g_gone_seen, g_wait_gone, g_on_gone_calls, g_writes_after_gone;

static void h_hello(pika_http_request *r, void *u) {
    (void)u;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "hello", "world");
    const char *q = pika_http_query(r, "x");
    if (q) cJSON_AddStringToObject(j, "x", q);
    pika_http_respond_json(r, 200, j);
    cJSON_Delete(j);
}

static void h_echo(pika_http_request *r, void *u) {
    (void)u;
    cJSON *j = pika_http_json_body(r);
    if (!j) return;
    pika_http_add_header(r, "X-Echo", "1");
    pika_http_respond_json(r, 200, j);
    cJSON_Delete(j);
}

static void h_silent(pika_http_request *r, void *u) { (void)r; (void)u; }

typedef struct {
    pika_http_stream *st;
    int n;       /* events to send; 0 = until the client is gone */
    int delay_ms;
} producer;

static void *produce(void *arg) {
    producer *p = arg;
    for (int i = 0; p->n == 0 || i < p->n; i++) {
        char ev[64];
        snprintf(ev, sizeof ev, "{\"i\":%d}", i);
        if (pika_http_stream_sse(p->st, ev)) {
            atomic_store(&g_gone_seen, 1);
            /* further writes keep failing */
            if (pika_http_stream_sse(p->st, ev) == 0) atomic_fetch_add(&g_writes_after_gone, 1);
            break;
        }
        if (p->delay_ms) usleep((useconds_t)p->delay_ms * 1000);
        if (i > 2000) break;
    }
    if (p->n) pika_http_stream_sse(p->st, "[DONE]");
    pika_http_stream_close(p->st);
    free(p);
    return NULL;
}

static void on_gone(void *u) { (void)u; atomic_fetch_add(&g_on_gone_calls, 1); }

static void h_stream(pika_http_request *r, void *u) {
    (void)u;
    const char *n = pika_http_query(r, "n");
    producer *p = calloc(1, sizeof *p);
    p->n = n ? atoi(n) : 5;
    p->delay_ms = p->n ? 1 : 20;
    p->st = pika_http_respond_stream(r, 200, "text/event-stream");
    pika_http_stream_on_gone(p->st, on_gone, NULL);
    pthread_t t;
    pthread_create(&t, NULL, produce, p);
    pthread_detach(t);
}

static void *idle_produce(void *arg) {
    pika_http_stream *st = arg;
    usleep(1000000);
    pika_http_stream_sse(st, "late");
    pika_http_stream_close(st);
    return NULL;
}

/* a stream that stays silent for a second */
static void h_idle(pika_http_request *r, void *u) {
    (void)u;
    pika_http_stream *st = pika_http_respond_stream(r, 200, "text/event-stream");
    pthread_t t;
    pthread_create(&t, NULL, idle_produce, st);
    pthread_detach(t);
}

static void h_wait(pika_http_request *r, void *u) {
    (void)u;
    for (int i = 0; i < 300; i++) { /* up to 30 s */
        if (pika_http_client_gone(r)) { atomic_store(&g_wait_gone, 1); break; }
        usleep(100000);
    }
    pika_http_respond_error(r, 503, NULL, NULL, NULL, "gone");
}

static void start(void) {
    pika_http_opts o;
    pika_http_opts_default(&o);
    o.port = 0;
    o.max_body = 1000;
    o.log = 0;
    o.sse_keepalive_s = 0.3;
    g_srv = pika_http_new(&o);
    pika_http_route(g_srv, "GET", "/hello", h_hello, NULL);
    pika_http_route(g_srv, "POST", "/echo", h_echo, NULL);
    pika_http_route(g_srv, "GET", "/silent", h_silent, NULL);
    pika_http_route(g_srv, "GET", "/stream*", h_stream, NULL);
    pika_http_route(g_srv, "POST", "/wait", h_wait, NULL);
    pika_http_route(g_srv, "GET", "/idle", h_idle, NULL);
    if (pika_http_start(g_srv)) { fprintf(stderr, "start: %s\n", pika_last_error()); exit(2); }
    g_port = pika_http_port(g_srv);
}

static void test_routes(void) {
    tc_resp r;
    REQUIRE(tc_request(g_port, "GET", "/hello?x=a%20b", NULL, 0, NULL, &r) == 0, "no response");
    CHECK(r.status == 200, "status %d", r.status);
    CHECK(strstr(r.body, "\"hello\":\"world\"") && strstr(r.body, "\"x\":\"a b\""), "body %s", r.body);
    CHECK(tc_header(&r, "x-request-id") && !strncmp(tc_header(&r, "x-request-id"), "req-", 4), "request id");
    CHECK(tc_header(&r, "content-type") && strstr(tc_header(&r, "content-type"), "application/json"), "content type");
    tc_resp_free(&r);
    /* the client's own request id is kept */
    tc_request(g_port, "GET", "/hello", NULL, 0, "X-Request-Id: my-id.1\r\n", &r);
    CHECK(tc_header(&r, "x-request-id") && !strcmp(tc_header(&r, "x-request-id"), "my-id.1"), "kept id");
    tc_resp_free(&r);
    tc_request(g_port, "GET", "/nope", NULL, 0, NULL, &r);
    CHECK(r.status == 404, "status %d", r.status);
    cJSON *j = cJSON_Parse(r.body);
    cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "message")) && cJSON_IsString(cJSON_GetObjectItem(e, "type")) &&
              cJSON_GetObjectItem(e, "param") && cJSON_GetObjectItem(e, "code"),
          "error object %s", r.body);
    cJSON_Delete(j);
    tc_resp_free(&r);
    tc_request(g_port, "POST", "/hello", "{}", -1, NULL, &r);
    CHECK(r.status == 405, "status %d", r.status);
    CHECK(tc_header(&r, "allow") && !strcmp(tc_header(&r, "allow"), "GET"), "allow %s", tc_header(&r, "allow"));
    tc_resp_free(&r);
    tc_request(g_port, "GET", "/silent", NULL, 0, NULL, &r);
    CHECK(r.status == 500, "a handler that sends nothing gives 500, got %d", r.status);
    tc_resp_free(&r);
    tc_request(g_port, "HEAD", "/hello", NULL, 0, NULL, &r);
    CHECK(r.status == 200, "HEAD status %d", r.status);
    tc_resp_free(&r);
}

static void test_json_body(void) {
    tc_resp r;
    tc_request(g_port, "POST", "/echo", "{\"a\": [1, 2, {\"b\": null}]}", -1, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body, "{\"a\":[1,2,{\"b\":null}]}"), "%d %s", r.status, r.body);
    CHECK(tc_header(&r, "x-echo") != NULL, "extra header");
    tc_resp_free(&r);
    const char *bad[] = {"{\"a\": ", "", "  ", "[1,2]", "{} x", "{\"a\":1,}", "nul"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tc_request(g_port, "POST", "/echo", bad[i], -1, NULL, &r);
        CHECK(r.status == 400, "'%s' gave %d", bad[i], r.status);
        cJSON *j = cJSON_Parse(r.body);
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message");
        CHECK(cJSON_IsString(m), "'%s': no error message in %s", bad[i], r.body);
        CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")->valuestring, "invalid_request_error"),
              "type");
        cJSON_Delete(j);
        tc_resp_free(&r);
    }
    char deep[600];
    for (int i = 0; i < 300; i++) deep[i] = '[';
    for (int i = 0; i < 299; i++) deep[300 + i] = ']';
    deep[599] = 0;
    tc_request(g_port, "POST", "/echo", deep, -1, NULL, &r);
    CHECK(r.status == 400 && strstr(r.body, "deeper"), "deep nesting: %d %s", r.status, r.body);
    tc_resp_free(&r);
}

static void test_body_limit(void) {
    char *big = malloc(5000);
    memset(big, ' ', 4999);
    big[0] = '{';
    big[4997] = '}';
    big[4999] = 0;
    tc_resp r;
    REQUIRE(tc_request(g_port, "POST", "/echo", big, -1, NULL, &r) == 0, "no response to a big body");
    CHECK(r.status == 413, "status %d", r.status);
    CHECK(strstr(r.body, "request_too_large") != NULL, "%s", r.body);
    tc_resp_free(&r);
    /* chunked upload (no Content-Length) that grows past the limit */
    int fd = tc_connect(g_port);
    REQUIRE(fd >= 0, "connect");
    const char *h = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    tc_send_all(fd, h, strlen(h));
    char chunk[700];
    for (int k = 0; k < 3; k++) {
        int n = snprintf(chunk, sizeof chunk, "1f4\r\n");
        memset(chunk + n, ' ', 500);
        memcpy(chunk + n + 500, "\r\n", 2);
        tc_send_all(fd, chunk, (size_t)n + 502);
    }
    tc_send_all(fd, "0\r\n\r\n", 5);
    tc_conn c = {.fd = fd, .chunk_left = -1};
    char *e = NULL;
    while (!(c.buf && (e = strstr(c.buf, "\r\n\r\n"))))
        if (tc_fill(&c, 10000) <= 0) break;
    CHECK(c.buf && !strncmp(c.buf, "HTTP/1.1 413", 12), "chunked over the limit: %s", c.buf ? c.buf : "(nothing)");
    close(fd);
    free(c.buf);
    /* the server is still fine */
    tc_request(g_port, "GET", "/hello", NULL, 0, NULL, &r);
    CHECK(r.status == 200, "after 413: %d", r.status);
    tc_resp_free(&r);
    free(big);
}

static void test_stream(void) {
    tc_conn *c = tc_open(g_port, "GET", "/stream?n=50", NULL, 0, NULL);
    REQUIRE(c, "no stream");
    CHECK(c->status == 200, "status %d", c->status);
    CHECK(tc_find_header(c->head, "Content-Type") && !strncmp(tc_find_header(c->head, "Content-Type"), "text/event-stream", 17),
          "content type in %s", c->head);
    int n = 0, done = 0, order_ok = 1;
    char *ev;
    while ((ev = tc_next_event(c))) {
        if (!strcmp(ev, "[DONE]")) done = 1;
        else {
            char want[32];
            snprintf(want, sizeof want, "{\"i\":%d}", n);
            if (strcmp(ev, want)) order_ok = 0;
            n++;
        }
        free(ev);
    }
    CHECK(n == 50 && done && order_ok, "events %d done %d order %d", n, done, order_ok);
    tc_close(c);
}

static void test_stream_keepalive(void) {
    tc_resp r;
    REQUIRE(tc_request(g_port, "GET", "/idle", NULL, 0, NULL, &r) == 0, "no answer");
    CHECK(r.status == 200 && strstr(r.body, ": keep-alive\n\n") && strstr(r.body, "data: late\n\n"), "idle stream: %s", r.body);
    tc_resp_free(&r);
}

static void test_stream_client_gone(void) {
    atomic_store(&g_gone_seen, 0);
    atomic_store(&g_on_gone_calls, 0);
    atomic_store(&g_writes_after_gone, 0);
    tc_conn *c = tc_open(g_port, "GET", "/stream?n=0", NULL, 0, NULL);
    REQUIRE(c, "no stream");
    char *ev = tc_next_event(c);
    CHECK(ev && !strcmp(ev, "{\"i\":0}"), "first event %s", ev ? ev : "(none)");
    free(ev);
    tc_abort(c);
    for (int i = 0; i < 100 && !atomic_load(&g_gone_seen); i++) usleep(50000);
    CHECK(atomic_load(&g_gone_seen), "the producer did not learn that the client left");
    for (int i = 0; i < 40 && !atomic_load(&g_on_gone_calls); i++) usleep(50000);
    CHECK(atomic_load(&g_on_gone_calls) == 1, "on_gone called %d times", atomic_load(&g_on_gone_calls));
    CHECK(atomic_load(&g_writes_after_gone) == 0, "a write after gone succeeded");
    pika_http_stats st;
    pika_http_get_stats(g_srv, &st);
    CHECK(st.streams_client_gone >= 1, "stats gone %lld", (long long)st.streams_client_gone);
}

static void test_wait_client_gone(void) {
    atomic_store(&g_wait_gone, 0);
    int fd = tc_connect(g_port);
    REQUIRE(fd >= 0, "connect");
    const char *req = "POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    tc_send_all(fd, req, strlen(req));
    usleep(200000);
    close(fd);
    for (int i = 0; i < 50 && !atomic_load(&g_wait_gone); i++) usleep(100000);
    CHECK(atomic_load(&g_wait_gone), "a waiting handler did not see its client leave");
}

static void test_stop_with_open_connections(void) {
    /* an open stream and a waiting handler: stop must end both and return */
    tc_conn *c = tc_open(g_port, "GET", "/stream?n=0", NULL, 0, NULL);
    REQUIRE(c, "no stream");
    int fd = tc_connect(g_port);
    const char *req = "POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    tc_send_all(fd, req, strlen(req));
    usleep(200000);
    double t0 = pika_now();
    pika_http_stop(g_srv);
    double dt = pika_now() - t0;
    CHECK(dt < 5, "stop took %.1f s", dt);
    CHECK(pika_http_stopping(g_srv), "stopping flag");
    tc_close(c);
    close(fd);
    pika_http_free(g_srv);
    g_srv = NULL;
}

static void test_base64(void) {
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = pika_base64_encode(in[i], strlen(in[i]));
        CHECK(!strcmp(e, out[i]), "encode %s -> %s", in[i], e);
        size_t n;
        char *d = pika_base64_decode(e, &n);
        CHECK(d && n == strlen(in[i]) && !memcmp(d, in[i], n), "decode %s", e);
        free(d);
        free(e);
    }
    float f[3] = {1.5f, -2.0f, 3.25f};
    char *e = pika_base64_encode(f, sizeof f);
    size_t n;
    float *g = pika_base64_decode(e, &n);
    CHECK(n == sizeof f && !memcmp(f, g, n), "floats round trip");
    free(g);
    free(e);
    CHECK(pika_base64_decode("a$==", &n) == NULL, "bad input rejected");
}

static void test_listen_error(void) {
    pika_http_opts o;
    pika_http_opts_default(&o);
    o.port = 0;
    o.log = 0;
    pika_http_server *a = pika_http_new(&o);
    pika_http_route(a, "GET", "/hello", h_hello, NULL);
    REQUIRE(pika_http_start(a) == 0, "start: %s", pika_last_error());
    o.port = pika_http_port(a);
    pika_http_server *b = pika_http_new(&o);
    CHECK(pika_http_start(b) != 0 && strstr(pika_last_error(), "cannot listen"), "second bind: %s", pika_last_error());
    pika_http_free(b);
    pika_http_free(a);
}

int main(void) {
    start();
    RUN(test_routes);
    RUN(test_json_body);
    RUN(test_body_limit);
    RUN(test_stream);
    RUN(test_stream_keepalive);
    RUN(test_stream_client_gone);
    RUN(test_wait_client_gone);
    RUN(test_stop_with_open_connections);
    RUN(test_base64);
    RUN(test_listen_error);
    return test_summary("http");
}
