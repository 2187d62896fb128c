/* decide.c — the live decision (the offline policies of route.h on a one-row table), the circuit
 * breaker and the budget-mode λ controller. No I/O, no clock: time is passed in. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/serve.h"
#include "pika/util.h"

int pika_serve_decide(const pika_serve_config *c, const double *p, const pika_decide_opts *o, int *order) {
    int n = c->n_members;
    int allowed[PIKA_ROUTE_MAX_ARMS], idx[PIKA_ROUTE_MAX_ARMS], na = 0;
    /* allowed = healthy and within the per-request budget; relax budget, then health, when empty */
    for (int pass = 0; pass < 3 && na == 0; pass++)
        for (int a = 0; a < n; a++) {
            int ok_h = pass >= 2 || !o->healthy || o->healthy[a];
            int ok_b = pass >= 1 || isnan(o->max_cost) || c->members[a].mean_cost <= o->max_cost;
            if (pass == 1 && !isnan(o->max_cost)) { /* budget fits nobody: the cheapest healthy members */
                double lo = INFINITY;
                for (int b = 0; b < n; b++)
                    if ((!o->healthy || o->healthy[b]) && c->members[b].mean_cost < lo) lo = c->members[b].mean_cost;
                ok_b = c->members[a].mean_cost <= lo;
            }
            if (ok_h && ok_b) allowed[na++] = a;
        }
    /* a one-row table over the allowed members, so the choice is the library's */
    pika_route_table t;
    pika_route_table_alloc(&t, na, 1);
    double ct[PIKA_ROUTE_MAX_ARMS];
    for (int k = 0; k < na; k++) {
        t.p[k] = p[allowed[k]];
        t.correct[k] = 0;
        t.cost[k] = c->members[allowed[k]].mean_cost;
        ct[k] = c->ct[allowed[k]];
    }
    t.split[0] = PIKA_SPLIT_TEST;
    int64_t row = 0;
    int first;
    if (o->policy == PIKA_SERVE_CASCADE) {
        int ord[PIKA_ROUTE_MAX_ARMS], no = 0;
        double th[PIKA_ROUTE_MAX_ARMS];
        for (int j = 0; j < c->n_cascade; j++)
            for (int k = 0; k < na; k++)
                if (allowed[k] == c->cascade_order[j]) { th[no] = o->threshold; ord[no++] = k; }
        if (no == 0) for (int k = 0; k < na; k++) { th[no] = o->threshold; ord[no++] = k; }
        pika_route_cascade(&t, &row, 1, ord, no, th, &first, NULL);
    } else {
        pika_route_utility(&t, &row, 1, ct, o->lambda, 0, &first);
    }
    /* the rest by utility p − λ·c̃ (descending, ties table order) */
    double lam = o->policy == PIKA_SERVE_CASCADE ? 0 : o->lambda;
    int m = 0;
    idx[m++] = first;
    for (int k = 0; k < na; k++)
        if (k != first) idx[m++] = k;
    for (int i = 2; i < m; i++)
        for (int k = i; k > 1; k--) {
            double u1 = t.p[idx[k]] - lam * ct[idx[k]], u0 = t.p[idx[k - 1]] - lam * ct[idx[k - 1]];
            if (u1 > u0 || (u1 == u0 && idx[k] < idx[k - 1])) { int x = idx[k]; idx[k] = idx[k - 1]; idx[k - 1] = x; }
            else break;
        }
    for (int i = 0; i < m; i++) order[i] = allowed[idx[i]];
    pika_route_table_free(&t);
    return m;
}

/* ---- circuit breaker: closed -> (max_failures in a row) open -> (cooldown) half-open: one trial ---- */
int pika_breaker_allow(pika_breaker *b, double now) {
    if (b->failures == 0 || b->open_until == 0) return 1;
    if (now < b->open_until) return 0;
    if (b->trial) return 0;
    b->trial = 1;
    return 1;
}

int pika_breaker_healthy(const pika_breaker *b, double now) {
    return b->open_until == 0 || (now >= b->open_until && !b->trial);
}

void pika_breaker_record(pika_breaker *b, int ok, double now, int max_failures, double cooldown_s) {
    b->trial = 0;
    if (ok) {
        b->failures = 0;
        b->open_until = 0;
        return;
    }
    b->failures++;
    if (b->failures >= max_failures) b->open_until = now + cooldown_s;
}

/* ---- budget mode ---- */
void pika_budget_init(pika_budget *b, double target, double lambda0, int window, double gain, double lambda_max) {
    memset(b, 0, sizeof *b);
    b->target = target;
    b->lambda = lambda0;
    b->window = window < 1 ? 1 : window;
    b->gain = gain;
    b->lambda_max = lambda_max;
    b->ring = pika_calloc((size_t)b->window, sizeof(double));
}

void pika_budget_free(pika_budget *b) {
    free(b->ring);
    b->ring = NULL;
}

void pika_budget_observe(pika_budget *b, double cost) {
    if (!isfinite(cost) || cost < 0) return;
    if (b->n == b->window) b->sum -= b->ring[b->head];
    else b->n++;
    b->ring[b->head] = cost;
    b->sum += cost;
    b->head = (b->head + 1) % b->window;
    b->total_n++;
    b->total_cost += cost;
    double mean = b->sum / b->n;
    double lam = b->lambda + b->gain * (mean - b->target) / b->target;
    b->lambda = lam < 0 ? 0 : lam > b->lambda_max ? b->lambda_max : lam;
}

double pika_budget_mean(const pika_budget *b) { return b->n ? b->sum / b->n : 0; }
