/* route_json.c — the JSON formats of routing: the `route eval --json` result, the `route calibrate
 * --json` summary, and the router file (`route calibrate -o`, format "pika-router" version 1) that the
 * live server loads. Field lists in include/pika/route.h and README.md. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/route.h"
#include "pika/util.h"

static const char *const OBJECTIVE_NAMES[] = {"budget", "target_accuracy", "max_share"};

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *point_json(const pika_route_table *t, const pika_route_result *r, int i) {
    const pika_route_point *p = &r->pts[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "policy", pika_route_policy_name(p->policy));
    if (p->arm >= 0) cJSON_AddStringToObject(o, "arm", t->arms[p->arm]);
    if (!isnan(p->lambda)) cJSON_AddNumberToObject(o, "lambda", p->lambda);
    if (p->policy == PIKA_POL_CASCADE) {
        cJSON *th = cJSON_AddArrayToObject(o, "thresholds");
        for (int j = 0; j + 1 < r->n_cascade; j++) cJSON_AddItemToArray(th, cJSON_CreateNumber(p->threshold));
    }
    if (p->policy == PIKA_POL_RANDOM) cJSON_AddNumberToObject(o, "seed", (double)r->seed);
    cJSON_AddItemToObject(o, "accuracy", num_or_null(p->s.accuracy));
    cJSON_AddItemToObject(o, "cost", num_or_null(p->s.cost));
    cJSON_AddItemToObject(o, "cost_per_query", num_or_null(p->s.cost / (double)p->s.n));
    cJSON_AddItemToObject(o, "reader_cost", num_or_null(p->s.reader_cost));
    cJSON *calls = cJSON_AddObjectToObject(o, "calls");
    for (int a = 0; a < t->n_arms; a++) cJSON_AddNumberToObject(calls, t->arms[a], (double)p->s.calls[a]);
    return o;
}

char *pika_route_result_json(const pika_route_table *t, const pika_route_result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "split", pika_route_split_name(r->split));
    cJSON_AddNumberToObject(o, "n", (double)r->n);
    cJSON *arms = cJSON_AddArrayToObject(o, "arms");
    for (int a = 0; a < t->n_arms; a++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", t->arms[a]);
        cJSON_AddNumberToObject(x, "mean_cost", r->mean_cost[a]);
        cJSON_AddNumberToObject(x, "c_tilde", r->ct[a]);
        cJSON_AddItemToArray(arms, x);
    }
    cJSON *co = cJSON_AddArrayToObject(o, "cascade_order");
    for (int j = 0; j < r->n_cascade; j++) cJSON_AddItemToArray(co, cJSON_CreateString(t->arms[r->cascade_order[j]]));
    cJSON_AddStringToObject(o, "cascade_cost", r->cascade_cost_all ? "all" : "final");
    cJSON *pts = cJSON_AddArrayToObject(o, "points");
    for (int i = 0; i < r->n_pts; i++) cJSON_AddItemToArray(pts, point_json(t, r, i));
    cJSON_AddItemToObject(o, "best_single", point_json(t, r, r->best_single));
    cJSON *pf = cJSON_AddArrayToObject(o, "pareto");
    for (int i = 0; i < r->n_pareto; i++) cJSON_AddItemToArray(pf, point_json(t, r, r->pareto[i]));
    cJSON *sv = cJSON_AddObjectToObject(o, "savings");
    cJSON_AddItemToObject(sv, "at_best_accuracy", num_or_null(r->savings));
    cJSON_AddItemToObject(sv, "at_best_accuracy_point", r->savings_at >= 0 ? point_json(t, r, r->savings_at) : cJSON_CreateNull());
    cJSON_AddItemToObject(sv, "at_best_accuracy_with_reader", num_or_null(r->savings_reader));
    cJSON_AddItemToObject(sv, "at_99pct", num_or_null(r->savings99));
    cJSON_AddItemToObject(sv, "at_99pct_point", r->savings99_at >= 0 ? point_json(t, r, r->savings99_at) : cJSON_CreateNull());
    cJSON *aiq = cJSON_AddObjectToObject(o, "aiq");
    cJSON_AddItemToObject(aiq, "utility", num_or_null(r->aiq_router));
    cJSON_AddItemToObject(aiq, "zero_router", num_or_null(r->aiq_zero));
    if (r->has_pair) {
        cJSON *pr = cJSON_AddObjectToObject(o, "pair");
        cJSON_AddStringToObject(pr, "weak", t->arms[r->pair_weak]);
        cJSON_AddStringToObject(pr, "strong", t->arms[r->pair_strong]);
        cJSON_AddItemToObject(pr, "accuracy_weak", num_or_null(r->pgr.r_weak));
        cJSON_AddItemToObject(pr, "accuracy_strong", num_or_null(r->pgr.r_strong));
        cJSON_AddItemToObject(pr, "apgr", num_or_null(r->pgr.apgr));
        cJSON_AddItemToObject(pr, "cpt50", num_or_null(r->pgr.cpt50));
        cJSON_AddItemToObject(pr, "cpt80", num_or_null(r->pgr.cpt80));
    }
    if (r->has_boot) {
        cJSON *b = cJSON_AddObjectToObject(o, "bootstrap");
        cJSON_AddItemToObject(b, "router_point", point_json(t, r, r->match_point));
        const char *nm[2] = {"best_single", "router"};
        for (int k = 0; k < 2; k++) {
            cJSON *x = cJSON_AddObjectToObject(b, nm[k]);
            cJSON *ac = cJSON_AddArrayToObject(x, "accuracy_ci");
            cJSON_AddItemToArray(ac, cJSON_CreateNumber(r->boot.acc_lo[k]));
            cJSON_AddItemToArray(ac, cJSON_CreateNumber(r->boot.acc_hi[k]));
            cJSON *cc = cJSON_AddArrayToObject(x, "cost_ci");
            cJSON_AddItemToArray(cc, cJSON_CreateNumber(r->boot.cost_lo[k]));
            cJSON_AddItemToArray(cc, cJSON_CreateNumber(r->boot.cost_hi[k]));
        }
        cJSON_AddNumberToObject(b, "accuracy_diff", r->boot.diff);
        cJSON *dc = cJSON_AddArrayToObject(b, "accuracy_diff_ci");
        cJSON_AddItemToArray(dc, cJSON_CreateNumber(r->boot.diff_lo));
        cJSON_AddItemToArray(dc, cJSON_CreateNumber(r->boot.diff_hi));
        cJSON_AddNumberToObject(b, "p_value", r->boot.p_value);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}


char *pika_route_cal_json(const pika_route_table *t, const pika_route_cal_opts *o, const pika_route_cal *c, const char *split,
                          const char *eval_split) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "objective", OBJECTIVE_NAMES[o->objective]);
    cJSON_AddNumberToObject(j, "value", o->value);
    if (o->share_arm >= 0) cJSON_AddStringToObject(j, "share_arm", t->arms[o->share_arm]);
    cJSON_AddStringToObject(j, "policy", o->cascade ? "cascade" : "utility");
    cJSON_AddItemToObject(j, "lambda", num_or_null(c->lambda));
    cJSON_AddItemToObject(j, "threshold", num_or_null(c->threshold));
    cJSON_AddBoolToObject(j, "feasible", c->feasible);
    const pika_route_score *S[2] = {&c->cal, &c->eval};
    const char *nm[2] = {split, eval_split};
    for (int k = 0; k < 2; k++) {
        cJSON *x = cJSON_AddObjectToObject(j, k ? "eval" : "calibration");
        cJSON_AddStringToObject(x, "split", nm[k]);
        cJSON_AddNumberToObject(x, "n", (double)S[k]->n);
        cJSON_AddNumberToObject(x, "accuracy", S[k]->accuracy);
        cJSON_AddNumberToObject(x, "cost", S[k]->cost);
        cJSON_AddNumberToObject(x, "cost_per_query", S[k]->cost / (double)S[k]->n);
        cJSON *sh = cJSON_AddObjectToObject(x, "share");
        for (int a = 0; a < t->n_arms; a++) cJSON_AddNumberToObject(sh, t->arms[a], (double)S[k]->calls[a] / (double)S[k]->n);
    }
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

int pika_route_router_write(const char *out, const pika_route_table *t, const pika_route_cal_opts *o, const pika_route_cal *c,
                            const char *table, const char *const *probes, int n_probes) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "pika-router");
    cJSON_AddNumberToObject(j, "version", 1);
    cJSON_AddStringToObject(j, "policy", o->cascade ? "cascade" : "utility");
    if (o->cascade) {
        cJSON_AddNumberToObject(j, "threshold", c->threshold);
        cJSON *co = cJSON_AddArrayToObject(j, "cascade_order");
        for (int k = 0; k < c->n_cascade; k++) cJSON_AddItemToArray(co, cJSON_CreateString(t->arms[c->cascade_order[k]]));
        cJSON_AddStringToObject(j, "cascade_cost", o->cascade_cost_all ? "all" : "final");
    } else cJSON_AddNumberToObject(j, "lambda", c->lambda);
    cJSON_AddStringToObject(j, "objective", OBJECTIVE_NAMES[o->objective]);
    cJSON_AddNumberToObject(j, "value", o->value);
    cJSON_AddStringToObject(j, "table", table);
    cJSON *arms = cJSON_AddArrayToObject(j, "arms");
    for (int a = 0; a < t->n_arms; a++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", t->arms[a]);
        cJSON_AddNumberToObject(x, "mean_cost", c->mean_cost[a]);
        cJSON_AddNumberToObject(x, "c_tilde", c->ct[a]);
        const char *pf = NULL;
        size_t ln = strlen(t->arms[a]);
        for (int k = 0; k < n_probes; k++)
            if (!strncmp(probes[k], t->arms[a], ln) && probes[k][ln] == '=') pf = probes[k] + ln + 1;
        cJSON_AddItemToObject(x, "probe", pf ? cJSON_CreateString(pf) : cJSON_CreateNull());
        cJSON_AddItemToArray(arms, x);
    }
    for (int k = 0; k < n_probes; k++) {
        const char *eq = strchr(probes[k], '=');
        int ok = 0;
        for (int a = 0; a < t->n_arms && eq; a++) ok |= (size_t)(eq - probes[k]) == strlen(t->arms[a]) && !strncmp(probes[k], t->arms[a], (size_t)(eq - probes[k]));
        if (!ok) { cJSON_Delete(j); return pika_set_error("--probe %s: expected ARM=FILE with an arm of %s", probes[k], table); }
    }
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    int rc = pika_write_file_atomic(out, s, strlen(s));
    free(s);
    return rc;
}
