"""Render data/gopro23-third directly: pairs 0, 3, 6, ... 102 of each training photo's 105-pair sequence.

scripts/dilation_ab.sh links every third frame of the GoPro-sized set (scripts/gpu_runs.sh synth: photo k
of `training_photos`, `unblur synth --pairs-per-image 105 --size 720x1280 --seed 7000+k`, 57 minutes on
the 2-core CPU) into data/gopro23-third. Every pair's randomness comes from (seed, source, pair) alone, so
rendering just those pairs with synth's own functions gives the same bytes in a third of the time (on
2026-12-04 pair 0 of photo 0 matched `unblur synth` byte for byte; 23 photos took 16 minutes, two at a time):

    source scripts/photos.sh
    training_photos ../shared/photos | nl -v0 | awk '{print $2, $1}' |
      OMP_NUM_THREADS=1 xargs -P 2 -n 2 .venv/bin/python scripts/synth_third.py data/gopro23-third
"""

from __future__ import annotations

import sys
from pathlib import Path

from unblur import synth

SIZE = (720, 1280)
PAIRS = 105  # scripts/gpu_runs.sh's PAIRS_PER_PHOTO


def main() -> None:
    out, photo, k = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    linear = synth._load_linear(photo, SIZE)
    detail = synth.detail_map(linear)
    sequence = out / "train" / f"GOPR{k:04d}_00_00"
    for kind in ("blur", "blur_gamma", "sharp"):
        (sequence / kind).mkdir(parents=True, exist_ok=True)
    for i in range(0, PAIRS, 3):
        params = synth.draw_pair_params(synth._pair_rng(7000 + k, 0, i), tuple(linear.shape[-2:]), SIZE, True, detail)
        frames = tuple(t.cpu() for t in synth.render_pair(linear, params, SIZE))
        synth._write_pair(sequence, f"{i:06d}.png", *frames)
    print(f"{photo}: {PAIRS // 3} pairs in {sequence}", flush=True)


if __name__ == "__main__":
    main()
