#!/usr/bin/env bash
# The fixed quality benchmark (issue "a student that really sharpens"): GoPro-style 720p pairs made by
# `unblur synth` with a fixed seed from photos that are never used for training, then `unblur eval` of
# each weights file given, against the blurry input and an unsharp mask in the same run.
#
#   scripts/quality_benchmark.sh [WEIGHTS ...]
#
# PHOTOS (default ../shared/photos), BENCH (default data/benchmark) and UNBLUR (default .venv/bin/unblur)
# can be overridden from the environment. Re-running regenerates the same files byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-../shared/photos}
BENCH=${BENCH:-data/benchmark}
UNBLUR=${UNBLUR:-.venv/bin/unblur}
source scripts/photos.sh
mapfile -t HELD_OUT < <(benchmark_photos "$PHOTOS")

if [ ! -d "$BENCH/test" ]; then
  "$UNBLUR" synth "${HELD_OUT[@]}" --out "$BENCH" --split test --pairs-per-image 4 --size 720x1280 --seed 2026
fi
for weights in "$@"; do
  name=$(basename "$(dirname "$weights")")
  "$UNBLUR" eval --data "$BENCH" --split test --input blur_gamma --weights "$weights" --out "results/benchmark/$name"
done
