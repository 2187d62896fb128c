/* grade.h — grading dispatch: one entry point that grades a model output against a dataset row of
 * any task kind (math answer equivalence, or a code program run in the sandbox), the answer
 * equality that majority vote uses, and the task-kind names (parsed in this one place).
 *
 * Kinds (pika_task_kind, dataset.h) and their names: "math", "humaneval", "mbpp", "stdio".
 *   math   answer = the extracted final answer (math_grade.h); correct = math-equivalent to gold
 *   code   answer = the extracted program (code_grade.h); correct = verdict "pass" in the sandbox
 */
#ifndef PIKA_GRADE_H
#define PIKA_GRADE_H

#include "pika/code_grade.h"
#include "pika/dataset.h"
#include "pika/math_grade.h"
#include "pika/sandbox.h"

/* Name -> kind; -1 + error "unknown task kind 'x' (math, humaneval, mbpp or stdio)". */
int pika_task_kind_parse(const char *name, pika_task_kind *out);
/* Kind -> its name ("math" for anything unknown). */
const char *pika_task_kind_name(pika_task_kind kind);

typedef struct {
    pika_extract_opts math;     /* math answer extraction (pika_extract_opts_default) */
    pika_sandbox_opts sandbox;  /* code kinds (pika_sandbox_opts_default) */
    int n_workers;              /* code batches: parallel programs (<= 0: cores) */
} pika_grade_opts;
void pika_grade_opts_default(pika_grade_opts *o);

typedef struct {
    int correct;            /* 1 / 0 */
    char *answer;           /* extracted answer or program (malloc'ed), NULL = none */
    pika_verdict verdict;   /* code kinds; PASS/FAIL for math */
    char *detail;           /* code kinds: first failure line (malloc'ed, may be NULL) */
} pika_grade_result;
void pika_grade_result_free(pika_grade_result *r);

/* Grade one output text against row ex of a dataset of this kind. Math needs ex->gold. Returns 0
 * (r filled) or -1 on a setup error (r->correct = 0). */
int pika_grade(pika_task_kind kind, const pika_example *ex, const char *text, const pika_grade_opts *o,
               pika_grade_result *r);
/* Grade n outputs (code kinds run on o->n_workers threads). res[i] filled for every i. Returns 0. */
int pika_grade_batch(pika_task_kind kind, const pika_example *const *ex, const char *const *texts, int n,
                     const pika_grade_opts *o, pika_grade_result *res);

/* Whether two extracted answers count as the same answer for majority vote: math kinds compare by
 * math equivalence (or identical text), code kinds by identical text. NULL never equals anything. */
int pika_answers_equal(pika_task_kind kind, const char *a, const char *b);

/* ---- graded files ----
 * Both read JSONL with the library's reader: bad lines (malformed, missing fields, unknown id) go to
 * bad(message, bad_ctx) and are skipped (st->n_bad counts them); with bad == NULL the first one is an
 * error. out_path NULL or "-" = stdout; each graded line is written and flushed as soon as it is
 * graded. */
typedef struct {
    int64_t n_graded, n_correct, n_bad;
} pika_grade_stats;

/* Rollouts {id, text, ...} against dataset d (ids by pika_json_id): each line gets "correct" and
 * "answer" (code kinds also "verdict" and "detail"; answer = the extracted program); code runs in
 * chunks on o->n_workers. No gradable line at all is an error ("no rollouts to grade"), and then
 * out_path is not created. */
int pika_grade_rollouts(const char *rollouts_path, const pika_dataset *d, const pika_grade_opts *o, const char *out_path,
                        pika_jsonl_bad_fn bad, void *bad_ctx, pika_grade_stats *st);
/* Every reference solution (row gold) of a code dataset in the sandbox: one line per task
 * {id, verdict, detail?, wall_s}; counts[PIKA_VERDICT_*] (4 values) are added up. */
int pika_grade_references(const pika_dataset *d, const pika_sandbox_opts *so, int n_workers, const char *out_path, int counts[4]);
/* Pairs {pred, gold} (gold a string, or a number printed by the JSON-id rule: 0.1 -> "0.1"): each
 * line gets "equivalent" (bool) and "answer" (the extracted answer or null). */
int pika_grade_math_pairs(const char *jsonl_path, const pika_extract_opts *eo, const char *out_path, pika_jsonl_bad_fn bad,
                          void *bad_ctx, pika_grade_stats *st);

#endif
