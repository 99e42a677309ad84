"""Compaction controls and the decomposition of squared-l2 DAR (#18) against float64 loops."""

from __future__ import annotations

import pytest
import torch
from dar_reference import pair_indices

from dasl.dar import DASLLoss, difference_alignment
from dasl.dar.controls import CONTROLS, ControlRegularizer, control_penalty, l2sq_decomposition

BATCHES = [
    ([0, 0, 1, 1, 2, 2], 3),
    ([3, 1, 1, 2, 3, 0, 2, 2, 1, 0, 3, 3], 5),  # unbalanced, shuffled
    ([5, 2, 5, 9, 9, 9, 2], 4),
    ([0, 1, 2, 3, 4], 2),  # singletons: no within-class scatter
]


def _ref_terms(z: list[list[float]], y: list[int], difference: str) -> dict[str, float]:
    """Explicit loops: the inter-class columns, their squared norms, their sum; class means."""
    n, h = len(z), len(z[0])
    cols = [[z[i][k] - z[j][k] for k in range(h)] for i, j in pair_indices(y, difference)]
    n_cols = len(cols)
    sq = sum(sum(x * x for x in c) for c in cols)
    col_sum = [sum(c[k] for c in cols) for k in range(h)]
    zbar = [sum(z[i][k] for i in range(n)) / n for k in range(h)]
    classes = sorted(set(y))
    members = {a: [i for i in range(n) if y[i] == a] for a in classes}
    mu = {
        a: [sum(z[i][k] for i in members[a]) / len(members[a]) for k in range(h)] for a in classes
    }
    class_sum = n * sum(
        len(members[a]) * sum((mu[a][k] - zbar[k]) ** 2 for k in range(h)) for a in classes
    )
    within_sum = sum(
        (n - len(members[a])) * sum((z[i][k] - mu[a][k]) ** 2 for k in range(h))
        for a in classes
        for i in members[a]
    )
    scale = 2.0 / (n_cols - 1) if n_cols >= 2 else 0.0
    return {
        "pairs_sq": scale * sq,
        "class_mean": scale * class_sum,
        "within": scale * within_sum,
        "orientation": scale * sum(x * x for x in col_sum) / max(n_cols, 1),
        "variance": sum(sum((z[i][k] - zbar[k]) ** 2 for k in range(h)) for i in range(n)) / n,
    }


@pytest.mark.parametrize(("labels", "dim"), BATCHES)
@pytest.mark.parametrize("difference", ["signed", "ordered"])
def test_decomposition_matches_loops_and_sums_to_dar(labels, dim, difference) -> None:
    gen = torch.Generator().manual_seed(len(labels) * 7 + dim)
    z = torch.randn(len(labels), dim, generator=gen, dtype=torch.float64) * 3 + 5  # off-centre
    y = torch.tensor(labels)
    ref = _ref_terms(z.tolist(), labels, difference)
    parts = l2sq_decomposition(z, y, difference)
    assert float(parts.class_mean) == pytest.approx(ref["class_mean"], rel=1e-12)
    assert float(parts.within) == pytest.approx(ref["within"], rel=1e-12, abs=1e-12)
    assert float(parts.orientation) == pytest.approx(ref["orientation"], rel=1e-10, abs=1e-12)
    # the identity behind it: 2/(H-1) sum_p ||m_p||^2 = class_mean + within
    assert ref["class_mean"] + ref["within"] == pytest.approx(ref["pairs_sq"], rel=1e-12)
    dar = difference_alignment(z, y, measure="l2sq", difference=difference, reduction="mean")
    total = parts.class_mean + parts.within - parts.orientation
    assert float(total) == pytest.approx(float(dar), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(("labels", "dim"), BATCHES)
def test_controls_match_loops_and_their_gradients_are_the_references(labels, dim) -> None:
    gen = torch.Generator().manual_seed(len(labels) + 100 * dim)
    z0 = torch.randn(len(labels), dim, generator=gen, dtype=torch.float64) + 2
    y = torch.tensor(labels)
    ref = _ref_terms(z0.tolist(), labels, "signed")
    expected = {
        "compact_inter": ref["pairs_sq"],
        "within_scatter": ref["within"],
        "batch_variance": ref["variance"],
    }
    for kind in CONTROLS:
        z = z0.clone().requires_grad_(True)
        value = control_penalty(z, y, kind)
        assert float(value.detach()) == pytest.approx(expected[kind], rel=1e-12, abs=1e-12)
        value.backward()
        # autograd reference on explicit pairs / rows (no class-mean identity)
        zr = z0.clone().requires_grad_(True)
        i, j = torch.tensor(pair_indices(labels, "signed")).T
        n_cols = i.shape[0]
        if kind == "batch_variance":
            r = ((zr - zr.mean(0)) ** 2).sum(1).mean()
        elif kind == "compact_inter":
            r = 2.0 / (n_cols - 1) * ((zr[i] - zr[j]) ** 2).sum()
        else:
            same = y[:, None] == y[None, :]
            per_row = torch.stack(
                [(zr[a] - zr[same[a]].mean(0)).pow(2).sum() for a in range(len(labels))]
            )
            r = 2.0 / (n_cols - 1) * ((len(labels) - same.sum(1)) * per_row).sum()
        r.backward()
        torch.testing.assert_close(z.grad, zr.grad, rtol=1e-10, atol=1e-12)


def test_float32_in_float32_out_and_one_class_is_zero_with_zero_gradient() -> None:
    z = torch.randn(6, 3, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    for kind in CONTROLS:
        assert control_penalty(z, y, kind).dtype == torch.float32
    one = torch.zeros(4, dtype=torch.long)
    for kind in ("compact_inter", "within_scatter"):
        zz = torch.randn(4, 3, requires_grad=True)
        v = control_penalty(zz, one, kind)
        v.backward()
        assert float(v) == 0.0 and torch.equal(zz.grad, torch.zeros_like(zz))
    parts = l2sq_decomposition(torch.randn(4, 3), one)
    assert all(float(t) == 0.0 for t in parts)


def test_control_in_dasl_loss_and_bad_kind() -> None:
    from pytorch_metric_learning.losses import ProxyAnchorLoss

    z = torch.randn(8, 4, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    base = ProxyAnchorLoss(num_classes=4, embedding_size=4)
    loss = DASLLoss(base, ControlRegularizer("compact_inter"), lam=2.0)
    value = loss(z, y)
    expected = loss.last_base_loss + 2.0 * control_penalty(z.detach(), y, "compact_inter")
    assert float(value) == pytest.approx(float(expected), rel=1e-6)
    value.backward()
    assert torch.isfinite(z.grad).all()
    with pytest.raises(ValueError, match="compact_inter"):
        ControlRegularizer("compaction")
