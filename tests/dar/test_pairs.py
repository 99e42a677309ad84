import itertools

import pytest
import torch

from dasl.dar.pairs import (
    chain_from_permutation,
    chain_order,
    inter_class_pairs,
    orient_by_label,
)


@pytest.mark.parametrize("labels", [[0, 1, 0, 2, 1], [3, 3, 3], [0], [1, 2, 3, 4], [0, 0, 1, 1]])
def test_inter_class_pairs_matches_loops(labels):
    i, j = inter_class_pairs(torch.tensor(labels))
    want = [
        (a, b)
        for a in range(len(labels))
        for b in range(a + 1, len(labels))
        if labels[a] != labels[b]
    ]
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == want
    counts = [labels.count(c) for c in set(labels)]
    assert len(want) == (len(labels) ** 2 - sum(c * c for c in counts)) // 2  # H


@pytest.mark.parametrize("labels", [[0, 1, 0, 2, 1], [3, 1, 2], [5, 4, 4, 3]])
def test_orient_by_label(labels):
    y = torch.tensor(labels)
    i, j = inter_class_pairs(y)
    a, b = orient_by_label(y, i, j)
    assert all(labels[p] < labels[q] for p, q in zip(a.tolist(), b.tolist(), strict=True))
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == sorted(
        (min(p, q), max(p, q)) for p, q in zip(a.tolist(), b.tolist(), strict=True)
    )


def _min_equal_neighbours(labels):
    best = len(labels)
    for order in itertools.permutations(range(len(labels))):
        eq = sum(labels[a] == labels[b] for a, b in itertools.pairwise(order))
        best = min(best, eq)
    return best


@pytest.mark.parametrize(
    "labels",
    [[0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 2], [0, 1, 1, 2, 2, 2], [0, 0, 0, 0, 0, 1], [5, 5, 6]],
)
def test_chain_order_reaches_minimum_equal_neighbours(labels):
    best = _min_equal_neighbours(labels)
    assert best == max(0, 2 * max(labels.count(c) for c in set(labels)) - len(labels) - 1)
    for perm in itertools.permutations(range(len(labels))):
        order = chain_order(list(perm), labels)
        assert sorted(order) == list(range(len(labels)))
        eq = sum(labels[a] == labels[b] for a, b in itertools.pairwise(order))
        assert eq == best, (perm, order)


def test_chain_keeps_permutation_order_when_free():
    labels = [0, 1, 2, 3, 0, 1]
    perm = [5, 0, 3, 1, 2, 4]
    assert chain_order(perm, labels) == perm
    src, dst = chain_from_permutation(perm, labels)
    assert list(zip(src, dst, strict=True)) == list(itertools.pairwise(perm))


def test_chain_drops_equal_label_steps():
    src, dst = chain_from_permutation([0, 1, 2], [7, 7, 7])
    assert src == [] and dst == []
    src, dst = chain_from_permutation(torch.tensor([2, 0, 1]), torch.tensor([0, 0, 1]))
    assert all(a != b for a, b in zip(src, dst, strict=True))
    assert len(src) == 2


def test_chain_rejects_non_permutation():
    with pytest.raises(ValueError, match="permutation of range\\(3\\)"):
        chain_from_permutation([0, 0, 1], [0, 1, 2])
