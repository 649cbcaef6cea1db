"""Where and in which precision the networks run.

One place decides the device (``auto`` prefers CUDA, then Apple MPS, then the CPU) and the fast
inference path for it, so ``sharpen``, ``eval``, ``train`` and ``bench`` agree.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a ``torch.device``, failing clearly if it is absent."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but this PyTorch sees no CUDA GPU (try --device cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps was requested but Apple MPS is not available (try --device cpu)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    return device
