import numpy as np
import pytest
from fixtures import make_csv_dataset

from dasl.data import load_dataset


def test_half_half_without_split_column(tmp_path):
    path = make_csv_dataset(tmp_path, labels=("10", "9", "100", "11"))
    tr = load_dataset("csv", path, "train")
    te = load_dataset("csv", path, "test")
    # integer labels sort numerically: 9, 10, 11, 100
    assert tr.class_names == ["9", "10"] and te.class_names == ["11", "100"]
    assert all(p.is_absolute() and p.exists() for p in te.paths)
    # the folder holding one CSV works as root too
    assert len(load_dataset("csv", tmp_path, "test")) == 6


def test_split_column(tmp_path):
    path = make_csv_dataset(tmp_path, split=("train", "train", "val", "test"))
    # rows marked train are the subtrain; train is them plus the rows marked val
    assert load_dataset("csv", path, "subtrain").class_names == ["10", "11"]
    assert load_dataset("csv", path, "val").class_names == ["12"]
    assert load_dataset("csv", path, "train").num_classes == 3
    assert load_dataset("csv", path, "trainval").num_classes == 3
    assert load_dataset("csv", path, "test").class_names == ["13"]


def test_oml_query_gallery(tmp_path):
    path = make_csv_dataset(
        tmp_path, split=("train", "validation", "validation", "validation"), query_gallery=True
    )
    q = load_dataset("csv", path, "query")
    g = load_dataset("csv", path, "gallery")
    t = load_dataset("csv", path, "test")
    assert len(q) == 3 and len(g) == 6 and len(t) == 9
    assert q.class_names == g.class_names == ["11", "12", "13"]
    assert np.array_equal(q.labels, [0, 1, 2])


def test_absolute_paths(tmp_path):
    path = make_csv_dataset(tmp_path / "d")
    lines = path.read_text().splitlines()
    body = [f"{tmp_path / 'd' / ln.split(',')[0]},{ln.split(',')[1]}" for ln in lines[1:]]
    other = tmp_path / "elsewhere.csv"
    other.write_text("\n".join([lines[0], *body]) + "\n")
    assert len(load_dataset("csv", other, "test")) == 6


def test_validation_errors(tmp_path):
    path = make_csv_dataset(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.jpg,1\n")
    with pytest.raises(ValueError, match=r"lacks the column 'path'"):
        load_dataset("csv", bad, "train")
    bad.write_text("path,label\nimages/10_0.jpg,\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: empty label"):
        load_dataset("csv", bad, "train")
    bad.write_text("path,label,split\nimages/10_0.jpg,1,holdout\n")
    with pytest.raises(ValueError, match=r"split must be one of"):
        load_dataset("csv", bad, "train")
    text = path.read_text().replace("images/13_1.jpg", "images/missing_1.jpg")
    text = text.replace("images/13_2.jpg", "images/missing_2.jpg")
    bad.write_text(text)
    with pytest.raises(FileNotFoundError, match=r"2 of 6 image files are missing: .*missing_1.jpg"):
        load_dataset("csv", bad, "test")
    with pytest.raises(FileNotFoundError, match=r"2 .csv files"):
        load_dataset("csv", tmp_path, "test")
