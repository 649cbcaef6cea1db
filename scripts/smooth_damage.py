"""Where does a student's damage on smooth, nearly sharp frames come from? (docs/results.md, the knee)

For each weights file, on the first frames of one held-out sequence (default: `umang` in
data/gopro23-third, smooth colour gradients at 39-41 dB): the change the student makes, d = output − input,
split into its whole-frame shift per channel, a broad part (the 31 px local mean of d, less that shift)
and a fine part (the rest); each part's cost is the MSE it adds on its own to the input's error, in
8-bit levels². Then the suspected grid: the spread of d's mean over the 2×2, 4×4 and 8×8 pixel phases
(pixel-shuffle repeats every 2 px, the strided levels every 4 and 8) and the share of d's energy at
those periods' frequencies; and d on flat grey frames, where any change is an artefact.

    .venv/bin/python scripts/smooth_damage.py WEIGHTS ...   # [--sequence DIR] [--frames N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unblur.models import build_model, load_weights, local_mean

LEVELS = 255.0


def read(path: Path) -> torch.Tensor:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / LEVELS
    return torch.from_numpy(rgb).permute(2, 0, 1)[None]


def band_costs(model: torch.nn.Module, frames: list[Path]) -> dict[str, float]:
    """Mean over frames of the input's MSE, the output's, and the MSE each part of d adds alone."""
    sums = dict.fromkeys(("input", "output", "shift", "broad", "fine"), 0.0)
    for blurry in frames:
        x, y = read(blurry), read(blurry.parent.parent / "sharp" / blurry.name)
        d, e = model(x) - x, x - y  # output − target = e + d
        shift = d.mean((2, 3), keepdim=True)
        broad = local_mean(d, 31) - shift
        parts = {"shift": shift, "broad": broad, "fine": d - shift - broad}
        sums["input"] += float(e.square().mean())
        sums["output"] += float((e + d).square().mean())
        for name, part in parts.items():
            sums[name] += float(((e + part).square() - e.square()).mean())
    return {k: v / len(frames) * LEVELS**2 for k, v in sums.items()}


def grid(model: torch.nn.Module, frame: Path) -> list[str]:
    x = read(frame)
    d = (model(x) - x)[0].mean(0).numpy() * LEVELS
    power = np.abs(np.fft.fft2(d - d.mean())) ** 2
    h, w = d.shape
    lines = [f"  change |d| {np.abs(d).mean():.3f} levels on {frame.name} (grey)"]
    for p in (2, 4, 8):
        ph, pw = h // p * p, w // p * p
        phases = d[:ph, :pw].reshape(ph // p, p, pw // p, p).mean((0, 2))
        energy = sum(power[a * h // p, b * w // p] for a in range(p) for b in range(p)) - power[0, 0]
        lines.append(f"  period {p}: phase means spread {phases.max() - phases.min():.3f} levels; "
                     f"{energy / power.sum() * 100:.2f}% of d's energy at its frequencies")
    for grey in (0.2, 0.5, 0.8):
        flat = torch.full((1, 3, 256, 256), grey)
        inner = ((model(flat) - flat)[0].mean(0).numpy() * LEVELS)[64:192, 64:192]  # away from the borders
        lines.append(f"  flat grey {grey}: |d| mean {np.abs(inner).mean():.3f}, max {np.abs(inner).max():.3f} levels")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", type=Path)
    parser.add_argument("--sequence", type=Path, default=Path("data/gopro23-third/train/GOPR0021_00_00"))
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    frames = sorted((args.sequence / "blur_gamma").glob("*.png"))[: args.frames]
    if not frames:
        raise SystemExit(f"smooth_damage: no frames in {args.sequence / 'blur_gamma'}")
    torch.set_grad_enabled(False)
    for path in args.weights:
        weights = load_weights(path)
        model = build_model(weights.model, **weights.model_kwargs)
        model.load_state_dict(weights.state_dict)
        model.eval()
        c = band_costs(model, frames)
        print(f"{path}: {len(frames)} frames, input {10 * np.log10(LEVELS**2 / c['input']):.2f} dB, "
              f"output {10 * np.log10(LEVELS**2 / c['output']):.2f} dB; MSE (levels²) {c['input']:.3f} -> "
              f"{c['output']:.3f}, added alone by the shift {c['shift']:+.3f}, broad {c['broad']:+.3f}, "
              f"fine {c['fine']:+.3f}")
        print("\n".join(grid(model, frames[0])))


if __name__ == "__main__":
    main()
