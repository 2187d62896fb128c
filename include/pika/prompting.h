/* prompting.h — the prompting ("ask the model") baseline's score: before it answers, the model is
 * asked whether it will solve the problem, and the score is how much its next-token distribution
 * prefers "yes" over "no". One prefill per problem, no sampling (the authors' reference instead
 * samples a verbalised probability, up to 500 tokens; here the yes/no logits are read directly).
 *
 * Prompt: the model's prompt recipe (chat template, system message...) with user suffix = the fixed
 * question (default PIKA_PROMPTING_QUESTION) appended to the problem. Answer tokens: the first token
 * of each of "yes", "Yes", " yes", " Yes" (and the same for "no"), a token id counted once, an id in
 * both sets dropped. Score = log P(yes) − log P(no), P(yes) = summed softmax probability of the yes
 * ids (a monotone function of the normalised P(yes) = P(yes) / (P(yes) + P(no))). The baseline itself
 * (CV over alphas, Platt calibration, the baseline file) is baseline.h's kind "prompting", with this
 * score as its one feature.
 */
#ifndef PIKA_PROMPTING_H
#define PIKA_PROMPTING_H

#include <stdint.h>

#include "pika/prompt.h"

#define PIKA_PROMPTING_QUESTION \
    "\n\nBefore you answer: will you solve this problem correctly? Answer yes or no."

typedef struct {
    const char *question;   /* appended to every problem (NULL = PIKA_PROMPTING_QUESTION) */
    const char *yes, *no;   /* answer words (NULL = "yes" / "no") */
    pika_prompt_opts prompt;/* the rest of the recipe; its user_suffix is replaced by the question */
    int n_threads;          /* <= 0: all cores */
} pika_prompting_opts;
void pika_prompting_opts_default(pika_prompting_opts *o);

/* score[i] for texts[0..n) with the model at model_path. *provenance_json (when non-NULL, malloc'ed):
 * {"model": {"file", "fingerprint"}, "prompt": recipe, "question", "yes_ids", "no_ids"}. Errors: the
 * model or recipe fails to load, no answer token, yes and no share every id, a forward error. */
int pika_prompting_scores(const char *model_path, char *const *texts, int64_t n, const pika_prompting_opts *o, double *score,
                          char **provenance_json);

#endif
