/* openai_client.c — OpenAI-compatible HTTP client on libcurl's multi interface: request queue,
 * in-flight bound, retry/backoff, response and SSE parsing (openai_client.h). */
#include "pika/openai_client.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pika/util.h"

#define MAX_BODY ((size_t)256 << 20)

void pika_oai_opts_default(pika_oai_opts *o) {
    memset(o, 0, sizeof *o);
    o->concurrency = 8;
    o->max_retries = 6;
    o->timeout_s = 600;
    o->connect_timeout_s = 10;
    o->backoff_base_s = 0.5;
    o->backoff_max_s = 30;
    o->retry_after_max_s = 300;
    o->jitter_seed = 1;
}

const char *pika_oai_endpoint_path(pika_oai_endpoint ep) {
    return ep == PIKA_OAI_COMPLETIONS ? "completions" : "chat/completions";
}

void pika_oai_result_free(pika_oai_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_choices; i++) {
        free(r->choices[i].text);
        free(r->choices[i].reasoning);
        free(r->choices[i].finish);
    }
    free(r->choices);
    free(r->error);
    free(r->model);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double pika_oai_backoff_s(const pika_oai_opts *o, int retry, double retry_after_s, uint64_t *rng) {
    if (retry_after_s > 0) return retry_after_s < o->retry_after_max_s ? retry_after_s : o->retry_after_max_s;
    double d = o->backoff_base_s * ldexp(1.0, retry < 60 ? retry : 60);
    if (d > o->backoff_max_s) d = o->backoff_max_s;
    double u = (double)(splitmix(rng) >> 11) / 9007199254740992.0; /* [0, 1) */
    return d * (0.5 + 0.5 * u);
}

double pika_oai_parse_retry_after(const char *v) {
    if (!v) return -1;
    while (*v == ' ' || *v == '\t') v++;
    if (!*v) return -1;
    if (isdigit((unsigned char)*v)) {
        char *end;
        double s = strtod(v, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (!*end && isfinite(s) && s >= 0) return s;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1) return -1;
    double d = difftime(t, time(NULL));
    return d > 0 ? d : 0;
}

/* ---- response parsing ---- */

static char *dup_str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(v)) return NULL;
    return pika_utf8_repair(v->valuestring, strlen(v->valuestring), NULL);
}

static int64_t int_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (int64_t)v->valuedouble : -1;
}

static void parse_usage(const cJSON *u, pika_oai_result *res) {
    if (!cJSON_IsObject(u)) return;
    res->prompt_tokens = int_field(u, "prompt_tokens");
    res->completion_tokens = int_field(u, "completion_tokens");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens_details");
    int64_t r = cJSON_IsObject(d) ? int_field(d, "reasoning_tokens") : -1;
    if (r < 0) r = int_field(u, "reasoning_tokens");
    res->reasoning_tokens = r;
}

/* The server's error message: {"error": {"message": ...}} or {"error": "..."} or {"message": ...}. */
static char *error_message(const char *body, size_t len) {
    cJSON *j = cJSON_ParseWithLength(body, len);
    char *msg = NULL;
    if (j) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(e)) msg = pika_strdup(e->valuestring);
        else if (cJSON_IsObject(e)) msg = dup_str_field(e, "message");
        if (!msg) msg = dup_str_field(j, "message");
        if (!msg) msg = dup_str_field(j, "detail");
        cJSON_Delete(j);
    }
    if (!msg && len) { /* first line of a plain-text body */
        size_t n = 0;
        while (n < len && n < 200 && body[n] != '\n' && body[n] != '\r') n++;
        msg = pika_utf8_repair(body, n, NULL);
    }
    if (msg) /* keep it one line */
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    return msg;
}

static int cmp_choice(const void *a, const void *b) {
    const pika_oai_choice *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

int pika_oai_parse_response(const char *body, size_t len, pika_oai_result *res) {
    res->prompt_tokens = res->completion_tokens = res->reasoning_tokens = -1;
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return pika_set_error("the response is not a JSON object");
    }
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (!cJSON_IsArray(ch)) {
        char *m = error_message(body, len);
        pika_set_error("the response has no \"choices\"%s%s", m ? ": " : "", m ? m : "");
        free(m);
        cJSON_Delete(j);
        return -1;
    }
    int n = cJSON_GetArraySize(ch), i = 0;
    res->choices = pika_calloc(n ? (size_t)n : 1, sizeof *res->choices);
    const cJSON *c;
    cJSON_ArrayForEach(c, ch) {
        pika_oai_choice *o = &res->choices[i];
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(c, "index");
        o->index = cJSON_IsNumber(ix) ? ix->valueint : i;
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c, "message");
        if (cJSON_IsObject(msg)) {
            o->text = dup_str_field(msg, "content");
            o->reasoning = dup_str_field(msg, "reasoning_content");
            if (!o->reasoning) o->reasoning = dup_str_field(msg, "reasoning");
        } else {
            o->text = dup_str_field(c, "text");
        }
        if (!o->text) o->text = pika_strdup("");
        o->finish = dup_str_field(c, "finish_reason");
        i++;
    }
    res->n_choices = i;
    qsort(res->choices, (size_t)i, sizeof *res->choices, cmp_choice);
    parse_usage(cJSON_GetObjectItemCaseSensitive(j, "usage"), res);
    res->model = dup_str_field(j, "model");
    cJSON_Delete(j);
    return 0;
}

/* ---- requests ---- */

typedef struct {
    pika_buf text, reasoning;
    int has_reasoning;
    char *finish;
} acc_choice;

typedef struct req {
    struct req *next;
    pika_oai_client *cl;
    pika_oai_endpoint ep;
    char *body;
    size_t body_len;
    uint64_t tag;
    pika_oai_done_fn on_done;
    pika_oai_chunk_fn on_chunk;
    void *user, *chunk_user;
    int stream;
    CURL *easy;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    pika_buf resp;
    double retry_after;
    double not_before, t_start;
    int attempts, cancelled, too_big;
    /* streaming */
    pika_buf line, data;
    int has_data, chunks_out, sse_failed;
    int sse_checked, plain;  /* plain: a streamed request answered with a JSON body */
    char *sse_error;
    acc_choice *acc;
    int n_acc;
    pika_oai_result res;
} req;

struct pika_oai_client {
    pika_oai_opts o;
    char *base;        /* base_url without the trailing '/' */
    char *auth;        /* "Authorization: Bearer KEY" or NULL */
    CURLM *multi;
    req *queue_head, *queue_tail; /* waiting to start (retries carry a not_before) */
    req *active;                  /* in flight (linked through next) */
    int in_flight;
    int64_t pending;
    uint64_t rng;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

pika_oai_client *pika_oai_client_new(const pika_oai_opts *o) {
    if (!o->base_url || !*o->base_url) { pika_set_error("no server URL given"); return NULL; }
    if (strncmp(o->base_url, "http://", 7) && strncmp(o->base_url, "https://", 8)) {
        pika_set_error("the server URL must start with http:// or https://, got '%s'", o->base_url);
        return NULL;
    }
    if (o->concurrency < 1) { pika_set_error("concurrency must be >= 1, got %d", o->concurrency); return NULL; }
    if (o->max_retries < 0) { pika_set_error("retries must be >= 0, got %d", o->max_retries); return NULL; }
    if (!(o->timeout_s > 0)) { pika_set_error("the request timeout must be > 0 seconds"); return NULL; }
    if (o->api_key)
        for (const char *p = o->api_key; *p; p++)
            if (*p == '\r' || *p == '\n') { pika_set_error("the API key contains a line break"); return NULL; }
    pthread_once(&curl_once, curl_init_once);
    pika_oai_client *c = pika_calloc(1, sizeof *c);
    c->o = *o;
    c->o.api_key = NULL;
    size_t n = strlen(o->base_url);
    while (n > 0 && o->base_url[n - 1] == '/') n--;
    c->base = pika_strndup(o->base_url, n);
    if (o->api_key && *o->api_key) {
        size_t kl = strlen(o->api_key);
        c->auth = pika_malloc(kl + 32);
        snprintf(c->auth, kl + 32, "Authorization: Bearer %s", o->api_key);
    }
    c->multi = curl_multi_init();
    c->rng = o->jitter_seed ? o->jitter_seed : 1;
    if (!c->multi) {
        pika_set_error("curl_multi_init failed");
        pika_oai_client_free(c);
        return NULL;
    }
    return c;
}

static void req_reset_attempt(req *r) {
    if (r->easy) {
        curl_multi_remove_handle(r->cl->multi, r->easy);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    free(r->resp.s); memset(&r->resp, 0, sizeof r->resp);
    free(r->line.s); memset(&r->line, 0, sizeof r->line);
    free(r->data.s); memset(&r->data, 0, sizeof r->data);
    r->has_data = r->sse_failed = r->cancelled = r->too_big = r->sse_checked = r->plain = 0;
    free(r->sse_error);
    r->sse_error = NULL;
    for (int i = 0; i < r->n_acc; i++) {
        free(r->acc[i].text.s);
        free(r->acc[i].reasoning.s);
        free(r->acc[i].finish);
    }
    free(r->acc);
    r->acc = NULL;
    r->n_acc = 0;
    r->retry_after = -1;
    r->errbuf[0] = 0;
}

static void req_free(req *r) {
    req_reset_attempt(r);
    pika_oai_result_free(&r->res);
    free(r->body);
    free(r);
}

void pika_oai_client_free(pika_oai_client *c) {
    if (!c) return;
    for (req *r = c->queue_head, *nx; r; r = nx) { nx = r->next; req_free(r); }
    if (c->multi) {
        for (req *r = c->active, *nx; r; r = nx) { nx = r->next; req_free(r); }
        curl_multi_cleanup(c->multi);
    }
    free(c->base);
    if (c->auth) { memset(c->auth, 0, strlen(c->auth)); free(c->auth); }
    free(c);
}

static void queue_push(pika_oai_client *c, req *r) {
    r->next = NULL;
    if (c->queue_tail) c->queue_tail->next = r;
    else c->queue_head = r;
    c->queue_tail = r;
}

int pika_oai_submit(pika_oai_client *c, pika_oai_endpoint ep, const char *body, uint64_t tag, pika_oai_done_fn on_done,
                    pika_oai_chunk_fn on_chunk, void *user) {
    cJSON *j = cJSON_Parse(body);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return pika_set_error("the request body is not a JSON object");
    }
    req *r = pika_calloc(1, sizeof *r);
    r->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream"));
    cJSON_Delete(j);
    r->cl = c;
    r->ep = ep;
    r->body = pika_strdup(body);
    r->body_len = strlen(body);
    r->tag = tag;
    r->on_done = on_done;
    r->on_chunk = on_chunk;
    r->user = user;
    r->chunk_user = user;
    r->retry_after = -1;
    queue_push(c, r);
    c->pending++;
    return 0;
}

int64_t pika_oai_pending(const pika_oai_client *c) { return c->pending; }

static long http_status(req *r) {
    long code = 0;
    if (r->easy) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

/* One SSE event's data (a JSON chunk): accumulate it and hand it to the callback. */
static void sse_event(req *r, const char *d, size_t n) {
    if (n == 6 && !memcmp(d, "[DONE]", 6)) return;
    cJSON *j = cJSON_ParseWithLength(d, n);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        if (!r->sse_error) r->sse_error = pika_strdup("a streamed chunk is not a JSON object");
        return;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (e && !cJSON_IsNull(e) && !r->sse_error) {
        char *m = error_message(d, n);
        r->sse_error = m ? m : pika_strdup("the stream reported an error");
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (cJSON_IsObject(u)) parse_usage(u, &r->res);
    if (!r->res.model) r->res.model = dup_str_field(j, "model");
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
    int handed = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, ch) {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(c, "index");
        int idx = cJSON_IsNumber(ix) && ix->valueint >= 0 && ix->valueint < 65536 ? ix->valueint : 0;
        if (idx >= r->n_acc) {
            r->acc = pika_realloc(r->acc, sizeof *r->acc * (size_t)(idx + 1));
            memset(r->acc + r->n_acc, 0, sizeof *r->acc * (size_t)(idx + 1 - r->n_acc));
            r->n_acc = idx + 1;
        }
        acc_choice *a = &r->acc[idx];
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(c, "delta");
        const cJSON *t = cJSON_IsObject(delta) ? cJSON_GetObjectItemCaseSensitive(delta, "content")
                                               : cJSON_GetObjectItemCaseSensitive(c, "text");
        const cJSON *rs = NULL;
        if (cJSON_IsObject(delta)) {
            rs = cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content");
            if (!cJSON_IsString(rs)) rs = cJSON_GetObjectItemCaseSensitive(delta, "reasoning");
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "finish_reason");
        pika_oai_chunk k = {d, n, idx, cJSON_IsString(t) ? t->valuestring : NULL,
                            cJSON_IsString(rs) ? rs->valuestring : NULL, cJSON_IsString(f) ? f->valuestring : NULL};
        if (k.text) pika_buf_puts(&a->text, k.text);
        if (k.reasoning) { pika_buf_puts(&a->reasoning, k.reasoning); a->has_reasoning = 1; }
        if (k.finish) { free(a->finish); a->finish = pika_strdup(k.finish); }
        if (r->on_chunk && !r->cancelled && r->on_chunk(&k, r->chunk_user)) r->cancelled = 1;
        r->chunks_out++;
        handed = 1;
    }
    if (!handed) {
        pika_oai_chunk k = {d, n, -1, NULL, NULL, NULL};
        if (r->on_chunk && !r->cancelled && r->on_chunk(&k, r->chunk_user)) r->cancelled = 1;
        r->chunks_out++;
    }
    cJSON_Delete(j);
}

static void sse_line(req *r, char *s, size_t n) {
    if (n && s[n - 1] == '\r') n--;
    if (n == 0) { /* end of an event */
        if (r->has_data) sse_event(r, r->data.s ? r->data.s : "", r->data.n);
        r->data.n = 0;
        r->has_data = 0;
        return;
    }
    if (s[0] == ':') return; /* comment / keep-alive */
    if (n >= 5 && !memcmp(s, "data:", 5)) {
        size_t o = 5;
        if (o < n && s[o] == ' ') o++;
        if (r->has_data) pika_buf_addc(&r->data, '\n');
        pika_buf_add(&r->data, s + o, n - o);
        r->has_data = 1;
    }
    /* event:, id:, retry: are not used by OpenAI-style streams */
}

static void sse_feed(req *r, const char *p, size_t n) {
    pika_buf_add(&r->line, p, n);
    size_t start = 0;
    for (size_t i = 0; i < r->line.n; i++)
        if (r->line.s[i] == '\n') {
            sse_line(r, r->line.s + start, i - start);
            start = i + 1;
            if (r->cancelled) break;
        }
    if (start) {
        memmove(r->line.s, r->line.s + start, r->line.n - start);
        r->line.n -= start;
    }
}

static size_t on_write(char *p, size_t sz, size_t nm, void *u) {
    req *r = u;
    size_t n = sz * nm;
    long code = http_status(r);
    if (r->stream && code >= 200 && code < 300 && !r->plain) {
        if (!r->sse_checked) { /* a server that ignores "stream" answers with one JSON body */
            char *ct = NULL;
            curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
            r->plain = ct && !strncasecmp(ct, "application/json", 16);
            r->sse_checked = 1;
        }
    }
    if (r->stream && code >= 200 && code < 300 && !r->plain) {
        sse_feed(r, p, n);
        if (r->cancelled) return 0;
        return n;
    }
    if (r->resp.n + n > MAX_BODY) { r->too_big = 1; return 0; }
    pika_buf_add(&r->resp, p, n);
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *u) {
    req *r = u;
    size_t n = sz * nm;
    if (n > 12 && !strncasecmp(p, "retry-after:", 12)) {
        char v[128];
        size_t l = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
        memcpy(v, p + 12, l);
        v[l] = 0;
        r->retry_after = pika_oai_parse_retry_after(v);
    }
    return n;
}

static int start_attempt(pika_oai_client *c, req *r) {
    CURL *e = curl_easy_init();
    if (!e) return pika_set_error("curl_easy_init failed");
    r->easy = e;
    r->attempts++;
    r->t_start = pika_now();
    size_t ul = strlen(c->base) + 32;
    char *url = pika_malloc(ul);
    snprintf(url, ul, "%s/%s", c->base, pika_oai_endpoint_path(r->ep));
    curl_easy_setopt(e, CURLOPT_URL, url);
    free(url); /* libcurl copies string options */
    r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
    r->hdrs = curl_slist_append(r->hdrs, r->stream ? "Accept: text/event-stream" : "Accept: application/json");
    r->hdrs = curl_slist_append(r->hdrs, "Expect:");
    if (c->auth) r->hdrs = curl_slist_append(r->hdrs, c->auth);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->o.timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)((c->o.connect_timeout_s > 0 ? c->o.connect_timeout_s : 10) * 1000));
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pika");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    /* never follow redirects: the Authorization header must not travel to another host */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        r->easy = NULL;
        return pika_set_error("curl_multi_add_handle failed");
    }
    c->in_flight++;
    r->next = c->active;
    c->active = r;
    return 0;
}

static char *fmt(const char *f, ...) PIKA_PRINTF(1, 2);
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) s = NULL;
    va_end(ap);
    return s ? s : pika_strdup("out of memory");
}

/* Finish the stream's result from the accumulated chunks. */
static void stream_finish(req *r) {
    pika_oai_result *res = &r->res;
    res->n_choices = r->n_acc;
    res->choices = pika_calloc(r->n_acc ? (size_t)r->n_acc : 1, sizeof *res->choices);
    for (int i = 0; i < r->n_acc; i++) {
        acc_choice *a = &r->acc[i];
        res->choices[i].index = i;
        res->choices[i].text = pika_utf8_repair(a->text.s ? a->text.s : "", a->text.n, NULL);
        if (a->has_reasoning) res->choices[i].reasoning = pika_utf8_repair(a->reasoning.s ? a->reasoning.s : "", a->reasoning.n, NULL);
        res->choices[i].finish = a->finish;
        a->finish = NULL;
    }
}

/* An attempt ended: success, a retry, or a final failure. */
static void attempt_done(pika_oai_client *c, req *r, CURLcode cc) {
    long code = http_status(r);
    double now = pika_now();
    pika_oai_result *res = &r->res;
    res->latency_s = now - r->t_start;
    res->status = (int)code;
    res->attempts = r->attempts;
    int retryable = 0;
    char *err = NULL;
    if (r->cancelled) {
        err = pika_strdup("cancelled");
    } else if (r->too_big) {
        err = fmt("the response is larger than %zu MiB", MAX_BODY >> 20);
    } else if (cc != CURLE_OK) {
        err = fmt("%s%s%s", curl_easy_strerror(cc), r->errbuf[0] ? ": " : "", r->errbuf);
        retryable = 1;
    } else if (code < 200 || code >= 300) {
        char *m = error_message(r->resp.s ? r->resp.s : "", r->resp.n);
        err = fmt("HTTP %ld%s%s", code, m ? ": " : "", m ? m : "");
        free(m);
        retryable = code == 429 || code == 408 || code >= 500;
    } else if (r->stream && !r->plain) {
        if (r->line.n) sse_line(r, r->line.s, r->line.n);
        if (r->has_data) sse_line(r, "", 0);
        if (r->sse_error) {
            err = fmt("stream error: %s", r->sse_error);
            retryable = 1;
        } else if (r->n_acc == 0) {
            err = pika_strdup("the stream ended without a choice");
            retryable = 1;
        } else {
            stream_finish(r);
        }
    } else {
        pika_oai_result tmp;
        memset(&tmp, 0, sizeof tmp);
        if (pika_oai_parse_response(r->resp.s ? r->resp.s : "", r->resp.n, &tmp)) {
            err = fmt("bad response: %s", pika_last_error());
            pika_oai_result_free(&tmp);
            retryable = 1; /* a truncated or garbled body, e.g. from a proxy */
        } else {
            tmp.latency_s = res->latency_s;
            tmp.status = res->status;
            tmp.attempts = res->attempts;
            tmp.waited_s = res->waited_s;
            pika_oai_result_free(res);
            *res = tmp;
            res->body = r->resp.s ? r->resp.s : pika_strdup("");
            res->body_len = r->resp.n;
            memset(&r->resp, 0, sizeof r->resp);
        }
    }
    if (r->stream && r->chunks_out > 0) retryable = 0; /* the caller already saw part of an answer */
    curl_multi_remove_handle(c->multi, r->easy);
    c->in_flight--;
    for (req **pp = &c->active; *pp; pp = &(*pp)->next)
        if (*pp == r) { *pp = r->next; break; }
    r->next = NULL;
    if (err && retryable && r->attempts <= c->o.max_retries) {
        double d = pika_oai_backoff_s(&c->o, r->attempts - 1, r->retry_after, &c->rng);
        free(err);
        res->waited_s += d;
        double waited = res->waited_s;
        pika_oai_result_free(res);
        res->waited_s = waited;
        req_reset_attempt(r);
        r->not_before = now + d;
        queue_push(c, r);
        return;
    }
    if (err) {
        free(res->error);
        if (r->attempts > 1) {
            res->error = fmt("%s (after %d attempts)", err, r->attempts);
            free(err);
        } else {
            res->error = err;
        }
        res->ok = 0;
    } else {
        res->ok = 1;
    }
    c->pending--;
    if (r->on_done) r->on_done(r->tag, res, r->user);
    req_free(r);
}

int pika_oai_step(pika_oai_client *c, int timeout_ms) {
    if (c->pending == 0) return 0;
    double now = pika_now(), next = -1;
    /* start what may start, in queue order */
    for (req **pp = &c->queue_head; *pp && c->in_flight < c->o.concurrency;) {
        req *r = *pp;
        if (r->not_before > now) {
            if (next < 0 || r->not_before < next) next = r->not_before;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (c->queue_tail == r) {
            c->queue_tail = NULL;
            for (req *q = c->queue_head; q; q = q->next) c->queue_tail = q;
        }
        if (start_attempt(c, r)) {
            r->res.error = pika_strdup(pika_last_error());
            r->res.ok = 0;
            c->pending--;
            if (r->on_done) r->on_done(r->tag, &r->res, r->user);
            req_free(r);
        }
    }
    for (req *r = c->queue_head; r; r = r->next)
        if (r->not_before > now && (next < 0 || r->not_before < next)) next = r->not_before;
    int wait = timeout_ms;
    if (next >= 0) {
        int until = (int)ceil((next - now) * 1000);
        if (until < 0) until = 0;
        if (until < wait) wait = until;
    }
    if (c->in_flight == 0 && c->queue_head && next < 0) wait = 0;
    int running = 0;
    if (curl_multi_perform(c->multi, &running) != CURLM_OK) return pika_set_error("curl_multi_perform failed");
    if (wait > 0 && curl_multi_poll(c->multi, NULL, 0, wait, NULL) != CURLM_OK) return pika_set_error("curl_multi_poll failed");
    if (curl_multi_perform(c->multi, &running) != CURLM_OK) return pika_set_error("curl_multi_perform failed");
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode cc = m->data.result;
        attempt_done(c, r, cc);
    }
    return 0;
}

int pika_oai_run(pika_oai_client *c) {
    while (c->pending > 0)
        if (pika_oai_step(c, 1000)) return -1;
    return 0;
}

typedef struct {
    pika_oai_result *res;
    int done;
} sync_state;

static void sync_done(uint64_t tag, pika_oai_result *res, void *user) {
    (void)tag;
    sync_state *s = user;
    *s->res = *res;
    memset(res, 0, sizeof *res);
    s->done = 1;
}

int pika_oai_request(const pika_oai_opts *o, pika_oai_endpoint ep, const char *body, pika_oai_chunk_fn on_chunk,
                     void *user, pika_oai_result *res) {
    memset(res, 0, sizeof *res);
    res->prompt_tokens = res->completion_tokens = res->reasoning_tokens = -1;
    pika_oai_opts oo = *o;
    oo.concurrency = 1;
    pika_oai_client *c = pika_oai_client_new(&oo);
    if (!c) { res->error = pika_strdup(pika_last_error()); return -1; }
    sync_state s = {res, 0};
    if (pika_oai_submit(c, ep, body, 0, sync_done, on_chunk, &s)) {
        res->error = pika_strdup(pika_last_error());
        pika_oai_client_free(c);
        return -1;
    }
    c->queue_head->chunk_user = user; /* on_done gets the sync state, on_chunk the caller's pointer */
    int rc = pika_oai_run(c);
    pika_oai_client_free(c);
    if (rc || !s.done) {
        if (!res->error) res->error = pika_strdup(rc ? pika_last_error() : "the request did not finish");
        return pika_set_error("%s", res->error);
    }
    if (!res->ok) return pika_set_error("%s", res->error ? res->error : "request failed");
    return 0;
}
