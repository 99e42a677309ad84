import math

import pytest
import torch
from dar_reference import ctv_ref, ctv_torch, value_and_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dasl.dar import ctv_norm
from dasl.dar.ctv import ctv_sum, ctv_sum_l1, ctv_sum_linf
from dasl.dar.exact_l2 import ctv_l2_columns, ctv_l2_pairs_gram

MEASURES = ["l2", "l1", "linf", "l2sq"]


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("shape", [(2, 1), (5, 3), (9, 7), (13, 2)])
def test_ctv_norm_matches_loops(measure, reduction, shape):
    g = torch.Generator().manual_seed(shape[0] * 10 + shape[1])
    m = torch.randn(*shape, generator=g, dtype=torch.float64)
    m[-1] = m[0]  # a duplicate column
    got = ctv_norm(m, measure, reduction)
    want = ctv_ref(m.tolist(), measure, reduction)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("measure", MEASURES)
def test_ctv_norm_float32_close_to_float64(measure):
    m = torch.randn(40, 6, dtype=torch.float64)
    got = ctv_norm(m.float(), measure)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(ctv_norm(m, measure)), rel=1e-4)


def test_blocked_kernels_any_block_size():
    m = torch.randn(23, 4, dtype=torch.float64)
    for block in (1, 5, 17, 10_000):
        assert float(ctv_l2_columns(m, block)) == pytest.approx(ctv_ref(m.tolist(), "l2"))
        assert float(ctv_sum_linf(m, block)) == pytest.approx(ctv_ref(m.tolist(), "linf"))


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("h_cols", [0, 1])
def test_fewer_than_two_columns_is_zero_with_zero_grad(measure, h_cols):
    m = torch.randn(h_cols, 3, requires_grad=True)
    out = ctv_norm(m, measure, "mean")
    assert float(out.detach()) == 0.0
    out.backward()
    assert m.grad is not None and torch.equal(m.grad, torch.zeros_like(m))


@pytest.mark.parametrize("measure", MEASURES)
def test_gradcheck_away_from_kinks(measure):
    g = torch.Generator().manual_seed(3)
    m = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: ctv_norm(x, measure, "mean"), (m,))


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_duplicate_and_zero_rows_match_reference(measure, reduction):
    """Zero distances and tied coordinates: value and (zero / min-norm / first-argmax)
    subgradient equal the float64 reference's."""
    m = torch.zeros(6, 4)
    m[3:] = torch.tensor([1.0, 2.0, 2.0, -1.0])
    m[5, 0] = 3.0
    v, g = value_and_grad(lambda x: ctv_norm(x, measure, reduction), m.double())
    rv, rg = value_and_grad(lambda x: ctv_torch(x, measure, reduction), m.double())
    assert v == pytest.approx(rv, rel=1e-12)
    torch.testing.assert_close(g, rg, rtol=1e-12, atol=1e-12)


def test_l1_ties_get_the_minimum_norm_subgradient():
    """Tied values share their coefficients (each tied pair's sign(0) = 0): a constant
    dimension and dead ReLU units get exactly the float64 reference's gradient (the old
    sort order gave a constant dimension gradients up to +-(H - 1))."""
    g = torch.Generator().manual_seed(0)
    m = torch.relu(torch.randn(16, 6, generator=g, dtype=torch.float64))  # ~half exact zeros
    m[:, 0] = 0.25  # a constant dimension
    m[5:9, 1] = m[4, 1]  # a run of ties among other values
    v, grad = value_and_grad(lambda x: ctv_sum_l1(x), m)
    rv, rgrad = value_and_grad(lambda x: ctv_torch(x, "l1", "sum"), m)
    assert v == pytest.approx(rv, rel=1e-12)
    torch.testing.assert_close(grad, rgrad, rtol=0, atol=1e-12)
    assert torch.equal(grad[:, 0], torch.zeros(16))
    # the minimum-norm subgradient: no other choice of the tied signs has a smaller norm
    assert grad.norm() <= rgrad.norm() + 1e-12


@pytest.mark.parametrize("block", [4 * 3, 5 * 3, 64 * 3])
def test_linf_tiles_respect_the_block_bound_and_match(block):
    """``block_elements`` bounds the (P, P, h) tile (an honest bound, several tiles here)."""
    m = torch.randn(23, 3, dtype=torch.float64)
    v, g = value_and_grad(lambda x: ctv_sum_linf(x, block), m)
    rv, rg = value_and_grad(lambda x: ctv_torch(x, "linf", "sum"), m)
    assert v == pytest.approx(rv, rel=1e-12)
    torch.testing.assert_close(g, rg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [5, 40, 300])
def test_gradcheck_multi_tile_kernels(block):
    """Small budgets force many tiles: the multi-tile gradient code of every kernel and the
    Gram kernel's multi-chunk branch (H = 48 columns > one chunk) run under gradcheck."""
    g = torch.Generator().manual_seed(block)
    m = torch.randn(13, 3, generator=g, dtype=torch.float64, requires_grad=True)
    for measure in ("l2", "linf"):
        assert torch.autograd.gradcheck(lambda x, ms=measure: ctv_sum(x, ms, block), (m,))
    z = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.arange(3).repeat(4)
    i, j = torch.triu_indices(12, 12, 1)
    keep = labels[i] != labels[j]
    i, j = i[keep], j[keep]
    assert i.numel() == 48
    assert torch.autograd.gradcheck(lambda x: ctv_l2_pairs_gram(x, i, j, block), (z,))
    v, grad = value_and_grad(lambda x: ctv_l2_pairs_gram(x, i, j, block), z.detach())
    rv, rgrad = value_and_grad(lambda x: ctv_torch(x[i] - x[j], "l2", "sum"), z.detach())
    assert v == pytest.approx(rv, rel=1e-12)
    torch.testing.assert_close(grad, rgrad, rtol=1e-10, atol=1e-12)


def test_default_reduction_is_mean_as_the_regularizer():
    m = torch.randn(6, 3, dtype=torch.float64)
    assert float(ctv_norm(m)) == pytest.approx(ctv_ref(m.tolist(), "l2", "mean"))


def test_linf_subgradient_is_argmax_sign():
    m = torch.tensor([[0.0, 0.0], [3.0, -1.0]], requires_grad=True)
    ctv_sum_linf(m).backward()
    assert torch.equal(m.grad, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))


def test_bf16_under_autocast_computes_in_float32():
    m = torch.randn(30, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ctv_norm(m.to(torch.bfloat16), "l2")
    assert got.dtype == torch.float32
    want = ctv_norm(m.to(torch.bfloat16).float(), "l2")
    assert float(got) == pytest.approx(float(want), rel=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"unknown measure 'l3'.*l2, l1, linf, l2sq"):
        ctv_norm(torch.randn(3, 2), "l3")
    with pytest.raises(ValueError, match="unknown reduction 'avg'"):
        ctv_norm(torch.randn(3, 2), "l2", "avg")
    with pytest.raises(ValueError, match="2-D tensor"):
        ctv_norm(torch.randn(3), "l2")


_mats = hnp.arrays(
    dtype="float64",
    shape=st.tuples(st.integers(2, 8), st.integers(1, 4)),
    elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=40, deadline=None)
@given(m=_mats, a=st.floats(-5, 5, allow_nan=False))
def test_absolute_homogeneity(m, a):
    t = torch.from_numpy(m)
    for measure in ("l2", "l1", "linf"):
        got = float(ctv_norm(a * t, measure))
        assert got == pytest.approx(abs(a) * float(ctv_norm(t, measure)), rel=1e-9, abs=1e-9)
    # l2sq is not a norm: it is 2-homogeneous instead
    got = float(ctv_norm(a * t, "l2sq"))
    assert got == pytest.approx(a * a * float(ctv_norm(t, "l2sq")), rel=1e-9, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), rows=st.integers(2, 8), cols=st.integers(1, 4))
def test_triangle_inequality(data, rows, cols):
    el = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
    a = torch.from_numpy(data.draw(hnp.arrays("float64", (rows, cols), elements=el)))
    b = torch.from_numpy(data.draw(hnp.arrays("float64", (rows, cols), elements=el)))
    for measure in ("l2", "l1", "linf"):
        lhs = float(ctv_norm(a + b, measure))
        rhs = float(ctv_norm(a, measure)) + float(ctv_norm(b, measure))
        assert lhs <= rhs + 1e-9 * (1 + rhs)


def test_l2sq_breaks_triangle_inequality():
    a = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    assert float(ctv_norm(2 * a, "l2sq")) > 2 * float(ctv_norm(a, "l2sq"))
    assert math.isclose(float(ctv_norm(a, "l2sq")), 1.0)


@pytest.mark.parametrize("masked", [False, True])
def test_l1_tie_runs_sparse_equals_dense(masked):
    """The CPU's sparse tie bookkeeping (tied neighbours only) and the accelerators' dense
    one (cummax / cummin over every rank) give the same averaged coefficients, on rows full
    of runs (small integers) including runs at both ends, with and without masked rows."""
    from dasl.dar.ctv import _tie_averaged_dense, _tie_averaged_sparse

    gen = torch.Generator().manual_seed(0)
    h = 40
    values = torch.randint(0, 6, (7, h), generator=gen).double().sort(dim=1).values
    values[0] = 3.0  # one run over the whole row
    h_valid: int | torch.Tensor = h
    inside = None
    rank = torch.arange(h, dtype=torch.float64)
    if masked:
        h_valid = torch.tensor(31.0, dtype=torch.float64)
        inside = rank < h_valid
        values[:, 31:] = math.inf
    coef = 2.0 * rank - h_valid + 1.0
    if inside is not None:
        coef = torch.where(inside, coef, 0.0)
    change = values[:, 1:] != values[:, :-1]
    dense = _tie_averaged_dense(change, h_valid, inside, torch.float64)
    sparse = _tie_averaged_sparse(change, h_valid, coef, inside)
    assert torch.equal(dense, sparse)
    # Each run's coefficients sum to those of its ranks (the subgradient set is preserved).
    assert torch.allclose(sparse.sum(1), coef.expand_as(values).sum(1))
    assert not torch.equal(sparse, coef.expand_as(values))  # there were runs to average
