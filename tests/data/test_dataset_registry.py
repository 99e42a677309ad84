import numpy as np
import pytest

from dasl.data import DATASET_NAMES, ImageDataset, load_dataset


def test_unknown_name_lists_valid_names():
    with pytest.raises(
        ValueError,
        match=r"^unknown dataset 'mnist'; choose one of fashion-mnist, digits, folder, csv",
    ):
        load_dataset("mnist", None, "train")


def test_unknown_and_inapplicable_options(cub_root):
    with pytest.raises(ValueError, match=r"unknown dataset option.*'vall_fraction'"):
        load_dataset("digits", None, "train", vall_fraction=0.2)
    with pytest.raises(ValueError, match=r"'download' does not apply to dataset 'cub200'"):
        load_dataset("cub200", cub_root, "train", download=True, allow_subset=True)
    # defaults of inapplicable options are fine (a CLI may pass them always)
    load_dataset("cub200", cub_root, "test", download=False, allow_subset=True)


def test_unknown_split_and_bad_val_options():
    wanted = r"unknown digits split 'query'; choose one of train, val, subtrain, trainval, test$"
    with pytest.raises(ValueError, match=wanted):
        load_dataset("digits", None, "query")
    with pytest.raises(ValueError, match=r"unknown val_by 'pixels'; choose one of images, classes"):
        load_dataset("digits", None, "val", val_by="pixels")
    with pytest.raises(ValueError, match=r"val_fraction must be in"):
        load_dataset("digits", None, "val", val_fraction=1.5)
    with pytest.raises(ValueError, match=r"val_fraction=0 leaves no validation"):
        load_dataset("digits", None, "val", val_fraction=0)
    assert len(load_dataset("digits", None, "subtrain", val_fraction=0)) == len(
        load_dataset("digits", None, "train")
    )


def test_common_interface():
    assert set(DATASET_NAMES) == {
        "fashion-mnist",
        "digits",
        "folder",
        "csv",
        "cub200",
        "cars196",
        "sop",
        "inshop",
        "cifar10",
        "cifar100",
        "stl10",
        "imagenet",
        "imagenet100",
        "glyphs",
    }
    ds = load_dataset("digits", None, "train")
    assert isinstance(ds, ImageDataset)
    assert ds.labels.dtype == np.int64 and ds.num_classes == len(ds.class_names) == 5
    assert ds.name == "digits" and ds.split == "train"
    assert ds.describe() == f"digits train: {len(ds):,} images, 5 classes"


def test_val_by_classes_on_array_data():
    tr = load_dataset("digits", None, "subtrain", val_by="classes", val_fraction=0.3)
    va = load_dataset("digits", None, "val", val_by="classes", val_fraction=0.3)
    # ceil(0.3 * 5) = 2 last classes
    assert tr.class_names == ["0", "2", "4"] and va.class_names == ["6", "8"]


def test_max_per_class_and_transform():
    ds = load_dataset("digits", None, "test", max_per_class=4, transform=lambda x: x * 2)
    assert np.array_equal(np.bincount(ds.labels), [4] * 5)
    full = load_dataset("digits", None, "test")
    # deterministic: the first 4 of each class, in item order
    first = np.concatenate([np.flatnonzero(full.labels == c)[:4] for c in range(5)])
    assert np.array_equal(ds.indices, full.indices[np.sort(first)])
    assert float(ds[0][0].max()) == pytest.approx(2 * float(full[int(np.sort(first)[0])][0].max()))
    plain = ds.with_transform(None)
    assert plain.transform is None and ds.transform is not None
    assert plain.labels is ds.labels
    with pytest.raises(ValueError, match=r"max_per_class must be >= 1"):
        load_dataset("digits", None, "test", max_per_class=0)
