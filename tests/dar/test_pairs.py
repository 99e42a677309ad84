import itertools

import pytest
import torch

from dasl.dar.pairs import (
    chain_from_permutation,
    chain_order,
    chain_steps,
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


def test_chain_order_lists_classes_then_interleaves():
    labels = [0, 1, 2, 3, 0, 1]
    perm = [5, 0, 3, 1, 2, 4]
    # dominant: class 1 (2 items, first seen at 0; class 0 has 2 items, first seen at 1);
    # listed 5, 1 | 0, 4 | 3 | 2; evens take 5, 1, 0; odds take 4, 3, 2.
    assert chain_order(perm, labels) == [5, 4, 1, 3, 0, 2]


@pytest.mark.parametrize(
    "labels",
    [
        [0, 0, 0, 1, 1],
        [0, 0, 0, 0, 1, 2],
        [0, 1, 1, 2, 2, 2],
        [0, 0, 0, 0, 0, 1],
        [5, 5, 6],
        [3, 1, 2, 3],
        [7, 7, 7],
        [4],
        [0, 9],
    ],
)
def test_chain_steps_match_loop_reference_for_every_permutation(labels):
    y = torch.tensor(labels)
    for perm in itertools.permutations(range(len(labels))):
        src, dst, valid = chain_steps(torch.tensor(perm), y)
        order = chain_order(list(perm), labels)
        assert src.tolist() == order[:-1] and dst.tolist() == order[1:]
        assert valid.tolist() == [labels[a] != labels[b] for a, b in itertools.pairwise(order)]
        kept = [
            (a, b) for a, b, v in zip(src.tolist(), dst.tolist(), valid.tolist(), strict=True) if v
        ]
        ref_src, ref_dst = chain_from_permutation(list(perm), labels)
        assert kept == list(zip(ref_src, ref_dst, strict=True))


def test_chain_steps_match_loop_reference_on_larger_batches():
    g = torch.Generator().manual_seed(0)
    for n, classes in [(120, 60), (64, 3), (33, 2), (50, 50), (17, 1)]:
        for _ in range(20):
            labels = torch.randint(0, classes, (n,), generator=g) * 3 - 5
            perm = torch.randperm(n, generator=g)
            src, dst, _ = chain_steps(perm, labels)
            order = chain_order(perm.tolist(), labels.tolist())
            assert src.tolist() == order[:-1] and dst.tolist() == order[1:]


def test_chain_drops_equal_label_steps():
    src, dst = chain_from_permutation([0, 1, 2], [7, 7, 7])
    assert src == [] and dst == []
    src, dst = chain_from_permutation(torch.tensor([2, 0, 1]), torch.tensor([0, 0, 1]))
    assert all(a != b for a, b in zip(src, dst, strict=True))
    assert len(src) == 2


def test_chain_rejects_non_permutation():
    with pytest.raises(ValueError, match="permutation of range\\(3\\)"):
        chain_from_permutation([0, 0, 1], [0, 1, 2])
