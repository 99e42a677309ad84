"""The folder ``dasl embed`` writes and ``dasl search`` reads.

``embeddings.npy`` ``(N, d)`` float32, ``labels.npy`` ``(N,)`` int64, ``index.faiss`` (with
``--faiss``) and, written last, ``embed.json``: the checkpoint (absolute path and SHA-256),
the dataset and split, the metric, the preprocessing (:mod:`dasl.deploy.preprocessing`), the
class name of each label, one reference per row (the image file's absolute path, or
``<dataset>:<split>[<i>]`` for the in-memory datasets: digits, Fashion-MNIST, glyphs, CIFAR,
STL-10) and the SHA-256 of every file above. ``format`` numbers the layout: folders written
before it existed (no ``format``, no preprocessing) are refused with the command that rebuilds
them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dasl import __version__
from dasl.deploy.preprocessing import Preprocessing
from dasl.errors import DataError

MANIFEST = "embed.json"
"""Written last by ``dasl embed``: the outputs are complete when it exists."""
INDEX_FILE = "index.faiss"
FORMAT = 2
"""Layout of :data:`MANIFEST`; 1 was the unnumbered one of dasl 0.1.0 up to 2026-12-07."""


class IndexFolderError(DataError):
    """A folder given as an index is missing, incomplete, damaged or of another format."""


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks (checkpoints can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def item_refs(dataset: Any) -> list[str]:
    """One reference per item of ``dataset``: its file's absolute path, or
    ``<name>:<split>[<i>]`` (``i``: position in the split) for in-memory images."""
    paths = getattr(dataset, "paths", None)
    if paths is not None:
        return [os.path.abspath(p) for p in paths]
    return [f"{dataset.name}:{dataset.split}[{i}]" for i in range(len(dataset))]


def manifest(
    *,
    checkpoint: str | os.PathLike[str],
    dataset: Any,
    shape: tuple[int, ...],
    distance: str,
    preprocessing: Preprocessing,
    files: dict[str, str],
) -> dict[str, Any]:
    """The :data:`MANIFEST` of a folder holding ``dataset``'s embeddings (``files``: name ->
    SHA-256 of the files already written)."""
    ckpt = Path(checkpoint).resolve()
    return {
        "format": FORMAT,
        "dasl_version": __version__,
        "checkpoint": str(ckpt),
        "checkpoint_sha256": file_sha256(ckpt),
        "dataset": dataset.name,
        "split": dataset.split,
        "shape": list(shape),
        "distance": distance,
        "preprocessing": preprocessing.to_json(),
        "class_names": list(dataset.class_names),
        "items": item_refs(dataset),
        "sha256": files,
    }


@dataclasses.dataclass
class IndexFolder:
    """A complete folder written by ``dasl embed --faiss``, checked against its manifest."""

    path: Path
    checkpoint: Path
    checkpoint_sha256: str
    distance: str
    preprocessing: Preprocessing
    items: list[str]
    labels: np.ndarray
    class_names: list[str]
    dim: int

    @property
    def index_path(self) -> Path:
        return self.path / INDEX_FILE

    def check_checkpoint(self) -> Path:
        """The checkpoint the index was built with, unchanged since, else ``IndexFolderError``."""
        if not self.checkpoint.is_file():
            raise IndexFolderError(
                f"{self.path}: its checkpoint {self.checkpoint} is gone; rebuild the index "
                "with dasl embed --checkpoint CKPT --out DIR --faiss"
            )
        if file_sha256(self.checkpoint) != self.checkpoint_sha256:
            raise IndexFolderError(
                f"{self.path}: its checkpoint {self.checkpoint} has changed since the index "
                "was built (SHA-256 differs); rebuild the index with dasl embed --checkpoint "
                f"{self.checkpoint} --out {self.path} --faiss"
            )
        return self.checkpoint

    def class_name(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)


def _rebuild(path: Path, checkpoint: object) -> str:
    ckpt = checkpoint if isinstance(checkpoint, str) else "CKPT"
    return f"dasl embed --checkpoint {ckpt} --out {path} --faiss"


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise IndexFolderError(f"--index {path}: no such folder")
    if not path.is_dir():
        raise IndexFolderError(f"--index {path}: a file, not a folder written by dasl embed")
    try:
        text = (path / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IndexFolderError(
            f"{path}: no {MANIFEST}, so not a complete folder written by dasl embed (run "
            f"{_rebuild(path, None)})"
        ) from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IndexFolderError(f"{path / MANIFEST}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise IndexFolderError(f"{path / MANIFEST}: not a manifest written by dasl embed")
    return record


def read_index_folder(path: str | os.PathLike[str]) -> IndexFolder:
    """Read and check a folder written by ``dasl embed --faiss``; ``IndexFolderError`` (one
    line saying what is wrong and how to rebuild it) otherwise."""
    path = Path(path)
    record = _read_manifest(path)
    fmt = record.get("format")
    rebuild = _rebuild(path, record.get("checkpoint"))
    if fmt is None or (isinstance(fmt, int) and fmt < FORMAT):
        raise IndexFolderError(
            f"{path} was written by an older dasl embed, which did not record the "
            f"preprocessing and items that search needs; rebuild it with {rebuild}"
        )
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise IndexFolderError(
            f"{path} was written by another dasl version (index format {fmt!r}, from dasl "
            f"{record.get('dasl_version', '?')}; this dasl {__version__} reads format {FORMAT}); "
            f"use that version or rebuild it with {rebuild}"
        )
    hashes = record.get("sha256") or {}
    if INDEX_FILE not in hashes or not (path / INDEX_FILE).is_file():
        raise IndexFolderError(
            f"{path} holds embeddings but no faiss index; rebuild it with {rebuild}"
        )
    for name in (INDEX_FILE, "labels.npy"):
        where = path / name
        if not where.is_file() or file_sha256(where) != hashes.get(name):
            raise IndexFolderError(
                f"{where} does not match {MANIFEST} (changed or damaged since dasl embed wrote "
                f"it); rebuild the index with {rebuild}"
            )
    try:
        pre = Preprocessing.from_json(record["preprocessing"])
        labels = np.load(path / "labels.npy", allow_pickle=False)
        n, dim = (int(v) for v in record["shape"])
        folder = IndexFolder(
            path=path,
            checkpoint=Path(record["checkpoint"]),
            checkpoint_sha256=str(record["checkpoint_sha256"]),
            distance=str(record["distance"]),
            preprocessing=pre,
            items=[str(i) for i in record["items"]],
            labels=np.asarray(labels, dtype=np.int64).reshape(-1),
            class_names=[str(c) for c in record["class_names"]],
            dim=dim,
        )
    except (KeyError, TypeError, ValueError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise IndexFolderError(f"{path / MANIFEST}: {what}; rebuild it with {rebuild}") from None
    if not len(folder.items) == len(folder.labels) == n:
        raise IndexFolderError(
            f"{path / MANIFEST}: {len(folder.items)} items and {len(folder.labels)} labels for "
            f"{n} embeddings; rebuild it with {rebuild}"
        )
    return folder
