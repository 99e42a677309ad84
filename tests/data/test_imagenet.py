import numpy as np
import pytest
from ssl_fixtures import make_imagenet_tree

from dasl.cli.main import main
from dasl.data import check_dataset, load_dataset
from dasl.data.imagenet import imagenet100_classes

WNIDS = ("n01440764", "n01443537", "n02869837", "n01749939")  # the last two are in ImageNet-100


def _splits(root, name="imagenet"):
    tr = load_dataset(name, root, "trainval", allow_subset=True)
    te = load_dataset(name, root, "test", allow_subset=True)
    return tr, te


def _wnid(ds, i):
    return ds.class_names[ds.labels[i]].split()[0]


@pytest.mark.parametrize(
    ("layout", "kaggle"), [("folders", False), ("flat", False), ("flat", True)]
)
def test_both_val_layouts_give_the_same_labels(tmp_path, layout, kaggle):
    root = make_imagenet_tree(tmp_path, WNIDS, 3, 2, val_layout=layout, kaggle=kaggle)
    tr, te = _splits(root)
    assert len(tr) == 12 and len(te) == 8
    assert (
        tr.class_names
        == te.class_names
        == [f"{w} synset {c}, name {c}" for c, w in enumerate(sorted(WNIDS))]
    )
    np.testing.assert_array_equal(tr.labels, np.repeat(np.arange(4), 3))
    # every image sits under (or is listed with) the class its label names
    for i in range(len(tr)):
        assert tr.paths[i].parent.name == _wnid(tr, i)
    names = sorted(p.name for p in te.paths)
    assert names[0] == "ILSVRC2012_val_00000001.JPEG"
    by_name = {p.name: _wnid(te, i) for i, p in enumerate(te.paths)}
    # val image n belongs to WNIDS[(n - 1) % 4] (the fixture interleaves classes)
    assert by_name == {f"ILSVRC2012_val_{n:08d}.JPEG": WNIDS[(n - 1) % 4] for n in range(1, 9)}
    img, _ = te[0]
    assert img.mode == "RGB"


def test_names_default_to_wnids(tmp_path):
    root = make_imagenet_tree(tmp_path, WNIDS, 2, 1, synset_mapping=False)
    tr, _ = _splits(root)
    assert tr.class_names == sorted(WNIDS)


def test_counts_asserted_loudly(tmp_path):
    root = make_imagenet_tree(tmp_path, WNIDS, 3, 2)
    with pytest.raises(ValueError) as err:
        load_dataset("imagenet", root, "train")
    msg = str(err.value)
    assert "imagenet train: 12 images / 4 classes, expected 1,281,167 / 1,000" in msg
    assert "imagenet test: 8 images / 4 classes, expected 50,000 / 1,000" in msg
    assert "allow_subset=True" in msg
    with pytest.raises(
        ValueError, match="imagenet100 train: 6 images / 2 classes, expected 126,689 / 100"
    ):
        load_dataset("imagenet100", root, "test")


@pytest.mark.parametrize("layout", ["folders", "flat"])
def test_imagenet100_keeps_only_its_classes(tmp_path, layout):
    root = make_imagenet_tree(tmp_path, WNIDS, 3, 2, val_layout=layout)
    tr, te = _splits(root, "imagenet100")
    assert [n.split()[0] for n in tr.class_names] == ["n01749939", "n02869837"]
    assert len(tr) == 6 and len(te) == 4
    assert {_wnid(te, i) for i in range(4)} == {"n01749939", "n02869837"}


def test_imagenet100_class_list_is_the_cmc_list():
    wnids = imagenet100_classes()
    assert len(wnids) == len(set(wnids)) == 100
    assert wnids[:3] == ["n02869837", "n01749939", "n02488291"] and wnids[-1] == "n02090622"
    assert all(w.startswith("n") and len(w) == 9 for w in wnids)


def test_missing_pieces(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing .*train. Expected layout"):
        load_dataset("imagenet", tmp_path / "empty", "train")
    root = make_imagenet_tree(tmp_path / "flat", WNIDS, 1, 1, val_layout="flat")
    (root / "LOC_val_solution.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"LOC_val_solution\.csv.*valprep"):
        load_dataset("imagenet", root, "test", allow_subset=True)
    root = make_imagenet_tree(tmp_path / "nocls", ("n00000001",), 1, 1)
    with pytest.raises(FileNotFoundError, match="none of the 100 imagenet100 wnids"):
        load_dataset("imagenet100", root, "train", allow_subset=True)


def test_data_check_cli(tmp_path, capsys):
    root = make_imagenet_tree(tmp_path, WNIDS, 2, 1, val_layout="flat")
    assert main(["data", "check", "imagenet", "--root", str(root)]) == 2
    out = capsys.readouterr().out
    assert "expected 1,281,167 / 1,000" in out and "classes are in both" not in out
    assert main(["data", "check", "imagenet100", "--root", str(root), "--allow-subset"]) == 0
    report = check_dataset("imagenet", root, allow_subset=True)
    assert report.ok and report.splits["test"].images == 4
