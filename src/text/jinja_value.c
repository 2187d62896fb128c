/* jinja_value.c — the interpreter's runtime basics: errors (longjmp), arenas, byte buffers,
 * UTF-8 helpers, and Python-like values: constructors, dicts, truthiness, ==/<, str()/repr()/JSON,
 * sequences and slices, attribute and item access, arithmetic.
 */
#include "jinja_internal.h"

static void sb_printf(sbuf *b, const char *fmt, ...) PIKA_PRINTF(2, 3);
static jv *v_str(ctx *C, const char *s);
static int d_find_s(jv *d, const char *k);
static void fmt_float(sbuf *b, double f, int json);
static void str_repr(sbuf *b, const char *s, size_t n);
static void json_str(sbuf *b, const char *s, size_t n);
static void json_nl(sbuf *b, const jsonfmt *f, int level);
static jv *undef_attr(ctx *C, jv *obj, const char *name);

void jj_fail(errctx *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    longjmp(e->jb, 1);
}

void *jj_ar_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total + cap > ARENA_LIMIT) jj_fail(a->err, "template needs more than 1 GiB of memory");
        achunk *c = pika_malloc(sizeof(achunk) + cap);
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
        a->total += cap;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

void *jj_ar_zalloc(arena *a, size_t n) {
    void *p = jj_ar_alloc(a, n);
    memset(p, 0, n);
    return p;
}

void jj_ar_free(arena *a) {
    achunk *c = a->head;
    while (c) {
        achunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}

char *jj_ar_strndup(arena *a, const char *s, size_t n) {
    char *p = jj_ar_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void jj_sb_init(sbuf *b, arena *a) {
    b->a = a;
    b->p = NULL;
    b->n = b->cap = 0;
}

void jj_sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = jj_ar_alloc(b->a, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jj_sb_puts(sbuf *b, const char *s) { jj_sb_put(b, s, strlen(s)); }
void jj_sb_putc(sbuf *b, char c) { jj_sb_put(b, &c, 1); }
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    jj_sb_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* ---------------------------------------------------------------- UTF-8 and whitespace */

/* Decode one code point at s[*i] (n bytes total); invalid bytes decode as themselves + 0xDC00
 * (like Python's surrogateescape) so every byte belongs to exactly one "character". */
uint32_t jj_u8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    uint32_t c = u[k];
    int len = 0;
    if (c < 0x80) len = 1;
    else if ((c & 0xE0) == 0xC0 && c >= 0xC2) len = 2, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0 && c <= 0xF4) len = 4, c &= 0x07;
    if (len == 0 || k + len > n) {
        *i = k + 1;
        return 0xDC00 + u[k];
    }
    for (int j = 1; j < len; j++) {
        if ((u[k + j] & 0xC0) != 0x80) {
            *i = k + 1;
            return 0xDC00 + u[k];
        }
        c = (c << 6) | (u[k + j] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c < 0xE000)) {
        *i = k + 1;
        return 0xDC00 + u[k];
    }
    *i = k + len;
    return c;
}

size_t jj_u8_count(const char *s, size_t n) {
    size_t i = 0, c = 0;
    while (i < n) {
        jj_u8_next(s, n, &i);
        c++;
    }
    return c;
}

/* Python str.isspace() code points */
int jj_py_space(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* byte length of s[0:n] after removing trailing Python whitespace */
size_t jj_rstrip_len(const char *s, size_t n) {
    size_t i = 0, keep = 0;
    while (i < n) {
        uint32_t c = jj_u8_next(s, n, &i);
        if (!jj_py_space(c)) keep = i;
    }
    return keep;
}

/* bytes of leading Python whitespace */
size_t jj_lspace_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        uint32_t c = jj_u8_next(s, n, &j);
        if (!jj_py_space(c)) break;
        i = j;
    }
    return i;
}

void jj_u8_put(sbuf *b, uint32_t c) {
    char t[4];
    if (c >= 0xDC80 && c <= 0xDCFF) { /* escaped raw byte */
        t[0] = (char)(c - 0xDC00);
        jj_sb_put(b, t, 1);
    } else if (c < 0x80) {
        t[0] = (char)c;
        jj_sb_put(b, t, 1);
    } else if (c < 0x800) {
        t[0] = (char)(0xC0 | (c >> 6));
        t[1] = (char)(0x80 | (c & 0x3F));
        jj_sb_put(b, t, 2);
    } else if (c < 0x10000) {
        t[0] = (char)(0xE0 | (c >> 12));
        t[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        t[2] = (char)(0x80 | (c & 0x3F));
        jj_sb_put(b, t, 3);
    } else {
        t[0] = (char)(0xF0 | (c >> 18));
        t[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        t[3] = (char)(0x80 | (c & 0x3F));
        jj_sb_put(b, t, 4);
    }
}

jv *jj_v_new(ctx *C, int t) {
    jv *v = jj_ar_zalloc(C->a, sizeof *v);
    v->t = t;
    return v;
}

jv *jj_v_undef(ctx *C, const char *what) {
    jv *v = jj_v_new(C, JV_UNDEF);
    v->uname = what;
    return v;
}

jv jj_V_NONE = {.t = JV_NONE};
static jv V_TRUE = {.t = JV_BOOL, .u.b = 1};
static jv V_FALSE = {.t = JV_BOOL, .u.b = 0};

jv *jj_v_bool(int b) { return b ? &V_TRUE : &V_FALSE; }

jv *jj_v_int(ctx *C, int64_t i) {
    jv *v = jj_v_new(C, JV_INT);
    v->u.i = i;
    return v;
}

jv *jj_v_float(ctx *C, double f) {
    jv *v = jj_v_new(C, JV_FLOAT);
    v->u.f = f;
    return v;
}

jv *jj_v_strn(ctx *C, const char *s, size_t n) {
    jv *v = jj_v_new(C, JV_STR);
    v->u.s.p = jj_ar_strndup(C->a, s, n);
    v->u.s.n = n;
    return v;
}

/* string value that points at s without copying (s must outlive the render) */
jv *jj_v_strref(ctx *C, const char *s, size_t n) {
    jv *v = jj_v_new(C, JV_STR);
    v->u.s.p = s;
    v->u.s.n = n;
    return v;
}

static jv *v_str(ctx *C, const char *s) { return jj_v_strn(C, s, strlen(s)); }
jv *jj_v_sbuf(ctx *C, sbuf *b) { return jj_v_strref(C, b->p ? b->p : "", b->n); }

jv *jj_v_list(ctx *C) { return jj_v_new(C, JV_LIST); }

void jj_l_push(ctx *C, jv *l, jv *x) {
    if (l->u.l.n == l->u.l.cap) {
        int cap = l->u.l.cap ? l->u.l.cap * 2 : 4;
        jv **p = jj_ar_alloc(C->a, sizeof(jv *) * (size_t)cap);
        if (l->u.l.n) memcpy(p, l->u.l.v, sizeof(jv *) * (size_t)l->u.l.n);
        l->u.l.v = p;
        l->u.l.cap = cap;
    }
    l->u.l.v[l->u.l.n++] = x;
}

jv *jj_v_pair(ctx *C, jv *a, jv *b) {
    jv *t = jj_v_list(C);
    t->flags = F_TUPLE;
    jj_l_push(C, t, a);
    jj_l_push(C, t, b);
    return t;
}

jv *jj_v_dict(ctx *C) { return jj_v_new(C, JV_DICT); }

int jj_d_find(jv *d, jv *k) {
    for (int i = 0; i < d->u.d.n; i++)
        if (jj_v_eq(d->u.d.k[i], k)) return i;
    return -1;
}

static int d_find_s(jv *d, const char *k) {
    size_t n = strlen(k);
    for (int i = 0; i < d->u.d.n; i++) {
        jv *x = d->u.d.k[i];
        if (x->t == JV_STR && x->u.s.n == n && !memcmp(x->u.s.p, k, n)) return i;
    }
    return -1;
}

void jj_d_set(ctx *C, jv *d, jv *k, jv *v) {
    int i = jj_d_find(d, k);
    if (i >= 0) {
        d->u.d.v[i] = v;
        return;
    }
    if (d->u.d.n == d->u.d.cap) {
        int cap = d->u.d.cap ? d->u.d.cap * 2 : 8;
        jv **pk_ = jj_ar_alloc(C->a, sizeof(jv *) * (size_t)cap);
        jv **pv = jj_ar_alloc(C->a, sizeof(jv *) * (size_t)cap);
        if (d->u.d.n) {
            memcpy(pk_, d->u.d.k, sizeof(jv *) * (size_t)d->u.d.n);
            memcpy(pv, d->u.d.v, sizeof(jv *) * (size_t)d->u.d.n);
        }
        d->u.d.k = pk_;
        d->u.d.v = pv;
        d->u.d.cap = cap;
    }
    d->u.d.k[d->u.d.n] = k;
    d->u.d.v[d->u.d.n] = v;
    d->u.d.n++;
}

void jj_d_set_s(ctx *C, jv *d, const char *k, jv *v) { jj_d_set(C, d, jj_v_strref(C, k, strlen(k)), v); }

jv *jj_d_get_s(jv *d, const char *k) {
    int i = d_find_s(d, k);
    return i >= 0 ? d->u.d.v[i] : NULL;
}

const char *jj_type_name(jv *v) {
    switch (v->t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v->flags & F_TUPLE ? "tuple" : "list";
    case JV_DICT: return v->flags & F_NS ? "Namespace" : "dict";
    case JV_FUNC: return "builtin_function_or_method";
    default: return "Macro";
    }
}

void jj_undef_error(ctx *C, jv *v) {
    ERR(C, "template line %d: %s", C->line, v->uname ? v->uname : "value is undefined");
}

int jj_truthy(jv *v) {
    switch (v->t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: return v->u.b;
    case JV_INT: return v->u.i != 0;
    case JV_FLOAT: return v->u.f != 0;
    case JV_STR: return v->u.s.n > 0;
    case JV_LIST: return v->u.l.n > 0;
    case JV_DICT: return v->u.d.n > 0;
    default: return 1;
    }
}

int jj_is_num(jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
double jj_num_f(jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : (double)v->u.b; }
int64_t jj_num_i(jv *v) { return v->t == JV_INT ? v->u.i : v->u.b; }

int jj_v_eq(jv *a, jv *b) {
    if (jj_is_num(a) && jj_is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) return jj_num_f(a) == jj_num_f(b);
        return jj_num_i(a) == jj_num_i(b);
    }
    if (a->t != b->t) return 0;
    switch (a->t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a->u.s.n == b->u.s.n && !memcmp(a->u.s.p, b->u.s.p, a->u.s.n);
    case JV_LIST:
        if (a->u.l.n != b->u.l.n || (a->flags & F_TUPLE) != (b->flags & F_TUPLE)) return 0;
        for (int i = 0; i < a->u.l.n; i++)
            if (!jj_v_eq(a->u.l.v[i], b->u.l.v[i])) return 0;
        return 1;
    case JV_DICT:
        if (a->u.d.n != b->u.d.n) return 0;
        for (int i = 0; i < a->u.d.n; i++) {
            int j = jj_d_find(b, a->u.d.k[i]);
            if (j < 0 || !jj_v_eq(a->u.d.v[i], b->u.d.v[j])) return 0;
        }
        return 1;
    case JV_FUNC: return a->u.fn.fn == b->u.fn.fn && a->u.fn.self == b->u.fn.self;
    case JV_MACRO: return a->u.mac == b->u.mac;
    default: return 0;
    }
}

/* a < b (Python ordering); -1 type error */
int jj_v_cmp(ctx *C, jv *a, jv *b) {
    if (jj_is_num(a) && jj_is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) {
            double x = jj_num_f(a), y = jj_num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = jj_num_i(a), y = jj_num_i(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->t == JV_STR && b->t == JV_STR) {
        size_t m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = memcmp(a->u.s.p, b->u.s.p, m);
        if (c) return c < 0 ? -1 : 1;
        return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n ? 1 : 0;
    }
    if (a->t == JV_LIST && b->t == JV_LIST) {
        for (int i = 0; i < a->u.l.n && i < b->u.l.n; i++) {
            if (jj_v_eq(a->u.l.v[i], b->u.l.v[i])) continue;
            return jj_v_cmp(C, a->u.l.v[i], b->u.l.v[i]);
        }
        return a->u.l.n < b->u.l.n ? -1 : a->u.l.n > b->u.l.n ? 1 : 0;
    }
    if (a->t == JV_UNDEF) jj_undef_error(C, a);
    if (b->t == JV_UNDEF) jj_undef_error(C, b);
    ERR(C, "template line %d: '<' not supported between instances of '%s' and '%s'", C->line, jj_type_name(a), jj_type_name(b));
}

/* ---------------------------------------------------------------- str() / repr() / json */

static void fmt_float(sbuf *b, double f, int json) {
    if (isnan(f)) { jj_sb_puts(b, json ? "NaN" : "nan"); return; }
    if (isinf(f)) { jj_sb_puts(b, f > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf")); return; }
    char tmp[64];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp = d.ddde[+-]XX with p significant digits */
    char digits[32];
    int nd = 0, neg = 0;
    const char *s = tmp;
    if (*s == '-') { neg = 1; s++; }
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    int exp = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) jj_sb_putc(b, '-');
    if (exp >= -5 && exp < 16) { /* Python repr: fixed when -4 <= exp < 16 */
        if (exp < -4) goto sci;
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) jj_sb_putc(b, i < nd ? digits[i] : '0');
            jj_sb_putc(b, '.');
            if (nd > exp + 1) jj_sb_put(b, digits + exp + 1, (size_t)(nd - exp - 1));
            else jj_sb_putc(b, '0');
        } else {
            jj_sb_puts(b, "0.");
            for (int i = 0; i < -exp - 1; i++) jj_sb_putc(b, '0');
            jj_sb_put(b, digits, (size_t)nd);
        }
        return;
    }
sci:
    jj_sb_putc(b, digits[0]);
    if (nd > 1) {
        jj_sb_putc(b, '.');
        jj_sb_put(b, digits + 1, (size_t)(nd - 1));
    }
    sb_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

static void str_repr(sbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jj_sb_putc(b, q);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        uint32_t c = jj_u8_next(s, n, &j);
        if (c == (uint32_t)q || c == '\\') { jj_sb_putc(b, '\\'); jj_sb_putc(b, (char)c); }
        else if (c == '\n') jj_sb_puts(b, "\\n");
        else if (c == '\r') jj_sb_puts(b, "\\r");
        else if (c == '\t') jj_sb_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xA0)) sb_printf(b, "\\x%02x", c);
        else if (c >= 0xDC80 && c <= 0xDCFF) sb_printf(b, "\\udc%02x", c - 0xDC00);
        else jj_sb_put(b, s + i, j - i);
        i = j;
    }
    jj_sb_putc(b, q);
}

/* Python str(v) */
void jj_v_str_into(ctx *C, sbuf *b, jv *v) {
    switch (v->t) {
    case JV_UNDEF: break;
    case JV_NONE: jj_sb_puts(b, "None"); break;
    case JV_BOOL: jj_sb_puts(b, v->u.b ? "True" : "False"); break;
    case JV_INT: sb_printf(b, "%lld", (long long)v->u.i); break;
    case JV_FLOAT: fmt_float(b, v->u.f, 0); break;
    case JV_STR: jj_sb_put(b, v->u.s.p, v->u.s.n); break;
    default: jj_v_repr(C, b, v);
    }
}

void jj_v_repr(ctx *C, sbuf *b, jv *v) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: value nested too deeply", C->line);
    switch (v->t) {
    case JV_STR: str_repr(b, v->u.s.p, v->u.s.n); break;
    case JV_LIST: {
        int tup = v->flags & F_TUPLE;
        jj_sb_putc(b, tup ? '(' : '[');
        for (int i = 0; i < v->u.l.n; i++) {
            if (i) jj_sb_puts(b, ", ");
            jj_v_repr(C, b, v->u.l.v[i]);
        }
        if (tup && v->u.l.n == 1) jj_sb_putc(b, ',');
        jj_sb_putc(b, tup ? ')' : ']');
        break;
    }
    case JV_DICT:
        if (v->flags & F_NS) jj_sb_puts(b, "<Namespace ");
        jj_sb_putc(b, '{');
        for (int i = 0; i < v->u.d.n; i++) {
            if (i) jj_sb_puts(b, ", ");
            jj_v_repr(C, b, v->u.d.k[i]);
            jj_sb_puts(b, ": ");
            jj_v_repr(C, b, v->u.d.v[i]);
        }
        jj_sb_putc(b, '}');
        if (v->flags & F_NS) jj_sb_putc(b, '>');
        break;
    case JV_FUNC: sb_printf(b, "<built-in function %s>", v->u.fn.name); break;
    case JV_MACRO: sb_printf(b, "<Macro '%s'>", v->u.mac->s); break;
    case JV_UNDEF: jj_sb_puts(b, "Undefined"); break;
    default: jj_v_str_into(C, b, v);
    }
    C->depth--;
}

jv *jj_to_str(ctx *C, jv *v) {
    if (v->t == JV_STR) return v;
    sbuf b;
    jj_sb_init(&b, C->a);
    jj_v_str_into(C, &b, v);
    return jj_v_sbuf(C, &b);
}

static void json_str(sbuf *b, const char *s, size_t n) {
    jj_sb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': jj_sb_puts(b, "\\\""); break;
        case '\\': jj_sb_puts(b, "\\\\"); break;
        case '\n': jj_sb_puts(b, "\\n"); break;
        case '\r': jj_sb_puts(b, "\\r"); break;
        case '\t': jj_sb_puts(b, "\\t"); break;
        case '\b': jj_sb_puts(b, "\\b"); break;
        case '\f': jj_sb_puts(b, "\\f"); break;
        default:
            if (c < 0x20) sb_printf(b, "\\u%04x", c);
            else jj_sb_putc(b, (char)c);
        }
    }
    jj_sb_putc(b, '"');
}

static void json_nl(sbuf *b, const jsonfmt *f, int level) {
    jj_sb_putc(b, '\n');
    for (int i = 0; i < level; i++) jj_sb_puts(b, f->indent);
}

/* Python json.dumps */
void jj_v_json(ctx *C, sbuf *b, jv *v, const jsonfmt *f, int level) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: value nested too deeply for tojson", C->line);
    switch (v->t) {
    case JV_NONE: jj_sb_puts(b, "null"); break;
    case JV_BOOL: jj_sb_puts(b, v->u.b ? "true" : "false"); break;
    case JV_INT: sb_printf(b, "%lld", (long long)v->u.i); break;
    case JV_FLOAT: fmt_float(b, v->u.f, 1); break;
    case JV_STR: json_str(b, v->u.s.p, v->u.s.n); break;
    case JV_LIST:
        if (!v->u.l.n) { jj_sb_puts(b, "[]"); break; }
        jj_sb_putc(b, '[');
        for (int i = 0; i < v->u.l.n; i++) {
            if (i) jj_sb_puts(b, f->item_sep);
            if (f->indent) json_nl(b, f, level + 1);
            jj_v_json(C, b, v->u.l.v[i], f, level + 1);
        }
        if (f->indent) json_nl(b, f, level);
        jj_sb_putc(b, ']');
        break;
    case JV_DICT: {
        if (!v->u.d.n) { jj_sb_puts(b, "{}"); break; }
        int n = v->u.d.n;
        int *ord = jj_ar_alloc(C->a, sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) ord[i] = i;
        if (f->sort_keys)
            for (int i = 1; i < n; i++) /* insertion sort, stable */
                for (int j = i; j > 0 && jj_v_cmp(C, v->u.d.k[ord[j]], v->u.d.k[ord[j - 1]]) < 0; j--) {
                    int t = ord[j];
                    ord[j] = ord[j - 1];
                    ord[j - 1] = t;
                }
        jj_sb_putc(b, '{');
        for (int i = 0; i < n; i++) {
            jv *k = v->u.d.k[ord[i]];
            if (i) jj_sb_puts(b, f->item_sep);
            if (f->indent) json_nl(b, f, level + 1);
            if (k->t == JV_STR) json_str(b, k->u.s.p, k->u.s.n);
            else if (k->t == JV_INT || k->t == JV_FLOAT || k->t == JV_BOOL || k->t == JV_NONE) {
                sbuf t;
                jj_sb_init(&t, C->a);
                jj_v_json(C, &t, k, f, level);
                json_str(b, t.p, t.n);
            } else ERR(C, "template line %d: tojson: keys must be str, int, float, bool or None", C->line);
            jj_sb_puts(b, f->key_sep);
            jj_v_json(C, b, v->u.d.v[ord[i]], f, level + 1);
        }
        if (f->indent) json_nl(b, f, level);
        jj_sb_putc(b, '}');
        break;
    }
    default:
        ERR(C, "template line %d: tojson: Object of type %s is not JSON serializable", C->line, jj_type_name(v));
    }
    C->depth--;
}

jv *jj_from_cjson(ctx *C, const cJSON *j) {
    if (cJSON_IsNull(j)) return &jj_V_NONE;
    if (cJSON_IsBool(j)) return jj_v_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9e15) return jj_v_int(C, (int64_t)d);
        return jj_v_float(C, d);
    }
    if (cJSON_IsString(j)) return jj_v_strref(C, j->valuestring, strlen(j->valuestring));
    if (cJSON_IsArray(j)) {
        jv *l = jj_v_list(C);
        for (const cJSON *c = j->child; c; c = c->next) jj_l_push(C, l, jj_from_cjson(C, c));
        return l;
    }
    if (cJSON_IsObject(j)) {
        jv *d = jj_v_dict(C);
        for (const cJSON *c = j->child; c; c = c->next) jj_d_set(C, d, v_str(C, c->string ? c->string : ""), jj_from_cjson(C, c));
        return d;
    }
    return &jj_V_NONE;
}

/* ---------------------------------------------------------------- sequences */

/* code-point offsets of a string: off[0..nc], off[nc] = byte length */
size_t *jj_cp_offsets(ctx *C, jv *s, size_t *nc) {
    size_t n = s->u.s.n, c = 0, i = 0;
    size_t *off = jj_ar_alloc(C->a, sizeof(size_t) * (n + 1));
    while (i < n) {
        off[c++] = i;
        jj_u8_next(s->u.s.p, n, &i);
    }
    off[c] = n;
    *nc = c;
    return off;
}

int64_t jj_v_len(ctx *C, jv *v) {
    switch (v->t) {
    case JV_STR: return (int64_t)jj_u8_count(v->u.s.p, v->u.s.n);
    case JV_LIST: return v->u.l.n;
    case JV_DICT: return v->u.d.n;
    case JV_UNDEF: return 0;
    default: ERR(C, "template line %d: object of type '%s' has no len()", C->line, jj_type_name(v));
    }
}

/* the items a for loop / filter sees */
jv *jj_iter_list(ctx *C, jv *v) {
    if (v->t == JV_LIST) return v;
    jv *l = jj_v_list(C);
    if (v->t == JV_UNDEF) return l;
    if (v->t == JV_DICT) {
        for (int i = 0; i < v->u.d.n; i++) jj_l_push(C, l, v->u.d.k[i]);
        return l;
    }
    if (v->t == JV_STR) {
        size_t i = 0;
        while (i < v->u.s.n) {
            size_t j = i;
            jj_u8_next(v->u.s.p, v->u.s.n, &j);
            jj_l_push(C, l, jj_v_strref(C, v->u.s.p + i, j - i));
            i = j;
        }
        return l;
    }
    ERR(C, "template line %d: '%s' object is not iterable", C->line, jj_type_name(v));
}

jv *jj_v_slice(ctx *C, jv *v, jv *js, jv *je, jv *jst) {
    int64_t step = 1;
    if (jst && jst->t != JV_NONE) {
        if (jst->t != JV_INT && jst->t != JV_BOOL) ERR(C, "template line %d: slice indices must be integers", C->line);
        step = jj_num_i(jst);
        if (step == 0) ERR(C, "template line %d: slice step cannot be zero", C->line);
    }
    if (v->t == JV_UNDEF) jj_undef_error(C, v);
    if (v->t != JV_STR && v->t != JV_LIST) ERR(C, "template line %d: '%s' object is not subscriptable", C->line, jj_type_name(v));
    size_t nc = 0, *off = NULL;
    if (v->t == JV_STR) off = jj_cp_offsets(C, v, &nc);
    int64_t len = v->t == JV_STR ? (int64_t)nc : v->u.l.n;
    int64_t start, stop;
    jv *bounds[2] = {js, je};
    int64_t vals[2];
    for (int k = 0; k < 2; k++) {
        jv *x = bounds[k];
        if (!x || x->t == JV_NONE) {
            vals[k] = k == 0 ? (step < 0 ? len - 1 : 0) : (step < 0 ? -1 : len);
            continue;
        }
        if (x->t != JV_INT && x->t != JV_BOOL) ERR(C, "template line %d: slice indices must be integers", C->line);
        int64_t i = jj_num_i(x);
        if (i < 0) {
            i += len;
            if (i < 0) i = step < 0 ? -1 : 0;
        } else if (i >= len) {
            i = step < 0 ? len - 1 : len;
        }
        vals[k] = i;
    }
    start = vals[0];
    stop = vals[1];
    if (v->t == JV_LIST) {
        jv *r = jj_v_list(C);
        r->flags = v->flags & F_TUPLE;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) jj_l_push(C, r, v->u.l.v[i]);
        return r;
    }
    sbuf b;
    jj_sb_init(&b, C->a);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) jj_sb_put(&b, v->u.s.p + off[i], off[i + 1] - off[i]);
    return jj_v_sbuf(C, &b);
}

/* ---------------------------------------------------------------- attribute / item access */

static jv *undef_attr(ctx *C, jv *obj, const char *name) {
    size_t n = strlen(name) + 64;
    char *s = jj_ar_alloc(C->a, n);
    snprintf(s, n, "'%s object' has no attribute '%s'", jj_type_name(obj), name);
    return jj_v_undef(C, s);
}

/* obj.name: attribute first (methods), then item (jinja2 getattr) */
jv *jj_get_attr(ctx *C, jv *obj, const char *name) {
    if (obj->t == JV_UNDEF) jj_undef_error(C, obj);
    jv *m = NULL;
    if (obj->t == JV_STR) m = jj_bound(C, obj, jj_STR_METHODS, name);
    else if (obj->t == JV_DICT && !(obj->flags & F_NS)) m = jj_bound(C, obj, jj_DICT_METHODS, name);
    else if (obj->t == JV_LIST) m = jj_bound(C, obj, jj_LIST_METHODS, name);
    if (m) return m;
    if (obj->t == JV_DICT) {
        jv *v = jj_d_get_s(obj, name);
        if (v) return v;
    }
    return undef_attr(C, obj, name);
}

/* obj[key]: item first, then attribute (jinja2 getitem) */
jv *jj_get_item(ctx *C, jv *obj, jv *key) {
    if (obj->t == JV_UNDEF) jj_undef_error(C, obj);
    if (obj->t == JV_DICT) {
        int i = jj_d_find(obj, key);
        if (i >= 0) return obj->u.d.v[i];
    } else if ((obj->t == JV_LIST || obj->t == JV_STR) && (key->t == JV_INT || key->t == JV_BOOL)) {
        int64_t i = jj_num_i(key);
        if (obj->t == JV_LIST) {
            if (i < 0) i += obj->u.l.n;
            if (i >= 0 && i < obj->u.l.n) return obj->u.l.v[i];
        } else {
            size_t nc, *off = jj_cp_offsets(C, obj, &nc);
            if (i < 0) i += (int64_t)nc;
            if (i >= 0 && i < (int64_t)nc) return jj_v_strref(C, obj->u.s.p + off[i], off[i + 1] - off[i]);
        }
        return jj_v_undef(C, "list index out of range");
    }
    if (key->t == JV_STR) return jj_get_attr(C, obj, jj_ar_strndup(C->a, key->u.s.p, key->u.s.n));
    return jj_v_undef(C, "no such item");
}

/* ---------------------------------------------------------------- arithmetic */

jv *jj_arith(ctx *C, int op, jv *a, jv *b) {
    if (op == OP_CONCAT) {
        sbuf s;
        jj_sb_init(&s, C->a);
        jj_v_str_into(C, &s, a);
        jj_v_str_into(C, &s, b);
        return jj_v_sbuf(C, &s);
    }
    if (op == OP_MOD && a->t == JV_STR) return jj_py_percent(C, a, b);
    if (a->t == JV_UNDEF) jj_undef_error(C, a);
    if (b->t == JV_UNDEF) jj_undef_error(C, b);
    if (jj_is_num(a) && jj_is_num(b)) {
        int fl = a->t == JV_FLOAT || b->t == JV_FLOAT;
        if (fl || op == OP_DIV) {
            double x = jj_num_f(a), y = jj_num_f(b), r;
            switch (op) {
            case OP_ADD: r = x + y; break;
            case OP_SUB: r = x - y; break;
            case OP_MUL: r = x * y; break;
            case OP_DIV:
                if (y == 0) ERR(C, "template line %d: division by zero", C->line);
                r = x / y;
                break;
            case OP_FLOORDIV:
                if (y == 0) ERR(C, "template line %d: division by zero", C->line);
                r = floor(x / y);
                break;
            case OP_MOD:
                if (y == 0) ERR(C, "template line %d: modulo by zero", C->line);
                r = fmod(x, y);
                if (r != 0 && ((r < 0) != (y < 0))) r += y;
                break;
            default: r = pow(x, y);
            }
            return jj_v_float(C, r);
        }
        int64_t x = jj_num_i(a), y = jj_num_i(b), r = 0;
        int ovf = 0;
        switch (op) {
        case OP_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
        case OP_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
        case OP_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
        case OP_FLOORDIV:
        case OP_MOD:
            if (y == 0) ERR(C, "template line %d: integer division or modulo by zero", C->line);
            if (x == INT64_MIN && y == -1) { ovf = 1; break; }
            r = op == OP_FLOORDIV ? x / y : x % y;
            if (op == OP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0))) r--;
            if (op == OP_MOD && r != 0 && ((r < 0) != (y < 0))) r += y;
            break;
        default:
            if (y < 0) return jj_v_float(C, pow((double)x, (double)y));
            r = 1;
            for (int64_t k = 0; k < y && !ovf; k++) ovf = __builtin_mul_overflow(r, x, &r);
        }
        if (ovf) ERR(C, "template line %d: integer overflow", C->line);
        return jj_v_int(C, r);
    }
    if (op == OP_ADD && a->t == JV_STR && b->t == JV_STR) {
        char *p = jj_ar_alloc(C->a, a->u.s.n + b->u.s.n + 1);
        memcpy(p, a->u.s.p, a->u.s.n);
        memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
        p[a->u.s.n + b->u.s.n] = 0;
        return jj_v_strref(C, p, a->u.s.n + b->u.s.n);
    }
    if (op == OP_ADD && a->t == JV_LIST && b->t == JV_LIST) {
        jv *l = jj_v_list(C);
        l->flags = a->flags & F_TUPLE;
        for (int i = 0; i < a->u.l.n; i++) jj_l_push(C, l, a->u.l.v[i]);
        for (int i = 0; i < b->u.l.n; i++) jj_l_push(C, l, b->u.l.v[i]);
        return l;
    }
    if (op == OP_MUL && ((a->t == JV_STR || a->t == JV_LIST) && (b->t == JV_INT || b->t == JV_BOOL))) {
        int64_t k = jj_num_i(b);
        if (k > 0 && (a->t == JV_STR ? (int64_t)a->u.s.n : a->u.l.n) * k > (1 << 26))
            ERR(C, "template line %d: repetition too large", C->line);
        if (a->t == JV_STR) {
            sbuf s;
            jj_sb_init(&s, C->a);
            for (int64_t i = 0; i < k; i++) jj_sb_put(&s, a->u.s.p, a->u.s.n);
            return jj_v_sbuf(C, &s);
        }
        jv *l = jj_v_list(C);
        for (int64_t i = 0; i < k; i++)
            for (int j = 0; j < a->u.l.n; j++) jj_l_push(C, l, a->u.l.v[j]);
        return l;
    }
    if (op == OP_MUL && (b->t == JV_STR || b->t == JV_LIST) && (a->t == JV_INT || a->t == JV_BOOL)) return jj_arith(C, op, b, a);
    static const char *names[] = {"", "+", "-", "*", "/", "//", "%", "**"};
    ERR(C, "template line %d: unsupported operand type(s) for %s: '%s' and '%s'", C->line, names[op], jj_type_name(a), jj_type_name(b));
}

int jj_contains(ctx *C, jv *hay, jv *x) {
    switch (hay->t) {
    case JV_STR:
        if (x->t != JV_STR) ERR(C, "template line %d: 'in <string>' requires string as left operand, not %s", C->line, jj_type_name(x));
        return jj_memmem_(hay->u.s.p, hay->u.s.n, x->u.s.p, x->u.s.n) != NULL;
    case JV_LIST:
        for (int i = 0; i < hay->u.l.n; i++)
            if (jj_v_eq(hay->u.l.v[i], x)) return 1;
        return 0;
    case JV_DICT: return jj_d_find(hay, x) >= 0;
    case JV_UNDEF: return 0;
    default: ERR(C, "template line %d: argument of type '%s' is not iterable", C->line, jj_type_name(hay));
    }
}
