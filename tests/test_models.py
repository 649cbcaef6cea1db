import pytest
import torch

from unblur import StudentCNNv3, build_model
from unblur.models import MODELS, count_macs_per_pixel, count_parameters


def _random_unblurnet(**kwargs: object) -> torch.nn.Module:
    """An UnblurNet in eval mode with every weight drawn from N(0, 0.02) after seeding 0, the head too
    (which starts at zero): a network that does correct, for tests of what wraps it."""
    torch.manual_seed(0)
    model = build_model("unblurnet", **kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    return model


def test_studentcnn_v3_parameter_count_matches_the_seed():
    assert count_parameters(StudentCNNv3()) == 298_755


def test_studentcnn_v3_layers_are_the_seeds():
    m = StudentCNNv3()
    convs = [m.conv1, m.conv2, m.conv3, m.conv4, m.conv5]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 128), (128, 64), (64, 3)]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert m.conv3.dilation == (2, 2) and m.conv3.padding == (2, 2)


def test_studentcnn_v3_macs_per_pixel():
    assert count_macs_per_pixel(StudentCNNv3(), size=(32, 48)) == 298_368


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("hw", [(1, 1), (17, 33), (64, 64)])
def test_any_size_in_same_size_out_in_unit_range(name, hw):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1


def test_residual_uses_the_dilated_convs_input():
    """Zeroing conv3 must leave the block an identity on its input (the residual path)."""
    torch.manual_seed(0)
    m = StudentCNNv3().eval()
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        m.conv3.weight.zero_()
        m.conv3.bias.fill_(-1.0)  # relu(conv3) == 0, so the block output equals its input
        h = torch.relu(m.conv2(torch.relu(m.conv1(x))))
        expected = torch.sigmoid(m.conv5(torch.relu(m.conv4(h))))
        assert torch.allclose(m(x), expected, atol=1e-6)


def test_unknown_model_name_lists_choices():
    with pytest.raises(ValueError, match="studentcnn_v3"):
        build_model("nope")


def test_srgb_curves_are_the_standard_and_invert_each_other():
    from unblur.models import linear_to_srgb, srgb_to_linear

    x = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    # IEC 61966-2-1 reference points: encoded 0.5 is 21.4 % linear light; the toe is linear
    assert float(srgb_to_linear(torch.tensor(0.5, dtype=torch.float64))) == pytest.approx(0.21404, abs=1e-5)
    assert float(srgb_to_linear(torch.tensor(0.02, dtype=torch.float64))) == pytest.approx(0.02 / 12.92)


@pytest.mark.parametrize("window", [1, 3, 7, 31])
def test_local_mean_matches_a_direct_window_average(window):
    from unblur.models import local_mean

    torch.manual_seed(0)
    x = torch.randn(2, 3, 23, 37, dtype=torch.float64)
    r = window // 2
    expected = torch.empty_like(x)
    for i in range(23):
        for j in range(37):
            expected[..., i, j] = x[..., max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean(dim=(-2, -1))
    assert torch.allclose(local_mean(x, window), expected, atol=1e-12)


def test_unblurnet_starts_as_the_identity():
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.allclose(build_model("unblurnet")(x), x, atol=1e-6)
        assert torch.allclose(build_model("unblurnet", linear_light=False)(x), x, atol=1e-6)


def test_unblurnet_moves_light_but_neither_adds_nor_removes_it():
    """Whatever the weights, the correction's local mean is taken out in linear light: on an image
    smaller than the window (so the local mean is the image mean) and without clamping, the output
    holds exactly the input's light, per channel."""
    from unblur.models import srgb_to_linear

    model = _random_unblurnet()
    with torch.no_grad():
        x = 0.45 + 0.1 * torch.rand(2, 3, 64, 80)
        y = model(x)
    assert float((y - x).abs().max()) > 0.01  # it does change the image
    light_in = srgb_to_linear(x.double()).mean(dim=(-2, -1))
    light_out = srgb_to_linear(y.double()).mean(dim=(-2, -1))
    torch.testing.assert_close(light_out, light_in, atol=1e-6, rtol=0)


def test_unblurnet_strength_scales_its_correction_in_linear_light():
    """``strength`` multiplies the correction the network adds in linear light: 0 is the identity, 0.5
    half of strength 1's change of light (inputs mid-range, so nothing is clamped), and it is refused
    outside [0, 2]. ``correction`` returns that change (scripts/strength_probe.py relies on it)."""
    from unblur.models import srgb_to_linear

    full = _random_unblurnet()
    with torch.no_grad():
        x = 0.45 + 0.1 * torch.rand(1, 3, 64, 80)
        outputs = {}
        for strength in (0.0, 0.5, 1.0):
            model = build_model("unblurnet", strength=strength).eval()
            model.load_state_dict(full.state_dict())  # strength is not a weight
            outputs[strength] = model(x)
        correction = full.correction(x)
    change = {s: srgb_to_linear(y.double()) - srgb_to_linear(x.double()) for s, y in outputs.items()}
    assert float(change[1.0].abs().max()) > 0.005
    torch.testing.assert_close(outputs[0.0], x, atol=1e-6, rtol=0)
    torch.testing.assert_close(change[0.5], 0.5 * change[1.0], atol=1e-6, rtol=0)
    torch.testing.assert_close(correction.double(), change[1.0], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="strength must be between 0 and 2"):
        build_model("unblurnet", strength=-0.1)


@pytest.mark.parametrize("linear_light", [True, False])
def test_strength_sweep_scores_each_strength_as_a_model_built_at_it(tiny_gopro, linear_light):
    """``strength_sweep`` scores every strength from one pass (scripts/pick_strength.py picks with it):
    its PSNRs match those of a model built at each strength, as the training validation runs it, on
    both correction paths; a model not at strength 1 is refused."""
    from unblur.data import find_pairs
    from unblur.evaluate import strength_sweep
    from unblur.train import _validate

    full = _random_unblurnet(linear_light=linear_light)
    pairs = find_pairs(tiny_gopro, "test", "blur_gamma")
    strengths = [0.0, 0.6, 1.0, 1.3]
    frames = list(strength_sweep(full, pairs, strengths, torch.device("cpu")))
    assert [f.pair for f in frames] == pairs
    assert max(abs(f.psnr[2] - f.input_psnr) for f in frames) > 0.1  # the correction does something
    for k, strength in enumerate(strengths):
        model = build_model("unblurnet", linear_light=linear_light, strength=strength).eval()
        model.load_state_dict(full.state_dict())
        with torch.no_grad():
            row = _validate(model, pairs, torch.device("cpu"), None, False, 1.0, 0.0, "psnr", 80.0, print)
        assert sum(f.psnr[k] for f in frames) / len(frames) == pytest.approx(row["val_psnr"], abs=1e-3)
        assert sum(f.input_psnr for f in frames) / len(frames) == pytest.approx(row["val_input_psnr"], abs=1e-6)
    with pytest.raises(ValueError, match="at strength 1"):
        next(strength_sweep(model, pairs, strengths, torch.device("cpu")))
    with pytest.raises(ValueError, match="at strength 1"):
        table = build_model("unblurnet", linear_light=linear_light, strength_by_size=[(64, 1.0)])
        next(strength_sweep(table, pairs, strengths, torch.device("cpu")))


def test_unblurnet_mid_dilations_widen_the_reach_at_no_cost():
    """Dilating the 1/8-scale convolutions keeps parameters and MACs and reaches further: with the
    plain residual (no frame-wide mean) and random weights, an input change 126 px away moves the
    output only in the dilated network; a wrong number of dilations is refused."""
    torch.manual_seed(0)
    plain = build_model("unblurnet", linear_light=False).eval()
    wide = build_model("unblurnet", linear_light=False, mid_dilations=[1, 2, 4, 8, 2, 1]).eval()
    wide.load_state_dict(plain.state_dict())  # same tensors: dilation is not a weight
    assert count_macs_per_pixel(wide) == count_macs_per_pixel(plain)
    assert wide.tile_overlap > plain.tile_overlap
    with torch.no_grad():
        for p in plain.parameters():
            p.normal_(0.0, 0.05)
        wide.load_state_dict(plain.state_dict())
        x = 0.5 + 0.1 * torch.rand(1, 3, 256, 512)
        x2 = x.clone()
        x2[..., 100:140, 8:24] += 0.3  # a patch more than 125 px left of the columns compared
        for model, moves in ((plain, False), (wide, True)):
            change = (model(x2) - model(x))[..., 100:140, 150:190].abs().max()
            assert (float(change) > 1e-4) == moves, (model.mid_dilations, float(change))
    with pytest.raises(ValueError, match="mid_dilations must be 6"):
        build_model("unblurnet", mid_dilations=[1, 2])


def test_strength_at_size_interpolates_in_log_of_the_short_side_and_holds_at_the_ends():
    """The per-size table: its rows exactly, the geometric middle of two rows half-way between their
    strengths, portrait and landscape alike (the short side decides), held below and above."""
    from unblur.models import strength_at_size

    table = [(288, 0.6), (540, 0.9), (720, 1.0)]
    assert strength_at_size(table, 288, 512) == pytest.approx(0.6)
    assert strength_at_size(table, 960, 540) == pytest.approx(0.9)  # portrait: the short side is the width
    assert strength_at_size(table, 720, 1280) == pytest.approx(1.0)
    middle = round((288 * 540) ** 0.5)
    assert strength_at_size(table, middle, 2000) == pytest.approx(0.75, abs=0.002)
    assert strength_at_size(table, 100, 100) == pytest.approx(0.6)
    assert strength_at_size(table, 2160, 3840) == pytest.approx(1.0)
    values = [strength_at_size(table, s, 4000) for s in range(200, 900, 7)]
    assert values == sorted(values)  # no jumps back between rows


def test_unblurnet_strength_by_size_sets_each_frames_strength():
    """With a table, ``forward(x)`` is the model built at the strength the table gives ``x``'s size;
    ``forward(x, s)`` overrides it (how a tiled photo gets the whole photo's); ``with_strength`` replaces
    the table by one strength; a table must be increasing sides with strengths in [0, 2], and comes
    without ``strength``."""
    from unblur.models import Weights

    table = ((64, 0.4), (128, 1.0))
    model = _random_unblurnet(strength_by_size=table)
    for size, strength in ((48, 0.4), (96, 0.4 + 0.6 * 0.5849625), (160, 1.0)):
        x = 0.45 + 0.1 * torch.rand(1, 3, size, size + 8)
        fixed = build_model("unblurnet", strength=strength).eval()
        fixed.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(model(x), fixed(x), atol=1e-6, rtol=0)
            torch.testing.assert_close(model(x, strength), fixed(x), atol=1e-6, rtol=0)
            assert float((model(x, 0.0) - x).abs().max()) < 1e-6
    weights = Weights("unblurnet", {"strength_by_size": table}, model.state_dict())
    assert weights.with_strength(0.7).model_kwargs == {"strength": 0.7}
    for bad in ([], [(64, 0.5), (64, 0.6)], [(128, 0.5), (64, 0.6)], [(64, 2.5)], [(0, 0.5)], [(64.5, 0.5)]):
        with pytest.raises(ValueError, match="strength_by_size must be"):
            build_model("unblurnet", strength_by_size=bad)
    with pytest.raises(ValueError, match="not both"):
        build_model("unblurnet", strength=0.8, strength_by_size=table)


def test_a_strength_table_survives_a_weights_file(tmp_path):
    """Saved and loaded again (``weights_only``), the table still sets the strength per size."""
    from unblur.models import load_weights, save_weights, weights_from_model

    table = ((288, 0.65), (720, 1.0))
    model = build_model("unblurnet", strength_by_size=table)
    path = save_weights(tmp_path / "w.pth", weights_from_model(model, "unblurnet", {"strength_by_size": table}))
    rebuilt = load_weights(path).build()
    assert rebuilt.strength_by_size == table
    assert rebuilt.strength_for(288, 512) == pytest.approx(0.65)


def test_unblurnet_coarse_pass_adds_the_half_size_correction_at_its_strength():
    """``coarse_by_size``: where the table gives 0 the model is the one without the pass, exactly; elsewhere
    the usual pass sharpens the frame plus the network's correction of the 2×2-averaged frame, upsampled
    bilinearly and scaled by the table's strength; ``forward(x, s, c)`` overrides it (a tiled photo's);
    odd sizes keep their shape; a bad table is refused."""
    import torch.nn.functional as F

    table = ((64, 0.0), (128, 0.5))
    model = _random_unblurnet(coarse_by_size=table)
    plain = build_model("unblurnet").eval()
    plain.load_state_dict(model.state_dict())  # the table is not a weight
    assert model.coarse_for(48, 60) == 0.0 and model.coarse_for(128, 200) == pytest.approx(0.5)
    assert model.tile_overlap == 3 * plain.tile_overlap
    with torch.no_grad():
        x = 0.45 + 0.1 * torch.rand(1, 3, 64, 90)
        assert torch.equal(model(x), plain(x))
        x = 0.45 + 0.1 * torch.rand(1, 3, 128, 160)
        up = F.interpolate(plain.correction(F.avg_pool2d(x, 2)), scale_factor=2.0, mode="bilinear")
        expected = plain(plain.add_correction(x, 0.5 * up))
        torch.testing.assert_close(model(x), expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(model(x, 1.0, 0.0), plain(x), atol=1e-6, rtol=0)
        assert float((model(x) - plain(x)).abs().max()) > 1e-3  # the pass does something
        odd = 0.45 + 0.1 * torch.rand(1, 3, 129, 161)
        assert model(odd).shape == odd.shape
    for bad in ([], [(64, 0.5), (64, 0.6)], [(64, 2.5)]):
        with pytest.raises(ValueError, match="coarse_by_size must be"):
            build_model("unblurnet", coarse_by_size=bad)


def test_with_strength_scales_the_coarse_pass_too():
    """``unblur sharpen --strength S`` on weights with a coarse pass: S scales both passes, so 0 returns the
    photo unchanged and 1 keeps the pass the weights chose (scripts/pick_strength.py sweeps at 1)."""
    from unblur.models import Weights

    table = ((64, 0.4), (128, 0.6))
    model = _random_unblurnet(coarse_by_size=table)
    weights = Weights("unblurnet", {"coarse_by_size": table, "strength_by_size": ((64, 0.8),)}, model.state_dict())
    assert weights.with_strength(1.0).model_kwargs == {"strength": 1.0, "coarse_by_size": table}
    assert weights.with_strength(0.5).model_kwargs == {"strength": 0.5, "coarse_by_size": ((64, 0.2), (128, 0.3))}
    x = 0.45 + 0.1 * torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(weights.with_strength(0.0).build()(x), x, atol=1e-6, rtol=0)


def test_strength_sweep_runs_the_coarse_pass_first(tiny_gopro):
    """With a coarse pass the sweep's strengths scale the last pass only, as a model built at each strength
    with the same table computes (how scripts/pick_strength.py and scripts/unseen_scales.py score)."""
    from unblur.data import find_pairs
    from unblur.evaluate import strength_sweep
    from unblur.train import _validate

    table = ((16, 0.5),)
    full = _random_unblurnet(coarse_by_size=table)
    pairs = find_pairs(tiny_gopro, "test", "blur_gamma")
    strengths = [0.0, 0.7, 1.0]
    frames = list(strength_sweep(full, pairs, strengths, torch.device("cpu")))
    for k, strength in enumerate(strengths):
        model = build_model("unblurnet", strength=strength, coarse_by_size=table).eval()
        model.load_state_dict(full.state_dict())
        with torch.no_grad():
            row = _validate(model, pairs, torch.device("cpu"), None, False, 1.0, 0.0, "psnr", 80.0, print)
        assert sum(f.psnr[k] for f in frames) / len(frames) == pytest.approx(row["val_psnr"], abs=1e-3)
    assert sum(f.psnr[0] for f in frames) != pytest.approx(sum(f.input_psnr for f in frames), abs=1e-3)
