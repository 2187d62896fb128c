/* test_route.c — the routing library against hand-computed tables (every policy, ties, one arm,
 * all-correct, all-wrong, equal costs), Pareto / AIQ / savings / APGR / CPT on hand points, bootstrap and
 * calibration, the table reader's line-numbered errors, the builder from labels + prediction files, and the
 * CLI: `pika route eval --json` against an independent numpy implementation (tests/route_check.py), bad
 * tables, `route calibrate -o`, `route report`. */
#include <math.h>
#include <unistd.h>

#include "pika/route.h"
#include "pika/util.h"
#include "test.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

/* A table from row-major arrays (Q x A); split NULL = all test. */
static void mk(pika_route_table *t, int A, int Q, const double *p, const double *y, const double *c, const int *split) {
    pika_route_table_alloc(t, A, Q);
    for (int a = 0; a < A; a++) {
        char b[16];
        snprintf(b, sizeof b, "a%d", a);
        t->arms[a] = pika_strdup(b);
    }
    for (int q = 0; q < Q; q++) {
        char b[16];
        snprintf(b, sizeof b, "q%d", q);
        t->ids[q] = pika_strdup(b);
        t->split[q] = (int8_t)(split ? split[q] : PIKA_SPLIT_TEST);
        for (int a = 0; a < A; a++) {
            t->p[q * A + a] = p[q * A + a];
            t->correct[q * A + a] = y[q * A + a];
            t->cost[q * A + a] = c[q * A + a];
        }
    }
}

static void write_file(const char *path, const char *s) {
    FILE *f = fopen(path, "w");
    fputs(s, f);
    fclose(f);
}

/* 3 arms (cheap, mid, dear), 4 questions, all in test (c̃ then over all rows). */
static const double P3[] = {0.9, 0.8, 0.95, /**/ 0.3, 0.7, 0.9, /**/ 0.2, 0.2, 0.6, /**/ 0.5, 0.5, 0.5};
static const double Y3[] = {1, 1, 1, /**/ 0, 1, 1, /**/ 0, 0, 1, /**/ 0, 0, 0};
static const double C3[] = {1, 4, 10, /**/ 1, 4, 10, /**/ 1, 4, 10, /**/ 1, 4, 10};

static void test_norm_costs(void) {
    pika_route_table t;
    mk(&t, 3, 4, P3, Y3, C3, NULL);
    double mc[3], ct[3];
    pika_route_norm_costs(&t, mc, ct);
    CHECK(NEAR(mc[0], 1) && NEAR(mc[1], 4) && NEAR(mc[2], 10), "mean costs %g %g %g", mc[0], mc[1], mc[2]);
    CHECK(NEAR(ct[0], 0) && NEAR(ct[1], 1.0 / 3.0) && NEAR(ct[2], 1), "c~ %g %g %g", ct[0], ct[1], ct[2]);
    /* train rows only when there are train rows: q0 train with costs 2, 2, 2 -> equal costs -> c~ = 0 */
    t.split[0] = PIKA_SPLIT_TRAIN;
    t.cost[0] = t.cost[1] = t.cost[2] = 2;
    pika_route_norm_costs(&t, mc, ct);
    CHECK(NEAR(mc[0], 2) && NEAR(mc[2], 2) && ct[0] == 0 && ct[1] == 0 && ct[2] == 0, "equal costs -> c~ = 0 (0/0 defined)");
    pika_route_table_free(&t);
}

static void test_policies_hand(void) {
    pika_route_table t;
    mk(&t, 3, 4, P3, Y3, C3, NULL);
    double mc[3], ct[3];
    pika_route_norm_costs(&t, mc, ct);
    int64_t n, *rows = pika_route_rows(&t, PIKA_SPLIT_TEST, &n);
    REQUIRE(n == 4, "rows %lld", (long long)n);
    int ch[4], tried[4];
    pika_route_score s;
    /* λ = 0: argmax p -> q0 a2 (0.95), q1 a2, q2 a2, q3 tie 0.5 -> a0 */
    pika_route_utility(&t, rows, n, ct, 0.0, 0, ch);
    CHECK(ch[0] == 2 && ch[1] == 2 && ch[2] == 2 && ch[3] == 0, "utility λ=0 %d %d %d %d", ch[0], ch[1], ch[2], ch[3]);
    pika_route_score_choices(&t, rows, n, ch, NULL, NULL, &s);
    CHECK(NEAR(s.accuracy, 0.75) && NEAR(s.cost, 31) && s.calls[0] == 1 && s.calls[2] == 3, "score acc %g cost %g", s.accuracy, s.cost);
    /* λ = 0.35: U = p - 0.35·(0, 1/3, 1): q0 0.9, 0.683, 0.6 -> a0; q1 0.3, 0.583, 0.55 -> a1; q2 0.2, 0.083, 0.25 -> a2;
     * q3 0.5, 0.383, 0.15 -> a0 */
    pika_route_utility(&t, rows, n, ct, 0.35, 0, ch);
    CHECK(ch[0] == 0 && ch[1] == 1 && ch[2] == 2 && ch[3] == 0, "utility λ=0.35 %d %d %d %d", ch[0], ch[1], ch[2], ch[3]);
    pika_route_score_choices(&t, rows, n, ch, NULL, NULL, &s);
    CHECK(NEAR(s.accuracy, 0.75) && NEAR(s.cost, 16), "λ=0.35 acc %g cost %g", s.accuracy, s.cost);
    /* oracle utility λ=1: y - c~: q0 1, 2/3, 0 -> a0; q1 0, 2/3, 0 -> a1; q2 0, -1/3, 0 -> tie a0/a2 -> a0; q3 -> a0 */
    pika_route_utility(&t, rows, n, ct, 1.0, 1, ch);
    CHECK(ch[0] == 0 && ch[1] == 1 && ch[2] == 0 && ch[3] == 0, "oracle utility λ=1 %d %d %d %d", ch[0], ch[1], ch[2], ch[3]);
    pika_route_max_prob(&t, rows, n, ch);
    CHECK(ch[0] == 2 && ch[1] == 2 && ch[2] == 2 && ch[3] == 0, "max_prob ties -> first arm");
    pika_route_min_cost(&t, n, ct, ch);
    CHECK(ch[0] == 0 && ch[3] == 0, "min_cost");
    /* oracle: cheapest correct, else cheapest: a0, a1, a2, a0 */
    pika_route_oracle(&t, rows, n, ct, ch);
    CHECK(ch[0] == 0 && ch[1] == 1 && ch[2] == 2 && ch[3] == 0, "oracle %d %d %d %d", ch[0], ch[1], ch[2], ch[3]);
    pika_route_score_choices(&t, rows, n, ch, NULL, NULL, &s);
    CHECK(NEAR(s.accuracy, 0.75) && NEAR(s.cost, 16), "oracle acc %g cost %g", s.accuracy, s.cost);
    /* cascade a0 -> a1 -> a2 at 0.5: escalate while p <= 0.5. q0 a0 (0.9); q1 a0 0.3 -> a1 0.7 stop; q2 -> a2;
     * q3 0.5 <= 0.5 -> a1 0.5 -> a2 (fallback) */
    int order[3] = {0, 1, 2};
    double th[2] = {0.5, 0.5};
    pika_route_cascade(&t, rows, n, order, 3, th, ch, tried);
    CHECK(ch[0] == 0 && ch[1] == 1 && ch[2] == 2 && ch[3] == 2, "cascade %d %d %d %d", ch[0], ch[1], ch[2], ch[3]);
    CHECK(tried[0] == 1 && tried[1] == 2 && tried[2] == 3 && tried[3] == 3, "tried");
    pika_route_score_choices(&t, rows, n, ch, NULL, NULL, &s);
    CHECK(NEAR(s.cost, 1 + 4 + 10 + 10) && NEAR(s.accuracy, 0.75), "cascade final-cost %g", s.cost);
    pika_route_score_choices(&t, rows, n, ch, order, tried, &s);
    CHECK(NEAR(s.cost, 1 + 5 + 15 + 15), "cascade all-cost %g", s.cost);
    /* reader overhead: utility reads every probe; the cascade above the probes of the arms it left or stopped
     * at, not the final fallback: q0 a0, q1 a0 a1, q2 a0 a1, q3 a0 a1 */
    for (int i = 0; i < 12; i++) t.reader_cost[i] = (double)(1 << (i % 3));
    CHECK(NEAR(pika_route_reader_cost(&t, rows, n, PIKA_POL_UTILITY, NULL, 0, NULL), 4 * 7), "utility reader cost");
    CHECK(NEAR(pika_route_reader_cost(&t, rows, n, PIKA_POL_CASCADE, order, 3, tried), 1 + 3 + 3 + 3), "cascade reader cost");
    CHECK(pika_route_reader_cost(&t, rows, n, PIKA_POL_ORACLE, NULL, 0, NULL) == 0, "oracle reads no probe");
    /* random: seeded, reproducible, every choice a valid arm */
    int r1[4], r2[4];
    pika_route_random(&t, n, 7, r1);
    pika_route_random(&t, n, 7, r2);
    CHECK(!memcmp(r1, r2, sizeof r1), "random is seeded");
    for (int i = 0; i < 4; i++) CHECK(r1[i] >= 0 && r1[i] < 3, "random arm %d", r1[i]);
    free(rows);
    pika_route_table_free(&t);
}

static void test_eval_hand(void) {
    pika_route_table t;
    mk(&t, 3, 4, P3, Y3, C3, NULL);
    pika_route_eval_opts o = {0};
    o.split = PIKA_SPLIT_TEST;
    o.pair_weak = 0;
    o.pair_strong = 2;
    o.n_boot = 200;
    pika_route_result r;
    REQUIRE(pika_route_eval(&t, &o, &r) == 0, "%s", pika_last_error());
    /* 3 always + 50 utility + max_prob, min_cost, random, oracle + 50 oracle utility + 9 cascade */
    CHECK(r.n_pts == 3 + 50 + 4 + 50 + 9, "points %d", r.n_pts);
    /* always: a0 0.25/4, a1 0.5/16, a2 0.75/40 -> best single a2 */
    CHECK(r.pts[r.best_single].arm == 2 && NEAR(r.pts[2].s.accuracy, 0.75) && NEAR(r.pts[2].s.cost, 40), "best single");
    /* a utility point reaches 0.75 at cost 16 (λ=0.3 region) -> savings 1 - 16/40 */
    CHECK(r.savings_at >= 0 && NEAR(r.savings, 1 - 16.0 / 40.0), "savings %g", r.savings);
    CHECK(NEAR(r.pts[r.savings_at].s.cost, 16), "savings point cost %g", r.pts[r.savings_at].s.cost);
    /* pareto is cost-sorted, accuracy strictly increasing */
    for (int i = 1; i < r.n_pareto; i++)
        CHECK(r.pts[r.pareto[i]].s.cost >= r.pts[r.pareto[i - 1]].s.cost &&
                  r.pts[r.pareto[i]].s.accuracy > r.pts[r.pareto[i - 1]].s.accuracy,
              "pareto order");
    /* pair a0 -> a2: r_weak 0.25, r_strong 0.75; order by p_a0: q2 (0.2), q1 (0.3), q3 (0.5), q0 (0.9);
     * r(m): 0.25, 0.5, 0.75, 0.75, 0.75 -> PGR 0, .5, 1, 1, 1; shares 10..100% -> m = 1,1,2,2,2,3,3,4,4,4 */
    CHECK(NEAR(r.pgr.r_weak, 0.25) && NEAR(r.pgr.r_strong, 0.75), "pair accuracies");
    CHECK(NEAR(r.pgr.apgr, (0.5 * 2 + 1 * 8) / 10.0), "APGR %g", r.pgr.apgr);
    CHECK(NEAR(r.pgr.cpt50, 0.25) && NEAR(r.pgr.cpt80, 0.5), "CPT %g %g", r.pgr.cpt50, r.pgr.cpt80);
    CHECK(r.has_boot && r.boot.acc_lo[0] <= 0.75 && r.boot.acc_hi[0] >= 0.75, "bootstrap CI covers best single");
    CHECK(r.n_cascade == 3 && r.cascade_order[0] == 0 && r.cascade_order[2] == 2, "default cascade order by c~");
    pika_route_result_free(&r);
    /* unknown split content */
    o.split = PIKA_SPLIT_VAL;
    CHECK(pika_route_eval(&t, &o, &r) == -1 && strstr(pika_last_error(), "val"), "empty split is an error");
    pika_route_table_free(&t);
}

static void test_degenerate(void) {
    /* one arm */
    double p1[] = {0.4, 0.9, 0.1}, y1[] = {1, 0, 1}, c1[] = {2, 3, 4};
    pika_route_table t;
    mk(&t, 1, 3, p1, y1, c1, NULL);
    pika_route_eval_opts o = {0};
    o.split = PIKA_SPLIT_TEST;
    o.pair_weak = o.pair_strong = -1;
    pika_route_result r;
    REQUIRE(pika_route_eval(&t, &o, &r) == 0, "%s", pika_last_error());
    CHECK(r.ct[0] == 0, "one arm: c~ = 0");
    for (int i = 0; i < r.n_pts; i++) CHECK(r.pts[i].s.calls[0] == 3 && NEAR(r.pts[i].s.cost, 9), "one arm: every policy picks it");
    CHECK(r.n_pts == 1 + 50 + 4 + 50, "one arm: no cascade points (%d)", r.n_pts);
    CHECK(NEAR(r.savings, 0), "one arm: savings 0");
    CHECK(r.n_pareto == 1, "one arm: one Pareto point");
    pika_route_result_free(&r);
    pika_route_table_free(&t);
    /* all correct, equal costs: c~ = 0, utility = argmax p at every λ, oracle = first arm */
    double p2[] = {0.2, 0.9, 0.7, 0.3}, y2[] = {1, 1, 1, 1}, c2[] = {5, 5, 5, 5};
    mk(&t, 2, 2, p2, y2, c2, NULL);
    REQUIRE(pika_route_eval(&t, &o, &r) == 0, "%s", pika_last_error());
    CHECK(r.ct[0] == 0 && r.ct[1] == 0, "equal costs -> c~ 0");
    for (int i = 0; i < r.n_pts; i++) {
        if (r.pts[i].policy == PIKA_POL_UTILITY) CHECK(r.pts[i].s.calls[0] == 1 && r.pts[i].s.calls[1] == 1, "utility = argmax p");
        if (r.pts[i].policy == PIKA_POL_ORACLE) CHECK(r.pts[i].s.calls[0] == 2, "oracle: all correct -> first (cheapest) arm");
        if (r.pts[i].policy == PIKA_POL_MIN_COST) CHECK(r.pts[i].s.calls[0] == 2, "min_cost ties -> first arm");
        CHECK(NEAR(r.pts[i].s.accuracy, 1), "all correct");
    }
    CHECK(r.pts[r.best_single].arm == 0, "best single tie -> first arm (equal cost)");
    pika_route_result_free(&r);
    pika_route_table_free(&t);
    /* all wrong: oracle -> the cheapest; savings: every point reaches accuracy 0 -> cheapest utility point */
    double y3[] = {0, 0, 0, 0}, c3[] = {1, 3, 1, 3};
    mk(&t, 2, 2, p2, y3, c3, NULL);
    o.pair_weak = 0;
    o.pair_strong = 1;
    REQUIRE(pika_route_eval(&t, &o, &r) == 0, "%s", pika_last_error());
    for (int i = 0; i < r.n_pts; i++) {
        if (r.pts[i].policy == PIKA_POL_ORACLE) CHECK(r.pts[i].s.calls[0] == 2 && NEAR(r.pts[i].s.cost, 2), "oracle all wrong -> cheapest");
        CHECK(r.pts[i].s.accuracy == 0, "all wrong");
    }
    CHECK(r.pts[r.best_single].arm == 0, "best single: accuracy tie -> cheaper arm");
    CHECK(NEAR(r.savings, 0), "savings vs the cheapest arm: 0 (%g)", r.savings);
    CHECK(isnan(r.pgr.apgr) && isnan(r.pgr.cpt50), "APGR undefined when both arms score the same");
    pika_route_result_free(&r);
    pika_route_table_free(&t);
}

static void test_frontier_metrics(void) {
    double c[] = {5, 1, 3, 3, 2, 8}, a[] = {0.8, 0.5, 0.7, 0.6, 0.5, 0.8};
    int idx[6];
    int k = pika_route_pareto(c, a, 6, idx);
    /* sorted: (1,.5) (2,.5) (3,.7) (3,.6) (5,.8) (8,.8) -> keep 1, 2, 0 */
    CHECK(k == 3 && idx[0] == 1 && idx[1] == 2 && idx[2] == 0, "pareto k=%d", k);
    /* hull of (1,.5) (3,.7) (5,.8): concave (slopes .1, .05), over [1, 8]:
     * area = (.5+.7)/2*2 + (.7+.8)/2*2 + .8*3 = 1.2 + 1.5 + 2.4 = 5.1 -> 5.1/7 */
    CHECK(NEAR(pika_route_aiq(c, a, 6, 1, 8), 5.1 / 7.0), "AIQ %g", pika_route_aiq(c, a, 6, 1, 8));
    /* a non-concave frontier: (0,0) (1,.1) (2,1): hull drops (1,.1) -> area over [0,2] = 1 -> 0.5 */
    double c2[] = {0, 1, 2}, a2[] = {0, 0.1, 1};
    CHECK(NEAR(pika_route_aiq(c2, a2, 3, 0, 2), 0.5), "AIQ convex hull %g", pika_route_aiq(c2, a2, 3, 0, 2));
    /* 0 left of the cheapest point: one point (1, .5) over [0, 2] -> .5*1/2 */
    CHECK(NEAR(pika_route_aiq(c2 + 1, a2 + 1, 1, 0, 2), 0.05), "AIQ left of the hull");
    CHECK(isnan(pika_route_aiq(c, a, 6, 2, 2)), "AIQ empty range");
    CHECK(pika_route_cheapest_at(c, a, 6, 0.8, 1.0) == 0, "cheapest at 0.8");
    CHECK(pika_route_cheapest_at(c, a, 6, 0.8, 0.99) == 0 && pika_route_cheapest_at(c, a, 6, 0.9, 1.0) == -1, "none above");
}

static void test_bootstrap(void) {
    pika_route_table t;
    mk(&t, 3, 4, P3, Y3, C3, NULL);
    int64_t n, *rows = pika_route_rows(&t, PIKA_SPLIT_ALL, &n);
    int a[4] = {2, 2, 2, 2}, b[4] = {0, 1, 2, 0};
    pika_route_boot x, y;
    pika_route_bootstrap(&t, rows, n, a, b, 500, 3, &x);
    pika_route_bootstrap(&t, rows, n, a, b, 500, 3, &y);
    CHECK(!memcmp(&x, &y, sizeof x), "bootstrap is seeded");
    CHECK(NEAR(x.diff, 0), "same accuracy: diff 0");
    CHECK(x.cost_lo[1] <= 16 && x.cost_hi[1] >= 16 && x.cost_lo[0] <= 40 && x.cost_hi[0] >= 40, "cost CIs cover the point");
    CHECK(x.p_value > 0.5, "no difference: large p (%g)", x.p_value);
    pika_route_bootstrap(&t, rows, n, a, a, 100, 3, &x);
    CHECK(x.p_value == 1 && x.diff_lo == 0 && x.diff_hi == 0, "identical routers: p = 1");
    free(rows);
    pika_route_table_free(&t);
}

static void test_calibrate(void) {
    /* val: q0, q1; test: q2, q3 */
    int sp[] = {PIKA_SPLIT_VAL, PIKA_SPLIT_VAL, PIKA_SPLIT_TEST, PIKA_SPLIT_TEST};
    pika_route_table t;
    mk(&t, 3, 4, P3, Y3, C3, sp);
    pika_route_cal_opts o = {0};
    o.cal_split = PIKA_SPLIT_VAL;
    o.eval_split = PIKA_SPLIT_TEST;
    o.objective = PIKA_CAL_TARGET_ACC;
    o.value = 1.0;
    o.share_arm = -1;
    pika_route_cal c;
    REQUIRE(pika_route_calibrate(&t, &o, &c) == 0, "%s", pika_last_error());
    /* val q0 needs any arm, q1 needs a1/a2; cheapest λ with acc 1: q0 -> a0 (λ > 0.05/1 ... ), q1 -> a1 */
    CHECK(c.feasible && NEAR(c.cal.accuracy, 1) && NEAR(c.cal.cost, 5), "target: acc %g cost %g", c.cal.accuracy, c.cal.cost);
    CHECK(c.eval.n == 2, "eval on test");
    o.objective = PIKA_CAL_BUDGET;
    o.value = 2.5; /* per query: q0 -> a0, q1 -> a1 (λ > 0.3) fits, accuracy 1 */
    REQUIRE(pika_route_calibrate(&t, &o, &c) == 0, "%s", pika_last_error());
    CHECK(c.feasible && NEAR(c.cal.cost, 5) && NEAR(c.cal.accuracy, 1), "budget 2.5/query: cost %g", c.cal.cost);
    o.value = 1.0; /* all-a0 would need λ > 1.2: no λ of the grid fits */
    REQUIRE(pika_route_calibrate(&t, &o, &c) == 0, "%s", pika_last_error());
    CHECK(!c.feasible && NEAR(c.cal.cost, 5), "infeasible budget -> the cheapest λ, flagged");
    o.objective = PIKA_CAL_MAX_SHARE;
    o.share_arm = 2;
    o.value = 0.0;
    REQUIRE(pika_route_calibrate(&t, &o, &c) == 0, "%s", pika_last_error());
    CHECK(c.feasible && c.cal.calls[2] == 0 && NEAR(c.cal.accuracy, 1), "max share a2 = 0: acc %g", c.cal.accuracy);
    /* cascade a0 -> a1 -> a2: accuracy 1 on val needs q1 escalated from a0 (p 0.3 <= th) but kept at a1 (0.7 > th):
     * the cheapest is th = 0.3 (0.3..0.6 tie at cost 5; the first wins); test: q2 a0 0.2 -> a1 0.2 -> a2; q3 0.5 > 0.3 stays */
    o.objective = PIKA_CAL_TARGET_ACC;
    o.value = 1.0;
    o.share_arm = -1;
    o.cascade = 1;
    REQUIRE(pika_route_calibrate(&t, &o, &c) == 0, "%s", pika_last_error());
    CHECK(c.feasible && NEAR(c.threshold, 0.3) && isnan(c.lambda) && NEAR(c.cal.cost, 5), "cascade threshold %g cost %g", c.threshold,
          c.cal.cost);
    CHECK(c.eval.calls[2] == 1 && c.eval.calls[0] == 1 && NEAR(c.eval.cost, 11), "cascade on test: cost %g", c.eval.cost);
    o.cascade_cost_all = 1;
    REQUIRE(pika_route_calibrate(&t, &o, &c) == 0, "%s", pika_last_error());
    CHECK(NEAR(c.cal.cost, 1 + 5) && NEAR(c.eval.cost, 15 + 1), "cascade paying every tried arm: %g %g", c.cal.cost, c.eval.cost);
    pika_route_table_free(&t);
}

static void expect_read_error(const char *dir, const char *name, const char *body, const char *want_line, const char *want) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, body);
    pika_route_table t;
    int rc = pika_route_table_read(p, &t);
    char loc[600];
    snprintf(loc, sizeof loc, "%s:%s:", p, want_line);
    CHECK(rc == -1 && strstr(pika_last_error(), loc) && strstr(pika_last_error(), want) && !strchr(pika_last_error(), '\n'),
          "%s: got '%s'", name, pika_last_error());
}

#define ROW(id, arm, p, y, sp) "{\"id\":\"" id "\",\"arm\":\"" arm "\",\"p\":" p ",\"correct\":" y ",\"cost\":1,\"split\":\"" sp "\"}\n"

static void test_reader(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/ok.jsonl", dir);
    write_file(p, ROW("x", "s", "0.5", "true", "train") ROW("x", "l", "0.7", "0.4", "train") "\n"
                  "{\"id\":7,\"arm\":\"l\",\"p\":1,\"correct\":false,\"cost\":2.5,\"split\":\"test\",\"tokens_in\":3,\"tokens_out\":9}\n"
                  ROW("7", "s", "0", "1", "test"));
    pika_route_table t;
    REQUIRE(pika_route_table_read(p, &t) == 0, "%s", pika_last_error());
    CHECK(t.n_arms == 2 && t.n_q == 2 && !strcmp(t.arms[1], "l") && !strcmp(t.ids[1], "7"), "shape");
    CHECK(t.correct[0] == 1 && NEAR(t.correct[1], 0.4) && t.correct[3] == 0 && NEAR(t.cost[3], 2.5) && t.tokens_out[3] == 9 &&
              isnan(t.tokens_in[0]) && t.split[0] == PIKA_SPLIT_TRAIN && t.split[1] == PIKA_SPLIT_TEST,
          "values");
    /* round trip */
    snprintf(p, sizeof p, "%s/rt.jsonl", dir);
    FILE *f = fopen(p, "w");
    pika_route_table_write(f, &t);
    fclose(f);
    pika_route_table u;
    REQUIRE(pika_route_table_read(p, &u) == 0, "%s", pika_last_error());
    CHECK(u.n_q == 2 && u.cost[3] == t.cost[3] && u.p[2] == t.p[2] && u.tokens_out[3] == 9, "write/read round trip");
    pika_route_table_free(&u);
    pika_route_table_free(&t);
    expect_read_error(dir, "miss.jsonl", ROW("a", "s", "0.5", "1", "test") ROW("a", "l", "0.5", "1", "test") ROW("b", "s", "0.5", "1", "test"),
                      "3", "id 'b' has no row for arm 'l'");
    expect_read_error(dir, "dup.jsonl", ROW("a", "s", "0.5", "1", "test") ROW("a", "s", "0.6", "1", "test"), "2", "duplicate row for id 'a'");
    expect_read_error(dir, "p.jsonl", ROW("a", "s", "0.5", "1", "test") ROW("a", "l", "1.5", "1", "test"), "2", "\"p\"");
    expect_read_error(dir, "nan.jsonl", ROW("a", "s", "NaN", "1", "test"), "1", "malformed JSON");
    expect_read_error(dir, "split.jsonl", "\n" ROW("a", "s", "0.5", "1", "dev"), "2", "\"split\"");
    expect_read_error(dir, "corr.jsonl", ROW("a", "s", "0.5", "2", "test"), "1", "\"correct\"");
    expect_read_error(dir, "mix.jsonl", ROW("a", "s", "0.5", "1", "test") ROW("a", "l", "0.5", "1", "val"), "2", "split 'val' here");
    expect_read_error(dir, "noid.jsonl", "{\"arm\":\"s\",\"p\":0.5,\"correct\":1,\"cost\":1,\"split\":\"test\"}\n", "1", "\"id\"");
    expect_read_error(dir, "cost.jsonl", "{\"id\":1,\"arm\":\"s\",\"p\":0.5,\"correct\":1,\"cost\":-1,\"split\":\"test\"}\n", "1", "\"cost\"");
}

static void test_build(void) {
    const char *dir = test_tmpdir();
    char l1[512], l2[512], p1[512], p2[512], p3[512];
    snprintf(l1, sizeof l1, "%s/s.labels.jsonl", dir);
    snprintf(l2, sizeof l2, "%s/l.labels.jsonl", dir);
    snprintf(p1, sizeof p1, "%s/s.pred.jsonl", dir);
    snprintf(p2, sizeof p2, "%s/l.pred.jsonl", dir);
    snprintf(p3, sizeof p3, "%s/bad.pred.jsonl", dir);
    write_file(l1, "{\"id\":\"a\",\"n\":5,\"tokens_in\":10,\"total_tokens_out\":50,\"majority_vote_is_correct\":true,\"success_rate\":0.6,\"split\":\"test\"}\n"
                   "{\"id\":\"b\",\"n\":5,\"tokens_in\":20,\"total_tokens_out\":100,\"majority_vote_is_correct\":false,\"success_rate\":0.2,\"split\":\"train\"}\n");
    write_file(l2, "{\"id\":\"b\",\"n\":5,\"tokens_in\":20,\"total_tokens_out\":10,\"majority_vote_is_correct\":true,\"success_rate\":1,\"split\":\"train\"}\n"
                   "{\"id\":\"a\",\"n\":5,\"tokens_in\":10,\"total_tokens_out\":5,\"majority_vote_is_correct\":true,\"success_rate\":0.8,\"split\":\"test\"}\n");
    write_file(p1, "{\"id\":\"a\",\"score\":1,\"prob\":0.7}\n{\"id\":\"b\",\"score\":-1,\"prob\":0.2}\n");
    write_file(p2, "{\"id\":\"b\",\"score\":1,\"prob\":0.9}\n{\"id\":\"a\",\"score\":1,\"prob\":0.95}\n");
    write_file(p3, "{\"id\":\"a\",\"score\":1,\"prob\":0.9}\n");
    pika_route_arm_spec arms[2] = {
        {.name = "s", .labels = l1, .pred = p1, .price_in = 1, .price_out = 2, .k = 1},
        {.name = "l", .labels = l2, .pred = p2, .price_in = 10, .price_out = 20, .prefill = 0.5, .prefill_price = 1e5,
         .target = "success_rate"},
    };
    pika_route_table t;
    REQUIRE(pika_route_table_build(arms, 2, 0, &t) == 0, "%s", pika_last_error());
    CHECK(t.n_q == 2 && !strcmp(t.ids[0], "a") && t.split[0] == PIKA_SPLIT_TEST && t.split[1] == PIKA_SPLIT_TRAIN, "ids and splits");
    /* s, k=1 of n=5: a: (10·1 + 50/5·2)/1e6 = 30e-6 */
    CHECK(NEAR(t.cost[0], 30e-6) && NEAR(t.tokens_out[0], 10), "k-scaled cost %g", t.cost[0]);
    /* l: a: (10·10 + 5·20)/1e6; reader cost apart: 0.5 + 10·1e5/1e6 */
    CHECK(NEAR(t.cost[1], 200e-6) && NEAR(t.reader_cost[1], 1.5) && t.reader_cost[0] == 0, "cost %g, reader cost %g", t.cost[1],
          t.reader_cost[1]);
    CHECK(t.correct[0] == 1 && NEAR(t.correct[1], 0.8) && t.correct[2] == 0 && t.correct[3] == 1, "targets");
    CHECK(NEAR(t.p[0], 0.7) && NEAR(t.p[3], 0.9), "probabilities joined by id");
    pika_route_table_free(&t);
    REQUIRE(pika_route_table_build(arms, 2, 1.0, &t) == 0, "%s", pika_last_error());
    CHECK(t.split[0] == PIKA_SPLIT_VAL && t.split[1] == PIKA_SPLIT_TRAIN, "val-frac 1 moves test ids to val, keeps train");
    pika_route_table_free(&t);
    /* the CLI: route table writes a table route eval reads; a missing id is one line naming it */
    if (access(test_pika_bin(), X_OK) == 0) {
        char cmd[4096], tab[600];
        snprintf(tab, sizeof tab, "%s/table.jsonl", dir);
        snprintf(cmd, sizeof cmd,
                 "%s route table --arm name=s,labels=%s,pred=%s,price_in=1,price_out=2,k=1 "
                 "--arm name=l,labels=%s,pred=%s,price_in=10,price_out=20,target=success_rate,prefill_price=1e5 -o %s && "
                 "%s route eval --table %s --split all --bootstrap 0",
                 test_pika_bin(), l1, p1, l2, p2, tab, test_pika_bin(), tab);
        int st;
        char *out = test_run(cmd, &st);
        CHECK(st == 0 && strstr(out, "2 questions x 2 arms (train 1, val 0, test 1)") && strstr(out, "best_single: l"),
              "route table + eval: %d %s", st, out);
        free(out);
        snprintf(cmd, sizeof cmd, "%s route table --arm name=s,labels=%s,pred=%s,price_in=1,price_out=2 "
                 "--arm name=l,labels=%s,pred=%s,price_in=1,price_out=2 -o %s 2>&1", test_pika_bin(), l1, p1, l2, p3, tab);
        out = test_run(cmd, &st);
        CHECK(st == 2 && strstr(out, "no prediction for id 'b'") && strchr(out, '\n') == out + strlen(out) - 1, "missing id: %s", out);
        free(out);
    }
    arms[1].pred = p3;
    CHECK(pika_route_table_build(arms, 2, 0, &t) == -1 && strstr(pika_last_error(), "no prediction for id 'b'"), "missing id: %s",
          pika_last_error());
    arms[1].pred = p2;
    arms[1].name = "s";
    CHECK(pika_route_table_build(arms, 2, 0, &t) == -1 && strstr(pika_last_error(), "twice"), "duplicate arm name");
}

/* ---------------------------------------------------------------- CLI */

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void write_random_table(const char *path, int Q, int A, uint64_t seed) {
    FILE *f = fopen(path, "w");
    uint64_t s = seed;
    static const char *SP[] = {"train", "val", "test"};
    for (int q = 0; q < Q; q++) {
        const char *sp = SP[lcg(&s) % 3];
        for (int a = 0; a < A; a++) {
            /* p on a 0.05 grid (ties), correct 0/1 or a rate, cost rising with the arm plus noise */
            double p = (double)(lcg(&s) % 21) * 0.05;
            double y = a == 1 ? (double)(lcg(&s) % 6) / 5.0 : (double)(lcg(&s) % 100 < (uint64_t)(40 + 15 * a));
            double c = (a + 1) * (a + 1) * (1.0 + (double)(lcg(&s) % 1000) / 1000.0);
            fprintf(f, "{\"id\":\"q%d\",\"arm\":\"arm%d\",\"p\":%.2f,\"correct\":%.17g,\"cost\":%.17g,\"split\":\"%s\"}\n", q, a, p, y, c, sp);
        }
    }
    fclose(f);
}

static void test_cli_vs_python(void) {
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("*** %s not built: CLI NOT checked ***", test_pika_bin());
    if (access("/usr/bin/python3", X_OK) != 0) SKIP_TEST("*** /usr/bin/python3 not found: numpy agreement NOT checked ***");
    const char *dir = test_tmpdir();
    for (int k = 0; k < 4; k++) {
        char tab[512], js[512], cmd[2048];
        snprintf(tab, sizeof tab, "%s/t%d.jsonl", dir, k);
        snprintf(js, sizeof js, "%s/t%d.json", dir, k);
        int A = k == 2 ? 1 : k == 3 ? 3 : 4 + k;
        write_random_table(tab, 400, A, 11 + (uint64_t)k);
        const char *split = k == 1 ? "val" : "test";
        /* table 3: a custom cascade order paying every tried arm */
        const char *pair = A > 3 ? "arm0,arm3" : "-", *corder = k == 3 ? "arm2,arm0,arm1" : "-", *pay = k == 3 ? "all" : "final";
        snprintf(cmd, sizeof cmd, "%s route eval --table %s --split %s --bootstrap 50 %s%s %s%s --cascade-cost %s --json > %s",
                 test_pika_bin(), tab, split, A > 3 ? "--pair " : "", A > 3 ? pair : "", k == 3 ? "--cascade " : "",
                 k == 3 ? corder : "", pay, js);
        int st;
        char *out = test_run(cmd, &st);
        CHECK(st == 0, "route eval status %d: %s", st, out);
        free(out);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/route_check.py %s %s %s %s %s %s 2>&1", tab, js, split, pair, corder, pay);
        out = test_run(cmd, &st);
        if (st == 77) { free(out); SKIP_TEST("*** numpy missing: route_check.py NOT run ***"); }
        CHECK(st == 0, "route_check.py (table %d) disagrees:\n%s", k, out);
        free(out);
    }
}

static void test_cli_errors_and_files(void) {
    if (access(test_pika_bin(), X_OK) != 0) SKIP_TEST("*** %s not built: CLI NOT checked ***", test_pika_bin());
    const char *dir = test_tmpdir();
    char tab[512], cmd[2048];
    snprintf(tab, sizeof tab, "%s/bad.jsonl", dir);
    write_file(tab, ROW("a", "s", "0.5", "1", "test") ROW("a", "l", "0.5", "1", "test") ROW("b", "l", "0.5", "1", "test"));
    snprintf(cmd, sizeof cmd, "%s route eval --table %s 2>&1", test_pika_bin(), tab);
    int st;
    char *out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "bad.jsonl:3: id 'b' has no row for arm 's'") && strchr(out, '\n') == out + strlen(out) - 1,
          "missing arm: status %d, '%s'", st, out);
    free(out);
    snprintf(tab, sizeof tab, "%s/ok.jsonl", dir);
    write_random_table(tab, 200, 3, 5);
    char router[512], rep[512];
    snprintf(router, sizeof router, "%s/router.json", dir);
    snprintf(cmd, sizeof cmd, "%s route calibrate --table %s --split val --target-accuracy 0.5 --probe arm1=p1.json -o %s --json",
             test_pika_bin(), tab, router);
    out = test_run(cmd, &st);
    CHECK(st == 0 && strstr(out, "\"lambda\"") && strstr(out, "\"eval\""), "calibrate: %d %s", st, out);
    free(out);
    size_t n;
    char *r = pika_read_file(router, &n);
    CHECK(r && strstr(r, "\"pika-router\"") && strstr(r, "\"c_tilde\"") && strstr(r, "\"p1.json\""), "router file");
    free(r);
    snprintf(cmd, sizeof cmd, "%s route calibrate --table %s --max-share nope=0.2 2>&1", test_pika_bin(), tab);
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "no arm 'nope'"), "unknown arm: %s", out);
    free(out);
    snprintf(rep, sizeof rep, "%s/rep", dir);
    snprintf(cmd, sizeof cmd, "%s route report --table %s --out %s --bootstrap 100 >/dev/null 2>&1", test_pika_bin(), tab, rep);
    out = test_run(cmd, &st);
    CHECK(st == 0, "route report status %d", st);
    free(out);
    char md[600], html[600];
    snprintf(md, sizeof md, "%s/report.md", rep);
    snprintf(html, sizeof html, "%s/report.html", rep);
    char *m = pika_read_file(md, &n), *h = pika_read_file(html, &n);
    CHECK(m && strstr(m, "best single arm") && strstr(m, "AIQ"), "report.md");
    CHECK(h && strstr(h, "<table>") && (strstr(h, "data:image/png;base64,") || strstr(h, "gnuplot failed")), "report.html self-contained");
    free(m);
    free(h);
}

int main(void) {
    RUN(test_norm_costs);
    RUN(test_policies_hand);
    RUN(test_eval_hand);
    RUN(test_degenerate);
    RUN(test_frontier_metrics);
    RUN(test_bootstrap);
    RUN(test_calibrate);
    RUN(test_reader);
    RUN(test_build);
    RUN(test_cli_vs_python);
    RUN(test_cli_errors_and_files);
    return test_summary("route");
}
