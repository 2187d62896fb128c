#!/bin/sh
# run.sh — pika's benchmarks (not tests: numbers, no pass/fail). Usage: bench/run.sh [BUILD_DIR]
# Engine: writes random-weight GGUFs with the real shape of Qwen2.5-0.5B (F16, Q8_0, Q4_K_M) into
# $PIKA_BENCH_DIR (default /tmp/pika-bench, ~2 GB) once, then measures pp256 / tg64 at 2 threads.
set -e
B=${1:-build}
D=${PIKA_BENCH_DIR:-/tmp/pika-bench}
mkdir -p "$D"
echo "== engine: Qwen2.5-0.5B shape, random weights, 2 threads"
for t in F16 Q8_0 Q4_K_M; do
    f="$D/qwen2.5-0.5b-$t.gguf"
    [ -f "$f" ] || "$B/tools/mkgguf" --arch qwen2 --preset qwen2.5-0.5b --type "$t" --seed 1 --out "$f"
    "$B/bench/bench_engine" "$f" 256 64 2 3
done
for b in "$B"/bench/bench_*; do
    case "$b" in */bench_engine) continue ;; esac
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    case "$b" in
        */bench_kernels) "$b" --seconds 0.5 ;;
        */bench_grade) "$b" --workers 1,2,4 ;;
        */bench_serve) sh bench/serve.sh "$B" ;;
        */bench_gemm) "$b" --seconds 0.5 ;;
        */bench_prefill_accuracy|*/bench_q8_accuracy)
            # what the approximate modes cost, on the two quantized fixture models (and the Q8_0 bench file)
            F=${PIKA_FIXTURES:-../shared/fixtures}/models
            for f in "$F/llama-q-Q8_0.gguf" "$F/llama-q-Q4_K_M.gguf" "$D/qwen2.5-0.5b-Q8_0.gguf"; do
                [ -f "$f" ] || { echo "($f not found, skipped)"; continue; }
                echo "-- $(basename "$f")"
                case "$b" in
                    */bench_q8_accuracy) "$b" "$f" 32 2 ;;
                    *) "$b" "$f" 128 2 bf16; "$b" "$f" 128 2 q8 ;;
                esac
            done ;;
        */bench_probe)
            # full probe sweep (6000 x 1536 x 29 layers x 5 positions x 5 alphas x 5 folds) vs scikit-learn
            # on sampled configurations; the 2.7 GB synthetic store is made once under /tmp
            "$b" --task continuous --max-configs 10
            "$b" --task binary --max-configs 10
            # compare the cpu_seconds= fields (the machine may be shared); scikit-learn single-threaded
            OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/bench_probe_sklearn.py \
                /tmp/pika-bench-acts-6000-1536-29-5 --task continuous --max-configs 2
            OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/bench_probe_sklearn.py \
                /tmp/pika-bench-acts-6000-1536-29-5 --task binary --max-configs 2 ;;
        *) "$b" ;;
    esac
done
