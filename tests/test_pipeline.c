/* test_pipeline.c — the main job end to end on a small slice: scripts/pipeline.sh with the smallest
 * pool model samples, grades, labels, extracts, trains a probe and both baselines, evaluates and
 * writes a report. Checks the artifacts exist and are consistent, not the science numbers. */
#include <unistd.h>

#include "pika/acts.h"
#include "pika/util.h"
#include "test.h"

static int count_lines(const char *path) {
    char *s = pika_read_file(path, NULL);
    if (!s) return -1;
    int n = 0;
    for (char *c = s; *c; c++) n += *c == '\n';
    free(s);
    return n;
}

static void test_pipeline_small(void) {
    if (access("models/pool/pika-math-s.gguf", R_OK) != 0) SKIP_TEST("models/pool/pika-math-s.gguf is missing");
    const char *dir = test_tmpdir();
    const char *b = getenv("PIKA_BUILD");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "OUT=%s N=100 K=3 MODELS=s THREADS=1 sh scripts/pipeline.sh %s > %s/log.txt 2>&1", dir,
             b && *b ? b : "build", dir);
    int st;
    free(test_run(cmd, &st));
    char p[1024];
    snprintf(p, sizeof p, "%s/log.txt", dir);
    if (st != 0) {
        char *log = pika_read_file(p, NULL);
        CHECK(0, "pipeline.sh exited %d:\n%s", st, log ? log : "");
        free(log);
        return;
    }
    snprintf(p, sizeof p, "%s/problems.jsonl", dir);
    CHECK(count_lines(p) == 100, "problems.jsonl lines");
    snprintf(p, sizeof p, "%s/s/rollouts.jsonl", dir);
    CHECK(count_lines(p) == 300, "rollouts: 100 problems x 3 samples");
    snprintf(p, sizeof p, "%s/s/labels.jsonl", dir);
    CHECK(count_lines(p) == 100, "labels: one line per problem");
    char *labels = pika_read_file(p, NULL);
    CHECK(labels && strstr(labels, "\"split\":\"train\"") && strstr(labels, "\"split\":\"test\"") &&
              strstr(labels, "\"pass@3\""), "labels carry split and pass@k");
    free(labels);
    snprintf(p, sizeof p, "%s/s/acts", dir);
    pika_acts a;
    REQUIRE(pika_acts_open(&a, p) == 0, "%s", pika_last_error());
    CHECK(a.n == 100 && a.n_pos >= 1 && a.positions[a.n_pos - 1] == -1, "activation store shape");
    pika_acts_close(&a);
    snprintf(p, sizeof p, "%s/s/probe.pred.jsonl", dir);
    CHECK(count_lines(p) == 30, "probe predictions on the 30 held-out problems");
    snprintf(p, sizeof p, "%s/s/report/report.md", dir);
    char *rep = pika_read_file(p, NULL);
    CHECK(rep && strstr(rep, "| probe |") && strstr(rep, "| tfidf |") && strstr(rep, "| length |"), "report tables");
    free(rep);
    /* routing: arms s-k1 and s-k3 over all 100 problems, a router file and the report */
    snprintf(p, sizeof p, "%s/route/table.jsonl", dir);
    CHECK(count_lines(p) == 200, "routing table: 100 problems x 2 arms");
    snprintf(p, sizeof p, "%s/route/router.json", dir);
    char *router = pika_read_file(p, NULL);
    CHECK(router && strstr(router, "\"pika-router\"") && strstr(router, "\"s-k3\""), "router file");
    free(router);
    snprintf(p, sizeof p, "%s/route/report/report.md", dir);
    char *rrep = pika_read_file(p, NULL);
    CHECK(rrep && strstr(rrep, "best single arm: s-k") && strstr(rrep, "AIQ"), "routing report");
    free(rrep);
    snprintf(p, sizeof p, "%s/summary.txt", dir);
    char *sum = pika_read_file(p, NULL);
    CHECK(sum && strstr(sum, "\ns ") && strstr(sum, "0."), "summary row for model s: %s", sum ? sum : "(none)");
    free(sum);
}

int main(void) {
    RUN(test_pipeline_small);
    return test_summary("pipeline");
}
