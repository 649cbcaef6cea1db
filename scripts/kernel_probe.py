"""Can a small CNN read the camera's path off a blurry frame? A probe for the deconvolving student.

`scripts/pose_offset.py --wiener` showed that Wiener deconvolution told each benchmark pair's true camera
path gains almost 4 dB where only the camera moves. This probe asks whether the path can be estimated
from the blurry frame alone, cheaply enough for the student's budget: a small CNN at reduced resolution
(``--net cnn``: on the frame itself; ``--net autocorr``, the default: on the autocorrelation of its
gradients) regresses the path's cubic (``shift(τ) = a1·τ + a2·τ² + a3·τ³``, the family `unblur synth`
draws its translations from), then the frame is Wiener-deconvolved by that estimate.

Training pairs are rendered in memory by :func:`unblur.synth.render_pair` at ``--size`` (motion scales
with the frame, so a 180×320 pair is a quarter-scale 720p one) from the photos given with ``--train``,
with their true paths; the estimator trains on square crops under the 8 flips and transposes (each maps
the path exactly). The loss is the path's mean squared error over 17 instants, the smaller of forward
and time-reversed, since a blur does not show which way time ran (with ``autocorr`` also of the
point-reflected kernel, which that map cannot tell apart). It is then scored on pairs drawn like
the benchmark's (``--test`` photos, ``--seed``, ``--pairs-per-image``) at the same reduced size:
endpoint error of the path, and PSNR of the Wiener result with the estimated and with the true path,
``--border`` pixels left out on each side (the deconvolution treats the frame as periodic).

    .venv/bin/python scripts/kernel_probe.py --train $(source scripts/photos.sh; training_photos ../shared/photos) \
        --test $(source scripts/photos.sh; benchmark_photos ../shared/photos)
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from pose_offset import wiener_known_path  # this folder is on sys.path when a script in it runs
from torch import nn

from unblur.io import list_images
from unblur.metrics import psnr, quantize_8bit
from unblur.synth import GAMMA, _load_linear, _pair_rng, detail_map, draw_pair_params, render_pair

TAU = torch.linspace(-0.5, 0.5, 17)
"""Instants of the exposure at which paths are compared (and kernels drawn): the middle one is τ = 0."""
PATH_UNIT = 10.0
"""The estimator outputs coefficients in units of this many pixels, so that its targets are near 1."""


def cubic_coefficients(shift: np.ndarray) -> np.ndarray:
    """The (3, 2) coefficients of the cubic through the origin that ``synth`` sampled at N sub-frames."""
    n = len(shift)
    tau = (np.arange(n) - n // 2) / (n - 1)
    basis = np.stack([tau, tau**2, tau**3], axis=1)
    return np.linalg.lstsq(basis, shift, rcond=None)[0]


def path_at(coeffs: torch.Tensor, tau: torch.Tensor = TAU) -> torch.Tensor:
    """Positions ``(B, T, 2)`` of cubics ``(B, 3, 2)`` at instants ``tau``."""
    basis = torch.stack([tau, tau**2, tau**3], dim=1).to(coeffs)  # (T, 3)
    return torch.einsum("tk,bkd->btd", basis, coeffs)


REFLECT = torch.tensor([1.0, -1.0, 1.0])[:, None]
"""Multiplies a cubic's coefficients to give the path of the point-reflected kernel (time-reversed too)."""


def path_loss(pred: torch.Tensor, true: torch.Tensor, reflect: bool = False) -> torch.Tensor:
    """Mean squared distance of the paths over :data:`TAU`, the smaller of forward and time-reversed; with
    ``reflect``, also of the point-reflected kernel's path, which has the same autocorrelation."""
    p = path_at(pred)
    variants = [true, true * REFLECT] if reflect else [true]
    errors = []
    for c in variants:
        t = path_at(c)
        errors += [(p - t).square().sum(-1).mean(-1), (p - t.flip(1)).square().sum(-1).mean(-1)]
    return torch.stack(errors).min(0).values.mean()


class PathNet(nn.Module):
    """Strided convolutions, global average pooling and a small MLP: the path's cubic ``(B, 3, 2)``."""

    def __init__(self, width: int = 48) -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = []
        for cin, cout, stride, dilation in ((12, w, 1, 1), (w, w, 1, 2), (w, 2 * w, 2, 1), (2 * w, 2 * w, 1, 2),
                                            (2 * w, 3 * w, 2, 1), (3 * w, 3 * w, 1, 2), (3 * w, 4 * w, 2, 1)):
            layers += [nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(8 * w, 128), nn.ReLU(inplace=True), nn.Linear(128, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(F.pixel_unshuffle(x - 0.5, 2))
        pooled = torch.cat([f.mean((2, 3)), f.square().mean((2, 3)).sqrt()], 1)  # mean and RMS per channel
        return self.head(pooled).view(-1, 3, 2) * PATH_UNIT


class AutocorrPathNet(nn.Module):
    """The path read off the autocorrelation of the frame's gradients.

    In linear light the blurry frame is the sharp one convolved with the kernel, and so are its gradients;
    natural images' gradients are nearly uncorrelated beyond a few pixels, so their autocorrelation is
    close to the kernel's own, blurred a little. That map (``2R+1`` square, normalized at zero shift) goes
    through a small CNN whose flattened features regress the cubic. The autocorrelation cannot tell the
    kernel from its point reflection: train with ``path_loss(..., reflect=True)``.
    """

    def __init__(self, radius: int = 40) -> None:
        super().__init__()
        self.radius = radius
        layers: list[nn.Module] = []
        for cin, cout, stride in ((2, 32, 1), (32, 32, 2), (32, 64, 2), (64, 64, 2), (64, 128, 2)):
            layers += [nn.Conv2d(cin, cout, 3, stride, padding=1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        side = 2 * radius + 1
        for _ in range(4):
            side = (side + 1) // 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(128 * side * side, 256), nn.ReLU(inplace=True),
                                  nn.Linear(256, 6))

    def autocorr(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 2R+1, 2R+1)``: autocorrelation of the linear-light gray frame's x and y differences."""
        r = self.radius
        gray = x.clamp(0.0, 1.0).pow(GAMMA).mean(1)
        total = None
        for g in (gray[:, :-1, 1:] - gray[:, :-1, :-1], gray[:, 1:, :-1] - gray[:, :-1, :-1]):
            g = g - g.mean((1, 2), keepdim=True)
            h, w = g.shape[-2:]
            spec = torch.fft.rfft2(g, s=(h + r + 1, w + r + 1))  # zero padded: linear, not circular
            a = torch.fft.irfft2(spec.abs().square(), s=(h + r + 1, w + r + 1))
            total = a if total is None else total + a
        total = torch.roll(total, (r, r), dims=(-2, -1))[..., : 2 * r + 1, : 2 * r + 1]
        return (total / total[:, r:r + 1, r:r + 1].clamp_min(1e-12))[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.autocorr(x)
        return self.head(self.features(torch.cat([a, a.abs().sqrt()], 1))).view(-1, 3, 2) * PATH_UNIT


def sparsity(image: torch.Tensor) -> float:
    """L1/L2 of the gradients (Krishnan et al. 2011): lower for a sharper image, used to pick a kernel."""
    g = torch.cat([(image[..., 1:] - image[..., :-1]).flatten(), (image[..., 1:, :] - image[..., :-1, :]).flatten()])
    return float(g.abs().sum() / g.square().sum().sqrt().clamp_min(1e-12))


def wiener(blur_gamma: torch.Tensor, coeffs: torch.Tensor, lam: float) -> torch.Tensor:
    """Wiener deconvolution of one ``(3, H, W)`` frame by the camera path ``coeffs`` sampled at :data:`TAU`
    (pose_offset's deconvolution, given the sampled path as its sub-frame shifts)."""
    return wiener_known_path(blur_gamma, path_at(coeffs[None].double())[0].numpy(), lam)


def render_pool(files: list, size: tuple[int, int], count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` pairs' blur_gamma (uint8, (count, 3, H, W)) and true cubics ((count, 3, 2)), drawn round-robin."""
    photos = [_load_linear(f, size) for f in files]
    details = [detail_map(p) for p in photos]
    images = torch.empty(count, 3, *size, dtype=torch.uint8)
    coeffs = torch.empty(count, 3, 2)
    for i in range(count):
        k = i % len(photos)
        params = draw_pair_params(_pair_rng(seed, k, i // len(photos)), tuple(photos[k].shape[-2:]), size, True,
                                  details[k])
        _, _, blur_gamma = render_pair(photos[k], params, size)
        images[i] = (blur_gamma * 255).round().to(torch.uint8)
        coeffs[i] = torch.from_numpy(cubic_coefficients(params.camera.shift))
    return images, coeffs


def dihedral(x: torch.Tensor, c: torch.Tensor, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Element ``g`` (0-7) of the square's symmetry group applied to images ``x`` and their cubics ``c``."""
    c = c.clone()
    if g & 1:  # mirror left-right: x -> -x
        x, c[..., 0] = x.flip(-1), -c[..., 0]
    if g & 2:  # mirror top-bottom
        x, c[..., 1] = x.flip(-2), -c[..., 1]
    if g & 4:  # transpose: swap x and y
        x, c = x.transpose(-1, -2), c.flip(-1)
    return x, c


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", required=True, help="photos to render training pairs from")
    parser.add_argument("--test", nargs="+", required=True, help="the benchmark's photos, in its order")
    parser.add_argument("--size", default="180x320", help="HxW of the rendered pairs")
    parser.add_argument("--pool", type=int, default=2400, help="training pairs rendered")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=160)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=2026, help="the benchmark's seed")
    parser.add_argument("--pairs-per-image", type=int, default=8)
    parser.add_argument("--border", type=int, default=40, help="pixels left out on each side when scoring")
    parser.add_argument("--lam", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    parser.add_argument("--save", help="write the estimator's state_dict here")
    parser.add_argument("--net", choices=("cnn", "autocorr"), default="autocorr")
    args = parser.parse_args()
    torch.manual_seed(0)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_files, test_files = list_images(args.train), list_images(args.test)

    start = time.perf_counter()
    images, coeffs = render_pool(train_files, size, args.pool, seed=1)
    print(f"rendered {args.pool} training pairs at {size[1]}x{size[0]} from {len(train_files)} photos "
          f"in {time.perf_counter() - start:.0f} s", flush=True)

    model = AutocorrPathNet() if args.net == "autocorr" else PathNet()
    reflect = args.net == "autocorr"
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    h, w = size
    start, running = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, args.pool, (args.batch,))
        top, left = int(torch.randint(0, h - args.crop + 1, ())), int(torch.randint(0, w - args.crop + 1, ()))
        x = images[idx, :, top:top + args.crop, left:left + args.crop].float() / 255.0
        x, c = dihedral(x, coeffs[idx], int(torch.randint(0, 8, ())))
        loss = path_loss(model(x.contiguous()), c, reflect)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if step % 100 == 0:
            print(f"step {step}: path RMS error {math.sqrt(np.mean(running)):.2f} px "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            running = []
    if args.save:
        torch.save(model.state_dict(), args.save)

    model.eval()
    inner = (slice(None), slice(args.border, h - args.border), slice(args.border, w - args.border))
    rows = []
    for index, path in enumerate(test_files):
        photo = _load_linear(path, size)
        detail = detail_map(photo)
        for i in range(args.pairs_per_image):
            params = draw_pair_params(_pair_rng(args.seed, index, i), tuple(photo.shape[-2:]), size, True, detail)
            sharp, _, blur_gamma = render_pair(photo, params, size)
            true = torch.from_numpy(cubic_coefficients(params.camera.shift)).float()
            with torch.no_grad():
                est = model(blur_gamma[None])[0]
            error = math.sqrt(float(path_loss(est[None], true[None], reflect)))
            row = [params.camera.length(), error, float(params.obj is not None),
                   float(psnr(blur_gamma[inner], sharp[inner]))]
            for lam in args.lam:
                scores = {}
                for name, c in (("true", true), ("est", est), ("reflected", est * REFLECT)):
                    restored = quantize_8bit(wiener(blur_gamma, c, lam))
                    scores[name] = (float(psnr(restored[inner], sharp[inner])), sparsity(restored[inner]))
                picked = min(("est", "reflected"), key=lambda k: scores[k][1])
                row += [scores["true"][0], scores["est"][0], scores[picked][0],
                        max(scores["est"][0], scores["reflected"][0])]
            rows.append(row)
    a = np.array(rows)
    obj = a[:, 2] > 0
    print(f"{len(a)} test pairs at {size[1]}x{size[0]} ({(~obj).sum()} camera only), paths {a[:, 0].mean():.1f} px "
          f"long on average; estimated path RMS error {a[:, 1].mean():.2f} px (median {np.median(a[:, 1]):.2f})"
          + (", up to point reflection" if reflect else ""))
    print(f"input {a[:, 3].mean():.2f} dB on the crops ({args.border} px border left out)")
    methods = ("true path", "estimated path", "estimate or its reflection, the sparser result",
               "estimate or its reflection, the better (oracle)")
    for j, lam in enumerate(args.lam):
        for k, what in enumerate(methods):
            col = a[:, 4 + len(methods) * j + k] - a[:, 3]
            print(f"Wiener lambda {lam:g}, {what}: {col.mean():+.2f} dB on all, {col[~obj].mean():+.2f} camera only, "
                  f"{col[obj].mean():+.2f} with an object; gains on {(col > 0).sum()} of {len(col)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
