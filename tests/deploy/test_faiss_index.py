import faiss
import numpy as np
import pytest

from dasl.deploy.faiss_index import (
    build_faiss_index,
    load_faiss_index,
    save_faiss_index,
    search_faiss_index,
)
from dasl.metrics import knn


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


def _reference_search(g: np.ndarray, q: np.ndarray, k: int, distance: str):
    """Distances in float64 with explicit loops; nearest first, ties by item index."""
    out_d, out_i = [], []
    for qrow in q.astype(np.float64):
        scored = []
        for i, grow in enumerate(g.astype(np.float64)):
            if distance == "cosine":
                nq = np.sqrt(sum(v * v for v in qrow))
                ng = np.sqrt(sum(v * v for v in grow))
                d = 1.0 - sum(a * b for a, b in zip(qrow, grow, strict=True)) / (nq * ng)
            elif distance == "euclidean":
                d = np.sqrt(sum((a - b) ** 2 for a, b in zip(qrow, grow, strict=True)))
            else:
                d = -sum(a * b for a, b in zip(qrow, grow, strict=True))
            scored.append((d, i))
        scored.sort()
        out_d.append([d for d, _ in scored[:k]])
        out_i.append([i for _, i in scored[:k]])
    return np.asarray(out_d), np.asarray(out_i)


@pytest.mark.parametrize("distance", ["cosine", "euclidean", "dot"])
def test_search_distances_and_total_tie_order(distance):
    # Small integer vectors: every score is exact in float32, so exact duplicates tie
    # exactly and the order among them must be the item index, also across the k boundary.
    rng = np.random.default_rng(3)
    base = rng.integers(-3, 4, size=(6, 5)).astype(np.float32)
    g = np.concatenate([base, base, base, base[:2]])  # rows i, i+6, i+12 are equal
    q = np.concatenate([base[[1, 4]], rng.integers(-3, 4, size=(3, 5)).astype(np.float32)])
    for k in (1, 2, 3, 4, 7, len(g), len(g) + 5):
        dist, idx = search_faiss_index(build_faiss_index(g, distance), q, k, distance)
        ref_d, ref_i = _reference_search(g, q, min(k, len(g)), distance)
        np.testing.assert_allclose(dist, ref_d, rtol=0, atol=1e-5)
        # Tolerance-aware: where the reference separates two items by more than rounding,
        # the order must agree; within a group of exact duplicates, index order.
        for row in range(len(q)):
            for r in range(idx.shape[1]):
                tied = np.abs(ref_d[row] - ref_d[row, r]) < 1e-5
                assert idx[row, r] == ref_i[row, r] or idx[row, r] in ref_i[row][tied]
            dup_groups = {}
            for i in idx[row]:
                dup_groups.setdefault(tuple(g[i]), []).append(i)
            for members in dup_groups.values():
                assert members == sorted(members)


def test_search_query_equal_to_an_item_is_at_distance_zero():
    g = np.random.default_rng(4).normal(size=(30, 6)).astype(np.float32)
    for distance in ("cosine", "euclidean"):
        dist, idx = search_faiss_index(build_faiss_index(g, distance), g[[3, 17]], 2, distance)
        assert list(idx[:, 0]) == [3, 17]
        np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-3 if distance == "euclidean" else 1e-6)


def test_search_bad_k():
    index = build_faiss_index(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="k must be a positive int"):
        search_faiss_index(index, np.ones((1, 2), dtype=np.float32), 0)


def test_load_refuses_a_file_that_is_no_index(tmp_path):
    bad = tmp_path / "index.faiss"
    bad.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="not a faiss index"):
        load_faiss_index(bad)
