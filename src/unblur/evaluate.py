"""Scoring a model on paired data against two baselines, the way ``unblur eval`` reports it.

For every pair the model output, the untouched blurry input and an unsharp mask of it are scored with
the combined loss, PSNR and SSIM (:mod:`unblur.metrics`: 8-bit, RGB, full frame). Scoring the
baselines in the same run on the same files makes the model's gain a measured difference rather than a
comparison with numbers from elsewhere.

A pair that cannot be scored (a file missing, unreadable or damaged, input and target of different
sizes) is reported in one line and left out; the means cover the others and the report counts and
lists the skipped ones, so a partial evaluation is never mistaken for a complete one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from unblur.data import DatasetError, Pair, PairedImages, to_device_float
from unblur.infer import Sharpener
from unblur.io import ImageError, atomic_write, read_rgb_u8, write_image
from unblur.losses import combined_loss
from unblur.metrics import psnr, ssim
from unblur.models import UnblurNet
from unblur.preflight import OutputError, check_free_space, ensure_writable_folder

__all__ = ["SSIM_WINDOW", "EvalReport", "Scores", "SweptFrame", "evaluate", "format_table", "score", "strength_sweep",
           "unsharp_mask", "write_report"]

METHODS = ("input", "unsharp", "model")
METHOD_LABELS = {"input": "blurry input", "unsharp": "unsharp mask", "model": "model"}


def unsharp_mask(x: torch.Tensor, sigma: float = 1.0, amount: float = 1.0) -> torch.Tensor:
    """Classic unsharp mask ``x + amount·(x − gaussian(x, sigma))``, clamped to ``[0, 1]``.

    ``x`` is ``(N, C, H, W)``; the Gaussian (radius ``ceil(3σ)``) replicates the border pixels. With the
    defaults (σ = 1 px, amount 100 %) it is the usual "sharpen" of photo editors: the baseline that
    shows whether a network does more than boost edges.
    """
    radius = max(1, math.ceil(3 * sigma))
    coords = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).repeat(x.shape[1], 1, 1, 1)  # (C, 1, 1, K): depthwise, separable
    padded = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(F.conv2d(padded, kernel, groups=x.shape[1]), kernel.transpose(-1, -2), groups=x.shape[1])
    return (x + amount * (x - blurred)).clamp(0.0, 1.0)


@dataclass
class Scores:
    """Combined loss, PSNR (dB) and SSIM of one image or the mean over many."""

    loss: float
    psnr: float
    ssim: float


SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window (:func:`unblur.metrics.ssim`): smaller images have no SSIM."""


def score(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.8, edge_weight: float = 1.0,
          pixel: str = "mse", psnr_knee: float = 80.0) -> Scores:
    """Score one prediction ``(1, 3, H, W)`` against its target (loss on the float output, metrics at 8 bits).

    SSIM needs its 11×11 window inside the image; for an image with a shorter side it is undefined and
    reported as NaN, which the means skip, instead of failing a whole evaluation over one thumbnail.
    """
    loss = combined_loss(pred, target, alpha, edge_weight, pixel, psnr_knee).total
    defined = min(pred.shape[-2:]) >= SSIM_WINDOW
    return Scores(float(loss), float(psnr(pred, target)), float(ssim(pred, target)) if defined else math.nan)


@dataclass
class SweptFrame:
    """One pair scored at several strengths by :func:`strength_sweep`."""

    pair: Pair
    input: torch.Tensor
    """The blurry input as the network's (last) pass saw it, ``(1, 3, H, W)`` floats in ``[0, 1]``: after
    the coarse pass of a model that has one (:meth:`UnblurNet.coarse_correct`)."""
    correction: torch.Tensor
    """:meth:`UnblurNet.correction` of that input at strength 1."""
    input_psnr: float
    psnr: list[float]
    """PSNR of the output at each strength, in the order asked for."""


def strength_sweep(model: UnblurNet, pairs: Sequence[Pair], strengths: Sequence[float], device: torch.device,
                   dtype: torch.dtype | None = None, channels_last: bool = False) -> Iterator[SweptFrame]:
    """Score ``model`` (built at strength 1) at every one of ``strengths`` on each pair, from one network
    pass per pair: what the network adds (in linear light, or to the encoded values without
    ``linear_light``) is linear in the strength, so each strength's output is the input plus that
    multiple of the one correction, added as :meth:`UnblurNet.forward` adds it. Choosing a
    strength (``scripts/pick_strength.py``) then costs one pass instead of one per candidate (a model with a
    coarse pass runs that first, at its own strength, and the strengths scale the last pass). ``dtype``
    and ``channels_last`` as training validates (:func:`unblur.train.training_precision`); the scores are
    those of a model built at each strength within 0.001 dB (tests/test_models.py)."""
    if model.strength != 1.0 or model.strength_by_size is not None:
        raise ValueError("strength_sweep needs the model at strength 1 (Weights.with_strength(1.0)), not "
                         f"{model.strength_by_size or model.strength}")
    dataset = PairedImages(list(pairs), crop=None, augment=False)
    for i, pair in enumerate(pairs):
        inp_u8, tgt_u8, _ = dataset[i]
        x = to_device_float(inp_u8.unsqueeze(0), device, channels_last).contiguous()
        target = to_device_float(tgt_u8.unsqueeze(0), device)
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            x1 = model.coarse_correct(x)  # x itself without a coarse pass; the strengths scale the last pass
            r = model.correction(x1)
        with torch.no_grad():
            scores = [float(psnr(model.add_correction(x1, s * r).float().clamp(0, 1), target)) for s in strengths]
        yield SweptFrame(pair, x1, r, float(psnr(x, target)), scores)


@dataclass
class EvalReport:
    """Per-image and mean scores of each method, plus how the run was made."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    means: dict[str, Scores] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Pairs left out of the scores: ``{"name": ..., "reason": one line naming the file}``."""

    @property
    def gain_db(self) -> float:
        """Mean PSNR of the model minus that of the blurry input."""
        return self.means["model"].psnr - self.means["input"].psnr


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def _load_pair(pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target as ``(1, 3, H, W)`` floats on 8-bit levels (what the metrics score)."""
    inp, tgt = read_rgb_u8(pair.input), read_rgb_u8(pair.target)
    if inp.shape != tgt.shape:
        raise DatasetError(
            f"input {pair.input} is {inp.shape[1]}×{inp.shape[0]} but target {pair.target} is "
            f"{tgt.shape[1]}×{tgt.shape[0]}"
        )

    def to_float(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().unsqueeze(0) / 255.0

    return to_float(inp), to_float(tgt)


def _prepare_save_dir(save_dir: Path, pairs: Sequence[Pair]) -> dict[str, Path]:
    """Where each model output goes; refuses paths that are dataset files, and unwritable or full folders."""
    paths = {p.name: save_dir / p.name.replace("/", "_") for p in pairs}
    sources = {f.resolve() for p in pairs for f in (p.input, p.target)}
    for path in paths.values():
        if path.resolve() in sources:
            raise OutputError(f"{path}: refusing to overwrite a file of the dataset; choose another --out")
    ensure_writable_folder(save_dir, "folder for the model outputs")
    sizes = 0
    for p in pairs:
        with contextlib.suppress(OSError):
            sizes += p.target.stat().st_size  # the outputs are PNGs of the targets' size: similar files
    check_free_space(save_dir, sizes, "saving the model outputs")
    return paths


def evaluate(
    sharpener: Sharpener,
    pairs: Sequence[Pair],
    alpha: float = 0.8,
    edge_weight: float = 1.0,
    save_dir: str | Path | None = None,
    progress: bool = True,
    methods: Sequence[str] = METHODS,
    on_image: Callable[[dict[str, Any]], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> EvalReport:
    """Score ``methods`` (any of ``input``, ``unsharp``, ``model``) on every pair at full resolution.

    With ``save_dir`` the model outputs are saved there as PNG, named after the pairs; the folder is
    checked (writable, room, no output on a dataset file) before anything is scored. A pair that
    cannot be read is reported through ``warn`` (one line, default: stderr), listed in
    :attr:`EvalReport.skipped` and left out of the means. Raises if no pair at all can be scored, and
    on running out of memory (with the advice to tile), since every other image would fail too.
    """
    if not pairs:
        raise ValueError("nothing to evaluate: the dataset has no pairs")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    warn = warn or (lambda line: print(line, file=sys.stderr))
    save_paths = _prepare_save_dir(Path(save_dir), pairs) if save_dir is not None else {}
    report = EvalReport()
    start = time.perf_counter()
    for pair in tqdm(pairs, desc="eval", unit="img", disable=not progress):
        try:
            inp, tgt = _load_pair(pair)
        except (ImageError, DatasetError) as exc:
            reason = " ".join(str(exc).split())
            report.skipped.append({"name": pair.name, "reason": reason})
            warn(f"unblur: skipped {reason}")
            continue
        row: dict[str, Any] = {"name": pair.name}
        for method in methods:
            if method == "input":
                pred = inp
            elif method == "unsharp":
                pred = unsharp_mask(inp)
            else:
                try:
                    pred = sharpener(inp[0]).unsqueeze(0)
                except torch.OutOfMemoryError:
                    h, w = inp.shape[-2:]
                    raise MemoryError(
                        f"out of memory sharpening {pair.input} ({w}×{h}) on {sharpener.plan.device.type}; "
                        "try --tile 512 (or smaller) or --device cpu"
                    ) from None
                if save_dir is not None:
                    write_image(save_paths[pair.name], pred[0])
            s = score(pred, tgt, alpha, edge_weight)
            row.update({f"{method}_loss": s.loss, f"{method}_psnr": s.psnr, f"{method}_ssim": s.ssim})
        report.rows.append(row)
        if on_image is not None:
            on_image(row)
    if not report.rows:
        raise ValueError(f"none of the {len(pairs)} pairs could be scored (reasons above)")
    for method in methods:
        report.means[method] = Scores(
            *(_mean([r[f"{method}_{k}"] for r in report.rows]) for k in ("loss", "psnr", "ssim"))
        )
    report.info.update(n_images=len(report.rows), skipped=len(report.skipped),
                       seconds=round(time.perf_counter() - start, 2), plan=sharpener.plan.describe(), alpha=alpha,
                       edge_weight=edge_weight)
    return report


def format_table(report: EvalReport, model_label: str = "model") -> str:
    """The mean scores as a small aligned text table, with each method's PSNR gain over the input."""
    lines = [f"{'method':<24} {'loss':>8} {'PSNR dB':>8} {'SSIM':>7} {'gain dB':>8}"]
    base = report.means["input"].psnr if "input" in report.means else float("nan")
    for method, s in report.means.items():
        label = model_label if method == "model" else METHOD_LABELS[method]
        lines.append(f"{label:<24} {s.loss:>8.4f} {s.psnr:>8.2f} {s.ssim:>7.4f} {s.psnr - base:>+8.2f}")
    return "\n".join(lines)


def write_report(report: EvalReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``per_image.csv`` and ``summary.json`` (atomically) into ``out_dir``.

    The summary counts the skipped pairs (``skipped``) and lists them with their reasons
    (``skipped_pairs``), so that scores over part of a dataset say so.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "per_image.csv", out / "summary.json"
    with atomic_write(csv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(report.rows[0]))
        writer.writeheader()
        writer.writerows(report.rows)
    summary = {
        **report.info,
        "means": {m: asdict(s) for m, s in report.means.items()},
        "gain_psnr_db": report.gain_db if {"input", "model"} <= report.means.keys() else None,
        "skipped": len(report.skipped),
        "skipped_pairs": report.skipped,
    }
    with atomic_write(json_path) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2) + "\n")
    return csv_path, json_path
