/* model.h — load a GGUF transformer (llama, qwen2, qwen3 families) and run it on the CPU.
 *
 * Conventions (as llama.cpp):
 *   hidden state h_0 = token embedding rows (no scaling); h_i = residual stream after block i
 *   (x + attn(norm(x)) + ffn(norm(.))), before any final norm; logits = output_norm(h_L) · W_outᵀ.
 * Weights stay mmapped in their file type; prefill matmuls run in F32 (weight panels dequantized into
 * the GEMM's packed layout), so results match llama.cpp's exact-F32 references to ~1e-4 (BF16 and 8-bit
 * integer prefill are opt-in approximations: pika_ctx_set_prefill); prefill attention is split-invariant
 * (pika_ctx_set_blas_attention); decode uses 8-bit activations with integer dots unless the context
 * is exact (pika_ctx_set_exact).
 */
#ifndef PIKA_MODEL_H
#define PIKA_MODEL_H

#include <stdint.h>

#include "pika/gguf.h"

enum pika_arch { PIKA_ARCH_LLAMA, PIKA_ARCH_QWEN2, PIKA_ARCH_QWEN3 };

typedef struct {
    int arch;            /* enum pika_arch */
    char arch_name[32];  /* general.architecture */
    int n_vocab;
    int n_embd;          /* residual width E */
    int n_layer;         /* L */
    int n_head;
    int n_head_kv;
    int head_dim;        /* attention.key_length, default E / n_head */
    int n_ff;
    int n_ctx_train;
    float rms_eps;
    float rope_base;
    float rope_freq_scale; /* 1 / linear scaling factor (1 = none) */
    int rope_neox;       /* 1: rotate (x[i], x[i+d/2]) (qwen); 0: adjacent pairs (llama) */
    int tied_output;     /* output weights are token_embd.weight */
} pika_hparams;

typedef struct pika_model pika_model;

/* Load and validate (architecture, shapes, tensor types). NULL + error on failure. */
pika_model *pika_model_load(const char *path);
void pika_model_free(pika_model *m);
const pika_hparams *pika_model_hparams(const pika_model *m);
const pika_gguf *pika_model_gguf(const pika_model *m);
/* Short fingerprint of the model file (architecture, shapes and a hash of metadata + tensor
 * infos), used to tie activations and probes to the model that produced them. 16 hex digits. */
const char *pika_model_fingerprint(const pika_model *m);

/* An inference context: KV cache (grows as tokens are added) + scratch + thread pool. */
typedef struct pika_ctx pika_ctx;
pika_ctx *pika_ctx_new(pika_model *m, int n_threads); /* n_threads <= 0: all cores */
void pika_ctx_free(pika_ctx *c);
void pika_ctx_reset(pika_ctx *c);   /* forget all tokens (empty KV cache) */
/* Forget the tokens after the first n (n <= n_past): e.g. to sample again from the same prompt. */
void pika_ctx_truncate(pika_ctx *c, int n);
int pika_ctx_n_past(const pika_ctx *c);
/* Blocks whose KV rows are filled for all n_past tokens: n_layer, unless a pass stopped early
 * (pika_forward_req without logits stops after the deepest requested layer, and keeps its tokens);
 * then a later pass (pika_forward, pika_forward_packed) may run at most this many blocks — one that
 * needs more fails with an error, until the context is reset or truncated to 0. */
int pika_ctx_kv_layers(const pika_ctx *c);
/* Matmul precision of small batches (decode, < 4 tokens). Default (exact = 0): the activation row
 * is quantized to 8-bit blocks once per matmul and multiplied with integer dot products against
 * Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K weights (as llama.cpp does; F16/BF16/F32 weights stay
 * F32, and so does Q4_K on AVX-512, where the exact kernel is faster: pika_q8_preferred). exact = 1: every matmul in F32 as if the weights had been dequantized (the mode that
 * matches llama.cpp's f32w references to ~1e-4). Batches of 4+ tokens (prefill, extraction) are
 * exact F32 unless another prefill mode is set (below). The environment variable PIKA_MATMUL=exact sets exact
 * for new contexts. */
void pika_ctx_set_exact(pika_ctx *c, int exact);
int pika_ctx_exact(const pika_ctx *c);
/* Prefill precision (batches of 4+ tokens: prompts, extraction), one of
 *   PIKA_PREFILL_F32  (default) exact F32 products;
 *   PIKA_PREFILL_BF16 activations and weights rounded to BF16 inside the GEMM packers and multiplied with
 *                     AVX512_BF16's vdpbf16ps (F32 sums), about twice the multiply rate (needs AVX512_BF16);
 *   PIKA_PREFILL_Q8   quantized weights (Q4_0 ... Q6_K) multiplied in 8-bit integers against activations
 *                     quantized to 8-bit blocks of 32, as the q8 decode default and llama.cpp's prefill
 *                     do (AVX512_VNNI vpdpbusd, or AVX2 vpmaddubsw / int16 vpmaddwd for Q8_0,
 *                     pika_sgemm_nt_typed_q8); F16/BF16/F32
 *                     weights stay exact F32 (needs AVX2).
 * BF16 and Q8 are approximations of the same order as the q8 decode default (README: accuracy). BF16 needs
 * the AVX-512 path, Q8 AVX2: pika_ctx_set_prefill returns -1 + error where the CPU cannot (nothing changes). A mode
 * other than F32 clears exact; pika_ctx_set_exact(c, 1) sets F32. The environment variable
 * PIKA_PREFILL=f32|bf16|q8 sets it for new contexts (ignored where the CPU lacks it).
 * pika_prefill_parse: "f32"/"bf16"/"q8" -> mode, -1 if none; pika_prefill_available: the CPU can run it. */
enum { PIKA_PREFILL_F32 = 0, PIKA_PREFILL_BF16 = 1, PIKA_PREFILL_Q8 = 2 };
int pika_ctx_set_prefill(pika_ctx *c, int mode);
int pika_ctx_prefill(const pika_ctx *c);
int pika_prefill_parse(const char *name);
const char *pika_prefill_name(int mode);
int pika_prefill_available(int mode);
/* The BF16 mode on (on = 1: as pika_ctx_set_prefill(c, PIKA_PREFILL_BF16)) or off (back to F32 if it was
 * BF16); pika_ctx_prefill_bf16: 1 when BF16 is the mode. */
int pika_ctx_set_prefill_bf16(pika_ctx *c, int on);
int pika_ctx_prefill_bf16(const pika_ctx *c);
/* Prefill attention (batches of 4+ tokens, and every pika_forward_packed). Default: pika's fixed-order
 * kernel (per head, blocks of queries; scores, causal softmax and · V with gemm.c's fixed-order
 * products), whose output for a token does not depend on how its sequence was split between calls or
 * packed with others: a prefix run with pika_forward and continued by pika_forward_packed (or by a
 * cached prompt's rest) gives bit for bit what one pass of the whole sequence gives, as long as every
 * call has >= 4 tokens (smaller batches take the decode path, see pika_ctx_set_exact) and the weight
 * matmul computes a row independently of the batch's other rows (pika's own SGEMM, AVX-512, does; with
 * OpenBLAS (AVX2 level) it is likely but not promised). on = 1: BLAS attention for pika_forward's
 * prefill instead (not split-invariant; packed passes keep pika's kernel). PIKA_ATTN=blas sets it for
 * new contexts. Decode steps (fewer than 4 tokens) always use the BLAS path batched decode matches. */
void pika_ctx_set_blas_attention(pika_ctx *c, int on);
int pika_ctx_blas_attention(const pika_ctx *c);
const pika_model *pika_ctx_model(const pika_ctx *c);

/* What a forward call should hand back. Hidden states: for each requested layer index l in
 * [0, n_layer] (0 = embeddings) and each requested position p (index into this call's tokens,
 * negative = from the end), hidden[(li * n_pos + pi) * n_embd + e]. The pass stops after the last
 * block needed when no logits are wanted (the context keeps the tokens, with its KV cache filled for
 * those blocks only: pika_ctx_kv_layers). */
typedef struct {
    int n_layers;
    const int *layers;    /* NULL with n_layers = -1 means all n_layer+1 */
    int n_pos;
    const int *positions; /* NULL with n_pos = -1 means all tokens of this call */
    float *hidden;        /* [n_layers, n_pos, n_embd] or NULL */
    float *logits;        /* [n_vocab] logits of the last token, or NULL (skips norm + lm_head) */
} pika_forward_req;

/* Append tokens to the context (positions n_past .. n_past+n-1) and run them in one batch.
 * Returns 0, or -1 + error (bad token id, context overflow). */
int pika_forward(pika_ctx *c, const int32_t *tokens, int n_tokens, const pika_forward_req *req);

/* Several independent sequences after a shared prefix, in one pass (e.g. many prompts of a dataset
 * behind one chat-template prefix): tokens holds n_seq sequences one after another, sequence s of
 * seq_len[s] >= 1 tokens; n = sum of seq_len. Each sequence continues the context's current n_past
 * tokens (the prefix) on its own: its tokens get positions n_past + offset in the sequence and attend
 * causally to the prefix and to the sequence's earlier tokens only (a block-diagonal causal mask), so
 * sequence s gets what pika_forward would give on a context holding only the prefix. Every weight
 * matmul runs once over all n rows. Afterwards the context holds exactly the prefix again (n_past
 * and pika_ctx_kv_layers unchanged; the n packed KV rows were scratch, the KV cache and scratch grow
 * to n_past + n rows).
 * req as for pika_forward, except:
 *   positions index the concatenated tokens, 0 .. n-1 (n_pos = -1: all n); negative ones are
 *     rejected (there is no single "end" of a pack): hidden[(li * n_pos + pi) * n_embd + e];
 *   logits, when not NULL: [n_seq, n_vocab], row s = the logits of sequence s's last token (the pass
 *     then runs every block, so the prefix must be filled for all of them).
 * The blocks run (deepest requested layer, or all with logits) must be <= pika_ctx_kv_layers when
 * n_past > 0. Returns 0, or -1 + error (bad sequence length, token id, layer or position). */
int pika_forward_packed(pika_ctx *c, const int32_t *tokens, int n_seq, const int *seq_len, const pika_forward_req *req);

/* ---- several sequences decoding together (continuous batching; `pika serve-model`) ----
 * A pika_batch holds n_seq sequence slots, each with its own KV cache (at most n_ctx tokens, grown as
 * needed), sharing the model and one thread pool. Single-sequence code (pika_ctx, pika_forward) is
 * separate and unchanged.
 *   pika_batch_prefill: a prompt (or more tokens) into one slot: the very computation pika_forward does
 *     on a context holding that slot's tokens, so logits and captured hidden states are bit-identical.
 *   pika_batch_decode: one new token for each of k slots in one pass over the weights: each weight
 *     matrix is read once per step for all k rows (row blocks small enough to stay in cache while every
 *     slot's row is multiplied), and each row's dot products use the same kernel as single-sequence
 *     decode, so slot i gets bit for bit the logits pika_forward(ctx_i, &token_i, 1) would give.
 *   pika_batch_seq_copy: the first n tokens of one slot's KV cache into another (the n samples of one
 *     prompt share its prefill: the prompt is run once, its KV rows copied, not recomputed).
 * Not thread-safe: one thread drives a batch. Slots are numbered 0..n_seq-1. */
typedef struct pika_batch pika_batch;
/* n_ctx: tokens per slot at most (>= 1); n_threads <= 0: all cores. NULL + error on bad sizes. */
pika_batch *pika_batch_new(pika_model *m, int n_seq, int n_ctx, int n_threads);
void pika_batch_free(pika_batch *b);
int pika_batch_n_seq(const pika_batch *b);
int pika_batch_n_ctx(const pika_batch *b);
const pika_model *pika_batch_model(const pika_batch *b);
int pika_batch_n_past(const pika_batch *b, int seq);
/* Forget a slot's tokens (its memory is kept for reuse). */
void pika_batch_seq_reset(pika_batch *b, int seq);
/* Keep a slot's first n tokens (n <= n_past). */
void pika_batch_seq_truncate(pika_batch *b, int seq, int n);
/* dst := the first n tokens of src (n <= src's n_past, dst != src). 0 or -1 + error. */
int pika_batch_seq_copy(pika_batch *b, int dst, int src, int n);
/* Append tokens to slot seq and run them as pika_forward does (req as there: logits of the last
 * token, hidden states at chosen layers/positions of this call). 0 or -1 + error (bad slot or token,
 * more than n_ctx tokens in the slot). */
int pika_batch_prefill(pika_batch *b, int seq, const int32_t *tokens, int n_tokens, const pika_forward_req *req);
/* One decode step: token tokens[i] appended to slot seqs[i] (distinct slots, i < n), logits of each
 * into logits[i * n_vocab]. 0 or -1 + error (nothing is changed then). */
int pika_batch_decode(pika_batch *b, int n, const int *seqs, const int32_t *tokens, float *logits);
/* Bytes of KV cache currently allocated over all slots. */
size_t pika_batch_kv_bytes(const pika_batch *b);

/* Sampling (pika_sampling, pika_sampler) has its own header. */
#include "pika/sampler.h"

#endif
