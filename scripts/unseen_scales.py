"""Score weights on unseen pairs at three frame sizes: the test suite's check, and the smaller frames it misses.

`tests/test_pretrained.py` synthesizes eight 1280×720 pairs from the two bundled photos no training used
(seeding, sunset; seed 2026) and asks the bundled weights for a mean gain with no pair much worse. A
student can pass there and still damage smaller frames, where the same photos carry more detail per
pixel: so this also scores eight 960×540 pairs (seed 5) and four 512×288 (seed 1), in float32 eager on
the CPU as the test does, and prints each pair's gain over its blurry input.

Those are 8, 8 and 4 pairs of two photos: a worst pair of four decides little. `--photos DIR` adds 20
pairs at 960x540 (seed 7) and 20 at 512x288 (seed 8), four of each of the benchmark's five photos in
DIR (../shared/photos: the photos no training uses, as in scripts/photos.sh), rendered from the full
photos as the benchmark is. Every set also prints the mean of its worst quarter of pairs.
`--strengths S ...` prints instead each set's mean gain at each strength, from one pass per pair as
scripts/pick_strength.py scores: where the test photos peak, a diagnostic that must never choose a
strength (scripts/pick_strength.py chooses on validation).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/unseen_scales.py WEIGHTS[@MEAN_WINDOW] ... [--photos DIR] \
        [--strengths 1 0.9 ...]

`@63` overrides UnblurNet's `mean_window` at inference (the window its correction's mean is taken over).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import torch

from unblur.data import Pair, find_pairs
from unblur.device import inference_plan
from unblur.evaluate import strength_sweep
from unblur.infer import Sharpener
from unblur.io import read_image
from unblur.metrics import psnr
from unblur.models import Weights, load_weights
from unblur.synth import sample_photos, synthesize

# name, (height, width), seed, pairs per photo; "720" is tests/test_pretrained.py's fixture
SETS = [("720", (720, 1280), 2026, 4), ("540", (540, 960), 5, 4), ("288", (288, 512), 1, 2)]
# the same for --photos: the five benchmark photos
BENCHMARK_SETS = [("540x5", (540, 960), 7, 4), ("288x5", (288, 512), 8, 4)]
BENCHMARK_PATTERNS = ("seeding-*", "sunset-*", "kleiber-*", "mate-storm.jpg", "mate-ladybird.jpg")  # scripts/photos.sh


def _render(photos: list[Path], sets: list[tuple[str, tuple[int, int], int, int]], tmp: Path) -> dict[str, list[Pair]]:
    rendered = {}
    for name, size, seed, per_photo in sets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synthesize(photos, out=tmp / name, split="test", pairs_per_image=per_photo, size=size, seed=seed,
                       progress=False)
        rendered[name] = find_pairs(tmp / name, "test")
    return rendered


def unseen_sets(tmp: Path, photo_dir: Path | None = None) -> dict[str, list[Pair]]:
    """The pairs of every set, rendered under ``tmp``."""
    sets = _render([p for p in sample_photos() if p.name.startswith(("seeding", "sunset"))], SETS, tmp)
    if photo_dir is not None:
        photos = [p for pattern in BENCHMARK_PATTERNS for p in sorted(photo_dir.glob(pattern))]
        if len(photos) != len(BENCHMARK_PATTERNS):
            raise SystemExit(f"{photo_dir}: expected the benchmark's {len(BENCHMARK_PATTERNS)} photos, found "
                             f"{len(photos)}")
        sets.update(_render(photos, BENCHMARK_SETS, tmp))
    return sets


def _gains(weights: Weights, images: list[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
    """Each pair's gain over its blurry input on the test suite's path: float32 eager torch on the CPU,
    the whole frame at once."""
    sharpen = Sharpener(weights.build(), inference_plan("cpu", fp32=True, backend="torch"), 0, 32)
    return [float(psnr(sharpen(blurry), sharp)) - float(psnr(blurry, sharp)) for blurry, sharp in images]


def _strength_curve(weights: Weights, pairs: list[Pair], strengths: list[float]) -> list[float]:
    """The mean gain at each strength, from one float32 pass per pair (``strength_sweep``)."""
    model = weights.with_strength(1.0).build().eval()
    frames = list(strength_sweep(model, pairs, strengths, torch.device("cpu")))
    return [sum(f.psnr[k] - f.input_psnr for f in frames) / len(frames) for k in range(len(strengths))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="a weights file, optionally @MEAN_WINDOW")
    parser.add_argument("--photos", type=Path, help="also score 20 pairs at 960x540 and at 512x288 of the "
                        "benchmark's five photos in this folder")
    parser.add_argument("--strengths", type=float, nargs="+", help="each set's mean gain at each of these")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory(prefix="unseen-") as tmp:
        sets = unseen_sets(Path(tmp), args.photos)
        images = {} if args.strengths else {  # decoded once for all the weights
            name: [(read_image(p.input).rgb, read_image(p.target).rgb) for p in pairs] for name, pairs in sets.items()}
        for arg in args.weights:
            path, _, window = arg.partition("@")
            weights = load_weights(path)
            if window:
                weights.model_kwargs["mean_window"] = int(window)
            if args.strengths:
                for name, pairs in sets.items():
                    means = _strength_curve(weights, pairs, args.strengths)
                    best = max(range(len(means)), key=means.__getitem__)
                    curve = " ".join(f"{s:g}:{m:+.3f}" for s, m in zip(args.strengths, means, strict=True))
                    print(f"{arg} {name}: {curve} | best {args.strengths[best]:g} ({means[best]:+.3f})", flush=True)
                continue
            line = [arg]
            for name, pairs in images.items():
                gains = _gains(weights, pairs)
                quarter = sorted(gains)[:max(1, len(gains) // 4)]
                line.append(
                    f"{name}: mean {sum(gains) / len(gains):+.3f} min {min(gains):+.3f} "
                    f"worst quarter {sum(quarter) / len(quarter):+.3f} "
                    f"losing {sum(g < 0 for g in gains)}/{len(gains)} [{' '.join(f'{g:+.2f}' for g in gains)}]"
                )
            print(" | ".join(line), flush=True)

if __name__ == "__main__":
    main()
