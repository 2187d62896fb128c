/* test_serve_model.c — `pika serve-model` end to end: the test starts build/pika serve-model on a
 * loopback port with a pool model and drives it over raw sockets (tests/http_client.h):
 * response schemas (plain and streamed), equality with `pika generate` (greedy and seeded) and with
 * `pika sample` (n samples of one question), batching (concurrent requests = sequential ones, and
 * they really shared decode steps), the pika.hidden extension against pika_forward, logprobs, error
 * statuses, a client killed mid-stream, the queue limit, a graceful stop, and the official `openai`
 * npm client (tests/openai_node_check.mjs, installed into /tmp when node and npm are present). */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_client.h"
#include "pika/http.h"
#include "pika/model.h"
#include "pika/prompt.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "test.h"

#define MODEL "models/pool/pika-math-l.gguf"

typedef struct {
    pid_t pid;
    int port;
    char log[512];
} server;

static server g; /* the main server: 4 slots, 1 thread, 64 KiB bodies */

static int srv_start(server *s, const char *extra) {
    memset(s, 0, sizeof *s);
    const char *dir = test_tmpdir();
    char pf[400], cmd[2048];
    snprintf(pf, sizeof pf, "%s/port", dir);
    snprintf(s->log, sizeof s->log, "%s/server.log", dir);
    snprintf(cmd, sizeof cmd, "exec %s serve-model --model %s --port 0 --port-file %s --threads 1 %s 2>%s", test_pika_bin(), MODEL,
             pf, extra, s->log);
    s->pid = fork();
    if (s->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* 60 s */
        FILE *f = fopen(pf, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok && s->port > 0) return 0;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
        usleep(100000);
    }
    return -1;
}

/* SIGTERM; the exit status (-1 when it had to be killed). */
static int srv_stop(server *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 300; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(100000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    return -1;
}

/* POST JSON, parse the answer (NULL when it is not JSON); *status gets the HTTP status. */
static cJSON *post(int port, const char *path, const char *body, int *status) {
    tc_resp r;
    *status = -1;
    if (tc_request(port, "POST", path, body, -1, NULL, &r)) return NULL;
    *status = r.status;
    cJSON *j = cJSON_Parse(r.body);
    tc_resp_free(&r);
    return j;
}

static const char *jstr(const cJSON *o, const char *path) {
    /* "a.b.0.c" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *x = o;
    for (char *sv = NULL, *t = strtok_r(buf, ".", &sv); t && x; t = strtok_r(NULL, ".", &sv))
        x = (*t >= '0' && *t <= '9') ? cJSON_GetArrayItem(x, atoi(t)) : cJSON_GetObjectItemCaseSensitive(x, t);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *x = o;
    for (char *sv = NULL, *t = strtok_r(buf, ".", &sv); t && x; t = strtok_r(NULL, ".", &sv))
        x = (*t >= '0' && *t <= '9') ? cJSON_GetArrayItem(x, atoi(t)) : cJSON_GetObjectItemCaseSensitive(x, t);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* A metric's value from /metrics (NAN when absent). */
static double metric(int port, const char *name) {
    tc_resp r;
    if (tc_request(port, "GET", "/metrics", NULL, 0, NULL, &r)) return NAN;
    double v = NAN;
    char key[160];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r.body, key);
    if (p) v = atof(p + strlen(key));
    tc_resp_free(&r);
    return v;
}

/* `pika generate ARGS` stdout without its final newline (malloc'ed). */
static char *local_generate(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s generate --model %s --threads 1 %s 2>/dev/null", test_pika_bin(), MODEL, args);
    int st;
    char *out = test_run(cmd, &st);
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n') out[n - 1] = 0;
    if (st != 0) { free(out); return NULL; }
    return out;
}

/* ------------------------------------------------------------------ schemas */

static void check_common(const cJSON *j, const char *object, const char *id_prefix) {
    CHECK(jstr(j, "id") && !strncmp(jstr(j, "id"), id_prefix, strlen(id_prefix)), "id %s", jstr(j, "id"));
    CHECK(jstr(j, "object") && !strcmp(jstr(j, "object"), object), "object %s (want %s)", jstr(j, "object"), object);
    CHECK(jnum(j, "created") > 1.6e9, "created");
    CHECK(jstr(j, "model") && !strcmp(jstr(j, "model"), "pika-math-l"), "model %s", jstr(j, "model"));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(j, "choices")), "choices");
}

static void check_usage(const cJSON *j) {
    double p = jnum(j, "usage.prompt_tokens"), c = jnum(j, "usage.completion_tokens"), t = jnum(j, "usage.total_tokens");
    CHECK(p > 0 && c >= 0 && t == p + c, "usage %g %g %g", p, c, t);
}

static void test_models_health_metrics(void) {
    tc_resp r;
    REQUIRE(tc_request(g.port, "GET", "/v1/models", NULL, 0, NULL, &r) == 0, "no answer");
    cJSON *j = cJSON_Parse(r.body);
    CHECK(r.status == 200 && jstr(j, "object") && !strcmp(jstr(j, "object"), "list"), "%d %s", r.status, r.body);
    CHECK(jstr(j, "data.0.id") && !strcmp(jstr(j, "data.0.id"), "pika-math-l") && !strcmp(jstr(j, "data.0.object"), "model") &&
              jstr(j, "data.0.owned_by") && jnum(j, "data.0.created") > 0,
          "model entry %s", r.body);
    cJSON_Delete(j);
    tc_resp_free(&r);
    tc_request(g.port, "GET", "/v1/models/pika-math-l", NULL, 0, NULL, &r);
    CHECK(r.status == 200, "model by id: %d", r.status);
    tc_resp_free(&r);
    tc_request(g.port, "GET", "/v1/models/nope", NULL, 0, NULL, &r);
    CHECK(r.status == 404 && strstr(r.body, "model_not_found"), "unknown model: %d %s", r.status, r.body);
    tc_resp_free(&r);
    tc_request(g.port, "GET", "/health", NULL, 0, NULL, &r);
    j = cJSON_Parse(r.body);
    CHECK(r.status == 200 && jstr(j, "status") && !strcmp(jstr(j, "status"), "ok") && jnum(j, "slots_idle") == 4, "health %s", r.body);
    cJSON_Delete(j);
    tc_resp_free(&r);
    tc_request(g.port, "GET", "/metrics", NULL, 0, NULL, &r);
    CHECK(r.status == 200 && tc_header(&r, "content-type") && strstr(tc_header(&r, "content-type"), "text/plain"), "metrics %d", r.status);
    const char *names[] = {"pika_http_requests_total{code=\"2xx\"}", "pika_prompt_tokens_total", "pika_completion_tokens_total",
                           "pika_prefill_tokens_per_second", "pika_decode_tokens_per_second", "pika_queue_depth",
                           "# TYPE pika_queue_depth gauge", "pika_slots_total 4"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) CHECK(strstr(r.body, names[i]), "metrics lack %s", names[i]);
    tc_resp_free(&r);
}

static void test_completions_schema(void) {
    int st;
    cJSON *j = post(g.port, "/v1/completions", "{\"model\":\"pika-math-l\",\"prompt\":\"What is 3 + 4?\",\"max_tokens\":8,\"temperature\":0}", &st);
    REQUIRE(j && st == 200, "status %d", st);
    check_common(j, "text_completion", "cmpl-");
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    CHECK(jnum(c, "index") == 0 && jstr(c, "text") && cJSON_IsNull(cJSON_GetObjectItem(c, "logprobs")), "choice");
    const char *f = jstr(c, "finish_reason");
    CHECK(f && (!strcmp(f, "stop") || !strcmp(f, "length")), "finish_reason %s", f);
    check_usage(j);
    CHECK(jstr(j, "system_fingerprint") != NULL, "system_fingerprint");
    cJSON_Delete(j);
    /* top_k -1 means off (vLLM's spelling); null fields keep their defaults */
    j = post(g.port, "/v1/completions", "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":4,\"top_k\":-1,\"stop\":null,\"seed\":null}", &st);
    CHECK(j && st == 200 && jstr(j, "choices.0.text"), "top_k -1: %d", st);
    cJSON_Delete(j);
}

static void test_chat_schema(void) {
    int st;
    cJSON *j = post(g.port, "/v1/chat/completions",
                    "{\"model\":\"pika-math-l\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 3 + 4?\"}],\"temperature\":0}", &st);
    REQUIRE(j && st == 200, "status %d", st);
    check_common(j, "chat.completion", "chatcmpl-");
    CHECK(jstr(j, "choices.0.message.role") && !strcmp(jstr(j, "choices.0.message.role"), "assistant"), "role");
    CHECK(jstr(j, "choices.0.message.content") && !strcmp(jstr(j, "choices.0.message.content"), "7"), "3 + 4 = %s",
          jstr(j, "choices.0.message.content"));
    CHECK(jstr(j, "choices.0.finish_reason") && !strcmp(jstr(j, "choices.0.finish_reason"), "stop"), "finish");
    check_usage(j);
    cJSON_Delete(j);
    /* content as text parts, a system message */
    j = post(g.port, "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is 3 \"},{\"type\":\"text\",\"text\":\"+ 4?\"}]}],"
             "\"temperature\":0}", &st);
    CHECK(j && st == 200 && jstr(j, "choices.0.message.content") && !strcmp(jstr(j, "choices.0.message.content"), "7"),
          "text parts: %d", st);
    cJSON_Delete(j);
}

/* Read a whole stream: the events' JSON (array), whether it ended with [DONE]. */
static cJSON *read_stream(int port, const char *path, const char *body, int *done, int *status) {
    *done = 0;
    tc_conn *c = tc_open(port, "POST", path, body, -1, NULL);
    if (!c) return NULL;
    *status = c->status;
    cJSON *events = cJSON_CreateArray();
    char *ev;
    while ((ev = tc_next_event(c))) {
        if (*done) *done = -1; /* something after [DONE] */
        if (!strcmp(ev, "[DONE]")) *done = *done ? -1 : 1;
        else {
            cJSON *e = cJSON_Parse(ev);
            cJSON_AddItemToArray(events, e ? e : cJSON_CreateString(ev));
        }
        free(ev);
    }
    tc_close(c);
    return events;
}

static void test_stream_schema(void) {
    int st, done;
    const char *body = "{\"prompt\":\"What is 12 + 45?\",\"max_tokens\":10,\"temperature\":0,\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true}}";
    cJSON *ev = read_stream(g.port, "/v1/completions", body, &done, &st);
    REQUIRE(ev, "no stream");
    CHECK(st == 200 && done == 1, "status %d done %d", st, done);
    int n = cJSON_GetArraySize(ev);
    REQUIRE(n >= 2, "%d events", n);
    pika_buf text = {0};
    const char *id0 = jstr(cJSON_GetArrayItem(ev, 0), "id");
    int finishes = 0;
    for (int i = 0; i < n - 1; i++) {
        const cJSON *e = cJSON_GetArrayItem(ev, i);
        check_common(e, "text_completion", "cmpl-");
        CHECK(id0 && jstr(e, "id") && !strcmp(jstr(e, "id"), id0), "one id for every chunk");
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "usage")), "usage null before the last chunk");
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(e, "choices"), 0);
        if (jstr(c, "text")) pika_buf_puts(&text, jstr(c, "text"));
        if (jstr(c, "finish_reason")) finishes++;
    }
    CHECK(finishes == 1, "%d finish reasons", finishes);
    const cJSON *last = cJSON_GetArrayItem(ev, n - 1);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(last, "choices")) == 0, "the usage chunk has no choices");
    check_usage(last);
    /* the same text as without streaming */
    cJSON *j = post(g.port, "/v1/completions", "{\"prompt\":\"What is 12 + 45?\",\"max_tokens\":10,\"temperature\":0}", &st);
    CHECK(j && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), text.s ? text.s : ""), "stream '%s' vs '%s'",
          text.s ? text.s : "", j ? jstr(j, "choices.0.text") : "?");
    CHECK(jnum(last, "usage.completion_tokens") == jnum(j, "usage.completion_tokens"), "usage differs");
    cJSON_Delete(j);
    cJSON_Delete(ev);
    free(text.s);

    /* chat: role first, content deltas, finish, no usage unless asked */
    body = "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 12 + 45?\"}],\"temperature\":0,\"stream\":true}";
    ev = read_stream(g.port, "/v1/chat/completions", body, &done, &st);
    REQUIRE(ev, "no chat stream");
    n = cJSON_GetArraySize(ev);
    CHECK(st == 200 && done == 1 && n >= 2, "status %d done %d events %d", st, done, n);
    CHECK(jstr(cJSON_GetArrayItem(ev, 0), "choices.0.delta.role") && !strcmp(jstr(cJSON_GetArrayItem(ev, 0), "choices.0.delta.role"), "assistant"),
          "first delta has the role");
    pika_buf ct = {0};
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(ev, i);
        check_common(e, "chat.completion.chunk", "chatcmpl-");
        CHECK(!cJSON_GetObjectItem(e, "usage"), "no usage without include_usage");
        if (jstr(e, "choices.0.delta.content")) pika_buf_puts(&ct, jstr(e, "choices.0.delta.content"));
    }
    CHECK(jstr(cJSON_GetArrayItem(ev, n - 1), "choices.0.finish_reason") != NULL, "the last chunk has the finish reason");
    CHECK(ct.s && !strcmp(ct.s, "57"), "12 + 45 = %s", ct.s ? ct.s : "");
    free(ct.s);
    cJSON_Delete(ev);
}

/* ------------------------------------------------------------------ equality with local generation */

static void test_greedy_equals_generate(void) {
    const char *prompts[] = {"What is 3 + 4?", "Compute 6 * 7 + 3.", "What is 47 + 8 - 12?",
                             "Ann has 12 apples. She gets 5 more. How many apples does she have now?"};
    for (size_t i = 0; i < sizeof prompts / sizeof *prompts; i++) {
        char args[512], body[1024];
        int st;
        /* /v1/completions vs --prompt */
        snprintf(args, sizeof args, "--prompt '%s' --temperature 0 -n 24", prompts[i]);
        char *want = local_generate(args);
        REQUIRE(want, "pika generate failed");
        snprintf(body, sizeof body, "{\"prompt\":\"%s\",\"max_tokens\":24,\"temperature\":0}", prompts[i]);
        cJSON *j = post(g.port, "/v1/completions", body, &st);
        CHECK(j && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want), "completions '%s': '%s' vs local '%s'",
              prompts[i], j ? jstr(j, "choices.0.text") : "?", want);
        cJSON_Delete(j);
        free(want);
        /* /v1/chat/completions vs --user */
        snprintf(args, sizeof args, "--user '%s' --temperature 0 -n 24", prompts[i]);
        want = local_generate(args);
        REQUIRE(want, "pika generate --user failed");
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":24,\"temperature\":0}", prompts[i]);
        j = post(g.port, "/v1/chat/completions", body, &st);
        CHECK(j && jstr(j, "choices.0.message.content") && !strcmp(jstr(j, "choices.0.message.content"), want),
              "chat '%s': '%s' vs local '%s'", prompts[i], j ? jstr(j, "choices.0.message.content") : "?", want);
        cJSON_Delete(j);
        free(want);
    }
    /* a long greedy run past the end-of-generation token, and stop strings */
    char *want = local_generate("--prompt 'What is 3 + 4?' --temperature 0 -n 60 --ignore-eos");
    int st;
    cJSON *j = post(g.port, "/v1/completions", "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":60,\"temperature\":0,\"ignore_eos\":true}", &st);
    CHECK(want && j && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want), "ignore_eos: '%s' vs '%s'",
          j ? jstr(j, "choices.0.text") : "?", want ? want : "?");
    CHECK(j && jstr(j, "choices.0.finish_reason") && !strcmp(jstr(j, "choices.0.finish_reason"), "length"), "finish length");
    cJSON_Delete(j);
    free(want);
    want = local_generate("--prompt 'What is 3 + 4?' --temperature 0 -n 60 --ignore-eos --stop 11 --stop 44");
    j = post(g.port, "/v1/completions",
             "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":60,\"temperature\":0,\"ignore_eos\":true,\"stop\":[\"11\",\"44\"]}", &st);
    CHECK(want && j && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want), "stop: '%s' vs '%s'",
          j ? jstr(j, "choices.0.text") : "?", want ? want : "?");
    cJSON_Delete(j);
    free(want);
    /* token ids in, as --ids */
    want = local_generate("--ids '1 3 40 41 42 4' --temperature 0 -n 12 --print-ids");
    j = post(g.port, "/v1/completions", "{\"prompt\":[1,3,40,41,42,4],\"max_tokens\":12,\"temperature\":0,\"logprobs\":0}", &st);
    REQUIRE(j && st == 200, "ids prompt: %d", st);
    /* compare ids through the logprobs tokens count and the text of the same ids */
    char *want_text = local_generate("--ids '1 3 40 41 42 4' --temperature 0 -n 12");
    CHECK(want_text && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want_text), "ids: '%s' vs '%s'",
          jstr(j, "choices.0.text"), want_text ? want_text : "?");
    int nw = 0;
    for (const char *p = want; p && *p;) { while (*p == ' ') p++; if (*p) nw++; while (*p && *p != ' ') p++; }
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "logprobs"), "tokens")) == nw,
          "token count");
    free(want_text);
    free(want);
    cJSON_Delete(j);
}

static void test_seeded_equals_local(void) {
    /* n = 1: exactly `pika generate --seed S` with the same sampling options */
    const uint64_t seeds[] = {1, 42, 123456789};
    for (int i = 0; i < 3; i++) {
        char args[512], body[1024];
        int st;
        snprintf(args, sizeof args, "--prompt 'What is 47 + 8 - 12?' --temperature 1.3 --top-k 40 --top-p 0.95 --min-p 0.01 --seed %llu -n 30 --ignore-eos",
                 (unsigned long long)seeds[i]);
        char *want = local_generate(args);
        snprintf(body, sizeof body, "{\"prompt\":\"What is 47 + 8 - 12?\",\"temperature\":1.3,\"top_k\":40,\"top_p\":0.95,\"min_p\":0.01,"
                 "\"seed\":%llu,\"max_tokens\":30,\"ignore_eos\":true}", (unsigned long long)seeds[i]);
        cJSON *j = post(g.port, "/v1/completions", body, &st);
        CHECK(want && j && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), want), "seed %llu: '%s' vs '%s'",
              (unsigned long long)seeds[i], j ? jstr(j, "choices.0.text") : "?", want ? want : "?");
        /* n = 3: choice k samples with seed + k */
        snprintf(body, sizeof body, "{\"prompt\":\"What is 47 + 8 - 12?\",\"temperature\":1.3,\"top_k\":40,\"top_p\":0.95,\"min_p\":0.01,"
                 "\"seed\":%llu,\"max_tokens\":30,\"ignore_eos\":true,\"n\":3}", (unsigned long long)seeds[i]);
        cJSON *jn = post(g.port, "/v1/completions", body, &st);
        REQUIRE(jn && cJSON_GetArraySize(cJSON_GetObjectItem(jn, "choices")) == 3, "n=3: %d", st);
        for (int k = 0; k < 3; k++) {
            snprintf(args, sizeof args, "--prompt 'What is 47 + 8 - 12?' --temperature 1.3 --top-k 40 --top-p 0.95 --min-p 0.01 --seed %llu -n 30 --ignore-eos",
                     (unsigned long long)(seeds[i] + (uint64_t)k));
            char *wk = local_generate(args);
            char path[64];
            snprintf(path, sizeof path, "choices.%d.text", k);
            CHECK(wk && jstr(jn, path) && !strcmp(jstr(jn, path), wk), "seed %llu choice %d: '%s' vs '%s'", (unsigned long long)seeds[i], k,
                  jstr(jn, path), wk ? wk : "?");
            snprintf(path, sizeof path, "choices.%d.index", k);
            CHECK(jnum(jn, path) == k, "index");
            free(wk);
        }
        cJSON_Delete(jn);
        cJSON_Delete(j);
        free(want);
    }
    /* "pika": {"id"} — the k samples of `pika sample` for that question */
    const char *dir = test_tmpdir();
    char data[400], out[400], cmd[2048];
    snprintf(data, sizeof data, "%s/q.jsonl", dir);
    snprintf(out, sizeof out, "%s/rollouts.jsonl", dir);
    FILE *f = fopen(data, "w");
    fprintf(f, "{\"id\": \"q17\", \"problem\": \"What is 125 + 37?\"}\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s sample --model %s --data %s --out %s -k 3 --seed 9 --temperature 0.8 --max-tokens 12 --threads 1 2>&1",
             test_pika_bin(), MODEL, data, out);
    int st;
    free(test_run(cmd, &st));
    REQUIRE(st == 0, "pika sample failed");
    char *txt = pika_read_file(out, NULL);
    REQUIRE(txt, "no rollouts");
    int sst;
    cJSON *j = post(g.port, "/v1/chat/completions",
                    "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 125 + 37?\"}],\"n\":3,\"seed\":9,\"temperature\":0.8,"
                    "\"max_tokens\":12,\"pika\":{\"id\":\"q17\"}}", &sst);
    REQUIRE(j && sst == 200, "chat n=3: %d", sst);
    int matched = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *r = cJSON_Parse(line);
        int s = (int)jnum(r, "sample");
        char path[64];
        snprintf(path, sizeof path, "choices.%d.message.content", s);
        CHECK(jstr(r, "text") && jstr(j, path) && !strcmp(jstr(r, "text"), jstr(j, path)), "sample %d: local '%s' server '%s'", s,
              jstr(r, "text"), jstr(j, path));
        snprintf(path, sizeof path, "choices.%d.finish_reason", s);
        CHECK(jstr(r, "finish") && jstr(j, path) && !strcmp(jstr(r, "finish"), jstr(j, path)), "finish of sample %d", s);
        matched++;
        cJSON_Delete(r);
    }
    CHECK(matched == 3, "%d rollouts", matched);
    free(txt);
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ batching */

typedef struct {
    int port;
    const char *path, *body;
    int status;
    char *text;
} call;

static void *call_thread(void *arg) {
    call *c = arg;
    cJSON *j = post(c->port, c->path, c->body, &c->status);
    const char *t = jstr(j, "choices.0.text");
    c->text = t ? strdup(t) : NULL;
    cJSON_Delete(j);
    return NULL;
}

static void test_batching(void) {
    const char *bodies[3] = {
        "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":100,\"temperature\":0,\"ignore_eos\":true}",
        "{\"prompt\":\"Compute 6 * 7 + 3.\",\"max_tokens\":90,\"temperature\":0.9,\"seed\":5,\"ignore_eos\":true}",
        "{\"prompt\":\"What is 47 + 8 - 12?\",\"max_tokens\":80,\"temperature\":0,\"ignore_eos\":true}"};
    char *seq[3];
    for (int i = 0; i < 3; i++) {
        int st;
        cJSON *j = post(g.port, "/v1/completions", bodies[i], &st);
        seq[i] = jstr(j, "choices.0.text") ? strdup(jstr(j, "choices.0.text")) : NULL;
        cJSON_Delete(j);
        REQUIRE(seq[i], "sequential request %d failed (%d)", i, st);
    }
    int overlapped = 0;
    double before = 0, after = 0;
    for (int attempt = 0; attempt < 5 && !overlapped; attempt++) {
        before = metric(g.port, "pika_decode_batched_steps_total");
        /* send all three bodies but their last byte, then release them together */
        int fds[3];
        for (int i = 0; i < 3; i++) fds[i] = tc_hold(g.port, "/v1/completions", bodies[i]);
        tc_conn *cs[3];
        for (int i = 0; i < 3; i++) tc_send_all(fds[i], bodies[i] + strlen(bodies[i]) - 1, 1);
        for (int i = 0; i < 3; i++) cs[i] = tc_attach(fds[i]);
        for (int i = 0; i < 3; i++) {
            REQUIRE(cs[i], "no answer to concurrent request %d", i);
            tc_resp r;
            tc_read_all(cs[i], &r);
            tc_close(cs[i]);
            cJSON *j = cJSON_Parse(r.body);
            CHECK(r.status == 200 && jstr(j, "choices.0.text") && !strcmp(jstr(j, "choices.0.text"), seq[i]),
                  "concurrent request %d differs from the sequential one", i);
            cJSON_Delete(j);
            tc_resp_free(&r);
        }
        after = metric(g.port, "pika_decode_batched_steps_total");
        overlapped = after > before;
    }
    CHECK(overlapped, "concurrent requests never shared a decode step (batched steps %g -> %g)", before, after);
    CHECK(metric(g.port, "pika_decode_batch_size_max") >= 2, "max batch %g", metric(g.port, "pika_decode_batch_size_max"));
    /* threads with plain requests as well (the common client pattern) */
    call c[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        c[i] = (call){g.port, "/v1/completions", bodies[i], 0, NULL};
        pthread_create(&t[i], NULL, call_thread, &c[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        CHECK(c[i].status == 200 && c[i].text && !strcmp(c[i].text, seq[i]), "threaded request %d differs", i);
        free(c[i].text);
        free(seq[i]);
    }
    /* several prompts in one request = each alone (prompt-major choices) */
    int st;
    cJSON *j = post(g.port, "/v1/completions",
                    "{\"prompt\":[\"What is 3 + 4?\",\"What is 47 + 8 - 12?\"],\"n\":2,\"max_tokens\":20,\"temperature\":0.7,\"seed\":3}", &st);
    REQUIRE(j && st == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(j, "choices")) == 4, "two prompts x n=2: %d", st);
    const char *ps[2] = {"What is 3 + 4?", "What is 47 + 8 - 12?"};
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 2; k++) {
            char args[256], path[64];
            snprintf(args, sizeof args, "--prompt '%s' --temperature 0.7 --seed %d -n 20", ps[p], 3 + k);
            char *w = local_generate(args);
            snprintf(path, sizeof path, "choices.%d.text", p * 2 + k);
            CHECK(w && jstr(j, path) && !strcmp(jstr(j, path), w), "prompt %d choice %d: '%s' vs '%s'", p, k, jstr(j, path), w ? w : "?");
            free(w);
        }
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ extension, logprobs */

static void test_hidden_extension(void) {
    pika_model *m = pika_model_load(MODEL);
    REQUIRE(m, "%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    pika_prompt_recipe *rec = pika_prompt_recipe_new(pika_model_gguf(m), tok, &po);
    REQUIRE(rec, "%s", pika_last_error());
    pika_prompt p;
    REQUIRE(pika_prompt_build(rec, "What is 21 + 13?", &p) == 0, "%s", pika_last_error());
    int layers[3] = {0, 2, hp->n_layer}, pos[3] = {-3, -2, -1};
    size_t nf = 9 * (size_t)hp->n_embd;
    float *want = malloc(sizeof(float) * nf);
    pika_ctx *c = pika_ctx_new(m, 1);
    pika_forward_req req = {3, layers, 3, pos, want, NULL};
    REQUIRE(pika_forward(c, p.ids, p.n_ids, &req) == 0, "%s", pika_last_error());
    int st;
    char body[512];
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 21 + 13?\"}],\"max_tokens\":0,"
             "\"pika\":{\"hidden_layers\":[0,2,%d],\"positions\":[-3,-2,-1]}}", hp->n_layer);
    cJSON *j = post(g.port, "/v1/chat/completions", body, &st);
    REQUIRE(j && st == 200, "status %d", st);
    const cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pika"), "hidden"), 0);
    CHECK(jstr(h, "dtype") && !strcmp(jstr(h, "dtype"), "float32"), "dtype");
    CHECK(jnum(h, "shape.0") == 3 && jnum(h, "shape.1") == 3 && jnum(h, "shape.2") == hp->n_embd, "shape");
    CHECK(jnum(h, "n_prompt_tokens") == p.n_ids, "prompt tokens %g vs %d", jnum(h, "n_prompt_tokens"), p.n_ids);
    size_t n = 0;
    float *got = jstr(h, "data") ? pika_base64_decode(jstr(h, "data"), &n) : NULL;
    CHECK(got && n == sizeof(float) * nf && !memcmp(got, want, n), "the residual stream differs from pika_forward's");
    CHECK(jstr(j, "choices.0.message.content") && !*jstr(j, "choices.0.message.content") && jnum(j, "usage.completion_tokens") == 0,
          "max_tokens 0 generates nothing");
    free(got);
    cJSON_Delete(j);
    /* the same through /v1/completions with the rendered prompt text (specials parsed, no second BOS), streamed */
    char *esc = NULL;
    {
        cJSON *s = cJSON_CreateString(p.text);
        esc = cJSON_PrintUnformatted(s);
        cJSON_Delete(s);
    }
    char body2[2048];
    snprintf(body2, sizeof body2, "{\"prompt\":%s,\"max_tokens\":4,\"stream\":true,\"temperature\":0,"
             "\"pika\":{\"hidden_layers\":[0,2,%d],\"positions\":[-3,-2,-1]}}", esc, hp->n_layer);
    free(esc);
    int done;
    cJSON *ev = read_stream(g.port, "/v1/completions", body2, &done, &st);
    REQUIRE(ev && st == 200 && done == 1, "stream %d %d", st, done);
    const cJSON *h2 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(ev, 0), "pika"), "hidden"), 0);
    got = jstr(h2, "data") ? pika_base64_decode(jstr(h2, "data"), &n) : NULL;
    CHECK(got && n == sizeof(float) * nf && !memcmp(got, want, n), "rendered text through /v1/completions: hidden states differ");
    free(got);
    cJSON_Delete(ev);
    /* a plain text prompt: the ids of raw tokenization (BOS as the vocab asks) */
    int32_t *ids;
    int ni = pika_tokenize(tok, "What is 21 + 13?", 16, true, false, &ids);
    pika_forward_req req2 = {3, layers, 1, pos + 2, want, NULL};
    pika_ctx_reset(c);
    pika_forward(c, ids, ni, &req2);
    snprintf(body, sizeof body, "{\"prompt\":\"What is 21 + 13?\",\"max_tokens\":0,\"pika\":{\"hidden_layers\":[0,2,%d]}}", hp->n_layer);
    j = post(g.port, "/v1/completions", body, &st);
    h = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pika"), "hidden"), 0);
    got = jstr(h, "data") ? pika_base64_decode(jstr(h, "data"), &n) : NULL;
    CHECK(got && n == sizeof(float) * 3 * (size_t)hp->n_embd && !memcmp(got, want, n), "plain prompt (default position -1): differs");
    CHECK(jnum(h, "n_prompt_tokens") == ni, "tokens %g vs %d", jnum(h, "n_prompt_tokens"), ni);
    free(got);
    free(ids);
    cJSON_Delete(j);
    free(want);
    pika_prompt_free(&p);
    pika_prompt_recipe_free(rec);
    pika_ctx_free(c);
    pika_tokenizer_free(tok);
    pika_model_free(m);
}

/* Prompt cache: a second prompt sharing a long prefix with the first reuses its KV rows (usage says
 * how many), and its answer, logprobs and residual stream are those of a full prefill (cache_prompt
 * false) bit for bit; the metric counts the reused tokens. */
static void test_prompt_cache(void) {
    /* token-id prompts (this model's context is 128): a 40-token shared head, then 8 different tokens */
    char head[512] = "1", tail[3][128];
    for (int i = 0; i < 39; i++) snprintf(head + strlen(head), sizeof head - strlen(head), ",%d", 5 + (i * 37) % 300);
    for (int r = 0; r < 3; r++) {
        tail[r][0] = 0;
        for (int i = 0; i < 8; i++)
            snprintf(tail[r] + strlen(tail[r]), sizeof tail[r] - strlen(tail[r]), ",%d", 10 + (r == 2 ? 1 : r) * 50 + i * 3);
    }
    double cached_before = metric(g.port, "pika_prompt_tokens_cached_total");
    char *text_ref = NULL, *hid_ref = NULL;
    for (int round = 0; round < 3; round++) {
        for (int cache = 1; cache >= 0; cache--) {
            char body[2048];
            int st;
            snprintf(body, sizeof body,
                     "{\"prompt\":[%s%s],\"max_tokens\":12,\"temperature\":0,\"logprobs\":2,\"ignore_eos\":true,"
                     "\"cache_prompt\":%s,\"pika\":{\"hidden_layers\":[1,2,4],\"positions\":[-2,-1]}}",
                     head, tail[round], cache ? "true" : "false");
            cJSON *j = post(g.port, "/v1/completions", body, &st);
            REQUIRE(j && st == 200, "round %d cache %d: status %d", round, cache, st);
            double ct = jnum(j, "usage.prompt_tokens_details.cached_tokens"), pt = jnum(j, "usage.prompt_tokens");
            CHECK(pt == 48, "prompt tokens %g", pt);
            if (!cache) CHECK(ct == 0, "cache_prompt false: %g cached tokens", ct);
            /* round 1 shares the 40-token head with round 0; round 2 is round 1's prompt again (44 = 48 - 4) */
            if (cache && round == 1) CHECK(ct == 40, "round 1: %g cached tokens, want 40", ct);
            if (cache && round == 2) CHECK(ct == 44, "round 2: %g cached tokens, want 44", ct);
            const cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "pika"), "hidden"), 0);
            char *lp = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "logprobs"));
            const char *txt = jstr(j, "choices.0.text"), *hd = jstr(h, "data");
            REQUIRE(txt && hd && lp, "answer fields");
            char *both = malloc(strlen(txt) + strlen(lp) + 2);
            sprintf(both, "%s|%s", txt, lp);
            if (cache) { /* the reference is the uncached request that follows */
                free(text_ref); free(hid_ref);
                text_ref = both; hid_ref = strdup(hd);
            } else {
                CHECK(!strcmp(both, text_ref), "round %d: cached answer/logprobs differ from the full prefill's", round);
                CHECK(!strcmp(hd, hid_ref), "round %d: cached residual stream differs from the full prefill's", round);
                free(both);
            }
            free(lp);
            cJSON_Delete(j);
        }
    }
    free(text_ref); free(hid_ref);
    CHECK(metric(g.port, "pika_prompt_tokens_cached_total") >= cached_before + 84, "cached tokens metric");
}

static void test_logprobs(void) {
    int st;
    cJSON *j = post(g.port, "/v1/completions", "{\"prompt\":\"What is 47 + 8 - 12?\",\"max_tokens\":6,\"temperature\":0,\"logprobs\":3}", &st);
    REQUIRE(j && st == 200, "%d", st);
    const cJSON *lp = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "logprobs");
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(lp, "tokens"));
    CHECK(n == (int)jnum(j, "usage.completion_tokens") && n > 0, "%d tokens", n);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(lp, "token_logprobs")) == n && cJSON_GetArraySize(cJSON_GetObjectItem(lp, "top_logprobs")) == n &&
              cJSON_GetArraySize(cJSON_GetObjectItem(lp, "text_offset")) == n, "array lengths");
    pika_buf joined = {0};
    for (int i = 0; i < n; i++) {
        const cJSON *top = cJSON_GetArrayItem(cJSON_GetObjectItem(lp, "top_logprobs"), i);
        double tl = cJSON_GetArrayItem(cJSON_GetObjectItem(lp, "token_logprobs"), i)->valuedouble;
        CHECK(cJSON_GetArraySize(top) == 3, "top %d", cJSON_GetArraySize(top));
        double best = -1e30, mass = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, top) { best = fmax(best, it->valuedouble); mass += exp(it->valuedouble); }
        CHECK(tl <= 0 && fabs(tl - best) < 1e-6, "greedy token %d: logprob %g, best %g", i, tl, best);
        CHECK(mass <= 1 + 1e-5, "mass %g", mass);
        pika_buf_puts(&joined, cJSON_GetArrayItem(cJSON_GetObjectItem(lp, "tokens"), i)->valuestring);
    }
    const char *text = jstr(j, "choices.0.text");
    CHECK(text && joined.s && strstr(joined.s, text), "tokens '%s' do not spell the text '%s'", joined.s ? joined.s : "", text);
    free(joined.s);
    cJSON_Delete(j);
    j = post(g.port, "/v1/chat/completions",
             "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 3 + 4?\"}],\"temperature\":0,\"logprobs\":true,\"top_logprobs\":2}", &st);
    REQUIRE(j && st == 200, "%d", st);
    const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0), "logprobs"), "content");
    CHECK(cJSON_GetArraySize(content) == 1, "chat logprobs entries %d", cJSON_GetArraySize(content));
    const cJSON *e = cJSON_GetArrayItem(content, 0);
    CHECK(jstr(e, "token") && !strcmp(jstr(e, "token"), "7") && jnum(e, "logprob") <= 0 && jnum(e, "bytes.0") == '7' &&
              cJSON_GetArraySize(cJSON_GetObjectItem(e, "top_logprobs")) == 2 && jnum(e, "top_logprobs.0.logprob") == jnum(e, "logprob"),
          "chat logprob entry");
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ errors */

static void expect_error(const char *path, const char *body, int want, const char *param, const char *what) {
    int st;
    cJSON *j = post(g.port, path, body, &st);
    CHECK(st == want, "%s: status %d, want %d", what, st, want);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "message")) && cJSON_IsString(cJSON_GetObjectItem(e, "type")) &&
              cJSON_GetObjectItem(e, "param") && cJSON_GetObjectItem(e, "code"),
          "%s: not an OpenAI error object", what);
    if (param) CHECK(jstr(e, "param") && !strcmp(jstr(e, "param"), param), "%s: param %s, want %s", what, jstr(e, "param"), param);
    cJSON_Delete(j);
}

static void test_errors(void) {
    const char *C = "/v1/completions", *H = "/v1/chat/completions";
    expect_error(C, "{\"prompt\": \"x\",", 400, NULL, "malformed JSON");
    expect_error(C, "[1, 2]", 400, NULL, "not an object");
    expect_error(C, "{\"max_tokens\": 4}", 400, "prompt", "no prompt");
    expect_error(C, "{\"prompt\": 5}", 400, "prompt", "prompt of the wrong type");
    expect_error(C, "{\"prompt\": [1, \"a\"]}", 400, "prompt", "mixed prompt array");
    expect_error(C, "{\"prompt\": [1, 99999]}", 400, "prompt", "token id out of range");
    expect_error(C, "{\"prompt\": \"x\", \"temperature\": \"hot\"}", 400, "temperature", "temperature of the wrong type");
    expect_error(C, "{\"prompt\": \"x\", \"temperature\": -1}", 400, "temperature", "negative temperature");
    expect_error(C, "{\"prompt\": \"x\", \"top_p\": 0}", 400, "top_p", "top_p 0");
    expect_error(C, "{\"prompt\": \"x\", \"max_tokens\": 1.5}", 400, "max_tokens", "fractional max_tokens");
    expect_error(C, "{\"prompt\": \"x\", \"stop\": [1]}", 400, "stop", "stop of the wrong type");
    expect_error(C, "{\"prompt\": \"x\", \"n\": 0}", 400, "n", "n = 0");
    expect_error(C, "{\"prompt\": \"x\", \"n\": 5}", 400, "n", "n over the slots");
    expect_error(C, "{\"prompt\": \"x\", \"stream\": \"yes\"}", 400, "stream", "stream of the wrong type");
    expect_error(C, "{\"prompt\": \"x\", \"logprobs\": 50}", 400, "logprobs", "too many logprobs");
    expect_error(C, "{\"prompt\": \"x\", \"echo\": true}", 400, "echo", "echo");
    expect_error(C, "{\"prompt\": \"x\", \"logit_bias\": {\"5\": 10}}", 400, "logit_bias", "logit_bias");
    expect_error(C, "{\"prompt\": \"x\", \"presence_penalty\": 0.5}", 400, "presence_penalty", "presence penalty");
    expect_error(C, "{\"prompt\": \"x\", \"pika\": {\"hidden_layers\": [99]}}", 400, "pika.hidden_layers", "layer out of range");
    expect_error(C, "{\"prompt\": \"x\", \"pika\": {\"hidden_layers\": [1], \"positions\": [-50]}}", 400, "pika.positions", "position outside the prompt");
    expect_error(C, "{\"prompt\": \"x\", \"pika\": {\"bogus\": 1}}", 400, "pika", "unknown pika field");
    expect_error(C, "{\"prompt\": \"x\", \"model\": 3}", 400, "model", "model of the wrong type");
    expect_error(H, "{\"messages\": []}", 400, "messages", "no messages");
    expect_error(H, "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}", 400, "messages[0]", "bad role");
    expect_error(H, "{\"messages\": [{\"role\": \"user\", \"content\": 7}]}", 400, "messages[0]", "content of the wrong type");
    expect_error(H, "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}", 400, "messages[0]", "image content");
    expect_error(H, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_logprobs\": 2}", 400, "top_logprobs", "top_logprobs without logprobs");
    expect_error(H, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\"}]}", 400, "tools", "tools");
    /* a prompt longer than the context (128 tokens per slot here) */
    pika_buf big = {0};
    pika_buf_puts(&big, "{\"prompt\": \"");
    for (int i = 0; i < 100; i++) pika_buf_puts(&big, "1 + ");
    pika_buf_puts(&big, "1\"}");
    int st;
    cJSON *j = post(g.port, C, big.s, &st);
    CHECK(st == 400 && jstr(j, "error.code") && !strcmp(jstr(j, "error.code"), "context_length_exceeded"), "long prompt: %d", st);
    cJSON_Delete(j);
    free(big.s);
    /* a body over the limit (64 KiB here) */
    size_t n = 100000;
    char *huge = malloc(n + 1);
    memset(huge, ' ', n);
    memcpy(huge, "{\"prompt\": \"", 12);
    memcpy(huge + n - 2, "\"}", 2);
    huge[n] = 0;
    j = post(g.port, C, huge, &st);
    CHECK(st == 413 && jstr(j, "error.type"), "big body: %d", st);
    cJSON_Delete(j);
    free(huge);
    /* unknown path, wrong method */
    tc_resp r;
    tc_request(g.port, "GET", "/v1/nothing", NULL, 0, NULL, &r);
    CHECK(r.status == 404 && strstr(r.body, "\"error\""), "unknown path: %d", r.status);
    tc_resp_free(&r);
    tc_request(g.port, "GET", "/v1/completions", NULL, 0, NULL, &r);
    CHECK(r.status == 405, "GET on completions: %d", r.status);
    tc_resp_free(&r);
    /* a request that is cut off in the middle of its body */
    int fd = tc_connect(g.port);
    const char *part = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"prompt\": \"What";
    tc_send_all(fd, part, strlen(part));
    close(fd);
    /* still up, still right */
    j = post(g.port, H, "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 3 + 4?\"}],\"temperature\":0}", &st);
    CHECK(st == 200 && jstr(j, "choices.0.message.content") && !strcmp(jstr(j, "choices.0.message.content"), "7"), "after the errors: %d", st);
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ clients that leave, the queue */

static void wait_idle(int port, double seconds) {
    for (double t = 0; t < seconds; t += 0.05) {
        if (metric(port, "pika_slots_busy") == 0 && metric(port, "pika_queue_depth") == 0) return;
        usleep(50000);
    }
}

static void test_client_killed_mid_stream(void) {
    wait_idle(g.port, 5);
    double gone0 = metric(g.port, "pika_requests_cancelled_total");
    const char *other = "{\"prompt\":\"Compute 6 * 7 + 3.\",\"max_tokens\":60,\"temperature\":0,\"ignore_eos\":true}";
    int st;
    cJSON *j = post(g.port, "/v1/completions", other, &st);
    char *want = jstr(j, "choices.0.text") ? strdup(jstr(j, "choices.0.text")) : NULL;
    cJSON_Delete(j);
    REQUIRE(want, "reference request failed");
    /* a long stream; read two events, then kill the connection while another request runs */
    tc_conn *c = tc_open(g.port, "POST", "/v1/chat/completions",
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"What is 3 + 4?\"}],\"max_tokens\":120,\"ignore_eos\":true,\"stream\":true}", -1, NULL);
    REQUIRE(c && c->status == 200, "stream");
    call oc = {g.port, "/v1/completions", other, 0, NULL};
    pthread_t t;
    pthread_create(&t, NULL, call_thread, &oc);
    char *e1 = tc_next_event(c), *e2 = tc_next_event(c);
    CHECK(e1 && e2, "events");
    free(e1);
    free(e2);
    tc_abort(c);
    pthread_join(t, NULL);
    CHECK(oc.status == 200 && oc.text && !strcmp(oc.text, want), "the other request was affected: '%s' vs '%s'", oc.text, want);
    free(oc.text);
    free(want);
    wait_idle(g.port, 5);
    CHECK(metric(g.port, "pika_requests_cancelled_total") >= gone0 + 1, "the cancelled stream was not counted");
    CHECK(metric(g.port, "pika_slots_busy") == 0, "slots still busy after the client left");
    /* a non-streaming client that leaves while its request runs */
    double gone1 = metric(g.port, "pika_requests_cancelled_total");
    int fd = tc_connect(g.port);
    const char *body = "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":120,\"ignore_eos\":true}";
    char req[512];
    snprintf(req, sizeof req, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    tc_send_all(fd, req, strlen(req));
    usleep(5000);
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
    for (int i = 0; i < 60 && metric(g.port, "pika_requests_cancelled_total") < gone1 + 1; i++) usleep(50000);
    /* (it may also have finished first on a fast machine: then it is not a cancellation) */
    wait_idle(g.port, 5);
    CHECK(metric(g.port, "pika_slots_busy") == 0, "slots busy");
    tc_resp r;
    tc_request(g.port, "GET", "/health", NULL, 0, NULL, &r);
    CHECK(r.status == 200, "health after the clients left: %d", r.status);
    tc_resp_free(&r);
}

static void test_queue_limit(void) {
    /* one slot, one waiting request at most, long answers */
    server q;
    REQUIRE(srv_start(&q, "--parallel 1 --queue 1 --ctx 2048 --quiet") == 0, "server did not start");
    const char *longb = "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":2000,\"ignore_eos\":true,\"temperature\":0,\"stream\":true}";
    tc_conn *a = tc_open(q.port, "POST", "/v1/completions", longb, -1, NULL);
    REQUIRE(a && a->status == 200, "first request");
    char *ev = tc_next_event(a);
    free(ev);
    /* the second waits */
    call b = {q.port, "/v1/completions", "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":5,\"temperature\":0}", 0, NULL};
    pthread_t tb;
    pthread_create(&tb, NULL, call_thread, &b);
    for (int i = 0; i < 100 && metric(q.port, "pika_queue_depth") < 1; i++) usleep(20000);
    CHECK(metric(q.port, "pika_queue_depth") == 1, "queue depth %g", metric(q.port, "pika_queue_depth"));
    /* the third is refused */
    int st;
    cJSON *j = post(q.port, "/v1/completions", "{\"prompt\":\"What is 3 + 4?\",\"max_tokens\":5}", &st);
    CHECK(st == 503 && jstr(j, "error.type") && !strcmp(jstr(j, "error.type"), "unavailable_error"), "over the queue limit: %d", st);
    cJSON_Delete(j);
    CHECK(metric(q.port, "pika_requests_rejected_total") == 1, "rejected count");
    tc_resp r;
    tc_request(q.port, "GET", "/health", NULL, 0, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body, "\"queue_depth\":1"), "health while full: %s", r.body);
    tc_resp_free(&r);
    /* the first client leaves: the waiting request runs */
    tc_abort(a);
    pthread_join(tb, NULL);
    CHECK(b.status == 200 && b.text && !strcmp(b.text, "0"), "the queued request: %d '%s'", b.status, b.text ? b.text : "");
    free(b.text);
    /* a graceful stop with a stream in flight: the stream ends, the process exits 0 */
    a = tc_open(q.port, "POST", "/v1/completions", longb, -1, NULL);
    REQUIRE(a, "stream");
    ev = tc_next_event(a);
    free(ev);
    int rc = srv_stop(&q);
    CHECK(rc == 0, "serve-model exited %d on SIGTERM", rc);
    int n = 0;
    while ((ev = tc_next_event(a))) { n++; free(ev); }
    tc_close(a);
}

/* ------------------------------------------------------------------ the official OpenAI client */

static void test_openai_node_client(void) {
    int st;
    char *v = test_run("node --version 2>/dev/null && npm --version 2>/dev/null", &st);
    free(v);
    if (st != 0) SKIP_TEST("*** node and npm are not both installed: the official openai npm client check is SKIPPED ***");
    const char *dir = getenv("PIKA_OPENAI_NPM_DIR") ? getenv("PIKA_OPENAI_NPM_DIR") : "/tmp/pika-openai-npm";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sh tests/openai_node_check.sh %s http://127.0.0.1:%d/v1 pika-math-l 2>&1", dir, g.port);
    char *out = test_run(cmd, &st);
    if (st == 3) {
        fprintf(stderr, "%s", out);
        free(out);
        SKIP_TEST("*** npm install openai failed (see above): the official client check is SKIPPED ***");
    }
    CHECK(st == 0 && strstr(out, "openai-node: all checks passed"), "openai node client (exit %d):\n%s", st, out);
    free(out);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    if (access(MODEL, R_OK) != 0) {
        fprintf(stderr, "SKIP: %s is absent\n", MODEL);
        return test_summary("serve_model");
    }
    if (srv_start(&g, "--parallel 4 --queue 8 --max-body 65536") != 0) {
        fprintf(stderr, "FAIL: pika serve-model did not start\n");
        char cmd[700];
        snprintf(cmd, sizeof cmd, "cat %s >&2", g.log);
        if (system(cmd)) {}
        return 1;
    }
    RUN(test_models_health_metrics);
    RUN(test_completions_schema);
    RUN(test_chat_schema);
    RUN(test_stream_schema);
    RUN(test_greedy_equals_generate);
    RUN(test_seeded_equals_local);
    RUN(test_batching);
    RUN(test_hidden_extension);
    RUN(test_prompt_cache);
    RUN(test_logprobs);
    RUN(test_errors);
    RUN(test_client_killed_mid_stream);
    RUN(test_queue_limit);
    RUN(test_openai_node_client);
    int rc = srv_stop(&g);
    if (rc != 0) {
        fprintf(stderr, "FAIL: serve-model exited %d (log %s)\n", rc, g.log);
        t_failed++;
    }
    return test_summary("serve_model");
}
