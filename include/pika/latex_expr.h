/* latex_expr.h — a small parser and evaluator for LaTeX math expressions, used by the math grader.
 *
 * Grammar (precedence low → high): + -  |  * / \cdot \times \div and implicit multiplication  |
 * unary -  |  ^ (right-assoc; x^\circ = x*pi/180)  |  postfix !  |  atoms: numbers (1, 0.5,
 * .5, 1e-3, base subscripts 1011_2, repeating decimals 0.1\overline{6}), single-letter variables (optional subscript x_1, x_{12}) except e (Euler's
 * number; e_1 is a variable), Greek letters, \pi, \infty,
 * \frac{a}{b} \dfrac \tfrac \cfrac \frac12, \sqrt{x} \sqrt[n]{x} \sqrt2, \binom{n}{k}, |x|, \lfloor \rceil,
 * \sin \cos \tan \sec \csc \cot \ln \log \log_b \exp, groups ( ) [ ] { }. A whole-number literal
 * followed by \frac{int}{int} is a mixed number (2\frac{1}{2} = 5/2).
 *
 * Bounded: recursion depth 200, at most 20,000 nodes and a tree height of 1,000 (1+1+...+1, x!!!!,
 * 2^{----1} chains are refused), so parsing and evaluation use bounded stack on any input.
 *
 * Values are exact rationals (int64/int64, reduced) while they fit, doubles otherwise. Variables get
 * deterministic pseudo-random values per evaluation point, derived from their name, so two
 * expressions using the same names see the same values.
 */
#ifndef PIKA_LATEX_EXPR_H
#define PIKA_LATEX_EXPR_H

#include <stdint.h>

typedef struct {
    int exact;     /* 1: value = num/den exactly (den > 0, reduced); 0: value = v */
    int64_t num, den;
    double v;      /* always set (approximation when exact) */
} pika_num;

typedef struct pika_expr pika_expr;

/* Parse a LaTeX expression. NULL + error (pika_last_error) when the text is not a well-formed
 * expression (text words, unknown commands, unbalanced groups, empty input). */
pika_expr *pika_expr_parse(const char *latex);
void pika_expr_free(pika_expr *e);

/* Number of distinct variables, and the name of variable i. */
int pika_expr_nvars(const pika_expr *e);
const char *pika_expr_var(const pika_expr *e, int i);

/* Evaluate at evaluation point `point` (0, 1, ...; variables take the values of that point).
 * Returns 0, or -1 on a domain error (division by zero, even root of a negative, ...). */
int pika_expr_eval(const pika_expr *e, int point, pika_num *out);

/* Evaluate over the complex numbers, the variable named `imag` (e.g. "i") being the imaginary unit and the
 * others real as in pika_expr_eval (principal branches for roots, logs and non-integer powers; floor, factorial
 * and the like need real arguments). Returns 0, or -1 on a domain error. */
int pika_expr_eval_complex(const pika_expr *e, int point, const char *imag, double *re, double *im);

/* The value variable `name` takes at `point` (in [-3, 3] excluding a neighbourhood of 0, non-integer). */
double pika_expr_var_value(const char *name, int point);

/* Number helpers. */
pika_num pika_num_int(int64_t v);
pika_num pika_num_ratio(int64_t num, int64_t den); /* den != 0 */
pika_num pika_num_double(double v);
/* 1 if a == b: exactly when both exact, else |a-b| <= rel_tol * max(|a|, |b|) + 1e-14 (infinities
 * equal when same sign). */
int pika_num_equal(pika_num a, pika_num b, double rel_tol);

#endif
