/* sampler.c — next-token choice from logits: greedy, or temperature with top-k, top-p and
 * min-p filters (applied in that order, as llama.cpp's common sampler chain does), drawing with a
 * seeded xoshiro256** generator so the same seed gives the same tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/model.h"
#include "pika/util.h"

struct pika_sampler {
    pika_sampling cfg;
    int n_vocab;
    uint64_t s[4]; /* xoshiro256** state */
    int *idx;      /* [n_vocab] candidate ids */
    float *prob;   /* [n_vocab] */
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(pika_sampler *s) {
    uint64_t r = rotl(s->s[1] * 5, 7) * 9, t = s->s[1] << 17;
    s->s[2] ^= s->s[0]; s->s[3] ^= s->s[1]; s->s[1] ^= s->s[2]; s->s[0] ^= s->s[3];
    s->s[2] ^= t; s->s[3] = rotl(s->s[3], 45);
    return r;
}

/* uniform in [0, 1) */
static double next_double(pika_sampler *s) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

void pika_sampling_default(pika_sampling *s) {
    s->temperature = 1.0f;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->min_p = 0.0f;
    s->seed = 42;
}

pika_sampler *pika_sampler_new(const pika_sampling *cfg, int n_vocab) {
    pika_sampler *s = pika_calloc(1, sizeof *s);
    s->cfg = *cfg;
    s->n_vocab = n_vocab;
    uint64_t x = cfg->seed;
    for (int i = 0; i < 4; i++) s->s[i] = splitmix64(&x);
    s->idx = pika_malloc(sizeof(int) * (size_t)n_vocab);
    s->prob = pika_malloc(sizeof(float) * (size_t)n_vocab);
    return s;
}

void pika_sampler_free(pika_sampler *s) {
    if (!s) return;
    free(s->idx);
    free(s->prob);
    free(s);
}

static const float *g_sort_logits;
static int by_logit_desc(const void *a, const void *b) {
    float x = g_sort_logits[*(const int *)a], y = g_sort_logits[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b; /* ties: lower id first */
}

static int32_t argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int32_t pika_sample(pika_sampler *s, const float *logits) {
    const int V = s->n_vocab;
    if (s->cfg.temperature <= 0) return argmax(logits, V);
    /* candidates sorted by logit (only as many as top-k needs when it is set) */
    int n = V;
    for (int i = 0; i < V; i++) s->idx[i] = i;
    g_sort_logits = logits;
    qsort(s->idx, (size_t)V, sizeof(int), by_logit_desc);
    if (s->cfg.top_k > 0 && s->cfg.top_k < n) n = s->cfg.top_k;
    /* softmax with temperature over the candidates */
    const float inv_t = 1.0f / s->cfg.temperature;
    const float mx = logits[s->idx[0]];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s->prob[i] = expf((logits[s->idx[i]] - mx) * inv_t);
        sum += s->prob[i];
    }
    for (int i = 0; i < n; i++) s->prob[i] = (float)(s->prob[i] / sum);
    /* top-p: smallest prefix with cumulative probability >= p */
    if (s->cfg.top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i];
            if (cum >= s->cfg.top_p) { n = i + 1; break; }
        }
    }
    /* min-p: keep tokens with p >= min_p * p_max */
    if (s->cfg.min_p > 0.0f) {
        float thr = s->cfg.min_p * s->prob[0];
        int k = 1;
        while (k < n && s->prob[k] >= thr) k++;
        n = k;
    }
    double total = 0;
    for (int i = 0; i < n; i++) total += s->prob[i];
    double r = next_double(s) * total, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->prob[i];
        if (r < cum) return s->idx[i];
    }
    return s->idx[n - 1];
}
