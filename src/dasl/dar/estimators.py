"""DAR estimators by name: the entries of :data:`dasl.choices.DAR_ESTIMATORS`.

An estimator computes ``R_align`` of one batch from float64 embeddings ``z`` (N, h) and
labels (N,): ``estimator(z, labels, *, measure, difference, reduction, num_chains,
generator, block_elements, l2_kernel, max_columns, masked_pairs, backend) -> Tensor`` (a
0-d tensor on ``z``'s graph; take ``**_`` for the settings it ignores). Tagged by kind:

- ``exact``: a deterministic function of the batch (every inter-class pair);
- ``sampled``: draws from ``generator``; the trainers seed it per step (the same draw on every
  rank under DDP, and unchanged by a resume).

:func:`dasl.dar.difference_alignment` validates the batch and the common settings and
dispatches here; the formulas are in its docstring and in :mod:`dasl.dar.regularizer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from dasl.choices import DAR_ESTIMATORS
from dasl.dar.regularizer import _chain, _exact, _finish

EXACT = "exact"
SAMPLED = "sampled"


def is_sampled(name: str) -> bool:
    """Whether ``name`` is an estimator that draws from a generator (the caller seeds it);
    ``False`` for other names (a control's ``"closed_form"``)."""
    return name in DAR_ESTIMATORS and DAR_ESTIMATORS.entry(name).kind == SAMPLED


def is_exact(name: str) -> bool:
    """Whether ``name`` is an estimator that sees every inter-class pair (O(H^2) work)."""
    return name in DAR_ESTIMATORS and DAR_ESTIMATORS.entry(name).kind == EXACT


@DAR_ESTIMATORS.register("exact", kind=EXACT, options={})
def exact(
    z: Tensor,
    labels: Tensor,
    *,
    measure: str,
    difference: str,
    reduction: str,
    block_elements: int | None,
    l2_kernel: str,
    max_columns: int,
    masked_pairs: bool | None,
    backend: str,
    **_: Any,
) -> Tensor:
    """``||M||_ctv`` over all ``H`` inter-class columns (mean: divided by ``H (H - 1) / 2``)."""
    masked = labels.device.type != "cpu" if masked_pairs is None else masked_pairs
    total, h_cols = _exact(
        z, labels, measure, difference, block_elements, l2_kernel, max_columns, masked, backend
    )
    return _finish(total, h_cols, reduction, z)


@DAR_ESTIMATORS.register("chain", kind=SAMPLED, options={})
def chain(
    z: Tensor,
    labels: Tensor,
    *,
    measure: str,
    difference: str,
    reduction: str,
    num_chains: int,
    generator: torch.Generator | None,
    block_elements: int | None,
    backend: str = "torch",
    **_: Any,
) -> Tensor:
    """CTV of the inter-class steps of random chains, averaged over ``num_chains``."""
    return _chain(
        z, labels, measure, difference, reduction, num_chains, generator, block_elements, backend
    )
