/* fuzz_http.c — the HTTP request path of `pika serve-model` and `pika serve` (src/net/http.c on
 * libmicrohttpd, then the OpenAI request parsers): each input is written as raw bytes to a pika_http
 * server on 127.0.0.1 in this process, whose POST route parses the body as JSON (pika_http_json_body),
 * maps it to generation options (pika_gen_opts_from_json) and checks a "messages" list
 * (pika_prompt_messages_check), the way the servers' chat/completions handlers start. The reply must
 * be a well-formed HTTP status line (or no reply at all for input the server drops); a crash, a
 * sanitizer report or a hang is a finding. Loopback only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "fuzz_common.h"
#include "pika/generate.h"
#include "pika/http.h"
#include "pika/prompt.h"
#include "pika/util.h"

static void on_request(pika_http_request *r, void *user) {
    (void)user;
    cJSON *body = pika_http_json_body(r);
    if (!body) return; /* a 400 was sent */
    pika_gen_opts o;
    pika_gen_opts_default(&o);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (pika_gen_opts_from_json(&o, body) || (m && pika_prompt_messages_check(m)))
        pika_http_respond_error(r, 400, NULL, NULL, NULL, "%s", pika_last_error());
    else {
        cJSON *j = pika_gen_opts_json(&o);
        pika_http_respond_json(r, 200, j);
        cJSON_Delete(j);
    }
    cJSON_Delete(body);
}

static void on_get(pika_http_request *r, void *user) {
    (void)user;
    pika_http_respond(r, 200, "text/plain", "ok\n", 3);
}

static int port;

static void start_once(void) {
    if (port) return;
    pika_http_opts o;
    pika_http_opts_default(&o);
    o.port = 0;
    o.log = 0;
    o.max_body = 64 * 1024;
    o.timeout_s = 2;
    pika_http_server *s = pika_http_new(&o);
    if (!s || pika_http_route(s, "POST", "/v1/*", on_request, NULL) || pika_http_route(s, "GET", "/health", on_get, NULL) ||
        pika_http_start(s)) {
        fprintf(stderr, "fuzz_http: %s\n", pika_last_error());
        abort();
    }
    port = pika_http_port(s); /* the server lives as long as the process */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    start_once();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) abort();
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0) break; /* the server may close early on garbage */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + (got < sizeof buf ? got : sizeof buf - 1), got < sizeof buf - 1 ? sizeof buf - 1 - got : 1, 0);
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got >= 12 && got < sizeof buf) {
        buf[got] = 0;
        if (strncmp(buf, "HTTP/1.", 7) != 0) { fprintf(stderr, "fuzz_http: reply is not HTTP: %.40s\n", buf); abort(); }
    }
    return 0;
}
