/* tiny_model.h — a one-block random llama model (E=16, 2 heads, 1 KV head, F=32, vocab 20) written
 * with the GGUF writer, for tests that need a model file but no reference outputs. */
#ifndef PIKA_TEST_TINY_MODEL_H
#define PIKA_TEST_TINY_MODEL_H

#include <stdint.h>

#include "pika/gguf_write.h"

static inline void write_tiny(const char *path) {
    const int E = 16, H = 2, Hkv = 1, D = 8, F = 32, V = 20;
    pika_gguf_writer *w = pika_gguf_writer_new();
    pika_gguf_set_str(w, "general.architecture", "llama");
    pika_gguf_set_u32(w, "llama.embedding_length", E);
    pika_gguf_set_u32(w, "llama.block_count", 1);
    pika_gguf_set_u32(w, "llama.attention.head_count", H);
    pika_gguf_set_u32(w, "llama.attention.head_count_kv", Hkv);
    pika_gguf_set_u32(w, "llama.feed_forward_length", F);
    pika_gguf_set_u32(w, "llama.context_length", 64);
    pika_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    float buf[4096];
    uint64_t x = 7;
    struct { const char *name; int64_t ne0, ne1; } t[] = {
        {"token_embd.weight", E, V}, {"blk.0.attn_q.weight", E, H * D}, {"blk.0.attn_k.weight", E, Hkv * D},
        {"blk.0.attn_v.weight", E, Hkv * D}, {"blk.0.attn_output.weight", H * D, E}, {"blk.0.ffn_gate.weight", E, F},
        {"blk.0.ffn_up.weight", E, F}, {"blk.0.ffn_down.weight", F, E}, {"output.weight", E, V},
        {"blk.0.attn_norm.weight", E, 0}, {"blk.0.ffn_norm.weight", E, 0}, {"output_norm.weight", E, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int64_t ne[2] = {t[i].ne0, t[i].ne1 ? t[i].ne1 : 1};
        for (int64_t k = 0; k < ne[0] * ne[1]; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[k] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5);
        }
        pika_gguf_add_tensor(w, t[i].name, 0, t[i].ne1 ? 2 : 1, ne, buf);
    }
    pika_gguf_writer_write(w, path);
    pika_gguf_writer_free(w);
}

#endif
