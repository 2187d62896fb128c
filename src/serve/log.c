/* log.c — the decision log of `pika serve`: one SQLite row per request (WAL mode, one connection
 * behind a mutex), and the summary `pika route log` prints. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "pika/rollout.h"
#include "pika/serve.h"
#include "pika/util.h"

struct pika_serve_log {
    sqlite3 *db;
    sqlite3_stmt *ins;
    pthread_mutex_t mu;
};

static const char *SCHEMA =
    "CREATE TABLE IF NOT EXISTS requests ("
    " id INTEGER PRIMARY KEY, ts REAL NOT NULL, request_id TEXT, endpoint TEXT, model TEXT, policy TEXT,"
    " lambda REAL, prompt_hash TEXT, prompt TEXT, p TEXT, member TEXT, attempts INTEGER, fallbacks INTEGER,"
    " status INTEGER, error TEXT, stream INTEGER, tokens_in INTEGER, tokens_out INTEGER, cost REAL,"
    " route_ms REAL, upstream_ms REAL);"
    "CREATE INDEX IF NOT EXISTS requests_ts ON requests(ts);";

pika_serve_log *pika_serve_log_open(const char *path) {
    pika_serve_log *l = pika_calloc(1, sizeof *l);
    if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        pika_set_error("log %s: %s", path, l->db ? sqlite3_errmsg(l->db) : "cannot open");
        goto fail;
    }
    char *err = NULL;
    if (sqlite3_exec(l->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(l->db, SCHEMA, NULL, NULL, &err) != SQLITE_OK) {
        pika_set_error("log %s: %s", path, err ? err : "?");
        sqlite3_free(err);
        goto fail;
    }
    sqlite3_busy_timeout(l->db, 5000);
    const char *q = "INSERT INTO requests (ts, request_id, endpoint, model, policy, lambda, prompt_hash, prompt, p, member,"
                    " attempts, fallbacks, status, error, stream, tokens_in, tokens_out, cost, route_ms, upstream_ms)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    if (sqlite3_prepare_v2(l->db, q, -1, &l->ins, NULL) != SQLITE_OK) {
        pika_set_error("log %s: %s", path, sqlite3_errmsg(l->db));
        goto fail;
    }
    pthread_mutex_init(&l->mu, NULL);
    return l;
fail:
    if (l->db) sqlite3_close(l->db);
    free(l);
    return NULL;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
    if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(s, i);
}

int pika_serve_log_write(pika_serve_log *l, const pika_serve_log_row *r) {
    if (!l) return 0;
    pthread_mutex_lock(&l->mu);
    sqlite3_stmt *s = l->ins;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    sqlite3_bind_double(s, 1, r->ts);
    bind_text(s, 2, r->request_id);
    bind_text(s, 3, r->endpoint);
    bind_text(s, 4, r->model);
    bind_text(s, 5, r->policy);
    if (r->lambda == r->lambda) sqlite3_bind_double(s, 6, r->lambda);
    bind_text(s, 7, r->prompt_hash);
    bind_text(s, 8, r->prompt);
    bind_text(s, 9, r->p_json);
    bind_text(s, 10, r->member);
    sqlite3_bind_int(s, 11, r->attempts);
    sqlite3_bind_int(s, 12, r->fallbacks);
    sqlite3_bind_int(s, 13, r->status);
    bind_text(s, 14, r->error);
    sqlite3_bind_int(s, 15, r->stream);
    sqlite3_bind_int64(s, 16, r->tokens_in);
    sqlite3_bind_int64(s, 17, r->tokens_out);
    sqlite3_bind_double(s, 18, r->cost);
    sqlite3_bind_double(s, 19, r->route_ms);
    sqlite3_bind_double(s, 20, r->upstream_ms);
    int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : pika_set_error("log: %s", sqlite3_errmsg(l->db));
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void pika_serve_log_close(pika_serve_log *l) {
    if (!l) return;
    sqlite3_finalize(l->ins);
    sqlite3_exec(l->db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL);
    sqlite3_close(l->db);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static sqlite3 *open_ro(const char *path) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        pika_set_error("%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
        if (db) sqlite3_close(db);
        return NULL;
    }
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM requests", -1, &s, NULL) != SQLITE_OK) {
        pika_set_error("%s: not a pika serve log (%s)", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_finalize(s);
    return db;
}

int pika_serve_log_summary(const char *path, FILE *out, int json) {
    sqlite3 *db = open_ro(path);
    if (!db) return -1;
    sqlite3_stmt *s;
    const char *tq = "SELECT count(*), coalesce(sum(status >= 400),0), coalesce(sum(cost),0), coalesce(avg(route_ms),0),"
                     " coalesce(avg(upstream_ms),0), coalesce(sum(fallbacks),0), coalesce(min(ts),0), coalesce(max(ts),0) FROM requests";
    sqlite3_prepare_v2(db, tq, -1, &s, NULL);
    sqlite3_step(s);
    int64_t n = sqlite3_column_int64(s, 0), nerr = sqlite3_column_int64(s, 1), nfb = sqlite3_column_int64(s, 5);
    double cost = sqlite3_column_double(s, 2), rms = sqlite3_column_double(s, 3), ums = sqlite3_column_double(s, 4);
    double t0 = sqlite3_column_double(s, 6), t1 = sqlite3_column_double(s, 7);
    sqlite3_finalize(s);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "requests", (double)n);
    cJSON_AddNumberToObject(j, "errors", (double)nerr);
    cJSON_AddNumberToObject(j, "error_rate", n ? (double)nerr / (double)n : 0);
    cJSON_AddNumberToObject(j, "fallbacks", (double)nfb);
    cJSON_AddNumberToObject(j, "cost", cost);
    cJSON_AddNumberToObject(j, "cost_per_query", n ? cost / (double)n : 0);
    cJSON_AddNumberToObject(j, "route_ms_mean", rms);
    cJSON_AddNumberToObject(j, "upstream_ms_mean", ums);
    cJSON_AddNumberToObject(j, "span_s", t1 - t0);
    cJSON *mem = cJSON_AddArrayToObject(j, "members");
    const char *mq = "SELECT coalesce(member,'(none)'), count(*), coalesce(sum(status >= 400),0), coalesce(sum(cost),0),"
                     " coalesce(avg(upstream_ms),0), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0)"
                     " FROM requests GROUP BY 1 ORDER BY 2 DESC, 1";
    sqlite3_prepare_v2(db, mq, -1, &s, NULL);
    if (!json)
        fprintf(out, "%lld requests, %lld errors (%.2f%%), %lld fallbacks, cost %.6g (%.6g per query), routing %.3f ms, upstream %.3f ms mean\n",
                (long long)n, (long long)nerr, n ? 100.0 * (double)nerr / (double)n : 0, (long long)nfb, cost, n ? cost / (double)n : 0, rms, ums);
    if (!json) fprintf(out, "%-16s %8s %7s %7s %12s %10s %10s %10s\n", "member", "requests", "share", "errors", "cost", "upstream_ms", "tok_in", "tok_out");
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *nm = (const char *)sqlite3_column_text(s, 0);
        int64_t c = sqlite3_column_int64(s, 1), e = sqlite3_column_int64(s, 2);
        double co = sqlite3_column_double(s, 3), um = sqlite3_column_double(s, 4);
        int64_t ti = sqlite3_column_int64(s, 5), to = sqlite3_column_int64(s, 6);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "member", nm);
        cJSON_AddNumberToObject(x, "requests", (double)c);
        cJSON_AddNumberToObject(x, "share", n ? (double)c / (double)n : 0);
        cJSON_AddNumberToObject(x, "errors", (double)e);
        cJSON_AddNumberToObject(x, "cost", co);
        cJSON_AddNumberToObject(x, "upstream_ms_mean", um);
        cJSON_AddItemToArray(mem, x);
        if (!json)
            fprintf(out, "%-16s %8lld %7.3f %7lld %12.6g %10.3f %10lld %10lld\n", nm, (long long)c, n ? (double)c / (double)n : 0,
                    (long long)e, co, um, (long long)ti, (long long)to);
    }
    sqlite3_finalize(s);
    if (json) {
        char *t = cJSON_PrintUnformatted(j);
        fprintf(out, "%s\n", t);
        free(t);
    }
    cJSON_Delete(j);
    sqlite3_close(db);
    return 0;
}

int pika_serve_log_dump(const char *path, FILE *out) {
    sqlite3 *db = open_ro(path);
    if (!db) return -1;
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "SELECT * FROM requests ORDER BY id", -1, &s, NULL);
    int nc = sqlite3_column_count(s);
    while (sqlite3_step(s) == SQLITE_ROW) {
        cJSON *x = cJSON_CreateObject();
        for (int i = 0; i < nc; i++) {
            const char *k = sqlite3_column_name(s, i);
            switch (sqlite3_column_type(s, i)) {
            case SQLITE_INTEGER: cJSON_AddNumberToObject(x, k, (double)sqlite3_column_int64(s, i)); break;
            case SQLITE_FLOAT: cJSON_AddNumberToObject(x, k, sqlite3_column_double(s, i)); break;
            case SQLITE_NULL: cJSON_AddNullToObject(x, k); break;
            default: {
                const char *t = (const char *)sqlite3_column_text(s, i);
                cJSON *pj = !strcmp(k, "p") ? cJSON_Parse(t) : NULL;
                if (pj) cJSON_AddItemToObject(x, k, pj);
                else cJSON_AddStringToObject(x, k, t);
            }
            }
        }
        char *t = cJSON_PrintUnformatted(x);
        fprintf(out, "%s\n", t);
        free(t);
        cJSON_Delete(x);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return 0;
}

int pika_serve_log_labels(const char *path, const char *graded, FILE *out, int64_t *n_out) {
    *n_out = 0;
    pika_rollout_rec *rows = NULL;
    int64_t n = 0;
    if (pika_rollouts_read(graded, 0, &rows, &n)) return -1;
    sqlite3 *db = open_ro(path);
    if (!db) { pika_rollouts_free(rows, n); return -1; }
    sqlite3_stmt *s;
    sqlite3_prepare_v2(db, "SELECT member, p, cost, tokens_in, tokens_out, prompt_hash FROM requests WHERE request_id = ? AND status < 400"
                           " ORDER BY id DESC LIMIT 1", -1, &s, NULL);
    for (int64_t i = 0; i < n; i++) {
        if (rows[i].correct < 0) continue;
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, rows[i].id, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s) != SQLITE_ROW) continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", rows[i].id);
        const char *member = (const char *)sqlite3_column_text(s, 0);
        cJSON_AddStringToObject(x, "member", member ? member : "");
        cJSON_AddBoolToObject(x, "correct", rows[i].correct == 1);
        const char *pj = (const char *)sqlite3_column_text(s, 1);
        cJSON *p = pj ? cJSON_Parse(pj) : NULL;
        cJSON_AddItemToObject(x, "p", p ? p : cJSON_CreateNull());
        cJSON_AddNumberToObject(x, "cost", sqlite3_column_double(s, 2));
        cJSON_AddNumberToObject(x, "tokens_in", (double)sqlite3_column_int64(s, 3));
        cJSON_AddNumberToObject(x, "tokens_out", (double)sqlite3_column_int64(s, 4));
        const char *ph = (const char *)sqlite3_column_text(s, 5);
        if (ph) cJSON_AddStringToObject(x, "prompt_hash", ph);
        char *t = cJSON_PrintUnformatted(x);
        fprintf(out, "%s\n", t);
        free(t);
        cJSON_Delete(x);
        (*n_out)++;
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    pika_rollouts_free(rows, n);
    return 0;
}
