#!/usr/bin/env bash
# Does a wider receptive field help the default student? (issue #6, docs/results.md, "A wider reach at no cost")
# UnblurNet as bundled against the same network with its 1/8-scale convolutions dilated
# (model_kwargs mid_dilations = [1, 2, 4, 8, 2, 1]: the same parameters and MACs, a reach of ±144 px
# instead of ±48 there), both from scratch with the same data, seed and steps, one thread each, side by
# side; then both scored on the quality benchmark.
#
#   scripts/dilation_ab.sh     # 78 minutes on the 2-core AVX-512 EPYC (S1 + S2 = 3,500 steps each)
#
# Result (docs/results.md): +0.37 dB plain, +0.39 dilated on the benchmark; no difference to speak of.
#
# Data: every third frame of data/gopro23 (the GoPro-sized set of scripts/cpu_seed_run.sh, 23 photos x
# 105 pairs), linked into data/gopro23-third: 805 pairs, so two cached runs fit in 24 GB. `unblur train`
# holds the same three photos out for validation as on the full set. Without data/gopro23,
# `PAIR_STEP=3 scripts/gpu_runs.sh synth` renders just those 805 pairs (the same bytes, a third of the time). Recipe: the bundled model's stages
# 1-2 (MSE to get the zero-initialized head moving, then -PSNR per image), at 256 px crops.
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=${FULL:-data/gopro23}
source scripts/ab_common.sh
S1=${S1:-1050}   # MSE steps
S2=${S2:-2450}   # -PSNR steps after those

if [ ! -d "$DATA/train" ]; then
  [ -d "$FULL/train" ] || { echo "no $FULL/train: make it with scripts/cpu_seed_run.sh or scripts/gpu_runs.sh synth" >&2; exit 1; }
  for seq in "$FULL"/train/*/; do
    for kind in blur_gamma sharp; do
      mkdir -p "$DATA/train/$(basename "$seq")/$kind"
      for f in $(ls "$seq$kind" | awk 'NR % 3 == 1'); do ln -s "$(realpath "$seq$kind/$f")" "$DATA/train/$(basename "$seq")/$kind/$f"; done
    done
  done
fi
ab_config plain
ab_config dilated "mid_dilations = [1, 2, 4, 8, 2, 1]"
COMMON=("${AB_RECIPE[@]}" --lr 2e-4)
arm() {  # arm NAME: stage 1 (MSE), then stage 2 (-PSNR) from stage 1's EMA weights
  OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" --config "$RUNS/$1.toml" --max-steps "$S1" --out "$RUNS/$1-mse"
  OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" --config "$RUNS/$1.toml" --max-steps "$S2" --pixel-loss psnr \
    --init "$RUNS/$1-mse/checkpoint.pt" --out "$RUNS/$1-psnr"
}
arm plain > "$RUNS/plain.log" 2>&1 &
plain=$!
arm dilated > "$RUNS/dilated.log" 2>&1
wait "$plain"  # a failed run stops the script (set -e)
scripts/quality_benchmark.sh "$RUNS"/{plain,dilated}-psnr/sharpen_model.pth
