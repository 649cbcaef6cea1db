"""Score weights on unseen pairs at three frame sizes: the test suite's check, and the smaller frames it misses.

`tests/test_pretrained.py` synthesizes eight 1280×720 pairs from the two bundled photos no training used
(seeding, sunset; seed 2026) and asks the bundled weights for a mean gain with no pair much worse. A
student can pass there and still damage smaller frames, where the same photos carry more detail per
pixel: so this also scores eight 960×540 pairs (seed 5) and four 512×288 (seed 1), in float32 eager on
the CPU as the test does, and prints each pair's gain over its blurry input.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/unseen_scales.py WEIGHTS[@MEAN_WINDOW] ...

`@63` overrides UnblurNet's `mean_window` at inference (the window its correction's mean is taken over).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import torch

from unblur.data import find_pairs
from unblur.device import inference_plan
from unblur.infer import Sharpener
from unblur.io import read_image
from unblur.metrics import psnr
from unblur.models import load_weights
from unblur.synth import sample_photos, synthesize

# name, (height, width), seed, pairs per photo; "720" is tests/test_pretrained.py's fixture
SETS = [("720", (720, 1280), 2026, 4), ("540", (540, 960), 5, 4), ("288", (288, 512), 1, 2)]


def unseen_sets() -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    photos = [p for p in sample_photos() if p.name.startswith(("seeding", "sunset"))]
    sets = {}
    for name, size, seed, per_photo in SETS:
        root = Path(tempfile.mkdtemp(prefix=f"unseen{name}-"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synthesize(photos, out=root, split="test", pairs_per_image=per_photo, size=size, seed=seed, progress=False)
        sets[name] = [(read_image(p.input).rgb, read_image(p.target).rgb) for p in find_pairs(root, "test")]
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="a weights file, optionally @MEAN_WINDOW")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    sets = unseen_sets()
    for arg in args.weights:
        path, _, window = arg.partition("@")
        weights = load_weights(path)
        if window:
            weights.model_kwargs["mean_window"] = int(window)
        sharpen = Sharpener(weights.build(), inference_plan("cpu", fp32=True, backend="torch"), 0, 32)
        line = [arg]
        for name, pairs in sets.items():
            gains = [float(psnr(sharpen(blurry), sharp)) - float(psnr(blurry, sharp)) for blurry, sharp in pairs]
            line.append(
                f"{name}: mean {sum(gains) / len(gains):+.3f} min {min(gains):+.3f} "
                f"losing {sum(g < 0 for g in gains)}/{len(gains)} [{' '.join(f'{g:+.2f}' for g in gains)}]"
            )
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
