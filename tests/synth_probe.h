/* synth_probe.h — a probe file with made-up weights on (layer, position) of a reader, tied to that
 * reader's model and prompt-recipe provenance, for tests and benches of the serving path (the router
 * must load, check and score it; its predictions are not under test). Uses probe_internal.h. */
#ifndef PIKA_TEST_SYNTH_PROBE_H
#define PIKA_TEST_SYNTH_PROBE_H

#include <stdint.h>
#include <string.h>

#include "pika/util.h"
#include "probe/probe_internal.h"

/* Writes path; weights w_j ~ U(-0.1, 0.1) from seed, intercept bias, identity standardisation and
 * Platt. 0 or -1 + error. */
static inline int synth_probe_write(const char *path, const char *model_json, const char *prompt_json, int layer,
                                    int position, int d, uint64_t seed, double bias) {
    pika_probe pr;
    memset(&pr, 0, sizeof pr);
    snprintf(pr.kind, sizeof pr.kind, "probe");
    pr.task = PIKA_TARGET_BINARY;
    pr.target = pika_strdup("majority_vote_is_correct");
    pr.layer = layer;
    pr.position = position;
    pr.d_model = pr.lin.d = d;
    pr.lin.mean = pika_calloc((size_t)d, sizeof(double));
    pr.lin.scale = pika_malloc((size_t)d * sizeof(double));
    pr.lin.w = pika_malloc((size_t)d * sizeof(double));
    for (int j = 0; j < d; j++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        pr.lin.scale[j] = 1;
        pr.lin.w[j] = ((double)(seed >> 11) / 9007199254740992.0 - 0.5) * 0.2;
    }
    pr.lin.b = bias;
    pr.has_platt = 1;
    pr.platt_a = 1;
    pr.alpha = 1;
    pr.n_layers = pr.n_pos = pr.n_alpha = 1;
    pr.layers = pika_malloc(sizeof(int32_t));
    pr.layers[0] = layer;
    pr.positions = pika_malloc(sizeof(int32_t));
    pr.positions[0] = position;
    pr.alphas = pika_malloc(sizeof(double));
    pr.alphas[0] = 1;
    pr.cv_mean = pika_calloc(1, sizeof(double));
    pr.cv_std = pika_calloc(1, sizeof(double));
    pr.standardize = pr.intercept = 1;
    pr.k_folds = 5;
    pr.model_json = pika_strdup(model_json);
    pr.prompt_json = pika_strdup(prompt_json);
    int rc = pika_probe_save(&pr, path);
    probe_clear(&pr);
    return rc;
}

#endif
