/* test_code_grade.c — program extraction, harnesses, the bubblewrap sandbox (containment of an
 * infinite loop, a fork bomb, a 10 GB allocation, writes outside /tmp, network connections), fail-closed
 * behaviour, stdin/stdout tests, and every HumanEval canonical solution and MBPP reference solution
 * (passing as given, failing with one line broken), run on 2 parallel workers. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pika/code_grade.h"
#include "pika/dataset.h"
#include "pika/sandbox.h"
#include "pika/util.h"
#include "test.h"

static int sandbox_ok = -1;

static int have_sandbox(void) {
    if (sandbox_ok < 0) {
        sandbox_ok = pika_sandbox_check(NULL) == 0;
        if (!sandbox_ok) fprintf(stderr, "sandbox unavailable: %s\n", pika_last_error());
    }
    return sandbox_ok;
}

#define NEED_SANDBOX() \
    if (!have_sandbox()) SKIP_TEST("*** bubblewrap cannot create namespaces here: %s ***", pika_last_error())

static pika_sandbox_result run(const char *prog, double timeout) {
    pika_sandbox_opts o;
    pika_sandbox_opts_default(&o);
    o.timeout_s = timeout;
    pika_sandbox_result r;
    pika_sandbox_run_python(&o, prog, NULL, &r);
    return r;
}

static void test_extract(void) {
    char *p = pika_code_extract("Here:\n```python\nprint(1)\n```\nand better:\n```python\nprint(2)\n```\n");
    CHECK(p && !strcmp(p, "print(2)\n"), "last python block: %s", p);
    free(p);
    p = pika_code_extract("```\ndef f(): return 1\n```\n```\nx\n```");
    CHECK(p && !strcmp(p, "def f(): return 1\n"), "first plain block: %s", p);
    free(p);
    p = pika_code_extract("```py\nprint(3)\n```");
    CHECK(p && !strcmp(p, "print(3)\n"), "language tag dropped: %s", p);
    free(p);
    p = pika_code_extract("def f():\n    return 1\n");
    CHECK(p == NULL, "no fence → no program");
    p = pika_code_extract("```python\nprint(4)\n");
    CHECK(p && !strcmp(p, "print(4)\n"), "unterminated python fence runs to the end");
    free(p);
    p = pika_code_extract("```\nnever closed");
    CHECK(p == NULL, "unterminated plain fence → none");
    pika_code_result r;
    pika_example ex = {.id = "x"};
    CHECK(pika_code_grade(NULL, PIKA_TASK_MBPP, &ex, NULL, &r) == 0 && r.verdict == PIKA_VERDICT_FAIL, "no program fails");
    pika_code_result_free(&r);
}

static void test_harness(void) {
    pika_example he = {.id = "HumanEval/x", .prefix = "def add(a, b):\n    \"\"\"add\"\"\"\n", .test = "def check(c):\n    assert c(1, 2) == 3\n",
                       .entry_point = "add"};
    char *h = pika_code_harness(PIKA_TASK_HUMANEVAL, &he, "    return a + b\n");
    CHECK(h && strstr(h, "    return a + b") && strstr(h, "check(add)"), "humaneval harness");
    free(h);
    h = pika_code_harness(PIKA_TASK_HUMANEVAL, &he, "def add(a, b):\n    return a + b\n");
    CHECK(h && strstr(h, "    pass\n"), "full-function completion gets a stub body first");
    free(h);
    pika_example mb = {.id = "1", .setup = "import math", .test = "assert f(2) == 4\nassert f(3) == 9"};
    h = pika_code_harness(PIKA_TASK_MBPP, &mb, "def f(x): return x*x");
    CHECK(h && strstr(h, "return x*x\n\nimport math\n") && strstr(h, "assert f(3) == 9"), "mbpp harness: %s", h);
    free(h);
    pika_example bad = {.id = "2"};
    CHECK(pika_code_harness(PIKA_TASK_HUMANEVAL, &bad, "x") == NULL, "missing test is an error");
    NEED_SANDBOX();
    pika_code_result r;
    CHECK(pika_code_grade(NULL, PIKA_TASK_HUMANEVAL, &he, "def add(a, b):\n    return a + b\n", &r) == 0 &&
              r.verdict == PIKA_VERDICT_PASS, "full function passes: %s", r.detail ? r.detail : "");
    pika_code_result_free(&r);
    CHECK(pika_code_grade(NULL, PIKA_TASK_HUMANEVAL, &he, "    return a - b\n", &r) == 0 && r.verdict == PIKA_VERDICT_FAIL &&
              r.detail && strstr(r.detail, "AssertionError"), "wrong body fails: %s", r.detail ? r.detail : "");
    pika_code_result_free(&r);
}

static void test_verdicts(void) {
    NEED_SANDBOX();
    pika_sandbox_result r = run("print('hi')\n", 5);
    CHECK(r.verdict == PIKA_VERDICT_PASS && !strcmp(r.out, "hi\n"), "pass: %s %s", pika_verdict_name(r.verdict), r.out);
    pika_sandbox_result_free(&r);
    r = run("import sys\nsys.exit(3)\n", 5);
    CHECK(r.verdict == PIKA_VERDICT_FAIL && r.exit_code == 3, "fail exit 3: %d", r.exit_code);
    pika_sandbox_result_free(&r);
    r = run("def f(:\n", 5);
    CHECK(r.verdict == PIKA_VERDICT_FAIL && strstr(r.err, "SyntaxError"), "syntax error fails");
    pika_sandbox_result_free(&r);
    r = run("while True:\n    pass\n", 1.5);
    CHECK(r.verdict == PIKA_VERDICT_TIMEOUT && r.wall_s < 5, "infinite loop times out: %s %.2f", pika_verdict_name(r.verdict), r.wall_s);
    pika_sandbox_result_free(&r);
    r = run("import time\ntime.sleep(60)\n", 1.0);
    CHECK(r.verdict == PIKA_VERDICT_TIMEOUT && r.wall_s < 5, "sleep times out");
    pika_sandbox_result_free(&r);
    /* output beyond the cap is drained, not kept, and does not hang */
    r = run("import sys\nfor i in range(200000): sys.stdout.write('x' * 100)\n", 20);
    CHECK(r.verdict == PIKA_VERDICT_PASS && strlen(r.out) == (size_t)1 << 20, "big output capped: %zu", strlen(r.out));
    pika_sandbox_result_free(&r);
}

static void test_containment(void) {
    NEED_SANDBOX();
    /* fork bomb: the process limit stops it; the host can still fork afterwards */
    double t0 = pika_now();
    pika_sandbox_result r = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", 3);
    CHECK(r.verdict != PIKA_VERDICT_PASS && r.verdict != PIKA_VERDICT_ERROR, "fork bomb contained: %s", pika_verdict_name(r.verdict));
    CHECK(pika_now() - t0 < 10, "fork bomb ended in time");
    pika_sandbox_result_free(&r);
    r = run("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time; time.sleep(5); os._exit(0)\n        n += 1\n"
            "except OSError:\n    print(n)\n", 10);
    CHECK(r.verdict == PIKA_VERDICT_PASS && atoi(r.out) > 0 && atoi(r.out) < 1000, "process limit hit after %s forks", r.out);
    pika_sandbox_result_free(&r);
    CHECK(system("true") == 0, "host can still fork");
    /* 10 GB allocation */
    r = run("x = bytearray(10 * 1024 ** 3)\nprint(len(x))\n", 10);
    CHECK(r.verdict == PIKA_VERDICT_FAIL && strstr(r.err, "MemoryError"), "10 GB allocation refused: %s", pika_verdict_name(r.verdict));
    pika_sandbox_result_free(&r);
    /* write outside /tmp: the outcome that matters is that nothing lands on the host. The
     * checkout may itself live under /tmp (private inside the sandbox, so the write fails with
     * FileNotFoundError rather than a read-only error); either way the write must fail. */
    char cwd[512], path[700], prog[2000];
    REQUIRE(getcwd(cwd, sizeof cwd), "getcwd");
    snprintf(path, sizeof path, "%s/pika_sandbox_escape_%d", cwd, (int)getpid());
    snprintf(prog, sizeof prog, "open(%c%s%c, 'w').write('escaped')\n", '"', path, '"');
    r = run(prog, 5);
    CHECK(r.verdict == PIKA_VERDICT_FAIL, "write to the checkout %s fails: verdict %s, stderr: %s", cwd,
          pika_verdict_name(r.verdict), r.err);
    CHECK(access(path, F_OK) != 0, "no file written on the host at %s (sandbox stderr: %s)", path, r.err);
    pika_sandbox_result_free(&r);
    unlink(path);
    /* a host-writable directory outside /tmp that exists inside the sandbox: the read-only root */
    struct stat vst;
    if (stat("/var/tmp", &vst) == 0 && access("/var/tmp", W_OK) == 0) {
        snprintf(path, sizeof path, "/var/tmp/pika_sandbox_escape_%d", (int)getpid());
        snprintf(prog, sizeof prog, "open(%c%s%c, 'w').write('escaped')\n", '"', path, '"');
        r = run(prog, 5);
        CHECK(r.verdict == PIKA_VERDICT_FAIL && strstr(r.err, "Read-only"), "write to %s fails read-only: verdict %s, stderr: %s",
              path, pika_verdict_name(r.verdict), r.err);
        CHECK(access(path, F_OK) != 0, "no file written on the host at %s", path);
        pika_sandbox_result_free(&r);
        unlink(path);
    }
    r = run("open('/etc/pika_escape', 'w').write('x')\n", 5);
    CHECK(r.verdict == PIKA_VERDICT_FAIL && access("/etc/pika_escape", F_OK) != 0, "write to /etc fails");
    pika_sandbox_result_free(&r);
    /* /tmp is private: writable inside, invisible outside */
    snprintf(path, sizeof path, "/tmp/pika_sandbox_private_%d", (int)getpid());
    snprintf(prog, sizeof prog, "open('%s', 'w').write('x')\nprint(open('%s').read())\n", path, path);
    r = run(prog, 5);
    CHECK(r.verdict == PIKA_VERDICT_PASS && access(path, F_OK) != 0, "private /tmp: %s", pika_verdict_name(r.verdict));
    pika_sandbox_result_free(&r);
    /* huge file: RLIMIT_FSIZE */
    r = run("f = open('/tmp/big', 'wb')\nf.write(b'x' * (64 << 20))\nf.close()\n", 10);
    CHECK(r.verdict == PIKA_VERDICT_FAIL, "64 MiB file refused: %s", pika_verdict_name(r.verdict));
    pika_sandbox_result_free(&r);
    /* network: a listener on the host's loopback is unreachable from the sandbox */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(ls >= 0, "socket");
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(ls, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(ls, 4) == 0, "bind");
    socklen_t sl = sizeof sa;
    getsockname(ls, (struct sockaddr *)&sa, &sl);
    snprintf(prog, sizeof prog,
             "import socket\ns = socket.create_connection(('127.0.0.1', %d), timeout=2)\ns.sendall(b'escaped')\nprint('connected')\n",
             ntohs(sa.sin_port));
    r = run(prog, 5);
    CHECK(r.verdict == PIKA_VERDICT_FAIL && !strstr(r.out, "connected"), "loopback connection refused: %s", r.err);
    fcntl(ls, F_SETFL, O_NONBLOCK);
    int c = accept(ls, NULL, NULL);
    CHECK(c < 0, "listener saw no connection");
    if (c >= 0) close(c);
    close(ls);
    pika_sandbox_result_free(&r);
    r = run("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)\n", 5);
    CHECK(r.verdict == PIKA_VERDICT_FAIL, "external network unreachable");
    pika_sandbox_result_free(&r);
}

static void test_fail_closed(void) {
    pika_sandbox_opts o;
    pika_sandbox_opts_default(&o);
    o.bwrap = "/nonexistent/bwrap";
    CHECK(pika_sandbox_check(&o) == -1 && strstr(pika_last_error(), "--unsafe-no-sandbox"), "missing bwrap: %s", pika_last_error());
    o.bwrap = "/bin/false"; /* stands in for a bwrap that cannot create namespaces */
    CHECK(pika_sandbox_check(&o) == -1 && strstr(pika_last_error(), "cannot create namespaces"), "bwrap failing: %s", pika_last_error());
    pika_sandbox_result r;
    CHECK(pika_sandbox_run_python(&o, "print(1)\n", NULL, &r) == -1 && r.verdict == PIKA_VERDICT_ERROR, "run reports error");
    pika_sandbox_result_free(&r);
    /* the CLI refuses too, with a clear message */
    char cmd[1024];
    const char *dir = test_tmpdir();
    snprintf(cmd, sizeof cmd, "%s/p.py", dir);
    FILE *f = fopen(cmd, "w");
    fputs("print(1)\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "PIKA_BWRAP=/bin/false %s grade code --program %s/p.py 2>&1", test_pika_bin(), dir);
    int st;
    char *out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "unsafe-no-sandbox"), "CLI fails closed (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "PIKA_BWRAP=/bin/false %s grade code --program %s/p.py --unsafe-no-sandbox 2>&1", test_pika_bin(), dir);
    out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "pass") && strstr(out, "WITHOUT"), "explicit unsafe mode runs and warns (%d): %s", st, out);
    free(out);
    o.unsafe_no_sandbox = 1;
    CHECK(pika_sandbox_check(&o) == 0, "unsafe mode needs no bwrap");
    CHECK(pika_sandbox_run_python(&o, "print(6*7)\n", NULL, &r) == 0 && r.verdict == PIKA_VERDICT_PASS && !strcmp(r.out, "42\n"), "unsafe runs");
    pika_sandbox_result_free(&r);
}

static void test_stdio(void) {
    NEED_SANDBOX();
    pika_example ex = {.id = "s1", .tests_json = "{\"inputs\":[\"1 2\\n\",\"5 7\\n\"],\"outputs\":[\"3\\n\",\"12\"]}"};
    pika_code_result r;
    pika_code_grade(NULL, PIKA_TASK_STDIO, &ex, "a, b = map(int, input().split())\nprint(a + b, ' ')\n", &r);
    CHECK(r.verdict == PIKA_VERDICT_PASS && r.passed == 2 && r.total == 2, "stdio pass: %s %s", pika_verdict_name(r.verdict), r.detail);
    pika_code_result_free(&r);
    pika_code_grade(NULL, PIKA_TASK_STDIO, &ex, "a, b = map(int, input().split())\nprint(a * b)\n", &r);
    CHECK(r.verdict == PIKA_VERDICT_FAIL && r.passed == 0 && r.detail && strstr(r.detail, "case 1"), "stdio wrong output");
    pika_code_result_free(&r);
    pika_code_grade(NULL, PIKA_TASK_STDIO, &ex, "a, b = map(int, input().split())\nprint(3 if a == 1 else 0)\n", &r);
    CHECK(r.verdict == PIKA_VERDICT_FAIL && r.passed == 1, "stdio second case wrong");
    pika_code_result_free(&r);
    pika_example bad = {.id = "s2", .tests_json = "{\"inputs\":[\"1\"]}"};
    CHECK(pika_code_grade(NULL, PIKA_TASK_STDIO, &bad, "print(1)", &r) == -1 && r.verdict == PIKA_VERDICT_ERROR, "bad tests");
    pika_code_result_free(&r);
}

/* Replace the first statement of the first function body (else the first non-empty line) by a
 * line that raises, keeping its indentation. */
static char *break_line(const char *code) {
    size_t n = strlen(code);
    char *out = pika_malloc(n + 64);
    const char *target = NULL, *first = NULL;
    int after_def = 0;
    for (const char *p = code; *p;) {
        const char *e = p + strcspn(p, "\n");
        const char *q = p;
        while (q < e && (*q == ' ' || *q == '\t')) q++;
        int empty = q == e || *q == '\r' || *q == '#';
        if (!empty && !first) first = p;
        if (!empty && after_def && q > p) { target = p; break; }
        if (!strncmp(p, "def ", 4)) after_def = 1;
        p = *e ? e + 1 : e;
    }
    if (!target) target = first;
    const char *e = target + strcspn(target, "\r\n");
    const char *q = target;
    while (q < e && (*q == ' ' || *q == '\t')) q++;
    size_t pre = (size_t)(q - code);
    memcpy(out, code, pre);
    strcpy(out + pre, "raise SystemExit(1)  # broken line");
    strcat(out, e);
    return out;
}

static void run_all(const char *preset, int expect_n, int limit) {
    pika_dataset *d = pika_dataset_load_preset(preset, NULL);
    REQUIRE(d && d->n == expect_n, "%s: %s", preset, d ? "count" : pika_last_error());
    int n = limit > 0 && limit < d->n ? limit : d->n;
    pika_code_job *jobs = pika_calloc((size_t)n * 2, sizeof *jobs);
    char **broken = pika_calloc((size_t)n, sizeof *broken);
    for (int i = 0; i < n; i++) {
        broken[i] = break_line(d->rows[i].gold);
        jobs[i] = (pika_code_job){d->kind, &d->rows[i], d->rows[i].gold, {0}};
        jobs[n + i] = (pika_code_job){d->kind, &d->rows[i], broken[i], {0}};
    }
    pika_sandbox_opts o;
    pika_sandbox_opts_default(&o);
    o.timeout_s = 20;
    double t0 = pika_now();
    pika_code_grade_batch(&o, jobs, 2 * n, 2);
    double dt = pika_now() - t0;
    int pass = 0, broken_fail = 0;
    for (int i = 0; i < n; i++) {
        if (jobs[i].res.verdict == PIKA_VERDICT_PASS) pass++;
        else fprintf(stderr, "  %s %s: reference %s: %s\n", preset, d->rows[i].id, pika_verdict_name(jobs[i].res.verdict),
                     jobs[i].res.detail ? jobs[i].res.detail : "");
        if (jobs[n + i].res.verdict == PIKA_VERDICT_FAIL) broken_fail++;
        else fprintf(stderr, "  %s %s: broken solution %s\n", preset, d->rows[i].id, pika_verdict_name(jobs[n + i].res.verdict));
    }
    fprintf(stderr, "%s: %d programs in %.1f s on 2 workers (%.1f/s)\n", preset, 2 * n, dt, 2 * n / dt);
    CHECK(pass == n, "%s: %d of %d reference solutions pass", preset, pass, n);
    CHECK(broken_fail == n, "%s: %d of %d broken solutions fail", preset, broken_fail, n);
    for (int i = 0; i < 2 * n; i++) pika_code_result_free(&jobs[i].res);
    for (int i = 0; i < n; i++) free(broken[i]);
    free(broken);
    free(jobs);
    pika_dataset_free(d);
}

static void test_humaneval_all(void) {
    REQUIRE_SHARED(p, "data/humaneval/HumanEval.jsonl.gz");
    (void)p;
    NEED_SANDBOX();
    run_all("humaneval", 164, 0);
}

static void test_mbpp_all(void) {
    REQUIRE_SHARED(p, "data/mbpp/mbpp.jsonl");
    (void)p;
    NEED_SANDBOX();
    int limit = 0;
#if defined(__SANITIZE_ADDRESS__)
    /* under ASan only, PIKA_TEST_MBPP_LIMIT may shorten the run; `make test` runs all 974 */
    const char *e = getenv("PIKA_TEST_MBPP_LIMIT");
    if (e && *e) limit = atoi(e);
#endif
    run_all("mbpp", 974, limit);
}

static void test_cli_code(void) {
    REQUIRE_SHARED(p, "data/mbpp/mbpp.jsonl");
    (void)p;
    NEED_SANDBOX();
    const char *dir = test_tmpdir();
    char prog[512], cmd[1500];
    snprintf(prog, sizeof prog, "%s/he0.py", dir);
    FILE *f = fopen(prog, "w");
    fputs("def has_close_elements(numbers, threshold):\n"
          "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n", f);
    fclose(f);
    int st;
    snprintf(cmd, sizeof cmd, "%s grade code --data humaneval --id HumanEval/0 --program %s", test_pika_bin(), prog);
    char *out = test_run(cmd, &st);
    CHECK(st == 0 && !strncmp(out, "pass\t", 5), "task pass (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s grade code --data humaneval --id HumanEval/1 --program %s", test_pika_bin(), prog);
    out = test_run(cmd, &st);
    CHECK(st == 1 && !strncmp(out, "fail\t", 5), "wrong task fails (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s grade code --data mbpp:fewshot --references --workers 2 2>/dev/null", test_pika_bin());
    out = test_run(cmd, &st);
    int lines = 0;
    for (char *q = out; *q; q++) lines += *q == '\n';
    CHECK(st == 0 && lines == 10 && strstr(out, "\"verdict\":\"pass\""), "references (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s grade code --data humaneval --id HumanEval/999 --program %s 2>&1", test_pika_bin(), prog);
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "HumanEval/999"), "unknown id (%d): %s", st, out);
    free(out);
}

int main(void) {
    RUN(test_extract);
    RUN(test_harness);
    RUN(test_verdicts);
    RUN(test_containment);
    RUN(test_fail_closed);
    RUN(test_stdio);
    RUN(test_cli_code);
    RUN(test_humaneval_all);
    RUN(test_mbpp_all);
    return test_summary("code_grade");
}
