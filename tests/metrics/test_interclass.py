import math

import numpy as np
import pytest
import torch

from dasl.metrics.interclass import (
    interclass_cv,
    interclass_distance_stats,
    interclass_distances,
    interclass_pair_count,
)


def _brute_force(emb, labels):
    d = []
    n = len(labels)
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] != labels[j]:
                d.append(
                    math.sqrt(
                        sum((float(a) - float(b)) ** 2 for a, b in zip(emb[i], emb[j], strict=True))
                    )
                )
    mean = sum(d) / len(d)
    std = math.sqrt(sum((x - mean) ** 2 for x in d) / len(d))
    return {"mean": mean, "std": std, "cv": std / mean, "n_pairs": len(d)}


@pytest.mark.parametrize(
    ("n", "dim", "n_classes"), [(2, 1, 2), (17, 3, 4), (40, 8, 3), (33, 2, 11)]
)
def test_stats_match_brute_force(n, dim, n_classes):
    rng = np.random.default_rng(n)
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    labels = rng.integers(0, n_classes, size=n)
    labels[:2] = [0, 1]  # at least one inter-class pair
    got = interclass_distance_stats(emb, labels, max_pairs=10**6)
    ref = _brute_force(emb, labels)
    assert got["n_pairs"] == ref["n_pairs"] == interclass_pair_count(labels)
    for k in ("mean", "std", "cv"):
        assert got[k] == pytest.approx(ref[k], rel=1e-10, abs=1e-12)


def test_subsampling_is_deterministic_and_unbiased():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, size=400)
    emb = rng.normal(size=(400, 4)) + labels[:, None]
    full = interclass_distance_stats(emb, labels, max_pairs=10**6)
    a = interclass_distance_stats(emb, labels, max_pairs=20_000, seed=3)
    b = interclass_distance_stats(emb, labels, max_pairs=20_000, seed=3)
    c = interclass_distance_stats(emb, labels, max_pairs=20_000, seed=4)
    assert a == b and a != c
    assert a["n_pairs"] == 20_000 and full["n_pairs"] > 20_000
    assert a["mean"] == pytest.approx(full["mean"], rel=0.02)
    assert a["std"] == pytest.approx(full["std"], rel=0.03)
    d = interclass_distances(emb, labels, max_pairs=500, seed=0)
    assert d.shape == (500,) and (d > 0).all()


def test_torch_input_and_bad_input():
    emb = torch.randn(10, 3)
    labels = torch.arange(10) % 2
    assert interclass_distance_stats(emb, labels)["n_pairs"] == 25
    with pytest.raises(ValueError, match="labels has 9 entries, embeddings has 10 rows"):
        interclass_distance_stats(emb, labels[:9])
    with pytest.raises(ValueError, match="no inter-class pairs"):
        interclass_distance_stats(emb, np.zeros(10))
    with pytest.raises(ValueError, match="2-D"):
        interclass_distance_stats(np.zeros(10), np.arange(10))
    with pytest.raises(ValueError, match="NaN"):
        interclass_distance_stats(np.full((3, 2), np.nan), np.arange(3))
    with pytest.raises(ValueError, match="max_pairs"):
        interclass_distance_stats(emb, labels, max_pairs=0)


def test_interclass_cv_is_the_tables_columns():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(4), 6)
    emb = rng.normal(size=(24, 3)) + labels[:, None]
    ref = _brute_force(emb, labels)
    got = interclass_cv(emb, labels, seed=0)
    assert set(got) == {"interclass_cv", "interclass_mean"}
    assert got["interclass_cv"] == pytest.approx(ref["cv"], rel=1e-10)
    assert got["interclass_mean"] == pytest.approx(ref["mean"], rel=1e-10)
