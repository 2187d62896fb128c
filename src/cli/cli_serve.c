/* cli_serve.c — `pika serve-model`: flag parsing and the process around serve_model.h (signals,
 * the listening line, --port-file). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/prompt.h"
#include "pika/serve_model.h"
#include "pika/util.h"

static long serve_long(const char *name, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) pika_die("serve-model: %s must be an integer in [%ld, %ld], got '%s'", name, lo, hi, v);
    return x;
}

static void serve_usage(FILE *f) {
    fprintf(f,
            "usage: pika serve-model --model M.gguf [--host 127.0.0.1] [--port 8080] [--threads N] [--parallel S]\n"
            "       [--ctx N] [--queue N] [--max-body BYTES] [--alias NAME] [--port-file FILE] [--no-cache-prompt] [--quiet]\n"
            "       [--template NAME | --template-file FILE] [--kwargs JSON] [--date YYYY-MM-DD] [--bos TEXT] [--eos TEXT]\n"
            "An OpenAI-compatible HTTP server: GET /v1/models, POST /v1/completions, POST /v1/chat/completions\n"
            "(stream: true -> server-sent events), GET /health, GET /metrics (Prometheus text).\n"
            "  --model M.gguf     the model (required)\n"
            "  --host H           address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)\n"
            "  --port P           TCP port (default 8080; 0 = any free port, printed and written to --port-file)\n"
            "  --threads N        compute threads (default: all cores)\n"
            "  --parallel S       sequence slots decoded together in one batched step (default 4); a request\n"
            "                     needs prompts x n slots\n"
            "  --ctx N            tokens per slot: prompt + answer (default: the model's context, at most 4096)\n"
            "  --queue N          requests that may wait for a slot (default 16); more get 503\n"
            "  --max-body BYTES   request body limit (default 4194304); larger bodies get 413\n"
            "  --alias NAME       the model id clients see (default: the file name without .gguf)\n"
            "  --port-file FILE   write the port number there once listening\n"
            "  --no-cache-prompt  prefill every prompt whole (default: a free slot's cached prompt prefix is reused)\n"
            "  --quiet            no per-request log lines on stderr\n"
            "chat template (for /v1/chat/completions; default: the GGUF's):\n"
            "  --template NAME, --template-file FILE, --kwargs JSON, --date YYYY-MM-DD, --bos TEXT, --eos TEXT,\n"
            "  --no-generation-prompt\n"
            "Stops on SIGINT or SIGTERM (queued requests get 503, running ones are cancelled).\n");
}

int cmd_serve_model(int argc, char **argv) {
    pika_serve_model_opts o;
    pika_serve_model_opts_default(&o);
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            serve_usage(stdout);
            return 0;
        }
        int ar = pika_prompt_flag_arity(a);
        if (ar >= 0) {
            if (!strcmp(a, "--system") || !strcmp(a, "--prefix") || !strcmp(a, "--suffix") || !strcmp(a, "--suffix-file") ||
                !strcmp(a, "--no-template"))
                pika_die("serve-model: %s does not apply to a server: clients send their own messages (a system message, "
                         "the question text); /v1/completions takes raw text", a);
            if (ar && i + 1 >= argc) pika_die("serve-model: option %s needs a value", a);
            if (pika_prompt_parse_flag(&o.prompt, a, ar ? argv[++i] : NULL) < 0) pika_die("serve-model: %s", pika_last_error());
            continue;
        }
        if (!strcmp(a, "--quiet")) { o.log = 0; continue; }
        if (!strcmp(a, "--no-cache-prompt")) { o.no_prompt_cache = 1; continue; }
        if (i + 1 >= argc) pika_die("serve-model: unknown option %s (or it needs a value)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--model")) o.model_path = v;
        else if (!strcmp(a, "--host")) o.host = v;
        else if (!strcmp(a, "--port")) o.port = (int)serve_long("--port", v, 0, 65535);
        else if (!strcmp(a, "--threads")) o.n_threads = (int)serve_long("--threads", v, 1, 1024);
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) o.n_parallel = (int)serve_long("--parallel", v, 1, 256);
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) o.n_ctx = (int)serve_long("--ctx", v, 1, 1 << 24);
        else if (!strcmp(a, "--queue")) o.queue_limit = (int)serve_long("--queue", v, 0, 1 << 20);
        else if (!strcmp(a, "--max-body")) o.max_body = (size_t)serve_long("--max-body", v, 1, 1L << 40);
        else if (!strcmp(a, "--alias")) o.alias = v;
        else if (!strcmp(a, "--port-file")) port_file = v;
        else pika_die("serve-model: unknown option %s", a);
    }
    if (!o.model_path) {
        serve_usage(stderr);
        pika_die("serve-model: --model is required");
    }
    /* signals are taken by sigwait below: block them before any thread starts */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pika_serve_model *s = pika_serve_model_new(&o);
    if (!s) pika_die("serve-model: %s", pika_last_error());
    if (pika_serve_model_start(s)) pika_die("serve-model: %s", pika_last_error());
    int port = pika_serve_model_port(s);
    if (port_file) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", port);
        if (pika_write_file_atomic(port_file, buf, (size_t)n)) pika_die("serve-model: %s", pika_last_error());
    }
    const char *h = o.host ? o.host : "127.0.0.1";
    int v6 = strchr(h, ':') != NULL;
    fprintf(stderr, "pika serve-model: listening on http://%s%s%s:%d (model %s, %d slots, queue %d)\n", v6 ? "[" : "", h,
            v6 ? "]" : "", port, o.model_path, o.n_parallel, o.queue_limit);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "pika serve-model: signal %d, stopping\n", sig);
    pika_serve_model_stop(s);
    pika_serve_model_free(s);
    return 0;
}
