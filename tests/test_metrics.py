import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from unblur import psnr, ssim
from unblur.metrics import quantize_8bit


def _pair(seed: int, h: int = 40, w: int = 52, noise: float = 0.08):
    g = torch.Generator().manual_seed(seed)
    target = torch.round(torch.rand(3, h, w, generator=g) * 255) / 255  # an 8-bit PNG target
    pred = (target + noise * torch.randn(3, h, w, generator=g)).clamp(0, 1)
    return pred, target


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("seed", range(3))
def test_psnr_matches_skimage_after_8bit_quantization(seed):
    pred, target = _pair(seed)
    ref = peak_signal_noise_ratio(_hwc(target), _hwc(quantize_8bit(pred)), data_range=1.0)
    assert float(psnr(pred, target)) == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_ssim_matches_skimage_gaussian_convention(seed):
    pred, target = _pair(seed)
    ref = structural_similarity(
        _hwc(quantize_8bit(pred)), _hwc(target), channel_axis=2, data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert float(ssim(pred, target)) == pytest.approx(ref, abs=1e-5)


def test_prediction_is_quantized_like_a_saved_png():
    _, target = _pair(0)
    shifted = (target + 0.4 / 255).clamp(0, 1)  # rounds back onto the target's 8-bit levels
    assert torch.isinf(psnr(shifted, target))
    assert float(ssim(shifted, target)) == pytest.approx(1.0)


def test_batch_reduction_is_the_mean_of_per_image_scores():
    pairs = [_pair(s, noise=n) for s, n in [(1, 0.02), (2, 0.2)]]
    pred = torch.stack([p for p, _ in pairs])
    target = torch.stack([t for _, t in pairs])
    per_image = psnr(pred, target, reduction="none")
    assert per_image.shape == (2,)
    assert float(per_image[0]) == pytest.approx(float(psnr(*pairs[0])), abs=1e-5)
    assert float(psnr(pred, target)) == pytest.approx(float(per_image.mean()), abs=1e-5)
    assert ssim(pred, target, reduction="none").shape == (2,)


def test_known_psnr_value():
    target = torch.zeros(3, 8, 8)
    pred = torch.full((3, 8, 8), 0.1)  # quantizes to 26/255
    assert float(psnr(pred, target)) == pytest.approx(-20 * np.log10(26 / 255), abs=1e-4)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 9))
