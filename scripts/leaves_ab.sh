#!/usr/bin/env bash
# More varied scenes from dead-leaves images (issue #6, docs/results.md, "Dead leaves"):
#   knee-leaves  knee-only's recipe (scripts/knee_ab.sh: --psnr-knee 30 from scratch, lr 2e-4, 3,500 steps of
#                8 x 256^2 crops) on data/gopro23-third's 700 training pairs plus 700 pairs rendered the same
#                way (`unblur synth --pairs-per-image 105 --pair-step 3`, seed 8000 + k) from 20 dead-leaves
#                images (scripts/dead_leaves.py); --repeat 2 keeps 350 steps an epoch, so half the crops are
#                leaves. Validation: the same 16 frames of the same three held-out photos as knee-only.
#   knee-leaves-mw127  the same with UnblurNet's mean_window 127 instead of 255: its correction keeps no
#                change broader than 127 px (scripts/smooth_damage.py finds the damage on smooth frames there)
#   knee-leaves-mw63  the same with mean_window 63: knee-leaves-mw127 still darkens dark surroundings of
#                bright objects on lightly blurred frames, where its correction's mean is spread 63 px away
#   knee-softleaves-mw63  the same on other leaves (data/leaves-soft, data/mixed-soft): 40 % of their discs
#                with a soft rim (scripts/dead_leaves.py --soft 0.4); knee-leaves-mw127 steepens a photo's
#                soft bright edges into hard ones and loses up to 1.9 dB on smaller frames of unseen photos
#   knee-leaves-mw127-540  knee-leaves-mw127 with a third set of crops: 700 pairs at 960x540 from the same 20
#                training photos (seed 9000 + k), where a photo carries more detail per pixel, as on the
#                smaller unseen frames the leaves students damage; 2,100 pairs at --repeat 2: 525 steps an epoch
#   ft-leaves-540  not from scratch: FT_INIT (default: the bundled weights) trained on with -PSNR, no knee,
#                lr 1e-4, on knee-leaves-mw127-540's data. The run of 2026-12-06 (docs/results.md, "Strength")
#                started from the weights bundled until then (MSE then -PSNR, which passed the unseen pairs):
#                git show 1678f56:src/unblur/weights/default.pth > runs/bundled-1678f56.pth, FT_INIT=that
#   cont-leaves-mw127  knee-leaves-mw127's weights (CONT_INIT) trained on with its recipe and data, whose
#                validation was still rising at step 7,000, now with --val-extra data/val540: the weights kept
#                are those with the best mean gain over the input at 1280x720 and at 960x540. Its run of
#                2026-12-06 (7,000 steps) is the bundled model, at strength 0.70 (scripts/pick_strength.py);
#                CONT_INIT=docs/training/leaves-ab/cont-leaves-mw127/sharpen_model.pth goes on from there
#                (into the same run folder: move the first one aside); CONT_FLAGS adds flags to its recipe,
#                e.g. CONT_FLAGS="--cosine --seed 1" for a last run that decays the learning rate to zero
#                and draws other crops than the runs before it: that run (2026-12-06, docs/results.md, "Training
#                on once more") peaked at its step 4,200 and fell while the rate decayed; not bundled
#   cont-identity  cont-leaves-mw127 with 360 sharp-to-sharp pairs beside data/mixed's 1,400 (data/mixed-id;
#                scripts/identity_pairs.py: every sixth sharp frame of DATA's training sequences at three
#                sizes, its own input): can the network learn to leave soft detail alone? (docs/results.md,
#                "Pairs with nothing to undo": validation up, unseen photos and benchmark down; not bundled)
#   cont-softphotos  cont-leaves-mw127 with 360 more pairs (data/mixed-softphotos) rendered from copies of the
#                training photos softened by a Gaussian blur first: soft edges in input and target alike
#                (docs/results.md, "Softened photos": 3,520 steps, validation still rising, +0.84 dB at strength
#                0.75, the smallest unseen frames still losing more than the bundled weights'; not bundled; on
#                to 5,280 steps with RESUME=1 it kept step 4,400, docs/results.md, "Smaller frames")
#   cont-sizes   cont-softphotos's weights (CONT_INIT, default its run folder's: RUNS=runs/id RESUME=1 STEPS=5280
#                kept step 4,400) trained on with its pairs plus the training photos' at 960x540 and at 512x288
#                (data/photos540, data/photos288: 700 pairs each, seed 9000 + k; data/mixed-sizes: 3,160 pairs), where
#                blurs are shorter in pixels and detail denser: the sizes on which the students over-correct
#                (docs/results.md, "Smaller frames": best at step 2,370, +0.92 dB at strength 1, +0.77 at the
#                0.70 that three validation sizes pick; safer on unseen small frames, below the bundled
#                weights on the benchmark; not bundled)
#   cont-colors  cont-sizes' step 2,370 (CONT_INIT, default docs/training/leaves-ab/cont-sizes/sharpen_model.pth)
#                trained on with its data for 1,580 steps (two epochs), the learning rate 1e-4 decaying to zero,
#                --psnr-knee 40 instead of 30 (frames up to 40 dB, most 512x288 ones, weigh as under -PSNR) and
#                --shuffle-colors (each crop's colour channels in a random order, input and target alike).
#                Its run of 2026-12-07 is the bundled model, at strength 0.80 (docs/results.md, "Shuffled colours")
#   cont-extra   cont-colors' recipe on data/mixed-extra: data/mixed-sizes plus 525 pairs at 512x288 from the 15
#                free sample photos that scikit-image, scikit-learn and matplotlib carry (scripts/extra_photos.py;
#                pip install scikit-image==0.26.0 scikit-learn==1.9.1 first): more scenes where unseen photos
#                suffer most (docs/results.md, "More scenes")
#   val288       only renders data/val288: the held-out photos' 36 validation pairs at 512x288, for
#                scripts/pick_strength.py --val-data data/val540 data/val288
#   val540       only renders data/val540 (below), without the training data of the arms that make it
#   val405, val1080  the same at 720x405 (data/val405) and 1920x1080 (data/val1080): a strength per frame size
#                needs to know how the best strength runs between the sizes trained on and above them
# ARMS="knee-leaves-mw127" runs just that arm; STEPS (default 3500) sets the length of each; RESUME=1 goes on
# from the arm's last checkpoint to STEPS (its log appended to, not restarted). CHUNK=N trains
# in runs of N steps (--resume) and keeps each one's EMA as RUNS/NAME/step-S.pt, to score them afterwards
# (scripts/unseen_scales.py, scripts/val_score.py --val-data data/val540), e.g. whether damage grows with steps.
# data/val540 (made by every arm that uses data/mixed-540): 36 pairs at 960x540 of the three held-out
# training photos (seed 9000 + k, every ninth pair), validation at the smaller frame size, no unseen photo.
# Scored on the quality benchmark against knee-only's step 3,500 (+0.54 dB), and by held-out photo.
#
#   scripts/leaves_ab.sh     # needs data/gopro23-third (scripts/gpu_runs.sh, PAIR_STEP=3); two threads
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ab_common.sh
source scripts/photos.sh
ab_need_data
# The sequences `unblur train` holds out of DATA by itself (seed 0), so validation stays the same frames.
mapfile -t HELD_OUT < <(.venv/bin/python -c "import sys; from pathlib import Path
from unblur.data import find_pairs, hold_out_sequences
_, val = hold_out_sequences(find_pairs(Path(sys.argv[1]), 'train', 'blur_gamma'), 0.1, 0)
print(*sorted({p.sequence for p in val}), sep='\n')" "$DATA")
render() {  # OUT SIZE STEP SEED0 NAME0 K=IMAGE ...: every STEPth of 105 pairs of each IMAGE at SIZE (seed SEED0 + K),
            # two images at a time, one thread each; IMAGE K's sequence becomes OUT/train/GOPR<NAME0 + K>_00_00
  local out=$1 size=$2 step=$3 seed0=$4 name0=$5 item k
  shift 5
  mkdir -p "$out/parts" "$out/train"
  for item in "$@"; do
    k=${item%%=*}
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
    OMP_NUM_THREADS=1 "$UNBLUR" synth "${item#*=}" --out "$out/parts/$k" --pairs-per-image 105 --pair-step "$step" \
      --size "$size" --seed $((seed0 + k)) > "$out/parts/$k.log" 2>&1 &
  done
  wait
  for item in "$@"; do
    k=${item%%=*}
    mv "$out/parts/$k/train/GOPR0000_00_00" "$out/train/$(printf 'GOPR%04d_00_00' $((name0 + k)))"
  done
}
mixed() {  # LEAVES MIXED [DEAD_LEAVES_FLAGS]: 20 leaves images, their 700 pairs, DATA's linked beside them
  local leaves=$1 out=$2 k=0 items=() image sequence name dest
  [ -f "$leaves/leaves-19.png" ] ||
    .venv/bin/python scripts/dead_leaves.py "$leaves" 20 $(training_photos ../shared/photos) ${3:-}
  [ -d "$out/train" ] && return
  mkdir -p "$out/val/test"
  for image in "$leaves"/leaves-*.png; do items+=("$k=$image"); k=$((k + 1)); done
  render "$out" 720x1280 3 8000 100 "${items[@]}"
  for sequence in "$DATA"/train/GOPR*; do
    name=$(basename "$sequence")
    if [[ " ${HELD_OUT[*]} " == *" $name "* ]]; then dest=$out/val/test; else dest=$out/train; fi
    ln -s "$PWD/$sequence" "$dest/$name"
  done
}
small() {  # OUT [WHICH [SIZE [NAME0]]]: 35 pairs at SIZE (HxW, default 540x960; every third) from each
           # training photo whose sequence DATA does not hold out, as OUT/train (sequences GOPR<NAME0 + k>,
           # default 200); with WHICH held-out, 12 (every ninth) of each one it does, as OUT/test
  local out=$1 which=${2:-train} size=${3:-540x960} name0=${4:-200} photos k items=() held
  if [ "$which" = train ]; then [ -d "$out/train" ] && return; else [ -d "$out/test" ] && return; fi
  mapfile -t photos < <(training_photos ../shared/photos)
  for k in "${!photos[@]}"; do  # photo k is DATA's sequence GOPRkkkk_00_00 (scripts/gpu_runs.sh)
    held=train
    [[ " ${HELD_OUT[*]} " == *" $(printf 'GOPR%04d_00_00' "$k") "* ]] && held=held-out
    if [ "$held" = "$which" ]; then items+=("$k=${photos[$k]}"); fi
  done
  if [ "$which" = train ]; then
    render "$out" "$size" 3 9000 "$name0" "${items[@]}"
  else
    render "$out" "$size" 9 9000 "$name0" "${items[@]}"
    mv "$out/train" "$out/test"
  fi
}
with_mixed() {  # OUT EXTRA...: OUT/train links data/mixed's training sequences and each EXTRA/train's, OUT/val
                # data/mixed's validation (the same held-out frames for every arm); kept if it exists
  local out=$1 extra sequence
  [ -d "$out/train" ] && return
  mkdir -p "$out/train"
  ln -s "$PWD/data/mixed/val" "$out/val"
  for extra in data/mixed "${@:2}"; do
    for sequence in "$extra"/train/*; do
      ln -s "$(readlink -f "$sequence")" "$out/train/$(basename "$sequence")"
    done
  done
}
mixed540() {  # data/mixed-540: data/mixed's sequences and data/photos540's; data/val540 beside it
  mixed data/leaves data/mixed
  small data/photos540
  small data/val540 held-out
  with_mixed data/mixed-540 data/photos540
}
softphotos() {  # data/mixed-softphotos: data/mixed's sequences and 18 pairs (every sixth) of each training photo
               # DATA does not hold out, softened by a Gaussian of sigma 1.5 (even k) or 3 (odd k) photo pixels
               # first, so that both input and target hold soft edges that no motion made (data/softphotos)
  local photos k sigma items=()
  [ -d data/mixed-softphotos/train ] && return
  mapfile -t photos < <(training_photos ../shared/photos)
  mkdir -p data/softphotos/photos
  for k in "${!photos[@]}"; do
    [[ " ${HELD_OUT[*]} " == *" $(printf 'GOPR%04d_00_00' "$k") "* ]] && continue
    sigma=1.5
    ((k % 2)) && sigma=3
    [ -f "data/softphotos/photos/$k.png" ] || .venv/bin/python -c "import sys; from PIL import Image, ImageFilter
Image.open(sys.argv[1]).convert('RGB').filter(ImageFilter.GaussianBlur(float(sys.argv[2]))).save(sys.argv[3])" \
      "${photos[$k]}" "$sigma" "data/softphotos/photos/$k.png"
    items+=("$k=data/softphotos/photos/$k.png")
  done
  render data/softphotos 720x1280 6 10000 400 "${items[@]}"
  with_mixed data/mixed-softphotos data/softphotos
}
KNEE=(--lr 2e-4 --pixel-loss psnr --psnr-knee 30)
# cont-colors' recipe (the bundled weights' last run), and cont-extra's
COLORS=(--pixel-loss psnr --psnr-knee 40 --lr 1e-4 --cosine --warmup 100 --shuffle-colors --seed 2 --val-extra data/val540)
arm() {  # NAME MIXED [MODEL_KWARGS [FLAGS...]]: FLAGS default to KNEE
  local name=$1 data=$2 kwargs=${3:-} steps flags=("${KNEE[@]}")
  [ $# -gt 3 ] && flags=("${@:4}")
  mkdir -p "$RUNS"
  printf 'model = "unblurnet"\nval_data = "%s/val"\nval_split = "test"\n' "$data" > "$RUNS/$name.toml"
  [ -n "$kwargs" ] && printf 'model_kwargs = { %s }\n' "$kwargs" >> "$RUNS/$name.toml"
  run_train() {  # MAX_STEPS [--resume]
    "$UNBLUR" train "${AB_RECIPE[@]}" --data "$data" --config "$RUNS/$name.toml" "${flags[@]}" --repeat 2 \
      --max-steps "$1" --out "$RUNS/$name" "${@:2}" >> "$RUNS/$name.log" 2>&1
  }
  if [ -n "${RESUME:-}" ]; then
    run_train "${STEPS:-3500}" --resume
  elif [ -z "${CHUNK:-}" ]; then
    : > "$RUNS/$name.log"
    run_train "${STEPS:-3500}"
  else
    : > "$RUNS/$name.log"
    for ((steps = CHUNK; steps <= ${STEPS:-3500}; steps += CHUNK)); do
      if [ "$steps" = "$CHUNK" ]; then run_train "$steps"; else run_train "$steps" --resume; fi
      cp "$RUNS/$name/checkpoint.pt" "$RUNS/$name/step-$steps.pt"
    done
  fi
  scripts/quality_benchmark.sh "$RUNS/$name/sharpen_model.pth"
}
sizes_data() {  # data/mixed-sizes: cont-softphotos' pairs and the training photos' at 960x540 and 512x288
  mixed data/leaves data/mixed
  small data/val540 held-out
  softphotos
  small data/photos540
  small data/photos288 train 288x512 300
  with_mixed data/mixed-sizes data/softphotos data/photos540 data/photos288
}
extra_data() {  # data/mixed-extra: data/mixed-sizes' pairs and 35 at 512x288 (every third) of each of the 15
               # photos scripts/extra_photos.py writes (data/photos-extra, seed 11000 + k, sequences GOPR05kk)
  local k=0 items=() image
  sizes_data
  [ -d data/mixed-extra/train ] && return
  [ -f data/extra-photos/14-grace_hopper.png ] || .venv/bin/python scripts/extra_photos.py data/extra-photos
  for image in data/extra-photos/*.png; do items+=("$k=$image"); k=$((k + 1)); done
  render data/photos-extra 288x512 3 11000 500 "${items[@]}"
  with_mixed data/mixed-extra data/softphotos data/photos540 data/photos288 data/photos-extra
}
for name in ${ARMS:-knee-leaves knee-leaves-mw127}; do
  case $name in
    knee-leaves) mixed data/leaves data/mixed; arm knee-leaves data/mixed ;;
    knee-leaves-mw127) mixed data/leaves data/mixed; arm knee-leaves-mw127 data/mixed "mean_window = 127" ;;
    knee-leaves-mw63) mixed data/leaves data/mixed; arm knee-leaves-mw63 data/mixed "mean_window = 63" ;;
    knee-softleaves-mw63)
      mixed data/leaves-soft data/mixed-soft "--soft 0.4"
      arm knee-softleaves-mw63 data/mixed-soft "mean_window = 63" ;;
    knee-leaves-mw127-540) mixed540; arm knee-leaves-mw127-540 data/mixed-540 "mean_window = 127" ;;
    ft-leaves-540)
      mixed540
      arm ft-leaves-540 data/mixed-540 "" --init "${FT_INIT:-src/unblur/weights/default.pth}" --lr 1e-4 \
        --pixel-loss psnr ;;
    cont-leaves-mw127)  # data/mixed and data/val540 only: not mixed540's photo crops at 960x540
      mixed data/leaves data/mixed
      small data/val540 held-out
      arm cont-leaves-mw127 data/mixed "" "${KNEE[@]}" --val-extra data/val540 \
        --init "${CONT_INIT:-docs/training/leaves-ab/knee-leaves-mw127/sharpen_model.pth}" ${CONT_FLAGS:-} ;;
    cont-identity)  # cont-leaves-mw127 with a fifth of its pairs sharp-to-sharp (scripts/identity_pairs.py)
      mixed data/leaves data/mixed
      small data/val540 held-out
      [ -d data/identity/train ] || .venv/bin/python scripts/identity_pairs.py "$DATA" data/identity
      with_mixed data/mixed-id data/identity
      arm cont-identity data/mixed-id "" "${KNEE[@]}" --val-extra data/val540 \
        --init "${CONT_INIT:-docs/training/leaves-ab/cont-leaves-mw127/sharpen_model.pth}" ${CONT_FLAGS:-} ;;
    cont-softphotos)  # cont-leaves-mw127 with 360 more pairs from softened copies of the training photos
      mixed data/leaves data/mixed
      small data/val540 held-out
      softphotos
      arm cont-softphotos data/mixed-softphotos "" "${KNEE[@]}" --val-extra data/val540 \
        --init "${CONT_INIT:-docs/training/leaves-ab/cont-leaves-mw127/sharpen_model.pth}" ${CONT_FLAGS:-} ;;
    cont-sizes)  # cont-softphotos's pairs and the training photos' at 960x540 and 512x288 (700 of each)
      sizes_data
      arm cont-sizes data/mixed-sizes "" "${KNEE[@]}" --val-extra data/val540 \
        --init "${CONT_INIT:-runs/id/cont-softphotos/sharpen_model.pth}" ${CONT_FLAGS:-} ;;
    cont-colors)  # cont-sizes' data; the knee at 40 dB, channels shuffled, the rate decaying over STEPS=1580
      sizes_data
      arm cont-colors data/mixed-sizes "" "${COLORS[@]}" \
        --init "${CONT_INIT:-docs/training/leaves-ab/cont-sizes/sharpen_model.pth}" ${CONT_FLAGS:-} ;;
    cont-extra)  # cont-colors on data/mixed-extra: 15 more scenes at 512x288, where unseen photos suffer most
      extra_data
      arm cont-extra data/mixed-extra "" "${COLORS[@]}" \
        --init "${CONT_INIT:-docs/training/leaves-ab/cont-colors/sharpen_model.pth}" ${CONT_FLAGS:-} ;;
    val540) small data/val540 held-out ;;  # only data/val540, without mixed540's training data
    val288) small data/val288 held-out 288x512 ;;  # only the 512x288 validation pairs (scripts/pick_strength.py)
    val405) small data/val405 held-out 405x720 ;;  # the same at 720x405 and at 1920x1080: does the best
    val1080) small data/val1080 held-out 1080x1920 ;;  # strength follow the frame's size between and beyond?
    data) mixed540 ;;  # only the data
    *) echo "unknown arm $name" >&2; exit 1 ;;
  esac
done
