/* route_report.c — `pika route report`: the cost–accuracy plot (gnuplot: single arms as labelled points,
 * the utility sweep, its Pareto frontier, cascade points, oracle and random), the table with bootstrap CIs,
 * as report.md and a self-contained report.html (the PNG embedded as a base64 data URI). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/route.h"
#include "pika/util.h"

static void html_esc(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

static void label(const pika_route_table *t, const pika_route_point *p, uint64_t seed, char *b, size_t n) {
    if (p->policy == PIKA_POL_ALWAYS) snprintf(b, n, "always %s", t->arms[p->arm]);
    else if (!isnan(p->lambda)) snprintf(b, n, "%s λ=%.3f", pika_route_policy_name(p->policy), p->lambda);
    else if (p->policy == PIKA_POL_CASCADE) snprintf(b, n, "cascade th=%.2f", p->threshold);
    else if (p->policy == PIKA_POL_RANDOM) snprintf(b, n, "random (seed %llu)", (unsigned long long)seed);
    else snprintf(b, n, "%s", pika_route_policy_name(p->policy));
}

/* The report's rows: every single arm, best single, savings points, the Pareto points, max_prob, min_cost,
 * random, oracle, cascade points. Written as a Markdown table (md=1) or an HTML table. */
static void rows_out(FILE *f, const pika_route_table *t, const pika_route_result *r, int md) {
    if (md) fprintf(f, "| policy | accuracy | cost | cost / query | calls |\n|---|---:|---:|---:|---|\n");
    else fprintf(f, "<table><tr><th>policy</th><th>accuracy</th><th>cost</th><th>cost / query</th><th>calls</th></tr>\n");
    for (int i = 0; i < r->n_pts; i++) {
        const pika_route_point *p = &r->pts[i];
        int on_front = 0;
        for (int k = 0; k < r->n_pareto; k++) on_front |= r->pareto[k] == i;
        if (p->policy == PIKA_POL_UTILITY && !on_front) continue;
        if (p->policy == PIKA_POL_ORACLE_UTILITY) continue;
        char lab[128], calls[1024] = "";
        label(t, p, r->seed, lab, sizeof lab);
        if (on_front) strcat(lab, " (Pareto)");
        size_t off = 0;
        for (int a = 0; a < t->n_arms && off < sizeof calls - 64; a++)
            if (p->s.calls[a]) off += (size_t)snprintf(calls + off, sizeof calls - off, "%s%s %lld", off ? ", " : "", t->arms[a], (long long)p->s.calls[a]);
        if (md)
            fprintf(f, "| %s | %.4f | %.6g | %.6g | %s |\n", lab, p->s.accuracy, p->s.cost, p->s.cost / (double)p->s.n, calls);
        else {
            fputs("<tr><td>", f);
            html_esc(f, lab);
            fprintf(f, "</td><td>%.4f</td><td>%.6g</td><td>%.6g</td><td>", p->s.accuracy, p->s.cost, p->s.cost / (double)p->s.n);
            html_esc(f, calls);
            fputs("</td></tr>\n", f);
        }
    }
    if (!md) fputs("</table>\n", f);
}

static void summary_lines(FILE *f, const pika_route_table *t, const pika_route_result *r, const char *li, const char *le) {
    const pika_route_point *b = &r->pts[r->best_single];
    fprintf(f, "%sbest single arm: %s, accuracy %.4f, cost %.6g%s\n", li, t->arms[b->arm], b->s.accuracy, b->s.cost, le);
    if (r->savings_at >= 0)
        fprintf(f, "%ssavings at the best single arm's accuracy: %.1f%% (utility λ=%.4f: accuracy %.4f, cost %.6g)%s\n", li,
                100 * r->savings, r->pts[r->savings_at].lambda, r->pts[r->savings_at].s.accuracy, r->pts[r->savings_at].s.cost, le);
    else fprintf(f, "%ssavings at the best single arm's accuracy: none — no utility point reaches %.4f%s\n", li, b->s.accuracy, le);
    if (r->savings_at >= 0 && r->pts[r->savings_at].s.reader_cost > 0)
        fprintf(f, "%scounting the probes' reader-prefill overhead (%.6g, which the paper does not count), that point saves %.1f%%%s\n", li,
                r->pts[r->savings_at].s.reader_cost, 100 * r->savings_reader, le);
    if (r->savings99_at >= 0)
        fprintf(f, "%ssavings at 99%% of its accuracy: %.1f%% (λ=%.4f: accuracy %.4f)%s\n", li, 100 * r->savings99,
                r->pts[r->savings99_at].lambda, r->pts[r->savings99_at].s.accuracy, le);
    else fprintf(f, "%ssavings at 99%% of its accuracy: none%s\n", li, le);
    fprintf(f, "%sAIQ (area under the non-decreasing convex hull / cost range): utility router %.4f, zero router (mixing single arms) %.4f%s\n",
            li, r->aiq_router, r->aiq_zero, le);
    if (r->has_pair)
        fprintf(f, "%s%s → %s: APGR %.4f, CPT(50%%) %.1f%%, CPT(80%%) %.1f%%%s\n", li, t->arms[r->pair_weak], t->arms[r->pair_strong],
                r->pgr.apgr, 100 * r->pgr.cpt50, 100 * r->pgr.cpt80, le);
    if (r->has_boot) {
        const pika_route_point *m = &r->pts[r->match_point];
        fprintf(f, "%sbootstrap 95%% CIs (seed %llu, over questions): best single accuracy [%.4f, %.4f], cost [%.6g, %.6g]; router λ=%.4f "
                   "accuracy %.4f [%.4f, %.4f], cost %.6g [%.6g, %.6g]%s\n",
                li, (unsigned long long)r->seed, r->boot.acc_lo[0], r->boot.acc_hi[0], r->boot.cost_lo[0], r->boot.cost_hi[0], m->lambda,
                m->s.accuracy, r->boot.acc_lo[1], r->boot.acc_hi[1], m->s.cost, r->boot.cost_lo[1], r->boot.cost_hi[1], le);
        fprintf(f, "%spaired bootstrap, router − best single accuracy: %+.4f [%+.4f, %+.4f], p = %.3f%s\n", li, r->boot.diff,
                r->boot.diff_lo, r->boot.diff_hi, r->boot.p_value, le);
    }
    fprintf(f, "%scosts are generation costs summed over the %lld %s questions (the paper's accounting); c̃ from the train split's mean "
               "cost per arm (all rows when there is no train split); the probes' reader overhead (table field reader_cost) is "
               "reported apart%s\n",
            li, (long long)r->n, pika_route_split_name(r->split), le);
}

int pika_route_report(const pika_route_table *t, const pika_route_result *r, const char *dir, const char *title) {
    if (pika_mkdir_p(dir)) return -1;
    /* plot data: one block per series */
    FILE *d = pika_fopen_in(dir, "route.dat");
    if (!d) return -1;
    const int series[] = {PIKA_POL_UTILITY, PIKA_POL_CASCADE, PIKA_POL_ORACLE, PIKA_POL_RANDOM, PIKA_POL_ORACLE_UTILITY};
    for (int s = 0; s < 5; s++) {
        fprintf(d, "# %s\n", pika_route_policy_name(series[s]));
        int any = 0;
        for (int i = 0; i < r->n_pts; i++)
            if (r->pts[i].policy == series[s]) { fprintf(d, "%.10g %.10g\n", r->pts[i].s.cost, r->pts[i].s.accuracy); any = 1; }
        if (!any) fprintf(d, "NaN NaN\n");
        fprintf(d, "\n\n");
    }
    fprintf(d, "# pareto\n");
    for (int k = 0; k < r->n_pareto; k++) fprintf(d, "%.10g %.10g\n", r->pts[r->pareto[k]].s.cost, r->pts[r->pareto[k]].s.accuracy);
    if (!r->n_pareto) fprintf(d, "NaN NaN\n");
    fprintf(d, "\n\n# arms\n");
    for (int i = 0; i < r->n_pts; i++)
        if (r->pts[i].policy == PIKA_POL_ALWAYS) fprintf(d, "%.10g %.10g \"%s\"\n", r->pts[i].s.cost, r->pts[i].s.accuracy, t->arms[r->pts[i].arm]);
    fclose(d);
    FILE *g = pika_fopen_in(dir, "route.gp");
    if (!g) return -1;
    fprintf(g, "set terminal pngcairo noenhanced size 900,600\nset output 'route.png'\n"
               "set title 'cost vs accuracy (%s split)'\nset xlabel 'total cost'\nset ylabel 'accuracy'\nset key bottom right\nset grid\n"
               "plot 'route.dat' index 0 with linespoints pt 7 ps 0.6 lc rgb '#4477aa' title 'utility p - λ·c̃', \\\n"
               "     'route.dat' index 5 with lines lw 2 lc rgb '#222222' title 'Pareto frontier', \\\n"
               "     'route.dat' index 1 with points pt 5 ps 1 lc rgb '#ee7733' title 'cascade', \\\n"
               "     'route.dat' index 4 with lines dt 2 lc rgb '#999999' title 'oracle utility', \\\n"
               "     'route.dat' index 2 with points pt 9 ps 1.6 lc rgb '#228833' title 'oracle', \\\n"
               "     'route.dat' index 3 with points pt 13 ps 1.6 lc rgb '#aa3377' title 'random', \\\n"
               "     'route.dat' index 6 using 1:2 with points pt 7 ps 1.5 lc rgb '#cc3311' title 'single arms', \\\n"
               "     'route.dat' index 6 using 1:2:3 with labels offset 1,0.7 left notitle\n",
            pika_route_split_name(r->split));
    fclose(g);
    int plotted = pika_gnuplot_run(dir, "route.gp") == 0;
    char png[4096];
    snprintf(png, sizeof png, "%s/route.png", dir);
    size_t plen = 0;
    char *img = plotted ? pika_read_file(png, &plen) : NULL;
    FILE *md = pika_fopen_in(dir, "report.md");
    if (!md) { free(img); return -1; }
    fprintf(md, "# pika route report: %s\n\n", title);
    fprintf(md, "%lld questions (%s split), %d arms.\n\n", (long long)r->n, pika_route_split_name(r->split), t->n_arms);
    if (img) fprintf(md, "![cost vs accuracy](route.png)\n\n");
    else fprintf(md, "(gnuplot failed or is missing: route.dat and route.gp are written, no plot)\n\n");
    summary_lines(md, t, r, "- ", "");
    fprintf(md, "\n## Arms\n\n| arm | mean cost (train) | c̃ |\n|---|---:|---:|\n");
    for (int a = 0; a < t->n_arms; a++) fprintf(md, "| %s | %.6g | %.4f |\n", t->arms[a], r->mean_cost[a], r->ct[a]);
    fprintf(md, "\n## Policies (utility sweep: Pareto points only)\n\n");
    rows_out(md, t, r, 1);
    fclose(md);
    FILE *h = pika_fopen_in(dir, "report.html");
    if (!h) { free(img); return -1; }
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pika route report</title>\n"
          "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,td:last-child{text-align:left}</style>"
          "</head><body>\n<h1>pika route report: ",
          h);
    html_esc(h, title);
    fprintf(h, "</h1>\n<p>%lld questions (%s split), %d arms.</p>\n", (long long)r->n, pika_route_split_name(r->split), t->n_arms);
    if (img) {
        char *b64 = pika_base64_encode(img, plen);
        fprintf(h, "<img alt=\"cost vs accuracy\" src=\"data:image/png;base64,%s\">\n", b64);
        free(b64);
    } else fputs("<p>(gnuplot failed or is missing: no plot)</p>\n", h);
    fputs("<ul>\n", h);
    summary_lines(h, t, r, "<li>", "</li>");
    fputs("</ul>\n<h2>Arms</h2>\n<table><tr><th>arm</th><th>mean cost (train)</th><th>c̃</th></tr>\n", h);
    for (int a = 0; a < t->n_arms; a++) {
        fputs("<tr><td>", h);
        html_esc(h, t->arms[a]);
        fprintf(h, "</td><td>%.6g</td><td>%.4f</td></tr>\n", r->mean_cost[a], r->ct[a]);
    }
    fputs("</table>\n<h2>Policies (utility sweep: Pareto points only)</h2>\n", h);
    rows_out(h, t, r, 0);
    fputs("</body></html>\n", h);
    fclose(h);
    free(img);
    return 0;
}
