/* labels.h — per-question success labels from graded rollouts, as in the paper: success_rate,
 * unbiased pass@k (Chen et al. 2021) for any k <= n, majority-vote answer and its correctness, token
 * counts, and USD cost from a price table.
 *
 * Rollouts JSONL (one object per line): {id, sample, text, tokens_in, tokens_out, model}; after
 * `pika grade rollouts` each also has `correct` (bool) and `answer` (string or null).
 *
 * Price table: a text file, one model per line: "MODEL  IN_USD_PER_1M  OUT_USD_PER_1M" (whitespace or
 * commas between fields; '#' starts a comment). Costs follow the paper's accounting: the prompt is
 * paid once per question (input_cost_usd_once = tokens_in x in / 1e6), every rollout's output is paid
 * (total_output_cost_usd = sum tokens_out x out / 1e6), total_cost_usd = the two added.
 */
#ifndef PIKA_LABELS_H
#define PIKA_LABELS_H

#include <stdint.h>
#include <stdio.h>

#include "pika/dataset.h"
#include "pika/util.h"

typedef struct {
    char *id;
    char *model;      /* "" when absent */
    int sample;
    int64_t tokens_in, tokens_out;
    int correct;      /* 1 / 0 */
    char *answer;     /* NULL = no answer extracted */
} pika_rollout;

typedef struct {
    char *model;
    double in_per_m, out_per_m; /* USD per 1M tokens */
} pika_price;

typedef struct {
    int n;
    pika_price *p;
} pika_price_table;

/* Load a price table (see above). -1 + error "path:line: ..." on a malformed line. */
int pika_price_table_load(const char *path, pika_price_table *t);
const pika_price *pika_price_find(const pika_price_table *t, const char *model);
void pika_price_table_free(pika_price_table *t);

/* Unbiased pass@k = 1 - C(n-c, k) / C(n, k). NAN when k > n or k < 1. */
double pika_pass_at_k(int n, int c, int k);

typedef struct {
    char *id, *model;
    int n, n_correct;
    double success_rate;
    int nk;
    int *ks;               /* [nk] */
    double *pass_at;       /* [nk]; NAN where k > n */
    char *majority_answer; /* NULL when the plurality is "no answer" */
    int majority_count;
    int majority_correct;  /* 0 when no answer won */
    int64_t tokens_in;     /* prompt tokens (first rollout's tokens_in) */
    int64_t total_tokens_in, total_tokens_out;
    int has_cost;
    double input_cost_once, output_cost, total_cost; /* USD */
} pika_label;

/* Answer equality for majority vote, e.g. pika_answers_equal of grade.h wrapped for the task kind. */
typedef int (*pika_answer_eq_fn)(const char *a, const char *b, void *ctx);

typedef struct {
    const int *ks;                   /* pass@k for each k (nk values >= 1) */
    int nk;
    const pika_price_table *prices;  /* NULL = no costs */
    pika_answer_eq_fn answers_equal; /* NULL = identical text */
    void *eq_ctx;
} pika_label_opts;

/* Group rollouts by (model, id) in first-seen order and aggregate. Majority vote: answers are
 * clustered (o->answers_equal against each cluster's first answer, identical text always equal), the
 * plurality cluster wins, ties go to the cluster seen first, and its correctness is that of its first
 * rollout. */
int pika_label_aggregate(const pika_rollout *r, int n, const pika_label_opts *o, pika_label **out, int *n_out);
void pika_label_free(pika_label *l, int n);

/* Write labels as the labels JSONL file of `pika labels` (fields in README, "Labels"): one line per
 * label, flushed. d (may be NULL) adds the human difficulty "level" and the file's "split" of each
 * id; with_costs adds the three cost fields (null where the model had no price). warn(msg, ctx) (may
 * be NULL) is told about an id missing from d (each time) and the first model without a price. */
int pika_labels_write(FILE *out, const pika_label *L, int n, const pika_dataset *d, int with_costs,
                      void (*warn)(const char *msg, void *ctx), void *warn_ctx);

/* ---- the labels file (JSONL, one object per question) ----
 * Written by `pika labels` (see README); read here for probes, baselines, evaluation and reports.
 * Ids follow the one JSON-id rule (pika_json_id in dataset.h: 7 -> "7", 1.5 -> "1.5"). */
typedef struct {
    int64_t n;
    char **ids;            /* [n] */
    int n_fields;
    char **fields;         /* [n_fields] requested numeric fields */
    double *vals;          /* [n x n_fields]; booleans -> 0/1 */
    char **split;          /* [n] value of split_field (NULL when no split field requested) */
    pika_strmap id_index;
} pika_labels;

/* Read a JSONL file; every line must have id_field (a string or a number, pika_json_id) and every requested numeric
 * field (a finite number or boolean). When split_field is non-NULL each line must carry it as a string.
 * Duplicate ids and a file without any labelled line are errors. */
int pika_labels_read(pika_labels *L, const char *path, const char *id_field, int n_fields,
                     const char *const *fields, const char *split_field);
void pika_labels_free(pika_labels *L);
/* Map each of ids[0..n) to its label row into row_out[n]; an id with no label is an error. */
int pika_labels_join(const pika_labels *L, char *const *ids, int64_t n, int64_t *row_out);

/* Select the entries of ids[0..n) (a store's or a dataset's ids) for a probe or baseline: read the
 * labels file, join by id (every id needs a label), keep those whose split field matches split_spec
 * ("FIELD=VALUE", NULL = all). *rows = indices into ids [m] and, when target != NULL, *y = the target
 * [m] (y may be NULL without a target). Returns m >= 1, or -1 + error (also for no row selected). */
int64_t pika_labels_select(const char *labels_path, const char *id_field, const char *target, const char *split_spec,
                           char *const *ids, int64_t n, int64_t **rows, double **y);

/* What a labels file records about where it came from (for report provenance): its rows, the
 * distinct "model" values (comma-joined, at most 4 then ", ..."; "" when none), and the range of
 * "n" (rollouts per question, k in the paper; 0 when absent). */
typedef struct {
    int64_t n_rows;
    char models[512];
    int k_min, k_max;
} pika_labels_info;
int pika_labels_describe(const char *path, pika_labels_info *info);


#endif
