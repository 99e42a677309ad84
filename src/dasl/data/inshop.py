"""In-Shop Clothes Retrieval: ``list_eval_partition.txt`` with train / query / gallery rows.

Counts: train 25,882 images of 3,997 items; query 14,218 and gallery 12,612 images of the
same 3,985 items. Query and gallery labels come from one mapping over query ∪ gallery item
ids, so equal labels mean the same item across the two splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dasl.data.catalog import Catalog, Pool, missing_layout_file, open_text, parse_int
from dasl.errors import ConfigError, DataError

TREE = """\
<root>/
├── list_eval_partition.txt   (or Eval/list_eval_partition.txt)
│     line 1: number of images; line 2: image_name item_id evaluation_status
└── img/                      (or Img/img/)
    └── WOMEN/Dresses/id_00000002/02_1_front.jpg ..."""
EXPECTED = {"train": (25882, 3997), "query": (14218, 3985), "gallery": (12612, 3985)}
STATUSES = ("train", "query", "gallery")


def read_inshop(root: str | Path | None) -> Catalog:
    if root is None:
        raise ConfigError("dataset 'inshop' needs root: the folder holding list_eval_partition.txt")
    root = Path(root).expanduser()
    part_file = next(
        (
            p
            for p in (root / "list_eval_partition.txt", root / "Eval/list_eval_partition.txt")
            if p.is_file()
        ),
        None,
    )
    if part_file is None:
        raise missing_layout_file(root / "list_eval_partition.txt", "inshop", TREE)
    image_base = next((b for b in (root, root / "Img") if (b / "img").is_dir()), None)
    if image_base is None:
        raise missing_layout_file(root / "img", "inshop", TREE)

    with open_text(part_file) as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    if len(lines) < 2:
        raise DataError(f"{part_file}: expected a count line and a header line")
    count = parse_int(lines[0].strip(), part_file, "line 1 (image count)")
    header = lines[1].split()
    if header[:3] != ["image_name", "item_id", "evaluation_status"]:
        raise DataError(
            f"{part_file}: header {header}, expected image_name item_id evaluation_status"
        )
    rows = [ln.split() for ln in lines[2:]]
    if len(rows) != count:
        raise DataError(f"{part_file}: line 1 says {count} images, the file lists {len(rows)}")
    for lineno, r in enumerate(rows, start=3):
        if len(r) < 3 or r[2] not in STATUSES:
            raise DataError(
                f"{part_file}:{lineno}: expected '<image> <item_id> "
                f"train|query|gallery', got {' '.join(r)!r}"
            )

    items = sorted({r[1] for r in rows})
    position = {it: i for i, it in enumerate(items)}
    refs = np.asarray([str(image_base / r[0]) for r in rows], dtype=object)
    class_idx = np.asarray([position[r[1]] for r in rows], dtype=np.int64)
    status = np.asarray([r[2] for r in rows])
    pools = {s: Pool(refs[status == s], class_idx[status == s]) for s in STATUSES}
    return Catalog(
        "inshop", items, pools, expected=dict(EXPECTED), default_val_by="classes", source=str(root)
    )
