/* jinja_internal.h — the types and functions the Jinja interpreter's files share (not public API;
 * the public API is include/pika/jinja.h):
 *   jinja_lex.c      lexer: source -> tokens, with trim_blocks/lstrip_blocks and - / + whitespace control
 *   jinja_parse.c    recursive-descent parser: tokens -> AST (pika_jinja_parse / pika_jinja_free)
 *   jinja_value.c    errors (longjmp), arenas, byte buffers, UTF-8, Python-like values: constructors,
 *                    dicts, truthiness, comparison, str()/repr()/JSON, sequences, attribute/item access,
 *                    arithmetic
 *   jinja_methods.c  str / dict / list methods ("a".split(), d.items(), ...) and "%" formatting
 *   jinja_filters.c  tests ("is defined", ...) and filters (a table: name -> function)
 *   jinja.c          evaluator: expressions, macros and globals, statements, pika_jinja_render
 * Shared functions carry a jj_ prefix; everything else stays static in its file.
 */
#ifndef PIKA_JINJA_INTERNAL_H
#define PIKA_JINJA_INTERNAL_H

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

/* growable byte buffer in an arena */
typedef struct {
    arena *a;
    char *p;
    size_t n, cap;
} sbuf;

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

/* growable node* array */
typedef struct {
    node **v;
    int n, cap;
} nvec;

typedef struct {
    const char **v;
    int n, cap;
} svec;

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

#define ERR(C, ...) jj_fail((C)->err, __VA_ARGS__)

typedef struct {
    const char *indent; /* NULL: single line */
    const char *item_sep, *key_sep;
    int sort_keys;
} jsonfmt;

/* ---------------------------------------------------------------- string and dict methods */

#define FN_ARGS ctx *C, jv *self, jv **args, int nargs, const char **kwn, jv **kwv, int nkw

typedef struct {
    const char *name;
    builtin_fn fn;
} method;

typedef struct {
    jv **args;
    int nargs;
    const char **kwn;
    jv **kwv;
    int nkw;
} argv_;

/* ---------------------------------------------------------------- shared functions */

/* jinja_lex.c */
int jj_is_name_start(int c);
int jj_is_digit(int c);
void jj_lex(lexer *L);

/* jinja_value.c */
extern jv jj_V_NONE;
void jj_fail(errctx *e, const char *fmt, ...) PIKA_PRINTF(2, 3) __attribute__((noreturn));
void *jj_ar_alloc(arena *a, size_t n);
void *jj_ar_zalloc(arena *a, size_t n);
void jj_ar_free(arena *a);
char *jj_ar_strndup(arena *a, const char *s, size_t n);
void jj_sb_init(sbuf *b, arena *a);
void jj_sb_put(sbuf *b, const char *s, size_t n);
void jj_sb_puts(sbuf *b, const char *s);
void jj_sb_putc(sbuf *b, char c);
uint32_t jj_u8_next(const char *s, size_t n, size_t *i);
size_t jj_u8_count(const char *s, size_t n);
int jj_py_space(uint32_t c);
size_t jj_rstrip_len(const char *s, size_t n);
size_t jj_lspace_len(const char *s, size_t n);
void jj_u8_put(sbuf *b, uint32_t c);
jv *jj_v_new(ctx *C, int t);
jv *jj_v_undef(ctx *C, const char *what);
jv *jj_v_bool(int b);
jv *jj_v_int(ctx *C, int64_t i);
jv *jj_v_float(ctx *C, double f);
jv *jj_v_strn(ctx *C, const char *s, size_t n);
jv *jj_v_strref(ctx *C, const char *s, size_t n);
jv *jj_v_sbuf(ctx *C, sbuf *b);
jv *jj_v_list(ctx *C);
void jj_l_push(ctx *C, jv *l, jv *x);
jv *jj_v_pair(ctx *C, jv *a, jv *b);
jv *jj_v_dict(ctx *C);
int jj_d_find(jv *d, jv *k);
void jj_d_set(ctx *C, jv *d, jv *k, jv *v);
void jj_d_set_s(ctx *C, jv *d, const char *k, jv *v);
jv *jj_d_get_s(jv *d, const char *k);
const char *jj_type_name(jv *v);
void jj_undef_error(ctx *C, jv *v);
int jj_truthy(jv *v);
int jj_is_num(jv *v);
double jj_num_f(jv *v);
int64_t jj_num_i(jv *v);
int jj_v_eq(jv *a, jv *b);
int jj_v_cmp(ctx *C, jv *a, jv *b);
void jj_v_str_into(ctx *C, sbuf *b, jv *v);
void jj_v_repr(ctx *C, sbuf *b, jv *v);
jv *jj_to_str(ctx *C, jv *v);
void jj_v_json(ctx *C, sbuf *b, jv *v, const jsonfmt *f, int level);
jv *jj_from_cjson(ctx *C, const cJSON *j);
size_t *jj_cp_offsets(ctx *C, jv *s, size_t *nc);
int64_t jj_v_len(ctx *C, jv *v);
jv *jj_iter_list(ctx *C, jv *v);
jv *jj_v_slice(ctx *C, jv *v, jv *js, jv *je, jv *jst);
jv *jj_get_attr(ctx *C, jv *obj, const char *name);
jv *jj_get_item(ctx *C, jv *obj, jv *key);
jv *jj_arith(ctx *C, int op, jv *a, jv *b);
int jj_contains(ctx *C, jv *hay, jv *x);

/* jinja_methods.c */
extern const method jj_STR_METHODS[];
extern const method jj_LIST_METHODS[];
extern const method jj_DICT_METHODS[];
void jj_want_args(ctx *C, const char *name, int nargs, int nkw, int lo, int hi);
jv *jj_want_str(ctx *C, jv *v, const char *what);
jv *jj_do_strip(ctx *C, jv *s, jv *chars, int mode);
const char *jj_memmem_(const char *h, size_t hn, const char *nd, size_t nn);
int64_t jj_want_int(ctx *C, jv *v, const char *what);
int jj_cp_cased(uint32_t c);
jv *jj_case_map(ctx *C, jv *s, int mode);
jv *jj_do_replace(ctx *C, jv *s, jv *old, jv *nw, int64_t count);
jv *jj_d_items(ctx *C, jv *d);
jv *jj_py_percent(ctx *C, jv *fmt, jv *args);
jv *jj_bound(ctx *C, jv *self, const method *m, const char *name);

/* jinja_filters.c */
jv *jj_apply_test(ctx *C, const char *name, jv *v, jv **args, int nargs);
jv *jj_apply_filter(ctx *C, const char *name, jv *v, jv **args, int nargs, const char **kwn, jv **kwv, int nkw);

#endif
