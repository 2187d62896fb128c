/* test_grade.c — grading dispatch (grade.h): task-kind names, pika_grade / pika_grade_batch on math
 * rows, and the answer equality used by majority vote. (The sandboxed code path is exercised by
 * test_code_grade and test_labels.) */
#include "pika/grade.h"
#include "pika/util.h"
#include "test.h"

static void test_kind_names(void) {
    const char *names[] = {"math", "humaneval", "mbpp", "stdio"};
    for (int k = 0; k < 4; k++) {
        pika_task_kind out = PIKA_TASK_MATH;
        CHECK(pika_task_kind_parse(names[k], &out) == 0 && (int)out == k, "%s", names[k]);
        CHECK(!strcmp(pika_task_kind_name((pika_task_kind)k), names[k]), "name %d", k);
    }
    pika_task_kind out;
    CHECK(pika_task_kind_parse("python", &out) == -1 && strstr(pika_last_error(), "unknown task kind 'python'"), "%s", pika_last_error());
    CHECK(pika_task_kind_parse(NULL, &out) == -1, "NULL name");
}

static void test_grade_math(void) {
    pika_grade_opts o;
    pika_grade_opts_default(&o);
    pika_example ex = {.id = "q1", .gold = "\\frac{1}{2}"};
    pika_grade_result r;
    REQUIRE(pika_grade(PIKA_TASK_MATH, &ex, "so the answer is $\\boxed{0.5}$", &o, &r) == 0, "%s", pika_last_error());
    CHECK(r.correct == 1 && r.answer && !strcmp(r.answer, "0.5") && r.verdict == PIKA_VERDICT_PASS, "correct: %s", r.answer ? r.answer : "(null)");
    pika_grade_result_free(&r);
    REQUIRE(pika_grade(PIKA_TASK_MATH, &ex, "\\boxed{1/3}", &o, &r) == 0, "%s", pika_last_error());
    CHECK(r.correct == 0 && r.verdict == PIKA_VERDICT_FAIL, "wrong");
    pika_grade_result_free(&r);
    pika_example nogold = {.id = "q2"};
    CHECK(pika_grade(PIKA_TASK_MATH, &nogold, "\\boxed{1}", &o, &r) == -1 && strstr(pika_last_error(), "no gold"), "no gold");
    pika_grade_result_free(&r);
    const pika_example *rows[3] = {&ex, &nogold, &ex};
    const char *texts[3] = {"\\boxed{\\dfrac12}", "\\boxed{1}", "I give up"};
    pika_grade_result res[3];
    REQUIRE(pika_grade_batch(PIKA_TASK_MATH, rows, texts, 3, &o, res) == 0, "batch");
    CHECK(res[0].correct == 1 && res[1].correct == 0 && res[1].verdict == PIKA_VERDICT_ERROR && res[2].correct == 0, "batch verdicts");
    for (int i = 0; i < 3; i++) pika_grade_result_free(&res[i]);
}

static void test_answers_equal(void) {
    CHECK(pika_answers_equal(PIKA_TASK_MATH, "0.5", "\\frac{1}{2}"), "math equivalence");
    CHECK(!pika_answers_equal(PIKA_TASK_MATH, "0.5", "1/3"), "different");
    CHECK(pika_answers_equal(PIKA_TASK_MBPP, "def f(): pass", "def f(): pass"), "same program");
    CHECK(!pika_answers_equal(PIKA_TASK_MBPP, "1", "1.0"), "code: text only");
    CHECK(!pika_answers_equal(PIKA_TASK_MATH, NULL, "1") && !pika_answers_equal(PIKA_TASK_MATH, NULL, NULL), "NULL");
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

static void count_bad(const char *msg, void *ctx) {
    (void)msg;
    (*(int *)ctx)++;
}

static void test_grade_files(void) {
    const char *dir = test_tmpdir();
    char in[512], out[512], data[512];
    snprintf(in, sizeof in, "%s/pairs.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    snprintf(data, sizeof data, "%s/qs.jsonl", dir);
    /* a numeric gold goes through the JSON-number rule: 0.1 is "0.1", not 0.10000000000000001 */
    write_file(in, "{\"pred\":\"\\\\boxed{0.1}\",\"gold\":0.1}\n{\"pred\":\"3\"}\n{\"pred\":\"\\\\boxed{7}\",\"gold\":\"8\"}\n");
    pika_extract_opts eo;
    pika_extract_opts_default(&eo);
    pika_grade_stats st;
    int nb = 0;
    REQUIRE(pika_grade_math_pairs(in, &eo, out, count_bad, &nb, &st) == 0, "%s", pika_last_error());
    CHECK(st.n_graded == 2 && st.n_correct == 1 && st.n_bad == 1 && nb == 1, "pairs: %lld graded %lld correct %lld bad",
          (long long)st.n_graded, (long long)st.n_correct, (long long)st.n_bad);
    char *t = pika_read_file(out, NULL);
    CHECK(t && strstr(t, "\"equivalent\":true,\"answer\":\"0.1\"") && strstr(t, "\"equivalent\":false"), "%s", t ? t : "");
    free(t);
    /* rollouts against a math dataset; numeric ids by the one id rule */
    write_file(data, "{\"id\":1,\"problem\":\"1+1\",\"answer\":\"2\"}\n{\"id\":\"1.5\",\"problem\":\"x\",\"answer\":\"3\"}\n");
    write_file(in, "{\"id\":1,\"text\":\"\\\\boxed{2}\"}\n{\"id\":1.5,\"text\":\"so 4\"}\n{\"id\":9,\"text\":\"1\"}\n");
    pika_field_map fm = {.id = "id", .problem = "problem", .gold = "answer"};
    pika_dataset *d = pika_dataset_load_file(data, &fm);
    REQUIRE(d, "%s", pika_last_error());
    pika_grade_opts o;
    pika_grade_opts_default(&o);
    nb = 0;
    REQUIRE(pika_grade_rollouts(in, d, &o, out, count_bad, &nb, &st) == 0, "%s", pika_last_error());
    CHECK(st.n_graded == 2 && st.n_correct == 1 && st.n_bad == 1, "rollouts: %lld graded %lld correct", (long long)st.n_graded,
          (long long)st.n_correct);
    t = pika_read_file(out, NULL);
    CHECK(t && strstr(t, "\"correct\":true,\"answer\":\"2\"") && strstr(t, "{\"id\":1.5,\"text\":\"so 4\",\"correct\":false"), "%s", t ? t : "");
    free(t);
    write_file(in, "");
    remove(out);
    CHECK(pika_grade_rollouts(in, d, &o, out, count_bad, &nb, &st) == -1 && strstr(pika_last_error(), "no rollouts to grade"), "empty");
    FILE *f = fopen(out, "r");
    CHECK(!f, "no output file for an empty input");
    if (f) fclose(f);
    pika_dataset_free(d);
}

int main(void) {
    RUN(test_kind_names);
    RUN(test_grade_math);
    RUN(test_answers_equal);
    RUN(test_grade_files);
    return test_summary("grade");
}
