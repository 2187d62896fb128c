/* bench_engine.c — prefill and decode throughput of the forward pass, like llama-bench's
 * pp/tg tests: `bench_engine MODEL.gguf [n_prompt=256] [n_gen=64] [threads=2] [reps=3]`.
 * As llama-bench, one untimed warmup run first (a prefill of n_prompt tokens and one decode step:
 * the mmapped weights paged in, buffers and threads up); then prints one line per test: best-of-reps
 * tokens per second. */
#include <stdio.h>
#include <stdlib.h>

#include "pika/model.h"
#include "pika/util.h"

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_engine MODEL.gguf [n_prompt] [n_gen] [threads] [reps]\n"); return 2; }
    int n_prompt = argc > 2 ? atoi(argv[2]) : 256, n_gen = argc > 3 ? atoi(argv[3]) : 64;
    int threads = argc > 4 ? atoi(argv[4]) : 2, reps = argc > 5 ? atoi(argv[5]) : 3;
    pika_model *m = pika_model_load(argv[1]);
    if (!m) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
    const pika_hparams *hp = pika_model_hparams(m);
    pika_ctx *c = pika_ctx_new(m, threads);
    int32_t *ids = pika_malloc(sizeof(int32_t) * (size_t)n_prompt);
    uint64_t x = 12345;
    for (int i = 0; i < n_prompt; i++) { x = x * 6364136223846793005ull + 1442695040888963407ull; ids[i] = (int32_t)((x >> 33) % (uint64_t)hp->n_vocab); }
    float *logits = pika_malloc(sizeof(float) * (size_t)hp->n_vocab);
    pika_forward_req req = {0, NULL, 0, NULL, NULL, logits};
    double best_pp = 0, best_tg = 0;
    if (n_prompt > 0) { /* warmup, untimed (llama-bench's default warmup runs) */
        if (pika_forward(c, ids, n_prompt, &req)) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
        pika_ctx_reset(c);
        if (pika_forward(c, ids, 1, &req)) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
    }
    for (int r = 0; r < reps; r++) {
        pika_ctx_reset(c);
        double t0 = pika_now();
        if (pika_forward(c, ids, n_prompt, &req)) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
        double pp = n_prompt / (pika_now() - t0);
        best_pp = pp > best_pp ? pp : best_pp;
        /* tg: decode n_gen tokens after a 1-token prompt, as llama-bench's tg test */
        pika_ctx_reset(c);
        int32_t tok = ids[0];
        t0 = pika_now();
        for (int k = 0; k < n_gen; k++) {
            if (pika_forward(c, &tok, 1, &req)) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
            tok = ids[(k + 1) % n_prompt];
        }
        double tg = n_gen / (pika_now() - t0);
        best_tg = tg > best_tg ? tg : best_tg;
    }
    printf("%s  threads %d  pp%d %.1f tok/s  tg%d %.1f tok/s\n", argv[1], threads, n_prompt, best_pp, n_gen, best_tg);
    free(ids); free(logits);
    pika_ctx_free(c);
    pika_model_free(m);
    return 0;
}
