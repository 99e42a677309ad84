"""The self-supervised objective (:class:`dasl.dar.TwoViewDASLLoss` with a registered two-view
base loss, as ``dasl pretrain`` builds it): base loss + lam * DAR on both views, against
float64 references."""

from __future__ import annotations

import math

import pytest
import torch
from dar_reference import exact_ref
from lightly import loss as lightly_loss
from pytorch_metric_learning.losses import NTXentLoss

from dasl.dar import DifferenceAlignmentRegularizer, TwoViewDASLLoss
from dasl.losses import LossContext, build_base_loss


def _objective(
    base: torch.nn.Module, regularizer: torch.nn.Module | None = None, lam: float = 0.0
) -> TwoViewDASLLoss:
    """What ``dasl pretrain`` trains: a two-view base loss, DAR on the unit-norm views."""
    return TwoViewDASLLoss(base, regularizer, lam, two_view_base=True, normalize=True)


def _base(name: str, temperature: float | None) -> torch.nn.Module:
    return build_base_loss(name, {"temperature": temperature}, LossContext(), "two_view")


def _views(b: int = 5, h: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, h, generator=g), torch.randn(b, h, generator=g)


def _unit(rows: torch.Tensor) -> list[list[float]]:
    out = []
    for r in rows.double().tolist():
        n = math.sqrt(sum(x * x for x in r))
        out.append([x / n for x in r])
    return out


def _ntxent_ref(z0: torch.Tensor, z1: torch.Tensor, t: float) -> float:
    """SimCLR's NT-Xent over all 2B anchors, float64 loops."""
    z = _unit(torch.cat([z0, z1]))
    n, b = len(z), z0.shape[0]
    total = 0.0
    for i in range(n):
        pos = (i + b) % n
        sims = [sum(a * c for a, c in zip(z[i], z[j], strict=True)) / t for j in range(n)]
        denom = sum(math.exp(sims[j]) for j in range(n) if j != i)
        total += -(sims[pos] - math.log(denom))
    return total / n


@pytest.mark.parametrize("measure", ["l2", "l1", "l2sq"])
def test_instance_ids_dar_matches_float64_reference(measure: str) -> None:
    z0, z1 = _views()
    lam = 0.7
    obj = _objective(
        _base("ntxent", 0.2),
        DifferenceAlignmentRegularizer(measure=measure, estimator="exact"),
        lam=lam,
    )
    got = obj(z0, z1)  # labels None: instance ids
    ids = list(range(5)) * 2  # the two views of image i share id i
    reg = exact_ref(_unit(torch.cat([z0, z1])), ids, measure, "signed", "mean")
    expected = _ntxent_ref(z0, z1, 0.2) + lam * reg
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert obj.last_regularizer.item() == pytest.approx(reg, rel=1e-5)


def test_two_view_instance_labels() -> None:
    z0, z1 = _views()
    reg = DifferenceAlignmentRegularizer(estimator="exact")
    obj = _objective(_base("ntxent", 0.1), reg, lam=1.0)
    # Dataset indices as instance ids give the same regularizer as arange: only equality counts.
    assert obj(z0, z1, torch.tensor([7, 3, 9, 0, 42])).item() == pytest.approx(
        obj(z0, z1).item(), rel=1e-6
    )
    # If two images share an id (one cluster), their cross pairs leave DAR.
    shared = obj(z0, z1, torch.tensor([0, 0, 1, 2, 3]))
    ref = exact_ref(_unit(torch.cat([z0, z1])), [0, 0, 1, 2, 3] * 2, "l2", "signed", "mean")
    assert obj.last_regularizer.item() == pytest.approx(ref, rel=1e-5)
    assert torch.isfinite(shared)


def test_equals_pml_two_view_dasl_loss() -> None:
    """lightly's NT-Xent + DAR on unit projections == PML NTXentLoss inside TwoViewDASLLoss."""
    z0, z1 = _views(8, 16, seed=3)
    ours = _objective(
        _base("ntxent", 0.1),
        DifferenceAlignmentRegularizer(estimator="exact"),
        lam=0.5,
    )(z0, z1)
    unit = torch.nn.functional.normalize
    pml = TwoViewDASLLoss(
        NTXentLoss(temperature=0.1), DifferenceAlignmentRegularizer(estimator="exact"), lam=0.5
    )(unit(z0, dim=1), unit(z1, dim=1))
    assert ours.item() == pytest.approx(pml.item(), rel=1e-5)


def test_granularities_are_averaged() -> None:
    z0, z1 = _views(6, 4, seed=1)
    rows = torch.tensor([[0, 0, 1, 1, 2, 2], [0, 1, 2, 3, 4, 5]])
    obj = _objective(
        _base("ntxent", 0.1),
        DifferenceAlignmentRegularizer(estimator="exact"),
        lam=1.0,
    )
    obj(z0, z1, rows)
    z = _unit(torch.cat([z0, z1]))
    refs = [exact_ref(z, r.tolist() * 2, "l2", "signed", "mean") for r in rows]
    assert obj.last_regularizer.item() == pytest.approx(sum(refs) / 2, rel=1e-5)


def test_lam_zero_is_the_base_loss_and_gradients_finite() -> None:
    z0, z1 = _views()
    base = _base("ntxent", 0.1)
    obj = _objective(base, lam=0.0)
    assert obj(z0, z1).item() == base(z0, z1).item()
    assert obj.last_regularizer is None
    # Identical views (zero differences between the views of an image): no NaN gradient.
    z = z0.clone().requires_grad_(True)
    _objective(_base("ntxent", 0.1), lam=1.0)(z, z).backward()
    assert torch.isfinite(z.grad).all()


_LIGHTLY = {
    "dcl": lambda: lightly_loss.DCLLoss(temperature=0.1, gather_distributed=False),
    "vicreg": lambda: lightly_loss.VICRegLoss(gather_distributed=False),
    "barlowtwins": lambda: lightly_loss.BarlowTwinsLoss(gather_distributed=False),
}


@pytest.mark.parametrize("name", sorted(_LIGHTLY))
def test_other_base_losses_plug_in(name: str) -> None:
    """``base + lam * DAR`` against lightly's own loss built here and the exact regularizer's
    float64 loop reference on the unit-normalized views with instance ids; gradients against
    autograd through lightly's loss plus an independently built regularizer."""
    z0, z1 = _views(8, 6)
    t = 0.1 if name == "dcl" else None
    obj = _objective(_base(name, t), DifferenceAlignmentRegularizer(estimator="exact"), lam=0.3)
    a0, a1 = z0.clone().requires_grad_(True), z1.clone().requires_grad_(True)
    loss = obj(a0, a1)
    reg = exact_ref(_unit(torch.cat([z0, z1])), list(range(8)) * 2, "l2", "signed", "mean")
    base = _LIGHTLY[name]()(z0, z1).item()
    assert loss.item() == pytest.approx(base + 0.3 * reg, rel=1e-5)
    b0, b1 = z0.clone().requires_grad_(True), z1.clone().requires_grad_(True)
    unit = torch.nn.functional.normalize(torch.cat([b0, b1]), dim=1)
    ids = torch.arange(8).repeat(2)
    want = _LIGHTLY[name]()(b0, b1) + 0.3 * DifferenceAlignmentRegularizer(estimator="exact")(
        unit, ids
    )
    loss.backward()
    want.backward()
    torch.testing.assert_close(a0.grad, b0.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(a1.grad, b1.grad, rtol=1e-5, atol=1e-7)


def test_shape_errors() -> None:
    z0, z1 = _views()
    obj = _objective(_base("ntxent", 0.1), lam=1.0)
    with pytest.raises(ValueError, match="same shape"):
        obj(z0, z1[:3])
    with pytest.raises(ValueError, match="columns"):
        obj(z0, z1, torch.zeros(2, 3, dtype=torch.long))
