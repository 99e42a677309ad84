"""A faiss index over embeddings for serving nearest-neighbour queries (``dasl embed --faiss``,
``dasl search``); it moved here from ``dasl.metrics`` (#17): it serves queries, it measures
nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dasl.errors import ConfigError, DataError
from dasl.metrics.validation import as_embeddings, check_distance
from dasl.utils.faiss_import import require_faiss
from dasl.utils.io import atomic_output


def build_faiss_index(embeddings: Any, distance: str = "cosine") -> Any:
    """Exact (flat) faiss index holding ``embeddings``.

    ``cosine``: rows L2-normalized, inner-product index (search scores are cosines);
    ``dot``: inner-product index; ``euclidean``: ``IndexFlatL2`` (scores are squared L2).
    """
    faiss = require_faiss()
    check_distance(distance)
    x = as_embeddings(embeddings)
    if distance == "cosine":
        x = torch.nn.functional.normalize(x, dim=1)
    arr = np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
    d = arr.shape[1]
    index = faiss.IndexFlatL2(d) if distance == "euclidean" else faiss.IndexFlatIP(d)
    index.add(arr)
    return index


def save_faiss_index(index: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``index`` to ``path`` atomically (temporary file in the same folder + os.replace)."""
    faiss = require_faiss()
    path = Path(path)
    # atomic_output: fsync'ed, the user's umask permissions (mkstemp would give 0600).
    with atomic_output(path) as tmp:
        faiss.write_index(index, str(tmp))
    return path


def load_faiss_index(path: str | os.PathLike[str]) -> Any:
    """The index :func:`save_faiss_index` wrote; ``ValueError`` naming ``path`` when faiss
    cannot read it."""
    faiss = require_faiss()
    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:  # faiss reports every read failure as RuntimeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a faiss index faiss can read ({first})") from None


def search_faiss_index(
    index: Any, queries: Any, k: int, distance: str = "cosine"
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest items of each query in an index of :func:`build_faiss_index`.

    Returns ``(distances, indices)``, both ``(Q, min(k, N))``, nearest first, where the
    distance is ``1 - cos`` (``cosine``), ``||q - x||`` (``euclidean``) or ``-q . x``
    (``dot``): smaller is nearer in every case. Equal scores are ordered by item index (one
    total order, whatever the order of faiss's heap): more than ``k`` candidates are fetched
    until the last one is strictly farther than the ``k``-th, so no tied item is left out.
    """
    check_distance(distance)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive int, got {k!r}")
    q = as_embeddings(queries, "queries")
    if distance == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
    arr = np.ascontiguousarray(q.cpu().numpy(), dtype=np.float32)
    n = int(index.ntotal)
    k = min(int(k), n)
    if k == 0:
        empty = np.zeros((arr.shape[0], 0))
        return empty.astype(np.float64), empty.astype(np.int64)
    # An inner-product index returns similarities (larger is nearer), IndexFlatL2 squared
    # distances: the key below is "smaller is nearer" for both.
    sign = 1.0 if distance == "euclidean" else -1.0
    fetch = min(n, k + 1)
    while True:
        scores, idx = index.search(arr, fetch)
        key = sign * scores.astype(np.float64)
        if fetch == n or bool(np.all(key[:, fetch - 1] > key[:, k - 1])):
            break
        fetch = min(n, 2 * fetch)
    order = np.lexsort((idx, key), axis=1)[:, :k]
    idx = np.take_along_axis(idx, order, axis=1).astype(np.int64)
    key = np.take_along_axis(key, order, axis=1)
    if distance == "cosine":
        dist = np.maximum(1.0 + key, 0.0)  # key = -cos; rounding may dip below 0
    elif distance == "euclidean":
        dist = np.sqrt(np.maximum(key, 0.0))
    else:
        dist = key
    return dist, idx
