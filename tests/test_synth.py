"""GoPro-style pair synthesis: the layout it writes, determinism, the physics of the blur, bad inputs.

Everything runs at tiny sizes (64×96 frames from ~100 px photos) so the file takes seconds on 2 cores.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unblur.io import read_image
from unblur.synth import (
    GAMMA,
    CameraPath,
    MovingObject,
    PairParams,
    SynthReport,
    draw_pair_params,
    render_pair,
    sample_photos,
    synthesize,
)

SIZE = (64, 96)
KINDS = ("blur", "blur_gamma", "sharp")


def _textured(seed: int, h: int = 100, w: int = 140, lo: float = 0.0) -> np.ndarray:
    """A photo-like uint8 image: smooth blobs plus fine detail, values in ``[lo, 1]``."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 10, generator=g), size=(h, w), mode="bicubic")
    fine = torch.rand(1, 3, h, w, generator=g)
    x = (0.7 * coarse + 0.3 * fine).clamp(0, 1)[0]
    x = lo + (1 - lo) * x
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = []
    for i, (h, w) in enumerate([(100, 140), (300, 420)]):  # the second is reduced before sampling
        p = folder / f"photo{i}.png"
        Image.fromarray(_textured(i, h, w)).save(p)
        paths.append(p)
    return paths


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _linear(rgb_u8: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(rgb_u8).permute(2, 0, 1).float() / 255).pow(GAMMA)


def _still(n: int = 9) -> CameraPath:
    return CameraPath(shift=np.zeros((n, 2)), roll=np.zeros(n), zoom=np.ones(n))


def _moving(n: int = 9, length: float = 12.0) -> CameraPath:
    tau = (np.arange(n) - n // 2) / (n - 1)
    shift = np.stack([length * tau, 0.3 * length * tau**2], axis=1)
    return CameraPath(shift=shift, roll=0.01 * tau, zoom=1 + 0.01 * tau)


# Layout and determinism -------------------------------------------------------------------------------


def test_writes_gopro_layout_with_matching_names(photos: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "data"
    report = synthesize(photos, out=out, split="test", pairs_per_image=2, size=SIZE, progress=False)
    assert isinstance(report, SynthReport)
    assert report.count == 4 and len(report.written) == 12 and not report.skipped
    sequences = sorted(p.name for p in (out / "test").iterdir())
    assert sequences == ["GOPR0000_00_00", "GOPR0001_00_00"]
    for seq in sequences:
        assert sorted(p.name for p in (out / "test" / seq).iterdir()) == sorted(KINDS)
        names = {kind: sorted(p.name for p in (out / "test" / seq / kind).iterdir()) for kind in KINDS}
        assert names["sharp"] == ["000000.png", "000001.png"]
        assert names["blur"] == names["blur_gamma"] == names["sharp"]
        for kind in KINDS:
            with Image.open(out / "test" / seq / kind / "000000.png") as im:
                assert (im.format, im.mode, im.size) == ("PNG", "RGB", (SIZE[1], SIZE[0]))
    assert all(math.isfinite(v) and v > 10 for v in report.psnr_blur_gamma + report.psnr_blur)
    assert set(report.subframes) <= {7, 9, 11, 13}
    text = report.format()
    assert "4 pairs" in text and "GoPro" in text and "blur_gamma" in text


def test_same_seed_same_bytes_other_seed_other_bytes(photos: list[Path], tmp_path: Path) -> None:
    kwargs = {"split": "train", "pairs_per_image": 2, "size": SIZE, "progress": False}
    synthesize(photos, out=tmp_path / "a", seed=3, **kwargs)
    synthesize(photos, out=tmp_path / "b", seed=3, **kwargs)
    synthesize(photos, out=tmp_path / "c", seed=4, **kwargs)
    a, b, c = (_files(tmp_path / d) for d in "abc")
    assert len(a) == 12
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if "/blur" in k)


def test_pair_step_renders_the_full_sets_pairs_under_their_names(photos: list[Path], tmp_path: Path) -> None:
    kwargs = {"split": "train", "pairs_per_image": 3, "size": SIZE, "progress": False, "seed": 5}
    synthesize(photos, out=tmp_path / "full", **kwargs)
    report = synthesize(photos, out=tmp_path / "sub", pair_step=2, **kwargs)
    full, sub = _files(tmp_path / "full"), _files(tmp_path / "sub")
    assert report.count == 4 and len(sub) == 12
    assert {Path(k).name for k in sub} == {"000000.png", "000002.png"}
    assert all(sub[k] == full[k] for k in sub)


def test_params_are_a_function_of_the_generator_only() -> None:
    draw = [draw_pair_params(np.random.default_rng(7), (100, 140), SIZE) for _ in range(2)]
    assert draw[0].center == draw[1].center and draw[0].scale == draw[1].scale
    np.testing.assert_array_equal(draw[0].camera.shift, draw[1].camera.shift)


# Physics ----------------------------------------------------------------------------------------------


def test_without_motion_all_three_frames_are_identical() -> None:
    photo = _linear(_textured(1))
    params = PairParams(center=(70.0, 50.0), scale=1.0, camera=_still())
    sharp, blur, blur_gamma = render_pair(photo, params, SIZE)
    assert torch.equal(sharp, blur) and torch.equal(sharp, blur_gamma)
    # At scale 1 the sharp frame is the photo's centre crop as the 2x supersampled renderer sees it: each
    # output pixel averages bilinear samples at ±¼ px, i.e. the kernel [⅛, ¾, ⅛] in x and y, in linear light.
    k1 = torch.tensor([0.125, 0.75, 0.125])
    kernel = (k1[:, None] * k1[None, :]).expand(3, 1, 3, 3)
    window = photo[None, :, 17:83, 21:119]  # the crop rows 18:82, cols 22:118 plus a 1 px margin
    expected = torch.nn.functional.conv2d(window, kernel, groups=3)[0].pow(1 / GAMMA)
    assert (sharp - expected).abs().max() <= 0.5 / 255 + 1e-4


def test_motion_blurs_and_gamma_average_is_never_darker() -> None:
    photo = _linear(_textured(2))
    params = PairParams(center=(70.0, 50.0), scale=1.0, camera=_moving())
    sharp, blur, blur_gamma = render_pair(photo, params, SIZE)
    for t in (sharp, blur, blur_gamma):
        assert t.shape == (3, *SIZE) and torch.equal(t, (t * 255).round() / 255)  # on 8-bit levels
    assert (blur - sharp).abs().mean() > 0.01
    # power mean with exponent 2.2 >= arithmetic mean, pixel by pixel (rounding is monotone)
    assert bool((blur_gamma >= blur).all())
    assert (blur_gamma - blur).mean() > 0


def test_sharp_is_the_middle_subframe_whatever_the_path() -> None:
    photo = _linear(_textured(3))
    still = render_pair(photo, PairParams((70.0, 50.0), 1.0, _still(7)), SIZE)[0]
    for camera in (_moving(9, 6.0), _moving(13, 15.0)):
        assert torch.equal(render_pair(photo, PairParams((70.0, 50.0), 1.0, camera), SIZE)[0], still)


def test_moving_object_covers_only_its_own_region() -> None:
    photo = _linear(_textured(4))
    n = 9
    obj = MovingObject(
        center=np.stack([np.linspace(-4, 4, n), np.zeros(n)], axis=1), angle=np.zeros(n), radii=(10.0, 8.0),
        harmonics=((0.1, 0.0), (0.05, 1.0)), edge=2.0, texture_center=(30.0, 30.0), texture_scale=1.0,
        texture_angle=0.5,
    )
    plain = render_pair(photo, PairParams((70.0, 50.0), 1.0, _still(n)), SIZE)
    with_obj = render_pair(photo, PairParams((70.0, 50.0), 1.0, _still(n), obj), SIZE)
    changed = (plain[1] != with_obj[1]).any(0)
    ys, xs = torch.nonzero(changed, as_tuple=True)
    assert len(ys) > 100  # the object is there and blurred over its path ...
    reach = 4 + obj.bound() + 1
    assert (xs.float() + 0.5 - SIZE[1] / 2).abs().max() <= reach  # ... and nowhere else
    assert (ys.float() + 0.5 - SIZE[0] / 2).abs().max() <= reach
    assert not torch.equal(with_obj[1], with_obj[0])  # camera still, object moving: blur != sharp


def test_no_borders_from_sampling_outside_the_photo() -> None:
    # a photo with no dark pixels: any sample outside it (zero padding) would show up as dark
    photo_u8 = _textured(5, h=70, w=100, lo=0.5)
    photo = _linear(photo_u8)
    for i in range(12):
        params = draw_pair_params(np.random.default_rng(i), (70, 100), SIZE, moving_object=True)
        for t in render_pair(photo, params, SIZE):
            assert float(t.min()) >= 0.49, f"dark pixels with params {i}"


# Inputs -----------------------------------------------------------------------------------------------


def test_bad_source_is_skipped_with_a_warning(photos: list[Path], tmp_path: Path) -> None:
    bad = photos[0].parent / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "data"
    with pytest.warns(UserWarning, match="broken.jpg"):
        report = synthesize([bad, *photos], out=out, pairs_per_image=1, size=SIZE, progress=False)
    assert report.count == 2 and len(report.skipped) == 1 and "broken.jpg" in report.skipped[0]
    assert sorted(p.name for p in (out / "train").iterdir()) == ["GOPR0000_00_00", "GOPR0001_00_00"]


def test_too_small_photo_is_skipped(photos: list[Path], tmp_path: Path) -> None:
    tiny = photos[0].parent / "tiny.png"
    Image.fromarray(_textured(9, h=20, w=30)).save(tiny)
    with pytest.warns(UserWarning, match=r"tiny\.png.*too small"):
        report = synthesize([tiny, photos[1]], out=tmp_path / "d", pairs_per_image=1, size=SIZE, progress=False)
    assert report.count == 1


def test_no_usable_source_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    with pytest.warns(UserWarning, match=r"bad\.png"), pytest.raises(ValueError, match=r"bad\.png"):
        synthesize([bad], out=tmp_path / "data", size=SIZE, progress=False)
    assert not (tmp_path / "data").exists()


def test_refuses_an_output_folder_that_holds_a_source(photos: list[Path]) -> None:
    with pytest.raises(ValueError, match="contains the source"):
        synthesize(photos, out=photos[0].parent.parent, size=SIZE, progress=False)


@pytest.mark.parametrize(
    "bad", [{"pairs_per_image": 0}, {"pair_step": 0}, {"split": "a/b"}, {"split": ""}, {"size": (4, 4)},
            {"device": "tpu"}],
)
def test_rejects_bad_arguments(photos: list[Path], tmp_path: Path, bad: dict) -> None:
    kwargs = {"out": tmp_path / "data", "size": SIZE, "progress": False, **bad}
    with pytest.raises(ValueError):
        synthesize(photos, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_absent_gpu_is_refused_before_anything_is_written(photos: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no CUDA"):
        synthesize(photos, out=tmp_path / "data", size=SIZE, progress=False, device="cuda")
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_rendering_is_deterministic_and_matches_the_cpu_within_a_level(photos: list[Path], tmp_path: Path) -> None:
    kwargs = {"pairs_per_image": 2, "size": SIZE, "seed": 5, "progress": False}
    synthesize(photos, out=tmp_path / "cpu", **kwargs)
    for name in ("gpu1", "gpu2"):
        synthesize(photos, out=tmp_path / name, device="cuda", **kwargs)
    cpu, gpu1, gpu2 = (_files(tmp_path / d) for d in ("cpu", "gpu1", "gpu2"))
    assert gpu1 == gpu2 and gpu1.keys() == cpu.keys()
    for name in cpu:
        a = read_image(tmp_path / "cpu" / name).rgb
        b = read_image(tmp_path / "gpu1" / name).rgb
        assert (a - b).abs().max() <= 1.5 / 255, name


# Bundled photos ---------------------------------------------------------------------------------------


def test_sample_photos_are_bundled_credited_and_readable() -> None:
    paths = sample_photos()
    names = [p.name for p in paths]
    assert len(paths) >= 5
    assert "seeding-by-clements_engelhardt.jpg" in names and "sunset-by-aitzol_berasategi.jpg" in names
    assert not any(n.startswith("mate-") for n in names)  # GPL wallpapers must not ship
    credits = (paths[0].parent / "CREDITS.md").read_text()
    assert sum(p.stat().st_size for p in paths) < 1_500_000
    for p in paths:
        assert p.name in credits
        row = next(line for line in credits.splitlines() if line.startswith(f"| {p.name} "))
        assert ("CC0-1.0" in row or "CC-BY-4.0" in row) and "SA" not in row
        rgb = read_image(p).rgb
        assert rgb.shape[0] == 3 and max(rgb.shape[1:]) <= 960 and min(rgb.shape[1:]) >= 480
