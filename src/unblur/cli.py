"""The ``unblur`` command line. It only parses arguments and calls library functions.

Every subcommand's work is a plain Python call in the module named in its handler; errors that a user
can fix are printed as one line (``unblur: error: ...``), and so are Python warnings (``unblur: warning:
...``), unless ``--debug`` asks for tracebacks. Commands that go through many files (sharpen, eval,
train, synth) report each file they skip in one line, carry on, and exit with status 1 at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unblur import __version__
from unblur.device import DEVICE_CHOICES
from unblur.losses import PIXEL_LOSSES

if TYPE_CHECKING:
    from unblur.train import TrainConfig

__all__ = ["build_parser", "main"]


def _number(convert: Callable[[str], float], ok: Callable[[float], bool], expected: str) -> Callable[[str], Any]:
    """An argparse ``type`` that converts with ``convert`` and accepts values for which ``ok`` holds,
    saying what was ``expected`` otherwise (non-numbers, NaN and infinities included)."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    return parse


_positive_int = _number(int, lambda v: v > 0, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_any_int = _number(int, lambda v: True, "an integer")
_positive_float = _number(float, lambda v: v > 0, "a number > 0")
_non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
_unit_float = _number(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
_decay = _number(float, lambda v: 0.0 < v < 1.0, "a decay in (0, 1) such as 0.999")
_strength = _number(float, lambda v: 0 <= v <= 2, "a number from 0 to 2")
STRENGTH_HELP = ("scale of the model's correction, from 0 (the input unchanged) to 2, at every image size (default: "
                 "the weights' own, which may depend on the image's size; 1 if none; unblurnet only)")


def _size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``720x1280``) to ``(H, W)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 720x1280, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"expected positive HxW, got {text!r}")
    return h, w


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default="auto", choices=DEVICE_CHOICES,
        help="where to compute: auto picks CUDA, then Apple MPS, then the CPU (default: auto)",
    )


def _add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fp32", action="store_true",
        help="disable the fast reduced-precision path and compute in float32",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the README's usage)."""
    parser = argparse.ArgumentParser(
        prog="unblur",
        description="Sharpen motion-blurred photos with a small, fast CNN, and train/evaluate the students "
        "that do it on GoPro-style data.",
    )
    parser.add_argument("--version", action="version", version=f"unblur {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # sharpen ----------------------------------------------------------------------------------------
    p = sub.add_parser(
        "sharpen", help="sharpen images (files, folders, globs)",
        description="Sharpen images. Outputs keep each input's size, format and name (plus --suffix) and "
        "go to --out; an input is never overwritten. When the sharp target of an input is known (GoPro "
        "layout or --target), a labelled Input | Output | Target comparison is written too.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--weights", type=Path, help="weights file, or a run's checkpoint.pt for its latest (EMA) weights "
                   "(default: the bundled pretrained model)")
    p.add_argument("--out", type=Path, default=Path("outputs_sharpen"), help="output folder")
    p.add_argument("--suffix", default="", help="text added to each output file name before the extension")
    p.add_argument("--ext", help="output format by extension (png, jpg, webp, tif); default: the input's")
    p.add_argument("--compare", action="store_true",
                   help="write Input | Output [| Target] side-by-side comparisons even without a target")
    p.add_argument("--target", type=Path, help="folder holding sharp targets with the inputs' file names")
    p.add_argument("--tile", type=_non_negative_int, default=0,
                   help="process in tiles of N pixels to bound memory (0: whole image)")
    p.add_argument("--tile-overlap", type=_non_negative_int, default=32, help="overlap between tiles in pixels")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                   help="inference engine: auto picks the fastest measured one (onnxruntime on CPUs without native "
                   "bf16), torch forces PyTorch, onnx runs onnxruntime (--weights may then be an .onnx file from "
                   "`unblur export`)")
    p.add_argument("--strength", type=_strength, help=STRENGTH_HELP)
    _add_precision(p)
    _add_device(p)
    p.set_defaults(handler=_cmd_sharpen)

    # train ------------------------------------------------------------------------------------------
    p = sub.add_parser(
        "train", help="train a student on paired blurry/sharp images",
        description="Train a student (the seed's recipe by default: studentcnn_v3, blur_gamma input, 30 "
        "epochs, batch 2, Adam lr 1e-4, alpha 0.8, edge weight 1.0, 256 px crops). Runs on several GPUs "
        "under `torchrun --nproc_per_node=N unblur train ...`.",
    )
    p.add_argument("--data", type=Path, help="dataset root (GoPro layout, input/target folders, ...)")
    p.add_argument("--out", type=Path, help="run folder for weights, checkpoints, metrics (default: runs/NAME)")
    p.add_argument("--config", type=Path, help="TOML or YAML file with any of these options")
    p.add_argument("--model", help="student architecture (default: studentcnn_v3)")
    p.add_argument("--input", dest="input_kind", choices=("blur_gamma", "blur"),
                   help="GoPro input folder (default: blur_gamma)")
    p.add_argument("--epochs", type=_positive_int, help="epochs (default: 30)")
    p.add_argument("--batch-size", type=_positive_int, help="images per step per process (default: 2)")
    p.add_argument("--lr", type=_positive_float, help="Adam learning rate (default: 1e-4)")
    p.add_argument("--alpha", type=_unit_float, help="MSE weight against 1-MS-SSIM (default: 0.8)")
    p.add_argument("--edge-weight", type=_non_negative_float, help="weight of the Sobel edge L1 term (default: 1.0)")
    p.add_argument("--pixel-loss", choices=PIXEL_LOSSES,
                   help="the alpha term: the seed's MSE, or -PSNR per image (log MSE; default: mse)")
    p.add_argument("--psnr-knee", type=_positive_float, metavar="DB",
                   help="with --pixel-loss psnr: images sharper than about DB are weighted as under MSE, "
                   "blurrier ones as under -PSNR (the loss is log(MSE + 10^(-DB/10)); default: 80, plain -PSNR)")
    p.add_argument("--crop", type=_positive_int, help="training crop size in pixels (default: 256)")
    p.add_argument("--workers", type=_non_negative_int, help="DataLoader worker processes")
    p.add_argument("--seed", type=_non_negative_int, help="random seed (default: 0)")
    p.add_argument("--max-steps", type=_positive_int, help="stop after this many optimizer steps")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--ema", type=_decay, metavar="DECAY", help="keep an EMA of the weights (e.g. 0.999)")
    p.add_argument("--cosine", action="store_true", help="cosine learning-rate schedule to zero")
    p.add_argument("--warmup", type=_non_negative_int, metavar="STEPS",
                   help="raise the learning rate linearly over this many first steps (default: 0)")
    p.add_argument("--repeat", type=_positive_int, metavar="N",
                   help="random crops of every training pair per epoch (default: 1)")
    p.add_argument("--shuffle-colors", action="store_true",
                   help="also permute each training crop's colour channels (input and target alike)")
    p.add_argument("--mix-colors", action="store_true",
                   help="also desaturate and tint each training crop at random, in linear light (both alike)")
    p.add_argument("--val-limit", type=_non_negative_int, metavar="N",
                   help="validate on at most N full frames, evenly spaced (default: 32; 0: all)")
    p.add_argument("--val-extra", metavar="D",
                   help="a second validation set: D's test split (e.g. the held-out photos at a smaller frame "
                   "size); the weights kept are then those with the best mean gain over the input across both")
    p.add_argument("--coarse", type=_strength, metavar="C",
                   help="unblurnet: train through its coarse pass (the network run first on the crop at half size) "
                        "at strength C; scripts/pick_coarse.py then picks the strengths per frame size")
    p.add_argument("--coarse-min", type=_strength, metavar="C0",
                   help="with --coarse C: draw each crop's coarse strength uniformly from [C0, C] instead, since the "
                        "picked strengths differ by frame size (validation keeps C)")
    p.add_argument("--accum", type=_positive_int, help="gradient accumulation steps (default: 1)")
    p.add_argument("--clip", type=_positive_float, help="clip the gradient norm to this value")
    p.add_argument("--init", type=Path, metavar="W",
                   help="start from these weights (a weights file, or another run's checkpoint.pt: its EMA), "
                   "with their model settings unless the run sets model_kwargs")
    p.add_argument("--teacher", type=Path, help="weights of a larger trained model to distil from")
    p.add_argument("--distill-weight", type=_non_negative_float,
                   help="weight of the same loss against the teacher's output (default: 1.0, as the sharp frame)")
    p.add_argument("--cache", action="store_true", help="keep decoded images in memory")
    p.add_argument("--nan", dest="nan_policy", choices=("skip", "stop"),
                   help="on a NaN/Inf loss: skip the step or stop (default: skip)")
    _add_precision(p)
    _add_device(p)
    p.set_defaults(handler=_cmd_train)

    # eval -------------------------------------------------------------------------------------------
    p = sub.add_parser(
        "eval", help="score a model against the blurry input and an unsharp mask",
        description="Per image and on average: combined loss, PSNR and SSIM of the model output, the "
        "untouched blurry input and an unsharp mask. Prints a table, writes per_image.csv and summary.json.",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset root")
    p.add_argument("--weights", type=Path, help="weights file, or a run's checkpoint.pt for its latest (EMA) weights "
                   "(default: the bundled pretrained model)")
    p.add_argument("--split", default="test", help="split folder to score (default: test)")
    p.add_argument("--input", dest="input_kind", choices=("blur_gamma", "blur"), default="blur_gamma",
                   help="GoPro input folder (default: blur_gamma)")
    p.add_argument("--out", type=Path, help="folder for per_image.csv and summary.json")
    p.add_argument("--save-images", action="store_true", help="also save the model outputs")
    p.add_argument("--tile", type=_non_negative_int, default=0, help="tile size in pixels (0: whole image)")
    p.add_argument("--strength", type=_strength, help=STRENGTH_HELP)
    _add_precision(p)
    _add_device(p)
    p.set_defaults(handler=_cmd_eval)

    # synth ------------------------------------------------------------------------------------------
    p = sub.add_parser(
        "synth", help="make GoPro-style blurry/sharp pairs from sharp photos",
        description="Render GoPro-style pairs: a burst of 7-13 sub-frames along a smooth random camera "
        "path, averaged as `blur` (encoded values) and `blur_gamma` (linear light), with the middle "
        "sub-frame as `sharp`, written as OUT/SPLIT/GOPRxxxx_xx_xx/{blur,blur_gamma,sharp}/NNNNNN.png.",
    )
    p.add_argument("sources", nargs="+", metavar="SRC", help="sharp photos: files, folders or globs")
    p.add_argument("--out", type=Path, required=True, help="dataset root to write")
    p.add_argument("--split", choices=("train", "test"), default="train", help="split folder (default: train)")
    p.add_argument("--pairs-per-image", type=_positive_int, default=4, help="pairs per photo (default: 4)")
    p.add_argument("--size", type=_size, default=(720, 1280), help="frame size HxW (default: 720x1280)")
    p.add_argument("--seed", type=_any_int, default=0, help="random seed; same seed, same pairs (default: 0)")
    p.add_argument("--no-object", action="store_true", help="never add an independently moving object")
    p.add_argument(
        "--pair-step", type=_positive_int, default=1, metavar="N",
        help="render only every Nth pair (0, N, 2N, ...) of --pairs-per-image, with the names and bytes the "
        "full set gives them: a quick subset comparable with the full set (default: 1, all)",
    )
    p.add_argument(
        "--device", default="cpu", choices=DEVICE_CHOICES,
        help="where to render (default: cpu, the reference bytes); a GPU takes the rendering (about a "
        "second of one CPU core per 720p pair) off the CPU, leaving PNG encoding as the work, and may put "
        "a pixel one 8-bit level away from the CPU's",
    )
    p.set_defaults(handler=_cmd_synth)

    # demo -------------------------------------------------------------------------------------------
    p = sub.add_parser(
        "demo", help="the whole workflow offline on the bundled photos, in a few minutes on a CPU",
        description="Synthesize a small GoPro-style set from the bundled photos, train briefly, evaluate "
        "against the blurry input and an unsharp mask, and write comparisons and the loss curve.",
    )
    p.add_argument("--out", type=Path, default=Path("outputs_sharpen"), help="output folder")
    p.add_argument("--steps", type=_positive_int, help="training steps (default: sized for a few minutes)")
    _add_device(p)
    p.set_defaults(handler=_cmd_demo)

    # bench ------------------------------------------------------------------------------------------
    p = sub.add_parser(
        "bench", help="measure inference and training speed of each execution path",
        description="Times each available path (eager fp32, channels_last, bf16/fp16 autocast, "
        "torch.compile, CUDA graphs, onnxruntime) and a training step with the real loss: ms/frame, "
        "frames/s, TFLOP/s against a matmul ceiling measured in the same run, peak memory.",
    )
    p.add_argument("--model", default="studentcnn_v3", help="model to time (default: studentcnn_v3)")
    p.add_argument("--weights", type=Path,
                   help="time the architecture stored in this weights file (its model and settings, e.g. "
                   "widths), instead of --model's defaults; the values timed are random either way")
    p.add_argument("--size", type=_size, default=None, help="frame size HxW (default: 720x1280; 128x128 with --quick)")
    p.add_argument("--batch", type=_positive_int, default=1, help="frames per call (default: 1)")
    p.add_argument("--quick", action="store_true", help="small size and few repeats, for CI")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    _add_device(p)
    p.set_defaults(handler=_cmd_bench)

    # export -----------------------------------------------------------------------------------------
    p = sub.add_parser(
        "export", help="export weights to ONNX (dynamic height and width)",
        description="Write one ONNX file with dynamic batch, height and width, checked against PyTorch.",
    )
    p.add_argument("--weights", type=Path, help="weights file, or a run's checkpoint.pt for its latest (EMA) weights "
                   "(default: the bundled pretrained model)")
    p.add_argument("--model", help="architecture, if the weights file does not record it")
    p.add_argument("--onnx", type=Path, required=True, help="output .onnx path")
    p.add_argument("--strength", type=_strength, help=STRENGTH_HELP)
    p.set_defaults(handler=_cmd_export)

    return parser


# Handlers: import lazily so `unblur --help` stays fast. ------------------------------------------------


def _warn(line: str) -> None:
    """One line on stderr, on a line of its own even while a progress bar is drawn there."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def _cmd_sharpen(args: argparse.Namespace) -> int:
    from unblur.infer import load_sharpener, sharpen_files

    if args.backend == "onnx":
        from unblur.export import load_onnx_sharpener

        sharpener, model_name = load_onnx_sharpener(args.weights, device=args.device, tile=args.tile,
                                                    overlap=args.tile_overlap, strength=args.strength)
    else:
        sharpener, weights = load_sharpener(args.weights, device=args.device, fp32=args.fp32, tile=args.tile,
                                            overlap=args.tile_overlap, backend=args.backend, strength=args.strength)
        model_name = weights.model
    report = sharpen_files(args.inputs, sharpener, args.out, suffix=args.suffix, ext=args.ext,
                           compare=args.compare, target_dir=args.target, warn=_warn)
    print(f"sharpened {len(report.written)} image(s) with {model_name} ({sharpener.plan.describe()}) "
          f"into {args.out}" + (f"; {len(report.comparisons)} comparison(s)" if report.comparisons else ""))
    if report.failed:
        print(f"{len(report.failed)} input(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0


_TRAIN_FLAGS = ("data", "out", "model", "input_kind", "epochs", "batch_size", "lr", "alpha", "edge_weight",
                "crop", "workers", "seed", "max_steps", "ema", "warmup", "repeat", "val_limit", "accum", "clip",
                "init", "teacher", "distill_weight", "nan_policy", "pixel_loss", "psnr_knee", "val_extra", "coarse",
                "coarse_min")


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults < the run's saved config (with --resume) < --config file < flags given on the command line."""
    from unblur.train import CHECKPOINT_NAME, CONFIG_NAME, TrainConfig, load_config

    settings: dict[str, object] = {}
    if args.resume:
        if args.out is None:
            raise ValueError("--resume needs --out RUN_DIR, the folder of the run to continue")
        saved = Path(args.out) / CONFIG_NAME
        if saved.is_file():
            settings.update(load_config(saved))  # checked like any config file: a damaged one gets one line
        elif not (Path(args.out) / CHECKPOINT_NAME).is_file():
            raise FileNotFoundError(
                f"{args.out}: no run to resume there (no {CHECKPOINT_NAME} or {CONFIG_NAME}); was --out the run folder?"
            )
    if args.config is not None:
        settings.update(load_config(args.config))
    for name in _TRAIN_FLAGS:
        value = getattr(args, name)
        if value is not None:
            settings[name] = str(value) if isinstance(value, Path) else value
    for flag in ("fp32", "cosine", "cache", "shuffle_colors", "mix_colors"):
        if getattr(args, flag):
            settings[flag] = True
    if args.device != "auto":
        settings["device"] = args.device
    return TrainConfig(**settings)


def _cmd_train(args: argparse.Namespace) -> int:
    from unblur.train import train

    cfg = train_config_from_args(args)
    result = train(cfg, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 reports
        print(f"done: {result.steps} steps, validation PSNR of the kept weights {result.best_psnr:.2f} dB; weights in "
              f"{result.weights}; metrics, loss curve and checkpoint in {result.out}")
    if result.skipped:
        print(f"unblur: {len(result.skipped)} pair(s) were skipped as unusable (listed above); the run used the "
              "others", file=sys.stderr)
        return 1
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from unblur.data import find_pairs
    from unblur.evaluate import evaluate, format_table, write_report
    from unblur.infer import load_sharpener
    from unblur.preflight import ensure_writable_folder

    pairs = find_pairs(args.data, args.split, args.input_kind)
    out = args.out or Path("outputs_sharpen") / "eval"
    ensure_writable_folder(out, "eval output folder")  # before scoring, not after
    sharpener, weights = load_sharpener(args.weights, device=args.device, fp32=args.fp32, tile=args.tile,
                                        strength=args.strength)
    report = evaluate(sharpener, pairs, save_dir=out / "images" if args.save_images else None, warn=_warn)
    report.info.update(data=str(args.data), split=args.split, input_kind=args.input_kind, model=weights.model,
                       weights=str(args.weights) if args.weights else "bundled default")
    for key in ("strength", "strength_by_size"):
        if key in weights.model_kwargs:
            report.info[key] = weights.model_kwargs[key]
    scored = f"{len(report.rows)} of {len(pairs)}" if report.skipped else f"{len(pairs)}"
    print(f"{scored} pairs from {args.data} ({args.input_kind}), {sharpener.plan.describe()}")
    print(format_table(report, model_label=f"model ({weights.model})"))
    csv_path, json_path = write_report(report, out)
    print(f"per-image scores: {csv_path}; summary: {json_path}")
    if report.skipped:
        print(f"unblur: {len(report.skipped)} pair(s) skipped (listed above); the scores cover the other "
              f"{len(report.rows)}", file=sys.stderr)
        return 1
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from unblur.synth import synthesize

    report = synthesize(args.sources, out=args.out, split=args.split, pairs_per_image=args.pairs_per_image,
                        size=args.size, seed=args.seed, moving_object=not args.no_object, device=args.device,
                        pair_step=args.pair_step)
    print(report.format())
    if report.skipped:
        print(f"unblur: {len(report.skipped)} source(s) skipped (listed above)", file=sys.stderr)
        return 1
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from unblur.demo import run_demo

    run_demo(args.out, device=args.device, steps=args.steps)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    import json

    from unblur.bench import format_rows, machine_info, rows_to_json, run_bench
    from unblur.models import load_weights

    model, model_kwargs = args.model, None
    if args.weights is not None:
        weights = load_weights(args.weights)
        model, model_kwargs = weights.model, weights.model_kwargs
    rows = run_bench(model, device=args.device, size=args.size, batch=args.batch, quick=args.quick, log=_warn,
                     model_kwargs=model_kwargs)
    print(json.dumps(rows_to_json(rows), indent=1) if args.json else format_rows(rows, machine_info(args.device)))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from unblur.export import export_onnx, onnx_metadata

    out = export_onnx(args.weights, args.onnx, model=args.model, strength=args.strength)
    meta = onnx_metadata(out)
    print(f"wrote {out}: {meta.get('unblur.model')} with dynamic batch, height and width "
          f"({meta['unblur.exporter']} exporter); onnxruntime matches PyTorch within {meta['unblur.max_abs_diff']}")
    return 0


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Errors of these kinds carry messages written for the user; others get their type and a --debug hint.
_USER_ERRORS = (ValueError, OSError, RuntimeError, MemoryError)


def _error_line(exc: BaseException) -> str:
    """One line for ``unblur: error: ...``: the message's first line, never a traceback."""
    plain = _ANSI_ESCAPE.sub("", str(exc))  # some libraries colour their messages; a log file should not see that
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if not isinstance(exc, _USER_ERRORS) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return f"{text} (run with --debug for the traceback)"
    return text + (" (run with --debug for details)" if len(lines) > 1 else "")


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """``warnings.showwarning`` replacement: ``unblur: warning: ...`` in one line, no source location."""
    _warn(f"unblur: warning: {' '.join(str(message).split())}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unblur`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    with warnings.catch_warnings():  # restores the warning display on return (main is also called in-process)
        if not args.debug:
            warnings.showwarning = _warning_line
        try:
            return handler(args)
        except KeyboardInterrupt:
            print("unblur: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # one line for the user; the traceback only on request
            if args.debug:
                raise
            print(f"unblur: error: {_error_line(exc)}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
