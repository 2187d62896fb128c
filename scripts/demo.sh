#!/bin/sh
# demo.sh — the main job until the full pipeline lands: describe the bundled fixture model
# and generate from it. Usage: scripts/demo.sh [BUILD_DIR]
set -e
B=${1:-build}
M=${PIKA_SHARED:-../shared}/fixtures/models/stories260K.gguf
if [ ! -f "$M" ]; then echo "demo: $M not found (set PIKA_SHARED to the shared/ folder)" >&2; exit 2; fi
"$B/pika" info "$M"
echo "--- greedy continuation of 'Once upon a time' (ids):"
"$B/pika" generate --model "$M" --ids "1 403 407 261 378" -n 24 --temperature 0 --print-ids
