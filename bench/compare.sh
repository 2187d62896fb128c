#!/bin/sh
# compare.sh — pika against llama.cpp side by side on the same files (make bench-compare).
#   LLAMA_CPP=/path/to/llama.cpp/build/bin [LLAMA_CPP_AVX2=/path/to/avx2-only/build/bin] \
#   [ROUNDS=3] [THREADS=2] [PIKA_BENCH_DIR=/tmp/pika-bench] sh bench/compare.sh [BUILD_DIR]
# Writes an F16 model of the Qwen2.5-0.5B shape with pika's mkgguf, lets llama.cpp's llama-quantize
# make the Q8_0 and Q4_K_M files (as users' downloads are made), then alternates llama-bench and
# bench_engine (pp256 / tg64, THREADS threads) for ROUNDS rounds per file and prints medians and the
# ratio table, for pika's best SIMD path and for PIKA_SIMD=avx2 (against LLAMA_CPP_AVX2 when given, an
# AVX2-only llama.cpp build; else against the native one), and where the CPU has AVX512_BF16 also for
# pika with PIKA_PREFILL=bf16 (BF16 prefill), where it has AVX512_VNNI with PIKA_PREFILL=q8 (8-bit
# integer prefill of the quantized files; the F16 file stays exact F32 in that mode), and PIKA_SIMD=avx2
# PIKA_PREFILL=q8 (the AVX2 integer kernel, as on CPUs without VNNI). Also the FMA peak (bench_peak) and pika's
# prefill GFLOP/s as a fraction of it. Prints the CPU model, flags and load with the figures.
set -e
B=${1:-build}
: "${LLAMA_CPP:?set LLAMA_CPP to llama.cpp's build/bin directory (see ../shared/docs/perf-method.md)}"
R=${ROUNDS:-3}
T=${THREADS:-2}
D=${PIKA_BENCH_DIR:-/tmp/pika-bench}/compare
mkdir -p "$D"
for x in llama-bench llama-quantize; do
    [ -x "$LLAMA_CPP/$x" ] || { echo "compare: $LLAMA_CPP/$x not found" >&2; exit 2; }
done
[ -f "$D/q05-F16.gguf" ] || "$B/tools/mkgguf" --arch qwen2 --preset qwen2.5-0.5b --type F16 --seed 1 --out "$D/q05-F16.gguf" >/dev/null
for q in Q8_0 Q4_K_M; do
    [ -f "$D/q05-$q.gguf" ] || "$LLAMA_CPP/llama-quantize" "$D/q05-F16.gguf" "$D/q05-$q.gguf" "$q" "$T" >/dev/null 2>&1
done
echo "== CPU"
lscpu | grep -i 'model name'
lscpu | grep -i '^flags' | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx_vnni)$' | tr '\n' ' '
echo
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
RAW="$D/raw.txt"
: > "$RAW"
# one llama-bench round: "llama FILE SIMD pp tg"
llama_round() { # $1 bin dir, $2 file, $3 label
    "$1/llama-bench" -m "$2" -t "$T" -p 256 -n 64 -r 1 -o json 2>/dev/null | python3 -c '
import json, sys
pp = tg = 0.0
for r in json.load(sys.stdin):
    if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0: pp = r["avg_ts"]
    if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0: tg = r["avg_ts"]
print("llama", sys.argv[1], sys.argv[2], pp, tg)' "$(basename "$2" .gguf)" "$3" >> "$RAW"
}
pika_round() { # $1 file, $2 path: avx512 | avx2 | avx512-bf16 | avx512-q8 | avx2-q8 (that SIMD path, that prefill mode)
    simd=${2%-*}; pre=; case "$2" in *-*) pre=${2#*-} ;; esac
    # the AVX2 rows cap OpenBLAS too (its exact-F32 prefill GEMM would otherwise pick its AVX-512 kernels)
    core=$OPENBLAS_CORETYPE; [ "$simd" = avx2 ] && core=Haswell
    out=$(OPENBLAS_CORETYPE=$core PIKA_SIMD=$simd PIKA_PREFILL=$pre "$B/bench/bench_engine" "$1" 256 64 "$T" 1)
    pp=$(echo "$out" | sed -n 's/.*pp256 \([0-9.]*\) tok\/s.*/\1/p')
    tg=$(echo "$out" | sed -n 's/.*tg64 \([0-9.]*\) tok\/s.*/\1/p')
    echo "pika $(basename "$1" .gguf) $2 $pp $tg" >> "$RAW"
}
PATHS=avx2
grep -q avx512bw /proc/cpuinfo && PATHS="avx512 avx2"
grep -q avx512_bf16 /proc/cpuinfo && PATHS="avx512 avx512-bf16 avx2"
grep -q avx512_vnni /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo && PATHS="$PATHS avx512-q8"
PATHS="$PATHS avx2-q8" # the AVX2 integer kernel (vpmaddubsw), as on CPUs without AVX512_VNNI
LA2=${LLAMA_CPP_AVX2:-$LLAMA_CPP}
for r in $(seq 1 "$R"); do
    for q in F16 Q8_0 Q4_K_M; do
        f="$D/q05-$q.gguf"
        for p in $PATHS; do
            # the BF16- and q8-prefill rows are compared with the same llama.cpp rounds as their path's plain row
            if [ "$p" = avx2 ]; then llama_round "$LA2" "$f" avx2; elif [ "$p" = avx512 ]; then llama_round "$LLAMA_CPP" "$f" avx512; fi
            pika_round "$f" "$p"
        done
    done
    echo "round $r done, load $(cut -d' ' -f1 /proc/loadavg)" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== FMA peak ($T threads)"
"$B/bench/bench_peak" "$T" 1 | tee "$D/peak.txt"
python3 - "$RAW" "$D/peak.txt" "$LLAMA_CPP_AVX2" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
peak = {}
for l in open(sys.argv[2]):
    w = l.split()
    if len(w) >= 5 and w[0] == "peak" and w[-1] == "GFLOP/s": peak[w[1]] = float(w[-2])
def med(eng, f, p, k):
    if eng == "llama": p = p.split("-")[0]
    v = [float(r[3 + k]) for r in rows if r[0] == eng and r[1] == "q05-" + f and r[2] == p]
    return st.median(v) if v else float("nan")
types = ["F16", "Q8_0", "Q4_K_M"]
# 2 x non-embedding parameters x tokens + causal attention (Qwen2.5-0.5B shape, 256 tokens)
flops_tok = 2 * 24 * (896 * 896 * 2 + 896 * 128 * 2 + 896 * 4864 * 3) + 2 * 24 * 256 * 896
for p in sorted({r[2] for r in rows}, reverse=True):
    base = p.split("-")[0]
    src = "AVX2-only llama.cpp build" if base == "avx2" and sys.argv[3] else "native llama.cpp build"
    if "-" in p:
        src += f", same rounds as {base}; pika with PIKA_PREFILL={p.split('-')[1]}"
    print(f"\n== path {p} (pika PIKA_SIMD={p.split('-')[0]}; {src}); medians of {len([r for r in rows if r[0]=='pika' and r[2]==p]) // 3} rounds, tok/s")
    print("| measure | llama.cpp | pika | pika / llama.cpp |")
    print("|---|---|---|---|")
    for k, name in ((0, "prefill 256 tok/s"), (1, "decode 64 tok/s")):
        L = [med("llama", f, p, k) for f in types]
        P = [med("pika", f, p, k) for f in types]
        print(f"| {name}, F16 / Q8_0 / Q4_K_M | " + " / ".join(f"{x:.1f}" for x in L) + " | " +
              " / ".join(f"{x:.1f}" for x in P) + " | " + " / ".join(f"{b / a:.2f}" for a, b in zip(L, P)) + " |")
    pk = peak.get(base)
    if pk:
        P = [med("pika", f, p, 0) * flops_tok / 1e9 for f in types]
        what = "GFLOP/s" if "-" not in p else "GFLOP/s-equivalent (BF16/int8 products counted as F32 FLOPs)"
        print(f"pika prefill {what} F16 / Q8_0 / Q4_K_M: " + " / ".join(f"{x:.0f}" for x in P) +
              f" = " + " / ".join(f"{100 * x / pk:.0f}%" for x in P) + f" of the {base} F32 FMA peak {pk:.0f}")
PY
