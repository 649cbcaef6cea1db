"""Where and in which precision the networks run.

One place decides the device (``auto`` prefers CUDA, then Apple MPS, then the CPU) and the fast
inference path for it, so ``sharpen``, ``eval``, ``train`` and ``bench`` agree on what "fast" means.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass

import torch

__all__ = ["BACKENDS", "DEVICE_CHOICES", "ExecutionPlan", "inference_plan", "onnxruntime_available", "resolve_device"]

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "torch", "onnx")


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


def onnxruntime_available() -> bool:
    """True when the optional ``unblur[onnx]`` packages are installed: onnxruntime to run a model, and
    onnx + onnxscript for PyTorch's exporter to write one. Looks for them without importing them."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx", "onnxscript"))


@dataclass(frozen=True)
class ExecutionPlan:
    """How to run a model: device, autocast dtype (``None``: float32), memory layout and engine.

    ``backend="onnxruntime"`` runs the model as an exported ONNX graph in onnxruntime (float32; the
    dtype and layout fields then do not apply): see :class:`unblur.export.OnnxRunner`.
    """

    device: torch.device
    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False
    backend: str = "torch"

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """The autocast context for this plan (a no-op context for float32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        if self.backend == "onnxruntime":
            return f"{self.device.type} fp32, onnxruntime"
        dtype = "fp32" if self.autocast_dtype is None else str(self.autocast_dtype).removeprefix("torch.")
        layout = ", channels_last" if self.channels_last else ""
        return f"{self.device.type} {dtype}{layout}"


def inference_plan(device: str | torch.device = "auto", fp32: bool = False, backend: str = "auto") -> ExecutionPlan:
    """The fastest inference path that keeps quality on ``device``.

    "Keeps quality" means the output's PSNR stays within 0.05 dB of float32 eager PyTorch
    (tests/test_fastpaths.py checks every path this can return). The choices follow measurements
    (docs/benchmarks.md), not assumptions:

    * CUDA: bf16 autocast (fp16 on GPUs without bf16) with channels_last: tensor cores, half the bytes.
    * CPU with native bf16 (AVX-512 BF16 or AMX): bf16 autocast with channels_last.
    * Other CPUs: onnxruntime when installed (fused conv+activation kernels, the same float32 math:
      1.3-1.8× eager on an AVX2 EPYC, more at small sizes), else PyTorch channels_last float32. bf16 is
      never chosen there: oneDNN emulates it and it ran 2.6× *slower* than float32 on that machine.
    * Apple MPS: float32.

    ``fp32=True`` is the reference path: float32 PyTorch, NCHW, on every device (``--fp32``).
    ``backend`` forces an engine: ``"torch"`` (never onnxruntime) or ``"onnx"`` (onnxruntime on any
    device, float32; fails if it is not installed); ``"auto"`` lets the measurements above decide.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    if backend == "onnx":
        if not onnxruntime_available():
            raise ValueError("--backend onnx needs onnxruntime, onnx and onnxscript: pip install 'unblur[onnx]'")
        return ExecutionPlan(dev, backend="onnxruntime")
    if fp32:
        return ExecutionPlan(dev)
    if dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return ExecutionPlan(dev, dtype, channels_last=True)
    if dev.type == "cpu":
        if cpu_has_fast_bf16():
            return ExecutionPlan(dev, torch.bfloat16, channels_last=True)
        if backend == "auto" and onnxruntime_available():
            return ExecutionPlan(dev, backend="onnxruntime")
        return ExecutionPlan(dev, channels_last=True)
    return ExecutionPlan(dev)
