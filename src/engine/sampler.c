/* sampler.c — next-token choice from logits (sampler.h): greedy, or temperature with top-k, top-p
 * and min-p filters applied to the tempered distribution in that order (as Hugging Face and vLLM
 * do), drawing with a seeded xoshiro256** generator so the same seed gives the same tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/sampler.h"
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

int pika_sampling_validate(const pika_sampling *s) {
    if (!isfinite(s->temperature) || s->temperature < 0)
        return pika_set_error("temperature must be a finite number >= 0 (0 = greedy), got %g", (double)s->temperature);
    if (s->top_k < 0) return pika_set_error("top-k must be an integer >= 0 (0 = off), got %d", s->top_k);
    if (!isfinite(s->top_p) || s->top_p <= 0 || s->top_p > 1)
        return pika_set_error("top-p must be a number in (0, 1] (1 = off), got %g", (double)s->top_p);
    if (!isfinite(s->min_p) || s->min_p < 0 || s->min_p > 1)
        return pika_set_error("min-p must be a number in [0, 1] (0 = off), got %g", (double)s->min_p);
    return 0;
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

/* Order: higher probability first, ties to the lower id. */
static _Thread_local const float *g_sort_prob; /* qsort has no context argument; one per thread */
static int by_prob_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = g_sort_prob[i], y = g_sort_prob[j];
    if (x != y) return x < y ? 1 : -1;
    return i - j;
}

static int32_t argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

/* "a ranks below b": lower logit, or equal logit and higher id. */
static int ranks_below(const float *l, int a, int b) { return l[a] < l[b] || (l[a] == l[b] && a > b); }

/* The k best ids by logit into idx[0..k) (unordered), with a min-heap: O(V log k). */
static void top_k_select(const float *l, int V, int k, int *idx) {
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (n < k) {
            int c = n++;
            idx[c] = i;
            while (c > 0 && ranks_below(l, idx[c], idx[(c - 1) / 2])) {
                int p = (c - 1) / 2, t = idx[p];
                idx[p] = idx[c]; idx[c] = t; c = p;
            }
        } else if (ranks_below(l, idx[0], i)) {
            idx[0] = i;
            int c = 0;
            for (;;) {
                int lc = 2 * c + 1, rc = lc + 1, m = c;
                if (lc < k && ranks_below(l, idx[lc], idx[m])) m = lc;
                if (rc < k && ranks_below(l, idx[rc], idx[m])) m = rc;
                if (m == c) break;
                int t = idx[m]; idx[m] = idx[c]; idx[c] = t; c = m;
            }
        }
    }
}

/* Temperature first, then top-k, top-p and min-p on the tempered distribution (the order of
 * Hugging Face's and vLLM's samplers), then one draw. No full sort unless top-p needs one. */
int32_t pika_sample(pika_sampler *s, const float *logits) {
    const int V = s->n_vocab;
    if (!(s->cfg.temperature > 0)) return argmax(logits, V); /* also NaN */
    const float inv_t = 1.0f / s->cfg.temperature;
    const float mx = logits[argmax(logits, V)];
    int n;
    if (s->cfg.top_k > 0 && s->cfg.top_k < V) {
        n = s->cfg.top_k;
        top_k_select(logits, V, n, s->idx);
    } else {
        n = V;
        for (int i = 0; i < V; i++) s->idx[i] = i;
    }
    /* unnormalised probabilities, 1 at the best token */
    for (int i = 0; i < n; i++) s->prob[s->idx[i]] = expf((logits[s->idx[i]] - mx) * inv_t);
    if (s->cfg.min_p > 0.0f) { /* keep p >= min_p * p_max; p_max = 1 here */
        int k = 0;
        for (int i = 0; i < n; i++)
            if (s->prob[s->idx[i]] >= s->cfg.min_p) s->idx[k++] = s->idx[i];
        n = k;
    }
    if (s->cfg.top_p < 1.0f) { /* smallest most-probable prefix with mass >= top_p */
        g_sort_prob = s->prob;
        qsort(s->idx, (size_t)n, sizeof(int), by_prob_desc);
        double total = 0, cum = 0;
        for (int i = 0; i < n; i++) total += s->prob[s->idx[i]];
        for (int i = 0; i < n; i++) {
            cum += s->prob[s->idx[i]];
            if (cum >= s->cfg.top_p * total) { n = i + 1; break; }
        }
    }
    double total = 0;
    for (int i = 0; i < n; i++) total += s->prob[s->idx[i]];
    double r = next_double(s) * total, cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->prob[s->idx[i]];
        if (r < cum) return s->idx[i];
    }
    return s->idx[n - 1];
}
