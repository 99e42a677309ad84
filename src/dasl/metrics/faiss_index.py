"""A faiss index over embeddings for serving nearest-neighbour queries (``dasl embed``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dasl.metrics.validation import as_embeddings, check_distance


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # faiss-cpu is a dependency; say how to fix a broken install
        raise ImportError(
            "faiss is required here; install it with `pip install faiss-cpu`"
        ) from exc
    return faiss


def build_faiss_index(embeddings: Any, distance: str = "cosine") -> Any:
    """Exact (flat) faiss index holding ``embeddings``.

    ``cosine``: rows L2-normalized, inner-product index (search scores are cosines);
    ``dot``: inner-product index; ``euclidean``: ``IndexFlatL2`` (scores are squared L2).
    """
    faiss = _faiss()
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
    faiss = _faiss()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
