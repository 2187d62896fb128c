#!/bin/sh
# demo-serve.sh — the pool behind the live router, after `make demo` (scripts/pipeline.sh wrote OUT):
#   1. a probe per member on the READER's activations (reader pika-math-m; the member's labels,
#      target success_rate: one answer per request), predictions for every problem;
#   2. the offline prediction: a routing table of the three k=1 arms with those probes, λ calibrated on
#      val (target: the best single arm's val accuracy) -> router file; `pika route eval` on test at
#      that λ;
#   3. three `pika serve-model` members and `pika serve` (policy from the router file) on loopback;
#   4. the test split through the router (tools/serve_replay: seed 1, "pika": {"id"} so a member
#      samples what `pika sample --seed 1` sampled), graded; realised accuracy and cost per query next
#      to the offline prediction, and `pika route log`.
# usage: scripts/demo-serve.sh [BUILD_DIR]   (env: OUT (demo-out)); every server on a free loopback port
set -e
B=${1:-build}
OUT=${OUT:-demo-out}
P="$B/pika"
S="$OUT/serve"
READER=m
if [ ! -f "$OUT/route/table.jsonl" ] || [ ! -d "$OUT/$READER/acts" ]; then
    echo "demo-serve: $OUT has no pipeline output; run make demo first" >&2
    exit 2
fi
if ! "$P" serve-model --help > /dev/null 2>&1; then
    echo "demo-serve: this build has no 'pika serve-model' (the member server); cannot bring up the pool" >&2
    exit 2
fi
mkdir -p "$S"
ARMS=""
for x in s m l; do
    echo "== reader probe for member $x (activations of pika-math-$READER, labels of pika-math-$x)"
    "$P" probe train --acts "$OUT/$READER/acts" --labels "$OUT/$x/labels.jsonl" --target success_rate --split split=train \
        -o "$S/probe-$x.json" > /dev/null
    "$P" probe predict --probe "$S/probe-$x.json" --acts "$OUT/$READER/acts" -o "$S/pred-$x.jsonl"
    pr=$(( 2 * $("$P" info "models/pool/pika-math-$x.gguf" | awk '/^parameters:/ {print $2}') ))
    eval "PRICE_$x=$pr"
    ARMS="$ARMS --arm name=$x,labels=$OUT/$x/labels.jsonl,pred=$S/pred-$x.jsonl,price_in=$pr,price_out=$pr,k=1,target=success_rate"
done
# shellcheck disable=SC2086
"$P" route table $ARMS --val-frac 0.5 -o "$S/table.jsonl"
best_val=$("$P" route eval --table "$S/table.jsonl" --split val --bootstrap 0 | awk '/^best_single:/ {print $4}')
"$P" route calibrate --table "$S/table.jsonl" --split val --eval-split test --target-accuracy "$best_val" \
    --probe s="$S/probe-s.json" --probe m="$S/probe-m.json" --probe l="$S/probe-l.json" -o "$S/router.json" > "$S/calibrate.txt"
cat "$S/calibrate.txt"
lambda=$(awk '/λ =/ {for (i = 1; i <= NF; i++) if ($i == "=") print $(i + 1)}' "$S/calibrate.txt" | head -1)
"$P" route eval --table "$S/table.jsonl" --split test --lambdas "$lambda" --bootstrap 0 > "$S/eval.txt"
# test ids: the table's test rows of arm s
grep '"arm":"s"' "$S/table.jsonl" | grep '"split":"test"' | sed 's/.*"id":"\{0,1\}\([^",]*\)"\{0,1\},.*/\1/' > "$S/test-ids.txt"
rm -f "$S/serve.db" "$S/serve.db-wal" "$S/serve.db-shm" "$S"/port-* "$S/router.log"
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; }
trap cleanup EXIT INT TERM
for x in s m l; do
    "$P" serve-model --model "models/pool/pika-math-$x.gguf" --host 127.0.0.1 --port 0 --port-file "$S/port-$x" --threads 1 \
        --quiet > "$S/member-$x.log" 2>&1 &
    PIDS="$PIDS $!"
done
# wait for the members' port files (at most 60 s)
i=0
until [ -s "$S/port-s" ] && [ -s "$S/port-m" ] && [ -s "$S/port-l" ]; do
    i=$((i + 1))
    [ $i -gt 600 ] && { echo "demo-serve: the members did not start; see $S/member-*.log" >&2; exit 2; }
    sleep 0.1
done
PORT_s=$(cat "$S/port-s"); PORT_m=$(cat "$S/port-m"); PORT_l=$(cat "$S/port-l")
cat > "$S/pool.json" <<EOF
{"reader": {"model": "models/pool/pika-math-$READER.gguf"},
 "policy": {"kind": "utility", "router": "$S/router.json"},
 "log": "$S/serve.db",
 "members": [
  {"name": "s", "url": "http://127.0.0.1:$PORT_s/v1", "api_model": "pika-math-s", "probe": "$S/probe-s.json", "price_in": $PRICE_s, "price_out": $PRICE_s},
  {"name": "m", "url": "http://127.0.0.1:$PORT_m/v1", "api_model": "pika-math-m", "probe": "$S/probe-m.json", "price_in": $PRICE_m, "price_out": $PRICE_m},
  {"name": "l", "url": "http://127.0.0.1:$PORT_l/v1", "api_model": "pika-math-l", "probe": "$S/probe-l.json", "price_in": $PRICE_l, "price_out": $PRICE_l}]}
EOF
"$P" serve --config "$S/pool.json" --port 0 > "$S/router.log" 2>&1 &
RPID=$!
PIDS="$PIDS $RPID"
i=0
until grep -q 'listening on' "$S/router.log" 2> /dev/null; do
    i=$((i + 1))
    [ $i -gt 600 ] && { echo "demo-serve: the router did not start; see $S/router.log" >&2; exit 2; }
    sleep 0.1
done
PORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$S/router.log" | head -1)
echo "== the pool on loopback: members s, m, l on ports $PORT_s, $PORT_m, $PORT_l; the router on $PORT"
echo "== $(wc -l < "$S/test-ids.txt") test questions through the router"
"$B/tools/serve_replay" --url "http://127.0.0.1:$PORT/v1" --data "$OUT/problems.jsonl" --ids "$S/test-ids.txt" \
    --max-tokens 8 --temperature 1 --seed 1 -o "$S/rollouts.jsonl"
kill -TERM "$RPID"
wait "$RPID" || true
"$P" grade rollouts --rollouts "$S/rollouts.jsonl" --data "$OUT/problems.jsonl" -o "$S/graded.jsonl" > /dev/null
n=$(wc -l < "$S/graded.jsonl")
c=$(grep -c '"correct":true' "$S/graded.jsonl" || true)
"$P" route log --db "$S/serve.db" | tee "$S/log.txt"
"$P" route log --db "$S/serve.db" --graded "$S/graded.jsonl" -o "$S/traffic-labels.jsonl"
cpq=$("$P" route log --db "$S/serve.db" --json | sed 's/.*"cost_per_query":\([^,}]*\).*/\1/')
echo "== live vs offline (test split, λ = $lambda calibrated on val)"
awk -v n="$n" -v c="$c" -v cpq="$cpq" 'BEGIN {printf "live router:     accuracy %.4f (%d/%d graded answers)  cost/query %.6g\n", c / n, c, n, cpq}'
grep -E '^ *utility' "$S/eval.txt" | head -1 | sed 's/^ */offline (route eval): /'
grep -E '^best_single' "$S/eval.txt"
