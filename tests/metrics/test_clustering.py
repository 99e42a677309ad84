import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dasl.metrics import kmeans_assign, nmi


def _blobs(n, d, classes, seed, noise):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n // classes)
    x = 10 * rng.normal(size=(classes, d))[y] + noise * rng.normal(size=(len(y), d))
    return x.astype(np.float32), y


def test_equals_sklearn_nmi_of_same_clustering():
    x, y = _blobs(300, 8, 6, seed=0, noise=4.0)
    clusters = kmeans_assign(x, 6, seed=7)
    assert nmi(x, y, seed=7) == pytest.approx(normalized_mutual_info_score(y, clusters), abs=1e-12)
    assert 0.0 < nmi(x, y, seed=7) < 1.0


def test_perfect_clusters_give_one():
    x, y = _blobs(200, 16, 4, seed=1, noise=0.01)
    assert nmi(x, y, seed=0) == pytest.approx(1.0, abs=1e-9)


def test_seed_reaches_kmeans():
    """On overlapping blobs k-means' result depends on its seed: each seed's NMI must be the
    loop-computed NMI of that seed's own partition, and two seeds whose partitions differ must
    give the NMIs of those different partitions (an ``nmi`` that ignored ``seed``, or seeded
    k-means once globally, fails here)."""
    x, y = _blobs(300, 8, 10, seed=2, noise=6.0)
    partitions = {s: kmeans_assign(x, 10, seed=s) for s in range(6)}
    values = {s: nmi(x, y, seed=s) for s in partitions}
    for s, clusters in partitions.items():
        assert values[s] == pytest.approx(_nmi_loops(y.tolist(), clusters.tolist()), abs=1e-12)
    distinct = {round(v, 12) for v in values.values()}
    assert len(distinct) > 1, "one partition for every seed: make the blobs overlap more"


def test_matches_pml_with_its_faiss_seed():
    # PML's FaissKMeans uses faiss' default seed (1234), niter=20: same clustering, same NMI.
    x, y = _blobs(240, 8, 12, seed=4, noise=6.0)
    calc = AccuracyCalculator(include=("NMI",), device=torch.device("cpu"))
    pml = calc.get_accuracy(torch.from_numpy(x), torch.from_numpy(y))["NMI"]
    assert nmi(x, y, seed=1234) == pytest.approx(pml, abs=1e-6)


def test_sklearn_fallback_when_faiss_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    x, y = _blobs(120, 4, 3, seed=5, noise=0.01)
    assert nmi(x, y, seed=0) == pytest.approx(1.0, abs=1e-9)


def test_bad_inputs():
    with pytest.raises(ValueError, match="3 entries"):
        nmi(np.ones((4, 2), dtype=np.float32), [0, 1, 1])
    with pytest.raises(ValueError, match="num_clusters"):
        kmeans_assign(np.ones((4, 2), dtype=np.float32), 5)


def _nmi_loops(a, b):
    """NMI = I(A; B) / mean(H(A), H(B)) from counts, by explicit loops (natural log)."""
    import math

    n = len(a)
    ca, cb, cab = {}, {}, {}
    for u, v in zip(a, b, strict=True):
        ca[u] = ca.get(u, 0) + 1
        cb[v] = cb.get(v, 0) + 1
        cab[u, v] = cab.get((u, v), 0) + 1
    ha = -sum(c / n * math.log(c / n) for c in ca.values())
    hb = -sum(c / n * math.log(c / n) for c in cb.values())
    mi = sum(c / n * math.log(c * n / (ca[u] * cb[v])) for (u, v), c in cab.items())
    return mi / ((ha + hb) / 2)


def _noisy_labels(blob, classes, flip, seed):
    rng = np.random.default_rng(seed)
    y = blob.copy()
    wrong = rng.random(len(y)) < flip
    y[wrong] = rng.integers(0, classes, int(wrong.sum()))
    return y


def test_against_an_independent_reference_on_separable_blobs():
    """Blobs so far apart that any k-means finds them: NMI is that of the blob partition,
    computed by explicit loops, whatever k-means implementation runs; and faiss k-means,
    sklearn KMeans give the same partition."""
    x, blob = _blobs(240, 8, 4, seed=6, noise=0.01)
    y = _noisy_labels(blob, 4, 0.2, seed=6)
    assert len(set(y.tolist())) == 4
    assert nmi(x, y, seed=1) == pytest.approx(_nmi_loops(y.tolist(), blob.tolist()), abs=1e-12)
    ours = kmeans_assign(x, 4, seed=1)
    ref = KMeans(n_clusters=4, n_init=10, random_state=0).fit_predict(x)
    assert adjusted_rand_score(ours, ref) == 1.0


def test_normalize_clusters_directions_not_norms():
    """normalize=True: rows along 3 directions with norms from 1 to 100 cluster by direction
    (NMI of the direction partition, by loops); without it k-means splits by norm."""
    rng = np.random.default_rng(7)
    directions = np.linalg.qr(rng.normal(size=(16, 3)))[0].T  # orthonormal
    blob = np.repeat(np.arange(3), 60)
    scale = rng.uniform(1.0, 100.0, size=len(blob))[:, None]
    x = (scale * (directions[blob] + 0.01 * rng.normal(size=(len(blob), 16)))).astype(np.float32)
    y = _noisy_labels(blob, 3, 0.15, seed=7)
    want = _nmi_loops(y.tolist(), blob.tolist())
    assert nmi(x, y, seed=0, normalize=True) == pytest.approx(want, abs=1e-12)
    assert nmi(x, y, seed=0, normalize=False) < want - 0.05


def test_few_points_per_class_print_no_faiss_warning_and_same_clusters(capfd):
    """~10 points per class (a retrieval test set): faiss printed "WARNING clustering 300
    points to 30 centroids: please provide at least ..." from C++ on every NMI (#16). The
    clusters are those of faiss' default settings."""
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(30, 8))[np.arange(300) % 30] + 0.4 * rng.normal(size=(300, 8))).astype(
        np.float32
    )
    capfd.readouterr()
    ours = kmeans_assign(x, 30, seed=3)
    out = capfd.readouterr()
    assert "WARNING" not in out.out + out.err
    km = faiss.Kmeans(8, 30, niter=20, seed=3, verbose=False)
    km.train(x)
    capfd.readouterr()
    np.testing.assert_array_equal(ours, km.index.search(x, 1)[1].reshape(-1))
    labels = np.arange(300) % 30
    assert nmi(x, labels, seed=3) == normalized_mutual_info_score(labels, ours)
