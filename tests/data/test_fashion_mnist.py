import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import make_fashion_mnist_arrays, make_fashion_mnist_files

from dasl.data import download_fashion_mnist, fashion_mnist_available, load_dataset
from dasl.data.fashion_mnist import (
    CLASS_NAMES,
    FILES,
    load_fashion_mnist_arrays,
    parse_idx_images,
    parse_idx_labels,
)


def test_idx_parsing_roundtrip(fmnist_root):
    images, labels = load_fashion_mnist_arrays(fmnist_root)
    ref = make_fashion_mnist_arrays(6, 2)
    assert np.array_equal(images, np.concatenate([ref["train_images"], ref["test_images"]]))
    assert np.array_equal(labels, np.concatenate([ref["train_labels"], ref["test_labels"]]))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (struct.pack(">IIII", 2049, 1, 2, 2) + bytes(4), "magic 2049, expected 2051"),
        (struct.pack(">IIII", 2051, 2, 2, 2) + bytes(5), "header says 2 images"),
        (b"\x00" * 10, "too short"),
    ],
)
def test_idx_images_errors(data, match):
    with pytest.raises(ValueError, match=match):
        parse_idx_images(data, "x.gz")


def test_idx_labels_errors():
    with pytest.raises(ValueError, match=r"magic 2051, expected 2049"):
        parse_idx_labels(struct.pack(">II", 2051, 1) + b"\x00")
    with pytest.raises(ValueError, match=r"header says 3 labels"):
        parse_idx_labels(struct.pack(">II", 2049, 3) + b"\x00")


def test_count_mismatch_between_images_and_labels(fmnist_root):
    path = fmnist_root / FILES["train_labels"]
    path.write_bytes(gzip.compress(struct.pack(">II", 2049, 3) + bytes(3)))
    with pytest.raises(ValueError, match=r"60 images but .* has 3 labels"):
        load_dataset("fashion-mnist", fmnist_root, "train")


def test_class_disjoint_pooled_split(fmnist_root):
    # 8 images per class in total (6 train file + 2 t10k file), both files pooled.
    tv = load_dataset("fashion-mnist", fmnist_root, "train")
    test = load_dataset("fashion-mnist", fmnist_root, "test")
    assert len(tv) == 5 * 8 and len(test) == 5 * 8
    assert tv.class_names == [CLASS_NAMES[c] for c in (0, 2, 4, 6, 8)]
    assert test.class_names == [CLASS_NAMES[c] for c in (1, 3, 5, 7, 9)]
    assert sorted(np.unique(tv.labels)) == list(range(5))
    img, label = test[0]
    assert img.dtype == torch.float32 and img.shape == (1, 28, 28)
    assert img.min() >= 0.0 and img.max() <= 1.0
    # fixture pixels are 20 * original class + noise(0..9): the image matches its label
    original = (1, 3, 5, 7, 9)[label]
    assert round(float(img.min()) * 255) // 20 == original


def test_custom_classes_and_overlap(fmnist_root):
    ds = load_dataset("fashion-mnist", fmnist_root, "test", train_classes=[0, 1], test_classes=[9])
    assert ds.class_names == ["Ankle boot"] and len(ds) == 8
    with pytest.raises(ValueError, match=r"share \[1\]"):
        load_dataset("fashion-mnist", fmnist_root, "train", train_classes=[0, 1], test_classes=[1])
    with pytest.raises(ValueError, match=r"class ids 0..9"):
        load_dataset("fashion-mnist", fmnist_root, "train", train_classes=[10])


def test_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.gz") as err:
        load_dataset("fashion-mnist", tmp_path, "train")
    assert "download=True" in str(err.value)
    assert fashion_mnist_available(tmp_path) is None


def test_available(fmnist_root):
    assert fashion_mnist_available(fmnist_root) == fmnist_root


def _md5s(folder: Path) -> dict[str, str]:
    return {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in FILES.values()}


def test_download_from_file_url(tmp_path):
    source = make_fashion_mnist_files(tmp_path / "mirror", 2, 1)
    target = tmp_path / "cache"
    got = download_fashion_mnist(target, url_base=source.as_uri(), checksums=_md5s(source))
    assert got == target
    for name in FILES.values():
        assert (target / name).read_bytes() == (source / name).read_bytes()
    assert not list(target.glob(".*.tmp"))
    ds = load_dataset("fashion-mnist", target, "test")
    assert len(ds) == 5 * 3


def test_download_sha256_and_skip_existing(tmp_path):
    source = make_fashion_mnist_files(tmp_path / "mirror", 2, 1)
    sums = {n: hashlib.sha256((source / n).read_bytes()).hexdigest() for n in FILES.values()}
    target = tmp_path / "cache"
    download_fashion_mnist(target, url_base=source.as_uri(), checksums=sums)
    # existing files with the right checksum are kept: a dead mirror no longer matters
    download_fashion_mnist(target, url_base=(tmp_path / "gone").as_uri(), checksums=sums)


def test_download_checksum_mismatch_writes_nothing(tmp_path):
    source = make_fashion_mnist_files(tmp_path / "mirror", 2, 1)
    target = tmp_path / "cache"
    # the official MD5s do not match the generated fixture files
    with pytest.raises(ValueError, match=r"checksum mismatch .*8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        download_fashion_mnist(target, url_base=source.as_uri())
    assert not target.exists() or not any(target.iterdir())


def test_download_offline_error(tmp_path):
    with pytest.raises(ConnectionError, match=r"offline"):
        download_fashion_mnist(tmp_path / "c", url_base=(tmp_path / "missing").as_uri())


def test_load_with_download(tmp_path, monkeypatch):
    source = make_fashion_mnist_files(tmp_path / "mirror", 2, 1)
    import dasl.data.fashion_mnist as fm

    calls = []

    def fake_download(root):
        calls.append(root)
        return download_fashion_mnist(root, url_base=source.as_uri(), checksums=_md5s(source))

    monkeypatch.setattr(fm, "download_fashion_mnist", fake_download)
    ds = load_dataset("fashion-mnist", tmp_path / "dl", "train", download=True)
    assert calls == [tmp_path / "dl"] and ds.num_classes == 5
