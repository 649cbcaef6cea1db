"""Which strength each validation frame wants, and whether anything in the blurry frame alone predicts it.

`scripts/pick_strength.py` picks one strength for every photo, and the sets disagree: on the held-out
training photos the bundled network's 1280x720 frames want 0.8, the 960x540 ones 0.65, the 512x288 ones
0.35 (docs/results.md, "Smaller frames"). A strength chosen per photo from the photo itself would serve
all three, if something measurable without the sharp target tracked the best one. The hypothesis tried:
the denser a frame's detail (its mean luma step), the less of the correction it wants; measured, it
does not hold (correlation +0.10 to +0.14 over 88 frames). It also prints the correlation with the size
of the network's own correction (its RMS at strength 1), per set and over all. One pass per frame at
strength 1 gives the correction, and every strength of a grid is scored from it (`unblur.evaluate.strength_sweep`, as
`pick_strength.py` scores its candidates), so this gives each frame's best strength beside statistics
of its blurry input.

    .venv/bin/python scripts/strength_probe.py WEIGHTS --data data/gopro23-third \\
        --val-data data/val540 data/val288 --csv runs/probe.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path

import torch

from unblur.data import find_pairs
from unblur.evaluate import strength_sweep
from unblur.models import load_weights
from unblur.train import TrainConfig, _split_data, training_precision

GRID = [round(0.05 * i, 2) for i in range(25)]  # 0 to 1.2


def detail(x: torch.Tensor) -> float:
    """Mean absolute difference between neighbouring pixels of the luma (sRGB): detail per pixel."""
    luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).float()
    return float((luma[:, 1:, :] - luma[:, :-1, :]).abs().mean() + (luma[:, :, 1:] - luma[:, :, :-1]).abs().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--data", required=True)
    parser.add_argument("--val-limit", type=int, default=16)
    parser.add_argument("--val-data", nargs="+", required=True)
    parser.add_argument("--csv", required=True)
    args = parser.parse_args()
    _, held_out, _ = _split_data(TrainConfig(data=args.data, val_limit=args.val_limit))
    sets = {"held-out": held_out} | {v: find_pairs(Path(v), "test", "blur_gamma") for v in args.val_data}
    device = torch.device("cpu")
    dtype, channels_last = training_precision(device)
    model = load_weights(args.weights).with_strength(1.0).build().to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    rows = []
    for name, pairs in sets.items():
        for frame in strength_sweep(model, pairs, GRID, device, dtype, channels_last):
            gains = [p - frame.input_psnr for p in frame.psnr]
            best = max(range(len(GRID)), key=lambda k: gains[k])
            rows.append({"set": name, "pair": str(frame.pair.input), "height": frame.input.shape[-2],
                         "detail": detail(frame.input), "correction_rms": float(frame.correction.pow(2).mean().sqrt()),
                         "best_strength": GRID[best], **{f"gain_{s:g}": g for s, g in zip(GRID, gains, strict=True)}})
        print(f"{name}: {len(pairs)} frames", flush=True)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for name in sets:
        mine = [r for r in rows if r["set"] == name]
        mean = {s: sum(r[f"gain_{s:g}"] for r in mine) / len(mine) for s in GRID}
        top = max(mean, key=lambda s: mean[s])
        oracle = sum(max(r[f"gain_{s:g}"] for s in GRID) for r in mine) / len(mine)
        print(f"{name}: best single strength {top:g} ({mean[top]:+.3f} dB); per-frame best {oracle:+.3f} dB; detail "
              f"{min(r['detail'] for r in mine):.4f}-{max(r['detail'] for r in mine):.4f}")
    for name in [*sets, None]:
        mine = [r for r in rows if name is None or r["set"] == name]
        ys = [r["best_strength"] for r in mine]
        corrs = ", ".join(f"log({key}) {_correlation([math.log(r[key]) for r in mine], ys):+.2f}"
                          for key in ("detail", "correction_rms"))
        print(f"correlation of best strength with {corrs} over {len(mine)} frames ({name or 'all sets'})")


def _correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's correlation, or NaN where it is undefined (fewer than two frames, or a constant column)."""
    try:
        return statistics.correlation(xs, ys)
    except statistics.StatisticsError:
        return math.nan


if __name__ == "__main__":
    main()
