"""Which differences enter the regularizer: inter-class pairs and random chains.

- ``inter_class_pairs``: all ``(i, j)`` with ``i < j`` (batch order) and ``y_i != y_j``, in
  row-major order. These index the columns ``d(i, j)`` of the poster's matrix ``M``.
- ``orient_by_label``: the ``"ordered"`` reading, each pair oriented from the smaller label to
  the larger, so the column set does not depend on the batch order.
- ``chain_steps`` (tensor ops, on the device) and ``chain_from_permutation`` (its loop
  reference): the poster's stochastic form; the chain ``b_0 .. b_{N-1}`` is a permutation of
  the batch (uniformly random in the regularizer) with the steps between equal labels
  masked, so that its expectation over permutations can be enumerated on tiny batches.
"""

from __future__ import annotations

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


def chain_from_permutation(
    perm: Sequence[int] | Tensor, labels: Sequence[int] | Tensor
) -> tuple[list[int], list[int]]:
    """Chain steps ``(b_t, b_{t+1})`` between different labels, from a permutation of the batch.

    The chain ``b_0 .. b_{N-1}`` is the permutation itself (#19: a uniformly random walk
    through the batch); the steps joining equal labels are left out here (the regularizer
    masks them: :func:`chain_steps`), so the result holds ``n <= N - 1`` index pairs
    ``(src, dst)``; the chain's columns are ``d(src_t, dst_t) = z_{src_t} - z_{dst_t}`` (or
    their absolute values). Explicit loops: the reference for :func:`chain_steps`.
    """
    perm_list = perm.tolist() if isinstance(perm, Tensor) else list(perm)
    lab_list = labels.tolist() if isinstance(labels, Tensor) else list(labels)
    if sorted(perm_list) != list(range(len(lab_list))):
        raise ConfigError(
            f"perm must be a permutation of range({len(lab_list)}), got {perm_list[:10]}..."
        )
    src: list[int] = []
    dst: list[int] = []
    for t in range(len(perm_list) - 1):
        a, b = perm_list[t], perm_list[t + 1]
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
    """All ``N - 1`` steps ``(src, dst) = (perm[t], perm[t + 1])`` of the chain and a mask
    ``valid = labels[src] != labels[dst]``, by tensor ops on the labels' device: no host sync,
    no shape that depends on the labels (steps between equal labels are masked, not dropped).

    The chain is the permutation itself: for a uniformly random ``perm`` every step joins a
    uniformly random ordered pair of distinct items, so a chain of a batch of many small
    classes visits about ``N - 1`` distinct class pairs (docs/METHOD-NOTES.md, #19 chain).
    ``perm`` (N,) int64 on the labels' device.
    """
    src, dst = perm[:-1], perm[1:]
    return src, dst, labels.index_select(0, src) != labels.index_select(0, dst)
