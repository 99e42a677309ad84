"""What a reader returns: the official splits ("pools") of a dataset before relabelling.

A reader parses an archive's index files into a :class:`Catalog`; the shared code in
``splits.py`` then carves validation data, caps classes and makes labels contiguous. Keeping
readers to parsing makes ``check_dataset`` able to report on a layout without loading it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from dasl.errors import DataError

# The zero-shot (class-disjoint) protocol vs the classification split people load by mistake.
CLASSIFICATION_TRAP = (
    "This looks like the classification split trap: CUB's train_test_split.txt (5,994/5,794 "
    "images) and Cars' cars_train/cars_test (8,144/8,041, torchvision/Kaggle) put every class "
    "in both halves; metric-learning papers use the class-disjoint (zero-shot) split instead "
    "(CUB classes 1-100 / 101-200: 5,864/5,924; Cars classes 1-98 / 99-196: 8,054/8,131)."
)


@dataclass
class Pool:
    """Items of one official split.

    ``refs`` holds image paths (object array of str) for file-backed sets or row indices into
    :attr:`Catalog.images` for array-backed sets; ``class_idx`` indexes
    :attr:`Catalog.class_names`.
    """

    refs: np.ndarray
    class_idx: np.ndarray

    def __post_init__(self) -> None:
        self.class_idx = np.asarray(self.class_idx, dtype=np.int64)
        if len(self.refs) != len(self.class_idx):
            raise DataError(f"{len(self.refs)} refs for {len(self.class_idx)} class indices")

    def __len__(self) -> int:
        return len(self.class_idx)

    def take(self, index: np.ndarray) -> Pool:
        return Pool(self.refs[index], self.class_idx[index])

    @property
    def num_classes(self) -> int:
        """Distinct classes; unlabeled items (class index -1, STL-10's unlabeled split) excluded."""
        return int(np.unique(self.class_idx[self.class_idx >= 0]).size)


@dataclass
class Catalog:
    """A parsed dataset: its pools (``train``/``test``, maybe ``val``/``query``/``gallery``).

    ``class_names`` is in the canonical class order (official class id order), which decides
    which training classes a class-wise validation split takes (the last ones).
    ``expected`` maps a pool name to its standard ``(images, classes)`` count, where one exists.
    ``shared_labels``: a classification dataset (CIFAR, STL-10, ImageNet): train and test hold the
    same classes and every split labels an item by its class's position in ``class_names``
    (instead of the class-disjoint splits' per-split contiguous labels). ``extra_splits``: pools
    loaded as they are besides the standard splits (STL-10 ``unlabeled``, whose items have class
    index -1 and label -1).
    """

    name: str
    class_names: list[str]
    pools: dict[str, Pool]
    images: np.ndarray | None = None
    max_value: float = 255.0
    expected: dict[str, tuple[int, int]] = field(default_factory=dict)
    default_val_by: str = "images"
    notes: list[str] = field(default_factory=list)
    source: str | None = None
    """Where the data was read from (the resolved folder or file), for reports."""
    shared_labels: bool = False
    extra_splits: tuple[str, ...] = ()

    @property
    def file_backed(self) -> bool:
        return self.images is None


def count_problems(catalog: Catalog, allow_subset: bool) -> list[str]:
    """Compare each pool's image/class counts with the standard ones.

    With ``allow_subset`` a pool smaller than the standard is accepted; larger never is.
    """
    problems = []
    for pool_name, (exp_images, exp_classes) in catalog.expected.items():
        pool = catalog.pools.get(pool_name)
        got_images = 0 if pool is None else len(pool)
        got_classes = 0 if pool is None else pool.num_classes
        if (got_images, got_classes) == (exp_images, exp_classes):
            continue
        if allow_subset and got_images <= exp_images and got_classes <= exp_classes:
            continue
        problems.append(
            f"{catalog.name} {pool_name}: {got_images:,} images / {got_classes:,} classes, "
            f"expected {exp_images:,} / {exp_classes:,}"
        )
    return problems


def count_error(catalog: Catalog, problems: list[str]) -> ValueError:
    if catalog.shared_labels:  # a classification dataset: no class-disjoint trap to explain
        return ValueError(
            f"{catalog.name}: split sizes differ from the standard ones: "
            + "; ".join(problems)
            + ". Some files or class folders are missing, or the root holds another dataset. "
            "If your copy is deliberately partial, pass allow_subset=True to accept subsets."
        )
    return ValueError(
        "split sizes differ from the standard class-disjoint protocol: "
        + "; ".join(problems)
        + ". "
        + CLASSIFICATION_TRAP
        + " If your copy is deliberately partial, pass allow_subset=True to accept subsets."
    )


def missing_layout_file(path: Path, dataset: str, tree: str, hint: str = "") -> FileNotFoundError:
    """A FileNotFoundError naming the missing file and drawing the expected layout."""
    msg = f"{dataset}: missing {path}. Expected layout:\n{tree.rstrip()}"
    if hint:
        msg += f"\n{hint}"
    return FileNotFoundError(msg)


def find_dir(root: Path, marker: str, subdirs: tuple[str, ...]) -> Path | None:
    """The first of ``root`` and ``root/<subdir>`` that contains ``marker``."""
    for base in (root, *(root / s for s in subdirs)):
        if (base / marker).exists():
            return base
    return None


@contextmanager
def open_text(path: str | Path, newline: str | None = None) -> Iterator[TextIO]:
    """``open(path)`` as UTF-8 text; bytes that are not UTF-8 are a :class:`DataError` naming
    the file (Python's ``UnicodeDecodeError`` does not name it, and is no user error)."""
    try:
        with open(path, encoding="utf-8", newline=newline) as fh:
            yield fh
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason}); save it as UTF-8") from None


def read_table(path: Path, min_fields: int, skip: int = 0) -> list[list[str]]:
    """Whitespace-separated rows of a text index file, with its name in parse errors."""
    rows = []
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno <= skip or not line.strip():
                continue
            parts = line.split()
            if len(parts) < min_fields:
                raise DataError(
                    f"{path}:{lineno}: expected at least {min_fields} fields, got {line.strip()!r}"
                )
            rows.append(parts)
    return rows


def parse_int(value: str, path: Path, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{path}: {what} must be an integer, got {value!r}") from None
