"""CIFAR-10 and CIFAR-100 from the official python pickles (Krizhevsky 2009).

Each batch file is a pickled dict: ``data`` a ``(10000, 3072) uint8`` array whose rows hold the
red, green and blue 32x32 planes in row-major order, plus ``labels`` (CIFAR-10) or
``fine_labels``/``coarse_labels`` (CIFAR-100). Classification splits: train 50,000 / test 10,000
images, every class in both; the label space is shared.

Unpickling runs code named by the file, so the files are read with an unpickler that only lets
numpy arrays be rebuilt (a tampered file fails instead of executing anything).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dasl.data.catalog import Catalog, Pool, find_dir, missing_layout_file
from dasl.errors import ConfigError, DataError

CIFAR10_TREE = """\
<root>/                      (or <root> = cifar-10-batches-py itself)
└── cifar-10-batches-py/
    ├── batches.meta         label_names
    ├── data_batch_1 ... data_batch_5    10,000 images each: data (10000x3072 uint8), labels
    └── test_batch           10,000 images"""
CIFAR100_TREE = """\
<root>/                      (or <root> = cifar-100-python itself)
└── cifar-100-python/
    ├── meta                 fine_label_names, coarse_label_names
    ├── train                50,000 images: data (50000x3072 uint8), fine_labels, coarse_labels
    └── test                 10,000 images"""
SIDE = 32
# Globals a CIFAR pickle may name: numpy's array reconstruction under its 1.x and 2.x paths.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles ``bytes`` under protocol 2 (no BINBYTES opcode
    there): ``_codecs.encode(str, "latin1")``. Only that codec: it turns text into bytes and
    nothing else (torch's ``weights_only`` unpickler allows the same global for this reason)."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1", errors)


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _key(d: dict, name: str) -> Any:
    """``d[name]`` for dicts pickled by Python 2 (bytes keys) or 3 (str keys)."""
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def load_pickle(path: Path) -> dict:
    """One official CIFAR pickle as a dict (Python 2 pickles: bytes keys, latin-1 strings)."""
    try:
        with open(path, "rb") as fh:
            obj = _ArrayUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataError(f"{path}: not a CIFAR python pickle ({err})") from err
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _names(meta: dict, key: str, path: Path) -> list[str]:
    try:
        raw = _key(meta, key)
    except KeyError:
        raise DataError(f"{path}: no {key!r} entry") from None
    return [n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in raw]


def read_batch(path: Path, label_key: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 32, 32, 3) uint8 HWC, labels (N,) int64)`` of one batch file."""
    batch = load_pickle(path)
    try:
        data = np.asarray(_key(batch, "data"))
        labels = np.asarray(_key(batch, label_key), dtype=np.int64)
    except KeyError as err:
        raise DataError(
            f"{path}: no {err.args[0]!r} entry (has {sorted(map(str, batch))})"
        ) from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise DataError(
            f"{path}: data must be a (N, 3072) uint8 array, got {data.shape} {data.dtype}"
        )
    if labels.shape != (data.shape[0],):
        raise DataError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path}: labels outside 0..{n_classes - 1}")
    # Rows are the R, G, B planes one after another, each row-major.
    images = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _catalog(
    name: str,
    class_names: list[str],
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    expected: dict[str, tuple[int, int]],
) -> Catalog:
    images, pools, offset = [], {}, 0
    for split, batches in parts.items():
        imgs = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        images.append(imgs)
        pools[split] = Pool(np.arange(offset, offset + len(labels)), labels)
        offset += len(labels)
    return Catalog(
        name,
        class_names,
        pools,
        images=np.concatenate(images),
        max_value=255.0,
        expected=expected,
        shared_labels=True,
    )


def _base(root: str | Path | None, name: str, inner: str, marker: str, tree: str) -> Path:
    if root is None:
        raise ConfigError(f"dataset {name!r} needs root: the folder holding {inner}/")
    root = Path(root).expanduser()
    base = find_dir(root, marker, (inner,))
    if base is None:
        raise missing_layout_file(root / inner / marker, name, tree)
    return base


def _require(path: Path, name: str, tree: str) -> Path:
    if not path.is_file():
        raise missing_layout_file(path, name, tree)
    return path


def read_cifar10(root: str | Path | None) -> Catalog:
    base = _base(root, "cifar10", "cifar-10-batches-py", "batches.meta", CIFAR10_TREE)
    meta_path = base / "batches.meta"
    names = _names(load_pickle(meta_path), "label_names", meta_path)
    if len(names) != 10:
        raise DataError(f"{meta_path}: {len(names)} label_names, CIFAR-10 has 10")
    files = {
        "train": [base / f"data_batch_{i}" for i in range(1, 6)],
        "test": [base / "test_batch"],
    }
    parts = {
        split: [read_batch(_require(p, "cifar10", CIFAR10_TREE), "labels", 10) for p in paths]
        for split, paths in files.items()
    }
    return _catalog("cifar10", names, parts, {"train": (50000, 10), "test": (10000, 10)})


def read_cifar100(root: str | Path | None, coarse_labels: bool = False) -> Catalog:
    """CIFAR-100 with its 100 fine classes, or (``coarse_labels=True``) the 20 superclasses."""
    if not isinstance(coarse_labels, bool):
        raise ConfigError(f"coarse_labels must be True or False, got {coarse_labels!r}")
    base = _base(root, "cifar100", "cifar-100-python", "meta", CIFAR100_TREE)
    kind = "coarse" if coarse_labels else "fine"
    n_classes = 20 if coarse_labels else 100
    meta_path = base / "meta"
    names = _names(load_pickle(meta_path), f"{kind}_label_names", meta_path)
    if len(names) != n_classes:
        raise DataError(f"{meta_path}: {len(names)} {kind}_label_names, expected {n_classes}")
    parts = {
        split: [
            read_batch(
                _require(base / split, "cifar100", CIFAR100_TREE), f"{kind}_labels", n_classes
            )
        ]
        for split in ("train", "test")
    }
    expected = {"train": (50000, n_classes), "test": (10000, n_classes)}
    return _catalog("cifar100", names, parts, expected)
