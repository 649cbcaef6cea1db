"""Student networks.

Every model maps a batch of RGB images ``(N, 3, H, W)`` in ``[0, 1]`` to a sharpened batch of the same
shape and range, for any ``H, W``. Models are plain ``nn.Module`` classes whose widths are constructor
arguments; :data:`MODELS` maps the names used on the command line and in saved weights to constructors,
so a weights file records only a name and keyword arguments, never code.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import pickle
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ResidualStudentCNNv3",
    "StudentCNNv3",
    "UnblurNet",
    "Weights",
    "build_model",
    "clean_state_dict",
    "count_macs_per_pixel",
    "count_parameters",
    "linear_to_srgb",
    "load_weights",
    "local_mean",
    "save_weights",
    "srgb_to_linear",
    "strength_at_size",
    "weights_from_model",
]


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Conv2d:
    """3×3 convolution whose padding keeps the spatial size (padding = dilation)."""
    return nn.Conv2d(cin, cout, kernel_size=3, padding=dilation, dilation=dilation)


class StudentCNNv3(nn.Module):
    """The seed report's student, layer for layer.

    Conv(3→64)+ReLU → Conv(64→128)+ReLU → Conv(128→128, dilation 2)+ReLU, plus a residual add of that
    convolution's input → Conv(128→64)+ReLU → Conv(64→3) → Sigmoid. With the default widths it has
    298,755 parameters and costs 298,368 multiply-accumulates per pixel.

    The sigmoid output has to rebuild the whole image rather than only the missing detail; that is
    faithful to the seed and is what the later students fix.
    """

    def __init__(self, width: int = 64, mid: int = 128) -> None:
        super().__init__()
        self.conv1 = _conv(3, width)
        self.conv2 = _conv(width, mid)
        self.conv3 = _conv(mid, mid, dilation=2)
        self.conv4 = _conv(mid, width)
        self.conv5 = _conv(width, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        skip = self.relu(self.conv2(x))
        x = self.relu(self.conv3(skip)) + skip
        x = self.relu(self.conv4(x))
        return torch.sigmoid(self.conv5(x))


class ResidualStudentCNNv3(StudentCNNv3):
    """StudentCNN_v3's layers predicting a correction that is added to the input (global residual).

    The seed's sigmoid head must rebuild the whole image; here the last convolution starts at zero, so
    the untrained network is the identity and training only has to learn the missing detail. Output is
    clamped to ``[0, 1]``.
    """

    def __init__(self, width: int = 64, mid: int = 128) -> None:
        super().__init__(width, mid)
        nn.init.zeros_(self.conv5.weight)
        nn.init.zeros_(self.conv5.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.conv1(x))
        skip = self.relu(self.conv2(h))
        h = self.relu(self.conv3(skip)) + skip
        h = self.relu(self.conv4(h))
        return (x + self.conv5(h)).clamp(0.0, 1.0)


class _ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3×3 convolutions of one width (optionally dilated)."""

    def __init__(self, channels: int, dilations: tuple[int, int] = (1, 1)) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels, dilations[0])
        self.conv2 = _conv(channels, channels, dilations[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """The sRGB decoding curve (IEC 61966-2-1): encoded values in ``[0, 1]`` to linear light."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).pow(2.4))


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """The sRGB encoding curve, inverse of :func:`srgb_to_linear`. Its linear toe keeps the gradient
    bounded (at most 12.92) near black, where a pure power law's would be unbounded."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(0.0031308).pow(1 / 2.4) - 0.055)


def _box_mean_1d(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Mean over ``[i - radius, i + radius]`` along ``dim`` (cut at the ends), from a running sum: the
    cost does not grow with the window (PyTorch's ``avg_pool2d`` sums every window anew, 8× slower here)."""
    n = x.shape[dim]
    pad = [0, 0] * (x.dim() - 1 - dim % x.dim()) + [radius + 1, radius]
    c = F.pad(x, pad).cumsum(dim)
    window_sums = c.narrow(dim, 2 * radius + 1, n) - c.narrow(dim, 0, n)
    i = torch.arange(n, device=x.device, dtype=x.dtype)
    counts = (torch.clamp(i + radius, max=n - 1) - torch.clamp(i - radius, min=0) + 1).reshape(
        [n if d == dim % x.dim() else 1 for d in range(x.dim())])
    return window_sums / counts


def local_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window``×``window`` box around each pixel of ``(..., H, W)`` (windows cut at the
    border average only what is inside the image)."""
    return _box_mean_1d(_box_mean_1d(x, window // 2, -1), window // 2, -2)


def strength_at_size(table: Sequence[Sequence[float]], height: int, width: int) -> float:
    """The strength a ``(short side, strength)`` table gives a ``height × width`` frame: linear in the
    logarithm of the frame's short side between two rows, held at the first row's below it and at the last
    row's above it. Logarithmic because blur lengths, and so what a frame looks like to the network, scale
    with the frame: equal ratios of size are equal steps (288 to 405 px is as far as 405 to 570)."""
    short = max(1, min(height, width))
    if short <= table[0][0]:
        return float(table[0][1])
    for (s0, v0), (s1, v1) in itertools.pairwise(table):
        if short <= s1:
            t = math.log(short / s0) / math.log(s1 / s0)
            return float(v0 + t * (v1 - v0))
    return float(table[-1][1])


def _size_table(name: str, table: Sequence[Sequence[float]]) -> tuple[tuple[int, float], ...]:
    """``table`` checked as :func:`strength_at_size` reads it: ``(short side, strength)`` rows, whole and
    increasing sides, strengths from 0 to 2."""
    rows = [tuple(row) for row in table]
    if (not rows or any(len(row) != 2 for row in rows) or any(not 0.0 <= v <= 2.0 for _, v in rows)
            or any(s < 1 or s != int(s) for s, _ in rows) or any(a[0] >= b[0] for a, b in itertools.pairwise(rows))):
        raise ValueError(f"{name} must be (short side, strength) rows with whole, increasing sides and strengths "
                         f"from 0 to 2, got {table}")
    return tuple((int(s), float(v)) for s, v in rows)


class UnblurNet(nn.Module):
    """A small multi-scale student: pixel-unshuffle, a three-level U-Net, a global residual in linear light.

    Motion blur spreads a point over tens of pixels, far beyond StudentCNN_v3's 13-pixel receptive
    field. Here the image is first folded 2×2 into channels (pixel-unshuffle: the first convolutions
    already run at half resolution), then two strided convolutions reach 1/4 and 1/8 scale, where
    every 3×3 convolution sees 8× further for the same cost per output pixel. Decoding upsamples with
    pixel-shuffle and adds the encoder features back. The head predicts a correction added to the input
    and starts at zero, so the untrained network is the identity. Any ``H×W`` works: the input is
    edge-padded to a multiple of 8 and the output cropped back.

    **Linear light** (``linear_light=True``, the default): motion blur averages light, so it is a
    convolution of the sharp image in linear light, which moves light around but neither adds nor
    removes it. The correction is therefore added in linear light (sRGB decoded), less its own mean
    over a ``mean_window``-pixel box (wider than GoPro-like blurs), then encoded back. Measured
    why: GoPro's ``blur_gamma`` is brighter than ``sharp`` in encoded values (mean +0.009 on our
    synthesized pairs, Jensen's inequality) but not in linear light (±0.001); a student adding its
    correction to encoded values first learns a uniform darkening of about 0.010 that wrecks every
    lightly blurred frame (−1.4 dB on validation after 1,000 steps, docs/results.md). Here brightness
    can only change where the network sharpens, the way it does physically. ``linear_light=False`` is
    the plain encoded-value residual.

    ``mid_dilations`` (one per convolution of the 1/8-scale blocks, ``2 × blocks[2]`` of them; default
    all 1) widens the receptive field at no cost in parameters or MACs: at 1/8 scale a 3×3 convolution
    of dilation ``d`` reaches ``8·d`` pixels, so (1, 2, 4, 8, 2, 1) lets those six convolutions span
    ±144 px instead of ±48, the length of the longest synthesized blurs.

    ``strength`` scales the correction (default 1). A student trained on 20 photos over-corrects photos
    it has not seen: it sharpens a soft, bright edge as if it were a blurred hard one. Scaling its
    correction down, by a factor chosen on held-out photos (``scripts/pick_strength.py``), keeps most of
    the gain on long blurs and removes most of that loss (docs/results.md, "Strength"). It is a model
    argument, not a post-processing step, so a weights file carries it to every path that builds the
    model: ``unblur sharpen``, ``eval``, ``bench`` and ONNX export.

    ``strength_by_size`` replaces that one number by a table of ``(short side in pixels, strength)`` rows,
    interpolated by :func:`strength_at_size`: the best strength measured on held-out photos grows with
    the frame (0.70 at 512×288 to 1.00 at 1280×720 for the weights bundled on 2026-12-07), because
    the same motion leaves fewer pixels of blur in a smaller frame and the student over-corrects those
    most. ``forward(x)`` takes the strength for ``x``'s own size; a caller that runs a photo in tiles
    passes the whole photo's (``forward(x, strength)``, :class:`unblur.infer.Sharpener`), since a tile's
    size says nothing about the blur in it.

    ``coarse_by_size`` (rows of ``(short side, coarse strength)``, interpolated the same way; default none)
    adds a coarse pass before the usual one: the network runs on the frame averaged 2×2, and its
    correction, upsampled and scaled by the coarse strength, is added to the frame the usual pass then
    sharpens. At half size each blur is half as long, within the network's reach (about ±70 px) where at
    full size the longest are not: with coarse strengths and strengths picked on held-out frames
    (scripts/pick_coarse.py), the bundled network gains 0.13 dB more there at 1920×1080, 0.06 at
    1280×720, 0.01 at 960×540 and nothing below; the bundled weights have no coarse pass, since it lost a
    little on the worst unseen 960×540 frames (docs/results.md, "A coarse pass"). It costs a quarter of
    a pass where its strength is above 0 and nothing where it is 0. ``unblur train --coarse C`` trains
    through it, so that the usual pass learns what the coarse one leaves (docs/results.md, "Trained
    through the coarse pass").
    """

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 96), blocks: tuple[int, int, int] = (2, 2, 3),
                 linear_light: bool = True, mean_window: int = 255,
                 mid_dilations: tuple[int, ...] | None = None, strength: float = 1.0,
                 strength_by_size: Sequence[Sequence[float]] | None = None,
                 coarse_by_size: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__()
        if not 0.0 <= strength <= 2.0:
            raise ValueError(f"strength must be between 0 and 2, got {strength}")
        if strength_by_size is not None:
            strength_by_size = _size_table("strength_by_size", strength_by_size)
            if strength != 1.0:
                raise ValueError("give strength or strength_by_size, not both")
        self.strength_by_size = strength_by_size
        self.coarse_by_size = _size_table("coarse_by_size", coarse_by_size) if coarse_by_size is not None else None
        if mean_window < 1 or mean_window % 2 == 0:
            raise ValueError(f"mean_window must be a positive odd number of pixels, got {mean_window}")
        mid_dilations = tuple(mid_dilations or (1,) * (2 * blocks[2]))
        if len(mid_dilations) != 2 * blocks[2] or min(mid_dilations) < 1:
            raise ValueError(f"mid_dilations must be {2 * blocks[2]} positive integers (two per 1/8-scale "
                             f"block), got {list(mid_dilations)}")
        self.linear_light = linear_light
        self.mean_window = mean_window
        self.mid_dilations = mid_dilations
        self.strength = float(strength)
        c1, c2, c3 = widths
        self.stem = nn.Conv2d(12, c1, 3, padding=1)
        self.enc1 = nn.Sequential(*[_ResBlock(c1) for _ in range(blocks[0])])
        self.down1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.enc2 = nn.Sequential(*[_ResBlock(c2) for _ in range(blocks[1])])
        self.down2 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.mid = nn.Sequential(*[_ResBlock(c3, mid_dilations[2 * i:2 * i + 2]) for i in range(blocks[2])])
        self.up2 = nn.Sequential(nn.Conv2d(c3, c2 * 4, 1), nn.PixelShuffle(2))
        self.dec2 = _ResBlock(c2)
        self.up1 = nn.Sequential(nn.Conv2d(c2, c1 * 4, 1), nn.PixelShuffle(2))
        self.dec1 = _ResBlock(c1)
        self.head = nn.Conv2d(c1, 12, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def tile_overlap(self) -> int:
        """Context a tile needs on each side to match the whole image (see :class:`unblur.infer.Sharpener`):
        the correction's local mean reaches ``mean_window // 2`` pixels away, and the U-Net's own context
        about 64 px beyond that. Measured on a 1-megapixel photo in 256 px tiles, the largest difference to
        the untiled result: with ``mean_window`` 255 (the weights bundled until 2026-12-06) 1.11 8-bit
        levels at 128 px of overlap, 0.06 at 160, 0.00 at 192; with 127 (bundled since) 0.72 at 96, 0.00 at
        128 (tests/test_fastpaths.py asks for at most one level). Dilated 1/8-scale convolutions reach
        ``8·(d − 1)`` pixels further each. A coarse pass (``coarse_by_size``) sees twice as far in the
        frame's pixels, and the usual pass needs its result over its own context: three times as much."""
        context = 32 + 8 * sum(d - 1 for d in self.mid_dilations)
        one_pass = max(context, self.mean_window // 2 + 1 + context + 32) if self.linear_light else context
        return 3 * one_pass if self.coarse_by_size is not None else one_pass

    def extra_repr(self) -> str:
        # in repr, so that a model's fingerprint (unblur.export's cache of in-memory ONNX graphs) tells
        # apart two models with the same tensors and different settings
        return (f"linear_light={self.linear_light}, mean_window={self.mean_window}, "
                f"mid_dilations={self.mid_dilations}, strength={self.strength}, "
                f"strength_by_size={self.strength_by_size}, coarse_by_size={self.coarse_by_size}")

    def strength_for(self, height: int, width: int) -> float:
        """The strength :meth:`forward` uses for a ``height × width`` frame: ``strength_by_size``
        interpolated (:func:`strength_at_size`), or the one ``strength``."""
        if self.strength_by_size is None:
            return self.strength
        return strength_at_size(self.strength_by_size, height, width)

    def coarse_for(self, height: int, width: int) -> float:
        """The coarse pass's strength for a ``height × width`` frame: ``coarse_by_size`` interpolated, or 0
        (no coarse pass) without one."""
        return 0.0 if self.coarse_by_size is None else strength_at_size(self.coarse_by_size, height, width)

    def coarse_correct(self, x: torch.Tensor, coarse: float | torch.Tensor | None = None) -> torch.Tensor:
        """``x`` with the coarse pass's correction added at strength ``coarse`` (default :meth:`coarse_for`
        of ``x``'s size): the correction the network makes to ``x`` averaged 2×2, upsampled bilinearly.
        What :meth:`forward` then sharpens; ``x`` itself where the strength is 0 (a float: a tensor, as an
        ONNX graph's input, always runs the pass). An odd last row or column is repeated to make pairs;
        written without branches on the size, so that an ONNX export works for every size."""
        h, w = x.shape[-2:]
        if coarse is None:
            coarse = self.coarse_for(h, w)
        if not isinstance(coarse, torch.Tensor) and coarse == 0.0:
            return x
        even = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        small = self.correction(F.avg_pool2d(even, 2), 1.0)
        up = F.interpolate(small, scale_factor=2.0, mode="bilinear", align_corners=False)[..., :h, :w]
        return self.add_correction(x, up * coarse)

    def correction(self, x: torch.Tensor, strength: float | torch.Tensor | None = None) -> torch.Tensor:
        """What :meth:`forward` adds to ``x``, scaled by ``strength`` (default: :meth:`strength_for` of
        ``x``'s size; a tensor for graphs that take it as an input, ONNX): in linear light (float32, its
        ``mean_window`` mean removed), or in encoded values with ``linear_light=False``. Exposed because
        the output's light (or encoded values) is linear in ``strength``: :func:`unblur.evaluate.strength_sweep`
        scores every strength from one call instead of one network run per strength."""
        h, w = x.shape[-2:]
        if strength is None:
            strength = self.strength_for(h, w)
        pad_h, pad_w = (-h) % 8, (-w) % 8
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        e1 = self.enc1(torch.relu(self.stem(F.pixel_unshuffle(padded, 2))))
        e2 = self.enc2(torch.relu(self.down1(e1)))
        m = self.mid(torch.relu(self.down2(e2)))
        d2 = self.dec2(self.up2(m) + e2)
        d1 = self.dec1(self.up1(d2) + e1)
        residual = F.pixel_shuffle(self.head(d1), 2)[..., :h, :w]
        if isinstance(strength, torch.Tensor) or strength != 1.0:
            residual = residual * strength
        if not self.linear_light:
            return residual
        residual = residual.float()  # light sums need more than bf16's 8 bits under autocast
        return residual - local_mean(residual, self.mean_window)

    def add_correction(self, x: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
        """:meth:`forward`'s last step: ``x`` with ``correction`` (one from :meth:`correction`, possibly
        rescaled) added the way forward adds it, so that a caller scaling one correction to several
        strengths gets forward's output at each (:func:`unblur.evaluate.strength_sweep`)."""
        if not self.linear_light:
            return (x + correction).clamp(0.0, 1.0)
        return linear_to_srgb(srgb_to_linear(x.float()) + correction).to(x.dtype)

    def forward(self, x: torch.Tensor, strength: float | torch.Tensor | None = None,
                coarse: float | torch.Tensor | None = None) -> torch.Tensor:
        x = self.coarse_correct(x, coarse)
        return self.add_correction(x, self.correction(x, strength))


MODELS: dict[str, Callable[..., nn.Module]] = {
    "studentcnn_v3": StudentCNNv3,
    "studentcnn_v3_residual": ResidualStudentCNNv3,
    "unblurnet": UnblurNet,
}

# The architecture `unblur train` uses when none is named, and that a bare state_dict is assumed to be.
DEFAULT_MODEL = "studentcnn_v3"


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build a model by its registered name (see :data:`MODELS`)."""
    try:
        constructor = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}") from None
    return constructor(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs_per_pixel(model: nn.Module, size: tuple[int, int] = (256, 256)) -> float:
    """Multiply-accumulates of all convolutions and linear layers, per input pixel.

    Measured with forward hooks on a dummy input, so it follows whatever the model really runs
    (strided or pixel-unshuffled stages count at their own resolution).
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.ConvTranspose2d):
            kh, kw = module.kernel_size
            total += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, *size, device=device))
    finally:
        for h in handles:
            h.remove()
    return total / (size[0] * size[1])


# Weights files ------------------------------------------------------------------------------------------
#
# A weights file is ``torch.save({"format": "unblur-weights", "model": name, "model_kwargs": {...},
# "state_dict": {...}, "meta": {...}})``: nothing but tensors, strings and numbers, so it loads with
# ``torch.load(path, weights_only=True)`` and never runs code. A bare state_dict (the seed's own
# ``sharpen_model.pth``) loads too; it then needs the model name from the caller.

WEIGHTS_FORMAT = "unblur-weights"


@dataclass
class Weights:
    """What a weights file holds: enough to rebuild the model without any code from the file."""

    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def with_strength(self, strength: float) -> Weights:
        """These weights with their correction scaled by ``strength`` at every frame size (``unblur sharpen
        --strength``; it replaces a ``strength_by_size`` table): a model argument of UnblurNet, so only
        models that take one accept it. A coarse pass (``coarse_by_size``) is scaled by it too, so that
        strength 0 leaves every photo as it is and strength 1 keeps the pass the weights chose."""
        chosen = self._with_setting("strength", float(strength))
        coarse = chosen.model_kwargs.get("coarse_by_size")
        if coarse is not None:
            chosen.model_kwargs["coarse_by_size"] = tuple((side, min(2.0, c * strength)) for side, c in coarse)
        return chosen

    def with_strength_by_size(self, table: Sequence[tuple[int, float]]) -> Weights:
        """These weights with a strength per frame size (UnblurNet's ``strength_by_size``) in place of one
        (``scripts/pick_strength.py --by-size``)."""
        return self._with_setting("strength_by_size", tuple((int(side), float(s)) for side, s in table))

    def _with_setting(self, key: str, value: Any) -> Weights:
        """A copy with ``key`` (``strength`` or ``strength_by_size``) set and the other one dropped: a model
        has one or the other."""
        if key not in inspect.signature(MODELS[self.model]).parameters:
            raise ValueError(f"{self.model} has no {key} to set (unblurnet has)")
        kwargs = {k: v for k, v in self.model_kwargs.items() if k not in ("strength", "strength_by_size")}
        return Weights(self.model, {**kwargs, key: value}, self.state_dict, dict(self.meta))

    def build(self) -> nn.Module:
        """Instantiate the architecture and load the tensors (strictly: every key must match)."""
        model = build_model(self.model, **self.model_kwargs)
        model.load_state_dict(self.state_dict)
        return model


def clean_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the prefixes DistributedDataParallel (``module.``) and torch.compile (``_orig_mod.``) add."""
    cleaned = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    return cleaned


def weights_from_model(model: nn.Module, name: str, model_kwargs: dict[str, Any] | None = None,
                       meta: dict[str, Any] | None = None) -> Weights:
    """Snapshot a model's tensors (on the CPU, detached) together with how to rebuild it."""
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return Weights(name, dict(model_kwargs or {}), clean_state_dict(state), dict(meta or {}))


def weights_from_checkpoint(payload: dict[str, Any], model: str | None = None) -> Weights:
    """The weights in a training checkpoint (``unblur train``'s ``checkpoint.pt``, already loaded): its EMA
    weights when it kept them, else its model, with the architecture its config records (``model`` if it
    records none). So a run's latest weights can be scored, exported or fine-tuned, not only its best."""
    saved = json.loads(payload.get("config") or "{}")
    state = payload["ema"] if isinstance(payload.get("ema"), dict) else payload["model"]
    return Weights(saved.get("model", model or DEFAULT_MODEL), dict(saved.get("model_kwargs", {})),
                   clean_state_dict({k: v for k, v in state.items() if k != "n_averaged"}),  # EMA's step counter
                   {"checkpoint_step": payload.get("step")})


def _is_checkpoint(payload: dict[str, Any]) -> bool:
    return isinstance(payload.get("model"), dict) and isinstance(payload.get("config"), str) and "optimizer" in payload


def save_weights(path: str | Path, weights: Weights) -> Path:
    """Write a weights file atomically (temporary file, then rename)."""
    from unblur.io import atomic_write

    payload = {
        "format": WEIGHTS_FORMAT,
        "model": weights.model,
        "model_kwargs": weights.model_kwargs,
        "state_dict": weights.state_dict,
        "meta": weights.meta,
    }
    with atomic_write(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def safe_load(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one-line errors naming ``path``.

    ``weights_only`` admits tensors, numbers, strings and containers only: a pickle that would import
    and call anything else (the way malicious "weights" run code) is refused before any of it runs.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _UNSAFE_GLOBAL.search(str(exc))
        detail = f"it asks for {unsafe.group(1)}" if unsafe else (str(exc).strip().splitlines() or [""])[0][:120]
        raise ValueError(
            f"{path}: refused to load: unpickling this {what} would run code ({detail}); nothing from it was executed"
        ) from None
    except Exception as exc:  # truncated zip, not a torch file, ...
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise ValueError(f"{path}: cannot read this {what} ({type(exc).__name__}: {first})") from None


def load_weights(path: str | Path, model: str | None = None) -> Weights:
    """Read a weights file safely (``weights_only=True``: a pickle that would run code is refused).

    Also reads a bare state_dict and a run's ``checkpoint.pt`` (:func:`weights_from_checkpoint`).
    ``model`` names the architecture for a bare state_dict and must agree with the file's own name
    when the file records one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    payload = safe_load(path, "weights file")
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(payload).__name__}")
    if payload.get("format") == WEIGHTS_FORMAT:
        recorded = str(payload["model"])
        if model is not None and model != recorded:
            raise ValueError(f"{path}: holds a {recorded!r} model, not {model!r}")
        weights = Weights(recorded, dict(payload.get("model_kwargs", {})),
                          clean_state_dict(payload["state_dict"]), dict(payload.get("meta", {})))
    elif _is_checkpoint(payload):
        weights = weights_from_checkpoint(payload, model)
        if model is not None and model != weights.model:
            raise ValueError(f"{path}: holds a {weights.model!r} model, not {model!r}")
    elif payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        weights = Weights(model or DEFAULT_MODEL, {}, clean_state_dict(payload), {})
    else:
        raise ValueError(f"{path}: neither an unblur weights file, a training checkpoint nor a plain state_dict")
    if weights.model not in MODELS:
        raise ValueError(f"{path}: unknown model {weights.model!r}; this unblur knows {', '.join(sorted(MODELS))}")
    return weights
