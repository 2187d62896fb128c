/* cli_router.c — `pika serve` (the live router) and `pika route log` (its decision log): flag
 * parsing and printing over serve.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/serve.h"
#include "pika/util.h"

static const char SERVE_USAGE[] =
    "usage: pika serve --config POOL.json [--host 127.0.0.1] [--port 8000] [--log FILE.db] [--log-prompts]\n"
    "                  [--access-log] [--drain-s 30]\n"
    "  An OpenAI-compatible router in front of the pool in POOL.json (README: \"pika serve\").\n"
    "  POST /v1/chat/completions, /v1/completions (model: pika-route, pika-route:lambda=X, pika-route:utility,\n"
    "  pika-route:cascade, pika-route:threshold=T, pika-route:budget=C, or a member's name); GET /v1/models,\n"
    "  /health, /metrics. --access-log: one line per request on stderr. --port 0 picks a free port. Prints\n"
    "  \"pika serve: listening on http://HOST:PORT\" on stdout once ready; SIGTERM/SIGINT stop accepting,\n"
    "  drain in-flight requests (at most --drain-s seconds) and flush the log.\n";

int cmd_serve(int argc, char **argv) {
    const char *config = NULL, *host = "127.0.0.1", *log = NULL;
    int port = 8000, log_prompts = 0, access_log = 0;
    double drain = 30;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        int hv = i + 1 < argc;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { fputs(SERVE_USAGE, stdout); return 0; }
        else if (!strcmp(f, "--config") && hv) config = argv[++i];
        else if (!strcmp(f, "--host") && hv) host = argv[++i];
        else if (!strcmp(f, "--port") && hv) {
            char *e;
            long v = strtol(argv[++i], &e, 10);
            if (*e || v < 0 || v > 65535) pika_die("serve: --port %s: expected 0..65535", argv[i]);
            port = (int)v;
        } else if (!strcmp(f, "--log") && hv) log = argv[++i];
        else if (!strcmp(f, "--log-prompts")) log_prompts = 1;
        else if (!strcmp(f, "--access-log")) access_log = 1;
        else if (!strcmp(f, "--drain-s") && hv) drain = atof(argv[++i]);
        else { fprintf(stderr, "pika: serve: unknown or incomplete flag '%s'\n%s", f, SERVE_USAGE); return 2; }
    }
    if (!config) { fputs(SERVE_USAGE, stderr); return 2; }
    pika_serve_config c;
    if (pika_serve_config_load(config, &c)) pika_die("serve: %s", pika_last_error());
    if (log) { free(c.log_path); c.log_path = pika_strdup(log); }
    /* the signals are taken by sigwait below: block them before any server thread exists */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pika_server_opts o = {host, port, log_prompts, access_log};
    pika_server *s = pika_server_start(&c, &o);
    if (!s) pika_die("serve: %s", pika_last_error());
    printf("pika serve: listening on http://%s:%d (%d members, log %s)\n", host, pika_server_port(s), c.n_members,
           c.log_path ? c.log_path : "off");
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "pika serve: signal %d: draining %d in-flight request(s)\n", sig, pika_server_in_flight(s));
    pika_server_stop(s, drain);
    fprintf(stderr, "pika serve: stopped\n");
    pika_serve_config_free(&c);
    return 0;
}

int cmd_route_log(int argc, char **argv) {
    const char *db = NULL, *graded = NULL, *out = NULL;
    int json = 0, jsonl = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--jsonl")) jsonl = 1;
        else if (!strcmp(argv[i], "--graded") && i + 1 < argc) graded = argv[++i];
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: pika route log --db FILE.db [--json | --jsonl | --graded GRADED.jsonl -o LABELS.jsonl]\n"
                   "  summarise a pika serve decision log: share per member, realised cost, error rate, latencies;\n"
                   "  --jsonl prints every logged request as one JSON object; --graded joins graded rollouts (id =\n"
                   "  the X-Request-Id the client sent) with the log: new labels from real traffic\n");
            return 0;
        } else { fprintf(stderr, "pika: route log: unknown flag '%s'\n", argv[i]); return 2; }
    }
    if (!db) pika_die("route log: --db FILE is required");
    if (graded) {
        if (!out) pika_die("route log: --graded needs -o LABELS.jsonl");
        FILE *f = fopen(out, "w");
        if (!f) pika_die("route log: cannot write %s", out);
        int64_t n = 0;
        int rc = pika_serve_log_labels(db, graded, f, &n);
        if (fclose(f) || rc) pika_die("route log: %s", pika_last_error());
        printf("wrote %lld labels (graded answers found in the log) to %s\n", (long long)n, out);
        return 0;
    }
    if ((jsonl ? pika_serve_log_dump(db, stdout) : pika_serve_log_summary(db, stdout, json))) pika_die("route log: %s", pika_last_error());
    return 0;
}
