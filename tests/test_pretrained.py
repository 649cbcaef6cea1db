"""The pretrained weights bundled in the package: they load safely, are small, and really sharpen.

The pairs are synthesized deterministically from the two bundled photos that no training ever used
(``seeding``, ``sunset``: smaller copies of two of the benchmark's held-out photos), with the benchmark's
own synth settings (1280×720, seed 2026, 4 pairs per photo), so the check is on unseen data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from unblur.cli import main
from unblur.data import find_pairs
from unblur.infer import default_weights_path, load_sharpener
from unblur.io import read_image
from unblur.metrics import psnr
from unblur.models import count_macs_per_pixel, count_parameters, load_weights
from unblur.synth import sample_photos, synthesize

# Measured when the weights were committed (docs/MODEL_CARD.md): +0.413 dB mean gain on these eight pairs
# in float32, every pair gaining (+0.019 to +0.83; those bundled before them: +0.411, +0.037 to +0.80).
# The test asks for under half of it, so a broken load, a wrong colour space, a lost strength or a model
# that only darkens cannot pass, while a different BLAS rounding can.
MIN_MEAN_GAIN_DB = 0.10


@pytest.fixture(scope="module")
def unseen_pairs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[torch.Tensor, torch.Tensor]]:
    root = tmp_path_factory.mktemp("unseen")
    photos = [p for p in sample_photos() if p.name.startswith(("seeding", "sunset"))]
    assert len(photos) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesize(photos, out=root, split="test", pairs_per_image=4, size=(720, 1280), seed=2026, progress=False)
    return [(read_image(p.input).rgb, read_image(p.target).rgb) for p in find_pairs(root, "test")]


def test_weights_are_bundled_small_and_safe_to_load():
    path = default_weights_path()
    assert path is not None, "no pretrained weights in src/unblur/weights/"
    assert path.stat().st_size < 5 * 2**20
    torch.load(path, map_location="cpu", weights_only=True)  # tensors, strings and numbers only
    weights = load_weights(path)
    model = weights.build()
    assert weights.model == "unblurnet"
    assert count_parameters(model) <= 1_000_000
    assert count_macs_per_pixel(model, size=(64, 64)) <= 60_000
    assert "config" in weights.meta and "val_psnr" in weights.meta  # how they were made travels with them
    if {"strength", "strength_by_size"} & set(weights.model_kwargs):  # and how their strength was chosen
        assert "strength_chosen_on" in weights.meta


def test_bundled_model_improves_unseen_pairs(unseen_pairs):
    sharpener, _ = load_sharpener(device="cpu", backend="torch", fp32=True)
    gains = []
    for blurry, sharp in unseen_pairs:
        out = sharpener(blurry)
        gains.append(float(psnr(out, sharp)) - float(psnr(blurry, sharp)))
    assert min(gains) > -0.05, f"a pair got worse: {gains}"
    assert sum(gains) / len(gains) >= MIN_MEAN_GAIN_DB, f"mean gain {sum(gains) / len(gains):.3f} dB: {gains}"


# Smaller frames of the same photos carry more detail per pixel, and students can mistake it for blur: a
# dead-leaves student that passes the 720p check (its mean_window cut to 63 at inference) loses up to
# 1.80 dB on these 960x540 pairs (docs/results.md, "Dead leaves"). The bundled weights, when committed:
# +0.282 dB mean, worst pair -0.120 (float32, at the strength their table gives 960x540: 0.95); those of
# a2c92d8 (strength 0.80) +0.281, worst -0.095; those of 4145e42 at strength 1 (unscaled): -0.290 mean,
# worst -1.373 (docs/results.md, "Training on, validated at 960x540 too").
MAX_LOSS_SMALL_DB = 0.5
MIN_MEAN_GAIN_SMALL_DB = -0.10


def test_bundled_model_does_little_harm_on_smaller_frames(tmp_path: Path):
    photos = [p for p in sample_photos() if p.name.startswith(("seeding", "sunset"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthesize(photos, out=tmp_path, split="test", pairs_per_image=4, size=(540, 960), seed=5, progress=False)
    sharpener, _ = load_sharpener(device="cpu", backend="torch", fp32=True)
    gains = []
    for pair in find_pairs(tmp_path, "test"):
        blurry, sharp = read_image(pair.input).rgb, read_image(pair.target).rgb
        gains.append(float(psnr(sharpener(blurry), sharp)) - float(psnr(blurry, sharp)))
    assert min(gains) > -MAX_LOSS_SMALL_DB, f"a pair got much worse: {gains}"
    assert sum(gains) / len(gains) >= MIN_MEAN_GAIN_SMALL_DB, f"mean gain {sum(gains) / len(gains):.3f} dB: {gains}"


def test_default_fast_path_keeps_the_quality(unseen_pairs):
    """Whatever `unblur sharpen` picks on this machine (onnxruntime on most CPUs) scores like fp32 eager."""
    reference, _ = load_sharpener(device="cpu", backend="torch", fp32=True)
    default, _ = load_sharpener(device="cpu")
    for blurry, sharp in unseen_pairs:
        delta = float(psnr(default(blurry), sharp)) - float(psnr(reference(blurry), sharp))
        assert abs(delta) <= 0.05


def test_sharpen_needs_no_weights_flag(tmp_path: Path, unseen_pairs, capsys):
    from unblur.io import write_image

    photo = tmp_path / "photo.png"
    write_image(photo, unseen_pairs[0][0])
    out = tmp_path / "out"
    assert main(["sharpen", str(photo), "--out", str(out), "--device", "cpu"]) == 0
    result = read_image(out / "photo.png").rgb
    assert result.shape == unseen_pairs[0][0].shape
    assert float(psnr(result, unseen_pairs[0][1])) > float(psnr(unseen_pairs[0][0], unseen_pairs[0][1]))
