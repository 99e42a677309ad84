"""Which differences enter the regularizer: inter-class pairs and random chains.

- ``inter_class_pairs``: all ``(i, j)`` with ``i < j`` (batch order) and ``y_i != y_j``, in
  row-major order. These index the columns ``d(i, j)`` of the poster's matrix ``M``.
- ``orient_by_label``: the ``"ordered"`` reading, each pair oriented from the smaller label to
  the larger, so the column set does not depend on the batch order.
- ``chain_from_permutation``: the poster's stochastic form; a chain ``b_0 .. b_n`` built
  deterministically from a permutation of the batch, so that its expectation over uniformly
  random permutations can be enumerated exactly on tiny batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor


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
    """Rearrange ``perm`` so that consecutive labels differ wherever that is possible.

    Greedy, deterministic given ``perm`` (the only source of randomness). Items are taken from
    the front of the remaining permutation; at each step with ``m`` items left and previous
    label ``prev``:

    1. if some label ``c`` holds more than half of the remaining items (``2 n_c > m``) and
       ``c != prev``, take the first remaining item of ``c`` (otherwise it could not be
       interleaved any more);
    2. else take the first remaining item whose label differs from ``prev``;
    3. else (only ``prev``'s label is left) take the first remaining item.

    This reaches the minimum possible number of equal-label neighbours,
    ``max(0, 2 n_max - N - 1)``, while keeping the order of the permutation as far as rule 1
    allows.
    """
    remaining = list(perm)
    counts: dict[int, int] = {}
    for i in remaining:
        counts[labels[i]] = counts.get(labels[i], 0) + 1
    max_bound = max(counts.values()) if counts else 0  # counts only shrink: an upper bound
    order: list[int] = []
    prev: int | None = None
    while remaining:
        m = len(remaining)
        pick = -1
        if 2 * max_bound > m:
            max_bound = max(counts.values())
            if 2 * max_bound > m:
                dominant = next(c for c, k in counts.items() if k == max_bound)
                if dominant != prev:
                    pick = next(t for t, i in enumerate(remaining) if labels[i] == dominant)
        if pick < 0:
            pick = next((t for t, i in enumerate(remaining) if labels[i] != prev), 0)
        item = remaining.pop(pick)
        lab = labels[item]
        counts[lab] -= 1
        if counts[lab] == 0:
            del counts[lab]
        order.append(item)
        prev = lab
    return order


def chain_from_permutation(
    perm: Sequence[int] | Tensor, labels: Sequence[int] | Tensor
) -> tuple[list[int], list[int]]:
    """Chain steps ``(b_t, b_{t+1})`` between different labels, from a permutation of the batch.

    The chain ``b_0 .. b_{N-1}`` is ``chain_order(perm, labels)``; steps joining equal labels are
    dropped, so the result holds ``n <= N - 1`` index pairs ``(src, dst)``; the chain's columns
    are ``d(src_t, dst_t) = z_{src_t} - z_{dst_t}`` (or their absolute values).
    """
    perm_list = perm.tolist() if isinstance(perm, Tensor) else list(perm)
    lab_list = labels.tolist() if isinstance(labels, Tensor) else list(labels)
    if sorted(perm_list) != list(range(len(lab_list))):
        raise ValueError(
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
