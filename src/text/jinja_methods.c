/* jinja_methods.c — methods of str, dict and list values (strip, split, replace, format, items,
 * get, count, ...) and Python "%" formatting.
 */
#include "jinja_internal.h"

static int strippable(const char *p, size_t n, size_t at, const uint32_t *set, size_t nset);
static jv *m_strip(FN_ARGS);
static jv *m_lstrip(FN_ARGS);
static jv *m_rstrip(FN_ARGS);
static int has_prefix(jv *s, jv *p);
static int has_suffix(jv *s, jv *p);
static jv *starts_ends(ctx *C, jv *self, jv **args, int nargs, int nkw, int end);
static jv *m_startswith(FN_ARGS);
static jv *m_endswith(FN_ARGS);
static jv *do_split(ctx *C, jv *self, jv *sep, int64_t maxsplit);
static jv *m_split(FN_ARGS);
static uint32_t cp_upper(uint32_t c);
static uint32_t cp_lower(uint32_t c);
static jv *m_upper(FN_ARGS);
static jv *m_lower(FN_ARGS);
static jv *m_capitalize(FN_ARGS);
static jv *m_title(FN_ARGS);
static jv *m_replace(FN_ARGS);
static jv *m_find(FN_ARGS);
static jv *m_count(FN_ARGS);
static jv *m_join(FN_ARGS);
static jv *m_splitlines(FN_ARGS);
static jv *m_isdigit(FN_ARGS);
static jv *m_items(FN_ARGS);
static jv *m_keys(FN_ARGS);
static jv *m_values(FN_ARGS);
static jv *m_get(FN_ARGS);
static jv *m_format(FN_ARGS);
static jv *m_list_count(FN_ARGS);
static jv *m_list_index(FN_ARGS);

void jj_want_args(ctx *C, const char *name, int nargs, int nkw, int lo, int hi) {
    if (nkw) ERR(C, "template line %d: %s() takes no keyword arguments", C->line, name);
    if (nargs < lo || nargs > hi) ERR(C, "template line %d: %s() takes %d to %d arguments (%d given)", C->line, name, lo, hi, nargs);
}

jv *jj_want_str(ctx *C, jv *v, const char *what) {
    if (v->t == JV_UNDEF) jj_undef_error(C, v);
    if (v->t != JV_STR) ERR(C, "template line %d: %s must be a string, not %s", C->line, what, jj_type_name(v));
    return v;
}

static int strippable(const char *p, size_t n, size_t at, const uint32_t *set, size_t nset) {
    uint32_t c = jj_u8_next(p, n, &at);
    if (!set) return jj_py_space(c);
    for (size_t z = 0; z < nset; z++)
        if (set[z] == c) return 1;
    return 0;
}

/* strip(chars): mode 1 left, 2 right, 3 both */
jv *jj_do_strip(ctx *C, jv *s, jv *chars, int mode) {
    const char *p = s->u.s.p;
    size_t n = s->u.s.n;
    size_t nc = 0, *off = jj_cp_offsets(C, s, &nc);
    uint32_t *set = NULL;
    size_t nset = 0;
    if (chars && chars->t != JV_NONE) {
        jj_want_str(C, chars, "strip argument");
        set = jj_ar_alloc(C->a, sizeof(uint32_t) * (chars->u.s.n + 1));
        size_t i = 0;
        while (i < chars->u.s.n) set[nset++] = jj_u8_next(chars->u.s.p, chars->u.s.n, &i);
    }
    size_t lo = 0, hi = nc;
#define STRIPPABLE(k) strippable(p, n, off[k], set, nset)
    if (mode & 1)
        while (lo < hi && STRIPPABLE(lo)) lo++;
    if (mode & 2)
        while (hi > lo && STRIPPABLE(hi - 1)) hi--;
#undef STRIPPABLE
    return jj_v_strref(C, p + off[lo], off[hi] - off[lo]);
}

static jv *m_strip(FN_ARGS) { (void)kwn; (void)kwv; jj_want_args(C, "strip", nargs, nkw, 0, 1); return jj_do_strip(C, self, nargs ? args[0] : NULL, 3); }
static jv *m_lstrip(FN_ARGS) { (void)kwn; (void)kwv; jj_want_args(C, "lstrip", nargs, nkw, 0, 1); return jj_do_strip(C, self, nargs ? args[0] : NULL, 1); }
static jv *m_rstrip(FN_ARGS) { (void)kwn; (void)kwv; jj_want_args(C, "rstrip", nargs, nkw, 0, 1); return jj_do_strip(C, self, nargs ? args[0] : NULL, 2); }

static int has_prefix(jv *s, jv *p) { return p->u.s.n <= s->u.s.n && !memcmp(s->u.s.p, p->u.s.p, p->u.s.n); }
static int has_suffix(jv *s, jv *p) { return p->u.s.n <= s->u.s.n && !memcmp(s->u.s.p + s->u.s.n - p->u.s.n, p->u.s.p, p->u.s.n); }

static jv *starts_ends(ctx *C, jv *self, jv **args, int nargs, int nkw, int end) {
    jj_want_args(C, end ? "endswith" : "startswith", nargs, nkw, 1, 1);
    jv *a = args[0];
    if (a->t == JV_LIST) {
        for (int i = 0; i < a->u.l.n; i++) {
            jv *p = jj_want_str(C, a->u.l.v[i], "startswith/endswith argument");
            if (end ? has_suffix(self, p) : has_prefix(self, p)) return jj_v_bool(1);
        }
        return jj_v_bool(0);
    }
    jj_want_str(C, a, "startswith/endswith argument");
    return jj_v_bool(end ? has_suffix(self, a) : has_prefix(self, a));
}

static jv *m_startswith(FN_ARGS) { (void)kwn; (void)kwv; return starts_ends(C, self, args, nargs, nkw, 0); }
static jv *m_endswith(FN_ARGS) { (void)kwn; (void)kwv; return starts_ends(C, self, args, nargs, nkw, 1); }

const char *jj_memmem_(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && !memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}

static jv *do_split(ctx *C, jv *self, jv *sep, int64_t maxsplit) {
    jv *l = jj_v_list(C);
    const char *p = self->u.s.p;
    size_t n = self->u.s.n;
    if (!sep || sep->t == JV_NONE) { /* whitespace split */
        size_t i = 0;
        for (;;) {
            i += jj_lspace_len(p + i, n - i);
            if (i >= n) break;
            if (maxsplit >= 0 && l->u.l.n >= maxsplit) {
                jj_l_push(C, l, jj_v_strref(C, p + i, jj_rstrip_len(p + i, n - i)));
                break;
            }
            size_t j = i;
            while (j < n) {
                size_t k = j;
                uint32_t c = jj_u8_next(p, n, &k);
                if (jj_py_space(c)) break;
                j = k;
            }
            jj_l_push(C, l, jj_v_strref(C, p + i, j - i));
            i = j;
        }
        return l;
    }
    jj_want_str(C, sep, "split separator");
    if (!sep->u.s.n) ERR(C, "template line %d: empty separator", C->line);
    size_t i = 0;
    for (;;) {
        const char *f = (maxsplit >= 0 && l->u.l.n >= maxsplit) ? NULL : jj_memmem_(p + i, n - i, sep->u.s.p, sep->u.s.n);
        if (!f) {
            jj_l_push(C, l, jj_v_strref(C, p + i, n - i));
            break;
        }
        jj_l_push(C, l, jj_v_strref(C, p + i, (size_t)(f - (p + i))));
        i = (size_t)(f - p) + sep->u.s.n;
    }
    return l;
}

int64_t jj_want_int(ctx *C, jv *v, const char *what) {
    if (v->t != JV_INT && v->t != JV_BOOL) ERR(C, "template line %d: %s must be an integer", C->line, what);
    return jj_num_i(v);
}

static jv *m_split(FN_ARGS) {
    jv *sep = nargs > 0 ? args[0] : NULL;
    int64_t maxsplit = nargs > 1 ? jj_want_int(C, args[1], "maxsplit") : -1;
    for (int i = 0; i < nkw; i++) {
        if (!strcmp(kwn[i], "sep")) sep = kwv[i];
        else if (!strcmp(kwn[i], "maxsplit")) maxsplit = jj_want_int(C, kwv[i], "maxsplit");
        else ERR(C, "template line %d: split() got an unexpected keyword argument '%s'", C->line, kwn[i]);
    }
    if (nargs > 2) ERR(C, "template line %d: split() takes at most 2 arguments", C->line);
    return do_split(C, self, sep, maxsplit);
}

/* simple case mapping: ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic (no length-changing maps) */
static uint32_t cp_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
    if (c == 0xFF) return 0x178;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c & ~1u;
    if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && !(c & 1)) return c - 1;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x3B1 && c <= 0x3C9) return c - 32;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

static uint32_t cp_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1u;
    if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && (c & 1)) return c + 1;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

int jj_cp_cased(uint32_t c) { return cp_upper(c) != c || cp_lower(c) != c; }

/* mode: 1 upper, 2 lower, 3 capitalize (str.capitalize), 4 str.title (words = runs of cased
 * characters), 5 the jinja title filter (words start after - whitespace ( { [ <) */
jv *jj_case_map(ctx *C, jv *s, int mode) {
    sbuf b;
    jj_sb_init(&b, C->a);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, i = 0;
    int first = 1, prev_cased = 0, word_start = 1;
    while (i < n) {
        uint32_t c = jj_u8_next(p, n, &i);
        int up;
        if (mode == 1) up = 1;
        else if (mode == 2) up = 0;
        else if (mode == 3) up = first;
        else if (mode == 4) up = !prev_cased;
        else up = word_start;
        if (mode == 1 && c == 0xDF) jj_sb_puts(&b, "SS"); /* the one length-changing map kept: sharp s */
        else jj_u8_put(&b, up ? cp_upper(c) : cp_lower(c));
        first = 0;
        prev_cased = jj_cp_cased(c);
        word_start = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || jj_py_space(c);
    }
    return jj_v_sbuf(C, &b);
}

static jv *m_upper(FN_ARGS) { (void)kwn; (void)kwv; jj_want_args(C, "upper", nargs, nkw, 0, 0); (void)args; return jj_case_map(C, self, 1); }
static jv *m_lower(FN_ARGS) { (void)kwn; (void)kwv; jj_want_args(C, "lower", nargs, nkw, 0, 0); (void)args; return jj_case_map(C, self, 2); }
static jv *m_capitalize(FN_ARGS) { (void)kwn; (void)kwv; jj_want_args(C, "capitalize", nargs, nkw, 0, 0); (void)args; return jj_case_map(C, self, 3); }
static jv *m_title(FN_ARGS) { (void)kwn; (void)kwv; jj_want_args(C, "title", nargs, nkw, 0, 0); (void)args; return jj_case_map(C, self, 4); }

jv *jj_do_replace(ctx *C, jv *s, jv *old, jv *nw, int64_t count) {
    jj_want_str(C, old, "replace argument");
    jj_want_str(C, nw, "replace argument");
    sbuf b;
    jj_sb_init(&b, C->a);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, i = 0;
    int64_t done = 0;
    if (!old->u.s.n) { /* Python inserts between every character */
        size_t nc, *off = jj_cp_offsets(C, s, &nc);
        for (size_t k = 0; k <= nc; k++) {
            if (count < 0 || done < count) {
                jj_sb_put(&b, nw->u.s.p, nw->u.s.n);
                done++;
            }
            if (k < nc) jj_sb_put(&b, p + off[k], off[k + 1] - off[k]);
        }
        return jj_v_sbuf(C, &b);
    }
    for (;;) {
        const char *f = (count >= 0 && done >= count) ? NULL : jj_memmem_(p + i, n - i, old->u.s.p, old->u.s.n);
        if (!f) break;
        jj_sb_put(&b, p + i, (size_t)(f - (p + i)));
        jj_sb_put(&b, nw->u.s.p, nw->u.s.n);
        i = (size_t)(f - p) + old->u.s.n;
        done++;
    }
    jj_sb_put(&b, p + i, n - i);
    return jj_v_sbuf(C, &b);
}

static jv *m_replace(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "replace", nargs, nkw, 2, 3);
    return jj_do_replace(C, self, args[0], args[1], nargs > 2 ? jj_want_int(C, args[2], "count") : -1);
}

static jv *m_find(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "find", nargs, nkw, 1, 1);
    jj_want_str(C, args[0], "find argument");
    const char *f = jj_memmem_(self->u.s.p, self->u.s.n, args[0]->u.s.p, args[0]->u.s.n);
    return jj_v_int(C, f ? (int64_t)jj_u8_count(self->u.s.p, (size_t)(f - self->u.s.p)) : -1);
}

static jv *m_count(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "count", nargs, nkw, 1, 1);
    jj_want_str(C, args[0], "count argument");
    int64_t c = 0;
    size_t i = 0, nn = args[0]->u.s.n;
    if (!nn) return jj_v_int(C, jj_v_len(C, self) + 1);
    for (;;) {
        const char *f = jj_memmem_(self->u.s.p + i, self->u.s.n - i, args[0]->u.s.p, nn);
        if (!f) break;
        c++;
        i = (size_t)(f - self->u.s.p) + nn;
    }
    return jj_v_int(C, c);
}

static jv *m_join(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "join", nargs, nkw, 1, 1);
    jv *l = jj_iter_list(C, args[0]);
    sbuf b;
    jj_sb_init(&b, C->a);
    for (int i = 0; i < l->u.l.n; i++) {
        if (i) jj_sb_put(&b, self->u.s.p, self->u.s.n);
        jj_sb_put(&b, jj_want_str(C, l->u.l.v[i], "join item")->u.s.p, l->u.l.v[i]->u.s.n);
    }
    return jj_v_sbuf(C, &b);
}

static jv *m_splitlines(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    jj_want_args(C, "splitlines", nargs, nkw, 0, 0);
    jv *l = jj_v_list(C);
    const char *p = self->u.s.p;
    size_t n = self->u.s.n, i = 0, st = 0;
    while (i < n) {
        if (p[i] == '\n' || p[i] == '\r') {
            jj_l_push(C, l, jj_v_strref(C, p + st, i - st));
            if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') i++;
            st = ++i;
        } else i++;
    }
    if (st < n) jj_l_push(C, l, jj_v_strref(C, p + st, n - st));
    return l;
}

static jv *m_isdigit(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    jj_want_args(C, "isdigit", nargs, nkw, 0, 0);
    if (!self->u.s.n) return jj_v_bool(0);
    for (size_t i = 0; i < self->u.s.n; i++)
        if (!jj_is_digit((unsigned char)self->u.s.p[i])) return jj_v_bool(0);
    return jj_v_bool(1);
}

jv *jj_d_items(ctx *C, jv *d) {
    jv *l = jj_v_list(C);
    for (int i = 0; i < d->u.d.n; i++) jj_l_push(C, l, jj_v_pair(C, d->u.d.k[i], d->u.d.v[i]));
    return l;
}

static jv *m_items(FN_ARGS) { (void)kwn; (void)kwv; (void)args; jj_want_args(C, "items", nargs, nkw, 0, 0); return jj_d_items(C, self); }
static jv *m_keys(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    jj_want_args(C, "keys", nargs, nkw, 0, 0);
    jv *l = jj_v_list(C);
    for (int i = 0; i < self->u.d.n; i++) jj_l_push(C, l, self->u.d.k[i]);
    return l;
}
static jv *m_values(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    jj_want_args(C, "values", nargs, nkw, 0, 0);
    jv *l = jj_v_list(C);
    for (int i = 0; i < self->u.d.n; i++) jj_l_push(C, l, self->u.d.v[i]);
    return l;
}
static jv *m_get(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "get", nargs, nkw, 1, 2);
    int i = jj_d_find(self, args[0]);
    return i >= 0 ? self->u.d.v[i] : nargs > 1 ? args[1] : &jj_V_NONE;
}


/* Python's "fmt % args" for the common conversions (s r d i u f F e E g G x X o c %), with flags,
 * width and precision; args is a tuple or a single value. */
jv *jj_py_percent(ctx *C, jv *fmt, jv *args) {
    jv **av = &args;
    int na = 1, ai = 0;
    if (args->t == JV_LIST && (args->flags & F_TUPLE)) {
        av = args->u.l.v;
        na = args->u.l.n;
    }
    sbuf b;
    jj_sb_init(&b, C->a);
    const char *p = fmt->u.s.p, *end = p + fmt->u.s.n;
    while (p < end) {
        if (*p != '%') {
            jj_sb_putc(&b, *p++);
            continue;
        }
        p++;
        char spec[32];
        int k = 0;
        spec[k++] = '%';
        while (p < end && strchr("-+ 0#", *p) && k < 8) spec[k++] = *p++;
        while (p < end && jj_is_digit((unsigned char)*p) && k < 16) spec[k++] = *p++;
        if (p < end && *p == '.') {
            spec[k++] = *p++;
            while (p < end && jj_is_digit((unsigned char)*p) && k < 24) spec[k++] = *p++;
        }
        if (p >= end) ERR(C, "template line %d: incomplete format", C->line);
        char t = *p++;
        if (t == '%') {
            jj_sb_putc(&b, '%');
            continue;
        }
        if (ai >= na) ERR(C, "template line %d: not enough arguments for format string", C->line);
        jv *v = av[ai++];
        char tmp[512];
        if (t == 's' || t == 'r') {
            sbuf vs;
            jj_sb_init(&vs, C->a);
            if (t == 's') jj_v_str_into(C, &vs, v);
            else jj_v_repr(C, &vs, v);
            size_t vn = vs.n;
            spec[k] = 0;
            char *dot = strchr(spec, '.');
            if (dot) { /* precision: at most that many characters */
                size_t prec = (size_t)atoi(dot + 1), i = 0, c = 0;
                while (i < vn && c < prec) jj_u8_next(vs.p, vn, &i), c++;
                vn = i;
                k = (int)(dot - spec);
            }
            if (k == 1) { /* plain %s: keep every byte (NULs included) */
                jj_sb_put(&b, vs.p ? vs.p : "", vn);
                continue;
            }
            spec[k++] = '.';
            spec[k++] = '*';
            spec[k++] = 's';
            spec[k] = 0;
            /* width pads by bytes; fine for ASCII */
            char *o = jj_ar_alloc(C->a, vn + 64 + 1);
            snprintf(o, vn + 65, spec, (int)vn, vs.p ? vs.p : "");
            jj_sb_put(&b, o, strlen(o));
            continue;
        }
        if (strchr("diuxXoc", t)) {
            long long x;
            if (v->t == JV_FLOAT && strchr("diu", t)) x = (long long)v->u.f;
            else x = (long long)jj_want_int(C, v, "%d format argument");
            if (t == 'c') {
                jj_u8_put(&b, (uint32_t)x);
                continue;
            }
            spec[k++] = 'l';
            spec[k++] = 'l';
            spec[k++] = t == 'i' || t == 'u' ? 'd' : t;
            spec[k] = 0;
            snprintf(tmp, sizeof tmp, spec, x);
        } else if (strchr("fFeEgG", t)) {
            if (!jj_is_num(v)) ERR(C, "template line %d: %%%c format: a real number is required, not %s", C->line, t, jj_type_name(v));
            spec[k++] = t;
            spec[k] = 0;
            snprintf(tmp, sizeof tmp, spec, jj_num_f(v));
        } else {
            ERR(C, "template line %d: unsupported format character '%c'", C->line, t);
        }
        jj_sb_puts(&b, tmp);
    }
    if (ai < na && args->t != JV_DICT)
        ERR(C, "template line %d: not all arguments converted during string formatting", C->line);
    return jj_v_sbuf(C, &b);
}

/* str.format with {} / {0} / {name} fields (no format specs) */
static jv *m_format(FN_ARGS) {
    sbuf b;
    jj_sb_init(&b, C->a);
    const char *p = self->u.s.p, *end = p + self->u.s.n;
    int autoi = 0;
    while (p < end) {
        if (*p == '{' && p + 1 < end && p[1] == '{') { jj_sb_putc(&b, '{'); p += 2; continue; }
        if (*p == '}' && p + 1 < end && p[1] == '}') { jj_sb_putc(&b, '}'); p += 2; continue; }
        if (*p != '{') { jj_sb_putc(&b, *p++); continue; }
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (!q) ERR(C, "template line %d: single '{' encountered in format string", C->line);
        const char *f = p + 1;
        size_t fl = (size_t)(q - f);
        if (memchr(f, ':', fl) || memchr(f, '!', fl)) ERR(C, "template line %d: format specs are not supported", C->line);
        jv *v = NULL;
        if (fl == 0) {
            if (autoi >= nargs) ERR(C, "template line %d: format: not enough arguments", C->line);
            v = args[autoi++];
        } else if (jj_is_digit((unsigned char)f[0])) {
            int i = atoi(f);
            if (i >= nargs) ERR(C, "template line %d: format: index out of range", C->line);
            v = args[i];
        } else {
            for (int i = 0; i < nkw; i++)
                if (strlen(kwn[i]) == fl && !memcmp(kwn[i], f, fl)) v = kwv[i];
            if (!v) ERR(C, "template line %d: format: no argument named '%.*s'", C->line, (int)fl, f);
        }
        jj_v_str_into(C, &b, v);
        p = q + 1;
    }
    return jj_v_sbuf(C, &b);
}

const method jj_STR_METHODS[] = {
    {"strip", m_strip}, {"lstrip", m_lstrip}, {"rstrip", m_rstrip}, {"startswith", m_startswith},
    {"endswith", m_endswith}, {"split", m_split}, {"upper", m_upper}, {"lower", m_lower},
    {"capitalize", m_capitalize}, {"title", m_title}, {"replace", m_replace}, {"find", m_find},
    {"count", m_count}, {"join", m_join}, {"splitlines", m_splitlines}, {"isdigit", m_isdigit}, {"format", m_format}, {NULL, NULL},
};
static jv *m_list_count(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "count", nargs, nkw, 1, 1);
    int64_t c = 0;
    for (int i = 0; i < self->u.l.n; i++) c += jj_v_eq(self->u.l.v[i], args[0]);
    return jj_v_int(C, c);
}

static jv *m_list_index(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "index", nargs, nkw, 1, 1);
    for (int i = 0; i < self->u.l.n; i++)
        if (jj_v_eq(self->u.l.v[i], args[0])) return jj_v_int(C, i);
    ERR(C, "template line %d: list.index(x): x not in list", C->line);
}

const method jj_LIST_METHODS[] = {
    {"count", m_list_count}, {"index", m_list_index}, {NULL, NULL},
};

const method jj_DICT_METHODS[] = {
    {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"get", m_get}, {NULL, NULL},
};

jv *jj_bound(ctx *C, jv *self, const method *m, const char *name) {
    for (; m->name; m++)
        if (!strcmp(m->name, name)) {
            jv *f = jj_v_new(C, JV_FUNC);
            f->u.fn.fn = m->fn;
            f->u.fn.self = self;
            f->u.fn.name = m->name;
            return f;
        }
    return NULL;
}
