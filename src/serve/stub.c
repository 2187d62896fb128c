/* stub.c — a tiny OpenAI-like member for tests and the load bench: answers every chat or text
 * completion at once with "NAME: <last user content or prompt>", usage = byte counts, streaming as
 * `chunks` SSE chunks + a usage chunk + [DONE]; or fails every request with a fixed status. Binds
 * 127.0.0.1 only. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pika/serve.h"
#include "pika/util.h"

struct pika_stub {
    char *name;
    pika_stub_opts o;
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t n;
    int released;
    char auth[256];
};

typedef struct {
    pika_buf body;
} stub_req;

static enum MHD_Result reply(struct MHD_Connection *con, int status, const char *ctype, pika_buf *b) {
    struct MHD_Response *r = MHD_create_response_from_buffer(b->n, b->s ? b->s : (void *)"", b->s ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    b->s = NULL;
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result rc = MHD_queue_response(con, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static void add_json(pika_buf *b, cJSON *j) {
    char *t = cJSON_PrintUnformatted(j);
    pika_buf_puts(b, t);
    free(t);
    cJSON_Delete(j);
}

typedef struct {
    pika_stub *s;
    char *text;
    size_t len, split, pos;
} stub_stream;

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stub_stream *ss = cls;
    if (ss->pos == ss->split && ss->pos < ss->len) {
        if (ss->s->o.stream_abort) return MHD_CONTENT_READER_END_WITH_ERROR;
        pthread_mutex_lock(&ss->s->mu);
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 20; /* never hang a broken test for ever */
        while (!ss->s->released)
            if (pthread_cond_timedwait(&ss->s->cv, &ss->s->mu, &dl)) break;
        pthread_mutex_unlock(&ss->s->mu);
    }
    if (ss->pos >= ss->len) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t end = ss->pos < ss->split ? ss->split : ss->len;
    size_t k = end - ss->pos < max ? end - ss->pos : max;
    memcpy(buf, ss->text + ss->pos, k);
    ss->pos += k;
    return (ssize_t)k;
}

static void stream_done(void *cls) {
    stub_stream *ss = cls;
    free(ss->text);
    free(ss);
}

static enum MHD_Result stub_answer(pika_stub *s, struct MHD_Connection *con, const char *url, stub_req *q) {
    pika_buf b = {0};
    int chat = strstr(url, "chat/completions") != NULL;
    if (s->o.fail_status) {
        pika_buf_puts(&b, "{\"error\":{\"message\":\"stub failure\",\"type\":\"server_error\",\"code\":null}}");
        return reply(con, s->o.fail_status, "application/json", &b);
    }
    cJSON *j = q->body.s ? cJSON_ParseWithLength(q->body.s, q->body.n) : NULL;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages"), *pr = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model"), *m;
    const char *text = NULL;
    if (chat)
        cJSON_ArrayForEach(m, msgs) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *ct = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (cJSON_IsString(role) && !strcmp(role->valuestring, "user") && cJSON_IsString(ct)) text = ct->valuestring;
        }
    else if (cJSON_IsString(pr)) text = pr->valuestring;
    if (!text) {
        cJSON_Delete(j);
        pika_buf_puts(&b, "{\"error\":{\"message\":\"stub: no user content\",\"type\":\"invalid_request_error\",\"code\":null}}");
        return reply(con, 400, "application/json", &b);
    }
    pthread_mutex_lock(&s->mu);
    ++s->n;
    pthread_cond_broadcast(&s->cv);
    while (s->o.hold && !s->released) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    char idb[64], fp[17];
    pika_fingerprint(text, fp);
    snprintf(idb, sizeof idb, "stub-%s-%s", s->name, fp);
    size_t al = strlen(s->name) + 2 + strlen(text);
    char *ans = pika_malloc(al + 1);
    snprintf(ans, al + 1, "%s: %s", s->name, text);
    const char *mname = cJSON_IsString(model) ? model->valuestring : s->name;
    int stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream"));
    double pt = (double)strlen(text), ct = (double)al;
    if (!stream) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", idb);
        cJSON_AddStringToObject(o, "object", chat ? "chat.completion" : "text_completion");
        cJSON_AddNumberToObject(o, "created", 0);
        cJSON_AddStringToObject(o, "model", mname);
        cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c0 = cJSON_CreateObject();
        cJSON_AddNumberToObject(c0, "index", 0);
        if (chat) {
            cJSON *msg = cJSON_AddObjectToObject(c0, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            cJSON_AddStringToObject(msg, "content", ans);
        } else cJSON_AddStringToObject(c0, "text", ans);
        cJSON_AddStringToObject(c0, "finish_reason", "stop");
        cJSON_AddItemToArray(ch, c0);
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", pt);
        cJSON_AddNumberToObject(u, "completion_tokens", ct);
        cJSON_AddNumberToObject(u, "total_tokens", pt + ct);
        add_json(&b, o);
        free(ans);
        cJSON_Delete(j);
        return reply(con, 200, "application/json", &b);
    }
    int k = s->o.chunks > 0 ? s->o.chunks : 3;
    size_t step = (al + (size_t)k - 1) / (size_t)k;
    for (int i = 0; i <= k; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", idb);
        cJSON_AddStringToObject(o, "object", chat ? "chat.completion.chunk" : "text_completion");
        cJSON_AddNumberToObject(o, "created", 0);
        cJSON_AddStringToObject(o, "model", mname);
        cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c0 = cJSON_CreateObject();
        cJSON_AddNumberToObject(c0, "index", 0);
        size_t lo = (size_t)i * step < al ? (size_t)i * step : al, hi = lo + step < al ? lo + step : al;
        char *piece = pika_strndup(ans + lo, i < k ? hi - lo : 0);
        if (chat) {
            cJSON *d = cJSON_AddObjectToObject(c0, "delta");
            if (i == 0) cJSON_AddStringToObject(d, "role", "assistant");
            if (i < k) cJSON_AddStringToObject(d, "content", piece);
        } else cJSON_AddStringToObject(c0, "text", piece);
        free(piece);
        if (i < k) cJSON_AddNullToObject(c0, "finish_reason");
        else cJSON_AddStringToObject(c0, "finish_reason", "stop");
        cJSON_AddItemToArray(ch, c0);
        if (i == k) {
            cJSON *u = cJSON_AddObjectToObject(o, "usage");
            cJSON_AddNumberToObject(u, "prompt_tokens", pt);
            cJSON_AddNumberToObject(u, "completion_tokens", ct);
            cJSON_AddNumberToObject(u, "total_tokens", pt + ct);
        }
        pika_buf_puts(&b, "data: ");
        add_json(&b, o);
        pika_buf_puts(&b, "\n\n");
    }
    pika_buf_puts(&b, "data: [DONE]\n\n");
    free(ans);
    cJSON_Delete(j);
    if (!s->o.stream_hold && !s->o.stream_abort) return reply(con, 200, "text/event-stream", &b);
    /* the first event, then wait for pika_stub_release (or fail the connection) */
    stub_stream *ss = pika_calloc(1, sizeof *ss);
    ss->s = s;
    ss->text = b.s;
    ss->len = b.n;
    const char *e = strstr(b.s, "\n\n");
    ss->split = e ? (size_t)(e - b.s) + 2 : b.n;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_cb, ss, stream_done);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    enum MHD_Result rc = MHD_queue_response(con, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result stub_request(void *cls, struct MHD_Connection *con, const char *url, const char *method, const char *version,
                                    const char *data, size_t *size, void **con_cls) {
    (void)version;
    pika_stub *s = cls;
    stub_req *q = *con_cls;
    if (!q) {
        *con_cls = pika_calloc(1, sizeof(stub_req));
        return MHD_YES;
    }
    if (*size) {
        pika_buf_add(&q->body, data, *size);
        *size = 0;
        return MHD_YES;
    }
    if (!strcmp(method, "POST") && strstr(url, "completions")) {
        const char *a = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
        pthread_mutex_lock(&s->mu);
        snprintf(s->auth, sizeof s->auth, "%s", a ? a : "");
        pthread_mutex_unlock(&s->mu);
        return stub_answer(s, con, url, q);
    }
    pika_buf b = {0};
    if (!strcmp(method, "GET") && strstr(url, "models")) {
        pika_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":\"");
        pika_buf_puts(&b, s->name);
        pika_buf_puts(&b, "\",\"object\":\"model\"}]}");
        return reply(con, 200, "application/json", &b);
    }
    pika_buf_puts(&b, "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_request_error\",\"code\":null}}");
    return reply(con, 404, "application/json", &b);
}

static void stub_done(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls; (void)con; (void)toe;
    stub_req *q = *con_cls;
    if (!q) return;
    free(q->body.s);
    free(q);
    *con_cls = NULL;
}

pika_stub *pika_stub_start(const char *name, int port, const pika_stub_opts *o) {
    pika_stub *s = pika_calloc(1, sizeof *s);
    s->name = pika_strdup(name);
    if (o) s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY, (uint16_t)port, NULL, NULL, stub_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, stub_done, s,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
    if (!s->d) {
        pika_set_error("stub %s: cannot listen on 127.0.0.1:%d", name, port);
        free(s->name);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : port;
    return s;
}

int pika_stub_port(const pika_stub *s) { return s->port; }

int64_t pika_stub_requests(const pika_stub *s) {
    pika_stub *m = (pika_stub *)s;
    pthread_mutex_lock(&m->mu);
    int64_t n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void pika_stub_last_auth(pika_stub *s, char *out, size_t cap) {
    pthread_mutex_lock(&s->mu);
    snprintf(out, cap, "%s", s->auth);
    pthread_mutex_unlock(&s->mu);
}

void pika_stub_release(pika_stub *s) {
    pthread_mutex_lock(&s->mu);
    s->released = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void pika_stub_stop(pika_stub *s) {
    if (!s) return;
    pika_stub_release(s);
    MHD_stop_daemon(s->d);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->name);
    free(s);
}
