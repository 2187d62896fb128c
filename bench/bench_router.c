/* bench_router.c — load test of `pika serve` on loopback: three stub members that answer at once, the
 * router with the pool reader (models/pool/pika-math-m.gguf) and one synthetic probe per member,
 * C concurrent keep-alive connections for D seconds; one member is stopped at a chosen moment (its
 * requests must fall back: 0 client-visible errors). Reports throughput, client latency via the
 * router and straight to a stub, the server's routing time (render + reader prefill + probes +
 * decision, the pika.route_ms of each answer), the reader prefill alone, and the routing overhead
 * beyond the prefill. Bounded: --duration seconds (default 60), --conns (default 64); binds only
 * 127.0.0.1.
 *   bench_router [--duration 60] [--conns 64] [--kill-at 0.5 (fraction of the run; 0 = none)]
 *               [--reader models/pool/pika-math-m.gguf] [--contexts 2] */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pika/model.h"
#include "pika/probe.h"
#include "pika/prompt.h"
#include "pika/serve.h"
#include "pika/tokenizer.h"
#include "pika/util.h"
#include "../tests/synth_probe.h" /* synthetic probes */

static void write_probe(const char *path, const char *reader, int layer, int position, uint64_t seed, double bias) {
    pika_model *m = pika_model_load(reader);
    if (!m) { fprintf(stderr, "%s\n", pika_last_error()); exit(2); }
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_prompt_opts o;
    pika_prompt_opts_default(&o);
    pika_prompt_recipe *r = pika_prompt_recipe_new(pika_model_gguf(m), tok, &o);
    pika_prompt p;
    pika_prompt_build(r, "1+1", &p);
    cJSON *pj = pika_prompt_recipe_provenance(r);
    cJSON_AddNumberToObject(pj, "n_eoi", p.n_eoi);
    int d = pika_model_hparams(m)->n_embd;
    char mj[256];
    snprintf(mj, sizeof mj, "{\"file\":\"reader\",\"fingerprint\":\"%s\"}", pika_model_fingerprint(m));
    char *pjs = cJSON_PrintUnformatted(pj);
    if (synth_probe_write(path, mj, pjs, layer, position, d, seed, bias)) { fprintf(stderr, "%s\n", pika_last_error()); exit(2); }
    free(pjs);
    cJSON_Delete(pj);
    pika_prompt_free(&p);
    pika_prompt_recipe_free(r);
    pika_tokenizer_free(tok);
    pika_model_free(m);
}

typedef struct {
    int port;
    double until;
    int direct;          /* 1: a stub's own API (model = its name) */
    /* results */
    double *lat, *route;
    int64_t n, cap, errors;
    char first_error[256];
} worker;

static size_t sink(char *p, size_t sz, size_t n, void *cls) {
    pika_buf_add(cls, p, sz * n);
    return sz * n;
}

static void *run_worker(void *arg) {
    worker *w = arg;
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/chat/completions", w->port);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    pika_buf b = {0};
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    char body[256];
    uint64_t k = (uint64_t)(uintptr_t)w;
    while (pika_now() < w->until) {
        k = k * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(body, sizeof body, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%d+%d=\"}]}", w->direct ? "m" : "pika-route",
                 (int)(k >> 40) % 100, (int)(k >> 20) % 100);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        b.n = 0;
        double t0 = pika_now();
        CURLcode rc = curl_easy_perform(c);
        double dt = (pika_now() - t0) * 1000;
        long st = 0;
        if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 4096;
            w->lat = pika_realloc(w->lat, sizeof(double) * (size_t)w->cap);
            w->route = pika_realloc(w->route, sizeof(double) * (size_t)w->cap);
        }
        if (st != 200) {
            if (!w->errors++)
                snprintf(w->first_error, sizeof w->first_error, "%s %ld %.150s", curl_easy_strerror(rc), st, b.s ? b.s : "");
            continue;
        }
        const char *r = b.s ? strstr(b.s, "\"route_ms\":") : NULL;
        w->lat[w->n] = dt;
        w->route[w->n] = r ? atof(r + 11) : NAN;
        w->n++;
    }
    free(b.s);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double pct(double *v, int64_t n, double q) {
    if (n == 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int64_t i = (int64_t)ceil(q * (double)n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* C workers against port for secs; pooled latencies / routing times. */
static void load(int port, int conns, double secs, int direct, double **lat, double **route, int64_t *n, int64_t *errors,
                 pika_stub **kill, double kill_at, char *first_error) {
    worker *w = pika_calloc((size_t)conns, sizeof *w);
    pthread_t *th = pika_malloc(sizeof(pthread_t) * (size_t)conns);
    double t0 = pika_now();
    for (int i = 0; i < conns; i++) {
        w[i].port = port;
        w[i].until = t0 + secs;
        w[i].direct = direct;
        pthread_create(&th[i], NULL, run_worker, &w[i]);
    }
    if (kill && kill_at > 0) {
        while (pika_now() < t0 + kill_at * secs) usleep(10000);
        pika_stub_stop(*kill);
        *kill = NULL;
        fprintf(stderr, "bench_router: member stopped at t = %.1f s\n", pika_now() - t0);
    }
    *n = *errors = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        *n += w[i].n;
        *errors += w[i].errors;
        if (w[i].errors && first_error && !first_error[0]) snprintf(first_error, 256, "%s", w[i].first_error);
    }
    *lat = pika_malloc(sizeof(double) * (size_t)(*n + 1));
    *route = pika_malloc(sizeof(double) * (size_t)(*n + 1));
    int64_t k = 0;
    for (int i = 0; i < conns; i++) {
        memcpy(*lat + k, w[i].lat, sizeof(double) * (size_t)w[i].n);
        memcpy(*route + k, w[i].route, sizeof(double) * (size_t)w[i].n);
        k += w[i].n;
        free(w[i].lat);
        free(w[i].route);
    }
    free(w);
    free(th);
}

int main(int argc, char **argv) {
    double duration = 60, kill_at = 0.5;
    int conns = 64, contexts = 2;
    const char *reader = "models/pool/pika-math-m.gguf";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--duration") && i + 1 < argc) duration = atof(argv[++i]);
        else if (!strcmp(argv[i], "--conns") && i + 1 < argc) conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kill-at") && i + 1 < argc) kill_at = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reader") && i + 1 < argc) reader = argv[++i];
        else if (!strcmp(argv[i], "--contexts") && i + 1 < argc) contexts = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_router [--duration S] [--conns N] [--kill-at F] [--reader M.gguf] [--contexts K]\n"); return 2; }
    }
    if (duration <= 0 || duration > 600 || conns < 1 || conns > 256) { fprintf(stderr, "bench_router: duration in (0, 600], conns in [1, 256]\n"); return 2; }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[] = "/tmp/pika-bench-router-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    const char *names[3] = {"s", "m", "l"};
    char probe[3][512];
    int layers[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++) {
        snprintf(probe[i], sizeof probe[i], "%s/%s.json", dir, names[i]);
        write_probe(probe[i], reader, layers[i], -1, 11 + (uint64_t)i, -0.3 + 0.3 * i);
    }
    pika_stub *st[3];
    int ports[3];
    for (int i = 0; i < 3; i++) {
        st[i] = pika_stub_start(names[i], 0, NULL);
        if (!st[i]) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
        ports[i] = pika_stub_port(st[i]);
    }
    char js[4096];
    snprintf(js, sizeof js,
             "{\"reader\":{\"model\":\"%s\",\"contexts\":%d},\"policy\":{\"kind\":\"utility\",\"lambda\":0.1},\"log\":\"%s/serve.db\","
             "\"members\":[{\"name\":\"s\",\"url\":\"http://127.0.0.1:%d/v1\",\"probe\":\"%s\",\"price_in\":0.1,\"price_out\":0.1},"
             "{\"name\":\"m\",\"url\":\"http://127.0.0.1:%d/v1\",\"probe\":\"%s\",\"price_in\":0.5,\"price_out\":0.5},"
             "{\"name\":\"l\",\"url\":\"http://127.0.0.1:%d/v1\",\"probe\":\"%s\",\"price_in\":1,\"price_out\":1}]}",
             reader, contexts, dir, ports[0], probe[0], ports[1], probe[1], ports[2], probe[2]);
    pika_serve_config c;
    if (pika_serve_config_parse(js, &c)) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
    /* the reader prefill alone (render + prefill to the deepest probe layer + probes), one thread */
    pika_reader *rd = pika_reader_new(&c);
    if (!rd) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
    int np = 500;
    double *pre = pika_malloc(sizeof(double) * (size_t)np), p[3];
    for (int i = 0; i < np; i++) {
        char q[32];
        snprintf(q, sizeof q, "%d+%d=", i % 100, (i * 7) % 100);
        double t0 = pika_now();
        pika_reader_score_text(rd, q, p, NULL);
        pre[i] = (pika_now() - t0) * 1000;
    }
    pika_reader_free(rd);
    double pre50 = pct(pre, np, 0.5), pre99 = pct(pre, np, 0.99);
    pika_server_opts so = {"127.0.0.1", 0, 0, 0};
    pika_server *s = pika_server_start(&c, &so);
    if (!s) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
    int port = pika_server_port(s);
    /* one connection, sequential: router vs the member directly */
    double *l1, *r1, *l0, *r0;
    int64_t n1, e1, n0, e0;
    double seq = duration / 10 < 3 ? duration / 10 : 3;
    load(ports[1], 1, seq, 1, &l0, &r0, &n0, &e0, NULL, 0, NULL);
    load(port, 1, seq, 0, &l1, &r1, &n1, &e1, NULL, 0, NULL);
    double d50 = pct(l0, n0, 0.5), s50 = pct(l1, n1, 0.5), s99 = pct(l1, n1, 0.99);
    double sr50 = pct(r1, n1, 0.5);
    /* the load run: conns connections, one member stopped at kill_at */
    double *lat, *route;
    int64_t n, errors;
    char first_error[256] = "";
    pika_stub **victim = kill_at > 0 ? &st[1] : NULL;
    double t0 = pika_now();
    load(port, conns, duration, 0, &lat, &route, &n, &errors, victim, kill_at, first_error);
    double el = pika_now() - t0;
    pika_server_stop(s, 10);
    char db[600];
    snprintf(db, sizeof db, "%s/serve.db", dir);
    printf("bench_router: reader %s, 3 stub members, %d reader contexts, %d cores\n", reader, contexts, pika_n_cores());
    printf("reader prefill alone (render + prefill to layer %d + 3 probes, 1 thread): p50 %.3f ms  p99 %.3f ms\n", 3, pre50, pre99);
    printf("sequential, 1 connection: direct to member p50 %.3f ms; via router p50 %.3f ms p99 %.3f ms (routing p50 %.3f ms)\n", d50, s50,
           s99, sr50);
    printf("  routing overhead beyond the prefill, p50: server-side %.3f ms; end to end %.3f ms\n", sr50 - pre50, s50 - d50 - pre50);
    printf("load: %d connections x %.1f s: %lld answers (%.0f/s), %lld client-visible errors%s%s\n", conns, el, (long long)n, (double)n / el,
           (long long)errors, errors ? ": " : "", first_error);
    double lp50 = pct(lat, n, 0.5), lp99 = pct(lat, n, 0.99), rp50 = pct(route, n, 0.5), rp99 = pct(route, n, 0.99);
    printf("  latency p50 %.3f ms p99 %.3f ms; routing (server) p50 %.3f ms p99 %.3f ms%s\n", lp50, lp99, rp50, rp99,
           kill_at > 0 ? "; member m stopped mid-run" : "");
    fflush(stdout);
    pika_serve_log_summary(db, stdout, 0);
    for (int i = 0; i < 3; i++) pika_stub_stop(st[i]);
    pika_serve_config_free(&c);
    free(pre); free(l0); free(r0); free(l1); free(r1); free(lat); free(route);
    curl_global_cleanup();
    return errors ? 1 : 0;
}
