import faiss
import numpy as np
import pytest

from dasl.metrics import build_faiss_index, knn, save_faiss_index


@pytest.mark.parametrize("distance", ["cosine", "euclidean", "dot"])
def test_index_search_agrees_with_knn(distance):
    rng = np.random.default_rng(0)
    g = rng.normal(size=(50, 8)).astype(np.float32)
    q = rng.normal(size=(7, 8)).astype(np.float32)
    index = build_faiss_index(g, distance=distance)
    assert index.ntotal == 50
    qq = q / np.linalg.norm(q, axis=1, keepdims=True) if distance == "cosine" else q
    _, fi = index.search(qq, 5)
    _, ki = knn(q, g, k=5, distance=distance)
    np.testing.assert_array_equal(fi, ki.numpy())


def test_save_is_atomic_and_readable(tmp_path, monkeypatch):
    g = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    path = save_faiss_index(build_faiss_index(g), tmp_path / "sub" / "index.faiss")
    back = faiss.read_index(str(path))
    assert back.ntotal == 20
    assert [p.name for p in path.parent.iterdir()] == ["index.faiss"]

    # A failing write leaves the old file intact and no temporary behind.
    def boom(index, fname):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(RuntimeError):
        save_faiss_index(build_faiss_index(g[:3]), path)
    assert faiss.read_index(str(path)).ntotal == 20
    assert [p.name for p in path.parent.iterdir()] == ["index.faiss"]


def test_bad_distance():
    with pytest.raises(ValueError, match="unknown distance"):
        build_faiss_index(np.ones((3, 2), dtype=np.float32), distance="l1")
