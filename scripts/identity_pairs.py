"""Pairs with nothing to undo: sharp frames of the training photos as their own input, at several sizes.

Every student here sharpens unseen photos too hard, most on smaller frames, where a photo carries more
detail per pixel: it steepens soft edges that no motion blurred (docs/results.md, "Strength"). One global
strength (scripts/pick_strength.py) trades that loss against the gain on real blur everywhere at once.
Training on some pairs whose input already is the target asks the network itself to tell blur from soft
detail: here it must leave such frames alone. This writes, for every ``--every``-th sharp frame of each
training sequence of DATA (not the sequences ``unblur train`` holds out of it, seed 0, 10 %), one pair per
scale whose ``blur_gamma`` and ``sharp`` are the same file (a hard link), downscaled with Pillow's Lanczos
filter for scales below 1.

    .venv/bin/python scripts/identity_pairs.py data/gopro23-third data/identity --every 6 --scales 1 0.75 0.5

OUT/train/GOPR3<kk><s>_00_00 holds sequence kk of DATA at scale index s.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from PIL import Image

from unblur.data import find_pairs, hold_out_sequences
from unblur.io import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--every", type=int, default=6)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.75, 0.5])
    args = parser.parse_args()
    train, _ = hold_out_sequences(find_pairs(args.data, "train", "blur_gamma"), 0.1, 0)
    sequences = sorted({p.sequence for p in train})
    written = 0
    for k, sequence in enumerate(sequences):
        frames = [p.target for p in train if p.sequence == sequence][:: args.every]
        for s, scale in enumerate(args.scales):
            folder = args.out / "train" / f"GOPR3{k:02d}{s}_00_00"
            (folder / "sharp").mkdir(parents=True, exist_ok=True)
            (folder / "blur_gamma").mkdir(parents=True, exist_ok=True)
            for frame in frames:
                sharp = folder / "sharp" / frame.name
                if not sharp.exists():
                    with Image.open(frame) as img:
                        img = img.convert("RGB")
                        if scale != 1.0:
                            size = (round(img.width * scale), round(img.height * scale))
                            img = img.resize(size, Image.Resampling.LANCZOS)
                        with atomic_write(sharp) as tmp:
                            img.save(tmp, format="PNG")
                blur = folder / "blur_gamma" / frame.name
                if not blur.exists():
                    os.link(sharp, blur)
                written += 1
    print(f"wrote {written} identity pairs from {len(sequences)} sequences of {args.data} to {args.out}/train")


if __name__ == "__main__":
    main()
