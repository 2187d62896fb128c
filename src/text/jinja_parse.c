/* jinja_parse.c — recursive-descent parser from tokens to the AST (expressions with Python
 * precedence, filters, tests, statements), and the public pika_jinja_parse / pika_jinja_free.
 */
#include "jinja_internal.h"

static token *pk(parser *P);
static token *nx(parser *P);
static int is_op(token *t, const char *op);
static int is_name(token *t, const char *nm);
static const char *tok_desc(token *t);
static void expect_op(parser *P, const char *op);
static void expect_type(parser *P, int type, const char *what);
static const char *expect_name(parser *P);
static node *mk(parser *P, int kind, int line);
static void nv_push(parser *P, nvec *v, node *x);
static void sv_push(parser *P, svec *v, const char *x);
static jv *mk_lit(arena *a, int t);
static void enter(parser *P);
static void p_call_args(parser *P, node *n);
static node *p_filters(parser *P, node *n);
static node *p_postfix(parser *P, node *n);
static node *p_primary(parser *P);
static node *p_unary(parser *P, int with_filter);
static node *mk_bin(parser *P, int op, node *a, node *b, int line);
static node *p_pow(parser *P);
static node *p_math2(parser *P);
static node *p_concat(parser *P);
static node *p_math1(parser *P);
static node *p_compare(parser *P);
static node *p_not(parser *P);
static node *p_and(parser *P);
static node *p_or(parser *P);
static node *p_expr(parser *P);
static node *p_tuple(parser *P);
static void block_end(parser *P);
static node *body_until(parser *P, const char *const *ends, const char **ended, int line, const char *tag);
static node *p_target(parser *P, int allow_attr);
static node *p_stmt(parser *P, token *t);
static node *p_body(parser *P, const char *const *ends, const char **ended);

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
    if (!is_op(t, op)) jj_fail(P->err, "template line %d: expected '%s', got %s", t->line, op, tok_desc(t));
    nx(P);
}

static void expect_type(parser *P, int type, const char *what) {
    token *t = pk(P);
    if (t->type != type) jj_fail(P->err, "template line %d: expected %s, got %s", t->line, what, tok_desc(t));
    nx(P);
}

static const char *expect_name(parser *P) {
    token *t = pk(P);
    if (t->type != T_NAME) jj_fail(P->err, "template line %d: expected a name, got %s", t->line, tok_desc(t));
    nx(P);
    return t->s;
}

static node *mk(parser *P, int kind, int line) {
    node *n = jj_ar_zalloc(P->a, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

static void nv_push(parser *P, nvec *v, node *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        node **p = jj_ar_alloc(P->a, sizeof(node *) * (size_t)cap);
        if (v->n) memcpy(p, v->v, sizeof(node *) * (size_t)v->n);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static void sv_push(parser *P, svec *v, const char *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 4;
        const char **p = jj_ar_alloc(P->a, sizeof(char *) * (size_t)cap);
        if (v->n) memcpy(p, v->v, sizeof(char *) * (size_t)v->n);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static jv *mk_lit(arena *a, int t) {
    jv *v = jj_ar_zalloc(a, sizeof *v);
    v->t = t;
    return v;
}

static void enter(parser *P) {
    if (++P->depth > MAX_DEPTH) jj_fail(P->err, "template line %d: nesting too deep", pk(P)->line);
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
            if (kwv.n) jj_fail(P->err, "template line %d: positional argument after keyword argument", t->line);
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
                char *s = jj_ar_alloc(P->a, l1 + l2 + 2);
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
                if (is_name(u, "is")) jj_fail(P->err, "template line %d: you cannot chain multiple tests with is", u->line);
                node *arg = p_postfix(P, p_primary(P));
                f->list = jj_ar_alloc(P->a, sizeof(node *));
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
                jj_fail(P->err, "template line %d: expected a name after '.'", t->line);
            }
        } else if (is_op(t, "[")) {
            nx(P);
            node *parts[3] = {NULL, NULL, NULL};
            int np = 0, is_slice = 0;
            for (;;) {
                if (is_op(pk(P), ":")) {
                    nx(P);
                    is_slice = 1;
                    if (++np > 2) jj_fail(P->err, "template line %d: bad slice", t->line);
                    continue;
                }
                if (is_op(pk(P), "]")) break;
                if (parts[np]) jj_fail(P->err, "template line %d: expected ']'", t->line);
                parts[np] = p_expr(P);
            }
            nx(P);
            if (is_slice) {
                node *s = mk(P, N_SLICE, t->line);
                s->a = n;
                s->list = jj_ar_alloc(P->a, sizeof(node *) * 3);
                memcpy(s->list, parts, sizeof parts);
                s->n = 3;
                n = s;
            } else {
                if (!parts[0]) jj_fail(P->err, "template line %d: empty subscript", t->line);
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
        jj_sb_init(&b, P->a);
        while (pk(P)->type == T_STRING) {
            token *u = nx(P);
            jj_sb_put(&b, u->s, u->n);
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
    jj_fail(P->err, "template line %d: unexpected %s", t->line, tok_desc(t));
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

static void block_end(parser *P) { expect_type(P, T_BLOCK_END, "'%}'"); }

static node *body_until(parser *P, const char *const *ends, const char **ended, int line, const char *tag) {
    node *b = p_body(P, ends, ended);
    if (!*ended) jj_fail(P->err, "template line %d: unexpected end of template: '%s' is missing its '%s'", line, tag, ends[0]);
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
        if (!is_name(pk(P), "in")) jj_fail(P->err, "template line %d: expected 'in' in for loop", line);
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
        if (is_name(pk(P), "recursive")) jj_fail(P->err, "template line %d: recursive for loops are not supported", line);
        block_end(P);
        static const char *const ends[] = {"endfor", "else", NULL};
        n->c = body_until(P, ends, &ended, line, "for");
        if (!strcmp(ended, "else")) {
            nx(P);
            block_end(P);
            static const char *const ends2[] = {"endfor", NULL};
            node *e = body_until(P, ends2, &ended, line, "for");
            n->list2 = jj_ar_alloc(P->a, sizeof(node *));
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
                jj_fail(P->err, "template line %d: non-default argument follows default argument", line);
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
        if (n->a->kind != N_CALL) jj_fail(P->err, "template line %d: {%% call %%} needs a macro call", line);
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
    jj_fail(P->err, "template line %d: unknown or unexpected tag '%s'", line, nm);
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
            if (u->type != T_NAME) jj_fail(P->err, "template line %d: expected a tag name after '{%%'", u->line);
            for (int k = 0; ends && ends[k]; k++)
                if (!strcmp(u->s, ends[k])) {
                    *ended = ends[k];
                    goto done;
                }
            nx(P);
            nv_push(P, &items, p_stmt(P, u));
        } else {
            jj_fail(P->err, "template line %d: unexpected %s", t->line, tok_desc(t));
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
        jj_ar_free(&t->a);
        free(t);
        return NULL;
    }
    /* normalize newlines (\r\n, \r -> \n) and drop one trailing newline (keep_trailing_newline=False) */
    char *s = jj_ar_alloc(&t->a, len + 1);
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
    jj_lex(&L);
    parser P = {.a = &t->a, .err = &err, .t = L.toks};
    const char *ended;
    t->root = p_body(&P, NULL, &ended);
    if (pk(&P)->type != T_EOF) jj_fail(&err, "template line %d: unexpected %s", pk(&P)->line, tok_desc(pk(&P)));
    return t;
}

void pika_jinja_free(pika_jinja *t) {
    if (!t) return;
    jj_ar_free(&t->a);
    free(t);
}
