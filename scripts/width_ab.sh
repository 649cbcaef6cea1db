#!/usr/bin/env bash
# Does the unused MAC budget help? (issue #6, docs/results.md, "A loss between MSE and -PSNR: the knee")
# The bundled UnblurNet uses 889k of the goal's 1M parameters but 40k of its 60k MACs per pixel. Its
# half-resolution level (widths[0] = 32 channels) is where MACs are cheap in parameters, so this arm widens
# it to 44: 951,248 parameters, 53,648 MACs/px. Trained from scratch with mse-long's recipe of
# scripts/schedule_ab.sh (the same data, seed, batch, crops: MSE for 2,450 steps, then -PSNR for 1,050 from
# its EMA weights; +0.43 dB for the bundled widths), then scored on the quality benchmark.
#
#   scripts/width_ab.sh     # needs data/gopro23-third (scripts/dilation_ab.sh)
#
# Not finished: on 2026-12-03 its MSE stage ran to the end beside another run (validation 31.04, 30.94,
# 30.85, 30.70, 30.63, 30.64, 30.66 dB by 350 steps; the bundled widths' 31.01, 30.80, 30.65, 30.54, 30.57,
# 30.64, 30.64), and the session ended 120 steps into its -PSNR stage, taking the run folder with it.
# The same widths with the knee (scripts/knee_sweep.sh, knee-wide) did as well as the bundled widths.
set -euo pipefail
cd "$(dirname "$0")/.."
MSE_THREADS=${MSE_THREADS:-2}  # 1 when it shares the CPU with another run
source scripts/ab_common.sh
ab_need_data
ab_config wide "widths = [44, 64, 96]"
COMMON=("${AB_RECIPE[@]}" --config "$RUNS/wide.toml" --lr 2e-4)
OMP_NUM_THREADS=$MSE_THREADS "$UNBLUR" train "${COMMON[@]}" --max-steps 2450 --out "$RUNS/wide-mse" > "$RUNS/wide.log" 2>&1
"$UNBLUR" train "${COMMON[@]}" --pixel-loss psnr --max-steps 1050 --init "$RUNS/wide-mse/checkpoint.pt" \
  --out "$RUNS/wide-psnr" >> "$RUNS/wide.log" 2>&1
scripts/quality_benchmark.sh "$RUNS/wide-psnr/sharpen_model.pth"
