"""Pseudo-labels of DASL-cu: seeded faiss k-means, deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest

from dasl.metrics.pseudo_labels import cluster_pseudo_labels, cluster_purity


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.eye(8)[:4] * 10  # four orthogonal directions (k-means runs on the sphere)
    labels = np.repeat(np.arange(4), 50)
    return (centers[labels] + rng.normal(size=(200, 8))).astype(np.float32), labels


def test_deterministic_for_a_seed() -> None:
    x, _ = _blobs()
    a = cluster_pseudo_labels(x, [4, 10], seed=3)
    b = cluster_pseudo_labels(x.copy(), [4, 10], seed=3)
    assert a.shape == (2, 200) and a.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a[1])) <= set(range(10))


def test_recovers_separated_clusters() -> None:
    x, labels = _blobs(1)
    pseudo = cluster_pseudo_labels(x, [4], seed=0)
    assert cluster_purity(pseudo, labels)[0] > 0.95


def test_bad_counts_refused() -> None:
    x, _ = _blobs()
    with pytest.raises(ValueError, match="num_clusters"):
        cluster_pseudo_labels(x, [500], seed=0)
    with pytest.raises(ValueError, match="non-empty"):
        cluster_pseudo_labels(np.zeros((0, 3)), [2], seed=0)
