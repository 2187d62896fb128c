/* math_grade.c — owns math answer extraction from model text and answer equivalence: MATH-style string
 * normalisation, structure splitting (tuples, intervals, sets, lists, unions, matrices, \pm) and exact /
 * numeric comparison through latex_expr. See include/pika/math_grade.h for the rules. */
#include "pika/math_grade.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/latex_expr.h"
#include "pika/util.h"

#define REL_TOL_CONST 1e-9 /* closed-form constants (\sqrt2 vs \frac{2}{\sqrt2}) */
#define REL_TOL_VARS 1e-9  /* expressions evaluated at random points */
#define N_POINTS 6
#define MAX_DEPTH 8

void pika_extract_opts_default(pika_extract_opts *o) {
    o->number_fallback = 1;
    o->mcq = 0;
    o->degrees = PIKA_DEG_DROP;
    o->percent = PIKA_PCT_LENIENT;
    o->units = PIKA_UNITS_DROP;
    o->mode = PIKA_MODE_FULL;
}

/* What normalisation removed from an answer, for the policies in pika_extract_opts. */
typedef struct {
    int percent;    /* a \% or % was removed */
    int degree;     /* a ^\circ / ° was removed */
    char unit[48];  /* letters of the removed unit words, lower case ("cm", "squareunits") */
} nflags;

static void unit_note(nflags *f, const char *u, size_t n) {
    size_t k = strlen(f->unit);
    for (size_t i = 0; i < n && k + 1 < sizeof f->unit; i++)
        if (isalpha((unsigned char)u[i])) f->unit[k++] = (char)tolower((unsigned char)u[i]);
    f->unit[k] = 0;
}

/* ---------------------------------------------------------------- string helpers */

static char *dup_trim(const char *p, size_t n) {
    while (n > 0 && isspace((unsigned char)*p)) { p++; n--; }
    while (n > 0 && isspace((unsigned char)p[n - 1])) n--;
    return pika_strndup(p, n);
}

/* Replace every occurrence of `from` by `to` in s (returns a new string, frees s). */
static char *replace_all(char *s, const char *from, const char *to) {
    if (!strstr(s, from)) return s;
    pika_buf b = {0};
    pika_buf_add(&b, "", 0);
    size_t fl = strlen(from), tl = strlen(to);
    const char *p = s, *q;
    while ((q = strstr(p, from))) {
        pika_buf_add(&b, p, (size_t)(q - p));
        pika_buf_add(&b, to, tl);
        p = q + fl;
    }
    pika_buf_add(&b, p, strlen(p));
    free(s);
    return b.s;
}

/* Replace a LaTeX command \name only when not followed by a letter. */
static char *replace_cmd(char *s, const char *name, const char *to) {
    size_t nl = strlen(name);
    int found = 0;
    for (const char *q = s; (q = strchr(q, '\\')) && !found; q++) found = !strncmp(q + 1, name, nl);
    if (!found) return s;
    pika_buf b = {0};
    pika_buf_add(&b, "", 0);
    const char *p = s;
    while (*p) {
        if (p[0] == '\\' && !strncmp(p + 1, name, nl) && !isalpha((unsigned char)p[1 + nl])) {
            pika_buf_add(&b, to, strlen(to));
            p += 1 + nl;
        } else pika_buf_addc(&b, *p++);
    }
    free(s);
    return b.s;
}

/* Index of the brace matching the '{' at s[i], or -1. */
static long match_brace(const char *s, size_t i) {
    int d = 0;
    for (size_t j = i; s[j]; j++) {
        if (s[j] == '\\' && s[j + 1]) { j++; continue; }
        if (s[j] == '{') d++;
        else if (s[j] == '}' && --d == 0) return (long)j;
    }
    return -1;
}

/* ---------------------------------------------------------------- extraction */

char *pika_math_last_boxed(const char *text) {
    const char *last = NULL;
    size_t cmdlen = 0;
    for (const char *p = text; (p = strchr(p, '\\')); p++) {
        if (!strncmp(p, "\\boxed", 6) && !isalpha((unsigned char)p[6])) { last = p; cmdlen = 6; }
        else if (!strncmp(p, "\\fbox", 5) && !isalpha((unsigned char)p[5])) { last = p; cmdlen = 5; }
    }
    if (!last) return NULL;
    const char *q = last + cmdlen;
    while (*q == ' ') q++;
    if (*q == '{') {
        long e = match_brace(q, 0);
        if (e < 0) return NULL;
        return dup_trim(q + 1, (size_t)e - 1);
    }
    if (q == last + cmdlen) return NULL; /* \boxed followed by something odd */
    size_t n = strcspn(q, "$\n");
    /* "\boxed 5" ends at whitespace */
    size_t w = strcspn(q, " \t$\n");
    if (w < n) n = w;
    return n ? dup_trim(q, n) : NULL;
}

static const char *strcasestr_last(const char *h, const char *needle) {
    const char *last = NULL;
    size_t n = strlen(needle);
    for (const char *p = h; *p; p++)
        if (!strncasecmp(p, needle, n)) last = p;
    return last;
}

/* Is the text between two boxes only a list separator ("$, $", " and ", "\\text{ or }", "\\quad")? */
static int list_separator(const char *p, const char *e) {
    while (p < e) {
        if (strchr(" $,;{}()\t", *p)) { p++; continue; }
        if (e - p >= 3 && !strncmp(p, "and", 3)) { p += 3; continue; }
        if (e - p >= 2 && !strncmp(p, "or", 2)) { p += 2; continue; }
        if (isalpha((unsigned char)*p) && !isalpha((unsigned char)p[1])) { /* a label "x =" before the next box */
            const char *q = p + 1;
            while (q < e && *q == ' ') q++;
            if (q < e && *q == '=') { p = q + 1; continue; }
        }
        if (*p == '\\') {
            const char *q = p + 1;
            while (q < e && isalpha((unsigned char)*q)) q++;
            size_t n = (size_t)(q - p - 1);
            if ((n == 4 && !strncmp(p + 1, "text", 4)) || (n == 4 && !strncmp(p + 1, "quad", 4)) ||
                (n == 5 && !strncmp(p + 1, "qquad", 5)) || (n == 6 && !strncmp(p + 1, "mathrm", 6)) || n == 0) {
                p = n ? q : p + 2;
                continue;
            }
        }
        return 0;
    }
    return 1;
}

/* The inline answer whose content is [c0, c1) (c1 = its closing delimiter), joined with ", " to the next
 * open...close spans that only list separators divide from it ("$3$ or $5$", "\\(1\\) and \\(2\\)"). */
static char *inline_answers(const char *c0, const char *c1, const char *open, const char *close) {
    size_t ol = strlen(open), cl = strlen(close);
    pika_buf b = {0};
    pika_buf_add(&b, "", 0); /* "" (not NULL) for an empty answer */
    char *r = dup_trim(c0, (size_t)(c1 - c0));
    pika_buf_puts(&b, r);
    free(r);
    const char *e3, *e4;
    for (const char *q = c1 + cl; (e3 = strstr(q, open)) && (e4 = strstr(e3 + ol, close)) && list_separator(q, e3); q = e4 + cl) {
        char *x = dup_trim(e3 + ol, (size_t)(e4 - e3 - ol));
        pika_buf_add(&b, ", ", 2);
        pika_buf_puts(&b, x);
        free(x);
    }
    return b.s;
}

/* Clean an answer phrase taken from prose: unwrap $..$, \(..\), strip trailing '.', leading ':'. */
static char *clean_phrase(const char *p, size_t n) {
    char *s = dup_trim(p, n);
    char *t = s;
    while (*t == ':' || *t == ' ' || *t == '*') t++;
    /* inline math inside the phrase: take its content */
    const char *d1 = strchr(t, '$');
    if (d1) {
        const char *d2 = strchr(d1 + 1, '$');
        if (d2 == d1 + 1) { d1 = d2; d2 = strchr(d1 + 1, '$'); } /* $$...$$ */
        if (d2) {
            char *r = inline_answers(d1 + 1, d2, "$", "$");
            free(s);
            return r;
        }
    }
    const char *m1 = strstr(t, "\\(");
    if (m1) {
        const char *m2 = strstr(m1 + 2, "\\)");
        if (m2) {
            char *r = inline_answers(m1 + 2, m2, "\\(", "\\)");
            free(s);
            return r;
        }
    }
    size_t l = strlen(t);
    while (l > 0 && (t[l - 1] == '.' || t[l - 1] == '*' || isspace((unsigned char)t[l - 1]))) l--;
    char *r = dup_trim(t, l);
    free(s);
    return r;
}

/* Last number in text: -?digits with optional thousands commas, decimals, or a/b. */
static char *last_number(const char *text) {
    const char *best = NULL;
    size_t best_n = 0;
    const char *p = text;
    while (*p) {
        if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
            const char *st = p;
            if (st > text && st[-1] == '-') st--;
            const char *q = p;
            while (isdigit((unsigned char)*q) || (*q == ',' && isdigit((unsigned char)q[1]) && isdigit((unsigned char)q[2]) &&
                                                  isdigit((unsigned char)q[3]) && !isdigit((unsigned char)q[4])) ||
                   (*q == '.' && isdigit((unsigned char)q[1])))
                q++;
            if (*q == '/' && isdigit((unsigned char)q[1])) {
                q++;
                while (isdigit((unsigned char)*q)) q++;
            }
            best = st;
            best_n = (size_t)(q - st);
            p = q;
        } else p++;
    }
    return best ? pika_strndup(best, best_n) : NULL;
}

/* A lone choice letter in s: "C", "(C)", "C)", "\text{(C)}", "C." → 'C', else 0. */
static char choice_letter(const char *s) {
    char buf[64];
    size_t k = 0;
    for (const char *p = s; *p && k < sizeof buf - 1; p++) {
        if (!strncmp(p, "\\text", 5) || !strncmp(p, "\\textbf", 7) || !strncmp(p, "\\mathrm", 7)) {
            while (isalpha((unsigned char)p[1])) p++;
            continue;
        }
        if (strchr("(){}[]$ .:*", *p)) continue;
        buf[k++] = *p;
    }
    buf[k] = 0;
    if (k == 1 && toupper((unsigned char)buf[0]) >= 'A' && toupper((unsigned char)buf[0]) <= 'J') return (char)toupper((unsigned char)buf[0]);
    return 0;
}

/* The text after a reasoning model's thinking block: after the last "</think>"; NULL (and *unfinished)
 * when a "<think>" is never closed — nothing inside the thinking is graded. */
static const char *after_think(const char *text, int *unfinished) {
    *unfinished = 0;
    const char *last = NULL;
    for (const char *p = text; (p = strstr(p, "</think>")); p += 8) last = p;
    if (last) return last + 8;
    if (strstr(text, "<think>")) { *unfinished = 1; return NULL; }
    return text;
}

static int split_top(const char *s, const char *sep, char ***parts_out);
static void free_parts(char **p, int n);

/* Several \boxed{} on the line of the last one ("$\boxed{2}$ and $\boxed{3}$"): their contents joined
 * with ", "; NULL when that line has only one. */
static char *boxed_line(const char *text) {
    const char *last = NULL;
    for (const char *p = text; (p = strchr(p, '\\')); p++)
        if ((!strncmp(p, "\\boxed", 6) && !isalpha((unsigned char)p[6])) || (!strncmp(p, "\\fbox", 5) && !isalpha((unsigned char)p[5])))
            last = p;
    if (!last) return NULL;
    const char *ls = last;
    while (ls > text && ls[-1] != '\n') ls--;
    pika_buf b = {0};
    int n = 0, all_same = 1;
    const char *prev_end = NULL, *first = NULL;
    size_t first_n = 0;
    for (const char *p = ls; p <= last; p++) {
        if (*p != '\\') continue;
        size_t cl = !strncmp(p, "\\boxed", 6) && !isalpha((unsigned char)p[6]) ? 6 : !strncmp(p, "\\fbox", 5) && !isalpha((unsigned char)p[5]) ? 5 : 0;
        if (!cl || p[cl] != '{') continue;
        long e = match_brace(p + cl, 0);
        if (e < 0) continue;
        if (prev_end && !list_separator(prev_end, p)) { /* prose between: only the boxes after it count */
            free(b.s);
            b = (pika_buf){0};
            n = 0;
            all_same = 1;
        }
        const char *c = p + cl + 1;
        size_t cn = (size_t)e - 1;
        if (!n) { first = c; first_n = cn; }
        else if (cn != first_n || strncmp(c, first, cn)) all_same = 0;
        if (n++) pika_buf_add(&b, ", ", 2);
        pika_buf_add(&b, c, cn);
        p += cl + (size_t)e;
        prev_end = p + 1;
    }
    if (n < 2 || all_same) { free(b.s); return NULL; }
    /* "\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}": one answer written two ways */
    char **ps;
    int np = split_top(b.s, ",", &ps);
    int same = np == n && n <= 8;
    for (int i = 1; i < np && same; i++) same = pika_math_equiv(ps[0], ps[i]);
    free_parts(ps, np);
    if (same) { free(b.s); return NULL; }
    return b.s;
}

char *pika_math_extract(const char *text, const pika_extract_opts *o) {
    pika_extract_opts def;
    if (!o) { pika_extract_opts_default(&def); o = &def; }
    if (!text) return NULL;
    int unfinished = 0;
    text = after_think(text, &unfinished);
    if (!text) return NULL;
    char *a = boxed_line(text);
    if (!a) a = pika_math_last_boxed(text);
    if (!a) {
        const char *h = NULL;
        for (const char *p = text; (p = strstr(p, "####")); p += 4) h = p;
        if (h) {
            h += 4;
            a = clean_phrase(h, strcspn(h, "\n"));
        }
    }
    if (!a) {
        static const char *markers[] = {"final answer is", "final answer:", "the answer is", "answer is", "answer:",
                                        "answers are", "solutions are", NULL};
        /* markdown bold: "**Answer:** 12", "**Final Answer**: 12" */
        char *plain = NULL;
        const char *orig = text;
        if (strstr(text, "**")) {
            plain = pika_strdup(text);
            char *w = plain;
            for (const char *p = text; *p; p++) {
                if (p[0] == '*' && p[1] == '*') { p++; continue; }
                *w++ = *p;
            }
            *w = 0;
            text = plain;
        }
        const char *best = NULL;
        size_t best_len = 0;
        for (int i = 0; markers[i]; i++) {
            const char *m = strcasestr_last(text, markers[i]);
            if (m && (!best || m > best)) { best = m; best_len = strlen(markers[i]); }
        }
        if (best) {
            const char *h = best + best_len;
            size_t n = strcspn(h, "\n");
            /* stop at the end of the sentence: ". " followed by an uppercase letter */
            for (size_t i = 0; i + 2 < n; i++)
                if (h[i] == '.' && h[i + 1] == ' ' && isupper((unsigned char)h[i + 2])) { n = i; break; }
            a = clean_phrase(h, n);
            if (!*a) { free(a); a = NULL; }
        }
        if (plain) {
            free(plain);
            text = orig;
        }
    }
    if (o->mcq) {
        if (a) {
            char c = choice_letter(a);
            if (!c) { /* "(C) 42" style */
                const char *q = strchr(a, '(');
                if (q && q[1] && q[2] == ')' && toupper((unsigned char)q[1]) >= 'A' && toupper((unsigned char)q[1]) <= 'J')
                    c = (char)toupper((unsigned char)q[1]);
            }
            if (c) { a[0] = c; a[1] = 0; }
            return a;
        }
        const char *last = NULL;
        for (const char *p = text; (p = strchr(p, '(')); p++)
            if (p[1] >= 'A' && p[1] <= 'J' && p[2] == ')') last = p;
        if (last) return pika_strndup(last + 1, 1);
    }
    if (a) return a;
    if (o->number_fallback) return last_number(text);
    return NULL;
}

/* ---------------------------------------------------------------- normalisation */

/* Remove \text{...}-like unit groups that follow other content, with any ^2 after them.
 * A string that is only a text group becomes its content. */
static char *strip_units(char *s, nflags *fl) {
    static const char *cmds[] = {"\\text", "\\textbf", "\\mbox", "\\mathrm", "\\textrm", "\\mathbf", NULL};
    for (int pass = 0; pass < 8; pass++) {
        int changed = 0;
        for (int c = 0; cmds[c] && !changed; c++) {
            size_t cl = strlen(cmds[c]);
            char *p = s;
            while ((p = strstr(p, cmds[c]))) {
                if (isalpha((unsigned char)p[cl])) { p += cl; continue; }
                char *q = p + cl;
                while (*q == ' ') q++;
                if (*q != '{') { p += cl; continue; }
                long e = match_brace(q, 0);
                if (e < 0) { p += cl; continue; }
                char *content = pika_strndup(q + 1, (size_t)e - 1);
                char *after = q + e + 1;
                /* is there content before (other than spaces)? */
                int before = 0;
                for (char *t = s; t < p; t++) if (!isspace((unsigned char)*t) && *t != '$') before = 1;
                int is_unit = 0;
                if (before) {
                    /* content must look like a unit phrase: letters, spaces, some punctuation */
                    int letters = 0, ok = 1;
                    for (char *t = content; *t; t++) {
                        if (isalpha((unsigned char)*t)) letters++;
                        else if (!strchr(" .,/^{}\\-()$0123456789", *t)) ok = 0;
                    }
                    /* \text{ and }, \text{ or } are separators, keep them */
                    char *ct = dup_trim(content, strlen(content));
                    if (!strcmp(ct, "and") || !strcmp(ct, "or") || !strcmp(ct, ",")) ok = 0;
                    free(ct);
                    is_unit = ok && letters > 0;
                }
                pika_buf b = {0};
                pika_buf_add(&b, s, (size_t)(p - s));
                if (is_unit) {
                    unit_note(fl, content, strlen(content));
                    char *t = after;
                    while (*t == ' ') t++;
                    if (*t == '^') { /* unit power: ^2, ^{3} */
                        t++;
                        if (*t == '{') { long e2 = match_brace(t, 0); t = e2 < 0 ? t : t + e2 + 1; }
                        else if (*t) t++;
                        after = t;
                    }
                } else {
                    pika_buf_add(&b, content, strlen(content));
                }
                pika_buf_add(&b, after, strlen(after));
                free(content);
                free(s);
                s = b.s;
                changed = 1;
                break;
            }
        }
        if (!changed) break;
    }
    return s;
}

/* "5 cm", "12 square units", "3.5 dollars": a number followed only by words → the number. */
static char *strip_word_units(char *s, nflags *fl) {
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (!isdigit((unsigned char)*p) && *p != '.') return s;
    while (isdigit((unsigned char)*p) || *p == '.' || *p == ',' || *p == '/') p++;
    const char *num_end = p;
    if (*p != ' ') return s;
    int letters = 0;
    for (const char *q = p; *q; q++) {
        if (isalpha((unsigned char)*q)) letters++;
        else if (*q != ' ' && *q != '.' && *q != '^' && !isdigit((unsigned char)*q)) return s;
        else if (isdigit((unsigned char)*q) && q[-1] != '^') return s;
    }
    /* at least one word of 2+ letters */
    int run = 0, ok = 0;
    for (const char *q = p; *q; q++) {
        run = isalpha((unsigned char)*q) ? run + 1 : 0;
        if (run >= 2) ok = 1;
    }
    if (!ok || !letters) return s;
    const char *w = num_end;
    while (*w == ' ') w++;
    if (!strcmp(w, "percent")) fl->percent = 1; /* "50 percent" is 50\% */
    else unit_note(fl, num_end, strlen(num_end));
    char *r = pika_strndup(s, (size_t)(num_end - s));
    free(s);
    return r;
}

/* "1,234,567" (optionally signed, with decimals) → without commas. */
static int is_thousands(const char *s) {
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    int lead = 0;
    while (isdigit((unsigned char)*p)) { p++; lead++; }
    if (lead < 1 || lead > 3 || *p != ',') return 0;
    while (*p == ',') {
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) || !isdigit((unsigned char)p[3])) return 0;
        p += 4;
    }
    if (*p == '.') { p++; if (!isdigit((unsigned char)*p)) return 0; while (isdigit((unsigned char)*p)) p++; }
    return *p == 0;
}

/* Steps shared by both outputs; keeps spaces (the expression parser needs "\pi r"). */
static char *normalize_keep_spaces(const char *ans, nflags *fl) {
    memset(fl, 0, sizeof *fl);
    char *s = dup_trim(ans, strlen(ans));
    /* surrounding math delimiters */
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(s);
        if (n >= 2 && s[0] == '$' && s[n - 1] == '$') { char *t = dup_trim(s + 1, n - 2); free(s); s = t; continue; }
        if (n >= 4 && (!strncmp(s, "\\(", 2) && !strcmp(s + n - 2, "\\)"))) { char *t = dup_trim(s + 2, n - 4); free(s); s = t; continue; }
        if (n >= 4 && (!strncmp(s, "\\[", 2) && !strcmp(s + n - 2, "\\]"))) { char *t = dup_trim(s + 2, n - 4); free(s); s = t; continue; }
        break;
    }
    /* a \boxed{} answer given as gold */
    if (!strncmp(s, "\\boxed", 6) || !strncmp(s, "\\fbox", 5)) {
        char *b = pika_math_last_boxed(s);
        if (b) { free(s); s = b; }
    }
    s = replace_all(s, "\n", " ");
    s = replace_all(s, "\r", " ");
    int high = 0;
    for (const char *p = s; *p && !high; p++) high = (unsigned char)*p >= 0x80;
    if (high) { /* Unicode math symbols models sometimes print */
    s = replace_all(s, "\xe2\x88\x92", "-");        /* U+2212 minus */
    s = replace_all(s, "\xc3\x97", "\\times ");      /* multiplication sign */
    s = replace_all(s, "\xc2\xb7", "\\cdot ");       /* middle dot */
    s = replace_all(s, "\xcf\x80", "\\pi ");         /* pi */
    s = replace_all(s, "\xe2\x88\x9e", "\\infty ");  /* infinity */
    s = replace_all(s, "\xe2\x88\x9a", "\\sqrt ");   /* square root */
    s = replace_all(s, "\xe2\x89\xa4", "\\le ");     /* less-than or equal */
    s = replace_all(s, "\xe2\x89\xa5", "\\ge ");     /* greater-than or equal */
    }
    s = replace_all(s, "<=", "\\le ");
    s = replace_all(s, ">=", "\\ge ");
    s = replace_all(s, "{,}", ",");
    if (strchr(s, '\\')) {
    s = replace_all(s, "\\!", "");
    s = replace_cmd(s, "dfrac", "\\frac");
    s = replace_cmd(s, "tfrac", "\\frac");
    s = replace_cmd(s, "cfrac", "\\frac");
    s = replace_cmd(s, "dbinom", "\\binom");
    s = replace_cmd(s, "geq", "\\ge");
    s = replace_cmd(s, "leq", "\\le");
    s = replace_cmd(s, "neq", "\\ne");
    s = replace_cmd(s, "geqslant", "\\ge");
    s = replace_cmd(s, "leqslant", "\\le");
    s = replace_cmd(s, "left", "");
    s = replace_cmd(s, "right", "");
    s = replace_cmd(s, "displaystyle", "");
    s = replace_cmd(s, "bigl", "");
    s = replace_cmd(s, "bigr", "");
    s = replace_cmd(s, "Bigl", "");
    s = replace_cmd(s, "Bigr", "");
    s = replace_cmd(s, "varnothing", "\\emptyset ");
    s = replace_cmd(s, "langle", "(");  /* vectors \langle 1, 2 \rangle are tuples */
    s = replace_cmd(s, "rangle", ")");
    }
    /* the passes below only run when their characters occur (each is a scan of the whole answer) */
    /* degrees inside a trigonometric function are an angle to convert (\sin 30^\circ = \frac12): the
     * expression parser reads ^\circ as pi/180 there; elsewhere the mark is a policy (nflags.degree) */
    int trig = strstr(s, "\\sin") || strstr(s, "\\cos") || strstr(s, "\\tan") || strstr(s, "\\cot") ||
               strstr(s, "\\sec") || strstr(s, "\\csc");
    if (!trig && (strstr(s, "\\circ") || strstr(s, "\xc2\xb0") || strstr(s, "\\degree"))) {
        fl->degree = 1;
        s = replace_cmd(s, "degree", "");
        s = replace_all(s, "^{\\circ}", "");
        s = replace_all(s, "^\\circ", "");
        s = replace_all(s, "\\circ", "");
        s = replace_all(s, "\xc2\xb0", ""); /* ° */
    }
    if (strchr(s, '$')) {
        s = replace_all(s, "\\$", "");
        s = replace_all(s, "$", "");
    }
    if (strchr(s, '%')) {
        fl->percent = 1;
        s = replace_all(s, "\\%", "");
        s = replace_all(s, "%", "");
    }
    int bs = strchr(s, '\\') != NULL;
    if (bs) {
        s = replace_all(s, "\\{", "\x01"); /* protect set braces from unit stripping */
        s = replace_all(s, "\\}", "\x02");
        s = strip_units(s, fl);
        s = replace_all(s, "\x01", "\\{");
        s = replace_all(s, "\x02", "\\}");
    }
    /* thin spaces between digit groups: 10\,000 → 10000 */
    if (bs) {
        char *w = s;
        for (const char *p = s; *p;) {
            if (p[0] == '\\' && p[1] == ',' && p > s && isdigit((unsigned char)p[-1]) && isdigit((unsigned char)p[2]) &&
                isdigit((unsigned char)p[3]) && isdigit((unsigned char)p[4]) && !isdigit((unsigned char)p[5])) {
                p += 2;
                continue;
            }
            *w++ = *p++;
        }
        *w = 0;
    }
    if (bs) {
        s = replace_all(s, "\\,", " ");
        s = replace_all(s, "\\;", " ");
        s = replace_all(s, "\\:", " ");
        s = replace_cmd(s, "quad", " ");
        s = replace_cmd(s, "qquad", " ");
    }
    if (strchr(s, '~')) s = replace_all(s, "~", " ");
    /* trailing sentence period */
    char *t = dup_trim(s, strlen(s));
    free(s);
    s = t;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '.' && !(n >= 2 && isdigit((unsigned char)s[n - 2]) && 0)) s[--n] = 0;
    t = dup_trim(s, n);
    free(s);
    s = t;
    s = strip_word_units(s, fl);
    /* thousands separators on a plain number */
    {
        char *ns = pika_strdup(s);
        ns = replace_all(ns, " ", "");
        if (is_thousands(ns)) {
            free(s);
            s = replace_all(ns, ",", "");
        } else free(ns);
    }
    return s;
}

/* The no-space MATH form from a normalize_keep_spaces() result (takes ownership of s). */
static char *nospace_from_kept(char *s, int strip_lhs) {
    s = replace_all(s, " ", "");
    /* \frac12 → \frac{1}{2}, \sqrt3 → \sqrt{3} (MATH fix_fracs / fix_sqrt) */
    pika_buf b = {0};
    pika_buf_add(&b, "", 0);
    for (const char *p = s; *p;) {
        if (!strncmp(p, "\\frac", 5) && !isalpha((unsigned char)p[5])) {
            pika_buf_add(&b, "\\frac", 5);
            p += 5;
            for (int k = 0; k < 2 && *p; k++) {
                if (*p == '{') {
                    long e = match_brace(p, 0);
                    if (e < 0) break;
                    pika_buf_add(&b, p, (size_t)e + 1);
                    p += e + 1;
                } else if (*p != '\\') {
                    pika_buf_addc(&b, '{');
                    pika_buf_addc(&b, *p++);
                    pika_buf_addc(&b, '}');
                } else break;
            }
            continue;
        }
        if (!strncmp(p, "\\sqrt", 5) && p[5] && p[5] != '{' && p[5] != '[' && p[5] != '\\') {
            pika_buf_add(&b, "\\sqrt{", 6);
            pika_buf_addc(&b, p[5]);
            pika_buf_addc(&b, '}');
            p += 6;
            continue;
        }
        pika_buf_addc(&b, *p++);
    }
    free(s);
    s = b.s;
    /* leading "x=" with a short left side */
    char *eq = strchr(s, '=');
    if (strip_lhs && eq && !strchr(eq + 1, '=') && eq - s <= 2 && eq > s && isalpha((unsigned char)s[0])) {
        char *r = pika_strdup(eq + 1);
        free(s);
        s = r;
    }
    /* a/b with integers → \frac{a}{b} */
    {
        const char *sl = strchr(s, '/');
        if (sl && !strchr(sl + 1, '/')) {
            int ok = sl > s && sl[1];
            for (const char *p = s; p < sl && ok; p++) if (!isdigit((unsigned char)*p) && !(p == s && *p == '-')) ok = 0;
            for (const char *p = sl + 1; *p && ok; p++) if (!isdigit((unsigned char)*p)) ok = 0;
            if (ok) {
                pika_buf f = {0};
                pika_buf_add(&f, "\\frac{", 6);
                pika_buf_add(&f, s, (size_t)(sl - s));
                pika_buf_add(&f, "}{", 2);
                pika_buf_add(&f, sl + 1, strlen(sl + 1));
                pika_buf_addc(&f, '}');
                free(s);
                s = f.s;
            }
        }
    }
    return s;
}

static char *normalize_nospace(const char *answer, nflags *fl) {
    return nospace_from_kept(normalize_keep_spaces(answer, fl), 1);
}

char *pika_math_normalize(const char *answer) {
    nflags fl;
    return normalize_nospace(answer, &fl);
}

/* ---------------------------------------------------------------- structure */

/* Split s at top-level occurrences of sep (a char like ',' or a string like "\\cup" / "&" / "\\\\").
 * Depth counts (), [], {}, \{ \}. Returns count; parts malloc'ed and trimmed. */
static int split_top(const char *s, const char *sep, char ***parts_out) {
    size_t sl = strlen(sep);
    char **parts = NULL;
    int np = 0, cap = 0;
    int depth = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        int at_end = *p == 0;
        int hit = 0;
        if (!at_end && depth == 0 && !strncmp(p, sep, sl)) {
            hit = 1;
            if (sep[0] == '\\' && isalpha((unsigned char)sep[1]) && isalpha((unsigned char)p[sl])) hit = 0;
        }
        if (at_end || hit) {
            if (np == cap) { cap = cap ? cap * 2 : 4; parts = pika_realloc(parts, (size_t)cap * sizeof *parts); }
            parts[np++] = dup_trim(start, (size_t)(p - start));
            if (at_end) break;
            p += sl - 1;
            start = p + 1;
            continue;
        }
        if (*p == '\\' && (p[1] == '{' || p[1] == '}')) { depth += p[1] == '{' ? 1 : -1; p++; continue; }
        if (*p == '\\' && p[1] == '\\' && strcmp(sep, "\\\\")) { p++; continue; }
        if (*p == '\\' && p[1]) { /* skip the command name, but keep \begin/\end depth */
            if (!strncmp(p, "\\begin", 6)) depth++;
            else if (!strncmp(p, "\\end", 4)) depth--;
            p++;
            continue;
        }
        if (*p == '(' || *p == '[' || *p == '{') depth++;
        else if (*p == ')' || *p == ']' || *p == '}') depth--;
    }
    *parts_out = parts;
    return np;
}

static void free_parts(char **p, int n) {
    for (int i = 0; i < n; i++) free(p[i]);
    free(p);
}

/* Is the outer bracket pair of s (s[0] .. s[n-1]) one group, i.e. the opener at 0 closes at n-1? */
static int outer_pair(const char *s, size_t open_len, size_t close_len) {
    size_t n = strlen(s);
    if (n < open_len + close_len) return 0;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && (s[i + 1] == '{' || s[i + 1] == '}')) { depth += s[i + 1] == '{' ? 1 : -1; i++; }
        else if (s[i] == '\\' && s[i + 1]) { i++; continue; }
        else if (s[i] == '(' || s[i] == '[' || s[i] == '{') depth++;
        else if (s[i] == ')' || s[i] == ']' || s[i] == '}') depth--;
        if (depth == 0 && i + 1 < n) return 0;
    }
    return depth == 0;
}

typedef enum { K_SCALAR, K_TUPLE, K_SET, K_LIST, K_UNION, K_MATRIX, K_PM } kind;

typedef struct {
    kind k;
    char open, close; /* K_TUPLE brackets */
    int rows, cols;   /* K_MATRIX */
    char **parts;
    int n;
} shape;

static void shape_free(shape *sh) { free_parts(sh->parts, sh->n); }

/* Split a matrix body "a & b \\ c & d" into row-major parts. */
static int matrix_parts(const char *body, shape *sh) {
    char **rows;
    int nr = split_top(body, "\\\\", &rows);
    while (nr > 0 && rows[nr - 1][0] == 0) { free(rows[--nr]); } /* trailing \\ */
    sh->rows = nr;
    sh->cols = -1;
    sh->parts = NULL;
    sh->n = 0;
    for (int r = 0; r < nr; r++) {
        char **cells;
        int nc = split_top(rows[r], "&", &cells);
        if (sh->cols >= 0 && nc != sh->cols) { free_parts(cells, nc); free_parts(rows, nr); return -1; }
        sh->cols = nc;
        sh->parts = pika_realloc(sh->parts, (size_t)(sh->n + nc) * sizeof *sh->parts);
        for (int c = 0; c < nc; c++) sh->parts[sh->n++] = cells[c];
        free(cells);
    }
    free_parts(rows, nr);
    return nr > 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- bounds and counters */

static _Thread_local unsigned long long g_work;
unsigned long long pika_math_work_count(void) { return g_work; }

/* Deepest bracket nesting in s: ( [ { \{ \( \[ and \begin; one linear pass. */
static int max_nesting(const char *s) {
    int d = 0, m = 0;
    for (const char *p = s; *p; p++) {
        int open = 0, close = 0;
        if (*p == '\\') {
            if (p[1] == '{' || p[1] == '(' || p[1] == '[') { open = 1; p++; }
            else if (p[1] == '}' || p[1] == ')' || p[1] == ']') { close = 1; p++; }
            else if (!strncmp(p + 1, "begin", 5)) { open = 1; p += 5; }
            else if (!strncmp(p + 1, "end", 3)) { close = 1; p += 3; }
            else if (p[1]) p++;
        } else if (*p == '(' || *p == '[' || *p == '{') open = 1;
        else if (*p == ')' || *p == ']' || *p == '}') close = 1;
        if (open && ++d > m) m = d;
        if (close && d > 0) d--;
    }
    return m;
}

/* Is the outer bracket pair of s[0..n) one group? Like outer_pair on a prefix of length n. */
static int outer_pair_n(const char *s, size_t n) {
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}')) { depth += s[i + 1] == '{' ? 1 : -1; i++; }
        else if (s[i] == '\\' && i + 1 < n) { i++; continue; }
        else if (s[i] == '(' || s[i] == '[' || s[i] == '{') depth++;
        else if (s[i] == ')' || s[i] == ']' || s[i] == '}') depth--;
        if (depth == 0 && i + 1 < n) return 0;
    }
    return depth == 0;
}

/* ---------------------------------------------------------------- small predicates */

/* Parses as an expression without variables. */
static int is_const(const char *s) {
    pika_expr *e = pika_expr_parse(s);
    if (!e) return 0;
    int r = pika_expr_nvars(e) == 0;
    pika_expr_free(e);
    return r;
}

/* A name on the left of "=" / a relation: x, f(2), a_1, \frac{AB}{CD}, m\angle A, (a, b). Not a number
 * (5 = 3a + b is a statement, not a labelled answer) and not a formula with operators (x^2 + y^2 = 1). */
static int is_label(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 60) return 0;
    if (isdigit((unsigned char)s[0]) || strchr("-+.|", s[0])) return 0;
    if (s[0] == '(' && s[n - 1] == ')' && outer_pair_n(s, n)) {
        char *body = pika_strndup(s + 1, n - 2);
        char **ps;
        int np = split_top(body, ",", &ps);
        free(body);
        int ok = np >= 1;
        for (int i = 0; i < np && ok; i++) ok = is_label(ps[i]);
        free_parts(ps, np);
        return ok;
    }
    /* operators are allowed inside a function's parentheses (f(x+1), P(X=2)), a subscript (a_{n-1}) and
     * an inverse mark (f^{-1}(x)), not elsewhere */
    int depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '_' && p[1] == '{') { long e = match_brace(p + 1, 0); if (e < 0) return 0; p += 1 + e; continue; }
        if (!strncmp(p, "^{-1}", 5)) { p += 4; continue; }
        if (*p == '(' && p > s && (isalpha((unsigned char)p[-1]) || p[-1] == '\'' || p[-1] == '}')) { depth++; continue; }
        if (*p == ')' && depth > 0) { depth--; continue; }
        if (depth) continue;
        if (strchr("+-*/^=<>,;", *p)) return 0;
    }
    if (strstr(s, "\\cdot") || strstr(s, "\\times") || strstr(s, "\\pm") || strstr(s, "\\le") || strstr(s, "\\ge") ||
        strstr(s, "\\in"))
        return 0;
    pika_expr *e = pika_expr_parse(s);
    if (e) {
        int nv = pika_expr_nvars(e);
        pika_expr_free(e);
        return nv > 0;
    }
    for (const char *p = s; *p; p++) {
        if (*p == '\\') { /* \angle is not a name: skip the command word */
            p++;
            while (isalpha((unsigned char)*p)) p++;
            p--;
            continue;
        }
        if (isalpha((unsigned char)*p)) return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- relations and words */

/* Top-level relation operators in s: "<" ">" "\le" "\ge" "\lt" "\gt". Fills up to 3 (pos, len, less,
 * strict); returns the count (4 means "more than 3"). */
typedef struct { size_t pos, len; int less, strict; } relop;

static int find_relops(const char *s, relop *ops) {
    int n = 0, depth = 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        relop r = {i, 0, 0, 0};
        if (c == '\\') {
            const char *q = s + i + 1;
            if ((q[0] == 'l' || q[0] == 'g') && (q[1] == 'e' || q[1] == 't') && !isalpha((unsigned char)q[2])) {
                r.len = 3; r.less = q[0] == 'l'; r.strict = q[1] == 't';
            } else if (q[0] == '{' || q[0] == '}') {
                depth += q[0] == '{' ? 1 : -1;
                i++;
                continue;
            } else {
                if (q[0]) i++;
                continue;
            }
        } else if (c == '<' || c == '>') {
            r.len = 1; r.less = c == '<'; r.strict = 1;
        } else {
            if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
            continue;
        }
        if (depth != 0) { i += r.len - 1; continue; }
        if (n == 3) return 4;
        ops[n++] = r;
        i += r.len - 1;
    }
    return n;
}

/* "x > 3" → "(3, \infty)", "-1 \le x \le 4" → "[-1, 4]", "0 < g(x) < 2" → "(0, 2)"; NULL when s is not
 * a relation between a name and constants. */
static char *relation_to_interval(const char *s) {
    relop ops[3];
    int n = find_relops(s, ops);
    if (n < 1 || n > 2) return NULL;
    char *piece[3];
    size_t st = 0;
    for (int k = 0; k <= n; k++) {
        size_t en = k < n ? ops[k].pos : strlen(s);
        piece[k] = dup_trim(s + st, en - st);
        if (k < n) st = ops[k].pos + ops[k].len;
    }
    char *lo = NULL, *hi = NULL;
    int lo_strict = 1, hi_strict = 1, ok = 0;
    if (n == 1) {
        int less = ops[0].less;
        const char *val = NULL;
        if (is_label(piece[0]) && is_const(piece[1])) val = piece[1];
        else if (is_label(piece[1]) && is_const(piece[0])) { val = piece[0]; less = !less; }
        if (val) {
            ok = 1;
            if (less) { hi = pika_strdup(val); hi_strict = ops[0].strict; }
            else { lo = pika_strdup(val); lo_strict = ops[0].strict; }
        }
    } else if (ops[0].less == ops[1].less && is_label(piece[1]) && is_const(piece[0]) && is_const(piece[2])) {
        ok = 1;
        int a = ops[0].less ? 0 : 2, b = ops[0].less ? 2 : 0;
        lo = pika_strdup(piece[a]);
        hi = pika_strdup(piece[b]);
        lo_strict = ops[0].less ? ops[0].strict : ops[1].strict;
        hi_strict = ops[0].less ? ops[1].strict : ops[0].strict;
    }
    char *r = NULL;
    if (ok) {
        pika_buf b = {0};
        pika_buf_addc(&b, lo && !lo_strict ? '[' : '(');
        pika_buf_puts(&b, lo ? lo : "-\\infty");
        pika_buf_add(&b, ", ", 2);
        pika_buf_puts(&b, hi ? hi : "\\infty");
        pika_buf_addc(&b, hi && !hi_strict ? ']' : ')');
        r = b.s;
    }
    for (int k = 0; k <= n; k++) free(piece[k]);
    free(lo);
    free(hi);
    return r;
}

/* "(1, \infty)" and "(-\infty, 3]" → "(1, 3]" (either order); NULL unless one is a lower and one an upper ray. */
static char *intersect_rays(const char *x, const char *y) {
    static const char *LO = "-\\infty, ", *HI = ", \\infty)";
    for (int k = 0; k < 2; k++) {
        const char *lo = k ? y : x, *hi = k ? x : y; /* lo: (L, \infty) ; hi: (-\infty, H) */
        size_t nl = strlen(lo), nh = strlen(hi);
        if (nl < strlen(HI) + 2 || strcmp(lo + nl - strlen(HI), HI) || !strncmp(lo + 1, LO, strlen(LO))) continue;
        if (nh < strlen(LO) + 3 || hi[0] != '(' || strncmp(hi + 1, LO, strlen(LO)) || !strcmp(hi + nh - strlen(HI), HI)) continue;
        pika_buf b = {0};
        pika_buf_add(&b, lo, nl - strlen(HI)); /* "(L" */
        pika_buf_add(&b, ", ", 2);
        pika_buf_puts(&b, hi + 1 + strlen(LO)); /* "H)" */
        return b.s;
    }
    return NULL;
}

/* Split at top-level words " or " / " and " (also a ", or"). Returns the count; *any_or set when an "or"
 * was among them. */
static int split_words(const char *s, char ***parts_out, int *any_or) {
    char **parts = NULL;
    int np = 0, cap = 0, depth = 0;
    size_t start = 0, n = strlen(s);
    *any_or = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t wl = 0;
        if (i < n && depth == 0 && (i == 0 || s[i - 1] == ' ' || s[i - 1] == ',')) {
            if (!strncmp(s + i, "or", 2) && (s[i + 2] == ' ' || s[i + 2] == '\\')) wl = 2;
            else if (!strncmp(s + i, "and", 3) && (s[i + 3] == ' ' || s[i + 3] == '\\')) wl = 3;
            if (wl && i == 0) wl = 0;
        }
        if (i == n || wl) {
            size_t e = i;
            while (e > start && (s[e - 1] == ' ' || s[e - 1] == ',')) e--;
            if (np == cap) { cap = cap ? 2 * cap : 4; parts = pika_realloc(parts, (size_t)cap * sizeof *parts); }
            parts[np++] = dup_trim(s + start, e - start);
            if (wl == 2) *any_or = 1;
            if (i == n) break;
            start = i + wl;
            i += wl - 1;
            continue;
        }
        if (s[i] == '\\' && (s[i + 1] == '{' || s[i + 1] == '}')) { depth += s[i + 1] == '{' ? 1 : -1; i++; continue; }
        if (s[i] == '\\' && s[i + 1]) { i++; continue; }
        if (s[i] == '(' || s[i] == '[' || s[i] == '{') depth++;
        else if (s[i] == ')' || s[i] == ']' || s[i] == '}') depth--;
    }
    *parts_out = parts;
    return np;
}

/* "a = 1, b = 4" → "(1, 4)"; "x = 2, x = 5" → "2, 5"; NULL when s is not a list of assignments. */
static char *assignments(const char *s) {
    char **ps;
    int np = split_top(s, ",", &ps);
    if (np < 2) { free_parts(ps, np); return NULL; }
    char **names = pika_calloc((size_t)np, sizeof *names), **vals = pika_calloc((size_t)np, sizeof *vals);
    int ok = 1;
    for (int i = 0; i < np && ok; i++) {
        char **ev;
        int ne = split_top(ps[i], "=", &ev);
        if (ne == 2 && is_label(ev[0]) && *ev[1]) { names[i] = pika_strdup(ev[0]); vals[i] = pika_strdup(ev[1]); }
        else ok = 0;
        free_parts(ev, ne);
    }
    char *r = NULL;
    if (ok) {
        int same = 1, distinct = 1;
        for (int i = 1; i < np; i++) if (strcmp(names[i], names[0])) same = 0;
        for (int i = 0; i < np && distinct; i++)
            for (int j = i + 1; j < np; j++) if (!strcmp(names[i], names[j])) { distinct = 0; break; }
        if (same || distinct) {
            pika_buf b = {0};
            if (!same) pika_buf_addc(&b, '(');
            for (int i = 0; i < np; i++) {
                if (i) pika_buf_add(&b, ", ", 2);
                pika_buf_puts(&b, vals[i]);
            }
            if (!same) pika_buf_addc(&b, ')');
            r = b.s;
        }
    }
    free_parts(names, np);
    free_parts(vals, np);
    free_parts(ps, np);
    return r;
}

static char *join_parts(char **ps, int np, const char *sep) {
    pika_buf b = {0};
    pika_buf_add(&b, "", 0);
    for (int i = 0; i < np; i++) {
        if (i) pika_buf_puts(&b, sep);
        pika_buf_puts(&b, ps[i]);
    }
    return b.s;
}

/* Answer forms rewritten into the structures classify() knows (takes ownership of s):
 * "3 or 5" / "3 and 5" → "3, 5"; "x < -2 or x > 3" → "(-\infty, -2) \cup (3, \infty)";
 * "a=1, b=4; a=2, b=3" → "(1, 4), (2, 3)"; relations → intervals. */
static char *restructure(char *s, int depth) {
    if (depth > 3) return s;
    char **ps;
    int any_or = 0;
    int np = split_words(s, &ps, &any_or);
    if (np >= 2) {
        int all_rel = 1, nrel = 0;
        for (int i = 0; i < np; i++) {
            char *iv = relation_to_interval(ps[i]);
            if (!iv) { /* "x \in (1, 2)" is a relation too */
                const char *in = strstr(ps[i], "\\in");
                if (in && in > ps[i] && !isalpha((unsigned char)in[3])) {
                    char *l = dup_trim(ps[i], (size_t)(in - ps[i]));
                    if (is_label(l)) iv = dup_trim(in + 3, strlen(in + 3));
                    free(l);
                }
            }
            if (iv) { free(ps[i]); ps[i] = iv; nrel++; continue; }
            ps[i] = restructure(ps[i], depth + 1);
            if (!(ps[i][0] == '(' || ps[i][0] == '[')) all_rel = 0;
        }
        if (!nrel) all_rel = 0; /* "(1, 2) or (2, 1)": points, not intervals */
        char *r = NULL;
        if (all_rel && !any_or && np == 2) r = intersect_rays(ps[0], ps[1]); /* x > 1 and x < 3 */
        if (!r) r = join_parts(ps, np, all_rel && any_or ? " \\cup " : ", ");
        free_parts(ps, np);
        free(s);
        if (!all_rel) { /* "x = 3 and y = 4" */
            char *a = assignments(r);
            if (a) { free(r); r = a; }
        }
        return r;
    }
    free_parts(ps, np);
    np = split_top(s, ";", &ps);
    if (np >= 2) {
        for (int i = 0; i < np; i++) {
            char *a = assignments(ps[i]);
            if (a) { free(ps[i]); ps[i] = a; }
        }
        char *r = join_parts(ps, np, ", ");
        free_parts(ps, np);
        free(s);
        return r;
    }
    free_parts(ps, np);
    char *a = assignments(s);
    if (a) { free(s); return a; }
    /* the real line */
    if (!strcmp(s, "\\mathbb{R}") || !strcmp(s, "\\mathbb R") || !strcmp(s, "\\R") || !strcmp(s, "\\text{all real numbers}") ||
        !strcmp(s, "all real numbers")) {
        free(s);
        return pika_strdup("(-\\infty, \\infty)");
    }
    char *iv = relation_to_interval(s);
    if (iv) { free(s); return iv; }
    return s;
}

/* ---------------------------------------------------------------- classification */

/* Classify an answer (spaces kept). Plain brace groups around everything are peeled in one buffer
 * (no copy per level). */
static void classify(const char *s0, shape *sh) {
    memset(sh, 0, sizeof *sh);
    char *buf = pika_strdup(s0);
    char *s = buf;
    size_t len = strlen(s);
    while (len >= 2 && s[0] == '{' && s[len - 1] == '}' && outer_pair_n(s, len)) {
        s++;
        len -= 2;
        while (len && isspace((unsigned char)*s)) { s++; len--; }
        while (len && isspace((unsigned char)s[len - 1])) len--;
        s[len] = 0;
    }
    /* "\left[ \begin{array}{cc} .. \end{array} \right]": brackets around a lone environment */
    if (len >= 2 && (s[0] == '[' || s[0] == '(') && (s[len - 1] == ']' || s[len - 1] == ')') && outer_pair_n(s, len)) {
        size_t a = 1, z = len - 1;
        while (a < z && isspace((unsigned char)s[a])) a++;
        while (z > a && isspace((unsigned char)s[z - 1])) z--;
        if (!strncmp(s + a, "\\begin{", 7) && z - a > 6 && s[z - 1] == '}') {
            const char *lastend = NULL;
            for (const char *q = s + a; (q = strstr(q, "\\end{")) && q < s + z; q++) lastend = q;
            if (lastend && lastend + strcspn(lastend, "}") + 1 == s + z) {
                s += a;
                len = z - a;
                s[len] = 0;
            }
        }
    }
    /* matrices */
    if (!strncmp(s, "\\begin{", 7)) {
        const char *env_end = strchr(s + 7, '}');
        if (env_end) {
            size_t el = (size_t)(env_end - (s + 7));
            char endtag[64];
            if (el < 40) {
                snprintf(endtag, sizeof endtag, "\\end{%.*s}", (int)el, s + 7);
                const char *e = strstr(env_end, endtag);
                if (e && e[strlen(endtag)] == 0) {
                    const char *b = env_end + 1;
                    if (!strncmp(s + 7, "array", 5) && *b == '{') { long m = match_brace(b, 0); if (m > 0) b += m + 1; }
                    char *body = pika_strndup(b, (size_t)(e - b));
                    int rc = matrix_parts(body, sh);
                    free(body);
                    if (rc == 0) {
                        sh->k = K_MATRIX;
                        sh->open = (s[7] == 'v' || s[7] == 'V') ? 'v' : 'm'; /* vmatrix: a determinant */
                        free(buf);
                        return;
                    }
                    free_parts(sh->parts, sh->n);
                    memset(sh, 0, sizeof *sh);
                }
            }
        }
    }
    if (!strcmp(s, "\\emptyset") || !strcmp(s, "\\{ \\}")) { /* the empty set */
        sh->k = K_SET;
        free(buf);
        return;
    }
    char **parts;
    int n = split_top(s, "\\cup", &parts);
    if (n > 1) {
        /* a union of finite sets is the set of their elements: \{1,3\} \cup \{2,4\} = \{1,2,3,4\} */
        int all_sets = 1;
        for (int i = 0; i < n && all_sets; i++) {
            size_t pl = strlen(parts[i]);
            all_sets = pl >= 4 && !strncmp(parts[i], "\\{", 2) && !strcmp(parts[i] + pl - 2, "\\}") && outer_pair(parts[i], 2, 2);
        }
        if (all_sets) {
            sh->k = K_SET;
            for (int i = 0; i < n; i++) {
                char *body = pika_strndup(parts[i] + 2, strlen(parts[i]) - 4);
                char **el;
                int ne = split_top(body, ",", &el);
                free(body);
                for (int j = 0; j < ne; j++) {
                    int dup = !el[j][0];
                    for (int k = 0; k < sh->n && k < 256 && !dup; k++) dup = !strcmp(sh->parts[k], el[j]); /* same element twice */
                    if (dup) { free(el[j]); continue; }
                    sh->parts = pika_realloc(sh->parts, (size_t)(sh->n + 1) * sizeof *sh->parts);
                    sh->parts[sh->n++] = el[j];
                }
                free(el);
            }
            free_parts(parts, n);
            free(buf);
            return;
        }
        sh->k = K_UNION; sh->parts = parts; sh->n = n; free(buf); return;
    }
    free_parts(parts, n);
    if (len >= 4 && !strncmp(s, "\\{", 2) && !strcmp(s + len - 2, "\\}") && outer_pair(s, 2, 2)) {
        char *body = pika_strndup(s + 2, len - 4);
        sh->k = K_SET;
        sh->n = split_top(body, ",", &sh->parts);
        free(body);
        if (sh->n == 1 && sh->parts[0][0] == 0) { free_parts(sh->parts, sh->n); sh->n = 0; sh->parts = NULL; }
        free(buf);
        return;
    }
    if (len >= 2 && (s[0] == '(' || s[0] == '[') && (s[len - 1] == ')' || s[len - 1] == ']')) {
        /* check the bracket at 0 closes at the end (treat ( and [ as one family for intervals) */
        int depth = 0, ok = 1;
        for (size_t i = 0; i < len; i++) {
            if (s[i] == '\\' && s[i + 1]) { i++; continue; }
            if (s[i] == '(' || s[i] == '[' || s[i] == '{') depth++;
            else if (s[i] == ')' || s[i] == ']' || s[i] == '}') depth--;
            if (depth == 0 && i + 1 < len) { ok = 0; break; }
        }
        if (ok) {
            char *body = pika_strndup(s + 1, len - 2);
            char **ps;
            int np = split_top(body, ",", &ps);
            free(body);
            if (np > 1) {
                sh->k = K_TUPLE;
                sh->open = s[0];
                sh->close = s[len - 1];
                sh->parts = ps;
                sh->n = np;
                free(buf);
                return;
            }
            free_parts(ps, np);
        }
    }
    n = split_top(s, ",", &parts);
    if (n > 1) { sh->k = K_LIST; sh->parts = parts; sh->n = n; free(buf); return; }
    free_parts(parts, n);
    /* \pm: a \pm b → {a + b, a - b} */
    const char *pm = strstr(s, "\\pm");
    if (pm && !isalpha((unsigned char)pm[3])) {
        sh->k = K_PM;
        sh->n = 2;
        sh->parts = pika_malloc(2 * sizeof *sh->parts);
        for (int k = 0; k < 2; k++) {
            pika_buf b = {0};
            pika_buf_add(&b, s, (size_t)(pm - s));
            pika_buf_add(&b, k ? "-" : "+", 1);
            pika_buf_add(&b, pm + 3, strlen(pm + 3));
            sh->parts[k] = b.s;
        }
        free(buf);
        return;
    }
    sh->k = K_SCALAR;
    sh->n = 1;
    sh->parts = pika_malloc(sizeof *sh->parts);
    sh->parts[0] = pika_strdup(s);
    free(buf);
}

/* Text answer: has \text / a plain word of 3+ letters that is not a known function. */
static int is_texty(const char *s) {
    static const char *known[] = {"sqrt", "sin", "cos", "tan", "sec", "csc", "cot", "log", "ln", "exp", "pi", NULL};
    for (const char *p = s; *p;) {
        if (*p == '\\') { /* skip command */
            if (!strncmp(p, "\\text", 5) || !strncmp(p, "\\mbox", 5)) return 1;
            p++;
            while (isalpha((unsigned char)*p)) p++;
            if (*p && !isalpha((unsigned char)p[-1])) p++;
            continue;
        }
        if (isalpha((unsigned char)*p)) {
            const char *q = p;
            while (isalpha((unsigned char)*q)) q++;
            size_t n = (size_t)(q - p);
            if (n >= 3) {
                int k = 0, hit = 0;
                for (; known[k]; k++) if (strlen(known[k]) == n && !strncmp(p, known[k], n)) hit = 1;
                if (!hit) return 1;
            }
            p = q;
            continue;
        }
        p++;
    }
    return 0;
}

/* Lower-case letters and digits only, for text answers. */
static char *text_key(const char *s) {
    pika_buf b = {0};
    pika_buf_add(&b, "", 0);
    for (const char *p = s; *p; p++) {
        if (*p == '\\') { /* drop command names like \text */
            p++;
            while (isalpha((unsigned char)p[0]) && isalpha((unsigned char)p[1])) p++;
            if (!isalpha((unsigned char)*p)) p--;
            continue;
        }
        if (isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80) pika_buf_addc(&b, (char)tolower((unsigned char)*p));
    }
    return b.s;
}

/* Drop a labelled left side: "x =", "f(x) =", "\frac{AB}{CD} =", "(a, b) =", "x \in". */
static const char *drop_lhs(const char *s, char **buf) {
    *buf = NULL;
    char **parts;
    int n = split_top(s, "=", &parts);
    const char *res = s;
    if (n == 2 && *parts[1] && is_label(parts[0])) { *buf = pika_strdup(parts[1]); res = *buf; }
    free_parts(parts, n);
    if (res == s && strstr(s, "\\approx")) { /* "x \approx 3.14" → 3.14; "\frac13 \approx 0.333" → \frac13 */
        n = split_top(s, "\\approx", &parts);
        if (n == 2 && *parts[0] && *parts[1]) {
            if (is_label(parts[0])) { *buf = pika_strdup(parts[1]); res = *buf; }
            else if (is_const(parts[0])) { *buf = pika_strdup(parts[0]); res = *buf; }
        }
        free_parts(parts, n);
    }
    if (res == s) {
        const char *in = strstr(s, "\\in");
        if (in && !isalpha((unsigned char)in[3]) && in > s) {
            char *l = dup_trim(s, (size_t)(in - s));
            if (is_label(l)) { *buf = dup_trim(in + 3, strlen(in + 3)); res = *buf; }
            free(l);
        }
    }
    return res;
}

/* An integer literal too long for exact int64 arithmetic (> 15 digits). */
static int is_long_int(const char *s) {
    const char *p = s + (*s == '-');
    size_t n = 0;
    for (; *p; p++, n++) if (!isdigit((unsigned char)*p)) return 0;
    return n > 15;
}

static int same_int(const char *a, const char *b) {
    int na = *a == '-', nb = *b == '-';
    if (na != nb) return 0;
    a += na; b += nb;
    while (*a == '0' && a[1]) a++;
    while (*b == '0' && b[1]) b++;
    return !strcmp(a, b);
}

/* "1011_2" / "1011_{2}": the digit string (into d, up to cap) and the base; 0 when not that form. */
static int base_literal(const char *s, char *d, size_t cap, int *base) {
    size_t k = 0;
    while (isalnum((unsigned char)s[k]) && k + 1 < cap) { d[k] = s[k]; k++; }
    d[k] = 0;
    if (!k || s[k] != '_' || !isdigit((unsigned char)s[0])) return 0;
    const char *p = s + k + 1;
    int br = *p == '{';
    p += br;
    int b = 0;
    while (isdigit((unsigned char)*p)) { b = b * 10 + (*p - '0'); if (b > 99) return 0; p++; }
    if (br && *p++ != '}') return 0;
    if (*p || b < 2 || b > 36) return 0;
    *base = b;
    return 1;
}

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++) if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* ---------------------------------------------------------------- comparison */

static int equiv_rec(const char *a, const char *b, int depth, const pika_extract_opts *o);

/* Do the policy flags of two answers allow them to be equal? */
static int flags_ok(const nflags *fa, const nflags *fb, const pika_extract_opts *o) {
    if (o->degrees == PIKA_DEG_STRICT && fa->degree != fb->degree) return 0;
    if (o->units == PIKA_UNITS_STRICT && strcmp(fa->unit, fb->unit)) return 0;
    return 1;
}

static pika_num pct_scale(pika_num v) {
    return v.exact ? pika_num_ratio(v.num, v.den * 100) : pika_num_double(v.v / 100);
}

/* Equations A = B and C = D: is A - B a non-zero multiple of C - D? Checked at random points with the
 * factor fitted at the first usable one. */
static int scaled_diff(char **la, char **lb, int need_positive);
static int equations_scaled(char **la, char **lb) { return scaled_diff(la, lb, 0); }

/* Is la[1] - la[0] a (positive, when need_positive) multiple of lb[1] - lb[0]? */
static int scaled_diff(char **la, char **lb, int need_positive) {
    char buf[2][8192];
    char **sides[2] = {la, lb};
    pika_expr *e[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        if ((size_t)snprintf(buf[k], sizeof buf[k], "(%s)-(%s)", sides[k][0], sides[k][1]) >= sizeof buf[k]) goto fail;
        e[k] = pika_expr_parse(buf[k]);
        if (!e[k] || pika_expr_nvars(e[k]) == 0) goto fail;
    }
    double kf = 0;
    int have_k = 0, good = 0;
    for (int pt = 0; pt < 10; pt++) {
        pika_num f, g;
        if (pika_expr_eval(e[0], pt, &f) || pika_expr_eval(e[1], pt, &g)) continue;
        if (!isfinite(f.v) || !isfinite(g.v)) continue;
        if (!have_k) {
            if (fabs(g.v) < 1e-9 || fabs(f.v) < 1e-9) continue;
            kf = f.v / g.v;
            have_k = 1;
            good++;
            continue;
        }
        double m = fabs(f.v) > fabs(kf * g.v) ? fabs(f.v) : fabs(kf * g.v);
        if (fabs(f.v - kf * g.v) > 1e-9 * m + 1e-12) goto fail;
        good++;
    }
    pika_expr_free(e[0]);
    pika_expr_free(e[1]);
    return have_k && good >= 4 && (!need_positive || kf > 0);
fail:
    pika_expr_free(e[0]);
    pika_expr_free(e[1]);
    return 0;
}

static int scalar_equiv(const char *a, const char *b, const nflags *fa, const nflags *fb, int depth,
                        const pika_extract_opts *o) {
    /* equations on both sides: side by side, or one a multiple of the other */
    char **la, **lb;
    int na = split_top(a, "=", &la), nb = split_top(b, "=", &lb);
    if (na == 2 && nb == 2) {
        int r = (equiv_rec(la[0], lb[0], depth + 1, o) && equiv_rec(la[1], lb[1], depth + 1, o)) ||
                (equiv_rec(la[0], lb[1], depth + 1, o) && equiv_rec(la[1], lb[0], depth + 1, o)) ||
                equations_scaled(la, lb);
        free_parts(la, na);
        free_parts(lb, nb);
        return r;
    }
    free_parts(la, na);
    free_parts(lb, nb);
    if (na > 1 || nb > 1) return 0;
    /* two single relations between expressions: y \ge 2x = 2x \le y = y - 2x \ge 0 (a positive multiple,
     * same strictness) */
    {
        relop ra[3], rb[3];
        if (find_relops(a, ra) == 1 && find_relops(b, rb) == 1 && ra[0].strict == rb[0].strict) {
            char *pa[2], *pb[2];
            /* as "small < big": pa[0] < pa[1] */
            char *al = dup_trim(a, ra[0].pos), *ar = dup_trim(a + ra[0].pos + ra[0].len, strlen(a + ra[0].pos + ra[0].len));
            char *bl = dup_trim(b, rb[0].pos), *br = dup_trim(b + rb[0].pos + rb[0].len, strlen(b + rb[0].pos + rb[0].len));
            pa[0] = ra[0].less ? al : ar; pa[1] = ra[0].less ? ar : al;
            pb[0] = rb[0].less ? bl : br; pb[1] = rb[0].less ? br : bl;
            int r = *al && *ar && *bl && *br && scaled_diff(pa, pb, 1);
            free(al); free(ar); free(bl); free(br);
            return r;
        }
    }
    if (o->mcq) {
        char ca = choice_letter(a), cb = choice_letter(b);
        if (ca || cb) return ca && ca == cb;
    }
    if (is_texty(a) || is_texty(b)) {
        char *ka = text_key(a), *kb = text_key(b);
        int r = *ka && !strcmp(ka, kb);
        free(ka);
        free(kb);
        return r;
    }
    if (is_long_int(a) && is_long_int(b)) return same_int(a, b);
    /* base subscripts: an answer "in base b" is its digits — 1011_2 = 1011_{2} = 1011, but not 11 (the
     * decimal value is an unconverted answer) */
    {
        char da[128], db[128];
        int ba = 0, bb = 0;
        int xa = base_literal(a, da, sizeof da, &ba), xb = base_literal(b, db, sizeof db, &bb);
        if (xa && xb) return ba == bb && same_int(da, db);
        if (xa) return all_digits(b) && same_int(da, b);
        if (xb) return all_digits(a) && same_int(db, a);
    }
    pika_expr *ea = pika_expr_parse(a);
    if (!ea) return 0;
    pika_expr *eb = pika_expr_parse(b);
    if (!eb) { pika_expr_free(ea); return 0; }
    int r = 0;
    int nv = pika_expr_nvars(ea) + pika_expr_nvars(eb);
    int has_i = 0;
    for (int k = 0; k < 2; k++) {
        pika_expr *e = k ? eb : ea;
        for (int v = 0; v < pika_expr_nvars(e); v++) has_i |= !strcmp(pika_expr_var(e, v), "i");
    }
    if (has_i) { /* complex numbers: i is the imaginary unit (i^2 = -1, \frac{1}{i} = -i) */
        int good = 0, bad = 0;
        for (int pt = 0; pt < N_POINTS; pt++) {
            double ar, ai, br, bi;
            if (pika_expr_eval_complex(ea, pt, "i", &ar, &ai) || pika_expr_eval_complex(eb, pt, "i", &br, &bi)) continue;
            double m = fmax(hypot(ar, ai), hypot(br, bi));
            if (hypot(ar - br, ai - bi) <= REL_TOL_VARS * m + 1e-12) good++;
            else bad++;
        }
        r = bad == 0 && good >= 3;
    } else if (nv == 0) {
        pika_num va, vb;
        if (pika_expr_eval(ea, 0, &va) == 0 && pika_expr_eval(eb, 0, &vb) == 0) {
            if (o->percent == PIKA_PCT_VALUE) {
                if (fa->percent) va = pct_scale(va);
                if (fb->percent) vb = pct_scale(vb);
            }
            if (o->degrees == PIKA_DEG_RADIANS) { /* 45^\circ = \pi/4 */
                if (fa->degree) va = pika_num_double(va.v * M_PI / 180);
                if (fb->degree) vb = pika_num_double(vb.v * M_PI / 180);
            }
            r = pika_num_equal(va, vb, REL_TOL_CONST);
            if (!r && o->percent == PIKA_PCT_LENIENT && fa->percent != fb->percent) /* 50\% vs 0.5 */
                r = fa->percent ? pika_num_equal(pct_scale(va), vb, REL_TOL_CONST) : pika_num_equal(va, pct_scale(vb), REL_TOL_CONST);
        }
    } else {
        /* variables missing from one side are simply unused there: a constant and an expression in x
         * agree at every point only if the expression does not depend on x */
        int good = 0, bad = 0;
        for (int pt = 0; pt < N_POINTS; pt++) {
            pika_num va, vb;
            int ra = pika_expr_eval(ea, pt, &va), rb = pika_expr_eval(eb, pt, &vb);
            if (ra || rb) continue;
            if (pika_num_equal(va, vb, REL_TOL_VARS)) good++;
            else bad++;
        }
        r = bad == 0 && good >= 3;
    }
    pika_expr_free(ea);
    pika_expr_free(eb);
    return r;
}

/* Canonical key of an answer: two answers with equal keys are equivalent (the converse need not hold).
 * Used to match the elements of sets in O(n log n). NULL: no key (too deep). */
static char *canon_key(const char *raw, int depth, const pika_extract_opts *o);
static int top_equation(const char *s);

static int cmp_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static char *shape_key(const shape *sh, int depth, const pika_extract_opts *o) {
    char **ks = pika_calloc((size_t)sh->n + 1, sizeof *ks);
    for (int i = 0; i < sh->n; i++) {
        ks[i] = canon_key(sh->parts[i], depth + 1, o);
        if (!ks[i]) { free_parts(ks, i); return NULL; }
    }
    int unordered = sh->k == K_SET || sh->k == K_LIST || sh->k == K_PM || sh->k == K_UNION;
    if (unordered) qsort(ks, (size_t)sh->n, sizeof *ks, cmp_str);
    pika_buf b = {0};
    switch (sh->k) {
    case K_TUPLE: pika_buf_addc(&b, 'T'); pika_buf_addc(&b, sh->open); pika_buf_addc(&b, sh->close); break;
    case K_MATRIX: {
        char h[48];
        snprintf(h, sizeof h, "X%c%dx%d", sh->open, sh->rows, sh->cols);
        pika_buf_puts(&b, h);
        break;
    }
    case K_UNION: pika_buf_addc(&b, 'U'); break;
    default: pika_buf_addc(&b, 'M'); break;
    }
    pika_buf_addc(&b, '{');
    for (int i = 0; i < sh->n; i++) {
        if (i) pika_buf_addc(&b, '\x1f');
        pika_buf_puts(&b, ks[i]);
    }
    pika_buf_addc(&b, '}');
    free_parts(ks, sh->n);
    return b.s;
}

static char *flag_prefix(const nflags *f, const pika_extract_opts *o, char c) {
    pika_buf b = {0};
    pika_buf_addc(&b, c);
    if (o->degrees != PIKA_DEG_DROP && f->degree) pika_buf_addc(&b, 'o');
    if (o->units == PIKA_UNITS_STRICT) { pika_buf_puts(&b, f->unit); pika_buf_addc(&b, ':'); }
    return b.s;
}

static char *canon_key(const char *raw, int depth, const pika_extract_opts *o) {
    if (depth > MAX_DEPTH) return NULL;
    { /* fast path: a plain integer (what large sets are usually made of) */
        const char *p = raw;
        while (*p == ' ') p++;
        const char *st = p;
        p += *p == '-';
        size_t nd = 0;
        while (isdigit((unsigned char)p[nd])) nd++;
        const char *q = p + nd;
        while (*q == ' ') q++;
        if (nd > 0 && nd <= 15 && !*q) {
            char k[40];
            snprintf(k, sizeof k, "%c%lld/1", 'Q', strtoll(st, NULL, 10));
            if (o->units == PIKA_UNITS_STRICT) { /* flag_prefix form: no unit, no degree */
                char k2[44];
                snprintf(k2, sizeof k2, "Q:%s", k + 1);
                return pika_strdup(k2);
            }
            return pika_strdup(k);
        }
    }
    nflags fl;
    char *a = normalize_keep_spaces(raw, &fl);
    char *rest = NULL, *key = NULL;
    /* an equation keeps its left side in its key: x = 3 and y = 3 are different answers (equiv_rec
     * compares two equations as equations), so only the string form can be its key */
    int eqn = top_equation(a);
    const char *a2 = eqn ? a : drop_lhs(a, &rest);
    char *r2 = restructure(pika_strdup(a2), 0);
    shape sh;
    classify(r2, &sh);
    if (sh.k != K_SCALAR) {
        char *k = shape_key(&sh, depth, o);
        if (k) {
            char *pre = flag_prefix(&fl, o, 'S');
            pika_buf b = {0};
            pika_buf_puts(&b, pre);
            pika_buf_puts(&b, k);
            key = b.s;
            free(pre);
            free(k);
        }
    } else {
        const char *s = sh.parts[0];
        char *pre = NULL;
        pika_buf b = {0};
        char dg[128];
        int base = 0;
        if (base_literal(s, dg, sizeof dg, &base)) { /* compared by base and digits, not by value */
            const char *d = dg;
            while (*d == '0' && d[1]) d++;
            char q[160];
            snprintf(q, sizeof q, "B%d:%s", base, d);
            pre = flag_prefix(&fl, o, 'B');
            pika_buf_puts(&b, pre);
            pika_buf_puts(&b, q);
        } else if (!strchr(s, '=') && !(fl.percent && o->percent != PIKA_PCT_DROP) && !is_texty(s) && !is_long_int(s)) {
            pika_expr *e = pika_expr_parse(s);
            pika_num v;
            if (e && pika_expr_nvars(e) == 0 && pika_expr_eval(e, 0, &v) == 0 && v.exact) {
                char q[64];
                snprintf(q, sizeof q, "%lld/%lld", (long long)v.num, (long long)v.den);
                pre = flag_prefix(&fl, o, 'Q');
                pika_buf_puts(&b, pre);
                pika_buf_puts(&b, q);
            }
            pika_expr_free(e);
        }
        if (!b.s) { /* fall back to the normalised string, which equiv_rec compares first */
            char *ns = nospace_from_kept(normalize_keep_spaces(raw, &fl), !strchr(raw, '='));
            pre = flag_prefix(&fl, o, 'N');
            pika_buf_puts(&b, pre);
            pika_buf_puts(&b, ns);
            if (fl.percent) pika_buf_addc(&b, '%');
            if (!*ns) { free(b.s); b.s = NULL; }
            free(ns);
        }
        free(pre);
        key = b.s;
    }
    shape_free(&sh);
    free(r2);
    free(rest);
    free(a);
    return key;
}

/* Unordered match of two part lists (multisets): parts with equal canonical keys pair up after sorting;
 * the few left over are compared pairwise (first fit). */
#define MAX_LEFTOVER 64
typedef struct { char *k; int i; } kent;
static int cmp_kent(const void *x, const void *y) { /* by key, keyless entries last */
    const kent *a = x, *b = y;
    if (!a->k || !b->k) return (a->k == NULL) - (b->k == NULL);
    return strcmp(a->k, b->k);
}
static int match_unordered(char **a, int na, char **b, int nb, int depth, const pika_extract_opts *o) {
    if (na != nb) return 0;
    if (na == 0) return 1;
    if (na <= 4) { /* small lists: pairwise is cheapest */
        char used[4] = {0};
        for (int i = 0; i < na; i++) {
            int found = 0;
            for (int j = 0; j < nb && !found; j++)
                if (!used[j] && equiv_rec(a[i], b[j], depth + 1, o)) { used[j] = 1; found = 1; }
            if (!found) return 0;
        }
        return 1;
    }
    kent *ka = pika_malloc((size_t)na * sizeof *ka), *kb = pika_malloc((size_t)nb * sizeof *kb);
    for (int i = 0; i < na; i++) { ka[i].k = canon_key(a[i], depth + 1, o); ka[i].i = i; }
    for (int j = 0; j < nb; j++) { kb[j].k = canon_key(b[j], depth + 1, o); kb[j].i = j; }
    qsort(ka, (size_t)na, sizeof *ka, cmp_kent);
    qsort(kb, (size_t)nb, sizeof *kb, cmp_kent);
    int *la = pika_malloc((size_t)na * sizeof *la), *lb = pika_malloc((size_t)nb * sizeof *lb);
    int nla = 0, nlb = 0, i = 0, j = 0;
    while (i < na || j < nb) {
        int c = i >= na ? 1 : j >= nb ? -1 : (!ka[i].k || !kb[j].k) ? (ka[i].k ? -1 : kb[j].k ? 1 : 0) : strcmp(ka[i].k, kb[j].k);
        if (c == 0 && i < na && j < nb && ka[i].k && kb[j].k) { i++; j++; continue; }
        if (c <= 0 && i < na) la[nla++] = ka[i++].i;
        else lb[nlb++] = kb[j++].i;
    }
    int ok = nla == nlb && nla <= MAX_LEFTOVER;
    if (ok && nla) {
        char used[MAX_LEFTOVER] = {0};
        for (int x = 0; x < nla && ok; x++) {
            int found = 0;
            for (int y = 0; y < nlb && !found; y++)
                if (!used[y] && equiv_rec(a[la[x]], b[lb[y]], depth + 1, o)) { used[y] = 1; found = 1; }
            ok = found;
        }
    }
    for (int x = 0; x < na; x++) free(ka[x].k);
    for (int x = 0; x < nb; x++) free(kb[x].k);
    free(ka);
    free(kb);
    free(la);
    free(lb);
    return ok;
}

static int shapes_equal(const shape *x, const shape *y, int depth, const pika_extract_opts *o) {
    if (x->k != y->k) {
        /* a bare list and a set, or \pm and a list/set, compare as multisets */
        int xm = x->k == K_LIST || x->k == K_SET || x->k == K_PM;
        int ym = y->k == K_LIST || y->k == K_SET || y->k == K_PM;
        if (xm && ym) return match_unordered(x->parts, x->n, y->parts, y->n, depth, o);
        return 0;
    }
    switch (x->k) {
    case K_TUPLE:
        if (x->open != y->open || x->close != y->close || x->n != y->n) return 0;
        for (int i = 0; i < x->n; i++) if (!equiv_rec(x->parts[i], y->parts[i], depth + 1, o)) return 0;
        return 1;
    case K_MATRIX:
        if (x->open != y->open || x->rows != y->rows || x->cols != y->cols) return 0;
        for (int i = 0; i < x->n; i++) if (!equiv_rec(x->parts[i], y->parts[i], depth + 1, o)) return 0;
        return 1;
    case K_SET: case K_LIST: case K_UNION: case K_PM:
        return match_unordered(x->parts, x->n, y->parts, y->n, depth, o);
    default: return 0;
    }
}

/* Are {} and \begin/\end balanced? A malformed answer is never equivalent to anything. */
static int balanced(const char *s) {
    int d = 0, env = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            if (!strncmp(p + 1, "begin", 5) && !isalpha((unsigned char)p[6])) env++;
            else if (!strncmp(p + 1, "end", 3) && !isalpha((unsigned char)p[4]) && --env < 0) return 0;
            p++;
            continue;
        }
        if (*p == '{') d++;
        else if (*p == '}' && --d < 0) return 0;
    }
    return d == 0 && env == 0;
}

/* Every matrix environment has rows of one length (a ragged matrix is malformed, never equivalent). */
static int matrices_ok(const char *s) {
    for (const char *p = s; (p = strstr(p, "\\begin{")); p += 7) {
        const char *ne = strchr(p + 7, '}');
        if (!ne || ne - (p + 7) > 30) continue;
        size_t el = (size_t)(ne - (p + 7));
        if (!memmem(p + 7, el, "matrix", 6) && strncmp(p + 7, "array", 5)) continue;
        char endtag[48];
        snprintf(endtag, sizeof endtag, "\\end{%.*s}", (int)el, p + 7);
        const char *e = strstr(ne, endtag);
        if (!e) return 0;
        const char *b = ne + 1;
        if (!strncmp(p + 7, "array", 5) && *b == '{') { long m = match_brace(b, 0); if (m > 0) b += m + 1; }
        char *body = pika_strndup(b, (size_t)(e - b));
        shape sh;
        memset(&sh, 0, sizeof sh);
        int rc = matrix_parts(body, &sh);
        free_parts(sh.parts, sh.n);
        free(body);
        if (rc) return 0;
        p = e; /* continue after this environment: one pass over the input */
    }
    return 1;
}

static int top_equation(const char *s) {
    char **ps;
    int n = split_top(s, "=", &ps);
    free_parts(ps, n);
    return n == 2;
}

static int equiv_rec(const char *a_raw, const char *b_raw, int depth, const pika_extract_opts *o) {
    g_work++;
    if (depth > MAX_DEPTH) return 0;
    if (!balanced(a_raw) || !balanced(b_raw)) return 0;
    if (!matrices_ok(a_raw) || !matrices_ok(b_raw)) return 0;
    nflags fa, fb;
    /* two equations keep their left sides: x = 3 is not y = 3 */
    int keep = strchr(a_raw, '=') && strchr(b_raw, '=');
    char *a = normalize_keep_spaces(a_raw, &fa), *b = normalize_keep_spaces(b_raw, &fb);
    char *na = nospace_from_kept(pika_strdup(a), !keep), *nb = nospace_from_kept(pika_strdup(b), !keep);
    int r = *na && !strcmp(na, nb) && flags_ok(&fa, &fb, o) && (o->percent != PIKA_PCT_VALUE || fa.percent == fb.percent) &&
            (o->degrees != PIKA_DEG_RADIANS || fa.degree == fb.degree);
    free(na);
    free(nb);
    if (r) { free(a); free(b); return 1; }
    if (!*a || !*b || !flags_ok(&fa, &fb, o)) { free(a); free(b); return 0; }
    char *ba = NULL, *bb = NULL;
    const char *a2 = a, *b2 = b;
    if (!(top_equation(a) && top_equation(b))) { /* two equations compare as equations */
        a2 = drop_lhs(a, &ba);
        b2 = drop_lhs(b, &bb);
    }
    char *ra = restructure(pika_strdup(a2), 0), *rb = restructure(pika_strdup(b2), 0);
    shape sa, sb;
    classify(ra, &sa);
    classify(rb, &sb);
    if (sa.k == K_SCALAR && sb.k == K_SCALAR) r = scalar_equiv(sa.parts[0], sb.parts[0], &fa, &fb, depth, o);
    else if ((o->percent == PIKA_PCT_VALUE && fa.percent != fb.percent) || (o->degrees == PIKA_DEG_RADIANS && fa.degree != fb.degree))
        r = 0; /* marks inside a structure were
                                                                                 * stripped at its top level */
    else r = shapes_equal(&sa, &sb, depth, o);
    shape_free(&sa);
    shape_free(&sb);
    free(ra);
    free(rb);
    free(ba);
    free(bb);
    free(a);
    free(b);
    return r;
}

/* ---------------------------------------------------------------- MATH baseline (Hendrycks et al.) */

/* Python's str.replace on a malloc'ed string. */
#define H_REPLACE(s, from, to) (s = replace_all(s, from, to))

char *pika_math_hendrycks_strip(const char *in) {
    char *s = pika_strdup(in);
    H_REPLACE(s, "\n", "");
    H_REPLACE(s, "\\!", "");
    H_REPLACE(s, "\\\\", "\\");
    H_REPLACE(s, "tfrac", "frac");
    H_REPLACE(s, "dfrac", "frac");
    H_REPLACE(s, "\\left", "");
    H_REPLACE(s, "\\right", "");
    H_REPLACE(s, "^{\\circ}", "");
    H_REPLACE(s, "^\\circ", "");
    H_REPLACE(s, "\\$", "");
    /* _remove_right_units: split on "\text{ " must give exactly 2 pieces, else the Python raises */
    {
        const char *u = strstr(s, "\\text{ ");
        if (u) {
            if (strstr(u + 7, "\\text{ ")) { free(s); return NULL; }
            char *t = pika_strndup(s, (size_t)(u - s));
            free(s);
            s = t;
        }
    }
    H_REPLACE(s, "\\%", "");
    H_REPLACE(s, " .", " 0.");
    H_REPLACE(s, "{.", "{0.");
    if (!*s) return s;
    if (s[0] == '.') {
        char *t = pika_malloc(strlen(s) + 2);
        t[0] = '0';
        strcpy(t + 1, s);
        free(s);
        s = t;
    }
    /* "x=..." with a left side of at most 2 characters (exactly one '=') */
    {
        char *eq = strchr(s, '=');
        if (eq && !strchr(eq + 1, '=') && eq - s <= 2) {
            char *t = pika_strdup(eq + 1);
            free(s);
            s = t;
        }
    }
    /* _fix_sqrt: "\sqrt3" → "\sqrt{3}" (an empty piece after \sqrt raises) */
    if (strstr(s, "\\sqrt")) {
        pika_buf b = {0};
        pika_buf_add(&b, "", 0);
        const char *p = s, *q = strstr(p, "\\sqrt");
        pika_buf_add(&b, p, (size_t)(q - p));
        while (q) {
            p = q + 5;
            const char *nx = strstr(p, "\\sqrt");
            size_t n = nx ? (size_t)(nx - p) : strlen(p);
            if (n == 0) { free(b.s); free(s); return NULL; }
            if (p[0] != '{') {
                pika_buf_add(&b, "\\sqrt{", 6);
                pika_buf_addc(&b, p[0]);
                pika_buf_addc(&b, '}');
                pika_buf_add(&b, p + 1, n - 1);
            } else {
                pika_buf_add(&b, "\\sqrt", 5);
                pika_buf_add(&b, p, n);
            }
            q = nx;
        }
        free(s);
        s = b.s;
    }
    H_REPLACE(s, " ", "");
    /* _fix_fracs */
    if (strstr(s, "\\frac")) {
        pika_buf b = {0};
        pika_buf_add(&b, "", 0);
        const char *p = s, *q = strstr(p, "\\frac");
        pika_buf_add(&b, p, (size_t)(q - p));
        int give_up = 0;
        while (q && !give_up) {
            p = q + 5;
            const char *nx = strstr(p, "\\frac");
            size_t n = nx ? (size_t)(nx - p) : strlen(p);
            pika_buf_add(&b, "\\frac", 5);
            if (n == 0) { free(b.s); free(s); return NULL; } /* substr[0] on "" raises */
            if (p[0] == '{') pika_buf_add(&b, p, n);
            else if (n < 2) give_up = 1; /* the Python returns the string unchanged */
            else if (p[1] != '{') {
                pika_buf_addc(&b, '{'); pika_buf_addc(&b, p[0]); pika_buf_add(&b, "}{", 2); pika_buf_addc(&b, p[1]);
                pika_buf_addc(&b, '}');
                pika_buf_add(&b, p + 2, n - 2);
            } else {
                pika_buf_addc(&b, '{'); pika_buf_addc(&b, p[0]); pika_buf_addc(&b, '}');
                pika_buf_add(&b, p + 1, n - 1);
            }
            q = nx;
        }
        if (give_up) free(b.s);
        else { free(s); s = b.s; }
    }
    if (!strcmp(s, "0.5")) { free(s); s = pika_strdup("\\frac{1}{2}"); }
    /* _fix_a_slash_b: "a/b" with a, b canonical integers */
    {
        char *sl = strchr(s, '/');
        if (sl && !strchr(sl + 1, '/')) {
            int ok = 1;
            for (int side = 0; side < 2 && ok; side++) { /* int(x) then str(int(x)) == x */
                const char *p = side ? sl + 1 : s, *e = side ? s + strlen(s) : sl;
                int neg = p < e && *p == '-';
                p += neg;
                if (p == e || (*p == '0' && (e - p > 1 || neg))) ok = 0;
                for (; p < e && ok; p++) if (!isdigit((unsigned char)*p)) ok = 0;
            }
            if (ok) {
                pika_buf f = {0};
                pika_buf_add(&f, "\\frac{", 6);
                pika_buf_add(&f, s, (size_t)(sl - s));
                pika_buf_add(&f, "}{", 2);
                pika_buf_puts(&f, sl + 1);
                pika_buf_addc(&f, '}');
                free(s);
                s = f.s;
            }
        }
    }
    return s;
}

int pika_math_hendrycks_equiv(const char *a, const char *b) {
    if (!a && !b) return 1;
    if (!a || !b) return 0;
    char *sa = pika_math_hendrycks_strip(a), *sb = pika_math_hendrycks_strip(b);
    int r = (sa && sb) ? !strcmp(sa, sb) : !strcmp(a, b); /* on an exception: the raw strings */
    free(sa);
    free(sb);
    return r;
}

char *pika_math_hendrycks_extract(const char *text) {
    if (!text) return NULL;
    const char *idx = NULL;
    for (const char *p = text; (p = strstr(p, "\\boxed")); p++) idx = p;
    if (!idx) for (const char *p = text; (p = strstr(p, "\\fbox")); p++) idx = p;
    if (!idx) return NULL;
    int open = 0;
    const char *end = NULL;
    for (const char *p = idx; *p; p++) {
        if (*p == '{') open++;
        else if (*p == '}' && --open == 0) { end = p; break; }
    }
    if (!end) return NULL;
    /* remove_boxed: must start with "\boxed{" and end with "}" */
    if (strncmp(idx, "\\boxed{", 7)) return NULL;
    return pika_strndup(idx + 7, (size_t)(end - idx - 7));
}

/* ---------------------------------------------------------------- public comparison */

const char *pika_math_status_name(pika_math_status s) {
    switch (s) {
    case PIKA_MATH_EQUIV: return "equivalent";
    case PIKA_MATH_NOT_EQUIV: return "not equivalent";
    case PIKA_MATH_MALFORMED: return "malformed";
    case PIKA_MATH_TOO_DEEP: return "too deeply nested";
    }
    return "?";
}

pika_math_status pika_math_compare(const char *pred, const char *gold, const pika_extract_opts *o) {
    pika_extract_opts def;
    if (!o) { pika_extract_opts_default(&def); o = &def; }
    if (!pred || !gold) { pika_set_error("missing answer"); return PIKA_MATH_MALFORMED; }
    if (o->mode == PIKA_MODE_HENDRYCKS) return pika_math_hendrycks_equiv(pred, gold) ? PIKA_MATH_EQUIV : PIKA_MATH_NOT_EQUIV;
    if (max_nesting(pred) > PIKA_MATH_MAX_NEST || max_nesting(gold) > PIKA_MATH_MAX_NEST) {
        pika_set_error("answer too deeply nested (more than %d bracket levels)", PIKA_MATH_MAX_NEST);
        return PIKA_MATH_TOO_DEEP;
    }
    if (!balanced(pred) || !balanced(gold)) { pika_set_error("unbalanced braces or \\begin/\\end"); return PIKA_MATH_MALFORMED; }
    return equiv_rec(pred, gold, 0, o) ? PIKA_MATH_EQUIV : PIKA_MATH_NOT_EQUIV;
}

int pika_math_equiv_opts(const char *pred, const char *gold, const pika_extract_opts *o) {
    return pika_math_compare(pred, gold, o) == PIKA_MATH_EQUIV;
}

int pika_math_equiv(const char *pred, const char *gold) { return pika_math_equiv_opts(pred, gold, NULL); }

/* Could the whole text be an answer on its own (no prose)? */
static int bare_answer(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > 200 || strchr(t, '\n')) return 0;
    nflags fl;
    char *s = normalize_keep_spaces(t, &fl);
    int ok = *s != 0;
    int tokens = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        tokens++;
        while (*p && *p != ' ') p++;
    }
    /* prose: a plain word of 4+ letters outside \text{}, unless the text is one or two tokens */
    for (const char *p = s; *p && ok && tokens > 2;) {
        if (*p == '\\') { p++; while (isalpha((unsigned char)*p)) p++; continue; }
        if (isalpha((unsigned char)*p)) {
            const char *q = p;
            while (isalpha((unsigned char)*q)) q++;
            if (q - p >= 4 && strncmp(p, "sqrt", 4)) ok = 0;
            p = q;
            continue;
        }
        p++;
    }
    free(s);
    return ok;
}

int pika_math_grade(const char *text, const char *gold, const pika_extract_opts *o, char **answer_out) {
    pika_extract_opts def;
    if (!o) { pika_extract_opts_default(&def); o = &def; }
    char *ans = NULL;
    if (text && o->mode == PIKA_MODE_HENDRYCKS) ans = pika_math_hendrycks_extract(text);
    else if (text) {
        int unfinished = 0;
        const char *body = after_think(text, &unfinished);
        if (body) {
            pika_extract_opts strict = *o;
            strict.number_fallback = 0;
            ans = pika_math_extract(body, &strict);
            if (!ans) {
                char *bt = dup_trim(body, strlen(body));
                if (bare_answer(bt)) ans = bt;
                else free(bt);
            }
            if (!ans && o->number_fallback) ans = pika_math_extract(body, o);
        }
    }
    int r = ans && gold ? pika_math_equiv_opts(ans, gold, o) : 0;
    if (answer_out) *answer_out = ans;
    else free(ans);
    return r;
}
