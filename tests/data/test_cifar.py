import pickle

import numpy as np
import pytest
from ssl_fixtures import make_cifar10, make_cifar100, pixel_pattern

from dasl.cli.main import main
from dasl.data import check_dataset, load_dataset
from dasl.data.cifar import read_batch


@pytest.fixture
def c10(tmp_path):
    return make_cifar10(tmp_path / "c10", train_per_batch=4, n_test=6)


def test_cifar10_counts_labels_and_shared_label_space(c10):
    tr = load_dataset("cifar10", c10, "trainval", allow_subset=True)
    te = load_dataset("cifar10", c10, "test", allow_subset=True)
    assert len(tr) == 20 and len(te) == 6
    np.testing.assert_array_equal(tr.labels, np.arange(20) % 10)
    np.testing.assert_array_equal(te.labels, (20 + np.arange(6)) % 10)  # not renumbered
    assert tr.class_names == te.class_names and tr.class_names[0] == "airplane"
    assert te.num_classes == 10  # the shared label space, though the test split holds 6


def test_cifar10_pixels_round_trip(c10):
    tr = load_dataset("cifar10", c10, "trainval", allow_subset=True)
    te = load_dataset("cifar10", c10, "test", allow_subset=True)
    for ds, first in ((tr, 0), (te, 20)):
        for i in (0, 3, len(ds) - 1):
            img, _ = ds[i]
            assert img.mode == "RGB" and img.size == (32, 32)
            np.testing.assert_array_equal(np.asarray(img), pixel_pattern(first + i, 32))


def test_cifar10_val_is_carved_by_images_in_the_same_label_space(tmp_path):
    root = make_cifar10(tmp_path, train_per_batch=8)  # 4 images per class
    tr = load_dataset("cifar10", root, "subtrain", allow_subset=True, val_fraction=0.25)
    va = load_dataset("cifar10", root, "val", allow_subset=True, val_fraction=0.25)
    assert len(tr) == 30 and len(va) == 10
    assert sorted(va.labels.tolist()) == list(range(10))
    assert tr.class_names == va.class_names


def test_count_assertion_fires_without_allow_subset(c10):
    with pytest.raises(ValueError) as err:
        load_dataset("cifar10", c10, "train")
    msg = str(err.value)
    assert "cifar10 train: 20 images / 10 classes, expected 50,000 / 10" in msg
    assert "cifar10 test: 6 images / 6 classes, expected 10,000 / 10" in msg
    assert "allow_subset=True" in msg and "class-disjoint" not in msg


def test_cifar100_fine_and_coarse(tmp_path):
    root = make_cifar100(tmp_path, n_train=12, n_test=5)
    fine = load_dataset("cifar100", root, "trainval", allow_subset=True)
    np.testing.assert_array_equal(fine.labels, (7 * np.arange(12)) % 100)
    assert fine.num_classes == 100 and fine.class_names[3] == "fine_03"
    coarse = load_dataset("cifar100", root, "test", allow_subset=True, coarse_labels=True)
    np.testing.assert_array_equal(coarse.labels, ((7 * (12 + np.arange(5))) % 100) // 5)
    assert coarse.num_classes == 20 and coarse.class_names[0] == "coarse_00"
    np.testing.assert_array_equal(np.asarray(coarse[2][0]), pixel_pattern(14, 32))
    with pytest.raises(ValueError, match="cifar100 train: 12 images / 12 classes, expected 50,000"):
        load_dataset("cifar100", root, "train")
    with pytest.raises(ValueError, match="'coarse_labels' does not apply to dataset 'cifar10'"):
        load_dataset("cifar10", root, "train", coarse_labels=True)


def test_inner_folder_as_root(c10):
    ds = load_dataset("cifar10", c10 / "cifar-10-batches-py", "test", allow_subset=True)
    assert len(ds) == 6


def test_missing_files_name_the_file_and_layout(c10, tmp_path):
    (c10 / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar10", c10, "train", allow_subset=True)
    assert "data_batch_3" in str(err.value) and "test_batch" in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python.meta"):
        load_dataset("cifar100", tmp_path / "nothing", "train")


def test_pickle_that_runs_code_is_refused(c10):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = c10 / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=4))
    with pytest.raises(ValueError, match=r"refusing to load builtins\.print"):
        read_batch(path, "labels", 10)


def test_python3_protocol2_batches_load(c10):
    """CIFAR-format batches re-packed by Python 3 with ``protocol=2`` (#16): bytes and the
    array's buffer are pickled as ``_codecs.encode(str, "latin1")``, which the reader allows."""
    folder = c10 / "cifar-10-batches-py"
    expected = {}
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        path = folder / name
        with open(path, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        d = {k.decode(): v for k, v in d.items()}  # Python 3: str keys, bytes values kept
        d["batch_label"] = b"re-packed"
        expected[name] = d
        path.write_bytes(pickle.dumps(d, protocol=2))
        assert b"_codecs" in path.read_bytes()
    tr = load_dataset("cifar10", c10, "trainval", allow_subset=True)
    te = load_dataset("cifar10", c10, "test", allow_subset=True)
    assert len(tr) == 20 and len(te) == 6
    np.testing.assert_array_equal(te.labels, expected["test_batch"]["labels"])
    data, labels = read_batch(folder / "data_batch_1", "labels", 10)
    flat = data.transpose(0, 3, 1, 2).reshape(len(labels), -1)
    np.testing.assert_array_equal(flat, expected["data_batch_1"]["data"])


@pytest.mark.parametrize(
    "payload",
    [
        # The allowed global with another codec, and a code-running one beside it.
        b"\x80\x02c_codecs\nencode\nq\x00X\x02\x00\x00\x00hiq\x01X\x04\x00\x00\x00zlibq\x02"
        b"\x86q\x03Rq\x04.",
        b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.",
    ],
)
def test_protocol2_pickles_still_refuse_other_globals(c10, payload):
    path = c10 / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match="refusing"):
        read_batch(path, "labels", 10)


def test_data_check_cli(c10, capsys):
    assert main(["data", "check", "cifar10", "--root", str(c10)]) == 2
    out = capsys.readouterr().out
    assert "expected 50,000 / 10" in out and "classes are in both" not in out
    assert main(["data", "check", "cifar10", "--root", str(c10), "--allow-subset"]) == 0
    assert "OK" in capsys.readouterr().out
    report = check_dataset("cifar10", c10, allow_subset=True)
    assert report.ok and report.splits["train"].images == 20


def test_rgb_array_items_go_through_the_photo_transforms(c10):
    from dasl.data import build_transforms

    ds = load_dataset(
        "cifar10",
        c10,
        "test",
        allow_subset=True,
        transform=build_transforms("imagenet", train=True, image_size=32),
    )
    x, y = ds[1]
    assert x.shape == (3, 32, 32) and y == 1
