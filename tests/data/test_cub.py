import numpy as np
import pytest
from fixtures import make_cub_tree, write_corrupt

from dasl.data import UnreadableImageError, load_dataset


def test_zero_shot_split_ignores_train_test_split(cub_root):
    tr = load_dataset("cub200", cub_root, "train", allow_subset=True)
    te = load_dataset("cub200", cub_root, "test", allow_subset=True)
    assert tr.class_names == ["001.Bird_1", "002.Bird_2", "003.Bird_3"]
    assert te.class_names == ["101.Bird_101", "102.Bird_102", "103.Bird_103"]
    assert len(tr) == len(te) == 9
    assert np.array_equal(te.labels, np.repeat([0, 1, 2], 3))
    img, label = te[3]
    assert img.mode == "RGB" and te.paths[3].parent.name == te.class_names[label]


def test_root_can_be_the_inner_folder(cub_root):
    ds = load_dataset("cub200", cub_root / "CUB_200_2011", "test", allow_subset=True)
    assert len(ds) == 9


def test_count_check_names_the_trap(cub_root):
    with pytest.raises(ValueError) as err:
        load_dataset("cub200", cub_root, "train")
    msg = str(err.value)
    assert "cub200 train: 9 images / 3 classes, expected 5,864 / 100" in msg
    assert "5,994/5,794" in msg and "allow_subset=True" in msg


def test_val_by_classes_takes_last_classes(tmp_path):
    root = make_cub_tree(tmp_path, classes=(*range(1, 11), 150), per_class=2)
    tr = load_dataset("cub200", root, "subtrain", allow_subset=True, val_fraction=0.25)
    va = load_dataset("cub200", root, "val", allow_subset=True, val_fraction=0.25)
    # ceil(0.25 * 10) = 3 classes, the last ones by class id
    assert [n[:3] for n in va.class_names] == ["008", "009", "010"]
    assert len(tr.class_names) == 7 and not set(tr.class_names) & set(va.class_names)
    assert np.array_equal(va.labels, np.repeat([0, 1, 2], 2))
    # images holdout on request
    va_img = load_dataset("cub200", root, "val", allow_subset=True, val_by="images")
    assert va_img.num_classes == 10 and len(va_img) == 10


def test_missing_index_file_draws_layout(cub_root):
    (cub_root / "CUB_200_2011" / "classes.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"classes.txt. Expected layout:\n<root>/"):
        load_dataset("cub200", cub_root, "train", allow_subset=True)
    with pytest.raises(FileNotFoundError, match=r"images.txt"):
        load_dataset("cub200", cub_root / "nowhere", "train")


def test_missing_image_named(cub_root):
    victim = next((cub_root / "CUB_200_2011" / "images" / "102.Bird_102").glob("*.jpg"))
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=f"1 of 9 image files are missing: {victim}"):
        load_dataset("cub200", cub_root, "test", allow_subset=True)


def test_unreadable_image_error_and_skip(cub_root):
    victim = sorted((cub_root / "CUB_200_2011" / "images" / "101.Bird_101").glob("*.jpg"))[1]
    write_corrupt(victim)
    ds = load_dataset("cub200", cub_root, "test", allow_subset=True)
    with pytest.raises(UnreadableImageError, match=str(victim)):
        ds[1]
    with pytest.warns(UserWarning, match=f"skipping 1 unreadable image.*{victim}"):
        ds = load_dataset("cub200", cub_root, "test", allow_subset=True, skip_unreadable=True)
    assert len(ds) == 8 and victim not in ds.paths
    for i in range(len(ds)):
        ds[i]
