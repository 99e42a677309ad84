"""Inter-class distances and their coefficient of variation: what difference alignment does.

DAR narrows the spread of inter-class differences, so its signature is a lower coefficient of
variation ``cv = std / mean`` of the Euclidean distances between differently labelled points
(the ``interclass_cv`` column of the comparison tables; the histogram is
:func:`dasl.plots.plot_interclass_distance_hist`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dasl.errors import ConfigError, DataError
from dasl.metrics.validation import check_embeddings

_CHUNK = 65_536  # pairs per distance block: bounds memory at chunk * D floats


def interclass_pair_count(labels: np.ndarray) -> int:
    """Number of unordered pairs ``i < j`` with ``y_i != y_j``: ``(N^2 - sum_c n_c^2) / 2``."""
    _, counts = np.unique(labels, return_counts=True)
    n = int(counts.sum())
    return (n * n - int((counts.astype(np.int64) ** 2).sum())) // 2


def _all_interclass_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = [], []
    n = labels.shape[0]
    for i in range(n - 1):
        j = np.nonzero(labels[i + 1 :] != labels[i])[0] + i + 1
        rows.append(np.full(j.shape[0], i, dtype=np.int64))
        cols.append(j)
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def _sampled_interclass_pairs(
    labels: np.ndarray, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    # Rejection sampling: (i, j) uniform over ordered pairs, kept when the labels differ, gives
    # every unordered inter-class pair the same probability (drawn with replacement).
    n = labels.shape[0]
    rows, cols, have = [], [], 0
    while have < n_pairs:
        size = 2 * (n_pairs - have) + 1024
        i = rng.integers(0, n, size=size)
        j = rng.integers(0, n, size=size)
        keep = labels[i] != labels[j]
        i, j = i[keep][: n_pairs - have], j[keep][: n_pairs - have]
        rows.append(np.minimum(i, j))
        cols.append(np.maximum(i, j))
        have += i.shape[0]
    return np.concatenate(rows), np.concatenate(cols)


def interclass_distances(
    embeddings: Any, labels: Any, max_pairs: int = 200_000, seed: int = 0
) -> np.ndarray:
    """Euclidean distances ``||x_i - x_j||_2`` over inter-class pairs ``i < j, y_i != y_j``.

    All pairs when there are at most ``max_pairs`` of them, else ``max_pairs`` pairs drawn
    uniformly (with replacement, seeded by ``seed``). Computed in float64.
    """
    emb, lab = check_embeddings(embeddings, labels)
    if not isinstance(max_pairs, int) or max_pairs < 1:
        raise ConfigError(f"max_pairs must be a positive int, got {max_pairs!r}")
    total = interclass_pair_count(lab)
    if total == 0:
        raise DataError(
            f"all {lab.shape[0]} labels are equal ({lab[0]!r}): there are no inter-class pairs"
        )
    if total <= max_pairs:
        i, j = _all_interclass_pairs(lab)
    else:
        i, j = _sampled_interclass_pairs(lab, max_pairs, np.random.default_rng(seed))
    out = np.empty(i.shape[0], dtype=np.float64)
    for s in range(0, i.shape[0], _CHUNK):
        diff = (
            emb[i[s : s + _CHUNK]] - emb[j[s : s + _CHUNK]]
        )  # explicit difference: no cancellation
        out[s : s + _CHUNK] = np.sqrt(np.einsum("pd,pd->p", diff, diff))
    return out


def distance_stats(d: np.ndarray) -> dict[str, float | int]:
    """``mean``, ``std`` (population, ddof=0), ``cv = std / mean`` and ``n_pairs`` of ``d``."""
    mean = float(d.mean())
    std = float(d.std())
    return {
        "mean": mean,
        "std": std,
        "cv": std / mean if mean > 0 else float("nan"),
        "n_pairs": int(d.shape[0]),
    }


def interclass_distance_stats(
    embeddings: Any, labels: Any, max_pairs: int = 200_000, seed: int = 0
) -> dict[str, float | int]:
    """``mean``, ``std`` (population, ddof=0), ``cv = std / mean`` and ``n_pairs`` of the
    inter-class distances of :func:`interclass_distances`."""
    return distance_stats(interclass_distances(embeddings, labels, max_pairs=max_pairs, seed=seed))


def interclass_cv(
    embeddings: Any, labels: Any, seed: int = 0, max_pairs: int = 200_000
) -> dict[str, float]:
    """The comparison tables' columns: ``interclass_cv`` (``std / mean``) and
    ``interclass_mean`` of :func:`interclass_distance_stats`."""
    stats = interclass_distance_stats(embeddings, labels, max_pairs=max_pairs, seed=seed)
    return {"interclass_cv": float(stats["cv"]), "interclass_mean": float(stats["mean"])}
