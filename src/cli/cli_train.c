/* cli_train.c — `pika train-lm`: train a small llama model on pika's synthetic math task and write
 * it as a GGUF (tokenizer included). Thin layer over include/pika/train.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/mathtask.h"
#include "pika/quant.h"
#include "pika/train.h"
#include "pika/util.h"

int cmd_train_lm(int argc, char **argv);

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: pika train-lm --output M.gguf [options]\n"
            "  Trains a llama-architecture model on the synthetic math task and writes a GGUF that pika\n"
            "  (and llama.cpp) can load, with the task's SentencePiece-style tokenizer inside.\n"
            "  --task math            the task (only 'math')\n"
            "  --size S               preset shape (the pool): s (56K params), m (260K), l (537K); default m\n"
            "  --embd N --layers N --heads N --kv-heads N --ff N   override the shape\n"
            "  --ctx N                context length (default 128) ; --tied  share embeddings and output\n"
            "  --steps N (1000)  --batch N (32)  --warmup N (50)  --lr X (3e-3)  --lr-min X (3e-4)\n"
            "  --wd X (0.01)  --clip X (1.0)  --seed N (1)  --task-seed N (1)  --threads N (2)\n"
            "  --type f32|f16         matrix storage type in the file (default f16)\n"
            "  --eval N               greedy accuracy on the first N test problems at the end (default 200)\n"
            "  --log FILE             loss curve CSV (step,loss,lr,grad_norm,cpu_s,wall_s)\n"
            "  --log-every N          steps per CSV line (default 10)\n"
            "  --name S               general.name in the file\n"
            "  Same seed + threads give bit-identical weights.\n");
}

static int preset(pika_train_run *r, const char *s) {
    pika_lm_config *c = &r->cfg;
    if (!strcmp(s, "s")) { c->n_embd = 32; c->n_layer = 2; c->n_head = 4; c->n_head_kv = 2; c->n_ff = 96; }
    else if (!strcmp(s, "m")) { c->n_embd = 64; c->n_layer = 4; c->n_head = 4; c->n_head_kv = 2; c->n_ff = 192; }
    else if (!strcmp(s, "l")) { c->n_embd = 96; c->n_layer = 4; c->n_head = 6; c->n_head_kv = 3; c->n_ff = 288; }
    else return -1;
    return 0;
}

static long long num_arg(const char *opt, const char *v) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || x < 0) pika_die("train-lm: %s wants a non-negative integer, got '%s'", opt, v);
    return x;
}

static float float_arg(const char *opt, const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= 0)) pika_die("train-lm: %s wants a non-negative number, got '%s'", opt, v);
    return (float)x;
}

int cmd_train_lm(int argc, char **argv) {
    pika_train_run r;
    pika_train_run_default(&r);
    preset(&r, "m");
    r.wtype = PIKA_TYPE_F16;
    const char *out = NULL, *log = NULL, *task = "math";
    int log_every = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { train_usage(stdout); return 0; }
        if (!strcmp(a, "--tied")) { r.cfg.tied = 1; continue; }
        if (!v) { train_usage(stderr); pika_die("train-lm: unknown or incomplete option '%s'", a); }
        i++;
        if (!strcmp(a, "--output") || !strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--log")) log = v;
        else if (!strcmp(a, "--task")) task = v;
        else if (!strcmp(a, "--name")) r.name = v;
        else if (!strcmp(a, "--size")) { if (preset(&r, v)) pika_die("train-lm: --size must be s, m or l"); }
        else if (!strcmp(a, "--embd")) r.cfg.n_embd = (int)num_arg(a, v);
        else if (!strcmp(a, "--layers")) r.cfg.n_layer = (int)num_arg(a, v);
        else if (!strcmp(a, "--heads")) r.cfg.n_head = (int)num_arg(a, v);
        else if (!strcmp(a, "--kv-heads")) r.cfg.n_head_kv = (int)num_arg(a, v);
        else if (!strcmp(a, "--ff")) r.cfg.n_ff = (int)num_arg(a, v);
        else if (!strcmp(a, "--ctx")) r.cfg.n_ctx = (int)num_arg(a, v);
        else if (!strcmp(a, "--steps")) r.steps = (int)num_arg(a, v);
        else if (!strcmp(a, "--batch")) r.batch = (int)num_arg(a, v);
        else if (!strcmp(a, "--warmup")) r.warmup = (int)num_arg(a, v);
        else if (!strcmp(a, "--lr")) r.lr = float_arg(a, v);
        else if (!strcmp(a, "--lr-min")) r.lr_min = float_arg(a, v);
        else if (!strcmp(a, "--wd")) r.weight_decay = float_arg(a, v);
        else if (!strcmp(a, "--clip")) r.clip = float_arg(a, v);
        else if (!strcmp(a, "--seed")) r.seed = (uint64_t)num_arg(a, v);
        else if (!strcmp(a, "--task-seed")) r.task_seed = (uint64_t)num_arg(a, v);
        else if (!strcmp(a, "--threads")) r.n_threads = (int)num_arg(a, v);
        else if (!strcmp(a, "--eval")) r.eval_n = (int)num_arg(a, v);
        else if (!strcmp(a, "--log-every")) log_every = (int)num_arg(a, v);
        else if (!strcmp(a, "--type")) {
            if (!strcmp(v, "f32")) r.wtype = PIKA_TYPE_F32;
            else if (!strcmp(v, "f16")) r.wtype = PIKA_TYPE_F16;
            else pika_die("train-lm: --type must be f32 or f16");
        } else { train_usage(stderr); pika_die("train-lm: unknown option '%s'", a); }
    }
    if (!out) { train_usage(stderr); pika_die("train-lm: --output is required"); }
    if (strcmp(task, "math")) pika_die("train-lm: unknown task '%s' (available: math)", task);
    if (r.steps <= 0 || r.batch <= 0) pika_die("train-lm: --steps and --batch must be positive");
    if (r.n_threads <= 0) r.n_threads = 1;
    FILE *lf = NULL;
    if (log && !(lf = fopen(log, "w"))) pika_die("train-lm: cannot write %s", log);
    double acc = 0, t0 = pika_now();
    int rc = pika_train_math(&r, out, lf, log_every, &acc);
    if (lf) fclose(lf);
    if (rc) pika_die("%s", pika_last_error());
    fprintf(stderr, "train-lm: wrote %s (%.1f s)", out, pika_now() - t0);
    if (r.eval_n > 0) fprintf(stderr, ", test accuracy %.3f on %d problems", acc, r.eval_n);
    fputc('\n', stderr);
    return 0;
}
