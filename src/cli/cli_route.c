/* cli_route.c — `pika route table|eval|calibrate|report`: flag parsing and printing over route.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/route.h"
#include "pika/util.h"

static const char ROUTE_USAGE[] =
    "usage:\n"
    "  pika route table --arm name=N,labels=FILE,pred=FILE,price_in=X,price_out=Y[,k=K][,target=FIELD]\n"
    "                   [,prefill=C][,prefill_price=X] [--arm ...]... [--val-frac F] -o TABLE.jsonl\n"
    "      cost = (tokens_in*price_in + total_tokens_out*(k/n)*price_out)/1e6 per question (target default\n"
    "      majority_vote_is_correct); reader_cost = prefill + tokens_in*prefill_price/1e6 (the probe's own\n"
    "      overhead, reported apart from cost);\n"
    "      split from the labels' split field (absent: test); --val-frac moves that share of the non-train ids\n"
    "      (by id hash) to val.\n"
    "  pika route eval --table TABLE.jsonl [--split test] [eval flags] [--json]\n"
    "  pika route calibrate --table TABLE.jsonl [--split val] [--eval-split test]\n"
    "                   (--budget COST_PER_QUERY | --target-accuracy A | --max-share ARM=S)\n"
    "                   [--lambdas 0:1:50] [--probe ARM=FILE]... [-o ROUTER.json] [--json]\n"
    "                   [--policy utility|cascade [--cascade ARM1,ARM2,..] [--thresholds LIST] [--cascade-cost final|all]]\n"
    "      picks λ (or the cascade threshold) on --split and reports it on --eval-split\n"
    "  pika route report --table TABLE.jsonl --out DIR [--split test] [--title T] [eval flags]\n"
    "  pika route log --db FILE.db [--json | --jsonl]   summarise a pika serve decision log\n"
    "eval flags:\n"
    "  --lambdas A:B:N | L1,L2,...   utility λ grid (default 0:1:50 = linspace(0, 1, 50))\n"
    "  --thresholds LIST             cascade thresholds (default 0.1,...,0.9; one threshold for every step)\n"
    "  --cascade ARM1,ARM2,...       cascade order (default: arms by normalised cost)\n"
    "  --cascade-cost final|all      pay only the final arm (default) or every tried arm\n"
    "  --pair WEAK,STRONG            RouteLLM APGR and CPT(50%), CPT(80%) for two arms\n"
    "  --seed S                      random policy and bootstrap seed (default 42)\n"
    "  --bootstrap B                 bootstrap resamples for the CIs (default 1000; 0 skips)\n";

static int arm_index(const pika_route_table *t, const char *name) {
    for (int a = 0; a < t->n_arms; a++)
        if (!strcmp(t->arms[a], name)) return a;
    return -1;
}

static double *parse_doubles(const char *s, int *n) {
    /* A:B:N linspace, or a comma list */
    double a, b;
    int k;
    char tail;
    if (sscanf(s, "%lf:%lf:%d%c", &a, &b, &k, &tail) == 3) {
        if (k < 1) pika_die("'%s': N must be >= 1", s);
        double *v = pika_malloc(sizeof(double) * (size_t)k);
        for (int i = 0; i < k; i++) v[i] = k == 1 ? a : a + (b - a) * (double)i / (double)(k - 1);
        *n = k;
        return v;
    }
    int cap = 8, m = 0;
    double *v = pika_malloc(sizeof(double) * (size_t)cap);
    const char *p = s;
    while (*p) {
        char *e;
        double x = strtod(p, &e);
        if (e == p || !isfinite(x) || (*e && *e != ',')) pika_die("'%s': expected A:B:N or a comma-separated list of numbers", s);
        if (m == cap) v = pika_realloc(v, sizeof(double) * (size_t)(cap *= 2));
        v[m++] = x;
        p = *e ? e + 1 : e;
    }
    if (!m) pika_die("'%s': empty list", s);
    *n = m;
    return v;
}

typedef struct {
    const char *table, *split, *lambdas, *thresholds, *cascade, *cascade_cost, *pair, *out_dir, *title;
    uint64_t seed;
    int n_boot, json;
} eval_args;

static int eval_flag(eval_args *e, int argc, char **argv, int *i) {
    const char *f = argv[*i];
#define VAL() (*i + 1 < argc ? argv[++*i] : (pika_die("%s needs a value", f), ""))
    if (!strcmp(f, "--table")) e->table = VAL();
    else if (!strcmp(f, "--split")) e->split = VAL();
    else if (!strcmp(f, "--lambdas")) e->lambdas = VAL();
    else if (!strcmp(f, "--thresholds")) e->thresholds = VAL();
    else if (!strcmp(f, "--cascade")) e->cascade = VAL();
    else if (!strcmp(f, "--cascade-cost")) e->cascade_cost = VAL();
    else if (!strcmp(f, "--pair")) e->pair = VAL();
    else if (!strcmp(f, "--seed")) e->seed = strtoull(VAL(), NULL, 10);
    else if (!strcmp(f, "--bootstrap")) e->n_boot = atoi(VAL());
    else if (!strcmp(f, "--json")) e->json = 1;
    else if (!strcmp(f, "--out")) e->out_dir = VAL();
    else if (!strcmp(f, "--title")) e->title = VAL();
    else return 0;
#undef VAL
    return 1;
}

static int run_eval(eval_args *e, pika_route_table *t, pika_route_result *r) {
    if (!e->table) { fprintf(stderr, "pika: route needs --table FILE\n%s", ROUTE_USAGE); return 2; }
    if (pika_route_table_read(e->table, t)) pika_die("%s", pika_last_error());
    pika_route_eval_opts o = {0};
    o.split = pika_route_split_parse(e->split ? e->split : "test", 1);
    if (o.split < 0) pika_die("--split: '%s' is not train, val, test or all", e->split);
    double *lam = NULL, *th = NULL;
    if (e->lambdas) lam = parse_doubles(e->lambdas, &o.n_lambdas);
    o.lambdas = lam;
    if (e->thresholds) th = parse_doubles(e->thresholds, &o.n_thresholds);
    o.thresholds = th;
    int order[PIKA_ROUTE_MAX_ARMS];
    if (e->cascade) {
        char *s = pika_strdup(e->cascade), *save = NULL;
        for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int a = arm_index(t, tok);
            if (a < 0) pika_die("--cascade: no arm '%s' in %s", tok, e->table);
            if (o.n_cascade == PIKA_ROUTE_MAX_ARMS) pika_die("--cascade: too many arms");
            order[o.n_cascade++] = a;
        }
        free(s);
        if (o.n_cascade < 2) pika_die("--cascade: needs at least two arms");
        o.cascade_order = order;
    }
    if (e->cascade_cost) {
        if (!strcmp(e->cascade_cost, "all")) o.cascade_cost_all = 1;
        else if (strcmp(e->cascade_cost, "final")) pika_die("--cascade-cost: 'final' or 'all', not '%s'", e->cascade_cost);
    }
    o.pair_weak = o.pair_strong = -1;
    if (e->pair) {
        char *s = pika_strdup(e->pair), *c = strchr(s, ',');
        if (!c) pika_die("--pair: expected WEAK,STRONG");
        *c = 0;
        o.pair_weak = arm_index(t, s);
        o.pair_strong = arm_index(t, c + 1);
        if (o.pair_weak < 0 || o.pair_strong < 0) pika_die("--pair: no arm '%s' in %s", o.pair_weak < 0 ? s : c + 1, e->table);
        free(s);
    }
    o.seed = e->seed ? e->seed : 42;
    o.n_boot = e->n_boot;
    int rc = pika_route_eval(t, &o, r);
    free(lam);
    free(th);
    if (rc) pika_die("%s", pika_last_error());
    return 0;
}

static void print_json(const pika_route_table *t, const pika_route_result *r) {
    char *j = pika_route_result_json(t, r);
    puts(j);
    free(j);
}

static void point_label(const pika_route_table *t, const pika_route_point *p, uint64_t seed, char *b, size_t n) {
    if (p->policy == PIKA_POL_ALWAYS) snprintf(b, n, "always %s", t->arms[p->arm]);
    else if (!isnan(p->lambda)) snprintf(b, n, "%s λ=%.4f", pika_route_policy_name(p->policy), p->lambda);
    else if (p->policy == PIKA_POL_CASCADE) snprintf(b, n, "cascade th=%.2f", p->threshold);
    else if (p->policy == PIKA_POL_RANDOM) snprintf(b, n, "random (seed %llu)", (unsigned long long)seed);
    else snprintf(b, n, "%s", pika_route_policy_name(p->policy));
}

static void print_text(const pika_route_table *t, const pika_route_result *r) {
    printf("split %s: %lld questions, %d arms\n", pika_route_split_name(r->split), (long long)r->n, t->n_arms);
    printf("%-28s %9s %14s %12s  calls\n", "policy", "accuracy", "cost", "cost/query");
    for (int i = 0; i < r->n_pts; i++) {
        const pika_route_point *p = &r->pts[i];
        char lab[96];
        point_label(t, p, r->seed, lab, sizeof lab);
        printf("%-28s %9.4f %14.6g %12.6g ", lab, p->s.accuracy, p->s.cost, p->s.cost / (double)p->s.n);
        for (int a = 0; a < t->n_arms; a++) printf(" %s=%lld", t->arms[a], (long long)p->s.calls[a]);
        printf("\n");
    }
    const pika_route_point *b = &r->pts[r->best_single];
    printf("best_single: %s accuracy %.4f cost %.6g\n", t->arms[b->arm], b->s.accuracy, b->s.cost);
    printf("pareto (utility):");
    for (int i = 0; i < r->n_pareto; i++)
        printf(" [λ=%.4f %.4f %.4g]", r->pts[r->pareto[i]].lambda, r->pts[r->pareto[i]].s.accuracy, r->pts[r->pareto[i]].s.cost);
    printf("\n");
    if (r->savings_at >= 0)
        printf("savings: %.1f%% at λ=%.4f (accuracy %.4f >= best single %.4f)\n", 100 * r->savings, r->pts[r->savings_at].lambda,
               r->pts[r->savings_at].s.accuracy, b->s.accuracy);
    else printf("savings: none (no utility point reaches the best single arm's accuracy %.4f)\n", b->s.accuracy);
    if (r->savings_at >= 0 && r->pts[r->savings_at].s.reader_cost > 0)
        printf("savings counting the probes' reader overhead (%.6g): %.1f%%\n", r->pts[r->savings_at].s.reader_cost, 100 * r->savings_reader);
    if (r->savings99_at >= 0)
        printf("savings at 99%% of its accuracy: %.1f%% at λ=%.4f (accuracy %.4f)\n", 100 * r->savings99,
               r->pts[r->savings99_at].lambda, r->pts[r->savings99_at].s.accuracy);
    else printf("savings at 99%% of its accuracy: none\n");
    printf("AIQ: utility %.4f, zero router %.4f\n", r->aiq_router, r->aiq_zero);
    if (r->has_pair)
        printf("pair %s -> %s: accuracy %.4f -> %.4f, APGR %.4f, CPT(50%%) %.1f%%, CPT(80%%) %.1f%%\n", t->arms[r->pair_weak],
               t->arms[r->pair_strong], r->pgr.r_weak, r->pgr.r_strong, r->pgr.apgr, 100 * r->pgr.cpt50, 100 * r->pgr.cpt80);
    if (r->has_boot) {
        const pika_route_point *m = &r->pts[r->match_point];
        printf("bootstrap 95%% CI (seed %llu): best_single accuracy [%.4f, %.4f] cost [%.6g, %.6g]; router λ=%.4f accuracy %.4f "
               "[%.4f, %.4f] cost %.6g [%.6g, %.6g]\n",
               (unsigned long long)r->seed, r->boot.acc_lo[0], r->boot.acc_hi[0], r->boot.cost_lo[0], r->boot.cost_hi[0], m->lambda,
               m->s.accuracy, r->boot.acc_lo[1], r->boot.acc_hi[1], m->s.cost, r->boot.cost_lo[1], r->boot.cost_hi[1]);
        printf("paired bootstrap, router − best_single accuracy: %+.4f [%+.4f, %+.4f], p = %.3f\n", r->boot.diff, r->boot.diff_lo,
               r->boot.diff_hi, r->boot.p_value);
    }
}

static int route_table_cmd(int argc, char **argv) {
    pika_route_arm_spec arms[PIKA_ROUTE_MAX_ARMS];
    char *specs[PIKA_ROUTE_MAX_ARMS];
    int n = 0;
    const char *out = NULL;
    double val_frac = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arm") && i + 1 < argc) {
            if (n == PIKA_ROUTE_MAX_ARMS) pika_die("too many --arm");
            pika_route_arm_spec *s = &arms[n];
            memset(s, 0, sizeof *s);
            s->price_in = s->price_out = NAN;
            char *spec = specs[n++] = pika_strdup(argv[++i]), *save = NULL;
            for (char *kv = strtok_r(spec, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq) pika_die("--arm: '%s' is not KEY=VALUE", kv);
                *eq = 0;
                const char *v = eq + 1;
                char *end;
                if (!strcmp(kv, "name")) s->name = v;
                else if (!strcmp(kv, "labels")) s->labels = v;
                else if (!strcmp(kv, "pred")) s->pred = v;
                else if (!strcmp(kv, "target")) s->target = v;
                else if (!strcmp(kv, "price_in") || !strcmp(kv, "price_out") || !strcmp(kv, "prefill") || !strcmp(kv, "k") ||
                           !strcmp(kv, "prefill_price")) {
                    double x = strtod(v, &end);
                    if (end == v || *end || !isfinite(x) || x < 0) pika_die("--arm: %s=%s is not a number >= 0", kv, v);
                    if (!strcmp(kv, "price_in")) s->price_in = x;
                    else if (!strcmp(kv, "price_out")) s->price_out = x;
                    else if (!strcmp(kv, "prefill")) s->prefill = x;
                    else if (!strcmp(kv, "prefill_price")) s->prefill_price = x;
                    else s->k = (int)x;
                } else pika_die("--arm: unknown key '%s' (name, labels, pred, price_in, price_out, k, target, prefill, prefill_price)", kv);
            }
            if (!s->name || !s->labels || !s->pred || isnan(s->price_in) || isnan(s->price_out))
                pika_die("--arm needs name=, labels=, pred=, price_in= and price_out=");
        } else if (!strcmp(argv[i], "--val-frac") && i + 1 < argc) {
            val_frac = atof(argv[++i]);
            if (!(val_frac >= 0 && val_frac <= 1)) pika_die("--val-frac: expected a number in [0,1]");
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else { fprintf(stderr, "pika: route table: unknown or incomplete flag '%s'\n%s", argv[i], ROUTE_USAGE); return 2; }
    }
    if (!n || !out) { fprintf(stderr, "pika: route table needs --arm ... and -o FILE\n%s", ROUTE_USAGE); return 2; }
    pika_route_table t;
    if (pika_route_table_build(arms, n, val_frac, &t)) pika_die("%s", pika_last_error());
    FILE *f = fopen(out, "w");
    if (!f) pika_die("%s: cannot write", out);
    int rc = pika_route_table_write(f, &t);
    if (fclose(f) || rc) pika_die("%s: write error", out);
    int64_t ns[3] = {0};
    for (int64_t q = 0; q < t.n_q; q++) ns[t.split[q]]++;
    int has_prefill = 0;
    for (int a = 0; a < n; a++) has_prefill |= arms[a].prefill > 0 || arms[a].prefill_price > 0;
    printf("%s: %lld questions x %d arms (train %lld, val %lld, test %lld)%s\n", out, (long long)t.n_q, t.n_arms, (long long)ns[0],
           (long long)ns[1], (long long)ns[2], has_prefill ? "; reader_cost holds the probes' prefill overhead" : "");
    pika_route_table_free(&t);
    for (int a = 0; a < n; a++) free(specs[a]);
    return 0;
}

static int route_eval_cmd(int argc, char **argv, int report) {
    eval_args e = {0};
    e.n_boot = 1000;
    for (int i = 1; i < argc; i++)
        if (!eval_flag(&e, argc, argv, &i)) {
            fprintf(stderr, "pika: route: unknown flag '%s'\n%s", argv[i], ROUTE_USAGE);
            return 2;
        }
    if (report && !e.out_dir) { fprintf(stderr, "pika: route report needs --out DIR\n%s", ROUTE_USAGE); return 2; }
    pika_route_table t;
    pika_route_result r;
    int rc = run_eval(&e, &t, &r);
    if (rc) return rc;
    if (report) {
        if (pika_route_report(&t, &r, e.out_dir, e.title ? e.title : e.table)) pika_die("%s", pika_last_error());
        printf("%s/report.md, %s/report.html\n", e.out_dir, e.out_dir);
    } else if (e.json) print_json(&t, &r);
    else print_text(&t, &r);
    pika_route_result_free(&r);
    pika_route_table_free(&t);
    return 0;
}

static int route_calibrate_cmd(int argc, char **argv) {
    const char *table = NULL, *split = "val", *eval_split = "test", *lambdas = NULL, *out = NULL;
    const char *policy = "utility", *cascade = NULL, *thresholds = NULL, *cascade_cost = NULL;
    const char *probes[PIKA_ROUTE_MAX_ARMS];
    int n_probes = 0, json = 0, have = 0;
    pika_route_cal_opts o = {0};
    const char *share = NULL;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        int hv = i + 1 < argc;
        if (!strcmp(f, "--table") && hv) table = argv[++i];
        else if (!strcmp(f, "--split") && hv) split = argv[++i];
        else if (!strcmp(f, "--eval-split") && hv) eval_split = argv[++i];
        else if (!strcmp(f, "--lambdas") && hv) lambdas = argv[++i];
        else if (!strcmp(f, "--policy") && hv) policy = argv[++i];
        else if (!strcmp(f, "--cascade") && hv) cascade = argv[++i];
        else if (!strcmp(f, "--thresholds") && hv) thresholds = argv[++i];
        else if (!strcmp(f, "--cascade-cost") && hv) cascade_cost = argv[++i];
        else if (!strcmp(f, "-o") && hv) out = argv[++i];
        else if (!strcmp(f, "--json")) json = 1;
        else if (!strcmp(f, "--probe") && hv) {
            if (n_probes == PIKA_ROUTE_MAX_ARMS) pika_die("too many --probe");
            probes[n_probes++] = argv[++i];
        } else if ((!strcmp(f, "--budget") || !strcmp(f, "--target-accuracy")) && hv) {
            char *end;
            o.value = strtod(argv[++i], &end);
            if (*end || !isfinite(o.value) || o.value < 0) pika_die("%s: expected a number >= 0", f);
            o.objective = !strcmp(f, "--budget") ? PIKA_CAL_BUDGET : PIKA_CAL_TARGET_ACC;
            have++;
        } else if (!strcmp(f, "--max-share") && hv) {
            share = argv[++i];
            o.objective = PIKA_CAL_MAX_SHARE;
            have++;
        } else { fprintf(stderr, "pika: route calibrate: unknown or incomplete flag '%s'\n%s", f, ROUTE_USAGE); return 2; }
    }
    if (!table || have != 1) {
        fprintf(stderr, "pika: route calibrate needs --table and exactly one of --budget, --target-accuracy, --max-share\n%s", ROUTE_USAGE);
        return 2;
    }
    pika_route_table t;
    if (pika_route_table_read(table, &t)) pika_die("%s", pika_last_error());
    o.cal_split = pika_route_split_parse(split, 1);
    o.eval_split = pika_route_split_parse(eval_split, 1);
    if (o.cal_split < 0 || o.eval_split < 0) pika_die("--split/--eval-split: train, val, test or all");
    o.share_arm = -1;
    if (share) {
        const char *eq = strrchr(share, '=');
        if (!eq) pika_die("--max-share: expected ARM=SHARE");
        char *name = pika_strndup(share, (size_t)(eq - share));
        o.share_arm = arm_index(&t, name);
        if (o.share_arm < 0) pika_die("--max-share: no arm '%s' in %s", name, table);
        free(name);
        char *end;
        o.value = strtod(eq + 1, &end);
        if (*end || !(o.value >= 0 && o.value <= 1)) pika_die("--max-share: SHARE must be in [0,1]");
    }
    double *lam = NULL, *th = NULL;
    if (lambdas) lam = parse_doubles(lambdas, &o.n_lambdas);
    o.lambdas = lam;
    if (strcmp(policy, "utility") && strcmp(policy, "cascade")) pika_die("--policy: 'utility' or 'cascade', not '%s'", policy);
    o.cascade = !strcmp(policy, "cascade");
    if (!o.cascade && (cascade || thresholds || cascade_cost)) pika_die("--cascade, --thresholds, --cascade-cost need --policy cascade");
    int order[PIKA_ROUTE_MAX_ARMS];
    if (cascade) {
        char *s = pika_strdup(cascade), *save = NULL;
        for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int a = arm_index(&t, tok);
            if (a < 0) pika_die("--cascade: no arm '%s' in %s", tok, table);
            if (o.n_cascade == PIKA_ROUTE_MAX_ARMS) pika_die("--cascade: too many arms");
            order[o.n_cascade++] = a;
        }
        free(s);
        if (o.n_cascade < 2) pika_die("--cascade: needs at least two arms");
        o.cascade_order = order;
    }
    if (thresholds) th = parse_doubles(thresholds, &o.n_thresholds);
    o.thresholds = th;
    if (cascade_cost) {
        if (!strcmp(cascade_cost, "all")) o.cascade_cost_all = 1;
        else if (strcmp(cascade_cost, "final")) pika_die("--cascade-cost: 'final' or 'all', not '%s'", cascade_cost);
    }
    pika_route_cal c;
    if (pika_route_calibrate(&t, &o, &c)) pika_die("%s", pika_last_error());
    free(lam);
    free(th);
    char what[64];
    if (o.cascade) snprintf(what, sizeof what, "cascade threshold = %.4f", c.threshold);
    else snprintf(what, sizeof what, "λ = %.4f", c.lambda);
    int64_t nc = c.cal.n, ne = c.eval.n;
    if (json) {
        char *j = pika_route_cal_json(&t, &o, &c, split, eval_split);
        puts(j);
        free(j);
    } else {
        printf("calibrated on %s (%lld questions): %s%s\n", split, (long long)nc, what,
               c.feasible ? "" : " (no grid value met the objective; the closest was taken)");
        const pika_route_score *S[2] = {&c.cal, &c.eval};
        const char *nm[2] = {split, eval_split};
        for (int k = 0; k < 2; k++) {
            printf("  %-5s accuracy %.4f  cost/query %.6g  share", nm[k], S[k]->accuracy, S[k]->cost / (double)S[k]->n);
            for (int a = 0; a < t.n_arms; a++) printf(" %s=%.3f", t.arms[a], (double)S[k]->calls[a] / (double)S[k]->n);
            printf("\n");
        }
        printf("  drift (%s − %s): accuracy %+.4f, cost/query %+.6g (%lld test questions)\n", eval_split, split,
               c.eval.accuracy - c.cal.accuracy, c.eval.cost / (double)ne - c.cal.cost / (double)nc, (long long)ne);
    }
    if (out) {
        if (pika_route_router_write(out, &t, &o, &c, table, probes, n_probes)) pika_die("%s", pika_last_error());
        if (!json) printf("router: %s\n", out);
    }
    pika_route_table_free(&t);
    return 0;
}

int cmd_route(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(ROUTE_USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "table")) return route_table_cmd(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return route_eval_cmd(argc - 1, argv + 1, 0);
    if (!strcmp(argv[1], "report")) return route_eval_cmd(argc - 1, argv + 1, 1);
    if (!strcmp(argv[1], "calibrate")) return route_calibrate_cmd(argc - 1, argv + 1);
    if (!strcmp(argv[1], "log")) return cmd_route_log(argc - 1, argv + 1);
    fprintf(stderr, "pika: route: unknown subcommand '%s'\n%s", argv[1], ROUTE_USAGE);
    return 2;
}
