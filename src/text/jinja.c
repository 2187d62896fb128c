/* jinja.c — Jinja2-subset interpreter for chat templates: lexer (with trim_blocks/lstrip_blocks
 * whitespace rules), recursive-descent parser to an AST, and a tree-walking evaluator over
 * Python-like values. See include/pika/jinja.h for the supported subset.
 *
 * Memory: the AST lives in the template's arena; every value made while rendering lives in a
 * per-render arena freed at the end. Errors anywhere longjmp to the entry point, which frees the
 * arena and records the message with pika_set_error().
 */
#include "pika/jinja.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pika/util.h"

#define MAX_DEPTH 256                   /* nesting of expressions / statements / macro calls */
#define ARENA_LIMIT ((size_t)1 << 30)   /* bytes one parse or render may allocate */
#define STEP_LIMIT 50000000LL           /* statements + loop iterations one render may execute */

/* ---------------------------------------------------------------- errors and arena */

typedef struct {
    jmp_buf jb;
    char msg[512];
} errctx;

static void fail(errctx *e, const char *fmt, ...) PIKA_PRINTF(2, 3) __attribute__((noreturn));
static void fail(errctx *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    longjmp(e->jb, 1);
}

typedef struct achunk {
    struct achunk *next;
    size_t used, cap;
    _Alignas(16) char data[];
} achunk;

typedef struct {
    achunk *head;
    size_t total;
    errctx *err;
} arena;

static void *ar_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total + cap > ARENA_LIMIT) fail(a->err, "template needs more than 1 GiB of memory");
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

static void *ar_zalloc(arena *a, size_t n) {
    void *p = ar_alloc(a, n);
    memset(p, 0, n);
    return p;
}

static void ar_free(arena *a) {
    achunk *c = a->head;
    while (c) {
        achunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}

static char *ar_strndup(arena *a, const char *s, size_t n) {
    char *p = ar_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* growable byte buffer in an arena */
typedef struct {
    arena *a;
    char *p;
    size_t n, cap;
} sbuf;

static void sb_init(sbuf *b, arena *a) {
    b->a = a;
    b->p = NULL;
    b->n = b->cap = 0;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = ar_alloc(b->a, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

static void sb_printf(sbuf *b, const char *fmt, ...) PIKA_PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    sb_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* ---------------------------------------------------------------- UTF-8 and whitespace */

/* Decode one code point at s[*i] (n bytes total); invalid bytes decode as themselves + 0xDC00
 * (like Python's surrogateescape) so every byte belongs to exactly one "character". */
static uint32_t u8_next(const char *s, size_t n, size_t *i) {
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

static size_t u8_count(const char *s, size_t n) {
    size_t i = 0, c = 0;
    while (i < n) {
        u8_next(s, n, &i);
        c++;
    }
    return c;
}

/* Python str.isspace() code points */
static int py_space(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* byte length of s[0:n] after removing trailing Python whitespace */
static size_t rstrip_len(const char *s, size_t n) {
    size_t i = 0, keep = 0;
    while (i < n) {
        uint32_t c = u8_next(s, n, &i);
        if (!py_space(c)) keep = i;
    }
    return keep;
}

/* bytes of leading Python whitespace */
static size_t lspace_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        uint32_t c = u8_next(s, n, &j);
        if (!py_space(c)) break;
        i = j;
    }
    return i;
}

static void u8_put(sbuf *b, uint32_t c) {
    char t[4];
    if (c >= 0xDC80 && c <= 0xDCFF) { /* escaped raw byte */
        t[0] = (char)(c - 0xDC00);
        sb_put(b, t, 1);
    } else if (c < 0x80) {
        t[0] = (char)c;
        sb_put(b, t, 1);
    } else if (c < 0x800) {
        t[0] = (char)(0xC0 | (c >> 6));
        t[1] = (char)(0x80 | (c & 0x3F));
        sb_put(b, t, 2);
    } else if (c < 0x10000) {
        t[0] = (char)(0xE0 | (c >> 12));
        t[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        t[2] = (char)(0x80 | (c & 0x3F));
        sb_put(b, t, 3);
    } else {
        t[0] = (char)(0xF0 | (c >> 18));
        t[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        t[3] = (char)(0x80 | (c & 0x3F));
        sb_put(b, t, 4);
    }
}

/* ---------------------------------------------------------------- lexer */

enum { T_DATA, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP, T_EOF };

typedef struct {
    int type;
    const char *s; /* DATA / NAME / STRING (decoded) / OP text, NUL-terminated */
    size_t n;
    int64_t i;
    double f;
    int line;
} token;

typedef struct {
    arena *a;
    errctx *err;
    const char *src;
    size_t n;
    token *toks;
    int ntok, cap;
} lexer;

static void lx_emit(lexer *L, int type, const char *s, size_t n, int line) {
    if (L->ntok == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        token *t = ar_alloc(L->a, sizeof(token) * (size_t)cap);
        if (L->ntok) memcpy(t, L->toks, sizeof(token) * (size_t)L->ntok);
        L->toks = t;
        L->cap = cap;
    }
    token *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->s = s ? ar_strndup(L->a, s, n) : "";
    t->n = s ? n : 0;
    t->line = line;
}

/* line number at pos; positions asked for only increase, so counting resumes where it stopped */
static int line_at(const char *src, size_t pos, size_t *from, int *line) {
    for (; *from < pos; (*from)++) *line += src[*from] == '\n';
    return *line;
}

static int is_name_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* decode a Python string literal body (unicode-escape) */
static void lx_string(lexer *L, size_t *pos, int line) {
    const char *s = L->src;
    char q = s[*pos];
    size_t i = *pos + 1;
    sbuf b;
    sb_init(&b, L->a);
    for (;;) {
        if (i >= L->n) fail(L->err, "template line %d: unterminated string literal", line);
        char c = s[i];
        if (c == q) { i++; break; }
        if (c != '\\') { sb_putc(&b, c); i++; continue; }
        if (i + 1 >= L->n) fail(L->err, "template line %d: unterminated string literal", line);
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'n': sb_putc(&b, '\n'); break;
        case 't': sb_putc(&b, '\t'); break;
        case 'r': sb_putc(&b, '\r'); break;
        case 'b': sb_putc(&b, '\b'); break;
        case 'f': sb_putc(&b, '\f'); break;
        case 'v': sb_putc(&b, '\v'); break;
        case 'a': sb_putc(&b, '\a'); break;
        case '\\': sb_putc(&b, '\\'); break;
        case '\'': sb_putc(&b, '\''); break;
        case '"': sb_putc(&b, '"'); break;
        case '\n': break; /* line continuation */
        case 'x': case 'u': case 'U': {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int k = 0; k < nd; k++) {
                char h = i + (size_t)k < L->n ? s[i + k] : 0;
                int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (d < 0) fail(L->err, "template line %d: bad \\%c escape in string literal", line, e);
                v = v * 16 + (uint32_t)d;
            }
            i += (size_t)nd;
            if (v > 0x10FFFF) fail(L->err, "template line %d: bad \\%c escape in string literal", line, e);
            u8_put(&b, v);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && i < L->n && s[i] >= '0' && s[i] <= '7'; k++) v = v * 8 + (uint32_t)(s[i++] - '0');
                u8_put(&b, v);
            } else {
                sb_putc(&b, '\\');
                sb_putc(&b, e);
            }
        }
    }
    lx_emit(L, T_STRING, b.p ? b.p : "", b.n, line);
    *pos = i;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", "<=", ">="};
static const char OPS1[] = "+-*/%~<>=.,:|()[]{}";

/* Lex the tokens inside {{ }} or {% %} starting at *pos; returns with *pos after the end tag. */
static void lx_tag(lexer *L, size_t *pos, int is_block, int line) {
    const char *s = L->src;
    size_t n = L->n, i = *pos;
    int depth = 0;
    for (;;) {
        if (i >= n) fail(L->err, "template line %d: missing '%s'", line, is_block ? "%}" : "}}");
        char c = s[i];
        if (depth == 0) {
            char e0 = is_block ? '%' : '}';
            if ((c == '-' || c == '+') && i + 2 < n && s[i + 1] == e0 && s[i + 2] == '}' && (is_block || c == '-')) {
                i += 3;
                if (c == '-') i += lspace_len(s + i, n - i);
                lx_emit(L, is_block ? T_BLOCK_END : T_VAR_END, NULL, 0, line);
                break;
            }
            if (c == e0 && i + 1 < n && s[i + 1] == '}') {
                i += 2;
                if (is_block && i < n && s[i] == '\n') i++; /* trim_blocks */
                lx_emit(L, is_block ? T_BLOCK_END : T_VAR_END, NULL, 0, line);
                break;
            }
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            line += c == '\n';
            i++;
            continue;
        }
        if (is_name_start((unsigned char)c)) {
            size_t j = i;
            while (j < n && (is_name_start((unsigned char)s[j]) || is_digit((unsigned char)s[j]))) j++;
            lx_emit(L, T_NAME, s + i, j - i, line);
            i = j;
            continue;
        }
        if (is_digit((unsigned char)c)) {
            size_t j = i;
            while (j < n && (is_digit((unsigned char)s[j]) || (s[j] == '_' && j + 1 < n && is_digit((unsigned char)s[j + 1])))) j++;
            int isf = 0;
            if (j + 1 < n && s[j] == '.' && is_digit((unsigned char)s[j + 1])) {
                isf = 1;
                j++;
                while (j < n && (is_digit((unsigned char)s[j]) || s[j] == '_')) j++;
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E')) {
                size_t k = j + 1;
                if (k < n && (s[k] == '+' || s[k] == '-')) k++;
                if (k < n && is_digit((unsigned char)s[k])) {
                    isf = 1;
                    while (k < n && is_digit((unsigned char)s[k])) k++;
                    j = k;
                }
            }
            char num[128];
            size_t m = 0;
            for (size_t k = i; k < j && m < sizeof num - 1; k++)
                if (s[k] != '_') num[m++] = s[k];
            num[m] = 0;
            lx_emit(L, isf ? T_FLOAT : T_INT, s + i, j - i, line);
            token *t = &L->toks[L->ntok - 1];
            if (isf) t->f = strtod(num, NULL);
            else {
                unsigned long long v = strtoull(num, NULL, 10);
                if (v > INT64_MAX) fail(L->err, "template line %d: integer literal too large", line);
                t->i = (int64_t)v;
            }
            i = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            lx_string(L, &i, line);
            continue;
        }
        int found = 0;
        for (size_t k = 0; k < sizeof OPS2 / sizeof OPS2[0]; k++)
            if (i + 1 < n && s[i] == OPS2[k][0] && s[i + 1] == OPS2[k][1]) {
                lx_emit(L, T_OP, s + i, 2, line);
                i += 2;
                found = 1;
                break;
            }
        if (found) continue;
        if (c && strchr(OPS1, c)) {
            if (c == '(' || c == '[' || c == '{') depth++;
            if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) fail(L->err, "template line %d: unexpected '%c'", line, c);
                depth--;
            }
            lx_emit(L, T_OP, s + i, 1, line);
            i++;
            continue;
        }
        fail(L->err, "template line %d: unexpected character '%c' in tag", line, c);
    }
    *pos = i;
}

/* Is the text between a tag's '{%' (+sign) and its '%}' exactly the word w? Sets *end past '%}'. */
static int lx_word_tag(const char *s, size_t n, size_t i, const char *w, size_t *end, int *rsign) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    size_t wl = strlen(w);
    if (i + wl > n || memcmp(s + i, w, wl)) return 0;
    i += wl;
    if (i < n && (is_name_start((unsigned char)s[i]) || is_digit((unsigned char)s[i]))) return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    *rsign = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) *rsign = s[i++];
    if (i + 1 < n && s[i] == '%' && s[i + 1] == '}') {
        *end = i + 2;
        return 1;
    }
    return 0;
}

/* emit text before a tag with the whitespace-control rules of jinja2's lexer */
static void lx_data(lexer *L, const char *text, size_t tn, int sign, int kind, int line_starting, int line) {
    if (sign == '-') {
        tn = rstrip_len(text, tn);
    } else if (sign != '+' && kind != '{') { /* lstrip_blocks */
        size_t l = tn;
        while (l > 0 && text[l - 1] != '\n') l--;
        if (l > 0 || line_starting) {
            size_t k = l;
            while (k < tn && (text[k] == ' ' || text[k] == '\t')) k++;
            if (k == tn) tn = l;
        }
    }
    if (tn) lx_emit(L, T_DATA, text, tn, line);
}

static void lex(lexer *L) {
    const char *s = L->src;
    size_t n = L->n, p = 0;
    int line_starting = 1, lno = 1;
    size_t lfrom = 0;
    while (p < n) {
        size_t q = p;
        while (q + 1 < n && !(s[q] == '{' && (s[q + 1] == '{' || s[q + 1] == '%' || s[q + 1] == '#'))) q++;
        if (q + 1 >= n) {
            lx_emit(L, T_DATA, s + p, n - p, line_at(s, p, &lfrom, &lno));
            break;
        }
        int kind = s[q + 1];
        int sign = (q + 2 < n && (s[q + 2] == '-' || s[q + 2] == '+')) ? s[q + 2] : 0;
        size_t body = q + 2 + (sign ? 1 : 0);
        int line = line_at(s, q, &lfrom, &lno);
        size_t rend;
        int rsign;
        if (kind == '%' && lx_word_tag(s, n, body, "raw", &rend, &rsign)) {
            lx_data(L, s + p, q - p, sign, kind, line_starting, line);
            /* raw body up to {% endraw %} */
            size_t r = rend;
            if (rsign == '-') r += lspace_len(s + r, n - r);
            else if (rsign != '+' && r < n && s[r] == '\n') r++;
            size_t k = r, eend = 0;
            int esign = 0, fsign = 0;
            for (;; k++) {
                if (k + 1 >= n) fail(L->err, "template line %d: missing {%% endraw %%}", line);
                if (s[k] == '{' && s[k + 1] == '%') {
                    esign = (k + 2 < n && (s[k + 2] == '-' || s[k + 2] == '+')) ? s[k + 2] : 0;
                    if (lx_word_tag(s, n, k + 2 + (esign ? 1 : 0), "endraw", &eend, &fsign)) break;
                }
            }
            size_t rn = k - r;
            if (esign == '-') rn = rstrip_len(s + r, rn);
            if (rn) lx_emit(L, T_DATA, s + r, rn, line);
            p = eend;
            if (fsign == '-') p += lspace_len(s + p, n - p);
            else if (fsign != '+' && p < n && s[p] == '\n') p++;
            line_starting = s[p - 1] == '\n';
            continue;
        }
        lx_data(L, s + p, q - p, sign, kind, line_starting, line);
        if (kind == '#') {
            size_t e = body;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) fail(L->err, "template line %d: missing end of comment tag", line);
            p = e + 2;
            if (e > body && s[e - 1] == '-') p += lspace_len(s + p, n - p);
            else if (!(e > body && s[e - 1] == '+') && p < n && s[p] == '\n') p++;
        } else {
            lx_emit(L, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, NULL, 0, line);
            p = body;
            lx_tag(L, &p, kind == '%', line);
        }
        line_starting = s[p - 1] == '\n';
    }
    lx_emit(L, T_EOF, NULL, 0, line_at(s, n, &lfrom, &lno));
}

/* ---------------------------------------------------------------- AST */

enum {
    /* statements */
    N_BODY, N_DATA, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_BREAK, N_CONTINUE, N_FILTERBLOCK, N_WITH, N_CALLBLOCK,
    /* expressions */
    N_LIT, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_BIN, N_NOT, N_NEG,
    N_POS, N_AND, N_OR, N_COND,
};

enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT,
       OP_GE, OP_IN, OP_NOTIN };

typedef struct jv jv;
typedef struct node node;
struct node {
    int kind, line, op;
    node *a, *b, *c;
    node **list; /* args / items / body / keys */
    int n;
    node **list2; /* kwarg values / else body / dict values / defaults */
    int n2;
    const char **names; /* kwarg names / targets / params */
    int nnames;
    const char *s; /* name */
    jv *lit;
};

/* ---------------------------------------------------------------- values */

enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_FUNC, JV_MACRO };
enum { F_TUPLE = 1, F_NS = 2, F_CALLER = 4 };

typedef struct ctx ctx;
typedef jv *(*builtin_fn)(ctx *C, jv *self, jv **args, int nargs, const char **kwn, jv **kwv, int nkw);

struct jv {
    int t, flags;
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t n;
        } s;
        struct {
            jv **v;
            int n, cap;
        } l;
        struct {
            jv **k, **v;
            int n, cap;
        } d;
        struct {
            builtin_fn fn;
            jv *self;
            const char *name;
        } fn;
        const node *mac;
    } u;
    const char *uname; /* JV_UNDEF: what was undefined, for error messages */
    void *env;         /* JV_MACRO with F_CALLER: the frame of the {% call %} block */
};

struct pika_jinja {
    arena a;
    node *root;
};

/* ---------------------------------------------------------------- parser */

typedef struct {
    arena *a;
    errctx *err;
    token *t;
    int pos, depth;
} parser;

static token *pk(parser *P) { return &P->t[P->pos]; }
static token *nx(parser *P) {
    token *t = &P->t[P->pos];
    if (t->type != T_EOF) P->pos++;
    return t;
}
static int is_op(token *t, const char *op) { return t->type == T_OP && !strcmp(t->s, op); }
static int is_name(token *t, const char *nm) { return t->type == T_NAME && !strcmp(t->s, nm); }

static const char *tok_desc(token *t) {
    switch (t->type) {
    case T_DATA: return "template text";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "'}}'";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "'%}'";
    case T_EOF: return "end of template";
    case T_STRING: return "string";
    case T_INT: case T_FLOAT: return "number";
    default: return t->s;
    }
}

static void expect_op(parser *P, const char *op) {
    token *t = pk(P);
    if (!is_op(t, op)) fail(P->err, "template line %d: expected '%s', got %s", t->line, op, tok_desc(t));
    nx(P);
}

static void expect_type(parser *P, int type, const char *what) {
    token *t = pk(P);
    if (t->type != type) fail(P->err, "template line %d: expected %s, got %s", t->line, what, tok_desc(t));
    nx(P);
}

static const char *expect_name(parser *P) {
    token *t = pk(P);
    if (t->type != T_NAME) fail(P->err, "template line %d: expected a name, got %s", t->line, tok_desc(t));
    nx(P);
    return t->s;
}

static node *mk(parser *P, int kind, int line) {
    node *n = ar_zalloc(P->a, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

/* growable node* array */
typedef struct {
    node **v;
    int n, cap;
} nvec;

static void nv_push(parser *P, nvec *v, node *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        node **p = ar_alloc(P->a, sizeof(node *) * (size_t)cap);
        if (v->n) memcpy(p, v->v, sizeof(node *) * (size_t)v->n);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

typedef struct {
    const char **v;
    int n, cap;
} svec;

static void sv_push(parser *P, svec *v, const char *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        const char **p = ar_alloc(P->a, sizeof(char *) * (size_t)cap);
        if (v->n) memcpy(p, v->v, sizeof(char *) * (size_t)v->n);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static jv *mk_lit(arena *a, int t) {
    jv *v = ar_zalloc(a, sizeof *v);
    v->t = t;
    return v;
}

static node *p_expr(parser *P);
static node *p_or(parser *P);
static node *p_unary(parser *P, int with_filter);
static node *p_primary(parser *P);
static node *p_postfix(parser *P, node *n);

static void enter(parser *P) {
    if (++P->depth > MAX_DEPTH) fail(P->err, "template line %d: nesting too deep", pk(P)->line);
}

/* (args) after '(' has been seen: positional and name=value arguments */
static void p_call_args(parser *P, node *n) {
    nvec args = {0}, kwv = {0};
    svec kwn = {0};
    expect_op(P, "(");
    while (!is_op(pk(P), ")")) {
        if (args.n + kwv.n) expect_op(P, ",");
        if (is_op(pk(P), ")")) break; /* trailing comma */
        token *t = pk(P);
        if (t->type == T_NAME && is_op(&P->t[P->pos + 1], "=")) {
            nx(P);
            nx(P);
            sv_push(P, &kwn, t->s);
            nv_push(P, &kwv, p_expr(P));
        } else {
            if (kwv.n) fail(P->err, "template line %d: positional argument after keyword argument", t->line);
            nv_push(P, &args, p_expr(P));
        }
    }
    nx(P);
    n->list = args.v;
    n->n = args.n;
    n->list2 = kwv.v;
    n->n2 = kwv.n;
    n->names = kwn.v;
    n->nnames = kwn.n;
}

static node *p_filters(parser *P, node *n) {
    for (;;) {
        token *t = pk(P);
        if (is_op(t, "|")) {
            nx(P);
            node *f = mk(P, N_FILTER, t->line);
            f->s = expect_name(P);
            while (is_op(pk(P), ".")) { /* dotted filter names */
                nx(P);
                const char *more = expect_name(P);
                size_t l1 = strlen(f->s), l2 = strlen(more);
                char *s = ar_alloc(P->a, l1 + l2 + 2);
                memcpy(s, f->s, l1);
                s[l1] = '.';
                memcpy(s + l1 + 1, more, l2 + 1);
                f->s = s;
            }
            f->a = n;
            if (is_op(pk(P), "(")) p_call_args(P, f);
            n = f;
        } else if (is_name(t, "is")) {
            nx(P);
            node *f = mk(P, N_TEST, t->line);
            if (is_name(pk(P), "not")) {
                nx(P);
                f->op = 1;
            }
            f->s = expect_name(P);
            f->a = n;
            token *u = pk(P);
            if (is_op(u, "(")) {
                p_call_args(P, f);
            } else if ((u->type == T_NAME || u->type == T_STRING || u->type == T_INT || u->type == T_FLOAT ||
                        is_op(u, "[") || is_op(u, "{")) &&
                       !is_name(u, "else") && !is_name(u, "or") && !is_name(u, "and") && !is_name(u, "if")) {
                if (is_name(u, "is")) fail(P->err, "template line %d: you cannot chain multiple tests with is", u->line);
                node *arg = p_postfix(P, p_primary(P));
                f->list = ar_alloc(P->a, sizeof(node *));
                f->list[0] = arg;
                f->n = 1;
            }
            n = f;
        } else if (is_op(t, "(")) {
            node *c = mk(P, N_CALL, t->line);
            c->a = n;
            p_call_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static node *p_postfix(parser *P, node *n) {
    for (;;) {
        token *t = pk(P);
        if (is_op(t, ".")) {
            nx(P);
            token *u = nx(P);
            if (u->type == T_NAME) {
                node *a = mk(P, N_ATTR, t->line);
                a->a = n;
                a->s = u->s;
                n = a;
            } else if (u->type == T_INT) {
                node *a = mk(P, N_ITEM, t->line);
                a->a = n;
                a->b = mk(P, N_LIT, t->line);
                a->b->lit = mk_lit(P->a, JV_INT);
                a->b->lit->u.i = u->i;
                n = a;
            } else {
                fail(P->err, "template line %d: expected a name after '.'", t->line);
            }
        } else if (is_op(t, "[")) {
            nx(P);
            node *parts[3] = {NULL, NULL, NULL};
            int np = 0, is_slice = 0;
            for (;;) {
                if (is_op(pk(P), ":")) {
                    nx(P);
                    is_slice = 1;
                    if (++np > 2) fail(P->err, "template line %d: bad slice", t->line);
                    continue;
                }
                if (is_op(pk(P), "]")) break;
                if (parts[np]) fail(P->err, "template line %d: expected ']'", t->line);
                parts[np] = p_expr(P);
            }
            nx(P);
            if (is_slice) {
                node *s = mk(P, N_SLICE, t->line);
                s->a = n;
                s->list = ar_alloc(P->a, sizeof(node *) * 3);
                memcpy(s->list, parts, sizeof parts);
                s->n = 3;
                n = s;
            } else {
                if (!parts[0]) fail(P->err, "template line %d: empty subscript", t->line);
                node *s = mk(P, N_ITEM, t->line);
                s->a = n;
                s->b = parts[0];
                n = s;
            }
        } else if (is_op(t, "(")) {
            node *c = mk(P, N_CALL, t->line);
            c->a = n;
            p_call_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static node *p_primary(parser *P) {
    token *t = pk(P);
    node *n;
    if (t->type == T_NAME) {
        nx(P);
        n = mk(P, N_LIT, t->line);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) {
            n->lit = mk_lit(P->a, JV_BOOL);
            n->lit->u.b = 1;
        } else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) {
            n->lit = mk_lit(P->a, JV_BOOL);
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            n->lit = mk_lit(P->a, JV_NONE);
        } else {
            n->kind = N_NAME;
            n->s = t->s;
        }
        return n;
    }
    if (t->type == T_STRING) {
        sbuf b;
        sb_init(&b, P->a);
        while (pk(P)->type == T_STRING) {
            token *u = nx(P);
            sb_put(&b, u->s, u->n);
        }
        n = mk(P, N_LIT, t->line);
        n->lit = mk_lit(P->a, JV_STR);
        n->lit->u.s.p = b.p ? b.p : "";
        n->lit->u.s.n = b.n;
        return n;
    }
    if (t->type == T_INT || t->type == T_FLOAT) {
        nx(P);
        n = mk(P, N_LIT, t->line);
        n->lit = mk_lit(P->a, t->type == T_INT ? JV_INT : JV_FLOAT);
        if (t->type == T_INT) n->lit->u.i = t->i;
        else n->lit->u.f = t->f;
        return n;
    }
    if (is_op(t, "(")) {
        nx(P);
        nvec items = {0};
        int comma = 0;
        while (!is_op(pk(P), ")")) {
            if (items.n) {
                expect_op(P, ",");
                comma = 1;
                if (is_op(pk(P), ")")) break;
            }
            nv_push(P, &items, p_expr(P));
        }
        nx(P);
        if (items.n == 1 && !comma) return items.v[0];
        n = mk(P, N_TUPLE, t->line);
        n->list = items.v;
        n->n = items.n;
        return n;
    }
    if (is_op(t, "[")) {
        nx(P);
        nvec items = {0};
        while (!is_op(pk(P), "]")) {
            if (items.n) {
                expect_op(P, ",");
                if (is_op(pk(P), "]")) break;
            }
            nv_push(P, &items, p_expr(P));
        }
        nx(P);
        n = mk(P, N_LIST, t->line);
        n->list = items.v;
        n->n = items.n;
        return n;
    }
    if (is_op(t, "{")) {
        nx(P);
        nvec keys = {0}, vals = {0};
        while (!is_op(pk(P), "}")) {
            if (keys.n) {
                expect_op(P, ",");
                if (is_op(pk(P), "}")) break;
            }
            nv_push(P, &keys, p_expr(P));
            expect_op(P, ":");
            nv_push(P, &vals, p_expr(P));
        }
        nx(P);
        n = mk(P, N_DICT, t->line);
        n->list = keys.v;
        n->n = keys.n;
        n->list2 = vals.v;
        n->n2 = vals.n;
        return n;
    }
    fail(P->err, "template line %d: unexpected %s", t->line, tok_desc(t));
}

static node *p_unary(parser *P, int with_filter) {
    enter(P);
    token *t = pk(P);
    node *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        nx(P);
        n = mk(P, t->s[0] == '-' ? N_NEG : N_POS, t->line);
        n->a = p_unary(P, 0);
    } else {
        n = p_primary(P);
    }
    n = p_postfix(P, n);
    if (with_filter) n = p_filters(P, n);
    P->depth--;
    return n;
}

static node *mk_bin(parser *P, int op, node *a, node *b, int line) {
    node *n = mk(P, N_BIN, line);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static node *p_pow(parser *P) {
    node *n = p_unary(P, 1);
    while (is_op(pk(P), "**")) {
        int line = nx(P)->line;
        n = mk_bin(P, OP_POW, n, p_unary(P, 1), line);
    }
    return n;
}

static node *p_math2(parser *P) {
    node *n = p_pow(P);
    for (;;) {
        token *t = pk(P);
        int op = is_op(t, "*") ? OP_MUL : is_op(t, "/") ? OP_DIV : is_op(t, "//") ? OP_FLOORDIV : is_op(t, "%") ? OP_MOD : 0;
        if (!op) return n;
        nx(P);
        n = mk_bin(P, op, n, p_pow(P), t->line);
    }
}

static node *p_concat(parser *P) {
    node *n = p_math2(P);
    while (is_op(pk(P), "~")) {
        int line = nx(P)->line;
        n = mk_bin(P, OP_CONCAT, n, p_math2(P), line);
    }
    return n;
}

static node *p_math1(parser *P) {
    node *n = p_concat(P);
    for (;;) {
        token *t = pk(P);
        int op = is_op(t, "+") ? OP_ADD : is_op(t, "-") ? OP_SUB : 0;
        if (!op) return n;
        nx(P);
        n = mk_bin(P, op, n, p_concat(P), t->line);
    }
}

static node *p_compare(parser *P) {
    node *n = p_math1(P), *prev = n, *res = NULL;
    for (;;) {
        token *t = pk(P);
        int op = 0;
        if (is_op(t, "==")) op = OP_EQ;
        else if (is_op(t, "!=")) op = OP_NE;
        else if (is_op(t, "<")) op = OP_LT;
        else if (is_op(t, "<=")) op = OP_LE;
        else if (is_op(t, ">")) op = OP_GT;
        else if (is_op(t, ">=")) op = OP_GE;
        else if (is_name(t, "in")) op = OP_IN;
        else if (is_name(t, "not") && is_name(&P->t[P->pos + 1], "in")) op = OP_NOTIN;
        if (!op) break;
        nx(P);
        if (op == OP_NOTIN) nx(P);
        node *rhs = p_math1(P);
        node *cmp = mk_bin(P, op, prev, rhs, t->line);
        if (!res) res = cmp;
        else {
            node *a = mk(P, N_AND, t->line);
            a->a = res;
            a->b = cmp;
            res = a;
        }
        prev = rhs;
    }
    return res ? res : n;
}

static node *p_not(parser *P) {
    token *t = pk(P);
    if (is_name(t, "not")) {
        nx(P);
        enter(P);
        node *n = mk(P, N_NOT, t->line);
        n->a = p_not(P);
        P->depth--;
        return n;
    }
    return p_compare(P);
}

static node *p_and(parser *P) {
    node *n = p_not(P);
    while (is_name(pk(P), "and")) {
        int line = nx(P)->line;
        node *a = mk(P, N_AND, line);
        a->a = n;
        a->b = p_not(P);
        n = a;
    }
    return n;
}

static node *p_or(parser *P) {
    node *n = p_and(P);
    while (is_name(pk(P), "or")) {
        int line = nx(P)->line;
        node *a = mk(P, N_OR, line);
        a->a = n;
        a->b = p_and(P);
        n = a;
    }
    return n;
}

static node *p_expr(parser *P) {
    enter(P);
    node *n = p_or(P);
    while (is_name(pk(P), "if")) {
        int line = nx(P)->line;
        node *c = mk(P, N_COND, line);
        c->b = n;
        c->a = p_or(P);
        if (is_name(pk(P), "else")) {
            nx(P);
            c->c = p_expr(P);
        }
        n = c;
    }
    P->depth--;
    return n;
}

/* expression, or a bare tuple "a, b" */
static node *p_tuple(parser *P) {
    int line = pk(P)->line;
    node *first = p_expr(P);
    if (!is_op(pk(P), ",")) return first;
    nvec items = {0};
    nv_push(P, &items, first);
    while (is_op(pk(P), ",")) {
        nx(P);
        token *t = pk(P);
        if (t->type == T_BLOCK_END || t->type == T_VAR_END) break;
        nv_push(P, &items, p_expr(P));
    }
    node *n = mk(P, N_TUPLE, line);
    n->list = items.v;
    n->n = items.n;
    return n;
}

static node *p_body(parser *P, const char *const *ends, const char **ended);

static void block_end(parser *P) { expect_type(P, T_BLOCK_END, "'%}'"); }

static node *body_until(parser *P, const char *const *ends, const char **ended, int line, const char *tag) {
    node *b = p_body(P, ends, ended);
    if (!*ended) fail(P->err, "template line %d: unexpected end of template: '%s' is missing its '%s'", line, tag, ends[0]);
    return b;
}

/* assignment targets: name | name.attr | name, name, ... */
static node *p_target(parser *P, int allow_attr) {
    token *t = pk(P);
    const char *nm = expect_name(P);
    if (allow_attr && is_op(pk(P), ".")) {
        nx(P);
        node *a = mk(P, N_ATTR, t->line);
        a->a = mk(P, N_NAME, t->line);
        a->a->s = nm;
        a->s = expect_name(P);
        return a;
    }
    node *n = mk(P, N_NAME, t->line);
    n->s = nm;
    if (!is_op(pk(P), ",")) return n;
    svec names = {0};
    sv_push(P, &names, nm);
    while (is_op(pk(P), ",")) {
        nx(P);
        sv_push(P, &names, expect_name(P));
    }
    node *tp = mk(P, N_TUPLE, t->line);
    tp->names = names.v;
    tp->nnames = names.n;
    return tp;
}

static node *p_stmt(parser *P, token *t) {
    const char *nm = t->s;
    int line = t->line;
    const char *ended = NULL;
    if (!strcmp(nm, "if")) { /* elif branches chain through ->c iteratively */
        static const char *const ends[] = {"endif", "elif", "else", NULL};
        node *first = mk(P, N_IF, line), *cur = first;
        first->a = p_tuple(P);
        block_end(P);
        first->b = body_until(P, ends, &ended, line, "if");
        while (!strcmp(ended, "elif")) {
            token *e = nx(P);
            node *x = mk(P, N_IF, e->line);
            x->a = p_tuple(P);
            block_end(P);
            x->b = body_until(P, ends, &ended, line, "if");
            cur->c = x;
            cur = x;
        }
        if (!strcmp(ended, "else")) {
            nx(P);
            block_end(P);
            static const char *const ends2[] = {"endif", NULL};
            cur->c = body_until(P, ends2, &ended, line, "if");
        }
        nx(P);
        block_end(P);
        return first;
    }
    if (!strcmp(nm, "for")) {
        node *n = mk(P, N_FOR, line);
        svec names = {0};
        int paren = is_op(pk(P), "(");
        if (paren) nx(P);
        sv_push(P, &names, expect_name(P));
        while (is_op(pk(P), ",")) {
            nx(P);
            if (!paren && is_name(pk(P), "in")) break;
            sv_push(P, &names, expect_name(P));
        }
        if (paren) expect_op(P, ")");
        n->names = names.v;
        n->nnames = names.n;
        if (!is_name(pk(P), "in")) fail(P->err, "template line %d: expected 'in' in for loop", line);
        nx(P);
        n->a = p_or(P);
        if (is_op(pk(P), ",")) { /* for x in a, b */
            nvec items = {0};
            nv_push(P, &items, n->a);
            while (is_op(pk(P), ",")) {
                nx(P);
                nv_push(P, &items, p_or(P));
            }
            node *tp = mk(P, N_TUPLE, line);
            tp->list = items.v;
            tp->n = items.n;
            n->a = tp;
        }
        if (is_name(pk(P), "if")) {
            nx(P);
            n->b = p_expr(P);
        }
        if (is_name(pk(P), "recursive")) fail(P->err, "template line %d: recursive for loops are not supported", line);
        block_end(P);
        static const char *const ends[] = {"endfor", "else", NULL};
        n->c = body_until(P, ends, &ended, line, "for");
        if (!strcmp(ended, "else")) {
            nx(P);
            block_end(P);
            static const char *const ends2[] = {"endfor", NULL};
            node *e = body_until(P, ends2, &ended, line, "for");
            n->list2 = ar_alloc(P->a, sizeof(node *));
            n->list2[0] = e;
            n->n2 = 1;
        }
        nx(P);
        block_end(P);
        return n;
    }
    if (!strcmp(nm, "set")) {
        node *target = p_target(P, 1);
        if (is_op(pk(P), "=")) {
            nx(P);
            node *n = mk(P, N_SET, line);
            n->a = target;
            n->b = p_tuple(P);
            block_end(P);
            return n;
        }
        node *n = mk(P, N_SETBLOCK, line);
        n->a = target;
        if (is_op(pk(P), "|")) { /* {% set x | filter %} */
            node *f = p_filters(P, NULL);
            n->c = f;
        }
        block_end(P);
        static const char *const ends[] = {"endset", NULL};
        n->b = body_until(P, ends, &ended, line, "set");
        nx(P);
        block_end(P);
        return n;
    }
    if (!strcmp(nm, "macro")) {
        node *n = mk(P, N_MACRO, line);
        n->s = expect_name(P);
        svec params = {0};
        nvec defs = {0};
        expect_op(P, "(");
        while (!is_op(pk(P), ")")) {
            if (params.n) {
                expect_op(P, ",");
                if (is_op(pk(P), ")")) break;
            }
            sv_push(P, &params, expect_name(P));
            node *d = NULL;
            if (is_op(pk(P), "=")) {
                nx(P);
                d = p_expr(P);
            } else if (defs.n && defs.v[defs.n - 1]) {
                fail(P->err, "template line %d: non-default argument follows default argument", line);
            }
            nv_push(P, &defs, d);
        }
        nx(P);
        block_end(P);
        n->names = params.v;
        n->nnames = params.n;
        n->list2 = defs.v;
        n->n2 = defs.n;
        static const char *const ends[] = {"endmacro", NULL};
        n->b = body_until(P, ends, &ended, line, "macro");
        nx(P);
        if (pk(P)->type == T_NAME) nx(P); /* {% endmacro name %} */
        block_end(P);
        return n;
    }
    if (!strcmp(nm, "break") || !strcmp(nm, "continue")) {
        node *n = mk(P, nm[0] == 'b' ? N_BREAK : N_CONTINUE, line);
        block_end(P);
        return n;
    }
    if (!strcmp(nm, "generation")) {
        block_end(P);
        static const char *const ends[] = {"endgeneration", NULL};
        node *b = body_until(P, ends, &ended, line, "generation");
        nx(P);
        block_end(P);
        return b;
    }
    if (!strcmp(nm, "filter")) {
        node *n = mk(P, N_FILTERBLOCK, line);
        /* parse "name(args) | name2" as a filter chain on a NULL operand */
        token *u = pk(P);
        node *f = mk(P, N_FILTER, u->line);
        f->s = expect_name(P);
        if (is_op(pk(P), "(")) p_call_args(P, f);
        n->c = p_filters(P, f);
        block_end(P);
        static const char *const ends[] = {"endfilter", NULL};
        n->b = body_until(P, ends, &ended, line, "filter");
        nx(P);
        block_end(P);
        return n;
    }
    if (!strcmp(nm, "call")) {
        node *n = mk(P, N_CALLBLOCK, line);
        svec params = {0};
        if (is_op(pk(P), "(")) { /* {% call(a, b) macro(...) %}: the caller's parameters */
            nx(P);
            while (!is_op(pk(P), ")")) {
                if (params.n) expect_op(P, ",");
                sv_push(P, &params, expect_name(P));
            }
            nx(P);
        }
        n->names = params.v;
        n->nnames = params.n;
        n->a = p_expr(P);
        if (n->a->kind != N_CALL) fail(P->err, "template line %d: {%% call %%} needs a macro call", line);
        block_end(P);
        static const char *const ends[] = {"endcall", NULL};
        n->b = body_until(P, ends, &ended, line, "call");
        nx(P);
        block_end(P);
        return n;
    }
    if (!strcmp(nm, "with")) {
        node *n = mk(P, N_WITH, line);
        nvec vals = {0};
        svec names = {0};
        while (pk(P)->type != T_BLOCK_END) {
            if (names.n) expect_op(P, ",");
            sv_push(P, &names, expect_name(P));
            expect_op(P, "=");
            nv_push(P, &vals, p_expr(P));
        }
        block_end(P);
        n->names = names.v;
        n->nnames = names.n;
        n->list2 = vals.v;
        n->n2 = vals.n;
        static const char *const ends[] = {"endwith", NULL};
        n->b = body_until(P, ends, &ended, line, "with");
        nx(P);
        block_end(P);
        return n;
    }
    fail(P->err, "template line %d: unknown or unexpected tag '%s'", line, nm);
}

static node *p_body(parser *P, const char *const *ends, const char **ended) {
    nvec items = {0};
    int line = pk(P)->line;
    *ended = NULL;
    enter(P);
    for (;;) {
        token *t = pk(P);
        if (t->type == T_EOF) break;
        if (t->type == T_DATA) {
            nx(P);
            node *n = mk(P, N_DATA, t->line);
            n->s = t->s;
            n->op = (int)t->n; /* byte length */
            nv_push(P, &items, n);
        } else if (t->type == T_VAR_BEGIN) {
            nx(P);
            node *n = mk(P, N_OUTPUT, t->line);
            n->a = p_tuple(P);
            expect_type(P, T_VAR_END, "'}}'");
            nv_push(P, &items, n);
        } else if (t->type == T_BLOCK_BEGIN) {
            nx(P);
            token *u = pk(P);
            if (u->type != T_NAME) fail(P->err, "template line %d: expected a tag name after '{%%'", u->line);
            for (int k = 0; ends && ends[k]; k++)
                if (!strcmp(u->s, ends[k])) {
                    *ended = ends[k];
                    goto done;
                }
            nx(P);
            nv_push(P, &items, p_stmt(P, u));
        } else {
            fail(P->err, "template line %d: unexpected %s", t->line, tok_desc(t));
        }
    }
done:
    P->depth--;
    node *b = mk(P, N_BODY, line);
    b->list = items.v;
    b->n = items.n;
    return b;
}

pika_jinja *pika_jinja_parse(const char *src, size_t len) {
    pika_jinja *t = pika_calloc(1, sizeof *t);
    errctx err;
    t->a.err = &err;
    if (setjmp(err.jb)) {
        pika_set_error("%s", err.msg);
        ar_free(&t->a);
        free(t);
        return NULL;
    }
    /* normalize newlines (\r\n, \r -> \n) and drop one trailing newline (keep_trailing_newline=False) */
    char *s = ar_alloc(&t->a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    lexer L = {.a = &t->a, .err = &err, .src = s, .n = n};
    lex(&L);
    parser P = {.a = &t->a, .err = &err, .t = L.toks};
    const char *ended;
    t->root = p_body(&P, NULL, &ended);
    if (pk(&P)->type != T_EOF) fail(&err, "template line %d: unexpected %s", pk(&P)->line, tok_desc(pk(&P)));
    return t;
}

void pika_jinja_free(pika_jinja *t) {
    if (!t) return;
    ar_free(&t->a);
    free(t);
}

/* ---------------------------------------------------------------- evaluator context */

typedef struct frame {
    struct frame *parent;
    jv *vars; /* dict */
} frame;

struct ctx {
    arena *a;
    errctx *err;
    sbuf *out;
    frame *root, *globals;
    frame *f; /* innermost scope */
    jv *next_caller; /* set by {% call %} for the macro call it makes */
    long long steps;
    const char *date;
    int depth;
    int loopctl; /* 0, 1 break, 2 continue */
    int line;
};

#define ERR(C, ...) fail((C)->err, __VA_ARGS__)

static jv *v_new(ctx *C, int t) {
    jv *v = ar_zalloc(C->a, sizeof *v);
    v->t = t;
    return v;
}

static jv *v_undef(ctx *C, const char *what) {
    jv *v = v_new(C, JV_UNDEF);
    v->uname = what;
    return v;
}

static jv V_NONE = {.t = JV_NONE};
static jv V_TRUE = {.t = JV_BOOL, .u.b = 1};
static jv V_FALSE = {.t = JV_BOOL, .u.b = 0};

static jv *v_bool(int b) { return b ? &V_TRUE : &V_FALSE; }

static jv *v_int(ctx *C, int64_t i) {
    jv *v = v_new(C, JV_INT);
    v->u.i = i;
    return v;
}

static jv *v_float(ctx *C, double f) {
    jv *v = v_new(C, JV_FLOAT);
    v->u.f = f;
    return v;
}

static jv *v_strn(ctx *C, const char *s, size_t n) {
    jv *v = v_new(C, JV_STR);
    v->u.s.p = ar_strndup(C->a, s, n);
    v->u.s.n = n;
    return v;
}

/* string value that points at s without copying (s must outlive the render) */
static jv *v_strref(ctx *C, const char *s, size_t n) {
    jv *v = v_new(C, JV_STR);
    v->u.s.p = s;
    v->u.s.n = n;
    return v;
}

static jv *v_str(ctx *C, const char *s) { return v_strn(C, s, strlen(s)); }
static jv *v_sbuf(ctx *C, sbuf *b) { return v_strref(C, b->p ? b->p : "", b->n); }

static jv *v_list(ctx *C) { return v_new(C, JV_LIST); }

static void l_push(ctx *C, jv *l, jv *x) {
    if (l->u.l.n == l->u.l.cap) {
        int cap = l->u.l.cap ? l->u.l.cap * 2 : 4;
        jv **p = ar_alloc(C->a, sizeof(jv *) * (size_t)cap);
        if (l->u.l.n) memcpy(p, l->u.l.v, sizeof(jv *) * (size_t)l->u.l.n);
        l->u.l.v = p;
        l->u.l.cap = cap;
    }
    l->u.l.v[l->u.l.n++] = x;
}

static jv *v_pair(ctx *C, jv *a, jv *b) {
    jv *t = v_list(C);
    t->flags = F_TUPLE;
    l_push(C, t, a);
    l_push(C, t, b);
    return t;
}

static jv *v_dict(ctx *C) { return v_new(C, JV_DICT); }

static int v_eq(jv *a, jv *b);

static int d_find(jv *d, jv *k) {
    for (int i = 0; i < d->u.d.n; i++)
        if (v_eq(d->u.d.k[i], k)) return i;
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

static void d_set(ctx *C, jv *d, jv *k, jv *v) {
    int i = d_find(d, k);
    if (i >= 0) {
        d->u.d.v[i] = v;
        return;
    }
    if (d->u.d.n == d->u.d.cap) {
        int cap = d->u.d.cap ? d->u.d.cap * 2 : 8;
        jv **pk_ = ar_alloc(C->a, sizeof(jv *) * (size_t)cap);
        jv **pv = ar_alloc(C->a, sizeof(jv *) * (size_t)cap);
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

static void d_set_s(ctx *C, jv *d, const char *k, jv *v) { d_set(C, d, v_strref(C, k, strlen(k)), v); }

static jv *d_get_s(jv *d, const char *k) {
    int i = d_find_s(d, k);
    return i >= 0 ? d->u.d.v[i] : NULL;
}

static const char *type_name(jv *v) {
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

static void undef_error(ctx *C, jv *v) {
    ERR(C, "template line %d: %s", C->line, v->uname ? v->uname : "value is undefined");
}

static int truthy(jv *v) {
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

static int is_num(jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static double num_f(jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : (double)v->u.b; }
static int64_t num_i(jv *v) { return v->t == JV_INT ? v->u.i : v->u.b; }

static int v_eq(jv *a, jv *b) {
    if (is_num(a) && is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a->t != b->t) return 0;
    switch (a->t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a->u.s.n == b->u.s.n && !memcmp(a->u.s.p, b->u.s.p, a->u.s.n);
    case JV_LIST:
        if (a->u.l.n != b->u.l.n || (a->flags & F_TUPLE) != (b->flags & F_TUPLE)) return 0;
        for (int i = 0; i < a->u.l.n; i++)
            if (!v_eq(a->u.l.v[i], b->u.l.v[i])) return 0;
        return 1;
    case JV_DICT:
        if (a->u.d.n != b->u.d.n) return 0;
        for (int i = 0; i < a->u.d.n; i++) {
            int j = d_find(b, a->u.d.k[i]);
            if (j < 0 || !v_eq(a->u.d.v[i], b->u.d.v[j])) return 0;
        }
        return 1;
    case JV_FUNC: return a->u.fn.fn == b->u.fn.fn && a->u.fn.self == b->u.fn.self;
    case JV_MACRO: return a->u.mac == b->u.mac;
    default: return 0;
    }
}

/* a < b (Python ordering); -1 type error */
static int v_cmp(ctx *C, jv *a, jv *b) {
    if (is_num(a) && is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = num_i(a), y = num_i(b);
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
            if (v_eq(a->u.l.v[i], b->u.l.v[i])) continue;
            return v_cmp(C, a->u.l.v[i], b->u.l.v[i]);
        }
        return a->u.l.n < b->u.l.n ? -1 : a->u.l.n > b->u.l.n ? 1 : 0;
    }
    if (a->t == JV_UNDEF) undef_error(C, a);
    if (b->t == JV_UNDEF) undef_error(C, b);
    ERR(C, "template line %d: '<' not supported between instances of '%s' and '%s'", C->line, type_name(a), type_name(b));
}

/* ---------------------------------------------------------------- str() / repr() / json */

static void fmt_float(sbuf *b, double f, int json) {
    if (isnan(f)) { sb_puts(b, json ? "NaN" : "nan"); return; }
    if (isinf(f)) { sb_puts(b, f > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf")); return; }
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
    if (neg) sb_putc(b, '-');
    if (exp >= -5 && exp < 16) { /* Python repr: fixed when -4 <= exp < 16 */
        if (exp < -4) goto sci;
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) sb_putc(b, i < nd ? digits[i] : '0');
            sb_putc(b, '.');
            if (nd > exp + 1) sb_put(b, digits + exp + 1, (size_t)(nd - exp - 1));
            else sb_putc(b, '0');
        } else {
            sb_puts(b, "0.");
            for (int i = 0; i < -exp - 1; i++) sb_putc(b, '0');
            sb_put(b, digits, (size_t)nd);
        }
        return;
    }
sci:
    sb_putc(b, digits[0]);
    if (nd > 1) {
        sb_putc(b, '.');
        sb_put(b, digits + 1, (size_t)(nd - 1));
    }
    sb_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

static void v_repr(ctx *C, sbuf *b, jv *v);

static void str_repr(sbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    sb_putc(b, q);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        uint32_t c = u8_next(s, n, &j);
        if (c == (uint32_t)q || c == '\\') { sb_putc(b, '\\'); sb_putc(b, (char)c); }
        else if (c == '\n') sb_puts(b, "\\n");
        else if (c == '\r') sb_puts(b, "\\r");
        else if (c == '\t') sb_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xA0)) sb_printf(b, "\\x%02x", c);
        else if (c >= 0xDC80 && c <= 0xDCFF) sb_printf(b, "\\udc%02x", c - 0xDC00);
        else sb_put(b, s + i, j - i);
        i = j;
    }
    sb_putc(b, q);
}

/* Python str(v) */
static void v_str_into(ctx *C, sbuf *b, jv *v) {
    switch (v->t) {
    case JV_UNDEF: break;
    case JV_NONE: sb_puts(b, "None"); break;
    case JV_BOOL: sb_puts(b, v->u.b ? "True" : "False"); break;
    case JV_INT: sb_printf(b, "%lld", (long long)v->u.i); break;
    case JV_FLOAT: fmt_float(b, v->u.f, 0); break;
    case JV_STR: sb_put(b, v->u.s.p, v->u.s.n); break;
    default: v_repr(C, b, v);
    }
}

static void v_repr(ctx *C, sbuf *b, jv *v) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: value nested too deeply", C->line);
    switch (v->t) {
    case JV_STR: str_repr(b, v->u.s.p, v->u.s.n); break;
    case JV_LIST: {
        int tup = v->flags & F_TUPLE;
        sb_putc(b, tup ? '(' : '[');
        for (int i = 0; i < v->u.l.n; i++) {
            if (i) sb_puts(b, ", ");
            v_repr(C, b, v->u.l.v[i]);
        }
        if (tup && v->u.l.n == 1) sb_putc(b, ',');
        sb_putc(b, tup ? ')' : ']');
        break;
    }
    case JV_DICT:
        if (v->flags & F_NS) sb_puts(b, "<Namespace ");
        sb_putc(b, '{');
        for (int i = 0; i < v->u.d.n; i++) {
            if (i) sb_puts(b, ", ");
            v_repr(C, b, v->u.d.k[i]);
            sb_puts(b, ": ");
            v_repr(C, b, v->u.d.v[i]);
        }
        sb_putc(b, '}');
        if (v->flags & F_NS) sb_putc(b, '>');
        break;
    case JV_FUNC: sb_printf(b, "<built-in function %s>", v->u.fn.name); break;
    case JV_MACRO: sb_printf(b, "<Macro '%s'>", v->u.mac->s); break;
    case JV_UNDEF: sb_puts(b, "Undefined"); break;
    default: v_str_into(C, b, v);
    }
    C->depth--;
}

static jv *to_str(ctx *C, jv *v) {
    if (v->t == JV_STR) return v;
    sbuf b;
    sb_init(&b, C->a);
    v_str_into(C, &b, v);
    return v_sbuf(C, &b);
}

static void json_str(sbuf *b, const char *s, size_t n) {
    sb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\f': sb_puts(b, "\\f"); break;
        default:
            if (c < 0x20) sb_printf(b, "\\u%04x", c);
            else sb_putc(b, (char)c);
        }
    }
    sb_putc(b, '"');
}

typedef struct {
    const char *indent; /* NULL: single line */
    const char *item_sep, *key_sep;
    int sort_keys;
} jsonfmt;

static void json_nl(sbuf *b, const jsonfmt *f, int level) {
    sb_putc(b, '\n');
    for (int i = 0; i < level; i++) sb_puts(b, f->indent);
}

/* Python json.dumps */
static void v_json(ctx *C, sbuf *b, jv *v, const jsonfmt *f, int level) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: value nested too deeply for tojson", C->line);
    switch (v->t) {
    case JV_NONE: sb_puts(b, "null"); break;
    case JV_BOOL: sb_puts(b, v->u.b ? "true" : "false"); break;
    case JV_INT: sb_printf(b, "%lld", (long long)v->u.i); break;
    case JV_FLOAT: fmt_float(b, v->u.f, 1); break;
    case JV_STR: json_str(b, v->u.s.p, v->u.s.n); break;
    case JV_LIST:
        if (!v->u.l.n) { sb_puts(b, "[]"); break; }
        sb_putc(b, '[');
        for (int i = 0; i < v->u.l.n; i++) {
            if (i) sb_puts(b, f->item_sep);
            if (f->indent) json_nl(b, f, level + 1);
            v_json(C, b, v->u.l.v[i], f, level + 1);
        }
        if (f->indent) json_nl(b, f, level);
        sb_putc(b, ']');
        break;
    case JV_DICT: {
        if (!v->u.d.n) { sb_puts(b, "{}"); break; }
        int n = v->u.d.n;
        int *ord = ar_alloc(C->a, sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) ord[i] = i;
        if (f->sort_keys)
            for (int i = 1; i < n; i++) /* insertion sort, stable */
                for (int j = i; j > 0 && v_cmp(C, v->u.d.k[ord[j]], v->u.d.k[ord[j - 1]]) < 0; j--) {
                    int t = ord[j];
                    ord[j] = ord[j - 1];
                    ord[j - 1] = t;
                }
        sb_putc(b, '{');
        for (int i = 0; i < n; i++) {
            jv *k = v->u.d.k[ord[i]];
            if (i) sb_puts(b, f->item_sep);
            if (f->indent) json_nl(b, f, level + 1);
            if (k->t == JV_STR) json_str(b, k->u.s.p, k->u.s.n);
            else if (k->t == JV_INT || k->t == JV_FLOAT || k->t == JV_BOOL || k->t == JV_NONE) {
                sbuf t;
                sb_init(&t, C->a);
                v_json(C, &t, k, f, level);
                json_str(b, t.p, t.n);
            } else ERR(C, "template line %d: tojson: keys must be str, int, float, bool or None", C->line);
            sb_puts(b, f->key_sep);
            v_json(C, b, v->u.d.v[ord[i]], f, level + 1);
        }
        if (f->indent) json_nl(b, f, level);
        sb_putc(b, '}');
        break;
    }
    default:
        ERR(C, "template line %d: tojson: Object of type %s is not JSON serializable", C->line, type_name(v));
    }
    C->depth--;
}

static jv *from_cjson(ctx *C, const cJSON *j) {
    if (cJSON_IsNull(j)) return &V_NONE;
    if (cJSON_IsBool(j)) return v_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9e15) return v_int(C, (int64_t)d);
        return v_float(C, d);
    }
    if (cJSON_IsString(j)) return v_strref(C, j->valuestring, strlen(j->valuestring));
    if (cJSON_IsArray(j)) {
        jv *l = v_list(C);
        for (const cJSON *c = j->child; c; c = c->next) l_push(C, l, from_cjson(C, c));
        return l;
    }
    if (cJSON_IsObject(j)) {
        jv *d = v_dict(C);
        for (const cJSON *c = j->child; c; c = c->next) d_set(C, d, v_str(C, c->string ? c->string : ""), from_cjson(C, c));
        return d;
    }
    return &V_NONE;
}

/* ---------------------------------------------------------------- sequences */

/* code-point offsets of a string: off[0..nc], off[nc] = byte length */
static size_t *cp_offsets(ctx *C, jv *s, size_t *nc) {
    size_t n = s->u.s.n, c = 0, i = 0;
    size_t *off = ar_alloc(C->a, sizeof(size_t) * (n + 1));
    while (i < n) {
        off[c++] = i;
        u8_next(s->u.s.p, n, &i);
    }
    off[c] = n;
    *nc = c;
    return off;
}

static int64_t v_len(ctx *C, jv *v) {
    switch (v->t) {
    case JV_STR: return (int64_t)u8_count(v->u.s.p, v->u.s.n);
    case JV_LIST: return v->u.l.n;
    case JV_DICT: return v->u.d.n;
    case JV_UNDEF: return 0;
    default: ERR(C, "template line %d: object of type '%s' has no len()", C->line, type_name(v));
    }
}

/* the items a for loop / filter sees */
static jv *iter_list(ctx *C, jv *v) {
    if (v->t == JV_LIST) return v;
    jv *l = v_list(C);
    if (v->t == JV_UNDEF) return l;
    if (v->t == JV_DICT) {
        for (int i = 0; i < v->u.d.n; i++) l_push(C, l, v->u.d.k[i]);
        return l;
    }
    if (v->t == JV_STR) {
        size_t i = 0;
        while (i < v->u.s.n) {
            size_t j = i;
            u8_next(v->u.s.p, v->u.s.n, &j);
            l_push(C, l, v_strref(C, v->u.s.p + i, j - i));
            i = j;
        }
        return l;
    }
    ERR(C, "template line %d: '%s' object is not iterable", C->line, type_name(v));
}

static jv *v_slice(ctx *C, jv *v, jv *js, jv *je, jv *jst) {
    int64_t step = 1;
    if (jst && jst->t != JV_NONE) {
        if (jst->t != JV_INT && jst->t != JV_BOOL) ERR(C, "template line %d: slice indices must be integers", C->line);
        step = num_i(jst);
        if (step == 0) ERR(C, "template line %d: slice step cannot be zero", C->line);
    }
    if (v->t == JV_UNDEF) undef_error(C, v);
    if (v->t != JV_STR && v->t != JV_LIST) ERR(C, "template line %d: '%s' object is not subscriptable", C->line, type_name(v));
    size_t nc = 0, *off = NULL;
    if (v->t == JV_STR) off = cp_offsets(C, v, &nc);
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
        int64_t i = num_i(x);
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
        jv *r = v_list(C);
        r->flags = v->flags & F_TUPLE;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) l_push(C, r, v->u.l.v[i]);
        return r;
    }
    sbuf b;
    sb_init(&b, C->a);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) sb_put(&b, v->u.s.p + off[i], off[i + 1] - off[i]);
    return v_sbuf(C, &b);
}

/* ---------------------------------------------------------------- string and dict methods */

#define FN_ARGS ctx *C, jv *self, jv **args, int nargs, const char **kwn, jv **kwv, int nkw

static void want_args(ctx *C, const char *name, int nargs, int nkw, int lo, int hi) {
    if (nkw) ERR(C, "template line %d: %s() takes no keyword arguments", C->line, name);
    if (nargs < lo || nargs > hi) ERR(C, "template line %d: %s() takes %d to %d arguments (%d given)", C->line, name, lo, hi, nargs);
}

static jv *want_str(ctx *C, jv *v, const char *what) {
    if (v->t == JV_UNDEF) undef_error(C, v);
    if (v->t != JV_STR) ERR(C, "template line %d: %s must be a string, not %s", C->line, what, type_name(v));
    return v;
}

static int strippable(const char *p, size_t n, size_t at, const uint32_t *set, size_t nset) {
    uint32_t c = u8_next(p, n, &at);
    if (!set) return py_space(c);
    for (size_t z = 0; z < nset; z++)
        if (set[z] == c) return 1;
    return 0;
}

/* strip(chars): mode 1 left, 2 right, 3 both */
static jv *do_strip(ctx *C, jv *s, jv *chars, int mode) {
    const char *p = s->u.s.p;
    size_t n = s->u.s.n;
    size_t nc = 0, *off = cp_offsets(C, s, &nc);
    uint32_t *set = NULL;
    size_t nset = 0;
    if (chars && chars->t != JV_NONE) {
        want_str(C, chars, "strip argument");
        set = ar_alloc(C->a, sizeof(uint32_t) * (chars->u.s.n + 1));
        size_t i = 0;
        while (i < chars->u.s.n) set[nset++] = u8_next(chars->u.s.p, chars->u.s.n, &i);
    }
    size_t lo = 0, hi = nc;
#define STRIPPABLE(k) strippable(p, n, off[k], set, nset)
    if (mode & 1)
        while (lo < hi && STRIPPABLE(lo)) lo++;
    if (mode & 2)
        while (hi > lo && STRIPPABLE(hi - 1)) hi--;
#undef STRIPPABLE
    return v_strref(C, p + off[lo], off[hi] - off[lo]);
}

static jv *m_strip(FN_ARGS) { (void)kwn; (void)kwv; want_args(C, "strip", nargs, nkw, 0, 1); return do_strip(C, self, nargs ? args[0] : NULL, 3); }
static jv *m_lstrip(FN_ARGS) { (void)kwn; (void)kwv; want_args(C, "lstrip", nargs, nkw, 0, 1); return do_strip(C, self, nargs ? args[0] : NULL, 1); }
static jv *m_rstrip(FN_ARGS) { (void)kwn; (void)kwv; want_args(C, "rstrip", nargs, nkw, 0, 1); return do_strip(C, self, nargs ? args[0] : NULL, 2); }

static int has_prefix(jv *s, jv *p) { return p->u.s.n <= s->u.s.n && !memcmp(s->u.s.p, p->u.s.p, p->u.s.n); }
static int has_suffix(jv *s, jv *p) { return p->u.s.n <= s->u.s.n && !memcmp(s->u.s.p + s->u.s.n - p->u.s.n, p->u.s.p, p->u.s.n); }

static jv *starts_ends(ctx *C, jv *self, jv **args, int nargs, int nkw, int end) {
    want_args(C, end ? "endswith" : "startswith", nargs, nkw, 1, 1);
    jv *a = args[0];
    if (a->t == JV_LIST) {
        for (int i = 0; i < a->u.l.n; i++) {
            jv *p = want_str(C, a->u.l.v[i], "startswith/endswith argument");
            if (end ? has_suffix(self, p) : has_prefix(self, p)) return v_bool(1);
        }
        return v_bool(0);
    }
    want_str(C, a, "startswith/endswith argument");
    return v_bool(end ? has_suffix(self, a) : has_prefix(self, a));
}

static jv *m_startswith(FN_ARGS) { (void)kwn; (void)kwv; return starts_ends(C, self, args, nargs, nkw, 0); }
static jv *m_endswith(FN_ARGS) { (void)kwn; (void)kwv; return starts_ends(C, self, args, nargs, nkw, 1); }

static const char *memmem_(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && !memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}

static jv *do_split(ctx *C, jv *self, jv *sep, int64_t maxsplit) {
    jv *l = v_list(C);
    const char *p = self->u.s.p;
    size_t n = self->u.s.n;
    if (!sep || sep->t == JV_NONE) { /* whitespace split */
        size_t i = 0;
        for (;;) {
            i += lspace_len(p + i, n - i);
            if (i >= n) break;
            if (maxsplit >= 0 && l->u.l.n >= maxsplit) {
                l_push(C, l, v_strref(C, p + i, rstrip_len(p + i, n - i)));
                break;
            }
            size_t j = i;
            while (j < n) {
                size_t k = j;
                uint32_t c = u8_next(p, n, &k);
                if (py_space(c)) break;
                j = k;
            }
            l_push(C, l, v_strref(C, p + i, j - i));
            i = j;
        }
        return l;
    }
    want_str(C, sep, "split separator");
    if (!sep->u.s.n) ERR(C, "template line %d: empty separator", C->line);
    size_t i = 0;
    for (;;) {
        const char *f = (maxsplit >= 0 && l->u.l.n >= maxsplit) ? NULL : memmem_(p + i, n - i, sep->u.s.p, sep->u.s.n);
        if (!f) {
            l_push(C, l, v_strref(C, p + i, n - i));
            break;
        }
        l_push(C, l, v_strref(C, p + i, (size_t)(f - (p + i))));
        i = (size_t)(f - p) + sep->u.s.n;
    }
    return l;
}

static int64_t want_int(ctx *C, jv *v, const char *what) {
    if (v->t != JV_INT && v->t != JV_BOOL) ERR(C, "template line %d: %s must be an integer", C->line, what);
    return num_i(v);
}

static jv *m_split(FN_ARGS) {
    jv *sep = nargs > 0 ? args[0] : NULL;
    int64_t maxsplit = nargs > 1 ? want_int(C, args[1], "maxsplit") : -1;
    for (int i = 0; i < nkw; i++) {
        if (!strcmp(kwn[i], "sep")) sep = kwv[i];
        else if (!strcmp(kwn[i], "maxsplit")) maxsplit = want_int(C, kwv[i], "maxsplit");
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

static int cp_cased(uint32_t c) { return cp_upper(c) != c || cp_lower(c) != c; }

/* mode: 1 upper, 2 lower, 3 capitalize (str.capitalize), 4 str.title (words = runs of cased
 * characters), 5 the jinja title filter (words start after - whitespace ( { [ <) */
static jv *case_map(ctx *C, jv *s, int mode) {
    sbuf b;
    sb_init(&b, C->a);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, i = 0;
    int first = 1, prev_cased = 0, word_start = 1;
    while (i < n) {
        uint32_t c = u8_next(p, n, &i);
        int up;
        if (mode == 1) up = 1;
        else if (mode == 2) up = 0;
        else if (mode == 3) up = first;
        else if (mode == 4) up = !prev_cased;
        else up = word_start;
        if (mode == 1 && c == 0xDF) sb_puts(&b, "SS"); /* the one length-changing map kept: sharp s */
        else u8_put(&b, up ? cp_upper(c) : cp_lower(c));
        first = 0;
        prev_cased = cp_cased(c);
        word_start = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_space(c);
    }
    return v_sbuf(C, &b);
}

static jv *m_upper(FN_ARGS) { (void)kwn; (void)kwv; want_args(C, "upper", nargs, nkw, 0, 0); (void)args; return case_map(C, self, 1); }
static jv *m_lower(FN_ARGS) { (void)kwn; (void)kwv; want_args(C, "lower", nargs, nkw, 0, 0); (void)args; return case_map(C, self, 2); }
static jv *m_capitalize(FN_ARGS) { (void)kwn; (void)kwv; want_args(C, "capitalize", nargs, nkw, 0, 0); (void)args; return case_map(C, self, 3); }
static jv *m_title(FN_ARGS) { (void)kwn; (void)kwv; want_args(C, "title", nargs, nkw, 0, 0); (void)args; return case_map(C, self, 4); }

static jv *do_replace(ctx *C, jv *s, jv *old, jv *nw, int64_t count) {
    want_str(C, old, "replace argument");
    want_str(C, nw, "replace argument");
    sbuf b;
    sb_init(&b, C->a);
    const char *p = s->u.s.p;
    size_t n = s->u.s.n, i = 0;
    int64_t done = 0;
    if (!old->u.s.n) { /* Python inserts between every character */
        size_t nc, *off = cp_offsets(C, s, &nc);
        for (size_t k = 0; k <= nc; k++) {
            if (count < 0 || done < count) {
                sb_put(&b, nw->u.s.p, nw->u.s.n);
                done++;
            }
            if (k < nc) sb_put(&b, p + off[k], off[k + 1] - off[k]);
        }
        return v_sbuf(C, &b);
    }
    for (;;) {
        const char *f = (count >= 0 && done >= count) ? NULL : memmem_(p + i, n - i, old->u.s.p, old->u.s.n);
        if (!f) break;
        sb_put(&b, p + i, (size_t)(f - (p + i)));
        sb_put(&b, nw->u.s.p, nw->u.s.n);
        i = (size_t)(f - p) + old->u.s.n;
        done++;
    }
    sb_put(&b, p + i, n - i);
    return v_sbuf(C, &b);
}

static jv *m_replace(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "replace", nargs, nkw, 2, 3);
    return do_replace(C, self, args[0], args[1], nargs > 2 ? want_int(C, args[2], "count") : -1);
}

static jv *m_find(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "find", nargs, nkw, 1, 1);
    want_str(C, args[0], "find argument");
    const char *f = memmem_(self->u.s.p, self->u.s.n, args[0]->u.s.p, args[0]->u.s.n);
    return v_int(C, f ? (int64_t)u8_count(self->u.s.p, (size_t)(f - self->u.s.p)) : -1);
}

static jv *m_count(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "count", nargs, nkw, 1, 1);
    want_str(C, args[0], "count argument");
    int64_t c = 0;
    size_t i = 0, nn = args[0]->u.s.n;
    if (!nn) return v_int(C, v_len(C, self) + 1);
    for (;;) {
        const char *f = memmem_(self->u.s.p + i, self->u.s.n - i, args[0]->u.s.p, nn);
        if (!f) break;
        c++;
        i = (size_t)(f - self->u.s.p) + nn;
    }
    return v_int(C, c);
}

static jv *m_join(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "join", nargs, nkw, 1, 1);
    jv *l = iter_list(C, args[0]);
    sbuf b;
    sb_init(&b, C->a);
    for (int i = 0; i < l->u.l.n; i++) {
        if (i) sb_put(&b, self->u.s.p, self->u.s.n);
        sb_put(&b, want_str(C, l->u.l.v[i], "join item")->u.s.p, l->u.l.v[i]->u.s.n);
    }
    return v_sbuf(C, &b);
}

static jv *m_splitlines(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    want_args(C, "splitlines", nargs, nkw, 0, 0);
    jv *l = v_list(C);
    const char *p = self->u.s.p;
    size_t n = self->u.s.n, i = 0, st = 0;
    while (i < n) {
        if (p[i] == '\n' || p[i] == '\r') {
            l_push(C, l, v_strref(C, p + st, i - st));
            if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') i++;
            st = ++i;
        } else i++;
    }
    if (st < n) l_push(C, l, v_strref(C, p + st, n - st));
    return l;
}

static jv *m_isdigit(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    want_args(C, "isdigit", nargs, nkw, 0, 0);
    if (!self->u.s.n) return v_bool(0);
    for (size_t i = 0; i < self->u.s.n; i++)
        if (!is_digit((unsigned char)self->u.s.p[i])) return v_bool(0);
    return v_bool(1);
}

static jv *d_items(ctx *C, jv *d) {
    jv *l = v_list(C);
    for (int i = 0; i < d->u.d.n; i++) l_push(C, l, v_pair(C, d->u.d.k[i], d->u.d.v[i]));
    return l;
}

static jv *m_items(FN_ARGS) { (void)kwn; (void)kwv; (void)args; want_args(C, "items", nargs, nkw, 0, 0); return d_items(C, self); }
static jv *m_keys(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    want_args(C, "keys", nargs, nkw, 0, 0);
    jv *l = v_list(C);
    for (int i = 0; i < self->u.d.n; i++) l_push(C, l, self->u.d.k[i]);
    return l;
}
static jv *m_values(FN_ARGS) {
    (void)kwn; (void)kwv; (void)args;
    want_args(C, "values", nargs, nkw, 0, 0);
    jv *l = v_list(C);
    for (int i = 0; i < self->u.d.n; i++) l_push(C, l, self->u.d.v[i]);
    return l;
}
static jv *m_get(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "get", nargs, nkw, 1, 2);
    int i = d_find(self, args[0]);
    return i >= 0 ? self->u.d.v[i] : nargs > 1 ? args[1] : &V_NONE;
}

typedef struct {
    const char *name;
    builtin_fn fn;
} method;


/* Python's "fmt % args" for the common conversions (s r d i u f F e E g G x X o c %), with flags,
 * width and precision; args is a tuple or a single value. */
static jv *py_percent(ctx *C, jv *fmt, jv *args) {
    jv **av = &args;
    int na = 1, ai = 0;
    if (args->t == JV_LIST && (args->flags & F_TUPLE)) {
        av = args->u.l.v;
        na = args->u.l.n;
    }
    sbuf b;
    sb_init(&b, C->a);
    const char *p = fmt->u.s.p, *end = p + fmt->u.s.n;
    while (p < end) {
        if (*p != '%') {
            sb_putc(&b, *p++);
            continue;
        }
        p++;
        char spec[32];
        int k = 0;
        spec[k++] = '%';
        while (p < end && strchr("-+ 0#", *p) && k < 8) spec[k++] = *p++;
        while (p < end && is_digit((unsigned char)*p) && k < 16) spec[k++] = *p++;
        if (p < end && *p == '.') {
            spec[k++] = *p++;
            while (p < end && is_digit((unsigned char)*p) && k < 24) spec[k++] = *p++;
        }
        if (p >= end) ERR(C, "template line %d: incomplete format", C->line);
        char t = *p++;
        if (t == '%') {
            sb_putc(&b, '%');
            continue;
        }
        if (ai >= na) ERR(C, "template line %d: not enough arguments for format string", C->line);
        jv *v = av[ai++];
        char tmp[512];
        if (t == 's' || t == 'r') {
            sbuf vs;
            sb_init(&vs, C->a);
            if (t == 's') v_str_into(C, &vs, v);
            else v_repr(C, &vs, v);
            size_t vn = vs.n;
            spec[k] = 0;
            char *dot = strchr(spec, '.');
            if (dot) { /* precision: at most that many characters */
                size_t prec = (size_t)atoi(dot + 1), i = 0, c = 0;
                while (i < vn && c < prec) u8_next(vs.p, vn, &i), c++;
                vn = i;
                k = (int)(dot - spec);
            }
            if (k == 1) { /* plain %s: keep every byte (NULs included) */
                sb_put(&b, vs.p ? vs.p : "", vn);
                continue;
            }
            spec[k++] = '.';
            spec[k++] = '*';
            spec[k++] = 's';
            spec[k] = 0;
            /* width pads by bytes; fine for ASCII */
            char *o = ar_alloc(C->a, vn + 64 + 1);
            snprintf(o, vn + 65, spec, (int)vn, vs.p ? vs.p : "");
            sb_put(&b, o, strlen(o));
            continue;
        }
        if (strchr("diuxXoc", t)) {
            long long x;
            if (v->t == JV_FLOAT && strchr("diu", t)) x = (long long)v->u.f;
            else x = (long long)want_int(C, v, "%d format argument");
            if (t == 'c') {
                u8_put(&b, (uint32_t)x);
                continue;
            }
            spec[k++] = 'l';
            spec[k++] = 'l';
            spec[k++] = t == 'i' || t == 'u' ? 'd' : t;
            spec[k] = 0;
            snprintf(tmp, sizeof tmp, spec, x);
        } else if (strchr("fFeEgG", t)) {
            if (!is_num(v)) ERR(C, "template line %d: %%%c format: a real number is required, not %s", C->line, t, type_name(v));
            spec[k++] = t;
            spec[k] = 0;
            snprintf(tmp, sizeof tmp, spec, num_f(v));
        } else {
            ERR(C, "template line %d: unsupported format character '%c'", C->line, t);
        }
        sb_puts(&b, tmp);
    }
    if (ai < na && args->t != JV_DICT)
        ERR(C, "template line %d: not all arguments converted during string formatting", C->line);
    return v_sbuf(C, &b);
}

/* str.format with {} / {0} / {name} fields (no format specs) */
static jv *m_format(FN_ARGS) {
    sbuf b;
    sb_init(&b, C->a);
    const char *p = self->u.s.p, *end = p + self->u.s.n;
    int autoi = 0;
    while (p < end) {
        if (*p == '{' && p + 1 < end && p[1] == '{') { sb_putc(&b, '{'); p += 2; continue; }
        if (*p == '}' && p + 1 < end && p[1] == '}') { sb_putc(&b, '}'); p += 2; continue; }
        if (*p != '{') { sb_putc(&b, *p++); continue; }
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (!q) ERR(C, "template line %d: single '{' encountered in format string", C->line);
        const char *f = p + 1;
        size_t fl = (size_t)(q - f);
        if (memchr(f, ':', fl) || memchr(f, '!', fl)) ERR(C, "template line %d: format specs are not supported", C->line);
        jv *v = NULL;
        if (fl == 0) {
            if (autoi >= nargs) ERR(C, "template line %d: format: not enough arguments", C->line);
            v = args[autoi++];
        } else if (is_digit((unsigned char)f[0])) {
            int i = atoi(f);
            if (i >= nargs) ERR(C, "template line %d: format: index out of range", C->line);
            v = args[i];
        } else {
            for (int i = 0; i < nkw; i++)
                if (strlen(kwn[i]) == fl && !memcmp(kwn[i], f, fl)) v = kwv[i];
            if (!v) ERR(C, "template line %d: format: no argument named '%.*s'", C->line, (int)fl, f);
        }
        v_str_into(C, &b, v);
        p = q + 1;
    }
    return v_sbuf(C, &b);
}

static const method STR_METHODS[] = {
    {"strip", m_strip}, {"lstrip", m_lstrip}, {"rstrip", m_rstrip}, {"startswith", m_startswith},
    {"endswith", m_endswith}, {"split", m_split}, {"upper", m_upper}, {"lower", m_lower},
    {"capitalize", m_capitalize}, {"title", m_title}, {"replace", m_replace}, {"find", m_find},
    {"count", m_count}, {"join", m_join}, {"splitlines", m_splitlines}, {"isdigit", m_isdigit}, {"format", m_format}, {NULL, NULL},
};
static jv *m_list_count(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "count", nargs, nkw, 1, 1);
    int64_t c = 0;
    for (int i = 0; i < self->u.l.n; i++) c += v_eq(self->u.l.v[i], args[0]);
    return v_int(C, c);
}

static jv *m_list_index(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "index", nargs, nkw, 1, 1);
    for (int i = 0; i < self->u.l.n; i++)
        if (v_eq(self->u.l.v[i], args[0])) return v_int(C, i);
    ERR(C, "template line %d: list.index(x): x not in list", C->line);
}

static const method LIST_METHODS[] = {
    {"count", m_list_count}, {"index", m_list_index}, {NULL, NULL},
};

static const method DICT_METHODS[] = {
    {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"get", m_get}, {NULL, NULL},
};

static jv *bound(ctx *C, jv *self, const method *m, const char *name) {
    for (; m->name; m++)
        if (!strcmp(m->name, name)) {
            jv *f = v_new(C, JV_FUNC);
            f->u.fn.fn = m->fn;
            f->u.fn.self = self;
            f->u.fn.name = m->name;
            return f;
        }
    return NULL;
}

/* ---------------------------------------------------------------- attribute / item access */

static jv *undef_attr(ctx *C, jv *obj, const char *name) {
    size_t n = strlen(name) + 64;
    char *s = ar_alloc(C->a, n);
    snprintf(s, n, "'%s object' has no attribute '%s'", type_name(obj), name);
    return v_undef(C, s);
}

/* obj.name: attribute first (methods), then item (jinja2 getattr) */
static jv *get_attr(ctx *C, jv *obj, const char *name) {
    if (obj->t == JV_UNDEF) undef_error(C, obj);
    jv *m = NULL;
    if (obj->t == JV_STR) m = bound(C, obj, STR_METHODS, name);
    else if (obj->t == JV_DICT && !(obj->flags & F_NS)) m = bound(C, obj, DICT_METHODS, name);
    else if (obj->t == JV_LIST) m = bound(C, obj, LIST_METHODS, name);
    if (m) return m;
    if (obj->t == JV_DICT) {
        jv *v = d_get_s(obj, name);
        if (v) return v;
    }
    return undef_attr(C, obj, name);
}

/* obj[key]: item first, then attribute (jinja2 getitem) */
static jv *get_item(ctx *C, jv *obj, jv *key) {
    if (obj->t == JV_UNDEF) undef_error(C, obj);
    if (obj->t == JV_DICT) {
        int i = d_find(obj, key);
        if (i >= 0) return obj->u.d.v[i];
    } else if ((obj->t == JV_LIST || obj->t == JV_STR) && (key->t == JV_INT || key->t == JV_BOOL)) {
        int64_t i = num_i(key);
        if (obj->t == JV_LIST) {
            if (i < 0) i += obj->u.l.n;
            if (i >= 0 && i < obj->u.l.n) return obj->u.l.v[i];
        } else {
            size_t nc, *off = cp_offsets(C, obj, &nc);
            if (i < 0) i += (int64_t)nc;
            if (i >= 0 && i < (int64_t)nc) return v_strref(C, obj->u.s.p + off[i], off[i + 1] - off[i]);
        }
        return v_undef(C, "list index out of range");
    }
    if (key->t == JV_STR) return get_attr(C, obj, ar_strndup(C->a, key->u.s.p, key->u.s.n));
    return v_undef(C, "no such item");
}

/* ---------------------------------------------------------------- arithmetic */

static jv *arith(ctx *C, int op, jv *a, jv *b) {
    if (op == OP_CONCAT) {
        sbuf s;
        sb_init(&s, C->a);
        v_str_into(C, &s, a);
        v_str_into(C, &s, b);
        return v_sbuf(C, &s);
    }
    if (op == OP_MOD && a->t == JV_STR) return py_percent(C, a, b);
    if (a->t == JV_UNDEF) undef_error(C, a);
    if (b->t == JV_UNDEF) undef_error(C, b);
    if (is_num(a) && is_num(b)) {
        int fl = a->t == JV_FLOAT || b->t == JV_FLOAT;
        if (fl || op == OP_DIV) {
            double x = num_f(a), y = num_f(b), r;
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
            return v_float(C, r);
        }
        int64_t x = num_i(a), y = num_i(b), r = 0;
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
            if (y < 0) return v_float(C, pow((double)x, (double)y));
            r = 1;
            for (int64_t k = 0; k < y && !ovf; k++) ovf = __builtin_mul_overflow(r, x, &r);
        }
        if (ovf) ERR(C, "template line %d: integer overflow", C->line);
        return v_int(C, r);
    }
    if (op == OP_ADD && a->t == JV_STR && b->t == JV_STR) {
        char *p = ar_alloc(C->a, a->u.s.n + b->u.s.n + 1);
        memcpy(p, a->u.s.p, a->u.s.n);
        memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
        p[a->u.s.n + b->u.s.n] = 0;
        return v_strref(C, p, a->u.s.n + b->u.s.n);
    }
    if (op == OP_ADD && a->t == JV_LIST && b->t == JV_LIST) {
        jv *l = v_list(C);
        l->flags = a->flags & F_TUPLE;
        for (int i = 0; i < a->u.l.n; i++) l_push(C, l, a->u.l.v[i]);
        for (int i = 0; i < b->u.l.n; i++) l_push(C, l, b->u.l.v[i]);
        return l;
    }
    if (op == OP_MUL && ((a->t == JV_STR || a->t == JV_LIST) && (b->t == JV_INT || b->t == JV_BOOL))) {
        int64_t k = num_i(b);
        if (k > 0 && (a->t == JV_STR ? (int64_t)a->u.s.n : a->u.l.n) * k > (1 << 26))
            ERR(C, "template line %d: repetition too large", C->line);
        if (a->t == JV_STR) {
            sbuf s;
            sb_init(&s, C->a);
            for (int64_t i = 0; i < k; i++) sb_put(&s, a->u.s.p, a->u.s.n);
            return v_sbuf(C, &s);
        }
        jv *l = v_list(C);
        for (int64_t i = 0; i < k; i++)
            for (int j = 0; j < a->u.l.n; j++) l_push(C, l, a->u.l.v[j]);
        return l;
    }
    if (op == OP_MUL && (b->t == JV_STR || b->t == JV_LIST) && (a->t == JV_INT || a->t == JV_BOOL)) return arith(C, op, b, a);
    static const char *names[] = {"", "+", "-", "*", "/", "//", "%", "**"};
    ERR(C, "template line %d: unsupported operand type(s) for %s: '%s' and '%s'", C->line, names[op], type_name(a), type_name(b));
}

static int contains(ctx *C, jv *hay, jv *x) {
    switch (hay->t) {
    case JV_STR:
        if (x->t != JV_STR) ERR(C, "template line %d: 'in <string>' requires string as left operand, not %s", C->line, type_name(x));
        return memmem_(hay->u.s.p, hay->u.s.n, x->u.s.p, x->u.s.n) != NULL;
    case JV_LIST:
        for (int i = 0; i < hay->u.l.n; i++)
            if (v_eq(hay->u.l.v[i], x)) return 1;
        return 0;
    case JV_DICT: return d_find(hay, x) >= 0;
    case JV_UNDEF: return 0;
    default: ERR(C, "template line %d: argument of type '%s' is not iterable", C->line, type_name(hay));
    }
}

/* ---------------------------------------------------------------- evaluation */

static jv *eval(ctx *C, const node *n);
static void exec_body(ctx *C, const node *b);
static jv *call_value(ctx *C, jv *f, jv **args, int nargs, const char **kwn, jv **kwv, int nkw);
static jv *apply_test(ctx *C, const char *name, jv *v, jv **args, int nargs);
static jv *apply_filter(ctx *C, const char *name, jv *v, jv **args, int nargs, const char **kwn, jv **kwv, int nkw);

static jv *lookup(ctx *C, frame *f, const char *name) {
    for (; f; f = f->parent) {
        jv *v = d_get_s(f->vars, name);
        if (v) return v;
    }
    size_t n = strlen(name) + 32;
    char *s = ar_alloc(C->a, n);
    snprintf(s, n, "'%s' is undefined", name);
    return v_undef(C, s);
}

typedef struct {
    jv **args;
    int nargs;
    const char **kwn;
    jv **kwv;
    int nkw;
} argv_;

static argv_ eval_args(ctx *C, const node *n) {
    argv_ a = {0};
    a.nargs = n->n;
    a.nkw = n->n2;
    a.args = ar_alloc(C->a, sizeof(jv *) * (size_t)(n->n + 1));
    a.kwv = ar_alloc(C->a, sizeof(jv *) * (size_t)(n->n2 + 1));
    a.kwn = n->names;
    for (int i = 0; i < n->n; i++) a.args[i] = eval(C, n->list[i]);
    for (int i = 0; i < n->n2; i++) a.kwv[i] = eval(C, n->list2[i]);
    return a;
}

static jv *eval(ctx *C, const node *n) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: expression nested too deeply", n->line);
    C->line = n->line;
    jv *r = NULL;
    switch (n->kind) {
    case N_LIT: r = n->lit; break;
    case N_NAME: r = lookup(C, C->f, n->s); break;
    case N_LIST:
    case N_TUPLE:
        r = v_list(C);
        if (n->kind == N_TUPLE) r->flags = F_TUPLE;
        for (int i = 0; i < n->n; i++) l_push(C, r, eval(C, n->list[i]));
        break;
    case N_DICT:
        r = v_dict(C);
        for (int i = 0; i < n->n; i++) {
            jv *k = eval(C, n->list[i]);
            d_set(C, r, k, eval(C, n->list2[i]));
        }
        break;
    case N_ATTR: {
        jv *o = eval(C, n->a);
        C->line = n->line;
        r = get_attr(C, o, n->s);
        break;
    }
    case N_ITEM: {
        jv *o = eval(C, n->a);
        jv *k = eval(C, n->b);
        C->line = n->line;
        r = get_item(C, o, k);
        break;
    }
    case N_SLICE: {
        jv *o = eval(C, n->a);
        jv *p[3];
        for (int i = 0; i < 3; i++) p[i] = n->list[i] ? eval(C, n->list[i]) : NULL;
        C->line = n->line;
        r = v_slice(C, o, p[0], p[1], p[2]);
        break;
    }
    case N_CALL: {
        jv *f = eval(C, n->a);
        argv_ a = eval_args(C, n);
        C->line = n->line;
        r = call_value(C, f, a.args, a.nargs, a.kwn, a.kwv, a.nkw);
        break;
    }
    case N_FILTER: {
        jv *v = eval(C, n->a);
        argv_ a = eval_args(C, n);
        C->line = n->line;
        r = apply_filter(C, n->s, v, a.args, a.nargs, a.kwn, a.kwv, a.nkw);
        break;
    }
    case N_TEST: {
        jv *v = eval(C, n->a);
        argv_ a = eval_args(C, n);
        C->line = n->line;
        r = apply_test(C, n->s, v, a.args, a.nargs);
        if (n->op) r = v_bool(!r->u.b);
        break;
    }
    case N_BIN: {
        jv *a = eval(C, n->a);
        jv *b = eval(C, n->b);
        C->line = n->line;
        switch (n->op) {
        case OP_EQ: r = v_bool(v_eq(a, b)); break;
        case OP_NE: r = v_bool(!v_eq(a, b)); break;
        case OP_LT: r = v_bool(v_cmp(C, a, b) < 0); break;
        case OP_LE: r = v_bool(v_cmp(C, a, b) <= 0); break;
        case OP_GT: r = v_bool(v_cmp(C, a, b) > 0); break;
        case OP_GE: r = v_bool(v_cmp(C, a, b) >= 0); break;
        case OP_IN: r = v_bool(contains(C, b, a)); break;
        case OP_NOTIN: r = v_bool(!contains(C, b, a)); break;
        default: r = arith(C, n->op, a, b);
        }
        break;
    }
    case N_NOT: r = v_bool(!truthy(eval(C, n->a))); break;
    case N_NEG:
    case N_POS: {
        jv *a = eval(C, n->a);
        C->line = n->line;
        if (a->t == JV_UNDEF) undef_error(C, a);
        if (!is_num(a)) ERR(C, "template line %d: bad operand type for unary %c: '%s'", n->line, n->kind == N_NEG ? '-' : '+', type_name(a));
        if (n->kind == N_POS) r = a->t == JV_BOOL ? v_int(C, a->u.b) : a;
        else if (a->t == JV_FLOAT) r = v_float(C, -a->u.f);
        else {
            if (num_i(a) == INT64_MIN) ERR(C, "template line %d: integer overflow", n->line);
            r = v_int(C, -num_i(a));
        }
        break;
    }
    case N_AND: {
        jv *a = eval(C, n->a);
        r = truthy(a) ? eval(C, n->b) : a;
        break;
    }
    case N_OR: {
        jv *a = eval(C, n->a);
        r = truthy(a) ? a : eval(C, n->b);
        break;
    }
    case N_COND:
        if (truthy(eval(C, n->a))) r = eval(C, n->b);
        else r = n->c ? eval(C, n->c) : v_undef(C, "the else branch of an inline if is undefined");
        break;
    default: ERR(C, "template line %d: internal error: bad expression node %d", n->line, n->kind);
    }
    C->depth--;
    return r;
}

/* ---------------------------------------------------------------- macros and globals */

static jv *call_macro(ctx *C, jv *m, jv **args, int nargs, const char **kwn, jv **kwv, int nkw) {
    const node *mac = m->u.mac;
    jv *caller = C->next_caller;
    C->next_caller = NULL;
    const char *mname = m->flags & F_CALLER ? "caller" : mac->s;
    if (nargs > mac->nnames) ERR(C, "template line %d: macro '%s' takes not more than %d argument(s)", C->line, mname, mac->nnames);
    frame *saved = C->f;
    frame *f = ar_zalloc(C->a, sizeof *f);
    f->parent = m->flags & F_CALLER ? (frame *)m->env : C->root;
    f->vars = v_dict(C);
    C->f = f;
    if (caller) d_set_s(C, f->vars, "caller", caller);
    for (int i = 0; i < mac->nnames; i++) {
        jv *v = NULL;
        if (i < nargs) v = args[i];
        for (int k = 0; k < nkw; k++)
            if (!strcmp(kwn[k], mac->names[i])) {
                if (v && i < nargs) ERR(C, "template line %d: macro '%s' got multiple values for argument '%s'", C->line, mac->s, kwn[k]);
                v = kwv[k];
            }
        if (!v) v = i < mac->n2 && mac->list2[i] ? eval(C, mac->list2[i]) : v_undef(C, "a macro argument is undefined");
        d_set_s(C, f->vars, mac->names[i], v);
    }
    for (int k = 0; k < nkw; k++) {
        int ok = 0;
        for (int i = 0; i < mac->nnames; i++) ok |= !strcmp(kwn[k], mac->names[i]);
        if (!ok) ERR(C, "template line %d: macro '%s' has no argument '%s'", C->line, mname, kwn[k]);
    }
    sbuf out, *saved_out = C->out;
    sb_init(&out, C->a);
    C->out = &out;
    int saved_ctl = C->loopctl;
    exec_body(C, mac->b);
    C->loopctl = saved_ctl;
    C->out = saved_out;
    C->f = saved;
    return v_sbuf(C, &out);
}

static jv *call_value(ctx *C, jv *f, jv **args, int nargs, const char **kwn, jv **kwv, int nkw) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: calls nested too deeply (recursive macro?)", C->line);
    jv *r = NULL;
    if (f->t == JV_FUNC) r = f->u.fn.fn(C, f->u.fn.self, args, nargs, kwn, kwv, nkw);
    else if (f->t == JV_MACRO) r = call_macro(C, f, args, nargs, kwn, kwv, nkw);
    else if (f->t == JV_UNDEF) undef_error(C, f);
    else ERR(C, "template line %d: '%s' object is not callable", C->line, type_name(f));
    C->depth--;
    return r;
}

static jv *g_raise(FN_ARGS) {
    (void)self; (void)kwn; (void)kwv; (void)nkw;
    sbuf b;
    sb_init(&b, C->a);
    if (nargs > 0) v_str_into(C, &b, args[0]);
    ERR(C, "raise_exception: %s", b.p ? b.p : "");
}

static jv *g_namespace(FN_ARGS) {
    (void)self;
    jv *d = v_dict(C);
    d->flags = F_NS;
    for (int i = 0; i < nargs; i++) { /* namespace(dict) */
        if (args[i]->t != JV_DICT) ERR(C, "template line %d: namespace() positional argument must be a dict", C->line);
        for (int k = 0; k < args[i]->u.d.n; k++) d_set(C, d, args[i]->u.d.k[k], args[i]->u.d.v[k]);
    }
    for (int i = 0; i < nkw; i++) d_set_s(C, d, kwn[i], kwv[i]);
    return d;
}

static jv *g_dict(FN_ARGS) {
    jv *d = g_namespace(C, self, args, nargs, kwn, kwv, nkw);
    d->flags = 0;
    return d;
}

static jv *g_range(FN_ARGS) {
    (void)self; (void)kwn; (void)kwv;
    want_args(C, "range", nargs, nkw, 1, 3);
    int64_t a = 0, b, st = 1;
    if (nargs == 1) b = want_int(C, args[0], "range argument");
    else {
        a = want_int(C, args[0], "range argument");
        b = want_int(C, args[1], "range argument");
        if (nargs > 2) st = want_int(C, args[2], "range argument");
    }
    if (st == 0) ERR(C, "template line %d: range() arg 3 must not be zero", C->line);
    jv *l = v_list(C);
    for (int64_t i = a; st > 0 ? i < b : i > b; i += st) {
        if (l->u.l.n >= 1000000) ERR(C, "template line %d: range too large", C->line);
        l_push(C, l, v_int(C, i));
    }
    return l;
}

static jv *g_strftime_now(FN_ARGS) {
    (void)self; (void)kwn; (void)kwv;
    want_args(C, "strftime_now", nargs, nkw, 1, 1);
    want_str(C, args[0], "strftime_now format");
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (C->date) {
        int y, mo, d;
        if (sscanf(C->date, "%d-%d-%d", &y, &mo, &d) != 3) ERR(C, "bad date '%s' (want YYYY-MM-DD)", C->date);
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = 12;
        time_t t = timegm(&tm); /* normalizes and fills tm_wday / tm_yday */
        gmtime_r(&t, &tm);
        tm.tm_hour = 0;
    } else {
        time_t t = time(NULL);
        localtime_r(&t, &tm);
    }
    char fmt[256], out[512];
    size_t fl = args[0]->u.s.n < sizeof fmt - 1 ? args[0]->u.s.n : sizeof fmt - 1;
    memcpy(fmt, args[0]->u.s.p, fl);
    fmt[fl] = 0;
    size_t k = fl ? strftime(out, sizeof out, fmt, &tm) : 0;
    return v_strn(C, out, k);
}

static void add_global(ctx *C, jv *vars, const char *name, builtin_fn fn) {
    jv *f = v_new(C, JV_FUNC);
    f->u.fn.fn = fn;
    f->u.fn.name = name;
    d_set_s(C, vars, name, f);
}

/* ---------------------------------------------------------------- tests */

static jv *apply_test(ctx *C, const char *name, jv *v, jv **args, int nargs) {
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
    else if (!strcmp(name, "number")) r = is_num(v);
    else if (!strcmp(name, "string")) r = v->t == JV_STR;
    else if (!strcmp(name, "mapping")) r = v->t == JV_DICT;
    else if (!strcmp(name, "iterable")) r = v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT || v->t == JV_UNDEF;
    else if (!strcmp(name, "sequence")) r = v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT;
    else if (!strcmp(name, "callable")) r = v->t == JV_FUNC || v->t == JV_MACRO || v->t == JV_UNDEF;
    else if (!strcmp(name, "odd") || !strcmp(name, "even")) { /* value % 2 == 1 / == 0 */
        jv *m = arith(C, OP_MOD, v, v_int(C, 2));
        r = v_eq(m, v_int(C, name[0] == 'o' ? 1 : 0));
    } else if (!strcmp(name, "divisibleby")) {
        NEED(1);
        r = v_eq(arith(C, OP_MOD, v, args[0]), v_int(C, 0));
    } else if (!strcmp(name, "equalto") || !strcmp(name, "eq") || !strcmp(name, "==") || !strcmp(name, "sameas")) {
        NEED(1);
        r = v_eq(v, args[0]) && (strcmp(name, "sameas") || v->t == args[0]->t);
    } else if (!strcmp(name, "ne") || !strcmp(name, "!=")) {
        NEED(1);
        r = !v_eq(v, args[0]);
    } else if (!strcmp(name, "lt") || !strcmp(name, "lessthan")) {
        NEED(1);
        r = v_cmp(C, v, args[0]) < 0;
    } else if (!strcmp(name, "le")) {
        NEED(1);
        r = v_cmp(C, v, args[0]) <= 0;
    } else if (!strcmp(name, "gt") || !strcmp(name, "greaterthan")) {
        NEED(1);
        r = v_cmp(C, v, args[0]) > 0;
    } else if (!strcmp(name, "ge")) {
        NEED(1);
        r = v_cmp(C, v, args[0]) >= 0;
    } else if (!strcmp(name, "in")) {
        NEED(1);
        r = contains(C, args[0], v);
    } else if (!strcmp(name, "lower") || !strcmp(name, "upper")) { /* str(value).islower() / isupper() */
        jv *s = to_str(C, v);
        jv *m = case_map(C, s, name[0] == 'l' ? 2 : 1);
        int cased = 0;
        for (size_t i = 0; i < s->u.s.n;) cased |= cp_cased(u8_next(s->u.s.p, s->u.s.n, &i));
        r = cased && v_eq(s, m);
    } else {
        ERR(C, "template line %d: unknown test '%s'", C->line, name);
    }
#undef NEED
    return v_bool(r);
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
    if (attr->t == JV_INT) return get_item(C, v, attr);
    want_str(C, attr, "attribute");
    const char *p = attr->u.s.p, *end = p + attr->u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        jv *k = v_strref(C, p, (size_t)(dot - p));
        if (v->t == JV_UNDEF) return v;
        v = get_item(C, v, k);
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
        a = case_map(C, a, 2);
        b = case_map(C, b, 2);
    }
    return v_cmp(C, a, b);
}

static jv *apply_filter(ctx *C, const char *name, jv *v, jv **args, int nargs, const char **kwn, jv **kwv, int nkw) {
#define ARG(i, nm) farg(args, nargs, i, nm, kwn, kwv, nkw)
    if (!strcmp(name, "safe") || !strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape")) {
        if (name[0] == 's') return v;
        jv *s = to_str(C, v);
        sbuf b;
        sb_init(&b, C->a);
        for (size_t i = 0; i < s->u.s.n; i++) {
            char c = s->u.s.p[i];
            if (c == '&') sb_puts(&b, "&amp;");
            else if (c == '<') sb_puts(&b, "&lt;");
            else if (c == '>') sb_puts(&b, "&gt;");
            else if (c == '"') sb_puts(&b, "&#34;");
            else if (c == '\'') sb_puts(&b, "&#39;");
            else sb_putc(&b, c);
        }
        return v_sbuf(C, &b);
    }
    if (!strcmp(name, "trim")) return do_strip(C, to_str(C, v), ARG(0, "chars"), 3);
    if (!strcmp(name, "string")) return to_str(C, v);
    if (!strcmp(name, "length") || !strcmp(name, "count")) return v_int(C, v_len(C, v));
    if (!strcmp(name, "upper")) return case_map(C, to_str(C, v), 1);
    if (!strcmp(name, "lower")) return case_map(C, to_str(C, v), 2);
    if (!strcmp(name, "capitalize")) return case_map(C, to_str(C, v), 3);
    if (!strcmp(name, "title")) return case_map(C, to_str(C, v), 5);
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jv *def = ARG(0, "default_value");
        jv *boolean = ARG(1, "boolean");
        if (v->t == JV_UNDEF || (boolean && truthy(boolean) && !truthy(v))) return def ? def : v_strref(C, "", 0);
        return v;
    }
    if (!strcmp(name, "tojson")) {
        jsonfmt f = {NULL, ", ", ": ", 0};
        jv *ind = ARG(0, "indent");
        if (ind && ind->t != JV_NONE) {
            if (ind->t == JV_STR) f.indent = ar_strndup(C->a, ind->u.s.p, ind->u.s.n);
            else {
                int64_t k = want_int(C, ind, "tojson indent");
                if (k < 0) k = 0;
                if (k > 64) k = 64;
                char *sp = ar_alloc(C->a, (size_t)k + 1);
                memset(sp, ' ', (size_t)k);
                sp[k] = 0;
                f.indent = sp;
            }
            f.item_sep = ",";
        }
        jv *sep = kwarg("separators", kwn, kwv, nkw);
        if (sep && sep->t == JV_LIST && sep->u.l.n == 2) {
            f.item_sep = ar_strndup(C->a, want_str(C, sep->u.l.v[0], "separator")->u.s.p, sep->u.l.v[0]->u.s.n);
            f.key_sep = ar_strndup(C->a, want_str(C, sep->u.l.v[1], "separator")->u.s.p, sep->u.l.v[1]->u.s.n);
        }
        jv *sk = kwarg("sort_keys", kwn, kwv, nkw);
        f.sort_keys = sk && truthy(sk);
        jv *ea = kwarg("ensure_ascii", kwn, kwv, nkw);
        if (ea && truthy(ea)) ERR(C, "template line %d: tojson(ensure_ascii=true) is not supported", C->line);
        sbuf b;
        sb_init(&b, C->a);
        v_json(C, &b, v, &f, 0);
        return v_sbuf(C, &b);
    }
    if (!strcmp(name, "items")) {
        if (v->t == JV_UNDEF) return v_list(C);
        if (v->t != JV_DICT) ERR(C, "template line %d: items filter: can only get item pairs from a mapping", C->line);
        return d_items(C, v);
    }
    if (!strcmp(name, "list")) {
        jv *src = iter_list(C, v), *l = v_list(C);
        for (int i = 0; i < src->u.l.n; i++) l_push(C, l, src->u.l.v[i]);
        return l;
    }
    if (!strcmp(name, "join")) {
        jv *sep = ARG(0, "d");
        jv *attr = ARG(1, "attribute");
        jv *l = iter_list(C, v);
        sbuf b;
        sb_init(&b, C->a);
        for (int i = 0; i < l->u.l.n; i++) {
            if (i && sep) v_str_into(C, &b, sep);
            v_str_into(C, &b, attr ? attr_path(C, l->u.l.v[i], attr) : l->u.l.v[i]);
        }
        return v_sbuf(C, &b);
    }
    if (!strcmp(name, "replace")) {
        jv *old = ARG(0, "old"), *nw = ARG(1, "new"), *cnt = ARG(2, "count");
        if (!old || !nw) ERR(C, "template line %d: replace filter needs 2 arguments", C->line);
        return do_replace(C, to_str(C, v), old, nw, cnt && cnt->t != JV_NONE ? want_int(C, cnt, "count") : -1);
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        jv *l = iter_list(C, v);
        if (!l->u.l.n) return v_undef(C, "first/last of an empty sequence");
        return l->u.l.v[name[0] == 'f' ? 0 : l->u.l.n - 1];
    }
    if (!strcmp(name, "reverse")) {
        if (v->t == JV_STR) return v_slice(C, v, NULL, NULL, v_int(C, -1));
        jv *src = iter_list(C, v), *l = v_list(C);
        for (int i = src->u.l.n - 1; i >= 0; i--) l_push(C, l, src->u.l.v[i]);
        return l;
    }
    if (!strcmp(name, "int")) {
        jv *def = ARG(0, "default");
        if (v->t == JV_INT) return v;
        if (v->t == JV_BOOL) return v_int(C, v->u.b);
        if (v->t == JV_FLOAT && isfinite(v->u.f) && fabs(v->u.f) < 9.2e18) return v_int(C, (int64_t)v->u.f);
        if (v->t == JV_STR) {
            char *s = ar_strndup(C->a, v->u.s.p, v->u.s.n), *end;
            long long x = strtoll(s, &end, 10);
            while (*end == ' ' || *end == '\t' || *end == '\n') end++;
            if (end != s && !*end) return v_int(C, x);
            double d = strtod(s, &end);
            if (end != s && !*end && isfinite(d) && fabs(d) < 9.2e18) return v_int(C, (int64_t)d);
        }
        return def ? def : v_int(C, 0);
    }
    if (!strcmp(name, "float")) {
        jv *def = ARG(0, "default");
        if (is_num(v)) return v_float(C, num_f(v));
        if (v->t == JV_STR) {
            char *s = ar_strndup(C->a, v->u.s.p, v->u.s.n), *end;
            double d = strtod(s, &end);
            if (end != s && !*end) return v_float(C, d);
        }
        return def ? def : v_float(C, 0);
    }
    if (!strcmp(name, "abs")) {
        if (v->t == JV_FLOAT) return v_float(C, fabs(v->u.f));
        int64_t i = want_int(C, v, "abs operand");
        return v_int(C, i < 0 ? -i : i);
    }
    if (!strcmp(name, "round")) {
        jv *prec = ARG(0, "precision");
        jv *method = ARG(1, "method");
        int64_t p = prec ? want_int(C, prec, "precision") : 0;
        if (!is_num(v)) ERR(C, "template line %d: round of a non-number", C->line);
        double x = num_f(v), m = pow(10, (double)p);
        const char *md = method && method->t == JV_STR ? method->u.s.p : "common";
        double r = !strcmp(md, "ceil") ? ceil(x * m) / m : !strcmp(md, "floor") ? floor(x * m) / m : nearbyint(x * m) / m; /* Python round: half to even */
        return v_float(C, r);
    }
    if (!strcmp(name, "sort") || !strcmp(name, "dictsort")) {
        int dsort = name[0] == 'd';
        jv *rev = ARG(dsort ? 2 : 0, "reverse"), *cs = ARG(dsort ? 0 : 1, "case_sensitive"), *attr = dsort ? NULL : ARG(2, "attribute");
        if (dsort && v->t != JV_DICT) ERR(C, "template line %d: dictsort of a non-mapping", C->line);
        jv *src = dsort ? d_items(C, v) : iter_list(C, v);
        jv *by = dsort ? ARG(1, "by") : NULL;
        if (dsort) attr = v_int(C, by && by->t == JV_STR && !strcmp(by->u.s.p, "value") ? 1 : 0);
        jv *l = v_list(C);
        for (int i = 0; i < src->u.l.n; i++) l_push(C, l, src->u.l.v[i]);
        int r = rev && truthy(rev), c = cs && truthy(cs);
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
    if (!strcmp(name, "unique")) { /* case-insensitive by default, like jinja2 */
        jv *cs = ARG(0, "case_sensitive"), *attr = ARG(1, "attribute");
        int c = cs && truthy(cs);
        jv *src = iter_list(C, v), *l = v_list(C), *seen = v_list(C);
        for (int i = 0; i < src->u.l.n; i++) {
            jv *k = attr ? attr_path(C, src->u.l.v[i], attr) : src->u.l.v[i];
            if (!c && k->t == JV_STR) k = case_map(C, k, 2);
            if (contains(C, seen, k)) continue;
            l_push(C, seen, k);
            l_push(C, l, src->u.l.v[i]);
        }
        return l;
    }
    if (!strcmp(name, "min") || !strcmp(name, "max") || !strcmp(name, "sum")) {
        jv *src = iter_list(C, v);
        if (name[1] == 'u') {
            jv *acc = v_int(C, 0);
            for (int i = 0; i < src->u.l.n; i++) acc = arith(C, OP_ADD, acc, src->u.l.v[i]);
            return acc;
        }
        if (!src->u.l.n) return v_undef(C, "min/max of an empty sequence");
        jv *cs = ARG(0, "case_sensitive"), *attr = ARG(1, "attribute");
        int c = cs && truthy(cs);
        jv *best = src->u.l.v[0];
        for (int i = 1; i < src->u.l.n; i++) {
            int k = sort_cmp(C, src->u.l.v[i], best, attr, c);
            if (name[1] == 'i' ? k < 0 : k > 0) best = src->u.l.v[i];
        }
        return best;
    }
    if (!strcmp(name, "indent")) {
        jv *w = ARG(0, "width"), *first = ARG(1, "first"), *blank = ARG(2, "blank");
        sbuf pad;
        sb_init(&pad, C->a);
        if (w && w->t == JV_STR) sb_put(&pad, w->u.s.p, w->u.s.n);
        else
            for (int64_t i = 0, k = w ? want_int(C, w, "indent width") : 4; i < k && i < 256; i++) sb_putc(&pad, ' ');
        jv *s = to_str(C, v);
        sbuf b;
        sb_init(&b, C->a);
        const char *p = s->u.s.p;
        size_t n = s->u.s.n, i = 0;
        int line0 = 1;
        while (i <= n) {
            const char *nl = memchr(p + i, '\n', n - i);
            size_t e = nl ? (size_t)(nl - p) : n;
            int empty = e == i;
            if ((!line0 || (first && truthy(first))) && (!empty || (blank && truthy(blank)))) sb_put(&b, pad.p, pad.n);
            sb_put(&b, p + i, e - i);
            if (!nl) break;
            sb_putc(&b, '\n');
            i = e + 1;
            line0 = 0;
        }
        return v_sbuf(C, &b);
    }
    if (!strcmp(name, "wordcount")) { /* runs of \w characters */
        jv *s = to_str(C, v);
        int64_t words = 0;
        int in = 0;
        for (size_t i = 0; i < s->u.s.n; i++) {
            unsigned char c = (unsigned char)s->u.s.p[i];
            int w = is_name_start(c) || is_digit(c) || c >= 0x80;
            words += w && !in;
            in = w;
        }
        return v_int(C, words);
    }
    if (!strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") || !strcmp(name, "rejectattr")) {
        int attr_mode = strstr(name, "attr") != NULL, want = name[0] == 's';
        jv *src = iter_list(C, v), *l = v_list(C);
        int base = attr_mode ? 1 : 0;
        if (attr_mode && nargs < 1) ERR(C, "template line %d: %s needs an attribute name", C->line, name);
        for (int i = 0; i < src->u.l.n; i++) {
            jv *x = src->u.l.v[i];
            jv *y = attr_mode ? attr_path(C, x, args[0]) : x;
            int ok;
            if (nargs > base) {
                jv *tn = want_str(C, args[base], "test name");
                ok = apply_test(C, ar_strndup(C->a, tn->u.s.p, tn->u.s.n), y, args + base + 1, nargs - base - 1)->u.b;
            } else {
                ok = truthy(y);
            }
            if (ok == want) l_push(C, l, x);
        }
        return l;
    }
    if (!strcmp(name, "map")) {
        jv *src = iter_list(C, v), *l = v_list(C);
        jv *attr = kwarg("attribute", kwn, kwv, nkw), *def = kwarg("default", kwn, kwv, nkw);
        for (int i = 0; i < src->u.l.n; i++) {
            jv *x = src->u.l.v[i];
            if (attr) {
                jv *y = attr_path(C, x, attr);
                l_push(C, l, y->t == JV_UNDEF && def ? def : y);
            } else {
                if (nargs < 1) ERR(C, "template line %d: map needs a filter name or attribute=", C->line);
                jv *fn = want_str(C, args[0], "filter name");
                l_push(C, l, apply_filter(C, ar_strndup(C->a, fn->u.s.p, fn->u.s.n), x, args + 1, nargs - 1, NULL, NULL, 0));
            }
        }
        return l;
    }
    if (!strcmp(name, "format")) {
        jv *t = v_list(C);
        t->flags = F_TUPLE;
        for (int i = 0; i < nargs; i++) l_push(C, t, args[i]);
        return py_percent(C, want_str(C, v, "format filter operand"), t);
    }
    if (!strcmp(name, "batch") || !strcmp(name, "slice")) ERR(C, "template line %d: filter '%s' is not supported", C->line, name);
    ERR(C, "template line %d: unknown filter '%s'", C->line, name);
#undef ARG
}

/* ---------------------------------------------------------------- statements */

static void assign(ctx *C, const node *target, jv *v) {
    if (target->kind == N_NAME) {
        d_set_s(C, C->f->vars, target->s, v);
    } else if (target->kind == N_ATTR) {
        jv *obj = eval(C, target->a);
        if (obj->t != JV_DICT || !(obj->flags & F_NS))
            ERR(C, "template line %d: cannot assign attribute on non-namespace object", target->line);
        d_set_s(C, obj, target->s, v);
    } else { /* tuple of names */
        jv *l = iter_list(C, v);
        if (l->u.l.n != target->nnames)
            ERR(C, "template line %d: cannot unpack %d values into %d names", target->line, l->u.l.n, target->nnames);
        for (int i = 0; i < target->nnames; i++) d_set_s(C, C->f->vars, target->names[i], l->u.l.v[i]);
    }
}

static void exec_node(ctx *C, const node *n);

static void exec_body(ctx *C, const node *b) {
    for (int i = 0; i < b->n && !C->loopctl; i++) exec_node(C, b->list[i]);
}

static jv *m_cycle(FN_ARGS) {
    (void)kwn; (void)kwv;
    want_args(C, "loop.cycle", nargs, nkw, 1, 1 << 20);
    return args[d_get_s(self, "index0")->u.i % nargs];
}

static void exec_for(ctx *C, const node *n) {
    jv *seq = eval(C, n->a);
    C->line = n->line;
    jv *items = iter_list(C, seq);
    frame *outer = C->f;
    if (n->b) { /* loop filter: evaluated with the loop variable bound */
        jv *kept = v_list(C);
        for (int i = 0; i < items->u.l.n; i++) {
            frame *f = ar_zalloc(C->a, sizeof *f);
            f->parent = outer;
            f->vars = v_dict(C);
            C->f = f;
            node tgt = {0};
            if (n->nnames == 1) {
                tgt.kind = N_NAME;
                tgt.s = n->names[0];
            } else {
                tgt.kind = N_TUPLE;
                tgt.names = n->names;
                tgt.nnames = n->nnames;
            }
            assign(C, &tgt, items->u.l.v[i]);
            int ok = truthy(eval(C, n->b));
            C->f = outer;
            if (ok) l_push(C, kept, items->u.l.v[i]);
        }
        items = kept;
    }
    int len = items->u.l.n;
    for (int i = 0; i < len; i++) {
        if (++C->steps > STEP_LIMIT) ERR(C, "template line %d: template runs too long (more than %lld steps)", n->line, STEP_LIMIT);
        frame *f = ar_zalloc(C->a, sizeof *f);
        f->parent = outer;
        f->vars = v_dict(C);
        C->f = f;
        jv *loop = v_dict(C);
        d_set_s(C, loop, "index", v_int(C, i + 1));
        d_set_s(C, loop, "index0", v_int(C, i));
        d_set_s(C, loop, "revindex", v_int(C, len - i));
        d_set_s(C, loop, "revindex0", v_int(C, len - i - 1));
        d_set_s(C, loop, "first", v_bool(i == 0));
        d_set_s(C, loop, "last", v_bool(i == len - 1));
        d_set_s(C, loop, "length", v_int(C, len));
        d_set_s(C, loop, "depth", v_int(C, 1));
        d_set_s(C, loop, "depth0", v_int(C, 0));
        jv *cyc = v_new(C, JV_FUNC);
        cyc->u.fn.fn = m_cycle;
        cyc->u.fn.self = loop;
        cyc->u.fn.name = "cycle";
        d_set_s(C, loop, "cycle", cyc);
        if (i > 0) d_set_s(C, loop, "previtem", items->u.l.v[i - 1]);
        if (i + 1 < len) d_set_s(C, loop, "nextitem", items->u.l.v[i + 1]);
        d_set_s(C, f->vars, "loop", loop);
        node tgt = {0};
        tgt.line = n->line;
        if (n->nnames == 1) {
            tgt.kind = N_NAME;
            tgt.s = n->names[0];
        } else {
            tgt.kind = N_TUPLE;
            tgt.names = n->names;
            tgt.nnames = n->nnames;
        }
        assign(C, &tgt, items->u.l.v[i]);
        exec_body(C, n->c);
        C->f = outer;
        if (C->loopctl == 1) {
            C->loopctl = 0;
            break;
        }
        C->loopctl = 0;
    }
    if (len == 0 && n->n2) exec_body(C, n->list2[0]);
}

static jv *capture(ctx *C, const node *body) {
    sbuf out, *saved = C->out;
    sb_init(&out, C->a);
    C->out = &out;
    exec_body(C, body);
    C->out = saved;
    return v_sbuf(C, &out);
}

/* apply a parsed filter chain (innermost operand NULL) to v */
static jv *apply_chain(ctx *C, const node *f, jv *v) {
    if (!f) return v;
    if (f->kind != N_FILTER) ERR(C, "template line %d: expected a filter", f->line);
    v = apply_chain(C, f->a, v);
    argv_ a = eval_args(C, f);
    return apply_filter(C, f->s, v, a.args, a.nargs, a.kwn, a.kwv, a.nkw);
}

static void exec_node(ctx *C, const node *n) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: statements nested too deeply", n->line);
    if (++C->steps > STEP_LIMIT) ERR(C, "template line %d: template runs too long (more than %lld steps)", n->line, STEP_LIMIT);
    C->line = n->line;
    switch (n->kind) {
    case N_BODY: exec_body(C, n); break;
    case N_DATA: sb_put(C->out, n->s, (size_t)n->op); break;
    case N_OUTPUT: v_str_into(C, C->out, eval(C, n->a)); break;
    case N_IF: {
        const node *x = n;
        while (x && x->kind == N_IF) {
            if (truthy(eval(C, x->a))) {
                exec_body(C, x->b);
                break;
            }
            x = x->c;
        }
        if (x && x->kind == N_BODY) exec_body(C, x); /* else branch */
        break;
    }
    case N_FOR: exec_for(C, n); break;
    case N_SET: assign(C, n->a, eval(C, n->b)); break;
    case N_SETBLOCK: assign(C, n->a, apply_chain(C, n->c, capture(C, n->b))); break;
    case N_MACRO: {
        jv *m = v_new(C, JV_MACRO);
        m->u.mac = n;
        d_set_s(C, C->f->vars, n->s, m);
        break;
    }
    case N_BREAK: C->loopctl = 1; break;
    case N_CONTINUE: C->loopctl = 2; break;
    case N_FILTERBLOCK: {
        jv *v = apply_chain(C, n->c, capture(C, n->b));
        v_str_into(C, C->out, v);
        break;
    }
    case N_CALLBLOCK: {
        jv *caller = v_new(C, JV_MACRO);
        caller->flags = F_CALLER;
        caller->u.mac = n;
        caller->env = C->f;
        jv *f = eval(C, n->a->a);
        argv_ a = eval_args(C, n->a);
        C->line = n->line;
        if (f->t != JV_MACRO) ERR(C, "template line %d: {%% call %%} needs a macro", n->line);
        C->next_caller = caller;
        v_str_into(C, C->out, call_value(C, f, a.args, a.nargs, a.kwn, a.kwv, a.nkw));
        break;
    }
    case N_WITH: {
        frame *f = ar_zalloc(C->a, sizeof *f);
        f->parent = C->f;
        f->vars = v_dict(C);
        for (int i = 0; i < n->nnames; i++) d_set_s(C, f->vars, n->names[i], eval(C, n->list2[i]));
        frame *saved = C->f;
        C->f = f;
        exec_body(C, n->b);
        C->f = saved;
        break;
    }
    default: ERR(C, "template line %d: internal error: bad statement node %d", n->line, n->kind);
    }
    C->depth--;
}

char *pika_jinja_render(const pika_jinja *t, const cJSON *vars, const char *date, size_t *len_out) {
    if (len_out) *len_out = 0;
    if (!t) {
        pika_set_error("no template");
        return NULL;
    }
    if (vars && !cJSON_IsObject(vars)) {
        pika_set_error("template variables must be a JSON object");
        return NULL;
    }
    if (date) {
        int y, m, d;
        char extra;
        if (sscanf(date, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 || d < 1 || d > 31) {
            pika_set_error("bad date '%s' (want YYYY-MM-DD)", date);
            return NULL;
        }
    }
    arena a = {0};
    errctx err;
    a.err = &err;
    ctx X;
    memset(&X, 0, sizeof X);
    ctx *C = &X;
    C->a = &a;
    C->err = &err;
    C->date = date;
    if (setjmp(err.jb)) {
        pika_set_error("%s", err.msg);
        ar_free(&a);
        return NULL;
    }
    frame *g = ar_zalloc(&a, sizeof *g);
    g->vars = v_dict(C);
    add_global(C, g->vars, "raise_exception", g_raise);
    add_global(C, g->vars, "namespace", g_namespace);
    add_global(C, g->vars, "dict", g_dict);
    add_global(C, g->vars, "range", g_range);
    add_global(C, g->vars, "strftime_now", g_strftime_now);
    frame *root = ar_zalloc(&a, sizeof *root);
    root->parent = g;
    root->vars = vars ? from_cjson(C, vars) : v_dict(C);
    C->globals = g;
    C->root = root;
    C->f = root;
    sbuf out;
    sb_init(&out, &a);
    C->out = &out;
    exec_body(C, t->root);
    char *res = pika_malloc(out.n + 1);
    if (out.n) memcpy(res, out.p, out.n);
    res[out.n] = 0;
    if (len_out) *len_out = out.n;
    ar_free(&a);
    return res;
}

char *pika_jinja_render_string(const char *src, size_t len, const cJSON *vars, const char *date, size_t *len_out) {
    pika_jinja *t = pika_jinja_parse(src, len);
    if (!t) {
        if (len_out) *len_out = 0;
        return NULL;
    }
    char *r = pika_jinja_render(t, vars, date, len_out);
    pika_jinja_free(t);
    return r;
}
