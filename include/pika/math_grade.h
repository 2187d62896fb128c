/* math_grade.h — math answer extraction from model text and answer equivalence.
 *
 * Extraction (pika_math_extract), first rule that matches wins:
 *   1. the last \boxed{...} / \fbox{...} (nested braces), or "\boxed 5";
 *   2. GSM8K "#### N" (the rest of that line);
 *   3. "The answer is ..." / "Final answer: ..." (last one; inline $...$ unwrapped);
 *   4. with mcq: a lone choice letter "(C)" / "C" in the answer, or the last "(C)" in the text;
 *   5. with number_fallback: the last number in the text (1,000 / -2.5 / 3/4).
 * Equivalence (pika_math_equiv): MATH string normalisation first (\dfrac/\tfrac→\frac, \left/\right,
 * units \text{..}, degrees, \%, \$, spaces, \frac12, a/b); if the strings differ, real mathematics:
 * exact rationals (0.5 = \frac12 = 2/4 = 50\% of 1), thousands separators, scientific notation,
 * \sqrt, \pi, expressions compared numerically at several points, "x=3" vs "3", tuples and intervals
 * (ordered, bracket types must match), sets \{..\} and bare lists "1, 2" (unordered), unions \cup,
 * \pm, matrices. A parse failure is never "equivalent".
 */
#ifndef PIKA_MATH_GRADE_H
#define PIKA_MATH_GRADE_H

typedef struct {
    int number_fallback; /* 1: use the last number when nothing else matched (default 1) */
    int mcq;             /* 1: multiple-choice, answers are letters A-J (default 0) */
} pika_extract_opts;

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
