/* pool.h — reader probes: one model (the reader) is prefilled once and its activations predict the
 * success of every member of a model pool. One activation store + N members' labels files -> N probe
 * files, each recording the reader's provenance (fingerprint, model, prompt recipe) and the member it
 * predicts (training.member), all trained on the same rows with one shared CV fold assignment so the
 * members' CV curves and selected configurations are comparable.
 *
 * Rows: the store rows that every member labels (and that match the split), in store order.
 * Folds: pika_pool_folds stratifies on the members' joint label pattern (bit m = member m's binary
 * label, or continuous label above its median), so every member's classes are spread over the folds.
 * Joint selection (opts.joint): every member's probe reads the same (layer, position): the one with
 * the highest mean over members of the member's best-alpha CV score; the alpha stays per member. The
 * standardization is shared in any case (same rows, same layer -> same column statistics). The CV
 * curve stored in each probe is the full per-member sweep either way.
 */
#ifndef PIKA_POOL_H
#define PIKA_POOL_H

#include <stdint.h>

#include "pika/acts.h"
#include "pika/probe.h"

/* The rows of store ids[0..n) labelled by every member's labels file (split_spec "FIELD=VALUE" or NULL
 * applied to each file), and each member's target y[m][i]. *rows [*n_rows], y[m] freed by the caller
 * (y is an array of n_members pointers the caller provides). Error: a file fails to read, no common row. */
int pika_pool_select(char *const *ids, int64_t n, int n_members, const char *const *labels_paths, const char *id_field,
                     const char *target, const char *split_spec, int64_t **rows, int64_t *n_rows, double **y);

/* One fold assignment fold[n] in [0, k) for rows labelled by every member (y[m][i]), stratified on the
 * joint label pattern, seeded. Error if a binary member has fewer than k rows of a class or n < 2k. */
int pika_pool_folds(const double *const *y, int n_members, int64_t n, int k, uint64_t seed, int *fold);

typedef struct {
    pika_probe_train_opts train; /* shared: layers, positions, fit, log, split, target; folds/member/labels_path are set per member */
    int joint;                   /* 1: one (layer, position) for every member (see above) */
} pika_pool_opts;
void pika_pool_opts_default(pika_pool_opts *o);

/* Train one reader probe per member on rows[0..n) of the store: y[m] [n] the member's targets,
 * members[m] its name, labels_paths[m] its labels file (provenance; may be NULL). out[m] receive the
 * probes (freed with pika_probe_free). On error nothing is returned (out[] all NULL). */
int pika_probe_train_pool(pika_acts *a, const int64_t *rows, int64_t n, int n_members, const double *const *y,
                          const char *const *members, const char *const *labels_paths, const pika_pool_opts *o,
                          pika_probe **out);

#endif
