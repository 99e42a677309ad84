"""faiss, imported where it is needed (exact k-NN heaps, index files), with a fix for a broken
install in the error."""

from __future__ import annotations

from typing import Any

from dasl.errors import DependencyError


def require_faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:  # faiss-cpu is a dependency; say how to fix a broken install
        raise DependencyError(
            "faiss is required here; install it with `pip install faiss-cpu`"
        ) from exc
    return faiss
