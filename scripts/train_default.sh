#!/usr/bin/env bash
# How the pretrained weights bundled until 2026-12-06 (src/unblur/weights/default.pth at 1678f56) were made,
# command for command. The weights bundled since are made by scripts/leaves_ab.sh and scripts/pick_strength.py
# (docs/MODEL_CARD.md).
#
#   scripts/train_default.sh            # synthesize the training set, then train (hours on 2 CPU cores)
#   scripts/train_default.sh --resume   # continue stage 2 (runs/unblurnet-psnr) from its checkpoint
#
# The training photos are the 23 in PHOTOS that the quality benchmark does not use (see
# scripts/quality_benchmark.sh). Validation, which picks the saved weights, uses the sequences that
# `unblur train` holds out of those (whole photos, never the benchmark's).
#
# Four stages, because that is how it went (docs/results.md, "How the bundled student came about"):
#  1. (CPU, here) 3,500 steps of MSE;
#  2. (CPU, here) from the EMA weights of stage 1 with a fresh optimizer, 6,500 steps of -PSNR per image
#     (--pixel-loss psnr), since MSE taught the student to sharpen lightly blurred frames as hard as badly
#     blurred ones. Its sharpen_model.pth (EMA, best validation epoch, step 4,500) was the bundled model
#     until 2026-11-25 (+0.48 dB); a variant decaying the learning rate to zero lowered validation.
#  3. (H100) stage 2's weights trained on with -PSNR at batch 16 on the first GPU session's GoPro-style set
#     (scripts/gpu_runs.sh's synthesis; 1,703 pairs) for 6.5 minutes (its best validation epoch: +0.57 dB):
#       unblur train --data data/gopro23 --out runs/gpu/unblurnet-gopro --model unblurnet \
#         --init runs/unblurnet-psnr/sharpen_model.pth --pixel-loss psnr --alpha 1 --edge-weight 0 --lr 2e-4 \
#         --warmup 500 --ema 0.999 --batch-size 16 --crop 256 --repeat 4 --val-limit 16 --epochs 1000 \
#         --cache --workers 6 --device cuda
#  4. the average of stages 2 and 3, which is src/unblur/weights/default.pth (+0.53 dB):
#       .venv/bin/python scripts/average_weights.py runs/unblurnet-psnr/sharpen_model.pth \
#         runs/gpu/unblurnet-gopro/sharpen_model.pth --t 0.5 --out src/unblur/weights/default.pth \
#         --meta val_psnr=31.8020 --meta val_ssim=0.8736 --meta "val_data=..." --note "..."
#     (the metadata of the bundled file holds the exact notes; val_* are its mean PSNR/SSIM on the 30
#     held-out frames of data/synth23, measured in float32).
# This script runs stages 1 and 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-../shared/photos}
DATA=${DATA:-data/synth23}
RUNS=${RUNS:-runs}
UNBLUR=${UNBLUR:-.venv/bin/unblur}

if [ "${1:-}" = "--resume" ]; then
  exec "$UNBLUR" train --out "$RUNS/unblurnet-psnr" --resume --max-steps 1000000
fi

if [ ! -d "$DATA/train" ]; then
  source scripts/photos.sh
  mapfile -t train_photos < <(training_photos "$PHOTOS")
  "$UNBLUR" synth "${train_photos[@]}" --out "$DATA" --split train --pairs-per-image 10 --size 720x1280 --seed 7
fi

COMMON=(--data "$DATA" --model unblurnet --alpha 1 --edge-weight 0 --ema 0.999 --batch-size 8
        --crop 192 --repeat 20 --val-limit 10 --cache --workers 0 --device cpu --fp32)  # float32, as they ran
# Stage 1, MSE only (alpha 1, no edge term): the seed's weighting is in effect an MS-SSIM + Sobel loss,
# which did not move PSNR in short runs. Warm-up: the residual head starts at zero.
"$UNBLUR" train "${COMMON[@]}" --lr 2e-4 --warmup 200 --epochs 200 --max-steps 3500 --out "$RUNS/unblurnet-mse"
# Stage 2: -PSNR per image, from stage 1's EMA weights.
"$UNBLUR" train "${COMMON[@]}" --lr 2e-4 --warmup 200 --epochs 200 --max-steps 6500 --pixel-loss psnr \
  --init "$RUNS/unblurnet-mse/checkpoint.pt" --out "$RUNS/unblurnet-psnr"
