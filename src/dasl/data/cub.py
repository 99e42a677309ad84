"""CUB-200-2011, zero-shot split: classes 1-100 train (5,864 images), 101-200 test (5,924).

``train_test_split.txt`` is deliberately ignored: it is the classification split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dasl.data.catalog import (
    Catalog,
    Pool,
    find_dir,
    missing_layout_file,
    parse_int,
    read_table,
)
from dasl.errors import ConfigError, DataError

TREE = """\
<root>/
└── CUB_200_2011/            (or pass this folder itself as root)
    ├── images.txt             <image_id> <relative path>
    ├── image_class_labels.txt <image_id> <class_id 1..200>
    ├── classes.txt            <class_id> <class name>
    └── images/
        └── 001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg ..."""
EXPECTED = {"train": (5864, 100), "test": (5924, 100)}
LAST_TRAIN_CLASS = 100


def read_cub(root: str | Path | None) -> Catalog:
    if root is None:
        raise ConfigError("dataset 'cub200' needs root: the folder holding CUB_200_2011/")
    root = Path(root).expanduser()
    base = find_dir(root, "images.txt", ("CUB_200_2011",))
    if base is None:
        raise missing_layout_file(root / "CUB_200_2011" / "images.txt", "cub200", TREE)
    for name in ("image_class_labels.txt", "classes.txt", "images"):
        if not (base / name).exists():
            raise missing_layout_file(base / name, "cub200", TREE)

    classes = {
        parse_int(r[0], base / "classes.txt", "class id"): " ".join(r[1:])
        for r in read_table(base / "classes.txt", 2)
    }
    paths = {
        parse_int(r[0], base / "images.txt", "image id"): r[1]
        for r in read_table(base / "images.txt", 2)
    }
    labels_txt = base / "image_class_labels.txt"
    image_class = {
        parse_int(r[0], labels_txt, "image id"): parse_int(r[1], labels_txt, "class id")
        for r in read_table(labels_txt, 2)
    }
    unlabelled = sorted(set(paths) - set(image_class))
    if unlabelled:
        raise DataError(f"{labels_txt}: no class for image ids {unlabelled[:5]}")
    unknown = sorted({c for c in image_class.values() if c not in classes})
    if unknown:
        raise DataError(f"{labels_txt}: class ids {unknown[:5]} are not in classes.txt")

    class_ids = sorted(classes)
    position = {c: i for i, c in enumerate(class_ids)}
    ids = sorted(paths)
    refs = np.asarray([str(base / "images" / paths[i]) for i in ids], dtype=object)
    cls = np.asarray([image_class[i] for i in ids], dtype=np.int64)
    class_idx = np.asarray([position[c] for c in cls], dtype=np.int64)
    train = cls <= LAST_TRAIN_CLASS
    pools = {
        "train": Pool(refs[train], class_idx[train]),
        "test": Pool(refs[~train], class_idx[~train]),
    }
    names = [classes[c] for c in class_ids]
    return Catalog(
        "cub200", names, pools, expected=dict(EXPECTED), default_val_by="classes", source=str(base)
    )
