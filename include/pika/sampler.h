/* sampler.h — next-token choice from a logits vector (engine layer): greedy, or temperature
 * sampling with top-k, top-p and min-p filters applied to the tempered distribution in that order
 * (as Hugging Face and vLLM do), drawing with a seeded xoshiro256** generator so that the same
 * seed gives the same tokens. Owns the sampling parameters and their validation; the decode loop
 * that uses a sampler lives in generate.h.
 */
#ifndef PIKA_SAMPLER_H
#define PIKA_SAMPLER_H

#include <stdint.h>

/* Sampling parameters. temperature 0 means greedy (argmax, ties to the lowest id). */
typedef struct {
    float temperature; /* >= 0, finite (default 1; 0 = greedy) */
    int top_k;         /* >= 0 (0 = off) */
    float top_p;       /* (0, 1] (1 = off) */
    float min_p;       /* [0, 1] (0 = off) */
    uint64_t seed;     /* default 42 */
} pika_sampling;

void pika_sampling_default(pika_sampling *s);

/* 0 when every parameter is in its range (see above), else -1 + an error naming the parameter,
 * its value and the allowed range ("temperature must be a finite number >= 0 (0 = greedy), got nan").
 * NaN and infinities are rejected everywhere. */
int pika_sampling_validate(const pika_sampling *s);

typedef struct pika_sampler pika_sampler;
/* A sampler over n_vocab logits. The parameters should be valid (pika_sampling_validate); a negative
 * or NaN temperature samples greedily. */
pika_sampler *pika_sampler_new(const pika_sampling *s, int n_vocab);
void pika_sampler_free(pika_sampler *s);
/* Next token for logits[n_vocab]. */
int32_t pika_sample(pika_sampler *s, const float *logits);

#endif
