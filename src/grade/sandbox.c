/* sandbox.c — owns running untrusted Python: fork, rlimits, privilege drop (root → nobody), exec of
 * bubblewrap with all namespaces unshared, stdout/stderr capture through pipes, a wall-clock timeout
 * that kills the whole process group, and the pass/fail/timeout/error verdict. See sandbox.h. */
#include "pika/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pika/util.h"

#define SANDBOX_UID 65534 /* nobody */
#define TMPFS_BYTES "134217728" /* private /tmp size: 128 MiB */

const char *pika_verdict_name(pika_verdict v) {
    switch (v) {
    case PIKA_VERDICT_PASS: return "pass";
    case PIKA_VERDICT_FAIL: return "fail";
    case PIKA_VERDICT_TIMEOUT: return "timeout";
    default: return "error";
    }
}

void pika_sandbox_opts_default(pika_sandbox_opts *o) {
    memset(o, 0, sizeof *o);
    o->timeout_s = 10;
    o->cpu_s = 0;
    o->mem_bytes = (size_t)2 << 30;
    o->nproc = 64;
    o->fsize_bytes = (size_t)16 << 20;
    o->max_output = (size_t)1 << 20;
    o->python = "/usr/bin/python3";
    o->bwrap = "/usr/bin/bwrap";
}

void pika_sandbox_result_free(pika_sandbox_result *r) {
    if (!r) return;
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Processes currently owned by uid (scan of /proc). */
static int count_user_procs(uid_t uid) {
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char path[300];
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s", e->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && st.st_uid == uid) n++;
    }
    closedir(d);
    return n;
}

typedef struct {
    char *buf;
    size_t n, cap, limit;
    int fd;
} capture;

static void cap_read(capture *c) {
    char tmp[8192];
    ssize_t k = read(c->fd, tmp, sizeof tmp);
    if (k <= 0) {
        if (k == 0 || (errno != EAGAIN && errno != EINTR)) { close(c->fd); c->fd = -1; }
        return;
    }
    size_t keep = c->n < c->limit ? c->limit - c->n : 0;
    if ((size_t)k < keep) keep = (size_t)k;
    if (keep) {
        if (c->n + keep + 1 > c->cap) {
            c->cap = (c->n + keep + 1) * 2;
            c->buf = pika_realloc(c->buf, c->cap);
        }
        memcpy(c->buf + c->n, tmp, keep);
        c->n += keep;
    }
}

static int memfd_with(const char *name, const char *data) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = data ? strlen(data) : 0, off = 0;
    while (off < n) {
        ssize_t k = write(fd, data + off, n - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return -1;
        }
        off += (size_t)k;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

typedef struct {
    int fds[5]; /* become 0 stdin, 1 stdout, 2 stderr, 3 program, 4 bwrap status */
    int is_root;
    rlim_t nproc;
    double cpu_s;
    size_t mem, fsize;
    const char **argv;
    char **envp;
} child_args;

/* Runs in the clone(CLONE_VM|CLONE_VFORK) child until execve: raw system calls only (glibc's
 * setuid would try to synchronise the parent's threads, which share this memory). */
__attribute__((no_sanitize("address", "undefined"))) static int child_main(void *arg) {
    child_args *c = arg;
    setpgid(0, 0);
    int tmp[5];
    for (int i = 0; i < 5; i++) tmp[i] = fcntl(c->fds[i], F_DUPFD_CLOEXEC, 10);
    for (int i = 0; i < 5; i++) if (tmp[i] < 0 || dup2(tmp[i], i) < 0) _exit(127);
    close_range(5, ~0U, 0);
    struct rlimit rl;
    rl.rlim_cur = (rlim_t)c->cpu_s; rl.rlim_max = (rlim_t)c->cpu_s + 1;
    setrlimit(RLIMIT_CPU, &rl);
    rl.rlim_cur = rl.rlim_max = (rlim_t)c->mem;
    setrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = rl.rlim_max = (rlim_t)c->fsize;
    setrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = rl.rlim_max = 0;
    setrlimit(RLIMIT_CORE, &rl);
    rl.rlim_cur = rl.rlim_max = 256;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (c->is_root) {
        if (syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresgid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) ||
            syscall(SYS_setresuid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID))
            _exit(126);
    }
    rl.rlim_cur = rl.rlim_max = c->nproc;
    setrlimit(RLIMIT_NPROC, &rl);
    execve(c->argv[0], (char *const *)c->argv, c->envp);
    _exit(127);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int pika_sandbox_run_python(const pika_sandbox_opts *o_in, const char *program, const char *stdin_data,
                            pika_sandbox_result *r) {
    pika_sandbox_opts o;
    if (o_in) o = *o_in;
    else pika_sandbox_opts_default(&o);
    pika_sandbox_opts def;
    pika_sandbox_opts_default(&def);
    if (o.timeout_s <= 0) o.timeout_s = def.timeout_s;
    if (o.cpu_s <= 0) o.cpu_s = o.timeout_s + 1;
    if (!o.mem_bytes) o.mem_bytes = def.mem_bytes;
    if (o.nproc <= 0) o.nproc = def.nproc;
    if (!o.fsize_bytes) o.fsize_bytes = def.fsize_bytes;
    if (!o.max_output) o.max_output = def.max_output;
    if (!o.python) o.python = def.python;
    if (!o.bwrap) o.bwrap = def.bwrap;
    memset(r, 0, sizeof *r);
    r->verdict = PIKA_VERDICT_ERROR;
    r->exit_code = -1;

    int is_root = geteuid() == 0;
    uid_t run_uid = is_root ? SANDBOX_UID : geteuid();
    rlim_t nproc_lim = (rlim_t)(count_user_procs(run_uid) + o.nproc);

    /* Everything the child needs is prepared before fork (the parent may be multi-threaded). */
    const char *argv[64];
    int a = 0;
    char cpu_str[32];
    snprintf(cpu_str, sizeof cpu_str, "%d", (int)o.cpu_s);
    if (o.unsafe_no_sandbox) {
        argv[a++] = o.python;
        argv[a++] = "-I";
        argv[a++] = "/dev/fd/3";
    } else {
        const char *bw[] = {o.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
                            "--dev", "/dev", "--proc", "/proc", "--size", TMPFS_BYTES, "--tmpfs", "/tmp",
                            "--file", "3", "/tmp/prog.py", "--chdir", "/tmp", "--json-status-fd", "4",
                            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
                            "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
                            "--hostname", "sandbox", "--", o.python, "-I", "/tmp/prog.py", NULL};
        for (int i = 0; bw[i]; i++) argv[a++] = bw[i];
    }
    argv[a] = NULL;
    char *envp[] = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", NULL};

    int prog_fd = memfd_with("prog.py", program);
    int in_fd = memfd_with("stdin", stdin_data);
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
    if (prog_fd < 0 || in_fd < 0 || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(st_p, O_CLOEXEC)) {
        int e = errno;
        if (prog_fd >= 0) close(prog_fd);
        if (in_fd >= 0) close(in_fd);
        for (int i = 0; i < 2; i++) {
            if (out_p[i] >= 0) close(out_p[i]);
            if (err_p[i] >= 0) close(err_p[i]);
            if (st_p[i] >= 0) close(st_p[i]);
        }
        r->err = pika_strdup("sandbox: cannot create pipes");
        r->out = pika_strdup("");
        return pika_set_error("sandbox: cannot create pipes/memfd: %s", strerror(e));
    }
    double t0 = now_s();
    child_args ca = {{in_fd, out_p[1], err_p[1], prog_fd, st_p[1]}, is_root, nproc_lim, o.cpu_s, o.mem_bytes,
                     o.fsize_bytes, argv, envp};
    /* clone(CLONE_VM|CLONE_VFORK) like posix_spawn: no page-table copy of a large parent. */
    size_t stack_size = 256 * 1024;
    char *stack = pika_malloc(stack_size);
    pid_t pid = clone(child_main, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &ca);
    free(stack);
    close(out_p[1]);
    close(err_p[1]);
    close(st_p[1]);
    close(prog_fd);
    close(in_fd);
    if (pid < 0) {
        int e = errno;
        close(out_p[0]); close(err_p[0]); close(st_p[0]);
        r->out = pika_strdup("");
        r->err = pika_strdup("sandbox: fork failed");
        return pika_set_error("sandbox: fork failed: %s", strerror(e));
    }
    capture cap[3] = {{NULL, 0, 0, o.max_output, out_p[0]}, {NULL, 0, 0, o.max_output, err_p[0]}, {NULL, 0, 0, 65536, st_p[0]}};
    for (int i = 0; i < 3; i++) fcntl(cap[i].fd, F_SETFL, O_NONBLOCK);
    int status = 0, exited = 0, timed_out = 0;
    double deadline = t0 + o.timeout_s;
    double drain_until = 0;
    for (;;) {
        if (!exited) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                exited = 1;
                kill(-pid, SIGKILL); /* stray children in the group (unsafe mode) */
                drain_until = now_s() + 1.0;
            } else if (now_s() >= deadline) {
                timed_out = 1;
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                exited = 1;
                drain_until = now_s() + 1.0;
            }
        }
        if (cap[0].fd < 0 && cap[1].fd < 0 && cap[2].fd < 0) {
            if (exited) break;
        }
        if (exited && now_s() >= drain_until) break;
        struct pollfd pf[3];
        int np = 0, idx[3];
        for (int i = 0; i < 3; i++)
            if (cap[i].fd >= 0) { pf[np].fd = cap[i].fd; pf[np].events = POLLIN; pf[np].revents = 0; idx[np++] = i; }
        if (np == 0) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
            continue;
        }
        int k = poll(pf, (nfds_t)np, 10);
        if (k > 0)
            for (int i = 0; i < np; i++)
                if (pf[i].revents) cap_read(&cap[idx[i]]);
    }
    for (int i = 0; i < 3; i++) if (cap[i].fd >= 0) close(cap[i].fd);
    r->wall_s = now_s() - t0;
    for (int i = 0; i < 3; i++) {
        if (!cap[i].buf) { cap[i].buf = pika_malloc(1); cap[i].n = 0; }
        cap[i].buf[cap[i].n] = 0;
    }
    r->out = cap[0].buf;
    r->err = cap[1].buf;
    int started = o.unsafe_no_sandbox || strstr(cap[2].buf, "child-pid") != NULL;
    free(cap[2].buf);
    if (WIFEXITED(status)) { r->exit_code = WEXITSTATUS(status); r->term_signal = 0; }
    else if (WIFSIGNALED(status)) { r->exit_code = -1; r->term_signal = WTERMSIG(status); }
    if (timed_out) { r->verdict = PIKA_VERDICT_TIMEOUT; return 0; }
    if (!started) {
        r->verdict = PIKA_VERDICT_ERROR;
        return pika_set_error("sandbox: bubblewrap could not start the program (exit %d): %.300s", r->exit_code, r->err);
    }
    /* bwrap reports a child killed by signal s as exit 128+s */
    int sig = r->term_signal ? r->term_signal : (r->exit_code > 128 && r->exit_code < 160 ? r->exit_code - 128 : 0);
    if (sig == SIGXCPU || (sig == SIGKILL && r->wall_s >= o.cpu_s - 0.05)) r->verdict = PIKA_VERDICT_TIMEOUT;
    else if (r->exit_code == 0) r->verdict = PIKA_VERDICT_PASS;
    else r->verdict = PIKA_VERDICT_FAIL;
    return 0;
}

int pika_sandbox_check(const pika_sandbox_opts *o_in) {
    pika_sandbox_opts o;
    if (o_in) o = *o_in;
    else pika_sandbox_opts_default(&o);
    const char *py = o.python ? o.python : "/usr/bin/python3";
    const char *bw = o.bwrap ? o.bwrap : "/usr/bin/bwrap";
    if (access(py, X_OK) != 0) return pika_set_error("sandbox: python interpreter %s not found", py);
    if (o.unsafe_no_sandbox) return 0;
    if (access(bw, X_OK) != 0)
        return pika_set_error("sandbox: bubblewrap (%s) not found; install the 'bubblewrap' package, or pass "
                              "--unsafe-no-sandbox to run trusted code without isolation", bw);
    o.timeout_s = 20;
    pika_sandbox_result r;
    int rc = pika_sandbox_run_python(&o, "import sys\nsys.exit(0)\n", NULL, &r);
    if (rc != 0 || r.verdict != PIKA_VERDICT_PASS) {
        char msg[400];
        size_t n = strcspn(r.err ? r.err : "", "\n");
        snprintf(msg, sizeof msg, "%.*s", (int)(n < 300 ? n : 300), r.err ? r.err : "");
        pika_sandbox_result_free(&r);
        return pika_set_error("sandbox: bubblewrap cannot create namespaces on this machine (%s); refusing to run "
                              "untrusted code. Pass --unsafe-no-sandbox to run trusted code without isolation",
                              msg[0] ? msg : "unknown failure");
    }
    pika_sandbox_result_free(&r);
    return 0;
}
