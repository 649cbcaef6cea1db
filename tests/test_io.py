"""Image I/O: every mode the reader promises, exact 16-bit round trips, atomic writes, one-line errors.

All files are generated in ``tmp_path``. 16-bit colour PNGs are built by hand here (:func:`png16`, no
filtering) so the reader is checked against an encoder independent of the one in ``unblur.io``.
"""

from __future__ import annotations

import errno
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageCms, ImageFile

import unblur.io as uio
from unblur.io import (
    MAX_PIXELS,
    READ_SUFFIXES,
    WRITE_SUFFIXES,
    ImageError,
    Picture,
    atomic_write,
    list_images,
    read_image,
    read_rgb_u8,
    write_image,
)

RNG = np.random.default_rng(1234)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# Helpers -------------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png16(
    path: Path, values: np.ndarray, exif: bytes | None = None, key: tuple[int, ...] = (), interlace: bool = False
) -> Path:
    """A 16-bit PNG from (H, W, C) uint16, C in 1..4 (gray, gray+alpha, RGB, RGBA), filter type 0;
    ``key`` is a transparent colour (tRNS) for gray or RGB; ``interlace`` stores it in Adam7 passes."""
    h, w, c = values.shape
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, int(interlace))
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = b"".join(
        b"\x00" + row.astype(">u2").tobytes() for x0, y0, dx, dy in passes for row in values[y0::dy, x0::dx] if row.size
    )
    extra = _chunk(b"eXIf", exif) if exif else b""
    extra += _chunk(b"tRNS", struct.pack(f">{len(key)}H", *key)) if key else b""
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width`` × ``height`` RGB pixels and that holds no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b""))
    return path


def u8(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def u16_not_257(shape: tuple[int, ...]) -> np.ndarray:
    """16-bit values none of which is a multiple of 257 (those are exactly representable in 8 bits)."""
    v = RNG.integers(0, 65536, shape, dtype=np.uint16)
    return np.where(v % 257 == 0, v + 1, v).astype(np.uint16)


def hwc(pic: Picture, levels: int = 255) -> np.ndarray:
    """The picture's RGB(A) as integer levels (H, W, C)."""
    planes = [pic.rgb] if pic.alpha is None else [pic.rgb, pic.alpha]
    return torch.round(torch.cat(planes) * levels).to(torch.int64).permute(1, 2, 0).numpy()


def to_chw(values: np.ndarray, levels: int = 255) -> torch.Tensor:
    return torch.from_numpy(values.astype(np.float32) / levels).permute(2, 0, 1).contiguous()


def one_line_naming(err: BaseException, path: Path) -> str:
    text = str(err)
    assert "\n" not in text, text
    assert path.name in text, text
    return text


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# Constants and types ---------------------------------------------------------------------------------------


def test_public_constants() -> None:
    assert {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"} == READ_SUFFIXES
    assert {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"} == WRITE_SUFFIXES
    assert MAX_PIXELS >= 256_000_000
    assert issubclass(ImageError, ValueError)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# Reading: modes ---------------------------------------------------------------------------------------------


def test_rgb_png_reads_exact_values_as_contiguous_float32(tmp_path: Path) -> None:
    a = u8((5, 7, 3))
    Image.fromarray(a).save(tmp_path / "a.png")
    pic = read_image(tmp_path / "a.png")
    assert pic.rgb.dtype == torch.float32 and pic.rgb.shape == (3, 5, 7) and pic.rgb.is_contiguous()
    assert torch.equal(pic.rgb, to_chw(a))  # k/255 exactly as float32 division gives it
    assert (pic.alpha, pic.bit_depth, pic.format, pic.icc_profile) == (None, 8, "PNG", None)
    assert pic.path == tmp_path / "a.png"
    assert np.array_equal(read_rgb_u8(tmp_path / "a.png"), a)


@pytest.mark.parametrize(("mode", "suffix"), [("L", ".png"), ("L", ".bmp"), ("1", ".png"), ("P", ".png")])
def test_gray_bilevel_and_palette_become_rgb(tmp_path: Path, mode: str, suffix: str) -> None:
    src = Image.fromarray(u8((6, 5))).convert(mode) if mode != "P" else Image.fromarray(u8((6, 5, 3))).quantize(7)
    src.save(tmp_path / f"a{suffix}")
    expected = np.asarray(src.convert("RGB"))
    pic = read_image(tmp_path / f"a{suffix}")
    assert pic.alpha is None and pic.bit_depth == 8
    assert np.array_equal(hwc(pic), expected)
    if mode != "P":  # grayscale replicated to three equal channels
        assert torch.equal(pic.rgb[0], pic.rgb[1]) and torch.equal(pic.rgb[1], pic.rgb[2])


def test_palette_with_transparency_gives_alpha(tmp_path: Path) -> None:
    idx = RNG.integers(0, 4, (6, 8), dtype=np.uint8)
    im = Image.fromarray(idx, mode="L").convert("P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    im.save(tmp_path / "p.png", transparency=2)
    pic = read_image(tmp_path / "p.png")
    assert pic.alpha is not None
    assert np.array_equal(hwc(pic)[..., 3], np.where(idx == 2, 0, 255))
    assert np.array_equal(hwc(pic)[..., :3], np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]])[idx])


@pytest.mark.parametrize(("mode", "suffix"), [("RGBA", ".png"), ("LA", ".png"), ("PA", ".tif"), ("RGBA", ".tif")])
def test_alpha_modes_keep_alpha_aside(tmp_path: Path, mode: str, suffix: str) -> None:
    a = u8((4, 6, 4))
    src = Image.fromarray(a).convert(mode) if mode != "PA" else Image.fromarray(a).quantize(5).convert("PA")
    if mode == "PA":
        src.putalpha(Image.fromarray(a[..., 3]))
    src.save(tmp_path / f"a{suffix}")
    expected = np.asarray(src.convert("RGBA"))
    pic = read_image(tmp_path / f"a{suffix}")
    assert pic.alpha is not None and pic.alpha.shape == (1, 4, 6) and pic.bit_depth == 8
    assert np.array_equal(hwc(pic), expected)  # RGB under the alpha is untouched, not premultiplied
    assert np.array_equal(read_rgb_u8(tmp_path / f"a{suffix}"), expected[..., :3])


def test_rgba_alpha_is_reattached_on_save(tmp_path: Path) -> None:
    a = u8((5, 6, 4))
    Image.fromarray(a).save(tmp_path / "a.png")
    pic = read_image(tmp_path / "a.png")
    for name in ("b.png", "b.tif", "b.webp"):
        write_image(tmp_path / name, pic.rgb, pic.alpha)
        assert Image.open(tmp_path / name).mode == "RGBA"
        back = read_image(tmp_path / name)
        assert back.alpha is not None and np.array_equal(hwc(back)[..., 3], a[..., 3])  # WebP alpha: lossless
    assert np.array_equal(hwc(read_image(tmp_path / "b.tif")), a)
    write_image(tmp_path / "b.jpg", pic.rgb, pic.alpha)  # JPEG has no alpha: documented drop
    assert Image.open(tmp_path / "b.jpg").mode == "RGB" and read_image(tmp_path / "b.jpg").alpha is None


def test_cmyk_tiff_and_jpeg_use_pillows_conversion(tmp_path: Path) -> None:
    cmyk = np.array([[[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 0, 255], [0, 0, 0, 0]]], dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tif")
    assert np.array_equal(
        hwc(read_image(tmp_path / "c.tif"))[0], [[0, 255, 255], [255, 0, 255], [0, 0, 0], [255, 255, 255]]
    )
    big = np.repeat(np.repeat(cmyk, 16, axis=0), 16, axis=1)
    Image.fromarray(big, mode="CMYK").save(tmp_path / "c.jpg", quality=95)
    pic = read_image(tmp_path / "c.jpg")
    assert pic.format == "JPEG" and pic.rgb.shape == (3, 16, 64)
    assert np.array_equal(hwc(pic), np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB")))


@pytest.mark.parametrize("mode", ["YCbCr", "LAB"])
def test_ycbcr_and_lab_tiff(tmp_path: Path, mode: str) -> None:
    src = Image.fromarray(u8((4, 5, 3))).convert(mode)
    src.save(tmp_path / "a.tif")
    assert Image.open(tmp_path / "a.tif").mode == mode
    assert np.array_equal(hwc(read_image(tmp_path / "a.tif")), np.asarray(src.convert("RGB")))


def test_16bit_gray_png_is_exact_and_rewrites_as_16bit(tmp_path: Path) -> None:
    v = u16_not_257((6, 9))
    Image.fromarray(v).save(tmp_path / "g.png")  # Pillow writes I;16 as a 16-bit gray PNG
    pic = read_image(tmp_path / "g.png")
    assert pic.bit_depth == 16 and pic.alpha is None
    err = (pic.rgb.double() - torch.from_numpy(v.astype(np.float64) / 65535)).abs().max()
    assert err < 1 / 65535 / 2
    write_image(tmp_path / "out.png", pic.rgb, bit_depth=pic.bit_depth)
    assert (tmp_path / "out.png").read_bytes()[24] == 16  # IHDR bit depth
    back = read_image(tmp_path / "out.png")
    assert back.bit_depth == 16 and torch.equal(back.rgb, pic.rgb)
    assert np.array_equal(hwc(back, 65535), np.repeat(v[..., None], 3, axis=2))


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_png_keeps_full_precision(tmp_path: Path, channels: int) -> None:
    """Pillow alone gives only the high byte of 48/64-bit and 16-bit gray+alpha PNGs."""
    v = u16_not_257((7, 5, channels))
    png16(tmp_path / "c.png", v)
    pic = read_image(tmp_path / "c.png")
    expected = v if channels != 2 else v[..., [0, 0, 0, 1]]
    assert pic.bit_depth == 16 and (pic.alpha is not None) == (channels in (2, 4))
    assert np.array_equal(hwc(pic, 65535), expected)
    write_image(tmp_path / "out.png", pic.rgb, pic.alpha, bit_depth=16)
    raw = Image.open(tmp_path / "out.png")
    assert raw.mode == ("RGBA" if pic.alpha is not None else "RGB")
    assert np.array_equal(np.asarray(raw), (expected >> 8).astype(np.uint8))  # Pillow's own high-byte view
    assert np.array_equal(hwc(read_image(tmp_path / "out.png"), 65535), expected)
    # The 8-bit fast path rounds the full 16-bit value; Pillow's high byte would truncate it.
    assert np.array_equal(read_rgb_u8(tmp_path / "c.png"), np.round(expected[..., :3] / 257).astype(np.uint8))


def test_transparency_key_gives_alpha(tmp_path: Path) -> None:
    rgb = np.array([[[1000, 2000, 3000], [1000, 2000, 3300], [5, 5, 5]]], dtype=np.uint16)
    png16(tmp_path / "rgb16.png", rgb, key=(1000, 2000, 3000))
    gray = np.array([[[1000], [1001], [5]]], dtype=np.uint16)
    png16(tmp_path / "gray16.png", gray, key=(1000,))
    Image.fromarray((rgb >> 8).astype(np.uint8)).save(tmp_path / "rgb8.png", transparency=(3, 7, 11))
    for name, levels, opaque_rgb in [("rgb16.png", 65535, rgb), ("gray16.png", 65535, gray[..., [0, 0, 0]]),
                                     ("rgb8.png", 255, rgb >> 8)]:
        pic = read_image(tmp_path / name)
        assert pic.alpha is not None, name
        assert hwc(pic, levels)[0, :, 3].tolist() == [0, levels, levels], name
        assert np.array_equal(hwc(pic, levels)[..., :3], opaque_rgb), name


def test_16bit_png_rounds_not_truncates_to_8bit(tmp_path: Path) -> None:
    png16(tmp_path / "c.png", np.full((1, 1, 3), 511, dtype=np.uint16))  # 511/257 = 1.99; high byte: 1
    assert read_rgb_u8(tmp_path / "c.png").tolist() == [[[2, 2, 2]]]


def test_16bit_tiff_colour_keeps_full_precision(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    for channels in (3, 4):
        v = u16_not_257((6, 7, channels))
        extra = {"extrasamples": ["unassalpha"]} if channels == 4 else {}
        for i, options in enumerate([{}, {"byteorder": ">"}, {"compression": "zlib"}, {"rowsperstrip": 2}]):
            path = tmp_path / f"t{channels}_{i}.tif"
            tifffile.imwrite(path, v, photometric="rgb", **options, **extra)
            pic = read_image(path)
            assert pic.bit_depth == 16 and pic.format == "TIFF", options
            assert np.array_equal(hwc(pic, 65535), v), options


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16bit_gray_tiff(tmp_path: Path, mode: str) -> None:
    v = u16_not_257((3, 4))
    Image.fromarray(v).convert(mode).save(tmp_path / "g.tif") if mode == "I;16" else Image.frombytes(
        mode, (4, 3), v.astype(">u2").tobytes()
    ).save(tmp_path / "g.tif")
    pic = read_image(tmp_path / "g.tif")
    assert pic.bit_depth == 16 and np.array_equal(hwc(pic, 65535)[..., 0], v)


def test_32bit_int_and_float_tiff_rules(tmp_path: Path) -> None:
    ints = np.array([[-5, 0, 1000, 65535, 70000]], dtype=np.int32)
    Image.fromarray(ints).save(tmp_path / "i.tif")  # mode I: taken as 16-bit, clipped
    pic = read_image(tmp_path / "i.tif")
    assert pic.bit_depth == 16 and hwc(pic, 65535)[0, :, 0].tolist() == [0, 0, 1000, 65535, 65535]
    floats = np.array([[-0.5, 0.0, 0.25, 1.0, 7.0, np.nan]], dtype=np.float32)
    Image.fromarray(floats).save(tmp_path / "f.tif")  # mode F: taken as [0, 1], clipped, NaN read as 0
    pic = read_image(tmp_path / "f.tif")
    assert pic.bit_depth == 16 and pic.rgb[0, 0].tolist() == [0.0, 0.0, 0.25, 1.0, 1.0, 0.0]
    assert read_rgb_u8(tmp_path / "f.tif")[0, :, 0].tolist() == [0, 0, 64, 255, 255, 0]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_exif_orientation_6_rotates(tmp_path: Path, suffix: str) -> None:
    a = np.zeros((16, 32, 3), dtype=np.uint8)
    a[:4, :4] = 255  # bright top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(a).save(tmp_path / f"o{suffix}", exif=exif, quality=95)
    pic = read_image(tmp_path / f"o{suffix}")
    assert pic.rgb.shape == (3, 32, 16)
    assert pic.rgb[:, :4, -4:].mean() > 0.9 and pic.rgb[:, :4, :4].mean() < 0.1  # now top-right
    assert read_rgb_u8(tmp_path / f"o{suffix}").shape == (32, 16, 3)


def test_exif_orientation_on_16bit_colour_png(tmp_path: Path) -> None:
    v = u16_not_257((3, 5, 3))
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise
    png16(tmp_path / "o.png", v, exif=exif.tobytes()[6:])  # PNG eXIf holds the TIFF block without "Exif\0\0"
    pic = read_image(tmp_path / "o.png")
    assert np.array_equal(hwc(pic, 65535), np.rot90(v))


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp", ".tif"])
def test_animated_and_multipage_give_first_frame(tmp_path: Path, suffix: str) -> None:
    colours = [(200, 10, 10), (10, 200, 10), (10, 10, 200)]
    frames = [Image.new("RGB", (8, 6), c) for c in colours]
    frames[0].save(tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:], duration=50, lossless=True)
    assert Image.open(tmp_path / f"anim{suffix}").n_frames == 3
    pic = read_image(tmp_path / f"anim{suffix}")
    assert pic.rgb.shape == (3, 6, 8)
    assert np.abs(hwc(pic)[..., :3] - np.array(colours[0])).max() <= 2  # GIF palette may shift a level


@pytest.mark.parametrize(("suffix", "fmt", "tol"), [(".jpg", "JPEG", 8), (".jpeg", "JPEG", 8),
                                                    (".webp", "WEBP", 10), (".tif", "TIFF", 0),
                                                    (".tiff", "TIFF", 0), (".bmp", "BMP", 0)])
def test_read_common_formats(tmp_path: Path, suffix: str, fmt: str, tol: int) -> None:
    ramp = np.linspace(0, 255, 48, dtype=np.float64)
    a = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], 128.0), axis=-1)[:32].astype(np.uint8)
    Image.fromarray(a).save(tmp_path / f"a{suffix}", quality=95)
    pic = read_image(tmp_path / f"a{suffix}")
    assert pic.format == fmt and pic.bit_depth == 8 and pic.rgb.shape == (3, 32, 48)
    assert np.abs(hwc(pic) - a).max() <= tol


def test_reading_does_not_modify_the_file(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 3
    Image.fromarray(u8((8, 8, 3))).save(tmp_path / "a.jpg", exif=exif)
    png16(tmp_path / "b.png", u16_not_257((4, 4, 3)))
    for path in (tmp_path / "a.jpg", tmp_path / "b.png"):
        before, mtime = path.read_bytes(), path.stat().st_mtime_ns
        read_image(path)
        read_rgb_u8(path)
        assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_icc_profile_is_read_and_carried_over(tmp_path: Path) -> None:
    icc = srgb_icc()
    Image.fromarray(u8((4, 4, 3))).save(tmp_path / "a.png", icc_profile=icc)
    pic = read_image(tmp_path / "a.png")
    assert pic.icc_profile == icc
    for name, depth in [("b.png", 8), ("b16.png", 16), ("b.jpg", 8), ("b.webp", 8), ("b.tif", 8)]:
        write_image(tmp_path / name, pic.rgb, bit_depth=depth, icc_profile=pic.icc_profile)
        assert read_image(tmp_path / name).icc_profile == icc, name


def test_non_rgb_icc_profile_is_dropped(tmp_path: Path) -> None:
    """A Lab (or gray, CMYK) profile no longer describes the pixels once they are converted to RGB."""
    lab_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.fromarray(u8((4, 4, 3))).save(tmp_path / "a.png", icc_profile=lab_icc)
    assert Image.open(tmp_path / "a.png").info["icc_profile"] == lab_icc
    assert read_image(tmp_path / "a.png").icc_profile is None


# Writing ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [*sorted(WRITE_SUFFIXES), ".PNG", ".JPG", ".TIF"])
def test_write_each_suffix(tmp_path: Path, suffix: str) -> None:
    ramp = torch.linspace(0, 1, 40)
    rgb = torch.stack([ramp[None, :].expand(24, 40), ramp[:24, None].expand(24, 40), torch.full((24, 40), 0.3)])
    out = write_image(tmp_path / f"out{suffix}", rgb)
    assert out == tmp_path / f"out{suffix}" and leftovers(tmp_path) == []
    pic = read_image(out)
    assert pic.format == {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(
        suffix.lower(), "TIFF"
    )
    err = (pic.rgb - rgb).abs()
    if suffix.lower() in (".png", ".tif", ".tiff"):
        assert err.max() <= 0.5 / 255 + 1e-6  # lossless up to 8-bit rounding
    else:
        assert err.mean() < 0.02


def test_write_rounds_and_clamps(tmp_path: Path) -> None:
    rgb = torch.tensor([0.6 / 255, 1.4 / 255, 254.6 / 255, -3.0, 7.0, float("inf")]).reshape(3, 1, 2)
    write_image(tmp_path / "a.png", rgb)
    assert read_rgb_u8(tmp_path / "a.png").transpose(2, 0, 1).ravel().tolist() == [1, 1, 255, 0, 255, 255]
    write_image(tmp_path / "b.png", rgb.to(torch.bfloat16).requires_grad_(), bit_depth=16)
    assert read_image(tmp_path / "b.png").bit_depth == 16


def test_write_16bit_falls_back_to_8bit_where_format_cannot(tmp_path: Path) -> None:
    rgb = torch.rand(3, 8, 8)
    for name in ("a.jpg", "a.webp", "a.tif"):
        write_image(tmp_path / name, rgb, bit_depth=16)
        assert read_image(tmp_path / name).bit_depth == 8, name


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"rgb": torch.rand(4, 5, 5)}, "shape (3, H, W)"),
        ({"rgb": torch.rand(5, 5)}, "shape (3, H, W)"),
        ({"rgb": torch.rand(3, 0, 5)}, "H, W > 0"),
        ({"rgb": np.zeros((3, 4, 4))}, "torch.Tensor"),
        ({"rgb": torch.full((3, 2, 2), float("nan"))}, "NaN"),
        ({"rgb": torch.rand(3, 4, 4), "alpha": torch.rand(1, 4, 5)}, "alpha"),
        ({"rgb": torch.rand(3, 4, 4), "bit_depth": 12}, "bit_depth"),
        ({"rgb": torch.rand(3, 4, 4), "quality": 0}, "quality"),
    ],
)
def test_write_bad_arguments(tmp_path: Path, kwargs: dict, needle: str) -> None:
    with pytest.raises(ImageError) as info:
        write_image(tmp_path / "bad.png", **kwargs)
    assert needle in one_line_naming(info.value, tmp_path / "bad.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["x.bmp", "x.gif", "x.txt", "noext"])
def test_write_unsupported_suffix(tmp_path: Path, name: str) -> None:
    with pytest.raises(ImageError) as info:
        write_image(tmp_path / name, torch.rand(3, 4, 4))
    assert ".png" in one_line_naming(info.value, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "x.png"
    with pytest.raises(FileNotFoundError) as info:
        write_image(target, torch.rand(3, 4, 4))
    assert str(target) in one_line_naming(info.value, target)


def test_disk_full_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"old")

    def full_disk(self: Image.Image, fp: str, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(OSError) as info:
        write_image(target, torch.rand(3, 4, 4))
    assert info.value.errno == errno.ENOSPC
    assert "No space left" in one_line_naming(info.value, target) and ".tmp" not in str(info.value)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_failed_replace_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(uio.os, "replace", refuse)
    with pytest.raises(PermissionError) as info:
        write_image(target, torch.rand(3, 4, 4))
    one_line_naming(info.value, target)
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


@pytest.mark.skipif(IS_ROOT or os.name != "posix", reason="root ignores folder permissions")
def test_write_into_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "x.png").write_bytes(b"old")
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as info:
            write_image(folder / "x.png", torch.rand(3, 4, 4))
        one_line_naming(info.value, folder / "x.png")
        assert sorted(p.name for p in folder.iterdir()) == ["x.png"]
        assert (folder / "x.png").read_bytes() == b"old"
    finally:
        folder.chmod(0o755)


# atomic_write ----------------------------------------------------------------------------------------------


def test_atomic_write_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "state.pt"
    target.write_bytes(b"old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and tmp.suffix == ".pt" and tmp.exists()
        torch.save({"w": torch.arange(3)}, tmp)
        assert target.read_bytes() == b"old"  # nothing visible until the block ends
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.arange(3))
    assert leftovers(tmp_path) == []
    with atomic_write(tmp_path / "arr.npy") as tmp:
        np.save(tmp, np.arange(4))  # would append ".npy" to a temp name without that suffix
    assert np.load(tmp_path / "arr.npy").tolist() == [0, 1, 2, 3] and leftovers(tmp_path) == []


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n" and leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    with atomic_write(tmp_path / "new.json") as tmp:
        tmp.write_text("{}")
    assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o666 & ~umask  # like a plain open()
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "old.json").chmod(0o640)
    with atomic_write(tmp_path / "old.json") as tmp:
        tmp.write_text("[]")
    assert (tmp_path / "old.json").stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode


# Errors ----------------------------------------------------------------------------------------------------


def _read_error(path: Path) -> str:
    """Both readers fail the same way, with one line naming the file."""
    with pytest.raises(ImageError) as fast:
        read_rgb_u8(path)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert str(fast.value) == str(info.value)
    return one_line_naming(info.value, path)


def test_error_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").touch()
    assert "empty" in _read_error(tmp_path / "empty.jpg")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp", ".gif"])
def test_error_truncated_file(tmp_path: Path, suffix: str) -> None:
    Image.fromarray(u8((64, 64, 3))).save(tmp_path / f"full{suffix}")
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    text = _read_error(tmp_path / f"cut{suffix}")
    assert "truncated" in text or "damaged" in text


def test_error_truncated_header(tmp_path: Path) -> None:
    (tmp_path / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert "PNG" in _read_error(tmp_path / "cut.png")


def test_error_text_file(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("hello, I am not a picture\nsecond line\n")
    assert "not an image" in _read_error(tmp_path / "notes.png")


def test_error_unsupported_format(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16)).save(tmp_path / "icon.ico")  # Pillow reads ICO, this module refuses it
    assert "supported format" in _read_error(tmp_path / "icon.ico")


def test_error_decompression_bomb_from_header(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    assert path.stat().st_size < 100
    saved = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning either
        text = _read_error(path)
    assert "100000x100000" in text and "MAX_PIXELS" in text
    assert saved == Image.MAX_IMAGE_PIXELS


def test_pillows_global_bomb_limit_neither_warns_nor_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a 20x20 image is a "bomb" for Pillow now
    Image.fromarray(u8((20, 20, 3))).save(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "a.png").rgb.shape == (3, 20, 20)
    assert Image.MAX_IMAGE_PIXELS == 100  # restored


@pytest.mark.parametrize(("w", "h"), [(0, 5), (5, 0)])
def test_error_zero_sized(tmp_path: Path, w: int, h: int) -> None:
    _read_error(png_header_only(tmp_path / "zero.png", w, h))


def test_error_folder_missing_and_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dir.png").mkdir()
    assert "folder" in _read_error(tmp_path / "dir.png")
    assert "no such file" in _read_error(tmp_path / "missing.png")
    Image.new("RGB", (2, 2)).save(tmp_path / "locked.png")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(uio, "open", denied, raising=False)  # works as root too
    assert "Permission denied" in _read_error(tmp_path / "locked.png")


@pytest.mark.skipif(IS_ROOT or os.name != "posix", reason="root can read any file")
def test_error_permission_denied_for_real(tmp_path: Path) -> None:
    Image.new("RGB", (2, 2)).save(tmp_path / "locked.png")
    (tmp_path / "locked.png").chmod(0)
    try:
        assert "Permission denied" in _read_error(tmp_path / "locked.png")
    finally:
        (tmp_path / "locked.png").chmod(0o644)


# list_images -----------------------------------------------------------------------------------------------


def _touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_list_folder_sorted_filtered_and_recursive(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _touch(d / "b.png", d / "a.JPG", d / "c.txt", d / ".hidden.png", d / "._a.jpg", d / "sub" / "e.webp",
           d / ".git" / "f.png", d / "z.tiff")
    (d / "dir.png").mkdir()
    assert list_images([d]) == [d / "a.JPG", d / "b.png", d / "z.tiff"]
    assert list_images([d], recursive=True) == [d / "a.JPG", d / "b.png", d / "sub" / "e.webp", d / "z.tiff"]
    _touch(tmp_path / "empty" / "notes.txt")
    assert list_images([tmp_path / "empty"]) == []


def test_list_files_globs_dedup_and_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path / "x.png", tmp_path / "y.jpg", tmp_path / "odd.heic", tmp_path / "n" / "deep" / "k.bmp")
    monkeypatch.chdir(tmp_path)
    got = list_images(["y.jpg", "*.png", str(tmp_path / "y.jpg"), "odd.heic", Path("x.png"), "./y.jpg"])
    assert got == [Path("y.jpg"), Path("x.png"), Path("odd.heic")]  # explicit odd suffix kept
    assert list_images(["*"]) == [Path("x.png"), Path("y.jpg")]  # folders from patterns are expanded too
    assert list_images(["n/**/*.bmp"]) == [Path("n/deep/k.bmp")]
    assert list_images("x.png") == [Path("x.png")]  # a lone string is one input, not its characters


def test_list_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file or folder") as info:
        list_images([tmp_path / "missing.png"])
    assert "\n" not in str(info.value) and "missing.png" in str(info.value)
    with pytest.raises(ImageError, match="matched nothing"):
        list_images([str(tmp_path / "*.png")])
    _touch(tmp_path / "notes.txt")
    with pytest.raises(ImageError, match="no image files"):
        list_images([str(tmp_path / "*.txt")])


# Properties ------------------------------------------------------------------------------------------------

_shapes = st.tuples(st.integers(1, 9), st.integers(1, 9))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), channels=st.sampled_from([3, 4]))
def test_property_8bit_png_round_trip_is_exact(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject,
                                               channels: int) -> None:
    h, w = data.draw(_shapes)
    a = data.draw(hnp.arrays(np.uint8, (h, w, channels)))
    path = tmp_path_factory.mktemp("p8") / "a.png"
    t = to_chw(a)
    write_image(path, t[:3], t[3:] if channels == 4 else None)
    pic = read_image(path)
    assert pic.bit_depth == 8 and np.array_equal(hwc(pic), a)
    assert torch.equal(pic.rgb, t[:3])


@settings(max_examples=30, deadline=None)
@given(data=st.data(), channels=st.sampled_from([3, 4]))
def test_property_16bit_png_round_trip_is_exact(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject,
                                                channels: int) -> None:
    h, w = data.draw(_shapes)
    a = data.draw(hnp.arrays(np.uint16, (h, w, channels)))
    path = tmp_path_factory.mktemp("p16") / "a.png"
    t = to_chw(a, 65535)
    write_image(path, t[:3], t[3:] if channels == 4 else None, bit_depth=16)
    pic = read_image(path)
    assert pic.bit_depth == 16 and np.array_equal(hwc(pic, 65535), a)
    write_image(path, pic.rgb, pic.alpha, bit_depth=16)  # and again: stable
    assert np.array_equal(hwc(read_image(path), 65535), a)


@settings(max_examples=30, deadline=None)
@given(
    a=hnp.arrays(np.uint16, st.tuples(st.integers(1, 11), st.integers(1, 11), st.sampled_from([1, 2, 3, 4]))),
    interlace=st.booleans(),
)
def test_property_hand_made_16bit_png_reads_exactly(
    tmp_path_factory: pytest.TempPathFactory, a: np.ndarray, interlace: bool
) -> None:
    """Including Adam7-interlaced files: the low-byte decode reuses Pillow's de-interlacing."""
    path = png16(tmp_path_factory.mktemp("h16") / "a.png", a, interlace=interlace)
    expected = a[..., [0, 0, 0]] if a.shape[2] == 1 else a[..., [0, 0, 0, 1]] if a.shape[2] == 2 else a
    assert np.array_equal(hwc(read_image(path), 65535), expected)
