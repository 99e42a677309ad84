"""Compaction controls for DAR and the closed-form decomposition of signed squared-l2 DAR (#18).

With ``H`` inter-class columns ``m_p = z_i - z_j`` (``i < j`` in batch order, ``y_i != y_j``;
``"ordered"``: from the smaller label to the larger) and the ``"mean"`` reduction,

    R_l2sq = sum_{p<q} ||m_p - m_q||^2 / (H (H - 1) / 2)
           = 2 / (H - 1) * (sum_p ||m_p||^2 - ||sum_p m_p||^2 / H)
           = class_mean + within - orientation,

    class_mean  = 2 / (H - 1) * N sum_a n_a ||mu_a - zbar||^2
    within      = 2 / (H - 1) * sum_a (N - n_a) W_a,      W_a = sum_{y_i = a} ||z_i - mu_a||^2
    orientation = 2 / (H (H - 1)) * ||sum_i c_i z_i||^2,  c_i = #columns leaving i - #entering i

(``sum_p ||m_p||^2`` over the inter-class pairs is all pairs, ``N sum_i ||z_i - zbar||^2``,
minus the intra-class ones, ``sum_a n_a W_a``; docs/METHOD-NOTES.md has the derivation.)

The controls drop what makes DAR an *alignment*: ``compact_inter = class_mean + within`` (DAR
without its orientation term: ``2 H / (H - 1)`` times the mean squared inter-class distance),
``within_scatter = within`` (DAR's within-class term alone) and ``batch_variance`` =
``mean_i ||z_i - zbar||^2`` (no labels). Everything is computed in float64 from class-centred
quantities, O(N h), without a host sync; fewer than two columns give exactly 0.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dasl.choices import DAR_KINDS
from dasl.dar.measures import check_choice
from dasl.dar.pairs import class_codes
from dasl.dar.validation import check_batch, check_finite

CONTROLS: tuple[str, ...] = ("compact_inter", "batch_variance", "within_scatter")
"""Regularizers selectable by ``dar.kind`` besides ``"dar"``."""
DAR_KINDS.register_names(("dar",), kind="dar")
DAR_KINDS.register_names(CONTROLS, kind="control")

ORIENTED: tuple[str, ...] = ("signed", "ordered")


class Decomposition(NamedTuple):
    """The three terms of signed (or ordered) squared-l2 DAR, ``"mean"`` reduction:
    ``R = class_mean + within - orientation`` (device scalars, float64)."""

    class_mean: Tensor
    within: Tensor
    orientation: Tensor


def _column_coefficients(
    labels: Tensor, codes: Tensor, counts: Tensor, rank: Tensor, difference: str
) -> Tensor:
    """``c_i`` = (#inter-class columns leaving ``i``) - (#entering ``i``), so that
    ``sum_p m_p = sum_i c_i z_i`` (the orientation rule of ``regularizer.py``)."""
    n = labels.shape[0]
    n_own = counts[codes]
    if difference == "ordered":  # the smaller label is the source
        less = (counts.cumsum(0) - counts)[codes]
        return (n - less - n_own) - less
    idx = torch.arange(n, device=labels.device)  # batch order: i < j is the source
    return ((n - 1 - idx) - (n_own - 1 - rank)) - (idx - rank)


def _parts(z: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(codes, counts, rank, class_sum, within_sum, H)`` in float64, where ``class_sum =
    N sum_a n_a ||mu_a - zbar||^2`` and ``within_sum = sum_a (N - n_a) W_a``."""
    n = z.shape[0]
    codes, counts, rank = class_codes(labels)
    cnt = counts.to(z.dtype)
    sums = z.new_zeros(n, z.shape[1]).index_add_(0, codes, z)
    mu = sums / cnt.clamp_min(1.0)[:, None]
    e = z - mu.index_select(0, codes)
    mu_hat = mu - z.mean(0, keepdim=True)
    class_sum = n * (cnt * (mu_hat * mu_hat).sum(1)).sum()
    within_sum = ((n - counts[codes]).to(z.dtype) * (e * e).sum(1)).sum()
    h_cols = (n * n - (cnt * cnt).sum()) / 2
    return codes, counts, rank, class_sum, within_sum, h_cols


def _scale(h_cols: Tensor) -> Tensor:
    """``2 / (H - 1)``, and 0 below two columns (where DAR is 0 too)."""
    return torch.where(h_cols >= 2, 2.0 / (h_cols - 1).clamp_min(1.0), torch.zeros_like(h_cols))


def l2sq_decomposition(
    embeddings: Tensor, labels: Tensor, difference: str = "signed"
) -> Decomposition:
    """The class-mean, within-class and orientation terms of squared-l2 DAR with oriented
    (``"signed"`` or ``"ordered"``) differences and the ``"mean"`` reduction (module docstring)."""
    check_batch(embeddings, labels)
    check_choice("difference", difference, ORIENTED)
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        z = embeddings.to(torch.float64)
        codes, counts, rank, class_sum, within_sum, h_cols = _parts(z, labels)
        coef = _column_coefficients(labels, codes, counts, rank, difference).to(z.dtype)
        # sum_i c_i = 0, so the batch mean drops out; centring keeps the sum small.
        col_sum = coef @ (z - z.mean(0, keepdim=True))
        scale = _scale(h_cols)
        orientation = scale * (col_sum * col_sum).sum() / h_cols.clamp_min(1.0)
        return Decomposition(scale * class_sum, scale * within_sum, orientation)


def control_penalty(embeddings: Tensor, labels: Tensor, kind: str) -> Tensor:
    """The control ``kind`` of :data:`CONTROLS` on one batch (float32 for float32 input):

    - ``compact_inter``: ``2 / (H - 1) * sum_{inter-class i<j} ||z_i - z_j||^2``
    - ``within_scatter``: ``2 / (H - 1) * sum_a (N - n_a) sum_{y_i = a} ||z_i - mu_a||^2``
    - ``batch_variance``: ``mean_i ||z_i - zbar||^2``
    """
    check_batch(embeddings, labels)
    check_choice("dar.kind control", kind, CONTROLS)
    check_finite(embeddings)
    out_dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        z = embeddings.to(torch.float64)
        if kind == "batch_variance":
            c = z - z.mean(0, keepdim=True)
            return (c * c).sum(1).mean().to(out_dtype)
        _, _, _, class_sum, within_sum, h_cols = _parts(z, labels)
        total = within_sum if kind == "within_scatter" else class_sum + within_sum
        return (_scale(h_cols) * total).to(out_dtype)


class ControlRegularizer(nn.Module):
    """``control_penalty(embeddings, labels, kind)`` as a module, a drop-in for
    :class:`~dasl.dar.DifferenceAlignmentRegularizer` in :class:`~dasl.dar.DASLLoss`."""

    # Not "exact": DASLLoss refuses large memory banks for the O(H^2) exact estimator only,
    # and the controls are O(N h).
    estimator = "closed_form"

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = check_choice("dar.kind control", kind, CONTROLS)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return control_penalty(embeddings, labels, self.kind)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


__all__ = [
    "CONTROLS",
    "ControlRegularizer",
    "Decomposition",
    "control_penalty",
    "l2sq_decomposition",
]
