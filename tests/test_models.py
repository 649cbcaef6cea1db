import pytest
import torch

from unblur import StudentCNNv3, build_model
from unblur.models import MODELS, count_macs_per_pixel, count_parameters


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
