"""The fused exact l1 / linf kernel (#19) against independent float64 references.

Small batches: explicit Python loops over every column pair (``dar_reference.exact_ref`` and
``exact_grad_ref``); the numerics audit's float32 batches: float64 autograd on explicit
columns. Both subgradients are integers, so with ``reduction="sum"`` the kernel's gradient
must equal the loops' exactly (ties included). On the CPU the kernel runs in Triton's
interpreter: small N only.
"""

from __future__ import annotations

import pytest
import torch
from dar_reference import (
    columns_torch,
    ctv_torch,
    exact_grad_ref,
    exact_ref,
    pair_indices,
    value_and_grad,
)
from test_conditioning import CASES, _clusters

from dasl.dar import difference_alignment, triton_lp
from dasl.dar.pairs import class_codes
from dasl.dar.regularizer import fused_pays, fused_supported, use_triton

pytest.importorskip("triton")

RTOL = 1e-6
MEASURES = ["l1", "linf"]
DIFFS = ["signed", "ordered", "abs"]


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want).norm() / want.norm().clamp_min(1e-300))


def _labels(pattern: str, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(11)
    if pattern == "random":
        return torch.randint(0, 3, (n,), generator=g) * 5 - 3
    if pattern == "all-but-one":  # one item of another class: N - 1 columns, a shared end
        y = torch.zeros(n, dtype=torch.long)
        y[n // 2] = 4
        return y
    if pattern == "distinct":
        return torch.randperm(n, generator=g)
    raise AssertionError(pattern)


def _fused(measure: str, difference: str, y: torch.Tensor, reduction: str = "sum"):
    return lambda x: difference_alignment(
        x, y, measure, difference=difference, reduction=reduction, backend="triton"
    )


def _check_loops(z: torch.Tensor, y: torch.Tensor, measure: str, difference: str) -> None:
    v, g = value_and_grad(_fused(measure, difference, y), z)
    want = exact_ref(z.tolist(), y.tolist(), measure, difference, "sum")
    assert v == pytest.approx(want, rel=RTOL, abs=1e-30)
    assert torch.equal(g, torch.tensor(exact_grad_ref(z, y, measure, difference), dtype=z.dtype))


@pytest.mark.parametrize("pattern", ["random", "all-but-one", "distinct"])
@pytest.mark.parametrize("difference", DIFFS)
@pytest.mark.parametrize("measure", MEASURES)
def test_small_batches_match_loops(measure, difference, pattern):
    n, h = {"random": (9, 4), "all-but-one": (8, 5), "distinct": (6, 3)}[pattern]
    z = torch.randn(n, h, generator=torch.Generator().manual_seed(n + h), dtype=torch.float64)
    _check_loops(z, _labels(pattern, n), measure, difference)


@pytest.mark.parametrize("difference", DIFFS)
def test_linf_ties_take_the_first_coordinate_across_chunks(difference):
    # integer data: many exactly equal |v_k|; the largest is at 3 and again at 67 (the
    # interpreter's second 64-wide chunk) for every pair, and at 5 in some
    z = torch.zeros(9, 70, dtype=torch.float64)
    z[:, 3] = torch.tensor([0.0, 1, 4, 9, 16, 9, 4, 1, 0])
    z[:, 67] = z[:, 3]
    z[::2, 5] = z[::2, 3]
    z[:, 1] = torch.tensor([2.0, -2, 2, -2, 0, 0, 1, 1, 3])
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    _check_loops(z, y, "linf", difference)
    for measure in MEASURES:  # and the same subgradient as the torch path
        ours = value_and_grad(_fused(measure, difference, y), z)
        torch_path = value_and_grad(
            lambda x, m=measure: difference_alignment(
                x, y, m, difference=difference, reduction="sum", backend="torch"
            ),
            z,
        )
        assert ours[0] == torch_path[0]
        assert torch.equal(ours[1], torch_path[1])


@pytest.mark.parametrize("measure", MEASURES)
def test_small_blocks_many_programs_and_chunks(measure):
    # B = 8 column pairs, h chunks of 2: 28 pairs in 4 blocks (10 programs, the triangular
    # decode of every program id) and 2 chunks
    z = torch.randn(8, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 2, 0, 2, 2, 1])
    codes = class_codes(y)[0]
    for difference in ("ordered", "abs"):
        v, g = triton_lp.lp_fused_forward(z, codes, measure, difference, True, block=8, block_h=2)
        assert float(v) == pytest.approx(
            exact_ref(z.tolist(), y.tolist(), measure, difference, "sum")
        )
        assert torch.equal(g, torch.tensor(exact_grad_ref(z, y, measure, difference)))


def _audit_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    cases = dict(CASES)  # float32, N = 24, h = 16 (tests/dar/test_conditioning.py)
    cases["tight-offset-100"] = _clusters(4, 6, 16, 1e-4, seed=3, offset=100.0)
    return cases


AUDIT = _audit_cases()


# ordered differs from signed by the columns' signs only (the loop tests cover it): left out
# here to keep the interpreter's time down
@pytest.mark.parametrize("case", list(AUDIT))
@pytest.mark.parametrize("difference", ["signed", "abs"])
@pytest.mark.parametrize("measure", MEASURES)
def test_audit_cases_float32_match_float64(measure, difference, case):
    z, y = AUDIT[case]
    pairs = pair_indices(y.tolist(), difference)
    v, g = value_and_grad(_fused(measure, difference, y, "mean"), z)
    v64, g64 = value_and_grad(
        lambda x: ctv_torch(columns_torch(x, pairs, difference), measure), z.double()
    )
    assert g.dtype == torch.float32
    assert v == pytest.approx(v64, rel=RTOL, abs=1e-30)
    assert _rel(g, g64) < RTOL


@pytest.mark.parametrize("labels", [[3, 3, 3, 3, 3], [1, 2], [7]])
def test_fewer_than_two_columns_give_zero_and_zero_grad(labels):
    z = torch.randn(len(labels), 3, requires_grad=True)
    out = difference_alignment(z, torch.tensor(labels), "linf", backend="triton")
    out.backward()
    assert out.detach().item() == 0.0
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_dispatch(monkeypatch):
    calls: list[str] = []
    original = triton_lp.lp_fused_forward

    def counting(z, codes, measure, *args, **kwargs):
        calls.append(measure)
        return original(z, codes, measure, *args, **kwargs)

    monkeypatch.setattr(triton_lp, "lp_fused_forward", counting)
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(9))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 3])
    for measure in MEASURES:
        fused = difference_alignment(z, y, measure, backend="triton")
        assert calls[-1:] == [measure]  # forced: the kernel, in the interpreter on the CPU
        for backend in ("auto", "torch"):  # auto on the CPU: the torch path
            assert float(difference_alignment(z, y, measure, backend=backend)) == pytest.approx(
                float(fused), rel=1e-6
            )
    assert calls == MEASURES
    # on CUDA "auto" picks the fused kernel for linf (every difference), l1 keeps its sort
    assert all(fused_supported(m, d) for m in MEASURES for d in DIFFS)
    assert fused_pays("linf", "auto") and not fused_pays("l1", "auto")
    assert fused_pays("l1", "triton")
    assert use_triton("auto", torch.device("cuda"))


@pytest.mark.parametrize("linf", [False, True])
def test_kernel_compiles_for_a_gpu_without_one(linf):
    """Triton's compiler accepts the kernel and its device functions down to an sm_80 cubin
    (the interpreter runs them as Python)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = triton_lp._compiled(False)  # jit, with the device functions bound
    sig = {"zh": "*fp32", "zl": "*fp32", "codes": "*i32", "pair_i": "*i32", "pair_j": "*i32"}
    sig.update({"gz": "*i32", "part": "*fp32", "n_pairs": "i32", "nb": "i32", "h": "i32"})
    sig.update({name: "constexpr" for name in ("LINF", "DIFF", "B", "BH")})
    consts = {"LINF": linf, "DIFF": 1, "B": 16, "BH": 4}
    try:
        compiled = triton.compile(
            ASTSource(fn=kernel, signature=sig, constexprs=consts),
            target=GPUTarget("cuda", 80, 32),
        )
    except (ImportError, RuntimeError, FileNotFoundError) as exc:  # no CUDA backend / ptxas
        pytest.skip(f"triton cannot compile for CUDA here: {exc}")
    assert "cubin" in compiled.asm


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("measure", MEASURES)
def test_compiled_kernel_on_cuda_matches_float64(measure):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(40, 24, generator=g)
    y = torch.randint(0, 6, (40,), generator=g)
    for difference in DIFFS:
        pairs = pair_indices(y.tolist(), difference)
        v, grad = value_and_grad(_fused(measure, difference, y.cuda(), "mean"), z.cuda())
        v64, g64 = value_and_grad(
            lambda x, d=difference, p=pairs: ctv_torch(columns_torch(x, p, d), measure),
            z.double(),
        )
        assert v == pytest.approx(v64, rel=RTOL)
        assert _rel(grad.cpu(), g64) < RTOL


def test_too_many_columns_refused_with_one_line():
    z = torch.randn(6, 2)
    y = torch.arange(6)  # 15 inter-class pairs
    with pytest.raises(ValueError, match="limit: 10 columns"):
        difference_alignment(z, y, "linf", backend="triton", max_columns=10)
