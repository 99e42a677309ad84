import numpy as np
import pytest
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from sklearn.metrics import normalized_mutual_info_score

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


def test_reproducible_with_seed():
    x, y = _blobs(300, 8, 10, seed=2, noise=6.0)
    assert nmi(x, y, seed=3) == nmi(x, y, seed=3)


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
