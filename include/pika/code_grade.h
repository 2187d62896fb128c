/* code_grade.h — code grading: program extraction from model text, test harnesses (HumanEval, MBPP,
 * stdin/stdout as in LiveCodeBench) and a pthread worker pool running them in the sandbox.
 *
 * Harnesses (the program is what pika_code_extract returns, or a raw completion):
 *   HumanEval: prefix (the task prompt) + completion + "\n" + test + "\ncheck(ENTRY_POINT)\n". If the
 *              completion itself defines `def ENTRY_POINT(`, the prompt's function gets a `pass` body
 *              first so the completion's definition wins and the prompt's helpers stay available.
 *   MBPP:      program + "\n" + setup (it uses the solution's classes, e.g. task 367) + "\n" +
 *              each assert line.
 *   STDIO:     the program runs once per case with the case's input on stdin; pass iff stdout equals
 *              the expected output after trailing whitespace is stripped from each line and trailing
 *              blank lines are dropped. All cases must pass.
 */
#ifndef PIKA_CODE_GRADE_H
#define PIKA_CODE_GRADE_H

#include "pika/dataset.h"
#include "pika/sandbox.h"

/* The program in a model's reply: text after the last ```python fence up to the next ```; else the
 * first fenced block (dropping a first line that is only a language tag); else NULL (→ fail). */
char *pika_code_extract(const char *text);

/* The full Python source that tests `program` on task ex (malloc'ed). For STDIO tasks it is the
 * program itself. NULL + error when the task lacks its test fields. */
char *pika_code_harness(const pika_task_kind kind, const pika_example *ex, const char *program);

typedef struct {
    pika_verdict verdict;
    int passed, total; /* test cases (STDIO) or 1 program run */
    double wall_s;
    char *detail;      /* first line of the failure (malloc'ed, may be NULL) */
} pika_code_result;

/* Grade one program against one task. Returns 0 (r filled) or -1 on a setup error (r->verdict ERROR). */
int pika_code_grade(const pika_sandbox_opts *o, pika_task_kind kind, const pika_example *ex, const char *program,
                    pika_code_result *r);

typedef struct {
    pika_task_kind kind;
    const pika_example *ex;
    const char *program;  /* NULL = no program extracted: verdict fail without running */
    pika_code_result res; /* output */
} pika_code_job;

/* Run jobs on n_workers threads (<= 0: number of cores). Returns 0; each job's res is set. */
int pika_code_grade_batch(const pika_sandbox_opts *o, pika_code_job *jobs, int n_jobs, int n_workers);

void pika_code_result_free(pika_code_result *r);

#endif
