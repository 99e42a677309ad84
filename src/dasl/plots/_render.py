"""Shared plumbing: input checks and Figure -> PNG bytes -> atomic file.

Figures are built with ``matplotlib.figure.Figure`` and rendered by ``FigureCanvasAgg``
directly, so nothing touches pyplot's global state or the process-wide backend.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dasl.errors import DataError
from dasl.utils.io import atomic_write_bytes


def save_png(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Render ``fig`` to PNG in memory, then write it atomically to ``path``."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def as_array(x: Any, name: str) -> np.ndarray:
    """``x`` (numpy array, torch tensor or sequence) as a numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise DataError(f"{name} must be numeric, got an object array")
    return arr


def check_embeddings(
    embeddings: Any, labels: Any, name: str = "embeddings"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an ``(N, D)`` embedding matrix and its ``N`` labels; return float64 / 1-D arrays."""
    emb = as_array(embeddings, name)
    lab = as_array(labels, "labels")
    if emb.ndim != 2:
        raise DataError(f"{name} must be a 2-D (N, D) array, got shape {emb.shape}")
    if lab.ndim != 1:
        raise DataError(f"labels must be 1-D, got shape {lab.shape}")
    if lab.shape[0] != emb.shape[0]:
        raise DataError(f"labels has {lab.shape[0]} entries, {name} has {emb.shape[0]} rows")
    if emb.shape[0] == 0:
        raise DataError(f"{name} is empty")
    if not np.isfinite(emb).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return emb.astype(np.float64, copy=False), lab


def check_methods(
    embeddings_by_method: Mapping[str, Any], labels: Any
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Validate a ``{method: (N, D) embeddings}`` mapping sharing one label vector."""
    if not isinstance(embeddings_by_method, Mapping) or not embeddings_by_method:
        raise DataError("embeddings_by_method must be a non-empty dict {method name: embeddings}")
    out: dict[str, np.ndarray] = {}
    lab = None
    for method, emb in embeddings_by_method.items():
        out[str(method)], lab = check_embeddings(emb, labels, name=f"embeddings of {method!r}")
    assert lab is not None
    return out, lab


def class_colors(n: int) -> np.ndarray:
    """``n`` distinguishable RGBA colours (tab10/tab20 when they suffice, else turbo)."""
    from matplotlib import colormaps

    if n <= 10:
        return colormaps["tab10"](np.arange(n))
    if n <= 20:
        return colormaps["tab20"](np.arange(n))
    return colormaps["turbo"](np.linspace(0.0, 1.0, n))
