import numpy as np
import pytest
import torch
from reference import ranked, scores64, tie_data

from dasl.metrics import knn

DISTANCES = ["cosine", "euclidean", "dot"]


def _ref_knn(q, g, k, distance, exclude_self):
    order = ranked(q, g, distance, exclude_self)
    idx = np.array([row[:k] for row in order])
    s = scores64(q, g, distance)
    sc = np.take_along_axis(s, idx, axis=1)
    if distance == "cosine":
        dist = 1 - sc
    elif distance == "euclidean":
        dist = np.sqrt(np.maximum(-sc, 0))
    else:
        dist = -sc
    return dist, idx


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize(("n", "d", "k"), [(5, 3, 4), (37, 8, 5), (120, 16, 12)])
def test_self_gallery_matches_reference(distance, n, d, k):
    x = np.random.default_rng(n * d).normal(size=(n, d)).astype(np.float32)
    dist, idx = knn(x, k=k, distance=distance)
    rdist, ridx = _ref_knn(x, x, k, distance, exclude_self=True)
    np.testing.assert_array_equal(idx.numpy(), ridx)
    np.testing.assert_allclose(dist.numpy(), rdist, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize(("nq", "ng", "k"), [(1, 9, 9), (23, 40, 7), (64, 15, 3)])
def test_separate_gallery_matches_reference(distance, nq, ng, k):
    rng = np.random.default_rng(nq + ng)
    q = rng.normal(size=(nq, 6)).astype(np.float32)
    g = rng.normal(size=(ng, 6)).astype(np.float32)
    dist, idx = knn(torch.from_numpy(q), torch.from_numpy(g), k=k, distance=distance)
    rdist, ridx = _ref_knn(q, g, k, distance, exclude_self=False)
    np.testing.assert_array_equal(idx.numpy(), ridx)
    np.testing.assert_allclose(dist.numpy(), rdist, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("chunk", [1, 7, None])
@pytest.mark.parametrize("symmetric", [True, False])
def test_ties_broken_by_smaller_index(distance, chunk, symmetric):
    x = tie_data(61, seed=3)
    k = 20
    _, idx = knn(x, k=k, distance=distance, chunk_size=chunk, symmetric=symmetric)
    _, ridx = _ref_knn(x, x, k, distance, exclude_self=True)
    np.testing.assert_array_equal(idx.numpy(), ridx)


def test_self_excluded_by_index_not_by_position():
    # Exact duplicates: column 0 may be the duplicate, and the duplicate must stay a neighbour.
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    for symmetric in (True, False):
        _, idx = knn(x, k=2, symmetric=symmetric)
        for i in range(4):
            assert i not in idx[i].tolist()
        assert idx[0].tolist() == [1, 3]
        assert idx[1].tolist() == [0, 3]
        assert idx[3].tolist() == [0, 1]


@pytest.mark.parametrize("distance", DISTANCES)
def test_chunking_and_symmetry_invariance(distance):
    x = torch.randn(61, 10, generator=torch.Generator().manual_seed(0))
    base_d, base_i = knn(x, k=9, distance=distance, chunk_size=61, symmetric=False)
    for chunk in (1, 7, 61, None):
        for sym in (True, False):
            d, i = knn(x, k=9, distance=distance, chunk_size=chunk, symmetric=sym)
            assert torch.equal(i, base_i), (chunk, sym)
            torch.testing.assert_close(d, base_d, atol=1e-5, rtol=1e-5)


def test_k_equals_gallery_minus_self():
    x = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    _, idx = knn(x, k=5)
    assert all(sorted(row) == [j for j in range(6) if j != i] for i, row in enumerate(idx.tolist()))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": np.zeros((3,)), "k": 1}, "2-D"),
        ({"query": np.zeros((0, 3)), "k": 1}, "empty"),
        ({"query": np.array([[0.0, np.nan], [1, 1]]), "k": 1}, "NaN"),
        ({"query": np.ones((4, 2)), "k": 4}, "minus self"),
        ({"query": np.ones((4, 2)), "k": 0}, "positive int"),
        ({"query": np.ones((4, 2)), "k": 1, "distance": "manhattan"}, "unknown distance"),
        ({"query": np.ones((4, 2)), "gallery": np.ones((4, 3)), "k": 1}, "dimension"),
        ({"query": np.ones((4, 2)), "gallery": np.ones((3, 2)), "k": 4}, "between 1 and"),
        (
            {"query": np.ones((4, 2)), "gallery": np.ones((3, 2)), "k": 1, "exclude_self": True},
            "exclude_self",
        ),
        ({"query": np.ones((4, 2)), "k": 1, "chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_inputs_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        knn(**kwargs)


@pytest.mark.parametrize("offset", [100.0, -1e3])
@pytest.mark.parametrize("symmetric", [True, False])
def test_euclidean_is_translation_invariant_in_float32(offset, symmetric):
    """Features offset by 100: |q|^2 + |g|^2 - 2<q, g> cancels at 1e4 * 6e-8 ~ 1e-3, which
    reordered 292 of 300 top-5 lists before the gallery-mean centring; now the float32 result
    is the float64 brute force's (indices exactly, distances to float32 rounding)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 30, 300)
    x = (rng.normal(size=(30, 32))[labels] + rng.normal(size=(300, 32))).astype(np.float32)
    x = x + np.float32(offset)
    dist, idx = knn(x, k=5, distance="euclidean", symmetric=symmetric)
    rdist, ridx = _ref_knn(x, x, 5, "euclidean", exclude_self=True)
    np.testing.assert_array_equal(idx.numpy(), ridx)
    np.testing.assert_allclose(dist.numpy(), rdist, rtol=1e-5)


def test_euclidean_separate_gallery_offset():
    rng = np.random.default_rng(1)
    g = (rng.normal(size=(80, 16)) + 250.0).astype(np.float32)
    q = (rng.normal(size=(20, 16)) + 250.0).astype(np.float32)
    _, idx = knn(q, g, k=6, distance="euclidean")
    _, ridx = _ref_knn(q, g, 6, "euclidean", exclude_self=False)
    np.testing.assert_array_equal(idx.numpy(), ridx)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("block", [16, 50, 300])
def test_cpu_heap_search_matches_blockwise_topk_search(distance, block):
    """The CPU path (faiss heaps, column candidates filtered by each heap's running minimum)
    and the accelerator path (top-k of every block and of its transpose) keep the same
    candidates; run here on the CPU so that the accelerator path cannot rot untested."""
    import importlib

    knn_mod = importlib.import_module("dasl.metrics.knn")
    # Clustered rows (the filter keeps few candidates) plus exact duplicates (ties).
    rng = np.random.default_rng(7)
    x = rng.normal(size=(30, 12))[rng.integers(0, 30, 300)] + 0.3 * rng.normal(size=(300, 12))
    x = torch.from_numpy(np.vstack([x, x[:20]]).astype(np.float32))
    q, q_sq = knn_mod.prepare(x, "euclidean" if distance != "dot" else "dot")
    kk = 11
    v1, i1 = knn_mod._search_symmetric_heaps(q, q_sq, kk, block)
    v2, i2 = knn_mod._search_symmetric(q, q_sq, kk, block)
    # Same multiset of scores per row (the tie rule is applied later, by _order).
    torch.testing.assert_close(v1.sort(dim=1).values, v2.sort(dim=1).values, rtol=0, atol=1e-5)
    o1 = knn_mod._order(v1, i1, kk - 1)[1]
    o2 = knn_mod._order(v2, i2, kk - 1)[1]
    # Rows whose k-th and (k+1)-th scores are apart by more than the two paths' rounding
    # difference have one top-k set, which both must find.
    top = v2.sort(dim=1, descending=True).values
    untied = top[:, kk - 2] - top[:, kk - 1] > 1e-4
    assert untied.any()
    assert torch.equal(o1[untied], o2[untied])
