/* bench_serve.c — load on an OpenAI-compatible server (`pika serve-model`, or llama.cpp's llama-server
 * given its URL): C concurrent clients send /v1/completions requests (temperature 0, ignore_eos, a
 * fixed number of tokens, a distinct prompt each so no prompt cache helps) and the bench reports, per
 * concurrency level, the generated tokens/s of the whole server, the per-request decode speed and the
 * p50/p99 request latency (and time to first token with --stream). With --local-model it also measures
 * the single-request decode speed of the engine itself (pika_generate, no HTTP) as the reference.
 *
 *   bench_serve --url http://127.0.0.1:8080 [--clients 1,4,8] [--requests N] [--max-tokens M]
 *               [--prompt TEXT] [--stream] [--label NAME] [--local-model M.gguf --threads T] [--server-pid PID]
 * --requests: requests per concurrency level (default: max(4, 2 x clients)).
 * --server-pid: also report tokens per CPU-second of that process (user + system time from /proc), a
 * figure that a busy shared machine disturbs much less than wall-clock throughput.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../tests/http_client.h"
#include "pika/generate.h"
#include "pika/model.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

typedef struct {
    int port;
    const char *prompt;
    int max_tokens, stream, n_req;
    atomic_int next;
    double *lat, *ttft;
    int *tokens;
    atomic_int errors;
} load;

static void *client(void *arg) {
    load *L = arg;
    for (;;) {
        int i = atomic_fetch_add(&L->next, 1);
        if (i >= L->n_req) break;
        char body[4096];
        cJSON *p = cJSON_CreateObject();
        char pr[2048];
        snprintf(pr, sizeof pr, "%s (request %d)", L->prompt, i);
        cJSON_AddStringToObject(p, "prompt", pr);
        cJSON_AddNumberToObject(p, "max_tokens", L->max_tokens);
        cJSON_AddNumberToObject(p, "temperature", 0);
        cJSON_AddBoolToObject(p, "ignore_eos", 1);
        if (L->stream) {
            cJSON_AddBoolToObject(p, "stream", 1);
            cJSON *so = cJSON_AddObjectToObject(p, "stream_options");
            cJSON_AddBoolToObject(so, "include_usage", 1);
        }
        char *s = cJSON_PrintUnformatted(p);
        snprintf(body, sizeof body, "%s", s);
        free(s);
        cJSON_Delete(p);
        double t0 = pika_now();
        int toks = -1;
        L->ttft[i] = NAN;
        if (L->stream) {
            tc_conn *c = tc_open(L->port, "POST", "/v1/completions", body, -1, NULL);
            if (c && c->status == 200) {
                char *ev;
                int n = 0;
                while ((ev = tc_next_event(c))) {
                    if (strcmp(ev, "[DONE]")) {
                        cJSON *j = cJSON_Parse(ev);
                        const cJSON *u = cJSON_GetObjectItem(j, "usage");
                        const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
                        const cJSON *tx = cJSON_GetObjectItem(ch, "text");
                        if (cJSON_IsString(tx) && *tx->valuestring && isnan(L->ttft[i])) L->ttft[i] = pika_now() - t0;
                        if (cJSON_IsObject(u)) toks = (int)cJSON_GetObjectItem(u, "completion_tokens")->valuedouble;
                        if (ch) n++;
                        cJSON_Delete(j);
                    }
                    free(ev);
                }
                if (toks < 0) toks = n;
            }
            tc_close(c);
        } else {
            tc_resp r;
            if (tc_request(L->port, "POST", "/v1/completions", body, -1, NULL, &r) == 0 && r.status == 200) {
                cJSON *j = cJSON_Parse(r.body);
                const cJSON *u = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"), "completion_tokens");
                if (cJSON_IsNumber(u)) toks = (int)u->valuedouble;
                cJSON_Delete(j);
            } else if (r.status != 200) {
                fprintf(stderr, "bench_serve: HTTP %d: %.200s\n", r.status, r.body ? r.body : "");
            }
            tc_resp_free(&r);
        }
        L->lat[i] = pika_now() - t0;
        L->tokens[i] = toks;
        if (toks < 0) atomic_fetch_add(&L->errors, 1);
    }
    return NULL;
}

/* CPU seconds (user + system) of a process, NAN when unknown. */
static double cpu_seconds(int pid) {
    if (pid <= 0) return NAN;
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return NAN;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return NAN;
    unsigned long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return NAN;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double k = p * (n - 1);
    int lo = (int)k;
    return lo + 1 < n ? v[lo] + (k - lo) * (v[lo + 1] - v[lo]) : v[lo];
}

/* Single-request decode speed of the engine (no HTTP): generate max_tokens from the prompt. */
static void local_reference(const char *path, int threads, const char *prompt, int max_tokens) {
    pika_model *m = pika_model_load(path);
    if (!m) { fprintf(stderr, "bench_serve: %s\n", pika_last_error()); return; }
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_ctx *c = pika_ctx_new(m, threads);
    int32_t *ids;
    int n = pika_tokenize(tok, prompt, strlen(prompt), true, false, &ids);
    pika_gen_opts o;
    pika_gen_opts_default(&o);
    o.sampling.temperature = 0;
    o.max_tokens = max_tokens;
    o.ignore_eog = 1;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        /* decode only: time pika_generate_from after a prefill */
        float *lg = malloc(sizeof(float) * (size_t)pika_model_hparams(m)->n_vocab);
        pika_forward_req req = {0, NULL, 0, NULL, NULL, lg};
        pika_ctx_reset(c);
        pika_forward(c, ids, n, &req);
        pika_gen_result res;
        double t0 = pika_now();
        pika_generate_from(c, tok, n, lg, &o, NULL, NULL, &res);
        double dt = pika_now() - t0;
        if (res.n_ids / dt > best) best = res.n_ids / dt;
        pika_gen_result_free(&res);
        free(lg);
    }
    printf("engine (no HTTP, one sequence, %d threads): decode %.1f tok/s (best of 3, %d tokens)\n", threads, best, max_tokens);
    free(ids);
    pika_ctx_free(c);
    pika_tokenizer_free(tok);
    pika_model_free(m);
}

int main(int argc, char **argv) {
    const char *url = NULL, *clients_s = "1,4,8", *prompt = "Once upon a time, in a land far away,", *label = NULL, *local = NULL;
    int n_req = 0, max_tokens = 32, stream = 0, threads = 0, server_pid = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--stream")) { stream = 1; continue; }
        if (!v) { fprintf(stderr, "bench_serve: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--url")) url = v;
        else if (!strcmp(a, "--clients")) clients_s = v;
        else if (!strcmp(a, "--requests")) n_req = atoi(v);
        else if (!strcmp(a, "--max-tokens")) max_tokens = atoi(v);
        else if (!strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "--label")) label = v;
        else if (!strcmp(a, "--local-model")) local = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--server-pid")) server_pid = atoi(v);
        else { fprintf(stderr, "bench_serve: unknown option %s\n", a); return 2; }
        i++;
    }
    if (!url) {
        fprintf(stderr, "usage: bench_serve --url http://HOST:PORT [--clients 1,4,8] [--requests N] [--max-tokens M] [--prompt TEXT]\n"
                        "                   [--stream] [--label NAME] [--local-model M.gguf --threads T]\n");
        return 2;
    }
    static char host[256];
    int port = 0;
    if (sscanf(url, "http://%255[^:/]:%d", host, &port) != 2) { fprintf(stderr, "bench_serve: cannot parse %s\n", url); return 2; }
    if (!strcmp(host, "localhost")) snprintf(host, sizeof host, "127.0.0.1");
    tc_host = host;
    if (local) local_reference(local, threads, prompt, max_tokens);
    int32_t *cl;
    int ncl = pika_parse_int_list(clients_s, &cl);
    for (int k = 0; k < ncl; k++) {
        int C = cl[k];
        int N = n_req > 0 ? n_req : (2 * C > 4 ? 2 * C : 4);
        load L = {.port = port, .prompt = prompt, .max_tokens = max_tokens, .stream = stream, .n_req = N};
        L.lat = calloc((size_t)N, sizeof(double));
        L.ttft = calloc((size_t)N, sizeof(double));
        L.tokens = calloc((size_t)N, sizeof(int));
        pthread_t *t = malloc(sizeof(pthread_t) * (size_t)C);
        double t0 = pika_now(), cpu0 = cpu_seconds(server_pid);
        for (int i = 0; i < C; i++) pthread_create(&t[i], NULL, client, &L);
        for (int i = 0; i < C; i++) pthread_join(t[i], NULL);
        double wall = pika_now() - t0, cpu = cpu_seconds(server_pid) - cpu0;
        long tokens = 0;
        double per_req = 0;
        int ok = 0;
        for (int i = 0; i < N; i++)
            if (L.tokens[i] >= 0) { tokens += L.tokens[i]; per_req += L.tokens[i] / L.lat[i]; ok++; }
        int nt = 0;
        for (int i = 0; i < N; i++)
            if (!isnan(L.ttft[i])) L.ttft[nt++] = L.ttft[i];
        printf("%s%sclients %d: %d requests x %d tokens in %.2f s: %.1f tok/s total, %.1f tok/s per request, latency p50 %.0f ms p99 %.0f ms",
               label ? label : "", label ? ": " : "", C, N, max_tokens, wall, tokens / wall, ok ? per_req / ok : 0,
               pct(L.lat, N, 0.5) * 1e3, pct(L.lat, N, 0.99) * 1e3);
        if (!isnan(cpu) && cpu > 0) printf(", %.1f tok per server CPU-s", tokens / cpu);
        if (stream) printf(", first token p50 %.0f ms p99 %.0f ms", pct(L.ttft, nt, 0.5) * 1e3, pct(L.ttft, nt, 0.99) * 1e3);
        if (atomic_load(&L.errors)) printf(" (%d failed)", atomic_load(&L.errors));
        printf("\n");
        fflush(stdout);
        free(L.lat);
        free(L.ttft);
        free(L.tokens);
        free(t);
    }
    free(cl);
    return 0;
}
