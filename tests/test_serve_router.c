/* test_serve_router.c — `pika serve`: config, decision (= the offline policies), breaker, budget,
 * decision log, the reader (prefill + probes = the manual path), and the server end to end on
 * loopback: against three stub members (pika_stub: routed and bypassed chat/text completions byte
 * for byte, the decision = pika route's, streaming chunk by chunk, mid-stream failure, bad requests,
 * fallbacks when a member dies or answers 5xx, breaker, API keys, /health /v1/models /metrics, the
 * log, budget mode), against three real `pika serve-model` members (the pool models: routed answers
 * byte for byte, streaming, a member SIGKILLed), and the CLI's SIGTERM drain. Every server binds
 * 127.0.0.1 on a port chosen free at run time and is stopped at the end. */
#include <curl/curl.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pika/model.h"
#include "pika/probe.h"
#include "pika/prompt.h"
#include "pika/serve.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"
#include "synth_probe.h"

#define READER "models/pool/pika-math-m.gguf"

/* ---------------------------------------------------------------- HTTP client (libcurl) */
typedef struct {
    long status;
    pika_buf body;
    char member[64], p[512], attempts[16];
} http_res;

static size_t on_body(char *p, size_t sz, size_t n, void *cls) {
    pika_buf_add(&((http_res *)cls)->body, p, sz * n);
    return sz * n;
}

static void take_header(char *dst, size_t cap, const char *p, size_t len, const char *name) {
    size_t k = strlen(name);
    if (len <= k || strncasecmp(p, name, k)) return;
    size_t a = k, e = len;
    while (a < e && p[a] == ' ') a++;
    while (e > a && (p[e - 1] == '\r' || p[e - 1] == '\n')) e--;
    snprintf(dst, cap, "%.*s", (int)(e - a), p + a);
}

static size_t on_header(char *p, size_t sz, size_t n, void *cls) {
    http_res *r = cls;
    take_header(r->member, sizeof r->member, p, sz * n, "x-pika-member:");
    take_header(r->p, sizeof r->p, p, sz * n, "x-pika-p:");
    take_header(r->attempts, sizeof r->attempts, p, sz * n, "x-pika-attempts:");
    return sz * n;
}

static void http(int port, const char *method, const char *path, const char *body, http_res *r) {
    memset(r, 0, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    }
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    else r->status = -1;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body.s) pika_buf_puts(&r->body, "");
}

/* Remove the first `"pika":{...}` member (and its comma) that the router injected: what is left must
 * be the member's bytes. Returns a malloc'ed copy; *found = 1 when one was removed. */
static char *strip_pika(const char *s, int *found) {
    const char *k = strstr(s, "\"pika\":{");
    *found = k != NULL;
    if (!k) return pika_strdup(s);
    const char *q = k + 7;
    int depth = 0, in_str = 0;
    for (; *q; q++) {
        if (in_str) { if (*q == '\\') q++; else if (*q == '"') in_str = 0; continue; }
        if (*q == '"') in_str = 1;
        else if (*q == '{') depth++;
        else if (*q == '}' && --depth == 0) { q++; break; }
    }
    if (*q == ',') q++;
    pika_buf b = {0};
    pika_buf_add(&b, s, (size_t)(k - s));
    pika_buf_puts(&b, q);
    return b.s;
}

/* ---------------------------------------------------------------- probes for the pool reader */
static char *recipe_json_of(const char *model) {
    pika_model *m = pika_model_load(model);
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_prompt_opts o;
    pika_prompt_opts_default(&o);
    pika_prompt_recipe *r = pika_prompt_recipe_new(pika_model_gguf(m), tok, &o);
    pika_prompt p;
    pika_prompt_build(r, "1+1", &p);
    cJSON *pj = pika_prompt_recipe_provenance(r);
    cJSON_AddNumberToObject(pj, "n_eoi", p.n_eoi);
    char *s = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);
    pika_prompt_free(&p);
    pika_prompt_recipe_free(r);
    pika_tokenizer_free(tok);
    pika_model_free(m);
    return s;
}

/* A probe on (layer, position) of the reader with made-up weights (the serving path is under test). */
static void write_probe(const char *path, const char *fingerprint, const char *recipe, int layer, int position, int d,
                        uint64_t seed, double bias) {
    char mj[256];
    snprintf(mj, sizeof mj, "{\"file\":\"pika-math-m.gguf\",\"fingerprint\":\"%s\"}", fingerprint);
    if (synth_probe_write(path, mj, recipe, layer, position, d, seed, bias)) fprintf(stderr, "probe save: %s\n", pika_last_error());
}

static char g_dir[256];
static char g_probe[3][512];
static const char *NAMES[3] = {"s", "m", "l"};

static int make_probes(void) {
    if (g_dir[0]) return 0;
    pika_model *m = pika_model_load(READER);
    if (!m) return -1;
    char fp[17];
    snprintf(fp, sizeof fp, "%s", pika_model_fingerprint(m));
    int d = pika_model_hparams(m)->n_embd;
    pika_model_free(m);
    char *rj = recipe_json_of(READER);
    snprintf(g_dir, sizeof g_dir, "%s", test_tmpdir());
    int layers[3] = {1, 2, 3}, pos[3] = {-1, -2, -1};
    double bias[3] = {-0.6, 0.0, 0.6};
    for (int i = 0; i < 3; i++) {
        snprintf(g_probe[i], sizeof g_probe[i], "%s/%s.json", g_dir, NAMES[i]);
        write_probe(g_probe[i], fp, rj, layers[i], pos[i], d, 11 + (uint64_t)i, bias[i]);
    }
    free(rj);
    return 0;
}

/* ---------------------------------------------------------------- unit tests */
static void test_config(void) {
    pika_serve_config c;
    const char *ok = "{\"reader\":{\"model\":\"r.gguf\",\"template\":\"chatml\"},\"policy\":{\"kind\":\"utility\",\"lambda\":0.3},"
                     "\"members\":[{\"name\":\"s\",\"url\":\"http://127.0.0.1:1/v1\",\"price_in\":1,\"price_out\":1},"
                     "{\"name\":\"m\",\"url\":\"http://127.0.0.1:2/v1\",\"api_model\":\"pika-math-m\",\"price_in\":2,\"price_out\":4},"
                     "{\"name\":\"l\",\"url\":\"http://127.0.0.1:3/v1\",\"price_in\":5,\"price_out\":5,\"api_key_env\":\"L_KEY\"}],"
                     "\"max_attempts\":2,\"log\":\"x.db\"}";
    REQUIRE(pika_serve_config_parse(ok, &c) == 0, "%s", pika_last_error());
    CHECK(c.n_members == 3 && c.policy == PIKA_SERVE_UTILITY && fabs(c.lambda - 0.3) < 1e-15, "policy");
    CHECK(!strcmp(c.members[0].api_model, "s") && !strcmp(c.members[1].api_model, "pika-math-m"), "api_model default");
    CHECK(c.ct[0] == 0 && c.ct[2] == 1 && fabs(c.ct[1] - 0.5) < 1e-12, "c̃ = min-max of price sums: %g %g %g", c.ct[0], c.ct[1], c.ct[2]);
    CHECK(c.max_attempts == 2 && !strcmp(c.log_path, "x.db") && !strcmp(c.template_name, "chatml"), "serving fields");
    CHECK(c.cascade_order[0] == 0 && c.cascade_order[2] == 2, "cascade order by c̃");
    CHECK(!strcmp(c.members[2].api_key_env, "L_KEY"), "key env name");
    pika_serve_config_free(&c);
    const char *bad[] = {
        "[]", "{\"members\":[]}", "{\"members\":[{\"name\":\"s\"}]}", "{\"members\":[{\"url\":\"http://x\"}]}",
        "{\"members\":[{\"name\":\"pika-route\",\"url\":\"http://x\"}]}",
        "{\"members\":[{\"name\":\"s\",\"url\":\"http://x\"},{\"name\":\"s\",\"url\":\"http://y\"}]}",
        "{\"members\":[{\"name\":\"s\",\"url\":\"http://x\"}],\"policy\":{\"kind\":\"magic\"}}",
        "{\"members\":[{\"name\":\"s\",\"url\":\"http://x\"}],\"policy\":{\"kind\":\"budget\"}}",
        "{\"members\":[{\"name\":\"s\",\"url\":\"http://x\",\"price_in\":\"a\"}]}",
        "{\"members\":[{\"name\":\"s\",\"url\":\"http://x\"}],\"policy\":{\"cascade\":[\"q\"]}}",
        "{\"members\":[{\"name\":\"s\",\"url\":\"http://x\"}],\"policy\":{\"lambda\":-1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pika_serve_config_parse(bad[i], &c);
        CHECK(rc == -1 && pika_last_error()[0], "bad config %zu accepted", i);
        if (rc == 0) pika_serve_config_free(&c);
    }
}

/* "policy": {"router": FILE}: λ, cascade order and mean costs from a `pika route calibrate` router file */
static void test_config_router_file(void) {
    const char *dir = test_tmpdir();
    char rf[512], js[1024];
    snprintf(rf, sizeof rf, "%s/router.json", dir);
    FILE *f = fopen(rf, "w");
    fputs("{\"format\":\"pika-router\",\"version\":1,\"policy\":\"utility\",\"lambda\":0.0408,\"objective\":\"target_accuracy\",\"value\":0.4,"
          "\"table\":\"t.jsonl\",\"arms\":[{\"name\":\"s-k1\",\"mean_cost\":2.5,\"c_tilde\":0,\"probe\":null},"
          "{\"name\":\"l-k1\",\"mean_cost\":22.5,\"c_tilde\":1,\"probe\":null}]}", f);
    fclose(f);
    snprintf(js, sizeof js, "{\"policy\":{\"router\":\"%s\"},\"members\":[{\"name\":\"s\",\"arm\":\"s-k1\",\"url\":\"http://x\"},"
             "{\"name\":\"m\",\"url\":\"http://x\",\"mean_cost\":12.5},{\"name\":\"l\",\"arm\":\"l-k1\",\"url\":\"http://x\"}]}", rf);
    pika_serve_config c;
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    CHECK(fabs(c.lambda - 0.0408) < 1e-15 && c.members[0].mean_cost == 2.5 && c.members[2].mean_cost == 22.5, "λ and costs from the router file");
    CHECK(fabs(c.ct[1] - 0.5) < 1e-12 && c.ct[0] == 0 && c.ct[2] == 1, "c̃ %g %g %g", c.ct[0], c.ct[1], c.ct[2]);
    pika_serve_config_free(&c);
    f = fopen(rf, "w");
    fputs("{\"format\":\"pika-router\",\"version\":1,\"policy\":\"cascade\",\"threshold\":0.7,\"cascade_order\":[\"l-k1\",\"s-k1\"],"
          "\"cascade_cost\":\"final\",\"arms\":[]}", f);
    fclose(f);
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    CHECK(c.policy == PIKA_SERVE_CASCADE && c.threshold == 0.7 && c.n_cascade == 2 && c.cascade_order[0] == 2 && c.cascade_order[1] == 0,
          "cascade from the router file");
    pika_serve_config_free(&c);
    f = fopen(rf, "w");
    fputs("{\"format\":\"other\"}", f);
    fclose(f);
    CHECK(pika_serve_config_parse(js, &c) == -1 && strstr(pika_last_error(), "pika-router"), "not a router file: %s", pika_last_error());
}

static void test_decide(void) {
    pika_serve_config c;
    const char *js = "{\"members\":[{\"name\":\"a\",\"url\":\"http://x\",\"price_in\":1,\"price_out\":0},"
                     "{\"name\":\"b\",\"url\":\"http://x\",\"price_in\":3,\"price_out\":0},{\"name\":\"c\",\"url\":\"http://x\",\"price_in\":9,\"price_out\":0},"
                     "{\"name\":\"d\",\"url\":\"http://x\",\"price_in\":5,\"price_out\":0}]}";
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    uint64_t x = 5;
    int agree = 0, n = 400;
    for (int it = 0; it < n; it++) {
        double p[4];
        for (int a = 0; a < 4; a++) { x = x * 6364136223846793005ull + 1442695040888963407ull; p[a] = (double)(x >> 11) / 9007199254740992.0; }
        if (it % 7 == 0) p[1] = p[0]; /* ties */
        double lam = (it % 10) / 4.0;
        /* the offline library on a one-row table */
        pika_route_table t;
        pika_route_table_alloc(&t, 4, 1);
        for (int a = 0; a < 4; a++) { t.p[a] = p[a]; t.correct[a] = 0; t.cost[a] = c.members[a].mean_cost; }
        t.split[0] = PIKA_SPLIT_TEST;
        int64_t row = 0;
        int want, want_c;
        pika_route_utility(&t, &row, 1, c.ct, lam, 0, &want);
        double th[4] = {0.5, 0.5, 0.5, 0.5};
        pika_route_cascade(&t, &row, 1, c.cascade_order, c.n_cascade, th, &want_c, NULL);
        pika_route_table_free(&t);
        pika_decide_opts o = {PIKA_SERVE_UTILITY, lam, 0.5, NAN, NULL};
        int order[4];
        int m = pika_serve_decide(&c, p, &o, order);
        agree += m == 4 && order[0] == want;
        /* the fallback order is by utility */
        for (int k = 2; k < m; k++)
            CHECK(p[order[k - 1]] - lam * c.ct[order[k - 1]] >= p[order[k]] - lam * c.ct[order[k]], "fallback order");
        o.policy = PIKA_SERVE_CASCADE;
        pika_serve_decide(&c, p, &o, order);
        CHECK(order[0] == want_c, "cascade %d vs library %d", order[0], want_c);
    }
    CHECK(agree == n, "utility choice equals pika_route_utility in %d of %d", agree, n);
    /* an unhealthy member is skipped; a per-request budget excludes dear members */
    double p[4] = {0.1, 0.2, 0.9, 0.3};
    int healthy[4] = {1, 1, 0, 1}, order[4];
    pika_decide_opts o = {PIKA_SERVE_UTILITY, 0, 0.5, NAN, healthy};
    int m = pika_serve_decide(&c, p, &o, order);
    CHECK(m == 3 && order[0] == 3, "unhealthy c skipped: %d members, first %d", m, order[0]);
    o.healthy = NULL;
    o.max_cost = 3;
    m = pika_serve_decide(&c, p, &o, order);
    CHECK(m == 2 && order[0] == 1, "budget 3 leaves a, b: first %d (%d)", order[0], m);
    o.max_cost = 0.5;
    m = pika_serve_decide(&c, p, &o, order);
    CHECK(m == 1 && order[0] == 0, "budget below every member: the cheapest");
    pika_serve_config_free(&c);
}

static void test_breaker(void) {
    pika_breaker b = {0};
    CHECK(pika_breaker_allow(&b, 0) && pika_breaker_healthy(&b, 0), "closed at start");
    pika_breaker_record(&b, 0, 1, 3, 10);
    pika_breaker_record(&b, 0, 2, 3, 10);
    CHECK(pika_breaker_allow(&b, 2.5) && pika_breaker_healthy(&b, 2.5), "two failures: still closed");
    pika_breaker_record(&b, 0, 3, 3, 10);
    CHECK(!pika_breaker_allow(&b, 5) && !pika_breaker_healthy(&b, 5), "third failure opens it");
    CHECK(pika_breaker_healthy(&b, 13.5), "healthy again after the cool-down");
    CHECK(pika_breaker_allow(&b, 13.5), "one trial after the cool-down");
    CHECK(!pika_breaker_allow(&b, 13.6), "only one trial at a time");
    pika_breaker_record(&b, 0, 14, 3, 10);
    CHECK(!pika_breaker_allow(&b, 20) && pika_breaker_allow(&b, 24.5), "failed trial: open for another cool-down");
    pika_breaker_record(&b, 1, 25, 3, 10);
    CHECK(pika_breaker_allow(&b, 25) && b.failures == 0, "success closes it");
}

static void test_budget(void) {
    pika_budget b;
    pika_budget_init(&b, 1.0, 0.1, 4, 0.05, 10);
    pika_budget_observe(&b, 3.0);
    CHECK(b.lambda > 0.1, "over budget raises λ (%g)", b.lambda);
    double l1 = b.lambda;
    pika_budget_observe(&b, 3.0);
    CHECK(b.lambda > l1, "still over budget: λ rises (%g)", b.lambda);
    for (int i = 0; i < 4; i++) pika_budget_observe(&b, 0.0);
    CHECK(pika_budget_mean(&b) == 0 && b.total_n == 6 && fabs(b.total_cost - 6) < 1e-12, "rolling window of 4, totals");
    double l2 = b.lambda;
    pika_budget_observe(&b, 0.0);
    CHECK(b.lambda < l2, "under budget lowers λ");
    for (int i = 0; i < 1000; i++) pika_budget_observe(&b, 0.0);
    CHECK(b.lambda == 0, "λ stays >= 0");
    for (int i = 0; i < 10000; i++) pika_budget_observe(&b, 100.0);
    CHECK(b.lambda == 10, "λ capped");
    pika_budget_free(&b);
    /* closed loop on a toy pool: member cost 0.1 (p 0.5) vs 2.0 (p 0.9), target 1.0 -> the realised mean
     * cost approaches the budget */
    pika_serve_config c;
    REQUIRE(pika_serve_config_parse("{\"members\":[{\"name\":\"a\",\"url\":\"http://x\",\"mean_cost\":0.1},"
                                    "{\"name\":\"b\",\"url\":\"http://x\",\"mean_cost\":2}],\"policy\":{\"kind\":\"budget\",\"cost_per_query\":1}}", &c) == 0,
            "%s", pika_last_error());
    pika_budget_init(&b, 1.0, 0.0, 50, 0.05, 10);
    uint64_t x = 3;
    double total = 0;
    int n = 4000;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0;
        double p[2] = {0.5 + 0.3 * (u - 0.5), 0.9};
        pika_decide_opts o = {PIKA_SERVE_UTILITY, b.lambda, 0.5, NAN, NULL};
        int order[2];
        pika_serve_decide(&c, p, &o, order);
        double cost = c.members[order[0]].mean_cost;
        if (i >= n / 2) total += cost;
        pika_budget_observe(&b, cost);
    }
    double mean = total / (n / 2);
    CHECK(fabs(mean - 1.0) < 0.15, "realised cost per query %g vs budget 1", mean);
    pika_budget_free(&b);
    pika_serve_config_free(&c);
}

static void test_log(void) {
    char db[512];
    snprintf(db, sizeof db, "%s/log.db", test_tmpdir());
    pika_serve_log *l = pika_serve_log_open(db);
    REQUIRE(l, "%s", pika_last_error());
    const char *mem[4] = {"s", "s", "l", NULL};
    int st[4] = {200, 200, 200, 502};
    for (int i = 0; i < 4; i++) {
        pika_serve_log_row r = {.ts = 1000 + i, .request_id = "r", .endpoint = "chat", .model = "pika-route", .policy = "utility",
                                .lambda = 0.1, .prompt_hash = "abcd", .p_json = "{\"s\":0.5,\"l\":0.7}", .member = mem[i],
                                .attempts = 1 + (i == 3), .fallbacks = i == 3, .status = st[i], .tokens_in = 10, .tokens_out = 5,
                                .cost = mem[i] ? 0.25 : 0, .route_ms = 0.5, .upstream_ms = 2};
        CHECK(pika_serve_log_write(l, &r) == 0, "%s", pika_last_error());
    }
    pika_serve_log_close(l);
    sqlite3 *s;
    REQUIRE(sqlite3_open(db, &s) == SQLITE_OK, "open");
    sqlite3_stmt *q;
    sqlite3_prepare_v2(s, "PRAGMA journal_mode", -1, &q, NULL);
    sqlite3_step(q);
    CHECK(!strcmp((const char *)sqlite3_column_text(q, 0), "wal"), "WAL mode: %s", sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_prepare_v2(s, "SELECT count(*), sum(prompt IS NULL) FROM requests", -1, &q, NULL);
    sqlite3_step(q);
    CHECK(sqlite3_column_int(q, 0) == 4 && sqlite3_column_int(q, 1) == 4, "rows, no prompt text");
    sqlite3_finalize(q);
    sqlite3_close(s);
    char out[600];
    snprintf(out, sizeof out, "%s.json", db);
    FILE *f = fopen(out, "w");
    REQUIRE(pika_serve_log_summary(db, f, 1) == 0, "%s", pika_last_error());
    fclose(f);
    char *txt = pika_read_file(out, NULL);
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    CHECK(cJSON_GetObjectItem(j, "requests")->valuedouble == 4, "requests");
    CHECK(fabs(cJSON_GetObjectItem(j, "error_rate")->valuedouble - 0.25) < 1e-12, "error rate");
    CHECK(fabs(cJSON_GetObjectItem(j, "cost")->valuedouble - 0.75) < 1e-12, "realised cost");
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "members"), 0);
    CHECK(!strcmp(cJSON_GetObjectItem(m0, "member")->valuestring, "s") && fabs(cJSON_GetObjectItem(m0, "share")->valuedouble - 0.5) < 1e-12,
          "share of s");
    cJSON_Delete(j);
    f = fopen(out, "w");
    REQUIRE(pika_serve_log_dump(db, f) == 0, "%s", pika_last_error());
    fclose(f);
    txt = pika_read_file(out, NULL);
    int lines = 0;
    for (char *p = txt; *p; p++) lines += *p == '\n';
    CHECK(lines == 4 && strstr(txt, "\"p\":{\"s\":0.5"), "JSONL dump: %d lines", lines);
    free(txt);
    CHECK(pika_serve_log_summary("/nonexistent/x.db", stdout, 0) == -1, "missing log is an error");
    /* graded answers joined with the log: new labels (the latest answered request of that id) */
    char gp[700];
    snprintf(gp, sizeof gp, "%s.graded.jsonl", db);
    f = fopen(gp, "w");
    fputs("{\"id\":\"r\",\"sample\":0,\"text\":\"2\",\"correct\":true}\n{\"id\":\"unknown\",\"sample\":0,\"text\":\"2\",\"correct\":false}\n", f);
    fclose(f);
    f = fopen(out, "w");
    int64_t nl = -1;
    REQUIRE(pika_serve_log_labels(db, gp, f, &nl) == 0, "%s", pika_last_error());
    fclose(f);
    txt = pika_read_file(out, NULL);
    CHECK(nl == 1 && strstr(txt, "\"id\":\"r\",\"member\":\"l\",\"correct\":true,\"p\":{\"s\":0.5,\"l\":0.7}"), "labels (%lld): %s", (long long)nl, txt);
    free(txt);
}

static void test_reader(void) {
    REQUIRE(make_probes() == 0, "%s", pika_last_error());
    pika_serve_config c;
    char js[2048];
    snprintf(js, sizeof js, "{\"reader\":{\"model\":\"%s\"},\"members\":[{\"name\":\"s\",\"url\":\"http://x\",\"probe\":\"%s\"},"
             "{\"name\":\"m\",\"url\":\"http://x\",\"probe\":\"%s\"},{\"name\":\"l\",\"url\":\"http://x\",\"probe\":\"%s\"}]}",
             READER, g_probe[0], g_probe[1], g_probe[2]);
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    pika_reader *r = pika_reader_new(&c);
    REQUIRE(r, "%s", pika_last_error());
    CHECK(pika_reader_depth(r) == 3, "deepest probe layer %d", pika_reader_depth(r));
    double p[3];
    int nt = 0;
    REQUIRE(pika_reader_score_text(r, "12+7=", p, &nt) == 0, "%s", pika_last_error());
    /* the manual path: the recipe's ids, a full forward with every layer, each probe on its vector */
    pika_model *m = pika_model_load(READER);
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    pika_prompt_recipe *rec = pika_prompt_recipe_new(pika_model_gguf(m), tok, &po);
    pika_prompt pr;
    REQUIRE(pika_prompt_build(rec, "12+7=", &pr) == 0, "%s", pika_last_error());
    CHECK(nt == pr.n_ids, "token count");
    int E = pika_model_hparams(m)->n_embd, L = pika_model_hparams(m)->n_layer;
    float *h = pika_malloc(sizeof(float) * (size_t)(L + 1) * 2 * (size_t)E);
    int pos[2] = {-2, -1};
    pika_ctx *ctx = pika_ctx_new(m, 1);
    pika_forward_req req = {-1, NULL, 2, pos, h, NULL};
    REQUIRE(pika_forward(ctx, pr.ids, pr.n_ids, &req) == 0, "%s", pika_last_error());
    int layers[3] = {1, 2, 3}, pi[3] = {1, 0, 1};
    for (int i = 0; i < 3; i++) {
        pika_probe *pb = pika_probe_load(g_probe[i]);
        double want;
        pika_probe_score_hidden(pb, h + ((size_t)layers[i] * 2 + (size_t)pi[i]) * (size_t)E, E, NULL, &want);
        CHECK(fabs(p[i] - want) < 1e-6, "member %d: reader p %.9f vs full forward %.9f", i, p[i], want);
        pika_probe_free(pb);
    }
    /* a conversation with one user turn is the question */
    cJSON *msgs = cJSON_Parse("[{\"role\":\"user\",\"content\":\"12+7=\"}]");
    double p2[3];
    REQUIRE(pika_reader_score_messages(r, msgs, p2, NULL) == 0, "%s", pika_last_error());
    CHECK(p2[0] == p[0] && p2[1] == p[1] && p2[2] == p[2], "messages path = question path");
    cJSON_Delete(msgs);
    /* prefix reuse: after "12+7=", "12+77+8=" (sharing the template head and "12+7") scores exactly as
     * on a fresh reader */
    {
        pika_reader *fresh = pika_reader_new(&c);
        double a[3], b[3];
        REQUIRE(fresh && pika_reader_score_text(r, "12+77+8=", a, NULL) == 0 && pika_reader_score_text(fresh, "12+77+8=", b, NULL) == 0,
                "%s", pika_last_error());
        CHECK(a[0] == b[0] && a[1] == b[1] && a[2] == b[2], "reused prefix: %.9g %.9g %.9g vs fresh %.9g %.9g %.9g", a[0], a[1],
              a[2], b[0], b[1], b[2]);
        pika_reader_free(fresh);
    }
    msgs = cJSON_Parse("[{\"role\":\"assistant\",\"content\":\"x\"}]");
    CHECK(pika_reader_score_messages(r, msgs, p2, NULL) == -1, "no user message is an error");
    cJSON_Delete(msgs);
    pika_ctx_free(ctx);
    free(h);
    pika_prompt_free(&pr);
    pika_prompt_recipe_free(rec);
    pika_tokenizer_free(tok);
    pika_model_free(m);
    pika_reader_free(r);
    /* another recipe (a suffix the probes were not trained with) is a start-up error */
    free(c.user_suffix);
    c.user_suffix = pika_strdup("\nThink.");
    CHECK(pika_reader_new(&c) == NULL && strstr(pika_last_error(), "recipe"), "recipe mismatch refused: %s", pika_last_error());
    free(c.user_suffix);
    c.user_suffix = NULL;
    /* another reader model is a start-up error */
    free(c.reader_model);
    c.reader_model = pika_strdup("models/pool/pika-math-s.gguf");
    CHECK(pika_reader_new(&c) == NULL && strstr(pika_last_error(), "model"), "model mismatch refused: %s", pika_last_error());
    pika_serve_config_free(&c);
}

/* ---------------------------------------------------------------- end to end */
static pika_stub *g_stub[3];

static void pool_config(char *js, size_t cap, const int *ports, int max_attempts, const char *db, const char *policy) {
    snprintf(js, cap,
             "{\"reader\":{\"model\":\"%s\"},\"policy\":%s,\"max_attempts\":%d,\"breaker_failures\":2,\"breaker_cooldown_s\":3600,"
             "\"log\":\"%s\",\"members\":["
             "{\"name\":\"s\",\"url\":\"http://127.0.0.1:%d/v1\",\"api_model\":\"pika-math-s\",\"probe\":\"%s\",\"price_in\":0.1,\"price_out\":0.1},"
             "{\"name\":\"m\",\"url\":\"http://127.0.0.1:%d/v1\",\"api_model\":\"pika-math-m\",\"probe\":\"%s\",\"price_in\":0.5,\"price_out\":0.5},"
             "{\"name\":\"l\",\"url\":\"http://127.0.0.1:%d/v1/\",\"api_model\":\"pika-math-l\",\"probe\":\"%s\",\"price_in\":1,\"price_out\":1}]}",
             READER, policy, max_attempts, db, ports[0], g_probe[0], ports[1], g_probe[1], ports[2], g_probe[2]);
}

/* value of the metric line that starts with name */
static double metric(const char *text, const char *name) {
    size_t k = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, k)) return atof(p + k);
    return NAN;
}

static void test_server(void) {
    REQUIRE(make_probes() == 0, "%s", pika_last_error());
    int ports[3];
    for (int i = 0; i < 3; i++) {
        g_stub[i] = pika_stub_start(NAMES[i], 0, NULL);
        REQUIRE(g_stub[i], "%s", pika_last_error());
        ports[i] = pika_stub_port(g_stub[i]);
    }
    char db[512], js[4096];
    snprintf(db, sizeof db, "%s/serve.db", test_tmpdir());
    pool_config(js, sizeof js, ports, 3, db, "{\"kind\":\"utility\",\"lambda\":0.1}");
    pika_serve_config c;
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    c.members[2].api_key_env = pika_strdup("PIKA_TEST_L_KEY");
    setenv("PIKA_TEST_L_KEY", "sk-test-42", 1);
    pika_server_opts so = {"127.0.0.1", 0, 0, 0};
    pika_server *s = pika_server_start(&c, &so);
    REQUIRE(s, "%s", pika_last_error());
    int port = pika_server_port(s);
    CHECK(port > 0, "bound port");
    int sent = 0;
    http_res r, d;
    /* routed chat completion = the chosen member's bytes, and the decision = pika route's */
    const char *qs[] = {"12+7=", "3*4=", "100-1=", "7+8=", "2*2*2="};
    int chosen[3] = {0};
    for (size_t qi = 0; qi < sizeof qs / sizeof qs[0]; qi++) {
        char body[256], direct[256];
        snprintf(body, sizeof body, "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", qs[qi]);
        http(port, "POST", "/v1/chat/completions", body, &r);
        sent++;
        CHECK(r.status == 200, "routed: %ld %s", r.status, r.body.s);
        int a = pika_serve_member_index(&c, r.member);
        REQUIRE(a >= 0, "x-pika-member '%s'", r.member);
        chosen[a]++;
        cJSON *j = cJSON_Parse(r.body.s);
        const cJSON *pk = cJSON_GetObjectItem(j, "pika"), *pj = cJSON_GetObjectItem(pk, "p");
        REQUIRE(pk && pj, "pika field in the body: %s", r.body.s);
        CHECK(!strcmp(cJSON_GetObjectItem(pk, "member")->valuestring, r.member), "body and header agree");
        CHECK(strstr(r.p, "s=") && strstr(r.p, "m=") && strstr(r.p, "l="), "x-pika-p lists all members: %s", r.p);
        pika_route_table t;
        pika_route_table_alloc(&t, 3, 1);
        for (int k = 0; k < 3; k++) { t.p[k] = cJSON_GetObjectItem(pj, NAMES[k])->valuedouble; t.correct[k] = 0; t.cost[k] = 0; }
        t.split[0] = PIKA_SPLIT_TEST;
        int64_t row = 0;
        int want;
        pika_route_utility(&t, &row, 1, c.ct, 0.1, 0, &want);
        pika_route_table_free(&t);
        CHECK(want == a, "decision %d = pika route's %d", a, want);
        cJSON_Delete(j);
        /* the same request straight to the member */
        snprintf(direct, sizeof direct, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", c.members[a].api_model, qs[qi]);
        http(ports[a], "POST", "/v1/chat/completions", direct, &d);
        int found;
        char *st = strip_pika(r.body.s, &found);
        CHECK(found && !strcmp(st, d.body.s), "byte for byte:\n  router %s\n  member %s", st, d.body.s);
        free(st);
        free(r.body.s);
        free(d.body.s);
    }
    CHECK(chosen[0] + chosen[1] + chosen[2] == 5, "five routed");
    /* λ in the model name and in the pika object: a large λ picks the cheapest member */
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route:lambda=50\",\"messages\":[{\"role\":\"user\",\"content\":\"1+1=\"}]}", &r);
    sent++;
    CHECK(r.status == 200 && !strcmp(r.member, "s"), "lambda=50 -> s (%s)", r.member);
    free(r.body.s);
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route\",\"pika\":{\"lambda\":0},\"messages\":[{\"role\":\"user\",\"content\":\"1+1=\"}]}", &r);
    sent++;
    {
        cJSON *j = cJSON_Parse(r.body.s);
        const cJSON *pj = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pika"), "p");
        int best = 0;
        for (int k = 1; k < 3; k++)
            if (cJSON_GetObjectItem(pj, NAMES[k])->valuedouble > cJSON_GetObjectItem(pj, NAMES[best])->valuedouble) best = k;
        CHECK(r.status == 200 && !strcmp(r.member, NAMES[best]), "pika.lambda=0 -> max p (%s vs %s)", r.member, NAMES[best]);
        cJSON_Delete(j);
    }
    free(r.body.s);
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route:cascade\",\"messages\":[{\"role\":\"user\",\"content\":\"1+1=\"}]}", &r);
    sent++;
    CHECK(r.status == 200 && strstr(r.body.s, "\"policy\":\"cascade\""), "cascade: %s", r.body.s);
    free(r.body.s);
    /* a cascade threshold in the model name; a per-request budget in the model name */
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route:threshold=1.5\",\"messages\":[{\"role\":\"user\",\"content\":\"1+1=\"}]}", &r);
    sent++;
    CHECK(r.status == 200 && !strcmp(r.member, c.members[c.cascade_order[c.n_cascade - 1]].name), "threshold above every p: the cascade's last (%s)", r.member);
    free(r.body.s);
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route:budget=0.3\",\"pika\":{\"lambda\":0},\"messages\":[{\"role\":\"user\",\"content\":\"1+1=\"}]}", &r);
    sent++;
    CHECK(r.status == 200 && !strcmp(r.member, "s"), "budget 0.3 leaves only s (%s)", r.member);
    free(r.body.s);
    /* bypass by member name */
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"l\",\"messages\":[{\"role\":\"user\",\"content\":\"5+5=\"}]}", &r);
    sent++;
    CHECK(r.status == 200 && !strcmp(r.member, "l") && strstr(r.body.s, "\"content\":\"l: 5+5=\"") && strstr(r.body.s, "\"policy\":\"bypass\""),
          "bypass: %s %s", r.member, r.body.s);
    free(r.body.s);
    /* a member's API key comes from the environment variable the config names, sent as a Bearer token */
    {
        char auth[256];
        pika_stub_last_auth(g_stub[2], auth, sizeof auth);
        CHECK(!strcmp(auth, "Bearer sk-test-42"), "API key sent upstream: '%s'", auth);
    }
    /* text completions */
    http(port, "POST", "/v1/completions", "{\"model\":\"pika-route\",\"prompt\":\"9+9=\"}", &r);
    sent++;
    CHECK(r.status == 200 && strstr(r.body.s, "\"text_completion\"") && strstr(r.body.s, ": 9+9=\""), "completions: %s", r.body.s);
    free(r.body.s);
    /* streaming passes through chunk by chunk */
    {
        http(port, "POST", "/v1/chat/completions", "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"4+4=\"}]}", &r);
        sent++;
        http(ports[1], "POST", "/v1/chat/completions", "{\"model\":\"pika-math-m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"4+4=\"}]}", &d);
        int found;
        char *st = strip_pika(r.body.s, &found);
        CHECK(r.status == 200 && found && !strcmp(st, d.body.s), "stream byte for byte:\n%s\n---\n%s", st, d.body.s);
        const char *first_nl = strchr(r.body.s, '\n');
        CHECK(first_nl && strstr(r.body.s, "\"pika\":") < first_nl, "decision in the first chunk");
        int ev = 0;
        for (const char *p = r.body.s; (p = strstr(p, "data: ")); p++) ev++;
        CHECK(ev == 5 && strstr(r.body.s, "data: [DONE]"), "3 content chunks + usage + [DONE]: %d", ev);
        free(st);
        free(r.body.s);
        free(d.body.s);
        http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"4+4=\"}]}", &r);
        sent++;
        CHECK(r.status == 200 && r.member[0] && strstr(r.body.s, "data: [DONE]"), "routed stream");
        free(r.body.s);
    }
    /* bad requests: OpenAI-style errors, never a crash */
    struct { const char *path, *body; long status; } bad[] = {
        {"/v1/chat/completions", "{not json", 400},
        {"/v1/chat/completions", "[1,2]", 400},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400},
        {"/v1/chat/completions", "{\"model\":\"gpt-9\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404},
        {"/v1/chat/completions", "{\"model\":\"pika-route:lambda=abc\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 404},
        {"/v1/chat/completions", "{\"model\":\"pika-route\",\"messages\":\"hi\"}", 400},
        {"/v1/chat/completions", "{\"model\":\"pika-route\",\"messages\":[]}", 400},
        {"/v1/chat/completions", "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"user\",\"content\":3}]}", 400},
        {"/v1/chat/completions", "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}", 400},
        {"/v1/chat/completions", "{\"model\":\"pika-route\",\"pika\":{\"lambda\":-1},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400},
        {"/v1/chat/completions", "{\"model\":\"pika-route\",\"pika\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400},
        {"/v1/chat/completions", "{\"model\":\"pika-route\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400},
        {"/v1/completions", "{\"model\":\"pika-route\",\"prompt\":[1]}", 400},
        {"/v1/embeddings", "{}", 404},
        {"/v1/chat/completions", "", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http(port, "POST", bad[i].path, bad[i].body, &r);
        sent += strstr(bad[i].path, "completions") != NULL;
        cJSON *j = cJSON_Parse(r.body.s);
        const cJSON *e = cJSON_GetObjectItem(j, "error");
        CHECK(r.status == bad[i].status && cJSON_IsString(cJSON_GetObjectItem(e, "message")) && cJSON_IsString(cJSON_GetObjectItem(e, "type")),
              "bad request %zu: %ld %s", i, r.status, r.body.s);
        cJSON_Delete(j);
        free(r.body.s);
    }
    /* odd but well-formed input: answered (200) or refused (400), never a crash */
    {
        pika_buf lp = {0};
        pika_buf_puts(&lp, "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"user\",\"content\":\"");
        for (int i = 0; i < 400; i++) pika_buf_puts(&lp, "12+34 ");
        pika_buf_puts(&lp, "\"}]}");
        const char *odd[] = {
            lp.s,
            "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\\u0000x\"}]}",
            "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"1+1\"},"
            "{\"role\":\"assistant\",\"content\":\"2\"},{\"role\":\"user\",\"content\":\"and 2+2?\"}]}",
            "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
        };
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            http(port, "POST", "/v1/chat/completions", odd[i], &r);
            sent++;
            CHECK(r.status == 200 || (r.status == 400 && strstr(r.body.s, "\"error\"")), "odd input %zu: %ld %.300s", i, r.status, r.body.s);
            free(r.body.s);
        }
        free(lp.s);
        http(port, "GET", "/health", NULL, &r);
        CHECK(r.status == 200, "still up after odd input");
        free(r.body.s);
    }
    {
        size_t n = (size_t)c.max_body + 100;
        char *big = pika_malloc(n + 1);
        memset(big, 'x', n);
        memcpy(big, "{\"model\":\"pika-route\",\"prompt\":\"", 32);
        big[n - 2] = '"'; big[n - 1] = '}'; big[n] = 0;
        http(port, "POST", "/v1/completions", big, &r); /* refused by the HTTP layer before routing: not in the log */
        CHECK(r.status == 413 && strstr(r.body.s, "\"error\""), "413: %ld", r.status);
        free(r.body.s);
        free(big);
    }
    /* GET endpoints */
    http(port, "GET", "/v1/models", NULL, &r);
    CHECK(r.status == 200 && strstr(r.body.s, "\"pika-route\"") && strstr(r.body.s, "\"pika-route:cascade\"") && strstr(r.body.s, "\"id\":\"m\""),
          "models: %s", r.body.s);
    free(r.body.s);
    http(port, "GET", "/health", NULL, &r);
    CHECK(r.status == 200 && strstr(r.body.s, "\"loaded\":true") && strstr(r.body.s, "\"healthy\":true"), "health: %s", r.body.s);
    free(r.body.s);
    /* a member that answers 5xx -> the next member, no client error */
    {
        pika_stub_stop(g_stub[0]);
        pika_stub_opts fo = {0};
        fo.fail_status = 503;
        g_stub[0] = pika_stub_start("s", ports[0], &fo);
        REQUIRE(g_stub[0], "restart s failing: %s", pika_last_error());
        http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route:lambda=50\",\"messages\":[{\"role\":\"user\",\"content\":\"1+1=\"}]}", &r);
        sent++;
        CHECK(r.status == 200 && strcmp(r.member, "s") && !strcmp(r.attempts, "2"), "5xx fallback: %ld member %s attempts %s", r.status, r.member,
              r.attempts);
        free(r.body.s);
    }
    /* a member killed mid-run: fallbacks, no client error; its breaker opens after 2 failures */
    pika_stub_stop(g_stub[0]);
    g_stub[0] = NULL;
    for (int i = 0; i < 4; i++) {
        http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route:lambda=50\",\"messages\":[{\"role\":\"user\",\"content\":\"2+2=\"}]}", &r);
        sent++;
        CHECK(r.status == 200 && strcmp(r.member, "s") && r.member[0], "killed member: request %d -> %ld %s", i, r.status, r.member);
        CHECK(!strcmp(r.attempts, i == 0 ? "2" : "1"), "request %d attempts %s (breaker open after the 2nd failure)", i, r.attempts);
        free(r.body.s);
    }
    http(port, "GET", "/health", NULL, &r);
    CHECK(r.status == 200 && strstr(r.body.s, "{\"name\":\"s\",\"healthy\":false"), "s unhealthy: %s", r.body.s);
    free(r.body.s);
    /* bypass to a dead member is a 502, not a crash */
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &r);
    sent++;
    CHECK(r.status == 502 && strstr(r.body.s, "\"error\""), "bypass to a dead member: %ld %s", r.status, r.body.s);
    free(r.body.s);
    http(port, "GET", "/metrics", NULL, &r);
    CHECK(r.status == 200 && strstr(r.body.s, "pika_requests_total{member=\"m\",status=\"200\"}") && metric(r.body.s, "pika_fallbacks_total ") >= 2 &&
              strstr(r.body.s, "pika_routing_seconds_bucket{le=\"+Inf\"}") && strstr(r.body.s, "pika_spend_total{member=\"l\"}") &&
              metric(r.body.s, "pika_http_responses_total{class=\"413\"} ") == 1,
          "metrics:\n%s", r.body.s);
    free(r.body.s);
    pika_server_stop(s, 10);
    /* the log holds every completion request */
    sqlite3 *q;
    REQUIRE(sqlite3_open(db, &q) == SQLITE_OK, "log");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(q, "SELECT count(*), sum(status = 200), sum(fallbacks), sum(p IS NOT NULL), sum(prompt IS NULL) FROM requests", -1, &st, NULL);
    sqlite3_step(st);
    CHECK(sqlite3_column_int(st, 0) == sent, "logged %d of %d", sqlite3_column_int(st, 0), sent);
    CHECK(sqlite3_column_int(st, 2) >= 2 && sqlite3_column_int(st, 4) == sent, "fallbacks logged, no prompts");
    sqlite3_finalize(st);
    char dbpath[600];
    snprintf(dbpath, sizeof dbpath, "%s", db);
    size_t dbn = 0;
    char *raw = pika_read_file(dbpath, &dbn);
    CHECK(raw && !memmem(raw, dbn, "sk-test-42", 10), "the API key is not in the log");
    free(raw);
    sqlite3_close(q);
    for (int i = 0; i < 3; i++) pika_stub_stop(g_stub[i]);
    pika_serve_config_free(&c);
}

/* streaming passes through chunk by chunk: member m sends its first event and then waits until the
 * client, through the router, has received that event (the client's write callback releases it); a
 * member whose stream breaks after the first event ends the client's stream with an error chunk */
typedef struct { pika_stub *stub; int released_by_client; pika_buf body; } chunk_ctx;
static size_t on_chunk(char *p, size_t sz, size_t n, void *cls) {
    chunk_ctx *c = cls;
    pika_buf_add(&c->body, p, sz * n);
    if (!c->released_by_client && strstr(c->body.s, "\n\n")) {
        c->released_by_client = 1;
        pika_stub_release(c->stub);
    }
    return sz * n;
}

static void test_server_stream(void) {
    REQUIRE(make_probes() == 0, "%s", pika_last_error());
    int ports[3];
    pika_stub *st[3];
    pika_stub_opts hold = {0}, brk = {0};
    hold.stream_hold = 1;
    brk.stream_abort = 1;
    for (int i = 0; i < 3; i++) {
        st[i] = pika_stub_start(NAMES[i], 0, i == 1 ? &hold : i == 2 ? &brk : NULL);
        REQUIRE(st[i], "stub");
        ports[i] = pika_stub_port(st[i]);
    }
    char js[4096];
    pool_config(js, sizeof js, ports, 3, "", "{\"kind\":\"utility\",\"lambda\":0.1}");
    pika_serve_config c;
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    free(c.log_path);
    c.log_path = NULL;
    pika_server_opts so = {"127.0.0.1", 0, 0, 0};
    pika_server *s = pika_server_start(&c, &so);
    REQUIRE(s, "%s", pika_last_error());
    int port = pika_server_port(s);
    chunk_ctx cc = {st[1], 0, {0}};
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", port);
    CURL *h = curl_easy_init();
    const char *body = "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"8+8=\"}]}";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_chunk);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &cc);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    CHECK(rc == CURLE_OK && status == 200, "stream: %d %ld", rc, status);
    CHECK(cc.released_by_client, "the first chunk reached the client while the member held the rest");
    http_res d;
    http(ports[1], "POST", "/v1/chat/completions", "{\"model\":\"pika-math-m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"8+8=\"}]}", &d);
    int found;
    char *stp = strip_pika(cc.body.s ? cc.body.s : "", &found);
    CHECK(found && !strcmp(stp, d.body.s), "held stream byte for byte:\n%s\n---\n%s", stp, d.body.s);
    free(stp);
    free(d.body.s);
    free(cc.body.s);
    /* a stream that breaks after its first event */
    http_res r;
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"l\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"8+8=\"}]}", &r);
    const char *err = strstr(r.body.s, "data: {\"error\":");
    CHECK(r.status == 200 && strstr(r.body.s, "\"pika\":") && err && strstr(err, "mid-stream") && strstr(err, "data: [DONE]"),
          "broken stream ends with an error chunk: %ld %s", r.status, r.body.s);
    free(r.body.s);
    pika_server_stop(s, 10);
    for (int i = 0; i < 3; i++) pika_stub_stop(st[i]);
    pika_serve_config_free(&c);
}

/* budget mode end to end: λ moves and /metrics reports the realised cost */
static void test_server_budget(void) {
    REQUIRE(make_probes() == 0, "%s", pika_last_error());
    int ports[3];
    pika_stub *st[3];
    for (int i = 0; i < 3; i++) { st[i] = pika_stub_start(NAMES[i], 0, NULL); REQUIRE(st[i], "stub"); ports[i] = pika_stub_port(st[i]); }
    char js[4096];
    pool_config(js, sizeof js, ports, 3, "", "{\"kind\":\"budget\",\"cost_per_query\":0.000001,\"lambda\":0,\"gain\":0.5}");
    pika_serve_config c;
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    free(c.log_path);
    c.log_path = NULL;
    pika_server_opts so = {"127.0.0.1", 0, 0, 0};
    pika_server *s = pika_server_start(&c, &so);
    REQUIRE(s, "%s", pika_last_error());
    http_res r;
    for (int i = 0; i < 8; i++) {
        http(pika_server_port(s), "POST", "/v1/chat/completions", "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"user\",\"content\":\"3+3=\"}]}", &r);
        CHECK(r.status == 200 && strstr(r.body.s, "\"policy\":\"budget\""), "budget request %ld", r.status);
        free(r.body.s);
    }
    http(pika_server_port(s), "GET", "/metrics", NULL, &r);
    double lam = metric(r.body.s, "pika_budget_lambda "), real = metric(r.body.s, "pika_budget_cost_realised ");
    CHECK(lam > 0 && real > 0, "budget: λ %g realised %g\n%s", lam, real, r.body.s);
    free(r.body.s);
    http(pika_server_port(s), "POST", "/v1/chat/completions", "{\"model\":\"pika-route\",\"messages\":[{\"role\":\"user\",\"content\":\"3+3=\"}]}", &r);
    CHECK(!strcmp(r.member, "s"), "over budget, λ up: the cheapest member (%s)", r.member);
    free(r.body.s);
    pika_server_stop(s, 10);
    for (int i = 0; i < 3; i++) pika_stub_stop(st[i]);
    pika_serve_config_free(&c);
}

/* the same with three real `pika serve-model` members (pool models, one thread each) */
static pid_t start_member(const char *model, const char *port_file) {
    unlink(port_file);
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) { dup2(dn, 1); dup2(dn, 2); }
        execl(test_pika_bin(), test_pika_bin(), "serve-model", "--model", model, "--port", "0", "--port-file", port_file, "--threads", "1",
              "--parallel", "2", "--quiet", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int read_port_file(const char *path, pid_t pid) {
    for (int i = 0; i < 3000; i++) { /* until the member wrote its port (or died) */
        char *t = pika_read_file(path, NULL);
        int port = t ? atoi(t) : 0;
        free(t);
        if (port > 0) return port;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return -1;
        usleep(10000);
    }
    return -1;
}

static char *content_of(const char *body) {
    cJSON *j = cJSON_Parse(body);
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "message"), "content");
    char *s = cJSON_IsString(c) ? pika_strdup(c->valuestring) : NULL;
    cJSON_Delete(j);
    return s;
}

static void test_serve_model_members(void) {
    REQUIRE(make_probes() == 0, "%s", pika_last_error());
    int rs;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s serve-model --help > /dev/null 2>&1", test_pika_bin());
    free(test_run(cmd, &rs));
    if (rs != 0) SKIP_TEST("*** this build has no pika serve-model: members are stubs only ***");
    const char *dir = test_tmpdir();
    pid_t pid[3];
    int ports[3];
    for (int i = 0; i < 3; i++) {
        char model[128], pf[512];
        snprintf(model, sizeof model, "models/pool/pika-math-%s.gguf", NAMES[i]);
        snprintf(pf, sizeof pf, "%s/port-%s", dir, NAMES[i]);
        pid[i] = start_member(model, pf);
        ports[i] = read_port_file(pf, pid[i]);
    }
    if (ports[0] < 0 || ports[1] < 0 || ports[2] < 0) {
        for (int i = 0; i < 3; i++) { kill(pid[i], SIGKILL); waitpid(pid[i], NULL, 0); }
        CHECK(0, "a pika serve-model member did not start");
        return;
    }
    char js[4096];
    pool_config(js, sizeof js, ports, 3, "", "{\"kind\":\"utility\",\"lambda\":0.1}");
    pika_serve_config c;
    REQUIRE(pika_serve_config_parse(js, &c) == 0, "%s", pika_last_error());
    free(c.log_path);
    c.log_path = NULL;
    pika_server_opts so = {"127.0.0.1", 0, 0, 0};
    pika_server *s = pika_server_start(&c, &so);
    REQUIRE(s, "%s", pika_last_error());
    int port = pika_server_port(s);
    http_res r, d;
    const char *qs[] = {"12+7=", "3*4=", "100-1="};
    for (int qi = 0; qi < 3; qi++) {
        char body[300], direct[300];
        snprintf(body, sizeof body, "{\"model\":\"pika-route\",\"seed\":7,\"max_tokens\":8,\"temperature\":1,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", qs[qi]);
        http(port, "POST", "/v1/chat/completions", body, &r);
        int a = pika_serve_member_index(&c, r.member);
        CHECK(r.status == 200 && a >= 0, "routed to a serve-model member: %ld %s", r.status, r.body.s);
        if (a < 0) { free(r.body.s); continue; }
        snprintf(direct, sizeof direct, "{\"model\":\"%s\",\"seed\":7,\"max_tokens\":8,\"temperature\":1,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                 c.members[a].api_model, qs[qi]);
        http(ports[a], "POST", "/v1/chat/completions", direct, &d);
        {   /* one top-level "pika": the member's own {"seed"} and the decision, merged */
            cJSON *j = cJSON_Parse(r.body.s), *it;
            int n_pika = 0;
            cJSON_ArrayForEach(it, j) n_pika += it->string && !strcmp(it->string, "pika");
            const cJSON *pk = cJSON_GetObjectItem(j, "pika");
            CHECK(n_pika == 1 && cJSON_GetObjectItem(pk, "member") && cJSON_GetObjectItem(pk, "seed"), "one pika object: %s", r.body.s);
            cJSON_Delete(j);
        }
        char *x = content_of(r.body.s), *y = content_of(d.body.s);
        CHECK(x && y && !strcmp(x, y), "the member's answer byte for byte: '%s' vs '%s'", x ? x : "(none)", y ? y : "(none)");
        free(x); free(y);
        free(r.body.s);
        free(d.body.s);
    }
    /* streaming through a serve-model member */
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"l\",\"stream\":true,\"seed\":3,\"max_tokens\":6,\"messages\":[{\"role\":\"user\",\"content\":\"5+5=\"}]}", &r);
    http(ports[2], "POST", "/v1/chat/completions", "{\"model\":\"pika-math-l\",\"stream\":true,\"seed\":3,\"max_tokens\":6,\"messages\":[{\"role\":\"user\",\"content\":\"5+5=\"}]}", &d);
    int er = 0, ed = 0;
    for (const char *p = r.body.s; (p = strstr(p, "data: ")); p++) er++;
    for (const char *p = d.body.s; (p = strstr(p, "data: ")); p++) ed++;
    CHECK(r.status == 200 && er == ed && er >= 2 && strstr(r.body.s, "data: [DONE]") && strstr(r.body.s, "\"pika\":"), "stream events %d vs %d:\n%s", er, ed, r.body.s);
    free(r.body.s);
    free(d.body.s);
    /* the remote reader: member m serves the reader's GGUF; its hidden states give the same p̂ */
    {
        pika_serve_config rc2;
        REQUIRE(pika_serve_config_parse(js, &rc2) == 0, "%s", pika_last_error());
        char u[128];
        snprintf(u, sizeof u, "http://127.0.0.1:%d/v1", ports[1]);
        rc2.reader_url = pika_strdup(u);
        pika_reader *remote = pika_reader_new(&rc2), *local = pika_reader_new(&c);
        REQUIRE(remote && local, "%s", pika_last_error());
        for (int qi = 0; qi < 3; qi++) {
            double pr[3], pl[3];
            int ok = pika_reader_score_text(remote, qs[qi], pr, NULL) == 0;
            CHECK(ok, "remote reader: %s", pika_last_error());
            pika_reader_score_text(local, qs[qi], pl, NULL);
            for (int k = 0; k < 3 && ok; k++) CHECK(fabs(pr[k] - pl[k]) < 1e-6, "remote p %.9f vs local %.9f", pr[k], pl[k]);
        }
        pika_reader_free(remote);
        pika_reader_free(local);
        pika_serve_config_free(&rc2);
    }
    /* a member killed mid-run: no client error */
    kill(pid[0], SIGKILL);
    waitpid(pid[0], NULL, 0);
    for (int i = 0; i < 3; i++) {
        http(port, "POST", "/v1/chat/completions", "{\"model\":\"pika-route:lambda=50\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"1+1=\"}]}", &r);
        CHECK(r.status == 200 && r.member[0] && strcmp(r.member, "s"), "killed s: %ld %s", r.status, r.member);
        free(r.body.s);
    }
    pika_server_stop(s, 10);
    for (int i = 1; i < 3; i++) { kill(pid[i], SIGTERM); waitpid(pid[i], NULL, 0); }
    pika_serve_config_free(&c);
}

/* the CLI: `pika serve` answers, then SIGTERM with a request in flight drains it and exits 0 */
typedef struct { int port; http_res r; } client_arg;
static void *client_thread(void *p) {
    client_arg *a = p;
    http(a->port, "POST", "/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"6+1=\"}]}", &a->r);
    return NULL;
}

static int can_connect(int port) {
    http_res r;
    http(port, "GET", "/health", NULL, &r);
    free(r.body.s);
    return r.status > 0;
}

static void test_cli_sigterm(void) {
    REQUIRE(make_probes() == 0, "%s", pika_last_error());
    int ports[3];
    pika_stub *st[3];
    pika_stub_opts hold = {0};
    hold.hold = 1;
    for (int i = 0; i < 3; i++) { st[i] = pika_stub_start(NAMES[i], 0, i == 1 ? &hold : NULL); REQUIRE(st[i], "stub"); ports[i] = pika_stub_port(st[i]); }
    const char *dir = test_tmpdir();
    char js[4096], cfg[512], db[512], cmd[2048];
    snprintf(db, sizeof db, "%s/cli.db", dir);
    pool_config(js, sizeof js, ports, 3, db, "{\"kind\":\"utility\",\"lambda\":0.1}");
    snprintf(cfg, sizeof cfg, "%s/pool.json", dir);
    FILE *f = fopen(cfg, "w");
    fputs(js, f);
    fclose(f);
    int pfd[2];
    REQUIRE(pipe(pfd) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl(test_pika_bin(), test_pika_bin(), "serve", "--config", cfg, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    FILE *rf = fdopen(pfd[0], "r");
    char line[512] = "";
    int port = 0;
    if (fgets(line, sizeof line, rf)) {
        const char *c = strstr(line, "127.0.0.1:");
        if (c) port = atoi(c + 10);
    }
    fclose(rf);
    if (!port) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); }
    REQUIRE(port > 0, "pika serve did not start: '%s'", line);
    /* one routed request answered by the CLI server */
    http_res r;
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"l\",\"messages\":[{\"role\":\"user\",\"content\":\"1+2=\"}]}", &r);
    CHECK(r.status == 200 && strstr(r.body.s, "l: 1+2="), "cli answer %ld", r.status);
    free(r.body.s);
    /* a request to the held member, in flight */
    client_arg a = {port, {0}};
    pthread_t th;
    pthread_create(&th, NULL, client_thread, &a);
    while (pika_stub_requests(st[1]) < 1) usleep(1000);
    kill(pid, SIGTERM);
    while (can_connect(port)) usleep(2000); /* stopped accepting */
    pika_stub_release(st[1]);
    pthread_join(th, NULL);
    CHECK(a.r.status == 200 && strstr(a.r.body.s, "m: 6+1="), "in-flight request finished after SIGTERM: %ld %s", a.r.status, a.r.body.s);
    free(a.r.body.s);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pika serve exits 0 after draining (%d)", status);
    /* the log was flushed: both requests, and `pika route log` reads it */
    snprintf(cmd, sizeof cmd, "%s route log --db %s --json", test_pika_bin(), db);
    int rs;
    char *o = test_run(cmd, &rs);
    cJSON *j = cJSON_Parse(o);
    CHECK(rs == 0 && j && cJSON_GetObjectItem(j, "requests")->valuedouble == 2 && cJSON_GetObjectItem(j, "errors")->valuedouble == 0,
          "route log: %s", o);
    cJSON_Delete(j);
    free(o);
    snprintf(cmd, sizeof cmd, "%s route log --db %s", test_pika_bin(), db);
    o = test_run(cmd, &rs);
    CHECK(rs == 0 && strstr(o, "2 requests") && strstr(o, "share"), "route log text: %s", o);
    free(o);
    /* start-up errors: a missing config, a bad field */
    snprintf(cmd, sizeof cmd, "%s serve --config %s/none.json --port 0 2>&1", test_pika_bin(), dir);
    o = test_run(cmd, &rs);
    CHECK(rs == 2 && strstr(o, "none.json"), "missing config (%d) %s", rs, o);
    free(o);
    f = fopen(cfg, "w");
    fputs("{\"members\":[{\"name\":\"s\",\"url\":\"http://127.0.0.1:1/v1\",\"price_in\":-1}]}", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s serve --config %s --port 0 2>&1", test_pika_bin(), cfg);
    o = test_run(cmd, &rs);
    CHECK(rs == 2 && strstr(o, "members[0]"), "bad field named (%d) %s", rs, o);
    free(o);
    /* a probe for another reader */
    snprintf(js, sizeof js, "{\"reader\":{\"model\":\"models/pool/pika-math-l.gguf\"},\"members\":[{\"name\":\"s\",\"url\":\"http://127.0.0.1:1/v1\",\"probe\":\"%s\"}]}",
             g_probe[0]);
    f = fopen(cfg, "w");
    fputs(js, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s serve --config %s --port 0 2>&1", test_pika_bin(), cfg);
    o = test_run(cmd, &rs);
    CHECK(rs == 2 && strstr(o, "probe"), "probe for another reader: start-up error (%d) %s", rs, o);
    free(o);
    for (int i = 0; i < 3; i++) pika_stub_stop(st[i]);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_config);
    RUN(test_config_router_file);
    RUN(test_decide);
    RUN(test_breaker);
    RUN(test_budget);
    RUN(test_log);
    RUN(test_reader);
    RUN(test_server);
    RUN(test_server_stream);
    RUN(test_server_budget);
    RUN(test_serve_model_members);
    RUN(test_cli_sigterm);
    curl_global_cleanup();
    return test_summary("serve_router");
}
