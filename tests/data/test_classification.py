"""Classification splits of Fashion-MNIST (official files) and digits, for pretraining."""

from __future__ import annotations

import numpy as np
import pytest

from dasl.data.classification import load_classification_split


def test_fashion_mnist_official_files(fmnist_root) -> None:
    # The fixture: 6 training and 2 t10k images per class, in the official IDX layout.
    train = load_classification_split("fashion-mnist", fmnist_root, "trainval")
    test = load_classification_split("fashion-mnist", fmnist_root, "test")
    assert (len(train), len(test)) == (60, 20)
    assert train.num_classes == test.num_classes == 10
    assert train.class_names == test.class_names  # one label space
    assert np.bincount(test.labels).tolist() == [2] * 10
    sub = load_classification_split("fashion-mnist", fmnist_root, "subtrain", val_fraction=0.5)
    val = load_classification_split("fashion-mnist", fmnist_root, "val", val_fraction=0.5)
    assert len(sub) + len(val) == 60
    assert not set(sub.indices.tolist()) & set(val.indices.tolist())
    assert set(sub.indices.tolist()) | set(val.indices.tolist()) == set(train.indices.tolist())


def test_digits_fixed_split() -> None:
    test = load_classification_split("digits", None, "test")
    train = load_classification_split("digits", None, "trainval")
    assert len(train) + len(test) == 1797
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    # Fixed whatever the run seed: every run tests on the same images.
    again = load_classification_split("digits", None, "test", seed=7)
    np.testing.assert_array_equal(test.indices, again.indices)
    capped = load_classification_split("digits", None, "subtrain", max_per_class=5)
    assert np.bincount(capped.labels).tolist() == [5] * 10


def test_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="fashion-mnist"):
        load_classification_split("fashion-mnist", tmp_path, "train")
    wanted = r"unknown digits split 'query'; choose one of train, subtrain, val, trainval, test$"
    with pytest.raises(ValueError, match=wanted):
        load_classification_split("digits", None, "query")
    wanted = r"unknown classification dataset 'cub200'; choose one of fashion-mnist, digits$"
    with pytest.raises(ValueError, match=wanted):
        load_classification_split("cub200", None, "train")
