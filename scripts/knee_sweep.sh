#!/usr/bin/env bash
# Where does the knee go from here? (issue #6, docs/results.md, "A loss between MSE and -PSNR: the knee")
# knee-only of scripts/knee_ab.sh (--psnr-knee 30 from scratch, lr 2e-4 constant), run to 7,000 steps,
# peaked on validation at step 4,550 and adds faint artefacts to smooth frames near their target. Two follow-ups, one
# at a time with two threads:
#   knee-wide  the wider half-resolution level of scripts/width_ab.sh (widths 44, 64, 96: 951,248
#              parameters, 53,648 MACs/px) with the knee from scratch, 4,900 steps: does the unused MAC
#              budget help once the loss lets the student learn?
#   knee-psnr  knee-only's last EMA weights (step 7,000), then 1,750 steps of plain -PSNR, which weighs
#              frames near their target 100x more than badly blurred ones: does it undo the damage and keep the gain?
# then both scored on the quality benchmark (each run's best validation weights).
#
# Result (2026-12-04, docs/results.md): knee-wide +0.60 dB (as knee-only), knee-psnr +0.63 and the best SSIM
# (0.8675; resumed to 3,500 steps with `unblur train --out runs/ab/knee-psnr --resume --max-steps 3500`),
# validation 31.19-31.20 for both against the bundled weights' 31.32: the damage to smooth frames stays.
#
#   scripts/knee_sweep.sh     # needs data/gopro23-third (scripts/gpu_runs.sh, PAIR_STEP=3) and runs/ab/knee-only
#                             # (scripts/knee_ab.sh, then its knee-only arm resumed with --max-steps 7000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ab_common.sh
ab_need_data
[ -f "$RUNS/knee-only/checkpoint.pt" ] || { echo "no $RUNS/knee-only: scripts/knee_ab.sh makes it" >&2; exit 1; }
ab_config plain
ab_config wide "widths = [44, 64, 96]"
COMMON=("${AB_RECIPE[@]}" --lr 2e-4 --pixel-loss psnr)
OMP_NUM_THREADS=2 "$UNBLUR" train "${COMMON[@]}" --config "$RUNS/wide.toml" --psnr-knee 30 --max-steps 4900 \
  --out "$RUNS/knee-wide" > "$RUNS/knee-wide.log" 2>&1
OMP_NUM_THREADS=2 "$UNBLUR" train "${COMMON[@]}" --config "$RUNS/plain.toml" --max-steps 1750 \
  --init "$RUNS/knee-only/checkpoint.pt" --out "$RUNS/knee-psnr" > "$RUNS/knee-psnr.log" 2>&1
scripts/quality_benchmark.sh "$RUNS"/{knee-wide,knee-psnr}/sharpen_model.pth
