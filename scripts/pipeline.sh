#!/bin/sh
# pipeline.sh — pika end to end on its own model pool (models/pool): for each model, sample k answers
# per problem of the synthetic math task, grade them, derive labels, extract EOI activations, train a
# probe on majority-vote correctness, compare it with the length, TF-IDF and prompting baselines on held-out
# problems, write a report, and compare the task's human difficulty rating with model difficulty.
# Then route: arms = each model at k=1 (target success_rate, probe trained on it) and k=K (majority vote),
# cost = 2 x parameters x tokens (a FLOPs proxy, in MFLOP), the held-out problems split by id hash into
# val (calibration) and test (result); `pika route table | calibrate | eval | report` under OUT/route.
# Reader probes: every model's activations (the reader) predict every member's success
# (`pika probe train-pool`, one shared fold assignment), scored on the held-out split against the
# member's own probe (OUT/reader/summary.md); routing again with each reader's probes for every arm
# (one prefill, the reader's, instead of one per member; OUT/route-reader/summary.md). Transfer: a probe trained on bare expressions
# scored on word problems and back (OUT/transfer/summary.md). `pika study` puts everything in one
# page: OUT/study/study.html (+ study.md).
# Every step resumes or is cheap to redo.
#
# usage: scripts/pipeline.sh [BUILD_DIR]   (env: N problems (600), K samples (5), MODELS ("s m l"),
#                                           OUT dir (pipeline-out), THREADS (all cores),
#                                           READER (the first model: the reader the study details))
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
printf '%-8s %8s %8s | %-24s %-24s %-24s %-24s\n' model params accuracy "probe AUROC [95% CI]" "length AUROC" "tfidf AUROC" \
    "prompting AUROC" > "$OUT/summary.txt"
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
    # the prompting baseline: the model asked (one prefill) whether it will solve the problem; P(yes) vs P(no)
    $P baseline train --kind prompting --model "$M" --data "$OUT/problems.jsonl" --labels "$D/labels.jsonl" --target $TARGET \
        --split split=train -o "$D/prompting.json" $T > /dev/null
    $P baseline predict --baseline "$D/prompting.json" --model "$M" --data "$OUT/problems.jsonl" --labels "$D/labels.jsonl" \
        --split split=test -o "$D/prompting.pred.jsonl" $T
    $P probe eval --pred "$D/probe.pred.jsonl" --labels "$D/labels.jsonl" --target $TARGET \
        --compare "$D/tfidf.pred.jsonl" > "$D/eval.txt"
    $P report --out "$D/report" --probe "$D/probe.json" --baseline "$D/length.json" --baseline "$D/tfidf.json" \
        --baseline "$D/prompting.json" --pred probe="$D/probe.pred.jsonl" --pred length="$D/length.pred.jsonl" \
        --pred tfidf="$D/tfidf.pred.jsonl" --pred prompting="$D/prompting.pred.jsonl" \
        --labels "$D/labels.jsonl" --target $TARGET > /dev/null
    $P difficulty --acts "$D/acts" --labels "$D/labels.jsonl" --human level --success $TARGET --split split=train \
        --out "$D/difficulty" > /dev/null
    cat "$D/eval.txt"
    auroc() { $P probe eval --pred "$1" --labels "$D/labels.jsonl" --target $TARGET | awk '/auroc/ {print $2, $3, $4}'; }
    acc=$(awk -F'"majority_vote_is_correct":' '{split($2, a, /[,}]/); n++; if (a[1] == "true") c++} END {printf "%.3f", c / n}' "$D/labels.jsonl")
    params=$($P info "$M" | awk '/^parameters:/ {print $2}')
    printf '%-8s %8s %8s | %-24s %-24s %-24s %-24s\n' "$m" "$params" "$acc" "$(auroc "$D/probe.pred.jsonl")" \
        "$(auroc "$D/length.pred.jsonl")" "$(auroc "$D/tfidf.pred.jsonl")" "$(auroc "$D/prompting.pred.jsonl")" >> "$OUT/summary.txt"
done
# ---- reader probes: reader r's activations -> member m's success, for every (r, m)
RD="$OUT/reader"
mkdir -p "$RD"
MEMBERS=""
for m in $MODELS; do MEMBERS="$MEMBERS --member $m=$OUT/$m/labels.jsonl"; done
pair_eval() { # pred compare labels -> "auroc [lo, hi]<TAB>auroc2 [lo, hi]<TAB>delta [lo, hi] p"
    $P probe eval --pred "$1" --compare "$2" --labels "$3" --target $TARGET | awk '
        /^ *auroc/ {a[++n] = $2 " " $3 " " $4}
        /^paired/ {d = $11 " " $12 " " $13; p = $14 " " $15 " " $16}
        END {printf "%s\t%s\t%s %s\n", a[1], a[2], d, p}'
}
printf '| reader | member | reader probe AUROC [95%% CI] | own probe AUROC | reader − own (paired) | joint-selection AUROC | joint − independent (paired) | member'"'"'s length AUROC | member'"'"'s TF-IDF AUROC |\n|---|---|---|---|---|---|---|---|---|\n' > "$RD/summary.md"
auroc_of() { $P probe eval --pred "$1" --labels "$2" --target $TARGET | awk '/auroc/ {print $2, $3, $4}'; }
for r in $MODELS; do
    echo "== reader pika-math-$r: probes for every member"
    # shellcheck disable=SC2086
    $P probe train-pool --acts "$OUT/$r/acts" $MEMBERS --target $TARGET --split split=train -o "$RD/$r" > "$RD/$r.train.txt"
    # shellcheck disable=SC2086
    $P probe train-pool --acts "$OUT/$r/acts" $MEMBERS --target $TARGET --split split=train --joint -o "$RD/$r-joint" > "$RD/$r-joint.train.txt"
    for m in $MODELS; do
        L="$OUT/$m/labels.jsonl"
        $P probe predict --probe "$RD/$r/$m.json" --acts "$OUT/$r/acts" --labels "$L" --split split=test -o "$RD/$r/$m.pred.jsonl" 2> /dev/null
        $P probe predict --probe "$RD/$r-joint/$m.json" --acts "$OUT/$r/acts" --labels "$L" --split split=test -o "$RD/$r-joint/$m.pred.jsonl" 2> /dev/null
        own=$(pair_eval "$RD/$r/$m.pred.jsonl" "$OUT/$m/probe.pred.jsonl" "$L")
        joint=$(pair_eval "$RD/$r-joint/$m.pred.jsonl" "$RD/$r/$m.pred.jsonl" "$L")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$m" "$own" "$joint" "$(auroc_of "$OUT/$m/length.pred.jsonl" "$L")" \
            "$(auroc_of "$OUT/$m/tfidf.pred.jsonl" "$L")" |
            awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $8, $9, $10}' >> "$RD/summary.md"
    done
done
echo "== reader probes (rows: reader's activations; AUROC on the held-out 30%)"
cat "$RD/summary.md"
# ---- transfer: train on bare expressions (word = 0), test on word problems (word = 1), and back
XD="$OUT/transfer"
mkdir -p "$XD"
printf '| model | test on | in-domain AUROC [95%% CI] | transferred AUROC | transfer − in-domain (paired) |\n|---|---|---|---|---|\n' > "$XD/summary.md"
for m in $MODELS; do
    D="$OUT/$m"
    # labels + a "domain" field: bare|word, then -train|-test (the problems' word factor x the split)
    awk 'FNR == NR { if (match($0, /"id":"[^"]*"/)) { id = substr($0, RSTART, RLENGTH); w[id] = ($0 ~ /"word":1/) ? "word" : "bare" } next }
         { match($0, /"id":"[^"]*"/); id = substr($0, RSTART, RLENGTH); sp = ($0 ~ /"split":"train"/) ? "train" : "test"
           sub(/}$/, ",\"domain\":\"" w[id] "-" sp "\"}"); print }' "$OUT/problems.jsonl" "$D/labels.jsonl" > "$XD/$m.labels.jsonl"
    ok=1
    for dom in bare word; do
        $P probe train --acts "$D/acts" --labels "$XD/$m.labels.jsonl" --target $TARGET --split domain=$dom-train \
            -o "$XD/$m-$dom.json" > "$XD/$m-$dom.train.txt" 2>&1 || ok=0
    done
    if [ $ok = 0 ]; then # e.g. too few rows of a class for the CV folds on a small run
        echo "transfer $m: skipped ($(tail -1 "$XD/$m-bare.train.txt" "$XD/$m-word.train.txt" | grep pika: | head -1))"
        printf '| %s | n/a (probe training failed: too few rows) | | | |\n' "$m" >> "$XD/summary.md"
        continue
    fi
    for pair in "word bare" "bare word"; do
        set -- $pair
        $P probe predict --probe "$XD/$m-$1.json" --acts "$D/acts" --labels "$XD/$m.labels.jsonl" --split domain=$2-test \
            -o "$XD/$m-$1-on-$2.pred.jsonl" 2> /dev/null
        $P probe predict --probe "$XD/$m-$2.json" --acts "$D/acts" --labels "$XD/$m.labels.jsonl" --split domain=$2-test \
            -o "$XD/$m-$2-on-$2.pred.jsonl" 2> /dev/null
        res=$(pair_eval "$XD/$m-$1-on-$2.pred.jsonl" "$XD/$m-$2-on-$2.pred.jsonl" "$XD/$m.labels.jsonl")
        printf '%s\t%s\t%s\n' "$m" "$2 (trained on $1)" "$res" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $4, $3, $5}' >> "$XD/summary.md"
    done
done
echo "== transfer (probe trained on one framing, scored on the other's held-out rows)"
cat "$XD/summary.md"
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
# ---- the same routing with READER's probes for every arm: one prefill (READER's) per query
READER=${READER:-$first}
RS="$OUT/route-reader/summary.md"
mkdir -p "$OUT/route-reader"
route_row() { # name eval.txt -> one table row
    sv=$(sed -n 's/^savings: //p' "$2")
    ov=$(sed -n 's/^savings counting the probes. reader overhead (\([^)]*\)): \(.*\)$/\2 (overhead \1)/p' "$2")
    pa=$(sed -n 's/^paired bootstrap, router − best_single accuracy: //p' "$2")
    printf '| %s | %s | %s | %s |\n' "$1" "$sv" "$ov" "$pa" >> "$RS"
}
printf '| probes | savings at the best single arm'"'"'s accuracy | counting the probes'"'"' prefill | router − best single accuracy (paired) |\n|---|---|---|---|\n' > "$RS"
route_row "own (one prefill per member)" "$R/eval.txt"
for r in $MODELS; do
    RR="$OUT/route-reader/$r"
    mkdir -p "$RR"
    # shellcheck disable=SC2086
    $P probe train-pool --acts "$OUT/$r/acts" $MEMBERS --target success_rate --split split=train -o "$RD/$r-k1" > /dev/null
    ARMS=""
    for m in $MODELS; do
        D="$OUT/$m"
        pr=$(( 2 * $($P info "models/pool/pika-math-$m.gguf" | awk '/^parameters:/ {print $2}') ))
        $P probe predict --probe "$RD/$r-k1/$m.json" --acts "$OUT/$r/acts" -o "$RR/$m-k1.pred.jsonl" 2> /dev/null
        $P probe predict --probe "$RD/$r/$m.json" --acts "$OUT/$r/acts" -o "$RR/$m-k$K.pred.jsonl" 2> /dev/null
        ARMS="$ARMS --arm name=$m-k1,labels=$D/labels.jsonl,pred=$RR/$m-k1.pred.jsonl,price_in=$pr,price_out=$pr,k=1"
        ARMS="$ARMS,target=success_rate"
        ARMS="$ARMS --arm name=$m-k$K,labels=$D/labels.jsonl,pred=$RR/$m-k$K.pred.jsonl,price_in=$pr,price_out=$pr"
        # the one prefill: the reader's, charged once (on the reader's own k=K arm)
        [ "$m" = "$r" ] && ARMS="$ARMS,prefill_price=$pr"
    done
    # shellcheck disable=SC2086
    $P route table $ARMS --val-frac 0.5 -o "$RR/table.jsonl"
    $P route eval --table "$RR/table.jsonl" --split test --pair "$PAIR" > "$RR/eval.txt"
    $P route report --table "$RR/table.jsonl" --split test --pair "$PAIR" --out "$RR/report" \
        --title "pika pool, $N problems, every arm's probe read from pika-math-$r" > /dev/null
    route_row "reader $r (one prefill, $r's)" "$RR/eval.txt"
done
echo "== routing with own probes vs each reader's probes for every arm (test split)"
cat "$RS"
$P study --pipeline "$OUT" --models "$MODELS" --reader "$READER" --target $TARGET --k "$K" --out "$OUT/study" \
    --title "pika study: pool $MODELS, $N problems of the synthetic math task" \
    --version "$(git describe --always --dirty 2>/dev/null || echo unknown)"
echo "reports: $OUT/*/report/report.md, $OUT/*/difficulty/difficulty.md, $R/report/report.html, $OUT/study/study.html"
