#!/usr/bin/env python3
"""make_seeds.py — (re)write the generated seed and regression inputs under fuzz/corpus/gguf/.

The GGUF inputs are built byte by byte here (small, readable), so the corpus needs no fixture.
Each regress-* file is an input that once misbehaved; test_model.c / test_tokenizer.c hold the
matching unit tests. Run from the repository root: python3 fuzz/make_seeds.py
"""
import os
import struct

OUT = "fuzz/corpus/gguf"

U32, I32, F32, BOOL, STR, ARR, U64, F64 = 4, 5, 6, 7, 8, 9, 10, 12


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def val(t, v):
    if t == U32:
        return struct.pack("<I", v)
    if t == I32:
        return struct.pack("<i", v)
    if t == F32:
        return struct.pack("<f", v)
    if t == F64:
        return struct.pack("<d", v)
    if t == BOOL:
        return struct.pack("<B", v)
    if t == U64:
        return struct.pack("<Q", v)
    if t == STR:
        return s(v)
    raise ValueError(t)


def arr(et, items):
    return struct.pack("<IQ", et, len(items)) + b"".join(val(et, x) for x in items)


def gguf(kvs, tensors, align=32, data=b""):
    """kvs: [(key, type, raw value bytes)]; tensors: [(name, dims, ggml type, offset)]"""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, raw in kvs:
        out += s(k) + struct.pack("<I", t) + raw
    for name, dims, ty, off in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, off)
    pad = (-len(out)) % align if align and align < (1 << 20) else 0
    return out + b"\0" * pad + data


def write(name, b):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b)


def main():
    os.makedirs(OUT, exist_ok=True)
    arch = ("general.architecture", STR, val(STR, "llama"))
    f32 = 0
    # two F32 tensors of 16 floats, the second at offset 64 (valid)
    two = [("a", [16], f32, 0), ("b", [16], f32, 64)]
    write("ok-two-tensors.gguf", gguf([arch, ("general.alignment", U32, val(U32, 32))], two, data=bytes(128)))
    # a BPE vocab (printable ASCII, one merge) and an SPM vocab with byte tokens
    toks = [chr(c) for c in range(33, 127)] + ["he", "<|im_start|>"]
    types = [1] * (len(toks) - 1) + [3]
    bpe = [arch, ("tokenizer.ggml.model", STR, val(STR, "gpt2")), ("tokenizer.ggml.pre", STR, val(STR, "qwen2")),
           ("tokenizer.ggml.tokens", ARR, arr(STR, toks)), ("tokenizer.ggml.token_type", ARR, arr(I32, types)),
           ("tokenizer.ggml.merges", ARR, arr(STR, ["h e"]))]
    write("ok-bpe-vocab.gguf", gguf(bpe, []))
    spm_toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + ["\u2581", "\u2581a", "a"]
    spm = [arch, ("tokenizer.ggml.model", STR, val(STR, "llama")),
           ("tokenizer.ggml.tokens", ARR, arr(STR, spm_toks)),
           ("tokenizer.ggml.scores", ARR, arr(F32, [0.0] * 259 + [-1.0, -0.5, -2.0])),
           ("tokenizer.ggml.token_type", ARR, arr(I32, [2, 3, 3] + [6] * 256 + [1, 1, 1]))]
    write("ok-spm-vocab.gguf", gguf(spm, []))
    # regressions found by fuzzing
    write("regress-overlapping-tensors.gguf", gguf([arch], [("a", [16], f32, 0), ("b", [16], f32, 32)], data=bytes(128)))
    write("regress-same-offset.gguf", gguf([arch], [("a", [16], f32, 0), ("b", [16], f32, 0)], data=bytes(64)))
    write("regress-alignment-2-31.gguf", gguf([arch, ("general.alignment", U32, val(U32, 1 << 31))], two, align=0,
                                              data=bytes(128)))
    write("regress-float-array-past-int64.gguf",
          gguf([arch, ("x.f64s", ARR, arr(F64, [1e19, -1e19, float("nan"), 9.3e18])),
                ("tokenizer.ggml.model", STR, val(STR, "llama")),
                ("tokenizer.ggml.tokens", ARR, arr(STR, ["<unk>", "a"])),
                ("tokenizer.ggml.token_type", ARR, arr(I32, [2, 1]))], []))
    write("regress-empty-token-vocab.gguf",
          gguf([arch, ("tokenizer.ggml.model", STR, val(STR, "gpt2")), ("tokenizer.ggml.tokens", ARR, arr(STR, [""])),
                ("tokenizer.ggml.merges", ARR, arr(STR, []))], []))


if __name__ == "__main__":
    main()
