"""Synthesize GoPro-style blurry/sharp pairs from sharp photos.

GoPro_Large is several gigabytes and cannot be shipped or downloaded offline, yet training, the demo and
the tests need pairs whose blur behaves like it. So this module re-enacts how GoPro made its pairs,
with a photo standing in for the scene and a simulated camera standing in for the 240 fps GoPro:

* A burst of ``N`` sub-frames (``N`` from 7, 9, 11, 13: odd, so a middle frame exists) is rendered along
  a smooth random camera path: a cubic in time for the translation, plus a small roll and zoom, so the
  blur varies over the frame like real handheld shake. The middle sub-frame has the reference pose, so
  ``sharp`` is exactly the frame the camera would have recorded at mid-exposure.
* Optionally a soft-edged blob cut from another part of the photo moves along its own path in front of
  the scene, because real footage has objects whose blur disagrees with the camera's.
* Light adds linearly, so sub-frames are rendered in linear light (encoded value ** 2.2), 2×
  supersampled with bilinear ``grid_sample`` and area-averaged (``avg_pool2d``) to the output size, like
  a sensor integrating over its pixels. Each sub-frame is then encoded (** 1/2.2) and quantized to 8 bits, the
  way GoPro's video frames were before they were averaged.
* ``blur`` is the mean of the encoded sub-frames and ``blur_gamma`` is the mean in linear light
  (``(mean of frames ** 2.2) ** (1/2.2)``), GoPro's two definitions; ``sharp`` is the middle sub-frame.
  By the power-mean inequality ``blur_gamma >= blur`` pixel by pixel, and without motion all three
  are identical.

Motion is specified at 720 px frame height and scaled with the frame, so a small frame looks like a
downscaled 720p one. The speed distribution is calibrated so that PSNR(blur_gamma, sharp) spreads
around GoPro's test-set mean of about 25.6 dB (see :meth:`SynthReport.format`).

Every random choice of a pair comes from a generator seeded with ``(seed, source index, pair index)``
and the rendering is plain deterministic tensor arithmetic, so a rerun writes the same bytes. Rendering
can run on a GPU (``device``), which takes its cost (about a second of one CPU core per 720p pair) off
the CPU and leaves PNG encoding (about as much again) as the work; a GPU's float arithmetic differs from
the CPU's in the last bits, so a pixel may land one 8-bit level apart, and "same bytes" holds per device.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from unblur.device import resolve_device
from unblur.io import ImageError, list_images, read_image, write_image
from unblur.metrics import psnr, quantize_8bit
from unblur.preflight import check_free_space, ensure_writable_folder

__all__ = [
    "GOPRO_BLUR_PSNR_DB",
    "CameraPath",
    "MovingObject",
    "PairParams",
    "SynthReport",
    "detail_map",
    "draw_pair_params",
    "render_pair",
    "sample_photos",
    "synthesize",
]

GAMMA = 2.2
"""GoPro's encoding exponent: ``blur_gamma`` averages ``frame ** GAMMA`` and takes the ``1/GAMMA`` root."""

SUBFRAME_COUNTS = (7, 9, 11, 13)
"""GoPro averaged 7 to 13 frames; odd counts only, so that a middle (sharp) frame exists."""

SUPERSAMPLE = 2
"""Sub-frames are rendered at this multiple of the output size and area-averaged down."""

GOPRO_BLUR_PSNR_DB = 25.6
"""Mean PSNR of GoPro_Large's blurry test inputs against their sharp targets."""

REFERENCE_SIDE = 720
"""Frame height (shorter side) at which motion amplitudes below are given in pixels."""

# Camera speed along its path, in pixels per sub-frame at 720 px, drawn log-uniformly: a burst smears
# 15 px (7 frames, slowest) to 144 px (13 frames, fastest). Calibrated on the 28 photos of
# ../shared/photos (one 720p pair each rendered at fixed speeds, then interpolated): their mean
# PSNR(blur_gamma, sharp) is 33.4, 30.2, 27.5, 25.1, 23.7 dB at 1, 2, 4, 8, 12 px per sub-frame, and
# this range predicts a mean near 26.5 dB with 10th-90th percentiles near 20.5 and 32.3 dB, around
# GoPro's 25.6 dB (the 56-pair check, 2 pairs per photo at seed 0, measured mean 26.5, p10 22.0, median
# 25.8, p90 31.9 dB). Photos with large smooth areas (sky, abstract wallpapers) blur visibly only at the
# fast end, hence the wide range. Fast paths show GoPro's ghosting: N discrete copies, v px apart.
SPEED_RANGE = (2.5, 12.0)
OBJECT_PROBABILITY = 0.5
"""Share of pairs with a moving object (unless ``moving_object=False``)."""
OBJECT_SPEED_RANGE = (1.0, 8.0)
"""The object's own speed in the frame, px per sub-frame at 720 px (log-uniform): slow ones look tracked."""
MAX_UPSCALE = 2.0
"""A photo that would need more upsampling than this to fill the frame is skipped: it would be blurry."""
TEXTURE_CANDIDATES = 4
"""The moving object's texture is the most detailed of this many random places in the photo."""
PNG_SIZE_RATIO = 0.2
"""Low end of a synthesized PNG's size as a fraction of its raw 8-bit RGB size (0.2 to 0.75 measured on the
bundled photos); the free-space check multiplies by it, so it refuses only runs that clearly cannot fit."""
MAX_DOWNSCALE = 2.5
"""Photos much larger than the frame are reduced once (antialiased) to this ratio, so that bilinear sampling
at the supersampled density does not alias."""


# Parameters of one pair --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraPath:
    """Pose of every sub-frame relative to the middle one, in output pixels.

    Sub-frame ``n`` maps an output point ``u`` (pixels from the frame centre) to
    ``zoom[n] · R(roll[n]) · u + shift[n]`` before the crop's scale and centre are applied; the middle
    sub-frame has ``shift = 0, roll = 0, zoom = 1``.
    """

    shift: np.ndarray  # (N, 2) x, y
    roll: np.ndarray  # (N,) radians
    zoom: np.ndarray  # (N,)

    @property
    def count(self) -> int:
        """Number of sub-frames."""
        return len(self.roll)

    def length(self) -> float:
        """Length of the translation path through the sub-frames, in output pixels."""
        return float(np.linalg.norm(np.diff(self.shift, axis=0), axis=1).sum())


@dataclass(frozen=True)
class MovingObject:
    """A soft-edged blob of photo texture moving in front of the scene, in output-frame coordinates.

    Its outline is an ellipse with semi-axes ``radii`` whose radius is modulated by two low harmonics
    (``1 + Σ amp·cos(k·ψ + phase)`` for k = 2, 3), so it is not a perfect disc, with a linear ramp of
    ``edge`` pixels. Its texture is the photo around ``texture_center`` at ``texture_scale`` photo pixels
    per output pixel, turned by ``texture_angle``.
    """

    center: np.ndarray  # (N, 2) output px from the frame centre
    angle: np.ndarray  # (N,) radians
    radii: tuple[float, float]
    harmonics: tuple[tuple[float, float], tuple[float, float]]
    edge: float
    texture_center: tuple[float, float]  # photo px (x, y)
    texture_scale: float
    texture_angle: float

    def bound(self) -> float:
        """Radius of a disc around the centre that contains the whole blob, edge included."""
        amp = sum(abs(a) for a, _ in self.harmonics)
        return max(self.radii) * (1.0 + amp) + self.edge


@dataclass(frozen=True)
class PairParams:
    """Everything random about one pair: the crop (``center`` and ``scale`` in photo pixels, ``scale``
    photo pixels per output pixel), the camera path, and the optional moving object."""

    center: tuple[float, float]
    scale: float
    camera: CameraPath
    obj: MovingObject | None = None


def _cubic_path(rng: np.random.Generator, tau: np.ndarray, length: float) -> np.ndarray:
    """A smooth random 2-D curve ``a1·τ + a2·τ² + a3·τ³`` through the origin at ``τ = 0``, scaled so its
    arc length over ``τ ∈ [-½, ½]`` is ``length``.

    The linear term sets a main direction; the quadratic bends it and the cubic changes the speed
    along it (or makes an S), which is what a hand does within a 30-50 ms exposure.
    """
    angle = rng.uniform(0.0, 2.0 * math.pi)
    coeffs = np.stack([
        np.array([math.cos(angle), math.sin(angle)]),
        rng.normal(0.0, 1.0, 2),
        rng.normal(0.0, 2.0, 2),
    ])  # (3, 2)

    def at(t: np.ndarray) -> np.ndarray:
        return np.stack([t, t**2, t**3], axis=1) @ coeffs

    dense = at(np.linspace(-0.5, 0.5, 257))
    arc = float(np.linalg.norm(np.diff(dense, axis=0), axis=1).sum())
    return at(tau) * (length / arc if arc > 0 else 0.0)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _frame_extent(camera: CameraPath, size: tuple[int, int]) -> tuple[float, float]:
    """Half-width and half-height (output px) of the box that every sub-frame's corners stay in."""
    h, w = size
    corners = np.array([[-w, -h], [w, -h], [-w, h], [w, h]], dtype=np.float64) / 2.0
    cos, sin = np.cos(camera.roll), np.sin(camera.roll)
    x = camera.zoom[:, None] * (cos[:, None] * corners[:, 0] - sin[:, None] * corners[:, 1])
    y = camera.zoom[:, None] * (sin[:, None] * corners[:, 0] + cos[:, None] * corners[:, 1])
    x = x + camera.shift[:, 0:1]
    y = y + camera.shift[:, 1:2]
    return float(np.abs(x).max()), float(np.abs(y).max())


def draw_pair_params(
    rng: np.random.Generator,
    photo_hw: tuple[int, int],
    size: tuple[int, int],
    moving_object: bool = True,
    detail: np.ndarray | None = None,
) -> PairParams:
    """Draw the camera path, crop and optional moving object of one pair.

    The crop is chosen after the path, at a random scale no larger than fits, so that every sub-frame
    lies inside the photo: there are no borders from sampling outside it. ``detail`` (see
    :func:`detail_map`) steers the moving object's texture towards textured parts of the photo.
    """
    hp, wp = photo_hw
    h, w = size
    k = min(h, w) / REFERENCE_SIDE
    n = int(rng.choice(SUBFRAME_COUNTS))
    tau = (np.arange(n) - n // 2) / (n - 1)  # exactly 0 at the middle sub-frame
    corner = 0.5 * math.hypot(h, w)

    length = k * _log_uniform(rng, *SPEED_RANGE) * (n - 1)
    shift = _cubic_path(rng, tau, length)
    # Roll and zoom move the frame corners by a fraction of the translation: small, but they make the
    # blur vary across the frame as it does for a real hand.
    roll = (rng.normal(0.0, 0.25) * tau + rng.normal(0.0, 0.25) * tau**2) * length / corner
    zoom = 1.0 + rng.normal(0.0, 0.15) * tau * length / corner
    camera = CameraPath(shift=shift, roll=roll, zoom=zoom)

    bx, by = _frame_extent(camera, size)
    scale_max = min((wp / 2 - 0.5) / bx, (hp / 2 - 0.5) / by)
    scale_lo = min(1.0, scale_max)  # prefer downsampling; upsample only when the photo is too small
    scale = _log_uniform(rng, scale_lo, scale_max) if scale_max > scale_lo else scale_max
    cx = rng.uniform(0.5 + scale * bx, wp - 0.5 - scale * bx)
    cy = rng.uniform(0.5 + scale * by, hp - 0.5 - scale * by)

    obj = None
    if moving_object and rng.random() < OBJECT_PROBABILITY:
        obj = _draw_object(rng, tau, photo_hw, size, scale, detail)
    return PairParams(center=(float(cx), float(cy)), scale=float(scale), camera=camera, obj=obj)


def _draw_object(
    rng: np.random.Generator, tau: np.ndarray, photo_hw: tuple[int, int], size: tuple[int, int], scale: float,
    detail: np.ndarray | None,
) -> MovingObject:
    hp, wp = photo_hw
    h, w = size
    k = min(h, w) / REFERENCE_SIDE
    radius = min(h, w) * rng.uniform(0.07, 0.2)
    aspect = math.exp(rng.uniform(-0.35, 0.35))
    radii = (radius * aspect, radius / aspect)
    harmonics = ((rng.uniform(0.0, 0.12), rng.uniform(0.0, 2 * math.pi)),
                 (rng.uniform(0.0, 0.08), rng.uniform(0.0, 2 * math.pi)))
    edge = k * rng.uniform(1.5, 5.0)

    n = len(tau)
    length = k * _log_uniform(rng, *OBJECT_SPEED_RANGE) * (n - 1)
    start = np.array([rng.uniform(-0.4, 0.4) * w, rng.uniform(-0.4, 0.4) * h])
    center = start + _cubic_path(rng, tau, length)
    angle = rng.normal(0.0, 0.3) * tau * length / radius

    bound = max(radii) * (1.0 + sum(amp for amp, _ in harmonics)) + edge  # as MovingObject.bound()
    tex_scale = min(scale * math.exp(rng.uniform(-0.3, 0.3)), (min(hp, wp) / 2 - 0.5) / bound)
    reach = tex_scale * bound
    # Cut the object from a textured part of the photo when a detail map says where: a blob of clear sky
    # moving over the scene would look like a lens flare, not like a person or a car.
    candidates = np.stack([rng.uniform(0.5 + reach, wp - 0.5 - reach, TEXTURE_CANDIDATES),
                           rng.uniform(0.5 + reach, hp - 0.5 - reach, TEXTURE_CANDIDATES)], axis=1)
    tx, ty = candidates[0]
    if detail is not None:
        fy, fx = detail.shape[0] / hp, detail.shape[1] / wp
        scores = []
        for x, y in candidates:
            box = detail[int((y - reach) * fy):math.ceil((y + reach) * fy),
                         int((x - reach) * fx):math.ceil((x + reach) * fx)]
            scores.append(float(box.mean()) if box.size else 0.0)
        tx, ty = candidates[int(np.argmax(scores))]
    return MovingObject(
        center=center, angle=angle, radii=radii, harmonics=harmonics, edge=edge,
        texture_center=(float(tx), float(ty)), texture_scale=float(tex_scale),
        texture_angle=float(rng.uniform(0.0, 2 * math.pi)),
    )


# Rendering ---------------------------------------------------------------------------------------------


def _affine_grid(a: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Sampling grid ``(N, len(v), len(u), 2)`` with ``grid[n, i, j] = a[n] @ (u[j], v[i], 1)``.

    Built by broadcasting: about twice as fast on a CPU as ``F.affine_grid``'s batched matrix product.
    """
    grid = torch.empty(a.shape[0], v.numel(), u.numel(), 2, device=a.device)
    for c in range(2):
        row = a[:, c, 1, None, None] * v[None, :, None] + a[:, c, 2, None, None]
        torch.add(row, a[:, c, 0, None, None] * u[None, None, :], out=grid[..., c])
    return grid


def _photo_affine(
    photo_hw: tuple[int, int], center: tuple[float, float], scale: float,
    shift: np.ndarray, angle: np.ndarray, zoom: np.ndarray,
) -> torch.Tensor:
    """Affine maps ``(N, 2, 3)`` from output pixels (from the frame centre) to ``grid_sample``'s
    normalized photo coordinates: ``photo = center + scale·(zoom·R(angle)·u + shift)``."""
    hp, wp = photo_hw
    cos, sin = np.cos(angle) * zoom * scale, np.sin(angle) * zoom * scale
    a = np.empty((len(angle), 2, 3))
    a[:, 0] = np.stack([cos, -sin, center[0] + scale * shift[:, 0]], axis=1) * (2.0 / wp)
    a[:, 1] = np.stack([sin, cos, center[1] + scale * shift[:, 1]], axis=1) * (2.0 / hp)
    a[:, 0, 2] -= 1.0
    a[:, 1, 2] -= 1.0
    return torch.from_numpy(a).float()


def _pixel_coords(count: int, extent: int, start: int = 0, device: torch.device | None = None) -> torch.Tensor:
    """Centres of supersampled pixels ``start .. start+count-1`` in output pixels from the frame centre
    (computed in float64 on the CPU, where every device gets the same values, then moved)."""
    idx = torch.arange(start, start + count, dtype=torch.float64)
    return ((idx + 0.5) / SUPERSAMPLE - extent / 2.0).float().to(device)


def _composite_object(frames: torch.Tensor, photo: torch.Tensor, obj: MovingObject, size: tuple[int, int]) -> None:
    """Draw ``obj`` over supersampled linear ``frames`` ``(N, 3, sH, sW)`` in place, only inside the box
    its path covers."""
    h, w = size
    s = SUPERSAMPLE
    bound = obj.bound()
    x0 = max(0, math.floor((obj.center[:, 0].min() - bound + w / 2) * s))
    x1 = min(w * s, math.ceil((obj.center[:, 0].max() + bound + w / 2) * s))
    y0 = max(0, math.floor((obj.center[:, 1].min() - bound + h / 2) * s))
    y1 = min(h * s, math.ceil((obj.center[:, 1].max() + bound + h / 2) * s))
    if x1 <= x0 or y1 <= y0:
        return
    device = frames.device
    u = _pixel_coords(x1 - x0, w, x0, device)[None, None, :]
    v = _pixel_coords(y1 - y0, h, y0, device)[None, :, None]

    # Object-local coordinates (N, bh, bw): the offset from the object's centre turned by -angle.
    cos = torch.from_numpy(np.cos(obj.angle)).float().to(device)[:, None, None]
    sin = torch.from_numpy(np.sin(obj.angle)).float().to(device)[:, None, None]
    centre = torch.from_numpy(obj.center).float().to(device)
    dx = u - centre[:, 0, None, None]
    dy = v - centre[:, 1, None, None]
    local = torch.stack([cos * dx + sin * dy, cos * dy - sin * dx], dim=-1)

    lx, ly = local[..., 0] / obj.radii[0], local[..., 1] / obj.radii[1]
    rho = torch.sqrt(lx.square() + ly.square())
    psi = torch.atan2(ly, lx)
    outline = 1.0 + sum(amp * torch.cos((k + 2) * psi + phase) for k, (amp, phase) in enumerate(obj.harmonics))
    mean_radius = math.sqrt(obj.radii[0] * obj.radii[1])
    mask = ((outline - rho) * (mean_radius / obj.edge) + 0.5).clamp(0.0, 1.0).unsqueeze(1)

    # Texture: the local coordinates, turned by texture_angle, scaled into the photo around texture_center.
    hp, wp = photo.shape[-2:]
    ct, st = math.cos(obj.texture_angle) * obj.texture_scale, math.sin(obj.texture_angle) * obj.texture_scale
    tx = (ct * local[..., 0] - st * local[..., 1] + obj.texture_center[0]) * (2.0 / wp) - 1.0
    ty = (st * local[..., 0] + ct * local[..., 1] + obj.texture_center[1]) * (2.0 / hp) - 1.0
    grid = torch.stack([tx, ty], dim=-1)
    texture = F.grid_sample(
        photo.expand(grid.shape[0], -1, -1, -1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    region = frames[:, :, y0:y1, x0:x1]
    region.mul_(1.0 - mask).add_(texture * mask)


@torch.inference_mode()
def render_pair(
    photo_linear: torch.Tensor, params: PairParams, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Render one pair: ``(sharp, blur, blur_gamma)``, each ``(3, H, W)`` float32 on 8-bit levels, on
    ``photo_linear``'s device.

    ``photo_linear`` is ``(3, Hp, Wp)`` in linear light (encoded ``** GAMMA``). All sub-frames are
    sampled in one ``grid_sample`` batch at :data:`SUPERSAMPLE` × the output size and area-averaged down.
    """
    h, w = size
    photo = photo_linear.unsqueeze(0).float()
    device = photo.device
    cam = params.camera
    a = _photo_affine(photo.shape[-2:], params.center, params.scale, cam.shift, cam.roll, cam.zoom).to(device)
    grid = _affine_grid(a, _pixel_coords(w * SUPERSAMPLE, w, device=device),
                        _pixel_coords(h * SUPERSAMPLE, h, device=device))
    frames = F.grid_sample(
        photo.expand(cam.count, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    del grid
    if params.obj is not None:
        _composite_object(frames, photo, params.obj, size)
    # The 8-bit codes of the video frames GoPro averaged, (N, 3, H, W); in place, as these are large.
    codes = F.avg_pool2d(frames, SUPERSAMPLE).clamp_(0.0, 1.0).pow_(1.0 / GAMMA).mul_(255.0).round_()
    del frames
    sharp = codes[cam.count // 2] / 255.0
    # N is odd, so a mean of N integer codes is never a tie between two 8-bit levels.
    blur = codes.mean(0).round_().div_(255.0)
    blur_gamma = quantize_8bit(codes.div_(255.0).pow_(GAMMA).mean(0).pow_(1.0 / GAMMA))
    return sharp, blur, blur_gamma


# The dataset -------------------------------------------------------------------------------------------


@dataclass
class SynthReport:
    """What :func:`synthesize` wrote, and how blurry it is (PSNR of each blurry frame against sharp)."""

    out: Path
    split: str
    psnr_blur: list[float] = field(default_factory=list)
    psnr_blur_gamma: list[float] = field(default_factory=list)
    subframes: list[int] = field(default_factory=list)
    motion_px: list[float] = field(default_factory=list)
    """Camera path length of each pair in output pixels."""
    written: list[Path] = field(default_factory=list)
    """Every file written (sharp, blur, blur_gamma of each pair)."""
    sequences: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """One-line reasons for the sources that were skipped."""
    seconds: float = 0.0

    @property
    def count(self) -> int:
        """Number of pairs written."""
        return len(self.psnr_blur_gamma)

    def format(self) -> str:
        """Human summary: counts, the PSNR distribution of both blur kinds, and GoPro's for comparison."""
        per_pair = self.seconds / self.count if self.count else float("nan")
        lines = [
            f"wrote {self.count} pairs from {len(self.sequences)} photos to {self.out / self.split} "
            f"in {self.seconds:.1f} s ({per_pair:.2f} s per pair)"
            + (f"; skipped {len(self.skipped)} unusable sources" if self.skipped else "")
        ]
        if not self.count:
            return lines[0]
        lines.append(f"{'PSNR against sharp (dB)':<24}{'min':>7}{'p10':>7}{'median':>7}{'mean':>7}{'p90':>7}{'max':>7}")
        for name, values in (("blur_gamma", self.psnr_blur_gamma), ("blur", self.psnr_blur)):
            finite = np.array([v for v in values if math.isfinite(v)])
            if finite.size == 0:
                lines.append(f"  {name:<22}  (all identical to sharp)")
                continue
            stats = (finite.min(), *np.percentile(finite, [10, 50]), finite.mean(), np.percentile(finite, 90),
                     finite.max())
            lines.append(f"  {name:<22}" + "".join(f"{x:7.2f}" for x in stats))
        finite = [v for v in self.psnr_blur_gamma if math.isfinite(v)]
        if len(finite) < self.count:
            lines.append(f"  {self.count - len(finite)} pairs have no blur at all (identical to sharp)")
        if finite:
            mean = float(np.mean(finite))
            verdict = ("comparable blur" if abs(mean - GOPRO_BLUR_PSNR_DB) <= 1.5
                       else "milder blur" if mean > GOPRO_BLUR_PSNR_DB else "stronger blur")
            lines.append(
                f"GoPro_Large's blurry test inputs average about {GOPRO_BLUR_PSNR_DB} dB against sharp; "
                f"these blur_gamma frames average {mean:.1f} dB ({verdict})."
            )
        return "\n".join(lines)


def _pair_rng(seed: int, source: int, pair: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, source, pair]))


def _load_linear(path: Path, size: tuple[int, int], device: torch.device | None = None) -> torch.Tensor:
    """Read a photo into linear light on ``device``, reduced once if it is much larger than the frame.

    Raises :class:`ImageError` if it cannot be read or is too small to fill the frame.
    """
    rgb = read_image(path).rgb.to(device).float().clamp(0.0, 1.0)
    hp, wp = rgb.shape[-2:]
    h, w = size
    fit = min(hp / h, wp / w)
    if fit * MAX_UPSCALE < 1.0:
        raise ImageError(f"{path}: {wp}x{hp} is too small for {w}x{h} frames (over {MAX_UPSCALE:g}x upscaling)")
    linear = rgb.pow(GAMMA)
    if fit > MAX_DOWNSCALE:
        new = (round(hp * MAX_DOWNSCALE / fit), round(wp * MAX_DOWNSCALE / fit))
        linear = F.interpolate(linear[None], size=new, mode="bilinear", antialias=True, align_corners=False)[0]
    return linear.contiguous()


def detail_map(photo_linear: torch.Tensor, factor: int = 8) -> np.ndarray:
    """Local contrast of a photo on a grid ``factor`` times coarser: the gradient magnitude of its
    encoded luminance, area-reduced. Used only to choose where moving objects are cut from."""
    gray = photo_linear.mean(0).pow(1.0 / GAMMA)
    gy, gx = torch.gradient(gray)
    magnitude = torch.sqrt(gx.square() + gy.square())[None, None]
    return F.avg_pool2d(magnitude, factor, ceil_mode=True)[0, 0].cpu().numpy()


def _write_pair(
    sequence: Path, name: str, sharp: torch.Tensor, blur: torch.Tensor, blur_gamma: torch.Tensor
) -> tuple[list[Path], float, float]:
    """Write one pair's three PNGs; return their paths and PSNR(blur, sharp), PSNR(blur_gamma, sharp)."""
    paths = [write_image(sequence / kind / name, image)
             for kind, image in (("sharp", sharp), ("blur", blur), ("blur_gamma", blur_gamma))]
    return paths, float(psnr(blur, sharp)), float(psnr(blur_gamma, sharp))


def _warn_skip(reason: str, skipped: list[str]) -> None:
    skipped.append(reason)
    warnings.warn(f"skipping {reason}", stacklevel=3)


def _list_sources(sources: Sequence[str | Path], skipped: list[str]) -> list[Path]:
    """:func:`list_images` item by item, so that one missing file or empty glob is skipped, not fatal."""
    unmatched: list[tuple[str, str]] = []
    files = list_images(sources, unmatched=unmatched)
    for _, reason in unmatched:
        _warn_skip(reason, skipped)
    return files


def synthesize(
    sources: Sequence[str | Path],
    out: Path,
    split: str = "train",
    pairs_per_image: int = 4,
    size: tuple[int, int] = (720, 1280),
    seed: int = 0,
    moving_object: bool = True,
    progress: bool = True,
    device: str | torch.device = "cpu",
    pair_step: int = 1,
) -> SynthReport:
    """Write GoPro-style pairs from sharp photos as ``OUT/SPLIT/GOPR{k:04d}_00_00/{blur,blur_gamma,sharp}/
    {i:06d}.png``: one sequence per usable photo, ``pairs_per_image`` frames in it.

    ``sources`` are files, folders or globs (see :func:`unblur.io.list_images`). ``size`` is ``(H, W)``.
    A source that cannot be read is skipped with a one-line warning; if none is usable, or ``out``
    contains one of the sources, :class:`ValueError` is raised before anything is written. Files of the
    same name are replaced (atomically). Same arguments and device, same bytes. ``device`` renders on a
    GPU (``cuda``, ``mps``; ``auto`` picks the fastest present); the CPU's result is the reference.

    ``pair_step`` renders only pairs ``0, pair_step, 2·pair_step, …`` of each photo's ``pairs_per_image``,
    under the names and with the bytes the full set gives them: a pair's randomness depends on (seed,
    photo, pair index) alone. A subset for quick experiments then costs a fraction of the rendering and
    stays comparable with runs on the full set.
    """
    if pairs_per_image < 1:
        raise ValueError(f"pairs_per_image must be >= 1, got {pairs_per_image}")
    if pair_step < 1:
        raise ValueError(f"pair_step must be >= 1, got {pair_step}")
    indices = range(0, pairs_per_image, pair_step)
    h, w = size
    if h < 8 or w < 8:
        raise ValueError(f"frame size must be at least 8x8, got {w}x{h}")
    if not split or Path(split).name != split or split in (".", ".."):
        raise ValueError(f"split must be a plain folder name, got {split!r}")
    out = Path(out)
    torch_device = resolve_device(device)
    report = SynthReport(out=out, split=split)
    files = _list_sources(sources, report.skipped)
    if not files:
        raise ValueError("no usable images in " + ", ".join(map(str, sources))
                         + "".join(f"; {reason}" for reason in report.skipped))
    out_resolved = out.resolve()
    for f in files:
        if out_resolved in Path(f).resolve().parents:
            raise ValueError(f"output folder {out} contains the source {f}; choose another --out")
    # Before rendering anything: the output folder must be writable and have room for the PNGs.
    created = not out.exists()
    ensure_writable_folder(out, "output folder")
    n_pairs = len(files) * len(indices)
    check_free_space(out, int(n_pairs * 3 * h * w * 3 * PNG_SIZE_RATIO), f"{n_pairs} pairs of {w}x{h} PNGs")

    start = time.perf_counter()
    bar = tqdm(total=n_pairs, unit="pair", desc="synth", disable=not progress)
    # PNG encoding (zlib) releases the GIL, so two threads write and score one pair while the next one
    # renders; at most two pairs wait, which bounds memory. Results are collected in order.
    pending: deque[Future[tuple[list[Path], float, float]]] = deque()

    def collect(limit: int) -> None:
        while len(pending) > limit:
            paths, p_blur, p_gamma = pending.popleft().result()
            report.written.extend(paths)
            report.psnr_blur.append(p_blur)
            report.psnr_blur_gamma.append(p_gamma)
            bar.update(1)

    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            for index, path in enumerate(files):
                try:
                    photo = _load_linear(Path(path), size, torch_device)
                except ImageError as exc:
                    _warn_skip(str(exc), report.skipped)
                    bar.update(len(indices))
                    continue
                detail = detail_map(photo) if moving_object else None
                sequence = out / split / f"GOPR{len(report.sequences):04d}_00_00"
                for kind in ("blur", "blur_gamma", "sharp"):
                    (sequence / kind).mkdir(parents=True, exist_ok=True)
                report.sequences.append(sequence)
                for i in indices:
                    rng = _pair_rng(seed, index, i)
                    params = draw_pair_params(rng, tuple(photo.shape[-2:]), size, moving_object, detail)
                    frames = tuple(t.cpu() for t in render_pair(photo, params, size))
                    report.subframes.append(params.camera.count)
                    report.motion_px.append(params.camera.length())
                    pending.append(pool.submit(_write_pair, sequence, f"{i:06d}.png", *frames))
                    collect(limit=2)
            collect(limit=0)
        finally:
            for future in pending:
                future.cancel()
            bar.close()
    report.seconds = time.perf_counter() - start
    if not report.sequences:
        if created:  # leave nothing behind when nothing was written
            with contextlib.suppress(OSError):
                out.rmdir()
        raise ValueError(f"none of the {len(files)} sources could be used: " + "; ".join(report.skipped))
    return report


def sample_photos() -> list[Path]:
    """The sharp photos bundled with unblur (see ``samples/CREDITS.md``), sorted by name."""
    root = resources.files("unblur") / "samples"
    suffixes = (".jpg", ".jpeg", ".png")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.lower().endswith(suffixes))
