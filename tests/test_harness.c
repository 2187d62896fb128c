/* test_harness.c — tests of tests/test.h itself: temp dirs made by test_tmpdir() are removed at
 * the end of a passing run and kept (and named) after a failing one; SKIP_TEST is a skip normally
 * and a failure under CI=true. Each case runs a child copy of this binary (argv[1] selects the
 * case), so the child's own summary does the work being tested. */
#include <sys/wait.h>

#include "test.h"

static const char *self;

/* child modes -------------------------------------------------------------------------------- */

static void t_make_dirs(void) {
    for (int i = 0; i < 12; i++) {
        const char *d = test_tmpdir();
        char f[512];
        snprintf(f, sizeof f, "%s/sub", d);
        mkdir(f, 0700);
        snprintf(f, sizeof f, "%s/sub/file.txt", d);
        FILE *fp = fopen(f, "w");
        if (fp) { fputs("x", fp); fclose(fp); }
        printf("DIR %s\n", d);
    }
}
static void t_fail(void) { CHECK(0, "deliberate failure"); }
static void t_skip(void) { SKIP_TEST("deliberate skip"); }

static int child(const char *mode) {
    if (strcmp(mode, "pass") == 0) { RUN(t_make_dirs); }
    else if (strcmp(mode, "fail") == 0) { RUN(t_make_dirs); RUN(t_fail); }
    else if (strcmp(mode, "skip") == 0) { RUN(t_skip); }
    return test_summary("harness-child");
}

/* parent tests ------------------------------------------------------------------------------- */

/* Run the child in mode with extra environment; returns its stdout+stderr, *status its exit. */
static char *run_child(const char *env, const char *mode, const char *tmp, int *status) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "env %s TMPDIR='%s' '%s' %s 2>&1", env, tmp, self, mode);
    return test_run(cmd, status);
}

static int count_dirs(const char *out, int *present) {
    int n = 0;
    *present = 0;
    for (const char *p = strstr(out, "DIR "); p; p = strstr(p + 1, "DIR ")) {
        char d[300];
        if (sscanf(p + 4, "%299s", d) != 1) continue;
        n++;
        struct stat st;
        if (stat(d, &st) == 0) (*present)++;
    }
    return n;
}

static void test_tmpdirs_removed_on_pass(void) {
    const char *tmp = test_tmpdir();
    int st;
    char *out = run_child("CI=", "pass", tmp, &st);
    int present, n = count_dirs(out, &present);
    CHECK(st == 0, "child exit %d: %s", st, out);
    CHECK(n == 12, "child made %d dirs", n);
    CHECK(present == 0, "%d of %d temp dirs left behind after a passing run", present, n);
    free(out);
}

static void test_tmpdirs_kept_on_fail(void) {
    const char *tmp = test_tmpdir();
    int st;
    char *out = run_child("CI=", "fail", tmp, &st);
    int present, n = count_dirs(out, &present);
    CHECK(st == 1, "child exit %d", st);
    CHECK(n == 12 && present == 12, "%d of %d temp dirs kept after a failing run", present, n);
    CHECK(strstr(out, "kept temp dir ") != NULL, "the kept dirs are named: %s", out);
    free(out);
}

static void test_skip_fails_under_ci(void) {
    const char *tmp = test_tmpdir();
    int st;
    char *out = run_child("CI=", "skip", tmp, &st);
    CHECK(st == 0 && strstr(out, "failed=0 skipped=1"), "without CI a skip is a skip: %d %s", st, out);
    free(out);
    out = run_child("CI=true", "skip", tmp, &st);
    CHECK(st == 1 && strstr(out, "failed=1 skipped=0"), "CI=true: a skip is a failure: %d %s", st, out);
    free(out);
}

int main(int argc, char **argv) {
    self = argv[0];
    if (argc > 1) return child(argv[1]);
    RUN(test_tmpdirs_removed_on_pass);
    RUN(test_tmpdirs_kept_on_fail);
    RUN(test_skip_fails_under_ci);
    return test_summary("harness");
}
