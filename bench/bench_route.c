/* bench_route.c — offline routing speed: a synthetic table of Q questions x A arms, the utility sweep over
 * L λ values alone, then the full `route eval` (every policy, 50 + 50 λ, 9 cascade thresholds, frontier,
 * savings, AIQ; no bootstrap unless --bootstrap B).
 *
 *   bench_route [--q 100000] [--arms 8] [--lambdas 50] [--bootstrap 0] [--reps 3] [--io FILE]
 * --io FILE also writes the table as JSONL to FILE and times reading it back (read_s=).
 * Prints "bench_route q=... arms=... lambdas=... utility_sweep_s=... eval_s=... cpu_s=..." (best of reps;
 * cpu_s: process CPU time of the last full evaluation). Target: utility sweep of 10^5 x 8 x 50 well under 1 s.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pika/route.h"
#include "pika/util.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int64_t Q = 100000;
    int A = 8, L = 50, n_boot = 0, reps = 3;
    const char *io = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--q")) Q = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--arms")) A = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lambdas")) L = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--bootstrap")) n_boot = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--io")) io = argv[i + 1];
        else { fprintf(stderr, "bench_route: unknown flag %s\n", argv[i]); return 2; }
    }
    if (Q < 1 || A < 1 || A > PIKA_ROUTE_MAX_ARMS || L < 1 || reps < 1) { fprintf(stderr, "bench_route: bad sizes\n"); return 2; }
    pika_route_table t;
    pika_route_table_alloc(&t, A, Q);
    uint64_t s = 12345;
    for (int a = 0; a < A; a++) {
        char b[16];
        snprintf(b, sizeof b, "arm%d", a);
        t.arms[a] = pika_strdup(b);
    }
    for (int64_t q = 0; q < Q; q++) {
        char b[24];
        snprintf(b, sizeof b, "q%lld", (long long)q);
        t.ids[q] = pika_strdup(b);
        t.split[q] = (int8_t)(q % 10 < 6 ? PIKA_SPLIT_TRAIN : q % 10 < 8 ? PIKA_SPLIT_VAL : PIKA_SPLIT_TEST);
        for (int a = 0; a < A; a++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(s >> 11) / 9007199254740992.0;
            t.p[q * A + a] = u;
            t.correct[q * A + a] = u > 0.5 - 0.04 * a;
            t.cost[q * A + a] = (a + 1) * (a + 1) * (0.5 + u);
        }
    }
    double mc[PIKA_ROUTE_MAX_ARMS], ct[PIKA_ROUTE_MAX_ARMS];
    pika_route_norm_costs(&t, mc, ct);
    int64_t n, *rows = pika_route_rows(&t, PIKA_SPLIT_ALL, &n);
    int *choice = pika_malloc(sizeof(int) * (size_t)n);
    double best_sweep = INFINITY, best_eval = INFINITY, cpu = 0, sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = pika_now();
        for (int l = 0; l < L; l++) {
            pika_route_score sc;
            pika_route_utility(&t, rows, n, ct, L == 1 ? 0 : (double)l / (L - 1), 0, choice);
            pika_route_score_choices(&t, rows, n, choice, NULL, NULL, &sc);
            sink += sc.accuracy;
        }
        double t1 = pika_now();
        pika_route_eval_opts o = {0};
        o.split = PIKA_SPLIT_ALL;
        o.n_lambdas = L;
        o.n_boot = n_boot;
        o.pair_weak = 0;
        o.pair_strong = A - 1;
        pika_route_result res;
        double c0 = cpu_now();
        if (pika_route_eval(&t, &o, &res)) { fprintf(stderr, "bench_route: %s\n", pika_last_error()); return 1; }
        double t2 = pika_now();
        cpu = cpu_now() - c0;
        sink += res.aiq_router;
        pika_route_result_free(&res);
        if (t1 - t0 < best_sweep) best_sweep = t1 - t0;
        if (t2 - t1 < best_eval) best_eval = t2 - t1;
    }
    printf("bench_route q=%lld arms=%d lambdas=%d bootstrap=%d utility_sweep_s=%.4f eval_s=%.4f cpu_s=%.4f (checksum %.6f)\n",
           (long long)Q, A, L, n_boot, best_sweep, best_eval, cpu, sink);
    if (io) {
        FILE *f = fopen(io, "w");
        if (!f || pika_route_table_write(f, &t) || fclose(f)) { fprintf(stderr, "bench_route: cannot write %s\n", io); return 1; }
        pika_route_table u;
        double t0 = pika_now();
        if (pika_route_table_read(io, &u)) { fprintf(stderr, "bench_route: %s\n", pika_last_error()); return 1; }
        printf("bench_route read_s=%.3f rows=%lld\n", pika_now() - t0, (long long)(u.n_q * u.n_arms));
        pika_route_table_free(&u);
    }
    free(choice);
    free(rows);
    pika_route_table_free(&t);
    return 0;
}
