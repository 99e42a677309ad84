"""``load_dataset``: dataset name + root + split -> :class:`ImageDataset`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dasl.choices import DATASETS
from dasl.data.cars import read_cars
from dasl.data.catalog import Catalog, count_error, count_problems
from dasl.data.cifar import read_cifar10, read_cifar100
from dasl.data.csv_table import read_csv
from dasl.data.cub import read_cub
from dasl.data.dataset import ArrayImageDataset, FileImageDataset, ImageDataset
from dasl.data.digits import read_digits
from dasl.data.fashion_mnist import read_fashion_mnist
from dasl.data.files import describe_paths, missing_files, unreadable_images
from dasl.data.folder import read_folder
from dasl.data.glyphs import read_glyphs
from dasl.data.imagenet import read_imagenet, read_imagenet100
from dasl.data.inshop import read_inshop
from dasl.data.sop import read_sop
from dasl.data.splits import cap_per_class, contiguous_labels, select_split, split_names
from dasl.data.stl10 import read_stl10
from dasl.errors import ConfigError, DataError, MissingDataError
from dasl.registry import unknown_choice

# ``data.name`` entries: ``reader(root, **reader options) -> Catalog``, the reader-specific
# options it accepts, tagged ``retrieval`` (class-disjoint splits) or ``classification``
# (train and test share the classes).
_BUILT_IN: tuple[tuple[str, Callable[..., Catalog], tuple[str, ...], str], ...] = (
    (
        "fashion-mnist",
        read_fashion_mnist,
        ("train_classes", "test_classes", "download"),
        "retrieval",
    ),
    (
        "digits",
        lambda root, **kw: read_digits(**kw),
        ("train_classes", "test_classes"),
        "retrieval",
    ),
    ("folder", read_folder, ("train_classes", "test_classes"), "retrieval"),
    ("csv", read_csv, ("train_classes", "test_classes"), "retrieval"),
    ("cub200", read_cub, (), "retrieval"),
    ("cars196", read_cars, (), "retrieval"),
    ("sop", read_sop, (), "retrieval"),
    ("inshop", read_inshop, (), "retrieval"),
    ("glyphs", read_glyphs, ("size", "min_faces", "code_points"), "retrieval"),
    ("cifar10", read_cifar10, (), "classification"),
    ("cifar100", read_cifar100, ("coarse_labels",), "classification"),
    ("stl10", read_stl10, (), "classification"),
    ("imagenet", read_imagenet, (), "classification"),
    ("imagenet100", read_imagenet100, (), "classification"),
)
for _name, _reader, _keys, _kind in _BUILT_IN:
    DATASETS.register(_name, _reader, kind=_kind, options=dict.fromkeys(_keys))
DATASET_NAMES = DATASETS.names()
"""The built-in dataset names (:data:`dasl.choices.DATASETS` also lists registered ones)."""
READER_ONLY = tuple(sorted({k for _, _, keys, _ in _BUILT_IN for k in keys}))
# option -> default; reader-specific ones must keep their default for datasets that lack them
OPTIONS: dict[str, Any] = {
    "val_fraction": 0.1,
    "val_by": None,
    "seed": 0,
    "allow_subset": False,
    "skip_unreadable": False,
    "max_per_class": None,
    "in_channels": None,
    "train_classes": None,
    "test_classes": None,
    "download": False,
    "coarse_labels": False,
    "size": None,
    "min_faces": None,
    "code_points": None,
}


def resolve_options(name: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``options`` into (common options with defaults filled, reader options)."""
    entry = DATASETS.entry(name)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown dataset option(s) {unknown}; valid options: {sorted(OPTIONS)}")
    reader_keys = tuple(entry.options)
    for key in READER_ONLY:
        if key not in reader_keys and options.get(key, OPTIONS[key]) not in (None, False):
            raise ConfigError(f"option {key!r} does not apply to dataset {name!r}")
    merged = {**OPTIONS, **options}
    reader_opts = {k: merged[k] for k in reader_keys}
    common = {k: v for k, v in merged.items() if k not in READER_ONLY}
    return common, reader_opts


def read_catalog(name: str, root: str | Path | None, reader_opts: dict[str, Any]) -> Catalog:
    return DATASETS.get(name)(root, **reader_opts)


def load_dataset(
    name: str,
    root: str | Path | None,
    split: str,
    transform: Callable[[Any], Any] | None = None,
    **options: Any,
) -> ImageDataset:
    """Load one split of a dataset as an :class:`ImageDataset` of ``(image, label)``.

    Args:
        name: one of ``fashion-mnist``, ``digits``, ``folder``, ``csv``, ``cub200``, ``cars196``,
            ``sop``, ``inshop``, ``glyphs`` (class-disjoint retrieval splits), or the
            classification sets ``cifar10``, ``cifar100``, ``stl10``, ``imagenet``,
            ``imagenet100`` (train and test share the classes; labels are the class positions,
            the same in every split).
        root: dataset location (see each reader's layout); ``None`` for ``digits`` and for the
            default Fashion-MNIST locations; for ``glyphs`` a folder of font files instead of
            the Debian font packages.
        split: ``train`` (the official training split, all of it; ``trainval`` is an
            alias), ``val`` (carved from train), ``subtrain`` (train minus val), ``test``;
            In-Shop and CSVs with ``is_query``/``is_gallery`` also ``query`` and ``gallery``
            (In-Shop ``test`` = query followed by gallery); STL-10 also ``unlabeled`` (the
            100,000 unlabeled images, label -1) and ``train+unlabeled`` (105,000, for
            SimCLR-style pretraining). ImageNet's ``test`` is the official ILSVRC-2012 val set.
            See :mod:`dasl.data.splits`.
        transform: applied to each raw image (float32 ``(1, H, W)`` tensor in [0, 1] for
            fashion-mnist/digits, PIL RGB image otherwise).
        options: ``val_fraction`` (0.1); ``val_by`` (``"images"``: seeded stratified holdout of
            each training class, default for fashion-mnist/digits/folder/csv; ``"classes"``:
            the last ``ceil(val_fraction * C_train)`` training classes, default for the paper
            datasets, as in MLRC); ``seed`` (0); ``allow_subset`` (False: paper datasets must
            have the standard split sizes); ``skip_unreadable`` (False); ``max_per_class``
            (None: the first k items of each class); ``train_classes``/``test_classes``
            (fashion-mnist/digits: ids, default even/odd; folder/csv: class names);
            ``download`` (fashion-mnist only); ``coarse_labels`` (cifar100 only: the 20
            superclasses instead of the 100 fine classes); ``in_channels`` (None or 3: image
            files load as RGB; 1: as 8-bit gray, "L"; every mode is converted, 16-bit and
            float images scaled, not clipped); glyphs: ``size`` (32 px),
            ``min_faces`` (8), ``code_points`` (restrict the candidate characters; see
            dasl.data.glyphs).

    Labels are contiguous ``0..C-1`` over the split's sorted classes (over test ∪ query ∪
    gallery for test/query/gallery of In-Shop and OML-style CSVs, so query and gallery agree).
    """
    common, reader_opts = resolve_options(name, options)
    catalog = read_catalog(name, root, reader_opts)
    problems = count_problems(catalog, allow_subset=common["allow_subset"])
    if problems:
        raise count_error(catalog, problems)
    val_by = common["val_by"] or catalog.default_val_by
    if split in catalog.extra_splits:
        pool = catalog.pools[split]
        domain = pool.class_idx
    else:
        if split not in split_names(catalog):
            valid = [*split_names(catalog), *catalog.extra_splits]
            raise unknown_choice(f"{catalog.name} split", split, valid)
        pool, domain = select_split(catalog, split, common["val_fraction"], val_by, common["seed"])

    if catalog.file_backed:
        paths = pool.refs.tolist()
        missing = missing_files(paths)
        if missing:
            raise MissingDataError(
                f"{name} {split}: {len(missing):,} of {len(paths):,} image files are missing: "
                f"{describe_paths(missing)}"
            )
        if common["skip_unreadable"]:
            bad = unreadable_images(paths)
            if bad:
                warnings.warn(
                    f"{name} {split}: skipping {len(bad):,} unreadable image(s): "
                    f"{describe_paths([p for p, _ in bad])}",
                    stacklevel=2,
                )
                keep = ~np.isin(pool.refs, np.asarray([p for p, _ in bad], dtype=object))
                pool = pool.take(np.flatnonzero(keep))
    if common["in_channels"] not in (None, 1, 3):
        raise ConfigError(f"in_channels must be 1 or 3, got {common['in_channels']!r}")
    if common["max_per_class"] is not None:
        pool = cap_per_class(pool, int(common["max_per_class"]))
    if len(pool) == 0:
        raise DataError(f"{name} {split} has no images left")
    if catalog.shared_labels:
        # Classification: one label space for every split, label = class position; -1 stays
        # -1 (unlabeled).
        labels = pool.class_idx.astype(np.int64)
        class_names = list(catalog.class_names)
    else:
        shared_mapping = "query" in catalog.pools and split in ("test", "query", "gallery")
        labels, classes = contiguous_labels(
            pool.class_idx, domain if shared_mapping else pool.class_idx
        )
        class_names = [catalog.class_names[c] for c in classes]
    if catalog.images is None:  # file-backed (spelled out: it narrows the type)
        mode = "L" if common["in_channels"] == 1 else "RGB"
        return FileImageDataset(pool.refs, labels, class_names, name, split, transform, mode)
    return ArrayImageDataset(
        catalog.images, pool.refs, labels, class_names, name, split, catalog.max_value, transform
    )
