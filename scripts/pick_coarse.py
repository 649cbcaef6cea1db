"""Choose UnblurNet's coarse pass and strength per frame size on held-out photos, and write them into weights.

UnblurNet sees about ±70 px around a pixel, and the synthesized blurs at 1280x720 reach 144 px (longer
at 1920x1080); the benchmark's pairs with the longer blurs gain half as much as the rest
(docs/MODEL_CARD.md). Run on the frame averaged 2x2, the same network sees each blur half as long: its
coarse pass (``coarse_by_size``, unblur.models.UnblurNet.coarse_correct) adds that correction, upsampled,
before the usual pass. This scores WEIGHTS on each validation set (the 16 held-out frames of DATA, and the
test split of each VAL_DATA: the same held-out photos at other frame sizes, never the benchmark's) for
every coarse strength of ``--coarse`` and every strength of ``--strengths`` (unblur.evaluate.strength_sweep
of the network with each coarse strength: one pass per frame and coarse strength), prints
each set's mean gain and worst-quarter gain, and each set's own best pair of strengths. With ``--out``
it writes WEIGHTS with those as ``strength_by_size`` and ``coarse_by_size`` tables (one row per set, at
its frames' short side; the sets must be of different sizes), as scripts/pick_strength.py --by-size
does for the strength alone. Float32 on the CPU.

    .venv/bin/python scripts/pick_coarse.py WEIGHTS --data data/gopro23-third \\
        --val-data data/val1080 data/val540 data/val405 data/val288 [--out runs/coarse/sharpen_model.pth]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from unblur.data import Pair, find_pairs
from unblur.evaluate import strength_sweep
from unblur.models import Weights, load_weights, save_weights
from unblur.train import TrainConfig, _split_data, _validate

# Fixed before any weights were scored with them (2026-12-07): a first grid of 0, 0.25 ... 1 showed the
# best coarse strengths between 0 and 0.5, so steps of 0.1 to 0.6; the fine strengths are
# scripts/pick_strength.py's.
COARSE = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
STRENGTHS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--data", required=True, help="the training data: its 16 held-out frames form one set")
    parser.add_argument("--val-data", nargs="+", required=True, help="datasets whose test splits are more sets")
    parser.add_argument("--coarse", type=float, nargs="+", default=COARSE)
    parser.add_argument("--strengths", type=float, nargs="+", default=STRENGTHS)
    parser.add_argument("--out", help="write the weights with each set's best strengths here")
    args = parser.parse_args()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    weights = load_weights(args.weights)
    at_1 = weights.with_strength(1.0)  # refuses a model without a strength
    sets = {"held-out frames": _split_data(TrainConfig(data=args.data, val_limit=16))[1]}
    for val_data in args.val_data:
        sets[val_data] = find_pairs(Path(val_data), "test", "blur_gamma")
    # one model per coarse strength (a one-row table holds it at every size), swept over the strengths
    models = {c: Weights(weights.model, {**at_1.model_kwargs, "coarse_by_size": ((1, c),)}, at_1.state_dict).build()
              for c in args.coarse}
    best: dict[int, tuple[float, float, float]] = {}  # short side: (gain, coarse, strength)
    for name, pairs in sets.items():
        gains: dict[tuple[float, float], list[float]] = {}
        for c, model in models.items():
            for frame in strength_sweep(model.eval(), pairs, args.strengths, torch.device("cpu")):
                for s, score in zip(args.strengths, frame.psnr, strict=True):
                    gains.setdefault((c, s), []).append(score - frame.input_psnr)
        side = min(Image.open(pairs[0].input).size)
        print(f"{name}: {len(pairs)} frames, short side {side} px; mean gain (worst quarter) dB", flush=True)
        for c in args.coarse:
            cells = []
            for s in args.strengths:
                g = sorted(gains[(c, s)])
                quarter = g[: max(1, len(g) // 4)]
                cells.append(f"{s:.2f} {sum(g) / len(g):+.3f} ({sum(quarter) / len(quarter):+.3f})")
            print(f"  coarse {c:.2f}: " + "  ".join(cells), flush=True)
        (c, s), g = max(gains.items(), key=lambda kv: sum(kv[1]) / len(kv[1]))
        if side in best:
            raise SystemExit(f"two sets have frames of short side {side} px: one row per size")
        best[side] = (sum(g) / len(g), c, s)
        print(f"  best: coarse {c:.2f}, strength {s:.2f}: {best[side][0]:+.3f} dB", flush=True)
    rows = sorted(best.items())
    print("by short side: " + ", ".join(f"{side} px coarse {c:.2f} strength {s:.2f} ({g:+.3f})"
                                        for side, (g, c, s) in rows))
    if args.out:
        chosen = weights.with_strength_by_size([(side, s) for side, (_, _, s) in rows])
        chosen.model_kwargs["coarse_by_size"] = tuple((side, c) for side, (_, c, _) in rows)
        chosen.meta.update(strength_chosen_on=(
            f"{', '.join(sets)}: each set's best coarse strength among {', '.join(f'{c:g}' for c in args.coarse)} "
            f"and strength among {', '.join(f'{s:g}' for s in args.strengths)}, mean validation gain "
            f"{sum(g for g, _, _ in best.values()) / len(best):+.3f} dB (scripts/pick_coarse.py)"))
        with_validation(chosen, sets["held-out frames"])
        print(f"wrote {save_weights(args.out, chosen)}")


def with_validation(weights: Weights, held_out: list[Pair]) -> Weights:
    """``weights`` with the held-out 1280x720 frames' PSNR and SSIM at its settings in its metadata, scored
    as training validates (float32 here), as scripts/pick_strength.py records them."""
    cpu = torch.device("cpu")
    with torch.no_grad():
        row = _validate(weights.build().eval(), held_out, cpu, None, False, 1.0, 0.0, "psnr", 80.0,
                        lambda line: print("skipped:", line))
    weights.meta.update(val_psnr_at_strength_1=weights.meta.get("val_psnr_at_strength_1", weights.meta.get("val_psnr")),
                        val_psnr=row["val_psnr"], val_ssim=row["val_ssim"])
    return weights


if __name__ == "__main__":
    main()
