/* train.h — a small trainer for pika's llama architecture (the pool of models pika trains itself).
 *
 * Model (same maths as model.c's llama path): h0 = token_embd[tok]; per block
 *   x += Wo · attn(rope(Wq·rms(x)), rope(Wk·rms(x)), Wv·rms(x))   (causal, GQA: head h uses kv head
 *                                                                    h / (H/Hkv), RoPE adjacent pairs)
 *   x += Wd · (silu(Wg·rms(x)) ⊙ Wu·rms(x))
 * logits = output · rms(x) (output = token_embd when tied). Loss = mean cross-entropy over the
 * target positions of each sequence (the tokens after its prompt).
 * Everything is F32. Parameters live in one flat array; a weight matrix W with GGUF ne = [in, out]
 * is `out` rows of `in` floats (y = W·x), exactly the layout the GGUF file stores.
 *
 * Threads: the sequences of a batch are split into n_threads fixed contiguous chunks; each thread
 * runs forward + backward of its chunk with single-threaded OpenBLAS GEMMs into its own gradient
 * buffer, and the buffers are summed in thread order. So a run is bit-for-bit reproducible for a
 * given seed and thread count (not across thread counts).
 */
#ifndef PIKA_TRAIN_H
#define PIKA_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pika/mathtask.h"

typedef struct {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int n_ctx;        /* longest sequence (RoPE table size, written as context_length) */
    float rms_eps;    /* default 1e-5 */
    float rope_base;  /* default 10000 */
    int tied;         /* 1: no output.weight, logits use token_embd */
} pika_lm_config;

typedef struct pika_lm pika_lm;

/* Random init (N(0, 1/fan_in) matrices, output projections / sqrt(2L), norms = 1) from seed. */
pika_lm *pika_lm_new(const pika_lm_config *c, uint64_t seed, int n_threads);
void pika_lm_free(pika_lm *m);
const pika_lm_config *pika_lm_cfg(const pika_lm *m);
size_t pika_lm_n_params(const pika_lm *m);
float *pika_lm_params(pika_lm *m); /* [n_params] */
float *pika_lm_grads(pika_lm *m);  /* [n_params], written by pika_lm_loss_grad */
/* Offset of a named tensor in the flat array (GGUF names: "blk.0.attn_q.weight"), -1 if none. */
int64_t pika_lm_tensor_offset(const pika_lm *m, const char *name, int64_t *n_elems);

typedef struct {
    const int32_t *tokens;
    int n;        /* tokens */
    int n_prompt; /* tokens[n_prompt..n-1] are targets (predicted from the position before) */
} pika_lm_seq;

/* Mean cross-entropy over all targets of the batch; gradients into pika_lm_grads (overwritten)
 * when grad != 0. Returns the loss, or -1 + error (bad token, too long). */
double pika_lm_loss_grad(pika_lm *m, const pika_lm_seq *seqs, int n_seqs, int grad);

/* Logits of every position of one sequence: logits[n, n_vocab]. 0 or -1 + error. */
int pika_lm_logits(pika_lm *m, const int32_t *tokens, int n, float *logits);

/* AdamW step with the given learning rate on the current gradients, after clipping their global
 * norm to clip (clip <= 0: none). Weight decay applies to matrices and embeddings, not norms.
 * Returns the gradient norm before clipping. */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay, clip;
} pika_adamw;
double pika_lm_adamw_step(pika_lm *m, const pika_adamw *o);

/* Learning rate at step (0-based) of total: linear warmup over `warmup` steps to lr_max, then
 * cosine decay to lr_min at the last step. */
float pika_lr_schedule(int step, int total, int warmup, float lr_max, float lr_min);

/* Write the model as a llama GGUF with the task vocabulary as tokenizer metadata (plus
 * tokenizer.chat_template, pika.task = "math-v1" and, when notes != NULL, pika.train = notes).
 * Matrices are stored as wtype (PIKA_TYPE_F32 or PIKA_TYPE_F16), norms as F32; name becomes
 * general.name. 0 or -1 + error. */
int pika_lm_save(const pika_lm *m, const pika_math_vocab *v, const char *path, uint32_t wtype, const char *name,
                 const char *notes);

/* ------------------------------------------------------------ the math-task training run */

typedef struct {
    pika_lm_config cfg;    /* n_vocab is set from the task vocabulary */
    int steps;             /* optimizer steps */
    int batch;             /* sequences per step */
    int warmup;            /* warmup steps */
    float lr, lr_min, weight_decay, clip;
    uint64_t seed;         /* init + data order */
    uint64_t task_seed;    /* problem generator seed (train/test splits) */
    int n_threads;
    int eval_n;            /* test problems for the final accuracy (0: skip) */
    uint32_t wtype;        /* checkpoint matrix type */
    const char *name;      /* general.name */
} pika_train_run;

void pika_train_run_default(pika_train_run *r);

/* Train on the math task, log "step,loss,lr,grad_norm,cpu_s,wall_s" CSV lines to log_csv (may be
 * NULL) every log_every steps, write the GGUF to out_path. *test_acc receives greedy accuracy on
 * the first eval_n test problems (trainer's own forward). 0 or -1 + error. */
int pika_train_math(const pika_train_run *r, const char *out_path, FILE *log_csv, int log_every, double *test_acc);

/* Greedy answer of the model to a math problem (trainer forward, no KV cache): writes the answer
 * text (digits up to EOS, at most 12 tokens) into buf. Returns 0 or -1. */
int pika_lm_answer(pika_lm *m, const pika_math_vocab *v, const pika_math_problem *p, char *buf, size_t cap);

/* ------------------------------------------------------------ ops (exposed for gradient tests)
 * Shapes: n rows of width E; y, x [n, E]; w [E]; rstd [n]. *_bwd ACCUMULATE into dx / dw. */
void pika_tr_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int n, int E, float eps);
void pika_tr_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rstd,
                         int n, int E);
/* RoPE in place on x [n, n_heads * D], row t at position pos0 + t; cs/sn [n_ctx, D/2] tables.
 * inverse = 1 rotates by the negative angle (the backward pass). */
void pika_tr_rope(float *x, int n, int n_heads, int D, int pos0, const float *cs, const float *sn, int inverse);
void pika_tr_rope_tables(float *cs, float *sn, int n_ctx, int D, float base);
/* Causal attention of one sequence: q [T, H*D], k, v [T, Hkv*D] -> out [T, H*D]; P [H, T, T]
 * keeps the probabilities for the backward. bwd: dq, dk, dv are overwritten. */
void pika_tr_attn_fwd(float *out, float *P, const float *q, const float *k, const float *v, int T, int H, int Hkv,
                      int D);
void pika_tr_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *P, const float *q,
                      const float *k, const float *v, int T, int H, int Hkv, int D);
/* a = silu(g) * u over n elements; bwd overwrites dg, du. */
void pika_tr_swiglu_fwd(float *a, const float *g, const float *u, size_t n);
void pika_tr_swiglu_bwd(float *dg, float *du, const float *da, const float *g, const float *u, size_t n);
/* Cross-entropy of rows logits [n, V] against target ids; returns the summed loss (double) and
 * writes dlogits = (softmax - onehot) * scale. */
double pika_tr_xent(float *dlogits, const float *logits, const int32_t *targets, int n, int V, float scale);

#endif
