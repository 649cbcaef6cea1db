#!/usr/bin/env bash
# Where does the knee go from here? (issue #6, docs/results.md, "A loss between MSE and -PSNR: the knee")
# knee-only of scripts/knee_ab.sh (--psnr-knee 30 from scratch, lr 2e-4 constant) peaked on validation at
# step 4,550. Two arms of it for 4,900 steps, one at a time with two threads, each changing one thing:
#   knee-wide  the wider half-resolution level of scripts/width_ab.sh (widths 44, 64, 96: 951,248
#              parameters, 53,648 MACs/px): does the unused MAC budget help once the loss lets it learn?
#   knee-25    the knee at 25 dB instead of 30: nearer MSE
# then both scored on the quality benchmark (each run's best validation weights).
#
#   scripts/knee_sweep.sh     # needs data/gopro23-third (scripts/dilation_ab.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/gopro23-third}
RUNS=${RUNS:-runs/ab}
UNBLUR=${UNBLUR:-.venv/bin/unblur}

[ -d "$DATA/train" ] || { echo "no $DATA/train: scripts/dilation_ab.sh makes it" >&2; exit 1; }
mkdir -p "$RUNS"
printf 'model = "unblurnet"\n' > "$RUNS/plain.toml"
printf 'model = "unblurnet"\nmodel_kwargs = { widths = [44, 64, 96] }\n' > "$RUNS/wide.toml"
COMMON=(--data "$DATA" --alpha 1 --edge-weight 0 --warmup 200 --ema 0.999 --batch-size 8 --crop 256 --repeat 4
        --val-limit 16 --epochs 1000 --cache --workers 0 --device cpu --lr 2e-4 --pixel-loss psnr --max-steps 4900)
OMP_NUM_THREADS=2 "$UNBLUR" train "${COMMON[@]}" --config "$RUNS/wide.toml" --psnr-knee 30 --out "$RUNS/knee-wide" \
  > "$RUNS/knee-wide.log" 2>&1
OMP_NUM_THREADS=2 "$UNBLUR" train "${COMMON[@]}" --config "$RUNS/plain.toml" --psnr-knee 25 --out "$RUNS/knee-25" \
  > "$RUNS/knee-25.log" 2>&1
scripts/quality_benchmark.sh "$RUNS"/{knee-wide,knee-25}/sharpen_model.pth
