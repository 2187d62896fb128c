/* sandbox.h — run untrusted Python programs: bubblewrap (no network, read-only root, private tmpfs
 * /tmp, fresh pid/ipc/uts namespaces, --die-with-parent) plus setrlimit (CPU time, address space,
 * processes, file size, open files, no core dumps) and a wall-clock timeout.
 *
 * When run as root the sandbox drops to uid/gid 65534 (nobody) before starting bwrap, so the process
 * limit applies. If bubblewrap is missing or cannot create namespaces, pika_sandbox_check() fails with
 * a clear message and nothing runs (fail closed). opts.unsafe_no_sandbox = 1 runs python directly with
 * the rlimits only — for trusted code, and only when asked explicitly.
 */
#ifndef PIKA_SANDBOX_H
#define PIKA_SANDBOX_H

#include <stddef.h>

typedef enum {
    PIKA_VERDICT_PASS = 0,    /* exited 0 (and, for stdin/stdout tests, printed the expected output) */
    PIKA_VERDICT_FAIL = 1,    /* non-zero exit, signal, wrong output */
    PIKA_VERDICT_TIMEOUT = 2, /* wall-clock or CPU limit hit */
    PIKA_VERDICT_ERROR = 3,   /* the sandbox itself could not run the program */
} pika_verdict;

const char *pika_verdict_name(pika_verdict v); /* "pass" "fail" "timeout" "error" */

typedef struct {
    double timeout_s;      /* wall clock (default 10) */
    double cpu_s;          /* RLIMIT_CPU seconds (default timeout_s + 1) */
    size_t mem_bytes;      /* RLIMIT_AS (default 2 GiB) */
    int nproc;             /* RLIMIT_NPROC headroom over the user's current processes (default 64) */
    size_t fsize_bytes;    /* RLIMIT_FSIZE (default 16 MiB) */
    size_t max_output;     /* bytes of stdout / stderr kept (default 1 MiB each; the rest is drained) */
    int unsafe_no_sandbox; /* 1: no bubblewrap (rlimits only). Never the default. */
    const char *python;    /* interpreter (default /usr/bin/python3) */
    const char *bwrap;     /* bubblewrap binary (default /usr/bin/bwrap) */
} pika_sandbox_opts;

typedef struct {
    pika_verdict verdict;
    int exit_code;   /* -1 when killed by a signal */
    int term_signal; /* 0 when exited */
    double wall_s;
    char *out;       /* captured stdout (malloc'ed, NUL-terminated) */
    char *err;       /* captured stderr */
} pika_sandbox_result;

void pika_sandbox_opts_default(pika_sandbox_opts *o);

/* Check once that the sandbox works here (bwrap runs /bin/true in all namespaces). 0 = usable;
 * -1 + error explaining why and naming --unsafe-no-sandbox. Always 0 with unsafe_no_sandbox. */
int pika_sandbox_check(const pika_sandbox_opts *o);

/* Run `program` (Python source) with stdin_data (NULL = empty). Fills r (free with
 * pika_sandbox_result_free). Returns 0 when the program ran (any verdict) and -1 with the verdict set
 * to PIKA_VERDICT_ERROR when it could not be started. Thread-safe. */
int pika_sandbox_run_python(const pika_sandbox_opts *o, const char *program, const char *stdin_data,
                            pika_sandbox_result *r);
void pika_sandbox_result_free(pika_sandbox_result *r);

#endif
