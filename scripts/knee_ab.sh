#!/usr/bin/env bash
# A loss between MSE and -PSNR (issue #6, docs/results.md, "A loss between MSE and -PSNR")
# --psnr-knee 30 makes the pixel loss log(MSE + 1e-3): -PSNR for crops much blurrier than 30 dB, plain MSE
# for crops much sharper. Against the arms of scripts/schedule_ab.sh (same data, seed, batch, crops, steps):
#   knee-only  --psnr-knee 30 from the first step, 3,500 steps, lr 2e-4 constant (vs psnr-const: +0.09 dB)
#   knee-after mse-long's MSE stage (2,450 steps), then 1,050 steps with --psnr-knee 30 (vs mse-long: +0.43)
# side by side, one thread each; each then scored on the quality benchmark.
#
#   scripts/knee_ab.sh     # needs data/gopro23-third (scripts/dilation_ab.sh) and runs/ab/mse-long-mse
#                          # (scripts/schedule_ab.sh)
#
# Result (docs/results.md): on 2026-12-03 knee-only +0.52 dB, knee-after +0.45 (mse-long +0.43, psnr-const
# +0.09); knee-only again on 2026-12-04 (alone, two threads) +0.54, and run on with --resume --max-steps
# 7000 it peaked on validation at step 4,550 (+0.60 on the benchmark), adding faint artefacts to smooth frames.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ab_common.sh
ab_need_data
[ -f "$RUNS/mse-long-mse/checkpoint.pt" ] || { echo "no $RUNS/mse-long-mse: scripts/schedule_ab.sh makes it" >&2; exit 1; }
ab_config plain
COMMON=("${AB_RECIPE[@]}" --config "$RUNS/plain.toml" --lr 2e-4 --pixel-loss psnr --psnr-knee 30)
OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" --max-steps 3500 --out "$RUNS/knee-only" \
  > "$RUNS/knee-only.log" 2>&1 &
only=$!
OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" --max-steps 1050 --init "$RUNS/mse-long-mse/checkpoint.pt" \
  --out "$RUNS/knee-after" > "$RUNS/knee-after.log" 2>&1
wait "$only"  # a failed run stops the script (set -e)
scripts/quality_benchmark.sh "$RUNS"/{knee-only,knee-after}/sharpen_model.pth
