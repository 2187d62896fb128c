/* report.h — the `pika report` Markdown summary with gnuplot plots (with its provenance: model file +
 * fingerprint, prompt recipe, labels file, N, k, base rate), and the human-vs-model difficulty
 * analysis (`pika difficulty`). Prediction files and their evaluation are in eval.h.
 */
#ifndef PIKA_REPORT_H
#define PIKA_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "pika/acts.h"
#include "pika/eval.h"
#include "pika/metrics.h"
#include "pika/probe.h"

typedef struct {
    const char *out_dir;
    const char *probe_path;        /* optional: CV curve by layer */
    const char **baseline_paths;   /* optional: CV scores as horizontal lines */
    int n_baselines;
    const char **pred_names, **pred_paths; /* optional test predictions; the first is compared to the others */
    int n_preds;
    const char *labels_path, *target, *id_field;
    const char *dataset;           /* optional: dataset name or file, printed in the provenance */
    int n_boot;
    uint64_t seed;
    const char *plot_format;       /* "png" (default) or "svg" */
} pika_report_opts;
/* Writes out_dir/report.md, plot data (*.dat), gnuplot scripts (*.gp) and the plots; gnuplot missing
 * is reported in the Markdown (the data and scripts are still written). */
int pika_report_run(const pika_report_opts *o);

/* Options of the human-vs-model difficulty analysis (pika_difficulty_opts_default: names "human" /
 * "success", all layers and positions, pika_fit_opts_default, 1000 resamples, no output). */
typedef struct {
    const char *human_name, *success_name; /* label field names (shown and recorded in the probes) */
    const int32_t *layers;                  /* [n_layers]; NULL = every layer of the store */
    int n_layers;
    const int32_t *positions;               /* [n_pos]; NULL = every position */
    int n_pos;
    pika_fit_opts fit;
    int n_boot;                             /* bootstrap resamples for the CIs */
    const char *out_dir;                    /* when set: difficulty.md, a plot, probe_human.json, probe_success.json */
    FILE *out;                              /* when set: the Markdown is also written here */
} pika_difficulty_opts;
void pika_difficulty_opts_default(pika_difficulty_opts *o);

/* Human vs model difficulty on training rows rows[0..n) of a store: Spearman(human, success) with CI,
 * per-layer probes for both targets (CV), cross-prediction using out-of-fold scores. human [n] and
 * success [n] are the two targets. */
int pika_difficulty_run(pika_acts *a, const int64_t *rows, int64_t n, const double *human, const double *success,
                        const pika_difficulty_opts *o);

#endif
