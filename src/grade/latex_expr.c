/* latex_expr.c — owns the LaTeX expression parser (recursive descent into a flat node array) and its
 * evaluator over exact rationals with a double fallback. See include/pika/latex_expr.h. */
#include "pika/latex_expr.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/util.h"

/* ---------------------------------------------------------------- numbers */

pika_num pika_num_double(double v) {
    pika_num r = {0, 0, 1, v};
    return r;
}

pika_num pika_num_int(int64_t v) {
    pika_num r = {1, v, 1, (double)v};
    return r;
}

/* Build num/den from 128-bit parts; falls back to double when it does not fit. */
static pika_num make_ratio128(__int128 n, __int128 d) {
    if (d == 0) return pika_num_double(NAN);
    if (d < 0) { n = -n; d = -d; }
    __int128 a = n < 0 ? -n : n, b = d;
    while (b) { __int128 t = a % b; a = b; b = t; }
    if (a > 1) { n /= a; d /= a; }
    if (n > INT64_MAX || n < -INT64_MAX || d > INT64_MAX) return pika_num_double((double)n / (double)d);
    pika_num r = {1, (int64_t)n, (int64_t)d, (double)n / (double)d};
    return r;
}

pika_num pika_num_ratio(int64_t num, int64_t den) { return make_ratio128(num, den); }

static pika_num num_add(pika_num a, pika_num b) {
    if (a.exact && b.exact) return make_ratio128((__int128)a.num * b.den + (__int128)b.num * a.den, (__int128)a.den * b.den);
    return pika_num_double(a.v + b.v);
}
static pika_num num_neg(pika_num a) {
    if (a.exact) { a.num = -a.num; a.v = -a.v; return a; }
    return pika_num_double(-a.v);
}
static pika_num num_mul(pika_num a, pika_num b) {
    if (a.exact && b.exact) return make_ratio128((__int128)a.num * b.num, (__int128)a.den * b.den);
    return pika_num_double(a.v * b.v);
}
static int num_div(pika_num a, pika_num b, pika_num *r) {
    if (b.exact ? b.num == 0 : b.v == 0) return -1;
    if (a.exact && b.exact) { *r = make_ratio128((__int128)a.num * b.den, (__int128)a.den * b.num); return 0; }
    *r = pika_num_double(a.v / b.v);
    return 0;
}

/* Exact integer k-th root of v >= 0 if it exists. */
static int iroot(int64_t v, int k, int64_t *out) {
    if (v < 0) return 0;
    double g = pow((double)v, 1.0 / k);
    for (int64_t c = (int64_t)g - 1; c <= (int64_t)g + 1; c++) {
        if (c < 0) continue;
        __int128 p = 1;
        for (int i = 0; i < k && p <= (__int128)v; i++) p *= c;
        if (p == v) { *out = c; return 1; }
    }
    return 0;
}

static int num_pow(pika_num a, pika_num b, pika_num *r) {
    if (b.exact && b.den == 1 && a.exact && b.num >= -256 && b.num <= 256) {
        int64_t e = b.num < 0 ? -b.num : b.num;
        if (b.num < 0 && a.num == 0) return -1;
        pika_num acc = pika_num_int(1), base = a;
        while (e) {
            if (e & 1) acc = num_mul(acc, base);
            e >>= 1;
            if (e) base = num_mul(base, base);
        }
        if (b.num < 0) return num_div(pika_num_int(1), acc, r);
        *r = acc;
        return 0;
    }
    if (b.exact && a.exact && b.den <= 16 && b.num >= -64 && b.num <= 64) { /* rational exponent p/q */
        int q = (int)b.den;
        int64_t rn, rd;
        if (a.num >= 0 && iroot(a.num, q, &rn) && iroot(a.den, q, &rd))
            return num_pow(pika_num_ratio(rn, rd), pika_num_int(b.num), r);
        if (a.num < 0 && (q & 1) && iroot(-a.num, q, &rn) && iroot(a.den, q, &rd))
            return num_pow(pika_num_ratio(-rn, rd), pika_num_int(b.num), r);
        if (a.num < 0 && !(q & 1)) return -1;
        if (a.num < 0) { /* odd root of a negative number */
            double m = pow(-a.v, 1.0 / q);
            *r = pika_num_double(pow(-m, (double)b.num));
            return 0;
        }
    }
    if (a.v < 0 && b.v != floor(b.v)) return -1;
    if (a.v == 0 && b.v < 0) return -1;
    *r = pika_num_double(pow(a.v, b.v));
    return 0;
}

int pika_num_equal(pika_num a, pika_num b, double rel_tol) {
    if (a.exact && b.exact) return a.num == b.num && a.den == b.den;
    if (isnan(a.v) || isnan(b.v)) return 0;
    if (isinf(a.v) || isinf(b.v)) return a.v == b.v;
    double m = fabs(a.v) > fabs(b.v) ? fabs(a.v) : fabs(b.v);
    return fabs(a.v - b.v) <= rel_tol * m + 1e-14;
}

/* ---------------------------------------------------------------- AST */

enum { N_NUM, N_VAR, N_ADD, N_SUB, N_MUL, N_DIV, N_POW, N_NEG, N_FN, N_FN2 };
enum { F_SQRT, F_ABS, F_SIN, F_COS, F_TAN, F_SEC, F_CSC, F_COT, F_LN, F_LOG10, F_EXP, F_FACT, F_FLOOR, F_CEIL,
       F_LOGB /* 2-arg: log_a b */, F_ROOT /* 2-arg: root index a of b */, F_BINOM };

typedef struct {
    int op, fn;
    int a, b;      /* child nodes */
    int var;       /* N_VAR: variable index */
    pika_num num;  /* N_NUM */
    int literal_int; /* N_NUM written as a plain whole-number literal */
    int height;    /* 1 + the children's height: bounds the evaluator's recursion */
} node;

#define MAX_NODES 20000
#define MAX_HEIGHT 1000

#define MAX_VARS 32

struct pika_expr {
    node *nodes;
    int n, cap;
    int root;
    int nvars;
    char *vars[MAX_VARS];
};

typedef struct {
    const char *s;
    size_t i;
    pika_expr *e;
    int depth;
    int err;
} parser;

static int fail(parser *p, const char *msg);

static int new_node(parser *p, int op) {
    pika_expr *e = p->e;
    if (e->n >= MAX_NODES) return fail(p, "expression too long");
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 32;
        e->nodes = pika_realloc(e->nodes, (size_t)e->cap * sizeof *e->nodes);
    }
    memset(&e->nodes[e->n], 0, sizeof(node));
    e->nodes[e->n].op = op;
    e->nodes[e->n].a = e->nodes[e->n].b = -1;
    e->nodes[e->n].height = 1;
    return e->n++;
}

/* Set node k's children; fails when the tree gets too tall (1+1+1+... or x!!!! chains). */
static int link(parser *p, int k, int a, int b) {
    if (k < 0) return -1;
    node *n = &p->e->nodes[k];
    n->a = a;
    n->b = b;
    int h = 0;
    if (a >= 0 && p->e->nodes[a].height > h) h = p->e->nodes[a].height;
    if (b >= 0 && p->e->nodes[b].height > h) h = p->e->nodes[b].height;
    n->height = h + 1;
    if (n->height > MAX_HEIGHT) return fail(p, "expression nested too deeply");
    return k;
}

static int bin(parser *p, int op, int a, int b) {
    if (a < 0 || b < 0) return -1;
    return link(p, new_node(p, op), a, b);
}

static int fn1(parser *p, int fn, int a) {
    if (a < 0) return -1;
    int k = link(p, new_node(p, N_FN), a, -1);
    if (k >= 0) p->e->nodes[k].fn = fn;
    return k;
}

/* Unary minus node over a. */
static int neg_node(parser *p, int a) {
    if (a < 0) return -1;
    return link(p, new_node(p, N_NEG), a, -1);
}

static int num_node(parser *p, pika_num v, int literal_int) {
    int k = new_node(p, N_NUM);
    if (k < 0) return -1;
    p->e->nodes[k].num = v;
    p->e->nodes[k].literal_int = literal_int;
    return k;
}

static int fail(parser *p, const char *msg) {
    if (!p->err) pika_set_error("cannot parse expression at offset %zu: %s", p->i, msg);
    p->err = 1;
    return -1;
}

/* Does the command at s (after '\') equal name and end there (no letter follows)? */
static int cmd_is(const char *s, const char *name) {
    size_t n = strlen(name);
    return strncmp(s, name, n) == 0 && !isalpha((unsigned char)s[n]);
}

static void skip_ws(parser *p) {
    static const char *spacing[] = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
                                    "quad", "qquad", "displaystyle", "textstyle", "limits", NULL};
    for (;;) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '~') { p->i++; continue; }
        if (c == '\\') {
            char d = p->s[p->i + 1];
            if (d == ',' || d == ';' || d == ':' || d == '!' || d == ' ') { p->i += 2; continue; }
            int hit = 0;
            for (int k = 0; spacing[k]; k++)
                if (cmd_is(p->s + p->i + 1, spacing[k])) { p->i += 1 + strlen(spacing[k]); hit = 1; break; }
            if (hit) continue;
        }
        break;
    }
}

static int peek(parser *p) {
    skip_ws(p);
    return (unsigned char)p->s[p->i];
}

static int accept(parser *p, char c) {
    if (peek(p) == c) { p->i++; return 1; }
    return 0;
}

/* Accept command \name at the cursor. */
static int accept_cmd(parser *p, const char *name) {
    skip_ws(p);
    if (p->s[p->i] == '\\' && cmd_is(p->s + p->i + 1, name)) { p->i += 1 + strlen(name); return 1; }
    return 0;
}

static int add_var(parser *p, const char *name, size_t n) {
    pika_expr *e = p->e;
    for (int i = 0; i < e->nvars; i++)
        if (strlen(e->vars[i]) == n && !strncmp(e->vars[i], name, n)) return i;
    if (e->nvars == MAX_VARS) return fail(p, "too many variables");
    e->vars[e->nvars] = pika_strndup(name, n);
    return e->nvars++;
}

static int parse_sum(parser *p);
static int parse_unary(parser *p);
static int parse_power(parser *p);

/* A brace group {expr}, or a single token (digit, letter, \command) as in \frac12. */
static int parse_arg(parser *p) {
    skip_ws(p);
    if (accept(p, '{')) {
        int r = parse_sum(p);
        if (r < 0) return r;
        if (!accept(p, '}')) return fail(p, "expected '}'");
        return r;
    }
    char c = p->s[p->i];
    if (isdigit((unsigned char)c)) {
        p->i++;
        return num_node(p, pika_num_int(c - '0'), 1);
    }
    if (isalpha((unsigned char)c)) {
        p->i++;
        if (c == 'e') return num_node(p, pika_num_double(M_E), 0); /* Euler's number, as in \frac e2 */
        int k = new_node(p, N_VAR);
        int v = add_var(p, &c, 1);
        if (v < 0 || k < 0) return -1;
        p->e->nodes[k].var = v;
        return k;
    }
    if (c == '\\') return parse_power(p);
    return fail(p, "expected an argument");
}

/* Number literal: 12, 1.5, .5, 1e-3. Exact when it fits in 18 digits. */
static int parse_number(parser *p) {
    const char *s = p->s + p->i;
    size_t k = 0;
    int64_t mant = 0;
    int digits = 0, frac = 0, seen_dot = 0, big = 0;
    while (isdigit((unsigned char)s[k]) || (s[k] == '.' && !seen_dot && isdigit((unsigned char)s[k + 1]))) {
        if (s[k] == '.') { seen_dot = 1; k++; continue; }
        if (digits < 18) { mant = mant * 10 + (s[k] - '0'); digits++; if (seen_dot) frac++; }
        else { big = 1; if (!seen_dot) frac--; }
        k++;
    }
    if (k == 0) return fail(p, "expected a number");
    /* repeating decimal: 0.\overline{3} = 1/3, 0.1\overline{6} = 1/6, 2.\overline{45} */
    {
        size_t j = k;
        if (s[j] == '.' && !seen_dot) { j++; seen_dot = 2; }
        if (seen_dot && !strncmp(s + j, "\\overline{", 10) && !big) {
            const char *r = s + j + 10;
            size_t nr = 0;
            while (isdigit((unsigned char)r[nr])) nr++;
            if (nr == 0 || nr > 9 || r[nr] != '}' || digits + (int)nr > 18) return fail(p, "bad repeating decimal");
            /* x = (mant*10^nr + R - mant) / (10^frac * (10^nr - 1)) */
            int64_t rep = 0, pw = 1, pf = 1;
            for (size_t t = 0; t < nr; t++) { rep = rep * 10 + (r[t] - '0'); pw *= 10; }
            for (int t = 0; t < frac; t++) pf *= 10;
            __int128 num = (__int128)mant * pw + rep - mant, den = (__int128)pf * (pw - 1);
            p->i += (size_t)(r + nr + 1 - s);
            pika_num v;
            if (num > INT64_MAX || den > INT64_MAX) v = pika_num_double((double)num / (double)den);
            else v = pika_num_ratio((int64_t)num, (int64_t)den);
            return num_node(p, v, 0);
        }
        if (seen_dot == 2) seen_dot = 0;
    }
    size_t numlen = k;
    int exp10 = 0, has_exp = 0;
    if ((s[k] == 'e' || s[k] == 'E') &&
        (isdigit((unsigned char)s[k + 1]) || ((s[k + 1] == '-' || s[k + 1] == '+') && isdigit((unsigned char)s[k + 2])))) {
        size_t j = k + 1;
        int sign = 1;
        if (s[j] == '-' || s[j] == '+') { sign = s[j] == '-' ? -1 : 1; j++; }
        int ev = 0;
        while (isdigit((unsigned char)s[j])) { if (ev < 100000) ev = ev * 10 + (s[j] - '0'); j++; }
        exp10 = sign * ev;
        has_exp = 1;
        k = j;
    }
    /* base subscript: 1011_2, 1011_{2}, 777_8 */
    if (!seen_dot && !has_exp && s[k] == '_') {
        size_t j = k + 1;
        int br = s[j] == '{';
        j += br;
        int base = 0;
        while (isdigit((unsigned char)s[j]) && base < 100) base = base * 10 + (s[j++] - '0');
        if (br && s[j] == '}') j++;
        else if (br) return fail(p, "bad base subscript");
        if (base < 2 || base > 10 || numlen > 60) return fail(p, "unsupported base");
        __int128 acc = 0;
        for (size_t t = 0; t < numlen; t++) {
            int dg = s[t] - '0';
            if (dg >= base) return fail(p, "digit out of range for the base");
            acc = acc * base + dg;
            if (acc > (__int128)INT64_MAX) return fail(p, "number too large for its base");
        }
        p->i += j;
        return num_node(p, pika_num_int((int64_t)acc), 0);
    }
    p->i += k;
    pika_num v;
    int e10 = exp10 - frac;
    if (!big && e10 >= -18 && e10 <= 18) {
        int64_t pw = 1;
        for (int i = 0; i < (e10 < 0 ? -e10 : e10); i++) pw *= 10;
        v = e10 >= 0 ? make_ratio128((__int128)mant * pw, 1) : pika_num_ratio(mant, pw);
    } else {
        char buf[512];
        size_t n = numlen < sizeof buf - 1 ? numlen : sizeof buf - 1;
        memcpy(buf, s, n);
        buf[n] = 0;
        v = pika_num_double(strtod(buf, NULL) * pow(10.0, exp10));
    }
    return num_node(p, v, !seen_dot && !has_exp);
}

static const struct { const char *name; int fn; } FUNCS[] = {
    {"sin", F_SIN}, {"cos", F_COS}, {"tan", F_TAN}, {"sec", F_SEC}, {"csc", F_CSC}, {"cot", F_COT},
    {"ln", F_LN}, {"log", F_LOG10}, {"exp", F_EXP}, {NULL, 0}};

static const char *GREEK[] = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
                              "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau",
                              "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
                              "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega", NULL};

/* Function application after \sin etc.: optional ^{n} power, then (x), {x} or a power-level factor. */
static int parse_fn_app(parser *p, int fn) {
    int powr = -1;
    if (peek(p) == '^') {
        p->i++;
        powr = parse_arg(p);
        if (powr < 0) return -1;
    }
    int arg;
    if (fn == F_LOG10 && peek(p) == '_') { /* \log_b x */
        p->i++;
        int base = parse_arg(p);
        if (base < 0) return -1;
        arg = parse_power(p);
        if (arg < 0) return -1;
        int k = bin(p, N_FN2, base, arg);
        if (k < 0) return -1;
        p->e->nodes[k].fn = F_LOGB;
        return powr >= 0 ? bin(p, N_POW, k, powr) : k;
    }
    arg = parse_power(p);
    if (arg < 0) return -1;
    int k = fn1(p, fn, arg);
    return powr >= 0 ? bin(p, N_POW, k, powr) : k;
}

static int parse_var_after(parser *p, const char *name, size_t n) {
    /* optional subscript becomes part of the name */
    char buf[128];
    if (n >= sizeof buf - 40) return fail(p, "name too long");
    memcpy(buf, name, n);
    size_t m = n;
    if (peek(p) == '_') {
        p->i++;
        skip_ws(p);
        buf[m++] = '_';
        if (p->s[p->i] == '{') {
            size_t j = p->i + 1;
            int d = 1;
            while (p->s[j] && d) { if (p->s[j] == '{') d++; else if (p->s[j] == '}') d--; if (d) j++; }
            if (!p->s[j]) return fail(p, "unbalanced subscript");
            for (size_t t = p->i + 1; t < j && m < sizeof buf - 1; t++)
                if (!isspace((unsigned char)p->s[t])) buf[m++] = p->s[t];
            p->i = j + 1;
        } else if (isalnum((unsigned char)p->s[p->i])) {
            buf[m++] = p->s[p->i++];
        } else return fail(p, "bad subscript");
    }
    int v = add_var(p, buf, m);
    if (v < 0) return -1;
    int k = new_node(p, N_VAR);
    if (k < 0) return -1;
    p->e->nodes[k].var = v;
    return k;
}

/* \text{..}, \mathrm{..} etc.: allowed only around a single letter (a variable) or empty text. */
static int parse_textlike(parser *p) {
    skip_ws(p);
    if (p->s[p->i] != '{') return fail(p, "expected '{' after text command");
    size_t j = p->i + 1, b = j;
    while (p->s[j] && p->s[j] != '}') j++;
    if (!p->s[j]) return fail(p, "unbalanced text");
    size_t a = b, z = j;
    while (a < z && isspace((unsigned char)p->s[a])) a++;
    while (z > a && isspace((unsigned char)p->s[z - 1])) z--;
    if (z - a == 1 && isalpha((unsigned char)p->s[a])) {
        p->i = j + 1;
        if (p->s[a] == 'e' && p->s[p->i] != '_') return num_node(p, pika_num_double(M_E), 0); /* \mathrm{e} */
        return parse_var_after(p, p->s + a, 1);
    }
    return fail(p, "text inside an expression");
}

static int parse_primary(parser *p) {
    if (++p->depth > 200) return fail(p, "nesting too deep");
    int r = -1;
    int c = peek(p);
    if (isdigit(c) || (c == '.' && isdigit((unsigned char)p->s[p->i + 1]))) {
        r = parse_number(p);
        if (r < 0) goto out;
        /* mixed number: 2\frac{1}{2} */
        if (p->e->nodes[r].literal_int) {
            size_t save = p->i;
            skip_ws(p);
            const char *t = p->s + p->i;
            if (t[0] == '\\' && (cmd_is(t + 1, "frac") || cmd_is(t + 1, "dfrac") || cmd_is(t + 1, "tfrac"))) {
                size_t save2 = p->i;
                p->i += t[1] == 'f' ? 5 : 6;
                int a = parse_arg(p), b = a >= 0 ? parse_arg(p) : -1;
                if (a >= 0 && b >= 0 && p->e->nodes[a].op == N_NUM && p->e->nodes[a].literal_int &&
                    p->e->nodes[b].op == N_NUM && p->e->nodes[b].literal_int && p->e->nodes[r].num.num >= 0) {
                    r = bin(p, N_ADD, r, bin(p, N_DIV, a, b));
                    goto out;
                }
                if (p->err) { r = -1; goto out; }
                p->i = save2;
            }
            p->i = save;
        }
        goto out;
    }
    if (isalpha(c)) {
        const char *s = p->s + p->i;
        if (!strncmp(s, "pi", 2) && !isalpha((unsigned char)s[2])) { p->i += 2; r = num_node(p, pika_num_double(M_PI), 0); goto out; }
        if (!strncmp(s, "sqrt", 4) && !isalpha((unsigned char)s[4])) { p->i += 4; int a = parse_power(p); r = a < 0 ? -1 : fn1(p, F_SQRT, a); goto out; }
        for (int k = 0; FUNCS[k].name; k++) {
            size_t n = strlen(FUNCS[k].name);
            if (!strncmp(s, FUNCS[k].name, n) && !isalpha((unsigned char)s[n]) && n > 1) {
                p->i += n;
                r = parse_fn_app(p, FUNCS[k].fn);
                goto out;
            }
        }
        p->i++;
        if (s[0] == 'e' && s[1] != '_') { r = num_node(p, pika_num_double(M_E), 0); goto out; } /* Euler's number */
        r = parse_var_after(p, s, 1);
        goto out;
    }
    if (c == '(' || c == '[' || c == '{') {
        p->i++;
        r = parse_sum(p);
        if (r < 0) goto out;
        char close = c == '(' ? ')' : c == '[' ? ']' : '}';
        if (!accept(p, close)) r = fail(p, "unbalanced bracket");
        goto out;
    }
    if (c == '|') {
        p->i++;
        int a = parse_sum(p);
        if (a < 0) { r = -1; goto out; }
        if (!accept(p, '|')) { r = fail(p, "unbalanced |"); goto out; }
        r = fn1(p, F_ABS, a);
        goto out;
    }
    if (c == '\\') {
        const char *s = p->s + p->i + 1;
        if (cmd_is(s, "frac") || cmd_is(s, "dfrac") || cmd_is(s, "tfrac") || cmd_is(s, "cfrac")) {
            p->i += 1 + (s[0] == 'f' ? 4 : 5);
            int a = parse_arg(p);
            int b = a >= 0 ? parse_arg(p) : -1;
            r = b < 0 ? -1 : bin(p, N_DIV, a, b);
            goto out;
        }
        if (cmd_is(s, "binom") || cmd_is(s, "dbinom") || cmd_is(s, "tbinom")) {
            p->i += 1 + (s[0] == 'b' ? 5 : 6);
            int a = parse_arg(p);
            int b = a >= 0 ? parse_arg(p) : -1;
            if (b < 0) goto out;
            r = bin(p, N_FN2, a, b);
            if (r >= 0) p->e->nodes[r].fn = F_BINOM;
            goto out;
        }
        if (cmd_is(s, "sqrt")) {
            p->i += 5;
            int idx = -1;
            if (peek(p) == '[') {
                p->i++;
                idx = parse_sum(p);
                if (idx < 0 || !accept(p, ']')) { r = idx < 0 ? -1 : fail(p, "expected ']'"); goto out; }
            }
            int a = parse_arg(p);
            if (a < 0) goto out;
            if (idx >= 0) { r = bin(p, N_FN2, idx, a); if (r >= 0) p->e->nodes[r].fn = F_ROOT; }
            else r = fn1(p, F_SQRT, a);
            goto out;
        }
        if (cmd_is(s, "pi")) { p->i += 3; r = num_node(p, pika_num_double(M_PI), 0); goto out; }
        if (cmd_is(s, "infty")) { p->i += 6; r = num_node(p, pika_num_double(INFINITY), 0); goto out; }
        if (cmd_is(s, "lfloor") || cmd_is(s, "lceil")) {
            int fl = s[1] == 'f';
            p->i += fl ? 7 : 6;
            int a = parse_sum(p);
            if (a < 0) goto out;
            if (!accept_cmd(p, fl ? "rfloor" : "rceil")) { r = fail(p, "unbalanced floor/ceil"); goto out; }
            r = fn1(p, fl ? F_FLOOR : F_CEIL, a);
            goto out;
        }
        if (cmd_is(s, "lvert") || cmd_is(s, "vert")) {
            p->i += 1 + (s[0] == 'l' ? 5 : 4);
            int a = parse_sum(p);
            if (a < 0) goto out;
            if (!accept_cmd(p, "rvert") && !accept_cmd(p, "vert")) { r = fail(p, "unbalanced |"); goto out; }
            r = fn1(p, F_ABS, a);
            goto out;
        }
        if (cmd_is(s, "exp")) { p->i += 4; r = parse_fn_app(p, F_EXP); goto out; }
        for (int k = 0; FUNCS[k].name; k++)
            if (cmd_is(s, FUNCS[k].name)) {
                p->i += 1 + strlen(FUNCS[k].name);
                r = parse_fn_app(p, FUNCS[k].fn);
                goto out;
            }
        if (cmd_is(s, "text") || cmd_is(s, "mathrm") || cmd_is(s, "textrm") || cmd_is(s, "mathit") ||
            cmd_is(s, "textit") || cmd_is(s, "mathbf") || cmd_is(s, "textbf") || cmd_is(s, "operatorname")) {
            p->i += 1 + strcspn(s, "{ ");
            r = parse_textlike(p);
            goto out;
        }
        for (int k = 0; GREEK[k]; k++)
            if (cmd_is(s, GREEK[k])) {
                p->i += 1 + strlen(GREEK[k]);
                r = parse_var_after(p, s - 1, 1 + strlen(GREEK[k]));
                goto out;
            }
        r = fail(p, "unknown command");
        goto out;
    }
    r = fail(p, c ? "unexpected character" : "unexpected end");
out:
    p->depth--;
    return r;
}

/* Exponent after '^': a brace group, or a signed digit run / letter / command / parenthesis. */
static int parse_exponent(parser *p) {
    skip_ws(p);
    if (p->s[p->i] == '{') return parse_arg(p);
    if (accept(p, '-')) {
        if (++p->depth > 200) { p->depth--; return fail(p, "nesting too deep"); }
        int a = parse_exponent(p);
        p->depth--;
        return neg_node(p, a);
    }
    if (isdigit((unsigned char)p->s[p->i])) return parse_number(p);
    return parse_primary(p);
}

static int is_degree_mark(parser *p) {
    /* ^\circ or ^{\circ} */
    size_t save = p->i;
    if (accept_cmd(p, "circ")) return 1;
    if (accept(p, '{') && accept_cmd(p, "circ") && accept(p, '}')) return 1;
    p->i = save;
    return 0;
}

static int parse_power(parser *p) {
    if (++p->depth > 200) { p->depth--; return fail(p, "nesting too deep"); }
    int b = parse_primary(p);
    while (b >= 0) {
        if (accept(p, '!')) { b = fn1(p, F_FACT, b); continue; }
        if (peek(p) == '^') {
            p->i++;
            if (is_degree_mark(p)) { /* x^\circ = x * pi/180 (what trigonometric functions need) */
                b = bin(p, N_MUL, b, num_node(p, pika_num_double(M_PI / 180), 0));
                continue;
            }
            int e = parse_exponent(p);
            if (e < 0) { b = -1; break; }
            b = bin(p, N_POW, b, e);
            continue;
        }
        break;
    }
    p->depth--;
    return b;
}

static int parse_unary(parser *p) {
    if (++p->depth > 200) { p->depth--; return fail(p, "nesting too deep"); }
    int r;
    if (accept(p, '-')) {
        int a = parse_unary(p);
        r = neg_node(p, a);
    } else if (accept(p, '+')) r = parse_unary(p);
    else r = parse_power(p);
    p->depth--;
    return r;
}

/* Can the text at the cursor start an implicitly multiplied factor? */
static int starts_factor(parser *p) {
    int c = peek(p);
    if (isalnum(c) || c == '(' || c == '{' || c == '.') return 1;
    if (c == '[') return 1;
    if (c == '\\') {
        const char *s = p->s + p->i + 1;
        if (cmd_is(s, "cdot") || cmd_is(s, "times") || cmd_is(s, "div") || cmd_is(s, "right") || cmd_is(s, "rfloor") ||
            cmd_is(s, "rceil") || cmd_is(s, "rvert") || cmd_is(s, "vert") || cmd_is(s, "end") || cmd_is(s, "cup") ||
            cmd_is(s, "cap") || cmd_is(s, "pm") || cmd_is(s, "mp"))
            return 0;
        return isalpha((unsigned char)s[0]);
    }
    return 0;
}

static int parse_term(parser *p) {
    int a = parse_unary(p);
    while (a >= 0) {
        if (p->e->n > 20000) return fail(p, "expression too long");
        if (accept(p, '*') || accept_cmd(p, "cdot") || accept_cmd(p, "times") || accept_cmd(p, "ast")) {
            int b = parse_unary(p);
            a = b < 0 ? -1 : bin(p, N_MUL, a, b);
        } else if (accept(p, '/') || accept_cmd(p, "div")) {
            int b = parse_unary(p);
            a = b < 0 ? -1 : bin(p, N_DIV, a, b);
        } else if (starts_factor(p)) {
            int b = parse_power(p);
            a = b < 0 ? -1 : bin(p, N_MUL, a, b);
        } else break;
    }
    return a;
}

static int parse_sum(parser *p) {
    if (++p->depth > 200) { p->depth--; return fail(p, "nesting too deep"); }
    int a = parse_term(p);
    while (a >= 0) {
        if (p->e->n > 20000) { a = fail(p, "expression too long"); break; }
        if (accept(p, '+')) {
            int b = parse_term(p);
            a = b < 0 ? -1 : bin(p, N_ADD, a, b);
        } else if (accept(p, '-')) {
            int b = parse_term(p);
            a = b < 0 ? -1 : bin(p, N_SUB, a, b);
        } else break;
    }
    p->depth--;
    return a;
}

pika_expr *pika_expr_parse(const char *latex) {
    pika_expr *e = pika_calloc(1, sizeof *e);
    parser p = {latex, 0, e, 0, 0};
    int r = parse_sum(&p);
    if (r >= 0 && peek(&p) != 0) r = fail(&p, "unexpected trailing text");
    if (r < 0 || p.err) {
        pika_expr_free(e);
        return NULL;
    }
    e->root = r;
    return e;
}

void pika_expr_free(pika_expr *e) {
    if (!e) return;
    for (int i = 0; i < e->nvars; i++) free(e->vars[i]);
    free(e->nodes);
    free(e);
}

int pika_expr_nvars(const pika_expr *e) { return e->nvars; }
const char *pika_expr_var(const pika_expr *e, int i) { return i >= 0 && i < e->nvars ? e->vars[i] : NULL; }

/* ---------------------------------------------------------------- evaluation */

double pika_expr_var_value(const char *name, int point) {
    uint64_t h = pika_hash_str(name);
    h ^= (uint64_t)(point + 1) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 31; h *= 0xBF58476D1CE4E5B9ull; h ^= h >> 29; h *= 0x94D049BB133111EBull; h ^= h >> 32;
    double u = (double)(h >> 11) / 9007199254740992.0; /* [0,1) */
    double v = 0.3 + 2.5 * u;                           /* [0.3, 2.8) */
    return (point % 3 == 2) ? -v : v;
}

static int eval_node(const pika_expr *e, int k, int point, pika_num *out) {
    const node *n = &e->nodes[k];
    pika_num a, b;
    switch (n->op) {
    case N_NUM: *out = n->num; return 0;
    case N_VAR: *out = pika_num_double(pika_expr_var_value(e->vars[n->var], point)); return 0;
    case N_NEG:
        if (eval_node(e, n->a, point, &a)) return -1;
        *out = num_neg(a);
        return 0;
    default: break;
    }
    if (eval_node(e, n->a, point, &a)) return -1;
    if (n->op == N_FN) {
        double x = a.v, y;
        switch (n->fn) {
        case F_SQRT:
            if (a.exact) {
                int64_t rn, rd;
                if (a.num >= 0 && iroot(a.num, 2, &rn) && iroot(a.den, 2, &rd)) { *out = pika_num_ratio(rn, rd); return 0; }
            }
            if (x < 0) return -1;
            y = sqrt(x);
            break;
        case F_ABS:
            if (a.exact) { *out = a.num < 0 ? num_neg(a) : a; return 0; }
            y = fabs(x);
            break;
        case F_SIN: y = sin(x); break;
        case F_COS: y = cos(x); break;
        case F_TAN: y = tan(x); break;
        case F_SEC: y = 1 / cos(x); break;
        case F_CSC: if (sin(x) == 0) return -1; y = 1 / sin(x); break;
        case F_COT: if (tan(x) == 0) return -1; y = 1 / tan(x); break;
        case F_LN: if (x <= 0) return -1; y = log(x); break;
        case F_LOG10: if (x <= 0) return -1; y = log10(x); break;
        case F_EXP: y = exp(x); break;
        case F_FLOOR:
            if (a.exact) { int64_t q = a.num / a.den; if (a.num % a.den && a.num < 0) q--; *out = pika_num_int(q); return 0; }
            y = floor(x);
            break;
        case F_CEIL:
            if (a.exact) { int64_t q = a.num / a.den; if (a.num % a.den && a.num > 0) q++; *out = pika_num_int(q); return 0; }
            y = ceil(x);
            break;
        case F_FACT:
            if (!a.exact || a.den != 1 || a.num < 0 || a.num > 170) return -1;
            {
                pika_num acc = pika_num_int(1);
                for (int64_t i = 2; i <= a.num; i++) acc = num_mul(acc, pika_num_int(i));
                *out = acc;
                return 0;
            }
        default: return -1;
        }
        if (isnan(y)) return -1;
        *out = pika_num_double(y);
        return 0;
    }
    if (eval_node(e, n->b, point, &b)) return -1;
    switch (n->op) {
    case N_ADD: *out = num_add(a, b); return 0;
    case N_SUB: *out = num_add(a, num_neg(b)); return 0;
    case N_MUL: *out = num_mul(a, b); return 0;
    case N_DIV: return num_div(a, b, out);
    case N_POW: {
        int r = num_pow(a, b, out);
        return r || isnan(out->v) ? -1 : 0;
    }
    case N_FN2:
        if (n->fn == F_LOGB) {
            if (a.v <= 0 || a.v == 1 || b.v <= 0) return -1;
            /* exact when b is an integer power of a */
            double y = log(b.v) / log(a.v);
            double ry = nearbyint(y);
            if (a.exact && b.exact && fabs(y - ry) < 1e-9 && fabs(ry) <= 64) {
                pika_num t;
                if (num_pow(a, pika_num_int((int64_t)ry), &t) == 0 && pika_num_equal(t, b, 0)) { *out = pika_num_int((int64_t)ry); return 0; }
            }
            *out = pika_num_double(y);
            return 0;
        }
        if (n->fn == F_ROOT) {
            if (!a.exact || a.den != 1 || a.num < 1 || a.num > 64) {
                if (a.v == 0) return -1;
                return num_pow(b, pika_num_double(1.0 / a.v), out);
            }
            return num_pow(b, pika_num_ratio(1, a.num), out);
        }
        if (n->fn == F_BINOM) {
            if (!a.exact || !b.exact || a.den != 1 || b.den != 1 || a.num < 0 || b.num < 0 || a.num > 1000) return -1;
            if (b.num > a.num) { *out = pika_num_int(0); return 0; }
            pika_num acc = pika_num_int(1);
            for (int64_t i = 1; i <= b.num; i++) {
                acc = num_mul(acc, pika_num_int(a.num - b.num + i));
                num_div(acc, pika_num_int(i), &acc);
            }
            *out = acc;
            return 0;
        }
        return -1;
    default: return -1;
    }
}

int pika_expr_eval(const pika_expr *e, int point, pika_num *out) {
    if (eval_node(e, e->root, point, out)) return -1;
    if (isnan(out->v)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- complex evaluation */

/* Complex values as (re, im) pairs of doubles; the variable named `imag` is the imaginary unit. */
typedef struct { double re, im; } cplx;

static cplx c_mul(cplx a, cplx b) { return (cplx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re}; }
static int c_div(cplx a, cplx b, cplx *r) {
    double d = b.re * b.re + b.im * b.im;
    if (d == 0) return -1;
    *r = (cplx){(a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d};
    return 0;
}
static cplx c_exp(cplx a) { double m = exp(a.re); return (cplx){m * cos(a.im), m * sin(a.im)}; }
static int c_log(cplx a, cplx *r) {
    if (a.re == 0 && a.im == 0) return -1;
    *r = (cplx){log(hypot(a.re, a.im)), atan2(a.im, a.re)};
    return 0;
}
static int c_pow(cplx a, cplx b, cplx *r) {
    if (b.im == 0 && b.re == floor(b.re) && fabs(b.re) <= 256) { /* integer power: repeated squaring */
        long e = (long)fabs(b.re);
        cplx acc = {1, 0}, base = a;
        while (e) {
            if (e & 1) acc = c_mul(acc, base);
            e >>= 1;
            if (e) base = c_mul(base, base);
        }
        if (b.re < 0) return c_div((cplx){1, 0}, acc, r);
        *r = acc;
        return 0;
    }
    if (a.re == 0 && a.im == 0) { if (b.re > 0) { *r = (cplx){0, 0}; return 0; } return -1; }
    cplx l;
    if (c_log(a, &l)) return -1;
    *r = c_exp(c_mul(b, l)); /* principal value */
    return 0;
}

static int ceval_node(const pika_expr *e, int k, int point, int imag, cplx *out) {
    const node *n = &e->nodes[k];
    cplx a, b;
    switch (n->op) {
    case N_NUM: *out = (cplx){n->num.v, 0}; return 0;
    case N_VAR:
        if (n->var == imag) *out = (cplx){0, 1};
        else *out = (cplx){pika_expr_var_value(e->vars[n->var], point), 0};
        return 0;
    case N_NEG:
        if (ceval_node(e, n->a, point, imag, &a)) return -1;
        *out = (cplx){0.0 - a.re, 0.0 - a.im}; /* never -0: keeps sqrt(-4) on the principal branch */
        return 0;
    default: break;
    }
    if (ceval_node(e, n->a, point, imag, &a)) return -1;
    if (n->op == N_FN) {
        switch (n->fn) {
        case F_SQRT: /* principal square root */
            return c_pow(a, (cplx){0.5, 0}, out);
        case F_ABS: *out = (cplx){hypot(a.re, a.im), 0}; return 0;
        case F_EXP: *out = c_exp(a); return 0;
        case F_LN: return c_log(a, out);
        case F_SIN: *out = (cplx){sin(a.re) * cosh(a.im), cos(a.re) * sinh(a.im)}; return 0;
        case F_COS: *out = (cplx){cos(a.re) * cosh(a.im), -sin(a.re) * sinh(a.im)}; return 0;
        default: { /* real-only functions need a real argument */
            if (a.im != 0) return -1;
            double x = a.re, y;
            switch (n->fn) {
            case F_TAN: y = tan(x); break;
            case F_SEC: y = 1 / cos(x); break;
            case F_CSC: if (sin(x) == 0) return -1; y = 1 / sin(x); break;
            case F_COT: if (tan(x) == 0) return -1; y = 1 / tan(x); break;
            case F_LOG10: if (x <= 0) return -1; y = log10(x); break;
            case F_FLOOR: y = floor(x); break;
            case F_CEIL: y = ceil(x); break;
            case F_FACT:
                if (x != floor(x) || x < 0 || x > 170) return -1;
                y = tgamma(x + 1);
                break;
            default: return -1;
            }
            if (isnan(y)) return -1;
            *out = (cplx){y, 0};
            return 0;
        }
        }
    }
    if (ceval_node(e, n->b, point, imag, &b)) return -1;
    switch (n->op) {
    case N_ADD: *out = (cplx){a.re + b.re, a.im + b.im}; return 0;
    case N_SUB: *out = (cplx){a.re - b.re, a.im - b.im}; return 0;
    case N_MUL: *out = c_mul(a, b); return 0;
    case N_DIV: return c_div(a, b, out);
    case N_POW: return c_pow(a, b, out);
    case N_FN2:
        if (a.im != 0 || b.im != 0) return -1;
        if (n->fn == F_ROOT) {
            if (a.re == 0) return -1;
            return c_pow(b, (cplx){1.0 / a.re, 0}, out);
        }
        if (n->fn == F_LOGB) {
            if (a.re <= 0 || a.re == 1 || b.re <= 0) return -1;
            *out = (cplx){log(b.re) / log(a.re), 0};
            return 0;
        }
        if (n->fn == F_BINOM) {
            pika_num r;
            if (eval_node(e, k, point, &r)) return -1;
            *out = (cplx){r.v, 0};
            return 0;
        }
        return -1;
    default: return -1;
    }
}

int pika_expr_eval_complex(const pika_expr *e, int point, const char *imag, double *re, double *im) {
    int iv = -1;
    for (int i = 0; i < e->nvars; i++)
        if (!strcmp(e->vars[i], imag)) iv = i;
    cplx r;
    if (ceval_node(e, e->root, point, iv, &r)) return -1;
    if (!isfinite(r.re) || !isfinite(r.im)) return -1;
    *re = r.re;
    *im = r.im;
    return 0;
}
