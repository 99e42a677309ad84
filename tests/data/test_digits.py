import numpy as np
import torch
from sklearn.datasets import load_digits

from dasl.data import load_dataset


def test_digits_splits_and_pixels():
    bunch = load_digits()
    test = load_dataset("digits", None, "test")
    assert test.class_names == ["1", "3", "5", "7", "9"]
    assert len(test) == int(np.isin(bunch.target, [1, 3, 5, 7, 9]).sum())
    img, label = test[0]
    first = int(np.flatnonzero(np.isin(bunch.target, [1, 3, 5, 7, 9]))[0])
    assert img.shape == (1, 8, 8) and img.dtype == torch.float32
    assert torch.allclose(img[0], torch.tensor(bunch.images[first] / 16.0, dtype=torch.float32))
    assert test.class_names[label] == str(bunch.target[first])
    tv = load_dataset("digits", None, "train")
    assert len(tv) + len(test) == len(bunch.target)


def test_digits_val_by_images_is_stratified_disjoint_and_seeded():
    tr = load_dataset("digits", None, "subtrain", seed=3)
    va = load_dataset("digits", None, "val", seed=3)
    tv = load_dataset("digits", None, "train")
    assert len(tr) + len(va) == len(tv)
    assert not set(tr.indices.tolist()) & set(va.indices.tolist())
    assert tr.class_names == va.class_names  # images holdout keeps all classes
    counts = np.bincount(va.labels)
    full = np.bincount(tv.labels)
    assert np.all(counts == np.round(0.1 * full))
    again = load_dataset("digits", None, "val", seed=3)
    other = load_dataset("digits", None, "val", seed=4)
    assert np.array_equal(again.indices, va.indices)
    assert not np.array_equal(other.indices, va.indices)
