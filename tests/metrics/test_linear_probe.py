import math

import numpy as np
import pytest
import torch

from dasl.metrics import fit_linear_probe, linear_probe


def blobs(n_per_class, n_classes, dim, seed, spread=0.3):
    """Linearly separable clusters: class centres far apart relative to the spread."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 3
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = centres[y] + spread * rng.normal(size=(y.size, dim))
    return x.astype(np.float32), y


def test_separable_features_reach_100_percent():
    x_tr, y_tr = blobs(30, 8, 16, seed=0)
    x_te, y_te = blobs(10, 8, 16, seed=0)  # same centres (same seed), fresh noise below
    x_te = x_te + np.random.default_rng(1).normal(scale=0.3, size=x_te.shape).astype(np.float32)
    r = linear_probe(x_tr, y_tr, x_te, y_te, epochs=20, batch_size=32)
    assert r == {"top1": 1.0, "top5": 1.0}


def test_top5_at_least_top1_on_hard_data():
    x_tr, y_tr = blobs(20, 10, 8, seed=2, spread=4.0)
    x_te, y_te = blobs(10, 10, 8, seed=2, spread=4.0)
    rng = np.random.default_rng(3)
    x_te = x_te + rng.normal(scale=4.0, size=x_te.shape).astype(np.float32)
    r = linear_probe(x_tr, y_tr, x_te, y_te, epochs=10, batch_size=16)
    assert 0.1 < r["top1"] < 1.0
    assert r["top5"] >= r["top1"]


def test_seeded_reproducibility():
    x, y = blobs(20, 6, 10, seed=4, spread=2.0)
    a = fit_linear_probe(x, y, epochs=3, batch_size=16, seed=7)
    b = fit_linear_probe(x, y, epochs=3, batch_size=16, seed=7)
    c = fit_linear_probe(x, y, epochs=3, batch_size=16, seed=8)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.weight, c.weight)
    r1 = linear_probe(x, y, x, y, epochs=3, batch_size=16, seed=7)
    r2 = linear_probe(
        torch.from_numpy(x), torch.from_numpy(y), x, y, epochs=3, batch_size=16, seed=7
    )
    assert r1 == r2


def ref_probe(x, y, n_classes, epochs, lr, batch_size, wd, momentum, seed, normalize):
    """Float64, explicit loops: softmax cross-entropy gradients by hand, PyTorch's SGD rule
    (g += wd w; buf = m buf + g; w -= lr_t buf), per-step cosine lr; the same init draws and
    batch order as the implementation (same generator calls), so the weights must agree."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    if normalize:
        mu = [sum(x[i, j] for i in range(n)) / n for j in range(d)]
        sd = [math.sqrt(sum((x[i, j] - mu[j]) ** 2 for i in range(n)) / n) for j in range(d)]
        x = np.array([[(x[i, j] - mu[j]) / sd[j] for j in range(d)] for i in range(n)])
    gen = torch.Generator().manual_seed(seed)
    w = (torch.randn(n_classes, d, generator=gen) * 0.01).double().numpy().copy()
    b = np.zeros(n_classes)
    bw, bb = np.zeros_like(w), np.zeros_like(b)
    total = epochs * math.ceil(n / batch_size)
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).tolist()
        for b0 in range(0, n, batch_size):
            idx = perm[b0 : b0 + batch_size]
            gw, gb = np.zeros_like(w), np.zeros_like(b)
            for i in idx:
                z = [sum(w[c, j] * x[i, j] for j in range(d)) + b[c] for c in range(n_classes)]
                zmax = max(z)
                e = [math.exp(v - zmax) for v in z]
                s = sum(e)
                for c in range(n_classes):
                    g = e[c] / s - (1.0 if c == y[i] else 0.0)
                    gw[c] += g * x[i] / len(idx)
                    gb[c] += g / len(idx)
            lr_t = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            gw += wd * w
            gb += wd * b
            bw = momentum * bw + gw if step else gw.copy()
            bb = momentum * bb + gb if step else gb.copy()
            w -= lr_t * bw
            b -= lr_t * bb
            step += 1
    return w, b


@pytest.mark.parametrize("normalize", [True, False])
def test_training_matches_float64_reference(normalize):
    x, y = blobs(5, 3, 4, seed=5, spread=1.5)
    kw = {"epochs": 3, "lr": 0.5, "batch_size": 4, "weight_decay": 0.01, "seed": 3}
    probe = fit_linear_probe(x, y, normalize=normalize, **kw)
    w, b = ref_probe(x, y, 3, kw["epochs"], kw["lr"], kw["batch_size"], kw["weight_decay"],
                     0.9, kw["seed"], normalize)  # fmt: skip
    np.testing.assert_allclose(probe.weight.numpy(), w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probe.bias.numpy(), b, rtol=1e-4, atol=1e-5)
    assert np.abs(w).max() > 0.05  # training moved the weights well away from the init


def test_labels_of_any_type_and_unseen_test_labels():
    x, y = blobs(10, 5, 6, seed=6)
    names = np.array(["a", "b", "c", "d", "e"])[y]
    r = linear_probe(x, names, x, names, epochs=5, batch_size=8)
    assert r["top1"] == 1.0
    test_names = names.copy()
    test_names[:10] = "zzz"  # not a training class: always wrong
    r = linear_probe(x, names, x, test_names, epochs=5, batch_size=8)
    assert r["top1"] == pytest.approx(0.8) and r["top5"] == pytest.approx(0.8)


def test_errors():
    x, y = blobs(5, 3, 4, seed=0)
    with pytest.raises(ValueError, match="top-5 accuracy needs at least 5 classes"):
        linear_probe(x, y, x, y)
    assert set(linear_probe(x, y, x, y, epochs=1, ks=(1,))) == {"top1"}
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        linear_probe(x, y, x, y, epochs=0, ks=(1,))
    with pytest.raises(ValueError, match="lr must be a positive number"):
        linear_probe(x, y, x, y, lr=-1, ks=(1,))
    with pytest.raises(ValueError, match="dimension"):
        linear_probe(x, y, x[:, :2], y, epochs=1, ks=(1,))
    with pytest.raises(ValueError, match="one label per feature row"):
        linear_probe(x, y[:-1], x, y, ks=(1,))
