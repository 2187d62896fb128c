/* bench_q8_accuracy.c — what the default decode path (8-bit activations, integer dots) costs in
 * accuracy: decodes the same tokens one at a time in two contexts, exact F32 (pika_ctx_set_exact)
 * and the default, each with its own KV cache, and prints per layer the relative RMS of the hidden
 * states (||h_q8 - h_exact|| / ||h_exact|| over all steps) and the max |logit| difference.
 *   bench_q8_accuracy MODEL.gguf [n_tokens=32] [threads=2]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "pika/model.h"
#include "pika/quant.h"
#include "pika/util.h"

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_q8_accuracy MODEL.gguf [n_tokens] [threads]\n"); return 2; }
    int n = argc > 2 ? atoi(argv[2]) : 32, threads = argc > 3 ? atoi(argv[3]) : 2;
    pika_model *m = pika_model_load(argv[1]);
    if (!m) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
    const pika_hparams *hp = pika_model_hparams(m);
    const int L = hp->n_layer, E = hp->n_embd, V = hp->n_vocab;
    pika_ctx *ce = pika_ctx_new(m, threads), *cq = pika_ctx_new(m, threads);
    pika_ctx_set_exact(ce, 1);
    pika_ctx_set_exact(cq, 0);
    float *he = pika_malloc(sizeof(float) * (size_t)(L + 1) * E), *hq = pika_malloc(sizeof(float) * (size_t)(L + 1) * E);
    float *le = pika_malloc(sizeof(float) * (size_t)V), *lq = pika_malloc(sizeof(float) * (size_t)V);
    double *se = pika_calloc((size_t)L + 1, sizeof(double)), *sr = pika_calloc((size_t)L + 1, sizeof(double));
    double lmax = 0, lref = 0;
    uint64_t x = 777;
    for (int t = 0; t < n; t++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int32_t tok = (int32_t)((x >> 33) % (uint64_t)V);
        pika_forward_req re = {-1, NULL, -1, NULL, he, le}, rq = {-1, NULL, -1, NULL, hq, lq};
        if (pika_forward(ce, &tok, 1, &re) || pika_forward(cq, &tok, 1, &rq)) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
        for (int l = 0; l <= L; l++)
            for (int e = 0; e < E; e++) {
                double d = (double)hq[(size_t)l * E + e] - he[(size_t)l * E + e];
                se[l] += d * d;
                sr[l] += (double)he[(size_t)l * E + e] * he[(size_t)l * E + e];
            }
        for (int v = 0; v < V; v++) {
            lmax = fmax(lmax, fabs((double)lq[v] - le[v]));
            lref = fmax(lref, fabs((double)le[v]));
        }
    }
    printf("%s: %d decode steps, q8 kernels %s; hidden-state relative RMS (q8 vs exact F32) per layer:\n", argv[1], n, pika_q8_path());
    double worst = 0;
    for (int l = 0; l <= L; l++) {
        double rr = sr[l] > 0 ? sqrt(se[l] / sr[l]) : 0;
        worst = fmax(worst, rr);
        printf("%s%d:%.2e", l ? (l % 8 ? "  " : "\n") : "", l, rr);
    }
    printf("\nmax layer rel RMS %.2e; logits max |diff| %.3g (max |logit| %.3g)\n", worst, lmax, lref);
    pika_ctx_free(ce);
    pika_ctx_free(cq);
    pika_model_free(m);
    free(he); free(hq); free(le); free(lq); free(se); free(sr);
    return 0;
}
