"""The embedding model: backbone trunk -> global pooling -> linear head -> L2 normalization."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from dasl.errors import ConfigError
from dasl.models.backbones import Backbone
from dasl.models.pooling import GlobalPool
from dasl.models.pretrained import LoadReport


def _batchnorms(module: nn.Module) -> Iterator[nn.modules.batchnorm._BatchNorm]:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            yield m


class EmbeddingModel(nn.Module):
    """``z = normalize(W · pool(backbone(x)) + b)``, an ``(N, embedding_dim)`` embedding.

    - ``features(x)``: the pooled backbone features ``pool(backbone(x))``, ``(N, feature_dim)``.
    - ``forward(x)``: ``head(features(x))``, divided by its L2 norm when ``normalize`` (computed
      in float32 under autocast; a zero vector stays zero, gradients stay finite).
    - ``embedding_dim`` 0/``None``: identity head, ``embedding_dim == feature_dim``.
    - ``freeze_bn``: every BatchNorm of the backbone stays in eval mode (running statistics
      frozen) even after ``model.train()``, and its affine parameters are not trained.
    - ``backbone_parameters()`` / ``head_parameters()``: disjoint trainable groups, for separate
      learning rates.

    Example:
        >>> from dasl.models import build_model
        >>> model = build_model("small_cnn", embedding_dim=64, in_channels=1)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 64])
    """

    def __init__(
        self,
        backbone: Backbone,
        embedding_dim: int | None = 512,
        pooling: str = "avg",
        freeze_bn: bool = False,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if embedding_dim is not None and (not isinstance(embedding_dim, int) or embedding_dim < 0):
            raise ConfigError(
                f"embedding_dim must be a non-negative int or None, got {embedding_dim!r}"
            )
        self.backbone_name = backbone.name
        self.backbone = backbone.trunk
        self.pool = GlobalPool(pooling)
        self.feature_dim = backbone.feature_dim
        if embedding_dim:
            self.head: nn.Module = nn.Linear(self.feature_dim, embedding_dim)
            self.embedding_dim = embedding_dim
        else:
            self.head = nn.Identity()
            self.embedding_dim = self.feature_dim
        self.normalize = normalize
        self.freeze_bn = freeze_bn
        # What the data transforms should do for this backbone's pretrained weights.
        self.input_mean = backbone.mean
        self.input_std = backbone.std
        self.input_size = backbone.input_size
        self.load_report: LoadReport | None = None  # set by build_model when weights are loaded
        if freeze_bn:
            for bn in _batchnorms(self.backbone):
                for p in bn.parameters():
                    p.requires_grad_(False)
            self.train(self.training)

    def train(self, mode: bool = True) -> EmbeddingModel:
        super().train(mode)
        if self.freeze_bn:
            for bn in _batchnorms(self.backbone):
                bn.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features, ``(N, feature_dim)``."""
        return self.pool(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(self.features(x))
        if self.normalize:
            if z.dtype in (torch.float16, torch.bfloat16):
                z = z.float()  # a low-precision norm would distort every distance downstream
            z = F.normalize(z, p=2.0, dim=1)
        return z

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the backbone (frozen BN parameters excluded)."""
        return (p for p in self.backbone.parameters() if p.requires_grad)

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters of the head (none for an identity head)."""
        return (p for p in self.head.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return (
            f"backbone={self.backbone_name!r}, feature_dim={self.feature_dim}, "
            f"embedding_dim={self.embedding_dim}, normalize={self.normalize}, "
            f"freeze_bn={self.freeze_bn}"
        )
