import pickle

import numpy as np
import pytest
from ssl_fixtures import make_stl10, pixel_pattern

from dasl.cli.main import main
from dasl.data import load_dataset


@pytest.fixture
def stl(tmp_path):
    return make_stl10(tmp_path / "stl", n_train=20, n_test=10, n_unlabeled=7)


def test_splits_counts_and_labels(stl):
    # trainval: all official training images under either split naming (issue #10)
    sizes = {"trainval": 20, "test": 10, "unlabeled": 7, "train+unlabeled": 27}
    got = {s: load_dataset("stl10", stl, s, allow_subset=True) for s in sizes}
    assert {s: len(d) for s, d in got.items()} == sizes
    np.testing.assert_array_equal(got["trainval"].labels, np.arange(20) % 10)  # file holds 1..10
    np.testing.assert_array_equal(got["test"].labels, (20 + np.arange(10)) % 10)
    assert (got["unlabeled"].labels == -1).all()
    np.testing.assert_array_equal(got["train+unlabeled"].labels[:20], got["trainval"].labels)
    assert (got["train+unlabeled"].labels[20:] == -1).all()
    assert got["trainval"].class_names == got["unlabeled"].class_names
    assert got["trainval"].class_names[:3] == ["airplane", "bird", "car"]


def test_column_major_pixels_round_trip(stl):
    for split, first in (("trainval", 0), ("test", 20), ("unlabeled", 30)):
        ds = load_dataset("stl10", stl, split, allow_subset=True)
        for i in (0, len(ds) - 1):
            img, _ = ds[i]
            assert img.mode == "RGB" and img.size == (96, 96)
            np.testing.assert_array_equal(np.asarray(img), pixel_pattern(first + i, 96))
    both = load_dataset("stl10", stl, "train+unlabeled", allow_subset=True)
    np.testing.assert_array_equal(np.asarray(both[20][0]), pixel_pattern(30, 96))


def test_dataset_pickles_without_the_pixels(stl):
    ds = load_dataset("stl10", stl, "train+unlabeled", allow_subset=True)
    ds[0]  # opens the memory maps
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000  # the maps are reopened in the worker, not copied
    again = pickle.loads(blob)
    np.testing.assert_array_equal(np.asarray(again[25][0]), np.asarray(ds[25][0]))


def test_count_assertion_and_missing_files(stl):
    with pytest.raises(ValueError) as err:
        load_dataset("stl10", stl, "train")
    msg = str(err.value)
    assert "stl10 train: 20 images / 10 classes, expected 5,000 / 10" in msg
    assert "stl10 unlabeled: 7 images / 0 classes, expected 100,000 / 0" in msg
    wanted = r"unknown stl10 split 'extra'; choose one of train, .*, unlabeled, train\+unlabeled"
    with pytest.raises(ValueError, match=wanted):
        load_dataset("stl10", stl, "extra", allow_subset=True)
    (stl / "stl10_binary" / "unlabeled_X.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing .*unlabeled_X\.bin. Expected layout"):
        load_dataset("stl10", stl, "train", allow_subset=True)


def test_truncated_and_mismatched_files(stl):
    x = stl / "stl10_binary" / "test_X.bin"
    x.write_bytes(x.read_bytes()[:-5])
    with pytest.raises(ValueError, match="not a whole number of 3x96x96 images"):
        load_dataset("stl10", stl, "test", allow_subset=True)
    x.write_bytes(x.read_bytes()[: 96 * 96 * 3 * 4])
    with pytest.raises(ValueError, match="10 labels for 4 images"):
        load_dataset("stl10", stl, "test", allow_subset=True)


def test_data_check_cli(stl, capsys):
    assert main(["data", "check", "stl10", "--root", str(stl)]) == 2
    assert "expected 100,000 / 0" in capsys.readouterr().out
    assert main(["data", "check", "stl10", "--root", str(stl), "--allow-subset"]) == 0
