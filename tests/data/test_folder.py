import numpy as np
import pytest
from fixtures import make_folder_tree
from PIL import Image

from dasl.data import load_dataset


def test_half_half_split(folder_root):
    tr = load_dataset("folder", folder_root, "trainval")
    te = load_dataset("folder", folder_root, "test")
    assert tr.class_names == ["a", "b"] and te.class_names == ["c", "d"]
    assert len(tr) == 6 and len(te) == 6
    img, label = te[4]
    assert isinstance(img, Image.Image) and img.mode == "RGB"
    assert te.paths[4].parent.name == te.class_names[label]
    assert np.array_equal(te.labels, [0, 0, 0, 1, 1, 1])


def test_odd_class_count_gives_train_the_extra(tmp_path):
    root = make_folder_tree(tmp_path / "f", ("x", "y", "z"), per_class=2)
    assert load_dataset("folder", root, "trainval").class_names == ["x", "y"]
    assert load_dataset("folder", root, "test").class_names == ["z"]


def test_explicit_classes(folder_root):
    te = load_dataset("folder", folder_root, "test", train_classes=["d", "a"])
    assert te.class_names == ["b", "c"]
    te = load_dataset("folder", folder_root, "test", train_classes=["a"], test_classes=["d"])
    assert te.class_names == ["d"]
    with pytest.raises(ValueError, match=r"share"):
        load_dataset("folder", folder_root, "test", train_classes=["a"], test_classes=["a"])
    with pytest.raises(ValueError, match=r"not in .*'zz'"):
        load_dataset("folder", folder_root, "test", train_classes=["zz"])


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a directory"):
        load_dataset("folder", tmp_path / "nope", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"Expected layout"):
        load_dataset("folder", tmp_path / "empty", "train")
    with pytest.raises(ValueError, match=r"needs root"):
        load_dataset("folder", None, "train")
