"""Reading and writing images: the one place that turns files into tensors and back.

Every image enters the library through :func:`read_image` (or :func:`read_rgb_u8`, the data loaders'
fast path) and leaves through :func:`write_image`, so the rules below hold everywhere.

Reading
    * Formats: PNG (and APNG), JPEG (and camera MPO), WebP, TIFF, BMP, GIF and PPM. Other formats Pillow knows
      are refused on purpose: some of them (EPS) would run external programs on untrusted files.
    * EXIF orientation is applied (:func:`PIL.ImageOps.exif_transpose`), so pixels are upright. Animated
      or multi-page files (GIF, APNG, WebP, TIFF) give their first frame.
    * Every mode becomes RGB: ``1``, ``L``, ``P``, ``RGB``, ``CMYK``, ``YCbCr``, ``LAB`` and ``HSV`` by
      Pillow's own conversion (grayscale is replicated to three channels; CMYK and LAB use Pillow's fixed
      formulas, with no ICC colour management). Files with an alpha channel (``LA``, ``PA``, ``RGBA``,
      ``RGBa``) or a transparency key (palette or ``tRNS``) give ``alpha`` separately, the RGB values
      underneath it untouched (not premultiplied, not composited).
    * 16-bit samples keep full precision (``bit_depth == 16``, values ÷ 65535): grayscale ``I;16*``
      directly; ``I`` (32-bit integer) is taken as 16-bit and clipped to ``[0, 65535]``; ``F`` (32-bit
      float) is taken as ``[0, 1]``, clipped, NaN read as 0, and reported as 16-bit so it is re-saved at
      16 bits. Pillow 13 has no 16-bit colour mode and hands 48/64-bit PNGs and TIFFs to us as 8-bit RGB(A)
      holding only the *high* byte of each sample (truncated, not rounded). For those (PNG: RGB, RGBA,
      gray+alpha; TIFF: RGB, RGBA, RGBX, uncompressed or libtiff-compressed) the file is decoded a
      second time with the byte order of the sample unpacker swapped, which yields the *low* bytes through
      Pillow's own decompression, unfiltering and de-interlacing; the two are combined exactly. 16-bit
      layouts this does not cover (premultiplied ``RGBa``, CMYK, planar TIFF) are read at Pillow's 8 bits.
    * ``icc_profile`` is kept only when it is an RGB profile: after converting gray, CMYK or LAB pixels to
      RGB, their profile would describe the wrong colour space.
    * Declared sizes above :data:`MAX_PIXELS` or with a zero side are refused from the header, before any
      pixel is decoded. Pillow's own process-wide bomb limit is switched off only while a header is
      parsed, under a lock, so it neither warns nor refuses sizes below ours.
    * Truncated files are errors: this module relies on Pillow's default
      ``ImageFile.LOAD_TRUNCATED_IMAGES = False`` (never set it) and decodes inside its error handling.
    * Every failure is an :class:`ImageError` whose message is one line naming the file and the reason.
      Files are opened read-only and never modified.

Writing
    * The format follows the suffix (:data:`WRITE_SUFFIXES`); files are written through
      :func:`atomic_write`, so readers never see half a file and a failure leaves the old file intact.
    * Values are clamped to ``[0, 1]`` and rounded to the nearest level; NaN is refused.
    * ``bit_depth=16`` writes a 16-bit PNG (Pillow cannot encode 16-bit colour, so this module writes
      that PNG itself). JPEG and WebP cannot hold 16 bits and Pillow cannot write 16-bit colour TIFF, so
      those are written at 8 bits.
    * ``alpha`` is re-attached for PNG, WebP and TIFF. **JPEG has no alpha channel: it is dropped** (the
      RGB values are written as they are, not composited onto a background).
    * JPEG is written without chroma subsampling (4:4:4): sharpened detail should not be blurred again.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import stat
import struct
import sys
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "MAX_PIXELS",
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
    "ImageError",
    "Picture",
    "atomic_write",
    "list_images",
    "read_image",
    "read_rgb_u8",
    "remove_stale_temps",
    "write_image",
]

READ_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})
"""Suffixes :func:`list_images` picks up in folders (any case). Explicitly named files may have others."""

WRITE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"})
"""Suffixes :func:`write_image` accepts (any case); the suffix chooses the format."""

MAX_PIXELS: int = 16384 * 16384
"""Largest declared width × height that is decoded (256 Mi pixels, 3 GiB as a float32 RGB tensor)."""

_READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "PPM")  # JPEG also opens MPO
_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
# Magic numbers, only to tell "damaged PNG" from "not an image at all" when Pillow cannot identify a file.
_MAGIC = (
    (b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"), (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"), (b"BM", "BMP"), (b"RIFF", "WEBP"),
)
# 16-bit colour rawmodes whose low bytes can be had by decoding again with the byte order swapped.
_SWAPPABLE_16 = frozenset(f"{m};16{e}" for m in ("RGB", "RGBA", "RGBX") for e in "BLN")
_SWAP_ORDER = {"B": "L", "L": "B", "N": "B" if sys.byteorder == "little" else "L"}
_OPEN_LOCK = threading.Lock()


class ImageError(ValueError):
    """Unreadable, unsupported or bad image, or a bad request to write one.

    ``str(err)`` is one line naming the file and the reason (``"photos/x.jpg: truncated JPEG data"``),
    so the command line can print it without a traceback.
    """


@dataclass(eq=False)  # eq=False: comparing tensors with == is elementwise, not a bool
class Picture:
    """A decoded image plus what is needed to write it back faithfully."""

    rgb: torch.Tensor
    """float32 ``(3, H, W)`` in ``[0, 1]``, upright (EXIF orientation applied)."""
    alpha: torch.Tensor | None
    """float32 ``(1, H, W)`` in ``[0, 1]``, kept aside; ``None`` if the file had no alpha."""
    bit_depth: int
    """8 or 16 (16 when the source had 16-bit or float samples)."""
    format: str
    """Pillow format name of the source (``"PNG"``, ``"JPEG"``, ...)."""
    icc_profile: bytes | None
    """The source's RGB ICC profile, to carry over on save; ``None`` if absent or not RGB."""
    path: Path | None


def _error(path: str | Path, reason: object) -> ImageError:
    return ImageError(f"{path}: {' '.join(str(reason).split())}")


def _named_os_error(exc: OSError, path: str | Path) -> OSError:
    """The same error (same errno, so the same subclass) but naming ``path`` instead of a temp file."""
    if exc.errno is not None:
        return OSError(exc.errno, exc.strerror or str(exc), str(path))
    return OSError(f"{path}: {' '.join(str(exc).split())}")


# Reading ------------------------------------------------------------------------------------------------


@dataclass
class _Decoded:
    pixels: np.ndarray  # (H, W, 3 or 4): uint8, uint16, or float32 in [0, 1]; channel 3 is alpha
    format: str
    icc_profile: bytes | None


def _open(fp: IO[bytes], path: Path) -> Image.Image:
    """Parse the header only, with Pillow's bomb check replaced by ours (see module doc)."""
    with _OPEN_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            im = Image.open(fp, formats=_READ_FORMATS)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = im.size
    if w <= 0 or h <= 0:
        raise _error(path, f"declares an empty {w}x{h} image")
    if w * h > MAX_PIXELS:
        raise _error(
            path, f"declares {w}x{h} = {w * h:,} pixels, more than the {MAX_PIXELS:,} allowed (MAX_PIXELS)"
        )
    return im


def _rawmode(im: Image.Image) -> str | None:
    """The sample unpacker every tile uses, if there is exactly one (read before ``load`` clears tiles)."""
    modes = {t.args if isinstance(t.args, str) else (t.args or (None,))[0] for t in im.tile}
    mode = modes.pop() if len(modes) == 1 else None
    return mode if isinstance(mode, str) else None


def _with_rawmode(im: Image.Image, rawmode: str) -> None:
    im.tile = [
        t._replace(args=rawmode if isinstance(t.args, str) else (rawmode, *t.args[1:])) for t in im.tile
    ]


def _upright(im: Image.Image) -> None:
    """Apply EXIF orientation in place; a damaged EXIF block must not make the pixels unreadable."""
    with contextlib.suppress(ValueError, SyntaxError, OSError, KeyError, TypeError, struct.error):
        ImageOps.exif_transpose(im, in_place=True)


def _rgb_icc(im: Image.Image) -> bytes | None:
    icc = im.info.get("icc_profile")
    # Bytes 16-19 of an ICC header name the colour space the profile describes.
    return bytes(icc) if isinstance(icc, bytes | bytearray) and icc[16:20] == b"RGB " else None


def _key_alpha(values: np.ndarray, key: object) -> np.ndarray | None:
    """Alpha from a transparency key colour (tRNS on 16-bit gray or RGB): 0 where it matches."""
    key_arr = np.asarray(key).reshape(-1)
    if key_arr.size != values.shape[-1]:
        return None
    opaque = np.iinfo(values.dtype).max
    return np.where((values == key_arr.astype(values.dtype)).all(-1, keepdims=True), 0, opaque).astype(
        values.dtype
    )


def _decode_16bit_colour(fp: IO[bytes], path: Path, im: Image.Image, rawmode: str) -> np.ndarray:
    """Full 16-bit samples of a 48/64-bit PNG or TIFF that Pillow would truncate to 8 bits.

    Pillow's decode gives the high bytes; decoding once more with the unpacker's byte order swapped
    gives the low bytes (same decompression, filters and interlacing, so the two line up exactly).
    """
    im.load()
    _upright(im)
    high = np.asarray(im)
    fp.seek(0)
    again = _open(fp, path)
    _with_rawmode(again, rawmode[:-1] + _SWAP_ORDER[rawmode[-1]])
    again.load()
    _upright(again)
    values = (high.astype(np.uint16) << 8) | np.asarray(again)
    if rawmode.startswith("RGB;") and "transparency" in im.info:
        alpha = _key_alpha(values, im.info["transparency"])
        if alpha is not None:
            values = np.concatenate([values, alpha], axis=-1)
    return values


def _decode_16bit_gray_alpha(im: Image.Image) -> np.ndarray:
    """16-bit gray + alpha PNG: Pillow's ``LA;16B`` keeps high bytes only, but the plain ``RGBA``
    unpacker has the same 32-bit pixel size and copies all four bytes (gray hi, lo, alpha hi, lo)."""
    _with_rawmode(im, "RGBA")
    im.load()
    _upright(im)
    b = np.asarray(im).astype(np.uint16)
    gray, alpha = (b[..., 0:1] << 8) | b[..., 1:2], (b[..., 2:3] << 8) | b[..., 3:4]
    return np.concatenate([gray, gray, gray, alpha], axis=-1)


def _to_array(fp: IO[bytes], path: Path, im: Image.Image) -> np.ndarray:
    rawmode = _rawmode(im)
    if im.format == "PNG" and im.mode == "RGBA" and rawmode == "LA;16B":
        return _decode_16bit_gray_alpha(im)
    if im.format in ("PNG", "TIFF") and im.mode in ("RGB", "RGBA") and rawmode in _SWAPPABLE_16:
        return _decode_16bit_colour(fp, path, im, rawmode)
    im.load()
    _upright(im)
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        values = np.asarray(im)
        if mode == "F":
            values = np.nan_to_num(values.astype(np.float32), nan=0.0).clip(0.0, 1.0)
        else:
            values = values.clip(0, 65535).astype(np.uint16)
        values = np.repeat(values[..., None], 3, axis=-1)
        if "transparency" in im.info and mode != "F":
            alpha = _key_alpha(values[..., :1], im.info["transparency"])
            if alpha is not None:
                values = np.concatenate([values, alpha], axis=-1)
        return values
    if mode in _ALPHA_MODES or "transparency" in im.info:
        if mode == "La":
            im = im.convert("LA")
        return np.asarray(im.convert("RGBA"))
    return np.asarray(im if mode == "RGB" else im.convert("RGB"))


def _decode_reason(exc: Exception, fmt: str | None, head: bytes) -> str:
    msg = " ".join(str(exc).split())
    if isinstance(exc, UnidentifiedImageError):
        for magic, name in _MAGIC:
            if head.startswith(magic):
                return f"damaged or truncated {name} header"
        return f"not an image in a supported format ({', '.join(_READ_FORMATS)})"
    what = fmt or "image"
    if isinstance(exc, OSError | EOFError) and ("truncated" in msg.lower() or isinstance(exc, EOFError)):
        return f"truncated {what} data ({msg})"
    if "not available" in msg or "unsupported" in msg.lower():
        return f"unsupported {what} variant ({msg})"
    if isinstance(exc, MemoryError):
        return f"out of memory decoding {what}"
    return f"damaged {what} data ({type(exc).__name__}: {msg})" if msg else f"damaged {what} data"


def _decode(path: str | Path) -> _Decoded:
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _error(path, "no such file") from None
    except OSError as exc:
        raise _error(path, exc.strerror or exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise _error(path, "is a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise _error(path, "is not a regular file")
    if info.st_size == 0:
        raise _error(path, "empty file (0 bytes)")
    try:
        fp = open(path, "rb")  # noqa: SIM115 -- closed by the with-block right below
    except OSError as exc:
        raise _error(path, exc.strerror or exc) from exc
    with fp:
        head = fp.read(16)
        fp.seek(0)
        fmt: str | None = None
        try:
            im = _open(fp, path)
            fmt = im.format
            pixels = _to_array(fp, path, im)
            icc = _rgb_icc(im)
        except ImageError:
            raise
        except Exception as exc:  # Pillow's plugins raise many types on damaged files; all mean "bad file"
            raise _error(path, _decode_reason(exc, fmt, head)) from exc
    return _Decoded(pixels=pixels, format=fmt or "", icc_profile=icc)


def read_image(path: str | Path) -> Picture:
    """Decode an image file into a :class:`Picture` (the rules are in the module docstring).

    Raises :class:`ImageError` naming the file when it cannot be read.
    """
    decoded = _decode(path)
    px = decoded.pixels
    scale = np.float32({np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(px.dtype, 1.0))

    def planes(channels: slice) -> torch.Tensor:
        chw = np.moveaxis(px[..., channels], -1, 0)
        out = np.empty(chw.shape, dtype=np.float32)
        # Division, not multiplication by 1/scale: it is correctly rounded, so k/255 round-trips exactly.
        np.divide(chw, scale, out=out, dtype=np.float32)
        return torch.from_numpy(out)

    return Picture(
        rgb=planes(slice(0, 3)),
        alpha=planes(slice(3, 4)) if px.shape[2] == 4 else None,
        bit_depth=8 if px.dtype == np.uint8 else 16,
        format=decoded.format,
        icc_profile=decoded.icc_profile,
        path=Path(path),
    )


def read_rgb_u8(path: str | Path) -> np.ndarray:
    """Decode an image file to a writable ``(H, W, 3)`` uint8 array, EXIF orientation applied.

    The data loaders' fast path: same mode rules as :func:`read_image`, alpha dropped (not composited),
    16-bit samples rounded to the nearest 8-bit level, so it equals ``read_image`` quantized to 8 bits.
    """
    px = _decode(path).pixels[..., :3]
    if px.dtype == np.uint16:
        return ((px.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if px.dtype == np.float32:
        return np.rint(px * 255.0).astype(np.uint8)
    out = np.ascontiguousarray(px)
    return out if out.flags.writeable else out.copy()


# Writing ------------------------------------------------------------------------------------------------


def _create_temp(path: Path) -> Path:
    """An empty, new file next to ``path``, created with the usual permissions (umask applied).

    Hidden (leading dot) so :func:`list_images` never picks up one left by a killed process, and ending
    in ``path``'s suffix for writers that look at it (``numpy.save`` appends ``.npy`` otherwise).
    """
    for _ in range(100):
        tmp = path.with_name(f".{path.stem[:80]}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _named_os_error(exc, path) from exc
        os.close(fd)
        with contextlib.suppress(OSError):  # an existing file keeps its permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        return tmp
    raise FileExistsError(f"{path}: could not create a temporary file next to it")


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temp files that :func:`atomic_write` calls for ``path`` left behind; return them.

    A process killed between creating its temp file and renaming it (SIGKILL, power loss) leaves the
    temp file next to ``path``, forever. A program that rewrites the same file over and over (a
    training run's checkpoint) calls this on start, when no writer of ``path`` can be running.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.stem[:80])}\.[0-9a-f]{{8}}\.tmp{re.escape(path.suffix)}")
    removed = []
    with contextlib.suppress(OSError):  # a missing or unreadable folder has nothing to clean
        for candidate in path.parent.iterdir():
            if pattern.fullmatch(candidate.name) and candidate.is_file():
                with contextlib.suppress(FileNotFoundError):
                    candidate.unlink()
                    removed.append(candidate)
    return removed


def _fsync(path: Path, directory: bool = False) -> None:
    if directory and os.name != "posix":
        return  # only POSIX can (and needs to) sync a directory entry
    fd = os.open(path, os.O_RDWR if os.name == "nt" and not directory else os.O_RDONLY)
    try:
        if directory:
            with contextlib.suppress(OSError):  # some file systems refuse; the data itself is synced
                os.fsync(fd)
        else:
            os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Write ``path`` all-or-nothing: yield a temp path in the same folder, then move it into place.

    On normal exit the temp file is fsynced and ``os.replace``-d onto ``path`` (atomic on one file
    system), so readers see the old file or the complete new one, never a partial one, even after a
    crash. If the block raises, the temp file is removed and ``path`` is untouched. OS errors name
    ``path``, not the temp file.

    >>> with atomic_write("model.pt") as tmp:  # doctest: +SKIP
    ...     torch.save(state, tmp)
    """
    path = Path(path)
    tmp = _create_temp(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _named_os_error(exc, path) from exc
        raise
    _fsync(path.parent, directory=True)


def _quantize(path: Path, name: str, t: object, channels: int, levels: int) -> np.ndarray:
    """``(C, H, W)`` float tensor → rounded integer levels ``0..levels`` as ``(C, H, W)`` numpy."""
    if not isinstance(t, torch.Tensor):
        raise _error(path, f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != 3 or t.shape[0] != channels or t.shape[1] == 0 or t.shape[2] == 0:
        raise _error(path, f"{name} must have shape ({channels}, H, W) with H, W > 0, got {tuple(t.shape)}")
    x = t.detach().to(device="cpu", dtype=torch.float32)
    if torch.isnan(x).any():
        raise _error(path, f"{name} contains NaN values")
    q = x.clamp(0.0, 1.0).mul(levels).round().to(torch.int32).numpy()
    return q.astype(np.uint16 if levels > 255 else np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_filter(rows: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """PNG-filter ``rows`` (n, R) of raw bytes: each row gets the filter (None, Sub, Up, Average, Paeth)
    with the smallest sum of absolute signed residuals, libpng's heuristic. Encoding needs only raw
    bytes, so unlike decoding it vectorises. Returns (n, 1 + R) bytes: filter type, then residuals."""
    x = rows.astype(np.int16)
    b = np.concatenate([above[None].astype(np.int16), x[:-1]])
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]).astype(np.uint8)  # mod 256
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)  # (5, n)
    best = cost.argmin(axis=0)
    chosen = candidates[best, np.arange(len(best))]
    return np.concatenate([best.astype(np.uint8)[:, None], chosen], axis=1)


def _write_png16(target: Path, hwc: np.ndarray, icc_profile: bytes | None) -> None:
    """Write a 16-bit RGB or RGBA PNG (colour type 2 or 6), streaming blocks of rows."""
    h, w, c = hwc.shape
    raw = np.ascontiguousarray(hwc, dtype=">u2").reshape(h, w * c).view(np.uint8)  # (h, 2·w·c) bytes
    header = struct.pack(">IIBBBBB", w, h, 16, 2 if c == 3 else 6, 0, 0, 0)
    rows_per_block = max(1, (1 << 20) // raw.shape[1])
    compressor = zlib.compressobj(6)
    with open(target, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header))
        if icc_profile:
            f.write(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
        above = np.zeros(raw.shape[1], dtype=np.uint8)
        for start in range(0, h, rows_per_block):
            rows = raw[start : start + rows_per_block]
            data = compressor.compress(_png_filter(rows, above, 2 * c).tobytes())
            if data:
                f.write(_png_chunk(b"IDAT", data))
            above = rows[-1]
        f.write(_png_chunk(b"IDAT", compressor.flush()) + _png_chunk(b"IEND", b""))


def write_image(
    path: str | Path,
    rgb: torch.Tensor,
    alpha: torch.Tensor | None = None,
    bit_depth: int = 8,
    quality: int = 95,
    icc_profile: bytes | None = None,
) -> Path:
    """Write ``rgb`` (float ``(3, H, W)`` in ``[0, 1]``) to ``path`` atomically; return ``path``.

    The suffix picks the format (:data:`WRITE_SUFFIXES`). ``bit_depth=16`` takes effect for PNG only
    (module doc); ``alpha`` (``(1, H, W)``) is re-attached for PNG, WebP and TIFF and dropped for JPEG;
    ``quality`` (1-100) applies to JPEG and WebP; ``icc_profile`` is embedded as given. Bad arguments
    raise :class:`ImageError`, file-system failures ``OSError``, both naming ``path`` in one line; either
    way no partial or temporary file is left behind.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise _error(
            path, f"cannot write {path.suffix or 'files without a suffix'!r}; use one of "
            f"{', '.join(sorted(WRITE_SUFFIXES))}"
        )
    if bit_depth not in (8, 16):
        raise _error(path, f"bit_depth must be 8 or 16, got {bit_depth}")
    if not 1 <= quality <= 100:
        raise _error(path, f"quality must be in 1..100, got {quality}")
    levels = 65535 if bit_depth == 16 and fmt == "PNG" else 255
    planes = [_quantize(path, "rgb", rgb, 3, levels)]
    if alpha is not None and fmt in _ALPHA_FORMATS:
        planes.append(_quantize(path, "alpha", alpha, 1, levels))
        if planes[1].shape[1:] != planes[0].shape[1:]:
            raise _error(path, f"alpha is {planes[1].shape[1:]} but rgb is {planes[0].shape[1:]} (H, W)")
    hwc = np.ascontiguousarray(np.concatenate(planes).transpose(1, 2, 0))
    options: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=quality, exact=True)  # exact: keep RGB under transparent pixels
    elif fmt == "TIFF":
        options.update(compression="tiff_adobe_deflate")
    try:
        with atomic_write(path) as tmp:
            if levels == 65535:
                _write_png16(tmp, hwc, icc_profile)
            else:
                Image.fromarray(hwc).save(tmp, format=fmt, **options)
    except OSError as exc:
        if exc.errno is not None:  # disk full, permission denied, ...: keep the errno and its subclass
            raise _named_os_error(exc, path) from exc
        raise _error(path, f"cannot write {fmt}: {exc}") from exc
    except (ValueError, TypeError, KeyError) as exc:  # Pillow's encoders on sizes/options they refuse
        raise _error(path, f"cannot write {fmt}: {exc}") from exc
    return path


# Listing ------------------------------------------------------------------------------------------------


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in READ_SUFFIXES and not p.name.startswith(".")


def _raise(exc: OSError) -> None:
    raise exc


def _folder_images(folder: Path, recursive: bool) -> list[Path]:
    """Images in ``folder`` (optionally its subfolders), sorted by relative path; hidden names skipped
    (editor and OS litter such as ``._IMG_1.jpg``, and temp files of interrupted writes)."""
    if not recursive:
        found = [p for p in folder.iterdir() if _is_image_name(p) and p.is_file()]
    else:
        found = []
        for root, dirs, files in os.walk(folder, onerror=_raise):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found.extend(p for p in (Path(root, f) for f in files) if _is_image_name(p) and p.is_file())
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _expand(item: str | Path, recursive: bool) -> list[Path]:
    text = os.path.expanduser(str(item))
    p = Path(text)
    if p.is_dir():
        return _folder_images(p, recursive)
    if p.exists():
        return [p]  # named explicitly: kept whatever its suffix; read_image reports what it is
    if not any(ch in text for ch in "*?["):
        raise ImageError(f"{item}: no such file or folder")
    matches = sorted(glob.glob(text, recursive=True))
    if not matches:
        raise ImageError(f"pattern {str(item)!r} matched nothing")
    found: list[Path] = []
    for m in map(Path, matches):
        if m.is_dir():
            found.extend(_folder_images(m, recursive))
        elif _is_image_name(m):
            found.append(m)
    if not found:
        raise ImageError(
            f"pattern {str(item)!r} matched no image files ({', '.join(sorted(READ_SUFFIXES))})"
        )
    return found


def list_images(inputs: Sequence[str | Path], recursive: bool = False,
                unmatched: list[tuple[str, str]] | None = None) -> list[Path]:
    """Expand files, folders and glob patterns into image paths, de-duplicated, in input order.

    * a file is kept even with an unusual suffix (:func:`read_image` will say what is wrong with it);
    * a folder gives its files with :data:`READ_SUFFIXES` (any case), sorted, hidden names skipped;
      with ``recursive`` also those of its non-hidden subfolders; an empty folder gives nothing;
    * a glob pattern (``*``, ``?``, ``[...]``; ``**`` spans folders) gives its matching image files
      and the images of matching folders.

    A missing path raises ``ImageError("X: no such file or folder")``, a pattern without matches
    ``ImageError("pattern 'P' matched nothing")`` (:class:`ImageError` is a ``ValueError``). With an
    ``unmatched`` list, such items are appended to it as ``(item, reason)`` instead and the others are
    still listed: a batch command reports one bad argument in one line and goes on.
    """
    if isinstance(inputs, str | Path):
        inputs = [inputs]  # a lone string would otherwise be iterated character by character
    seen: set[str] = set()
    out: list[Path] = []
    for item in inputs:
        try:
            found = _expand(item, recursive)
        except ImageError as exc:
            if unmatched is None:
                raise
            unmatched.append((str(item), str(exc)))
            continue
        for p in found:
            key = os.path.normcase(os.path.abspath(p))
            if key not in seen:
                seen.add(key)
                out.append(p)
    return out
