import pytest
import torch
import torchvision

from dasl.models.backbones import BACKBONES, create_backbone


def test_unknown_backbone_lists_valid_values():
    with pytest.raises(ValueError, match=r"'vgg16'.*resnet50.*efficientnet_lite0"):
        create_backbone("vgg16")


@pytest.mark.parametrize("bad", [0, -1, 2.0])
def test_bad_in_channels(bad):
    with pytest.raises(ValueError, match="in_channels"):
        create_backbone("small_cnn", in_channels=bad)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_trunk_keeps_torchvision_keys_and_output(name):
    net = getattr(torchvision.models, name)(weights=None).eval()
    spec = create_backbone(name)
    expected = {k for k in net.state_dict() if not k.startswith("fc.")}
    assert set(spec.trunk.state_dict()) == expected
    spec.trunk.load_state_dict({k: v for k, v in net.state_dict().items() if k in expected})
    spec.trunk.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = spec.trunk(x).mean(dim=(2, 3))
        net.fc = torch.nn.Identity()
        torch.testing.assert_close(feats, net(x))
    assert feats.shape[1] == spec.feature_dim


def test_efficientnet_trunk_matches_package():
    ef = pytest.importorskip("efficientnet_lite_pytorch")
    net = ef.EfficientNet.from_name("efficientnet-lite0", image_size=None).eval()
    spec = create_backbone("efficientnet_lite0")
    expected = {k for k in net.state_dict() if not k.startswith("_fc.")}
    assert set(spec.trunk.state_dict()) == expected
    spec.trunk.load_state_dict({k: v for k, v in net.state_dict().items() if k in expected})
    spec.trunk.eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(spec.trunk(x), net.extract_features(x))
    assert spec.feature_dim == 1280


@pytest.mark.parametrize("name", [b for b in BACKBONES if b != "resnet50"])  # same code as resnet18
def test_in_channels_changes_first_conv(name):
    if name == "efficientnet_lite0":
        pytest.importorskip("efficientnet_lite_pytorch")
    spec = create_backbone(name, in_channels=1)
    y = spec.trunk(torch.randn(2, 1, 16, 16))
    assert y.shape[:2] == (2, spec.feature_dim)
    if spec.mean is not None:
        assert len(spec.mean) == len(spec.std) == 1
