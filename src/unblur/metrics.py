"""PSNR and SSIM by the convention of the GoPro deblurring papers.

RGB, full frame, no border crop, and the prediction quantized to 8 bits first (what saving it as a PNG
does), so the score of a tensor equals the score of the file written from it. The target is rounded to
8 bits too, which changes nothing for a target read from an 8-bit file (it only removes float noise) and
compares 16-bit targets as the 8-bit files the benchmarks use. SSIM uses an 11×11
Gaussian window with σ = 1.5 on each channel (valid region only, which equals scikit-image's
``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)``) and averages the channels. Both return one value per image with ``reduction="none"``
or their mean (the default).
"""

from __future__ import annotations

from typing import Literal

import torch
from pytorch_msssim import ssim as _ssim

__all__ = ["psnr", "quantize_8bit", "ssim"]

Reduction = Literal["mean", "none"]


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round ``[0, 1]`` values to the nearest of the 256 levels an 8-bit file can hold."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def _prepare(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.dim() == 3:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) or (C, H, W), got shape {tuple(pred.shape)}")
    return quantize_8bit(pred.detach().double()), quantize_8bit(target.detach().double())


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    return values.mean() if reduction == "mean" else values


def psnr(pred: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (peak 1.0), per image, then averaged.

    Identical images give ``inf``.
    """
    p, t = _prepare(pred, target)
    mse = (p - t).square().flatten(1).mean(1)
    return _reduce(10.0 * torch.log10(1.0 / mse), reduction).float()


def ssim(pred: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """Structural similarity (11×11 Gaussian window, σ = 1.5), channel-averaged, per image."""
    p, t = _prepare(pred, target)
    values = _ssim(p, t, data_range=1.0, win_size=11, win_sigma=1.5, size_average=False)
    return _reduce(values, reduction).float()
