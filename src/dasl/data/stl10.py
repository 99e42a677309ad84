"""STL-10 from the official binaries (Coates et al. 2011): 96x96 colour images, 10 classes.

``*_X.bin`` holds ``uint8`` images one after another, each as 3 planes (R, G, B) of 96x96
pixels stored column-major (as MATLAB writes them); ``*_y.bin`` one ``uint8`` label 1..10 per
image. Splits: train 5,000 / test 8,000 (labelled, all classes in both) and 100,000 unlabeled
images for self-supervised pretraining (split ``unlabeled``, label -1; ``train+unlabeled`` is
the SimCLR pretraining set). The image files are memory-mapped, never read whole (the unlabeled
file is 2.8 GB).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dasl.data.catalog import Catalog, Pool, find_dir, missing_layout_file
from dasl.errors import ConfigError, DataError

TREE = """\
<root>/                      (or <root> = stl10_binary itself)
└── stl10_binary/
    ├── class_names.txt      10 names, one a line
    ├── train_X.bin          5,000 images, each 3x96x96 uint8 column-major
    ├── train_y.bin          5,000 labels, uint8 1..10
    ├── test_X.bin           8,000 images
    ├── test_y.bin
    └── unlabeled_X.bin      100,000 images (no labels)"""
SIDE = 96
IMAGE_BYTES = 3 * SIDE * SIDE
EXPECTED = {
    "train": (5000, 10),
    "test": (8000, 10),
    "unlabeled": (100000, 0),
    "train+unlabeled": (105000, 10),
}


class STL10Images:
    """The images of several ``*_X.bin`` files as one indexable stack of ``(96, 96, 3)`` arrays.

    Memory-mapped; pickles as its file paths (so DataLoader workers reopen the maps instead of
    receiving gigabytes).
    """

    ndim = 4

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self._maps: list[np.memmap] | None = None
        self.counts = []
        for p in self.paths:
            size = p.stat().st_size
            if size % IMAGE_BYTES:
                raise DataError(
                    f"{p}: {size:,} bytes is not a whole number of 3x96x96 images "
                    f"({IMAGE_BYTES:,} bytes each); the file is truncated or not STL-10"
                )
            self.counts.append(size // IMAGE_BYTES)
        self.starts = np.cumsum([0, *self.counts])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (int(self.starts[-1]), SIDE, SIDE, 3)

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _open(self) -> list[np.memmap]:
        if self._maps is None:
            self._maps = [
                np.memmap(p, dtype=np.uint8, mode="r", shape=(n, 3, SIDE, SIDE))
                for p, n in zip(self.paths, self.counts, strict=True)
            ]
        return self._maps

    def __getitem__(self, index: int) -> np.ndarray:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"image {index} out of range 0..{len(self) - 1}")
        f = int(np.searchsorted(self.starts, index, side="right")) - 1
        raw = np.asarray(self._open()[f][index - self.starts[f]])  # (C, col, row)
        return np.ascontiguousarray(raw.transpose(2, 1, 0))  # (row, col, C)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_maps"] = None
        return state


def _labels(path: Path, n_images: int) -> np.ndarray:
    y = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if y.size != n_images:
        raise DataError(f"{path}: {y.size:,} labels for {n_images:,} images")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataError(f"{path}: labels must be 1..10, got {y.min()}..{y.max()}")
    return y - 1


def read_stl10(root: str | Path | None) -> Catalog:
    if root is None:
        raise ConfigError("dataset 'stl10' needs root: the folder holding stl10_binary/")
    root = Path(root).expanduser()
    base = find_dir(root, "train_X.bin", ("stl10_binary",))
    if base is None:
        raise missing_layout_file(root / "stl10_binary" / "train_X.bin", "stl10", TREE)
    files = ["class_names.txt", "train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin",
             "unlabeled_X.bin"]  # fmt: skip
    for f in files:
        if not (base / f).is_file():
            raise missing_layout_file(base / f, "stl10", TREE)
    names = [ln.strip() for ln in (base / "class_names.txt").read_text().splitlines()]
    names = [n for n in names if n]
    if len(names) != 10:
        raise DataError(f"{base / 'class_names.txt'}: {len(names)} class names, STL-10 has 10")
    images = STL10Images([base / "train_X.bin", base / "test_X.bin", base / "unlabeled_X.bin"])
    n_train, n_test, n_unl = images.counts
    train = Pool(np.arange(n_train), _labels(base / "train_y.bin", n_train))
    test = Pool(np.arange(n_train, n_train + n_test), _labels(base / "test_y.bin", n_test))
    unlabeled = Pool(np.arange(n_train + n_test, len(images)), np.full(n_unl, -1))
    pools = {
        "train": train,
        "test": test,
        "unlabeled": unlabeled,
        "train+unlabeled": Pool(
            np.concatenate([train.refs, unlabeled.refs]),
            np.concatenate([train.class_idx, unlabeled.class_idx]),
        ),
    }
    return Catalog(
        "stl10",
        names,
        pools,
        images=images,  # type: ignore[arg-type]  # array-like: ndim, shape, __getitem__
        max_value=255.0,
        expected=dict(EXPECTED),
        shared_labels=True,
        extra_splits=("unlabeled", "train+unlabeled"),
    )
