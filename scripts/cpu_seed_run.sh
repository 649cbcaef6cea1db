#!/usr/bin/env bash
# Issue #6 item 2 without a GPU: StudentCNN_v3 with every setting of the seed's recipe at its full budget
# (30 epochs of the GoPro-sized synthesized set at batch 2: 31,500 steps) on the 2-core EPYC, where one
# epoch took 15-16 minutes of training in bf16 plus about 2.5 of validation on 2026-12-02 (30 epochs:
# about 9 hours), more than one session. So it runs across sessions: each synthesizes the same set again
# (same photos, sizes and seeds as `scripts/gpu_runs.sh synth`, rendered on the CPU: 57 minutes) unless
# data/gopro23 survived from an earlier session with its `done` marker, checks that it is the same set as
# before (the hash of every file's SHA-256, in docs/training/cpu-v3-seed/data.sha256), restores the last
# saved training state and resumes it with `unblur train --resume`.
#
#   scripts/cpu_seed_run.sh start    # all of that, detached (setsid): log in runs/cpu/v3-seed.log
#   scripts/cpu_seed_run.sh status   # what it is doing
#   scripts/cpu_seed_run.sh save     # copy the run's state so far into docs/training/cpu-v3-seed, to commit
#
# `save` copies checkpoint.pt (written atomically at each epoch end and every 5 minutes, so a copy is
# always whole), sharpen_model.pth (the best validation epoch's weights, which a later session may not
# beat), metrics.csv, config.json and loss_curve.png: about 5 MB. A resume from a checkpoint taken in the
# middle of an epoch replays that epoch's sample order but draws its remaining crops afresh (see
# unblur.train). If the set synthesized again differs from the recorded one (another CPU may round the
# rendering differently), `start` stops and says so; ALLOW_DATA_CHANGE=1 resumes anyway (say so in the
# results). When all 30 epochs are done, score it on the benchmark:
#   .venv/bin/unblur eval --data data/benchmark --weights runs/cpu/v3-seed/sharpen_model.pth
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=data/gopro23
RUN=runs/cpu/v3-seed
STATE=docs/training/cpu-v3-seed
UNBLUR=.venv/bin/unblur

data_hash() {  # one hash for the whole set: of the list of every PNG's SHA-256
  (cd "$DATA" && find train -name '*.png' | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -d ' ' -f 1
}

case "${1:-}" in
  start)
    mkdir -p runs/cpu
    setsid nohup "$0" run > runs/cpu/v3-seed.log 2>&1 < /dev/null &
    echo "started (pid $!); log: runs/cpu/v3-seed.log"
    ;;
  run)  # what `start` runs detached
    date
    if [ ! -e "$DATA/done" ]; then
      DATA=$DATA DEVICE=cpu JOBS=2 RUNS=runs/cpu ONLY=v3-seed UNBLUR=$UNBLUR scripts/gpu_runs.sh synth
      touch "$DATA/done"
      date
    fi
    hash=$(data_hash)
    echo "training set: $hash"
    [ -e "$STATE/data.sha256" ] || { mkdir -p "$STATE" && echo "$hash" > "$STATE/data.sha256"; }
    if [ "$hash" != "$(cat "$STATE/data.sha256")" ]; then
      echo "the synthesized set differs from the one the saved run trained on ($(cat "$STATE/data.sha256"))"
      [ "${ALLOW_DATA_CHANGE:-0}" = 1 ] || exit 1
    fi
    if [ -e "$STATE/checkpoint.pt" ] && [ ! -e "$RUN/checkpoint.pt" ]; then
      mkdir -p "$RUN"
      cp "$STATE"/checkpoint.pt "$STATE"/config.json "$STATE"/metrics.csv "$RUN"/
      if [ -e "$STATE/sharpen_model.pth" ]; then cp "$STATE/sharpen_model.pth" "$RUN"/; fi  # best so far
    fi
    if [ -e "$RUN/checkpoint.pt" ]; then
      "$UNBLUR" train --out "$RUN" --resume
    else
      "$UNBLUR" train --data "$DATA" --cache --device cpu --out "$RUN"
    fi
    date
    ;;
  status)
    tr '\r' '\n' < runs/cpu/v3-seed.log | grep -av '^ *$' | tail -n 3 | cut -c 1-220
    ;;
  save)
    mkdir -p "$STATE"
    for f in checkpoint.pt sharpen_model.pth metrics.csv config.json loss_curve.png; do
      if [ -e "$RUN/$f" ]; then cp "$RUN/$f" "$STATE/$f.tmp" && mv "$STATE/$f.tmp" "$STATE/$f"; fi
    done
    ls -l "$STATE"
    ;;
  *)
    echo "usage: $0 start | status | save" >&2
    exit 2
    ;;
esac
