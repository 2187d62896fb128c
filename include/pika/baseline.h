/* baseline.h — baselines with the same CV selection and Platt calibration as the probes: prompt
 * length (tokens and/or characters), TF-IDF (word n-grams), and prompting (the model asked whether
 * it will solve the problem: its yes-vs-no next-token score from prompting.h, one feature).
 *
 * TF-IDF (scikit-learn TfidfVectorizer semantics, documented approximation):
 *   tokens   lowercase (ASCII), maximal runs of word bytes [A-Za-z0-9_] or any byte >= 0x80, kept
 *            when at least 2 bytes long (sklearn's (?u)\b\w\w+\b, with non-ASCII bytes counted as word
 *            characters); n-grams 1..ngram_max joined by one space
 *   vocab    terms with document frequency >= min_df in the fitting rows (fit per CV fold on the
 *            fold's training rows only), sorted bytewise
 *   weight   tf = raw count (or 1 + ln(count) with sublinear), idf = ln((1+n)/(1+df)) + 1,
 *            each row l2-normalized
 * Models: logistic (liblinear, sparse) or ridge (conjugate gradients), intercept on, no scaling.
 * Length: features n_tokens (when a token-count field is given) and n_chars (bytes of the text),
 * standardized, dense path.
 */
#ifndef PIKA_BASELINE_H
#define PIKA_BASELINE_H

#include <stdint.h>
#include <stdio.h>

#include "pika/acts.h"
#include "pika/dataset.h"
#include "pika/probe.h"

/* A dataset JSONL: id + text (+ optional numeric token count). */
typedef struct {
    int64_t n;
    char **ids;
    char **texts;
    double *n_tokens;     /* NaN where absent (or NULL when no tokens field was requested) */
    pika_strmap id_index;
} pika_textset;

/* text_field NULL = the default: "problem" (pika's datasets) when the first line has it, else "text".
 * Ids follow pika_json_id. */
int pika_textset_read(pika_textset *t, const char *path, const char *id_field, const char *text_field,
                      const char *tokens_field);
/* Token counts of every text by a caller's tokenizer: t->n_tokens[i] = count(t->texts[i], ctx)
 * (replacing a tokens field). count returns < 0 after pika_set_error to fail. */
int pika_textset_count_tokens(pika_textset *t, int (*count)(const char *text, void *ctx), void *ctx);
/* The texts [n] (pointers into t) and token counts [n] (NULL when t has none) of rows[0..n) (rows ==
 * NULL: 0..n-1), as pika_baseline_train / _predict take them; free(*texts), free(*tokens). */
void pika_textset_gather(const pika_textset *t, const int64_t *rows, int64_t n, char ***texts, double **tokens);
/* The problems of a loaded dataset (a preset such as math:test): id + problem text, no token counts. */
int pika_textset_from_dataset(pika_textset *t, const pika_dataset *d);
void pika_textset_free(pika_textset *t);

typedef struct {
    int ngram_max;   /* default 2 */
    int min_df;      /* default 2 */
    int sublinear;   /* default 0 */
} pika_tfidf_opts;
void pika_tfidf_opts_default(pika_tfidf_opts *o);

/* Options of a baseline (pika_baseline_opts_default: kind "tfidf", default TF-IDF and fit options). */
typedef struct {
    const char *kind;         /* "length", "tfidf" or "prompting" */
    const char *target;       /* label field name recorded in the baseline file */
    pika_tfidf_opts tfidf;
    pika_fit_opts fit;
    FILE *log;                /* CV summary (NULL = silent) */
    const char *provenance_json; /* prompting: what scored the texts (model, recipe, question), kept as extra.prompting */
} pika_baseline_opts;
void pika_baseline_opts_default(pika_baseline_opts *o);

/* Train a baseline on rows 0..n-1: texts[i], tokens[i] (may be NULL), y[i]. For kind "prompting"
 * tokens[i] is instead the model's prompting score of texts[i] (pika_prompting_scores); required. */
int pika_baseline_train(char *const *texts, const double *tokens, int64_t n, const double *y, const pika_baseline_opts *o,
                        pika_probe **out);
/* A prompting baseline: error unless provenance_json (what pika_prompting_scores returned for the
 * texts about to be scored) names the model (fingerprint), question and prompt recipe it was trained
 * with. Other kinds: 0. */
int pika_baseline_check_scorer(const pika_probe *p, const char *provenance_json);
/* Scores and calibrated probabilities for texts with a trained baseline. */
int pika_baseline_predict(const pika_probe *p, char *const *texts, const double *tokens, int64_t n, double *score,
                          double *prob);

#endif
