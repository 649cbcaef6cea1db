#!/usr/bin/env bash
# Knowledge distillation, measured (docs/results.md): one small student trained from scratch with the
# same data, seed and settings, alone and with the bundled model as its teacher (and alone with MSE
# instead of -PSNR, a control), then all scored on the quality benchmark.
#
#   scripts/distill_compare.sh   # about 50 min on 2 CPU cores for the two runs side by side, 30 for the control
#
# Teacher: src/unblur/weights/default.pth (unblurnet, 889k parameters, 40k MACs per pixel), trained by
# unblur itself (docs/MODEL_CARD.md; since 2026-12-06 another model than the one measured). The figures in docs/results.md used the weights bundled then
# (CPU stages 1-2); to replay them: git show 13f1ef5:src/unblur/weights/default.pth > runs/cpu-default.pth
# and TEACHER=runs/cpu-default.pth. Student: unblurnet at a quarter of the widths (16, 32, 48):
# 224k parameters, 10k MACs per pixel. Training data: the set scripts/train_default.sh synthesizes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/synth23}
RUNS=${RUNS:-runs}
UNBLUR=${UNBLUR:-.venv/bin/unblur}
TEACHER=${TEACHER:-src/unblur/weights/default.pth}

if [ ! -d "$DATA/train" ]; then
  echo "no training set in $DATA: make it with the synth step of scripts/train_default.sh" >&2
  exit 1
fi
mkdir -p "$RUNS"
config="$RUNS/distill-student.toml"
printf 'model = "unblurnet"\nmodel_kwargs = { widths = [16, 32, 48] }\n' > "$config"
COMMON=(--data "$DATA" --config "$config" --alpha 1 --edge-weight 0 --lr 2e-4 --warmup 200
        --ema 0.999 --batch-size 8 --crop 192 --repeat 20 --val-limit 10 --epochs 200 --max-steps 6000
        --cache --workers 0 --device cpu --fp32)  # float32, as they ran
# One thread each, side by side: on 2 cores that is faster than one run after the other.
OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" --pixel-loss psnr --out "$RUNS/student-plain" &
plain=$!
OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" --pixel-loss psnr --teacher "$TEACHER" --distill-weight 1 \
  --out "$RUNS/student-kd1"
wait "$plain"  # a failed run stops the script (set -e)
# Control: the same student alone with MSE instead of -PSNR. Its validation only fell, so its best
# weights are those of its first epoch: its last EMA weights (from checkpoint.pt) are scored too.
OMP_NUM_THREADS=1 "$UNBLUR" train "${COMMON[@]}" --pixel-loss mse --out "$RUNS/student-plain-mse"
mkdir -p "$RUNS/student-plain-mse-last"
"$(dirname "$UNBLUR")/python" -c 'import sys; from unblur.models import load_weights, save_weights
save_weights(sys.argv[2], load_weights(sys.argv[1]))' "$RUNS/student-plain-mse/checkpoint.pt" "$RUNS/student-plain-mse-last/sharpen_model.pth"
scripts/quality_benchmark.sh "$RUNS"/student-{plain,kd1,plain-mse,plain-mse-last}/sharpen_model.pth
