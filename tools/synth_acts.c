/* synth_acts.c — write a synthetic activation store + labels JSONL with a planted signal, for tests,
 * benchmarks and demos (real extraction from models lives in `pika` itself).
 *
 *   synth_acts OUT_DIR [--n N] [--d D] [--layers L] [--positions P] [--signal-layer l]
 *              [--signal-pos p] [--strength s] [--dtype f16|f32] [--seed S] [--test-frac f]
 *              [--nan-row i] [--model NAME] [--members M]
 * Features are N(0,1) (+ a per-dim offset); at (signal-layer, signal-pos) the first 8 dims carry
 * a latent z ~ N(0,1) scaled by `strength`. Labels (OUT_DIR/labels.jsonl): "correct" = 1[z + noise > 0],
 * "rate" = mean of 5 Bernoulli(sigmoid(2z)) draws, "rating" = round(3 - 1.2 z) clipped to 1..5,
 * "split" = "test" for the last test-frac of rows else "train". Dataset (OUT_DIR/data.jsonl):
 * "id", "text" (words whose count grows with difficulty), "n_tokens".
 * --model NAME: the store's model name and fingerprint string (default "synthetic" / "synth-v1"), so two
 * stores can come from different "readers". --members M: also OUT_DIR/member-<m>.jsonl for m < M, pool
 * members' labels ("correct", "split"): member 0 succeeds on 1[z + noise > 0] (its success is encoded
 * in these activations), members m >= 1 on an independent latent (not encoded: a reader cannot see it).
 * The member latents use their own random stream, so labels.jsonl and the features do not change.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/acts.h"
#include "pika/metrics.h"
#include "pika/util.h"

static double gauss(pika_rng *r) {
    double u = pika_rng_uniform(r), v = pika_rng_uniform(r);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        /* --help: usage on stdout, exit 0; anything else: a usage error */
        int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fprintf(help ? stdout : stderr,
                "usage: synth_acts OUT_DIR [--n N] [--d D] [--layers L] [--positions P] [--signal-layer l] "
                "[--signal-pos p] [--strength s] [--dtype f16|f32] [--seed S] [--test-frac f] [--nan-row i]\n");
        return help ? 0 : 2;
    }
    const char *out = argv[1];
    int64_t n = 400;
    int d = 32, L = 3, P = 2, sl = 1, sp = -1, f16 = 1;
    double strength = 1.0, test_frac = 0.25;
    uint64_t seed = 1;
    int64_t nan_row = -1;
    const char *model = "synthetic";
    int members = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--n")) n = atoll(v);
        else if (!strcmp(k, "--d")) d = atoi(v);
        else if (!strcmp(k, "--layers")) L = atoi(v);
        else if (!strcmp(k, "--positions")) P = atoi(v);
        else if (!strcmp(k, "--signal-layer")) sl = atoi(v);
        else if (!strcmp(k, "--signal-pos")) sp = atoi(v);
        else if (!strcmp(k, "--strength")) strength = atof(v);
        else if (!strcmp(k, "--dtype")) f16 = !strcmp(v, "f16");
        else if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--test-frac")) test_frac = atof(v);
        else if (!strcmp(k, "--nan-row")) nan_row = atoll(v);
        else if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--members")) members = atoi(v);
        else { fprintf(stderr, "synth_acts: unknown option %s\n", k); return 2; }
    }
    int32_t *layers = malloc(sizeof(int32_t) * L), *pos = malloc(sizeof(int32_t) * P);
    for (int i = 0; i < L; i++) layers[i] = i;
    for (int i = 0; i < P; i++) pos[i] = -P + i;
    pika_acts_writer w;
    char model_json[512];
    if (!strcmp(model, "synthetic"))
        snprintf(model_json, sizeof model_json, "{\"name\":\"synthetic\",\"fingerprint\":\"synth-v1\"}");
    else
        snprintf(model_json, sizeof model_json, "{\"name\":\"%s\",\"fingerprint\":\"%s\"}", model, model);
    if (pika_acts_writer_open(&w, out, d, L, layers, P, pos, f16 ? PIKA_NPY_F16 : PIKA_NPY_F32,
                              model_json, "\"{question}\"", 0)) {
        fprintf(stderr, "synth_acts: %s\n", pika_last_error());
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/labels.jsonl", out);
    FILE *lf = fopen(path, "w");
    snprintf(path, sizeof path, "%s/data.jsonl", out);
    FILE *df = fopen(path, "w");
    if (!lf || !df) { fprintf(stderr, "synth_acts: cannot write labels\n"); return 2; }
    FILE *mf[16] = {0};
    if (members > 16) members = 16;
    for (int m = 0; m < members; m++) {
        snprintf(path, sizeof path, "%s/member-%d.jsonl", out, m);
        if (!(mf[m] = fopen(path, "w"))) { fprintf(stderr, "synth_acts: cannot write %s\n", path); return 2; }
    }
    pika_rng mr;
    pika_rng_seed(&mr, seed + 1000003);
    pika_rng r;
    pika_rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * (size_t)L * P * d);
    int64_t n_test = (int64_t)(test_frac * (double)n);
    for (int64_t i = 0; i < n; i++) {
        double z = gauss(&r);
        for (int l = 0; l < L; l++)
            for (int p = 0; p < P; p++)
                for (int j = 0; j < d; j++) {
                    double v = gauss(&r) + 0.1 * j;
                    if (layers[l] == sl && pos[p] == sp && j < 8) v += strength * z;
                    x[((size_t)l * P + p) * d + j] = (float)v;
                }
        if (i == nan_row) x[0] = NAN;
        char id[32];
        snprintf(id, sizeof id, "q%05lld", (long long)i);
        if (pika_acts_writer_append(&w, id, x)) { fprintf(stderr, "synth_acts: %s\n", pika_last_error()); return 2; }
        int correct = z + 0.5 * gauss(&r) > 0;
        int k = 0;
        for (int t = 0; t < 5; t++) k += pika_rng_uniform(&r) < 1 / (1 + exp(-2 * z));
        int rating = (int)lround(3 - 1.2 * z);
        rating = rating < 1 ? 1 : rating > 5 ? 5 : rating;
        fprintf(lf, "{\"id\":\"%s\",\"correct\":%d,\"rate\":%g,\"rating\":%d,\"split\":\"%s\"}\n", id, correct, k / 5.0, rating,
                i >= n - n_test ? "test" : "train");
        for (int m = 0; m < members; m++) {
            double zm = m == 0 ? z : gauss(&mr);
            fprintf(mf[m], "{\"id\":\"%s\",\"correct\":%d,\"split\":\"%s\"}\n", id, zm + 0.5 * gauss(&mr) > 0,
                    i >= n - n_test ? "test" : "train");
        }
        int words = 5 + (int)(10 * (1.5 - z > 0 ? 1.5 - z : 0)) + (int)(4 * pika_rng_uniform(&r));
        fprintf(df, "{\"id\":\"%s\",\"text\":\"", id);
        for (int t = 0; t < words; t++) fprintf(df, "%s%s", t ? " " : "", z < 0 && t % 3 == 0 ? "integral" : "solve number");
        fprintf(df, "\",\"n_tokens\":%d}\n", words * 2 + 3);
    }
    fclose(lf);
    fclose(df);
    for (int m = 0; m < members; m++) fclose(mf[m]);
    free(x);
    free(layers);
    free(pos);
    if (pika_acts_writer_close(&w)) { fprintf(stderr, "synth_acts: %s\n", pika_last_error()); return 2; }
    return 0;
}
