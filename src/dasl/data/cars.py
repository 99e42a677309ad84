"""Cars196 from ``cars_annos.mat``; zero-shot split: classes 1-98 train (8,054 images),
99-196 test (8,131).

The ``test`` flag in the annotations is the classification split and is ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dasl.data.catalog import Catalog, Pool, missing_layout_file
from dasl.errors import ConfigError, DataError

TREE = """\
<root>/
├── cars_annos.mat     struct array 'annotations': relative_im_path, bbox_*, class (1..196), test
└── car_ims/
    ├── 000001.jpg
    └── ..."""
CLASSIFICATION_HINT = (
    "Found the classification-split layout (devkit/cars_train_annos.mat, cars_train/, cars_test/ "
    "from torchvision/Kaggle: 8,144/8,041 images, every class in both halves). The zero-shot "
    "protocol needs cars_annos.mat and car_ims/ from the original Stanford release."
)
EXPECTED = {"train": (8054, 98), "test": (8131, 98)}
LAST_TRAIN_CLASS = 98


def _text(value: object) -> str:
    arr = np.asarray(value)
    return str(arr.item() if arr.size == 1 else arr.squeeze())


def read_cars(root: str | Path | None) -> Catalog:
    from scipy.io import loadmat

    if root is None:
        raise ConfigError("dataset 'cars196' needs root: the folder holding cars_annos.mat")
    root = Path(root).expanduser()
    mat_path = root / "cars_annos.mat"
    if not mat_path.is_file():
        hint = ""
        if (root / "cars_train").exists() or (root / "devkit").exists():
            hint = CLASSIFICATION_HINT
        raise missing_layout_file(mat_path, "cars196", TREE, hint)
    if not (root / "car_ims").is_dir():
        raise missing_layout_file(root / "car_ims", "cars196", TREE)
    try:
        mat = loadmat(str(mat_path), squeeze_me=True)
    except Exception as err:  # scipy raises several types for a non-.mat file
        raise DataError(f"{mat_path}: not a readable MATLAB file ({err})") from err
    if "annotations" not in mat:
        raise DataError(f"{mat_path}: no 'annotations' variable (has {sorted(mat)[:8]})")
    ann = np.atleast_1d(mat["annotations"])
    fields = ann.dtype.names or ()
    for f in ("relative_im_path", "class"):
        if f not in fields:
            raise DataError(f"{mat_path}: annotations lack the field {f!r} (has {fields})")

    rel = [_text(a) for a in ann["relative_im_path"]]
    cls = np.asarray([int(np.asarray(c).item()) for c in ann["class"]], dtype=np.int64)
    names_by_id = {}
    if "class_names" in mat:
        for i, n in enumerate(np.atleast_1d(mat["class_names"]), start=1):
            names_by_id[i] = _text(n)
    class_ids = sorted(set(cls.tolist()))
    names = [names_by_id.get(c, str(c)) for c in class_ids]
    position = {c: i for i, c in enumerate(class_ids)}
    refs = np.asarray([str(root / r) for r in rel], dtype=object)
    class_idx = np.asarray([position[c] for c in cls], dtype=np.int64)
    train = cls <= LAST_TRAIN_CLASS
    pools = {
        "train": Pool(refs[train], class_idx[train]),
        "test": Pool(refs[~train], class_idx[~train]),
    }
    return Catalog(
        "cars196", names, pools, expected=dict(EXPECTED), default_val_by="classes", source=str(root)
    )
