#!/bin/sh
# run.sh — run the libFuzzer harnesses (called by `make fuzz` / `make fuzz-regress`).
#   sh fuzz/run.sh SECONDS BUILD_DIR BIN...   fuzz each harness for SECONDS (new inputs go to
#                                             BUILD_DIR/corpus/NAME; fuzz/corpus/NAME is read-only seed)
#   sh fuzz/run.sh regress BUILD_DIR BIN...   run every file of fuzz/corpus/NAME once, no fuzzing
# A crash, leak, sanitizer report or timeout (10 s per input) leaves its input in
# BUILD_DIR/artifacts/ and makes the run fail. Prints one line per harness and a summary.
mode=$1; dir=$2; shift 2
mkdir -p "$dir/artifacts"
failed=0; total=0
for bin in "$@"; do
    name=$(basename "$bin" | sed 's/^fuzz_//')
    seeds="fuzz/corpus/$name"
    log="$dir/$name.log"
    total=$((total + 1))
    if [ "$mode" = regress ]; then
        files=$(find "$seeds" -type f 2>/dev/null | sort)
        if [ -z "$files" ]; then echo "fuzz $name: no inputs in $seeds"; continue; fi
        # shellcheck disable=SC2086
        if "$bin" -timeout=10 -rss_limit_mb=2048 $files >"$log" 2>&1; then
            echo "fuzz $name: $(echo "$files" | wc -l) corpus inputs ok"
        else
            echo "fuzz $name: FAILED on the corpus (see $log)"; tail -n 30 "$log"; failed=$((failed + 1))
        fi
        continue
    fi
    work="$dir/corpus/$name"
    mkdir -p "$work"
    if "$bin" -max_total_time="$mode" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$dir/artifacts/$name-" "$work" "$seeds" >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "fuzz $name: ok, ${runs:-?} inputs in ${mode}s ($cov), corpus $(ls "$work" | wc -l) files"
    else
        echo "fuzz $name: FAILED (see $log; input saved under $dir/artifacts/)"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 8
        failed=$((failed + 1))
    fi
done
echo "fuzz: $total harnesses, $failed failed"
[ "$failed" = 0 ]
