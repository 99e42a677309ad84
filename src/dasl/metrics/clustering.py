"""Clustering quality: NMI of seeded k-means clusters against the labels.

NMI = I(Y; C) / mean(H(Y), H(C)) (sklearn ``normalized_mutual_info_score``, arithmetic mean),
with C the k-means assignment, k = number of distinct labels. k-means is faiss ``Kmeans``
(Lloyd, niter=20, as PML's AccuracyCalculator); sklearn ``KMeans`` is the fallback when faiss
is not importable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score

from dasl.errors import ConfigError, DataError
from dasl.metrics.validation import as_embeddings, as_label_codes


def kmeans_assign(
    x: np.ndarray, num_clusters: int, *, seed: int = 0, niter: int = 20
) -> np.ndarray:
    """Cluster index of every row of ``x`` (float32, C-contiguous) after ``niter`` Lloyd steps."""
    if not 1 <= num_clusters <= x.shape[0]:
        raise ConfigError(f"num_clusters={num_clusters} must be between 1 and {x.shape[0]} (rows)")
    try:
        import faiss
    except ImportError:
        faiss = None  # type: ignore[assignment]  # no faiss: the numpy Lloyd steps below
    if faiss is not None:
        # min_points_per_centroid=1: faiss prints (from C++, to stdout) "WARNING clustering
        # n points to k centroids: please provide at least 39k training points" whenever
        # n < 39k, as with k = number of classes on a retrieval test set (~10 per class). The
        # setting only silences that check; the clustering is the same (#16).
        km = faiss.Kmeans(
            x.shape[1],
            num_clusters,
            niter=niter,
            seed=seed,
            verbose=False,
            min_points_per_centroid=1,
        )
        km.train(x)
        _, assign = km.index.search(x, 1)
        return assign.reshape(-1).astype(np.int64)
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=num_clusters, n_init=1, max_iter=niter, random_state=seed)
    return km.fit_predict(x).astype(np.int64)


def nmi(
    embeddings: Any, labels: Any, *, seed: int = 0, niter: int = 20, normalize: bool = False
) -> float:
    """NMI between ``labels`` and k-means clusters of ``embeddings`` (k = #distinct labels).

    ``normalize=True`` L2-normalizes rows first (the cosine-distance embedding space).
    """
    emb = as_embeddings(embeddings)
    (codes,) = as_label_codes(labels, names=["labels"])
    if codes.shape[0] != emb.shape[0]:
        raise DataError(f"labels has {codes.shape[0]} entries, embeddings has {emb.shape[0]} rows")
    if normalize:
        emb = torch.nn.functional.normalize(emb, dim=1)
    x = np.ascontiguousarray(emb.cpu().numpy(), dtype=np.float32)
    k = int(torch.unique(codes).numel())
    clusters = kmeans_assign(x, k, seed=seed, niter=niter)
    return float(normalized_mutual_info_score(codes.numpy(), clusters))
