import numpy as np
import pytest
from fixtures import make_cars_tree

from dasl.data import load_dataset


def test_class_disjoint_split_ignores_test_flag(cars_root):
    tr = load_dataset("cars196", cars_root, "train", allow_subset=True)
    te = load_dataset("cars196", cars_root, "test", allow_subset=True)
    assert tr.class_names == ["Make Model 1", "Make Model 2", "Make Model 3"]
    assert te.class_names == ["Make Model 99", "Make Model 100", "Make Model 101"]
    assert len(tr) == len(te) == 9  # the fixture's test flags alternate; all images used
    assert np.array_equal(te.labels, np.repeat([0, 1, 2], 3))
    assert te[0][0].size == (8, 8)


def test_single_annotation_mat(tmp_path):
    root = make_cars_tree(tmp_path, classes=(5,), per_class=1)
    assert len(load_dataset("cars196", root, "train", allow_subset=True)) == 1


def test_count_check_and_trap(cars_root):
    with pytest.raises(ValueError, match=r"expected 8,054 / 98.*8,144/8,041.*allow_subset=True"):
        load_dataset("cars196", cars_root, "train")


def test_missing_mat_mentions_classification_layout(tmp_path):
    (tmp_path / "devkit").mkdir()
    (tmp_path / "cars_train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"cars_annos.mat(.|\n)*classification-split"):
        load_dataset("cars196", tmp_path, "train")


def test_bad_mat(tmp_path):
    (tmp_path / "car_ims").mkdir()
    (tmp_path / "cars_annos.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match=r"not a readable MATLAB file"):
        load_dataset("cars196", tmp_path, "train")
    from scipy.io import savemat

    savemat(str(tmp_path / "cars_annos.mat"), {"other": np.zeros(3)})
    with pytest.raises(ValueError, match=r"no 'annotations' variable"):
        load_dataset("cars196", tmp_path, "train")
