"""Stanford Online Products: ``Ebay_train.txt`` (59,551 images, 11,318 classes) and
``Ebay_test.txt`` (60,502 images, 11,316 classes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dasl.data.catalog import (
    Catalog,
    Pool,
    find_dir,
    missing_layout_file,
    open_text,
    parse_int,
    read_table,
)
from dasl.errors import ConfigError, DataError

TREE = """\
<root>/
└── Stanford_Online_Products/   (or pass this folder itself as root)
    ├── Ebay_train.txt          header: image_id class_id super_class_id path
    ├── Ebay_test.txt
    └── bicycle_final/111085122871_0.JPG ..."""
EXPECTED = {"train": (59551, 11318), "test": (60502, 11316)}
HEADER = ["image_id", "class_id", "super_class_id", "path"]


def _read_split(path: Path) -> tuple[list[str], list[int]]:
    with open_text(path) as fh:
        header = fh.readline().split()
    if header[:4] != HEADER:
        raise DataError(f"{path}: header {header}, expected {' '.join(HEADER)}")
    rows = read_table(path, 4, skip=1)
    return [r[3] for r in rows], [parse_int(r[1], path, "class_id") for r in rows]


def read_sop(root: str | Path | None) -> Catalog:
    if root is None:
        raise ConfigError("dataset 'sop' needs root: the folder holding Stanford_Online_Products/")
    root = Path(root).expanduser()
    base = find_dir(root, "Ebay_train.txt", ("Stanford_Online_Products",))
    if base is None:
        raise missing_layout_file(root / "Stanford_Online_Products" / "Ebay_train.txt", "sop", TREE)
    if not (base / "Ebay_test.txt").is_file():
        raise missing_layout_file(base / "Ebay_test.txt", "sop", TREE)
    parts = {s: _read_split(base / f"Ebay_{s}.txt") for s in ("train", "test")}
    class_ids = sorted({c for _, cls in parts.values() for c in cls})
    position = {c: i for i, c in enumerate(class_ids)}
    pools = {
        s: Pool(
            np.asarray([str(base / p) for p in paths], dtype=object),
            np.asarray([position[c] for c in cls], dtype=np.int64),
        )
        for s, (paths, cls) in parts.items()
    }
    names = [str(c) for c in class_ids]
    return Catalog(
        "sop", names, pools, expected=dict(EXPECTED), default_val_by="classes", source=str(base)
    )
