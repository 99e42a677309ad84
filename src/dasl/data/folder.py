"""A folder per class (ImageFolder layout), split class-disjointly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from dasl.data.catalog import Catalog, Pool
from dasl.errors import ConfigError, MissingDataError

TREE = """\
<root>/
├── <class_a>/
│   ├── img1.jpg
│   └── ...
└── <class_b>/
    └── ..."""


def class_disjoint_pools(
    class_names: list[str],
    refs: np.ndarray,
    class_idx: np.ndarray,
    train_classes: Sequence[str] | None,
    test_classes: Sequence[str] | None,
    source: str,
) -> dict[str, Pool]:
    """Train/test pools by class. Default: the first ``ceil(C/2)`` classes (sorted) train.

    With only one of ``train_classes``/``test_classes`` the other side gets the remaining
    classes. Class names must exist; the two lists must not overlap.
    """
    present = [class_names[i] for i in np.unique(class_idx)]

    def resolve(names: Sequence[str], what: str) -> list[str]:
        if isinstance(names, str):
            raise ConfigError(f"{what} must be a list of class names, got the string {names!r}")
        names = [str(n) for n in names]
        unknown = [n for n in names if n not in present]
        if unknown:
            raise ConfigError(
                f"{what} names classes not in {source}: {unknown[:5]}; "
                f"available: {present[:10]}{' ...' if len(present) > 10 else ''}"
            )
        return names

    if train_classes is None and test_classes is None:
        half = (len(present) + 1) // 2
        train_names, test_names = present[:half], present[half:]
    else:
        given_train = resolve(train_classes, "train_classes") if train_classes is not None else None
        given_test = resolve(test_classes, "test_classes") if test_classes is not None else None
        # one side not given: every other class (at least one side is given here)
        train_names = (
            given_train
            if given_train is not None
            else [n for n in present if n not in set(given_test or ())]
        )
        test_names = (
            given_test
            if given_test is not None
            else [n for n in present if n not in set(train_names)]
        )
        overlap = sorted(set(train_names) & set(test_names))
        if overlap:
            raise ConfigError(
                f"train_classes and test_classes share {overlap[:5]}: both sides would hold the "
                "same images. The class-disjoint protocol needs disjoint class lists."
            )
    name_to_idx = {n: i for i, n in enumerate(class_names)}
    pools = {}
    for split, names in (("train", train_names), ("test", test_names)):
        mask = np.isin(class_idx, [name_to_idx[n] for n in names])
        pools[split] = Pool(refs[mask], class_idx[mask])
    return pools


def read_folder(
    root: str | Path | None,
    train_classes: Sequence[str] | None = None,
    test_classes: Sequence[str] | None = None,
) -> Catalog:
    if root is None:
        raise ConfigError("dataset 'folder' needs root: a folder with one subfolder per class")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingDataError(f"folder: {root} is not a directory. Expected layout:\n{TREE}")
    try:
        classes, class_to_idx = find_classes(str(root))
    except FileNotFoundError as err:
        raise MissingDataError(f"folder: {err}. Expected layout:\n{TREE}") from None
    samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    if not samples:
        raise MissingDataError(
            f"folder: no images ({', '.join(IMG_EXTENSIONS)}) under {root}. "
            f"Expected layout:\n{TREE}"
        )
    refs = np.asarray([p for p, _ in samples], dtype=object)
    class_idx = np.asarray([c for _, c in samples], dtype=np.int64)
    pools = class_disjoint_pools(classes, refs, class_idx, train_classes, test_classes, str(root))
    return Catalog("folder", list(classes), pools, source=str(root))
