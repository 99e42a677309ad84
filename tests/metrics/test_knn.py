import importlib

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


def _near_duplicates(n: int, d: int, seed: int) -> np.ndarray:
    """Clustered rows, exact duplicates of some of them, and near-duplicates (one coordinate
    moved by a few float32 ulps), so float32 scores tie or cross under different roundings."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n // 10, d))[rng.integers(0, n // 10, n)] + 0.3 * rng.normal(size=(n, d))
    x = x.astype(np.float32)
    near = x[: n // 8].copy()
    near[:, 0] = np.nextafter(np.nextafter(near[:, 0], np.inf), np.inf)
    return np.vstack([x, x[: n // 8], near, x[: n // 16]])


def _prepared64(x: np.ndarray, distance: str) -> np.ndarray:
    """The vectors knn scores (cosine: unit rows; euclidean/cosine: centred), in float64."""
    knn_mod = importlib.import_module("dasl.metrics.knn")
    t = torch.from_numpy(x)
    if distance == "cosine":
        t = torch.nn.functional.normalize(t, dim=1)
    if distance != "dot":
        t = t - knn_mod.euclidean_centre(t)
    return t.double().numpy()


def _pair_scores(p: np.ndarray, distance: str) -> np.ndarray:
    """Explicit per-pair float64 scores (no GEMM): -|a - b|^2, or <a, b> for dot."""
    s = np.empty((len(p), len(p)))
    for i in range(len(p)):
        s[i] = (p * p[i]).sum(1) if distance == "dot" else -((p - p[i]) ** 2).sum(1)
    np.fill_diagonal(s, -np.inf)
    return s


def _assert_follows_rule(idx: np.ndarray, s: np.ndarray, tol: np.ndarray) -> None:
    """``idx`` rows are the top-k of ``s`` rows by (score desc, index asc), where scores
    within ``tol`` of each other may come in either order (float32 scores of the inputs);
    exactly equal scores (duplicates) always by index."""
    k = idx.shape[1]
    for r in range(len(idx)):
        row, sc, t = idx[r], s[r, idx[r]], tol[r]
        assert len(set(row.tolist())) == k and r not in row
        for a in range(k - 1):
            assert sc[a] >= sc[a + 1] - t, (r, a)
            if t == 0 and sc[a] == sc[a + 1]:
                assert row[a] < row[a + 1], (r, a, "equal scores not in index order")
        rest = np.setdiff1d(np.arange(s.shape[1]), np.append(row, r))
        assert (s[r, rest] <= sc[-1] + t).all(), (r, "a nearer item was left out")
        eq = rest[s[r, rest] == sc[-1]] if t == 0 else rest[:0]
        assert (eq > row[sc == sc[-1]].max()).all(), (r, "tie at k-th place not by index")


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("block", [16, 50, None])
def test_every_path_gives_the_same_neighbours_on_duplicates(distance, block):
    """Heap (CPU), blockwise (accelerator; run here so it cannot rot) and plain search give
    identical lists on exact and near duplicates, whatever order their float32 GEMMs round
    duplicate rows to (#16: 11 vs 311 on an AMD EPYC): near ties are rescored exactly. The
    lists follow the rule on exact float64 scores of the scored vectors, with no tolerance, and
    the float64 brute force of the raw data within float32 rounding."""
    knn_mod = importlib.import_module("dasl.metrics.knn")
    x = _near_duplicates(320, 24, seed=7)
    k = 10
    t = torch.from_numpy(x)
    out = {
        path: knn_mod.knn_scores(
            t, None, k, distance=distance, exclude_self=True, chunk_size=block, path=path
        )
        for path in ("heap", "blockwise", "plain")
    }
    for path in ("blockwise", "plain"):
        assert torch.equal(out[path][1], out["heap"][1]), path
        torch.testing.assert_close(out[path][0], out["heap"][0], rtol=1e-5, atol=1e-5)
    idx = out["heap"][1].numpy()
    exact = _pair_scores(_prepared64(x, distance), distance)
    _assert_follows_rule(idx, exact, np.zeros(len(x)))
    # Independent reference on the raw data: equal up to float32 rounding of the inputs.
    raw = scores64(x, x, distance)
    np.fill_diagonal(raw, -np.inf)
    if distance == "euclidean":
        raw = -np.array([[((a - b) ** 2).sum() for b in x.astype(np.float64)] for a in x])
        np.fill_diagonal(raw, -np.inf)
    scale = np.abs(raw[np.isfinite(raw)]).max()
    _assert_follows_rule(idx, raw, np.full(len(x), 1e-5 * scale))


@pytest.mark.parametrize("distance", DISTANCES)
def test_separate_gallery_near_duplicates_follow_the_rule(distance):
    """Query against a separate gallery holding exact and near duplicates: the exact top-k by
    (score desc, index asc), equal across chunk sizes."""
    knn_mod = importlib.import_module("dasl.metrics.knn")
    g = _near_duplicates(240, 16, seed=3)
    q = g[::7] + np.float32(1e-3)
    lists = [
        knn_mod.knn_scores(
            torch.from_numpy(q), torch.from_numpy(g), 8, distance=distance, chunk_size=c
        )[1]
        for c in (1, 5, None)
    ]
    assert all(torch.equal(li, lists[0]) for li in lists)
    # The scored vectors: unit rows (cosine), centred on the gallery's centre (not dot).
    gt, qt = torch.from_numpy(g), torch.from_numpy(q)
    if distance == "cosine":
        gt, qt = (torch.nn.functional.normalize(v, dim=1) for v in (gt, qt))
    if distance != "dot":
        centre = knn_mod.euclidean_centre(gt)
        gt, qt = gt - centre, qt - centre
    gp, qp = gt.double().numpy(), qt.double().numpy()
    s = np.array([(gp * a).sum(1) if distance == "dot" else -((gp - a) ** 2).sum(1) for a in qp])
    _assert_follows_rule_rows(lists[0].numpy(), s)


def _assert_follows_rule_rows(idx: np.ndarray, s: np.ndarray) -> None:
    """Each row of ``idx`` is the first k of (score desc, index asc) over that row of ``s``."""
    for r in range(len(idx)):
        order = sorted(range(s.shape[1]), key=lambda j, r=r: (-s[r, j], j))
        assert idx[r].tolist() == order[: idx.shape[1]], r


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("block", [16, 50, 300])
def test_cpu_heap_search_matches_blockwise_topk_search(distance, block):
    """The CPU path (faiss heaps, column candidates filtered by each heap's running minimum)
    and the accelerator path (top-k of every block and of its transpose) keep the same
    candidates; run here on the CPU so that the accelerator path cannot rot untested."""
    knn_mod = importlib.import_module("dasl.metrics.knn")
    # Clustered rows (the filter keeps few candidates) plus exact duplicates (ties).
    rng = np.random.default_rng(7)
    x = rng.normal(size=(30, 12))[rng.integers(0, 30, 300)] + 0.3 * rng.normal(size=(300, 12))
    x = torch.from_numpy(np.vstack([x, x[:20]]).astype(np.float32))
    q, q_sq = knn_mod.prepare(x, "euclidean" if distance != "dot" else "dot")
    kk = 11
    v1, i1 = knn_mod._search_symmetric_heaps(q, q_sq, kk, block)
    v2, i2 = knn_mod._search_symmetric(q, q_sq, kk, block)
    # Same multiset of scores per row (the tie rule is applied later, by _settle).
    torch.testing.assert_close(v1.sort(dim=1).values, v2.sort(dim=1).values, rtol=0, atol=1e-5)
    # Rows whose k-th and (k+1)-th scores are apart by more than the two paths' rounding
    # difference have one candidate set, which both must find (its order is _settle's job).
    top = v2.sort(dim=1, descending=True).values
    untied = top[:, kk - 2] - top[:, kk - 1] > 1e-4
    assert untied.any()
    o1 = knn_mod._order(v1, i1, kk - 1)[1][untied].sort(dim=1).values
    o2 = knn_mod._order(v2, i2, kk - 1)[1][untied].sort(dim=1).values
    assert torch.equal(o1, o2)
