/* upstream.c — one request to a pool member over libcurl (a multi handle driven by the caller, so
 * the HTTP front can pull the answer chunk by chunk: pump until bytes arrive, hand them on). */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "serve/upstream.h"
#include "pika/util.h"

static size_t on_body(char *p, size_t sz, size_t n, void *cls) {
    pika_upstream *u = cls;
    if (!u->got_first) { u->got_first = 1; u->t_first = pika_now(); }
    pika_buf_add(&u->buf, p, sz * n);
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *cls) {
    pika_upstream *u = cls;
    size_t len = sz * n;
    if (len > 5 && !strncmp(p, "HTTP/", 5)) {
        const char *sp = memchr(p, ' ', len);
        if (sp) u->status = atol(sp + 1);
    } else if (len > 13 && !strncasecmp(p, "content-type:", 13)) {
        size_t k = 13;
        while (k < len && p[k] == ' ') k++;
        size_t e = len;
        while (e > k && (p[e - 1] == '\r' || p[e - 1] == '\n')) e--;
        free(u->content_type);
        u->content_type = pika_strndup(p + k, e - k);
    }
    return len;
}

pika_upstream *pika_upstream_start(const char *url, const char *body, size_t body_len, const char *api_key,
                                   double connect_timeout_s, double first_byte_timeout_s, void *share) {
    pika_upstream *u = pika_calloc(1, sizeof *u);
    u->multi = curl_multi_init();
    u->easy = curl_easy_init();
    u->t_start = pika_now();
    u->deadline = u->t_start + first_byte_timeout_s;
    u->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    u->hdrs = curl_slist_append(u->hdrs, "Expect:");
    if (api_key && *api_key) {
        size_t n = strlen(api_key) + 32;
        char *h = pika_malloc(n);
        snprintf(h, n, "Authorization: Bearer %s", api_key);
        u->hdrs = curl_slist_append(u->hdrs, h);
        free(h);
    }
    u->body = pika_malloc(body_len + 1);
    memcpy(u->body, body, body_len);
    u->body[body_len] = 0;
    CURL *e = u->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, u->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, u->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, u);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (share) curl_easy_setopt(e, CURLOPT_SHARE, (CURLSH *)share);
    curl_multi_add_handle(u->multi, e);
    return u;
}

void pika_upstream_free(pika_upstream *u) {
    if (!u) return;
    curl_multi_remove_handle(u->multi, u->easy);
    curl_easy_cleanup(u->easy);
    curl_multi_cleanup(u->multi);
    curl_slist_free_all(u->hdrs);
    free(u->buf.s);
    free(u->body);
    free(u->content_type);
    free(u->error);
    free(u);
}

/* Run the transfer until new bytes are pending (beyond u->off), it ends, or it fails. */
int pika_upstream_pump(pika_upstream *u) {
    while (!u->done && u->buf.n <= u->off) {
        int running = 0;
        curl_multi_perform(u->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(u->multi, &left)))
            if (m->msg == CURLMSG_DONE) {
                u->done = 1;
                if (m->data.result != CURLE_OK) {
                    u->failed = 1;
                    free(u->error);
                    u->error = pika_strdup(curl_easy_strerror(m->data.result));
                }
            }
        if (u->done || u->buf.n > u->off) break;
        if (!u->got_first && pika_now() > u->deadline) {
            u->done = u->failed = 1;
            u->timed_out = 1;
            free(u->error);
            u->error = pika_strdup("timeout before the first byte");
            break;
        }
        curl_multi_poll(u->multi, NULL, 0, 50, NULL);
    }
    if (u->done && !u->failed && u->status == 0) {
        long code = 0;
        curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        u->status = code;
    }
    return u->failed ? -1 : 0;
}

/* Pump to the end (non-streaming). */
int pika_upstream_finish(pika_upstream *u) {
    while (!u->done) {
        size_t before = u->buf.n;
        u->off = before;
        if (pika_upstream_pump(u)) break;
    }
    u->off = 0;
    return u->failed ? -1 : 0;
}
