/* jinja_filters.c — Jinja tests ("x is defined", "n is divisibleby(3)", ...) and filters
 * ("x | tojson(indent=2)", ...), the latter dispatched through a name -> function table.
 */
#include "jinja_internal.h"

static jv *kwarg(const char *name, const char **kwn, jv **kwv, int nkw);
static jv *farg(jv **args, int nargs, int i, const char *name, const char **kwn, jv **kwv, int nkw);
static jv *attr_path(ctx *C, jv *v, jv *attr);
static int sort_cmp(ctx *C, jv *a, jv *b, jv *attr, int casesens);

/* ---------------------------------------------------------------- tests */

jv *jj_apply_test(ctx *C, const char *name, jv *v, jv **args, int nargs) {
    int r;
#define NEED(k)                                                                                             \
    if (nargs != (k)) ERR(C, "template line %d: test '%s' takes %d argument(s)", C->line, name, k)
    if (!strcmp(name, "defined")) r = v->t != JV_UNDEF;
    else if (!strcmp(name, "undefined")) r = v->t == JV_UNDEF;
    else if (!strcmp(name, "none")) r = v->t == JV_NONE;
    else if (!strcmp(name, "boolean")) r = v->t == JV_BOOL;
    else if (!strcmp(name, "true")) r = v->t == JV_BOOL && v->u.b;
    else if (!strcmp(name, "false")) r = v->t == JV_BOOL && !v->u.b;
    else if (!strcmp(name, "integer")) r = v->t == JV_INT;
    else if (!strcmp(name, "float")) r = v->t == JV_FLOAT;
    else if (!strcmp(name, "number")) r = jj_is_num(v);
    else if (!strcmp(name, "string")) r = v->t == JV_STR;
    else if (!strcmp(name, "mapping")) r = v->t == JV_DICT;
    else if (!strcmp(name, "iterable")) r = v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT || v->t == JV_UNDEF;
    else if (!strcmp(name, "sequence")) r = v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT;
    else if (!strcmp(name, "callable")) r = v->t == JV_FUNC || v->t == JV_MACRO || v->t == JV_UNDEF;
    else if (!strcmp(name, "odd") || !strcmp(name, "even")) { /* value % 2 == 1 / == 0 */
        jv *m = jj_arith(C, OP_MOD, v, jj_v_int(C, 2));
        r = jj_v_eq(m, jj_v_int(C, name[0] == 'o' ? 1 : 0));
    } else if (!strcmp(name, "divisibleby")) {
        NEED(1);
        r = jj_v_eq(jj_arith(C, OP_MOD, v, args[0]), jj_v_int(C, 0));
    } else if (!strcmp(name, "equalto") || !strcmp(name, "eq") || !strcmp(name, "==") || !strcmp(name, "sameas")) {
        NEED(1);
        r = jj_v_eq(v, args[0]) && (strcmp(name, "sameas") || v->t == args[0]->t);
    } else if (!strcmp(name, "ne") || !strcmp(name, "!=")) {
        NEED(1);
        r = !jj_v_eq(v, args[0]);
    } else if (!strcmp(name, "lt") || !strcmp(name, "lessthan")) {
        NEED(1);
        r = jj_v_cmp(C, v, args[0]) < 0;
    } else if (!strcmp(name, "le")) {
        NEED(1);
        r = jj_v_cmp(C, v, args[0]) <= 0;
    } else if (!strcmp(name, "gt") || !strcmp(name, "greaterthan")) {
        NEED(1);
        r = jj_v_cmp(C, v, args[0]) > 0;
    } else if (!strcmp(name, "ge")) {
        NEED(1);
        r = jj_v_cmp(C, v, args[0]) >= 0;
    } else if (!strcmp(name, "in")) {
        NEED(1);
        r = jj_contains(C, args[0], v);
    } else if (!strcmp(name, "lower") || !strcmp(name, "upper")) { /* str(value).islower() / isupper() */
        jv *s = jj_to_str(C, v);
        jv *m = jj_case_map(C, s, name[0] == 'l' ? 2 : 1);
        int cased = 0;
        for (size_t i = 0; i < s->u.s.n;) cased |= jj_cp_cased(jj_u8_next(s->u.s.p, s->u.s.n, &i));
        r = cased && jj_v_eq(s, m);
    } else {
        ERR(C, "template line %d: unknown test '%s'", C->line, name);
    }
#undef NEED
    return jj_v_bool(r);
}

/* ---------------------------------------------------------------- filters */

static jv *kwarg(const char *name, const char **kwn, jv **kwv, int nkw) {
    for (int i = 0; i < nkw; i++)
        if (!strcmp(kwn[i], name)) return kwv[i];
    return NULL;
}

/* positional i or keyword name */
static jv *farg(jv **args, int nargs, int i, const char *name, const char **kwn, jv **kwv, int nkw) {
    if (i < nargs) return args[i];
    return kwarg(name, kwn, kwv, nkw);
}

/* value.attr where attr may be dotted ("a.b") or an integer index */
static jv *attr_path(ctx *C, jv *v, jv *attr) {
    if (attr->t == JV_INT) return jj_get_item(C, v, attr);
    jj_want_str(C, attr, "attribute");
    const char *p = attr->u.s.p, *end = p + attr->u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        jv *k = jj_v_strref(C, p, (size_t)(dot - p));
        if (v->t == JV_UNDEF) return v;
        v = jj_get_item(C, v, k);
        p = dot + 1;
    }
    return v;
}

static int sort_cmp(ctx *C, jv *a, jv *b, jv *attr, int casesens) {
    if (attr) {
        a = attr_path(C, a, attr);
        b = attr_path(C, b, attr);
    }
    if (!casesens && a->t == JV_STR && b->t == JV_STR) {
        a = jj_case_map(C, a, 2);
        b = jj_case_map(C, b, 2);
    }
    return jj_v_cmp(C, a, b);
}

/* The filters: one function each, found by name in FILTERS (sorted, binary search). Every filter
 * gets the same arguments; the ones it does not use are marked so. */
#define FILTER_ARGS                                                                                         \
    ctx *C, const char *name __attribute__((unused)), jv *v __attribute__((unused)),                       \
        jv **args __attribute__((unused)),                                                                 \
        int nargs __attribute__((unused)), const char **kwn __attribute__((unused)),                       \
        jv **kwv __attribute__((unused)), int nkw __attribute__((unused))
typedef jv *(*filter_fn)(FILTER_ARGS);
#define ARG(i, nm) farg(args, nargs, i, nm, kwn, kwv, nkw)

/* safe | e | escape | forceescape */
static jv *f_safe_escape(FILTER_ARGS) {
    if (name[0] == 's') return v;
    jv *s = jj_to_str(C, v);
    sbuf b;
    jj_sb_init(&b, C->a);
    for (size_t i = 0; i < s->u.s.n; i++) {
        char c = s->u.s.p[i];
        if (c == '&') jj_sb_puts(&b, "&amp;");
        else if (c == '<') jj_sb_puts(&b, "&lt;");
        else if (c == '>') jj_sb_puts(&b, "&gt;");
        else if (c == '"') jj_sb_puts(&b, "&#34;");
        else if (c == '\'') jj_sb_puts(&b, "&#39;");
        else jj_sb_putc(&b, c);
    }
    return jj_v_sbuf(C, &b);
}

/* trim */
static jv *f_trim(FILTER_ARGS) {
    return jj_do_strip(C, jj_to_str(C, v), ARG(0, "chars"), 3);
}

/* string */
static jv *f_string(FILTER_ARGS) {
    return jj_to_str(C, v);
}

/* length | count */
static jv *f_length(FILTER_ARGS) {
    return jj_v_int(C, jj_v_len(C, v));
}

/* upper */
static jv *f_upper(FILTER_ARGS) {
    return jj_case_map(C, jj_to_str(C, v), 1);
}

/* lower */
static jv *f_lower(FILTER_ARGS) {
    return jj_case_map(C, jj_to_str(C, v), 2);
}

/* capitalize */
static jv *f_capitalize(FILTER_ARGS) {
    return jj_case_map(C, jj_to_str(C, v), 3);
}

/* title */
static jv *f_title(FILTER_ARGS) {
    return jj_case_map(C, jj_to_str(C, v), 5);
}

/* default | d */
static jv *f_default(FILTER_ARGS) {
    jv *def = ARG(0, "default_value");
    jv *boolean = ARG(1, "boolean");
    if (v->t == JV_UNDEF || (boolean && jj_truthy(boolean) && !jj_truthy(v))) return def ? def : jj_v_strref(C, "", 0);
    return v;
}

/* tojson */
static jv *f_tojson(FILTER_ARGS) {
    jsonfmt f = {NULL, ", ", ": ", 0};
    jv *ind = ARG(0, "indent");
    if (ind && ind->t != JV_NONE) {
        if (ind->t == JV_STR) f.indent = jj_ar_strndup(C->a, ind->u.s.p, ind->u.s.n);
        else {
            int64_t k = jj_want_int(C, ind, "tojson indent");
            if (k < 0) k = 0;
            if (k > 64) k = 64;
            char *sp = jj_ar_alloc(C->a, (size_t)k + 1);
            memset(sp, ' ', (size_t)k);
            sp[k] = 0;
            f.indent = sp;
        }
        f.item_sep = ",";
    }
    jv *sep = kwarg("separators", kwn, kwv, nkw);
    if (sep && sep->t == JV_LIST && sep->u.l.n == 2) {
        f.item_sep = jj_ar_strndup(C->a, jj_want_str(C, sep->u.l.v[0], "separator")->u.s.p, sep->u.l.v[0]->u.s.n);
        f.key_sep = jj_ar_strndup(C->a, jj_want_str(C, sep->u.l.v[1], "separator")->u.s.p, sep->u.l.v[1]->u.s.n);
    }
    jv *sk = kwarg("sort_keys", kwn, kwv, nkw);
    f.sort_keys = sk && jj_truthy(sk);
    jv *ea = kwarg("ensure_ascii", kwn, kwv, nkw);
    if (ea && jj_truthy(ea)) ERR(C, "template line %d: tojson(ensure_ascii=true) is not supported", C->line);
    sbuf b;
    jj_sb_init(&b, C->a);
    jj_v_json(C, &b, v, &f, 0);
    return jj_v_sbuf(C, &b);
}

/* items */
static jv *f_items(FILTER_ARGS) {
    if (v->t == JV_UNDEF) return jj_v_list(C);
    if (v->t != JV_DICT) ERR(C, "template line %d: items filter: can only get item pairs from a mapping", C->line);
    return jj_d_items(C, v);
}

/* list */
static jv *f_list(FILTER_ARGS) {
    jv *src = jj_iter_list(C, v), *l = jj_v_list(C);
    for (int i = 0; i < src->u.l.n; i++) jj_l_push(C, l, src->u.l.v[i]);
    return l;
}

/* join */
static jv *f_join(FILTER_ARGS) {
    jv *sep = ARG(0, "d");
    jv *attr = ARG(1, "attribute");
    jv *l = jj_iter_list(C, v);
    sbuf b;
    jj_sb_init(&b, C->a);
    for (int i = 0; i < l->u.l.n; i++) {
        if (i && sep) jj_v_str_into(C, &b, sep);
        jj_v_str_into(C, &b, attr ? attr_path(C, l->u.l.v[i], attr) : l->u.l.v[i]);
    }
    return jj_v_sbuf(C, &b);
}

/* replace */
static jv *f_replace(FILTER_ARGS) {
    jv *old = ARG(0, "old"), *nw = ARG(1, "new"), *cnt = ARG(2, "count");
    if (!old || !nw) ERR(C, "template line %d: replace filter needs 2 arguments", C->line);
    return jj_do_replace(C, jj_to_str(C, v), old, nw, cnt && cnt->t != JV_NONE ? jj_want_int(C, cnt, "count") : -1);
}

/* first | last */
static jv *f_first_last(FILTER_ARGS) {
    jv *l = jj_iter_list(C, v);
    if (!l->u.l.n) return jj_v_undef(C, "first/last of an empty sequence");
    return l->u.l.v[name[0] == 'f' ? 0 : l->u.l.n - 1];
}

/* reverse */
static jv *f_reverse(FILTER_ARGS) {
    if (v->t == JV_STR) return jj_v_slice(C, v, NULL, NULL, jj_v_int(C, -1));
    jv *src = jj_iter_list(C, v), *l = jj_v_list(C);
    for (int i = src->u.l.n - 1; i >= 0; i--) jj_l_push(C, l, src->u.l.v[i]);
    return l;
}

/* int */
static jv *f_int(FILTER_ARGS) {
    jv *def = ARG(0, "default");
    if (v->t == JV_INT) return v;
    if (v->t == JV_BOOL) return jj_v_int(C, v->u.b);
    if (v->t == JV_FLOAT && isfinite(v->u.f) && fabs(v->u.f) < 9.2e18) return jj_v_int(C, (int64_t)v->u.f);
    if (v->t == JV_STR) {
        char *s = jj_ar_strndup(C->a, v->u.s.p, v->u.s.n), *end;
        long long x = strtoll(s, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (end != s && !*end) return jj_v_int(C, x);
        double d = strtod(s, &end);
        if (end != s && !*end && isfinite(d) && fabs(d) < 9.2e18) return jj_v_int(C, (int64_t)d);
    }
    return def ? def : jj_v_int(C, 0);
}

/* float */
static jv *f_float(FILTER_ARGS) {
    jv *def = ARG(0, "default");
    if (jj_is_num(v)) return jj_v_float(C, jj_num_f(v));
    if (v->t == JV_STR) {
        char *s = jj_ar_strndup(C->a, v->u.s.p, v->u.s.n), *end;
        double d = strtod(s, &end);
        if (end != s && !*end) return jj_v_float(C, d);
    }
    return def ? def : jj_v_float(C, 0);
}

/* abs */
static jv *f_abs(FILTER_ARGS) {
    if (v->t == JV_FLOAT) return jj_v_float(C, fabs(v->u.f));
    int64_t i = jj_want_int(C, v, "abs operand");
    return jj_v_int(C, i < 0 ? -i : i);
}

/* round */
static jv *f_round(FILTER_ARGS) {
    jv *prec = ARG(0, "precision");
    jv *method = ARG(1, "method");
    int64_t p = prec ? jj_want_int(C, prec, "precision") : 0;
    if (!jj_is_num(v)) ERR(C, "template line %d: round of a non-number", C->line);
    double x = jj_num_f(v), m = pow(10, (double)p);
    const char *md = method && method->t == JV_STR ? method->u.s.p : "common";
    double r = !strcmp(md, "ceil") ? ceil(x * m) / m : !strcmp(md, "floor") ? floor(x * m) / m : nearbyint(x * m) / m; /* Python round: half to even */
    return jj_v_float(C, r);
}

/* sort | dictsort */
static jv *f_sort_dictsort(FILTER_ARGS) {
    int dsort = name[0] == 'd';
    jv *rev = ARG(dsort ? 2 : 0, "reverse"), *cs = ARG(dsort ? 0 : 1, "case_sensitive"), *attr = dsort ? NULL : ARG(2, "attribute");
    if (dsort && v->t != JV_DICT) ERR(C, "template line %d: dictsort of a non-mapping", C->line);
    jv *src = dsort ? jj_d_items(C, v) : jj_iter_list(C, v);
    jv *by = dsort ? ARG(1, "by") : NULL;
    if (dsort) attr = jj_v_int(C, by && by->t == JV_STR && !strcmp(by->u.s.p, "value") ? 1 : 0);
    jv *l = jj_v_list(C);
    for (int i = 0; i < src->u.l.n; i++) jj_l_push(C, l, src->u.l.v[i]);
    int r = rev && jj_truthy(rev), c = cs && jj_truthy(cs);
    for (int i = 1; i < l->u.l.n; i++)
        for (int j = i; j > 0; j--) {
            int k = sort_cmp(C, l->u.l.v[j - 1], l->u.l.v[j], attr, c);
            if (r ? k >= 0 : k <= 0) break;
            jv *t = l->u.l.v[j];
            l->u.l.v[j] = l->u.l.v[j - 1];
            l->u.l.v[j - 1] = t;
        }
    return l;
}

/* unique -- case-insensitive by default, like jinja2  */
static jv *f_unique(FILTER_ARGS) {
    jv *cs = ARG(0, "case_sensitive"), *attr = ARG(1, "attribute");
    int c = cs && jj_truthy(cs);
    jv *src = jj_iter_list(C, v), *l = jj_v_list(C), *seen = jj_v_list(C);
    for (int i = 0; i < src->u.l.n; i++) {
        jv *k = attr ? attr_path(C, src->u.l.v[i], attr) : src->u.l.v[i];
        if (!c && k->t == JV_STR) k = jj_case_map(C, k, 2);
        if (jj_contains(C, seen, k)) continue;
        jj_l_push(C, seen, k);
        jj_l_push(C, l, src->u.l.v[i]);
    }
    return l;
}

/* min | max | sum */
static jv *f_min_max_sum(FILTER_ARGS) {
    jv *src = jj_iter_list(C, v);
    if (name[1] == 'u') {
        jv *acc = jj_v_int(C, 0);
        for (int i = 0; i < src->u.l.n; i++) acc = jj_arith(C, OP_ADD, acc, src->u.l.v[i]);
        return acc;
    }
    if (!src->u.l.n) return jj_v_undef(C, "min/max of an empty sequence");
    jv *cs = ARG(0, "case_sensitive"), *attr = ARG(1, "attribute");
    int c = cs && jj_truthy(cs);
    jv *best = src->u.l.v[0];
    for (int i = 1; i < src->u.l.n; i++) {
        int k = sort_cmp(C, src->u.l.v[i], best, attr, c);
        if (name[1] == 'i' ? k < 0 : k > 0) best = src->u.l.v[i];
    }
    return best;
}

/* indent */
static jv *f_indent(FILTER_ARGS) {
    jv *w = ARG(0, "width"), *first = ARG(1, "first"), *blank = ARG(2, "blank");
    sbuf pad;
    jj_sb_init(&pad, C->a);
    if (w && w->t == JV_STR) jj_sb_put(&pad, w->u.s.p, w->u.s.n);
    else
        for (int64_t i = 0, k = w ? jj_want_int(C, w, "indent width") : 4; i < k && i < 256; i++) jj_sb_putc(&pad, ' ');
    jv *s = jj_to_str(C, v);
    sbuf b;
    jj_sb_init(&b, C->a);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, i = 0;
    int line0 = 1;
    while (i <= n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - p) : n;
        int empty = e == i;
        if ((!line0 || (first && jj_truthy(first))) && (!empty || (blank && jj_truthy(blank)))) jj_sb_put(&b, pad.p, pad.n);
        jj_sb_put(&b, p + i, e - i);
        if (!nl) break;
        jj_sb_putc(&b, '\n');
        i = e + 1;
        line0 = 0;
    }
    return jj_v_sbuf(C, &b);
}

/* wordcount -- runs of \w characters  */
static jv *f_wordcount(FILTER_ARGS) {
    jv *s = jj_to_str(C, v);
    int64_t words = 0;
    int in = 0;
    for (size_t i = 0; i < s->u.s.n; i++) {
        unsigned char c = (unsigned char)s->u.s.p[i];
        int w = jj_is_name_start(c) || jj_is_digit(c) || c >= 0x80;
        words += w && !in;
        in = w;
    }
    return jj_v_int(C, words);
}

/* select | reject | selectattr | rejectattr */
static jv *f_select_reject(FILTER_ARGS) {
    int attr_mode = strstr(name, "attr") != NULL, want = name[0] == 's';
    jv *src = jj_iter_list(C, v), *l = jj_v_list(C);
    int base = attr_mode ? 1 : 0;
    if (attr_mode && nargs < 1) ERR(C, "template line %d: %s needs an attribute name", C->line, name);
    for (int i = 0; i < src->u.l.n; i++) {
        jv *x = src->u.l.v[i];
        jv *y = attr_mode ? attr_path(C, x, args[0]) : x;
        int ok;
        if (nargs > base) {
            jv *tn = jj_want_str(C, args[base], "test name");
            ok = jj_apply_test(C, jj_ar_strndup(C->a, tn->u.s.p, tn->u.s.n), y, args + base + 1, nargs - base - 1)->u.b;
        } else {
            ok = jj_truthy(y);
        }
        if (ok == want) jj_l_push(C, l, x);
    }
    return l;
}

/* map */
static jv *f_map(FILTER_ARGS) {
    jv *src = jj_iter_list(C, v), *l = jj_v_list(C);
    jv *attr = kwarg("attribute", kwn, kwv, nkw), *def = kwarg("default", kwn, kwv, nkw);
    for (int i = 0; i < src->u.l.n; i++) {
        jv *x = src->u.l.v[i];
        if (attr) {
            jv *y = attr_path(C, x, attr);
            jj_l_push(C, l, y->t == JV_UNDEF && def ? def : y);
        } else {
            if (nargs < 1) ERR(C, "template line %d: map needs a filter name or attribute=", C->line);
            jv *fn = jj_want_str(C, args[0], "filter name");
            jj_l_push(C, l, jj_apply_filter(C, jj_ar_strndup(C->a, fn->u.s.p, fn->u.s.n), x, args + 1, nargs - 1, NULL, NULL, 0));
        }
    }
    return l;
}

/* format */
static jv *f_format(FILTER_ARGS) {
    jv *t = jj_v_list(C);
    t->flags = F_TUPLE;
    for (int i = 0; i < nargs; i++) jj_l_push(C, t, args[i]);
    return jj_py_percent(C, jj_want_str(C, v, "format filter operand"), t);
}

/* batch | slice */
static jv *f_unsupported(FILTER_ARGS) {
    ERR(C, "template line %d: filter '%s' is not supported", C->line, name);
}

#undef ARG

typedef struct {
    const char *name;
    filter_fn fn;
} filter_entry;

static const filter_entry FILTERS[] = {
    {"abs", f_abs},
    {"batch", f_unsupported},
    {"capitalize", f_capitalize},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_sort_dictsort},
    {"e", f_safe_escape},
    {"escape", f_safe_escape},
    {"first", f_first_last},
    {"float", f_float},
    {"forceescape", f_safe_escape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_first_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_min_max_sum},
    {"min", f_min_max_sum},
    {"reject", f_select_reject},
    {"rejectattr", f_select_reject},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe_escape},
    {"select", f_select_reject},
    {"selectattr", f_select_reject},
    {"slice", f_unsupported},
    {"sort", f_sort_dictsort},
    {"string", f_string},
    {"sum", f_min_max_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

static int filter_cmp(const void *key, const void *entry) {
    return strcmp(key, *(const char *const *)entry);
}

jv *jj_apply_filter(ctx *C, const char *name, jv *v, jv **args, int nargs, const char **kwn, jv **kwv, int nkw) {
    const filter_entry *hit = bsearch(name, FILTERS, sizeof FILTERS / sizeof FILTERS[0], sizeof FILTERS[0], filter_cmp);
    if (!hit) ERR(C, "template line %d: unknown filter '%s'", C->line, name);
    return hit->fn(C, name, v, args, nargs, kwn, kwv, nkw);
}
