"""A CSV index of images: ``path,label[,split][,is_query,is_gallery]`` (OML-compatible).

Paths are relative to the CSV's folder or absolute. With a ``split`` column, its values
(``train``/``val``/``test``) decide the splits; without it the classes are split half/half like
the folder reader. OML-style ``is_query``/``is_gallery`` columns (1/0, true/false) add
``query``/``gallery`` splits taken from the test rows; with them, OML's split value
``validation`` (its name for the evaluated part) reads as ``test``. Labels are class names;
classes are ordered numerically when every label is an integer, else as strings.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dasl.data.catalog import Catalog, Pool, open_text
from dasl.data.folder import class_disjoint_pools
from dasl.errors import ConfigError, DataError, MissingDataError

TREE = """\
<folder>/
├── dataset.csv        # header: path,label[,split][,is_query,is_gallery]
└── images/...         # paths in the CSV, relative to its folder or absolute"""
SPLITS = ("train", "val", "test")
TRUE, FALSE = {"1", "true", "yes", "t", "y"}, {"0", "false", "no", "f", "n", ""}


def _csv_path(root: str | Path | None) -> Path:
    if root is None:
        raise ConfigError("dataset 'csv' needs root: the CSV file (or a folder holding one CSV)")
    root = Path(root).expanduser()
    if root.is_dir():
        found = sorted(root.glob("*.csv"))
        if len(found) != 1:
            raise MissingDataError(
                f"csv: {root} holds {len(found)} .csv files; pass the CSV file itself as root. "
                f"Expected layout:\n{TREE}"
            )
        return found[0]
    if not root.is_file():
        raise MissingDataError(f"csv: missing {root}. Expected layout:\n{TREE}")
    return root


def _flag(value: str, path: Path, line: int, column: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise DataError(f"{path}:{line}: {column} must be 1/0 or true/false, got {value!r}")


def read_csv(
    root: str | Path | None,
    train_classes: list[str] | None = None,
    test_classes: list[str] | None = None,
) -> Catalog:
    path = _csv_path(root)
    with open_text(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        for required in ("path", "label"):
            if required not in header:
                raise DataError(
                    f"{path}: header {header} lacks the column {required!r}; expected "
                    "path,label[,split][,is_query,is_gallery]"
                )
        has_split = "split" in header
        has_qg = "is_query" in header or "is_gallery" in header
        if has_qg and not ("is_query" in header and "is_gallery" in header):
            raise DataError(f"{path}: give both is_query and is_gallery columns, or neither")
        rows = list(reader)
    if not rows:
        raise DataError(f"{path}: no rows after the header")

    base = path.parent
    refs, labels, splits, is_q, is_g = [], [], [], [], []
    for line, row in enumerate(rows, start=2):
        p, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        if not p:
            raise DataError(f"{path}:{line}: empty path")
        if not label:
            raise DataError(f"{path}:{line}: empty label for {p}")
        refs.append(str(Path(p) if Path(p).is_absolute() else base / p))
        labels.append(label)
        if has_split:
            s = (row.get("split") or "").strip().lower()
            if s == "validation" and has_qg:
                s = "test"
            if s not in SPLITS:
                raise DataError(f"{path}:{line}: split must be one of {SPLITS}, got {s!r}")
            splits.append(s)
        if has_qg:
            is_q.append(_flag(row["is_query"], path, line, "is_query"))
            is_g.append(_flag(row["is_gallery"], path, line, "is_gallery"))

    unique = sorted(set(labels))
    if all(u.lstrip("-").isdigit() for u in unique):
        unique = sorted(unique, key=int)
    name_to_idx = {n: i for i, n in enumerate(unique)}
    refs_arr = np.asarray(refs, dtype=object)
    class_idx = np.asarray([name_to_idx[x] for x in labels], dtype=np.int64)

    if has_split:
        if train_classes is not None or test_classes is not None:
            raise ConfigError(f"{path} has a split column; train_classes/test_classes do not apply")
        split_arr = np.asarray(splits)
        pools = {s: Pool(refs_arr[split_arr == s], class_idx[split_arr == s]) for s in SPLITS}
        pools = {s: p for s, p in pools.items() if len(p) or s == "train"}
        test_mask = split_arr == "test"
    else:
        pools = class_disjoint_pools(
            unique, refs_arr, class_idx, train_classes, test_classes, str(path)
        )
        test_mask = np.isin(class_idx, np.unique(pools["test"].class_idx))
    if has_qg:
        q = np.asarray(is_q) & test_mask
        g = np.asarray(is_g) & test_mask
        if not q.any() or not g.any():
            raise DataError(f"{path}: is_query/is_gallery mark no test rows as query or gallery")
        pools["query"] = Pool(refs_arr[q], class_idx[q])
        pools["gallery"] = Pool(refs_arr[g], class_idx[g])
    return Catalog("csv", unique, pools, source=str(path))
