/* test_openai.c — the OpenAI-compatible client (openai_client.h) and `pika sample --backend openai`
 * against a stub server inside the test (libmicrohttpd, 127.0.0.1, a port chosen free at run time):
 * response and usage parsing, streaming with reasoning deltas, the Authorization header, retries on
 * 429/500 with Retry-After honoured, a non-retryable 400, then the CLI: output fields equal to a
 * local sample's, prompts byte-identical to pika's rendering, usage counts, reasoning_content kept,
 * a question that always fails skipped and completed by a rerun, resume after kill -9, and the key
 * never in the output files. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pika/chat.h"
#include "pika/gguf.h"
#include "pika/openai_client.h"
#include "pika/prompt.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"

#define MAX_LOG 512

typedef struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* behaviour */
    int fail_first;           /* the first N requests get fail_status */
    int fail_status;
    int retry_after;          /* > 0: a Retry-After header on failures */
    const char *always_fail;  /* a body containing this always gets 500 */
    int supports_n;           /* return n choices (else 1) */
    int reasoning;            /* chat: reasoning_content in the message */
    int no_usage;
    int hold_after;           /* > 0: successful answers after this many block until released */
    int hold_all;             /* every successful answer blocks until released */
    int max_n;                /* > 0: a request with a larger n gets 400 */
    int no_stream;            /* answer "stream": true with a plain JSON body */
    int released;
    /* log */
    int n_requests, n_ok, n_held;
    double t[MAX_LOG];
    char *bodies[MAX_LOG];
    char auth[256];
    char path[256];
} stub;

typedef struct {
    pika_buf body;
} conn_state;

static enum MHD_Result respond(struct MHD_Connection *c, int status, const char *type, const char *body, int retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after > 0) {
        char v[32];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A deterministic answer text of (prompt, choice). */
static void answer_text(const char *prompt, int i, char *out, size_t cap) {
    unsigned h = 2166136261u;
    for (const char *p = prompt; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, cap, "answer %d of %08x", i, h);
}

static char *make_reply(stub *s, const cJSON *req, int chat, int stream) {
    const cJSON *nj = cJSON_GetObjectItemCaseSensitive(req, "n");
    int n = cJSON_IsNumber(nj) ? nj->valueint : 1;
    if (!s->supports_n || n < 1) n = 1;
    const cJSON *pj = chat ? cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(req, "messages"),
                                                                                  cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(req, "messages")) - 1),
                                                               "content")
                           : cJSON_GetObjectItemCaseSensitive(req, "prompt");
    const char *prompt = cJSON_IsString(pj) ? pj->valuestring : "";
    char txt[128];
    if (stream) {
        pika_buf b = {0};
        answer_text(prompt, 0, txt, sizeof txt);
        char line[512];
        snprintf(line, sizeof line, "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"think \"}}]}\n\n"
                                    ": keep-alive\n\n"
                                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hard\"}}]}\r\n\r\n"
                                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%.*s\"}}]}\n\n"
                                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},\"finish_reason\":\"stop\"}]}\n\n"
                                    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":22}}\n\n"
                                    "data: [DONE]\n\n",
                 6, txt, txt + 6);
        pika_buf_puts(&b, line);
        return b.s;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", "stub-model");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", i);
        answer_text(prompt, i, txt, sizeof txt);
        if (chat) {
            cJSON *m = cJSON_AddObjectToObject(c, "message");
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddStringToObject(m, "content", txt);
            if (s->reasoning) cJSON_AddStringToObject(m, "reasoning_content", "let me think");
        } else {
            cJSON_AddStringToObject(c, "text", txt);
        }
        cJSON_AddStringToObject(c, "finish_reason", i % 2 ? "length" : "stop");
        cJSON_AddItemToArray(ch, c);
    }
    if (!s->no_usage) {
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", 1000 + (double)strlen(prompt));
        cJSON_AddNumberToObject(u, "completion_tokens", 7 * n + (s->reasoning ? 5 : 0));
        if (s->reasoning) {
            cJSON *d = cJSON_AddObjectToObject(u, "completion_tokens_details");
            cJSON_AddNumberToObject(d, "reasoning_tokens", 5);
        }
    }
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    stub *s = cls;
    if (!*con_cls) {
        *con_cls = calloc(1, sizeof(conn_state));
        return MHD_YES;
    }
    conn_state *cs = *con_cls;
    if (*upload_size) {
        pika_buf_add(&cs->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST")) return respond(c, 405, "application/json", "{\"error\":{\"message\":\"POST only\"}}", 0);
    const char *body = cs->body.s ? cs->body.s : "";
    pthread_mutex_lock(&s->mu);
    int k = s->n_requests++;
    if (k < MAX_LOG) {
        s->t[k] = pika_now();
        s->bodies[k] = strdup(body);
    }
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    snprintf(s->auth, sizeof s->auth, "%s", a ? a : "");
    snprintf(s->path, sizeof s->path, "%s", url);
    int fail = k < s->fail_first ? s->fail_status : 0;
    if (!fail && s->always_fail && strstr(body, s->always_fail)) fail = 500;
    int ra = s->retry_after;
    int hold = 0;
    if (!fail) {
        s->n_ok++;
        hold = s->hold_all || (s->hold_after > 0 && s->n_ok > s->hold_after);
        if (hold) {
            s->n_held++;
            pthread_cond_broadcast(&s->cv);
            while (!s->released) pthread_cond_wait(&s->cv, &s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (fail)
        return respond(c, fail, "application/json", fail == 429 ? "{\"error\":{\"message\":\"rate limited\"}}"
                                                                 : "{\"error\":{\"message\":\"boom\\ninternal\"}}",
                       fail == 429 ? ra : 0);
    cJSON *req = cJSON_Parse(body);
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        return respond(c, 400, "application/json", "{\"error\":{\"message\":\"bad json\"}}", 0);
    }
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (!cJSON_IsString(mj) || strcmp(mj->valuestring, "stub-model")) {
        cJSON_Delete(req);
        return respond(c, 400, "application/json", "{\"error\":{\"message\":\"unknown model\"}}", 0);
    }
    const cJSON *nj = cJSON_GetObjectItemCaseSensitive(req, "n");
    if (s->max_n > 0 && cJSON_IsNumber(nj) && nj->valueint > s->max_n) {
        cJSON_Delete(req);
        return respond(c, 400, "application/json", "{\"error\":{\"message\":\"n must be 1\"}}", 0);
    }
    int chat = strstr(url, "/chat/completions") != NULL;
    int stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream")) && !s->no_stream;
    char *reply = make_reply(s, req, chat, stream);
    cJSON_Delete(req);
    enum MHD_Result ok = respond(c, 200, stream ? "text/event-stream" : "application/json", reply, 0);
    free(reply);
    return ok;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
    (void)cls; (void)c; (void)t;
    conn_state *cs = *con_cls;
    if (cs) { free(cs->body.s); free(cs); }
    *con_cls = NULL;
}

static int stub_start(stub *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->supports_n = 1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                            MHD_OPTION_END);
    if (!s->d) return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    return s->port > 0 ? 0 : -1;
}

static void stub_release(stub *s) {
    pthread_mutex_lock(&s->mu);
    s->released = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void stub_stop(stub *s) {
    stub_release(s);
    if (s->d) MHD_stop_daemon(s->d);
    for (int i = 0; i < s->n_requests && i < MAX_LOG; i++) free(s->bodies[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

static void stub_reset_log(stub *s) {
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_requests && i < MAX_LOG; i++) free(s->bodies[i]);
    s->n_requests = s->n_ok = s->n_held = 0;
    pthread_mutex_unlock(&s->mu);
}

static void opts_for(pika_oai_opts *o, const stub *s, char *url, size_t cap) {
    pika_oai_opts_default(o);
    snprintf(url, cap, "http://127.0.0.1:%d/v1/", s->port);
    o->base_url = url;
    o->backoff_base_s = 0.01;
    o->backoff_max_s = 0.05;
    o->timeout_s = 30;
}

/* ---- the client ---- */

static void test_client_completions(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    char url[128];
    pika_oai_opts o;
    opts_for(&o, &s, url, sizeof url);
    o.api_key = "sk-test-secret";
    pika_oai_result r;
    int rc = pika_oai_request(&o, PIKA_OAI_COMPLETIONS, "{\"model\":\"stub-model\",\"prompt\":\"2+2=\",\"n\":3}", NULL, NULL, &r);
    CHECK(rc == 0 && r.ok, "request failed: %s", r.error ? r.error : "?");
    CHECK(r.n_choices == 3, "choices %d", r.n_choices);
    char want[128];
    answer_text("2+2=", 2, want, sizeof want);
    CHECK(r.n_choices == 3 && !strcmp(r.choices[2].text, want), "choice 2 text '%s'", r.n_choices == 3 ? r.choices[2].text : "");
    CHECK(r.n_choices == 3 && !strcmp(r.choices[1].finish, "length"), "finish");
    CHECK(r.prompt_tokens == 1004 && r.completion_tokens == 21, "usage %lld %lld", (long long)r.prompt_tokens,
          (long long)r.completion_tokens);
    CHECK(r.model && !strcmp(r.model, "stub-model"), "model");
    CHECK(r.attempts == 1 && r.status == 200, "attempts %d status %d", r.attempts, r.status);
    CHECK(!strcmp(s.auth, "Bearer sk-test-secret"), "Authorization header '%s'", s.auth);
    CHECK(!strcmp(s.path, "/v1/completions"), "path %s", s.path);
    CHECK(r.body && r.body_len == strlen(r.body) && strstr(r.body, "\"choices\""), "raw body kept");
    pika_oai_result_free(&r);
    stub_stop(&s);
}

typedef struct {
    int n, n_text;
    pika_buf text, reasoning;
} chunk_log;

static int cancel_at = -1;

static int on_chunk(const pika_oai_chunk *c, void *user) {
    chunk_log *l = user;
    if (++l->n == cancel_at) return 1;
    if (c->text) { pika_buf_puts(&l->text, c->text); l->n_text++; }
    if (c->reasoning) pika_buf_puts(&l->reasoning, c->reasoning);
    return 0;
}

static void test_client_stream(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    char url[128];
    pika_oai_opts o;
    opts_for(&o, &s, url, sizeof url);
    pika_oai_result r;
    chunk_log l;
    memset(&l, 0, sizeof l);
    const char *body = "{\"model\":\"stub-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}";
    int rc = pika_oai_request(&o, PIKA_OAI_CHAT, body, on_chunk, &l, &r);
    CHECK(rc == 0 && r.ok, "stream failed: %s", r.error ? r.error : "?");
    char want[128];
    answer_text("hi", 0, want, sizeof want);
    CHECK(l.n == 5 && l.n_text == 2, "chunks %d (text %d)", l.n, l.n_text);
    CHECK(l.text.s && !strcmp(l.text.s, want), "streamed text '%s'", l.text.s ? l.text.s : "");
    CHECK(l.reasoning.s && !strcmp(l.reasoning.s, "think hard"), "streamed reasoning");
    CHECK(r.n_choices == 1 && !strcmp(r.choices[0].text, want), "accumulated text");
    CHECK(r.n_choices == 1 && r.choices[0].reasoning && !strcmp(r.choices[0].reasoning, "think hard"), "accumulated reasoning");
    CHECK(r.n_choices == 1 && r.choices[0].finish && !strcmp(r.choices[0].finish, "stop"), "finish");
    CHECK(r.prompt_tokens == 11 && r.completion_tokens == 22, "stream usage");
    CHECK(!strcmp(s.auth, ""), "no key, no Authorization header: '%s'", s.auth);
    CHECK(r.attempts == 1 && !r.body, "one attempt; no raw body for a stream");
    free(l.text.s);
    free(l.reasoning.s);
    pika_oai_result_free(&r);
    /* a 500 before any chunk is retried; cancelling from the callback stops it, not retried */
    stub_reset_log(&s);
    s.fail_first = 1;
    s.fail_status = 500;
    memset(&l, 0, sizeof l);
    cancel_at = 2;
    rc = pika_oai_request(&o, PIKA_OAI_CHAT, body, on_chunk, &l, &r);
    cancel_at = -1;
    CHECK(rc == -1 && r.error && strstr(r.error, "cancelled") && l.n == 2, "cancelled after 2 chunks: %s (%d)",
          r.error ? r.error : "", l.n);
    CHECK(s.n_requests == 2, "500 retried, the cancelled stream not: %d requests", s.n_requests);
    free(l.text.s);
    free(l.reasoning.s);
    pika_oai_result_free(&r);
    /* a server that ignores "stream": its JSON answer is the result (no chunks) */
    s.no_stream = 1;
    memset(&l, 0, sizeof l);
    rc = pika_oai_request(&o, PIKA_OAI_CHAT, body, on_chunk, &l, &r);
    CHECK(rc == 0 && r.n_choices == 1 && !strcmp(r.choices[0].text, want) && l.n == 0, "stream ignored: %s",
          r.error ? r.error : "ok");
    pika_oai_result_free(&r);
    stub_stop(&s);
}


typedef struct {
    const pika_oai_opts *o;
    int ok;
    chunk_log l;
    char q[16];
} thread_job;

static void *stream_thread(void *u) {
    thread_job *j = u;
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"stub-model\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"stream\":true}", j->q);
    pika_oai_result r;
    j->ok = pika_oai_request(j->o, PIKA_OAI_CHAT, body, on_chunk, &j->l, &r) == 0;
    char want[128];
    answer_text(j->q, 0, want, sizeof want);
    j->ok = j->ok && r.n_choices == 1 && !strcmp(r.choices[0].text, want) && j->l.text.s && !strcmp(j->l.text.s, want);
    pika_oai_result_free(&r);
    return NULL;
}

/* Server threads forwarding streams: blocking requests from several threads at once. */
static void test_client_threads(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    char url[128];
    pika_oai_opts o;
    opts_for(&o, &s, url, sizeof url);
    o.api_key = "sk-threads";
    thread_job jobs[6];
    pthread_t th[6];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 6; i++) {
        jobs[i].o = &o;
        snprintf(jobs[i].q, sizeof jobs[i].q, "t%d", i);
        REQUIRE(pthread_create(&th[i], NULL, stream_thread, &jobs[i]) == 0, "thread");
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].ok, "thread %d's stream", i);
        free(jobs[i].l.text.s);
        free(jobs[i].l.reasoning.s);
    }
    CHECK(s.n_requests == 6 && !strcmp(s.auth, "Bearer sk-threads"), "6 requests with the key");
    stub_stop(&s);
}

static void test_client_retries(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    s.fail_first = 3;
    s.fail_status = 500;
    char url[128];
    pika_oai_opts o;
    opts_for(&o, &s, url, sizeof url);
    pika_oai_result r;
    int rc = pika_oai_request(&o, PIKA_OAI_COMPLETIONS, "{\"model\":\"stub-model\",\"prompt\":\"x\"}", NULL, NULL, &r);
    CHECK(rc == 0 && r.ok && r.attempts == 4, "500 x3 then ok: rc %d attempts %d (%s)", rc, r.attempts, r.error ? r.error : "");
    CHECK(s.n_requests == 4, "server saw %d requests", s.n_requests);
    pika_oai_result_free(&r);
    /* too many failures: the error names the status and the server's message, on one line */
    stub_reset_log(&s);
    s.fail_first = 100;
    o.max_retries = 2;
    rc = pika_oai_request(&o, PIKA_OAI_COMPLETIONS, "{\"model\":\"stub-model\",\"prompt\":\"x\"}", NULL, NULL, &r);
    CHECK(rc == -1 && !r.ok && r.attempts == 3 && s.n_requests == 3, "gives up after 1 + 2 attempts (%d)", r.attempts);
    CHECK(r.error && strstr(r.error, "HTTP 500") && strstr(r.error, "boom") && !strchr(r.error, '\n'), "error '%s'",
          r.error ? r.error : "");
    pika_oai_result_free(&r);
    /* a 400 is not retried */
    stub_reset_log(&s);
    s.fail_first = 0;
    rc = pika_oai_request(&o, PIKA_OAI_COMPLETIONS, "{\"model\":\"nope\",\"prompt\":\"x\"}", NULL, NULL, &r);
    CHECK(rc == -1 && r.attempts == 1 && r.status == 400 && s.n_requests == 1, "400 not retried");
    CHECK(r.error && strstr(r.error, "unknown model"), "400 message '%s'", r.error ? r.error : "");
    pika_oai_result_free(&r);
    /* a server that never answers: each attempt times out, is retried, then a clear error */
    stub_reset_log(&s);
    s.hold_all = 1;
    o.timeout_s = 0.3;
    o.max_retries = 1;
    rc = pika_oai_request(&o, PIKA_OAI_COMPLETIONS, "{\"model\":\"stub-model\",\"prompt\":\"x\"}", NULL, NULL, &r);
    CHECK(rc == -1 && r.attempts == 2 && r.status == 0 && r.error && strstr(r.error, "imeout"), "timeouts: %s",
          r.error ? r.error : "");
    pika_oai_result_free(&r);
    o.timeout_s = 30;
    stub_stop(&s);
    /* nothing listening: a transport error, retried, then a clear error (the port is free again) */
    o.max_retries = 1;
    rc = pika_oai_request(&o, PIKA_OAI_COMPLETIONS, "{\"model\":\"stub-model\",\"prompt\":\"x\"}", NULL, NULL, &r);
    CHECK(rc == -1 && r.status == 0 && r.attempts == 2 && r.error, "connection refused: %s", r.error ? r.error : "");
    pika_oai_result_free(&r);
}


typedef struct {
    int done, ok;
    uint64_t tags;
} done_log;

static void count_done(uint64_t tag, pika_oai_result *res, void *user) {
    done_log *d = user;
    d->done++;
    d->ok += res->ok;
    d->tags |= 1ull << tag;
}

static int held(stub *s) {
    pthread_mutex_lock(&s->mu);
    int h = s->n_held;
    pthread_mutex_unlock(&s->mu);
    return h;
}

/* The multi client never has more than concurrency requests in flight: with the server holding
 * every request, exactly that many arrive; released, all finish. */
static void test_client_concurrency(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    s.hold_all = 1;
    char url[128];
    pika_oai_opts o;
    opts_for(&o, &s, url, sizeof url);
    o.concurrency = 3;
    pika_oai_client *c = pika_oai_client_new(&o);
    REQUIRE(c, "client: %s", pika_last_error());
    done_log d = {0, 0, 0};
    for (int i = 0; i < 10; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"model\":\"stub-model\",\"prompt\":\"p%d\"}", i);
        CHECK(pika_oai_submit(c, PIKA_OAI_COMPLETIONS, body, (uint64_t)i, count_done, NULL, &d) == 0, "submit");
    }
    CHECK(pika_oai_submit(c, PIKA_OAI_COMPLETIONS, "[1]", 99, count_done, NULL, &d) == -1, "a body that is not an object");
    CHECK(pika_oai_pending(c) == 10, "pending %lld", (long long)pika_oai_pending(c));
    for (int i = 0; i < 2000 && held(&s) < 3; i++) pika_oai_step(c, 5);
    CHECK(held(&s) == 3, "3 requests reached the server: %d", held(&s));
    for (int i = 0; i < 20; i++) pika_oai_step(c, 5); /* more steps start nothing while 3 are in flight */
    CHECK(held(&s) == 3 && d.done == 0, "still 3 in flight (%d), none done", held(&s));
    stub_release(&s);
    CHECK(pika_oai_run(c) == 0, "run");
    CHECK(d.done == 10 && d.ok == 10 && d.tags == 0x3ff, "all 10 done once: %d ok %d", d.done, d.ok);
    CHECK(s.n_requests == 10 && pika_oai_pending(c) == 0, "requests %d", s.n_requests);
    pika_oai_client_free(c);
    stub_stop(&s);
}

static void test_client_retry_after(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    s.fail_first = 1;
    s.fail_status = 429;
    s.retry_after = 1;
    char url[128];
    pika_oai_opts o;
    opts_for(&o, &s, url, sizeof url); /* backoff alone would wait at most 0.05 s */
    pika_oai_result r;
    int rc = pika_oai_request(&o, PIKA_OAI_COMPLETIONS, "{\"model\":\"stub-model\",\"prompt\":\"x\"}", NULL, NULL, &r);
    CHECK(rc == 0 && r.attempts == 2, "429 then ok (%d attempts)", r.attempts);
    CHECK(s.n_requests == 2 && s.t[1] - s.t[0] >= 0.95, "the retry came %.3f s after the 429 (Retry-After: 1)",
          s.n_requests == 2 ? s.t[1] - s.t[0] : -1.0);
    CHECK(r.waited_s >= 1.0, "waited %.3f", r.waited_s);
    pika_oai_result_free(&r);
    stub_stop(&s);
}

static void test_backoff(void) {
    pika_oai_opts o;
    pika_oai_opts_default(&o);
    uint64_t rng = 7;
    for (int i = 0; i < 8; i++) {
        double d = pika_oai_backoff_s(&o, i, -1, &rng);
        double base = o.backoff_base_s * (1 << i);
        if (base > o.backoff_max_s) base = o.backoff_max_s;
        CHECK(d >= 0.5 * base && d < base, "retry %d: %.3f not in [%.3f, %.3f)", i, d, 0.5 * base, base);
    }
    CHECK(pika_oai_backoff_s(&o, 0, 7, &rng) == 7, "Retry-After wins");
    CHECK(pika_oai_backoff_s(&o, 0, 1e6, &rng) == o.retry_after_max_s, "Retry-After capped");
    CHECK(pika_oai_parse_retry_after(" 12") == 12, "delta seconds");
    CHECK(pika_oai_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0, "a date in the past is 0");
    CHECK(pika_oai_parse_retry_after("soon") < 0, "garbage");
    pika_oai_result r;
    memset(&r, 0, sizeof r);
    const char *body = "{\"choices\":[{\"index\":1,\"message\":{\"content\":null,\"reasoning\":\"r\"},\"finish_reason\":\"stop\"},"
                       "{\"index\":0,\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
                       "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}";
    CHECK(pika_oai_parse_response(body, strlen(body), &r) == 0, "parse");
    CHECK(r.n_choices == 2 && !strcmp(r.choices[0].text, "a") && !strcmp(r.choices[1].text, "") &&
              !strcmp(r.choices[1].reasoning, "r") && !r.choices[0].finish,
          "choices sorted by index, null content is \"\", reasoning kept");
    CHECK(r.reasoning_tokens == 2 && r.completion_tokens == 4, "usage details");
    pika_oai_result_free(&r);
    CHECK(pika_oai_parse_response("{\"error\":{\"message\":\"x\"}}", 25, &r) == -1 && strstr(pika_last_error(), "x"), "error body");
    pika_oai_result_free(&r);
}

/* ---- pika sample --backend openai ---- */

#define MODEL "models/pool/pika-math-s.gguf"

static const char *QS[] = {"3+4", "12*2", "7-9", "POISON 1+1", "5+5", "9*9"};
#define NQ 6

static void write_data(const char *path, int with_poison) {
    FILE *f = fopen(path, "w");
    for (int i = 0; i < NQ; i++)
        if (with_poison || strncmp(QS[i], "POISON", 6)) fprintf(f, "{\"id\": \"q%d\", \"problem\": \"%s\"}\n", i, QS[i]);
    fclose(f);
}

static cJSON *read_jsonl(const char *path) {
    char *s = pika_read_file(path, NULL);
    cJSON *arr = cJSON_CreateArray();
    if (!s) return arr;
    char *save = NULL;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(l);
        if (o) cJSON_AddItemToArray(arr, o);
    }
    free(s);
    return arr;
}

static int run_cmd(const char *cmd, char *log_path) {
    char full[4096];
    snprintf(full, sizeof full, "%s >%s 2>&1", cmd, log_path);
    int st;
    free(test_run(full, &st));
    return st;
}

static int file_has(const char *path, const char *needle) {
    char *s = pika_read_file(path, NULL);
    int r = s && strstr(s, needle);
    free(s);
    return r;
}

static int count_key(const cJSON *arr, const char *id, int sample) {
    int n = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, "id"), *s = cJSON_GetObjectItemCaseSensitive(o, "sample");
        n += cJSON_IsString(i) && !strcmp(i->valuestring, id) && cJSON_IsNumber(s) && s->valueint == sample;
    }
    return n;
}

static void test_sample_format_and_prompts(void) {
    if (access(MODEL, R_OK) != 0) SKIP_TEST(MODEL " is missing");
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    const char *dir = test_tmpdir();
    char data[512], lout[512], rout[512], log[512], cmd[4096];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(lout, sizeof lout, "%s/local.jsonl", dir);
    snprintf(rout, sizeof rout, "%s/remote.jsonl", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_data(data, 0);
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s -k 2 --max-tokens 4 --threads 1 --out %s", test_pika_bin(), MODEL,
             data, lout);
    CHECK(run_cmd(cmd, log) == 0, "local sample");
    snprintf(cmd, sizeof cmd,
             "PIKA_TEST_KEY=sk-never-written %s sample --backend openai --url http://127.0.0.1:%d/v1 --api-model stub-model "
             "--api-key-env PIKA_TEST_KEY --model %s --data %s -k 2 --max-tokens 4 --concurrency 3 --out %s",
             test_pika_bin(), s.port, MODEL, data, rout);
    int st = run_cmd(cmd, log);
    char *lg = pika_read_file(log, NULL);
    CHECK(st == 0, "remote sample exited %d: %s", st, lg ? lg : "");
    CHECK(lg && strstr(lg, "completions with prompts rendered by pika"), "says which API: %s", lg ? lg : "");
    CHECK(lg && !strstr(lg, "sk-never-written"), "the key is not printed");
    free(lg);
    CHECK(!strcmp(s.auth, "Bearer sk-never-written"), "Authorization from the env var: '%s'", s.auth);
    CHECK(s.n_requests == NQ - 1, "one request (n=2) per question: %d", s.n_requests);
    cJSON *L = read_jsonl(lout), *R = read_jsonl(rout);
    CHECK(cJSON_GetArraySize(L) == 2 * (NQ - 1) && cJSON_GetArraySize(R) == 2 * (NQ - 1), "rows %d %d", cJSON_GetArraySize(L),
          cJSON_GetArraySize(R));
    /* the same fields (plus latency_s), the same types */
    const cJSON *l0 = cJSON_GetArrayItem(L, 0), *it;
    const cJSON *r0;
    cJSON_ArrayForEach(r0, R) {
        cJSON_ArrayForEach(it, l0) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(r0, it->string);
            CHECK(x && x->type == it->type, "remote row lacks or mistypes \"%s\"", it->string);
        }
        cJSON_ArrayForEach(it, r0) CHECK(cJSON_GetObjectItemCaseSensitive(l0, it->string) || !strcmp(it->string, "latency_s"),
                                         "remote row has an extra field \"%s\"", it->string);
    }
    for (int i = 0; i < NQ; i++) {
        if (i == 3) continue;
        char id[16];
        snprintf(id, sizeof id, "q%d", i);
        CHECK(count_key(R, id, 0) == 1 && count_key(R, id, 1) == 1, "%s: both samples once", id);
    }
    /* prompts byte-identical to pika's rendering; usage counts used; stub-made texts */
    pika_gguf *g = pika_gguf_open(MODEL);
    pika_tokenizer *tok = g ? pika_tokenizer_from_gguf(g) : NULL;
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    pika_prompt_recipe *rec = tok ? pika_prompt_recipe_new(g, tok, &po) : NULL;
    REQUIRE(rec, "recipe: %s", pika_last_error());
    for (int k = 0; k < s.n_requests; k++) {
        cJSON *b = cJSON_Parse(s.bodies[k]);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, "prompt");
        REQUIRE(cJSON_IsString(p), "request %d has a prompt", k);
        int found = 0;
        for (int i = 0; i < NQ; i++) {
            char *want = pika_prompt_render(rec, QS[i], NULL);
            found += !strcmp(want, p->valuestring);
            free(want);
        }
        CHECK(found == 1, "request %d's prompt is pika's rendering of a question", k);
        CHECK(cJSON_GetObjectItemCaseSensitive(b, "n")->valueint == 2 &&
                  cJSON_GetObjectItemCaseSensitive(b, "max_tokens")->valueint == 4 &&
                  cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(b, "seed")),
              "n, max_tokens, seed sent");
        cJSON_Delete(b);
    }
    cJSON_ArrayForEach(r0, R) {
        const char *id = cJSON_GetObjectItemCaseSensitive(r0, "id")->valuestring;
        int q = id[1] - '0';
        char *pr = pika_prompt_render(rec, QS[q], NULL);
        char want[128];
        answer_text(pr, cJSON_GetObjectItemCaseSensitive(r0, "sample")->valueint, want, sizeof want);
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(r0, "text")->valuestring, want), "%s text", id);
        CHECK(cJSON_GetObjectItemCaseSensitive(r0, "tokens_in")->valueint == 1000 + (int)strlen(pr), "%s tokens_in from usage", id);
        int32_t *ids = NULL;
        int nt = pika_tokenize(tok, want, strlen(want), false, false, &ids);
        free(ids);
        CHECK(cJSON_GetObjectItemCaseSensitive(r0, "tokens_out")->valueint == nt, "%s tokens_out (n=2: pika's count)", id);
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(r0, "model")->valuestring, "stub-model"), "model");
        free(pr);
    }
    /* provenance: backend, url, api model; never the key */
    char meta[600];
    snprintf(meta, sizeof meta, "%s.meta.json", rout);
    char *mt = pika_read_file(meta, NULL);
    cJSON *mj = mt ? cJSON_Parse(mt) : NULL;
    const cJSON *mm = cJSON_GetObjectItemCaseSensitive(mj, "model");
    CHECK(mm && !strcmp(cJSON_GetObjectItemCaseSensitive(mm, "backend")->valuestring, "openai") &&
              !strcmp(cJSON_GetObjectItemCaseSensitive(mm, "api")->valuestring, "completions") &&
              !strcmp(cJSON_GetObjectItemCaseSensitive(mm, "api_model")->valuestring, "stub-model") &&
              strstr(cJSON_GetObjectItemCaseSensitive(mm, "url")->valuestring, "127.0.0.1"),
          "provenance: %s", mt ? mt : "");
    CHECK(cJSON_GetObjectItemCaseSensitive(mj, "prompt") && cJSON_GetObjectItemCaseSensitive(mj, "sampling"), "recipe + sampling");
    CHECK(!file_has(meta, "sk-never-written") && !file_has(rout, "sk-never-written"), "the key is in no file");
    cJSON_Delete(mj);
    free(mt);
    /* a local run cannot resume into the remote file */
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s -k 2 --max-tokens 4 --threads 1 --resume --out %s",
             test_pika_bin(), MODEL, data, rout);
    CHECK(run_cmd(cmd, log) == 2 && file_has(log, "another model"), "local resume into a remote file refused");
    pika_prompt_recipe_free(rec);
    pika_tokenizer_free(tok);
    pika_gguf_close(g);
    cJSON_Delete(L);
    cJSON_Delete(R);
    stub_stop(&s);
}

static void test_sample_chat_reasoning_retries(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    s.reasoning = 1;
    s.supports_n = 0;      /* like llama-server: one choice whatever n says */
    s.fail_first = 2;      /* two 429s: retried */
    s.fail_status = 429;
    const char *dir = test_tmpdir();
    char data[512], out[512], log[512], cmd[4096];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(out, sizeof out, "%s/r.jsonl", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_data(data, 0);
    /* no --model, no template: chat, the server applies its template */
    snprintf(cmd, sizeof cmd,
             "%s sample --backend openai --url http://127.0.0.1:%d/v1 --api-model stub-model --data %s -k 3 --max-tokens 9 "
             "--temperature 0.7 --stop END --suffix ' please' --concurrency 2 --out %s",
             test_pika_bin(), s.port, data, out);
    int st = run_cmd(cmd, log);
    char *lg = pika_read_file(log, NULL);
    CHECK(st == 0, "chat sample exited %d: %s", st, lg ? lg : "");
    CHECK(lg && strstr(lg, "chat/completions with messages"), "says chat: %s", lg ? lg : "");
    free(lg);
    CHECK(!strcmp(s.path, "/v1/chat/completions"), "path %s", s.path);
    CHECK(s.n_requests == 2 + (NQ - 1) * 3, "2 failures + n=3 answered with 1 choice + 2 more each: %d", s.n_requests);
    cJSON *R = read_jsonl(out);
    CHECK(cJSON_GetArraySize(R) == 3 * (NQ - 1), "rows %d", cJSON_GetArraySize(R));
    const cJSON *r0;
    cJSON_ArrayForEach(r0, R) {
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(r0, "reasoning_content");
        CHECK(cJSON_IsString(rc) && !strcmp(rc->valuestring, "let me think"), "reasoning_content kept");
        CHECK(cJSON_GetObjectItemCaseSensitive(r0, "tokens_out")->valueint == 12, "tokens_out = usage incl. reasoning");
        CHECK(cJSON_GetObjectItemCaseSensitive(r0, "finish") && !strcmp(cJSON_GetObjectItemCaseSensitive(r0, "finish")->valuestring, "stop"),
              "finish");
    }
    int seen_suffix = 0;
    for (int k = 2; k < s.n_requests && k < MAX_LOG; k++) {
        cJSON *b = cJSON_Parse(s.bodies[k]);
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "messages"), 0);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        seen_suffix += cJSON_IsString(c) && strstr(c->valuestring, " please") != NULL;
        const cJSON *stop = cJSON_GetObjectItemCaseSensitive(b, "stop");
        CHECK(cJSON_IsArray(stop) && !strcmp(cJSON_GetArrayItem(stop, 0)->valuestring, "END"), "stop sent");
        CHECK(fabs(cJSON_GetObjectItemCaseSensitive(b, "temperature")->valuedouble - 0.7) < 1e-6, "temperature sent");
        cJSON_Delete(b);
    }
    CHECK(seen_suffix == s.n_requests - 2, "messages carry the recipe's suffix (%d)", seen_suffix);
    CHECK(strcmp(s.auth, "") == 0, "no key set, none sent");
    cJSON_Delete(R);
    stub_stop(&s);
}

static void test_sample_failing_question(void) {
    if (access(MODEL, R_OK) != 0) SKIP_TEST(MODEL " is missing");
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    s.always_fail = "POISON";
    const char *dir = test_tmpdir();
    char data[512], out[512], log[512], cmd[4096];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(out, sizeof out, "%s/r.jsonl", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_data(data, 1);
    snprintf(cmd, sizeof cmd,
             "%s sample --backend openai --url http://127.0.0.1:%d/v1 --api-model stub-model --model %s --data %s -k 2 "
             "--max-tokens 4 --retries 2 --one-per-request --out %s",
             test_pika_bin(), s.port, MODEL, data, out);
    int st = run_cmd(cmd, log);
    char *lg = pika_read_file(log, NULL);
    CHECK(st == 2, "a failed question makes the run fail: %d", st);
    CHECK(lg && strstr(lg, "question q3 skipped") && strstr(lg, "HTTP 500") && strstr(lg, "--resume"), "reported: %s",
          lg ? lg : "");
    free(lg);
    cJSON *R = read_jsonl(out);
    CHECK(cJSON_GetArraySize(R) == 2 * (NQ - 1), "the others are written: %d", cJSON_GetArraySize(R));
    CHECK(count_key(R, "q3", 0) == 0 && count_key(R, "q3", 1) == 0, "q3 not written half");
    CHECK(s.n_requests == 2 * (NQ - 1) + 2 * 3, "requests %d (q3's two samples x 3 attempts)", s.n_requests);
    cJSON_Delete(R);
    /* the server recovers: a rerun with --resume asks only for q3 and completes the file */
    s.always_fail = NULL;
    stub_reset_log(&s);
    char cmd2[4200];
    snprintf(cmd2, sizeof cmd2, "%s --resume", cmd);
    st = run_cmd(cmd2, log);
    CHECK(st == 0, "rerun exited %d", st);
    CHECK(s.n_requests == 2, "rerun sent %d requests (q3's two samples)", s.n_requests);
    R = read_jsonl(out);
    CHECK(cJSON_GetArraySize(R) == 2 * NQ, "complete: %d", cJSON_GetArraySize(R));
    CHECK(count_key(R, "q3", 0) == 1 && count_key(R, "q3", 1) == 1, "q3 completed");
    cJSON_Delete(R);
    /* a resume with other settings is refused */
    snprintf(cmd2, sizeof cmd2, "%s --resume --temperature 0.5", cmd);
    CHECK(run_cmd(cmd2, log) == 2 && file_has(log, "temperature"), "provenance checked on resume");
    stub_stop(&s);
}

static void test_sample_resume_after_kill(void) {
    if (access(MODEL, R_OK) != 0) SKIP_TEST(MODEL " is missing");
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    s.hold_after = 2; /* answer two questions, then hold every request */
    const char *dir = test_tmpdir();
    char data[512], out[512], log[512];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(out, sizeof out, "%s/r.jsonl", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_data(data, 1);
    char port[16];
    snprintf(port, sizeof port, "%d", s.port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", s.port);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *lf = freopen(log, "w", stderr);
        (void)lf;
        execl(test_pika_bin(), "pika", "sample", "--backend", "openai", "--url", url, "--api-model", "stub-model", "--model",
              MODEL, "--data", data, "-k", "2", "--max-tokens", "4", "--concurrency", "1", "--out", out, (char *)NULL);
        _exit(127);
    }
    REQUIRE(pid > 0, "fork");
    /* wait (bounded) until the third request is held and the first two questions are on disk */
    int ready = 0;
    for (int i = 0; i < 3000 && !ready; i++) {
        pthread_mutex_lock(&s.mu);
        int held = s.n_held;
        pthread_mutex_unlock(&s.mu);
        cJSON *R = read_jsonl(out);
        ready = held >= 1 && cJSON_GetArraySize(R) == 4;
        cJSON_Delete(R);
        if (!ready) usleep(10000);
    }
    kill(pid, SIGKILL);
    int wst;
    waitpid(pid, &wst, 0);
    REQUIRE(ready, "the run did not reach the held request");
    stub_release(&s);
    cJSON *R = read_jsonl(out);
    CHECK(cJSON_GetArraySize(R) == 4, "killed with 2 questions written");
    cJSON_Delete(R);
    s.hold_after = 0;
    stub_reset_log(&s);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s sample --backend openai --url %s --api-model stub-model --model %s --data %s -k 2 --max-tokens 4 "
             "--concurrency 2 --resume --out %s",
             test_pika_bin(), url, MODEL, data, out);
    int st = run_cmd(cmd, log);
    CHECK(st == 0, "resume exited %d", st);
    CHECK(s.n_requests == NQ - 2, "resume asked for the %d missing questions: %d", NQ - 2, s.n_requests);
    R = read_jsonl(out);
    CHECK(cJSON_GetArraySize(R) == 2 * NQ, "complete after resume: %d", cJSON_GetArraySize(R));
    for (int i = 0; i < NQ; i++) {
        char id[16];
        snprintf(id, sizeof id, "q%d", i);
        CHECK(count_key(R, id, 0) == 1 && count_key(R, id, 1) == 1, "%s once each", id);
    }
    cJSON_Delete(R);
    /* without --resume or --force a non-empty output is not touched */
    snprintf(cmd, sizeof cmd, "%s sample --backend openai --url %s --api-model stub-model --model %s --data %s --out %s",
             test_pika_bin(), url, MODEL, data, out);
    CHECK(run_cmd(cmd, log) == 2 && file_has(log, "--resume"), "non-empty output refused");
    stub_stop(&s);
}


/* A server that refuses n > 1 with 400: pika falls back to one request per sample; a server that
 * fails every question stops the run after 20 in a row instead of trying them all. */
static void test_sample_n_refused_and_stop(void) {
    stub s;
    REQUIRE(stub_start(&s) == 0, "stub server");
    s.max_n = 1;
    const char *dir = test_tmpdir();
    char data[512], out[512], log[512], cmd[4096];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(out, sizeof out, "%s/r.jsonl", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_data(data, 0);
    snprintf(cmd, sizeof cmd,
             "%s sample --backend openai --url http://127.0.0.1:%d/v1 --api-model stub-model --api chat --data %s -k 2 "
             "--max-tokens 4 --concurrency 1 --pika-seeds --seed 77 --out %s",
             test_pika_bin(), s.port, data, out);
    int st = run_cmd(cmd, log);
    CHECK(st == 0 && file_has(log, "refused n=2"), "n refused: exit %d, note printed", st);
    int n2 = 0, first1 = 0;
    for (int k = 0; k < s.n_requests && k < MAX_LOG; k++) {
        cJSON *b = cJSON_Parse(s.bodies[k]);
        n2 += cJSON_GetObjectItemCaseSensitive(b, "n")->valueint == 2;
        /* --pika-seeds: the base seed and the sample's (id, first_sample) */
        const cJSON *pk = cJSON_GetObjectItemCaseSensitive(b, "pika");
        CHECK(cJSON_GetObjectItemCaseSensitive(b, "seed")->valuedouble == 77 && cJSON_IsObject(pk) &&
                  cJSON_IsString(cJSON_GetObjectItemCaseSensitive(pk, "id")),
              "pika seeds in request %d", k);
        const cJSON *fs = cJSON_GetObjectItemCaseSensitive(pk, "first_sample");
        first1 += cJSON_IsNumber(fs) && fs->valueint == 1;
        cJSON_Delete(b);
    }
    CHECK(first1 == NQ - 1, "sample 1 of each question asked with first_sample 1: %d", first1);
    char meta[600];
    snprintf(meta, sizeof meta, "%s.meta.json", out);
    CHECK(file_has(meta, "\"seeds\": \"server-pika\"") || file_has(meta, "\"seeds\":\t\"server-pika\""),
          "the seeding is provenance");
    CHECK(n2 >= 1 && s.n_requests == n2 + 2 * (NQ - 1), "%d refused n=2 requests + one per sample: %d", n2, s.n_requests);
    cJSON *R = read_jsonl(out);
    CHECK(cJSON_GetArraySize(R) == 2 * (NQ - 1), "complete: %d rows", cJSON_GetArraySize(R));
    cJSON_Delete(R);
    /* every request fails (an unknown model): 20 questions fail, then the run stops */
    stub_reset_log(&s);
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 40; i++) fprintf(f, "{\"id\": %d, \"problem\": \"%d+1\"}\n", i, i);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "%s sample --backend openai --url http://127.0.0.1:%d/v1 --api-model no-such-model --api chat --data %s -k 1 "
             "--concurrency 1 --force --out %s",
             test_pika_bin(), s.port, data, out);
    st = run_cmd(cmd, log);
    CHECK(st == 2 && file_has(log, "20 questions in a row failed") && file_has(log, "unknown model"), "stopped: %d", st);
    CHECK(s.n_requests >= 20 && s.n_requests < 40, "stopped early: %d requests", s.n_requests);
    stub_stop(&s);
}


/* ---- against the real pika serve-model (when this build has it) ---- */

typedef struct {
    pid_t pid;
    int port;
} real_server;

static int real_start(real_server *s, const char *dir) {
    memset(s, 0, sizeof *s);
    char pf[512], lg[512];
    snprintf(pf, sizeof pf, "%s/port", dir);
    snprintf(lg, sizeof lg, "%s/server.log", dir);
    s->pid = fork();
    if (s->pid == 0) {
        FILE *f = freopen(lg, "w", stderr);
        (void)f;
        execl(test_pika_bin(), "pika", "serve-model", "--model", MODEL, "--host", "127.0.0.1", "--port", "0", "--port-file", pf,
              "--threads", "1", "--parallel", "4", (char *)NULL);
        _exit(127);
    }
    if (s->pid < 0) return -1;
    for (int i = 0; i < 600; i++) { /* bounded: 60 s to load a small model */
        FILE *f = fopen(pf, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok && s->port > 0) return 0;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) { s->pid = 0; return -1; }
        usleep(100000);
    }
    return -1;
}

static void real_stop(real_server *s) {
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    int st;
    for (int i = 0; i < 300; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) { s->pid = 0; return; }
        usleep(100000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
}

static const cJSON *find_row(const cJSON *arr, const char *id, int sample) {
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, "id"), *s = cJSON_GetObjectItemCaseSensitive(o, "sample");
        if (cJSON_IsString(i) && !strcmp(i->valuestring, id) && cJSON_IsNumber(s) && s->valueint == sample) return o;
    }
    return NULL;
}

/* Rows of two rollouts files agree on text and finish (and the token counts named). */
static void compare_rollouts(const char *a, const char *b, int n_rows, int check_tokens_out) {
    cJSON *A = read_jsonl(a), *B = read_jsonl(b);
    CHECK(cJSON_GetArraySize(A) == n_rows && cJSON_GetArraySize(B) == n_rows, "rows %d %d", cJSON_GetArraySize(A),
          cJSON_GetArraySize(B));
    const cJSON *r;
    cJSON_ArrayForEach(r, A) {
        const char *id = cJSON_GetObjectItemCaseSensitive(r, "id")->valuestring;
        int smp = cJSON_GetObjectItemCaseSensitive(r, "sample")->valueint;
        const cJSON *o = find_row(B, id, smp);
        CHECK(o, "%s/%d missing remotely", id, smp);
        if (!o) continue;
        const char *ta = cJSON_GetObjectItemCaseSensitive(r, "text")->valuestring;
        const char *tb = cJSON_GetObjectItemCaseSensitive(o, "text")->valuestring;
        CHECK(!strcmp(ta, tb), "%s/%d text: local '%s' remote '%s'", id, smp, ta, tb);
        CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(r, "finish")->valuestring,
                      cJSON_GetObjectItemCaseSensitive(o, "finish")->valuestring), "%s/%d finish", id, smp);
        CHECK(cJSON_GetObjectItemCaseSensitive(r, "tokens_in")->valueint == cJSON_GetObjectItemCaseSensitive(o, "tokens_in")->valueint,
              "%s/%d tokens_in %d vs %d", id, smp, cJSON_GetObjectItemCaseSensitive(r, "tokens_in")->valueint,
              cJSON_GetObjectItemCaseSensitive(o, "tokens_in")->valueint);
        if (check_tokens_out)
            CHECK(cJSON_GetObjectItemCaseSensitive(r, "tokens_out")->valueint ==
                      cJSON_GetObjectItemCaseSensitive(o, "tokens_out")->valueint,
                  "%s/%d tokens_out", id, smp);
    }
    cJSON_Delete(A);
    cJSON_Delete(B);
}

/* pika sample --backend openai against pika serve-model: a greedy remote sample equals a local greedy
 * sample, and with --pika-seeds a sampled one (temperature 0.8, k = 3) does too. */
static void test_sample_against_serve_model(void) {
    if (access(MODEL, R_OK) != 0) SKIP_TEST(MODEL " is missing");
    char cmd[4096], log[512];
    const char *dir = test_tmpdir();
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(cmd, sizeof cmd, "%s serve-model --help", test_pika_bin());
    if (run_cmd(cmd, log) != 0) SKIP_TEST("this build has no pika serve-model");
    real_server srv;
    REQUIRE(real_start(&srv, dir) == 0, "pika serve-model did not start (see %s/server.log)", dir);
    char data[512], lg[512], rg[512], ls[512], rs[512];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(lg, sizeof lg, "%s/local-greedy.jsonl", dir);
    snprintf(rg, sizeof rg, "%s/remote-greedy.jsonl", dir);
    snprintf(ls, sizeof ls, "%s/local-sampled.jsonl", dir);
    snprintf(rs, sizeof rs, "%s/remote-sampled.jsonl", dir);
    FILE *f = fopen(data, "w");
    const char *qs[] = {"What is 3 + 4?", "What is 12 + 45?", "What is 9 * 7?", "What is 125 + 37?"};
    for (int i = 0; i < 4; i++) fprintf(f, "{\"id\": \"p%d\", \"problem\": \"%s\"}\n", i, qs[i]);
    fclose(f);
    const char *common = "--max-tokens 12 --threads 1";
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --temperature 0 %s --out %s", test_pika_bin(), MODEL, data, common, lg);
    CHECK(run_cmd(cmd, log) == 0, "local greedy");
    snprintf(cmd, sizeof cmd,
             "%s sample --backend openai --url http://127.0.0.1:%d/v1 --api-model pika-math-s --model %s --data %s "
             "--temperature 0 %s --concurrency 4 --out %s",
             test_pika_bin(), srv.port, MODEL, data, common, rg);
    int st = run_cmd(cmd, log);
    char *t = pika_read_file(log, NULL);
    CHECK(st == 0, "remote greedy exited %d: %s", st, t ? t : "");
    free(t);
    compare_rollouts(lg, rg, 4, 1);
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s -k 3 --seed 9 --temperature 0.8 %s --out %s", test_pika_bin(), MODEL,
             data, common, ls);
    CHECK(run_cmd(cmd, log) == 0, "local sampled");
    snprintf(cmd, sizeof cmd,
             "%s sample --backend openai --url http://127.0.0.1:%d/v1 --api-model pika-math-s --model %s --data %s -k 3 "
             "--seed 9 --temperature 0.8 --pika-seeds %s --concurrency 2 --out %s",
             test_pika_bin(), srv.port, MODEL, data, common, rs);
    st = run_cmd(cmd, log);
    t = pika_read_file(log, NULL);
    CHECK(st == 0, "remote sampled exited %d: %s", st, t ? t : "");
    free(t);
    compare_rollouts(ls, rs, 12, 0);
    real_stop(&srv);
}

static void test_sample_bad_input(void) {
    const char *dir = test_tmpdir();
    char data[512], out[512], log[512], cmd[4096];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(out, sizeof out, "%s/r.jsonl", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    write_data(data, 0);
    snprintf(cmd, sizeof cmd, "%s sample --backend openai --data %s --out %s", test_pika_bin(), data, out);
    CHECK(run_cmd(cmd, log) == 2 && file_has(log, "--url"), "no --url");
    snprintf(cmd, sizeof cmd, "%s sample --backend openai --url http://127.0.0.1:1/v1 --data %s --out %s", test_pika_bin(), data, out);
    CHECK(run_cmd(cmd, log) == 2 && file_has(log, "--api-model"), "no --api-model");
    snprintf(cmd, sizeof cmd, "%s sample --backend openai --url ftp://x --api-model m --data %s --out %s", test_pika_bin(), data, out);
    CHECK(run_cmd(cmd, log) == 2 && file_has(log, "http://"), "bad url scheme");
    snprintf(cmd, sizeof cmd, "%s sample --backend openai --url http://127.0.0.1:1/v1 --api-model m --api completions --data %s --out %s",
             test_pika_bin(), data, out);
    CHECK(run_cmd(cmd, log) == 2 && file_has(log, "template"), "completions without a template");
    snprintf(cmd, sizeof cmd, "%s sample --backend nope --data %s --out %s", test_pika_bin(), data, out);
    CHECK(run_cmd(cmd, log) == 2 && file_has(log, "--backend"), "bad backend");
}

int main(void) {
    RUN(test_backoff);
    RUN(test_client_completions);
    RUN(test_client_stream);
    RUN(test_client_threads);
    RUN(test_client_retries);
    RUN(test_client_concurrency);
    RUN(test_client_retry_after);
    RUN(test_sample_format_and_prompts);
    RUN(test_sample_chat_reasoning_retries);
    RUN(test_sample_failing_question);
    RUN(test_sample_resume_after_kill);
    RUN(test_sample_n_refused_and_stop);
    RUN(test_sample_bad_input);
    RUN(test_sample_against_serve_model);
    return test_summary("openai");
}
