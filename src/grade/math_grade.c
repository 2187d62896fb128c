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
#define REL_TOL_VARS 1e-7  /* expressions evaluated at random points */
#define N_POINTS 6
#define MAX_DEPTH 8

void pika_extract_opts_default(pika_extract_opts *o) {
    o->number_fallback = 1;
    o->mcq = 0;
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

/* Clean an answer phrase taken from prose: unwrap $..$, \(..\), strip trailing '.', leading ':'. */
static char *clean_phrase(const char *p, size_t n) {
    char *s = dup_trim(p, n);
    char *t = s;
    while (*t == ':' || *t == ' ' || *t == '*') t++;
    /* inline math inside the phrase: take its content */
    const char *d1 = strchr(t, '$');
    if (d1) {
        const char *d2 = strchr(d1 + 1, '$');
        if (d2 == d1 + 1) { d1 = d2; d2 = strchr(d1 + 1, '$'); if (d2 && d2[1] == '$') {} }
        if (d2) {
            char *r = dup_trim(d1 + 1, (size_t)(d2 - d1 - 1));
            free(s);
            return r;
        }
    }
    const char *m1 = strstr(t, "\\(");
    if (m1) {
        const char *m2 = strstr(m1 + 2, "\\)");
        if (m2) {
            char *r = dup_trim(m1 + 2, (size_t)(m2 - m1 - 2));
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

char *pika_math_extract(const char *text, const pika_extract_opts *o) {
    pika_extract_opts def;
    if (!o) { pika_extract_opts_default(&def); o = &def; }
    if (!text) return NULL;
    char *a = pika_math_last_boxed(text);
    if (!a) {
        const char *h = NULL;
        for (const char *p = text; (p = strstr(p, "####")); p += 4) h = p;
        if (h) {
            h += 4;
            a = clean_phrase(h, strcspn(h, "\n"));
        }
    }
    if (!a) {
        static const char *markers[] = {"final answer is", "final answer:", "the answer is", "answer is", "answer:", NULL};
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
static char *strip_units(char *s) {
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
static char *strip_word_units(char *s) {
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
static char *normalize_keep_spaces(const char *ans, int *percent) {
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
    /* Unicode math symbols models sometimes print */
    s = replace_all(s, "\xe2\x88\x92", "-");        /* U+2212 minus */
    s = replace_all(s, "\xc3\x97", "\\times ");      /* multiplication sign */
    s = replace_all(s, "\xc2\xb7", "\\cdot ");       /* middle dot */
    s = replace_all(s, "\xcf\x80", "\\pi ");         /* pi */
    s = replace_all(s, "\xe2\x88\x9e", "\\infty ");  /* infinity */
    s = replace_all(s, "\xe2\x88\x9a", "\\sqrt ");   /* square root */
    s = replace_all(s, "\\!", "");
    s = replace_all(s, "{,}", ",");
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
    s = replace_all(s, "^{\\circ}", "");
    s = replace_all(s, "^\\circ", "");
    s = replace_all(s, "\\circ", "");
    s = replace_all(s, "\xc2\xb0", ""); /* ° */
    s = replace_all(s, "\\$", "");
    s = replace_all(s, "$", "");
    if (strstr(s, "\\%") || strchr(s, '%')) *percent = 1;
    s = replace_all(s, "\\%", "");
    s = replace_all(s, "%", "");
    s = replace_all(s, "\\{", "\x01"); /* protect set braces from unit stripping */
    s = replace_all(s, "\\}", "\x02");
    s = strip_units(s);
    s = replace_all(s, "\x01", "\\{");
    s = replace_all(s, "\x02", "\\}");
    /* thin spaces between digit groups: 10\,000 → 10000 */
    for (char *p = s; (p = strstr(p, "\\,"));) {
        if (p > s && isdigit((unsigned char)p[-1]) && isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3]) &&
            isdigit((unsigned char)p[4]) && !isdigit((unsigned char)p[5]))
            memmove(p, p + 2, strlen(p + 2) + 1);
        else p += 2;
    }
    s = replace_all(s, "\\,", " ");
    s = replace_all(s, "\\;", " ");
    s = replace_all(s, "\\:", " ");
    s = replace_cmd(s, "quad", " ");
    s = replace_cmd(s, "qquad", " ");
    s = replace_all(s, "~", " ");
    /* trailing sentence period */
    char *t = dup_trim(s, strlen(s));
    free(s);
    s = t;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '.' && !(n >= 2 && isdigit((unsigned char)s[n - 2]) && 0)) s[--n] = 0;
    t = dup_trim(s, n);
    free(s);
    s = t;
    s = strip_word_units(s);
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

char *pika_math_normalize(const char *answer) {
    int pct = 0;
    char *s = normalize_keep_spaces(answer, &pct);
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
    if (eq && !strchr(eq + 1, '=') && eq - s <= 2 && eq > s) {
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

/* Classify an answer (spaces kept). */
static void classify(const char *s, shape *sh) {
    memset(sh, 0, sizeof *sh);
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
                    if (rc == 0) { sh->k = K_MATRIX; return; }
                    free_parts(sh->parts, sh->n);
                    memset(sh, 0, sizeof *sh);
                }
            }
        }
    }
    /* a plain brace group around everything is only grouping: {1, 2} */
    size_t slen = strlen(s);
    if (slen >= 2 && s[0] == '{' && s[slen - 1] == '}' && outer_pair(s, 1, 1)) {
        char *inner = dup_trim(s + 1, slen - 2);
        classify(inner, sh);
        free(inner);
        return;
    }
    char **parts;
    int n = split_top(s, "\\cup", &parts);
    if (n > 1) { sh->k = K_UNION; sh->parts = parts; sh->n = n; return; }
    free_parts(parts, n);
    size_t len = strlen(s);
    if (len >= 4 && !strncmp(s, "\\{", 2) && !strcmp(s + len - 2, "\\}") && outer_pair(s, 2, 2)) {
        char *body = pika_strndup(s + 2, len - 4);
        sh->k = K_SET;
        sh->n = split_top(body, ",", &sh->parts);
        free(body);
        if (sh->n == 1 && sh->parts[0][0] == 0) { free_parts(sh->parts, sh->n); sh->n = 0; sh->parts = NULL; }
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
                return;
            }
            free_parts(ps, np);
        }
    }
    n = split_top(s, ",", &parts);
    if (n > 1) { sh->k = K_LIST; sh->parts = parts; sh->n = n; return; }
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
        return;
    }
    sh->k = K_SCALAR;
    sh->n = 1;
    sh->parts = pika_malloc(sizeof *sh->parts);
    sh->parts[0] = pika_strdup(s);
}

static int equiv_rec(const char *a, const char *b, int depth, int mcq);

/* Unordered match of two part lists (multiset, greedy with backtracking-free first fit). */
static int match_unordered(char **a, int na, char **b, int nb, int depth, int mcq) {
    if (na != nb || na > 200) return 0; /* very long lists: only the exact string match above counts */
    char *used = pika_calloc((size_t)nb + 1, 1);
    int ok = 1;
    for (int i = 0; i < na && ok; i++) {
        int found = 0;
        for (int j = 0; j < nb; j++)
            if (!used[j] && equiv_rec(a[i], b[j], depth + 1, mcq)) { used[j] = 1; found = 1; break; }
        ok = found;
    }
    free(used);
    return ok;
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

/* Drop a "x =" / "f(x) =" / "x \in" prefix when the left side is a simple name. */
static const char *drop_lhs(const char *s, char **buf) {
    *buf = NULL;
    char **parts;
    int n = split_top(s, "=", &parts);
    const char *res = s;
    if (n == 2) {
        const char *l = parts[0];
        size_t ln = strlen(l);
        int simple = ln > 0 && ln <= 12 && !strpbrk(l, "+-*/^") && (isalpha((unsigned char)l[0]) || l[0] == '\\');
        if (simple) { *buf = pika_strdup(parts[1]); res = *buf; }
    }
    free_parts(parts, n);
    if (res == s) {
        const char *in = strstr(s, "\\in");
        if (in && !isalpha((unsigned char)in[3]) && in - s <= 6 && in > s) { *buf = dup_trim(in + 3, strlen(in + 3)); res = *buf; }
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

static int scalar_equiv(const char *a, const char *b, int pa, int pb, int depth, int mcq) {
    /* equations on both sides: compare side by side */
    char **la, **lb;
    int na = split_top(a, "=", &la), nb = split_top(b, "=", &lb);
    if (na == 2 && nb == 2) {
        int r = (equiv_rec(la[0], lb[0], depth + 1, mcq) && equiv_rec(la[1], lb[1], depth + 1, mcq)) ||
                (equiv_rec(la[0], lb[1], depth + 1, mcq) && equiv_rec(la[1], lb[0], depth + 1, mcq));
        free_parts(la, na);
        free_parts(lb, nb);
        return r;
    }
    free_parts(la, na);
    free_parts(lb, nb);
    if (na > 1 || nb > 1) return 0;
    if (mcq) {
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
    pika_expr *ea = pika_expr_parse(a);
    if (!ea) return 0;
    pika_expr *eb = pika_expr_parse(b);
    if (!eb) { pika_expr_free(ea); return 0; }
    int r = 0;
    int nv = pika_expr_nvars(ea) + pika_expr_nvars(eb);
    if (nv == 0) {
        pika_num va, vb;
        if (pika_expr_eval(ea, 0, &va) == 0 && pika_expr_eval(eb, 0, &vb) == 0) {
            r = pika_num_equal(va, vb, REL_TOL_CONST);
            if (!r && pa != pb) { /* 50\% vs 0.5 */
                pika_num h = pika_num_int(100), q;
                if (pa) { q = va.exact ? pika_num_ratio(va.num, va.den * 100) : pika_num_double(va.v / 100); r = pika_num_equal(q, vb, REL_TOL_CONST); }
                else { q = vb.exact ? pika_num_ratio(vb.num, vb.den * 100) : pika_num_double(vb.v / 100); r = pika_num_equal(va, q, REL_TOL_CONST); }
                (void)h;
            }
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

static int shapes_equal(const shape *x, const shape *y, int depth, int mcq) {
    if (x->k != y->k) {
        /* a bare list and a set, or \pm and a list/set, compare as multisets */
        int xm = x->k == K_LIST || x->k == K_SET || x->k == K_PM;
        int ym = y->k == K_LIST || y->k == K_SET || y->k == K_PM;
        if (xm && ym) return match_unordered(x->parts, x->n, y->parts, y->n, depth, mcq);
        return 0;
    }
    switch (x->k) {
    case K_TUPLE:
        if (x->open != y->open || x->close != y->close || x->n != y->n) return 0;
        for (int i = 0; i < x->n; i++) if (!equiv_rec(x->parts[i], y->parts[i], depth + 1, mcq)) return 0;
        return 1;
    case K_MATRIX:
        if (x->rows != y->rows || x->cols != y->cols) return 0;
        for (int i = 0; i < x->n; i++) if (!equiv_rec(x->parts[i], y->parts[i], depth + 1, mcq)) return 0;
        return 1;
    case K_SET: case K_LIST: case K_UNION: case K_PM:
        return match_unordered(x->parts, x->n, y->parts, y->n, depth, mcq);
    default: return 0;
    }
}

/* Are {} and \begin/\end balanced? A malformed answer is never equivalent to anything. */
static int balanced(const char *s) {
    int d = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) { p++; continue; }
        if (*p == '{') d++;
        else if (*p == '}' && --d < 0) return 0;
    }
    return d == 0;
}

static int equiv_rec(const char *a_raw, const char *b_raw, int depth, int mcq) {
    if (depth > MAX_DEPTH) return 0;
    if (!balanced(a_raw) || !balanced(b_raw)) return 0;
    char *na = pika_math_normalize(a_raw), *nb = pika_math_normalize(b_raw);
    int r = *na && !strcmp(na, nb);
    free(na);
    free(nb);
    if (r) return 1;
    int pa = 0, pb = 0;
    char *a = normalize_keep_spaces(a_raw, &pa), *b = normalize_keep_spaces(b_raw, &pb);
    if (!*a || !*b) { free(a); free(b); return 0; }
    char *ba, *bb;
    const char *a2 = drop_lhs(a, &ba), *b2 = drop_lhs(b, &bb);
    shape sa, sb;
    classify(a2, &sa);
    classify(b2, &sb);
    if (sa.k == K_SCALAR && sb.k == K_SCALAR) r = scalar_equiv(sa.parts[0], sb.parts[0], pa, pb, depth, mcq);
    else r = shapes_equal(&sa, &sb, depth, mcq);
    /* an equation list "x=2, x=5" vs "2, 5": handled by per-part drop_lhs in recursion */
    shape_free(&sa);
    shape_free(&sb);
    free(ba);
    free(bb);
    free(a);
    free(b);
    return r;
}

int pika_math_equiv_opts(const char *pred, const char *gold, const pika_extract_opts *o) {
    if (!pred || !gold) return 0;
    return equiv_rec(pred, gold, 0, o ? o->mcq : 0);
}

int pika_math_equiv(const char *pred, const char *gold) { return pika_math_equiv_opts(pred, gold, NULL); }

/* Could the whole text be an answer on its own (no prose)? */
static int bare_answer(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n > 200 || strchr(t, '\n')) return 0;
    int pct = 0;
    char *s = normalize_keep_spaces(t, &pct);
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
    if (text) {
        pika_extract_opts strict = *o;
        strict.number_fallback = 0;
        ans = pika_math_extract(text, &strict);
        if (!ans && bare_answer(text)) ans = dup_trim(text, strlen(text));
        if (!ans && o->number_fallback) ans = pika_math_extract(text, o);
    }
    int r = ans && gold ? pika_math_equiv_opts(ans, gold, o) : 0;
    if (answer_out) *answer_out = ans;
    else free(ans);
    return r;
}
