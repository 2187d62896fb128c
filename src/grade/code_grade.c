/* code_grade.c — owns code grading: fenced-program extraction, the HumanEval / MBPP / stdin-stdout
 * harnesses, and the pthread worker pool that runs them through the sandbox. See code_grade.h. */
#include "pika/code_grade.h"

#include <cJSON.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pika/util.h"


char *pika_code_extract(const char *text) {
    if (!text) return NULL;
    const char *last = NULL;
    for (const char *p = text; (p = strstr(p, "```python")); p += 9) last = p;
    if (last) {
        const char *b = last + 9;
        b += strcspn(b, "\n");
        if (*b == '\n') b++;
        const char *e = strstr(b, "```");
        size_t n = e ? (size_t)(e - b) : strlen(b);
        return pika_strndup(b, n);
    }
    const char *f = strstr(text, "```");
    if (!f) return NULL;
    const char *b = f + 3;
    /* a first line that is only a language tag (letters, digits, +, -) is dropped */
    size_t ln = strcspn(b, "\n");
    int tag = 1;
    for (size_t i = 0; i < ln; i++) if (!isalnum((unsigned char)b[i]) && b[i] != '+' && b[i] != '-' && b[i] != '\r') tag = 0;
    if (tag && b[ln] == '\n') b += ln + 1;
    const char *e = strstr(b, "```");
    if (!e) return NULL; /* unterminated fence: no program */
    return pika_strndup(b, (size_t)(e - b));
}

/* Does program define `def NAME(` at the start of a line? */
static int defines(const char *program, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = program; (p = strstr(p, "def ")); p += 4) {
        if (p != program && p[-1] != '\n') continue;
        const char *q = p + 4;
        while (*q == ' ') q++;
        if (!strncmp(q, name, nl) && (q[nl] == '(' || q[nl] == ' ')) return 1;
    }
    return 0;
}

char *pika_code_harness(const pika_task_kind kind, const pika_example *ex, const char *program) {
    pika_buf b = {0};
    pika_buf_puts(&b, "");
    if (kind == PIKA_TASK_HUMANEVAL) {
        if (!ex->test || !ex->entry_point) { free(b.s); pika_set_error("task %s: no HumanEval test/entry_point", ex->id); return NULL; }
        if (ex->prefix) {
            pika_buf_puts(&b, ex->prefix);
            if (defines(program, ex->entry_point)) pika_buf_puts(&b, "\n    pass\n\n");
        }
        pika_buf_puts(&b, program);
        pika_buf_puts(&b, "\n\n");
        pika_buf_puts(&b, ex->test);
        pika_buf_puts(&b, "\n\ncheck(");
        pika_buf_puts(&b, ex->entry_point);
        pika_buf_puts(&b, ")\n");
    } else if (kind == PIKA_TASK_MBPP) {
        if (!ex->test) { free(b.s); pika_set_error("task %s: no MBPP test_list", ex->id); return NULL; }
        pika_buf_puts(&b, program);
        pika_buf_puts(&b, "\n\n");
        if (ex->setup && *ex->setup) { pika_buf_puts(&b, ex->setup); pika_buf_puts(&b, "\n"); }
        pika_buf_puts(&b, ex->test);
        pika_buf_puts(&b, "\n");
    } else {
        pika_buf_puts(&b, program);
    }
    return b.s;
}

void pika_code_result_free(pika_code_result *r) {
    if (!r) return;
    free(r->detail);
    r->detail = NULL;
}

/* Last non-empty line of s (an exception message), malloc'ed. */
static char *last_line(const char *s) {
    if (!s || !*s) return NULL;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) n--;
    size_t b = n;
    while (b > 0 && s[b - 1] != '\n') b--;
    if (n - b > 300) n = b + 300;
    return n > b ? pika_strndup(s + b, n - b) : NULL;
}

/* Output comparison for STDIO tests: per-line trailing whitespace and trailing blank lines ignored. */
static char *canon_output(const char *s) {
    pika_buf b = {0};
    pika_buf_puts(&b, "");
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, "\n");
        size_t m = n;
        while (m > 0 && isspace((unsigned char)p[m - 1])) m--;
        pika_buf_add(&b, p, m);
        pika_buf_add(&b, "\n", 1);
        p += n;
        if (*p == '\n') p++;
    }
    while (b.n > 0 && b.s[b.n - 1] == '\n') b.s[--b.n] = 0;
    return b.s;
}

int pika_code_grade(const pika_sandbox_opts *o, pika_task_kind kind, const pika_example *ex, const char *program,
                    pika_code_result *r) {
    memset(r, 0, sizeof *r);
    r->verdict = PIKA_VERDICT_FAIL;
    r->total = 1;
    if (!program) { r->detail = pika_strdup("no program found in the reply"); return 0; }
    if (kind == PIKA_TASK_STDIO) {
        cJSON *t = ex->tests_json ? cJSON_Parse(ex->tests_json) : NULL;
        cJSON *in = cJSON_GetObjectItemCaseSensitive(t, "inputs"), *out = cJSON_GetObjectItemCaseSensitive(t, "outputs");
        if (!cJSON_IsArray(in) || !cJSON_IsArray(out) || cJSON_GetArraySize(in) != cJSON_GetArraySize(out)) {
            cJSON_Delete(t);
            r->verdict = PIKA_VERDICT_ERROR;
            r->detail = pika_strdup("tests must be {\"inputs\":[...],\"outputs\":[...]} of equal length");
            return pika_set_error("task %s: bad stdin/stdout tests", ex->id);
        }
        int n = cJSON_GetArraySize(in);
        r->total = n;
        r->verdict = PIKA_VERDICT_PASS;
        for (int i = 0; i < n; i++) {
            const char *si = cJSON_GetStringValue(cJSON_GetArrayItem(in, i));
            const char *so = cJSON_GetStringValue(cJSON_GetArrayItem(out, i));
            pika_sandbox_result sr;
            int rc = pika_sandbox_run_python(o, program, si ? si : "", &sr);
            r->wall_s += sr.wall_s;
            pika_verdict v = sr.verdict;
            if (rc == 0 && v == PIKA_VERDICT_PASS) {
                char *a = canon_output(sr.out), *b = canon_output(so ? so : "");
                if (strcmp(a, b)) {
                    v = PIKA_VERDICT_FAIL;
                    if (!r->detail) {
                        char msg[160];
                        snprintf(msg, sizeof msg, "case %d: wrong output", i + 1);
                        r->detail = pika_strdup(msg);
                    }
                }
                free(a);
                free(b);
            } else if (!r->detail) {
                r->detail = last_line(rc ? pika_last_error() : sr.err);
            }
            pika_sandbox_result_free(&sr);
            if (v == PIKA_VERDICT_PASS) r->passed++;
            else {
                r->verdict = v; /* first non-pass case decides; later cases are not run */
                break;
            }
        }
        cJSON_Delete(t);
        return 0;
    }
    char *src = pika_code_harness(kind, ex, program);
    if (!src) { r->verdict = PIKA_VERDICT_ERROR; r->detail = pika_strdup(pika_last_error()); return -1; }
    pika_sandbox_result sr;
    int rc = pika_sandbox_run_python(o, src, NULL, &sr);
    free(src);
    r->verdict = sr.verdict;
    r->wall_s = sr.wall_s;
    r->passed = sr.verdict == PIKA_VERDICT_PASS;
    if (rc) r->detail = pika_strdup(pika_last_error());
    else if (sr.verdict == PIKA_VERDICT_TIMEOUT) r->detail = pika_strdup("time limit exceeded");
    else if (sr.verdict != PIKA_VERDICT_PASS) r->detail = last_line(sr.err);
    pika_sandbox_result_free(&sr);
    return rc ? -1 : 0;
}

typedef struct {
    const pika_sandbox_opts *o;
    pika_code_job *jobs;
    int n;
    atomic_int next;
} pool;

static void *worker(void *arg) {
    pool *p = arg;
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) break;
        pika_code_job *j = &p->jobs[i];
        pika_code_grade(p->o, j->kind, j->ex, j->program, &j->res);
    }
    return NULL;
}

int pika_code_grade_batch(const pika_sandbox_opts *o, pika_code_job *jobs, int n_jobs, int n_workers) {
    if (n_workers <= 0) n_workers = pika_n_cores();
    if (n_workers > n_jobs) n_workers = n_jobs > 0 ? n_jobs : 1;
    if (n_workers > 256) n_workers = 256;
    pool p = {o, jobs, n_jobs, 0};
    pthread_t th[256];
    int started = 0;
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&th[i], NULL, worker, &p) != 0) break;
        started++;
    }
    if (started == 0) worker(&p);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    return 0;
}
