"""The fused exact l2 kernel (#19) against float64 autograd on explicit differences.

On the CPU the kernel runs in Triton's interpreter (slow per operation: small N only). The
issue's target is 1e-6 relative on value and gradient; the float32 arithmetic of the kernel
measures 1e-8 .. 1e-7 on these cases (docs/METHOD-NOTES.md, "Fused exact l2 kernel").
"""

from __future__ import annotations

import pytest
import torch
from dar_reference import columns_torch, ctv_torch, pair_indices, value_and_grad
from test_conditioning import CASES

from dasl.dar import difference_alignment
from dasl.dar.regularizer import DifferenceAlignmentRegularizer, use_triton

pytest.importorskip("triton")

RTOL = 1e-6
DIFFS = ["signed", "ordered"]


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want).norm() / want.norm().clamp_min(1e-300))


def _labels(pattern: str, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    if pattern == "random":
        return torch.randint(0, 4, (n,), generator=g)
    if pattern == "distinct":
        return torch.randperm(n, generator=g) * 7 - 20  # all different, negative ones too
    if pattern == "two-unbalanced":
        return (torch.arange(n) % 5 == 0).long()
    raise AssertionError(pattern)


def _check(z: torch.Tensor, y: torch.Tensor, difference: str, reduction: str = "mean") -> None:
    pairs = pair_indices(y.tolist(), difference)

    def ref(x):
        return ctv_torch(columns_torch(x, pairs, difference), "l2", reduction)

    def ours(x):
        return difference_alignment(
            x, y, "l2", difference=difference, reduction=reduction, backend="triton"
        )

    v, g = value_and_grad(ours, z)
    v64, g64 = value_and_grad(ref, z.double())
    assert g.dtype == z.dtype
    assert v == pytest.approx(v64, rel=RTOL, abs=1e-30)
    assert _rel(g, g64) < RTOL


@pytest.mark.parametrize("pattern", ["random", "distinct", "two-unbalanced"])
@pytest.mark.parametrize("difference", DIFFS)
def test_random_batches_match_float64(pattern, difference):
    n, h = (13, 5) if pattern == "distinct" else (17, 6)
    z = torch.randn(n, h, generator=torch.Generator().manual_seed(len(pattern)))
    _check(z, _labels(pattern, n), difference, reduction="sum")


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("difference", DIFFS)
def test_audit_cases_float32_match_float64(case, difference):
    z, y = CASES[case]  # float32, N = 24, h = 16 (tests/dar/test_conditioning.py)
    _check(z, y, difference)


def test_float64_input_keeps_float64():
    z = torch.randn(9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _check(z, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2]), "signed")


def test_one_class_is_zero_with_zero_gradient():
    z = torch.randn(7, 4, requires_grad=True)
    r = difference_alignment(z, torch.zeros(7, dtype=torch.long), "l2", backend="triton")
    r.backward()
    assert float(r.detach()) == 0.0
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_duplicate_rows_give_finite_gradient():
    # every row three times: many zero distances
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(6)).repeat(3, 1)
    y = torch.tensor([0, 1, 2, 3] * 3)
    _, g = value_and_grad(lambda x: difference_alignment(x, y, "l2", backend="triton"), z)
    assert torch.isfinite(g).all()
    _check(z, y, "ordered")


def test_module_and_backend_choice():
    reg = DifferenceAlignmentRegularizer(measure="l2", backend="triton")
    z = torch.randn(8, 3, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    want = difference_alignment(z, y, "l2", backend="torch")
    assert float(reg(z, y)) == pytest.approx(float(want), rel=1e-6)
    assert "backend='triton'" in repr(reg)
    assert not use_triton("auto", torch.device("cpu"))  # auto: torch on the CPU
    assert not use_triton("torch", torch.device("cuda"))
    assert use_triton("triton", torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        DifferenceAlignmentRegularizer(backend="cuda")


def test_abs_differences_fall_back_to_torch():
    z = torch.randn(8, 3, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    got = difference_alignment(z, y, "l2", difference="abs", backend="triton")
    want = difference_alignment(z, y, "l2", difference="abs", backend="torch")
    assert torch.equal(got, want)


def test_kernel_compiles_for_a_gpu_without_one():
    """The interpreter runs the kernel as Python; this checks that Triton's compiler accepts
    it (types, loop-carried values, the block-level branches) down to a cubin for sm_80."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from dasl.dar import triton_l2

    sig = {name: "*fp32" for name in ("dhi", "dlo", "xn", "xc", "wn", "wc", "part")}
    sig.update({"codes": "*i32", "blk_i": "*i32", "blk_j": "*i32", "n": "i32"})
    sig.update({"nb": "i32", "ORDERED": "constexpr", "B": "constexpr"})
    consts = {"ORDERED": True, "B": 4}
    src = ASTSource(fn=triton_l2._compiled(False), signature=sig, constexprs=consts)
    try:
        compiled = triton.compile(src, target=GPUTarget("cuda", 80, 32))
    except (ImportError, RuntimeError, FileNotFoundError) as exc:  # no CUDA backend / ptxas
        pytest.skip(f"triton cannot compile for CUDA here: {exc}")
    assert "cubin" in compiled.asm


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("difference", DIFFS)
def test_compiled_kernel_on_cuda_matches_float64(difference):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(96, 32, generator=g)
    y = torch.randint(0, 12, (96,), generator=g)
    pairs = pair_indices(y.tolist(), difference)
    v, grad = value_and_grad(
        lambda x: difference_alignment(x, y.cuda(), "l2", difference=difference, backend="auto"),
        z.cuda(),
    )
    v64, g64 = value_and_grad(
        lambda x: ctv_torch(columns_torch(x, pairs, difference), "l2", "mean"), z.double()
    )
    assert v == pytest.approx(v64, rel=RTOL)
    assert _rel(grad.cpu(), g64) < RTOL
