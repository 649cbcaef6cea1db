"""The seed's training objective: ``alpha·MSE + (1−alpha)·(1 − MS-SSIM) + edge_weight·L1(Sobel)``.

MS-SSIM is :func:`pytorch_msssim.ms_ssim` with ``data_range=1`` and its defaults (5 scales, 11×11
Gaussian window, σ = 1.5). Those defaults need the smaller image side to exceed 160 px. Below that,
rather than crash mid-training, :func:`ms_ssim_any_size` keeps the five scales and shrinks the window to
the largest odd size ``w ≥ 3`` with ``side > 16·(w − 1)``; at 32 px and below, where no such window
exists, it falls back to single-scale SSIM with a window of ``min(11, side)`` rounded down to odd
(images under 3 px are edge-padded to 3 first).
The loss is always computed in float32, also under autocast.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim as _ms_ssim
from pytorch_msssim import ssim as _ssim
from torch import nn

__all__ = ["PIXEL_LOSSES", "CombinedLoss", "LossTerms", "combined_loss", "knee_eps", "ms_ssim_any_size",
           "psnr_loss", "sobel_magnitude"]

PIXEL_LOSSES = ("mse", "psnr")
"""What the ``alpha`` term measures: the seed's MSE, or :func:`psnr_loss`."""

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_magnitude(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-channel Sobel gradient magnitude ``sqrt(gx² + gy² + eps)``.

    ``gx`` uses the kernel ``[[-1,0,1],[-2,0,2],[-1,0,1]]`` and ``gy`` its transpose, applied as a
    cross-correlation (``conv2d``) with zero padding 1, so the output has the input's shape
    ``(N, C, H, W)``. ``eps`` keeps the square root differentiable where the image is flat.
    """
    if x.dim() != 4:
        raise ValueError(f"sobel_magnitude expects (N, C, H, W), got shape {tuple(x.shape)}")
    c = x.shape[1]
    kx = _SOBEL_X.to(device=x.device, dtype=x.dtype)
    weight = torch.stack([kx, kx.t()]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    g = F.conv2d(x, weight, padding=1, groups=c).unflatten(1, (c, 2))
    return torch.sqrt(g.square().sum(dim=2) + eps)


def _largest_odd_at_most(n: int) -> int:
    return n if n % 2 == 1 else n - 1


def ms_ssim_any_size(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batch-mean MS-SSIM with ``data_range=1`` that works for any image size (rule in module doc)."""
    side = min(pred.shape[-2:])
    if side > 160:
        return _ms_ssim(pred, target, data_range=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Skipping Gaussian Smoothing" at coarse scales
        win = _largest_odd_at_most(min(11, (side - 1) // 16 + 1))
        if win >= 3:
            return _ms_ssim(pred, target, data_range=1.0, win_size=win)
        if side < 3:  # pytorch_msssim squeezes 1-pixel dimensions away; give it 3 pixels to work on
            pad = (0, max(0, 3 - pred.shape[-1]), 0, max(0, 3 - pred.shape[-2]))
            pred, target = F.pad(pred, pad, mode="replicate"), F.pad(target, pad, mode="replicate")
            side = 3
        return _ssim(pred, target, data_range=1.0, win_size=_largest_odd_at_most(min(11, side)))


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Batch mean of ``10·log10(MSE_i + eps)`` over the images ``i``: minus their PSNR in dB (``data_range=1``).

    Why: benchmarks average PSNR per image, so a dB gained on a nearly sharp image counts as much as a
    dB on a badly blurred one. Plain MSE weighs images by their error instead: badly blurred crops
    (MSE ~1e-2) drown out nearly sharp ones (~1e-4), and a student learns to sharpen everything,
    losing dB where there was little blur to remove. The logarithm gives every image equal weight in
    dB (NAFNet trains on GoPro with this loss).
    """
    return _minus_psnr((pred - target).square().flatten(1).mean(dim=1), eps)


def _minus_psnr(per_image_mse: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return (10.0 / math.log(10.0)) * torch.log(per_image_mse + eps).mean()


@dataclass(frozen=True)
class LossTerms:
    """The combined loss and its three components (``ms_ssim`` is the similarity, not ``1 − ms_ssim``)."""

    total: torch.Tensor
    mse: torch.Tensor
    ms_ssim: torch.Tensor
    edge: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """Detached Python floats for logging."""
        return {k: float(getattr(self, k).detach()) for k in ("total", "mse", "ms_ssim", "edge")}


def knee_eps(psnr_knee: float) -> float:
    """The ``eps`` of :func:`psnr_loss` for a knee at ``psnr_knee`` dB: ``10^(−psnr_knee/10)``.

    Why a knee: −PSNR divides each image's gradient by its own MSE, so a nearly sharp crop (MSE ~1e-4)
    weighs about 100× more than a badly blurred one (~1e-2), and a fresh student that starts sharpening
    loses more on the former than it gains on the latter (docs/results.md: under −PSNR alone UnblurNet
    stays near the identity). ``log(MSE + eps)`` is −PSNR for images much worse than the knee and
    ``MSE / eps`` plus a constant (plain MSE) for images much better, a loss between the two. 80 dB
    (``eps = 1e-8``) is plain −PSNR for any 8-bit image.
    """
    return 10.0 ** (-psnr_knee / 10.0)


def combined_loss(
    pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.8, edge_weight: float = 1.0, pixel: str = "mse",
    psnr_knee: float = 80.0,
) -> LossTerms:
    """``alpha·MSE + (1−alpha)·(1 − MS-SSIM) + edge_weight·L1(Sobel(pred), Sobel(target))``.

    ``pred`` and ``target`` are ``(N, 3, H, W)`` in ``[0, 1]``; every term is a batch mean. With
    ``pixel="psnr"`` the first term is ``alpha·``:func:`psnr_loss` instead of ``alpha·MSE`` (``mse`` is
    still reported as the MSE), with its ``eps`` from ``psnr_knee`` (:func:`knee_eps`).
    """
    if pixel not in PIXEL_LOSSES:
        raise ValueError(f"pixel loss must be one of {', '.join(PIXEL_LOSSES)}, got {pixel!r}")
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(
            f"pred and target must both be (N, C, H, W) of one shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    dtype = torch.promote_types(pred.dtype, torch.float32)  # float32 at least, also under autocast
    pred, target = pred.to(dtype), target.to(dtype)
    per_image = (pred - target).square().flatten(1).mean(dim=1)
    mse = per_image.mean()  # images of one batch have one size: the mean of means is the MSE
    # A term with weight 0 is still reported, but kept out of the graph: MS-SSIM's backward pass is a
    # sixth of a small student's CPU training step.
    with torch.set_grad_enabled(torch.is_grad_enabled() and alpha < 1.0):
        sim = ms_ssim_any_size(pred, target)
    with torch.set_grad_enabled(torch.is_grad_enabled() and edge_weight > 0.0):
        edge = F.l1_loss(sobel_magnitude(pred), sobel_magnitude(target))
    first = _minus_psnr(per_image, knee_eps(psnr_knee)) if pixel == "psnr" else mse
    total = alpha * first + (1.0 - alpha) * (1.0 - sim) + edge_weight * edge
    return LossTerms(total=total, mse=mse, ms_ssim=sim, edge=edge)


class CombinedLoss(nn.Module):
    """Module form of :func:`combined_loss`.

    Calling it returns the scalar loss; the components of the latest call stay in :attr:`last` for
    logging, so the training loop does not compute them twice.

    >>> loss_fn = CombinedLoss(alpha=0.8, edge_weight=1.0)
    >>> x = torch.rand(2, 3, 64, 64)
    >>> float(loss_fn(x, x)) < 1e-2
    True
    """

    def __init__(self, alpha: float = 0.8, edge_weight: float = 1.0, pixel: str = "mse",
                 psnr_knee: float = 80.0) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if edge_weight < 0:
            raise ValueError(f"edge_weight must be >= 0, got {edge_weight}")
        if pixel not in PIXEL_LOSSES:
            raise ValueError(f"pixel loss must be one of {', '.join(PIXEL_LOSSES)}, got {pixel!r}")
        self.alpha = alpha
        self.edge_weight = edge_weight
        self.pixel = pixel
        self.psnr_knee = psnr_knee
        self.last: LossTerms | None = None

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.last = combined_loss(pred, target, self.alpha, self.edge_weight, self.pixel, self.psnr_knee)
        return self.last.total

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, edge_weight={self.edge_weight}, pixel={self.pixel!r}, "
                f"psnr_knee={self.psnr_knee}")
