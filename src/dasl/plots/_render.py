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
from dasl.metrics.validation import as_array, check_embeddings
from dasl.utils.io import atomic_write_bytes

# as_array and check_embeddings moved to dasl.metrics.validation (#17); kept importable here.
__all__ = ["as_array", "check_embeddings", "check_methods", "class_colors", "save_png"]


def save_png(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Render ``fig`` to PNG in memory, then write it atomically to ``path``."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


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
