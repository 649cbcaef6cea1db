#!/usr/bin/env bash
# How the bundled pretrained weights (src/unblur/weights/default.pth) were made, command for command.
#
#   scripts/train_default.sh            # synthesize the training set, then train (hours on 2 CPU cores)
#   scripts/train_default.sh --resume   # continue the run in runs/unblurnet-mse from its last checkpoint
#
# The training photos are the 23 in PHOTOS that the quality benchmark does not use (see
# scripts/quality_benchmark.sh). Validation, which picks the saved weights, uses the sequences that
# `unblur train` holds out of those (whole photos, never the benchmark's). The run has no fixed end
# (constant learning rate, EMA of the weights): it was stopped by hand, and its sharpen_model.pth (the
# EMA weights of the best validation epoch) copied to the package. docs/MODEL_CARD.md says after how long.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-../shared/photos}
DATA=${DATA:-data/synth23}
RUN=${RUN:-runs/unblurnet-mse}
UNBLUR=${UNBLUR:-.venv/bin/unblur}

if [ "${1:-}" = "--resume" ]; then
  exec "$UNBLUR" train --out "$RUN" --resume
fi

if [ ! -d "$DATA/train" ]; then
  train_photos=()
  for photo in "$PHOTOS"/*.jpg; do
    case "$(basename "$photo")" in
      seeding-* | sunset-* | kleiber-* | mate-storm.jpg | mate-ladybird.jpg) ;;  # the benchmark's photos
      *) train_photos+=("$photo") ;;
    esac
  done
  "$UNBLUR" synth "${train_photos[@]}" --out "$DATA" --split train --pairs-per-image 10 --size 720x1280 --seed 7
fi

# MSE only (alpha 1, no edge term): the seed's weighting is in effect an MS-SSIM + Sobel loss, which
# did not move PSNR in short runs (docs/results.md). Warm-up: the residual head starts at zero.
"$UNBLUR" train --data "$DATA" --out "$RUN" --model unblurnet --alpha 1 --edge-weight 0 --lr 2e-4 --warmup 200 \
  --ema 0.999 --batch-size 8 --crop 192 --repeat 20 --epochs 200 --val-limit 10 --cache --workers 0 --device cpu
