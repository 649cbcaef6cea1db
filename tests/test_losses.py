import math

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim

from unblur import CombinedLoss
from unblur.losses import ms_ssim_any_size, sobel_magnitude


def _sobel_reference(img: np.ndarray) -> np.ndarray:
    """Independent per-channel Sobel magnitude with explicit loops over the zero-padded image."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    ky = kx.T
    c, h, w = img.shape
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    out = np.empty_like(img, dtype=np.float64)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                win = padded[ch, i : i + 3, j : j + 3]
                gx, gy = (win * kx).sum(), (win * ky).sum()
                out[ch, i, j] = math.sqrt(gx * gx + gy * gy + 1e-6)
    return out


def test_sobel_matches_explicit_reference():
    rng = np.random.default_rng(0)
    img = rng.random((3, 9, 11))
    ours = sobel_magnitude(torch.from_numpy(img)[None]).numpy()[0]
    np.testing.assert_allclose(ours, _sobel_reference(img), rtol=1e-10, atol=1e-12)


def test_sobel_of_a_vertical_step_edge():
    x = torch.zeros(1, 1, 5, 6, dtype=torch.float64)
    x[..., 3:] = 1.0
    g = sobel_magnitude(x)[0, 0]
    # interior rows: columns 2 and 3 see the step with gx = 1 + 2 + 1 = 4
    assert torch.allclose(g[2, 2:4], torch.full((2,), math.sqrt(16 + 1e-6), dtype=torch.float64))
    assert torch.allclose(g[2, 0], torch.tensor(1e-3, dtype=torch.float64))


@pytest.mark.parametrize("alpha,edge_weight", [(0.8, 1.0), (0.5, 0.25), (1.0, 0.0)])
def test_combined_loss_matches_independent_computation(alpha, edge_weight):
    torch.manual_seed(0)
    target = torch.rand(2, 3, 176, 180, dtype=torch.float64)
    pred = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    loss_fn = CombinedLoss(alpha=alpha, edge_weight=edge_weight)
    total = loss_fn(pred, target)

    p, t = pred.numpy(), target.numpy()
    mse = ((p - t) ** 2).mean()
    edge = np.mean([np.abs(_sobel_reference(p[i]) - _sobel_reference(t[i])).mean() for i in range(2)])
    sim = float(ms_ssim(pred, target, data_range=1.0))
    expected = alpha * mse + (1 - alpha) * (1 - sim) + edge_weight * edge
    assert float(total) == pytest.approx(expected, rel=1e-6)
    terms = loss_fn.last.as_floats()
    assert terms["mse"] == pytest.approx(mse, rel=1e-6)
    assert terms["edge"] == pytest.approx(edge, rel=1e-6)
    assert terms["ms_ssim"] == pytest.approx(sim, rel=1e-6)
    assert terms["total"] == pytest.approx(expected, rel=1e-6)


def test_identical_images_give_near_zero_loss():
    x = torch.rand(1, 3, 200, 200)
    assert float(CombinedLoss()(x, x)) < 1e-5


@pytest.mark.parametrize("side", [1, 8, 16, 32, 33, 64, 96, 128, 160, 161])
def test_small_images_do_not_crash_and_are_differentiable(side):
    torch.manual_seed(0)
    target = torch.rand(2, 3, side, side + 3)
    pred = torch.rand_like(target).requires_grad_()
    loss = CombinedLoss()(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    assert float(ms_ssim_any_size(target, target)) == pytest.approx(1.0, abs=1e-5)


def test_autocast_inputs_are_scored_in_float32():
    target = torch.rand(1, 3, 64, 64)
    pred = target.to(torch.bfloat16)
    assert CombinedLoss()(pred, target).dtype == torch.float32


def test_invalid_arguments():
    with pytest.raises(ValueError, match="alpha"):
        CombinedLoss(alpha=1.5)
    with pytest.raises(ValueError, match="shape"):
        CombinedLoss()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_zero_weight_terms_are_reported_but_give_no_gradient():
    from unblur.losses import combined_loss

    torch.manual_seed(0)
    target = torch.rand(2, 3, 48, 48)
    pred = torch.rand(2, 3, 48, 48, requires_grad=True)
    terms = combined_loss(pred, target, alpha=1.0, edge_weight=0.0)
    assert 0 < float(terms.ms_ssim) < 1 and float(terms.edge) > 0  # still logged
    assert not terms.ms_ssim.requires_grad and not terms.edge.requires_grad
    (grad,) = torch.autograd.grad(terms.total, pred)
    torch.testing.assert_close(grad, 2 * (pred - target).detach() / pred.numel())  # d MSE / d pred, nothing else


def test_psnr_loss_is_minus_the_mean_psnr_per_image():
    from unblur.losses import combined_loss, psnr_loss

    torch.manual_seed(0)
    target = torch.rand(3, 3, 40, 40, dtype=torch.float64)
    pred = (target + 0.05 * torch.randn_like(target) * torch.tensor([1.0, 0.3, 0.1]).view(3, 1, 1, 1)).clamp(0, 1)
    expected = -sum(10 * math.log10(1 / float(((pred[i] - target[i]) ** 2).mean())) for i in range(3)) / 3
    assert float(psnr_loss(pred, target, eps=0)) == pytest.approx(expected, abs=1e-6)
    terms = combined_loss(pred, target, alpha=1.0, edge_weight=0.0, pixel="psnr")
    assert float(terms.total) == pytest.approx(expected, abs=2e-3)  # eps = 1e-8 against MSEs >= 2e-5
    assert float(terms.mse) == pytest.approx(float(((pred - target) ** 2).mean()))
    with pytest.raises(ValueError, match="mse, psnr"):
        combined_loss(pred, target, pixel="l1")


def test_psnr_knee_weighs_sharp_images_between_mse_and_minus_psnr():
    from unblur.losses import CombinedLoss, combined_loss, knee_eps

    assert knee_eps(80) == 1e-8 and knee_eps(30) == pytest.approx(1e-3)
    assert float(CombinedLoss(1.0, 0.0, "psnr")(torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1))) == (
        pytest.approx(-20.0, abs=1e-5))  # the default knee, 80 dB, is plain -PSNR
    target = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    pred = (target + torch.tensor([0.1, 0.01], dtype=torch.float64).view(2, 1, 1, 1)).requires_grad_()  # 20, 40 dB

    def weight_ratio(pixel: str, knee: float = 80.0) -> float:
        """How much more the sharp image's gradient counts than the blurry one's, per unit of its error."""
        terms = combined_loss(pred, target, alpha=1.0, edge_weight=0.0, pixel=pixel, psnr_knee=knee)
        (grad,) = torch.autograd.grad(terms.total, pred)
        return float((grad[1] / 0.01).mean() / (grad[0] / 0.1).mean())

    knee30 = combined_loss(pred, target, alpha=1.0, edge_weight=0.0, pixel="psnr", psnr_knee=30)
    expected = sum(10 * math.log10(mse + 1e-3) for mse in (1e-2, 1e-4)) / 2
    assert float(knee30.total.detach()) == pytest.approx(expected, rel=1e-6)
    assert weight_ratio("mse") == pytest.approx(1.0)
    assert weight_ratio("psnr") == pytest.approx(100.0, rel=1e-4)
    assert weight_ratio("psnr", 30) == pytest.approx((1e-2 + 1e-3) / (1e-4 + 1e-3), rel=1e-4)  # 10, between
