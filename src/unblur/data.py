"""Paired blurry/sharp images: finding them on disk, checking them, and serving them to training.

One code path pairs and checks the data for ``train``, ``eval`` and ``sharpen --target``, so a broken
dataset fails the same way everywhere: early, in one line that names the path to fix
(:class:`DatasetError`). Unreadable image files are reported by :class:`unblur.io.ImageError`.

Layouts :func:`find_pairs` recognizes (``S`` is a split such as ``train`` or ``test``):

* a GoPro root ``ROOT/S/GOPRxxxx_xx_xx/{blur,blur_gamma,sharp}/NNNNNN.png``;
* a split folder ``S/`` holding such sequence folders;
* one sequence folder holding ``blur/``, ``blur_gamma/`` and ``sharp/`` (how the seed trained);
* the flattened NAFNet/MPRNet layout ``ROOT/S/{input,target}/`` or ``ROOT/{input,target}/``.

Any two folders of pairs can be given explicitly with :func:`pairs_from_folders`. Pairs match by
identical file names.

:class:`PairedImages` keeps images as ``uint8`` until they reach the device: a 256 px crop is 192 KiB
instead of 768 KiB in float32, which is what the DataLoader pickles between processes and what a host
to GPU copy moves. :func:`to_device_float` is the one place that turns them into ``[0, 1]`` floats.
"""

from __future__ import annotations

import contextlib
import random
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from unblur.io import MAX_PIXELS, READ_SUFFIXES, ImageError, read_rgb_u8
from unblur.synth import GAMMA

__all__ = [
    "INPUT_KINDS",
    "DatasetError",
    "Pair",
    "PairedImages",
    "SkipUnreadable",
    "check_pairs",
    "find_pairs",
    "hold_out_sequences",
    "pairs_from_folders",
    "screen_pairs",
    "to_device_float",
]

INPUT_KINDS = ("blur_gamma", "blur")
"""GoPro input folders: ``blur_gamma`` (the seed's choice) or ``blur`` (what most papers train on)."""

_SPLIT_NAMES = ("train", "test", "val", "valid", "validation")
_SEQUENCE_PARTS = frozenset({"sharp", *INPUT_KINDS})
_LAYOUTS = (
    "expected a GoPro root with train/ or test/ folders, a split folder of sequence folders (each with "
    "sharp/ and blur/ or blur_gamma/), a single such sequence folder, or input/ + target/ folders "
    "(directly or under a split folder)"
)
_MAX_LISTED = 5
_EXIF_ORIENTATION = 0x0112


class DatasetError(ValueError):
    """A dataset that cannot be used as given; the message is one line naming what to fix."""


@dataclass(frozen=True)
class Pair:
    """One blurry input and its sharp target.

    ``name`` is a stable id for logs, CSV rows and saved outputs (``"GOPR0384_11_00/000001.png"``, or
    just the file name for flat layouts). ``sequence`` groups frames of one recording so that
    :func:`hold_out_sequences` can keep near-duplicate neighbouring frames on one side of a split;
    it is ``""`` when the layout does not say.
    """

    input: Path
    target: Path
    name: str
    sequence: str


# Finding pairs ----------------------------------------------------------------------------------------


def _natural_key(text: str) -> tuple[list[int | str], str]:
    """Sort ``frame2`` before ``frame10``; the raw text breaks ties so the order is total."""
    parts: list[int | str] = [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]
    return parts, text


def _subdirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: _natural_key(p.name))


def _image_names(folder: Path) -> list[str]:
    """Names of the readable-looking images directly in ``folder``.

    Hidden files are skipped: macOS leaves ``._000001.png`` resource forks next to every copied file,
    and they would otherwise count as unmatched images.
    """
    return [
        p.name for p in folder.iterdir()
        if p.suffix.lower() in READ_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (", ..." if len(names) > _MAX_LISTED else "")


def pairs_from_folders(input_dir: str | Path, target_dir: str | Path, sequence: str = "") -> list[Pair]:
    """Pair the images of two folders by identical file names, sorted naturally by name.

    Names must be identical including the suffix: ``000001.png`` does not pair with ``000001.jpg``,
    because a target saved in another format has usually been re-encoded (lossily), which would
    silently cap every score; convert the files instead. Every image must have its partner: a stray
    file usually means a copy was interrupted, so it is an error rather than something to skip.
    ``sequence`` is recorded in each pair and prefixes its name (``"SEQ/000001.png"``).
    """
    input_dir, target_dir = Path(input_dir), Path(target_dir)
    for folder, role in ((input_dir, "input"), (target_dir, "target")):
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise DatasetError(f"{role} folder {folder} {what}")
    inputs, targets = _image_names(input_dir), _image_names(target_dir)
    if not inputs and not targets:
        raise DatasetError(
            f"no images ({', '.join(sorted(READ_SUFFIXES))}) in {input_dir} or {target_dir}: the dataset is empty"
        )
    if not inputs:
        raise DatasetError(f"no input images in {input_dir} (its target folder {target_dir} has {len(targets)})")
    if not targets:
        raise DatasetError(f"no target images in {target_dir} (its input folder {input_dir} has {len(inputs)})")
    in_set, tgt_set = set(inputs), set(targets)
    lonely_inputs = sorted(in_set - tgt_set, key=_natural_key)
    lonely_targets = sorted(tgt_set - in_set, key=_natural_key)
    if lonely_inputs or lonely_targets:
        parts = [f"input and target file names differ between {input_dir} and {target_dir}:"]
        if lonely_inputs:
            parts.append(f"{len(lonely_inputs)} input(s) without a target ({_listing(lonely_inputs)})")
        if lonely_targets:
            parts.append(f"{len(lonely_targets)} target(s) without an input ({_listing(lonely_targets)})")
        stems = {Path(n).stem for n in lonely_inputs} & {Path(n).stem for n in lonely_targets}
        hint = "; names must be identical, suffix included" if stems else ""
        raise DatasetError(" ".join(parts[:1]) + " " + "; ".join(parts[1:]) + hint)
    prefix = f"{sequence}/" if sequence else ""
    return [
        Pair(input=input_dir / n, target=target_dir / n, name=prefix + n, sequence=sequence)
        for n in sorted(inputs, key=_natural_key)
    ]


def _sequence_pairs(folder: Path, input_kind: str) -> list[Pair]:
    """Pairs of one GoPro sequence folder; its name (``.`` resolved) becomes the sequence id."""
    if not (folder / "sharp").is_dir():
        raise DatasetError(f"sequence folder {folder} has no sharp/ folder with the targets")
    if not (folder / input_kind).is_dir():
        other = next(k for k in INPUT_KINDS if k != input_kind)
        if (folder / other).is_dir():
            raise DatasetError(
                f"sequence folder {folder} has no {input_kind}/ folder but has {other}/: "
                f"use the {other} input (--input {other})"
            )
        raise DatasetError(f"sequence folder {folder} has no {input_kind}/ folder with the blurry inputs")
    sequence = folder.name if folder.name not in ("", "..") else folder.resolve().name
    return pairs_from_folders(folder / input_kind, folder / "sharp", sequence=sequence)


def _detect(folder: Path, input_kind: str) -> list[Pair] | None:
    """Pairs of a sequence folder, an input/target folder or a folder of sequences; None if none fits."""
    subdirs = _subdirs(folder)
    names = {d.name for d in subdirs}
    if names & _SEQUENCE_PARTS:
        return _sequence_pairs(folder, input_kind)
    if names & {"input", "target"}:
        if names >= {"input", "target"}:
            return pairs_from_folders(folder / "input", folder / "target")
        have, lack = ("input", "target") if "input" in names else ("target", "input")
        raise DatasetError(f"{folder} has a {have}/ folder but no {lack}/ folder to pair it with")
    sequences = [d for d in subdirs if any((d / part).is_dir() for part in _SEQUENCE_PARTS)]
    if not sequences:
        return None
    return [pair for d in sequences for pair in _sequence_pairs(d, input_kind)]


def find_pairs(root: str | Path, split: str | None = None, input_kind: str = "blur_gamma") -> list[Pair]:
    """Find the input/target pairs under ``root``, whatever its layout (see the module doc).

    Detection, in this order:

    1. ``root`` holds split folders (``train``, ``test``, ``val``, ``valid``, ``validation``, or the
       given ``split``): ``split`` picks one, and is required when there are several. The chosen
       folder is then read as in 2–4.
    2. ``root`` holds ``blur/``, ``blur_gamma/`` or ``sharp/``: it is one sequence, named after it.
    3. ``root`` holds ``input/`` and ``target/``: a flat layout, with ``sequence == ""``.
    4. ``root`` holds sequence folders (any subfolder with ``sharp/``, ``blur/`` or ``blur_gamma/``).

    Without split folders ``split`` does not apply and is ignored, so the same call works for a
    single sequence; but a ``root`` that is itself named after another split (``.../train`` when
    ``split="test"``) is refused, since scoring the wrong split would go unnoticed.
    ``input_kind`` chooses the GoPro input folder (:data:`INPUT_KINDS`). Pairs come sorted by
    sequence, then naturally by file name.
    """
    if input_kind not in INPUT_KINDS:
        raise DatasetError(f"unknown input kind {input_kind!r}; choose one of {', '.join(INPUT_KINDS)}")
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DatasetError(f"dataset root {root} {what}")

    splits = [d.name for d in _subdirs(root) if d.name in _SPLIT_NAMES or d.name == split]
    folder = root
    if split is not None and split in splits:
        folder = root / split
    elif split is not None and splits:
        raise DatasetError(f"{root} has no {split!r} split folder (it has: {', '.join(splits)})")
    elif split is not None and root.name in _SPLIT_NAMES and root.name != split:
        raise DatasetError(
            f"{root} looks like the {root.name!r} split but split {split!r} was asked for; "
            f"give the folder that holds {split}/, or the {split} folder itself"
        )
    elif split is None and len(splits) > 1:
        raise DatasetError(
            f"{root} holds several splits ({', '.join(splits)}); choose one: give a split "
            f"(split={splits[0]!r}) or the split folder itself ({root / splits[0]})"
        )
    elif split is None and splits:
        folder = root / splits[0]

    pairs = _detect(folder, input_kind)
    if pairs is None:
        raise DatasetError(f"no dataset layout recognized in {folder}: {_LAYOUTS}")
    return pairs


# Splitting ----------------------------------------------------------------------------------------------


def hold_out_sequences(
    pairs: list[Pair], fraction: float = 0.1, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """Split ``pairs`` into ``(train, val)`` without letting one recording straddle both sides.

    Neighbouring frames of a sequence are near-duplicates, so a random frame split would score the
    model on frames it has practically trained on. With several sequences, whole sequences are
    drawn in a shuffled order (fixed by ``seed``, independent of the order of ``pairs``) and moved
    to ``val`` until it holds at least ``fraction`` of the pairs; at least one sequence stays in
    ``train``. With a single sequence (or a flat layout, whose names usually sort by recording),
    the last ``round(fraction · n)`` frames in name order form ``val``, as one contiguous block.
    Either side gets at least one pair. Both lists keep the order of ``pairs``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1 (exclusive), got {fraction}")
    if len(pairs) < 2:
        raise DatasetError(f"holding out a validation set needs at least 2 pairs, got {len(pairs)}")
    sequences = sorted({p.sequence for p in pairs}, key=_natural_key)
    if len(sequences) == 1:
        ordered = sorted(pairs, key=lambda p: _natural_key(p.name))
        n_val = min(max(1, round(fraction * len(pairs))), len(pairs) - 1)
        held = {id(p) for p in ordered[-n_val:]}
    else:
        random.Random(seed).shuffle(sequences)
        counts = {s: 0 for s in sequences}
        for p in pairs:
            counts[p.sequence] += 1
        chosen: set[str] = set()
        n_val = 0
        for s in sequences[:-1]:
            if n_val >= fraction * len(pairs):
                break
            chosen.add(s)
            n_val += counts[s]
        held = {id(p) for p in pairs if p.sequence in chosen}
    train = [p for p in pairs if id(p) not in held]
    val = [p for p in pairs if id(p) in held]
    return train, val


# Checking -----------------------------------------------------------------------------------------------


def _oriented_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` after EXIF orientation, from the header only (no pixel decoding).

    :func:`unblur.io.read_rgb_u8` applies the EXIF orientation, so a portrait JPEG stored sideways
    must be compared at its displayed size. PNG is special-cased because Pillow decodes the whole
    image to look for an ``eXIf`` chunk behind the pixels; one in front of them is still honoured.
    Like io, a damaged EXIF block counts as no orientation rather than as an unreadable file.
    """
    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = 1
            if im.format != "PNG" or "exif" in im.info:
                with contextlib.suppress(Exception):
                    orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception as exc:  # Pillow raises many types for broken headers; all mean the same here
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageError(f"{path}: cannot read the image header ({reason})") from exc
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _check(pairs: Sequence[Pair], check_sizes: bool) -> list[tuple[int, int]]:
    """:func:`check_pairs`, returning each pair's ``(width, height)`` when sizes were read."""
    if not pairs:
        raise DatasetError("the dataset is empty: no input/target pairs were given")
    seen: dict[str, Pair] = {}
    for p in pairs:
        if p.name in seen:
            raise DatasetError(f"two pairs share the name {p.name!r} ({seen[p.name].input} and {p.input})")
        seen[p.name] = p
    missing = [str(f) for p in pairs for f in (p.input, p.target) if not f.is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} image file(s) of the dataset are missing: {_listing(missing)}")
    if not check_sizes:
        return []
    sizes: list[tuple[int, int]] = []
    bad: list[str] = []
    for p in pairs:
        size_in, size_tgt = _oriented_size(p.input), _oriented_size(p.target)
        if size_in != size_tgt:
            bad.append(
                f"input {p.input} is {size_in[0]}×{size_in[1]} but target {p.target} is "
                f"{size_tgt[0]}×{size_tgt[1]}"
            )
        sizes.append(size_in)
    if bad:
        more = f" (and {len(bad) - 1} more pair(s))" if len(bad) > 1 else ""
        raise DatasetError(f"input and target sizes differ: {bad[0]}{more}")
    return sizes


def check_pairs(pairs: Sequence[Pair], check_sizes: bool = True) -> None:
    """Fail early, in one line, on a dataset that training or evaluation would trip over later.

    Checks that there is at least one pair, that names are unique (they key outputs and CSV rows),
    that every file exists, and with ``check_sizes`` that input and target of each pair have the same
    size. Sizes come from the file headers (EXIF orientation applied), so checking all of GoPro's
    4,206 training images takes about a second; a file whose header cannot be read raises
    :class:`unblur.io.ImageError` naming it.
    """
    _check(pairs, check_sizes)


def screen_pairs(pairs: Sequence[Pair]) -> tuple[list[Pair], list[str]]:
    """Split ``pairs`` into the usable ones and a one-line reason for each of the others.

    :func:`check_pairs` stops at the first problem, which suits a dataset being put together. A long
    training run over thousands of pairs is better served by leaving out the few broken ones, saying
    which, and going on; this makes the same per-pair checks (both files exist, both headers read,
    at most :data:`unblur.io.MAX_PIXELS`, same size after EXIF orientation) without stopping. Headers
    only: a file truncated behind an intact header passes, and is caught by :class:`SkipUnreadable`
    when it is decoded. Each reason names the file or pair it is about.
    """
    good: list[Pair] = []
    problems: list[str] = []
    for p in pairs:
        missing = [f for f in (p.input, p.target) if not f.is_file()]
        if missing:
            problems.append(f"{missing[0]}: no such file (pair {p.name})")
            continue
        try:
            with warnings.catch_warnings():  # Pillow's bomb warning; the limit that counts is io's, below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                size_in, size_tgt = _oriented_size(p.input), _oriented_size(p.target)
        except ImageError as exc:
            problems.append(" ".join(str(exc).split()))
            continue
        too_big = next((f for f, (w, h) in ((p.input, size_in), (p.target, size_tgt)) if w * h > MAX_PIXELS), None)
        if too_big is not None:
            problems.append(f"{too_big}: declares more than the {MAX_PIXELS:,} pixels allowed (MAX_PIXELS)")
        elif 0 in size_in or 0 in size_tgt:
            problems.append(f"{p.input if 0 in size_in else p.target}: declares an empty image")
        elif size_in != size_tgt:
            problems.append(
                f"input {p.input} is {size_in[0]}×{size_in[1]} but target {p.target} is "
                f"{size_tgt[0]}×{size_tgt[1]}"
            )
        else:
            good.append(p)
    return good, problems


# Serving ------------------------------------------------------------------------------------------------


def _pad_to(img: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad an ``(H, W, 3)`` image at the bottom and right up to ``size`` on each short side."""
    h, w = img.shape[:2]
    if h >= size and w >= size:
        return img
    return np.pad(img, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")


def _randint(high: int) -> int:
    """Uniform in ``[0, high)`` from torch's global RNG, which DataLoader seeds per worker."""
    return int(torch.randint(high, (1,)).item())


_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])


def _mix_colors(inp: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both ``(H, W, 3)`` uint8 images through one random colour matrix applied in linear light.

    The matrix desaturates by a random amount (saturation kept: 0.3 to 1) and scales each channel by
    its own gain (0.7 to 1: exposure and white balance). Blur is a convolution of each channel in linear
    light, so any fixed linear mix of the channels commutes with it: the mixed pair is as true a pair as
    the original (to 8-bit rounding), in colours and exposures the training photos lack. Each row of
    the matrix is non-negative and sums to its gain, at most 1, so no value leaves [0, 1] and nothing
    clips (a clip would break the commutation).
    """
    keep = 0.3 + 0.7 * float(torch.rand(()))
    gains = 0.7 + 0.3 * torch.rand(3)
    matrix = gains[:, None] * ((1.0 - keep) * _LUMA[None, :] + keep * torch.eye(3))
    mixed = []
    for img in (inp, tgt):
        light = (torch.from_numpy(np.ascontiguousarray(img)).float() / 255.0).pow(GAMMA)
        encoded = (light @ matrix.T).clamp(0.0, 1.0).pow(1.0 / GAMMA)
        mixed.append((encoded * 255.0).round().to(torch.uint8).numpy())
    return mixed[0], mixed[1]


def _to_chw_tensor(img: np.ndarray) -> torch.Tensor:
    """A fresh contiguous ``(3, H, W)`` uint8 tensor (never a view of a cached array)."""
    return torch.from_numpy(np.array(img.transpose(2, 0, 1), order="C"))  # np.array always copies


class PairedImages(Dataset):
    """Input/target pairs as ``(input uint8 (3,H,W), target uint8 (3,H,W), name)``.

    Training (``crop`` set, ``augment=True``): one random ``crop``×``crop`` window at the same place
    in both images, then one of the 8 flips/rotations of the square, applied to both; with
    ``shuffle_colors``, also one of the 6 orders of the colour channels, both alike. Motion blur is the
    same convolution of every channel in linear light and the synthesized pairs treat channels alike
    (:mod:`unblur.synth`: no noise, mosaic or chroma subsampling), so a permuted pair is as true a pair
    as the original, in colours a few training photos lack: an orange flower becomes a blue one. With
    ``mix_colors``, also one random desaturation and per-channel gain in linear light, both alike
    (:func:`_mix_colors`), for the same reason. With
    ``augment=False`` the crop is the centre window instead, so validation on crops is the same every
    time. Evaluation (``crop=None``, ``augment=False``): full frames. With ``crop=None`` and
    ``augment=True`` only the flips are used on non-square frames, so shapes do not change.

    **Images smaller than the crop** are reflect-padded at the bottom and right, both images alike,
    up to the crop size on each short side (then cropped as usual), so batches stay stackable and the
    pair stays aligned; the padding mirrors real content rather than adding black borders a model
    would learn to keep. A warning says how many pairs this affects.

    Randomness comes only from torch's global RNG, so results are reproducible under
    ``torch.manual_seed`` and DataLoader workers draw different crops (each worker's torch RNG is
    seeded by the DataLoader).

    ``cache=True`` keeps decoded images in memory, about 5.3 MiB per 1280×720 pair (11 GiB for GoPro's
    training set). The cache belongs to one process and fills lazily: each DataLoader worker decodes
    and holds its own copy, which survives epochs only with ``persistent_workers=True``. To share one
    copy, call :meth:`preload` before the DataLoader starts its workers: forked workers (Linux) then
    read the parent's arrays copy-on-write. The cache is never pickled, so spawned workers (Windows,
    macOS) start empty instead of receiving gigabytes each.

    The pairs are checked with :func:`check_pairs` on construction, reading headers only; files that
    cannot be decoded raise :class:`unblur.io.ImageError` when loaded.
    """

    def __init__(
        self, pairs: Sequence[Pair], crop: int | None = 256, augment: bool = True, cache: bool = False,
        shuffle_colors: bool = False, mix_colors: bool = False,
    ) -> None:
        if crop is not None and crop <= 0:
            raise ValueError(f"crop must be a positive number of pixels or None, got {crop}")
        self.pairs = list(pairs)
        self.crop = crop
        self.augment = augment
        self.shuffle_colors = shuffle_colors
        self.mix_colors = mix_colors
        self.cache = cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        sizes = _check(self.pairs, check_sizes=True)
        if crop is not None:
            small = sum(1 for w, h in sizes if w < crop or h < crop)
            if small:
                warnings.warn(
                    f"{small} of {len(sizes)} pairs are smaller than the {crop} px crop on some side; "
                    "they are reflect-padded up to it",
                    stacklevel=2,
                )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        cached = self._cache.get(i)
        if cached is not None:
            return cached
        p = self.pairs[i]
        inp, tgt = read_rgb_u8(p.input), read_rgb_u8(p.target)  # ImageError names a broken file
        if inp.shape != tgt.shape:
            raise DatasetError(
                f"input and target sizes differ: input {p.input} is {inp.shape[1]}×{inp.shape[0]} but "
                f"target {p.target} is {tgt.shape[1]}×{tgt.shape[0]}"
            )
        if self.cache:
            self._cache[i] = (inp, tgt)
        return inp, tgt

    def preload(self, indices: Iterable[int] | None = None) -> None:
        """Decode pairs into the cache now (all by default); see the class doc for when this helps."""
        if not self.cache:
            raise ValueError("preload() needs a dataset built with cache=True")
        for i in range(len(self)) if indices is None else indices:
            self._load(i)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        inp, tgt = self._load(i)
        if self.crop is not None:
            size = self.crop
            inp, tgt = _pad_to(inp, size), _pad_to(tgt, size)
            h, w = inp.shape[:2]
            if self.augment:
                top, left = _randint(h - size + 1), _randint(w - size + 1)
            else:
                top, left = (h - size) // 2, (w - size) // 2
            inp = inp[top : top + size, left : left + size]
            tgt = tgt[top : top + size, left : left + size]
        if self.augment:
            turns = _randint(4)
            if inp.shape[0] != inp.shape[1]:
                turns = 2 * (turns // 2)  # a quarter turn would change a non-square frame's shape
            mirror = _randint(2)
            if turns:
                inp, tgt = np.rot90(inp, turns), np.rot90(tgt, turns)
            if mirror:
                inp, tgt = inp[:, ::-1], tgt[:, ::-1]
            if self.shuffle_colors:  # drawn only when asked: runs without it keep their crops bit for bit
                order = torch.randperm(3).tolist()
                inp, tgt = inp[..., order], tgt[..., order]
            if self.mix_colors:
                inp, tgt = _mix_colors(inp, tgt)
        return _to_chw_tensor(inp), _to_chw_tensor(tgt), self.pairs[i].name


class SkipUnreadable(Dataset):
    """A dataset whose samples that cannot be decoded are replaced by the next one that can.

    For training: a file truncated behind an intact header is found only when it is decoded, maybe
    hours into a run, and killing the run over one frame among thousands would throw those hours away.
    Sample ``i`` is ``(*dataset[i], broken)``; when ``dataset[i]`` raises :class:`unblur.io.ImageError`
    or :class:`DatasetError`, indices ``i+1, i+2, ...`` (wrapping around) are tried instead, and
    ``broken`` holds one line per sample passed over (``""`` when none). The reasons travel with the
    sample because the DataLoader worker that finds a broken file is another process than the
    training loop that reports and counts them. Indices found broken are not decoded again by the
    same process. Raises :class:`DatasetError` if no sample at all can be decoded.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._broken: set[int] = set()

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[object, ...]:
        n = len(self)
        reasons: list[str] = []
        for k in range(n):
            j = (i + k) % n
            if j in self._broken:
                continue
            try:
                sample = self.dataset[j]
            except (ImageError, DatasetError) as exc:
                self._broken.add(j)
                reasons.append(" ".join(str(exc).split()))
                continue
            return (*sample, "\n".join(reasons))
        first = f": {reasons[0]}" if reasons else ""
        raise DatasetError(f"none of the {n} samples can be decoded{first}")


def to_device_float(
    x_u8: torch.Tensor, device: torch.device | str, channels_last: bool = False
) -> torch.Tensor:
    """Move a uint8 image batch to ``device`` and only there make it float32 in ``[0, 1]``.

    The copy moves a quarter of the bytes a float batch would. With ``channels_last`` a 4-D batch is
    laid out NHWC (faster convolutions on recent GPUs); the layout change also happens on the
    uint8 data, before the conversion. Refuses anything but uint8, since dividing an already
    normalized batch by 255 again would train on near-black images without any error.
    """
    if x_u8.dtype != torch.uint8:
        raise TypeError(f"to_device_float expects a uint8 tensor, got {x_u8.dtype}")
    x = x_u8.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.float().div_(255.0)
