"""Choose UnblurNet's `strength` (the scale of its correction) on held-out photos, and write it into weights.

A student trained on 20 photos over-corrects photos it has not seen, most on smaller frames, where a
photo carries more detail per pixel (docs/results.md, "Strength"). This scores WEIGHTS at each strength
on validation sets made only of the held-out training photos, never the benchmark's or the test
suite's: the 16 frames `unblur train --data DATA --val-limit 16` validates on (1280x720) and the test
split of each VAL_DATA (data/val540 of scripts/leaves_ab.sh: the same photos at 960x540; data/val288:
at 512x288), in bf16 as training validates. Every strength is scored from one network pass per frame
(`unblur.evaluate.strength_sweep`). It prints each set's own best strength, picks the strength with
the highest mean of the sets' mean gains, and with `--out` writes WEIGHTS with that strength in its
model arguments, and the held-out frames' PSNR and SSIM at it (one more pass, as training validates)
in their metadata.

`--by-size` writes instead a strength per frame size (`strength_by_size`, unblur.models.UnblurNet): each
set's own best, at the short side of its frames, so the sets must be of different sizes (data/val288,
data/val405, data/val540 and data/val1080 of scripts/leaves_ab.sh, and DATA's at 1280x720). Between
those sizes the model interpolates; below and above them it holds the end rows.

    .venv/bin/python scripts/pick_strength.py WEIGHTS --data data/gopro23-third --val-data data/val540 \\
        [data/val288 ...] --out runs/picked.pth [--by-size]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from unblur.data import find_pairs
from unblur.evaluate import strength_sweep
from unblur.models import Weights, load_weights, save_weights
from unblur.train import TrainConfig, _split_data, _validate, training_precision

# Steps of 0.05 down to 0.5, then 0.4: from 2026-12-07 on (before that 1, 0.9, 0.8 and then steps of
# 0.05). Four runs in a row picked 0.90 over 0.80 by at most 0.008 dB with nothing tried between
# (docs/results.md, "A higher knee"); this grid was fixed before the next weights were scored, so it
# is not tuned to their scores.
STRENGTHS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--data", required=True, help="the training data: its held-out sequences validate")
    parser.add_argument("--val-limit", type=int, default=16)
    parser.add_argument("--val-data", required=True, nargs="+",
                        help="datasets whose test splits are more held-out frames (one set each)")
    parser.add_argument("--strengths", type=float, nargs="+", default=STRENGTHS)
    parser.add_argument("--out", help="write the weights with the chosen strength here")
    parser.add_argument("--by-size", action="store_true",
                        help="with --out, write each set's own best strength at its frames' short side")
    args = parser.parse_args()
    if args.out:  # before the scoring, not after it: a missing folder must not cost the minutes it takes
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    _, held_out, source = _split_data(TrainConfig(data=args.data, val_limit=args.val_limit))
    sets = {"held-out frames": held_out}
    for val_data in args.val_data:
        sets[f"{val_data} test"] = find_pairs(Path(val_data), "test", "blur_gamma")
    device = torch.device("cpu")
    dtype, channels_last = training_precision(device)
    weights = load_weights(args.weights)
    print(f"{args.weights}: {source}; " + ", ".join(f"{len(sets[f'{v} test'])} pairs of {v}" for v in args.val_data)
          + f"; precision {dtype or 'float32'}")

    def build(chosen: Weights) -> torch.nn.Module:
        model = chosen.build().to(device).eval()
        return model.to(memory_format=torch.channels_last) if channels_last else model

    model = build(weights.with_strength(1.0))  # refuses a model without a strength
    frames = {name: [(f.input_psnr, f.psnr) for f in strength_sweep(model, pairs, args.strengths, device, dtype,
                                                                      channels_last)]
              for name, pairs in sets.items()}  # the scores only: not every frame's tensors at once
    strengths = range(len(args.strengths))
    inputs = {name: sum(inp for inp, _ in fs) / len(fs) for name, fs in frames.items()}  # each set's mean PSNR
    outputs = {name: [sum(out[k] for _, out in fs) / len(fs) for k in strengths] for name, fs in frames.items()}
    scores: dict[float, float] = {}
    for k, strength in enumerate(args.strengths):
        scores[strength] = sum(outputs[name][k] - inputs[name] for name in frames) / len(frames)
        print(f"strength {strength:.2f}: " + ", ".join(f"{name} {outputs[name][k]:.3f} dB "
                                                       f"({outputs[name][k] - inputs[name]:+.3f})" for name in frames)
              + f"; mean gain {scores[strength]:+.3f}", flush=True)
    own_best = {}
    for name in frames:  # each set on its own: the sets disagree, small frames wanting less
        k = max(strengths, key=outputs[name].__getitem__)
        own_best[name] = args.strengths[k]
        print(f"{name} alone: best strength {args.strengths[k]:.2f} ({outputs[name][k] - inputs[name]:+.3f} dB)")
    best = max(scores, key=lambda s: scores[s])
    print(f"chosen strength {best:.2f} (mean gain {scores[best]:+.3f} dB)")
    among = (f"{source} of {args.data} and the test split of {' and '.join(args.val_data)}, among "
             f"{', '.join(f'{s:g}' for s in args.strengths)}")
    if args.by_size:
        sides = {name: min(Image.open(pairs[0].input).size) for name, pairs in sets.items()}
        if len(set(sides.values())) < len(sides):
            raise SystemExit(f"--by-size needs sets of different frame sizes, got short sides {sides}")
        table = sorted((sides[name], own_best[name]) for name in frames)
        gain = sum(max(outputs[name]) - inputs[name] for name in frames) / len(frames)
        print("strength by short side: " + ", ".join(f"{side} px {s:.2f}" for side, s in table)
              + f" (mean validation gain {gain:+.3f} dB)")
        weights = weights.with_strength_by_size(table)
        chosen_on = (f"{among}, each set's own best: mean validation gain {gain:+.3f} dB "
                     "(scripts/pick_strength.py --by-size)")
    else:
        weights = weights.with_strength(best)
        chosen_on = f"{among}: mean validation gain {scores[best]:+.3f} dB (scripts/pick_strength.py)"
    if args.out:
        with torch.no_grad():  # what the file now does, scored as training scores it (SSIM too)
            row = _validate(build(weights), sets["held-out frames"], device, dtype, channels_last, 1.0, 0.0, "psnr",
                            80.0, lambda line: print("skipped:", line))
        weights.meta.update(strength_chosen_on=chosen_on, val_psnr_at_strength_1=weights.meta.get("val_psnr"),
                            val_psnr=row["val_psnr"], val_ssim=row["val_ssim"])
        print(f"wrote {save_weights(args.out, weights)}")


if __name__ == "__main__":
    main()
