import math

import numpy as np
import pytest
import torch
from reference import tie_data

from dasl.metrics import knn_classify


def ref_knn_classify(train, y_train, test, y_test, k, t, ks=(1, 5)):
    """Brute force in float64 with explicit loops: rank the bank by (cosine desc, index asc),
    vote exp(s/T) over the first k, rank the bank's classes by (score desc, class asc)."""
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    classes = sorted(set(np.asarray(y_train).tolist()))
    k = min(k, len(train))
    hits = dict.fromkeys(ks, 0)
    for i in range(len(test)):
        x = test[i] / math.sqrt(sum(v * v for v in test[i]))
        sims = []
        for j in range(len(train)):
            f = train[j] / math.sqrt(sum(v * v for v in train[j]))
            sims.append(sum(a * b for a, b in zip(x, f, strict=True)))
        order = sorted(range(len(train)), key=lambda j, s=sims: (-s[j], j))[:k]
        score = dict.fromkeys(classes, 0.0)
        for j in order:
            score[y_train[j]] += math.exp(sims[j] / t)
        ranking = sorted(classes, key=lambda c: (-score[c], c))
        for m in ks:
            hits[m] += int(y_test[i] in ranking[:m])
    return {f"top{m}": hits[m] / len(test) for m in ks}


def clustered(n_train, n_test, n_classes, dim, seed, noise=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 1.5
    y_tr = rng.integers(0, n_classes, n_train)
    y_te = rng.integers(0, n_classes, n_test)
    x_tr = (centres[y_tr] + noise * rng.normal(size=(n_train, dim))).astype(np.float32)
    x_te = (centres[y_te] + noise * rng.normal(size=(n_test, dim))).astype(np.float32)
    return x_tr, y_tr, x_te, y_te


@pytest.mark.parametrize(
    ("n_train", "n_test", "n_classes", "k", "t", "chunk"),
    [
        (120, 40, 6, 200, 0.1, None),  # k larger than the bank
        (150, 50, 8, 20, 0.07, 7),  # chunks split the bank and the test rows
        (97, 31, 5, 30, 0.5, (4, 13)),  # k larger than any class (~19 per class)
        (60, 25, 10, 1, 0.1, (25, 1)),  # k=1, one bank row per chunk
    ],
)
def test_matches_bruteforce_reference(n_train, n_test, n_classes, k, t, chunk):
    x_tr, y_tr, x_te, y_te = clustered(n_train, n_test, n_classes, 12, seed=n_train, noise=2.0)
    got = knn_classify(x_tr, y_tr, x_te, y_te, k=k, temperature=t, chunk_size=chunk)
    want = ref_knn_classify(x_tr, y_tr, x_te, y_te, k, t)
    assert got == pytest.approx(want, abs=1e-12)
    assert 0.0 < got["top1"] < 1.0  # the data is hard enough for the comparison to mean something
    assert got["top5"] >= got["top1"]


@pytest.mark.parametrize("chunk", [None, 1, 3, (5, 2), (64, 17)])
@pytest.mark.parametrize("k", [1, 4, 9, 25])
def test_ties_follow_the_documented_rule(chunk, k):
    # Exact ties between repeated bank rows and between class scores.
    x = tie_data(90, seed=5)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, 90)
    x_tr, y_tr, x_te, y_te = x[:64], y[:64], x[64:], y[64:]
    got = knn_classify(x_tr, y_tr, x_te, y_te, k=k, temperature=0.2, chunk_size=chunk)
    want = ref_knn_classify(x_tr, y_tr, x_te, y_te, k, 0.2)
    assert got == pytest.approx(want, abs=1e-12)


def test_neighbour_tie_smaller_index_wins():
    # Bank items 0 and 1 are equally similar to the test point; k=1 must pick item 0 (class 3),
    # whatever the chunking.
    bank = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1, 0], [0, -1], [-1, -1]], np.float32)
    labels = np.array([3, 1, 2, 0, 4, 5])
    for chunk in (None, 1, (1, 2), 5):
        r = knn_classify(bank, labels, [[1.0, 0.0]], [3], k=1, chunk_size=chunk)
        assert r["top1"] == 1.0
        r = knn_classify(bank, labels, [[1.0, 0.0]], [1], k=1, chunk_size=chunk)
        assert r["top1"] == 0.0


def test_class_tie_smaller_class_wins():
    # Two neighbours at the same similarity from classes 7 and 2: class 2 ranks first.
    bank = np.array([[1.0, 0.0], [1.0, 0.0], [0, 1], [-1, 0], [0, -1], [-1, -1]], np.float32)
    labels = np.array([7, 2, 8, 9, 10, 11])
    assert knn_classify(bank, labels, [[1.0, 0.0]], [2], k=2)["top1"] == 1.0
    assert knn_classify(bank, labels, [[1.0, 0.0]], [7], k=2)["top1"] == 0.0


def test_weighting_beats_majority():
    # Two far neighbours of class 0 against one very close neighbour of class 1: with a small
    # temperature the close one wins, with a large one the majority does.
    bank = np.array([[1, 0], [0, 1], [0.05, 1], [-1, 0], [0, -1], [-1, -1]], np.float32)
    labels = np.array([1, 0, 0, 2, 3, 4])
    q = np.array([[1.0, 0.9]], np.float32)
    assert knn_classify(bank, labels, q, [1], k=3, temperature=0.01)["top1"] == 1.0
    assert knn_classify(bank, labels, q, [0], k=3, temperature=100.0)["top1"] == 1.0


def test_torch_numpy_and_label_types_agree():
    x_tr, y_tr, x_te, y_te = clustered(80, 30, 7, 6, seed=2, noise=2.0)
    a = knn_classify(x_tr, y_tr, x_te, y_te, k=10)
    b = knn_classify(
        torch.from_numpy(x_tr),
        torch.from_numpy(y_tr),
        torch.from_numpy(x_te),
        torch.from_numpy(y_te),
        k=10,
    )
    names = np.array([f"class_{c}" for c in range(7)])
    c = knn_classify(x_tr.astype(np.float64), names[y_tr], x_te, names[y_te], k=10)
    assert a == b == c


def test_unseen_test_label_counts_wrong_and_small_temperature_is_finite():
    x_tr, y_tr, x_te, y_te = clustered(50, 10, 5, 4, seed=3)
    y_te = y_te.copy()
    y_te[0] = 99
    r = knn_classify(x_tr, y_tr, x_te, y_te, k=5, temperature=1e-4)
    want = ref_knn_classify(x_tr, y_tr, x_te[1:], y_te[1:], 5, 1.0)  # T only matters via order
    assert r["top1"] <= 0.9
    assert math.isfinite(r["top1"])
    assert r["top5"] == pytest.approx(want["top5"] * 9 / 10)


def test_top5_needs_five_classes():
    x_tr, y_tr, x_te, y_te = clustered(40, 10, 3, 4, seed=4)
    with pytest.raises(ValueError, match="top-5 accuracy needs at least 5 classes") as err:
        knn_classify(x_tr, y_tr, x_te, y_te)
    assert "\n" not in str(err.value)
    r = knn_classify(x_tr, y_tr, x_te, y_te, ks=(1,))
    assert set(r) == {"top1"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "k must be a positive int"),
        ({"temperature": 0}, "temperature must be a positive"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": (2, 0)}, "chunk_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    x_tr, y_tr, x_te, y_te = clustered(40, 10, 6, 4, seed=4)
    with pytest.raises(ValueError, match=match):
        knn_classify(x_tr, y_tr, x_te, y_te, **kwargs)


def test_bad_inputs():
    x_tr, y_tr, x_te, y_te = clustered(40, 10, 6, 4, seed=4)
    bad = x_tr.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        knn_classify(bad, y_tr, x_te, y_te)
    bad[3] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        knn_classify(bad, y_tr, x_te, y_te)
    zero = x_te.copy()
    zero[2] = 0
    with pytest.raises(ValueError, match="test_features has all-zero rows"):
        knn_classify(x_tr, y_tr, zero, y_te)
    with pytest.raises(ValueError, match="dimension"):
        knn_classify(x_tr, y_tr, x_te[:, :3], y_te)
    with pytest.raises(ValueError, match="one label per feature row"):
        knn_classify(x_tr, y_tr[:-1], x_te, y_te)
