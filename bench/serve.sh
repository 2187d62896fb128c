#!/bin/sh
# serve.sh — throughput of `pika serve-model` under 1, 4 and 8 concurrent clients (bench_serve), with the
# engine's single-request decode speed as the reference; and the same load against llama.cpp's
# llama-server when LLAMA_SERVER_URL is set (LLAMA_SERVER_PID adds its tokens per CPU-second; start it yourself on the same file, e.g.
#   llama-server -m FILE -t 2 -np 8 -c 4096 --port 8090;  LLAMA_SERVER_URL=http://127.0.0.1:8090).
# Usage: bench/serve.sh [BUILD_DIR] [MODEL.gguf] [THREADS]
# Default model: the Qwen2.5-0.5B-shaped Q8_0 file bench/run.sh writes ($PIKA_BENCH_DIR), made here if absent.
set -e
B=${1:-build}
D=${PIKA_BENCH_DIR:-/tmp/pika-bench}
M=${2:-$D/qwen2.5-0.5b-Q8_0.gguf}
T=${3:-2}
TOK=${BENCH_SERVE_TOKENS:-32}
mkdir -p "$D"
[ -f "$M" ] || "$B/tools/mkgguf" --arch qwen2 --preset qwen2.5-0.5b --type Q8_0 --seed 1 --out "$M"
lscpu | grep -i 'model name' || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
PF=$(mktemp)
"$B/pika" serve-model --model "$M" --port 0 --port-file "$PF" --threads "$T" --parallel 8 --ctx 512 --quiet &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$PF"' EXIT
i=0
while [ ! -s "$PF" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
PORT=$(cat "$PF")
echo "== pika serve-model ($(basename "$M"), $T threads, --parallel 8), $TOK tokens per request, greedy"
"$B/bench/bench_serve" --url "http://127.0.0.1:$PORT" --clients 1,4,8 --max-tokens "$TOK" --label pika \
    --local-model "$M" --threads "$T" --server-pid $PID
"$B/bench/bench_serve" --url "http://127.0.0.1:$PORT" --clients 1,8 --max-tokens "$TOK" --label "pika stream" --stream --server-pid $PID
curl -s "http://127.0.0.1:$PORT/metrics" 2>/dev/null | grep -E '^pika_(decode_batch_size_mean|decode_tokens_per_second|prefill_tokens_per_second) ' || true
if [ -n "${LLAMA_SERVER_URL:-}" ]; then
    echo "== llama-server at $LLAMA_SERVER_URL"
    "$B/bench/bench_serve" --url "$LLAMA_SERVER_URL" --clients 1,4,8 --max-tokens "$TOK" --label llama-server ${LLAMA_SERVER_PID:+--server-pid $LLAMA_SERVER_PID}
    "$B/bench/bench_serve" --url "$LLAMA_SERVER_URL" --clients 1,8 --max-tokens "$TOK" --label "llama-server stream" --stream
else
    echo "(set LLAMA_SERVER_URL to run the same load against llama.cpp's llama-server)"
fi
