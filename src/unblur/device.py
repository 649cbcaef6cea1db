"""Where and in which precision the networks run.

One place decides the device (``auto`` prefers CUDA, then Apple MPS, then the CPU) and the fast
inference path for it, so ``sharpen``, ``eval``, ``train`` and ``bench`` agree on what "fast" means.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

__all__ = ["DEVICE_CHOICES", "ExecutionPlan", "inference_plan", "resolve_device"]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a ``torch.device``, failing clearly if it is absent."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but this PyTorch sees no CUDA GPU (try --device cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps was requested but Apple MPS is not available (try --device cpu)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    return device


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 or AMX); elsewhere bf16 is
    emulated and slower than float32, so it is never chosen automatically."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class ExecutionPlan:
    """How to run a model: device, autocast dtype (``None``: float32) and memory layout."""

    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The autocast context for this plan (a no-op context for float32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        dtype = "fp32" if self.autocast_dtype is None else str(self.autocast_dtype).removeprefix("torch.")
        layout = ", channels_last" if self.channels_last else ""
        return f"{self.device.type} {dtype}{layout}"


def inference_plan(device: str | torch.device = "auto", fp32: bool = False) -> ExecutionPlan:
    """The fastest inference path that keeps quality on ``device`` (``fp32=True`` forces float32).

    CUDA: bf16 autocast (fp16 on GPUs without bf16) with channels_last. CPU: channels_last, plus bf16
    autocast only where the CPU computes bf16 natively. MPS: float32.
    """
    dev = resolve_device(device)
    if dev.type == "cuda":
        dtype = None if fp32 else (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        return ExecutionPlan(dev, dtype, channels_last=True)
    if dev.type == "cpu":
        dtype = torch.bfloat16 if (not fp32 and cpu_has_fast_bf16()) else None
        return ExecutionPlan(dev, dtype, channels_last=not fp32)
    return ExecutionPlan(dev)

