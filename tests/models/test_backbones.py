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


# resnet50: same code as resnet18; vit_b_16: tested below at a small image_size.
@pytest.mark.parametrize("name", [b for b in BACKBONES if b not in ("resnet50", "vit_b_16")])
def test_in_channels_changes_first_conv(name):
    if name == "efficientnet_lite0":
        pytest.importorskip("efficientnet_lite_pytorch")
    spec = create_backbone(name, in_channels=1)
    y = spec.trunk(torch.randn(2, 1, 16, 16))
    assert y.shape[:2] == (2, spec.feature_dim)
    if spec.mean is not None:
        assert len(spec.mean) == len(spec.std) == 1


@pytest.mark.parametrize(("name", "dim"), [("resnet18", 512), ("resnet50", 2048)])
def test_cifar_stem(name, dim):
    spec = create_backbone(name, cifar_stem=True)
    conv = spec.trunk.conv1
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(spec.trunk.maxpool, torch.nn.Identity)
    assert spec.feature_dim == dim and spec.input_size == 32
    with torch.no_grad():
        fmap = spec.trunk.eval()(torch.randn(2, 3, 32, 32))
    # 32 px: stride 1 stem, no max-pool, then three stride-2 stages -> 4x4 (the ImageNet stem: 1x1)
    assert fmap.shape == (2, dim, 4, 4)
    grey = create_backbone("resnet18", in_channels=1, cifar_stem=True)
    assert grey.trunk.conv1.weight.shape == (64, 1, 3, 3)


def test_vit_b_16_matches_torchvision_cls_token():
    torch.manual_seed(0)
    spec = create_backbone("vit_b_16", image_size=32)
    assert spec.feature_dim == 768 and spec.input_size == 32
    net = torchvision.models.vit_b_16(weights=None, image_size=32).eval()
    expected = {k for k in net.state_dict() if not k.startswith("heads.")}
    assert set(spec.trunk.state_dict()) == expected
    spec.trunk.load_state_dict({k: v for k, v in net.state_dict().items() if k in expected})
    net.heads = torch.nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = spec.trunk.eval()(x)
        torch.testing.assert_close(out[:, :, 0, 0], net(x))
    assert out.shape == (2, 768, 1, 1)
    with pytest.raises(ValueError, match="built for 32x32 images, got 48x48"):
        spec.trunk(torch.randn(1, 3, 48, 48))


def test_feature_extractor_returns_pooled_features():
    from dasl.models import build_model

    model = build_model("resnet18", embedding_dim=None, normalize=False, cifar_stem=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = model(x)
        torch.testing.assert_close(feats, model.backbone(x).mean(dim=(2, 3)))
    assert feats.shape == (2, 512) == (2, model.feature_dim)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("vit_b_16", {"cifar_stem": True}, "cifar_stem applies to resnet18 and resnet50 only"),
        ("small_cnn", {"cifar_stem": True}, "cifar_stem applies"),
        ("resnet18", {"image_size": 32}, "image_size applies to vit_b_16 only"),
        ("vit_b_16", {"image_size": 40}, "multiple of 16"),
        ("vit_b_16", {"image_size": 0}, "multiple of 16"),
    ],
)
def test_backbone_option_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_backbone(name, **kwargs)
