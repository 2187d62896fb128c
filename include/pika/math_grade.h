/* math_grade.h — math answer extraction from model text and answer equivalence.
 *
 * Extraction (pika_math_extract): text inside <think>...</think> is never graded (an unclosed <think>
 * has no answer); then, first rule that matches wins:
 *   1. the last \boxed{...} / \fbox{...} (nested braces), or "\boxed 5"; several boxes on that line
 *      joined only by separators ("$\boxed{2}$ and $\boxed{3}$") form a list "2, 3";
 *   2. GSM8K "#### N" (the rest of that line);
 *   3. "The answer is ..." / "Final answer: ..." / "**Answer:** ..." / "The solutions are ..." (last one;
 *      inline $...$ / \(...\) unwrapped, several "$3$ or $5$" form a list);
 *   4. with mcq: a lone choice letter "(C)" / "C" in the answer, or the last "(C)" in the text;
 *   5. with number_fallback: the last number in the text (1,000 / -2.5 / 3/4).
 * Equivalence (pika_math_equiv): MATH string normalisation first (\dfrac/\tfrac→\frac, \left/\right,
 * units \text{..}, degrees, \%, \$, spaces, \frac12, a/b); if the strings differ, real mathematics:
 * exact rationals (0.5 = \frac12 = 2/4 = 50\% of 1), thousands separators, scientific notation,
 * \sqrt, \pi, complex numbers (i), base subscripts (by digits), expressions compared numerically at
 * several points; equations side by side or as non-zero multiples (y = 2x+1 vs 2x - y + 1 = 0);
 * labelled answers "x = 3", "\frac{AB}{CD} = 2/3", "(a,b) = (1,4)" vs the value (a numeric left side
 * is not a label); relations as intervals (-1 \le x \le 4 = [-1,4], x > 3 = (3,\infty)); tuples and
 * intervals (ordered, bracket types must match); sets \{..\}, bare lists "1, 2", lists in words
 * "3 or 5", solution lists "a=1, b=4; a=2, b=3" (unordered, matched by sorted canonical keys); unions
 * \cup, \pm, matrices. A malformed answer (unbalanced, ragged matrix, nested deeper than
 * PIKA_MATH_MAX_NEST) is never equivalent, not even to itself.
 */
#ifndef PIKA_MATH_GRADE_H
#define PIKA_MATH_GRADE_H

/* Grading policies. Every new field's default is 0, so a zero-initialised struct with
 * number_fallback set behaves like pika_extract_opts_default(). */
enum { PIKA_DEG_DROP = 0,   /* 48^\circ = 48 (MATH convention; default) */
       PIKA_DEG_STRICT = 1, /* the degree mark must be on both sides or on neither */
       PIKA_DEG_RADIANS = 2 /* x^\circ is x*pi/180: 45^\circ = \frac{\pi}{4}, != 45 */ };
enum { PIKA_PCT_LENIENT = 0, /* 50\% = 50 = 0.5 (default) */
       PIKA_PCT_DROP = 1,    /* 50\% = 50 only (MATH convention) */
       PIKA_PCT_VALUE = 2    /* 50\% = 0.5 only */ };
enum { PIKA_UNITS_DROP = 0,  /* trailing \text{ cm}, "5 cm" are dropped (default) */
       PIKA_UNITS_STRICT = 1 /* units must agree: 5\text{ cm} = 5 cm, but != 5 */ };
enum { PIKA_MODE_FULL = 0,      /* pika's grader (default) */
       PIKA_MODE_HENDRYCKS = 1  /* only the MATH baseline: last \boxed{} + is_equiv(strip_string) */ };

typedef struct {
    int number_fallback; /* 1: use the last number when nothing else matched (default 1) */
    int mcq;             /* 1: multiple-choice, answers are letters A-J (default 0) */
    int degrees;         /* PIKA_DEG_* (default PIKA_DEG_DROP) */
    int percent;         /* PIKA_PCT_* (default PIKA_PCT_LENIENT) */
    int units;           /* PIKA_UNITS_* (default PIKA_UNITS_DROP) */
    int mode;            /* PIKA_MODE_* (default PIKA_MODE_FULL) */
} pika_extract_opts;

/* Outcome of a comparison. Only PIKA_MATH_EQUIV counts as equivalent. */
typedef enum {
    PIKA_MATH_NOT_EQUIV = 0,
    PIKA_MATH_EQUIV = 1,
    PIKA_MATH_MALFORMED = 2, /* unbalanced braces / \begin..\end, empty answer */
    PIKA_MATH_TOO_DEEP = 3   /* brackets nested deeper than PIKA_MATH_MAX_NEST */
} pika_math_status;
#define PIKA_MATH_MAX_NEST 64

/* Compare with a reason (pika_last_error() says why for MALFORMED / TOO_DEEP). Linear time and memory
 * in the input apart from the expression comparison, which works on bounded-size trees. */
pika_math_status pika_math_compare(const char *pred_answer, const char *gold_answer, const pika_extract_opts *o);
const char *pika_math_status_name(pika_math_status s);

/* The MATH baseline (Hendrycks et al.): strip_string (NULL where the Python raises) and is_equiv. */
char *pika_math_hendrycks_strip(const char *answer);
int pika_math_hendrycks_equiv(const char *a, const char *b);
/* The baseline's extraction: the content of the last "\boxed{...}"/"\fbox{...}" (last_boxed_only_string
 * + remove_boxed), or NULL. */
char *pika_math_hendrycks_extract(const char *text);

/* Number of pairwise sub-answer comparisons made by this thread so far (a work counter for tests). */
unsigned long long pika_math_work_count(void);

void pika_extract_opts_default(pika_extract_opts *o);

/* Content of the last \boxed{}/\fbox{} in text (malloc'ed), or NULL. */
char *pika_math_last_boxed(const char *text);
/* The answer in a model's text (malloc'ed), or NULL when none is found. */
char *pika_math_extract(const char *text, const pika_extract_opts *o);

/* MATH-style string normalisation of an answer (malloc'ed; never NULL). */
char *pika_math_normalize(const char *answer);

/* 1 if the two answers are mathematically equivalent, else 0. */
int pika_math_equiv(const char *pred_answer, const char *gold_answer);
/* Same, comparing letters case-insensitively when mcq. */
int pika_math_equiv_opts(const char *pred_answer, const char *gold_answer, const pika_extract_opts *o);

/* Grade a model's text against a gold answer: extraction (if the text has no recognisable answer
 * marker and is short, the whole text is the answer) then equivalence. Returns 1/0; *answer_out (if
 * non-NULL) receives the extracted answer (malloc'ed, may be NULL). */
int pika_math_grade(const char *text, const char *gold, const pika_extract_opts *o, char **answer_out);

#endif
