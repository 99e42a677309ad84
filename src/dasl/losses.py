"""Base similarity losses by name: the entries of :data:`dasl.choices.BASE_LOSSES`.

Each entry is a builder ``builder(ctx, **options) -> nn.Module`` whose keyword-only
parameters are the options it takes (a config setting it does not take is refused, one
left ``null`` keeps the default written here), tagged by kind:

- ``pair``: a PML loss of ``(embeddings, labels)``;
- ``proxy``: likewise, with learned class proxies (``ctx.num_classes`` x ``ctx.embedding_dim``
  loss parameters);
- ``two_view``: a lightly loss of two views ``(z0, z1)``; ``ctx.gather_distributed`` makes
  it gather the views of all ranks with gradients (PML's ``NTXentLoss`` computes the same
  value, but its distributed wrapper gathers without gradients).

This module is the home of the registry: :mod:`dasl.choices` imports it on first use, so
reading a config needs no torch until a name is checked (#16). lightly is imported by the
two-view builders only: a supervised run does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from pytorch_metric_learning import losses as pml
from pytorch_metric_learning.distances import DotProductSimilarity
from pytorch_metric_learning.regularizers import LpRegularizer
from torch import nn

from dasl.choices import BASE_LOSSES
from dasl.errors import ConfigError

SUPERVISED = ("pair", "proxy")
"""Kinds of base loss a supervised run (``loss.name``) may use."""
TWO_VIEW = "two_view"
"""The kind a self-supervised run (``ssl.base_loss``) uses."""


@dataclass(frozen=True)
class LossContext:
    """What a builder may need besides its options."""

    num_classes: int | None = None
    embedding_dim: int | None = None
    gather_distributed: bool = False


def _typed(loss: object) -> nn.Module:
    """A library's loss as an ``nn.Module`` (PML and lightly ship no type hints)."""
    assert isinstance(loss, nn.Module)
    return loss


def build_base_loss(
    name: str, options: dict[str, Any], ctx: LossContext, kind: str | tuple[str, ...] | None = None
) -> nn.Module:
    """The base loss ``name`` (of ``kind``) with ``options`` (``None`` values keep defaults)."""
    set_options = BASE_LOSSES.check_options(name, options, kind=kind)
    return _typed(BASE_LOSSES.get(name, kind)(ctx, **set_options))


def _lightly() -> Any:
    import lightly.loss as loss  # deferred: only self-supervised runs need lightly

    return loss


@BASE_LOSSES.register("proxyanchor", kind="proxy")
def proxyanchor(ctx: LossContext, *, margin: float = 0.1, alpha: float = 32.0) -> nn.Module:
    """PML ``ProxyAnchorLoss`` with the paper's margin 0.1 and alpha 32."""
    return _typed(
        pml.ProxyAnchorLoss(
            num_classes=ctx.num_classes,
            embedding_size=ctx.embedding_dim,
            margin=margin,
            alpha=alpha,
        )
    )


# PML ships no type hints: its classes are Any to mypy, and subclassing one is the way to
# hand a loss a distance.
class ScaledDotProduct(DotProductSimilarity):  # type: ignore[misc]
    """PML's dot-product similarity times ``scale``: ``s · <u, v>`` on unit vectors ``u, v``.

    N-pair's logits are these similarities; on dasl's unit-norm embeddings the scale is the
    inverse softmax temperature that an unnormalized embedding's norm sets in the N-pair
    paper. PML's losses take a distance object, so the scale is one here."""

    def __init__(self, scale: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def compute_mat(self, query_emb: torch.Tensor, ref_emb: torch.Tensor) -> torch.Tensor:
        mat: torch.Tensor = super().compute_mat(query_emb, ref_emb)
        return self.scale * mat

    def pairwise_distance(self, query_emb: torch.Tensor, ref_emb: torch.Tensor) -> torch.Tensor:
        sim: torch.Tensor = super().pairwise_distance(query_emb, ref_emb)
        return self.scale * sim


@BASE_LOSSES.register("npair", kind="pair")
def npair(ctx: LossContext, *, embedding_reg_weight: float = 0.0, scale: float = 1.0) -> nn.Module:
    """PML ``NPairsLoss`` on ``scale · cos(z_i, z_j)`` logits, plus the N-pair paper's
    embedding-norm penalty ``embedding_reg_weight · mean_i ||z_i||²`` (PML's
    ``LpRegularizer(p=2, power=2)``, mean over the batch) when the weight is above 0.

    The penalty acts on the embeddings the loss is given: dasl's model L2-normalizes them, so
    there it is the constant ``embedding_reg_weight`` with zero gradient (docs/METHOD-NOTES.md,
    "N-pair's embedding regularization and logit scale"). At the defaults (0, 1) this is
    PML's plain ``NPairsLoss()``.
    """
    if not embedding_reg_weight >= 0.0:
        raise ConfigError(f"loss.embedding_reg_weight: must be >= 0, got {embedding_reg_weight}")
    if not scale > 0.0:
        raise ConfigError(f"loss.scale: must be > 0 for npair, got {scale}")
    options: dict[str, Any] = {}
    if scale != 1.0:
        options["distance"] = ScaledDotProduct(scale)
    if embedding_reg_weight > 0.0:
        options["embedding_regularizer"] = LpRegularizer(p=2, power=2)
        options["embedding_reg_weight"] = embedding_reg_weight
    return _typed(pml.NPairsLoss(**options))


@BASE_LOSSES.register("triplet", kind="pair")
def triplet(ctx: LossContext, *, margin: float | None = None) -> nn.Module:
    """PML ``TripletMarginLoss`` (``margin=None``: PML's own, 0.05)."""
    return _typed(pml.TripletMarginLoss(**({} if margin is None else {"margin": margin})))


@BASE_LOSSES.register("multisimilarity", kind="pair")
def multisimilarity(ctx: LossContext) -> nn.Module:
    return _typed(pml.MultiSimilarityLoss())


@BASE_LOSSES.register("supcon", kind="pair")
def supcon(ctx: LossContext, *, temperature: float | None = None) -> nn.Module:
    """PML ``SupConLoss`` (``temperature=None``: PML's own, 0.1)."""
    return _typed(pml.SupConLoss(**({} if temperature is None else {"temperature": temperature})))


@BASE_LOSSES.register("contrastive", kind="pair")
def contrastive(ctx: LossContext) -> nn.Module:
    return _typed(pml.ContrastiveLoss())


@BASE_LOSSES.register("arcface", kind="proxy")
def arcface(ctx: LossContext, *, margin: float = 28.6, scale: float = 64.0) -> nn.Module:
    """PML ``ArcFaceLoss`` (margin in degrees); its class weights are loss parameters."""
    return _typed(
        pml.ArcFaceLoss(
            num_classes=ctx.num_classes,
            embedding_size=ctx.embedding_dim,
            margin=margin,
            scale=scale,
        )
    )


@BASE_LOSSES.register("ntxent", kind=TWO_VIEW)
def ntxent(ctx: LossContext, *, temperature: float) -> nn.Module:
    """lightly ``NTXentLoss`` (SimCLR)."""
    loss = _lightly().NTXentLoss(temperature=temperature, gather_distributed=ctx.gather_distributed)
    return _typed(loss)


@BASE_LOSSES.register("dcl", kind=TWO_VIEW)
def dcl(ctx: LossContext, *, temperature: float) -> nn.Module:
    """lightly ``DCLLoss`` (decoupled contrastive)."""
    loss = _lightly().DCLLoss(temperature=temperature, gather_distributed=ctx.gather_distributed)
    return _typed(loss)


@BASE_LOSSES.register("vicreg", kind=TWO_VIEW)
def vicreg(ctx: LossContext) -> nn.Module:
    """lightly ``VICRegLoss`` (non-contrastive)."""
    return _typed(_lightly().VICRegLoss(gather_distributed=ctx.gather_distributed))


@BASE_LOSSES.register("barlowtwins", kind=TWO_VIEW)
def barlowtwins(ctx: LossContext) -> nn.Module:
    """lightly ``BarlowTwinsLoss`` (non-contrastive)."""
    return _typed(_lightly().BarlowTwinsLoss(gather_distributed=ctx.gather_distributed))
