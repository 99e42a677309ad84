import itertools
import math
import statistics

import pytest
import torch
from dar_reference import (
    columns_torch,
    ctv_ref,
    ctv_torch,
    diff_ref,
    exact_ref,
    g_measure,
    oriented,
    pair_columns,
    pair_indices,
    value_and_grad,
)

from dasl.dar import DifferenceAlignmentRegularizer, difference_alignment
from dasl.dar.pairs import chain_from_permutation

MEASURES = ["l2", "l1", "linf", "l2sq"]
DIFFS = ["signed", "abs", "ordered"]
REDS = ["sum", "mean"]
BATCHES = [
    (5, 1, [0, 1, 0, 2, 1]),
    (8, 3, [0, 0, 1, 1, 2, 2, 3, 3]),
    (12, 7, [0, 1, 2] * 4),
    (9, 2, [4, 4, 4, 4, 4, 4, 1, 2, 2]),
    (6, 4, [1] * 6),  # single class
]


def _batch(n, h, seed, duplicate=True):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, h, generator=g, dtype=torch.float64)
    if duplicate and n > 3:
        z[3] = z[0]  # a duplicate row (also creates equal differences)
    return z


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"N{b[0]}h{b[1]}")
def test_exact_matches_loops(measure, difference, reduction, batch):
    n, h, labels = batch
    z = _batch(n, h, seed=n * 7 + h)
    want = exact_ref(z.tolist(), labels, measure, difference, reduction)
    kernels = ["gram", "columns"] if measure == "l2" and difference != "abs" else ["auto"]
    for kernel in kernels:
        got = difference_alignment(
            z, torch.tensor(labels), measure, "exact", difference, reduction, l2_kernel=kernel
        )
        assert got.dtype == torch.float64
        assert float(got) == pytest.approx(want, rel=1e-9, abs=1e-10), kernel


def _chain_ref(z, labels, measure, difference, reduction, num_chains, seed):
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(num_chains):
        perm = torch.randperm(len(labels), generator=g).tolist()
        src, dst = chain_from_permutation(perm, labels)
        steps = [oriented(a, b, labels, difference) for a, b in zip(src, dst, strict=True)]
        cols = [diff_ref(z[a], z[b], difference) for a, b in steps]
        vals.append(ctv_ref(cols, measure, reduction))
    return sum(vals) / num_chains


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
@pytest.mark.parametrize("reduction", REDS)
@pytest.mark.parametrize("batch", BATCHES[:4], ids=lambda b: f"N{b[0]}h{b[1]}")
def test_chain_matches_loops(measure, difference, reduction, batch):
    n, h, labels = batch
    z = _batch(n, h, seed=n + h)
    reg = DifferenceAlignmentRegularizer(
        measure,
        "chain",
        difference,
        reduction,
        num_chains=3,
        generator=torch.Generator().manual_seed(11),
    )
    got = reg(z, torch.tensor(labels))
    want = _chain_ref(z.tolist(), labels, measure, difference, reduction, 3, 11)
    assert float(got) == pytest.approx(want, rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("measure", MEASURES)
def test_poster_identity(measure):
    labels = [0, 1, 2, 0, 1, 1, 3]
    z = _batch(7, 3, seed=5).tolist()
    cols = pair_columns(z, labels, "signed")
    ordered = sum(
        g_measure([a - b for a, b in zip(cols[p], cols[q], strict=True)], measure)
        for p in range(len(cols))
        for q in range(len(cols))
        if p != q
    )
    zt = torch.tensor(z, dtype=torch.float64)
    got = difference_alignment(zt, torch.tensor(labels), measure, reduction="sum")
    assert ordered == pytest.approx(2 * float(got), rel=1e-10)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
def test_gradcheck_exact(measure, difference):
    z = _batch(7, 3, seed=1, duplicate=False).requires_grad_()
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    kernels = ["gram", "columns"] if measure == "l2" and difference != "abs" else ["auto"]
    for kernel in kernels:

        def f(x, kernel=kernel):
            return difference_alignment(x, y, measure, difference=difference, l2_kernel=kernel)

        assert torch.autograd.gradcheck(f, (z,))


@pytest.mark.parametrize("measure", MEASURES)
def test_gradcheck_chain_fixed_generator(measure):
    z = _batch(8, 3, seed=2, duplicate=False).requires_grad_()
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])

    def f(x):
        g = torch.Generator().manual_seed(4)  # same chains on every evaluation
        return difference_alignment(x, y, measure, "chain", num_chains=2, generator=g)

    assert torch.autograd.gradcheck(f, (z,))


def test_gram_and_columns_kernels_agree_on_gradient_float32():
    g = torch.Generator().manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(30, 16, generator=g), dim=1)
    y = torch.arange(10).repeat_interleave(3)
    grads, vals = [], []
    for kernel in ("gram", "columns"):
        x = z.clone().requires_grad_()
        v = difference_alignment(x, y, "l2", l2_kernel=kernel, block_elements=500)
        v.backward()
        grads.append(x.grad)
        vals.append(float(v.detach()))
    ref = difference_alignment(z.double(), y, "l2")
    assert vals[0] == pytest.approx(float(ref), rel=1e-5)
    assert vals[1] == pytest.approx(float(ref), rel=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
@pytest.mark.parametrize("estimator", ["exact", "chain"])
def test_duplicates_and_zero_rows_match_reference(measure, difference, estimator):
    """Zero rows, duplicate rows and equal differences (kinks everywhere): value and
    subgradient equal the float64 reference on explicit differences."""
    z = torch.zeros(6, 3, dtype=torch.float64)
    z[4] = torch.tensor([1.0, 0.5, -2.0])
    z[5] = z[4]
    labels = [0, 1, 2, 0, 1, 2]
    y = torch.tensor(labels)
    if estimator == "exact":
        steps = pair_indices(labels, difference)
    else:
        perm = torch.randperm(6, generator=torch.Generator().manual_seed(0)).tolist()
        src, dst = chain_from_permutation(perm, labels)
        steps = [oriented(a, b, labels, difference) for a, b in zip(src, dst, strict=True)]

    def ours(x):
        gen = torch.Generator().manual_seed(0)
        return difference_alignment(x, y, measure, estimator, difference, generator=gen)

    v, g = value_and_grad(ours, z)
    rv, rg = value_and_grad(lambda x: ctv_torch(columns_torch(x, steps, difference), measure), z)
    assert v == pytest.approx(rv, rel=1e-12, abs=1e-15)
    torch.testing.assert_close(g, rg, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("estimator", ["exact", "chain"])
@pytest.mark.parametrize("labels", [[2, 2, 2, 2], [1], [0, 1]])
def test_no_two_columns_gives_zero_and_zero_grad(measure, estimator, labels):
    z = torch.randn(len(labels), 3, requires_grad=True)
    out = difference_alignment(z, torch.tensor(labels), measure, estimator)
    assert out.detach().item() == 0.0 and out.dtype == torch.float32
    out.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_chain_expectation_matches_enumeration():
    labels = [0, 0, 1, 1, 2]
    z = _batch(5, 2, seed=9, duplicate=False)
    zl = z.tolist()
    values = []
    for perm in itertools.permutations(range(5)):
        src, dst = chain_from_permutation(list(perm), labels)
        cols = [diff_ref(zl[a], zl[b], "signed") for a, b in zip(src, dst, strict=True)]
        values.append(ctv_ref(cols, "l1", "mean"))
    expect = statistics.fmean(values)
    sd = statistics.pstdev(values)
    draws = 1200
    reg = DifferenceAlignmentRegularizer(
        "l1", "chain", num_chains=draws, generator=torch.Generator().manual_seed(123)
    )
    got = float(reg(z, torch.tensor(labels)))
    assert sd > 0
    assert abs(got - expect) < 4 * sd / math.sqrt(draws)
    # and it is not the exact estimator by accident
    exact = float(difference_alignment(z, torch.tensor(labels), "l1"))
    assert abs(exact - expect) > 1e-3


def test_chain_reproducible_with_seed():
    z = torch.randn(10, 4)
    y = torch.arange(5).repeat(2)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return float(difference_alignment(z, y, "l2", "chain", generator=g))

    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize("estimator", ["exact", "chain"])
@pytest.mark.parametrize("measure", MEASURES)
def test_bf16_autocast_gives_float32(estimator, measure):
    z = torch.randn(12, 8)
    y = torch.arange(4).repeat(3)
    zb = z.to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = difference_alignment(
            zb, y, measure, estimator, generator=torch.Generator().manual_seed(0)
        )
    assert out.dtype == torch.float32
    want = difference_alignment(
        zb.detach().float(), y, measure, estimator, generator=torch.Generator().manual_seed(0)
    )
    assert float(out.detach()) == pytest.approx(float(want), rel=1e-5)
    out.backward()
    assert zb.grad.dtype == torch.bfloat16 and torch.isfinite(zb.grad.float()).all()


def test_fp16_input_and_float64():
    z = torch.randn(8, 3)
    y = torch.tensor([0, 1] * 4)
    assert difference_alignment(z.half(), y).dtype == torch.float32
    assert difference_alignment(z.double(), y).dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"measure": "cosine"}, "^unknown measure 'cosine'; choose one of l2, l1, linf, l2sq$"),
        ({"estimator": "mc"}, "^unknown DAR estimator 'mc'; choose one of exact, chain$"),
        ({"estimator": "chian"}, r"choose one of exact, chain \(did you mean chain\?\)$"),
        ({"difference": "sq"}, "^unknown difference 'sq'; choose one of signed, abs, ordered$"),
        ({"reduction": "none"}, "^unknown reduction 'none'; choose one of sum, mean$"),
        ({"num_chains": 0}, "num_chains must be an integer >= 1, got 0"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DifferenceAlignmentRegularizer(**kwargs)
    with pytest.raises(ValueError, match=message):
        difference_alignment(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), **kwargs)


@pytest.mark.parametrize(
    ("z", "y", "message"),
    [
        (torch.randn(4), torch.tensor([0, 1, 0, 1]), "embeddings must be 2-D"),
        (torch.randn(4, 2), torch.tensor([[0, 1, 0, 1]]), "labels must be 1-D"),
        (
            torch.randn(100, 2),
            torch.zeros(99, dtype=torch.long),
            "labels has 99 entries, embeddings has 100 rows",
        ),
        (torch.randn(0, 2), torch.zeros(0, dtype=torch.long), "empty batch"),
        (torch.randn(4, 2), torch.tensor([0.0, 1.0, 0.0, 1.0]), "integer class ids"),
        (torch.randn(4, 2), torch.device("meta"), "labels are on meta but embeddings are on cpu"),
        (
            torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]),
            torch.tensor([0, 1]),
            "NaN or inf",
        ),
        (
            torch.tensor([[0.0, 1.0], [float("inf"), 0.0]]),
            torch.tensor([0, 1]),
            "NaN or inf",
        ),
    ],
)
def test_bad_inputs(z, y, message):
    if isinstance(y, torch.device):
        y = torch.zeros(z.shape[0], dtype=torch.long, device=y)
    with pytest.raises(ValueError, match=message):
        DifferenceAlignmentRegularizer()(z, y)


def test_ordered_does_not_depend_on_batch_order():
    """``ordered`` columns are oriented by label: shuffling the batch changes nothing (every
    estimator's exact path, l2sq closed form included); ``signed`` does change."""
    g = torch.Generator().manual_seed(2)
    z = torch.randn(10, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    perm = torch.randperm(10, generator=g)
    for measure in MEASURES:
        a = difference_alignment(z, y, measure, difference="ordered")
        b = difference_alignment(z[perm], y[perm], measure, difference="ordered")
        assert float(a) == pytest.approx(float(b), rel=1e-12), measure
    signed = [float(difference_alignment(x, t, "l2")) for x, t in ((z, y), (z[perm], y[perm]))]
    assert abs(signed[0] - signed[1]) > 1e-6


def test_ordered_has_no_orientation_flip_force_but_keeps_the_abc_one():
    """Two collapsed classes in batch order a, b, b, a: ``signed`` gets columns a-b and b-a
    (opposite orientations, pulled together: a shrinking force), ``ordered`` and ``abs`` get
    identical columns (CTV 0, gradient 0). Three collinear classes: z_a - z_c is the sum of
    z_a - z_b and z_b - z_c, so ``ordered`` still pulls them together (so does ``abs`` here:
    per coordinate the largest gap is the sum of the two others)."""
    a, b = [0.0, 1.0], [2.0, -1.0]
    z = torch.tensor([a, b, b, a], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])
    for difference, moves in (("signed", True), ("ordered", False), ("abs", False)):
        v, grad = value_and_grad(
            lambda x, d=difference: difference_alignment(x, y, "l2", difference=d), z
        )
        assert (v > 0) == moves and bool(grad.abs().sum() > 0) == moves, difference
    line = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    y3 = torch.tensor([0, 1, 2])
    for difference in ("ordered", "abs"):
        v, grad = value_and_grad(
            lambda x, d=difference: difference_alignment(x, y3, "l2", difference=d), line
        )
        # gradient descent moves a up and c down: towards each other
        assert v > 0 and float(grad[0, 0]) < 0 < float(grad[2, 0]), difference


def test_exact_refuses_a_huge_memory_bank_and_points_to_chain():
    """A PML CrossBatchMemory of 4,096 entries as ref_emb gives H ~ 9M columns: O(H^2)."""
    y = torch.arange(600).repeat_interleave(2)  # H ~ 720k > the 262,144 limit
    z = torch.randn(1200, 2)
    for measure in ("l2", "l1", "linf"):
        with pytest.raises(ValueError, match=r"718,800 inter-class pairs.*estimator='chain'"):
            difference_alignment(z, y, measure)
    # the O(N h) paths have no such limit
    assert torch.isfinite(difference_alignment(z, y, "l2sq"))
    assert torch.isfinite(difference_alignment(z, y, "l2", "chain"))
    small = difference_alignment(z[:40], y[:40], "l2", max_columns=10_000)
    with pytest.raises(ValueError, match="limit: 100 columns"):
        difference_alignment(z[:40], y[:40], "l2", max_columns=100)
    assert torch.isfinite(small)


@pytest.mark.parametrize("difference", ["signed", "ordered"])
def test_l2sq_closed_form_never_negative_and_zero_when_aligned(difference):
    """All columns equal (two classes of exact duplicates): S = 0 up to float64 rounding of
    the scale (|m|^2 ~ 1), never a negative number; gradient 0 up to the same rounding."""
    z = torch.cat([torch.full((5, 3), 0.3), torch.full((7, 3), -0.7)])
    y = torch.tensor([0] * 5 + [1] * 7)
    for dtype in (torch.float32, torch.float64):
        v, g = value_and_grad(
            lambda x: difference_alignment(x, y, "l2sq", difference=difference), z.to(dtype)
        )
        assert 0.0 <= v < 1e-14
        assert float(g.abs().max()) < 1e-12


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"N{b[0]}h{b[1]}")
def test_masked_pairs_match_selected_pairs(measure, difference, batch):
    """The accelerator path (all pairs, intra-class ones masked out) equals the loops and
    the CPU path (pairs selected), value and gradient, for every kernel."""
    n, h, labels = batch
    z = _batch(n, h, seed=n * 3 + h)
    y = torch.tensor(labels)
    want = exact_ref(z.tolist(), labels, measure, difference, "mean")
    kernels = ["gram", "columns"] if measure == "l2" and difference != "abs" else ["auto"]
    for kernel in kernels:

        def run(x, masked, kernel=kernel):
            return difference_alignment(
                x, y, measure, difference=difference, l2_kernel=kernel, masked_pairs=masked
            )

        v, g = value_and_grad(lambda x, run=run: run(x, True), z)
        _, g0 = value_and_grad(lambda x, run=run: run(x, False), z)
        assert v == pytest.approx(want, rel=1e-9, abs=1e-12), kernel
        # duplicate rows: a zero distance that rounds to +1e-17 instead of -1e-17 gets a huge
        # weight times a zero difference, ~1e-11 of float64 noise (invisible in float32)
        torch.testing.assert_close(g, g0, rtol=1e-7, atol=1e-9)


def test_gram_kernel_index_add_path(monkeypatch):
    """The Gram kernel's gradient scatter used off the CPU (index_add_), run on the CPU."""
    from dasl.dar import exact_l2

    z = _batch(12, 20, seed=4, duplicate=False)
    y = torch.tensor([0, 1, 2] * 4)
    v0, g0 = value_and_grad(lambda x: difference_alignment(x, y, l2_kernel="gram"), z)
    monkeypatch.setattr(exact_l2, "CSR_DEVICES", ())
    for block in (None, 50):
        v, g = value_and_grad(
            lambda x, b=block: difference_alignment(x, y, l2_kernel="gram", block_elements=b), z
        )
        assert v == pytest.approx(v0, rel=1e-12)
        torch.testing.assert_close(g, g0, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
@pytest.mark.parametrize("kernel", ["gram", "columns"])
def test_exact_paths_have_no_data_dependent_ops(measure, difference, kernel):
    """On meta tensors (shapes, no data) any op whose result shape or control flow depends on
    values (nonzero, boolean indexing, unique, item/bool, bincount) raises: the masked exact
    path, forward and backward, has none, so on a GPU it never waits for the device."""
    from dasl.dar.regularizer import _exact, _finish

    z = torch.randn(12, 20, dtype=torch.float64, device="meta", requires_grad=True)
    y = torch.arange(4).repeat(3).to("meta")
    total, h_cols = _exact(z, y, measure, difference, None, kernel, 1 << 18, masked=True)
    out = _finish(total, h_cols, "mean", z)
    out.backward()
    assert out.device.type == "meta" and z.grad is not None and z.grad.shape == z.shape


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
def test_chain_paths_have_no_data_dependent_ops(measure, difference):
    """The chain (#19) on meta tensors: built from the labels by tensor ops, equal-label
    steps masked, forward and backward: nothing waits for the device on a GPU."""
    from dasl.dar.regularizer import _chain

    z = torch.randn(12, 20, dtype=torch.float64, device="meta", requires_grad=True)
    y = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 3, 3]).to("meta")
    out = _chain(z, y, measure, difference, "mean", 2, None, None)
    out.backward()
    assert out.device.type == "meta" and z.grad is not None and z.grad.shape == z.shape


def test_exact_l2_defaults_follow_the_device() -> None:
    """CPU: Gram tiles from h >= 16 and 2M-entry tiles; an accelerator: matmul (columns) tiles
    of 64M entries (what won on an H200; the values agree either way, gpu_suite checks it)."""
    from dasl.dar.ctv import L2_BLOCK_ELEMENTS_ACCELERATOR, default_block_elements
    from dasl.dar.exact_l2 import DEFAULT_BLOCK_ELEMENTS
    from dasl.dar.regularizer import _use_gram

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert _use_gram(120, 512, "auto", cpu) and not _use_gram(120, 8, "auto", cpu)
    assert not _use_gram(120, 512, "auto", cuda) and _use_gram(120, 512, "gram", cuda)
    assert default_block_elements("l2", cpu) == DEFAULT_BLOCK_ELEMENTS
    assert (
        default_block_elements("l2", cuda) == L2_BLOCK_ELEMENTS_ACCELERATOR > DEFAULT_BLOCK_ELEMENTS
    )
