#!/bin/sh
# run.sh — run every test binary given, show failures, and print the suite's closing line
# "N passed, N failed, N skipped". A binary that crashes or prints no RESULT line counts as one
# failed test. Exit status 1 when anything failed.
passed=0; failed=0; skipped=0
log=$(mktemp)
for t in "$@"; do
    name=$(basename "$t")
    if "$t" >"$log.out" 2>"$log.err"; then rc=0; else rc=$?; fi
    line=$(grep '^RESULT ' "$log.out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "CRASH $name (exit $rc):"; tail -n 20 "$log.err"; tail -n 5 "$log.out"
        failed=$((failed + 1)); continue
    fi
    p=$(echo "$line" | sed 's/.*passed=\([0-9]*\).*/\1/')
    f=$(echo "$line" | sed 's/.*failed=\([0-9]*\).*/\1/')
    s=$(echo "$line" | sed 's/.*skipped=\([0-9]*\).*/\1/')
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    printf '%-28s %4d passed %3d failed %3d skipped\n' "$name" "$p" "$f" "$s"
    if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
        grep -E '^(FAIL|SKIP|kept temp dir)' "$log.err" | head -n 40
        [ "$f" = 0 ] && { echo "  $name exited $rc"; tail -n 10 "$log.err"; failed=$((failed + 1)); }
    fi
    [ "$f" = 0 ] && grep -E "^SKIP" "$log.err" | head -n 5
done
rm -f "$log" "$log.out" "$log.err"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
