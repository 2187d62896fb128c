/* mathtask.h — the synthetic integer-arithmetic task pika's own model pool is trained on, and the
 * small SentencePiece-style vocabulary those models use.
 *
 * A problem is a sum of signed terms; a term is a number or a product "a * b" with b one digit.
 * Independent difficulty factors (each sampled on its own):
 *   n_digits    1..3   digits of the largest operand
 *   n_ops       1..3   number of operations (+, -, *)
 *   has_mul     0/1    whether one term is a product
 *   word        0/1    bare expression ("What is 12 + 5?") or word problem ("Ann has 12 apples. ...")
 *   distractor  0..2   none / an irrelevant sentence / an irrelevant sentence with a number in it
 * Derived: n_carries (column carries and borrows done evaluating left to right), answer_digits.
 * human_rating (1..5) is what a person would call hard: carries and borrows, number of steps,
 * multiplication and a negative result. It deliberately ignores operand length as such ("300 + 200"
 * is easy for a person), the distractor and the word framing; the pool's small models, in contrast,
 * fail mainly on long operands (models/pool/README.md gives the numbers).
 *
 * Splits: a problem belongs to the test split iff a hash of its question text is 0 mod 8, so the
 * train and test splits never share a question. Problem i of a split is a pure function of
 * (seed, split, i).
 *
 * Prompt template (chat-like, EOI suffix "[/INST]"):  "[INST]" question "[/INST]"
 * The model answers with the digits of the integer (a leading '-' when negative) and then </s>.
 */
#ifndef PIKA_MATHTASK_H
#define PIKA_MATHTASK_H

#include <stddef.h>
#include <stdint.h>

#define PIKA_MATH_EOI "[/INST]"
#define PIKA_MATH_BOI "[INST]"

enum { PIKA_MATH_TRAIN = 0, PIKA_MATH_TEST = 1 };

typedef struct {
    int n_digits, n_ops, has_mul, word, distractor; /* sampled factors */
    int n_carries;     /* carries + borrows (+ carries of the one-digit product) */
    int answer_digits; /* digits of |answer| */
    int human_rating;  /* 1 (trivial) .. 5 (hard), see above */
    long long answer;
    char question[320]; /* the user's text, without template */
} pika_math_problem;

/* Problem `index` of split (PIKA_MATH_TRAIN / PIKA_MATH_TEST) for a task seed. */
void pika_math_problem_at(uint64_t seed, int split, int64_t index, pika_math_problem *p);

/* Template: "[INST]<question>[/INST]". Returns length (snprintf semantics). */
int pika_math_prompt(const pika_math_problem *p, char *buf, size_t cap);

/* The answer text the model is trained to produce ("-42"). Returns length. */
int pika_math_answer_text(long long answer, char *buf, size_t cap);

/* Simple grader: 1 if the first integer in text (optional '-', digits; spaces before it skipped)
 * equals answer, else 0. pika's general grader (math_grade.h) agrees on the task's answers. */
int pika_math_check(const char *text, long long answer);

/* ------------------------------------------------------------ vocabulary */

/* The task's vocabulary, SentencePiece-style (tokenizer.ggml.model "llama"):
 *   0 <unk>, 1 <s> (BOS), 2 </s> (EOS), 3 "[INST]", 4 "[/INST]" (control tokens),
 *   5..260 byte-fallback tokens <0x00>..<0xFF>, then single characters ("▁", digits, letters,
 *   punctuation), then every "▁"-prefixed prefix of the task's words (a prefix-closed set, so the
 *   SPM merge chain reaches each whole word). Any text encodes. */
typedef struct {
    int n;
    char **text;     /* [n] token texts */
    float *scores;   /* [n] */
    int32_t *types;  /* [n] llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte */
    int32_t *hash;   /* internal: open-addressing text -> id, hcap slots, -1 empty */
    int hcap;
} pika_math_vocab;

enum { PIKA_MATH_UNK = 0, PIKA_MATH_BOS = 1, PIKA_MATH_EOS = 2, PIKA_MATH_TOK_BOI = 3, PIKA_MATH_TOK_EOI = 4 };

pika_math_vocab *pika_math_vocab_new(void);
void pika_math_vocab_free(pika_math_vocab *v);

/* Encode a prompt exactly as pika_tokenize(add_special=true, parse_special=true) does with this
 * vocabulary stored in a GGUF (BOS, control tokens matched, "▁" space prefix after each control
 * token, SPM merges, byte fallback). Returns count, ids in *ids (malloc'ed). */
int pika_math_encode(const pika_math_vocab *v, const char *text, int32_t **ids);
/* Id of the digit d (0..9) and of "-". */
int32_t pika_math_digit_id(const pika_math_vocab *v, int d);
int32_t pika_math_minus_id(const pika_math_vocab *v);

/* Full training sequence: encode(prompt) ++ answer tokens ++ EOS. *n_prompt receives the prompt
 * length (targets are the tokens after it). Returns total length, ids malloc'ed. */
int pika_math_sequence(const pika_math_vocab *v, const pika_math_problem *p, int32_t **ids, int *n_prompt);

#endif
