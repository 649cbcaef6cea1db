"""unblur under bad input and faults: clear errors, nothing lost, nothing executed (issue 7).

Every command is driven through ``unblur.cli.main`` as a user would run it. Broken files must cost one
line each (naming the file) while the rest of the batch is processed and the exit status says something
failed; odd but valid files must come out right; outputs never land on inputs and are written
atomically; pickles that would run code are refused without running; a training process killed with
SIGKILL resumes. Files are generated here; models are tiny so the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import pathlib
import pickle
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from torch import nn

import unblur.preflight
from unblur.cli import main
from unblur.device import ExecutionPlan
from unblur.infer import Sharpener
from unblur.io import read_image, write_image
from unblur.losses import CombinedLoss
from unblur.models import ResidualStudentCNNv3, StudentCNNv3, load_weights, save_weights, weights_from_model
from unblur.train import load_config

SMALL = {"width": 4, "mid": 4}


# Helpers ----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Every tensor here is tiny: one intra-op thread is as fast as two on an idle machine, and many times
    faster on a busy one, where torch's threads spin waiting for each other's cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



@pytest.fixture(scope="module")
def identity_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained residual student: its head starts at zero, so it returns its input exactly.

    With it every output can be checked pixel for pixel against what the reader saw (orientation, alpha,
    16-bit values, first frame), and it runs in milliseconds.
    """
    path = tmp_path_factory.mktemp("weights") / "identity.pth"
    save_weights(path, weights_from_model(ResidualStudentCNNv3(**SMALL), "studentcnn_v3_residual", SMALL))
    return path


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or "probe" in p.name]


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width × height`` and holds no pixels: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def _textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _train_config(tmp_path: Path, data: Path, **extra: object) -> Path:
    """A TOML config for a tiny, fast training run (an 8-channel student on 32 px crops, on the CPU)."""
    settings_ = {"data": str(data), "crop": 32, "batch_size": 2, "workers": 0, "device": "cpu", "max_steps": 2,
                 "progress": False, **extra}
    lines = [f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in settings_.items()]
    path = tmp_path / "tiny.toml"
    path.write_text("\n".join(lines) + "\n[model_kwargs]\nwidth = 8\nmid = 8\n")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _ReplaceRecorder:
    """Wraps ``os.replace`` to record every destination: what io.atomic_write's final rename produces."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.targets: set[Path] = set()
        real = os.replace

        def replace(src: object, dst: object, *args: object, **kwargs: object) -> None:
            real(src, dst, *args, **kwargs)
            self.targets.add(Path(str(dst)).resolve())

        monkeypatch.setattr(os, "replace", replace)

    def assert_atomic(self, folder: Path) -> None:
        files = [p.resolve() for p in folder.rglob("*") if p.is_file()]
        assert files
        direct = [str(p) for p in files if p not in self.targets]
        assert not direct, f"written without io.atomic_write: {direct}"


# sharpen: a folder of every bad and odd file --------------------------------------------------------------


def _bad_and_odd_files(folder: Path) -> tuple[list[Path], dict[str, Path]]:
    """Broken files (each must be skipped with one line) and odd valid ones (each must come out right)."""
    folder.mkdir()
    good_png = io.BytesIO()
    Image.fromarray(_textured(24, 32)).save(good_png, format="PNG")
    good_jpg = io.BytesIO()
    Image.fromarray(_textured(24, 32)).save(good_jpg, format="JPEG")

    broken = [folder / name for name in ("empty.png", "truncated.png", "truncated.jpg", "notes.png", "bomb.png")]
    broken[0].write_bytes(b"")
    broken[1].write_bytes(good_png.getvalue()[: len(good_png.getvalue()) // 2])
    broken[2].write_bytes(good_jpg.getvalue()[: len(good_jpg.getvalue()) // 2])
    broken[3].write_text("these are my notes, not a picture\n")
    _png_header_only(broken[4], 100_000, 100_000)
    pcx = folder / "old.pcx"  # a format Pillow knows but unblur does not read; named explicitly below
    Image.fromarray(_textured(8, 8)).save(pcx, format="PCX")
    broken.append(pcx)

    odd: dict[str, Path] = {}
    odd["one"] = folder / "one.png"
    Image.new("RGB", (1, 1), (200, 100, 50)).save(odd["one"])
    odd["odd"] = folder / "odd.png"
    Image.fromarray(_textured(17, 31, 1)).save(odd["odd"])
    odd["gray"] = folder / "gray.png"
    Image.fromarray(_textured(9, 13, 2)[..., 0]).save(odd["gray"])
    odd["palette"] = folder / "palette.png"
    Image.fromarray(_textured(10, 12, 3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(odd["palette"])
    odd["rgba"] = folder / "rgba.png"
    rgba = _textured(12, 10, 4)
    alpha = np.tile(np.arange(0, 240, 24, dtype=np.uint8), (12, 1))[..., None]
    Image.fromarray(np.concatenate([rgba, alpha], axis=-1), "RGBA").save(odd["rgba"])
    odd["cmyk"] = folder / "cmyk.jpg"
    Image.new("CMYK", (16, 8), (0, 255, 255, 0)).save(odd["cmyk"], quality=95)
    odd["deep"] = folder / "deep.png"  # 16-bit colour
    deep = torch.from_numpy(np.random.default_rng(5).integers(0, 65536, (3, 7, 9)).astype(np.float32) / 65535)
    write_image(odd["deep"], deep, bit_depth=16)
    odd["deepgray"] = folder / "deepgray.png"  # 16-bit grayscale (Pillow I;16)
    Image.fromarray(np.random.default_rng(6).integers(0, 65536, (6, 5)).astype(np.uint16)).save(odd["deepgray"])
    odd["exif"] = folder / "exif.jpg"  # stored 40 wide, left red and right blue; orientation 6 turns it upright
    sideways = np.zeros((20, 40, 3), np.uint8)
    sideways[:, :20] = (255, 0, 0)
    sideways[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(sideways).save(odd["exif"], exif=exif, quality=95)
    odd["anim"] = folder / "anim.gif"  # named explicitly below (GIF is read, but not picked up from folders)
    frames = [Image.new("RGB", (6, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(odd["anim"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    return broken, odd


def test_sharpen_skips_broken_files_in_one_line_and_gets_odd_ones_right(identity_weights, tmp_path, capsys,
                                                                         monkeypatch):
    src = tmp_path / "in"
    broken, odd = _bad_and_odd_files(src)
    before = _digests(src)
    out = tmp_path / "out"
    recorder = _ReplaceRecorder(monkeypatch)
    missing, no_match = src / "missing.png", str(src / "nomatch*.png")  # named on the command line, not there
    code = main(["sharpen", str(src), str(odd["anim"]), str(broken[-1]), str(missing), no_match,
                 "--weights", str(identity_weights), "--out", str(out), "--device", "cpu", "--fp32"])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 1
    assert "Traceback" not in err
    assert len(_lines(err, "nomatch")) == 1 and "matched nothing" in err
    broken.append(missing)
    for path in broken:
        named = _lines(err, path.name)
        assert len(named) == 1, (path.name, err)
        assert named[0].startswith("unblur: skipped")
        assert not (out / path.name).exists()
    assert len(_lines(err, "unblur: skipped")) == len(broken) + 1
    assert "empty file" in err and "truncated" in err and "MAX_PIXELS" in err and "supported format" in err
    assert f"sharpened {len(odd)} image(s)" in captured.out
    assert _digests(src) == before  # inputs untouched
    recorder.assert_atomic(out)
    assert not _temps(out)

    # Identity model: each output must be what the reader saw, in the input's format, size and depth.
    for key in ("one", "odd", "gray", "palette"):
        result = Image.open(out / odd[key].name)
        assert result.mode == "RGB" and result.size == Image.open(odd[key]).size
        assert np.array_equal(np.asarray(result), np.asarray(Image.open(odd[key]).convert("RGB"))), key
    rgba_out = Image.open(out / "rgba.png")
    assert rgba_out.mode == "RGBA"
    assert np.array_equal(np.asarray(rgba_out), np.asarray(Image.open(odd["rgba"])))
    for key in ("deep", "deepgray"):
        source, result = read_image(odd[key]), read_image(out / odd[key].name)
        assert result.bit_depth == 16 and torch.equal(result.rgb, source.rgb), key
    upright = Image.open(out / "exif.jpg")
    assert upright.format == "JPEG" and upright.size == (20, 40)
    pixels = np.asarray(upright).astype(int)
    assert pixels[:18, :, 0].min() > 200 and pixels[:18, :, 2].max() < 60  # top: the stored left (red)
    assert pixels[22:, :, 2].min() > 200 and pixels[22:, :, 0].max() < 60  # bottom: the stored right (blue)
    assert np.abs(pixels - np.asarray(ImageOps.exif_transpose(Image.open(odd["exif"])))).max() <= 8
    cmyk_out = Image.open(out / "cmyk.jpg")
    assert cmyk_out.mode == "RGB" and cmyk_out.size == (16, 8)
    assert np.abs(np.asarray(cmyk_out).astype(int) - np.asarray(Image.open(odd["cmyk"]).convert("RGB"))).max() <= 8
    first_frame = Image.open(out / "anim.png")
    assert np.array_equal(np.asarray(first_frame.convert("RGB")), np.full((4, 6, 3), (255, 0, 0), np.uint8))


def test_sharpen_with_nothing_to_read_is_one_error(identity_weights, tmp_path, capsys):
    assert main(["sharpen", str(tmp_path / "a.png"), str(tmp_path / "b*.png"), "--weights", str(identity_weights),
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert len(_lines(err, "unblur: skipped")) == 2 and len(_lines(err, "unblur: error: nothing to sharpen")) == 1
    assert not (tmp_path / "o").exists()


def test_sharpen_out_of_memory_suggests_tiling(identity_weights, tmp_path, capsys, monkeypatch):
    for i in range(2):
        Image.fromarray(_textured(8, 8, i)).save(tmp_path / f"{i}.png")

    def no_memory(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ResidualStudentCNNv3, "forward", no_memory)
    assert main(["sharpen", str(tmp_path), "--weights", str(identity_weights), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert len(_lines(err, "out of memory")) == 2 and "--tile" in err and "Traceback" not in err


def test_sharpen_stops_at_a_full_disk_with_one_line(identity_weights, tmp_path, capsys, monkeypatch):
    for i in range(3):
        Image.fromarray(_textured(8, 8, i)).save(tmp_path / f"{i}.png")

    def disk_full(path: Path, *args: object, **kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("unblur.infer.write_image", disk_full)
    assert main(["sharpen", str(tmp_path), "--weights", str(identity_weights), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert len(_lines(err, "unblur:")) == 1 and not _lines(err, "skipped")  # one line, not one per file
    assert "No space left" in err and "stopped after 0 of 3" in err


# Outputs: unwritable, full, or on top of the inputs ------------------------------------------------------


def _command(name: str, data: Path, weights: Path, out: Path, tmp_path: Path) -> list[str]:
    photo = sorted(data.rglob("sharp/*.png"))[0]
    return {
        "sharpen": ["sharpen", str(photo), "--weights", str(weights), "--out", str(out), "--device", "cpu"],
        "eval": ["eval", "--data", str(data), "--weights", str(weights), "--out", str(out), "--device", "cpu",
                 "--save-images"],
        "train": ["train", "--config", str(_train_config(tmp_path, data)), "--out", str(out)],
        "synth": ["synth", str(photo), "--out", str(out), "--size", "16x24", "--pairs-per-image", "1"],
    }[name]


@pytest.mark.parametrize("command", ["sharpen", "eval", "train", "synth"])
def test_unwritable_output_is_reported_before_any_work(command, tiny_gopro, identity_weights, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "out"  # cannot be created, whoever runs the test (root included)
    assert main(_command(command, tiny_gopro, identity_weights, out, tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("unblur: error: ") and len(err.strip().splitlines()) == 1, err
    assert str(out) in err and "cannot create" in err


@pytest.mark.parametrize("command", ["sharpen", "eval", "train", "synth"])
def test_full_disk_is_reported_before_any_work(command, tiny_gopro, identity_weights, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(unblur.preflight.shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 0))
    out = tmp_path / "out"
    assert main(_command(command, tiny_gopro, identity_weights, out, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "not enough free space" in err and len(err.strip().splitlines()) == 1, err
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert not written, written


def test_sharpen_refuses_an_input_under_another_name(identity_weights, tmp_path, capsys):
    src = tmp_path / "in" / "photo.png"
    src.parent.mkdir()
    Image.fromarray(_textured(8, 8)).save(src)
    out = tmp_path / "out"
    out.mkdir()
    os.link(src, out / "photo.png")  # one file, two names: as PHOTO.PNG and photo.png on macOS or Windows
    before = src.read_bytes()
    assert main(["sharpen", str(src), "--weights", str(identity_weights), "--out", str(out)]) == 1
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_sharpen_names_a_missing_target_folder(identity_weights, tmp_path, capsys):
    Image.fromarray(_textured(8, 8)).save(tmp_path / "a.png")
    assert main(["sharpen", str(tmp_path / "a.png"), "--weights", str(identity_weights), "--out",
                 str(tmp_path / "o"), "--target", str(tmp_path / "nope")]) == 1
    assert "nope: target folder not found" in capsys.readouterr().err


def test_train_refuses_a_run_folder_inside_the_dataset(tiny_gopro, tmp_path, capsys):
    image_folder = sorted((tiny_gopro / "train").iterdir())[0] / "sharp"
    before = _digests(tiny_gopro)
    assert main(["train", "--config", str(_train_config(tmp_path, tiny_gopro)), "--out", str(image_folder)]) == 1
    assert "outside the dataset" in capsys.readouterr().err
    assert _digests(tiny_gopro) == before


def test_eval_refuses_to_save_outputs_onto_dataset_files(identity_weights, tmp_path):
    from unblur.data import pairs_from_folders
    from unblur.evaluate import evaluate
    from unblur.infer import load_sharpener
    from unblur.preflight import OutputError

    for side in ("images", "target"):
        (tmp_path / side).mkdir()
        Image.fromarray(_textured(8, 8)).save(tmp_path / side / "a.png")
    before = _digests(tmp_path)
    sharpener, _ = load_sharpener(identity_weights, device="cpu")
    pairs = pairs_from_folders(tmp_path / "images", tmp_path / "target")
    with pytest.raises(OutputError, match="refusing to overwrite"):
        evaluate(sharpener, pairs, save_dir=tmp_path / "images", progress=False)
    assert _digests(tmp_path) == before


# eval and train: broken pairs are skipped, counted, and make the exit status 1 ----------------------------


ODD_PAIRS = {"a_one.png": (1, 1), "b_thin.png": (1, 37), "c_odd.png": (17, 23), "d_gray.png": (20, 30),
             "e_deep.png": (20, 30), "f_rgba.png": (12, 14)}
"""Valid but odd pairs (name: (H, W)), in one sequence of each split; none of them may be skipped."""


def _add_odd_sequence(split: Path) -> None:
    rng = np.random.default_rng(7)
    for folder in ("blur_gamma", "sharp"):
        (split / "GOPR0100_00_00" / folder).mkdir(parents=True)
    for name, (h, w) in ODD_PAIRS.items():
        for folder in ("blur_gamma", "sharp"):
            path = split / "GOPR0100_00_00" / folder / name
            if "gray" in name:
                Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
            elif "deep" in name:
                Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.uint16)).save(path)
            elif "rgba" in name:
                Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8), "RGBA").save(path)
            else:
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _dataset_with_broken_pairs(tiny_gopro: Path, tmp_path: Path, val_text: bool = True) -> tuple[Path, dict[str, Path]]:
    """A copy of the tiny dataset where three training and one or two test pairs are broken in different ways,
    plus a sequence of odd but valid pairs in each split."""
    data = tmp_path / "data"
    shutil.copytree(tiny_gopro, data)
    _add_odd_sequence(data / "train")
    _add_odd_sequence(data / "test")
    train_seqs = sorted((data / "train").iterdir())[:3]
    test_seqs = sorted((data / "test").iterdir())[:2]
    broken = {
        "empty": train_seqs[0] / "blur_gamma" / "000000.png",  # found by the header check, before training
        "cut": train_seqs[1] / "sharp" / "000001.png",  # header intact, pixels cut: found when decoded
        "size": train_seqs[2] / "sharp" / "000000.png",  # input and target sizes differ
        "val_cut": test_seqs[0] / "sharp" / "000000.png",
    }
    if val_text:
        broken["val_text"] = test_seqs[1] / "blur_gamma" / "000000.png"
    broken["empty"].write_bytes(b"")
    for key in ("cut", "val_cut"):
        data_bytes = broken[key].read_bytes()
        broken[key].write_bytes(data_bytes[: len(data_bytes) // 2])
    Image.fromarray(_textured(40, 40)).save(broken["size"])
    if val_text:
        broken["val_text"].write_text("not an image")
    return data, broken


def test_train_skips_broken_pairs_and_says_so(tiny_gopro, tmp_path, capsys, monkeypatch):
    data, broken = _dataset_with_broken_pairs(tiny_gopro, tmp_path, val_text=False)  # one validation pair is fine
    before = _digests(data)
    run = tmp_path / "run"
    recorder = _ReplaceRecorder(monkeypatch)
    # Batch 1 and one epoch of steps (10 usable pairs): every training pair is decoded, in a DataLoader worker.
    usable = 6 - 2 + len(ODD_PAIRS)
    config = _train_config(tmp_path, data, batch_size=1, max_steps=usable, workers=1)
    code = main(["train", "--config", str(config), "--out", str(run)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "Traceback" not in captured.err
    for key, path in broken.items():
        assert len(_lines(captured.err, str(path))) == 1, (key, captured.err)
    assert "another sample was used in its place" in _lines(captured.err, str(broken["cut"]))[0]
    assert "4 pair(s) were skipped" in captured.err and f"done: {usable} steps" in captured.out
    assert "reflect-padded" in captured.err  # the small odd pairs are used, with a one-line warning
    assert not any(name in line for name in ODD_PAIRS for line in _lines(captured.err, "skipped"))
    rows = _rows(run / "metrics.csv")
    assert rows[-1]["skipped_pairs"] == "4" and rows[-1]["step"] == str(usable)
    assert load_weights(run / "sharpen_model.pth").model == "studentcnn_v3"
    assert _digests(data) == before
    recorder.assert_atomic(run)
    assert not _temps(run)


def test_eval_skips_broken_pairs_scores_the_rest_and_counts_them(tiny_gopro, identity_weights, tmp_path, capsys,
                                                                 monkeypatch):
    data, broken = _dataset_with_broken_pairs(tiny_gopro, tmp_path)
    good = sorted((data / "test").iterdir())[0]
    shutil.copytree(good, data / "test" / "GOPR0009_00_00")  # a third test pair ...
    (data / "test" / "GOPR0009_00_00" / "sharp" / "000000.png").write_bytes(
        (sorted((tiny_gopro / "test").iterdir())[0] / "sharp" / "000000.png").read_bytes())  # ... that is intact
    out = tmp_path / "eval"
    recorder = _ReplaceRecorder(monkeypatch)
    code = main(["eval", "--data", str(data), "--weights", str(identity_weights), "--out", str(out),
                 "--device", "cpu", "--save-images", "--fp32"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    for key in ("val_cut", "val_text"):
        assert len(_lines(captured.err, str(broken[key]))) == 1, captured.err
    n = 3 + len(ODD_PAIRS)
    assert "2 pair(s) skipped" in captured.err and f"{n - 2} of {n} pairs" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == n - 2 and summary["skipped"] == 2
    assert {s["name"] for s in summary["skipped_pairs"]} == {"GOPR0000_00_00/000000.png", "GOPR0001_00_00/000000.png"}
    rows = {r["name"]: r for r in _rows(out / "per_image.csv")}
    assert set(rows) == {"GOPR0009_00_00/000000.png", *(f"GOPR0100_00_00/{name}" for name in ODD_PAIRS)}
    for name, row in rows.items():  # identity model: it scores exactly as the blurry input
        assert float(row["model_psnr"]) == pytest.approx(float(row["input_psnr"])), name
    for name, (h, w) in ODD_PAIRS.items():  # SSIM needs an 11 px window: undefined (NaN) below, never a crash
        ssim_text = rows[f"GOPR0100_00_00/{name}"]["model_ssim"]
        assert (ssim_text == "nan") == (min(h, w) < 11), (name, ssim_text)
    assert summary["means"]["model"]["ssim"] == summary["means"]["model"]["ssim"]  # the NaNs are left out
    assert len(list((out / "images").glob("*.png"))) == n - 2
    recorder.assert_atomic(out)


def test_eval_out_of_memory_suggests_tiling(tiny_gopro, identity_weights, tmp_path, capsys, monkeypatch):
    def no_memory(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(ResidualStudentCNNv3, "forward", no_memory)
    # The PyTorch path (where a GPU runs out of memory); the onnxruntime default would meet the patched
    # forward while exporting, which is a different failure.
    monkeypatch.setattr("unblur.device.onnxruntime_available", lambda: False)
    assert main(["eval", "--data", str(tiny_gopro), "--weights", str(identity_weights), "--out",
                 str(tmp_path / "e"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert len(_lines(err, "unblur:")) == 1 and "out of memory" in err and "--tile" in err and "Traceback" not in err


def test_synth_skips_bad_sources_in_one_line_and_exits_1(tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(_textured(48, 64)).save(src / "photo.png")
    Image.fromarray(_textured(48, 64)[..., 0]).save(src / "gray.png")
    Image.fromarray(np.concatenate([_textured(48, 64), _textured(48, 64)[..., :1]], -1), "RGBA").save(src / "rgba.png")
    Image.fromarray(np.random.default_rng(3).integers(0, 65536, (48, 64)).astype(np.uint16)).save(src / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(_textured(64, 48)).save(src / "turned.jpg", exif=exif)
    good = 5
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.png").write_text("hello")
    Image.new("RGB", (2, 2)).save(src / "tiny.png")  # far too small for 16x24 frames
    _png_header_only(src / "bomb.png", 100_000, 100_000)
    out = tmp_path / "data"
    code = main(["synth", str(src), str(tmp_path / "missing.png"), "--out", str(out), "--size", "16x24",
                 "--pairs-per-image", "1"])
    captured = capsys.readouterr()
    assert code == 1
    for name in ("empty.jpg", "notes.png", "tiny.png", "bomb.png", "missing.png"):
        assert len(_lines(captured.err, name)) == 1, captured.err
    assert "5 source(s) skipped" in captured.err
    assert "UserWarning" not in captured.err and "warnings.warn" not in captured.err
    assert "Traceback" not in captured.err
    assert f"wrote {good} pairs" in captured.out
    assert len(list(out.rglob("*.png"))) == 3 * good  # sharp, blur and blur_gamma of each usable photo


# Nothing executed: pickles that would run code ------------------------------------------------------------


class _Trap:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for any code an attacker would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return pathlib.Path.touch, (self.marker,)


def test_the_trap_really_runs_code_when_unpickled_unsafely(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Trap(marker)))  # what an unrestricted unpickler (weights_only off) would do
    assert marker.exists()


@pytest.mark.parametrize("wrapping", ["bare", "in_state_dict", "plain_pickle"])
@pytest.mark.parametrize("command", ["sharpen", "eval", "teacher", "resume"])
def test_a_pickle_that_would_run_code_is_refused_and_never_runs(command, wrapping, tiny_gopro, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    evil = tmp_path / ("checkpoint.pt" if command == "resume" else "evil.pth")
    payload: object = {"state_dict": {"conv1.weight": _Trap(marker)}} if wrapping == "in_state_dict" else _Trap(marker)
    if wrapping == "plain_pickle":
        evil.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, evil)
    photo = sorted(tiny_gopro.rglob("sharp/*.png"))[0]
    if command == "resume":
        (tmp_path / "config.json").write_text(json.dumps({"data": str(tiny_gopro), "crop": 32, "workers": 0}))
    args = {
        "sharpen": ["sharpen", str(photo), "--weights", str(evil), "--out", str(tmp_path / "o")],
        "eval": ["eval", "--data", str(tiny_gopro), "--weights", str(evil), "--out", str(tmp_path / "o")],
        "teacher": ["train", "--config", str(_train_config(tmp_path, tiny_gopro)), "--teacher", str(evil),
                    "--out", str(tmp_path / "run")],
        "resume": ["train", "--out", str(tmp_path), "--resume"],
    }[command]
    assert main(args) == 1
    err = capsys.readouterr().err
    errors = _lines(err, "unblur: error:")
    assert len(errors) == 1 and "refused" in errors[0] and str(evil) in errors[0], err
    assert all(line.startswith("unblur: warning:") for line in err.strip().splitlines() if line not in errors), err
    assert "\x1b" not in err
    assert not marker.exists()


# Training: checkpoints, resume, kill -9, NaN, OOM, settings -----------------------------------------------


def test_a_training_process_killed_with_sigkill_resumes(tiny_gopro, tmp_path, capsys):
    run = tmp_path / "run"
    # A checkpoint after every step, so the kill lands between, or during, checkpoint writes; batch 1 makes
    # the 4 steps one epoch of 6, so the resumed run validates once.
    config = _train_config(tmp_path, tiny_gopro, batch_size=1, max_steps=4, checkpoint_seconds=0.001)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "unblur", "train", "--config", str(config), "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").exists():
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL  # really killed, not finished
    killed_at = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert 1 <= killed_at < 4
    stale = run / ".checkpoint.0123abcd.tmp.pt"  # what a kill during a checkpoint write leaves behind
    stale.write_bytes(b"partial")

    assert main(["train", "--out", str(run), "--resume"]) == 0
    captured = capsys.readouterr()
    resumed_at = int(re.search(r"resuming .* step (\d+)", captured.err).group(1))
    assert resumed_at >= killed_at
    assert "done: 4 steps" in captured.out
    final = torch.load(run / "checkpoint.pt", weights_only=True)
    assert final["step"] == 4
    rows = _rows(run / "metrics.csv")
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] == 4
    assert len({r["epoch"] for r in rows}) == len(rows)
    load_weights(run / "sharpen_model.pth").build()
    with Image.open(run / "loss_curve.png") as curve:
        curve.verify()
    json.loads((run / "config.json").read_text())
    assert not _temps(run), _temps(run)


def test_resume_before_the_first_checkpoint_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": str(tmp_path), "crop": 32}))  # what an early kill leaves
    assert main(["train", "--out", str(run), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "before its first checkpoint" in err and "without --resume" in err
    assert main(["train", "--out", str(tmp_path / "nothing"), "--resume"]) == 1
    assert "no run to resume" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "needle"), [
    ("truncated", "cannot read this checkpoint"),
    ("foreign", "not an unblur training checkpoint (it lacks"),
])
def test_a_damaged_or_foreign_checkpoint_is_reported_in_one_line(content, needle, tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"data": str(tmp_path), "crop": 32}))
    buffer = io.BytesIO()
    torch.save({"model": {"w": torch.zeros(64, 64)}, "step": 3}, buffer)
    raw = buffer.getvalue()
    (tmp_path / "checkpoint.pt").write_bytes(raw[: len(raw) // 2] if content == "truncated" else raw)
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 1
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err


class _NanOnSomeCalls(CombinedLoss):
    """The real loss, except that the first two calls return NaN (still attached to the graph)."""

    calls = 0

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        loss = super().forward(pred, target)
        return loss * float("nan") if type(self).calls <= 2 else loss


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_non_finite_loss_is_skipped_or_stops(policy, tiny_gopro, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("unblur.train.CombinedLoss", _NanOnSomeCalls)
    monkeypatch.setattr(_NanOnSomeCalls, "calls", 0)
    run = tmp_path / "run"
    code = main(["train", "--config", str(_train_config(tmp_path, tiny_gopro, max_steps=1)), "--out", str(run),
                 "--nan", policy])
    captured = capsys.readouterr()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    if policy == "skip":
        assert code == 0
        assert len(_lines(captured.err, "non-finite loss")) == 2
        assert state["step"] == 1 and state["skipped_steps"] == 2  # the third batch made the one step
        assert _rows(run / "metrics.csv")[-1]["skipped_steps"] == "2"
    else:
        assert code == 1
        assert "loss became nan at step 1" in captured.err and "--nan skip" in captured.err
        assert state["step"] == 0  # the checkpoint kept is the state before the bad step


def test_training_out_of_memory_suggests_smaller_batch_or_crop(tiny_gopro, tmp_path, capsys, monkeypatch):
    def no_memory(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(StudentCNNv3, "forward", no_memory)
    assert main(["train", "--config", str(_train_config(tmp_path, tiny_gopro)), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "out of memory" in err and "--batch-size 1" in err and "--crop 16" in err
    assert len(_lines(err, "unblur: error")) == 1 and "Traceback" not in err


@pytest.mark.parametrize(("line", "needle"), [
    ('lr = "fast"', "lr: expected a number in (0, 1)"),
    ('lr = "1e-4"', "remove the quotes"),
    ('crop = "big"', "crop: expected an integer >= 16"),
    ("epochs = 2.5", "epochs: expected a positive integer"),
    ('ema = "slow"', "ema: expected a decay"),
    ('cache = "yes"', "cache: expected true or false"),
    ("model_kwargs = 3", "model_kwargs: expected a table"),
    ("psnr_knee = 0", "psnr_knee: expected a positive number of dB"),
    ('checkpoint_seconds = "often"', "checkpoint_seconds: expected a positive number"),
    ('teacher = "no/such/teacher.pth"', "teacher: weights file no/such/teacher.pth not found"),
    ("colour = 1", "unknown setting(s) colour"),
])
def test_bad_setting_types_get_a_message_not_a_traceback(line, needle, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(f'data = "{tmp_path}"\n{line}\n')
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        main(["--debug", "train", "--out", str(tmp_path / "nothing"), "--resume"])


def test_yaml_exponent_numbers_are_numbers(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("lr: 1e-4\nclip: 2\nmodel: studentcnn_v3\n")
    assert load_config(config)["lr"] == 1e-4


@pytest.mark.parametrize("args", [["--lr", "fast"], ["--epochs", "many"], ["--ema", "1.5"], ["--edge-weight", "nan"],
                                  ["--psnr-knee", "-3"]])
def test_bad_flags_get_a_message(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "x", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "expected" in err and "Traceback" not in err


# Tiling: exact whatever the image and tile sizes ----------------------------------------------------------


def _two_convs() -> nn.Module:
    """Receptive-field radius 1 + 2 = 3 pixels."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=2, dilation=2))


_MODELS = {"two_convs": (_two_convs, 3), "studentcnn_v3": (lambda: StudentCNNv3(**SMALL), 6)}


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    model_name=st.sampled_from(sorted(_MODELS)),
    h=st.integers(1, 40), w=st.integers(1, 40),
    extra_overlap=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_property_tiled_equals_untiled_when_overlap_covers_the_receptive_field(data, model_name, h, w,
                                                                                 extra_overlap, seed):
    # Tiles from 1 px up to bigger than the image, but at most about 8 × 8 of them, to stay fast.
    tile = data.draw(st.integers(max(1, max(h, w) // 8), max(h, w) + 2), label="tile")
    build, radius = _MODELS[model_name]
    torch.manual_seed(seed)
    model = build()
    plan = ExecutionPlan(torch.device("cpu"))
    image = torch.rand(3, h, w)
    whole = Sharpener(model, plan)(image)
    tiled = Sharpener(model, plan, tile=tile, overlap=radius + extra_overlap)(image)
    assert tiled.shape == whole.shape == (3, h, w)
    assert torch.allclose(tiled, whole, atol=1e-5, rtol=0)
