"""Does averaging a student's outputs over flips and rotations of its input gain on a dataset's pairs?

Self-ensembling ("geometric self-ensemble", Lim et al. 2017, EDSR+) runs the network on the 8 flips and
rotations of the input, undoes each on the output and averages them. Motion blur flips with the image,
so each view is an equally valid problem; if the network's errors on them were partly independent, their
mean would be closer to the target, at 2, 4 or 8 times the cost. This scores the mean of the first
1, 2, 4 and 8 views on every pair of DATA's test split, with the default inference path (bf16 on CPUs
that have it), and prints the mean PSNR/SSIM of each, with the blurry input's. On the benchmark the
bundled weights gain +0.02 dB from 8 views (docs/results.md, "Two cheap tries").

    .venv/bin/python scripts/tta_probe.py WEIGHTS --data data/benchmark [--strength S]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from unblur.data import find_pairs
from unblur.device import inference_plan
from unblur.evaluate import _load_pair
from unblur.infer import Sharpener
from unblur.metrics import psnr, ssim
from unblur.models import load_weights

# (transpose, flip dims) in the order views are added: identity, left-right, up-down, both, then transposed
VIEWS = [(False, ()), (False, (-1,)), (False, (-2,)), (False, (-2, -1)),
         (True, ()), (True, (-1,)), (True, (-2,)), (True, (-2, -1))]


def forward(x: torch.Tensor, view: tuple[bool, tuple[int, ...]]) -> torch.Tensor:
    transpose, dims = view
    if transpose:
        x = x.transpose(-2, -1)
    return x.flip(dims) if dims else x


def inverse(y: torch.Tensor, view: tuple[bool, tuple[int, ...]]) -> torch.Tensor:
    transpose, dims = view
    if dims:
        y = y.flip(dims)
    return y.transpose(-2, -1) if transpose else y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--strength", type=float, help="override the weights' strength")
    parser.add_argument("--views", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    loaded = load_weights(args.weights)
    if args.strength is not None:
        loaded = loaded.with_strength(args.strength)
    sharpener = Sharpener(loaded.build(), inference_plan("cpu"))
    pairs = find_pairs(args.data, args.split, "blur_gamma")
    rows: dict[str, list[tuple[float, float]]] = {"input": []} | {f"{n} views": [] for n in args.views}
    for pair in pairs:
        inp, tgt = _load_pair(pair)
        rows["input"].append((psnr(inp, tgt).item(), ssim(inp, tgt).item()))
        total = torch.zeros_like(inp[0])
        for k, view in enumerate(VIEWS[: max(args.views)], start=1):
            total += inverse(sharpener(forward(inp[0], view).contiguous()), view)
            if k in args.views:
                pred = (total / k).unsqueeze(0)
                rows[f"{k} views"].append((psnr(pred, tgt).item(), ssim(pred, tgt).item()))
        print(pair.name, " ".join(f"{name} {vals[-1][0]:.2f}" for name, vals in rows.items()), flush=True)
    base = sum(p for p, _ in rows["input"]) / len(pairs)
    for name, vals in rows.items():
        mean_p = sum(p for p, _ in vals) / len(vals)
        mean_s = sum(s for _, s in vals) / len(vals)
        worst = min(p - q for (p, _), (q, _) in zip(vals, rows["input"], strict=True))
        print(f"{name:>8}  PSNR {mean_p:.3f}  SSIM {mean_s:.4f}  gain {mean_p - base:+.3f}  worst pair {worst:+.3f}")


if __name__ == "__main__":
    main()
