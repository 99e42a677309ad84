import numpy as np
import pytest

from dasl.data import load_dataset


def test_splits(sop_root):
    tr = load_dataset("sop", sop_root, "trainval", allow_subset=True)
    te = load_dataset("sop", sop_root, "test", allow_subset=True)
    assert tr.class_names == ["1", "2", "3"]
    assert te.class_names == ["11319", "11320", "11321"]
    assert len(tr) == len(te) == 6
    assert np.array_equal(te.labels, [0, 0, 1, 1, 2, 2])
    assert all(p.exists() for p in te.paths)
    assert "_final" in te.paths[0].parent.name


def test_counts_and_header(sop_root):
    with pytest.raises(ValueError, match=r"expected 59,551 / 11,318"):
        load_dataset("sop", sop_root, "train")
    f = sop_root / "Stanford_Online_Products" / "Ebay_test.txt"
    f.write_text("id class path\n")
    with pytest.raises(ValueError, match=r"header"):
        load_dataset("sop", sop_root, "train", allow_subset=True)
    f.unlink()
    with pytest.raises(FileNotFoundError, match=r"Ebay_test.txt"):
        load_dataset("sop", sop_root, "train", allow_subset=True)


def test_inner_folder_root(sop_root):
    assert (
        len(load_dataset("sop", sop_root / "Stanford_Online_Products", "test", allow_subset=True))
        == 6
    )


def test_index_file_that_is_not_utf8_is_a_data_error(sop_root):
    """Latin-1 bytes in an index file: a DataError naming the file, not UnicodeDecodeError."""
    from dasl.errors import DataError

    f = sop_root / "Stanford_Online_Products" / "Ebay_test.txt"
    f.write_bytes(f.read_bytes() + "caf\xe9/x.JPG\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"Ebay_test\.txt: not a UTF-8 text file"):
        load_dataset("sop", sop_root, "train", allow_subset=True)
