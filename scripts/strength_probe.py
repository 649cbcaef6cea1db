"""Which strength each validation frame wants, and whether anything in the blurry frame alone predicts it.

`scripts/pick_strength.py` picks one strength for every photo, and the sets disagree: on the held-out
training photos the bundled network's 1280x720 frames want 0.8, the 960x540 ones 0.65, the 512x288 ones
0.35 (docs/results.md, "Smaller frames"). A strength chosen per photo from the photo itself would serve
all three, if something measurable without the sharp target tracked the best one. The hypothesis tried:
the denser a frame's detail (its mean luma step), the less of the correction it wants; measured, it
does not hold (correlation +0.10 to +0.14 over 88 frames). One pass per frame at strength 1 gives the
correction (`UnblurNet.correction`; the model adds ``strength`` times it in linear light); each strength
of a grid is then scored without the network, so this also gives `pick_strength.py`'s numbers for every strength
at the cost of one (they agree within 0.001 dB), and each frame's best strength beside statistics of
its blurry input.

    .venv/bin/python scripts/strength_probe.py WEIGHTS --data data/gopro23-third \\
        --val-data data/val540 data/val288 --csv runs/probe.csv
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import torch

from unblur.data import PairedImages, find_pairs, to_device_float
from unblur.metrics import psnr
from unblur.models import linear_to_srgb, load_weights, srgb_to_linear
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
    if not model.linear_light:  # the strengths are scored in linear light
        raise SystemExit(f"{args.weights}: strength_probe.py needs an UnblurNet with linear_light (the default)")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    rows = []
    for name, pairs in sets.items():
        dataset = PairedImages(pairs, crop=None, augment=False)
        for i in range(len(dataset)):
            inp_u8, tgt_u8, _ = dataset[i]
            x = to_device_float(inp_u8.unsqueeze(0), device, channels_last).contiguous()
            target = to_device_float(tgt_u8.unsqueeze(0), device)
            with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                r = model.correction(x)  # at strength 1: linear light, float32
            lin = srgb_to_linear(x.float())
            gains = [float(psnr(linear_to_srgb(lin + s * r).clamp(0, 1), target) - psnr(x, target)) for s in GRID]
            best = max(range(len(GRID)), key=lambda k: gains[k])
            rows.append({"set": name, "pair": str(pairs[i].input), "height": x.shape[-2], "detail": detail(x),
                         "correction_rms": float(r.pow(2).mean().sqrt()), "best_strength": GRID[best],
                         **{f"gain_{s:g}": g for s, g in zip(GRID, gains, strict=True)}})
        print(f"{name}: {len(dataset)} frames", flush=True)
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
    xs = [math.log(r["detail"]) for r in rows]
    ys = [r["best_strength"] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True))
    corr = cov / math.sqrt(sum((a - mx) ** 2 for a in xs) * sum((b - my) ** 2 for b in ys))
    print(f"correlation of best strength with log(detail) over {len(rows)} frames: {corr:+.2f}")


if __name__ == "__main__":
    main()
