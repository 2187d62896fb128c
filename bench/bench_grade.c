/* bench_grade.c — grading throughput: math answers/s (extraction + equivalence on MATH test golds,
 * both matching and non-matching pairs) and HumanEval programs/s in the sandbox with N workers.
 *
 *   bench_grade [--workers 1,2,4] [--math-only] [--code-only] [--data-dir DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/code_grade.h"
#include "pika/dataset.h"
#include "pika/math_grade.h"
#include "pika/sandbox.h"
#include "pika/util.h"

static void bench_math(const char *data_dir) {
    pika_dataset *d = pika_dataset_load_preset("math:test", data_dir);
    if (!d) { fprintf(stderr, "bench_grade: %s\n", pika_last_error()); return; }
    int n = d->n;
    char **texts = pika_malloc((size_t)n * sizeof *texts);
    for (int i = 0; i < n; i++) {
        size_t L = strlen(d->rows[i].gold) + 128;
        texts[i] = pika_malloc(L);
        snprintf(texts[i], L, "Combining the cases, the final answer is $\\boxed{%s}$. I hope it is correct.", d->rows[i].gold);
    }
    /* matching pairs (mostly decided by the string normalisation) */
    int reps = 5, ok = 0;
    double t0 = pika_now();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n; i++) ok += pika_math_grade(texts[i], d->rows[i].gold, NULL, NULL);
    double dt = pika_now() - t0;
    printf("math  same-answer pairs     %8.0f answers/s  (%d x %d MATH test golds, %d equivalent)\n", reps * n / dt, reps, n, ok / reps);
    /* non-matching pairs: every one goes through structure splitting and the expression parser */
    ok = 0;
    t0 = pika_now();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n; i++) ok += pika_math_grade(texts[i], d->rows[(i + 1) % n].gold, NULL, NULL);
    dt = pika_now() - t0;
    printf("math  different-answer pairs %7.0f answers/s  (%d equivalent by coincidence)\n", reps * n / dt, ok / reps);
    /* equivalence only, on reformatted numbers that need exact rationals */
    const char *pairs[][2] = {{"0.5", "\\frac12"}, {"1,000", "1000"}, {"x=3", "3"}, {"\\sqrt{8}", "2\\sqrt2"},
                              {"(x+1)^2", "x^2+2x+1"}, {"\\{1,2,3\\}", "\\{3,2,1\\}"}, {"1.5\\times10^3", "1500"},
                              {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"}};
    int np = (int)(sizeof pairs / sizeof pairs[0]), it = 20000;
    ok = 0;
    t0 = pika_now();
    for (int r = 0; r < it; r++) ok += pika_math_equiv(pairs[r % np][0], pairs[r % np][1]);
    dt = pika_now() - t0;
    printf("math  reformatted pairs     %8.0f answers/s  (%d of %d equivalent)\n", it / dt, ok, it);
    /* the structured classes of tests/math_cases.tsv: equations, relations, named tuples, lists in words,
     * matrices, thinking blocks */
    const char *cls[][2] = {{"y = 2x + 1", "2x - y + 1 = 0"}, {"x^2/8 + y^2/2 = 1/2", "\\frac{x^2}{4} + y^2 = 1"},
                            {"-1 \\le x \\le 4", "x \\in [-1, 4]"}, {"x < -2 \\text{ or } x > 3", "(-\\infty,-2)\\cup(3,\\infty)"},
                            {"a=1, b=4; a=2, b=3", "(1,4),(2,3)"}, {"(a,b) = (1,4)", "(1,4)"}, {"3 or 5", "5, 3"},
                            {"\\begin{bmatrix} \\frac12 & 0 \\\\ 0 & 1 \\end{bmatrix}", "\\begin{pmatrix}1/2&0\\\\0&1\\end{pmatrix}"},
                            {"\\frac{AB}{CD} = \\frac{2}{3}", "\\frac23"}, {"5 = 3a + b", "3a + b"}};
    int nc = (int)(sizeof cls / sizeof cls[0]);
    ok = 0;
    t0 = pika_now();
    for (int r = 0; r < it; r++) ok += pika_math_equiv(cls[r % nc][0], cls[r % nc][1]);
    dt = pika_now() - t0;
    printf("math  structured pairs      %8.0f answers/s  (%d of %d equivalent; 1 in %d is not)\n", it / dt, ok, it, nc);
    const char *think = "<think>Let me try 4. No wait, \\boxed{4} is wrong.</think>The solutions are $\\boxed{2}$ and $\\boxed{3}$.";
    ok = 0;
    t0 = pika_now();
    for (int r = 0; r < it; r++) ok += pika_math_grade(think, "3, 2", NULL, NULL);
    dt = pika_now() - t0;
    printf("math  thinking + boxed list %8.0f answers/s  (%d of %d equivalent)\n", it / dt, ok, it);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    pika_dataset_free(d);
}

static void bench_code(const char *data_dir, const int *workers, int nw) {
    pika_dataset *d = pika_dataset_load_preset("humaneval", data_dir);
    if (!d) { fprintf(stderr, "bench_grade: %s\n", pika_last_error()); return; }
    pika_sandbox_opts o;
    pika_sandbox_opts_default(&o);
    if (pika_sandbox_check(&o)) { fprintf(stderr, "bench_grade: %s\n", pika_last_error()); pika_dataset_free(d); return; }
    pika_code_job *jobs = pika_calloc((size_t)d->n, sizeof *jobs);
    for (int w = 0; w < nw; w++) {
        for (int i = 0; i < d->n; i++) jobs[i] = (pika_code_job){d->kind, &d->rows[i], d->rows[i].gold, {0}};
        double t0 = pika_now();
        pika_code_grade_batch(&o, jobs, d->n, workers[w]);
        double dt = pika_now() - t0;
        int pass = 0;
        for (int i = 0; i < d->n; i++) { pass += jobs[i].res.verdict == PIKA_VERDICT_PASS; pika_code_result_free(&jobs[i].res); }
        printf("code  HumanEval, %2d worker(s) %6.1f programs/s  (%d programs in %.2f s, %d pass; %d cores)\n", workers[w],
               d->n / dt, d->n, dt, pass, pika_n_cores());
    }
    free(jobs);
    pika_dataset_free(d);
}

int main(int argc, char **argv) {
    int math = 1, code = 1;
    const char *data_dir = NULL;
    int workers[16] = {1, 2, 4}, nw = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--math-only")) code = 0;
        else if (!strcmp(argv[i], "--code-only")) math = 0;
        else if (!strcmp(argv[i], "--data-dir") && i + 1 < argc) data_dir = argv[++i];
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            int32_t *w;
            int k = pika_parse_int_list(argv[++i], &w);
            if (k <= 0 || k > 16) { fprintf(stderr, "bench_grade: bad --workers\n"); return 2; }
            for (int j = 0; j < k; j++) workers[j] = w[j] > 0 ? w[j] : 1;
            nw = k;
            free(w);
        } else {
            fprintf(stderr, "usage: bench_grade [--workers 1,2,4] [--math-only] [--code-only] [--data-dir DIR]\n");
            return 2;
        }
    }
    if (math) bench_math(data_dir);
    if (code) bench_code(data_dir, workers, nw);
    return 0;
}
