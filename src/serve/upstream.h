/* upstream.h — private to src/serve/: one forwarded request to a pool member (libcurl multi,
 * pulled by the caller). Not a public API. */
#ifndef PIKA_SERVE_UPSTREAM_H
#define PIKA_SERVE_UPSTREAM_H

#include <stddef.h>

#include "pika/util.h"

typedef struct {
    void *multi, *easy;   /* CURLM *, CURL * */
    struct curl_slist *hdrs;
    char *body;
    pika_buf buf;         /* received body bytes */
    size_t off;           /* bytes of buf already handed on */
    long status;          /* HTTP status (0 until known) */
    char *content_type;
    int got_first, done, failed, timed_out;
    char *error;
    double t_start, t_first, deadline;
} pika_upstream;

/* share: a CURLSH * whose connection cache is reused across requests (NULL: none). */
pika_upstream *pika_upstream_start(const char *url, const char *body, size_t body_len, const char *api_key,
                                   double connect_timeout_s, double first_byte_timeout_s, void *share);
/* Until bytes beyond off are pending, or the end; -1 when the transfer failed (error set). */
int pika_upstream_pump(pika_upstream *u);
/* Until the end; buf holds the whole body; -1 on failure. */
int pika_upstream_finish(pika_upstream *u);
void pika_upstream_free(pika_upstream *u);

#endif
