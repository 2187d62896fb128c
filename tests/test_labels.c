/* test_labels.c — pass@k, majority vote, token and cost aggregation, the price table, and the CLI
 * (`pika grade math`, `pika grade rollouts`, `pika labels`, `pika data show`), including malformed
 * JSONL lines, missing fields and non-UTF-8 text reported with their line numbers while the other
 * lines are still graded. */
#include <math.h>

#include "pika/grade.h"
#include "pika/labels.h"
#include "pika/util.h"
#include "test.h"

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

static int eq_kind(const char *a, const char *b, void *ctx) { return pika_answers_equal(*(pika_task_kind *)ctx, a, b); }

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_pass_at_k(void) {
    CHECK(fabs(pika_pass_at_k(5, 2, 1) - 0.4) < 1e-12, "pass@1 = c/n");
    CHECK(pika_pass_at_k(5, 2, 5) == 1.0, "pass@n with a correct sample");
    CHECK(pika_pass_at_k(5, 0, 3) == 0.0, "no correct sample");
    CHECK(fabs(pika_pass_at_k(10, 3, 5) - (1.0 - 21.0 / 252.0)) < 1e-12, "1 - C(7,5)/C(10,5)");
    CHECK(fabs(pika_pass_at_k(50, 7, 10) - (1.0 - exp(lgamma(44.0) - lgamma(34.0) - lgamma(11.0) - (lgamma(51.0) - lgamma(41.0) - lgamma(11.0))))) < 1e-9,
          "matches binomials");
    CHECK(isnan(pika_pass_at_k(3, 1, 4)), "k > n is undefined");
    CHECK(isnan(pika_pass_at_k(3, 1, 0)), "k < 1 is undefined");
}

static void test_aggregate(void) {
    pika_rollout r[] = {
        {"q1", "m", 0, 100, 10, 1, "0.5"},
        {"q1", "m", 1, 100, 20, 1, "\\frac12"},
        {"q1", "m", 2, 100, 30, 0, "1"},
        {"q1", "m", 3, 100, 40, 0, "1.0"},
        {"q1", "m", 4, 100, 50, 0, NULL},
        {"q2", "m", 0, 7, 5, 0, NULL},
        {"q2", "m", 1, 7, 5, 0, NULL},
        {"q2", "m", 2, 7, 5, 1, "3"},
        {"q1", "other", 0, 100, 1000, 0, "2"},
        {"q3", "m", 0, 1, 1, 0, "2"},
        {"q3", "m", 1, 1, 1, 1, "3"},
    };
    int n = (int)(sizeof r / sizeof r[0]);
    int ks[] = {1, 2, 5};
    pika_price_table pt = {0};
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/prices.txt", dir);
    const char *prices = "# model  in  out (USD per 1M tokens)\nm 0.20 0.40\nother, 0.07, 0.30\n";
    write_file(p, prices, strlen(prices));
    REQUIRE(pika_price_table_load(p, &pt) == 0 && pt.n == 2, "price table: %s", pika_last_error());
    pika_label *L;
    int nl;
    pika_task_kind math = PIKA_TASK_MATH;
    pika_label_opts lo = {.ks = ks, .nk = 3, .prices = &pt, .answers_equal = eq_kind, .eq_ctx = &math};
    REQUIRE(pika_label_aggregate(r, n, &lo, &L, &nl) == 0 && nl == 4, "groups %d", nl);
    pika_label *a = &L[0];
    CHECK(!strcmp(a->id, "q1") && !strcmp(a->model, "m") && a->n == 5 && a->n_correct == 2, "q1 counts");
    CHECK(fabs(a->success_rate - 0.4) < 1e-12, "success rate");
    CHECK(fabs(a->pass_at[0] - 0.4) < 1e-12 && fabs(a->pass_at[1] - 0.7) < 1e-12 && a->pass_at[2] == 1.0, "pass@k %g %g %g",
          a->pass_at[0], a->pass_at[1], a->pass_at[2]);
    /* 0.5 and \frac12 cluster (2 votes), 1 and 1.0 cluster (2 votes): tie → first seen */
    CHECK(a->majority_answer && !strcmp(a->majority_answer, "0.5") && a->majority_count == 2 && a->majority_correct == 1,
          "majority %s x%d", a->majority_answer ? a->majority_answer : "(null)", a->majority_count);
    CHECK(a->tokens_in == 100 && a->total_tokens_out == 150 && a->total_tokens_in == 500, "tokens");
    CHECK(a->has_cost && fabs(a->input_cost_once - 100 * 0.20 / 1e6) < 1e-15 && fabs(a->output_cost - 150 * 0.40 / 1e6) < 1e-15 &&
              fabs(a->total_cost - (100 * 0.20 + 150 * 0.40) / 1e6) < 1e-15,
          "cost");
    pika_label *b = &L[1];
    CHECK(!strcmp(b->id, "q2") && b->majority_answer == NULL && b->majority_count == 2 && b->majority_correct == 0,
          "no-answer plurality is incorrect");
    CHECK(isnan(b->pass_at[2]), "pass@5 with n=3 undefined");
    pika_label *c = &L[2];
    CHECK(!strcmp(c->id, "q1") && !strcmp(c->model, "other") && c->n == 1 && fabs(c->output_cost - 1000 * 0.30 / 1e6) < 1e-15, "per-model group");
    pika_label *d = &L[3];
    CHECK(d->majority_answer && !strcmp(d->majority_answer, "2") && d->majority_correct == 0, "1-1 tie goes to the first answer");
    pika_label_free(L, nl);
    /* exact-text clustering keeps 0.5 and \frac12 apart */
    pika_label_opts lx = {.ks = ks, .nk = 1};
    REQUIRE(pika_label_aggregate(r, 5, &lx, &L, &nl) == 0 && nl == 1, "exact");
    CHECK(L[0].majority_answer && !strcmp(L[0].majority_answer, "0.5") && L[0].majority_count == 1 && !L[0].has_cost, "exact text");
    pika_label_free(L, nl);
    pika_price_table_free(&pt);
    const char *badp = "m 0.2 0.4\nbroken line here\n";
    write_file(p, badp, strlen(badp));
    CHECK(pika_price_table_load(p, &pt) == -1 && strstr(pika_last_error(), ":2:"), "bad price line: %s", pika_last_error());
}

static void test_cli_grade_math(void) {
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "%s grade math --pred '\\dfrac{1}{2}' --gold 0.5", test_pika_bin());
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && !strcmp(out, "true\n"), "true (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s grade math --pred 'so \\boxed{x=4}' --gold 3", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 0 && !strcmp(out, "false\n"), "false (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s grade math --pred 3 2>/dev/null", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 2, "usage error exits 2 (%d)", st);
    free(out);
    snprintf(cmd, sizeof cmd, "%s grade math --pred 3 --gold 3 --bogus 2>/dev/null", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 2, "unknown flag exits 2 (%d)", st);
    free(out);
    /* --jsonl with bad lines: errors name the line; good lines are still written */
    const char *dir = test_tmpdir();
    char in[512], outp[512];
    snprintf(in, sizeof in, "%s/pairs.jsonl", dir);
    snprintf(outp, sizeof outp, "%s/graded.jsonl", dir);
    const char pairs[] =
        "{\"pred\":\"\\\\frac{1}{2}\",\"gold\":\"0.5\"}\n"
        "{\"pred\":\"1,000\",\"gold\":\"1000\"}\n"
        "{\"pred\": \"3\", \"gold\": \n"
        "{\"pred\":\"4\"}\n"
        "{\"pred\":\"\xff\",\"gold\":\"1\"}\n"
        "[1,2]\n"
        "{\"pred\":\"The answer is 7.\",\"gold\":\"8\"}\r\n";
    write_file(in, pairs, sizeof pairs - 1);
    snprintf(cmd, sizeof cmd, "%s grade math --jsonl %s -o %s 2>&1", test_pika_bin(), in, outp);
    out = test_run(cmd, &st);
    CHECK(st == 2, "bad lines → exit 2 (%d)", st);
    CHECK(strstr(out, "pairs.jsonl:3:") && strstr(out, "malformed"), "line 3 malformed: %s", out);
    CHECK(strstr(out, "pairs.jsonl:4:") && strstr(out, "gold"), "line 4 missing gold: %s", out);
    CHECK(strstr(out, "pairs.jsonl:5:") && strstr(out, "UTF-8"), "line 5 non-UTF-8: %s", out);
    CHECK(strstr(out, "pairs.jsonl:6:") && strstr(out, "object"), "line 6 not an object: %s", out);
    free(out);
    char *g = pika_read_file(outp, NULL);
    REQUIRE(g, "output written");
    CHECK(count_lines(g) == 3, "3 graded lines kept: %s", g);
    char *l1 = strstr(g, "\"equivalent\":true"), *l3 = strstr(g, "\"equivalent\":false");
    CHECK(l1 && strstr(l1 + 1, "\"equivalent\":true") && l3 && strstr(g, "\"answer\":\"7\""), "verdicts: %s", g);
    free(g);
}

static void test_cli_rollouts_and_labels(void) {
    const char *dir = test_tmpdir();
    char data[512], roll[512], graded[512], labels[512], prices[512], cmd[3000];
    snprintf(data, sizeof data, "%s/qs.jsonl", dir);
    snprintf(roll, sizeof roll, "%s/rollouts.jsonl", dir);
    snprintf(graded, sizeof graded, "%s/graded.jsonl", dir);
    snprintf(labels, sizeof labels, "%s/labels.jsonl", dir);
    snprintf(prices, sizeof prices, "%s/prices.txt", dir);
    const char *qs = "{\"id\":\"a\",\"problem\":\"1/2?\",\"answer\":\"\\\\frac12\",\"level\":\"Level 2\"}\n"
                     "{\"id\":\"b\",\"problem\":\"1000?\",\"answer\":\"1,000\",\"level\":\"Level 5\"}\n";
    write_file(data, qs, strlen(qs));
    const char rs[] =
        "{\"id\":\"a\",\"sample\":0,\"text\":\"so $\\\\boxed{0.5}$\",\"tokens_in\":10,\"tokens_out\":100,\"model\":\"m\"}\n"
        "{\"id\":\"a\",\"sample\":1,\"text\":\"The answer is 1/2.\",\"tokens_in\":10,\"tokens_out\":200,\"model\":\"m\"}\n"
        "{\"id\":\"a\",\"sample\":2,\"text\":\"\\\\boxed{1/3}\",\"tokens_in\":10,\"tokens_out\":300,\"model\":\"m\"}\n"
        "{\"id\":\"b\",\"sample\":0,\"text\":\"#### 1000\",\"tokens_in\":20,\"tokens_out\":50,\"model\":\"m\"}\n"
        "{\"id\":\"b\",\"sample\":1,\"text\":\"I give up\",\"tokens_in\":20,\"tokens_out\":60,\"model\":\"m\"}\n"
        "{\"id\":\"b\",\"sample\":2,\"tokens_in\":20,\"tokens_out\":60,\"model\":\"m\"}\n"
        "{\"id\":\"zzz\",\"sample\":0,\"text\":\"1\",\"model\":\"m\"}\n"
        "not json\n"
        "{\"id\":\"b\",\"sample\":3,\"text\":\"caf\xe9\",\"model\":\"m\"}\n";
    write_file(roll, rs, sizeof rs - 1);
    snprintf(cmd, sizeof cmd, "%s grade rollouts --rollouts %s --data %s -o %s 2>&1", test_pika_bin(), roll, data, graded);
    int st;
    char *out = test_run(cmd, &st);
    CHECK(st == 2, "bad rollout lines → exit 2 (%d)", st);
    CHECK(strstr(out, "rollouts.jsonl:6:") && strstr(out, "text"), "missing text with line: %s", out);
    CHECK(strstr(out, "rollouts.jsonl:7:") && strstr(out, "zzz"), "unknown id with line: %s", out);
    CHECK(strstr(out, "rollouts.jsonl:8:") && strstr(out, "malformed"), "malformed with line: %s", out);
    CHECK(strstr(out, "rollouts.jsonl:9:") && strstr(out, "UTF-8"), "non-UTF-8 with line: %s", out);
    free(out);
    char *g = pika_read_file(graded, NULL);
    REQUIRE(g, "graded written");
    CHECK(count_lines(g) == 5, "5 graded rollouts kept");
    int ntrue = 0;
    for (const char *p = g; (p = strstr(p, "\"correct\":true")); p++) ntrue++;
    CHECK(ntrue == 3, "3 correct rollouts, got %d: %s", ntrue, g);
    CHECK(strstr(g, "\"answer\":\"0.5\"") && strstr(g, "\"answer\":\"1/2\"") && strstr(g, "\"answer\":null"), "answers: %s", g);
    free(g);
    write_file(prices, "m 1.0 2.0\n", 10);
    snprintf(cmd, sizeof cmd, "%s labels --rollouts %s --prices %s --k 1,2 --data %s -o %s 2>&1", test_pika_bin(), graded, prices, data, labels);
    out = test_run(cmd, &st);
    CHECK(st == 0, "labels ok (%d): %s", st, out);
    free(out);
    char *l = pika_read_file(labels, NULL);
    REQUIRE(l, "labels written");
    CHECK(count_lines(l) == 2, "2 questions");
    char *la = strstr(l, "\"id\":\"a\""), *lb = strstr(l, "\"id\":\"b\"");
    REQUIRE(la && lb && la < lb, "order: %s", l);
    char first[2000];
    snprintf(first, sizeof first, "%.*s", (int)(lb - la), la);
    CHECK(strstr(first, "\"level\":2") && strstr(first, "\"n\":3") && strstr(first, "\"n_correct\":2"), "a counts: %s", first);
    CHECK(strstr(first, "\"pass@1\":0.66666666666666") && strstr(first, "\"pass@2\":1") && strstr(first, "\"pass_at_n\":1"), "a pass@k: %s", first);
    CHECK(strstr(first, "\"majority_answer\":\"0.5\"") && strstr(first, "\"majority_count\":2") &&
              strstr(first, "\"majority_vote_is_correct\":true"), "a majority: %s", first);
    CHECK(strstr(first, "\"total_tokens_out\":600") && strstr(first, "\"total_output_cost_usd\":0.0012") &&
              strstr(first, "\"input_cost_usd_once\":1e-05"), "a cost: %s", first);
    CHECK(strstr(lb, "\"level\":5") && strstr(lb, "\"n\":2") && strstr(lb, "\"success_rate\":0.5") &&
              strstr(lb, "\"majority_answer\":\"1000\"") && strstr(lb, "\"majority_vote_is_correct\":true"), "b: %s", lb);
    free(l);
    /* labels on ungraded rollouts: clear error with the line, exit 2 */
    snprintf(cmd, sizeof cmd, "%s labels --rollouts %s -o %s 2>&1", test_pika_bin(), roll, labels);
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "rollouts.jsonl:1:") && strstr(out, "correct"), "ungraded (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s labels --rollouts %s --k 0 2>&1", test_pika_bin(), graded);
    out = test_run(cmd, &st);
    CHECK(st == 2, "--k 0 rejected");
    free(out);
}

static void test_cli_code_rollouts(void) {
    REQUIRE_SHARED(p, "data/humaneval/HumanEval.jsonl.gz");
    (void)p;
    int st;
    char *out;
    const char *dir = test_tmpdir();
    char roll[512], graded[512], cmd[2048];
    snprintf(roll, sizeof roll, "%s/code.jsonl", dir);
    snprintf(graded, sizeof graded, "%s/code_graded.jsonl", dir);
    const char *rs =
        "{\"id\":\"HumanEval/0\",\"sample\":0,\"model\":\"m\",\"tokens_in\":5,\"tokens_out\":9,\"text\":\"Sure:\\n```python\\n"
        "def has_close_elements(numbers, threshold):\\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\\n```\\n\"}\n"
        "{\"id\":\"HumanEval/0\",\"sample\":1,\"model\":\"m\",\"tokens_in\":5,\"tokens_out\":9,\"text\":\"```python\\n"
        "def has_close_elements(numbers, threshold):\\n    return False\\n```\"}\n"
        "{\"id\":\"HumanEval/0\",\"sample\":2,\"model\":\"m\",\"tokens_in\":5,\"tokens_out\":9,\"text\":\"no code, sorry\"}\n";
    write_file(roll, rs, strlen(rs));
    snprintf(cmd, sizeof cmd, "%s grade rollouts --rollouts %s --data humaneval --workers 2 -o %s 2>&1", test_pika_bin(), roll, graded);
    out = test_run(cmd, &st);
    if (st == 2 && strstr(out, "namespaces")) { free(out); SKIP_TEST("*** bubblewrap unavailable here ***"); }
    CHECK(st == 0, "code rollouts (%d): %s", st, out);
    free(out);
    char *g = pika_read_file(graded, NULL);
    REQUIRE(g, "graded");
    char *l2 = strchr(g, '\n'), *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
    REQUIRE(l2 && l3, "3 lines");
    CHECK(strstr(g, "\"correct\":true") < l2 && strstr(g, "\"verdict\":\"pass\"") < l2, "sample 0 passes: %s", g);
    CHECK(strstr(l2, "\"correct\":false") < l3 && strstr(l2, "\"verdict\":\"fail\"") < l3, "sample 1 fails");
    CHECK(strstr(l3, "\"correct\":false") && strstr(l3, "\"answer\":null") && strstr(l3, "no program"), "sample 2 has no program");
    free(g);
}

static void test_cli_data_show(void) {
    REQUIRE_SHARED(p, "data/math/test.jsonl");
    (void)p;
    char cmd[512];
    int st;
    snprintf(cmd, sizeof cmd, "%s data show math", test_pika_bin());
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "rows      5000") && strstr(out, "level     1:") && strstr(out, "--- gold"), "math show: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s data show math:train", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "7498 rows with a gold") && strstr(out, "unknown:2"), "math train: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s data show mbpp --id 367", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "rows      974") && strstr(out, "--- setup"), "mbpp show");
    free(out);
    snprintf(cmd, sizeof cmd, "%s data show nosuchpreset.jsonl 2>&1", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "pika:"), "missing file exits 2: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "PIKA_DATA=/nonexistent %s data show gsm8k 2>&1", test_pika_bin());
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "/nonexistent"), "PIKA_DATA honoured: %s", out);
    free(out);
}

int main(void) {
    RUN(test_pass_at_k);
    RUN(test_aggregate);
    RUN(test_cli_grade_math);
    RUN(test_cli_rollouts_and_labels);
    RUN(test_cli_code_rollouts);
    RUN(test_cli_data_show);
    return test_summary("labels");
}
