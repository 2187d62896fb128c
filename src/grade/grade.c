/* grade.c — owns grading dispatch by task kind (math vs code), the answer equality used by majority
 * vote, and the task-kind names. Math and code graders themselves live in math_grade.c /
 * code_grade.c. See include/pika/grade.h. */
#include "pika/grade.h"

#include <stdlib.h>
#include <string.h>

#include "pika/util.h"

static const char *const KIND_NAMES[] = {"math", "humaneval", "mbpp", "stdio"};

int pika_task_kind_parse(const char *name, pika_task_kind *out) {
    for (int k = 0; k < 4; k++)
        if (name && !strcmp(name, KIND_NAMES[k])) { *out = (pika_task_kind)k; return 0; }
    return pika_set_error("unknown task kind '%s' (math, humaneval, mbpp or stdio)", name ? name : "");
}

const char *pika_task_kind_name(pika_task_kind kind) {
    return (int)kind >= 0 && (int)kind < 4 ? KIND_NAMES[kind] : "math";
}

void pika_grade_opts_default(pika_grade_opts *o) {
    memset(o, 0, sizeof *o);
    pika_extract_opts_default(&o->math);
    pika_sandbox_opts_default(&o->sandbox);
}

void pika_grade_result_free(pika_grade_result *r) {
    free(r->answer);
    free(r->detail);
    memset(r, 0, sizeof *r);
}

static int grade_math_one(const pika_example *ex, const char *text, const pika_grade_opts *o, pika_grade_result *r) {
    if (!ex->gold) return pika_set_error("row '%s' has no gold answer", ex->id);
    r->correct = pika_math_grade(text, ex->gold, &o->math, &r->answer) ? 1 : 0;
    r->verdict = r->correct ? PIKA_VERDICT_PASS : PIKA_VERDICT_FAIL;
    return 0;
}

int pika_grade(pika_task_kind kind, const pika_example *ex, const char *text, const pika_grade_opts *o, pika_grade_result *r) {
    memset(r, 0, sizeof *r);
    if (kind == PIKA_TASK_MATH) return grade_math_one(ex, text, o, r);
    return pika_grade_batch(kind, &ex, &text, 1, o, r);
}

int pika_grade_batch(pika_task_kind kind, const pika_example *const *ex, const char *const *texts, int n,
                     const pika_grade_opts *o, pika_grade_result *res) {
    if (kind == PIKA_TASK_MATH) {
        for (int i = 0; i < n; i++) {
            memset(&res[i], 0, sizeof res[i]);
            if (grade_math_one(ex[i], texts[i], o, &res[i])) {
                res[i].verdict = PIKA_VERDICT_ERROR;
                res[i].detail = pika_strdup(pika_last_error());
            }
        }
        return 0;
    }
    pika_code_job *jobs = pika_calloc((size_t)(n > 0 ? n : 1), sizeof *jobs);
    for (int i = 0; i < n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].answer = pika_code_extract(texts[i]);
        jobs[i] = (pika_code_job){kind, ex[i], res[i].answer, {0}};
    }
    pika_code_grade_batch(&o->sandbox, jobs, n, o->n_workers);
    for (int i = 0; i < n; i++) {
        res[i].verdict = jobs[i].res.verdict;
        res[i].correct = jobs[i].res.verdict == PIKA_VERDICT_PASS;
        res[i].detail = jobs[i].res.detail;
        jobs[i].res.detail = NULL;
        pika_code_result_free(&jobs[i].res);
    }
    free(jobs);
    return 0;
}

int pika_answers_equal(pika_task_kind kind, const char *a, const char *b) {
    if (!a || !b) return 0;
    if (!strcmp(a, b)) return 1;
    return kind == PIKA_TASK_MATH && pika_math_equiv(a, b);
}
