"""``unblur bench``: how fast each execution path runs a student, measured against a ceiling from the same run.

For inference, every path available on the device is timed on the same input: eager float32, channels_last,
reduced-precision autocast (bf16, and fp16 on CUDA), ``torch.compile``, CUDA graphs (CUDA only) and
onnxruntime. For training, one optimizer step on random tensors already on the device with a plain MSE
loss (the model's own rate) is timed against the real step: synthesized GoPro-style pairs read from disk
through :class:`unblur.data.PairedImages` and a DataLoader, then :class:`unblur.losses.CombinedLoss`; the
ratio of the two says how much of the model's speed training keeps.

How it is measured, so that the figures can be trusted on a shared machine:

* every path is warmed up first (compilation, cuDNN autotuning, allocator growth), then the timed calls
  run in interleaved rounds (path A, B, C, A, B, C, ...) and each path reports its median, so load from
  other processes falls on all paths alike instead of on whichever ran during it;
* on CUDA each call ends with ``torch.cuda.synchronize()``;
* achieved TFLOP/s = ``2 · MACs/pixel · pixels / time`` with MACs from
  :func:`unblur.models.count_macs_per_pixel` (a training step counts as 3 forward passes), compared with a
  large matrix multiply in the same dtype timed in the same run (the "ceiling");
* on the CPU, ``cpu_ms_per_frame`` is the process CPU time (all threads): when it is well below
  ``threads × wall time`` other processes were taking the cores;
* peak memory: CUDA ``max_memory_allocated`` (reset per path); CPU peak RSS of the whole process (Linux
  ``VmHWM``, reset per path through ``/proc/self/clear_refs``; elsewhere the process's lifetime peak, which
  only grows), measured during the path's warm-up;
* each inference path's output is compared with eager float32 (``max_abs_diff``).

A path that cannot run here (no compiler for ``torch.compile``, onnxruntime not installed, ...) becomes a
row whose ``note`` says why; the benchmark goes on.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unblur.device import ExecutionPlan, cpu_has_fast_bf16, inference_plan, onnxruntime_available, resolve_device
from unblur.models import build_model, count_macs_per_pixel

__all__ = ["BenchRow", "bench_model", "format_rows", "machine_info", "rows_to_json", "run_bench"]

QUICK_SIZE = (128, 128)
TRAIN_MODEL_ONLY = "train step, model only (random tensors, MSE)"
TRAIN_REAL = "train step, DataLoader + CombinedLoss"
DEFAULT_SIZE = (720, 1280)


@dataclass
class BenchRow:
    """One measured path. Times are per frame (a call of ``batch`` frames divided by ``batch``)."""

    path: str
    kind: str  # "inference", "train" or "ceiling"
    device: str
    dtype: str
    batch: int
    size: str  # "HxW" of a frame (training: of a crop)
    ms_per_frame: float | None = None
    fps: float | None = None
    cpu_ms_per_frame: float | None = None
    tflops: float | None = None
    pct_of_ceiling: float | None = None
    peak_mem_mb: float | None = None
    mem_kind: str = ""
    max_abs_diff: float | None = None
    ratio: float | None = None  # training with data + loss: its rate over the model-only rate
    default: bool = False  # the path inference_plan() picks on this device
    note: str = ""
    samples_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ms_per_frame is not None


def rows_to_json(rows: Sequence[BenchRow]) -> list[dict[str, Any]]:
    """Rows as plain dicts (``--json``); every value is JSON-serializable (no NaN or infinity)."""
    return [asdict(r) for r in rows]


# Measuring ------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


_HWM = re.compile(r"VmHWM:\s+(\d+)\s+kB")


def _reset_peak(device: torch.device) -> str:
    """Start a new peak-memory window; returns what the matching :func:`_read_peak` will mean."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return "CUDA max_memory_allocated"
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS (VmHWM) of this process
        Path("/proc/self/status").read_text()
        return "peak RSS of the process (VmHWM, reset per path)"
    except OSError:
        return "peak RSS of the process (lifetime)"


def _read_peak(device: torch.device) -> float | None:
    """Peak memory in MiB since :func:`_reset_peak`."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    with contextlib.suppress(OSError):
        match = _HWM.search(Path("/proc/self/status").read_text())
        if match:
            return int(match.group(1)) / 1024
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return None


def matmul_ceiling(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 5,
                   tf32: bool = False) -> float:
    """TFLOP/s of an ``n × n`` by ``n × n`` matrix multiply in ``dtype`` (median of ``repeats``): what
    the device's dense math units deliver in practice, the ceiling the convolutions are compared with."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    flags = _tf32(tf32) if device.type == "cuda" else contextlib.nullcontext()
    times = []
    with flags, torch.inference_mode():
        torch.mm(a, b)
        _sync(device)
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e12


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """cuDNN and cuBLAS TF32 on or off (PyTorch allows TF32 convolutions by default: "fp32" on a GPU
    would otherwise silently be TF32)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


# Inference paths --------------------------------------------------------------------------------------------


@dataclass
class _Path:
    """A way to run the model: ``setup()`` returns the call to time (a batch in, a batch out)."""

    name: str
    dtype: str  # ceiling dtype: fp32, tf32, bf16, fp16
    setup: Callable[[], Callable[[], torch.Tensor]]
    plan: ExecutionPlan | None = None  # the plan this path implements, to mark inference_plan()'s choice
    note: str = ""
    skip: str = ""  # non-empty: not run, and why


def _autocast(device: torch.device, dtype: torch.dtype | None, cache: bool = True,
              ) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache)


def _torch_call(model: nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype | None,
                channels_last: bool, tf32: bool | None = None, compile_mode: str | None = None,
                ) -> Callable[[], Callable[[], torch.Tensor]]:
    """Setup of a PyTorch path: its own copy of the model in the right layout, optionally compiled."""

    def setup() -> Callable[[], torch.Tensor]:
        net = copy.deepcopy(model).eval().to(device)
        inp = x.to(device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
            inp = inp.contiguous(memory_format=torch.channels_last)
        runner: Callable[[torch.Tensor], torch.Tensor] = net
        if compile_mode is not None:
            runner = torch.compile(net, mode=compile_mode)
        flags = (lambda: _tf32(tf32)) if tf32 is not None else contextlib.nullcontext

        def call() -> torch.Tensor:
            with flags(), torch.inference_mode(), _autocast(device, dtype):
                return runner(inp)

        return call

    return setup


def _cuda_graph_call(model: nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype,
                     ) -> Callable[[], Callable[[], torch.Tensor]]:
    """Setup of a CUDA-graph path: the bf16/fp16 channels_last forward captured once and replayed, which
    removes the per-kernel launch cost of the CPU (it matters at small sizes and large batches)."""

    def setup() -> Callable[[], torch.Tensor]:
        net = copy.deepcopy(model).eval().to(device).to(memory_format=torch.channels_last)
        static_in = x.to(device).contiguous(memory_format=torch.channels_last)
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        # autocast's weight-cast cache must be off around graph capture (PyTorch's CUDA graphs notes)
        with torch.cuda.stream(stream), torch.inference_mode(), _autocast(device, dtype, cache=False):
            for _ in range(3):  # warm up on a side stream, as capture requires
                net(static_in)
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode(), _autocast(device, dtype, cache=False):
            static_out = net(static_in)

        def call() -> torch.Tensor:
            graph.replay()
            return static_out

        return call

    return setup


def _onnx_call(model: nn.Module, x: torch.Tensor, device: torch.device) -> Callable[[], Callable[[], torch.Tensor]]:
    def setup() -> Callable[[], torch.Tensor]:
        from unblur.export import OnnxRunner, cached_onnx_bytes, takes_coarse, takes_strength

        runner = OnnxRunner(cached_onnx_bytes(model), device)
        inp = x.to("cpu")
        strength = model.strength_for(*x.shape[-2:]) if takes_strength(model) else None  # as eager runs it
        coarse = model.coarse_for(*x.shape[-2:]) if takes_coarse(model) else None
        return lambda: runner(inp, strength, coarse)

    return setup


def inference_paths(model: nn.Module, x: torch.Tensor, device: torch.device, quick: bool) -> list[_Path]:
    """Every inference path worth timing on ``device``, the reference (eager float32) first."""
    bf16 = torch.bfloat16
    paths: list[_Path] = []
    if device.type == "cuda":
        half = bf16 if torch.cuda.is_bf16_supported() else torch.float16
        hname = "bf16" if half is bf16 else "fp16"
        paths += [
            _Path("eager fp32", "fp32", _torch_call(model, x, device, None, False, tf32=False),
                  ExecutionPlan(device), note="TF32 off"),
            _Path("tf32 channels_last", "tf32", _torch_call(model, x, device, None, True, tf32=True)),
            _Path(f"{hname} autocast channels_last", hname, _torch_call(model, x, device, half, True),
                  ExecutionPlan(device, half, True)),
        ]
        if half is bf16:
            paths.append(_Path("fp16 autocast channels_last", "fp16",
                               _torch_call(model, x, device, torch.float16, True)))
        paths += [
            _Path(f"torch.compile {hname} channels_last", hname,
                  _torch_call(model, x, device, half, True, compile_mode="default")),
            _Path(f"CUDA graph {hname} channels_last", hname, _cuda_graph_call(model, x, device, half)),
            _Path(f"torch.compile + CUDA graphs {hname} channels_last", hname,
                  _torch_call(model, x, device, half, True, compile_mode="reduce-overhead")),
        ]
    else:
        paths += [
            _Path("eager fp32", "fp32", _torch_call(model, x, device, None, False), ExecutionPlan(device)),
            _Path("channels_last fp32", "fp32", _torch_call(model, x, device, None, True),
                  ExecutionPlan(device, None, True)),
        ]
        if device.type == "cpu":
            native = cpu_has_fast_bf16()
            paths.append(_Path("bf16 autocast channels_last", "bf16", _torch_call(model, x, device, bf16, True),
                               ExecutionPlan(device, bf16, True),
                               note="" if native else "emulated: this CPU has no native bf16 (oneDNN)"))
            paths.append(_Path("torch.compile fp32 channels_last", "fp32",
                               _torch_call(model, x, device, None, True, compile_mode="default"),
                               skip="skipped with --quick (compiling takes a minute on a small CPU)" if quick else ""))
    onnx_plan = ExecutionPlan(device, backend="onnxruntime")
    if device.type in ("cpu", "cuda"):
        skip = "" if onnxruntime_available() else "not installed: pip install 'unblur[onnx]'"
        paths.append(_Path("onnxruntime fp32", "fp32", _onnx_call(model, x, device), onnx_plan,
                           note="includes the copy to and from the CPU" if device.type == "cuda" else "", skip=skip))
    return paths


# Training paths ----------------------------------------------------------------------------------------------


def _synth_loader(photos: Sequence[Path], folder: Path, frame: tuple[int, int], crop: int, batch: int,
                  pairs_per_image: int, workers: int, pin: bool) -> torch.utils.data.DataLoader:
    from unblur.data import PairedImages, find_pairs
    from unblur.synth import synthesize

    synthesize(photos, out=folder, split="train", pairs_per_image=pairs_per_image, size=frame, seed=0,
               progress=False)
    dataset = PairedImages(find_pairs(folder, "train", "blur_gamma"), crop=crop, augment=True)
    if len(dataset) < batch:
        raise ValueError(f"only {len(dataset)} synthesized pairs for a batch of {batch}")
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True,
                                       num_workers=workers, persistent_workers=workers > 0, pin_memory=pin)


def _forever(loader: torch.utils.data.DataLoader) -> Iterator[Any]:
    while True:
        yield from loader


def train_paths(name: str, device: torch.device, batch: int, crop: int, loader_factory: Callable[[], Any],
                model_kwargs: dict[str, Any] | None = None) -> list[_Path]:
    """The model-only training step and the real one (data from disk + CombinedLoss), same model."""
    from unblur.data import to_device_float
    from unblur.losses import CombinedLoss
    from unblur.train import training_precision

    dtype, channels_last = training_precision(device)  # as unblur train does
    dname = "fp32" if dtype is None else str(dtype).removeprefix("torch.").replace("bfloat16", "bf16").replace(
        "float16", "fp16")
    state: dict[str, Any] = {}

    def model_and_optimizer() -> tuple[nn.Module, torch.optim.Optimizer, torch.amp.GradScaler]:
        if "model" not in state:
            torch.manual_seed(0)
            net = build_model(name, **(model_kwargs or {})).to(device).train()
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
            state["model"] = net
            state["opt"] = torch.optim.Adam(net.parameters(), lr=1e-4)
            state["scaler"] = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        return state["model"], state["opt"], state["scaler"]

    def step(net: nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, inp: torch.Tensor,
             tgt: torch.Tensor, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        with _autocast(device, dtype):
            pred = net(inp)
        loss = loss_fn(pred.float(), tgt)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    def random_tensors(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                       ) -> Callable[[], Callable[[], torch.Tensor]]:
        def setup() -> Callable[[], torch.Tensor]:
            net, opt, scaler = model_and_optimizer()
            gen = torch.Generator().manual_seed(0)
            inp = torch.rand(batch, 3, crop, crop, generator=gen).to(device)
            tgt = torch.rand(batch, 3, crop, crop, generator=gen).to(device)
            if channels_last:
                inp = inp.contiguous(memory_format=torch.channels_last)
                tgt = tgt.contiguous(memory_format=torch.channels_last)
            return lambda: step(net, opt, scaler, inp, tgt, loss_fn)

        return setup

    def with_data() -> Callable[[], torch.Tensor]:
        net, opt, scaler = model_and_optimizer()
        batches = _forever(loader_factory())
        loss_fn = CombinedLoss()

        def call() -> torch.Tensor:
            inp_u8, tgt_u8, _ = next(batches)
            inp = to_device_float(inp_u8, device, channels_last)
            tgt = to_device_float(tgt_u8, device, channels_last)
            return step(net, opt, scaler, inp, tgt, loss_fn)

        return call

    return [
        _Path(TRAIN_MODEL_ONLY, dname, random_tensors(F.mse_loss)),
        _Path("train step, random tensors + CombinedLoss", dname, random_tensors(CombinedLoss())),
        _Path(TRAIN_REAL, dname, with_data),
    ]


# The run -------------------------------------------------------------------------------------------------------


@dataclass
class _Live:
    path: _Path
    call: Callable[[], Any]
    row: BenchRow


def _measure(paths: Sequence[_Path], rows_for: Callable[[_Path], BenchRow], device: torch.device, warmup: int,
             repeats: int, reference: Callable[[_Path, Any], float | None] | None, log: Callable[[str], None],
             ) -> list[BenchRow]:
    """Warm up each path (measuring its peak memory), then time all of them in interleaved rounds."""
    rows: list[BenchRow] = []
    live: list[_Live] = []
    for p in paths:
        row = rows_for(p)
        rows.append(row)
        if p.skip:
            row.note = p.skip
            continue
        log(f"bench: warming up {p.name}")
        try:
            row.mem_kind = _reset_peak(device)
            call = p.setup()
            out = None
            for _ in range(max(1, warmup)):
                out = call()
            _sync(device)
            row.peak_mem_mb = _read_peak(device)
            if reference is not None:
                row.max_abs_diff = reference(p, out)
            live.append(_Live(p, call, row))
        except Exception as exc:  # a path that cannot run here is reported, not fatal
            row.note = "; ".join(filter(None, [row.note, f"failed: {_first_line(exc)}"]))
            row.mem_kind = ""
            row.peak_mem_mb = None
    wall: dict[str, list[float]] = {lv.path.name: [] for lv in live}
    cpu: dict[str, list[float]] = {lv.path.name: [] for lv in live}
    for r in range(repeats):
        log(f"bench: round {r + 1}/{repeats}")
        for lv in list(live):
            try:
                c0, t0 = time.process_time(), time.perf_counter()
                lv.call()
                _sync(device)
                wall[lv.path.name].append(time.perf_counter() - t0)
                cpu[lv.path.name].append(time.process_time() - c0)
            except Exception as exc:
                lv.row.note = "; ".join(filter(None, [lv.row.note, f"failed: {_first_line(exc)}"]))
                live.remove(lv)
    for lv in live:
        if wall[lv.path.name]:
            lv.row.samples_ms = [round(t * 1000, 3) for t in wall[lv.path.name]]
            lv.row.ms_per_frame = statistics.median(wall[lv.path.name]) * 1000 / lv.row.batch
            lv.row.fps = 1000 / lv.row.ms_per_frame
            if device.type == "cpu":
                lv.row.cpu_ms_per_frame = statistics.median(cpu[lv.path.name]) * 1000 / lv.row.batch
    return rows


def _ceilings(device: torch.device, dtypes: set[str], quick: bool, log: Callable[[str], None]) -> dict[str, float]:
    n = 512 if quick else (8192 if device.type == "cuda" else 2048)
    table = {"fp32": (torch.float32, False), "tf32": (torch.float32, True), "bf16": (torch.bfloat16, False),
             "fp16": (torch.float16, False)}
    out = {}
    for name in sorted(dtypes):
        if device.type != "cuda" and name in ("tf32", "fp16"):
            continue
        log(f"bench: matmul ceiling {name}")
        try:
            dtype, tf32 = table[name]
            out[name] = matmul_ceiling(device, dtype, n if name != "bf16" or device.type == "cuda" else n // 2,
                                       repeats=3 if quick else 5, tf32=tf32)
        except Exception as exc:  # e.g. a dtype this device cannot multiply
            log(f"bench: no {name} ceiling: {_first_line(exc)}")
    return out


def bench_model(name: str, seed: int = 0, **model_kwargs: Any) -> nn.Module:
    """``name`` (built with ``model_kwargs``) with random weights, including the heads that start at zero:
    residual students are the identity when built, which would make every path agree trivially (the cost
    is the same either way)."""
    torch.manual_seed(seed)
    model = build_model(name, **model_kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.02)
    return model


def run_bench(model: str = "studentcnn_v3", device: str = "auto", size: tuple[int, int] | None = None,
              batch: int = 1, quick: bool = False, *, repeats: int | None = None, warmup: int | None = None,
              inference: bool = True, train: bool = True, train_batch: int | None = None,
              train_crop: int | None = None, train_workers: int | None = None,
              photos: Sequence[str | Path] | None = None, log: Callable[[str], None] | None = None,
              model_kwargs: dict[str, Any] | None = None) -> list[BenchRow]:
    """Time every available inference path and the training step of ``model`` on ``device``.

    ``size`` is a frame ``(H, W)``: 720×1280 by default, 128×128 with ``quick`` (which also means one
    warm-up, 3 timed rounds, a 512² matmul ceiling, 32 px training crops from 64×96 frames and no
    DataLoader workers, so it runs in seconds on a CPU). ``batch`` frames go through each inference call.
    Training uses ``train_batch`` (default: ``unblur train``'s 2) crops of ``train_crop`` pixels (default:
    its 256) from pairs synthesized from ``photos`` (default: the bundled samples) into a temporary folder,
    read by ``train_workers`` DataLoader workers (default: ``unblur train``'s ``min(4, cores)``).
    ``inference``/``train`` switch either half off. Weights are random (:func:`bench_model`).

    Returns the rows: one ``ceiling`` row per dtype, then the inference paths, then the two training steps.
    """
    from unblur.train import TrainConfig

    say = log or (lambda line: None)
    dev = resolve_device(device)
    size = size or (QUICK_SIZE if quick else DEFAULT_SIZE)
    repeats = repeats or (3 if quick else 5)
    warmup = warmup or (1 if quick else 2)
    h, w = size
    net = bench_model(model, **(model_kwargs or {}))
    macs = count_macs_per_pixel(net, (min(h, 256), min(w, 256)))
    x = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(0))
    infer = inference_paths(net, x, dev, quick) if inference else []

    defaults = TrainConfig()
    tbatch = train_batch or defaults.batch_size
    tcrop = train_crop or (32 if quick else defaults.crop)
    frame = (64, 96) if quick else (360, 640)
    workers = train_workers if train_workers is not None else (0 if quick else min(4, os.cpu_count() or 1))
    tmp = tempfile.TemporaryDirectory(prefix="unblur-bench-")

    def loader() -> Any:
        from unblur.synth import sample_photos

        sources = [Path(p) for p in photos] if photos is not None else sample_photos()[:4]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "smaller than the crop" and similar notes about the tiny set
            return _synth_loader(sources, Path(tmp.name), frame, tcrop, tbatch, 2, workers, dev.type == "cuda")

    trains = train_paths(model, dev, tbatch, tcrop, loader, model_kwargs) if train else []
    ceilings = _ceilings(dev, {p.dtype for p in [*infer, *trains] if not p.skip}, quick, say)
    rows = [BenchRow(f"matmul ceiling {k}", "ceiling", str(dev), k, 1, "", tflops=round(v, 4),
                     note="n=512" if quick else "") for k, v in ceilings.items()]

    chosen = inference_plan(dev) if dev.type in ("cpu", "cuda", "mps") else None
    reference: dict[str, torch.Tensor] = {}

    def diff_to_eager(p: _Path, out: Any) -> float | None:
        """Max abs difference to eager float32's output (that path runs first)."""
        if not isinstance(out, torch.Tensor):
            return None
        out = out.detach().float().cpu()
        if p.name == "eager fp32":
            reference["eager"] = out
        return float((out - reference["eager"]).abs().max()) if "eager" in reference else None

    def infer_row(p: _Path) -> BenchRow:
        return BenchRow(p.name, "inference", str(dev), p.dtype, batch, f"{h}x{w}", note=p.note,
                        default=chosen is not None and p.plan == chosen)

    def train_row(p: _Path) -> BenchRow:
        return BenchRow(p.name, "train", str(dev), p.dtype, tbatch, f"{tcrop}x{tcrop}", note=p.note)

    try:
        inference_rows = _measure(infer, infer_row, dev, warmup, repeats, diff_to_eager, say)
        train_rows = _measure(trains, train_row, dev, warmup, repeats, None, say) if trains else []
    finally:
        tmp.cleanup()

    for row in inference_rows:
        _add_rates(row, 2 * macs * h * w, ceilings)
    for row in train_rows:
        _add_rates(row, 3 * 2 * macs * tcrop * tcrop, ceilings)
    base = next((r for r in train_rows if r.path == TRAIN_MODEL_ONLY and r.ok), None)
    for row in train_rows:
        if base is not None and row is not base and row.ok:
            row.ratio = round(base.ms_per_frame / row.ms_per_frame, 3)
            extra = f"{workers} DataLoader workers, {frame[0]}x{frame[1]} frames" if row.path == TRAIN_REAL else ""
            row.note = "; ".join(filter(None, [f"{row.ratio:.0%} of the model-only rate", extra, row.note]))
    return [*rows, *inference_rows, *train_rows]


def _add_rates(row: BenchRow, flops_per_frame: float, ceilings: dict[str, float]) -> None:
    if row.ms_per_frame is None:
        return
    row.tflops = flops_per_frame / (row.ms_per_frame / 1000) / 1e12
    ceiling = ceilings.get(row.dtype)
    if ceiling:
        row.pct_of_ceiling = 100 * row.tflops / ceiling
    for name in ("ms_per_frame", "fps", "cpu_ms_per_frame", "peak_mem_mb"):
        value = getattr(row, name)
        if value is not None:
            setattr(row, name, round(value, 3))
    row.tflops = round(row.tflops, 5)
    if row.pct_of_ceiling is not None:
        row.pct_of_ceiling = round(row.pct_of_ceiling, 2)
    if row.max_abs_diff is not None and not math.isfinite(row.max_abs_diff):
        row.max_abs_diff = None


# Reporting -------------------------------------------------------------------------------------------------------


def machine_info(device: str | torch.device = "auto") -> dict[str, Any]:
    """What the figures were measured on: CPU model and cores, threads, GPU, library versions, load."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "native_bf16_cpu": cpu_has_fast_bf16(),
                            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    if onnxruntime_available():
        with contextlib.suppress(Exception):
            import onnxruntime

            info["onnxruntime"] = onnxruntime.__version__
    dev = resolve_device(device)
    if dev.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(dev)
        info["cuda"] = torch.version.cuda
    return info


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_rows(rows: Sequence[BenchRow], info: dict[str, Any] | None = None) -> str:
    """The rows as an aligned text table (``*`` marks the path ``inference_plan()`` picks), notes below."""
    lines = []
    if info:
        lines.append("; ".join(f"{k}: {v}" for k, v in info.items()))
    header = (f"{'':1} {'path':<48} {'dtype':>5} {'batch':>5} {'size':>9} {'ms/frame':>10} {'frames/s':>9} "
              f"{'CPU ms':>9} {'TFLOP/s':>8} {'%ceil':>6} {'peak MiB':>9} {'max|Δ|':>8}")
    lines.append(header)
    notes = []
    for r in rows:
        if r.kind == "ceiling":
            lines.append(f"  {r.path:<48} {r.dtype:>5} {'':>5} {'':>9} {'':>10} {'':>9} {'':>9} "
                         f"{_fmt(r.tflops, '.3f'):>8}")
            continue
        mark = "*" if r.default else " "
        lines.append(
            f"{mark} {r.path:<48} {r.dtype:>5} {r.batch:>5} {r.size:>9} {_fmt(r.ms_per_frame, '.2f'):>10} "
            f"{_fmt(r.fps, '.3f'):>9} {_fmt(r.cpu_ms_per_frame, '.1f'):>9} {_fmt(r.tflops, '.3f'):>8} "
            f"{_fmt(r.pct_of_ceiling, '.1f'):>6} {_fmt(r.peak_mem_mb, '.0f'):>9} {_fmt(r.max_abs_diff, '.1e'):>8}"
        )
        if r.note:
            notes.append(f"  {r.path}: {r.note}")
    mem = {r.mem_kind for r in rows if r.mem_kind}
    if mem:
        notes.append("  peak memory: " + "; ".join(sorted(mem)))
    if notes:
        lines += ["notes:", *notes]
    return "\n".join(lines)
