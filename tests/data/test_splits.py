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
