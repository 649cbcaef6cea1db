"""Every fast path available on this CPU computes what eager float32 computes.

"Keeps quality" is the criterion of :func:`unblur.device.inference_plan`: against a sharp target the
output's PSNR moves by at most 0.05 dB, and the largest per-pixel change is bounded (float32 paths: 1e-4;
bf16: a few 8-bit levels). Tiling must not leave seams: at the default 32 px overlap a tiled 1-megapixel
photo differs from the untiled result by at most one 8-bit level (1/255).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import unblur.device as device_mod
from unblur.bench import bench_model
from unblur.device import ExecutionPlan, inference_plan, onnxruntime_available
from unblur.infer import Sharpener, default_weights_path
from unblur.io import read_image
from unblur.metrics import psnr
from unblur.models import MODELS, load_weights
from unblur.synth import sample_photos

CPU = torch.device("cpu")
needs_onnx = pytest.mark.skipif(not onnxruntime_available(), reason="needs unblur[onnx]")


def photo(h: int, w: int) -> torch.Tensor:
    """A bundled photo resized to ``h × w`` (3, H, W) in [0, 1]: real edges and textures, not noise."""
    image = read_image(sample_photos()[0]).rgb.unsqueeze(0)
    return F.interpolate(image, size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def motion_blur(image: torch.Tensor, length: int = 9) -> torch.Tensor:
    """A horizontal box blur, the simplest motion blur: the input the students are made for."""
    kernel = torch.full((3, 1, 1, length), 1.0 / length)
    padded = F.pad(image.unsqueeze(0), (length // 2, length // 2, 0, 0), mode="replicate")
    return F.conv2d(padded, kernel, groups=3)[0]


def cpu_paths() -> list[tuple[str, ExecutionPlan, float]]:
    """(name, plan, max abs diff allowed) for each fast path this machine can run."""
    paths = [("channels_last fp32", ExecutionPlan(CPU, None, True), 1e-4),
             ("bf16 autocast channels_last", ExecutionPlan(CPU, torch.bfloat16, True), 8 / 255)]
    if onnxruntime_available():
        paths.append(("onnxruntime fp32", ExecutionPlan(CPU, backend="onnxruntime"), 1e-4))
    default = inference_plan("cpu")
    paths.append(("default: " + default.describe(), default, 8 / 255 if default.autocast_dtype else 1e-4))
    return paths


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    sharp = photo(96, 136)
    return motion_blur(sharp), sharp


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("path", "plan", "max_diff"), cpu_paths(), ids=[p[0] for p in cpu_paths()])
def test_fast_path_agrees_with_eager_fp32(name: str, path: str, plan: ExecutionPlan, max_diff: float,
                                          pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    blurry, sharp = pair
    model = bench_model(name)
    reference = Sharpener(model, ExecutionPlan(CPU))(blurry)
    fast = Sharpener(bench_model(name), plan)(blurry)
    assert fast.shape == reference.shape and fast.dtype == torch.float32
    diff = float((fast - reference).abs().max())
    assert diff <= max_diff, f"{path}: max abs diff {diff:.2e} > {max_diff:.2e}"
    delta = abs(float(psnr(fast, sharp)) - float(psnr(reference, sharp)))
    assert delta <= 0.05, f"{path}: PSNR moved by {delta:.3f} dB"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "max_diff"), [("studentcnn_v3", 1e-5), ("unblurnet", 1 / 255),
                                                ("unblurnet, coarse pass", 1 / 255)])
def test_tiled_equals_untiled_on_a_megapixel_photo(name: str, max_diff: float) -> None:
    """Default overlap, 256 px tiles. StudentCNN_v3 sees 6 px around a pixel: tiles are exact.
    UnblurNet's U-Net may see a little further than its overlap (128 px for the bundled weights; three
    times that with a coarse pass); that far context is cut, and the seams must stay under 1/255. It runs
    with the bundled trained weights: random ones (bench_model) give its correction a local mean far beyond
    anything trained, which the model then removes tile by tile."""
    image = motion_blur(photo(1000, 1000))
    plan = inference_plan("cpu")
    weights = load_weights(default_weights_path())
    if name == "unblurnet, coarse pass":
        weights.model_kwargs["coarse_by_size"] = ((288, 0.5),)
    model = bench_model(name) if name == "studentcnn_v3" else weights.build()
    whole = Sharpener(model, plan)(image)
    tiled = Sharpener(model, plan, tile=256)(image)
    assert tiled.shape == whole.shape == (3, 1000, 1000)
    diff = float((tiled - whole).abs().max())
    assert diff <= max_diff, f"{name}: tiles differ by up to {diff:.2e} ({diff * 255:.2f} levels)"


def test_tile_windows_start_on_the_model_grid_with_at_least_the_overlap() -> None:
    """UnblurNet folds 2×2 and downsamples 8×, and its coarse pass averages 2×2 first: a window starting off
    the 16-pixel grid would see a shifted grid. A coordinate image tells where each window the Sharpener
    cuts starts."""
    starts: set[tuple[int, int]] = set()

    class Recorder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            starts.add((int(x[0, 0, 0, 0]), int(x[0, 1, 0, 0])))
            return x

    h, w = 130, 170
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
    Sharpener(Recorder(), ExecutionPlan(CPU), tile=50, overlap=13)(torch.stack([rows, cols, rows]))
    cores = [(y, x) for y in range(0, h, 50) for x in range(0, w, 50)]
    expected = {(max(0, (y - 13) // 16 * 16), max(0, (x - 13) // 16 * 16)) for y, x in cores}
    assert starts == expected
    assert all(y % 16 == 0 and x % 16 == 0 for y, x in starts)


def test_every_tile_gets_the_whole_photos_strength() -> None:
    """A model whose strength depends on the frame's size (UnblurNet's ``strength_by_size``) sees each tile
    as a small frame; the Sharpener must hand every tile the strength of the whole photo instead."""
    seen: list[float | None] = []

    class Recorder(torch.nn.Module):
        def strength_for(self, height: int, width: int) -> float:
            return min(height, width) / 1000

        def forward(self, x: torch.Tensor, strength: float | None = None) -> torch.Tensor:
            seen.append(strength)
            return x

    image = torch.rand(3, 130, 170)
    for tile in (0, 50):
        seen.clear()
        Sharpener(Recorder(), ExecutionPlan(CPU), tile=tile, overlap=13)(image)
        assert len(seen) == (1 if tile == 0 else 12) and set(seen) == {0.13}


def test_plan_fp32_is_the_reference_path() -> None:
    assert inference_plan("cpu", fp32=True) == ExecutionPlan(CPU)


def test_plan_on_a_cpu_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(device_mod, "onnxruntime_available", lambda: True)
    assert inference_plan("cpu") == ExecutionPlan(CPU, backend="onnxruntime")
    assert inference_plan("cpu", backend="torch") == ExecutionPlan(CPU, None, channels_last=True)
    monkeypatch.setattr(device_mod, "onnxruntime_available", lambda: False)
    assert inference_plan("cpu") == ExecutionPlan(CPU, None, channels_last=True)
    with pytest.raises(ValueError, match="unblur\\[onnx\\]"):
        inference_plan("cpu", backend="onnx")


def test_plan_on_a_cpu_with_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    assert inference_plan("cpu") == ExecutionPlan(CPU, torch.bfloat16, channels_last=True)
    assert inference_plan("cpu", fp32=True) == ExecutionPlan(CPU)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        inference_plan("cpu", backend="tensorrt")


@needs_onnx
def test_onnx_plan_falls_back_to_pytorch_when_export_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import unblur.export as export

    def broken(model: torch.nn.Module) -> bytes:
        raise RuntimeError("ONNX export failed: no exporter")

    monkeypatch.setattr(export, "cached_onnx_bytes", broken)
    model = bench_model("studentcnn_v3")
    image = torch.rand(3, 20, 30)
    sharpener = Sharpener(model, ExecutionPlan(CPU, backend="onnxruntime"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sharpener(image)
    assert any("onnxruntime backend unavailable" in str(w.message) for w in caught)
    assert sharpener.plan.backend == "torch" and "onnxruntime" not in sharpener.plan.describe()
    assert torch.allclose(result, Sharpener(bench_model("studentcnn_v3"), ExecutionPlan(CPU))(image), atol=1e-5)


def test_a_sharpener_needs_a_model_or_a_runner() -> None:
    with pytest.raises(ValueError, match="model or a runner"):
        Sharpener(None, ExecutionPlan(CPU))
