"""The training objective of both settings: a registered base loss plus ``lam`` times DAR.

``build_objective(loss_cfg, dar_cfg, ...)`` is what the Lightning modules of ``dasl train``
and ``dasl pretrain`` call:

- supervised (``loss_cfg`` a :class:`dasl.config.LossConfig`): :class:`dasl.dar.DASLLoss`,
  ``base(z, y) + lam * R(z, y)`` with the ``pair`` or ``proxy`` base loss ``loss.name``;
- self-supervised (a :class:`dasl.ssl_config.SSLMethodConfig`):
  :class:`dasl.dar.TwoViewDASLLoss` with the ``two_view`` base loss ``ssl.base_loss``,
  ``base(z0, z1) + lam * mean_g R(cat(n(z0), n(z1)), cat(y_g, y_g))`` on unit-norm views.

``R`` is :class:`dasl.dar.DifferenceAlignmentRegularizer` with the ``dar`` settings, or a
compaction control of :mod:`dasl.dar.controls` (``dar.kind``, #18) in its place; with
``lam = 0`` the bare base loss. The config has been validated where it was made: nothing is
checked again here.
"""

from __future__ import annotations

import torch
from torch import nn

from dasl.choices import DAR_KINDS, SUPERVISED_LOSSES, TWO_VIEW_LOSSES
from dasl.config import DARConfig, LossConfig
from dasl.dar import DASLLoss, DifferenceAlignmentRegularizer, TwoViewDASLLoss
from dasl.dar.controls import ControlRegularizer
from dasl.losses import LossContext, build_base_loss
from dasl.ssl_config import SSLMethodConfig


def build_regularizer(dar: DARConfig, generator: torch.Generator | None = None) -> nn.Module:
    """DAR with the ``dar`` settings (chains drawn from ``generator``), or the control
    ``dar.kind`` in its place."""
    if DAR_KINDS.entry(dar.kind).kind != "dar":
        return ControlRegularizer(dar.kind)
    return DifferenceAlignmentRegularizer(
        measure=dar.measure,
        estimator=dar.estimator,
        difference=dar.difference,
        reduction=dar.reduction,
        num_chains=dar.num_chains,
        backend=dar.backend,
        generator=generator,
    )


def build_objective(
    loss_cfg: LossConfig | SSLMethodConfig,
    dar_cfg: DARConfig,
    *,
    num_classes: int | None = None,
    embedding_dim: int | None = None,
    gather_distributed: bool = False,
    generator: torch.Generator | None = None,
) -> DASLLoss | TwoViewDASLLoss:
    """The objective of a run (see the module docstring).

    ``num_classes`` / ``embedding_dim``: for proxy losses; ``gather_distributed``: base loss
    and DAR see the global batch under DDP (``trainer.global_batch_loss``); ``generator``:
    the one a sampled estimator draws from (the module seeds it per step).
    """
    regularizer = build_regularizer(dar_cfg, generator)
    if isinstance(loss_cfg, SSLMethodConfig):
        ctx = LossContext(gather_distributed=loss_cfg.gather_distributed)
        base = build_base_loss(
            loss_cfg.base_loss, {"temperature": loss_cfg.temperature}, ctx, TWO_VIEW_LOSSES
        )
        return TwoViewDASLLoss(
            base,
            regularizer,
            lam=dar_cfg.lam,
            gather_distributed=gather_distributed,
            two_view_base=True,
            normalize=True,
        )
    ctx = LossContext(num_classes=num_classes, embedding_dim=embedding_dim)
    options = {
        "margin": loss_cfg.margin,
        "alpha": loss_cfg.alpha,
        "scale": loss_cfg.scale,
        "temperature": loss_cfg.temperature,
    }
    base = build_base_loss(loss_cfg.name, options, ctx, SUPERVISED_LOSSES)
    return DASLLoss(base, regularizer, lam=dar_cfg.lam, gather_distributed=gather_distributed)
