/* route.h — offline routing over a pool of arms: the routing table, the policies of the PIKA paper
 * (always-arm, utility p − λ·c̃, max_prob, min_cost, random, oracle, oracle utility, cascade), their
 * cost/accuracy points, the Pareto frontier, savings against the best single arm, RouterBench AIQ,
 * RouteLLM APGR / CPT, bootstrap CIs with a paired test, calibration of λ on a validation split, the
 * routing-table JSONL reader/writer and builder (route_table.c), and the report (route_report.c).
 *
 * An *arm* is one pool configuration (model, k, temperature, reasoning setting). The table holds, for
 * every question q and arm a (row-major, index q * n_arms + a):
 *   p        calibrated predicted success in [0, 1]
 *   correct  realised success, 0/1 or a success rate in [0, 1]
 *   cost     cost of answering q with a (any unit: USD, FLOPs; >= 0)
 * and one split per question (train / val / test).
 *
 * Conventions (shared by every policy):
 *   - c̃_a = min-max normalisation of arm a's mean cost over the train split (all questions when the
 *     table has no train question); when every arm has the same mean cost (0/0) c̃_a = 0 for all arms.
 *   - ties always go to the arm that comes first in table order.
 *   - a point's accuracy is the mean `correct` of the chosen arms, its cost the *sum* over questions.
 * The policy and metric functions do no I/O.
 */
#ifndef PIKA_ROUTE_H
#define PIKA_ROUTE_H

#include <stdint.h>
#include <stdio.h>

#define PIKA_ROUTE_MAX_ARMS 64

enum { PIKA_SPLIT_TRAIN = 0, PIKA_SPLIT_VAL = 1, PIKA_SPLIT_TEST = 2, PIKA_SPLIT_ALL = 3 };
/* "train" / "val" / "test" -> PIKA_SPLIT_*, -1 otherwise ("all" -> PIKA_SPLIT_ALL when allow_all). */
int pika_route_split_parse(const char *s, int allow_all);
const char *pika_route_split_name(int split);

typedef struct {
    int n_arms;
    char **arms;        /* [n_arms] names, table order */
    int64_t n_q;
    char **ids;         /* [n_q] question ids, first-seen order */
    double *p;          /* [n_q * n_arms] */
    double *correct;    /* [n_q * n_arms] */
    double *cost;       /* [n_q * n_arms] */
    double *tokens_in;  /* [n_q * n_arms], NaN where absent */
    double *tokens_out; /* [n_q * n_arms], NaN where absent */
    double *reader_cost;/* [n_q * n_arms] cost of evaluating arm a's probe on q (its reader prefill); 0 when absent */
    int8_t *split;      /* [n_q] PIKA_SPLIT_TRAIN / VAL / TEST */
} pika_route_table;

/* Allocate an empty table of n_q questions x n_arms arms (names and ids NULL, tokens NaN). */
void pika_route_table_alloc(pika_route_table *t, int n_arms, int64_t n_q);
void pika_route_table_free(pika_route_table *t);

/* ---- table I/O (route_table.c) ----
 * JSONL, one object per (question, arm): {"id", "arm", "p", "correct", "cost", "split"[, "tokens_in",
 * "tokens_out", "reader_cost"]}; id a string or integer; correct a number in [0,1] or a boolean. Arms are numbered in
 * first-seen order, questions too. Errors name "path:line": invalid JSON, a missing or out-of-range field,
 * NaN / infinite numbers, an unknown split, a duplicate (id, arm), a split that differs between rows of
 * one id, and an id that lacks a row for some arm. */
int pika_route_table_read(const char *path, pika_route_table *t);
int pika_route_table_write(FILE *f, const pika_route_table *t);

/* One arm of `pika route table`: labels + predictions of one pool configuration. */
typedef struct {
    const char *name;
    const char *labels;      /* labels JSONL (pika labels) */
    const char *pred;        /* predictions JSONL (pika probe predict): {"id", "prob"} */
    const char *target;      /* labels field used as `correct` (default majority_vote_is_correct) */
    double price_in, price_out; /* cost units per 1M tokens */
    int k;                   /* samples this arm draws (0 = all n of the labels); output tokens scale by k/n */
    double prefill;          /* reader-prefill cost per question (the probe's own overhead) -> reader_cost */
    double prefill_price;    /* ... or per 1M prompt tokens: reader_cost += tokens_in·prefill_price / 1e6 */
} pika_route_arm_spec;
/* Build a table over the ids of the first arm's prediction file (every arm must predict every id; each
 * id needs a labels row). cost = (tokens_in·price_in + total_tokens_out·(k/n)·price_out) / 1e6; reader_cost =
 * prefill + tokens_in·prefill_price / 1e6 (kept apart from cost: the paper does not count it).
 * split: the labels' "split" field ("train"/"val"/"test"; absent -> test); with val_frac > 0, questions
 * not in train go to val when (FNV-1a(id) mod 10000) < val_frac·10000, else test. */
int pika_route_table_build(const pika_route_arm_spec *arms, int n_arms, double val_frac, pika_route_table *t);

/* ---- costs and rows ---- */
/* mean_cost[a] over train (or all) questions, and c̃[a] (see conventions). */
void pika_route_norm_costs(const pika_route_table *t, double *mean_cost, double *ct);
/* Question indices of a split (PIKA_SPLIT_ALL: every question); malloc'ed, *n may be 0. */
int64_t *pika_route_rows(const pika_route_table *t, int split, int64_t *n);

/* ---- policies: choice[i] = arm for question rows[i] ---- */
/* argmax_a y − λ·c̃_a with y = p (or the true `correct` when use_correct: the oracle utility). */
void pika_route_utility(const pika_route_table *t, const int64_t *rows, int64_t n, const double *ct, double lambda,
                        int use_correct, int *choice);
void pika_route_max_prob(const pika_route_table *t, const int64_t *rows, int64_t n, int *choice);
void pika_route_min_cost(const pika_route_table *t, int64_t n, const double *ct, int *choice);
/* Uniform arm per question from a splitmix64 stream seeded with seed. */
void pika_route_random(const pika_route_table *t, int64_t n, uint64_t seed, int *choice);
/* The cheapest arm by c̃ whose correct >= 0.5, else the cheapest arm. */
void pika_route_oracle(const pika_route_table *t, const int64_t *rows, int64_t n, const double *ct, int *choice);
/* Cascade over order[0..n_order): escalate from order[j] while p <= thresholds[j]; order[n_order-1] is the
 * fallback. tried[i] (may be NULL) = how many arms of the order were tried (the chosen one included). */
void pika_route_cascade(const pika_route_table *t, const int64_t *rows, int64_t n, const int *order, int n_order,
                        const double *thresholds, int *choice, int *tried);

typedef struct {
    double accuracy;   /* mean correct */
    double cost;       /* summed cost (the paper's accounting: generation only) */
    double reader_cost;/* summed probe overhead of the policy (see pika_route_reader_cost); not in cost */
    int64_t n;
    int64_t calls[PIKA_ROUTE_MAX_ARMS];
} pika_route_score;
/* Score choices. With order and tried non-NULL the cost of question i is the sum over order[0..tried[i]). */
void pika_route_score_choices(const pika_route_table *t, const int64_t *rows, int64_t n, const int *choice,
                              const int *order, const int *tried, pika_route_score *s);

/* Probe overhead of a policy, summed over questions: utility and max_prob read every arm's probe
 * (Σ_a reader_cost), a cascade the probes of the arms it tried except a final fallback, the others none. */
double pika_route_reader_cost(const pika_route_table *t, const int64_t *rows, int64_t n, int policy, const int *order,
                              int n_order, const int *tried);

/* ---- metrics over (cost, accuracy) points ---- */
/* Pareto frontier: sort by cost (ties: higher accuracy first, then index), keep points whose accuracy
 * strictly exceeds (by > 1e-12) every cheaper kept point's. idx_out[n]: kept indices, cost-sorted. Returns count. */
int pika_route_pareto(const double *cost, const double *acc, int n, int *idx_out);
/* RouterBench AIQ: area under the non-decreasing upper convex hull of the points over [c_lo, c_hi] divided by
 * (c_hi − c_lo); the hull is flat right of its most expensive point and 0 left of its cheapest one.
 * NaN when c_hi <= c_lo. */
double pika_route_aiq(const double *cost, const double *acc, int n, double c_lo, double c_hi);
/* Cheapest point with accuracy >= frac·best_acc − 1e-12; returns its index or -1. */
int pika_route_cheapest_at(const double *cost, const double *acc, int n, double best_acc, double frac);

/* RouteLLM APGR / CPT for two arms: questions are sent to `strong` in order of increasing p_weak (ties: table
 * order of the questions); for m = 0..n calls the accuracy r(m) and PGR(m) = (r(m) − r_weak)/(r_strong − r_weak).
 * APGR = mean of PGR at the 10 call shares 10%, 20%, ..., 100% (m = ceil(share·n)); CPT(x) = min m/n with
 * PGR(m) >= x, in [0,1]. All NaN when r_strong == r_weak. */
typedef struct {
    double r_weak, r_strong, apgr, cpt50, cpt80;
} pika_route_pgr;
void pika_route_apgr(const pika_route_table *t, const int64_t *rows, int64_t n, int weak, int strong,
                     pika_route_pgr *out);

/* Bootstrap over questions (seeded): 95% percentile CIs of accuracy and cost of choice a and b, and the
 * paired difference of accuracy (b − a) with a two-sided p-value 2·min(P(d<=0), P(d>=0)), capped at 1. */
typedef struct {
    double acc_lo[2], acc_hi[2], cost_lo[2], cost_hi[2];
    double diff, diff_lo, diff_hi, p_value;
} pika_route_boot;
void pika_route_bootstrap(const pika_route_table *t, const int64_t *rows, int64_t n, const int *choice_a,
                          const int *choice_b, int n_boot, uint64_t seed, pika_route_boot *out);

/* ---- the full offline evaluation (what `pika route eval` prints) ---- */
enum {
    PIKA_POL_ALWAYS, PIKA_POL_UTILITY, PIKA_POL_MAX_PROB, PIKA_POL_MIN_COST, PIKA_POL_RANDOM, PIKA_POL_ORACLE,
    PIKA_POL_ORACLE_UTILITY, PIKA_POL_CASCADE
};
const char *pika_route_policy_name(int policy);

typedef struct {
    int policy;
    int arm;           /* always: the arm; else -1 */
    double lambda;     /* utility / oracle_utility; else NaN */
    double threshold;  /* cascade: the threshold of every non-final arm; else NaN */
    pika_route_score s;
} pika_route_point;

typedef struct {
    int split;               /* evaluated split */
    int n_lambdas;           /* default 50: linspace(0, 1, 50) */
    const double *lambdas;   /* overrides n_lambdas points in [0,1] when non-NULL */
    const double *thresholds;/* cascade grid (default 0.1, 0.2, ..., 0.9) */
    int n_thresholds;
    const int *cascade_order;/* default: arms sorted by c̃ (ties: table order) */
    int n_cascade;
    int cascade_cost_all;    /* 1: a cascade pays every tried arm */
    uint64_t seed;           /* random policy and bootstrap (default 42 when 0) */
    int n_boot;              /* bootstrap resamples (0 skips; default 1000 in the CLI) */
    int pair_weak, pair_strong; /* APGR/CPT pair (-1: none) */
} pika_route_eval_opts;

typedef struct {
    int split;
    int64_t n;
    double mean_cost[PIKA_ROUTE_MAX_ARMS], ct[PIKA_ROUTE_MAX_ARMS];
    pika_route_point *pts;
    int n_pts;
    int best_single;         /* index into pts */
    int *pareto;             /* indices into pts (utility points), cost-sorted */
    int n_pareto;
    int savings_at, savings99_at; /* index into pts or -1 */
    double savings, savings99;    /* 1 − cost/cost(best_single); NaN when none */
    double savings_reader;        /* 1 − (cost + reader_cost)/cost(best_single) at savings_at; NaN when none */
    double aiq_router, aiq_zero;
    int has_pair;
    int pair_weak, pair_strong;
    pika_route_pgr pgr;
    int match_point;          /* router point compared with best_single (savings point, else best-accuracy utility) */
    int has_boot;
    pika_route_boot boot;     /* [0] = best_single, [1] = match_point */
    uint64_t seed;
    int cascade_order[PIKA_ROUTE_MAX_ARMS];
    int n_cascade;
    int cascade_cost_all;
} pika_route_result;

int pika_route_eval(const pika_route_table *t, const pika_route_eval_opts *o, pika_route_result *r);
void pika_route_result_free(pika_route_result *r);

/* ---- calibration: pick λ on one split, report it on another ---- */
enum { PIKA_CAL_BUDGET, PIKA_CAL_TARGET_ACC, PIKA_CAL_MAX_SHARE };
typedef struct {
    int objective;          /* PIKA_CAL_* */
    double value;           /* budget (mean cost per query), target accuracy, or max share in [0,1] */
    int share_arm;          /* PIKA_CAL_MAX_SHARE */
    int cal_split, eval_split;
    int n_lambdas;          /* default 50 */
    const double *lambdas;
    int cascade;            /* 1: calibrate a cascade's threshold instead of λ */
    const int *cascade_order; /* default: arms by c̃ */
    int n_cascade;
    const double *thresholds; /* default 0.1..0.9 */
    int n_thresholds;
    int cascade_cost_all;
} pika_route_cal_opts;
typedef struct {
    double lambda;          /* utility: the chosen λ (NaN for a cascade) */
    double threshold;       /* cascade: the chosen threshold of every non-final arm (NaN for utility) */
    int cascade_order[PIKA_ROUTE_MAX_ARMS];
    int n_cascade;
    int feasible;           /* 0: no λ met the objective on cal_split; the closest one was taken */
    pika_route_score cal, eval;
    double mean_cost[PIKA_ROUTE_MAX_ARMS], ct[PIKA_ROUTE_MAX_ARMS];
} pika_route_cal;
/* Budget: the most accurate λ whose cost per query <= budget (ties: cheaper); fallback the cheapest.
 * Target: the cheapest λ with accuracy >= target; fallback the most accurate. Max share: the most accurate λ
 * whose share of share_arm <= value; fallback the smallest share. With cascade = 1 the same rules choose
 * a threshold of the cascade grid instead. */
int pika_route_calibrate(const pika_route_table *t, const pika_route_cal_opts *o, pika_route_cal *c);

/* ---- report (route_report.c): report.md, report.html (plots embedded as base64), route.dat/.gp, plot ---- */
/* JSON formats (route_json.c; each a malloc'ed string, cJSON_Print layout).
 * pika_route_result_json: what `route eval --json` prints: split, n, arms (mean_cost, c_tilde), cascade order
 *   and cost rule, every policy point (policy, arm | lambda | thresholds | seed, accuracy, cost,
 *   cost_per_query, reader_cost, calls per arm), best_single, pareto, savings, aiq, pair (APGR/CPT),
 *   bootstrap.
 * pika_route_cal_json: what `route calibrate --json` prints (objective, λ or threshold, feasible, and
 *   accuracy / cost / share per arm on the calibration and evaluation splits).
 * pika_route_router_write: the router file {"format": "pika-router", "version": 1, "policy", "lambda" |
 *   "threshold" + "cascade_order" + "cascade_cost", "objective", "value", "table", "arms": [{"name",
 *   "mean_cost", "c_tilde", "probe"}]}; probes[] are "ARM=FILE" (an unknown ARM is an error). Written
 *   atomically. 0 or -1 + error. */
char *pika_route_result_json(const pika_route_table *t, const pika_route_result *r);
char *pika_route_cal_json(const pika_route_table *t, const pika_route_cal_opts *o, const pika_route_cal *c, const char *split,
                          const char *eval_split);
int pika_route_router_write(const char *out, const pika_route_table *t, const pika_route_cal_opts *o, const pika_route_cal *c,
                            const char *table, const char *const *probes, int n_probes);

int pika_route_report(const pika_route_table *t, const pika_route_result *r, const char *out_dir, const char *title);

#endif
