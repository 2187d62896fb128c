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

/* Human vs model difficulty on training rows of a store: Spearman(human, success) with CI,
 * per-layer probes for both targets (CV), cross-prediction using out-of-fold scores, written as
 * Markdown to out (and difficulty.md + a plot when out_dir != NULL). */
int pika_difficulty_run(pika_acts *a, const int64_t *rows, int64_t n, const double *human, const double *success,
                        const char *human_name, const char *success_name, const int32_t *layers, int n_layers,
                        const int32_t *positions, int n_pos, const pika_fit_opts *o, int n_boot, const char *out_dir,
                        FILE *out);

#endif
