#!/bin/sh
# pipeline.sh — pika end to end on its own model pool (models/pool): for each model, sample k answers
# per problem of the synthetic math task, grade them, derive labels, extract EOI activations, train a
# probe on majority-vote correctness, compare it with the length and TF-IDF baselines on held-out
# problems, write a report, and compare the task's human difficulty rating with model difficulty.
# Then route: arms = each model at k=1 (target success_rate, probe trained on it) and k=K (majority vote),
# cost = 2 x parameters x tokens (a FLOPs proxy, in MFLOP), the held-out problems split by id hash into
# val (calibration) and test (result); `pika route table | calibrate | eval | report` under OUT/route.
# Every step resumes or is cheap to redo.
#
# usage: scripts/pipeline.sh [BUILD_DIR]   (env: N problems (600), K samples (5), MODELS ("s m l"),
#                                           OUT dir (pipeline-out), THREADS (all cores))
set -e
B=${1:-build}
N=${N:-600}
K=${K:-5}
MODELS=${MODELS:-"s m l"}
OUT=${OUT:-pipeline-out}
THREADS=${THREADS:-0}
P="$B/pika"
T=""
[ "$THREADS" != 0 ] && T="--threads $THREADS"
mkdir -p "$OUT"
"$B/tools/mathtask_data" --split test --n "$N" --out "$OUT/problems.jsonl"
TARGET=majority_vote_is_correct
printf '%-8s %8s %8s | %-24s %-24s %-24s\n' model params accuracy "probe AUROC [95% CI]" "length AUROC" "tfidf AUROC" > "$OUT/summary.txt"
for m in $MODELS; do
    M="models/pool/pika-math-$m.gguf"
    D="$OUT/$m"
    mkdir -p "$D"
    echo "== pika-math-$m: sample $K answers for $N problems, grade, label"
    $P sample --model "$M" --data "$OUT/problems.jsonl" --out "$D/rollouts.jsonl" -k "$K" --max-tokens 8 \
        --temperature 1 --seed 1 --resume $T
    $P grade rollouts --rollouts "$D/rollouts.jsonl" --data "$OUT/problems.jsonl" -o "$D/graded.jsonl"
    $P labels --rollouts "$D/graded.jsonl" --data "$OUT/problems.jsonl" --k 1,$K -o "$D/labels.jsonl"
    echo "== pika-math-$m: extract EOI activations (all layers)"
    $P extract --model "$M" --data "$OUT/problems.jsonl" --out "$D/acts" --dtype f32 --resume $T
    echo "== pika-math-$m: probe and baselines (train on split=train, evaluate on split=test)"
    $P probe train --acts "$D/acts" --labels "$D/labels.jsonl" --target $TARGET --split split=train \
        -o "$D/probe.json" --cv-table "$D/cv.tsv" > "$D/probe-train.txt"
    $P probe predict --probe "$D/probe.json" --acts "$D/acts" --labels "$D/labels.jsonl" --split split=test \
        -o "$D/probe.pred.jsonl"
    # routing arms: the k=K probe on every problem (train rows only feed the arms' mean costs), and a k=1 probe
    $P probe predict --probe "$D/probe.json" --acts "$D/acts" -o "$D/route-k$K.pred.jsonl"
    $P probe train --acts "$D/acts" --labels "$D/labels.jsonl" --target success_rate --split split=train \
        -o "$D/probe-k1.json" > /dev/null
    $P probe predict --probe "$D/probe-k1.json" --acts "$D/acts" -o "$D/route-k1.pred.jsonl"
    for kind in length tfidf; do
        $P baseline train --kind $kind --data "$OUT/problems.jsonl" --text-field problem --tokenizer "$M" \
            --labels "$D/labels.jsonl" --target $TARGET --split split=train -o "$D/$kind.json" > /dev/null
        $P baseline predict --baseline "$D/$kind.json" --data "$OUT/problems.jsonl" --text-field problem \
            --tokenizer "$M" --labels "$D/labels.jsonl" --split split=test -o "$D/$kind.pred.jsonl"
    done
    $P probe eval --pred "$D/probe.pred.jsonl" --labels "$D/labels.jsonl" --target $TARGET \
        --compare "$D/tfidf.pred.jsonl" > "$D/eval.txt"
    $P report --out "$D/report" --probe "$D/probe.json" --baseline "$D/length.json" --baseline "$D/tfidf.json" \
        --pred probe="$D/probe.pred.jsonl" --pred length="$D/length.pred.jsonl" --pred tfidf="$D/tfidf.pred.jsonl" \
        --labels "$D/labels.jsonl" --target $TARGET > /dev/null
    $P difficulty --acts "$D/acts" --labels "$D/labels.jsonl" --human level --success $TARGET --split split=train \
        --out "$D/difficulty" > /dev/null
    cat "$D/eval.txt"
    auroc() { $P probe eval --pred "$1" --labels "$D/labels.jsonl" --target $TARGET | awk '/auroc/ {print $2, $3, $4}'; }
    acc=$(awk -F'"majority_vote_is_correct":' '{split($2, a, /[,}]/); n++; if (a[1] == "true") c++} END {printf "%.3f", c / n}' "$D/labels.jsonl")
    params=$($P info "$M" | awk '/^parameters:/ {print $2}')
    printf '%-8s %8s %8s | %-24s %-24s %-24s\n' "$m" "$params" "$acc" "$(auroc "$D/probe.pred.jsonl")" \
        "$(auroc "$D/length.pred.jsonl")" "$(auroc "$D/tfidf.pred.jsonl")" >> "$OUT/summary.txt"
done
echo "== summary (majority-vote correctness over $K samples; AUROC on the held-out 30% of $N problems)"
cat "$OUT/summary.txt"
echo "== routing over the pool: arms = model x {k=1, k=$K}, cost = 2 x params x tokens (MFLOP)"
R="$OUT/route"
mkdir -p "$R"
ARMS=""
PROBES=""
for m in $MODELS; do
    D="$OUT/$m"
    pr=$(( 2 * $($P info "models/pool/pika-math-$m.gguf" | awk '/^parameters:/ {print $2}') ))
    # the probes read the model's prompt prefill (cost tokens_in x 2 x params), charged once per model: on its k=K arm
    ARMS="$ARMS --arm name=$m-k1,labels=$D/labels.jsonl,pred=$D/route-k1.pred.jsonl,price_in=$pr,price_out=$pr,k=1"
    ARMS="$ARMS,target=success_rate"
    ARMS="$ARMS --arm name=$m-k$K,labels=$D/labels.jsonl,pred=$D/route-k$K.pred.jsonl,price_in=$pr,price_out=$pr"
    ARMS="$ARMS,prefill_price=$pr"
    PROBES="$PROBES --probe $m-k1=$D/probe-k1.json --probe $m-k$K=$D/probe.json"
done
# shellcheck disable=SC2086
$P route table $ARMS --val-frac 0.5 -o "$R/table.jsonl"
first=${MODELS%% *}
last=${MODELS##* }
PAIR="$first-k1,$last-k$K"
best_val=$($P route eval --table "$R/table.jsonl" --split val --bootstrap 0 | awk '/^best_single:/ {print $4}')
$P route calibrate --table "$R/table.jsonl" --split val --eval-split test --target-accuracy "$best_val" \
    $PROBES -o "$R/router.json" | tee "$R/calibrate.txt"
$P route eval --table "$R/table.jsonl" --split test --pair "$PAIR" > "$R/eval.txt"
$P route eval --table "$R/table.jsonl" --split test --pair "$PAIR" --json > "$R/eval.json"
$P route report --table "$R/table.jsonl" --split test --pair "$PAIR" --out "$R/report" --title "pika pool, $N problems" > /dev/null
grep -E '^(best_single|savings|AIQ|pair|paired)' "$R/eval.txt"
echo "reports: $OUT/*/report/report.md, $OUT/*/difficulty/difficulty.md, $R/report/report.html"
