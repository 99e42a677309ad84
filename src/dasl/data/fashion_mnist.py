"""Fashion-MNIST: official IDX files, a checksummed download, and the class-disjoint catalog.

Protocol: both official files (60,000 train + 10,000 t10k) are pooled, then split by class:
train on classes 0, 2, 4, 6, 8 and test on 1, 3, 5, 7, 9 (35,000 images each). Class-disjoint
retrieval on a 10-class set needs every image of a class on one side; the official
train/t10k split is a classification split with every class on both sides.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dasl.data.catalog import Catalog, Pool, missing_layout_file
from dasl.errors import ConfigError, DataError, MissingDataError
from dasl.utils.io import atomic_write_bytes

CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
URL_BASE = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
TREE = """\
<root>/
├── train-images-idx3-ubyte.gz
├── train-labels-idx1-ubyte.gz
├── t10k-images-idx3-ubyte.gz
└── t10k-labels-idx1-ubyte.gz"""
DEFAULT_TRAIN_CLASSES = (0, 2, 4, 6, 8)
DEFAULT_TEST_CLASSES = (1, 3, 5, 7, 9)


def default_roots() -> list[Path]:
    return [Path("/usr/share/datasets/fashion-mnist"), Path.home() / ".cache/dasl/fashion-mnist"]


def fashion_mnist_available(root: str | Path | None = None) -> Path | None:
    """The folder holding all four IDX files: ``root`` if given, else the default locations."""
    candidates = [Path(root).expanduser()] if root is not None else default_roots()
    for folder in candidates:
        if all((folder / f).is_file() for f in FILES.values()):
            return folder
    return None


def _read_gz(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable gzip file ({err})") from err


def parse_idx_images(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """IDX3: 16-byte header ``>IIII`` (magic 2051, count, rows, cols), then uint8 pixels."""
    if len(data) < 16:
        raise DataError(f"{source}: {len(data)} bytes is too short for an IDX image header")
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != IMAGES_MAGIC:
        raise DataError(f"{source}: magic {magic}, expected {IMAGES_MAGIC} for an IDX image file")
    expected = 16 + count * rows * cols
    if len(data) != expected:
        raise DataError(
            f"{source}: header says {count} images of {rows}x{cols} ({expected} bytes), "
            f"file has {len(data)} bytes (truncated or corrupt; download it again)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def parse_idx_labels(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """IDX1: 8-byte header ``>II`` (magic 2049, count), then one uint8 label per item."""
    if len(data) < 8:
        raise DataError(f"{source}: {len(data)} bytes is too short for an IDX label header")
    magic, count = struct.unpack(">II", data[:8])
    if magic != LABELS_MAGIC:
        raise DataError(f"{source}: magic {magic}, expected {LABELS_MAGIC} for an IDX label file")
    if len(data) != 8 + count:
        raise DataError(
            f"{source}: header says {count} labels, file has {len(data) - 8} (truncated or corrupt)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64)


def load_fashion_mnist_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images ``(N, 28, 28) uint8`` and labels, train file first then t10k."""
    images, labels = [], []
    for part in ("train", "test"):
        paths = [folder / FILES[f"{part}_{kind}"] for kind in ("images", "labels")]
        for p in paths:
            if not p.is_file():
                raise missing_layout_file(
                    p,
                    "fashion-mnist",
                    TREE,
                    "Install the Debian package dataset-fashion-mnist, or pass download=True.",
                )
        img = parse_idx_images(_read_gz(paths[0]), str(paths[0]))
        lab = parse_idx_labels(_read_gz(paths[1]), str(paths[1]))
        if img.shape[0] != lab.shape[0]:
            raise DataError(
                f"{paths[0]} has {img.shape[0]} images but {paths[1]} has {lab.shape[0]} labels"
            )
        if lab.size and lab.max() >= len(CLASS_NAMES):
            raise DataError(f"{paths[1]}: label {lab.max()} outside 0..9")
        images.append(img)
        labels.append(lab)
    if images[0].shape[1:] != images[1].shape[1:]:
        raise DataError(f"train images are {images[0].shape[1:]}, t10k {images[1].shape[1:]}")
    return np.concatenate(images), np.concatenate(labels)


def _digest(data: bytes, expected: str) -> str:
    algo = hashlib.sha256 if len(expected) == 64 else hashlib.md5
    return algo(data).hexdigest()


def download_fashion_mnist(
    root: str | Path | None = None,
    url_base: str = URL_BASE,
    checksums: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Fetch the four IDX files into ``root`` (default ``~/.cache/dasl/fashion-mnist``).

    Each file is verified against its checksum (MD5, or SHA-256 when a 64-hex digest is given;
    default: the official MD5s) before it is written atomically; files already present with
    the right checksum are kept. ``url_base`` may be any URL urllib opens, ``file://`` included.
    """
    folder = Path(root).expanduser() if root is not None else default_roots()[1]
    sums = dict(MD5 if checksums is None else checksums)
    base = url_base if url_base.endswith("/") else url_base + "/"
    for name in FILES.values():
        target = folder / name
        expected = sums.get(name)
        if expected is None:
            raise ConfigError(f"no checksum given for {name}; checksums has {sorted(sums)}")
        if target.is_file() and _digest(target.read_bytes(), expected) == expected.lower():
            continue
        url = base + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except (urllib.error.URLError, OSError) as err:
            raise ConnectionError(
                f"could not download {url} ({err}). If this machine is offline, copy the four "
                f"files into {folder} by hand (layout below) or install the Debian package "
                f"dataset-fashion-mnist.\n{TREE}"
            ) from err
        got = _digest(data, expected)
        if got != expected.lower():
            raise DataError(
                f"checksum mismatch for {url}: expected {expected}, got {got}; the file was not "
                "written. The download is corrupt or the mirror serves other files."
            )
        atomic_write_bytes(target, data)
    return folder


def _class_list(value: Sequence[int] | None, default: Sequence[int], what: str) -> list[int]:
    classes = list(default if value is None else value)
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c <= 9:
            raise ConfigError(f"{what} must hold class ids 0..9, got {c!r}")
    if len(set(classes)) != len(classes) or not classes:
        raise ConfigError(f"{what} must be a non-empty list without repeats, got {classes}")
    return sorted(int(c) for c in classes)


def array_catalog(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    max_value: float,
    train_classes: Sequence[int] | None,
    test_classes: Sequence[int] | None,
) -> Catalog:
    """Class-disjoint pools of an in-memory labelled array (default: even / odd classes)."""
    train_c = _class_list(train_classes, DEFAULT_TRAIN_CLASSES, "train_classes")
    test_c = _class_list(test_classes, DEFAULT_TEST_CLASSES, "test_classes")
    overlap = sorted(set(train_c) & set(test_c))
    if overlap:
        raise ConfigError(
            f"train_classes and test_classes share {overlap}: both sides would hold the same "
            "images. The class-disjoint protocol needs disjoint class lists."
        )
    pools = {}
    for split, classes in (("train", train_c), ("test", test_c)):
        idx = np.flatnonzero(np.isin(labels, classes))
        pools[split] = Pool(idx, labels[idx])
    return Catalog(name, class_names, pools, images=images, max_value=max_value)


def read_fashion_mnist(
    root: str | Path | None,
    train_classes: Sequence[int] | None = None,
    test_classes: Sequence[int] | None = None,
    download: bool = False,
) -> Catalog:
    folder = fashion_mnist_available(root)
    if folder is None:
        if download:
            folder = download_fashion_mnist(root)
        else:
            where = (
                [str(Path(root).expanduser())]
                if root is not None
                else [str(p) for p in default_roots()]
            )
            raise MissingDataError(
                f"fashion-mnist: the four IDX files were not found in {', '.join(where)}. "
                f"Expected layout:\n{TREE}\nInstall the Debian package dataset-fashion-mnist, "
                "or pass download=True (needs internet)."
            )
    images, labels = load_fashion_mnist_arrays(folder)
    catalog = array_catalog(
        "fashion-mnist", images, labels, list(CLASS_NAMES), 255.0, train_classes, test_classes
    )
    catalog.source = str(folder)
    return catalog
