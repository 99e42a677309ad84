"""Base similarity losses by name, wrapped in :class:`dasl.DASLLoss`.

Every criterion is a ``DASLLoss`` so that training logs the base term and the DAR term the
same way for every variant; with ``dar.lam == 0`` it is exactly the bare PML loss.
"""

from __future__ import annotations

from typing import Any

from pytorch_metric_learning import losses as pml_losses
from torch import nn

from dasl.config import DARConfig, LossConfig
from dasl.dar import DASLLoss, DifferenceAlignmentRegularizer
from dasl.dar.controls import ControlRegularizer
from dasl.errors import ConfigError

LOSS_NAMES = (
    "proxyanchor",
    "npair",
    "triplet",
    "multisimilarity",
    "supcon",
    "contrastive",
    "arcface",
)
"""Base losses selectable by ``loss.name`` (pytorch-metric-learning implementations)."""


def build_base_loss(cfg: LossConfig, num_classes: int, embedding_dim: int) -> nn.Module:
    """The PML loss named by ``cfg.name`` with the paper's settings as defaults."""
    kwargs: dict[str, Any] = {}
    if cfg.name == "proxyanchor":
        return pml_losses.ProxyAnchorLoss(
            num_classes=num_classes,
            embedding_size=embedding_dim,
            margin=0.1 if cfg.margin is None else cfg.margin,
            alpha=32.0 if cfg.alpha is None else cfg.alpha,
        )
    if cfg.name == "arcface":  # a proxy-type loss: its class weights are loss parameters
        return pml_losses.ArcFaceLoss(
            num_classes=num_classes,
            embedding_size=embedding_dim,
            margin=28.6 if cfg.margin is None else cfg.margin,
            scale=64.0 if cfg.scale is None else cfg.scale,
        )
    if cfg.name == "npair":
        return pml_losses.NPairsLoss()
    if cfg.name == "triplet":
        if cfg.margin is not None:
            kwargs["margin"] = cfg.margin
        return pml_losses.TripletMarginLoss(**kwargs)
    if cfg.name == "multisimilarity":
        return pml_losses.MultiSimilarityLoss()
    if cfg.name == "supcon":
        if cfg.temperature is not None:
            kwargs["temperature"] = cfg.temperature
        return pml_losses.SupConLoss(**kwargs)
    if cfg.name == "contrastive":
        return pml_losses.ContrastiveLoss()
    raise ConfigError(
        f"loss.name: unknown loss {cfg.name!r}; choose one of {', '.join(LOSS_NAMES)}"
    )


def build_criterion(
    loss_cfg: LossConfig, dar_cfg: DARConfig, num_classes: int, embedding_dim: int
) -> DASLLoss:
    """``base + lam * DAR`` with the configured regularizer (``lam = 0``: the bare base loss;
    ``dar.kind`` other than ``"dar"``: a compaction control in DAR's place)."""
    base = build_base_loss(loss_cfg, num_classes, embedding_dim)
    if dar_cfg.kind != "dar":
        return DASLLoss(base, regularizer=ControlRegularizer(dar_cfg.kind), lam=dar_cfg.lam)
    regularizer = DifferenceAlignmentRegularizer(
        measure=dar_cfg.measure,
        estimator=dar_cfg.estimator,
        difference=dar_cfg.difference,
        reduction=dar_cfg.reduction,
        num_chains=dar_cfg.num_chains,
        backend=dar_cfg.backend,
    )
    return DASLLoss(base, regularizer=regularizer, lam=dar_cfg.lam)
