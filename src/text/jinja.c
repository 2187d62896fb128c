/* jinja.c — the Jinja evaluator: expressions, macros and callers, globals (range, namespace,
 * dict, raise_exception, strftime_now), statements, and the public pika_jinja_render API.
 * See include/pika/jinja.h for the supported subset and src/text/jinja_internal.h for how the
 * interpreter is split into files.
 *
 * Memory: the AST lives in the template's arena; every value made while rendering lives in a
 * per-render arena freed at the end. Errors anywhere longjmp to the entry point, which frees the
 * arena and records the message with pika_set_error().
 */
#include "jinja_internal.h"

static jv *lookup(ctx *C, frame *f, const char *name);
static argv_ eval_args(ctx *C, const node *n);
static jv *eval(ctx *C, const node *n);
static jv *call_macro(ctx *C, jv *m, jv **args, int nargs, const char **kwn, jv **kwv, int nkw);
static jv *call_value(ctx *C, jv *f, jv **args, int nargs, const char **kwn, jv **kwv, int nkw);
static jv *g_raise(FN_ARGS);
static jv *g_namespace(FN_ARGS);
static jv *g_dict(FN_ARGS);
static jv *g_range(FN_ARGS);
static jv *g_strftime_now(FN_ARGS);
static void add_global(ctx *C, jv *vars, const char *name, builtin_fn fn);
static void assign(ctx *C, const node *target, jv *v);
static void exec_body(ctx *C, const node *b);
static jv *m_cycle(FN_ARGS);
static void exec_for(ctx *C, const node *n);
static jv *capture(ctx *C, const node *body);
static jv *apply_chain(ctx *C, const node *f, jv *v);
static void exec_node(ctx *C, const node *n);

static jv *lookup(ctx *C, frame *f, const char *name) {
    for (; f; f = f->parent) {
        jv *v = jj_d_get_s(f->vars, name);
        if (v) return v;
    }
    size_t n = strlen(name) + 32;
    char *s = jj_ar_alloc(C->a, n);
    snprintf(s, n, "'%s' is undefined", name);
    return jj_v_undef(C, s);
}

static argv_ eval_args(ctx *C, const node *n) {
    argv_ a = {0};
    a.nargs = n->n;
    a.nkw = n->n2;
    a.args = jj_ar_alloc(C->a, sizeof(jv *) * (size_t)(n->n + 1));
    a.kwv = jj_ar_alloc(C->a, sizeof(jv *) * (size_t)(n->n2 + 1));
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
        r = jj_v_list(C);
        if (n->kind == N_TUPLE) r->flags = F_TUPLE;
        for (int i = 0; i < n->n; i++) jj_l_push(C, r, eval(C, n->list[i]));
        break;
    case N_DICT:
        r = jj_v_dict(C);
        for (int i = 0; i < n->n; i++) {
            jv *k = eval(C, n->list[i]);
            jj_d_set(C, r, k, eval(C, n->list2[i]));
        }
        break;
    case N_ATTR: {
        jv *o = eval(C, n->a);
        C->line = n->line;
        r = jj_get_attr(C, o, n->s);
        break;
    }
    case N_ITEM: {
        jv *o = eval(C, n->a);
        jv *k = eval(C, n->b);
        C->line = n->line;
        r = jj_get_item(C, o, k);
        break;
    }
    case N_SLICE: {
        jv *o = eval(C, n->a);
        jv *p[3];
        for (int i = 0; i < 3; i++) p[i] = n->list[i] ? eval(C, n->list[i]) : NULL;
        C->line = n->line;
        r = jj_v_slice(C, o, p[0], p[1], p[2]);
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
        r = jj_apply_filter(C, n->s, v, a.args, a.nargs, a.kwn, a.kwv, a.nkw);
        break;
    }
    case N_TEST: {
        jv *v = eval(C, n->a);
        argv_ a = eval_args(C, n);
        C->line = n->line;
        r = jj_apply_test(C, n->s, v, a.args, a.nargs);
        if (n->op) r = jj_v_bool(!r->u.b);
        break;
    }
    case N_BIN: {
        jv *a = eval(C, n->a);
        jv *b = eval(C, n->b);
        C->line = n->line;
        switch (n->op) {
        case OP_EQ: r = jj_v_bool(jj_v_eq(a, b)); break;
        case OP_NE: r = jj_v_bool(!jj_v_eq(a, b)); break;
        case OP_LT: r = jj_v_bool(jj_v_cmp(C, a, b) < 0); break;
        case OP_LE: r = jj_v_bool(jj_v_cmp(C, a, b) <= 0); break;
        case OP_GT: r = jj_v_bool(jj_v_cmp(C, a, b) > 0); break;
        case OP_GE: r = jj_v_bool(jj_v_cmp(C, a, b) >= 0); break;
        case OP_IN: r = jj_v_bool(jj_contains(C, b, a)); break;
        case OP_NOTIN: r = jj_v_bool(!jj_contains(C, b, a)); break;
        default: r = jj_arith(C, n->op, a, b);
        }
        break;
    }
    case N_NOT: r = jj_v_bool(!jj_truthy(eval(C, n->a))); break;
    case N_NEG:
    case N_POS: {
        jv *a = eval(C, n->a);
        C->line = n->line;
        if (a->t == JV_UNDEF) jj_undef_error(C, a);
        if (!jj_is_num(a)) ERR(C, "template line %d: bad operand type for unary %c: '%s'", n->line, n->kind == N_NEG ? '-' : '+', jj_type_name(a));
        if (n->kind == N_POS) r = a->t == JV_BOOL ? jj_v_int(C, a->u.b) : a;
        else if (a->t == JV_FLOAT) r = jj_v_float(C, -a->u.f);
        else {
            if (jj_num_i(a) == INT64_MIN) ERR(C, "template line %d: integer overflow", n->line);
            r = jj_v_int(C, -jj_num_i(a));
        }
        break;
    }
    case N_AND: {
        jv *a = eval(C, n->a);
        r = jj_truthy(a) ? eval(C, n->b) : a;
        break;
    }
    case N_OR: {
        jv *a = eval(C, n->a);
        r = jj_truthy(a) ? a : eval(C, n->b);
        break;
    }
    case N_COND:
        if (jj_truthy(eval(C, n->a))) r = eval(C, n->b);
        else r = n->c ? eval(C, n->c) : jj_v_undef(C, "the else branch of an inline if is undefined");
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
    frame *f = jj_ar_zalloc(C->a, sizeof *f);
    f->parent = m->flags & F_CALLER ? (frame *)m->env : C->root;
    f->vars = jj_v_dict(C);
    C->f = f;
    if (caller) jj_d_set_s(C, f->vars, "caller", caller);
    for (int i = 0; i < mac->nnames; i++) {
        jv *v = NULL;
        if (i < nargs) v = args[i];
        for (int k = 0; k < nkw; k++)
            if (!strcmp(kwn[k], mac->names[i])) {
                if (v && i < nargs) ERR(C, "template line %d: macro '%s' got multiple values for argument '%s'", C->line, mac->s, kwn[k]);
                v = kwv[k];
            }
        if (!v) v = i < mac->n2 && mac->list2[i] ? eval(C, mac->list2[i]) : jj_v_undef(C, "a macro argument is undefined");
        jj_d_set_s(C, f->vars, mac->names[i], v);
    }
    for (int k = 0; k < nkw; k++) {
        int ok = 0;
        for (int i = 0; i < mac->nnames; i++) ok |= !strcmp(kwn[k], mac->names[i]);
        if (!ok) ERR(C, "template line %d: macro '%s' has no argument '%s'", C->line, mname, kwn[k]);
    }
    sbuf out, *saved_out = C->out;
    jj_sb_init(&out, C->a);
    C->out = &out;
    int saved_ctl = C->loopctl;
    exec_body(C, mac->b);
    C->loopctl = saved_ctl;
    C->out = saved_out;
    C->f = saved;
    return jj_v_sbuf(C, &out);
}

static jv *call_value(ctx *C, jv *f, jv **args, int nargs, const char **kwn, jv **kwv, int nkw) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: calls nested too deeply (recursive macro?)", C->line);
    jv *r = NULL;
    if (f->t == JV_FUNC) r = f->u.fn.fn(C, f->u.fn.self, args, nargs, kwn, kwv, nkw);
    else if (f->t == JV_MACRO) r = call_macro(C, f, args, nargs, kwn, kwv, nkw);
    else if (f->t == JV_UNDEF) jj_undef_error(C, f);
    else ERR(C, "template line %d: '%s' object is not callable", C->line, jj_type_name(f));
    C->depth--;
    return r;
}

static jv *g_raise(FN_ARGS) {
    (void)self; (void)kwn; (void)kwv; (void)nkw;
    sbuf b;
    jj_sb_init(&b, C->a);
    if (nargs > 0) jj_v_str_into(C, &b, args[0]);
    ERR(C, "raise_exception: %s", b.p ? b.p : "");
}

static jv *g_namespace(FN_ARGS) {
    (void)self;
    jv *d = jj_v_dict(C);
    d->flags = F_NS;
    for (int i = 0; i < nargs; i++) { /* namespace(dict) */
        if (args[i]->t != JV_DICT) ERR(C, "template line %d: namespace() positional argument must be a dict", C->line);
        for (int k = 0; k < args[i]->u.d.n; k++) jj_d_set(C, d, args[i]->u.d.k[k], args[i]->u.d.v[k]);
    }
    for (int i = 0; i < nkw; i++) jj_d_set_s(C, d, kwn[i], kwv[i]);
    return d;
}

static jv *g_dict(FN_ARGS) {
    jv *d = g_namespace(C, self, args, nargs, kwn, kwv, nkw);
    d->flags = 0;
    return d;
}

static jv *g_range(FN_ARGS) {
    (void)self; (void)kwn; (void)kwv;
    jj_want_args(C, "range", nargs, nkw, 1, 3);
    int64_t a = 0, b, st = 1;
    if (nargs == 1) b = jj_want_int(C, args[0], "range argument");
    else {
        a = jj_want_int(C, args[0], "range argument");
        b = jj_want_int(C, args[1], "range argument");
        if (nargs > 2) st = jj_want_int(C, args[2], "range argument");
    }
    if (st == 0) ERR(C, "template line %d: range() arg 3 must not be zero", C->line);
    jv *l = jj_v_list(C);
    for (int64_t i = a; st > 0 ? i < b : i > b; i += st) {
        if (l->u.l.n >= 1000000) ERR(C, "template line %d: range too large", C->line);
        jj_l_push(C, l, jj_v_int(C, i));
    }
    return l;
}

static jv *g_strftime_now(FN_ARGS) {
    (void)self; (void)kwn; (void)kwv;
    jj_want_args(C, "strftime_now", nargs, nkw, 1, 1);
    jj_want_str(C, args[0], "strftime_now format");
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
    return jj_v_strn(C, out, k);
}

static void add_global(ctx *C, jv *vars, const char *name, builtin_fn fn) {
    jv *f = jj_v_new(C, JV_FUNC);
    f->u.fn.fn = fn;
    f->u.fn.name = name;
    jj_d_set_s(C, vars, name, f);
}

/* ---------------------------------------------------------------- statements */

static void assign(ctx *C, const node *target, jv *v) {
    if (target->kind == N_NAME) {
        jj_d_set_s(C, C->f->vars, target->s, v);
    } else if (target->kind == N_ATTR) {
        jv *obj = eval(C, target->a);
        if (obj->t != JV_DICT || !(obj->flags & F_NS))
            ERR(C, "template line %d: cannot assign attribute on non-namespace object", target->line);
        jj_d_set_s(C, obj, target->s, v);
    } else { /* tuple of names */
        jv *l = jj_iter_list(C, v);
        if (l->u.l.n != target->nnames)
            ERR(C, "template line %d: cannot unpack %d values into %d names", target->line, l->u.l.n, target->nnames);
        for (int i = 0; i < target->nnames; i++) jj_d_set_s(C, C->f->vars, target->names[i], l->u.l.v[i]);
    }
}

static void exec_body(ctx *C, const node *b) {
    for (int i = 0; i < b->n && !C->loopctl; i++) exec_node(C, b->list[i]);
}

static jv *m_cycle(FN_ARGS) {
    (void)kwn; (void)kwv;
    jj_want_args(C, "loop.cycle", nargs, nkw, 1, 1 << 20);
    return args[jj_d_get_s(self, "index0")->u.i % nargs];
}

static void exec_for(ctx *C, const node *n) {
    jv *seq = eval(C, n->a);
    C->line = n->line;
    jv *items = jj_iter_list(C, seq);
    frame *outer = C->f;
    if (n->b) { /* loop filter: evaluated with the loop variable bound */
        jv *kept = jj_v_list(C);
        for (int i = 0; i < items->u.l.n; i++) {
            frame *f = jj_ar_zalloc(C->a, sizeof *f);
            f->parent = outer;
            f->vars = jj_v_dict(C);
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
            int ok = jj_truthy(eval(C, n->b));
            C->f = outer;
            if (ok) jj_l_push(C, kept, items->u.l.v[i]);
        }
        items = kept;
    }
    int len = items->u.l.n;
    for (int i = 0; i < len; i++) {
        if (++C->steps > STEP_LIMIT) ERR(C, "template line %d: template runs too long (more than %lld steps)", n->line, STEP_LIMIT);
        frame *f = jj_ar_zalloc(C->a, sizeof *f);
        f->parent = outer;
        f->vars = jj_v_dict(C);
        C->f = f;
        jv *loop = jj_v_dict(C);
        jj_d_set_s(C, loop, "index", jj_v_int(C, i + 1));
        jj_d_set_s(C, loop, "index0", jj_v_int(C, i));
        jj_d_set_s(C, loop, "revindex", jj_v_int(C, len - i));
        jj_d_set_s(C, loop, "revindex0", jj_v_int(C, len - i - 1));
        jj_d_set_s(C, loop, "first", jj_v_bool(i == 0));
        jj_d_set_s(C, loop, "last", jj_v_bool(i == len - 1));
        jj_d_set_s(C, loop, "length", jj_v_int(C, len));
        jj_d_set_s(C, loop, "depth", jj_v_int(C, 1));
        jj_d_set_s(C, loop, "depth0", jj_v_int(C, 0));
        jv *cyc = jj_v_new(C, JV_FUNC);
        cyc->u.fn.fn = m_cycle;
        cyc->u.fn.self = loop;
        cyc->u.fn.name = "cycle";
        jj_d_set_s(C, loop, "cycle", cyc);
        if (i > 0) jj_d_set_s(C, loop, "previtem", items->u.l.v[i - 1]);
        if (i + 1 < len) jj_d_set_s(C, loop, "nextitem", items->u.l.v[i + 1]);
        jj_d_set_s(C, f->vars, "loop", loop);
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
    jj_sb_init(&out, C->a);
    C->out = &out;
    exec_body(C, body);
    C->out = saved;
    return jj_v_sbuf(C, &out);
}

/* apply a parsed filter chain (innermost operand NULL) to v */
static jv *apply_chain(ctx *C, const node *f, jv *v) {
    if (!f) return v;
    if (f->kind != N_FILTER) ERR(C, "template line %d: expected a filter", f->line);
    v = apply_chain(C, f->a, v);
    argv_ a = eval_args(C, f);
    return jj_apply_filter(C, f->s, v, a.args, a.nargs, a.kwn, a.kwv, a.nkw);
}

static void exec_node(ctx *C, const node *n) {
    if (++C->depth > MAX_DEPTH) ERR(C, "template line %d: statements nested too deeply", n->line);
    if (++C->steps > STEP_LIMIT) ERR(C, "template line %d: template runs too long (more than %lld steps)", n->line, STEP_LIMIT);
    C->line = n->line;
    switch (n->kind) {
    case N_BODY: exec_body(C, n); break;
    case N_DATA: jj_sb_put(C->out, n->s, (size_t)n->op); break;
    case N_OUTPUT: jj_v_str_into(C, C->out, eval(C, n->a)); break;
    case N_IF: {
        const node *x = n;
        while (x && x->kind == N_IF) {
            if (jj_truthy(eval(C, x->a))) {
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
        jv *m = jj_v_new(C, JV_MACRO);
        m->u.mac = n;
        jj_d_set_s(C, C->f->vars, n->s, m);
        break;
    }
    case N_BREAK: C->loopctl = 1; break;
    case N_CONTINUE: C->loopctl = 2; break;
    case N_FILTERBLOCK: {
        jv *v = apply_chain(C, n->c, capture(C, n->b));
        jj_v_str_into(C, C->out, v);
        break;
    }
    case N_CALLBLOCK: {
        jv *caller = jj_v_new(C, JV_MACRO);
        caller->flags = F_CALLER;
        caller->u.mac = n;
        caller->env = C->f;
        jv *f = eval(C, n->a->a);
        argv_ a = eval_args(C, n->a);
        C->line = n->line;
        if (f->t != JV_MACRO) ERR(C, "template line %d: {%% call %%} needs a macro", n->line);
        C->next_caller = caller;
        jj_v_str_into(C, C->out, call_value(C, f, a.args, a.nargs, a.kwn, a.kwv, a.nkw));
        break;
    }
    case N_WITH: {
        frame *f = jj_ar_zalloc(C->a, sizeof *f);
        f->parent = C->f;
        f->vars = jj_v_dict(C);
        for (int i = 0; i < n->nnames; i++) jj_d_set_s(C, f->vars, n->names[i], eval(C, n->list2[i]));
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
        jj_ar_free(&a);
        return NULL;
    }
    frame *g = jj_ar_zalloc(&a, sizeof *g);
    g->vars = jj_v_dict(C);
    add_global(C, g->vars, "raise_exception", g_raise);
    add_global(C, g->vars, "namespace", g_namespace);
    add_global(C, g->vars, "dict", g_dict);
    add_global(C, g->vars, "range", g_range);
    add_global(C, g->vars, "strftime_now", g_strftime_now);
    frame *root = jj_ar_zalloc(&a, sizeof *root);
    root->parent = g;
    root->vars = vars ? jj_from_cjson(C, vars) : jj_v_dict(C);
    C->globals = g;
    C->root = root;
    C->f = root;
    sbuf out;
    jj_sb_init(&out, &a);
    C->out = &out;
    exec_body(C, t->root);
    char *res = pika_malloc(out.n + 1);
    if (out.n) memcpy(res, out.p, out.n);
    res[out.n] = 0;
    if (len_out) *len_out = out.n;
    jj_ar_free(&a);
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
