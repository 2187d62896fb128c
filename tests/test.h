/* test.h — the tiny test harness every tests/test_*.c uses (header-only).
 *
 *   static void test_something(void) { CHECK(x == 1, "x was %d", x); }
 *   int main(void) { RUN(test_something); return test_summary("gguf"); }
 *
 * A test passes when none of its CHECKs failed. SKIP_TEST(msg) marks the running test
 * skipped (loudly) and returns; under CI (environment CI=true or CI=1) a skip counts as a
 * failure, so a CI run with missing fixtures or no sandbox cannot pass. test_summary() prints
 * "RESULT <name> passed=P failed=F skipped=S", which tests/run.sh adds up into the suite's
 * closing line "N passed, N failed".
 *
 * PIKA_TEST_ONLY=substring runs only the tests whose name contains it.
 *
 * Temporary directories made by test_tmpdir() are removed (recursively) by test_summary() when
 * every test passed; when one failed they are kept and their paths are printed on stderr.
 */
#ifndef PIKA_TEST_H
#define PIKA_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static int t_passed, t_failed, t_skipped;
static int t_cur_failed, t_cur_skipped;
static const char *t_cur_name;

#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            t_cur_failed++;                                                            \
            fprintf(stderr, "FAIL %s (%s:%d): %s: ", t_cur_name, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

/* CHECK that also returns from the test function when it fails. */
#define REQUIRE(cond, ...)                                                             \
    do {                                                                               \
        int t_before_ = t_cur_failed;                                                  \
        CHECK(cond, __VA_ARGS__);                                                      \
        if (t_cur_failed != t_before_) return;                                         \
    } while (0)

/* CI=true (or CI=1) in the environment: skips are failures. */
static inline int test_in_ci(void) {
    const char *c = getenv("CI");
    return c && (strcmp(c, "true") == 0 || strcmp(c, "1") == 0);
}

#define SKIP_TEST(...)                                                                 \
    do {                                                                               \
        if (test_in_ci()) {                                                            \
            t_cur_failed++;                                                            \
            fprintf(stderr, "FAIL %s (skip is a failure under CI=%s): ", t_cur_name, getenv("CI")); \
        } else {                                                                       \
            t_cur_skipped = 1;                                                         \
            fprintf(stderr, "SKIP %s: ", t_cur_name);                                  \
        }                                                                              \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fputc('\n', stderr);                                                           \
        return;                                                                        \
    } while (0)

/* PIKA_TEST_ONLY=substring runs only the tests whose function name contains it. */
static inline int t_selected(const char *name) {
    const char *o = getenv("PIKA_TEST_ONLY");
    return !o || !*o || strstr(name, o) != NULL;
}

#define RUN(fn)                                                                        \
    do {                                                                               \
        if (!t_selected(#fn)) break;                                                   \
        t_cur_name = #fn;                                                              \
        t_cur_failed = 0;                                                              \
        t_cur_skipped = 0;                                                             \
        fn();                                                                          \
        if (t_cur_failed) t_failed++;                                                  \
        else if (t_cur_skipped) t_skipped++;                                           \
        else t_passed++;                                                               \
    } while (0)

/* Every directory test_tmpdir() made, for test_summary() to remove or report. */
#define T_MAX_TMPDIRS 256
static char t_tmpdirs[T_MAX_TMPDIRS][256];
static int t_ntmpdirs;

static inline int t_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

/* Remove the temp dirs when nothing failed; otherwise keep them and say where they are.
 * Returns the number of directories that could not be removed. */
static inline int test_cleanup_tmpdirs(int keep) {
    int bad = 0;
    for (int i = 0; i < t_ntmpdirs; i++) {
        if (keep) {
            fprintf(stderr, "kept temp dir %s (a test failed)\n", t_tmpdirs[i]);
        } else if (access(t_tmpdirs[i], F_OK) != 0) {
            continue; /* the test removed it itself */
        } else if (nftw(t_tmpdirs[i], t_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
            fprintf(stderr, "could not remove temp dir %s\n", t_tmpdirs[i]);
            bad++;
        }
    }
    t_ntmpdirs = 0;
    return bad;
}

static inline int test_summary(const char *name) {
    test_cleanup_tmpdirs(t_failed > 0);
    printf("RESULT %s passed=%d failed=%d skipped=%d\n", name, t_passed, t_failed, t_skipped);
    return t_failed ? 1 : 0;
}

/* Where ../shared lives: $PIKA_SHARED, else "../shared" (tests run from the repo root). */
static inline const char *test_shared_dir(void) {
    const char *s = getenv("PIKA_SHARED");
    return s && *s ? s : "../shared";
}

/* Path under the shared dir in a static rotating buffer; NULL if it does not exist. */
static inline const char *test_shared_path(const char *rel) {
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 1024, "%s/%s", test_shared_dir(), rel);
    struct stat st;
    return stat(b, &st) == 0 ? b : NULL;
}

/* Skip the current test loudly when a shared fixture is absent. */
#define REQUIRE_SHARED(var, rel)                                                       \
    const char *var = test_shared_path(rel);                                           \
    if (!var) SKIP_TEST("*** ../shared fixture %s is ABSENT: test skipped ***", rel)

/* Path to the built CLI (for tests that run it). */
static inline const char *test_pika_bin(void) {
    static char b[512];
    const char *d = getenv("PIKA_BUILD");
    snprintf(b, sizeof b, "%s/pika", d && *d ? d : "build");
    return b;
}

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), removed by test_summary()
 * unless a test failed. The returned path stays valid until test_summary(). */
static inline const char *test_tmpdir(void) {
    if (t_ntmpdirs == T_MAX_TMPDIRS) { fprintf(stderr, "test_tmpdir: more than %d temp dirs\n", T_MAX_TMPDIRS); exit(2); }
    char *p = t_tmpdirs[t_ntmpdirs];
    const char *t = getenv("TMPDIR");
    snprintf(p, sizeof t_tmpdirs[0], "%s/pika-test-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(p)) { perror("mkdtemp"); exit(2); }
    t_ntmpdirs++;
    return p;
}

/* Run a shell command, capture stdout (malloc'ed, NUL-terminated) and the exit status. */
static inline char *test_run(const char *cmd, int *status) {
    FILE *f = popen(cmd, "r");
    if (!f) { *status = -1; return strdup(""); }
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t r;
    while ((r = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (len + 1 >= cap) { cap *= 2; out = realloc(out, cap); }
    }
    out[len] = 0;
    int st = pclose(f);
    *status = (st >= 0 && (st & 0x7f) == 0) ? ((st >> 8) & 0xff) : -1;
    return out;
}

#endif
