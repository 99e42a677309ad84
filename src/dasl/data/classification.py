"""Classification splits (every class on both sides) of the in-memory datasets, for
self-supervised pretraining and its k-NN / linear evaluation.

- ``fashion-mnist``: the official files, ``train`` = the training file's images (60,000),
  ``test`` = the t10k file's (10,000): the split every SSL paper reports on;
- ``digits``: scikit-learn's 1,797 images have no official split; ``test`` is a seeded
  stratified 20% (seed 0, fixed so that every run tests on the same images).

Split names as everywhere in dasl: ``train`` is all of the official training images
(``trainval`` is an alias), ``val`` is carved from it (seeded stratified ``val_fraction`` of
each class) and ``subtrain`` is ``train`` minus ``val``. The class-disjoint catalogs of
:mod:`dasl.data.fashion_mnist` serve metric learning, not this.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dasl.data.catalog import Catalog, Pool
from dasl.data.dataset import ArrayImageDataset
from dasl.data.splits import cap_per_class, carve_val_images, contiguous_labels
from dasl.errors import MissingDataError
from dasl.registry import unknown_choice

CLASSIFICATION_DATASETS = ("fashion-mnist", "digits")
CLASSIFICATION_SPLITS = ("train", "subtrain", "val", "trainval", "test")
DIGITS_TEST_FRACTION = 0.2


def classification_catalog(name: str, root: str | Path | None = None) -> Catalog:
    """``train`` and ``test`` pools holding all classes (see the module docstring)."""
    if name == "fashion-mnist":
        from dasl.data.fashion_mnist import (
            CLASS_NAMES,
            FILES,
            _read_gz,
            fashion_mnist_available,
            load_fashion_mnist_arrays,
            parse_idx_labels,
        )

        folder = fashion_mnist_available(root)
        if folder is None:
            where = root if root is not None else "/usr/share/datasets/fashion-mnist"
            raise MissingDataError(
                f"fashion-mnist: the four IDX .gz files were not found in {where}; install "
                "the Debian package dataset-fashion-mnist or pass data.root=DIR"
            )
        images, labels = load_fashion_mnist_arrays(folder)  # the train file's images first
        train_labels = folder / FILES["train_labels"]
        n = parse_idx_labels(_read_gz(train_labels), str(train_labels)).shape[0]
        pools = {
            "train": Pool(np.arange(n), labels[:n]),
            "test": Pool(np.arange(n, labels.shape[0]), labels[n:]),
        }
        return Catalog(name, list(CLASS_NAMES), pools, images=images, max_value=255.0)
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.asarray(bunch.images, dtype=np.uint8)
        labels = np.asarray(bunch.target, dtype=np.int64)
        whole = Pool(np.arange(labels.shape[0]), labels)
        train_idx, test_idx = carve_val_images(whole, DIGITS_TEST_FRACTION, seed=0)
        pools = {"train": whole.take(train_idx), "test": whole.take(test_idx)}
        return Catalog(name, [str(d) for d in range(10)], pools, images=images, max_value=16.0)
    raise unknown_choice("classification dataset", name, CLASSIFICATION_DATASETS)


def load_classification_split(
    name: str,
    root: str | Path | None,
    split: str,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_per_class: int | None = None,
) -> ArrayImageDataset:
    """One split (``train``, ``subtrain``, ``val``, ``trainval``, ``test``) as an ArrayImageDataset
    with labels ``0..9`` (the official class ids) and no transform."""
    catalog = classification_catalog(name, root)
    if split == "test":
        pool = catalog.pools["test"]
    elif split in ("train", "subtrain", "val", "trainval"):
        train = catalog.pools["train"]
        if split in ("train", "trainval"):
            pool = train
        else:
            keep, val = carve_val_images(train, val_fraction, seed)
            pool = train.take(keep if split == "subtrain" else val)
    else:
        raise unknown_choice(f"{name} split", split, CLASSIFICATION_SPLITS)
    if max_per_class is not None:
        pool = cap_per_class(pool, max_per_class)
    all_classes = np.arange(len(catalog.class_names))
    labels, classes = contiguous_labels(pool.class_idx, all_classes)
    names = [catalog.class_names[c] for c in classes]
    assert catalog.images is not None
    return ArrayImageDataset(
        catalog.images, pool.refs, labels, names, name, split, catalog.max_value
    )
