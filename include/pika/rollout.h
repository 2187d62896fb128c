/* rollout.h — the rollouts file format (read and write): JSONL, one object per sampled answer,
 *   {"id", "sample", "text", "tokens_in", "tokens_out", "model", "finish"}   (finish: stop | length)
 * and, after `pika grade rollouts`, also "correct" (bool) and "answer" (string or null); remote
 * sampling (sample.h, pika_rollouts_remote) adds "latency_s" and, when the server sent one,
 * "reasoning_content"; other keys are kept by readers that pass objects through. Text is always
 * valid UTF-8.
 *
 * Provenance sidecar FILE.meta.json (written by `pika sample` before the first row):
 *   {"format": "pika-rollouts", "version": 1, "model": {...}, "prompt": {...recipe (prompt.h)},
 *    "sampling": {...generation options (generate.h)}, "k": K}
 * A resumed run must match it (model fingerprint and name, prompt recipe, sampling).
 */
#ifndef PIKA_ROLLOUT_H
#define PIKA_ROLLOUT_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "pika/labels.h"

/* One rollout line. */
typedef struct {
    char *id;
    int sample;          /* -1 when absent */
    char *text;          /* NULL when absent */
    int64_t tokens_in;   /* -1 when absent */
    int64_t tokens_out;  /* -1 when absent */
    char *model;         /* NULL when absent */
    char *finish;        /* NULL when absent */
    int correct;         /* 1 / 0, -1 = not graded */
    char *answer;        /* NULL = none */
} pika_rollout_rec;

void pika_rollout_rec_free(pika_rollout_rec *r);

/* One line as a JSON object (compact, no newline; caller frees). The text is repaired to valid UTF-8;
 * correct/answer are written only when correct >= 0. */
char *pika_rollout_rec_json(const pika_rollout_rec *r);

/* Parse one JSON object into r. Required: "id" (a string, or an integral number printed as an
 * integer). 0 or -1 + error naming the field. */
int pika_rollout_rec_parse(const cJSON *o, pika_rollout_rec *r);

/* Read a whole rollouts file ("-" = stdin). Blank lines are skipped; a torn last line (no newline:
 * a run killed mid-write) is ignored when ignore_torn_tail. *rows malloc'ed, free with
 * pika_rollouts_free. 0, or -1 + error "path:line: what". */
int pika_rollouts_read(const char *path, int ignore_torn_tail, pika_rollout_rec **rows, int64_t *n);
void pika_rollouts_free(pika_rollout_rec *rows, int64_t n);

/* ---- graded rollouts (input of `pika labels`), read into labels.h's pika_rollout ----
 * Each line needs id (pika_json_id) and correct (bool, or a number: non-zero = true); tokens_in /
 * tokens_out are non-negative integers (absent = 0), model / answer strings or null, sample a number
 * (absent = line order). Bad lines: with bad == NULL the first one is an error; otherwise each is
 * passed to bad(message, bad_ctx) and skipped (*n_bad counts them). No rollout at all is an error
 * ("no graded rollouts"). *out is malloc'ed; free with pika_rollouts_graded_free. */
int pika_rollouts_read_graded(const char *path, pika_rollout **out, int *n_out, void (*bad)(const char *msg, void *bad_ctx),
                              void *bad_ctx, int64_t *n_bad);
void pika_rollouts_graded_free(pika_rollout *r, int n);

/* FILE.meta.json for a rollouts path (malloc'ed). */
char *pika_rollouts_meta_path(const char *path);

#endif
