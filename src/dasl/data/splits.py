"""Split logic shared by all readers: validation carving, caps, contiguous labels.

Split names follow pytorch-metric-learning, OML and torchvision:

=============  ===========================================================================
``train``      the official training split: every training image (CUB: 5,864)
``val``        validation carved from ``train`` (``val_by`` images or classes), or a CSV's
               rows marked ``val``
``subtrain``   ``train`` minus ``val``: what a model is fit on while ``val`` selects
               checkpoints or hyperparameters
``trainval``   old name of ``train``, kept as an alias
``test``       the official test split (unseen classes); ``query``/``gallery`` where the
               dataset has them
=============  ===========================================================================

``subtrain`` and ``val`` always partition ``train``. For a CSV with a ``split`` column,
``train`` is the rows marked ``train`` or ``val`` (all training data, as for CUB),
``subtrain`` the rows marked ``train`` and ``val`` the rows marked ``val``.
"""

from __future__ import annotations

import math

import numpy as np

from dasl.data.catalog import Catalog, Pool
from dasl.errors import ConfigError, DataError
from dasl.registry import unknown_choice

VAL_BY = ("images", "classes")
SPLITS = ("train", "val", "subtrain", "trainval", "test")
ALIASES = {"trainval": "train"}


def contiguous_labels(class_idx: np.ndarray, domain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map catalog class indices to ``0..C-1`` by rank among the sorted classes of ``domain``.

    Returns ``(labels, classes)`` with ``classes[label]`` the catalog class index.
    """
    classes = np.unique(domain)
    labels = np.searchsorted(classes, class_idx)
    if class_idx.size and not np.array_equal(classes[labels], class_idx):
        raise DataError("some items belong to classes outside the label domain")
    return labels.astype(np.int64), classes


def carve_val_images(pool: Pool, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified holdout: ``round(fraction * n_c)`` images of each class go to val.

    Every class with at least 2 images gives at least one to val and keeps at least one in
    train, so val and train share their classes. Returns sorted (train_index, val_index).
    """
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(pool.class_idx):  # sorted, so the rng stream is fixed by (seed, data)
        members = np.flatnonzero(pool.class_idx == c)
        n = members.size
        k = min(max(round(fraction * n), 1), n - 1) if n >= 2 else 0
        if k:
            val.append(rng.choice(members, size=k, replace=False))
    val_index = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    train_mask = np.ones(len(pool), dtype=bool)
    train_mask[val_index] = False
    return np.flatnonzero(train_mask), val_index


def carve_val_classes(pool: Pool, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The last ``ceil(fraction * C)`` training classes (canonical order) become val (MLRC)."""
    classes = np.unique(pool.class_idx)
    k = math.ceil(fraction * classes.size)
    if k >= classes.size:
        raise ConfigError(
            f"val_fraction={fraction} would move all {classes.size} training classes to val; "
            "use a smaller val_fraction"
        )
    val_classes = classes[classes.size - k :]
    val_mask = np.isin(pool.class_idx, val_classes)
    return np.flatnonzero(~val_mask), np.flatnonzero(val_mask)


def split_names(catalog: Catalog) -> list[str]:
    """The splits :func:`select_split` serves for ``catalog``: :data:`SPLITS`, plus ``query``
    and ``gallery`` where the catalog has them."""
    valid = list(SPLITS)
    if "query" in catalog.pools or "gallery" in catalog.pools:
        valid += ["query", "gallery"]
    return valid


def select_split(
    catalog: Catalog, split: str, val_fraction: float, val_by: str, seed: int
) -> tuple[Pool, np.ndarray]:
    """The items of ``split`` and the class indices whose sorted set defines its label mapping.

    Splits: ``train`` (all training items; ``trainval`` is an alias), ``subtrain``/``val``
    (carved from the train pool unless the catalog has a ``val`` pool), ``test``; plus
    ``query``/``gallery`` where the catalog has them. ``test``, ``query`` and ``gallery``
    share one mapping over ``test ∪ query ∪ gallery`` so that query and gallery labels are
    comparable.
    """
    pools = catalog.pools
    valid = split_names(catalog)
    if split not in valid:
        raise unknown_choice(f"{catalog.name} split", split, valid)
    if val_by not in VAL_BY:
        raise unknown_choice("val_by", val_by, VAL_BY)
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")

    if split in ("test", "query", "gallery"):
        parts = [pools[p] for p in ("test", "query", "gallery") if p in pools]
        domain = np.concatenate([p.class_idx for p in parts])
        if split in pools:
            return pools[split], domain
        # No explicit test pool (In-Shop): test is query followed by gallery.
        if "query" in pools:
            merged = Pool(
                np.concatenate([pools["query"].refs, pools["gallery"].refs]),
                np.concatenate([pools["query"].class_idx, pools["gallery"].class_idx]),
            )
            return merged, domain
        raise DataError(f"{catalog.name} has no {split!r} items")

    split = ALIASES.get(split, split)
    train = pools.get("train")
    if train is None or len(train) == 0:
        raise DataError(f"{catalog.name} has no training items")
    if "val" in pools:  # an explicit validation split (CSV split column) wins over carving
        chosen = {
            "subtrain": train,
            "val": pools["val"],
            "train": Pool(
                np.concatenate([train.refs, pools["val"].refs]),
                np.concatenate([train.class_idx, pools["val"].class_idx]),
            ),
        }[split]
        return chosen, chosen.class_idx
    if split == "train":
        return train, train.class_idx
    if val_fraction == 0.0:
        if split == "val":
            raise ConfigError("val_fraction=0 leaves no validation split; set val_fraction > 0")
        return train, train.class_idx
    if val_by == "images":
        train_index, val_index = carve_val_images(train, val_fraction, seed)
    else:
        train_index, val_index = carve_val_classes(train, val_fraction)
    chosen = train.take(train_index if split == "subtrain" else val_index)
    if len(chosen) == 0:
        raise DataError(f"{catalog.name} {split} is empty (val_fraction={val_fraction})")
    return chosen, chosen.class_idx


def cap_per_class(pool: Pool, max_per_class: int) -> Pool:
    """Keep the first ``max_per_class`` items of each class, in item order (deterministic)."""
    if max_per_class < 1:
        raise ConfigError(f"max_per_class must be >= 1, got {max_per_class}")
    order = np.argsort(pool.class_idx, kind="stable")
    sorted_classes = pool.class_idx[order]
    starts = np.searchsorted(sorted_classes, sorted_classes, side="left")
    rank = np.arange(order.size) - starts
    keep = np.sort(order[rank < max_per_class])
    return pool.take(keep)
