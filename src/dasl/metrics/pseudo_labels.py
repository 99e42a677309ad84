"""Pseudo-labels of DASL cluster-used: seeded faiss k-means of a feature bank.

``cluster_pseudo_labels(features, [K_1, .., K_G], seed)`` -> ``(G, N)`` int64 cluster ids,
one row per granularity. Rows are L2-normalized first (spherical k-means on the cosine
geometry, as PCL clusters its normalized momentum features). k-means is
:func:`dasl.metrics.kmeans_assign` (faiss ``Kmeans``, Lloyd, ``niter`` steps) seeded per
granularity from ``seed``, so the labels are a function of (features, counts, seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from dasl.errors import ConfigError, DataError
from dasl.metrics.clustering import kmeans_assign


def cluster_pseudo_labels(
    features: np.ndarray, num_clusters: Sequence[int], seed: int, niter: int = 20
) -> np.ndarray:
    """``(G, N)`` cluster ids of the rows of ``features`` for each count in ``num_clusters``."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"features must be a non-empty (N, d) array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.ascontiguousarray(x / np.maximum(norms, 1e-12))
    rows = []
    for g, k in enumerate(num_clusters):
        if not 2 <= k <= x.shape[0]:
            raise ConfigError(f"num_clusters {k} must lie in 2..{x.shape[0]} (bank size)")
        # faiss seeds are 32-bit; one stream per granularity.
        rows.append(kmeans_assign(x, int(k), seed=(seed * 1009 + g) % 2**31, niter=niter))
    return np.stack(rows)


def cluster_purity(pseudo_labels: np.ndarray, labels: np.ndarray) -> list[float]:
    """NMI of each granularity's clusters against the true labels (monitoring only; items
    labelled -1, e.g. STL-10's unlabeled images, are left out)."""
    known = np.asarray(labels) >= 0
    if not known.any():
        return [float("nan")] * len(pseudo_labels)
    return [float(normalized_mutual_info_score(labels[known], row[known])) for row in pseudo_labels]
