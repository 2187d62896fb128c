/* server.c — the HTTP front of `pika serve` on pika's HTTP layer (net/http.h: one thread per
 * connection, body limit -> 413, OpenAI-style errors, SSE streams): parse the OpenAI request, route
 * it (reader prefill + probes + decision), forward it to the chosen member with fallback before the
 * first byte, stream the answer back with the decision injected, count metrics, log every request. */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "pika/http.h"
#include "pika/serve.h"
#include "pika/util.h"
#include "serve/upstream.h"

#define N_BUCKETS 12
static const double BUCKET_MS[N_BUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250};
#define MAX_STATUS 12

struct pika_server {
    const pika_serve_config *c;
    pika_reader *reader;
    pika_serve_log *log;
    pika_http_server *http;
    int port;
    int log_prompts;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int in_flight;
    uint64_t next_id;
    pika_breaker br[PIKA_ROUTE_MAX_ARMS];
    pika_budget budget;
    /* metrics */
    int status_codes[MAX_STATUS], n_status;
    int64_t count[PIKA_ROUTE_MAX_ARMS + 1][MAX_STATUS]; /* [member or n_members = none][status] */
    int64_t hist[N_BUCKETS + 1];
    double route_ms_sum;
    int64_t routed;
    int64_t fallbacks;
    double spend[PIKA_ROUTE_MAX_ARMS];
    /* upstream connections are kept and reused across requests (one libcurl share) */
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u) {
    (void)h; (void)a;
    pthread_mutex_lock(&((pika_server *)u)->share_mu[d]);
}
static void share_unlock(CURL *h, curl_lock_data d, void *u) {
    (void)h;
    pthread_mutex_unlock(&((pika_server *)u)->share_mu[d]);
}

typedef struct {
    pika_server *s;
    int refs;
    pika_buf body;
    int too_big;
    int is_chat, is_completion, stream;
    char request_id[40];
    char *model, *policy_name, *p_json, *prompt_hash, *prompt, *decision, *error;
    double lambda;
    int member, attempts, fallbacks, status;
    int64_t tokens_in, tokens_out;
    double t0, route_ms, upstream_ms;
    pika_upstream *up;
    int injected, ended;
    pika_buf tail;     /* stream: bytes to send before pulling more (error chunk) */
    size_t tail_off;
    pika_buf scan;     /* stream: the current partial SSE line (for usage) */
} req;

static double wall_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void req_unref(req *r) {
    if (--r->refs > 0) return;
    free(r->body.s);
    free(r->model); free(r->policy_name); free(r->p_json); free(r->prompt_hash); free(r->prompt);
    free(r->decision); free(r->error); free(r->tail.s); free(r->scan.s);
    pika_upstream_free(r->up);
    free(r);
}

/* ---- responses ---- */
static int send_buf(pika_http_request *con, int status, const char *ctype, const char *txt, size_t n, req *r) {
    if (r && r->request_id[0]) pika_http_add_header(con, "x-pika-request-id", r->request_id);
    int rc = pika_http_respond(con, status, ctype, txt, n);
    if (r) r->status = status;
    return rc;
}

static int send_json(pika_http_request *con, int status, cJSON *j, req *r) {
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    int rc = send_buf(con, status, "application/json", t, strlen(t), r);
    free(t);
    return rc;
}

/* OpenAI-style error objects of the HTTP layer, with pika's codes */
static cJSON *error_obj(int status, const char *msg, const char *param) {
    const char *code = status == 404 ? "model_not_found" : status == 413 ? "request_too_large" : status == 502 ? "upstream_failed"
                       : status == 504 ? "upstream_timeout" : status >= 500 ? "server_error" : "invalid_request";
    if (status == 404 && !param) code = "not_found";
    return pika_http_error_json(status, NULL, param, code, msg);
}

static int send_error(pika_http_request *con, int status, const char *msg, const char *param, req *r) {
    if (r) { free(r->error); r->error = pika_strdup(msg); }
    return send_json(con, status, error_obj(status, msg, param), r);
}

/* ---- metrics ---- */
static int status_slot(pika_server *s, int status) {
    for (int i = 0; i < s->n_status; i++)
        if (s->status_codes[i] == status) return i;
    if (s->n_status < MAX_STATUS) { s->status_codes[s->n_status] = status; return s->n_status++; }
    return MAX_STATUS - 1;
}

static char *metrics_text(pika_server *s) {
    const pika_serve_config *c = s->c;
    pika_buf b = {0};
    char line[512];
    pthread_mutex_lock(&s->mu);
    pika_buf_puts(&b, "# HELP pika_requests_total Requests by chosen member and HTTP status.\n# TYPE pika_requests_total counter\n");
    for (int m = 0; m <= c->n_members; m++)
        for (int k = 0; k < s->n_status; k++) {
            if (!s->count[m][k]) continue;
            snprintf(line, sizeof line, "pika_requests_total{member=\"%s\",status=\"%d\"} %lld\n", m < c->n_members ? c->members[m].name : "none",
                     s->status_codes[k], (long long)s->count[m][k]);
            pika_buf_puts(&b, line);
        }
    pika_buf_puts(&b, "# HELP pika_routing_seconds Routing latency (render + reader prefill + probes + decision).\n"
                      "# TYPE pika_routing_seconds histogram\n");
    int64_t cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += s->hist[i];
        snprintf(line, sizeof line, "pika_routing_seconds_bucket{le=\"%g\"} %lld\n", BUCKET_MS[i] / 1000, (long long)cum);
        pika_buf_puts(&b, line);
    }
    cum += s->hist[N_BUCKETS];
    snprintf(line, sizeof line, "pika_routing_seconds_bucket{le=\"+Inf\"} %lld\npika_routing_seconds_sum %.9f\npika_routing_seconds_count %lld\n",
             (long long)cum, s->route_ms_sum / 1000, (long long)s->routed);
    pika_buf_puts(&b, line);
    snprintf(line, sizeof line, "# TYPE pika_fallbacks_total counter\npika_fallbacks_total %lld\n# TYPE pika_spend_total counter\n",
             (long long)s->fallbacks);
    pika_buf_puts(&b, line);
    for (int m = 0; m < c->n_members; m++) {
        snprintf(line, sizeof line, "pika_spend_total{member=\"%s\"} %.9g\n", c->members[m].name, s->spend[m]);
        pika_buf_puts(&b, line);
    }
    pika_buf_puts(&b, "# TYPE pika_member_healthy gauge\n");
    double now = pika_now();
    for (int m = 0; m < c->n_members; m++) {
        snprintf(line, sizeof line, "pika_member_healthy{member=\"%s\"} %d\n", c->members[m].name, pika_breaker_healthy(&s->br[m], now));
        pika_buf_puts(&b, line);
    }
    snprintf(line, sizeof line, "# TYPE pika_in_flight gauge\npika_in_flight %d\n", s->in_flight);
    pika_buf_puts(&b, line);
    /* the HTTP layer's own counts: every response, including those it sent before routing (413, 404, 405) */
    pika_http_stats hs;
    pika_http_get_stats(s->http, &hs);
    snprintf(line, sizeof line,
             "# TYPE pika_http_responses_total counter\npika_http_responses_total{class=\"2xx\"} %lld\npika_http_responses_total{class=\"4xx\"} %lld\n"
             "pika_http_responses_total{class=\"5xx\"} %lld\npika_http_responses_total{class=\"413\"} %lld\n"
             "# TYPE pika_http_connections gauge\npika_http_connections %d\n",
             (long long)hs.status_2xx, (long long)hs.status_4xx, (long long)hs.status_5xx, (long long)hs.status_413, hs.active_connections);
    pika_buf_puts(&b, line);
    if (c->policy == PIKA_SERVE_BUDGET) {
        snprintf(line, sizeof line,
                 "# TYPE pika_budget_lambda gauge\npika_budget_lambda %.9g\n# TYPE pika_budget_target gauge\npika_budget_target %.9g\n"
                 "# TYPE pika_budget_cost_rolling gauge\npika_budget_cost_rolling %.9g\n# TYPE pika_budget_cost_realised gauge\n"
                 "pika_budget_cost_realised %.9g\n",
                 s->budget.lambda, s->budget.target, pika_budget_mean(&s->budget),
                 s->budget.total_n ? s->budget.total_cost / (double)s->budget.total_n : 0);
        pika_buf_puts(&b, line);
    }
    pthread_mutex_unlock(&s->mu);
    return b.s;
}

/* ---- finishing a request: metrics, breaker-independent accounting, log ---- */
static double member_cost(const pika_serve_member *m, int64_t tin, int64_t tout) {
    return ((double)tin * m->price_in + (double)tout * m->price_out) / 1e6;
}

static void finish(req *r) {
    pika_server *s = r->s;
    const pika_serve_config *c = s->c;
    double cost = r->member >= 0 ? member_cost(&c->members[r->member], r->tokens_in, r->tokens_out) : 0;
    pthread_mutex_lock(&s->mu);
    int slot = status_slot(s, r->status);
    s->count[r->member >= 0 ? r->member : c->n_members][slot]++;
    s->fallbacks += r->fallbacks;
    if (r->member >= 0) s->spend[r->member] += cost;
    if (c->policy == PIKA_SERVE_BUDGET && r->member >= 0 && r->status < 400) pika_budget_observe(&s->budget, cost);
    pthread_mutex_unlock(&s->mu);
    if (s->log) {
        pika_serve_log_row row = {
            .ts = wall_now(), .request_id = r->request_id, .endpoint = r->is_chat ? "chat" : "completions", .model = r->model,
            .policy = r->policy_name, .lambda = r->lambda, .prompt_hash = r->prompt_hash, .prompt = s->log_prompts ? r->prompt : NULL,
            .p_json = r->p_json, .member = r->member >= 0 ? c->members[r->member].name : NULL, .error = r->error,
            .attempts = r->attempts, .fallbacks = r->fallbacks, .status = r->status, .stream = r->stream,
            .tokens_in = r->tokens_in, .tokens_out = r->tokens_out, .cost = cost, .route_ms = r->route_ms, .upstream_ms = r->upstream_ms};
        pika_serve_log_write(s->log, &row);
    }
}

/* usage from an OpenAI body or chunk */
static void take_usage(req *r, const cJSON *j) {
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (!cJSON_IsObject(u)) return;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens"), *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(pt)) r->tokens_in = (int64_t)pt->valuedouble;
    if (cJSON_IsNumber(ct)) r->tokens_out = (int64_t)ct->valuedouble;
}

/* stream: look at each complete "data: {...}" line for usage */
static void scan_stream(req *r, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') { if (r->scan.n < (1u << 20)) pika_buf_addc(&r->scan, p[i]); continue; }
        if (r->scan.n > 6 && !strncmp(r->scan.s, "data:", 5) && strstr(r->scan.s, "\"usage\"")) {
            cJSON *j = cJSON_Parse(r->scan.s + 5);
            if (j) take_usage(r, j);
            cJSON_Delete(j);
        }
        r->scan.n = 0;
        if (r->scan.s) r->scan.s[0] = 0;
    }
}

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* In the JSON object starting at src[o] == '{', the offset just after the '{' of a top-level
 * "pika": {...} member's value, or 0 when there is none (or the text ends first). */
static size_t find_member_pika(const char *src, size_t n, size_t o) {
    int depth = 0;
    for (size_t i = o; i < n; i++) {
        char ch = src[i];
        if (ch == '"') {
            size_t k0 = i + 1, j = k0;
            while (j < n && src[j] != '"') j += src[j] == '\\' ? 2 : 1;
            if (j >= n) return 0;
            if (depth == 1 && j - k0 == 4 && !memcmp(src + k0, "pika", 4)) {
                size_t q = j + 1;
                while (q < n && is_ws(src[q])) q++;
                if (q < n && src[q] == ':') {
                    q++;
                    while (q < n && is_ws(src[q])) q++;
                    if (q < n && src[q] == '{') return q + 1;
                }
            }
            i = j;
        } else if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') { if (--depth == 0) return 0; }
    }
    return 0;
}

/* Copy src[0..n) into out with the decision added to the first JSON object at or after `from`: as
 * `"pika":{...},` right after its '{', or, when the member's object already has a top-level "pika"
 * object (a pika serve-model's {"seed"}), as the first fields of that object — one "pika" key either
 * way, every other byte as the member sent it. 0 when no '{' was found (everything copied). */
static int inject(pika_buf *out, const char *src, size_t n, size_t from, const char *decision) {
    const char *br = from < n ? memchr(src + from, '{', n - from) : NULL;
    if (!br) { pika_buf_add(out, src, n); return 0; }
    size_t o = (size_t)(br - src);
    size_t mp = find_member_pika(src, n, o);
    size_t k = mp ? mp : o + 1;
    pika_buf_add(out, src, k);
    if (mp) pika_buf_add(out, decision + 1, strlen(decision) - 2); /* the fields, without the braces */
    else {
        pika_buf_puts(out, "\"pika\":");
        pika_buf_puts(out, decision);
    }
    size_t q = k;
    while (q < n && is_ws(src[q])) q++;
    if (q < n && src[q] != '}') pika_buf_addc(out, ',');
    pika_buf_add(out, src + k, n - k);
    return 1;
}

/* ---- streaming response: push what the upstream sends, the decision injected into the first event ---- */
static void stream_out(pika_http_request *con, req *r, const char *ctype) {
    pika_upstream *u = r->up;
    pika_http_stream *st = pika_http_respond_stream(con, (int)u->status, ctype);
    if (!st) { r->status = 500; return; }
    int gone = 0;
    for (;;) {
        if (u->off < u->buf.n) {
            r->tail.n = 0;
            const char *src = u->buf.s + u->off;
            size_t n = u->buf.n - u->off;
            if (!r->injected) { /* wait for the whole first event line, then inject the decision */
                const char *d = NULL, *nl = NULL;
                for (;;) {
                    src = u->buf.s + u->off;
                    n = u->buf.n - u->off;
                    d = nl = NULL;
                    for (size_t i = 0; i + 5 <= n && !d; i++)
                        if (!strncmp(src + i, "data:", 5) && (i == 0 || src[i - 1] == '\n')) d = src + i;
                    if (d) nl = memchr(d, '\n', n - (size_t)(d - src));
                    if ((d && nl) || u->done) break;
                    size_t save = u->off;
                    u->off = u->buf.n;
                    pika_upstream_pump(u);
                    u->off = save;
                }
                if (d && nl) inject(&r->tail, src, n, (size_t)(d - src), r->decision);
                else pika_buf_add(&r->tail, src, n);
                r->injected = 1;
            } else pika_buf_add(&r->tail, src, n);
            scan_stream(r, src, n);
            u->off = u->buf.n;
            if (pika_http_stream_write(st, r->tail.s, r->tail.n)) { gone = 1; break; }
            continue;
        }
        if (u->done) break;
        pika_upstream_pump(u);
    }
    r->upstream_ms = (pika_now() - u->t_start) * 1000;
    r->ended = 1;
    if (gone) {
        free(r->error);
        r->error = pika_strdup("client disconnected");
        r->status = 499;
    } else if (u->failed) {
        /* after the first byte: end the stream with an OpenAI error chunk */
        char msg[512];
        snprintf(msg, sizeof msg, "member %s failed mid-stream: %s", r->s->c->members[r->member].name, u->error ? u->error : "?");
        cJSON *e = pika_http_error_json(502, NULL, NULL, "upstream_failed", msg);
        char *t = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        pika_http_stream_sse(st, t);
        pika_http_stream_sse(st, "[DONE]");
        free(t);
        free(r->error);
        r->error = pika_strdup(msg);
        r->status = 502;
        pthread_mutex_lock(&r->s->mu);
        pika_breaker_record(&r->s->br[r->member], 0, pika_now(), r->s->c->breaker_failures, r->s->c->breaker_cooldown_s);
        pthread_mutex_unlock(&r->s->mu);
    }
    pika_http_stream_close(st);
}

/* ---- routing + forwarding ---- */
static void add_p_header(pika_http_request *resp, req *r, const double *p, int have_p) {
    const pika_serve_config *c = r->s->c;
    pika_http_add_header(resp, "x-pika-member", c->members[r->member].name);
    pika_http_add_header(resp, "x-pika-request-id", r->request_id);
    if (have_p) {
        pika_buf b = {0};
        char x[64];
        for (int a = 0; a < c->n_members; a++) {
            snprintf(x, sizeof x, "%s%s=%.6f", a ? "," : "", c->members[a].name, p[a]);
            pika_buf_puts(&b, x);
        }
        pika_http_add_header(resp, "x-pika-p", b.s);
        free(b.s);
    }
    char at[16];
    snprintf(at, sizeof at, "%d", r->attempts);
    pika_http_add_header(resp, "x-pika-attempts", at);
}

static char *decision_json(req *r, const double *p, int have_p) {
    const pika_serve_config *c = r->s->c;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "member", r->member >= 0 ? c->members[r->member].name : "");
    cJSON_AddStringToObject(j, "policy", r->policy_name);
    if (r->lambda == r->lambda) cJSON_AddNumberToObject(j, "lambda", r->lambda);
    if (have_p) {
        cJSON *pj = cJSON_AddObjectToObject(j, "p");
        for (int a = 0; a < c->n_members; a++) cJSON_AddNumberToObject(pj, c->members[a].name, p[a]);
    }
    cJSON_AddNumberToObject(j, "attempts", r->attempts);
    cJSON_AddNumberToObject(j, "route_ms", r->route_ms);
    cJSON_AddStringToObject(j, "request_id", r->request_id);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

static int handle_completion(pika_http_request *con, req *r) {
    pika_server *s = r->s;
    r->is_completion = 1;
    const pika_serve_config *c = s->c;
    if (r->too_big) {
        char m[128];
        snprintf(m, sizeof m, "request body exceeds %lld bytes", (long long)c->max_body);
        return send_error(con, 413, m, NULL, r);
    }
    cJSON *j = r->body.s ? cJSON_ParseWithLength(r->body.s, r->body.n) : NULL;
    if (!j || !cJSON_IsObject(j)) { cJSON_Delete(j); return send_error(con, 400, "the body is not a JSON object", NULL, r); }
    int rc;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!cJSON_IsString(model)) { rc = send_error(con, 400, "'model' is required (pika-route, pika-route:lambda=X, pika-route:cascade or a member name)", "model", r); goto out; }
    r->model = pika_strdup(model->valuestring);
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages"), *prompt = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    if (r->is_chat && (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)) { rc = send_error(con, 400, "'messages' must be a non-empty array", "messages", r); goto out; }
    if (!r->is_chat && !cJSON_IsString(prompt)) { rc = send_error(con, 400, "'prompt' must be a string", "prompt", r); goto out; }
    if (r->is_chat) {
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs) {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role"), *ct = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (!cJSON_IsString(role) || !cJSON_IsString(ct)) { rc = send_error(con, 400, "every message needs a string 'role' and 'content'", "messages", r); goto out; }
        }
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "stream");
    if (st && !cJSON_IsBool(st)) { rc = send_error(con, 400, "'stream' must be a boolean", "stream", r); goto out; }
    r->stream = cJSON_IsTrue(st);
    /* model name -> policy or bypass */
    pika_decide_opts dop = {c->policy == PIKA_SERVE_CASCADE ? PIKA_SERVE_CASCADE : PIKA_SERVE_UTILITY, c->lambda, c->threshold, NAN, NULL};
    int bypass = -1;
    const char *mn = r->model;
    if (!strncmp(mn, "pika-route", 10) && (mn[10] == 0 || mn[10] == ':')) {
        const char *opt = mn[10] ? mn + 11 : "";
        char *end;
        if (!*opt) {}
        else if (!strcmp(opt, "cascade")) dop.policy = PIKA_SERVE_CASCADE;
        else if (!strcmp(opt, "utility")) dop.policy = PIKA_SERVE_UTILITY;
        else if (!strncmp(opt, "lambda=", 7) && (dop.lambda = strtod(opt + 7, &end), end != opt + 7 && !*end && dop.lambda >= 0 && isfinite(dop.lambda)))
            dop.policy = PIKA_SERVE_UTILITY;
        else if (!strncmp(opt, "threshold=", 10) && (dop.threshold = strtod(opt + 10, &end), end != opt + 10 && !*end && isfinite(dop.threshold)))
            dop.policy = PIKA_SERVE_CASCADE;
        else if (!strncmp(opt, "budget=", 7) && (dop.max_cost = strtod(opt + 7, &end), end != opt + 7 && !*end && dop.max_cost >= 0)) {}
        else {
            rc = send_error(con, 404, "unknown route model (pika-route, pika-route:lambda=X, pika-route:utility, pika-route:cascade, "
                                      "pika-route:threshold=T, pika-route:budget=C)", "model", r);
            goto out;
        }
        if (c->policy == PIKA_SERVE_BUDGET && (!*opt || !strncmp(opt, "budget=", 7))) {
            pthread_mutex_lock(&s->mu);
            dop.lambda = s->budget.lambda;
            pthread_mutex_unlock(&s->mu);
        }
    } else if ((bypass = pika_serve_member_index(c, mn)) < 0) {
        char m[300];
        snprintf(m, sizeof m, "the model '%.200s' does not exist (GET /v1/models lists the route names and members)", mn);
        rc = send_error(con, 404, m, "model", r);
        goto out;
    }
    /* the "pika" override object */
    const cJSON *po = cJSON_GetObjectItemCaseSensitive(j, "pika");
    if (po) {
        if (!cJSON_IsObject(po)) { rc = send_error(con, 400, "'pika' must be an object", "pika", r); goto out; }
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(po, "lambda"))) {
            if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0) || !isfinite(x->valuedouble)) { rc = send_error(con, 400, "pika.lambda must be a number >= 0", "pika.lambda", r); goto out; }
            dop.lambda = x->valuedouble;
            dop.policy = PIKA_SERVE_UTILITY;
        }
        if ((x = cJSON_GetObjectItemCaseSensitive(po, "budget"))) {
            if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0)) { rc = send_error(con, 400, "pika.budget must be a number >= 0 (max mean cost of a member)", "pika.budget", r); goto out; }
            dop.max_cost = x->valuedouble;
        }
        if ((x = cJSON_GetObjectItemCaseSensitive(po, "threshold"))) {
            if (!cJSON_IsNumber(x)) { rc = send_error(con, 400, "pika.threshold must be a number", "pika.threshold", r); goto out; }
            dop.threshold = x->valuedouble;
        }
        if ((x = cJSON_GetObjectItemCaseSensitive(po, "policy"))) {
            if (cJSON_IsString(x) && !strcmp(x->valuestring, "cascade")) dop.policy = PIKA_SERVE_CASCADE;
            else if (cJSON_IsString(x) && !strcmp(x->valuestring, "utility")) dop.policy = PIKA_SERVE_UTILITY;
            else { rc = send_error(con, 400, "pika.policy must be \"utility\" or \"cascade\"", "pika.policy", r); goto out; }
        }
    }
    /* prompt identity */
    char *ptxt = r->is_chat ? cJSON_PrintUnformatted(msgs) : pika_strdup(prompt->valuestring);
    char fp[17];
    pika_fingerprint(ptxt, fp);
    r->prompt_hash = pika_strdup(fp);
    r->prompt = ptxt;
    /* route */
    double p[PIKA_ROUTE_MAX_ARMS] = {0};
    int order[PIKA_ROUTE_MAX_ARMS], n_order = 0, have_p = 0;
    double tr = pika_now();
    if (bypass >= 0) {
        order[n_order++] = bypass;
        r->policy_name = pika_strdup("bypass");
        r->lambda = NAN;
    } else {
        if (s->reader) {
            int rc2 = r->is_chat ? pika_reader_score_messages(s->reader, msgs, p, NULL) : pika_reader_score_text(s->reader, prompt->valuestring, p, NULL);
            if (rc2) {
                char m[600];
                snprintf(m, sizeof m, "cannot route this prompt: %.500s", pika_last_error());
                rc = send_error(con, 400, m, r->is_chat ? "messages" : "prompt", r);
                goto out;
            }
            have_p = 1;
        }
        int healthy[PIKA_ROUTE_MAX_ARMS];
        double now = pika_now();
        pthread_mutex_lock(&s->mu);
        for (int a = 0; a < c->n_members; a++) healthy[a] = pika_breaker_healthy(&s->br[a], now);
        pthread_mutex_unlock(&s->mu);
        dop.healthy = healthy;
        n_order = pika_serve_decide(c, p, &dop, order);
        r->policy_name = pika_strdup(dop.policy == PIKA_SERVE_CASCADE ? "cascade" : c->policy == PIKA_SERVE_BUDGET ? "budget" : "utility");
        r->lambda = dop.policy == PIKA_SERVE_CASCADE ? NAN : dop.lambda;
    }
    r->route_ms = (pika_now() - tr) * 1000;
    if (bypass < 0) {
        pthread_mutex_lock(&s->mu);
        int b = 0;
        while (b < N_BUCKETS && r->route_ms > BUCKET_MS[b]) b++;
        s->hist[b]++;
        s->route_ms_sum += r->route_ms;
        s->routed++;
        pthread_mutex_unlock(&s->mu);
    }
    if (have_p) {
        cJSON *pj = cJSON_CreateObject();
        for (int a = 0; a < c->n_members; a++) cJSON_AddNumberToObject(pj, c->members[a].name, p[a]);
        r->p_json = cJSON_PrintUnformatted(pj);
        cJSON_Delete(pj);
    }
    /* the upstream body: the request with the member's model name, without the router's own keys of
     * "pika" (other keys, e.g. a pika serve-model member's {"id", "hidden_layers"}, are passed on) */
    cJSON *pko = cJSON_GetObjectItemCaseSensitive(j, "pika");
    if (pko) {
        const char *mine[] = {"lambda", "budget", "threshold", "policy"};
        for (int k = 0; k < 4; k++) cJSON_DeleteItemFromObjectCaseSensitive(pko, mine[k]);
        if (!pko->child) cJSON_DeleteItemFromObjectCaseSensitive(j, "pika");
    }
    /* forward, falling back before the first byte */
    char last_err[512] = "no member available";
    int last_status = 502;
    for (int k = 0; k < n_order && r->attempts < c->max_attempts; k++) {
        int a = order[k];
        const pika_serve_member *mb = &c->members[a];
        double now = pika_now();
        pthread_mutex_lock(&s->mu);
        int allow = pika_breaker_allow(&s->br[a], now) || bypass >= 0;
        pthread_mutex_unlock(&s->mu);
        if (!allow) continue;
        if (r->attempts > 0) r->fallbacks++;
        r->attempts++;
        cJSON_ReplaceItemInObjectCaseSensitive(j, "model", cJSON_CreateString(mb->api_model));
        char *ub = cJSON_PrintUnformatted(j);
        char url[1024];
        size_t ul = strlen(mb->url);
        while (ul > 0 && mb->url[ul - 1] == '/') ul--;
        snprintf(url, sizeof url, "%.*s/%s", (int)ul, mb->url, r->is_chat ? "chat/completions" : "completions");
        const char *key = mb->api_key_env ? getenv(mb->api_key_env) : NULL;
        pika_upstream *u = pika_upstream_start(url, ub, strlen(ub), key, mb->connect_timeout_s, mb->timeout_s, s->share);
        free(ub);
        int bad;
        if (r->stream) {
            /* wait for the status and first bytes */
            while (!u->done && u->buf.n == 0) pika_upstream_pump(u);
            /* bytes arrived: committed to this member (a later failure ends the stream with an error chunk) */
            bad = u->status >= 500 || (u->buf.n == 0 && (u->failed || u->status == 0));
        } else {
            pika_upstream_finish(u);
            bad = u->failed || u->status >= 500 || u->status == 0;
        }
        pthread_mutex_lock(&s->mu);
        pika_breaker_record(&s->br[a], !bad, pika_now(), c->breaker_failures, c->breaker_cooldown_s);
        pthread_mutex_unlock(&s->mu);
        if (bad) {
            if (u->failed) snprintf(last_err, sizeof last_err, "member %s: %s", mb->name, u->error ? u->error : "failed");
            else snprintf(last_err, sizeof last_err, "member %s answered HTTP %ld", mb->name, u->status);
            last_status = u->timed_out ? 504 : 502;
            pika_upstream_free(u);
            continue;
        }
        r->member = a;
        r->up = u;
        r->status = (int)u->status;
        r->decision = decision_json(r, p, have_p);
        const char *ctype = u->content_type ? u->content_type : r->stream ? "text/event-stream" : "application/json";
        if (!r->stream) {
            r->upstream_ms = (pika_now() - u->t_start) * 1000;
            cJSON *bj = cJSON_ParseWithLength(u->buf.s ? u->buf.s : "", u->buf.n);
            if (bj) take_usage(r, bj);
            cJSON_Delete(bj);
            pika_buf out = {0};
            if (u->status < 300) inject(&out, u->buf.s ? u->buf.s : "", u->buf.n, 0, r->decision);
            else pika_buf_add(&out, u->buf.s ? u->buf.s : "", u->buf.n);
            add_p_header(con, r, p, have_p);
            rc = pika_http_respond(con, (int)u->status, ctype, out.s ? out.s : "", out.n);
            free(out.s);
        } else {
            add_p_header(con, r, p, have_p);
            if (u->status >= 300) r->injected = 1; /* an upstream 4xx passes through untouched */
            stream_out(con, r, ctype);
            rc = 0;
        }
        goto out;
    }
    if (r->attempts == 0) snprintf(last_err, sizeof last_err, "every member's circuit breaker is open");
    {
        char m[700];
        snprintf(m, sizeof m, "no member could answer after %d attempt(s); last: %s", r->attempts, last_err);
        free(r->error);
        r->error = pika_strdup(m);
        cJSON *e = error_obj(last_status, m, NULL);
        r->decision = decision_json(r, p, have_p);
        cJSON_AddItemToObject(e, "pika", cJSON_Parse(r->decision));
        rc = send_json(con, last_status, e, r);
    }
out:
    cJSON_Delete(j);
    return rc;
}

static int handle_get(pika_http_request *con, const char *url, req *r) {
    pika_server *s = r->s;
    const pika_serve_config *c = s->c;
    if (!strcmp(url, "/health")) {
        cJSON *j = cJSON_CreateObject();
        cJSON *rd = cJSON_AddObjectToObject(j, "reader");
        cJSON_AddBoolToObject(rd, "loaded", s->reader != NULL);
        if (c->reader_model) cJSON_AddStringToObject(rd, "model", c->reader_model);
        if (c->reader_url) cJSON_AddStringToObject(rd, "url", c->reader_url);
        if (s->reader) {
            cJSON_AddStringToObject(rd, "fingerprint", pika_reader_fingerprint(s->reader));
            cJSON_AddNumberToObject(rd, "depth", pika_reader_depth(s->reader));
        }
        cJSON *ms = cJSON_AddArrayToObject(j, "members");
        int any = 0;
        double now = pika_now();
        pthread_mutex_lock(&s->mu);
        for (int a = 0; a < c->n_members; a++) {
            cJSON *x = cJSON_CreateObject();
            int h = pika_breaker_healthy(&s->br[a], now);
            any |= h;
            cJSON_AddStringToObject(x, "name", c->members[a].name);
            cJSON_AddBoolToObject(x, "healthy", h);
            cJSON_AddNumberToObject(x, "consecutive_failures", s->br[a].failures);
            cJSON_AddItemToArray(ms, x);
        }
        pthread_mutex_unlock(&s->mu);
        cJSON_AddStringToObject(j, "status", any ? "ok" : "degraded");
        return send_json(con, any ? 200 : 503, j, r);
    }
    if (!strcmp(url, "/v1/models")) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "object", "list");
        cJSON *d = cJSON_AddArrayToObject(j, "data");
        const char *routes[] = {"pika-route", "pika-route:utility", "pika-route:cascade", "pika-route:lambda=X", "pika-route:threshold=T",
                                "pika-route:budget=C"};
        const int nr = 6;
        for (int k = 0; k < nr + c->n_members; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "id", k < nr ? routes[k] : c->members[k - nr].name);
            cJSON_AddStringToObject(x, "object", "model");
            cJSON_AddNumberToObject(x, "created", 0);
            cJSON_AddStringToObject(x, "owned_by", k < nr ? "pika" : "pika-member");
            cJSON_AddItemToArray(d, x);
        }
        return send_json(con, 200, j, r);
    }
    if (!strcmp(url, "/metrics")) {
        char *t = metrics_text(s);
        int rc = send_buf(con, 200, "text/plain; version=0.0.4", t, strlen(t), r);
        free(t);
        return rc;
    }
    return send_error(con, 404, "no such endpoint (POST /v1/chat/completions, /v1/completions; GET /v1/models, /health, /metrics)", NULL, r);
}

/* Every request: its state, the in-flight count (the drain waits for it), then metrics and the log. */
enum { EP_CHAT, EP_TEXT, EP_GET };
static void serve_request(pika_http_request *con, pika_server *s, int ep) {
    req *r = pika_calloc(1, sizeof *r);
    r->s = s;
    r->refs = 1;
    r->member = -1;
    r->lambda = NAN;
    r->t0 = pika_now();
    snprintf(r->request_id, sizeof r->request_id, "%s", pika_http_request_id(con));
    pthread_mutex_lock(&s->mu);
    s->in_flight++;
    pthread_mutex_unlock(&s->mu);
    if (ep == EP_GET) handle_get(con, pika_http_path(con), r);
    else {
        size_t n = 0;
        const char *b = pika_http_body(con, &n);
        pika_buf_add(&r->body, b ? b : "", n);
        r->is_chat = ep == EP_CHAT;
        handle_completion(con, r);
    }
    if (r->status == 0) r->status = 500;
    if (r->is_completion) finish(r);
    req_unref(r);
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}
static void on_chat(pika_http_request *con, void *s) { serve_request(con, s, EP_CHAT); }
static void on_text(pika_http_request *con, void *s) { serve_request(con, s, EP_TEXT); }
static void on_get(pika_http_request *con, void *s) { serve_request(con, s, EP_GET); }

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

pika_server *pika_server_start(const pika_serve_config *c, const pika_server_opts *o) {
    pthread_once(&curl_once, curl_init);
    pika_server *s = pika_calloc(1, sizeof *s);
    s->c = c;
    s->log_prompts = o->log_prompts;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&s->share_mu[i], NULL);
    s->share = curl_share_init();
    curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    if (c->policy == PIKA_SERVE_BUDGET)
        pika_budget_init(&s->budget, c->cost_per_query, c->lambda, c->budget_window, c->budget_gain, c->lambda_max);
    int any_probe = 0;
    for (int a = 0; a < c->n_members; a++) any_probe |= c->members[a].probe != NULL;
    if (any_probe && !(s->reader = pika_reader_new(c))) goto fail;
    if (c->log_path && !(s->log = pika_serve_log_open(c->log_path))) goto fail;
    pika_http_opts ho;
    pika_http_opts_default(&ho);
    ho.host = o->host && *o->host ? o->host : "127.0.0.1";
    ho.port = o->port;
    ho.max_body = (size_t)c->max_body;
    ho.max_connections = 1024;
    ho.server_name = "pika-serve";
    ho.log = o->access_log;
    s->http = pika_http_new(&ho);
    const char *post[] = {"/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions"};
    for (int k = 0; k < 4; k++) pika_http_route(s->http, "POST", post[k], k < 2 ? on_chat : on_text, s);
    const char *get[] = {"/health", "/v1/models", "/metrics"};
    for (int k = 0; k < 3; k++) pika_http_route(s->http, "GET", get[k], on_get, s);
    if (pika_http_start(s->http)) goto fail;
    s->port = pika_http_port(s->http);
    return s;
fail:
    pika_http_free(s->http);
    curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&s->share_mu[i]);
    pika_reader_free(s->reader);
    pika_serve_log_close(s->log);
    if (c->policy == PIKA_SERVE_BUDGET) pika_budget_free(&s->budget);
    free(s);
    return NULL;
}

int pika_server_port(const pika_server *s) { return s->port; }

int pika_server_in_flight(pika_server *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void pika_server_stop(pika_server *s, double drain_s) {
    if (!s) return;
    pika_http_quiesce(s->http); /* stop accepting */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    double t = (double)dl.tv_sec + dl.tv_nsec / 1e9 + drain_s;
    dl.tv_sec = (time_t)t;
    dl.tv_nsec = (long)((t - (double)dl.tv_sec) * 1e9);
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0)
        if (pthread_cond_timedwait(&s->idle, &s->mu, &dl)) break;
    pthread_mutex_unlock(&s->mu);
    /* the handlers are done; wait until their responses are all sent (bounded by the same deadline) */
    for (;;) {
        pika_http_stats hs;
        pika_http_get_stats(s->http, &hs);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (hs.requests_open <= 0 || (double)now.tv_sec + now.tv_nsec / 1e9 > t) break;
        usleep(2000);
    }
    pika_http_free(s->http);
    curl_share_cleanup(s->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&s->share_mu[i]);
    pika_serve_log_close(s->log);
    pika_reader_free(s->reader);
    if (s->c->policy == PIKA_SERVE_BUDGET) pika_budget_free(&s->budget);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}
