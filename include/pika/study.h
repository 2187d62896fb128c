/* study.h — `pika study`: the whole study of one pool on one dataset in one page. Reads what
 * scripts/pipeline.sh wrote under its OUT directory and writes OUT_DIR/study.md (Markdown) and
 * OUT_DIR/study.html (the same, self-contained: every figure embedded as a base64 PNG), with the
 * gnuplot scripts (*.gp) and data (*.dat) of its figures next to them.
 *
 * Layout read (pipeline_dir = P, one folder per member m, the reader R):
 *   P/problems.jsonl                       the dataset (N rows)
 *   P/m/rollouts.jsonl.meta.json           model file + fingerprint, prompt recipe, sampling (k, temperature)
 *   P/m/labels.jsonl                       the member's labels (target, human "level", "split")
 *   P/m/probe.json, length.json, tfidf.json, prompting.json   own probe and baselines (CV curves)
 *   P/m/{probe,length,tfidf,prompting}.pred.jsonl   held-out predictions (split=test)
 *   P/m/report/report.md, P/m/difficulty/difficulty.md (+ difficulty_by_layer.dat)
 *   P/reader/R/m.pred.jsonl, P/reader/summary.md    reader probes (every reader x member table)
 *   P/transfer/summary.md                  bare <-> word transfer table
 *   P/route/report/, P/route-reader/R/report/        routing with own / with R's reader probes
 *   P/route-reader/summary.md              savings with own probes and with each reader's
 * A missing optional piece (reader, transfer, routing) is said so in the page, not an error.
 *
 * Figures (gnuplot, integer layer ticks, labelled axes, legends): per member the CV score by layer
 * (one line per EOI position with the fold std as error bars, the baselines' CV as horizontal lines),
 * the ROC curves of own probe / reader probe / length / TF-IDF / prompting, a reliability diagram with bin
 * counts; the difficulty figures (success rate by human level per member; per member the human and
 * success probes' CV by layer, Spearman and AUROC on separate axes); the reader-probe AUROC of every
 * (reader, member) pair with bootstrap CIs; the routing reports' cost–accuracy figures.
 * Without gnuplot the figures are missing (said in the page) and the rest is written.
 */
#ifndef PIKA_STUDY_H
#define PIKA_STUDY_H

#include <stdint.h>

typedef struct {
    const char *pipeline_dir;     /* the pipeline's OUT */
    const char *const *models;    /* member names, smallest first (folders under pipeline_dir) */
    int n_models;
    const char *reader;           /* the member whose reader probes route (NULL = the first) */
    const char *target;           /* label field of the probes (e.g. majority_vote_is_correct) */
    const char *human;            /* human difficulty field (NULL = "level") */
    int k;                        /* rollouts per question (provenance; 0 = from the rollouts meta) */
    const char *title;            /* page title (NULL = "pika study") */
    const char *version;          /* pika version string for the provenance (NULL = "unknown") */
    const char *out_dir;
    int n_boot;                   /* bootstrap resamples for the CIs computed here (default 1000 when 0) */
    uint64_t seed;                /* bootstrap seed (42 when 0) */
} pika_study_opts;

/* Write out_dir/study.md and study.html. */
int pika_study_run(const pika_study_opts *o);

/* Render a Markdown file of the subset pika writes (headings, "- " lists, pipe tables, paragraphs,
 * whole-line images "![alt](file.png)" read from img_dir and embedded as base64, inline `code` and
 * **bold**) as one self-contained HTML page. The page's script sets the document title to
 * "images LOADED/TOTAL" once loaded (a browser test reads it). */
int pika_md_to_html(const char *md_path, const char *html_path, const char *img_dir, const char *title);

#endif
