"""Score weights files on the validation frames `unblur train` would pick, with its settings.

Validation picks the final weights of a run, so comparing a new run against the bundled weights must use
the same frames: `unblur train --data DATA --val-limit N` holds out whole sequences (seed 0, 10 %) and
scores N evenly spaced frames of them, in bf16 on CPUs that have it, as this script does.

    .venv/bin/python scripts/val_score.py --data data/gopro23-third --val-limit 16 WEIGHTS ...

`--val-data D` scores D's test split instead, as `unblur train --val-data D` would (e.g. data/val540 of
scripts/leaves_ab.sh: the same held-out photos at 960x540).
"""

from __future__ import annotations

import argparse

import torch

from unblur.models import load_weights
from unblur.train import TrainConfig, _split_data, _validate, training_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+")
    parser.add_argument("--data", required=True)
    parser.add_argument("--val-data", help="score this dataset's test split instead of held-out sequences")
    parser.add_argument("--val-limit", type=int, default=32)
    parser.add_argument("--psnr-knee", type=float, default=80.0, help="for the reported loss only")
    parser.add_argument("--by-sequence", action="store_true", help="also the mean of each held-out sequence")
    args = parser.parse_args()
    cfg = TrainConfig(data=args.data, val_data=args.val_data, val_limit=args.val_limit)
    _, val_pairs, source = _split_data(cfg)
    device = torch.device("cpu")
    dtype, channels_last = training_precision(device)
    print(f"validation: {source}; precision {dtype or 'float32'}")
    for path in args.weights:
        model = load_weights(path).build().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        # Each frame is scored once: by held-out photo (which one moves the mean) or all together.
        groups = ([[p for p in val_pairs if p.sequence == s] for s in sorted({p.sequence for p in val_pairs})]
                  if args.by_sequence else [val_pairs])
        rows = [_validate(model, group, device, dtype, channels_last, 1.0, 0.0, "psnr", args.psnr_knee,
                          lambda line: print("skipped:", line)) for group in groups]
        total = {key: sum(len(g) * row[key] for g, row in zip(groups, rows, strict=True)) / len(val_pairs)
                 for key in ("val_psnr", "val_ssim", "val_input_psnr")}  # frame-weighted (exact when none is skipped)
        print(f"{path}: PSNR {total['val_psnr']:.2f} dB, SSIM {total['val_ssim']:.4f}, "
              f"input {total['val_input_psnr']:.2f} dB")
        if args.by_sequence:
            for group, row in zip(groups, rows, strict=True):
                print(f"  {group[0].sequence} ({len(group)} frames): PSNR {row['val_psnr']:.2f} dB, "
                      f"input {row['val_input_psnr']:.2f} dB")


if __name__ == "__main__":
    main()
