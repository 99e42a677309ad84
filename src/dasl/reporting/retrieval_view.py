"""What the report shows of a retrieval model, from plain arrays: per-class Recall@1, its best
and worst classes, and a seeded sample of queries with their top-k neighbours.

Neighbours come from :func:`dasl.metrics.knn` (the tie rule of the metrics: distance, then the
smaller gallery index), so the per-class values average to the run's Recall@1.
"""

from __future__ import annotations

import numpy as np

from dasl.errors import DataError
from dasl.metrics import knn


def neighbours(
    query: np.ndarray,
    k: int,
    distance: str = "cosine",
    ref: np.ndarray | None = None,
) -> np.ndarray:
    """``(N, k')`` gallery indices of each query's nearest items, ``k' = min(k, gallery)``:
    ``ref`` when given, else the other query rows (the query itself excluded by index)."""
    gallery = ref.shape[0] if ref is not None else query.shape[0] - 1
    kk = min(k, gallery)
    if kk < 1:
        raise DataError("the retrieval gallery is empty: need at least 2 test items")
    _, idx = knn(query, ref, k=kk, distance=distance)
    return idx.cpu().numpy().astype(np.int64)


def per_class_recall_at_1(
    query_labels: np.ndarray, top1_labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, recall, counts)``: for each class ``c`` of the queries,
    ``recall_c = |{i : y_i = c, y_nn(i) = c}| / |{i : y_i = c}|`` (classes ascending)."""
    classes, inverse, counts = np.unique(query_labels, return_inverse=True, return_counts=True)
    hits = np.bincount(inverse, weights=(top1_labels == query_labels), minlength=classes.size)
    return classes, hits / counts, counts


def best_and_worst(
    classes: np.ndarray, recall: np.ndarray, n: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``classes``) of the ``n`` best classes, by (recall descending, class id
    ascending), and the ``n`` worst, by (recall ascending, class id ascending)."""
    best = np.lexsort((classes, -recall))[:n]
    worst = np.lexsort((classes, recall))[:n]
    return best, worst


def sample_queries(n_queries: int, n: int = 12, seed: int = 0) -> np.ndarray:
    """``min(n, n_queries)`` distinct query positions, drawn with ``numpy.random.default_rng(seed)``
    and sorted: the same sample for every variant and every run of one seed."""
    if n_queries < 1:
        raise DataError("no queries to sample")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_queries, size=min(n, n_queries), replace=False))
