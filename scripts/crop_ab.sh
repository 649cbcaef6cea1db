#!/usr/bin/env bash
# Larger crops, same pixels per step (issue #6, docs/results.md, "Larger crops"):
#   knee-crop512  knee-only's recipe (scripts/knee_ab.sh: --psnr-knee 30 from scratch, lr 2e-4, 3,500 steps)
#                 with 2 crops of 512^2 per step instead of 8 of 256^2 (--repeat 1 keeps 350 steps an epoch)
# Why: the synthesized blurs reach 100+ px, and a 256 px crop is edge-padded by the network, so much of
# each training crop lacks the pixels its blur came from; at the same cost a 512 px crop has a quarter as
# much border per pixel. Scored on the quality benchmark against knee-only's step 3,500 (+0.54 dB).
#
#   scripts/crop_ab.sh     # needs data/gopro23-third (scripts/gpu_runs.sh, PAIR_STEP=3); two threads
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ab_common.sh
ab_need_data
ab_config plain
"$UNBLUR" train "${AB_RECIPE[@]}" --config "$RUNS/plain.toml" --lr 2e-4 --pixel-loss psnr --psnr-knee 30 \
  --batch-size 2 --crop 512 --repeat 1 --max-steps 3500 --out "$RUNS/knee-crop512" > "$RUNS/knee-crop512.log" 2>&1
scripts/quality_benchmark.sh "$RUNS"/knee-crop512/sharpen_model.pth
