#!/bin/sh
# demo.sh — the main job: pika end to end on its bundled model pool (models/pool), writing everything
# under demo-out/ (problems, rollouts, labels, activations, probes, reports, summary.txt).
# Usage: scripts/demo.sh [BUILD_DIR]; scripts/pipeline.sh documents the knobs (N, K, MODELS, OUT).
set -e
B=${1:-build}
OUT=${OUT:-demo-out} sh "$(dirname "$0")/pipeline.sh" "$B"
