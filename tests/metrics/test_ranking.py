import numpy as np
import pytest
import torch

from dasl.metrics import map_at_r, r_precision, recall_at_k


def _ref(nb, ql, r):
    rec, rp, ap = [], [], []
    for i in range(len(ql)):
        m = [int(v == ql[i]) for v in nb[i]]
        rec.append(m)
        rp.append(sum(m[: r[i]]) / r[i])
        hits, s = 0, 0.0
        for j in range(r[i]):
            if m[j]:
                hits += 1
                s += hits / (j + 1)
        ap.append(s / r[i])
    return rec, float(np.mean(rp)), float(np.mean(ap))


@pytest.mark.parametrize(("n", "k", "classes"), [(1, 3, 2), (50, 6, 3), (200, 15, 5)])
def test_against_loops(n, k, classes):
    rng = np.random.default_rng(n + k)
    nb = rng.integers(0, classes, (n, k))
    ql = rng.integers(0, classes, n)
    r = rng.integers(1, k + 1, n)
    rec, rp, ap = _ref(nb.tolist(), ql.tolist(), r.tolist())
    t_nb, t_ql, t_r = map(torch.from_numpy, (nb, ql, r))
    for kk in range(1, k + 1):
        expected = float(np.mean([any(m[:kk]) for m in rec]))
        assert recall_at_k(t_nb, t_ql, kk) == pytest.approx(expected, abs=1e-12)
    assert r_precision(t_nb, t_ql, t_r) == pytest.approx(rp, abs=1e-12)
    assert map_at_r(t_nb, t_ql, t_r) == pytest.approx(ap, abs=1e-12)


def test_hand_example():
    # R=3, hits at ranks 1 and 3: AP = (1/1 + 2/3) / 3, R-precision = 2/3, recall@1 = 1.
    nb = torch.tensor([[7, 1, 7, 7]])
    ql = torch.tensor([7])
    r = torch.tensor([3])
    assert map_at_r(nb, ql, r) == pytest.approx((1 + 2 / 3) / 3)
    assert r_precision(nb, ql, r) == pytest.approx(2 / 3)
    assert recall_at_k(nb, ql, 1) == 1.0
    assert recall_at_k(torch.tensor([[1, 7]]), ql, 1) == 0.0


def test_bad_inputs():
    nb = torch.zeros(3, 4, dtype=torch.long)
    ql = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="3 rows"):
        recall_at_k(nb, torch.zeros(2, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="only 4 neighbours"):
        recall_at_k(nb, ql, 5)
    with pytest.raises(ValueError, match="< 1"):
        map_at_r(nb, ql, torch.tensor([1, 0, 2]))
    with pytest.raises(ValueError, match="R=5"):
        r_precision(nb, ql, torch.tensor([1, 5, 2]))
