import itertools
import math

import pytest
import torch

from dasl.dar.pairs import (
    chain_from_permutation,
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


def _loop_chain(perm, labels):
    """The chain's definition by explicit loops: every step of the permutation, and whether
    it joins different labels."""
    steps = [(perm[t], perm[t + 1]) for t in range(len(perm) - 1)]
    return steps, [labels[a] != labels[b] for a, b in steps]


@pytest.mark.parametrize(
    "labels",
    [
        [0, 0, 0, 1, 1],
        [0, 0, 0, 0, 1, 2],
        [0, 1, 1, 2, 2, 2],
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
        steps, want_valid = _loop_chain(list(perm), labels)
        assert list(zip(src.tolist(), dst.tolist(), strict=True)) == steps
        assert valid.tolist() == want_valid
        kept = [s for s, v in zip(steps, want_valid, strict=True) if v]
        ref_src, ref_dst = chain_from_permutation(list(perm), labels)
        assert kept == list(zip(ref_src, ref_dst, strict=True))


def test_chain_steps_match_loop_reference_on_larger_batches():
    g = torch.Generator().manual_seed(0)
    for n, classes in [(120, 60), (64, 3), (33, 2), (50, 50), (17, 1)]:
        for _ in range(20):
            labels = torch.randint(0, classes, (n,), generator=g) * 3 - 5
            perm = torch.randperm(n, generator=g)
            src, dst, valid = chain_steps(perm, labels)
            steps, want_valid = _loop_chain(perm.tolist(), labels.tolist())
            assert list(zip(src.tolist(), dst.tolist(), strict=True)) == steps
            assert valid.tolist() == want_valid


def _exact_step_law(labels):
    """Over all N! permutations, the number of chains in which each ordered inter-class item
    pair is a step (loops over every permutation)."""
    law: dict[tuple[int, int], int] = {}
    for perm in itertools.permutations(range(len(labels))):
        for a, b in zip(*chain_from_permutation(list(perm), labels), strict=True):
            law[(a, b)] = law.get((a, b), 0) + 1
    return law


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 2], [0, 1, 2, 3], [0, 0, 0, 1]])
def test_every_inter_class_item_pair_is_a_step_equally_often(labels):
    # A uniformly random walk: each ordered pair of distinct items is a step in (N - 1)!
    # of the N! permutations, so every inter-class pair is equally likely (the 70afae2
    # class-grouped interleave visited some pairs far more often than others).
    n = len(labels)
    law = _exact_step_law(labels)
    want = {
        (a, b): math.factorial(n - 1) for a in range(n) for b in range(n) if labels[a] != labels[b]
    }
    assert law == want


def test_chain_of_many_small_classes_visits_about_n_class_pairs():
    # 60 classes x 2: the class pairs joined by one chain, averaged over 50 seeded
    # permutations. A random walk expects sum over 119 steps of P(new pair) ~ 116; the
    # 70afae2 interleave joined exactly 59 (benchmarks/chain_coverage.py).
    labels = torch.arange(60).repeat_interleave(2)
    g = torch.Generator().manual_seed(1)
    distinct = []
    for _ in range(50):
        src, dst, valid = chain_steps(torch.randperm(120, generator=g), labels)
        a, b = labels[src][valid].tolist(), labels[dst][valid].tolist()
        distinct.append(len({(min(p, q), max(p, q)) for p, q in zip(a, b, strict=True)}))
    assert sum(distinct) / len(distinct) > 110


def test_chain_drops_equal_label_steps():
    src, dst = chain_from_permutation([0, 1, 2], [7, 7, 7])
    assert src == [] and dst == []
    src, dst = chain_from_permutation(torch.tensor([2, 0, 1]), torch.tensor([0, 0, 1]))
    assert (src, dst) == ([2], [0])  # 0 -> 1 joins two items of class 0


def test_chain_rejects_non_permutation():
    with pytest.raises(ValueError, match="permutation of range\\(3\\)"):
        chain_from_permutation([0, 0, 1], [0, 1, 2])
