"""Which differences enter the regularizer: inter-class pairs and random chains.

- ``inter_class_pairs``: all ``(i, j)`` with ``i < j`` (batch order) and ``y_i != y_j``, in
  row-major order. These index the columns ``d(i, j)`` of the poster's matrix ``M``.
- ``orient_by_label``: the ``"ordered"`` reading, each pair oriented from the smaller label to
  the larger, so the column set does not depend on the batch order.
- ``chain_steps`` (tensor ops, on the device) and ``chain_from_permutation`` (its loop
  reference): the poster's stochastic form; a chain ``b_0 .. b_n`` built deterministically
  from a permutation of the batch, so that its expectation over uniformly random
  permutations can be enumerated exactly on tiny batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from dasl.errors import ConfigError


def inter_class_pairs(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Index tensors ``(I, J)`` of all pairs ``i < j`` with ``labels[i] != labels[j]``.

    ``H = len(I)``; on the device of ``labels``; ``int64``. Row-major order
    ``(0,1), (0,2), .., (1,2), ..`` restricted to inter-class pairs.
    """
    n = labels.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=labels.device)
    keep = labels[iu[0]] != labels[iu[1]]
    return iu[0][keep], iu[1][keep]


def count_inter_class_pairs(labels: Tensor) -> int:
    """``H = #{i < j : y_i != y_j} = (N^2 - sum_c n_c^2) / 2`` (a host number: one sync)."""
    _, counts = torch.unique(labels, return_counts=True)
    n = labels.shape[0]
    return int((n * n - int((counts * counts).sum())) // 2)


def orient_by_label(labels: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
    """Pairs ``(src, dst)`` re-oriented so that ``labels[src] < labels[dst]`` (no host sync).

    ``difference="ordered"``: ``d = z_a - z_b`` with ``y_a < y_b`` whatever the batch order.
    Pairs must join different labels (equal labels keep their orientation).
    """
    swap = labels.index_select(0, src) > labels.index_select(0, dst)
    return torch.where(swap, dst, src), torch.where(swap, src, dst)


def chain_order(perm: Sequence[int], labels: Sequence[int]) -> list[int]:
    """Arrange ``perm`` so that consecutive labels differ wherever that is possible (#19).

    Deterministic given ``perm`` (the only source of randomness); explicit loops, the
    reference for :func:`chain_steps`, which builds the same chain with tensor ops:

    1. list the items grouped by class: first the dominant class (the most items; among
       equal counts, the one appearing first in ``perm``), then the other classes in order of
       first appearance in ``perm``; within a class, in ``perm`` order;
    2. put the first ``E = ceil(N / 2)`` listed items at the even positions ``0, 2, ..`` and
       the rest at the odd positions ``1, 3, ..`` (in reverse, ``.., 3, 1``, when the dominant
       class holds more than ``E`` items: its surplus then sits at the end).

    Two items of one class land next to each other only where the dominant class has a
    surplus: this reaches the minimum possible number of equal-label neighbours,
    ``max(0, 2 n_max - N - 1)``.
    """
    n = len(perm)
    pos = {item: t for t, item in enumerate(perm)}
    counts: dict[int, int] = {}
    first: dict[int, int] = {}
    for t, item in enumerate(perm):
        lab = labels[item]
        counts[lab] = counts.get(lab, 0) + 1
        first.setdefault(lab, t)
    if not counts:
        return []
    dominant = min(counts, key=lambda c: (-counts[c], first[c]))
    listed = sorted(perm, key=lambda i: (labels[i] != dominant, first[labels[i]], pos[i]))
    evens = (n + 1) // 2
    odd_slots = list(range(1, n, 2))
    if counts[dominant] > evens:
        odd_slots.reverse()
    order = [-1] * n
    for t, item in enumerate(listed):
        order[2 * t if t < evens else odd_slots[t - evens]] = item
    return order


def chain_from_permutation(
    perm: Sequence[int] | Tensor, labels: Sequence[int] | Tensor
) -> tuple[list[int], list[int]]:
    """Chain steps ``(b_t, b_{t+1})`` between different labels, from a permutation of the batch.

    The chain ``b_0 .. b_{N-1}`` is ``chain_order(perm, labels)``; the steps joining equal
    labels are left out here (the regularizer masks them: :func:`chain_steps`), so the result
    holds ``n <= N - 1`` index pairs ``(src, dst)``; the chain's columns are
    ``d(src_t, dst_t) = z_{src_t} - z_{dst_t}`` (or their absolute values).
    """
    perm_list = perm.tolist() if isinstance(perm, Tensor) else list(perm)
    lab_list = labels.tolist() if isinstance(labels, Tensor) else list(labels)
    if sorted(perm_list) != list(range(len(lab_list))):
        raise ConfigError(
            f"perm must be a permutation of range({len(lab_list)}), got {perm_list[:10]}..."
        )
    order = chain_order(perm_list, lab_list)
    src: list[int] = []
    dst: list[int] = []
    for a, b in itertools.pairwise(order):
        if lab_list[a] != lab_list[b]:
            src.append(a)
            dst.append(b)
    return src, dst


def class_codes(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Dense class codes in label order, class sizes and within-class ranks, without host sync.

    Returns ``codes`` (N,) with ``codes[i] < codes[j]`` iff ``labels[i] < labels[j]``,
    ``counts`` (N,) the size of each code (zero past the number of classes: the length is N
    so no output size depends on the data) and ``rank`` (N,) the number of earlier batch items
    of the same class.
    """
    n = labels.shape[0]
    sorted_lab, order = torch.sort(labels, stable=True)
    new = torch.ones(n, dtype=torch.int64, device=labels.device)
    new[1:] = (sorted_lab[1:] != sorted_lab[:-1]).to(torch.int64)
    code_sorted = new.cumsum(0) - 1
    codes = torch.empty_like(code_sorted).scatter_(0, order, code_sorted)
    counts = torch.zeros(n, dtype=torch.int64, device=labels.device)
    counts.index_add_(0, codes, torch.ones_like(codes))
    starts = counts.cumsum(0) - counts
    rank_sorted = torch.arange(n, device=labels.device) - starts[code_sorted]
    rank = torch.empty_like(rank_sorted).scatter_(0, order, rank_sorted)
    return codes, counts, rank


def chain_steps(perm: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """All ``N - 1`` steps ``(src, dst)`` of the chain ``chain_order(perm, labels)`` and a mask
    ``valid = labels[src] != labels[dst]``, by tensor ops on the labels' device: no host sync,
    no shape that depends on the labels (steps between equal labels are masked, not dropped).

    ``perm`` (N,) int64 on the labels' device.
    """
    n = labels.shape[0]
    dev = labels.device
    t = torch.arange(n, device=dev)
    codes, counts, _ = class_codes(labels)
    pos = torch.empty_like(t).scatter_(0, perm, t)  # pos[i]: where item i is in perm
    first = torch.full_like(t, n).scatter_reduce_(0, codes, pos, "amin")
    # Dominant class: most items, then earliest first appearance (a unique maximum).
    dominant = torch.argmax(counts * (n + 1) - first)
    class_key = torch.where(t == dominant, 0, first + 1)
    listed = torch.argsort(class_key.index_select(0, codes) * n + pos)  # keys are distinct
    evens = (n + 1) // 2
    odd_t = t - evens
    forward = torch.where(t < evens, 2 * t, 2 * odd_t + 1)
    backward = torch.where(t < evens, 2 * t, 2 * (n - evens - 1 - odd_t) + 1)
    slot = torch.where(counts.max() > evens, backward, forward)
    order = torch.empty_like(t).scatter_(0, slot, listed)
    src, dst = order[:-1], order[1:]
    return src, dst, labels.index_select(0, src) != labels.index_select(0, dst)
