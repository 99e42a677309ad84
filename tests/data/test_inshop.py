import numpy as np
import pytest

from dasl.data import load_dataset


def test_query_gallery_share_mapping(inshop_root):
    q = load_dataset("inshop", inshop_root, "query", allow_subset=True)
    g = load_dataset("inshop", inshop_root, "gallery", allow_subset=True)
    t = load_dataset("inshop", inshop_root, "test", allow_subset=True)
    tr = load_dataset("inshop", inshop_root, "trainval", allow_subset=True)
    assert len(q) == 3 and len(g) == 6 and len(t) == 9 and len(tr) == 9
    assert q.class_names == g.class_names == t.class_names
    assert q.class_names == ["id_00000004", "id_00000005", "id_00000006"]
    # a query and the gallery images of the same item share the label
    for i, p in enumerate(q.paths):
        same = [j for j, gp in enumerate(g.paths) if gp.parent == p.parent]
        assert len(same) == 2 and all(g.labels[j] == q.labels[i] for j in same)
    assert np.array_equal(t.labels, np.concatenate([q.labels, g.labels]))
    assert tr.class_names == ["id_00000001", "id_00000002", "id_00000003"]


def test_val_carved_from_train(inshop_root):
    va = load_dataset("inshop", inshop_root, "val", allow_subset=True)
    assert va.class_names == ["id_00000003"]


def test_mapping_survives_partial_query_classes(tmp_path):
    from fixtures import make_inshop_tree

    root = make_inshop_tree(tmp_path, train_items=1, test_items=3)
    f = root / "list_eval_partition.txt"
    lines = f.read_text().splitlines()
    # drop the query of item 3 (the second test item): query classes no longer cover all items
    kept = [ln for ln in lines[2:] if not ("id_00000003" in ln and ln.endswith("query"))]
    f.write_text("\n".join([str(len(kept)), lines[1], *kept]) + "\n")
    q = load_dataset("inshop", root, "query", allow_subset=True)
    g = load_dataset("inshop", root, "gallery", allow_subset=True)
    assert q.num_classes == g.num_classes == 3
    assert sorted(set(q.labels.tolist())) == [0, 2]


def test_counts_and_format_errors(inshop_root):
    with pytest.raises(ValueError, match=r"expected 25,882 / 3,997"):
        load_dataset("inshop", inshop_root, "train")
    f = inshop_root / "list_eval_partition.txt"
    lines = f.read_text().splitlines()
    f.write_text("\n".join(["99", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"line 1 says 99 images, the file lists 18"):
        load_dataset("inshop", inshop_root, "train", allow_subset=True)
    f.write_text("\n".join([lines[0], lines[1], lines[2].replace("train", "dev"), *lines[3:]]))
    with pytest.raises(ValueError, match=r"train\\|query\\|gallery"):
        load_dataset("inshop", inshop_root, "train", allow_subset=True)
    f.unlink()
    with pytest.raises(FileNotFoundError, match=r"list_eval_partition.txt"):
        load_dataset("inshop", inshop_root, "train", allow_subset=True)


def test_official_eval_img_layout(inshop_root):
    (inshop_root / "Eval").mkdir()
    (inshop_root / "list_eval_partition.txt").rename(inshop_root / "Eval/list_eval_partition.txt")
    (inshop_root / "Img").mkdir()
    (inshop_root / "img").rename(inshop_root / "Img/img")
    assert len(load_dataset("inshop", inshop_root, "query", allow_subset=True)) == 3
