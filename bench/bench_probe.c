/* bench_probe.c — the probe sweep benchmark: (layer x position x alpha) with stratified k-fold CV on
 * an activation store, timed end to end (store reads included).
 *
 *   bench_probe [--n 6000] [--d 1536] [--layers 29] [--positions 5] [--task binary|continuous]
 *               [--max-configs K] [--start-layer S] [--dir DIR] [--ridge-solver auto|eig|chol] [--threads T]
 *               [--eps E] [--start-pos Q]
 * Creates DIR (default /tmp/pika-bench-acts-N-D-L-P) with synthetic float16 activations the first
 * time (signal in layer L/2, position -1). --max-configs K times only the first K (layer, position)
 * pairs (layers in order from --start-layer; with --start-pos Q, positions from index Q on, e.g.
 * --start-layer 14 --start-pos 4 --max-configs 1 = the signal configuration) and extrapolates the
 * full-sweep time linearly. Prints one line "bench_probe task=... configs=... seconds=... cpu_seconds=...
 * per_config=... full_sweep_est=..." (cpu_seconds: process CPU time, all threads; on a shared machine
 * compare CPU time with bench_probe_sklearn.py run under /usr/bin/time).
 * Compare with bench/bench_probe_sklearn.py (same data layout, same sweep).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pika/acts.h"
#include "pika/metrics.h"
#include "pika/probe.h"
#include "pika/util.h"

static double gauss(pika_rng *r) {
    double u = pika_rng_uniform(r), v = pika_rng_uniform(r);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

int main(int argc, char **argv) {
    int64_t n = 6000;
    double eps = 0;
    int start_layer = 0, start_pos = 0;
    int d = 1536, L = 29, P = 5, binary = 1, max_cfg = 0, solver = PIKA_RIDGE_AUTO, threads = 0;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--d")) d = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--layers")) L = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--positions")) P = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--task")) binary = !strcmp(argv[i + 1], "binary");
        else if (!strcmp(argv[i], "--max-configs")) max_cfg = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--eps")) eps = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--start-layer")) start_layer = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--start-pos")) start_pos = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ridge-solver")) solver = !strcmp(argv[i + 1], "eig") ? PIKA_RIDGE_EIG : !strcmp(argv[i + 1], "chol") ? PIKA_RIDGE_CHOL : PIKA_RIDGE_AUTO;
        else { fprintf(stderr, "bench_probe: unknown option %s\n", argv[i]); return 2; }
    }
    char dbuf[512];
    if (!dir) {
        snprintf(dbuf, sizeof dbuf, "/tmp/pika-bench-acts-%lld-%d-%d-%d", (long long)n, d, L, P);
        dir = dbuf;
    }
    char meta[600];
    snprintf(meta, sizeof meta, "%s/meta.json", dir);
    struct stat st;
    int32_t *layers = malloc(sizeof(int32_t) * L), *pos = malloc(sizeof(int32_t) * P);
    for (int i = 0; i < L; i++) layers[i] = i;
    for (int i = 0; i < P; i++) pos[i] = -P + i;
    pika_rng r;
    pika_rng_seed(&r, 2026);
    double *z = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++) z[i] = gauss(&r);
    if (stat(meta, &st) != 0) {
        fprintf(stderr, "bench_probe: writing synthetic store %s (%.1f GB)...\n", dir, (double)n * L * P * d * 2 / 1e9);
        pika_acts_writer w;
        if (pika_acts_writer_open(&w, dir, d, L, layers, P, pos, PIKA_NPY_F16, "{\"name\":\"bench\"}", NULL, 0)) {
            fprintf(stderr, "bench_probe: %s\n", pika_last_error());
            return 2;
        }
        float *x = malloc(sizeof(float) * (size_t)L * P * d);
        for (int64_t i = 0; i < n; i++) {
            for (int64_t t = 0; t < (int64_t)L * P * d; t++) x[t] = (float)gauss(&r);
            for (int j = 0; j < 16; j++) x[((size_t)(L / 2) * P + (P - 1)) * d + j] += (float)(0.3 * z[i]);
            char id[32];
            snprintf(id, sizeof id, "b%06lld", (long long)i);
            if (pika_acts_writer_append(&w, id, x)) { fprintf(stderr, "bench_probe: %s\n", pika_last_error()); return 2; }
        }
        free(x);
        if (pika_acts_writer_close(&w)) { fprintf(stderr, "bench_probe: %s\n", pika_last_error()); return 2; }
    }
    pika_acts a;
    if (pika_acts_open(&a, dir)) { fprintf(stderr, "bench_probe: %s\n", pika_last_error()); return 2; }
    /* labels from the latent (same formula as bench_probe_sklearn.py reads from labels.npy) */
    double *y = malloc(sizeof(double) * n);
    pika_rng r2;
    pika_rng_seed(&r2, 7);
    for (int64_t i = 0; i < n; i++) {
        double e = gauss(&r2);
        y[i] = binary ? (z[i] + e > 0) : 1 / (1 + exp(-(z[i] + e)));
    }
    {
        char lp[600];
        snprintf(lp, sizeof lp, "%s/y_%s.npy", dir, binary ? "binary" : "continuous");
        float *yf = malloc(sizeof(float) * n);
        for (int64_t i = 0; i < n; i++) y[i] = yf[i] = (float)y[i]; /* python reads the same float32 values */
        int64_t sh[1] = {n};
        pika_npy_write_f32(lp, yf, 1, sh);
        free(yf);
    }
    int nl = L, np = P;
    if (max_cfg > 0 && max_cfg < L * P) {
        nl = (max_cfg + P - 1) / P;
        if (nl < 1) nl = 1;
        np = max_cfg < P ? max_cfg : P;
    }
    pika_fit_opts o;
    pika_fit_opts_default(&o);
    o.task = binary ? PIKA_TARGET_BINARY : PIKA_TARGET_CONTINUOUS;
    o.ridge_solver = solver;
    if (threads > 0) o.n_threads = threads;
    if (eps > 0) o.eps = eps;
    pika_probe *p;
    double t0 = pika_now();
    clock_t c0 = clock();
    if (start_layer < 0 || start_layer >= L) start_layer = 0;
    if (nl > L - start_layer) nl = L - start_layer;
    if (start_pos < 0 || start_pos >= P) start_pos = 0;
    if (np > P - start_pos) np = P - start_pos;
    pika_probe_train_opts to = {.target = "y", .layers = layers + start_layer, .n_layers = nl, .positions = pos + start_pos,
                                .n_pos = np, .fit = o};
    if (pika_probe_train(&a, NULL, n, y, &to, &p)) {
        fprintf(stderr, "bench_probe: %s\n", pika_last_error());
        return 2;
    }
    double t = pika_now() - t0, ct = (double)(clock() - c0) / CLOCKS_PER_SEC;
    int cfg = nl * np;
    printf("bench_probe task=%s n=%lld d=%d configs=%d (of %d) alphas=%d folds=%d seconds=%.2f cpu_seconds=%.2f per_config=%.3f full_sweep_est=%.1f "
           "best=(layer %d, pos %d, alpha %g, cv %.4f)\n",
           binary ? "binary" : "continuous", (long long)n, d, cfg, L * P, o.n_alpha, o.k_folds, t, ct, t / cfg, t / cfg * L * P,
           pika_probe_layer(p), pika_probe_position(p), pika_probe_alpha(p), pika_probe_cv_score(p, NULL));
    pika_probe_free(p);
    pika_acts_close(&a);
    free(y); free(z); free(layers); free(pos);
    return 0;
}
