"""Training a student: the seed's recipe by default, on one GPU, several (``torchrun``), or the CPU.

:func:`train` reads pairs with :mod:`unblur.data`, optimizes :class:`unblur.losses.CombinedLoss` (plus,
with a teacher, ``distill_weight`` times the same loss against the teacher's output) and writes
everything into one run folder:

* ``sharpen_model.pth``: the weights that scored best on validation (PSNR), as an unblur weights file
  (a state_dict plus the model name and settings; loads with ``torch.load(weights_only=True)``);
* ``checkpoint.pt``: the full training state for ``--resume`` (model, optimizer, schedule, EMA, epoch,
  step, RNG states, metric history), written atomically at every epoch end and every
  ``checkpoint_seconds`` in between, so a killed run loses at most that much work;
* ``metrics.csv`` (one row per epoch), ``loss_curve.png`` (updated each epoch) and ``config.json`` (the
  resolved settings, usable again with ``--config``).

Under ``torchrun`` each process trains on its shard of every epoch (``DistributedSampler``) and
gradients are averaged by ``DistributedDataParallel``; the batch size is per process. Only rank 0
validates, writes files and shows progress.

Faults: pairs whose files are missing, unreadable or of different sizes are left out before training
starts, and a file that turns out undecodable mid-run is replaced by another sample
(:class:`unblur.data.SkipUnreadable`); each is reported in one line and counted (``skipped_pairs`` in
``metrics.csv``, :attr:`TrainResult.skipped`), and the command exits non-zero at the end. The run folder
is proved writable and roomy enough before the data is read. A non-finite loss skips the step or stops
(``nan_policy``); running out of GPU memory stops with advice on ``--batch-size`` and ``--crop``.

Resuming restores the exact state at the checkpoint and replays the epoch's sample order from the
same permutation, skipping the batches already done. Random crops and flips after a mid-epoch resume
are drawn afresh (they come from the DataLoader workers' RNG), so only resumes from an epoch boundary
repeat the uninterrupted run bit for bit.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import random
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm

from unblur.data import (
    DatasetError,
    Pair,
    PairedImages,
    SkipUnreadable,
    find_pairs,
    hold_out_sequences,
    screen_pairs,
    to_device_float,
)
from unblur.device import cpu_has_fast_bf16, resolve_device
from unblur.evaluate import score
from unblur.io import ImageError, atomic_write, remove_stale_temps
from unblur.losses import PIXEL_LOSSES, CombinedLoss, combined_loss
from unblur.metrics import psnr
from unblur.models import (
    DEFAULT_MODEL,
    MODELS,
    build_model,
    count_parameters,
    load_weights,
    safe_load,
    save_weights,
    weights_from_model,
)
from unblur.preflight import check_free_space, ensure_writable_folder, refuse_inside

__all__ = ["TrainConfig", "TrainResult", "load_config", "train", "training_precision"]

WEIGHTS_NAME = "sharpen_model.pth"
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.csv"
CURVE_NAME = "loss_curve.png"
CONFIG_NAME = "config.json"
RUN_FILES = (WEIGHTS_NAME, CHECKPOINT_NAME, METRICS_NAME, CURVE_NAME, CONFIG_NAME)
_TERMS = ("loss", "mse", "ms_ssim", "edge", "distill")  # the train_* columns of metrics.csv
_CHECKPOINT_KEYS = frozenset({"model", "optimizer", "scheduler", "scaler", "step", "epoch", "batch_in_epoch",
                              "history", "best_psnr", "rng"})
# Settings whose values are numbers; PyYAML reads 1e-4 (no dot) as a string, so YAML text is converted.
_NUMBER_FIELDS = frozenset({"lr", "alpha", "edge_weight", "val_fraction", "ema", "clip", "distill_weight",
                            "checkpoint_seconds"})


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, out of memory, nothing to train on); one line says why."""


@dataclass
class TrainConfig:
    """Every training setting. Defaults are the seed's recipe; ``None`` means "derive it"."""

    data: str | None = None
    out: str | None = None
    model: str = DEFAULT_MODEL
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    input_kind: str = "blur_gamma"
    split: str = "train"
    val_data: str | None = None
    val_split: str = "test"
    val_extra: str | None = None
    val_fraction: float = 0.1
    val_limit: int = 32
    epochs: int = 30
    batch_size: int = 2
    lr: float = 1e-4
    alpha: float = 0.8
    edge_weight: float = 1.0
    pixel_loss: str = "mse"
    psnr_knee: float = 80.0
    crop: int = 256
    workers: int | None = None
    seed: int = 0
    max_steps: int | None = None
    device: str = "auto"
    fp32: bool = False
    ema: float | None = None
    cosine: bool = False
    warmup: int = 0
    repeat: int = 1
    shuffle_colors: bool = False
    mix_colors: bool = False
    coarse: float = 0.0
    coarse_min: float | None = None
    accum: int = 1
    clip: float | None = None
    init: str | None = None
    teacher: str | None = None
    distill_weight: float = 1.0
    cache: bool = False
    nan_policy: str = "skip"
    checkpoint_seconds: float = 300.0
    progress: bool = True

    def validate(self) -> None:
        """Reject values that cannot work, with a message saying what is expected.

        Values may come from TOML, YAML or JSON files, so types are checked before ranges: ``lr =
        "fast"`` gets a message, not a ``TypeError`` from deep inside training.
        """
        problems: list[str] = []

        def expect(name: str, ok: bool, what: str) -> None:
            if not ok:
                problems.append(f"{name}: expected {what}, got {_shown(getattr(self, name))}")

        def number(name: str, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                   high_open: bool = False, optional: bool = False, what: str = "") -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            ok = _is_number(value)
            if ok and low is not None:
                ok = value > low if low_open else value >= low
            if ok and high is not None:
                ok = value < high if high_open else value <= high
            expect(name, ok, what)

        def integer(name: str, minimum: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            expect(name, _is_int(value) and value >= minimum, what)

        def text(name: str, optional: bool = False) -> None:
            value = getattr(self, name)
            if not (optional and value is None):
                expect(name, isinstance(value, str) and value != "", "a non-empty text")

        if self.data is None:
            problems.append("data: a dataset folder is required (--data DIR)")
        else:
            text("data")
        for name in ("out", "val_data", "val_extra", "teacher", "init"):
            text(name, optional=True)
        for name in ("split", "val_split", "device"):
            text(name)
        if isinstance(self.model, str) and self.model not in MODELS:
            problems.append(f"model: unknown {self.model!r}; choose one of {', '.join(sorted(MODELS))}")
        else:
            text("model")
        expect("model_kwargs", isinstance(self.model_kwargs, dict), "a table of model settings")
        expect("input_kind", self.input_kind in ("blur_gamma", "blur"), "blur_gamma or blur")
        for name in ("epochs", "batch_size", "accum", "repeat"):
            integer(name, 1)
        integer("warmup", 0)
        integer("crop", 16)
        integer("max_steps", 1, optional=True)
        integer("workers", 0, optional=True)
        integer("val_limit", 0)
        expect("seed", _is_int(self.seed) and self.seed >= 0, "an integer >= 0")
        number("lr", 0, 1, low_open=True, high_open=True, what="a number in (0, 1) such as 1e-4")
        number("alpha", 0, 1, what="a number in [0, 1]")
        number("edge_weight", 0, what="a number >= 0")
        number("distill_weight", 0, what="a number >= 0")
        number("psnr_knee", 0, low_open=True, what="a positive number of dB such as 30")
        number("val_fraction", 0, 1, low_open=True, high_open=True, what="a number in (0, 1)")
        number("ema", 0, 1, low_open=True, high_open=True, optional=True, what="a decay in (0, 1) such as 0.999")
        number("clip", 0, low_open=True, optional=True, what="a positive gradient norm")
        number("coarse", 0, 2, what="a coarse-pass strength in [0, 2]")
        if _is_number(self.coarse) and self.coarse > 0 and self.model != "unblurnet":
            problems.append(f"coarse: only unblurnet has a coarse pass, not {self.model!r}")
        number("coarse_min", 0, 2, optional=True, what="a coarse-pass strength in [0, 2]")
        if (_is_number(self.coarse_min) and _is_number(self.coarse)
                and not (self.coarse > 0 and self.coarse_min <= self.coarse)):
            problems.append(f"coarse_min: {self.coarse_min} needs a coarse strength at or above it (coarse is "
                            f"{self.coarse})")
        number("checkpoint_seconds", 0, low_open=True, what="a positive number of seconds")
        for name in ("fp32", "cosine", "cache", "progress", "shuffle_colors", "mix_colors"):
            expect(name, isinstance(getattr(self, name), bool), "true or false")
        expect("nan_policy", self.nan_policy in ("skip", "stop"), "skip or stop")
        expect("pixel_loss", self.pixel_loss in PIXEL_LOSSES, " or ".join(PIXEL_LOSSES))
        if isinstance(self.teacher, str) and self.teacher and not Path(self.teacher).is_file():
            problems.append(f"teacher: weights file {self.teacher} not found")
        if isinstance(self.init, str) and self.init and not Path(self.init).is_file():
            problems.append(f"init: weights file or checkpoint {self.init} not found")
        if problems:
            raise ValueError("invalid training settings: " + "; ".join(problems))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: object) -> str:
    """``repr`` of a rejected value, with a hint when a number was written as text."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return repr(value)
        return f"{value!r} (text, not a number: remove the quotes)"
    return repr(value)


def load_config(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML, YAML or JSON file (keys are :class:`TrainConfig` fields; ``-`` may stand for ``_``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text) or {}
        elif path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            raise ValueError("expected a .toml, .yaml/.yml or .json file")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot parse config: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # yaml.YAMLError without importing yaml at module level
        raise ValueError(f"{path}: cannot parse config: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a table of settings at the top level")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = {str(k).replace("-", "_"): v for k, v in raw.items()}
    if "input" in cfg and "input_kind" not in cfg:
        cfg["input_kind"] = cfg.pop("input")
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if path.suffix.lower() in (".yaml", ".yml"):  # YAML 1.1 reads 1e-4 (no dot) as text, not as a number
        for key in _NUMBER_FIELDS & cfg.keys():
            value = cfg[key]
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    cfg[key] = float(value)
    return cfg


@dataclass
class TrainResult:
    """Where the run wrote its files and how it ended."""

    out: Path
    weights: Path
    steps: int
    epochs_done: int
    best_psnr: float
    """Validation PSNR of the kept weights (the best one, unless ``val_extra`` picks by mean gain)."""
    history: list[dict[str, Any]]
    skipped: list[str] = field(default_factory=list)
    """One line per pair left out (unreadable, missing, sizes differ) over the whole run, resumes included."""


# Distributed helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> _Dist:
    """Join the process group that ``torchrun`` describes in the environment (none outside torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, world, local_rank)


class _SkipSampler(Sampler[int]):
    """Yields a sampler's indices after dropping the first ``skip`` (to resume in the middle of an epoch)."""

    def __init__(self, sampler: DistributedSampler, skip: int = 0) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        it = iter(self.sampler)
        for _ in range(self.skip):
            next(it, None)
        yield from it

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


# Run-folder outputs ---------------------------------------------------------------------------------------

_METRIC_FIELDS = ["epoch", "step", "train_loss", "train_mse", "train_ms_ssim", "train_edge", "train_distill",
                  "val_loss", "val_psnr", "val_ssim", "val_input_psnr", "lr", "seconds", "images_per_s",
                  "skipped_steps", "skipped_pairs"]
# With a second validation set (val_extra): its scores, and the mean gain over the input across both sets
_EXTRA_FIELDS = ["val2_loss", "val2_psnr", "val2_ssim", "val2_input_psnr", "val_gain"]


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        extra = [name for name in _EXTRA_FIELDS if history and name in history[-1]]
        writer = csv.DictWriter(f, fieldnames=_METRIC_FIELDS + extra, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def _plot_curves(path: Path, history: list[dict[str, Any]], title: str) -> None:
    """Train and validation loss per epoch (left) and validation PSNR (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax1.plot(epochs, [h["val_loss"] for h in history], "s-", label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("combined loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(epochs, [h["val_psnr"] for h in history], "s-", color="tab:green", label="model")
    if "val_input_psnr" in history[-1]:
        ax2.axhline(history[-1]["val_input_psnr"], color="gray", linestyle="--", label="blurry input")
    ax2.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation PSNR (dB)")
    ax2.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# Data -------------------------------------------------------------------------------------------------


def _evenly_spaced(pairs: list[Pair], limit: int) -> list[Pair]:
    if limit <= 0 or len(pairs) <= limit:
        return pairs
    step = len(pairs) / limit
    return [pairs[int(i * step)] for i in range(limit)]


def _split_data(cfg: TrainConfig) -> tuple[list[Pair], list[Pair], str]:
    """Training pairs, validation pairs and a sentence saying where validation comes from."""
    root = Path(str(cfg.data))
    if cfg.val_data is not None:
        train_pairs = find_pairs(root, cfg.split, cfg.input_kind)
        val_pairs = find_pairs(cfg.val_data, cfg.val_split, cfg.input_kind)
        source = f"{cfg.val_data}"
    elif (root / cfg.split).is_dir() and (root / cfg.val_split).is_dir():
        train_pairs = find_pairs(root, cfg.split, cfg.input_kind)
        val_pairs = find_pairs(root, cfg.val_split, cfg.input_kind)
        source = f"the {cfg.val_split} split"
    else:
        train_pairs, val_pairs = hold_out_sequences(find_pairs(root, cfg.split, cfg.input_kind),
                                                    cfg.val_fraction, cfg.seed)
        source = "held-out sequences"
    val_pairs = _evenly_spaced(val_pairs, cfg.val_limit)
    return train_pairs, val_pairs, f"{len(val_pairs)} pairs from {source}"


# The loop -------------------------------------------------------------------------------------------------


def training_precision(device: torch.device, fp32: bool = False) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype (``None``: float32) and whether to use channels_last, for training on ``device``.

    Mixed precision where it is fast: CUDA (bf16, or fp16 with loss scaling on GPUs without bf16) and CPUs
    with native bf16 kernels (AVX-512 BF16 or AMX); elsewhere oneDNN emulates bf16, slower than float32.
    channels_last on CUDA and CPUs in any precision. On the 2-core AVX-512 EPYC a real training step of
    unblurnet (batch 8 × 192²) took 0.70 s in float32 NCHW and 0.38 s in bf16 channels_last
    (docs/benchmarks.md). ``fp32`` turns mixed precision off, not the layout.
    """
    if device.type == "cuda":
        return (None if fp32 else torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16), True
    if device.type == "cpu":
        return (None if fp32 or not cpu_has_fast_bf16() else torch.bfloat16), True
    return None, False


@torch.inference_mode()
def _validate(model: nn.Module, pairs: list[Pair], device: torch.device, dtype: torch.dtype | None,
              channels_last: bool, alpha: float, edge_weight: float, pixel: str, psnr_knee: float,
              broken: Callable[[str], None]) -> dict[str, float]:
    """Mean combined loss, PSNR and SSIM over full validation frames, and the PSNR of the blurry input
    itself for reference; undecodable frames go to ``broken``."""
    was_training = model.training
    model.eval()
    dataset = PairedImages(pairs, crop=None, augment=False)
    values: dict[str, list[float]] = {"val_loss": [], "val_psnr": [], "val_ssim": [], "val_input_psnr": []}
    scored = 0
    for i in range(len(dataset)):
        try:
            inp_u8, tgt_u8, _ = dataset[i]
        except (ImageError, DatasetError) as exc:
            broken(" ".join(str(exc).split()))
            continue
        inp = to_device_float(inp_u8.unsqueeze(0), device, channels_last)
        tgt = to_device_float(tgt_u8.unsqueeze(0), device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            pred = model(inp)
        s = score(pred.float().clamp(0, 1).contiguous(), tgt, alpha, edge_weight, pixel, psnr_knee)
        values["val_loss"].append(s.loss)
        values["val_psnr"].append(s.psnr)
        values["val_ssim"].append(s.ssim)
        values["val_input_psnr"].append(float(psnr(inp, tgt)))  # the baseline the model must beat
        scored += 1
    model.train(was_training)
    if not scored:
        raise TrainingError(f"none of the {len(dataset)} validation pairs can be decoded (listed above)")
    return {k: _mean_of_defined(v) for k, v in values.items()}


def _mean_of_defined(values: list[float]) -> float:
    """Mean without the NaNs: SSIM is undefined (NaN) for frames smaller than its window."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def train(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train according to ``cfg``; with ``resume`` continue the run in ``cfg.out`` from its checkpoint."""
    cfg.validate()
    ddp = _init_distributed(cfg.device)
    say = log or (lambda line: tqdm.write(line, file=sys.stderr))  # on its own line, also under a progress bar

    def info(line: str) -> None:
        if ddp.main:
            say(line)

    try:
        return _train(cfg, resume, ddp, info, say)
    except torch.OutOfMemoryError:
        raise TrainingError(
            f"out of memory on the {cfg.device if cfg.device != 'auto' else 'GPU'} with --batch-size "
            f"{cfg.batch_size} and --crop {cfg.crop} per process; try --batch-size {max(1, cfg.batch_size // 2)} "
            f"or --crop {max(16, cfg.crop // 2)} (with --resume the run continues from its last checkpoint)"
        ) from None
    finally:
        if ddp.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _load_checkpoint(path: Path) -> dict[str, Any]:
    """The training state in ``path``, read safely (``weights_only=True``), or one line saying why not."""
    out = path.parent
    if not path.is_file():
        if (out / CONFIG_NAME).is_file():
            raise TrainingError(
                f"{out}: the run stopped before its first checkpoint was written (one is written every "
                "checkpoint_seconds and at each epoch end), so there is nothing to resume; start it again "
                "without --resume"
            )
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (was --out the run folder?)")
    checkpoint = safe_load(path, "checkpoint")
    missing = sorted(_CHECKPOINT_KEYS - set(checkpoint)) if isinstance(checkpoint, dict) else ["everything"]
    if missing:
        raise TrainingError(f"{path}: not an unblur training checkpoint (it lacks {', '.join(missing)})")
    return checkpoint


def _init_weights(path: Path, cfg: TrainConfig) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """The run's config and the state_dict to start from: a weights file of the same architecture and
    settings, or another run's ``checkpoint.pt`` (its latest weights, see :func:`unblur.models.load_weights`),
    to fine-tune a trained model on new data or continue it under another loss. A run that names no
    settings takes the weights' (e.g. the bundled model's mean_window, or a strength), so that
    ``--model unblurnet --init default.pth`` just works. A strength per frame size
    (``strength_by_size``) is left behind: it would scale every training crop by the strength of a frame
    as small as the crop, where the crop's blur is that of the full frame; such a run trains the network
    as it is (strength 1), and ``scripts/pick_strength.py --by-size`` picks a table for its result. A
    coarse pass (``coarse_by_size``) is left behind for the same reason (``scripts/pick_coarse.py``)."""
    weights = load_weights(path, cfg.model)
    settings = {k: v for k, v in weights.model_kwargs.items() if k not in ("strength_by_size", "coarse_by_size")}
    if weights.model == cfg.model and not cfg.model_kwargs:
        cfg = dataclasses.replace(cfg, model_kwargs=settings)
    if (weights.model, settings) != (cfg.model, cfg.model_kwargs):
        raise TrainingError(f"{path}: holds a {weights.model!r} model with settings {weights.model_kwargs}, not the "
                            f"{cfg.model!r} with settings {cfg.model_kwargs} this run trains")
    return cfg, weights.state_dict


def _run_bytes(cfg: TrainConfig, model: nn.Module) -> int:
    """A low estimate of the disk space a run needs: the checkpoint (weights, Adam's two moments, the EMA)
    and the weights file, each twice while the new copy is written next to the old, plus the small files."""
    weights = 4 * count_parameters(model)
    checkpoint = weights * (3 + (cfg.ema is not None))
    return 2 * (checkpoint + weights) + (1 << 20)


def _lr_factor(warmup: int, total_steps: int, cosine: bool, step: int) -> float:
    """Multiplier of the base learning rate at ``step``: a linear warm-up over ``warmup`` steps, then
    constant or a cosine decay to zero at ``total_steps``.

    The warm-up matters for residual students whose head starts at zero: Adam's first steps move every
    weight by about ``lr`` whatever the gradient's size, which at full rate throws the identity far
    off before the gradients mean anything.
    """
    factor = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if cosine:
        factor *= 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return factor


def _train(cfg: TrainConfig, resume: bool, ddp: _Dist, info: Callable[[str], None],
           say: Callable[[str], None]) -> TrainResult:
    device = resolve_device(cfg.device)
    if ddp.world > 1 and device.type == "cuda":
        device = torch.device("cuda", ddp.local_rank)
    out = Path(cfg.out) if cfg.out else Path("runs") / f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    ckpt_path = out / CHECKPOINT_NAME

    checkpoint: dict[str, Any] | None = None
    if resume:
        checkpoint = _load_checkpoint(ckpt_path)
    elif ckpt_path.exists():
        raise FileExistsError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")

    init_state = None
    if cfg.init is not None and checkpoint is None:  # on --resume the checkpoint's weights win
        cfg, init_state = _init_weights(Path(cfg.init), cfg)
    if cfg.coarse > 0:  # every crop goes through the coarse pass, so the network learns to work after it
        cfg = dataclasses.replace(cfg, model_kwargs={**cfg.model_kwargs, "coarse_by_size": [[1, cfg.coarse]]})
    model = build_model(cfg.model, **cfg.model_kwargs)
    if init_state is not None:
        model.load_state_dict(init_state)
        info(f"starting from the weights in {cfg.init}")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    train_pairs, val_pairs, val_source = _split_data(cfg)
    # A second validation set, e.g. the held-out photos at a smaller frame size, where a student can do
    # damage the first set misses (docs/results.md, "Strength"): then the kept weights are those with the
    # best mean gain over the blurry input across both sets, not the best PSNR on the first.
    val2_pairs = (_evenly_spaced(find_pairs(cfg.val_extra, cfg.val_split, cfg.input_kind), cfg.val_limit)
                  if cfg.val_extra is not None else [])
    if val2_pairs:
        val_source += f" and {len(val2_pairs)} pairs from {cfg.val_extra}"
    image_folders = sorted({f.parent for p in (*train_pairs, *val_pairs, *val2_pairs) for f in (p.input, p.target)})
    refuse_inside(out, image_folders, "run folder", "choose an --out outside the dataset's image folders")
    if ddp.main:  # before any real work: a run that cannot save its results should not start
        ensure_writable_folder(out, "run folder")
        for name in RUN_FILES:  # left by a run killed while it was writing them
            remove_stale_temps(out / name)
        check_free_space(out, _run_bytes(cfg, model), "the run's checkpoint and weights")
        with atomic_write(out / CONFIG_NAME) as tmp:
            Path(tmp).write_text(json.dumps(asdict(cfg), indent=2) + "\n")

    # Pairs left out, as one-line reasons, in the order found (a dict is an ordered set); kept across resumes.
    skipped: dict[str, None] = dict.fromkeys(checkpoint.get("skipped_pairs", []) if checkpoint else [])
    rank_prefix = f"[rank {ddp.rank}] " if ddp.world > 1 else ""

    def skip_broken(line: str, where: str) -> None:
        if line not in skipped:
            skipped[line] = None
            say(f"{rank_prefix}warning: skipped {line} ({where})")

    n_train, n_val = len(train_pairs), len(val_pairs)
    train_pairs, bad_train = screen_pairs(train_pairs)
    val_pairs, bad_val = screen_pairs(val_pairs)
    for line in bad_train:
        skipped[line] = None
        info(f"warning: skipped {line} (left out of training)")
    for line in bad_val:
        skipped[line] = None
        info(f"warning: skipped {line} (left out of validation)")
    if not train_pairs:
        raise TrainingError(f"none of the {n_train} training pairs can be used (reasons above)")
    if not val_pairs:
        raise TrainingError(f"none of the {n_val} validation pairs can be used (reasons above)")
    images = PairedImages(train_pairs, crop=cfg.crop, augment=True, cache=cfg.cache,
                          shuffle_colors=cfg.shuffle_colors, mix_colors=cfg.mix_colors)
    if cfg.cache:  # decode once here; forked DataLoader workers then share the arrays copy-on-write
        info(f"decoding {len(train_pairs)} training pairs into memory (--cache)")

        def preload(i: int) -> None:
            with contextlib.suppress(ImageError, DatasetError):  # SkipUnreadable reports the broken ones
                images.preload([i])

        # Pillow decodes PNGs without holding the GIL, so threads share the work: GoPro's 4,200 decodes
        # (~28 ms each) are two minutes in one thread; two threads on two cores took half the time.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for _ in pool.map(preload, range(len(images))):
                pass
    dataset: Dataset = SkipUnreadable(images)
    if cfg.repeat > 1:  # several random crops of every pair per epoch: fewer, longer epochs on small sets
        dataset = ConcatDataset([dataset] * cfg.repeat)
    sampler = DistributedSampler(dataset, num_replicas=ddp.world, rank=ddp.rank, shuffle=True, seed=cfg.seed,
                                 drop_last=ddp.world > 1)
    micro_batches = len(sampler) // cfg.batch_size
    steps_per_epoch = micro_batches // cfg.accum
    if steps_per_epoch == 0:
        raise TrainingError(
            f"{len(train_pairs)} training pairs ({len(sampler)} per process) are fewer than one step of "
            f"batch {cfg.batch_size} × accumulation {cfg.accum}; lower --batch-size or add data"
        )
    total_steps = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps,
                                                                                  cfg.epochs * steps_per_epoch)
    workers = cfg.workers if cfg.workers is not None else min(4, os.cpu_count() or 1)

    model = model.to(device)
    dtype, channels_last = training_precision(device, cfg.fp32)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(_lr_factor, cfg.warmup, total_steps,
                                                                     cfg.cosine))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    ema = None
    if cfg.ema is not None:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
    teacher = None
    if cfg.teacher is not None:
        teacher = load_weights(cfg.teacher).build().to(device).eval().requires_grad_(False)
        if channels_last:
            teacher = teacher.to(memory_format=torch.channels_last)
    loss_fn = CombinedLoss(cfg.alpha, cfg.edge_weight, cfg.pixel_loss, cfg.psnr_knee)

    step, epoch, batch_in_epoch, skipped_steps = 0, 0, 0, 0
    history: list[dict[str, Any]] = []
    best_psnr = best_score = -math.inf  # best_score: what picks the kept weights (see val2_pairs)
    best_by = "val_gain" if val2_pairs else "val_psnr"
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        if ema is not None and "ema" in checkpoint:
            ema.load_state_dict(checkpoint["ema"])
        step, epoch, batch_in_epoch = checkpoint["step"], checkpoint["epoch"], checkpoint["batch_in_epoch"]
        skipped_steps = checkpoint.get("skipped_steps", 0)
        history, best_psnr = list(checkpoint["history"]), float(checkpoint["best_psnr"])
        best_score = float(checkpoint.get("best_score", best_psnr))
        if checkpoint.get("best_by", "val_psnr") != best_by:  # --val-extra added or dropped on resume
            best_score = -math.inf
        _set_rng_state(checkpoint["rng"])
        info(f"resuming {ckpt_path}: epoch {epoch + 1}, step {step}, batch {batch_in_epoch} of the epoch")

    net: nn.Module = model
    if ddp.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    info(f"training {cfg.model} on {len(train_pairs)} pairs ({cfg.input_kind}), validating on {val_source}; "
         f"{ddp.world} process(es) on {device.type}"
         f"{', ' + str(dtype).removeprefix('torch.') if dtype else ', fp32'}; {steps_per_epoch} steps/epoch, "
         f"{total_steps} steps in all; writing to {out}")

    def save_checkpoint() -> None:
        if not ddp.main:
            return
        state = {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "step": step, "epoch": epoch, "batch_in_epoch": batch_in_epoch,
            "skipped_steps": skipped_steps, "skipped_pairs": list(skipped), "history": history,
            "best_psnr": best_psnr, "best_score": best_score, "best_by": best_by, "rng": _rng_state(),
            "config": json.dumps(asdict(cfg)),
        }
        if ema is not None:
            state["ema"] = ema.state_dict()
        try:
            with atomic_write(ckpt_path) as tmp:
                torch.save(state, tmp)
        except OSError as exc:
            raise TrainingError(
                f"{ckpt_path}: cannot write the checkpoint ({exc.strerror or exc}); the previous one is intact: "
                "make room, then continue with --resume"
            ) from None

    def weights_meta(extra: dict[str, Any]) -> dict[str, Any]:
        return {"config": json.dumps(asdict(cfg)), "step": step, "epoch": epoch + 1, **extra}

    last_save = time.monotonic()
    stop = step >= total_steps
    while epoch < cfg.epochs and not stop:
        sampler.set_epoch(epoch)
        skip = batch_in_epoch * cfg.batch_size
        loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=_SkipSampler(sampler, skip),
                            num_workers=workers, drop_last=True, pin_memory=device.type == "cuda",
                            persistent_workers=False,
                            generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        # Running sums of loss, mse, ms_ssim, edge, distill stay on the device: reading them every step would
        # stall the GPU pipeline; the progress bar reads them about once a second.
        sums = torch.zeros(len(_TERMS), device=device)
        seen = 0
        t0 = last_bar = time.perf_counter()
        bar = tqdm(total=micro_batches, initial=batch_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not (cfg.progress and ddp.main), leave=False, dynamic_ncols=True)
        optimizer.zero_grad(set_to_none=True)
        for inp_u8, tgt_u8, _, broken in loader:
            for line in (line for text in broken for line in text.split("\n") if line):
                skip_broken(line, "another sample was used in its place")
            inp = to_device_float(inp_u8, device, channels_last)
            tgt = to_device_float(tgt_u8, device, channels_last)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                if cfg.coarse_min is None:
                    pred = net(inp)
                else:  # a strength per crop, so that one network suits every size's picked strength
                    draw = torch.empty(inp.shape[0], 1, 1, 1, device=device).uniform_(cfg.coarse_min, cfg.coarse)
                    pred = net(inp, coarse=draw)
                teacher_out = None
                if teacher is not None:
                    with torch.no_grad():
                        teacher_out = teacher(inp)
            loss = loss_fn(pred, tgt)
            terms = loss_fn.last
            distill = torch.zeros((), device=device)
            if teacher_out is not None:
                # The teacher's output is a second target, scored by the same loss as the sharp frame, so
                # distill_weight is a ratio free of units (1: the teacher counts as much as the ground
                # truth) whatever the pixel loss; an L1 term would be negligible beside -PSNR's gradients
                # and overwhelming beside MSE's.
                distill = combined_loss(pred, teacher_out, cfg.alpha, cfg.edge_weight, cfg.pixel_loss,
                                        cfg.psnr_knee).total
                loss = loss + cfg.distill_weight * distill
            finite = torch.isfinite(loss.detach()).float()
            if ddp.world > 1:  # every process must skip together, or DDP's gradient all-reduce would hang
                dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            if not bool(finite):
                if cfg.nan_policy == "stop":
                    save_checkpoint()
                    raise TrainingError(
                        f"loss became {float(loss)} at step {step + 1}; stopped (checkpoint kept). Try a lower "
                        "--lr, --clip 1.0 or --fp32, or --nan skip to skip such steps")
                skipped_steps += 1
                info(f"warning: non-finite loss at step {step + 1}; step skipped ({skipped_steps} so far)")
                optimizer.zero_grad(set_to_none=True)
                batch_in_epoch += 1
                bar.update(1)
                continue
            scaler.scale(loss / cfg.accum).backward()
            batch_in_epoch += 1
            assert terms is not None
            sums += torch.stack([loss, terms.mse, terms.ms_ssim, terms.edge, distill]).detach().float()
            seen += 1
            if batch_in_epoch % cfg.accum == 0:
                if cfg.clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
            now = time.perf_counter()
            if not bar.disable and now - last_bar > 1.0:
                last_bar = now
                bar.set_postfix(loss=f"{float(sums[0]) / seen:.4f}",
                                img_s=f"{seen * cfg.batch_size * ddp.world / max(now - t0, 1e-9):.1f}")
            bar.update(1)
            if step >= total_steps:
                stop = True
                break
            if time.monotonic() - last_save > cfg.checkpoint_seconds:
                save_checkpoint()
                last_save = time.monotonic()
        bar.close()
        epoch_done = batch_in_epoch >= micro_batches or not stop
        elapsed = time.perf_counter() - t0

        row: dict[str, Any] = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"],
                               "seconds": round(elapsed, 2), "skipped_steps": skipped_steps,
                               "images_per_s": round(seen * cfg.batch_size * ddp.world / max(elapsed, 1e-9), 2)}
        for key, total in zip(_TERMS, sums.tolist(), strict=True):
            row[f"train_{key}"] = total / seen if seen else float("nan")
        if ddp.main:
            eval_model = ema.module if ema is not None else model
            row.update(_validate(eval_model, val_pairs, device, dtype, channels_last, cfg.alpha, cfg.edge_weight,
                                 cfg.pixel_loss, cfg.psnr_knee,
                                 lambda line: skip_broken(line, "left out of validation")))
            kept = {"val_psnr": row["val_psnr"], "val_ssim": row["val_ssim"]}  # recorded in the weights file
            if val2_pairs:
                extra = _validate(eval_model, val2_pairs, device, dtype, channels_last, cfg.alpha, cfg.edge_weight,
                                  cfg.pixel_loss, cfg.psnr_knee,
                                  lambda line: skip_broken(line, "left out of validation"))
                row.update({"val2_" + key.removeprefix("val_"): value for key, value in extra.items()})
                row["val_gain"] = (row["val_psnr"] - row["val_input_psnr"] + row["val2_psnr"]
                                   - row["val2_input_psnr"]) / 2
                kept.update(val2_psnr=row["val2_psnr"], val_gain=row["val_gain"])
            row["skipped_pairs"] = len(skipped)
            history.append(row)
            score = row["val_gain"] if val2_pairs else row["val_psnr"]
            if score > best_score:
                best_score, best_psnr = score, row["val_psnr"]
                save_weights(out / WEIGHTS_NAME,
                             weights_from_model(eval_model, cfg.model, cfg.model_kwargs, weights_meta(kept)))
            _write_metrics(out / METRICS_NAME, history)
            _plot_curves(out / CURVE_NAME, history, f"{cfg.model} on {Path(str(cfg.data)).name}")
            info(f"epoch {epoch + 1}/{cfg.epochs} step {step}: train loss {row['train_loss']:.4f} "
                 f"(mse {row['train_mse']:.4f}, ms-ssim {row['train_ms_ssim']:.4f}, edge {row['train_edge']:.4f}) "
                 f"| val loss {row['val_loss']:.4f}, PSNR {row['val_psnr']:.2f} dB, SSIM {row['val_ssim']:.4f} "
                 + (f"(extra {row['val2_psnr']:.2f} dB, mean gain {row['val_gain']:+.3f} dB) " if val2_pairs else "")
                 + f"| {row['images_per_s']:.1f} img/s, {elapsed:.0f} s")
        if epoch_done:
            epoch += 1
            batch_in_epoch = 0
        save_checkpoint()
        last_save = time.monotonic()
        if ddp.world > 1:
            dist.barrier()

    return TrainResult(out=out, weights=out / WEIGHTS_NAME, steps=step, epochs_done=epoch, best_psnr=best_psnr,
                       history=history, skipped=list(skipped))
