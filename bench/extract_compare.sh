#!/bin/sh
# extract_compare.sh — `pika extract` against `llama-embedding --pooling last` on the same file and
# the same rendered prompts (make bench-extract).
#   LLAMA_CPP=/path/to/llama.cpp/build/bin [ROUNDS=1] [THREADS=2] [N_PROMPTS=100] [LLAMA_CTX=N]
#   [PREFILL=f32|bf16|q8] [PIKA_BENCH_DIR=/tmp/pika-bench] [PIKA_SHARED=../shared] sh bench/extract_compare.sh [BUILD_DIR]
# Writes a random-weight F16 model of the Qwen2.5-0.5B shape with the real Qwen2 vocab
# ($PIKA_SHARED/fixtures/tokenizer/ggml-vocab-qwen2.gguf, via mkgguf --vocab-from) and pika's built-in
# Qwen2.5-Math-Instruct chat template, lets llama-quantize make the Q8_0 file (cached in
# $PIKA_BENCH_DIR/extract), renders the first N_PROMPTS MATH test questions with `pika prompt` (the
# recipe `pika extract` uses: the GGUF's template, no system/suffix flags), checks that llama.cpp
# tokenizes them to the same token count as pika (and to the same ids on the first prompt), then
# alternates, for ROUNDS rounds, under /usr/bin/time -v:
#   pika extract  --model Q8_0 --data MATH --limit N --out DIR --threads THREADS [--prefill PREFILL]
#                 (all layers, EOI positions; PREFILL unset: pika's default, exact F32)
#   llama-embedding -m Q8_0 -f PROMPTS --embd-separator SEP --pooling last --no-escape -t THREADS
#                   -c LLAMA_CTX -b LLAMA_CTX (final layer, last token only)
# LLAMA_CTX defaults to 2048 (llama-embedding packs prompts into batches of up to -c tokens);
# LLAMA_CTX=0 is llama.cpp's own default, the model's 32768, whose output buffer for a 32768-token
# batch (all tokens marked as outputs, n_vocab logits each) takes ~17 GB of RSS.
# and prints the CPU, wall times, tokens, tok/s and peak RSS (medians) and the table row.
set -e
# PIKA_SIMD=avx2 (an AVX2-only CPU) caps OpenBLAS too: its exact-F32 GEMM would otherwise pick AVX-512 kernels
[ "${PIKA_SIMD:-}" = avx2 ] && export OPENBLAS_CORETYPE=Haswell
B=${1:-build}
die() { echo "extract_compare: $*" >&2; exit 2; }
[ -n "$LLAMA_CPP" ] || die "set LLAMA_CPP to llama.cpp's build/bin directory (with llama-embedding, llama-quantize, llama-tokenize)"
for x in llama-embedding llama-quantize llama-tokenize; do
    [ -x "$LLAMA_CPP/$x" ] || die "$LLAMA_CPP/$x not found (LLAMA_CPP must be llama.cpp's build/bin directory)"
done
[ -x "$B/pika" ] && [ -x "$B/tools/mkgguf" ] || die "$B/pika or $B/tools/mkgguf not built (run make first)"
TIME=/usr/bin/time
"$TIME" -v true >/dev/null 2>&1 || die "GNU time not found at $TIME (apt-get install -y time)"
command -v python3 >/dev/null 2>&1 || die "python3 not found"
R=${ROUNDS:-1}
CTX=${LLAMA_CTX:-2048}
LB=""
[ "$CTX" = 0 ] || LB="-b $CTX" # llama-embedding packs -b tokens per batch; a -b above -c aborts
T=${THREADS:-2}
N=${N_PROMPTS:-100}
PF=""
[ -z "$PREFILL" ] || PF="--prefill $PREFILL"

S=${PIKA_SHARED:-../shared}
VOCAB=$S/fixtures/tokenizer/ggml-vocab-qwen2.gguf
DATA=$S/data/math/test.jsonl
[ -f "$VOCAB" ] || die "$VOCAB not found (set PIKA_SHARED to the shared dir)"
[ -f "$DATA" ] || die "$DATA not found (set PIKA_SHARED to the shared dir)"
D=${PIKA_BENCH_DIR:-/tmp/pika-bench}/extract
mkdir -p "$D"
F16=$D/q05-F16.gguf
Q8=$D/q05-Q8_0.gguf
if [ ! -f "$F16" ]; then
    "$B/tools/mkgguf" --arch qwen2 --preset qwen2.5-0.5b --type F16 --seed 1 --vocab-from "$VOCAB" \
        --chat-template-name qwen2.5-math --out "$F16" 2>/dev/null || die "mkgguf failed"
fi
if [ ! -f "$Q8" ]; then
    "$LLAMA_CPP/llama-quantize" "$F16" "$Q8" Q8_0 "$T" >"$D/quantize.log" 2>&1 || die "llama-quantize failed (see $D/quantize.log)"
fi

# Render the prompts: $D/prompts.sep (SEP-separated, for llama-embedding -f; a final newline, which
# -f drops), $D/prompts.cat (concatenated, for llama-tokenize), $D/first.txt; pika's token counts.
SEP='<#pika-sep#>'
python3 - "$B/pika" "$Q8" "$DATA" "$N" "$SEP" "$D" <<'PY' || die "rendering the prompts failed"
import json, subprocess, sys
pika, model, data, n, sep, d = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
qs = []
with open(data, encoding="utf-8") as f:
    for line in f:
        if line.strip():
            qs.append(json.loads(line)["problem"])
        if len(qs) == n: break
if len(qs) < n: sys.exit(f"{data} has only {len(qs)} questions")
texts, ntok, eoi = [], 0, set()
for q in qs:
    t = subprocess.run([pika, "prompt", "--model", model, "--user", q], check=True, capture_output=True).stdout
    ids = subprocess.run([pika, "prompt", "--model", model, "--user", q, "--ids"], check=True, capture_output=True).stdout.decode().split("\n")
    ntok += len(ids[0].split())
    eoi.add(int(ids[1].split()[1]))
    if sep.encode() in t: sys.exit("a prompt holds the separator")
    texts.append(t)
    if len(texts) == 1: first_ids = ids[0]
open(f"{d}/prompts.sep", "wb").write(sep.encode().join(texts) + b"\n")
open(f"{d}/prompts.cat", "wb").write(b"".join(texts))
open(f"{d}/first.txt", "wb").write(texts[0])
open(f"{d}/pika_tokens.txt", "w").write(f"{ntok} {','.join(map(str, sorted(eoi)))}\n{first_ids}\n")
PY
read -r PIKA_TOK EOI < "$D/pika_tokens.txt"
# Same text -> same tokens in llama.cpp (parse_special, no BOS for this vocab: as llama-embedding tokenizes).
# The prompts start with a special token, so the total of the concatenation is the sum over prompts.
LL_TOK=$("$LLAMA_CPP/llama-tokenize" -m "$Q8" -f "$D/prompts.cat" --show-count --ids --no-escape --log-disable 2>/dev/null |
    sed -n 's/^Total number of tokens: *\([0-9]*\).*/\1/p')
[ "$LL_TOK" = "$PIKA_TOK" ] || die "llama.cpp counts ${LL_TOK:-?} tokens in the prompts, pika $PIKA_TOK"
LL_FIRST=$("$LLAMA_CPP/llama-tokenize" -m "$Q8" -f "$D/first.txt" --ids --no-escape --log-disable 2>/dev/null | tail -1 | tr -d '[],')
[ "$LL_FIRST" = "$(sed -n 2p "$D/pika_tokens.txt")" ] || die "llama.cpp and pika tokenize the first prompt differently"

echo "== CPU"
lscpu | grep -i 'model name'
lscpu | grep -i '^flags' | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx_vnni)$' | tr '\n' ' '
echo
echo "== $N MATH test prompts (Qwen2.5-Math-Instruct template), $PIKA_TOK tokens (same count in llama.cpp), EOI tokens per prompt: $EOI; $T threads; Q8_0 $(basename "$Q8"); pika prefill ${PREFILL:-f32 (default)}"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
RAW=$D/raw.txt
: > "$RAW"
wall_of() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): *//p' "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'; }
cpu_of() { awk -F': *' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$1"; }
rss_of() { sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p' "$1"; }
pika_round() {
    rm -rf "$D/acts"
    "$TIME" -v -o "$D/time-pika.txt" "$B/pika" extract --model "$Q8" --data "$DATA" --limit "$N" --out "$D/acts" \
        --threads "$T" $PF >"$D/pika.log" 2>&1 || die "pika extract failed (see $D/pika.log)"
    grep '^extract:' "$D/pika.log" >&2 || true
    echo "pika $(wall_of "$D/time-pika.txt") $(rss_of "$D/time-pika.txt") $(cpu_of "$D/time-pika.txt") $r" >> "$RAW"
}
llama_round() {
    "$TIME" -v -o "$D/time-llama.txt" "$LLAMA_CPP/llama-embedding" -m "$Q8" -f "$D/prompts.sep" --embd-separator "$SEP" \
        --pooling last --no-escape -t "$T" -c "$CTX" $LB >"$D/llama.out" 2>"$D/llama.log" ||
        die "llama-embedding failed (see $D/llama.log)"
    k=$(grep -c '^embedding [0-9]*:' "$D/llama.out" || true)
    [ "$k" = "$N" ] || die "llama-embedding printed $k embeddings, not $N (see $D/llama.out)"
    echo "llama $(wall_of "$D/time-llama.txt") $(rss_of "$D/time-llama.txt") $(cpu_of "$D/time-llama.txt") $r" >> "$RAW"
}
for r in $(seq 1 "$R"); do
    if [ $((r % 2)) = 1 ]; then llama_round; pika_round; else pika_round; llama_round; fi
    echo "round $r done, load $(cut -d' ' -f1 /proc/loadavg)" >&2
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
LAYERS=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(len(m["layers"]), len(m["positions"]))' "$D/acts/meta.json")
python3 - "$RAW" "$PIKA_TOK" "$N" "$LAYERS" "$CTX" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
tok, n, (nl, npos), ctx = int(sys.argv[2]), sys.argv[3], sys.argv[4].split(), sys.argv[5]
def med(eng, k): return st.median(float(r[k]) for r in rows if r[0] == eng)
nr = len([r for r in rows if r[0] == "pika"])
print("\n== per round: wall s (CPU s user+sys), llama.cpp / pika wall")
for k in sorted({r[4] for r in rows}, key=int):
    l = next(r for r in rows if r[0] == "llama" and r[4] == k)
    p = next(r for r in rows if r[0] == "pika" and r[4] == k)
    print(f"round {k}: llama.cpp {float(l[1]):.2f} s ({float(l[3]):.1f}), pika {float(p[1]):.2f} s ({float(p[3]):.1f}), "
          f"ratio {float(l[1]) / float(p[1]):.2f}x")
ls, lr, ps, pr = med("llama", 1), med("llama", 2) / 1024, med("pika", 1), med("pika", 2) / 1024
print(f"\n== medians of {nr} round(s); wall time includes model load; RSS = peak resident set")
print(f"llama-embedding (final layer, last token; -c {ctx}): {ls:.2f} s, {tok / ls:.1f} tok/s, peak RSS {lr:.0f} MiB")
print(f"pika extract ({nl} layers x {npos} EOI positions):    {ps:.2f} s, {tok / ps:.1f} tok/s, peak RSS {pr:.0f} MiB")
print("\n| measure | llama.cpp | pika | llama.cpp / pika |")
print("|---|---|---|---|")
print(f"| extract {n} MATH prompts ({tok} tokens), Q8_0 | {ls:.1f} s, {lr:.0f} MiB | {ps:.1f} s, {pr:.0f} MiB | {ls / ps:.2f}x |")
print(f"\ntarget: >= 3x faster ({'met' if ls / ps >= 3 else 'not met'}), "
      f"pika peak RSS <= 1 GB = 10^9 bytes ({'met' if pr * 2**20 <= 1e9 else 'not met'})")
PY
