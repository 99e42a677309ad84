"""``check_dataset``: a report on a dataset's layout, split sizes and image files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dasl.data.catalog import CLASSIFICATION_TRAP, count_problems
from dasl.data.files import describe_paths, missing_files, unreadable_images
from dasl.data.registry import read_catalog, resolve_options
from dasl.data.splits import select_split


@dataclass
class SplitCounts:
    images: int
    classes: int
    expected_images: int | None = None
    expected_classes: int | None = None


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found; ``ok`` is True when ``problems`` is empty."""

    name: str
    root: str | None
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"dataset {self.name} at {self.root}: {'OK' if self.ok else 'PROBLEMS'}"]
        if self.splits:
            lines.append(f"  {'split':<10}{'images':>10}{'classes':>10}{'expected':>22}")
            for split, c in self.splits.items():
                exp = ""
                if c.expected_images is not None:
                    exp = f"{c.expected_images:,} / {c.expected_classes:,}"
                lines.append(f"  {split:<10}{c.images:>10,}{c.classes:>10,}{exp:>22}")
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def check_dataset(
    name: str, root: str | Path | None, scan: bool = True, **options: Any
) -> DatasetReport:
    """Inspect a dataset without raising on layout problems.

    Reports per-split image/class counts (official pools and the carved train/val), expected
    standard counts, and problems: missing index/image files, count mismatches (with
    ``allow_subset=True`` smaller counts are notes, not problems), train/test class overlap,
    and (``scan=True``) images PIL cannot decode. Unknown names or options still raise
    ``ValueError``: those are usage errors, not dataset problems.
    """
    common, reader_opts = resolve_options(name, options)
    report = DatasetReport(name, None if root is None else str(root))
    try:
        catalog = read_catalog(name, root, reader_opts)
    except (OSError, ValueError) as err:
        report.problems.append(str(err))
        return report

    for pool_name, pool in catalog.pools.items():
        exp = catalog.expected.get(pool_name)
        report.splits[pool_name] = SplitCounts(
            len(pool), pool.num_classes, *(exp if exp is not None else (None, None))
        )
    val_by = common["val_by"] or catalog.default_val_by
    if "val" not in catalog.pools and common["val_fraction"] > 0:
        try:
            for split in ("train", "val"):
                pool, _ = select_split(
                    catalog, split, common["val_fraction"], val_by, common["seed"]
                )
                report.splits[f"{split}*"] = SplitCounts(len(pool), pool.num_classes)
            report.notes.append(
                f"train*/val*: train pool after carving val_fraction={common['val_fraction']} "
                f"by {val_by}"
            )
        except ValueError as err:
            report.problems.append(f"validation carving: {err}")

    strict = count_problems(catalog, allow_subset=False)
    if strict:
        if count_problems(catalog, allow_subset=common["allow_subset"]):
            report.problems += strict
            if not catalog.shared_labels:
                report.notes.append(CLASSIFICATION_TRAP)
        else:
            report.notes += [f"subset (allow_subset=True): {p}" for p in strict]

    # Classification datasets (shared_labels) have every class on both sides by design.
    if "train" in catalog.pools and "test" in catalog.pools and not catalog.shared_labels:
        overlap = np.intersect1d(catalog.pools["train"].class_idx, catalog.pools["test"].class_idx)
        if overlap.size:
            names = [catalog.class_names[i] for i in overlap[:5]]
            report.problems.append(
                f"{overlap.size:,} classes are in both train and test (e.g. {names}): not "
                "class-disjoint, so retrieval scores would not be zero-shot"
            )

    if catalog.file_backed:
        paths = sorted({p for pool in catalog.pools.values() for p in pool.refs.tolist()})
        missing = missing_files(paths)
        if missing:
            report.problems.append(
                f"{len(missing):,} of {len(paths):,} image files are missing: "
                f"{describe_paths(missing)}"
            )
        if scan:
            present = set(missing)
            bad = unreadable_images([p for p in paths if p not in present])
            if bad:
                report.problems.append(
                    f"{len(bad):,} image files are unreadable: "
                    + "; ".join(f"{p} ({r})" for p, r in bad[:5])
                    + (f" (and {len(bad) - 5:,} more)" if len(bad) > 5 else "")
                )
        else:
            report.notes.append("images not scanned (scan=False)")
    return report
