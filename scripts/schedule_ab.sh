#!/usr/bin/env bash
# Is the default student's recipe what holds it back? (issue #6, docs/results.md, "The recipe: the MSE stage is what gets the student moving")
# Result: +0.09 dB at most without the MSE stage, the identity at lr 1e-3 cosine, +0.43 with MSE for longer.
# The plain arm of scripts/dilation_ab.sh (MSE for 1,050 steps, then -PSNR for 2,450 from its EMA weights,
# lr 2e-4 constant: +0.37 dB) against other recipes of the same 3,500 steps, from scratch, with the same
# data, seed, batch and crops; each then scored on the quality benchmark:
#   psnr-const   -PSNR from the first step, lr 2e-4 constant (only the MSE stage dropped)
#   psnr-cosine  the same at lr 1e-3 decaying to zero by a cosine (only the learning rate changed)
# these two side by side, one thread each, and then alone with both threads:
#   mse-long     the plain arm with its stages' lengths swapped: MSE for 2,450 steps, -PSNR for 1,050
#
#   scripts/schedule_ab.sh     # needs data/gopro23-third, made by scripts/dilation_ab.sh; about 2.4 hours
#                              # on the 2-core AVX-512 EPYC (1.5 h for the first two arms, 48 min for mse-long)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ab_common.sh
ab_need_data
ab_config plain
COMMON=("${AB_RECIPE[@]}" --config "$RUNS/plain.toml")
PSNR=(--pixel-loss psnr --max-steps 3500)
OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" "${PSNR[@]}" --lr 2e-4 --out "$RUNS/psnr-const" \
  > "$RUNS/psnr-const.log" 2>&1 &
const=$!
OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" "${PSNR[@]}" --lr 1e-3 --cosine --out "$RUNS/psnr-cosine" \
  > "$RUNS/psnr-cosine.log" 2>&1
wait "$const"  # a failed run stops the script (set -e)
"$UNBLUR" train "${COMMON[@]}" --lr 2e-4 --max-steps 2450 --out "$RUNS/mse-long-mse" > "$RUNS/mse-long.log" 2>&1
"$UNBLUR" train "${COMMON[@]}" --lr 2e-4 --pixel-loss psnr --max-steps 1050 --init "$RUNS/mse-long-mse/checkpoint.pt" \
  --out "$RUNS/mse-long-psnr" >> "$RUNS/mse-long.log" 2>&1
scripts/quality_benchmark.sh "$RUNS"/{psnr-const,psnr-cosine,mse-long-psnr}/sharpen_model.pth
