"""ImageNet (ILSVRC-2012) and its 100-class subset ImageNet-100 (the CMC class list).

Splits: ``train`` = the official training images (1,281,167 in 1,000 classes), ``test`` = the
official validation images (50,000, 50 per class), every class on both sides (shared labels,
classes in sorted wnid order as torchvision's ``ImageFolder`` orders them). ``val`` is carved
from train like for the other datasets.

Layouts accepted (``<base>`` = ``<root>`` or Kaggle's ``<root>/ILSVRC/Data/CLS-LOC``):
``<base>/train/<wnid>/*.JPEG``; ``<base>/val/`` either as class folders ``val/<wnid>/*.JPEG``
(after the usual ``valprep.sh``) or flat ``val/ILSVRC2012_val_*.JPEG`` with Kaggle's
``LOC_val_solution.csv`` (``ImageId,PredictionString``, the first token of the prediction
string is the wnid). ``LOC_synset_mapping.txt`` (``<wnid> <names>``), when present, gives the
class names as ``"<wnid> <names>"``; otherwise the names are the wnids.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from torchvision.datasets.folder import IMG_EXTENSIONS

from dasl.data.catalog import Catalog, Pool, missing_layout_file, open_text
from dasl.errors import ConfigError, DataError, MissingDataError

TREE = """\
<root>/                          (or <root>/ILSVRC/Data/CLS-LOC/ for the Kaggle copy)
├── train/
│   ├── n01440764/
│   │   ├── n01440764_10026.JPEG
│   │   └── ...
│   └── ... (1,000 wnid folders)
├── val/                         either class folders val/<wnid>/*.JPEG, or flat:
│   ├── ILSVRC2012_val_00000001.JPEG
│   └── ...
├── LOC_val_solution.csv         needed for a flat val/ (Kaggle; ImageId,PredictionString)
└── LOC_synset_mapping.txt       optional: '<wnid> <names>' per line"""
EXPECTED_1K = {"train": (1281167, 1000), "test": (50000, 1000)}
EXPECTED_100 = {"train": (126689, 100), "test": (5000, 100)}
VAL_CSV = "LOC_val_solution.csv"
SYNSETS = "LOC_synset_mapping.txt"


def imagenet100_classes() -> list[str]:
    """The 100 wnids of ImageNet-100 (CMC's list, shipped as ``imagenet100_classes.txt``)."""
    text = resources.files("dasl.data").joinpath("imagenet100_classes.txt").read_text()
    wnids = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if len(wnids) != 100 or len(set(wnids)) != 100:
        raise RuntimeError(f"imagenet100_classes.txt holds {len(wnids)} wnids, expected 100")
    return wnids


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def _images_in(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.path for e in it if e.is_file() and _is_image(e.name))


def _find_base(root: Path) -> Path | None:
    for base in (root, root / "ILSVRC" / "Data" / "CLS-LOC"):
        if (base / "train").is_dir():
            return base
    return None


def _first_file(name: str, places: Sequence[Path]) -> Path | None:
    return next((p / name for p in places if (p / name).is_file()), None)


def _class_names(wnids: list[str], mapping: Path | None) -> list[str]:
    if mapping is None:
        return list(wnids)
    described = {}
    with open_text(mapping) as fh:
        for line in fh:
            parts = line.strip().split(maxsplit=1)
            if parts:
                described[parts[0]] = line.strip()
    return [described.get(w, w) for w in wnids]


def _val_from_csv(csv_path: Path, val_dir: Path, keep: set[str]) -> tuple[list[str], list[str]]:
    """``(paths, wnids)`` of the flat val images listed in Kaggle's ``LOC_val_solution.csv``."""
    paths, wnids = [], []
    with open_text(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise DataError(f"{csv_path}: header {header}, expected ImageId,PredictionString")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2 or not row[1].split():
                raise DataError(f"{csv_path}:{lineno}: expected '<ImageId>,<wnid> ...', got {row}")
            wnid = row[1].split()[0]
            if wnid in keep:
                paths.append(str(val_dir / f"{row[0].strip()}.JPEG"))
                wnids.append(wnid)
    return paths, wnids


def read_imagenet_tree(
    root: str | Path | None,
    name: str,
    expected: dict[str, tuple[int, int]],
    classes: Sequence[str] | None = None,
) -> Catalog:
    """Catalog of an ILSVRC-2012 tree, restricted to ``classes`` (wnids) when given."""
    if root is None:
        raise ConfigError(
            f"dataset {name!r} needs root: the ImageNet folder holding train/ and val/"
        )
    root = Path(root).expanduser()
    base = _find_base(root)
    if base is None:
        raise missing_layout_file(root / "train", name, TREE)
    with os.scandir(base / "train") as it:
        present = sorted(e.name for e in it if e.is_dir())
    wnids = present if classes is None else sorted(set(classes) & set(present))
    if not wnids:
        hint = "" if classes is None else f"none of the {len(classes)} {name} wnids is there. "
        raise MissingDataError(
            f"{name}: no class folders under {base / 'train'}; {hint}Expected layout:\n{TREE}"
        )
    position = {w: i for i, w in enumerate(wnids)}

    train_refs, train_idx = [], []
    for w in wnids:
        files = _images_in(base / "train" / w)
        train_refs += files
        train_idx += [position[w]] * len(files)

    val_dir = base / "val"
    if not val_dir.is_dir():
        raise missing_layout_file(val_dir, name, TREE)
    with os.scandir(val_dir) as it:
        entries = list(it)
    val_dirs = sorted(e.name for e in entries if e.is_dir())
    flat = [e for e in entries if e.is_file() and _is_image(e.name)]
    if val_dirs and not flat:
        unknown = sorted(set(val_dirs) - set(present))
        if unknown:
            raise DataError(
                f"{name}: val/ has class folders without a train/ folder: {unknown[:5]}"
            )
        test_refs, test_wnids = [], []
        for w in (d for d in val_dirs if d in position):
            files = _images_in(val_dir / w)
            test_refs += files
            test_wnids += [w] * len(files)
    else:
        csv_path = _first_file(VAL_CSV, (root, base, val_dir))
        if csv_path is None:
            raise missing_layout_file(
                root / VAL_CSV,
                name,
                TREE,
                "val/ is flat (no class folders), so the labels must come from Kaggle's "
                f"{VAL_CSV}; or sort val/ into class folders (the usual valprep.sh).",
            )
        test_refs, test_wnids = _val_from_csv(csv_path, val_dir, set(present))
        # Images of classes absent from train/ (a partial copy) cannot be labelled in this
        # label space; they are left out, and the count check reports the shortfall.
        keep = [i for i, w in enumerate(test_wnids) if w in position]
        test_refs = [test_refs[i] for i in keep]
        test_wnids = [test_wnids[i] for i in keep]

    mapping = _first_file(SYNSETS, (root, base))
    pools = {
        "train": Pool(np.asarray(train_refs, dtype=object), np.asarray(train_idx, np.int64)),
        "test": Pool(
            np.asarray(test_refs, dtype=object),
            np.asarray([position[w] for w in test_wnids], np.int64),
        ),
    }
    return Catalog(
        name,
        _class_names(wnids, mapping),
        pools,
        expected=dict(expected),
        shared_labels=True,
    )


def read_imagenet(root: str | Path | None) -> Catalog:
    return read_imagenet_tree(root, "imagenet", EXPECTED_1K)


def read_imagenet100(root: str | Path | None) -> Catalog:
    """The 100 CMC classes, from a full ImageNet tree or one holding just those classes."""
    return read_imagenet_tree(root, "imagenet100", EXPECTED_100, imagenet100_classes())
