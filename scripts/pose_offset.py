"""Where the sharp target sits in its blur: the frame at the exposure's mean pose against the mid-exposure
frame that `unblur synth` writes as ``sharp``, pair by pair.

A pair's ``sharp`` is the middle sub-frame of the burst: the camera's pose at mid-exposure. Along a
curved or accelerating path that is not the blur's centroid (the mean pose of the sub-frames), so a
student that removed the blur perfectly but put the result where the blur is centred would still be
off by this offset. This script re-draws each pair's camera path and moving object exactly as
``unblur synth`` drew them (same photos in the same order, seed, pairs per photo and size), renders the
frame at the mean pose of the exposure, and scores it against the real ``sharp`` frame: an upper bound
for "perfect deblurring to the centroid", and how far the two poses are apart. With ``--per-image``
(an ``unblur eval`` per_image.csv of the same pairs) it also lists the model's gain next to each.

With ``--wiener LAMBDA`` it also scores a classical non-blind deconvolution that is told each pair's true
camera path: Wiener deconvolution of the linear-light blur by the path's translations (the kernel a
uniform camera shift makes, relative to the middle sub-frame, so it deblurs to the target's pose), with
``LAMBDA`` as the noise-to-signal ratio. It ignores roll, zoom and the moving object, and treats the
frame as periodic, so it (and the input, for comparison) is scored without a ``--border`` of pixels on
each side. It shows what knowing the blur is worth here, an estimate no student is given.

    .venv/bin/python scripts/pose_offset.py ../shared/photos/{seeding,sunset,kleiber}-*.jpg \
        ../shared/photos/mate-{storm,ladybird}.jpg --seed 2026 --pairs-per-image 4 \
        --per-image results/benchmark/weights/per_image.csv      # the quality benchmark's 20 pairs
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import warnings

import numpy as np
import torch

from unblur.io import list_images
from unblur.metrics import psnr, quantize_8bit

# synth's private helpers, so that the photos are read and the pairs drawn exactly as `unblur synth` did
from unblur.synth import (
    GAMMA,
    CameraPath,
    PairParams,
    _load_linear,
    _pair_rng,
    detail_map,
    draw_pair_params,
    render_pair,
)


def at_mean_pose(params: PairParams) -> PairParams:
    """The same pair with every sub-frame at the exposure's mean pose (camera and moving object)."""
    cam = params.camera
    n = cam.count
    camera = CameraPath(shift=np.repeat(cam.shift.mean(0, keepdims=True), n, 0),
                        roll=np.full(n, cam.roll.mean()), zoom=np.full(n, cam.zoom.mean()))
    obj = params.obj
    if obj is not None:
        obj = dataclasses.replace(obj, center=np.repeat(obj.center.mean(0, keepdims=True), n, 0),
                                  angle=np.full(n, obj.angle.mean()))
    return dataclasses.replace(params, camera=camera, obj=obj)


def wiener_known_path(blur_gamma: torch.Tensor, shift: np.ndarray, lam: float) -> torch.Tensor:
    """Wiener deconvolution of ``blur_gamma`` (3, H, W) by the camera's translations ``shift`` (N, 2).

    Sub-frame ``n`` shows the middle one moved by ``-shift[n]`` (it samples the scene at ``u + shift[n]``),
    so the linear-light blur is the middle frame convolved with the mean of unit impulses at
    ``-shift[n]``, splatted bilinearly for sub-pixel shifts.
    """
    _, h, w = blur_gamma.shape
    kernel = np.zeros((h, w))
    for x, y in -shift:
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy),
                               (1, 1, fx * fy)):
            kernel[(y0 + dy) % h, (x0 + dx) % w] += weight / len(shift)
    k = np.fft.rfft2(kernel)
    linear = blur_gamma.double().numpy() ** GAMMA
    restored = np.fft.irfft2(np.fft.rfft2(linear) * np.conj(k) / (np.abs(k) ** 2 + lam), s=(h, w))
    return torch.from_numpy(np.clip(restored, 0.0, 1.0) ** (1.0 / GAMMA)).float()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", help="the sources given to unblur synth, in the same order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs-per-image", type=int, default=4)
    parser.add_argument("--size", default="720x1280", help="HxW, as unblur synth --size")
    parser.add_argument("--per-image", help="an unblur eval per_image.csv of these pairs: adds the model's gain")
    parser.add_argument("--wiener", type=float, metavar="LAMBDA",
                        help="also score Wiener deconvolution by the true camera path with this noise ratio")
    parser.add_argument("--border", type=int, default=160, help="pixels left out on each side with --wiener")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    gains = {}
    if args.per_image:
        with open(args.per_image, newline="") as f:
            gains = {r["name"]: float(r["model_psnr"]) - float(r["input_psnr"]) for r in csv.DictReader(f)}
    print(f"{'pair':<28}{'path px':>8}{'offset px':>10}{'input dB':>10}{'mean pose dB':>14}"
          + (f"{'model gain dB':>15}" if gains else "")
          + (f"{'object':>8}{'cropped input':>15}{'Wiener dB':>11}" if args.wiener is not None else ""))
    inner = (slice(None), slice(args.border, h - args.border), slice(args.border, w - args.border))
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = list_images(args.photos)
    for index, path in enumerate(files):  # synthesize() numbers sequences in this order (all usable here)
        photo = _load_linear(path, (h, w))
        detail = detail_map(photo)
        for i in range(args.pairs_per_image):
            params = draw_pair_params(_pair_rng(args.seed, index, i), tuple(photo.shape[-2:]), (h, w), True, detail)
            sharp, _, blur_gamma = render_pair(photo, params, (h, w))
            mean_frame, _, _ = render_pair(photo, at_mean_pose(params), (h, w))
            name = f"GOPR{index:04d}_00_00/{i:06d}.png"
            row = (params.camera.length(), float(np.linalg.norm(params.camera.shift.mean(0))),
                   float(psnr(blur_gamma, sharp)), float(psnr(mean_frame, sharp)), gains.get(name, float("nan")))
            if args.wiener is not None:
                restored = wiener_known_path(blur_gamma, params.camera.shift, args.wiener)
                row += (float(params.obj is not None), float(psnr(blur_gamma[inner], sharp[inner])),
                        float(psnr(quantize_8bit(restored)[inner], sharp[inner])))
            rows.append(row)
            line = f"{name:<28}{row[0]:>8.0f}{row[1]:>10.1f}{row[2]:>10.2f}{row[3]:>14.2f}"
            line += f"{row[4]:>+15.2f}" if gains else ""
            line += f"{'yes' if row[5] else 'no':>8}{row[6]:>15.2f}{row[7]:>11.2f}" if args.wiener is not None else ""
            print(line, flush=True)
    a = np.array(rows)
    worse = int((a[:, 3] < a[:, 2]).sum())
    print(f"mean over {len(a)} pairs: input {a[:, 2].mean():.2f} dB, frame at the mean pose {a[:, 3].mean():.2f} dB "
          f"(below the blurry input on {worse}); camera offset median {np.median(a[:, 1]):.1f} px")
    if gains:
        near = a[:, 1] <= np.median(a[:, 1])
        print(f"model gain: {a[near, 4].mean():+.2f} dB on the {near.sum()} pairs with the smaller offsets "
              f"(paths {a[near, 0].mean():.0f} px long on average), {a[~near, 4].mean():+.2f} dB on the other "
              f"{(~near).sum()} (paths {a[~near, 0].mean():.0f} px)")
    if args.wiener is not None:
        obj = a[:, 5] > 0
        print(f"Wiener with the true camera path (lambda {args.wiener:g}, {args.border} px border left out): "
              f"{a[:, 7].mean():.2f} dB against the input's {a[:, 6].mean():.2f} on the same crops "
              f"({(a[:, 7] - a[:, 6]).mean():+.2f}); {(a[~obj, 7] - a[~obj, 6]).mean():+.2f} dB on the "
              f"{(~obj).sum()} pairs without a moving object, {(a[obj, 7] - a[obj, 6]).mean():+.2f} on the "
              f"{obj.sum()} with one")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
