"""The self-supervised objective: a two-view base loss plus ``lam`` times DAR.

``loss = base(z0, z1) + lam * (1/G) sum_g R_align(cat(n(z0), n(z1)), cat(y_g, y_g))``

- ``base`` is any ``(z0, z1) -> loss`` module: lightly's ``NTXentLoss`` (SimCLR), ``DCLLoss``,
  and the non-contrastive ``VICRegLoss`` and ``BarlowTwinsLoss`` are built by name here.
- ``n`` is L2 normalization: DAR sees the unit-norm projections (the NT-Xent geometry) so that
  ``lam`` means the same whatever the base loss does with the raw projections.
- ``y_g``: one label row per granularity. Instance ids (``dasl_cf``: the two views of an
  image share one, every cross-image pair is inter-class) or k-means cluster ids
  (``dasl_cu``); several rows (PCL-style granularities) average the regularizer.

DAR itself is :class:`dasl.dar.DifferenceAlignmentRegularizer`; this module only decides
what it is applied to. Under DDP (``gather_distributed=True``) DAR sees the global batch: both
views and their labels are gathered in rank order, the views with gradients
(:func:`dasl.utils.distributed.gather_with_grad`), so every rank computes the regularizer of
the concatenated batch and DDP's gradient average equals one process on that batch; the
chain must then be the same on every rank (the caller seeds its generator per step, not per
rank). The base loss gathers for itself (lightly's ``gather_distributed``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dasl.dar import DifferenceAlignmentRegularizer
from dasl.errors import ConfigError, DataError
from dasl.utils.distributed import gather_no_grad, gather_with_grad, is_distributed


def build_base_loss(name: str, temperature: float | None, gather_distributed: bool) -> nn.Module:
    """The lightly ``(z0, z1) -> loss`` module named ``name``.

    lightly rather than PML: its losses take the two views directly and gather them across
    ranks *with* gradients (``gather_distributed``); PML's ``NTXentLoss`` computes the same
    value (tested) but its distributed wrapper gathers without gradients.
    """
    from lightly import loss as ll

    if name == "ntxent":
        return ll.NTXentLoss(temperature=temperature, gather_distributed=gather_distributed)
    if name == "dcl":
        return ll.DCLLoss(temperature=temperature, gather_distributed=gather_distributed)
    if name == "vicreg":
        return ll.VICRegLoss(gather_distributed=gather_distributed)
    if name == "barlowtwins":
        return ll.BarlowTwinsLoss(gather_distributed=gather_distributed)
    raise ConfigError(f"unknown base loss {name!r}; use ntxent, dcl, vicreg or barlowtwins")


def instance_ids(batch: int, device: torch.device | None = None) -> Tensor:
    """``arange(batch)``: the id both views of image ``i`` share."""
    return torch.arange(batch, device=device)


class TwoViewObjective(nn.Module):
    """``base(z0, z1) + lam * mean_g R_align`` (see the module docstring).

    ``forward(z0, z1, labels=None)``: ``labels`` of shape ``(B,)`` or ``(G, B)``, one id per
    image (``None``: instance ids). With ``lam == 0`` the regularizer is not computed.
    ``last_base_loss`` / ``last_regularizer`` hold the last terms, detached.

    Example:
        >>> import torch
        >>> from dasl.training.ssl_objective import TwoViewObjective, build_base_loss
        >>> obj = TwoViewObjective(build_base_loss("ntxent", 0.1, False), lam=1.0)
        >>> z0, z1 = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss = obj(z0, z1)
    """

    def __init__(
        self,
        base: nn.Module,
        regularizer: nn.Module | None = None,
        lam: float = 0.0,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        if lam < 0:
            raise ConfigError(f"lam must be >= 0, got {lam}")
        self.base = base
        self.regularizer = (
            regularizer
            if regularizer is not None
            else (DifferenceAlignmentRegularizer(estimator="chain"))
        )
        self.lam = float(lam)
        self.gather_distributed = bool(gather_distributed)
        self.last_base_loss: Tensor | None = None
        self.last_regularizer: Tensor | None = None

    def forward(self, z0: Tensor, z1: Tensor, labels: Tensor | None = None) -> Tensor:
        if z0.dim() != 2 or z0.shape != z1.shape:
            raise DataError(
                f"z0 and z1 must be 2-D with the same shape, got {tuple(z0.shape)} and "
                f"{tuple(z1.shape)}"
            )
        base = self.base(z0, z1)
        self.last_base_loss = base.detach()
        if self.lam == 0.0:
            self.last_regularizer = None
            return base
        batch = z0.shape[0]
        if labels is not None:
            rows = labels.reshape(-1, batch) if labels.dim() == 1 else labels
            if rows.shape[1] != batch:
                raise DataError(
                    f"labels must have {batch} columns (one per image), got {tuple(rows.shape)}"
                )
        if self.gather_distributed and is_distributed():
            z0, z1 = gather_with_grad(z0), gather_with_grad(z1)
            if labels is not None:  # (G, B) -> (G, W B), rank order as the views
                rows = gather_no_grad(rows.t().contiguous()).t()
            batch = z0.shape[0]
        if labels is None:
            rows = instance_ids(batch, z0.device).reshape(1, batch)
        z = nn.functional.normalize(torch.cat([z0, z1], dim=0), dim=1)
        reg = torch.stack([self.regularizer(z, torch.cat([y, y])) for y in rows]).mean()
        self.last_regularizer = reg.detach()
        return base + self.lam * reg
