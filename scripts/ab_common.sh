# Sourced by the from-scratch A/B scripts on data/gopro23-third (dilation_ab, schedule_ab, knee_ab,
# knee_sweep, width_ab): their shared settings, so that every arm differs from the others only in what
# its script names. DATA, RUNS and UNBLUR can be overridden from the environment.
#
#   AB_RECIPE   the flags every arm shares (data, loss weights, warm-up, EMA, batch 8 x 256^2 crops, 4 crops
#               per pair per epoch, 16 validation frames, cached, on the CPU); arms add --lr, --config, steps
#   ab_need_data  stop with a one-line error unless DATA holds a train split
#   ab_config NAME [KWARGS]  write RUNS/NAME.toml: model unblurnet, model_kwargs = { KWARGS } if given
DATA=${DATA:-data/gopro23-third}
RUNS=${RUNS:-runs/ab}
UNBLUR=${UNBLUR:-.venv/bin/unblur}
AB_RECIPE=(--data "$DATA" --alpha 1 --edge-weight 0 --warmup 200 --ema 0.999 --batch-size 8 --crop 256
           --repeat 4 --val-limit 16 --epochs 1000 --cache --workers 0 --device cpu)

ab_need_data() {
  [ -d "$DATA/train" ] || { echo "no $DATA/train: scripts/gpu_runs.sh makes it with PAIR_STEP=3 (see there)" >&2; exit 1; }
}

ab_config() {
  mkdir -p "$RUNS"
  if [ -n "${2:-}" ]; then
    printf 'model = "unblurnet"\nmodel_kwargs = { %s }\n' "$2" > "$RUNS/$1.toml"
  else
    printf 'model = "unblurnet"\n' > "$RUNS/$1.toml"
  fi
}
