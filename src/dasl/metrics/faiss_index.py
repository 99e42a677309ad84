"""A faiss index over embeddings for serving nearest-neighbour queries (``dasl embed``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dasl.metrics.validation import as_embeddings, check_distance
from dasl.utils.io import atomic_output


def require_faiss() -> Any:
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
