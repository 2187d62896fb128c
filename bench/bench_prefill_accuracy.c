/* bench_prefill_accuracy.c — what an optional prefill mode (pika_ctx_set_prefill: bf16 or q8) costs in
 * accuracy: runs the same n_tokens prompt (random ids, seeded) through two contexts, exact F32 and the
 * mode, and prints per layer the relative RMS of the hidden states over all positions
 * (||h_mode - h_f32|| / ||h_f32||) and the max |logit| difference of the last position.
 *   bench_prefill_accuracy MODEL.gguf [n_tokens=128] [threads=2] [mode=bf16]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "pika/model.h"
#include "pika/util.h"

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_prefill_accuracy MODEL.gguf [n_tokens] [threads] [bf16|q8]\n"); return 2; }
    int n = argc > 2 ? atoi(argv[2]) : 128, threads = argc > 3 ? atoi(argv[3]) : 2;
    const char *mode_name = argc > 4 ? argv[4] : "bf16";
    int mode = pika_prefill_parse(mode_name);
    if (mode <= PIKA_PREFILL_F32) { fprintf(stderr, "bench_prefill_accuracy: mode must be bf16 or q8\n"); return 2; }
    if (n < 4) n = 4;
    pika_model *m = pika_model_load(argv[1]);
    if (!m) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
    const pika_hparams *hp = pika_model_hparams(m);
    const int L = hp->n_layer, E = hp->n_embd, V = hp->n_vocab;
    pika_ctx *ce = pika_ctx_new(m, threads), *cb = pika_ctx_new(m, threads);
    pika_ctx_set_exact(ce, 1);
    if (pika_ctx_set_prefill(cb, mode)) {
        fprintf(stderr, "bench_prefill_accuracy: %s\n", pika_last_error());
        return 2;
    }
    int32_t *ids = pika_malloc(sizeof(int32_t) * (size_t)n);
    uint64_t x = 777;
    for (int t = 0; t < n; t++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[t] = (int32_t)((x >> 33) % (uint64_t)V);
    }
    size_t hs = (size_t)(L + 1) * n * E;
    float *he = pika_malloc(sizeof(float) * hs), *hb = pika_malloc(sizeof(float) * hs);
    float *le = pika_malloc(sizeof(float) * (size_t)V), *lb = pika_malloc(sizeof(float) * (size_t)V);
    pika_forward_req re = {-1, NULL, -1, NULL, he, le}, rb = {-1, NULL, -1, NULL, hb, lb};
    if (pika_forward(ce, ids, n, &re) || pika_forward(cb, ids, n, &rb)) {
        fprintf(stderr, "bench_prefill_accuracy: %s\n", pika_last_error());
        return 2;
    }
    printf("%s  %d tokens  %s prefill vs exact F32\nlayer  rel_rms\n", argv[1], n, mode_name);
    for (int l = 0; l <= L; l++) {
        double se = 0, sr = 0;
        for (size_t i = (size_t)l * n * E; i < (size_t)(l + 1) * n * E; i++) {
            double d = (double)hb[i] - he[i];
            se += d * d;
            sr += (double)he[i] * he[i];
        }
        printf("%5d  %.3e\n", l, sqrt(se / (sr + 1e-30)));
    }
    double lmax = 0, lref = 0;
    for (int v = 0; v < V; v++) {
        double d = fabs((double)lb[v] - le[v]);
        if (d > lmax) lmax = d;
        if (fabs(le[v]) > lref) lref = fabs(le[v]);
    }
    printf("logits (last position): max |diff| %.3g of max |logit| %.3g\n", lmax, lref);
    pika_ctx_free(ce);
    pika_ctx_free(cb);
    pika_model_free(m);
    free(ids); free(he); free(hb); free(le); free(lb);
    return 0;
}
