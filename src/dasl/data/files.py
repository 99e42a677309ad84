"""File checks for file-backed datasets: missing files and images PIL cannot decode."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image


def missing_files(paths: Sequence[str]) -> list[str]:
    """Paths that do not exist, in input order."""
    return [p for p in paths if not os.path.isfile(p)]


def _unreadable_reason(path: str) -> str | None:
    if os.path.getsize(path) == 0:
        return "empty file (0 bytes)"
    try:
        with Image.open(path) as img:
            # A full decode: verify() passes truncated JPEGs, which fail only when decoded.
            img.load()
    except Exception as err:  # PIL raises many types for corrupt files; all mean "unreadable"
        return f"{type(err).__name__}: {err}"
    return None


def unreadable_images(paths: Sequence[str], workers: int = 8) -> list[tuple[str, str]]:
    """``(path, reason)`` for each existing file PIL cannot open and decode, in input order."""
    if not paths:
        return []
    # Threads suit this: the work is file I/O plus PIL code that releases the GIL.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
        reasons = list(pool.map(_unreadable_reason, paths, chunksize=64))
    return [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]


def describe_paths(paths: Sequence[str], limit: int = 5) -> str:
    """``"a, b, c (and 12 more)"``."""
    shown = ", ".join(str(p) for p in paths[:limit])
    rest = len(paths) - limit
    return shown + (f" (and {rest:,} more)" if rest > 0 else "")
