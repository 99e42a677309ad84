"""float32 DAR on ill-conditioned batches against float64 references (issue #11).

Tight clusters, class-sorted batches, offsets, a collapsed class and one huge row: every
estimator x measure x difference must give the float64 value and gradient of the same float32
inputs to float32 rounding (the reference is autograd on explicit differences in float64). The
issue's measured failures (before the fix) are noted beside the cases that caught them.
"""

from __future__ import annotations

import pytest
import torch
from dar_reference import columns_torch, ctv_torch, oriented, pair_indices, value_and_grad

from dasl.dar import difference_alignment
from dasl.dar.pairs import chain_from_permutation

MEASURES = ["l2", "l1", "linf", "l2sq"]
DIFFS = ["signed", "abs", "ordered"]
# float32 rounding of the result, with room for the final float64 -> float32 cast and the
# sum of many terms: the old code was off by 1e-3 .. 10 on these cases.
RTOL = 2e-6


def _clusters(classes, per, h, noise, seed, *, sort=True, offset=0.0, normalize=True):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(classes, h, generator=g)
    y = torch.arange(classes).repeat_interleave(per)
    if not sort:
        y = y[torch.randperm(len(y), generator=g)]
    z = mu[y] + noise * torch.randn(len(y), h, generator=g)
    if normalize:
        z = torch.nn.functional.normalize(z, dim=1)
    return z + offset, y


def _cases():
    tight, y = _clusters(4, 6, 16, 1e-4, seed=0)
    shuffled, y_shuffled = _clusters(4, 6, 16, 1e-3, seed=1, sort=False, offset=30.0)
    collapsed = tight.clone()
    collapsed[y == 2] = collapsed[y == 2][0].clone()  # one class of exact duplicates
    big = _clusters(4, 6, 16, 0.3, seed=2)[0]
    big[5] *= 1000.0
    return {
        "tight-sorted": (tight, y),
        "tight-shuffled-offset": (shuffled, y_shuffled),
        "collapsed-class": (collapsed, y),
        "one-1000x-row": (big, y),
    }


CASES = _cases()


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want).norm() / want.norm().clamp_min(1e-300))


def _check(ours, ref, z32):
    v32, g32 = value_and_grad(ours, z32)
    v64, g64 = value_and_grad(ref, z32.double())
    assert v32 >= 0.0
    assert v32 == pytest.approx(v64, rel=RTOL, abs=1e-30)
    assert g32.dtype == torch.float32
    assert _rel(g32, g64) < RTOL


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
def test_exact_float32_matches_float64(case, measure, difference):
    z, y = CASES[case]
    pairs = pair_indices(y.tolist(), difference)

    def ref(x):
        return ctv_torch(columns_torch(x, pairs, difference), measure)

    kernels = ["gram", "columns"] if measure == "l2" and difference != "abs" else ["auto"]
    for kernel in kernels:

        def ours(x, kernel=kernel):
            return difference_alignment(x, y, measure, difference=difference, l2_kernel=kernel)

        _check(ours, ref, z)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
def test_chain_float32_matches_float64(case, measure, difference):
    z, y = CASES[case]
    labels = y.tolist()
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(7)).tolist()
    src, dst = chain_from_permutation(perm, labels)
    steps = [oriented(a, b, labels, difference) for a, b in zip(src, dst, strict=True)]

    def ref(x):
        return ctv_torch(columns_torch(x, steps, difference), measure)

    def ours(x):
        gen = torch.Generator().manual_seed(7)
        return difference_alignment(x, y, measure, "chain", difference, generator=gen)

    _check(ours, ref, z)


@pytest.mark.parametrize("noise", [1e-4, 1e-3])
def test_signed_l2sq_two_tight_clusters_class_sorted(noise):
    """The issue's case: the cancelling closed form gave -3.1e-7 for a float64 3.8e-8."""
    z, y = _clusters(2, 60, 128, noise, seed=3)
    pairs = pair_indices(y.tolist(), "signed")

    def ref(x):
        m = columns_torch(x, pairs, "signed")
        return m.shape[0] * (m - m.mean(0)).square().sum() / (len(pairs) * (len(pairs) - 1) / 2)

    _check(lambda x: difference_alignment(x, y, "l2sq"), ref, z)


def _straightforward_l2(x, pairs):
    """What a user would write: explicit differences, cdist without the mm identity."""
    m = columns_torch(x, pairs, "signed")
    total = x.new_zeros(())
    for a in range(0, m.shape[0], 128):
        total = (
            total
            + torch.cdist(m[a : a + 128], m, compute_mode="donot_use_mm_for_euclid_dist").sum()
        )
    return total / 2 / (m.shape[0] * (m.shape[0] - 1) / 2)


def _l2_cases():
    out = {}
    for noise in (1e-5, 1e-4):
        out[f"collapsed-classes-{noise}"] = _clusters(4, 8, 64, noise, seed=4)
    z, y = _clusters(4, 8, 64, 1.0, seed=5)
    one = z.clone()
    one[y == 1] = torch.nn.functional.normalize(
        one[y == 1][0] + 1e-5 * torch.randn(8, 64, generator=torch.Generator().manual_seed(6)),
        dim=1,
    )
    out["one-collapsed-class"] = (one, y)
    big = z.clone()
    big[3] *= 1000.0
    out["one-1000x-row"] = (big, y)
    return out


@pytest.mark.parametrize(("name", "case"), list(_l2_cases().items()))
@pytest.mark.parametrize("kernel", ["gram", "columns"])
def test_l2_gradient_no_worse_than_straightforward_float32(name, case, kernel):
    """Old kernels dropped squared distances below 32 eps max||m||^2: 3e-2 (collapsed
    classes), 2e-3 (one collapsed class), 0.3-0.4 (one 1000x row) relative gradient error."""
    z, y = case
    pairs = pair_indices(y.tolist(), "signed")
    _, g64 = value_and_grad(lambda x: _straightforward_l2(x, pairs), z.double())
    _, g_plain = value_and_grad(lambda x: _straightforward_l2(x, pairs), z)
    _, g = value_and_grad(lambda x: difference_alignment(x, y, "l2", l2_kernel=kernel), z)
    assert _rel(g, g64) <= max(_rel(g_plain, g64), RTOL)
    assert _rel(g, g64) < RTOL
