import math

import numpy as np
import pytest

from dasl.data.catalog import Pool
from dasl.data.splits import (
    cap_per_class,
    carve_val_classes,
    carve_val_images,
    contiguous_labels,
)


def _pool(counts):
    class_idx = np.repeat(np.arange(len(counts)), counts)
    class_idx = np.random.default_rng(0).permutation(class_idx)
    return Pool(np.arange(class_idx.size), class_idx)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_carve_images_reference(fraction):
    counts = [1, 2, 5, 10, 31]
    pool = _pool(counts)
    train, val = carve_val_images(pool, fraction, seed=1)
    assert np.intersect1d(train, val).size == 0 and train.size + val.size == len(pool)
    for c, n in enumerate(counts):
        k = int(np.sum(pool.class_idx[val] == c))
        expect = 0 if n < 2 else min(max(round(fraction * n), 1), n - 1)
        assert k == expect


def test_carve_classes_reference():
    pool = _pool([2] * 7)
    for fraction in (0.1, 0.3, 0.5):
        train, val = carve_val_classes(pool, fraction)
        k = math.ceil(fraction * 7)
        assert sorted(set(pool.class_idx[val])) == list(range(7 - k, 7))
        assert not set(pool.class_idx[train]) & set(pool.class_idx[val])
    with pytest.raises(ValueError, match=r"all 7 training classes"):
        carve_val_classes(pool, 0.99)


def test_contiguous_labels_and_cap():
    class_idx = np.array([7, 3, 3, 9, 7])
    labels, classes = contiguous_labels(class_idx, class_idx)
    assert labels.tolist() == [1, 0, 0, 2, 1] and classes.tolist() == [3, 7, 9]
    labels, classes = contiguous_labels(np.array([9]), np.array([3, 9, 7]))
    assert labels.tolist() == [2]
    with pytest.raises(ValueError, match=r"outside the label domain"):
        contiguous_labels(np.array([5]), np.array([3, 9]))
    capped = cap_per_class(Pool(np.arange(5), class_idx), 1)
    assert capped.refs.tolist() == [0, 1, 3]


def test_split_names_follow_the_ecosystem():
    """train = the official training split; subtrain and val partition it; trainval = train."""
    from dasl.data import load_dataset

    train = load_dataset("digits", None, "train")
    sub = load_dataset("digits", None, "subtrain")
    val = load_dataset("digits", None, "val")
    alias = load_dataset("digits", None, "trainval")
    assert np.array_equal(alias.indices, train.indices)
    assert sorted([*sub.indices.tolist(), *val.indices.tolist()]) == sorted(train.indices.tolist())
    assert not set(sub.indices.tolist()) & set(val.indices.tolist())
    # all even digits of sklearn's set: the official (class-disjoint) training split
    from sklearn.datasets import load_digits

    assert len(train) == int(np.isin(load_digits().target, [0, 2, 4, 6, 8]).sum())


def test_cub_train_is_the_official_5864_split(tmp_path):
    """CUB's train split is classes 1-100 in full, as PML/OML/torchvision users expect."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from fixtures import make_cub_tree

    from dasl.data import load_dataset

    root = make_cub_tree(tmp_path, classes=(*range(1, 11), 150), per_class=2)
    train = load_dataset("cub200", root, "train", allow_subset=True)
    assert len(train) == 20 and train.num_classes == 10
    sub = load_dataset("cub200", root, "subtrain", allow_subset=True)
    val = load_dataset("cub200", root, "val", allow_subset=True)
    assert len(sub) + len(val) == len(train) and val.num_classes == 1
