"""Student networks.

Every model maps a batch of RGB images ``(N, 3, H, W)`` in ``[0, 1]`` to a sharpened batch of the same
shape and range, for any ``H, W``. Models are plain ``nn.Module`` classes whose widths are constructor
arguments; :data:`MODELS` maps the names used on the command line and in saved weights to constructors,
so a weights file records only a name and keyword arguments, never code.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["MODELS", "StudentCNNv3", "build_model", "count_macs_per_pixel", "count_parameters"]


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


MODELS: dict[str, Callable[..., nn.Module]] = {
    "studentcnn_v3": StudentCNNv3,
}


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
