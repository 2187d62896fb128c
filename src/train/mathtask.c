/* mathtask.c — owns the synthetic arithmetic task of pika's model pool: problem generation
 * (difficulty factors, exact answers, human-style rating), the chat template, a simple integer
 * answer check, and the task's SentencePiece-style vocabulary with an encoder that matches
 * pika_tokenize on it (see mathtask.h).
 */
#include "pika/mathtask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/util.h"

/* ---------------------------------------------------------------- random */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rnd(uint64_t *s, int n) { return (int)(splitmix(s) % (uint64_t)n); }

/* index from cumulative weights in percent */
static int pick(uint64_t *s, const int *pct, int n) {
    int r = rnd(s, 100), acc = 0;
    for (int i = 0; i < n; i++) {
        acc += pct[i];
        if (r < acc) return i;
    }
    return n - 1;
}

static uint64_t fnv(const char *s) { return pika_hash_str(s); }

/* ---------------------------------------------------------------- generation */

static long long num_with_digits(uint64_t *s, int d) {
    static const long long lo[] = {0, 1, 10, 100, 1000};
    if (d == 1) return 1 + rnd(s, 9);
    return lo[d] + rnd(s, (int)(lo[d + 1 > 4 ? 4 : d + 1] - lo[d]));
}

static int count_add_carries(long long a, long long b) {
    int c = 0, n = 0;
    while (a || b) {
        int s = (int)(a % 10 + b % 10) + c;
        c = s >= 10;
        n += c;
        a /= 10; b /= 10;
    }
    return n;
}

static int count_sub_borrows(long long a, long long b) { /* a >= b >= 0 */
    int br = 0, n = 0;
    while (a || b) {
        int d = (int)(a % 10 - b % 10) - br;
        br = d < 0;
        n += br;
        a /= 10; b /= 10;
    }
    return n;
}

static int count_mul_carries(long long a, int b) {
    int c = 0, n = 0;
    while (a) {
        int s = (int)(a % 10) * b + c;
        c = s / 10;
        n += c > 0;
        a /= 10;
    }
    return n;
}

static int n_digits_of(long long x) {
    if (x < 0) x = -x;
    int d = 1;
    while (x >= 10) { x /= 10; d++; }
    return d;
}

static const char *names[] = {"Ann", "Bob", "Tom", "Sue", "Max", "Eva"};
static const int name_she[] = {1, 0, 0, 1, 0, 1};
static const char *items[] = {"apples", "coins", "books", "pens", "cards", "eggs"};
static const char *plain_distractors[] = {"The sky is blue.", "The dog is happy.", "It is a sunny day."};

/* One attempt; the caller retries until the problem lands in the wanted split. */
static void generate(uint64_t *s, pika_math_problem *p) {
    static const int pct_digits[] = {50, 35, 15}, pct_ops[] = {60, 30, 10}, pct_dis[] = {60, 20, 20};
    memset(p, 0, sizeof *p);
    p->n_digits = 1 + pick(s, pct_digits, 3);
    p->n_ops = 1 + pick(s, pct_ops, 3);
    p->has_mul = rnd(s, 100) < 15;
    p->word = rnd(s, 100) < 35;
    p->distractor = pick(s, pct_dis, 3);

    /* terms: n_ops + 1 numbers, or n_ops numbers when one term is a product */
    int n_terms = p->has_mul ? p->n_ops : p->n_ops + 1;
    long long val[4];
    int sign[4];
    int big = rnd(s, n_terms); /* which term gets exactly n_digits digits */
    for (int i = 0; i < n_terms; i++) {
        int d = i == big ? p->n_digits : 1 + rnd(s, p->n_digits);
        val[i] = num_with_digits(s, d);
        sign[i] = i == 0 ? 1 : (rnd(s, 2) ? 1 : -1);
    }
    int mul_term = -1, mul_b = 0;
    long long mul_a = 0;
    if (p->has_mul) {
        mul_term = p->word ? 0 : rnd(s, n_terms);
        int d = p->n_digits > 2 ? 2 : p->n_digits;
        mul_a = num_with_digits(s, 1 + rnd(s, d));
        mul_b = 2 + rnd(s, 8);
        val[mul_term] = mul_a * mul_b;
        p->n_carries += count_mul_carries(mul_a, mul_b);
    }
    /* evaluate left to right, counting carries / borrows; word problems never go below 0 */
    long long r = val[0];
    for (int i = 1; i < n_terms; i++) {
        if (p->word && sign[i] < 0 && val[i] > r) sign[i] = 1;
        long long t = sign[i] * val[i];
        if ((r >= 0) == (t >= 0)) p->n_carries += count_add_carries(r < 0 ? -r : r, t < 0 ? -t : t);
        else {
            long long a = r < 0 ? -r : r, b = t < 0 ? -t : t;
            p->n_carries += a >= b ? count_sub_borrows(a, b) : count_sub_borrows(b, a);
        }
        r += t;
    }
    p->answer = r;
    p->answer_digits = n_digits_of(r);
    /* a person's view: carrying, steps, multiplication and negative results are work; long
     * operands without carries ("300 + 200") and the text around the numbers are not */
    double score = 0.75 * (p->n_carries > 4 ? 4 : p->n_carries) + 0.75 * (p->n_ops - 1) + 1.5 * p->has_mul +
                   0.5 * (r < 0);
    int hr = 1 + (int)(score + 0.5);
    p->human_rating = hr > 5 ? 5 : hr;

    /* render */
    char dis[96] = "";
    int who = rnd(s, 6), item = rnd(s, 6), other = rnd(s, 6);
    while (name_she[other] == name_she[who]) other = (other + 1) % 6; /* never the same pronoun */
    if (p->distractor == 1) snprintf(dis, sizeof dis, "%s", plain_distractors[rnd(s, 3)]);
    else if (p->distractor == 2) {
        long long k = num_with_digits(s, 1 + rnd(s, p->n_digits));
        if (rnd(s, 2)) snprintf(dis, sizeof dis, "%s is %lld years old.", names[other], k);
        else snprintf(dis, sizeof dis, "%s has %lld cats.", names[other], k);
    }
    char *q = p->question;
    size_t cap = sizeof p->question, n = 0;
#define OUT(...) (n += (size_t)snprintf(q + n, n < cap ? cap - n : 0, __VA_ARGS__))
    if (!p->word) {
        if (dis[0]) OUT("%s ", dis);
        int what = rnd(s, 2);
        OUT("%s", what ? "What is " : "Compute ");
        for (int i = 0; i < n_terms; i++) {
            if (i) OUT(" %c ", sign[i] > 0 ? '+' : '-');
            if (i == mul_term) OUT("%lld * %d", mul_a, mul_b);
            else OUT("%lld", val[i]);
        }
        OUT("%s", what ? "?" : ".");
    } else {
        const char *pr = name_she[who] ? "She" : "He", *pl = name_she[who] ? "she" : "he";
        if (mul_term == 0) OUT("%s has %lld bags with %d %s each.", names[who], mul_a, mul_b, items[item]);
        else OUT("%s has %lld %s.", names[who], val[0], items[item]);
        if (dis[0]) OUT(" %s", dis);
        for (int i = 1; i < n_terms; i++) {
            int v = rnd(s, 2);
            if (sign[i] > 0) OUT(" %s %s %lld more.", pr, v ? "gets" : "finds", val[i]);
            else OUT(" %s %s %lld.", pr, v ? "gives away" : "loses", val[i]);
        }
        OUT(" How many %s does %s have now?", items[item], pl);
    }
#undef OUT
}

void pika_math_problem_at(uint64_t seed, int split, int64_t index, pika_math_problem *p) {
    uint64_t s = seed * 0x2545f4914f6cdd1dull ^ ((uint64_t)index * 0x9e3779b97f4a7c15ull) ^ (split ? 0x5bd1e995ull : 0);
    splitmix(&s);
    for (;;) {
        generate(&s, p);
        int is_test = fnv(p->question) % 8 == 0;
        if (is_test == (split == PIKA_MATH_TEST)) return;
    }
}

int pika_math_prompt(const pika_math_problem *p, char *buf, size_t cap) {
    return snprintf(buf, cap, "%s%s%s", PIKA_MATH_BOI, p->question, PIKA_MATH_EOI);
}

int pika_math_answer_text(long long answer, char *buf, size_t cap) { return snprintf(buf, cap, "%lld", answer); }

int pika_math_check(const char *text, long long answer) {
    if (!text) return 0;
    const char *s = text;
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    int neg = 0;
    if (*s == '-') { neg = 1; s++; }
    if (*s < '0' || *s > '9') return 0;
    long long v = 0;
    int nd = 0;
    while (*s >= '0' && *s <= '9') {
        if (++nd > 17) return 0;
        v = v * 10 + (*s++ - '0');
    }
    return (neg ? -v : v) == answer;
}

/* ---------------------------------------------------------------- vocabulary */

static const char *words[] = {"What", "is", "Compute", "Ann", "Bob", "Tom", "Sue", "Max", "Eva", "has", "have",
                              "apples", "coins", "books", "pens", "cards", "eggs", "bags", "with", "each", "She",
                              "He", "she", "he", "gets", "finds", "more", "gives", "away", "loses", "How", "many",
                              "does", "now", "years", "old", "The", "sky", "blue", "dog", "happy", "It", "a",
                              "sunny", "day", "cats", "+", "-", "*"};

static uint64_t fnvn(const char *s, size_t n) { return pika_hash_bytes(s, n, PIKA_HASH_SEED); }

static int vocab_find(const pika_math_vocab *v, const char *s, size_t n) {
    if (!v->hash) {
        for (int i = 0; i < v->n; i++)
            if (strlen(v->text[i]) == n && !memcmp(v->text[i], s, n)) return i;
        return -1;
    }
    for (uint64_t k = fnvn(s, n) & (uint64_t)(v->hcap - 1);; k = (k + 1) & (uint64_t)(v->hcap - 1)) {
        int32_t id = v->hash[k];
        if (id < 0) return -1;
        if (strlen(v->text[id]) == n && !memcmp(v->text[id], s, n)) return id;
    }
}

static void vocab_build_hash(pika_math_vocab *v) {
    v->hcap = 1;
    while (v->hcap < 4 * v->n) v->hcap *= 2;
    v->hash = pika_malloc(sizeof(int32_t) * (size_t)v->hcap);
    for (int i = 0; i < v->hcap; i++) v->hash[i] = -1;
    for (int id = 0; id < v->n; id++) {
        uint64_t k = fnvn(v->text[id], strlen(v->text[id])) & (uint64_t)(v->hcap - 1);
        while (v->hash[k] >= 0) k = (k + 1) & (uint64_t)(v->hcap - 1);
        v->hash[k] = id;
    }
}

static void vocab_add(pika_math_vocab *v, int *cap, const char *s, size_t n, int type, float score) {
    if (type == 1 && vocab_find(v, s, n) >= 0) return;
    if (v->n == *cap) {
        *cap *= 2;
        v->text = pika_realloc(v->text, sizeof(char *) * (size_t)*cap);
        v->scores = pika_realloc(v->scores, sizeof(float) * (size_t)*cap);
        v->types = pika_realloc(v->types, sizeof(int32_t) * (size_t)*cap);
    }
    v->text[v->n] = pika_strndup(s, n);
    v->scores[v->n] = score;
    v->types[v->n] = type;
    v->n++;
}

pika_math_vocab *pika_math_vocab_new(void) {
    pika_math_vocab *v = pika_calloc(1, sizeof *v);
    int cap = 64;
    v->text = pika_malloc(sizeof(char *) * (size_t)cap);
    v->scores = pika_malloc(sizeof(float) * (size_t)cap);
    v->types = pika_malloc(sizeof(int32_t) * (size_t)cap);
    vocab_add(v, &cap, "<unk>", 5, 2, 0);
    vocab_add(v, &cap, "<s>", 3, 3, 0);
    vocab_add(v, &cap, "</s>", 4, 3, 0);
    vocab_add(v, &cap, PIKA_MATH_BOI, strlen(PIKA_MATH_BOI), 3, 0);
    vocab_add(v, &cap, PIKA_MATH_EOI, strlen(PIKA_MATH_EOI), 3, 0);
    for (int b = 0; b < 256; b++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", b);
        vocab_add(v, &cap, t, 6, 6, 0);
    }
    float score = -1;
    vocab_add(v, &cap, "\xe2\x96\x81", 3, 1, score--);
    const char *chars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,?!+-*=()':";
    for (const char *c = chars; *c; c++) vocab_add(v, &cap, c, 1, 1, score--);
    char buf[64];
    for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
        size_t L = strlen(words[w]);
        memcpy(buf, "\xe2\x96\x81", 3);
        for (size_t k = 1; k <= L; k++) {
            memcpy(buf + 3, words[w], k);
            vocab_add(v, &cap, buf, 3 + k, 1, score--);
        }
    }
    vocab_build_hash(v);
    return v;
}

void pika_math_vocab_free(pika_math_vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) free(v->text[i]);
    free(v->text); free(v->scores); free(v->types); free(v->hash);
    free(v);
}

int32_t pika_math_digit_id(const pika_math_vocab *v, int d) {
    char c = (char)('0' + d);
    return vocab_find(v, &c, 1);
}

int32_t pika_math_minus_id(const pika_math_vocab *v) { return vocab_find(v, "-", 1); }

static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) return 2;
    if ((c & 0xf0) == 0xe0) return 3;
    if ((c & 0xf8) == 0xf0) return 4;
    return 1;
}

typedef struct {
    int32_t *a;
    int n, cap;
} ivec;

static void push(ivec *o, int32_t x) {
    if (o->n == o->cap) { o->cap = o->cap ? 2 * o->cap : 64; o->a = pika_realloc(o->a, sizeof(int32_t) * (size_t)o->cap); }
    o->a[o->n++] = x;
}

/* SPM on escaped text s[0..n): with this vocabulary's prefix-closed "▁word" set, the merges
 * reduce to: from each "▁", extend the token while the longer string is in the vocabulary;
 * every other character stays alone (or falls back to its bytes). */
static void spm_piece(const pika_math_vocab *v, const char *s, size_t n, ivec *o) {
    size_t i = 0;
    while (i < n) {
        size_t cl = (size_t)utf8_len((unsigned char)s[i]);
        if (cl > n - i) cl = n - i;
        size_t end = i + cl;
        if (cl == 3 && !memcmp(s + i, "\xe2\x96\x81", 3)) {
            while (end < n) {
                size_t nl = (size_t)utf8_len((unsigned char)s[end]);
                if (nl > n - end) nl = n - end;
                if (vocab_find(v, s + i, end + nl - i) < 0) break;
                end += nl;
            }
        }
        int id = vocab_find(v, s + i, end - i);
        if (id >= 0) push(o, id);
        else
            for (size_t k = i; k < end; k++) push(o, 5 + (unsigned char)s[k]);
        i = end;
    }
}

int pika_math_encode(const pika_math_vocab *v, const char *text, int32_t **ids) {
    ivec o = {0};
    push(&o, PIKA_MATH_BOS);
    int prev_special = 1;
    size_t len = strlen(text), i = 0;
    char *buf = pika_malloc(3 * len + 4);
    while (i < len) {
        /* next control token occurrence */
        size_t j = i;
        int sp = -1;
        for (; j < len; j++) {
            for (int t = PIKA_MATH_BOS; t <= PIKA_MATH_TOK_EOI; t++) {
                size_t tl = strlen(v->text[t]);
                if (tl <= len - j && !memcmp(text + j, v->text[t], tl)) { sp = t; break; }
            }
            if (sp >= 0) break;
        }
        if (j > i) {
            size_t m = 0;
            if (prev_special) { memcpy(buf, "\xe2\x96\x81", 3); m = 3; }
            for (size_t k = i; k < j; k++) {
                if (text[k] == ' ') { memcpy(buf + m, "\xe2\x96\x81", 3); m += 3; }
                else buf[m++] = text[k];
            }
            spm_piece(v, buf, m, &o);
            prev_special = 0;
        }
        if (sp >= 0) {
            push(&o, sp);
            prev_special = 1;
            i = j + strlen(v->text[sp]);
        } else i = j;
    }
    free(buf);
    *ids = o.a;
    return o.n;
}

int pika_math_sequence(const pika_math_vocab *v, const pika_math_problem *p, int32_t **ids, int *n_prompt) {
    char prompt[512], ans[32];
    pika_math_prompt(p, prompt, sizeof prompt);
    int n = pika_math_encode(v, prompt, ids);
    *n_prompt = n;
    int na = pika_math_answer_text(p->answer, ans, sizeof ans);
    *ids = pika_realloc(*ids, sizeof(int32_t) * (size_t)(n + na + 1));
    for (int k = 0; k < na; k++)
        (*ids)[n++] = ans[k] == '-' ? pika_math_minus_id(v) : pika_math_digit_id(v, ans[k] - '0');
    (*ids)[n++] = PIKA_MATH_EOS;
    return n;
}
