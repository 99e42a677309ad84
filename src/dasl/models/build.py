"""``build_model``: one call from a config's model section to a ready :class:`EmbeddingModel`."""

from __future__ import annotations

import os

from dasl.errors import ConfigError
from dasl.models.backbones import create_backbone
from dasl.models.embedding import EmbeddingModel
from dasl.models.pretrained import (
    TORCHVISION_WEIGHTS,
    download_torchvision_weights,
    load_weights,
    packaged_efficientnet_lite0_weights,
    read_state_dict,
)


def build_model(
    backbone: str,
    embedding_dim: int | None = 512,
    pretrained: bool | str | os.PathLike[str] = False,
    pooling: str = "avg",
    freeze_bn: bool = False,
    normalize: bool = True,
    in_channels: int = 3,
    *,
    cifar_stem: bool = False,
    image_size: int | None = None,
) -> EmbeddingModel:
    """Build ``normalize(Linear(pool(backbone(x))))``.

    Args:
        backbone: ``"small_cnn"``, ``"resnet18"``, ``"resnet50"``, ``"efficientnet_lite0"`` or
            ``"vit_b_16"`` (its pooled feature is the CLS token).
        embedding_dim: output size of the linear head; 0/``None`` keeps the pooled features.
        pretrained: ``False``: random init. ``True``: ImageNet weights -- torchvision's
            ``IMAGENET1K_V1`` for the ResNets (downloaded, or taken from the torch hub cache;
            ``RuntimeError`` with instructions when neither works), the packaged weights for
            efficientnet_lite0 (offline). A path: a local state dict or checkpoint (see
            :func:`dasl.models.pretrained.load_weights`); it may hold the head too.
        pooling: ``"avg"`` (GAP), ``"max"`` (GMP) or ``"avg+max"`` (GAP + GMP, summed).
        freeze_bn: keep the backbone's BatchNorm layers in eval mode and their affine params fixed.
        normalize: L2-normalize the output.
        in_channels: input channels. For ResNet/EfficientNet with ``in_channels != 3`` the first
            conv is rebuilt; pretrained RGB filters are summed over channels for 1-channel input
            (so a grey image gives exactly what its 3-channel copy gives the RGB net).
        cifar_stem: ResNets only: 3x3 stride-1 first conv, no max-pool (CIFAR/STL-10 images).
        image_size: vit_b_16 only: input size (multiple of 16; default 224).

    ``build_model(name, embedding_dim=None, normalize=False)`` is the frozen-feature extractor
    of the SSL evaluations: its forward returns the pooled backbone features
    (``model.feature_dim`` wide: resnet18 512, resnet50 2048, vit_b_16 768).

    The model's ``input_mean``/``input_std``/``input_size`` say how the pretrained weights expect
    inputs to be normalized (``None`` for small_cnn).
    """
    spec = create_backbone(
        backbone, in_channels=in_channels, cifar_stem=cifar_stem, image_size=image_size
    )
    model = EmbeddingModel(
        spec, embedding_dim=embedding_dim, pooling=pooling, freeze_bn=freeze_bn, normalize=normalize
    )
    if pretrained is True:
        if backbone in TORCHVISION_WEIGHTS:
            state, source = download_torchvision_weights(backbone), f"torchvision {backbone}"
        elif backbone == "efficientnet_lite0":
            state, source = packaged_efficientnet_lite0_weights(), "efficientnet-lite0 package"
        else:
            raise ConfigError(
                f"there are no pretrained weights for backbone {backbone!r}; use pretrained=False "
                "or pass a weight file you trained as pretrained='/path/to/weights.pth'"
            )
        model.load_report = load_weights(spec, model.head, state, source)
    elif isinstance(pretrained, (str, os.PathLike)):
        state = read_state_dict(pretrained)
        model.load_report = load_weights(spec, model.head, state, str(pretrained))
    elif pretrained is not False and pretrained is not None:
        raise ConfigError(f"pretrained must be True, False or a file path, got {pretrained!r}")
    return model
