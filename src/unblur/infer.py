"""Sharpening images with a trained model: loading weights, tiling, precision, files in and out.

:class:`Sharpener` owns everything between a float image and the network (precision, layout, tiles),
so the command line, the evaluator and the benchmark all run a model the same way.
:func:`sharpen_files` is ``unblur sharpen``: it reads each input, sharpens it, writes the output with
the input's size, format and name, and reports broken files as one line each without stopping.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn
from tqdm import tqdm

from unblur.device import ExecutionPlan, inference_plan
from unblur.io import WRITE_SUFFIXES, ImageError, list_images, read_image, write_image
from unblur.models import Weights, load_weights
from unblur.preflight import OutputError, check_free_space, ensure_writable_folder

__all__ = [
    "SharpenReport",
    "Sharpener",
    "default_weights_path",
    "find_target",
    "load_sharpener",
    "output_paths",
    "sharpen_files",
    "side_by_side",
]

GOPRO_INPUT_DIRS = ("blur_gamma", "blur")
_INPUT_DIR_NAMES = frozenset({*GOPRO_INPUT_DIRS, "input"})


def default_weights_path() -> Path | None:
    """The pretrained weights bundled in the package, or ``None`` if this build ships none."""
    folder = resources.files("unblur") / "weights"
    for name in ("default.pth",):
        candidate = folder / name
        if candidate.is_file():
            return Path(str(candidate))
    return None


NO_WEIGHTS_MESSAGE = (
    "no pretrained weights are bundled with this version of unblur; train a model first, e.g. "
    "`unblur demo` (minutes, CPU) or `unblur train --data GOPRO_ROOT --out runs/mine`, then pass "
    "`--weights runs/mine/sharpen_model.pth`"
)


class Sharpener:
    """Run a model on float RGB images ``(3, H, W)`` in ``[0, 1]``, whole or in tiles.

    Tiling: the image is cut into ``tile × tile`` cores; each is run with at least ``overlap`` pixels of
    real context on every side and only its core is kept, so with ``overlap`` at least the network's
    receptive-field radius the result equals the untiled one. The context window of each tile starts on
    a multiple of :attr:`ALIGN` pixels of the photo, so models that work on a coarser grid (UnblurNet
    folds 2×2 pixels and downsamples to 1/8) see the same grid in a tile as in the whole photo; with a
    receptive field wider than the overlap (UnblurNet's), only the far context is cut and the seams stay
    below one 8-bit level at the default 32 px (tests/test_fastpaths.py). A model that computes
    something over a wider window sets ``tile_overlap`` (UnblurNet in linear light: the local mean of
    its correction and what the U-Net sees around it, 128 px for the bundled weights), and the overlap is raised to it;
    ``min_overlap`` does the same for a ``runner`` without a model (read from an ONNX file's metadata).
    Tiles stream through the network one by one, so memory is bounded by the tile size, not the photo size.

    Strength: a model whose correction scale depends on the frame's size (UnblurNet's ``strength_for``,
    from a ``strength_by_size`` table) gets the whole photo's strength with every tile, not each tile's;
    ``strength_for`` supplies that function for a ``runner`` without a model (an ``.onnx`` file's table).
    The strength of UnblurNet's coarse pass (``coarse_for``, from ``coarse_by_size``) goes the same way;
    its 2×2 average is why tiles start on multiples of 16 px, not 8.

    Engines: with ``plan.backend == "onnxruntime"`` the model is exported to ONNX in memory on first use
    (checked against PyTorch, cached per process) and run by :class:`unblur.export.OnnxRunner`; if that
    export fails, the Sharpener warns once and runs PyTorch float32 channels_last instead. ``runner``
    supplies a ready engine (a callable batch → batch, e.g. an ``OnnxRunner`` of an ``.onnx`` file, with
    ``model=None``).
    """

    ALIGN = 16

    def __init__(self, model: nn.Module | None, plan: ExecutionPlan, tile: int = 0, overlap: int = 32,
                 runner: Callable[..., torch.Tensor] | None = None, min_overlap: int = 0,
                 strength_for: Callable[[int, int], float] | None = None,
                 coarse_for: Callable[[int, int], float] | None = None) -> None:
        if tile < 0 or overlap < 0:
            raise ValueError("tile and overlap must be >= 0")
        if model is None and runner is None:
            raise ValueError("a Sharpener needs a model or a runner")
        self.plan = plan
        self.tile = tile
        self.overlap = max(overlap, min_overlap, int(getattr(model, "tile_overlap", 0)))
        self._runner = runner
        self._plain_runner: Callable[..., torch.Tensor] | None = None
        self.strength_for = strength_for or getattr(model, "strength_for", None)
        # only for models that have a coarse pass: a graph without the input must not be fed one
        self.coarse_for = coarse_for or (model.coarse_for if getattr(model, "coarse_by_size", None) else None)
        if model is not None:
            model = model.eval()
            if plan.backend == "torch":
                model = model.to(plan.device)
                if plan.channels_last:
                    model = model.to(memory_format=torch.channels_last)
        self.model = model

    def _engine(self) -> Callable[..., torch.Tensor] | None:
        """The onnxruntime runner for an ``onnxruntime`` plan (made on first use), else ``None``."""
        if self.plan.backend != "onnxruntime":
            return None
        if self._runner is None:
            from unblur.export import OnnxRunner, cached_onnx_bytes

            try:
                # tiling is for bounded memory: no arena holding every tile shape's buffers (OnnxRunner doc)
                self._runner = OnnxRunner(cached_onnx_bytes(self.model), self.plan.device,
                                          memory_arena=self.tile == 0)
            except Exception as exc:  # any export failure: fall back to PyTorch rather than fail the photo
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                warnings.warn(f"onnxruntime backend unavailable ({reason[:200]}); running PyTorch float32 instead",
                              RuntimeWarning, stacklevel=3)
                self.plan = replace(self.plan, backend="torch", autocast_dtype=None, channels_last=True)
                self.model = self.model.to(self.plan.device, memory_format=torch.channels_last)
                return None
        return self._runner

    def _plain_engine(self) -> Callable[..., torch.Tensor] | None:
        """For frames whose coarse pass has strength 0: the onnxruntime runner of the model without the
        pass (made on first use), since a graph with a ``coarse`` input runs the pass even when fed 0
        (unblur.export); ``None`` where there is no such model (an ``.onnx`` file, the PyTorch backend) or
        its export fails (then :meth:`_engine` decides)."""
        if self.plan.backend != "onnxruntime" or getattr(self.model, "coarse_by_size", None) is None:
            return None
        if self._plain_runner is None:
            from unblur.export import OnnxRunner, cached_onnx_bytes

            plain = copy.copy(self.model)  # the same tensors; only the setting differs
            plain.coarse_by_size = None
            try:
                self._plain_runner = OnnxRunner(cached_onnx_bytes(plain), self.plan.device,
                                                memory_arena=self.tile == 0)
            except Exception:  # _engine tries the full model, and warns if that fails too
                return None
        return self._plain_runner

    @torch.inference_mode()
    def run_batch(self, x: torch.Tensor, strength: float | None = None, coarse: float | None = None) -> torch.Tensor:
        """Sharpen a batch ``(N, 3, H, W)`` already on the device; returns float32 in ``[0, 1]``
        (on the device for the PyTorch backend, on the CPU for onnxruntime). ``strength`` and ``coarse``
        override those the model would take for this batch's size (see the class doc)."""
        kwargs = {k: v for k, v in (("strength", strength), ("coarse", coarse)) if v is not None}
        engine = self._plain_engine() if coarse == 0.0 else None
        if engine is not None:
            del kwargs["coarse"]
        else:
            engine = self._engine()
        if engine is not None:
            return engine(x.float(), **kwargs).clamp_(0.0, 1.0)
        x = x.to(self.plan.device, torch.float32)
        if self.plan.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.plan.autocast():
            y = self.model(x, **kwargs)
        return y.float().clamp(0.0, 1.0).contiguous()  # not in place: y may be x, a view of the caller's image

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Sharpen one image ``(3, H, W)``; the result is on the CPU, float32, same size."""
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected an RGB image (3, H, W), got shape {tuple(image.shape)}")
        _, h, w = image.shape
        strength = self.strength_for(h, w) if self.strength_for is not None else None
        coarse = self.coarse_for(h, w) if self.coarse_for is not None else None
        if self.tile <= 0 or (h <= self.tile and w <= self.tile):
            return self.run_batch(image.unsqueeze(0), strength, coarse)[0].cpu()
        out = torch.empty(3, h, w, dtype=torch.float32)
        t, o, a = self.tile, self.overlap, self.ALIGN
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                ya, xa = max(0, (y0 - o) // a * a), max(0, (x0 - o) // a * a)  # on the model's grid
                yb, xb = min(h, y1 + o), min(w, x1 + o)
                result = self.run_batch(image[:, ya:yb, xa:xb].unsqueeze(0), strength, coarse)[0]
                out[:, y0:y1, x0:x1] = result[:, y0 - ya : y1 - ya, x0 - xa : x1 - xa].cpu()
        return out


def load_sharpener(weights: str | Path | None = None, model: str | None = None, device: str = "auto",
                   fp32: bool = False, tile: int = 0, overlap: int = 32,
                   backend: str = "auto", strength: float | None = None) -> tuple[Sharpener, Weights]:
    """Load weights (the bundled default when ``weights`` is None) and wrap them in a :class:`Sharpener`
    running the fastest path for ``device`` (see :func:`unblur.device.inference_plan`); ``strength``
    replaces the weights' own (see :meth:`unblur.models.Weights.with_strength`)."""
    path = Path(weights) if weights is not None else default_weights_path()
    if path is None:
        raise FileNotFoundError(NO_WEIGHTS_MESSAGE)
    loaded = load_weights(path, model)
    if strength is not None:
        loaded = loaded.with_strength(strength)
    return Sharpener(loaded.build(), inference_plan(device, fp32=fp32, backend=backend), tile, overlap), loaded


def find_target(path: Path, target_dir: Path | None = None) -> Path | None:
    """The sharp target of ``path`` if one can be found: ``target_dir/<name>``, or the GoPro sibling
    ``.../SEQ/sharp/<name>`` of ``.../SEQ/{blur,blur_gamma}/<name>``."""
    if target_dir is not None:
        candidate = target_dir / path.name
        return candidate if candidate.is_file() else None
    if path.parent.name in GOPRO_INPUT_DIRS:
        candidate = path.parent.parent / "sharp" / path.name
        if candidate.is_file():
            return candidate
    if path.parent.name == "input":  # the flattened NAFNet/MPRNet layout
        candidate = path.parent.parent / "target" / path.name
        if candidate.is_file():
            return candidate
    return None


def output_paths(inputs: Sequence[Path], out_dir: Path, suffix: str = "", ext: str | None = None) -> list[Path]:
    """Output path for each input: same name (plus ``suffix``) and format, in ``out_dir``.

    Inputs from different folders that share a name (every GoPro sequence has ``000001.png``) get their
    parent folders prefixed until the names are unique. Formats that cannot be written (BMP) become PNG.
    Raises if an output would be one of the inputs, also under another name (case, links).
    """
    if ext is not None:
        ext = "." + ext.lower().lstrip(".")
        if ext not in WRITE_SUFFIXES:
            choices = ", ".join(sorted(WRITE_SUFFIXES))
            raise ValueError(f"--ext {ext}: cannot write that format; choose one of {choices}")

    def folders(p: Path) -> list[str]:  # parent folders that tell inputs apart (not blur/, input/, ...)
        return [q for q in p.parent.parts if q not in ("/", "") and q not in _INPUT_DIR_NAMES]

    def name_for(p: Path, depth: int) -> str:
        parts = folders(p)[-depth:] if depth else []
        out_ext = ext or (p.suffix.lower() if p.suffix.lower() in WRITE_SUFFIXES else ".png")
        return "_".join([*parts, p.stem + suffix]) + out_ext

    depths = [0] * len(inputs)
    while True:
        names = [name_for(p, d) for p, d in zip(inputs, depths, strict=True)]
        seen: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            seen.setdefault(n, []).append(i)
        clashes = [idx for idx in seen.values() if len(idx) > 1]
        if not clashes:
            break
        grew = False
        for idx in clashes:
            for i in idx:
                if depths[i] < len(folders(inputs[i])):
                    depths[i] += 1
                    grew = True
        if not grew:
            raise ValueError(f"two inputs would be written to the same output {names[clashes[0][0]]!r}")
    outputs = [out_dir / n for n in names]
    resolved_inputs = {p.resolve() for p in inputs}
    # The same file can hide behind another name: a case-insensitive file system (macOS, Windows) where
    # photo.png is PHOTO.PNG, or a link. Existing outputs are compared by identity (device and inode) too.
    input_ids = set()
    for p in inputs:
        with contextlib.suppress(OSError):
            info = p.stat()
            input_ids.add((info.st_dev, info.st_ino))
    for o in outputs:
        same = o.resolve() in resolved_inputs
        if not same:
            with contextlib.suppress(OSError):
                info = o.stat()
                same = (info.st_dev, info.st_ino) in input_ids
        if same:
            raise ValueError(f"{o}: refusing to overwrite an input; choose another --out or a --suffix")
    return outputs


_LABEL_HEIGHT = 28


def side_by_side(panels: Sequence[tuple[str, torch.Tensor]], gap: int = 6) -> torch.Tensor:
    """Panels ``(label, (3, H, W))`` of one size laid out left to right with a label strip on top."""
    h, w = panels[0][1].shape[-2:]
    for label, img in panels:
        if img.shape[-2:] != (h, w):
            raise ValueError(f"panel {label!r} is {tuple(img.shape[-2:])}, expected {(h, w)}")
    width = len(panels) * w + (len(panels) - 1) * gap
    canvas = torch.ones(3, h + _LABEL_HEIGHT, width)
    for i, (_, img) in enumerate(panels):
        x = i * (w + gap)
        canvas[:, _LABEL_HEIGHT:, x : x + w] = img.clamp(0, 1)
    strip = Image.new("RGB", (width, _LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=18)
    for i, (label, _) in enumerate(panels):
        draw.text((i * (w + gap) + 6, 4), label, fill="black", font=font)
    strip_t = torch.frombuffer(bytearray(strip.tobytes()), dtype=torch.uint8).view(_LABEL_HEIGHT, width, 3)
    canvas[:, :_LABEL_HEIGHT] = strip_t.permute(2, 0, 1).float() / 255.0
    return canvas


# A full or read-only disk fails every later file as well: stop instead of skipping them one by one.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _skip_line(src: Path, reason: str) -> str:
    return f"unblur: skipped {src}: {reason}" if str(src) not in reason else f"unblur: skipped: {reason}"


@dataclass
class SharpenReport:
    """What :func:`sharpen_files` did: outputs written, comparisons written, inputs that failed."""

    written: list[Path] = field(default_factory=list)
    comparisons: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _list_inputs(inputs: Sequence[str | Path], report: SharpenReport, warn: Callable[[str], None]) -> list[Path]:
    """The images to sharpen: a missing file or an empty glob among many is one failed input (one line),
    not the end of the batch. Raises only when nothing at all is left to sharpen."""
    unmatched: list[tuple[str, str]] = []
    paths = list_images(inputs, unmatched=unmatched)
    for item, reason in unmatched:
        report.failed.append((Path(item), reason))
        warn(f"unblur: skipped: {reason}")
    if not paths and report.failed:
        raise ImageError(f"nothing to sharpen: {report.failed[0][1]}"
                         + (f" (and {len(report.failed) - 1} more)" if len(report.failed) > 1 else ""))
    return paths


def sharpen_files(
    inputs: Sequence[str | Path],
    sharpener: Sharpener,
    out_dir: str | Path = "outputs_sharpen",
    suffix: str = "",
    ext: str | None = None,
    compare: bool = False,
    target_dir: str | Path | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> SharpenReport:
    """Sharpen every image in ``inputs`` (files, folders, globs) into ``out_dir``.

    Each output keeps its input's size, format, bit depth and alpha channel. When the sharp target is
    known (``target_dir`` or the GoPro layout) or ``compare`` is set, a labelled
    ``Input | Output [| Target]`` comparison is also written as ``<name>_compare.png``. A file that cannot
    be read or written is reported through ``warn`` (one line) and the batch goes on, except when the
    disk is full or read-only: then every later file would fail too, so it stops with an error that
    says how far it got. Before the first image, ``out_dir`` is proved writable and checked for room.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr))
    report = SharpenReport()
    paths = _list_inputs(inputs, report, warn)
    out_dir = Path(out_dir)
    outputs = output_paths(paths, out_dir, suffix, ext)
    tdir = Path(target_dir) if target_dir is not None else None
    if tdir is not None and not tdir.is_dir():
        raise FileNotFoundError(f"{tdir}: target folder not found (--target expects a folder of sharp images)")
    ensure_writable_folder(out_dir, "output folder")
    input_bytes = 0
    for p in paths:
        with contextlib.suppress(OSError):  # a missing input is reported when it is read
            input_bytes += p.stat().st_size
    check_free_space(out_dir, input_bytes, f"sharpening {len(paths)} image(s)")
    bar = tqdm(list(zip(paths, outputs, strict=True)), desc="sharpen", unit="img",
               disable=not progress or len(paths) < 2)
    for src, dst in bar:
        try:
            picture = read_image(src)
            result = sharpener(picture.rgb)
            write_image(dst, result, alpha=picture.alpha, bit_depth=picture.bit_depth,
                        icc_profile=picture.icc_profile)
            report.written.append(dst)
            target_path = find_target(src, tdir)
            if target_path is not None or compare:
                panels = [("Input", picture.rgb), ("Output", result)]
                if target_path is not None:
                    target = read_image(target_path).rgb
                    if target.shape == picture.rgb.shape:
                        panels.append(("Target", target))
                    else:
                        warn(f"unblur: {target_path}: target size {tuple(target.shape[1:])} differs from "
                             f"{src}; comparison without target")
                cmp_path = dst.with_name(dst.stem + "_compare.png")
                write_image(cmp_path, side_by_side(panels))
                report.comparisons.append(cmp_path)
        except OSError as exc:
            if exc.errno not in _DISK_ERRNOS:
                report.failed.append((src, _one_line(exc)))
                warn(_skip_line(src, _one_line(exc)))
                continue
            raise OutputError(
                f"{_one_line(exc)}; stopped after {len(report.written)} of {len(paths)} image(s): free some "
                "space or choose another --out"
            ) from None
        except (ImageError, ValueError) as exc:
            report.failed.append((src, _one_line(exc)))
            warn(_skip_line(src, _one_line(exc)))
        except torch.OutOfMemoryError:
            report.failed.append((src, "out of memory"))
            warn(f"unblur: skipped {src}: out of memory; try --tile 512 (or smaller) or --device cpu")
    return report
