import pytest
import torch

from dasl.models.small_cnn import SmallCNN


@pytest.mark.parametrize(
    ("in_channels", "size", "out_hw"), [(1, 8, 1), (1, 28, 4), (3, 7, 1), (1, 1, 1), (1, 32, 4)]
)
def test_output_map_shape(in_channels, size, out_hw):
    net = SmallCNN(in_channels=in_channels)
    y = net(torch.randn(2, in_channels, size, size))
    assert y.shape == (2, net.out_channels, out_hw, out_hw)
    assert net.out_channels == 128


def test_custom_widths_and_bad_args():
    net = SmallCNN(in_channels=2, widths=(8, 16), convs_per_stage=1)
    assert net(torch.randn(1, 2, 10, 10)).shape == (1, 16, 5, 5)
    with pytest.raises(ValueError, match="in_channels"):
        SmallCNN(in_channels=0)
    with pytest.raises(ValueError, match="stage"):
        SmallCNN(widths=())
