"""The fused exact squared-l2 kernels (#19) against float64 autograd on explicit columns.

Reference: every inter-class column ``z_a - z_b`` (or ``|.|``) built by loops
(``dar_reference.pair_indices``), every column pair broadcast. On the CPU the kernels run
in Triton's interpreter: small N only, one size with two row blocks and two ``h`` chunks.
"""

from __future__ import annotations

import pytest
import torch
from dar_reference import columns_torch, ctv_torch, pair_indices, value_and_grad
from test_conditioning import CASES, _clusters

from dasl.dar import difference_alignment

pytest.importorskip("triton")

RTOL = 1e-6
DIFFS = ["signed", "abs", "ordered"]


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want).norm() / want.norm().clamp_min(1e-300))


def _check(z, y, difference, reduction="mean", rtol=RTOL):
    pairs = pair_indices(y.tolist(), difference)

    def ref(x):
        return ctv_torch(columns_torch(x, pairs, difference), "l2sq", reduction)

    def ours(x):
        return difference_alignment(
            x, y, "l2sq", difference=difference, reduction=reduction, backend="triton"
        )

    v, g = value_and_grad(ours, z)
    v64, g64 = value_and_grad(ref, z.double())
    assert g.dtype == z.dtype
    assert v == pytest.approx(v64, rel=rtol, abs=1e-30)
    assert _rel(g, g64) < rtol


@pytest.mark.parametrize("difference", DIFFS)
def test_two_blocks_two_chunks_match_float64(difference):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(34, 66, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (34,), generator=g) * 3 - 4
    _check(z, y, difference, reduction="sum", rtol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("difference", DIFFS)
def test_audit_cases_float32_match_float64(case, difference):
    z, y = CASES[case]  # float32, N = 24, h = 16 (tests/dar/test_conditioning.py)
    _check(z, y, difference)


@pytest.mark.parametrize("difference", DIFFS)
def test_two_tight_clusters_class_sorted(difference):
    # the case where the uncentred closed form went negative (#11)
    z, y = _clusters(2, 12, 8, 1e-4, seed=3)
    _check(z, y, difference)


@pytest.mark.parametrize("labels", [[2, 2, 2, 2], [1], [0, 1]])
def test_fewer_than_two_columns_give_zero_and_zero_grad(labels):
    z = torch.randn(len(labels), 3, requires_grad=True)
    out = difference_alignment(z, torch.tensor(labels), "l2sq", backend="triton")
    out.backward()
    assert out.detach().item() == 0.0
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_kernels_compile_for_a_gpu_without_one():
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from dasl.dar import triton_l2sq

    base = {"z": "*fp64", "codes": "*i32", "msum": "*fp64", "hcount": "*fp64"}
    tail = {"n": "i32", "h": "i32", "DIFF": "constexpr", "B": "constexpr", "BH": "constexpr"}
    mean_k, value_k = triton_l2sq._compiled(False)  # jit, with the device functions bound
    sigs = [
        (mean_k, {**base, **tail}),
        (value_k, {**base, "gz": "*fp64", "part": "*fp64", **tail}),
    ]
    for fn, sig in sigs:
        for diff in (1, 2):
            src = ASTSource(fn=fn, signature=sig, constexprs={"DIFF": diff, "B": 16, "BH": 16})
            try:
                compiled = triton.compile(src, target=GPUTarget("cuda", 80, 32))
            except (ImportError, RuntimeError, FileNotFoundError) as exc:  # no CUDA backend
                pytest.skip(f"triton cannot compile for CUDA here: {exc}")
            assert "cubin" in compiled.asm


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("difference", DIFFS)
def test_compiled_kernels_on_cuda_match_float64(difference):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(96, 40, generator=g)
    y = torch.randint(0, 12, (96,), generator=g)
    pairs = pair_indices(y.tolist(), difference)
    v, grad = value_and_grad(
        lambda x: difference_alignment(x, y.cuda(), "l2sq", difference=difference), z.cuda()
    )
    v64, g64 = value_and_grad(
        lambda x: ctv_torch(columns_torch(x, pairs, difference), "l2sq"), z.double()
    )
    assert v == pytest.approx(v64, rel=RTOL)
    assert _rel(grad.cpu(), g64) < RTOL


def test_backend_triton_runs_the_kernels_and_torch_does_not(monkeypatch):
    from dasl.dar import triton_l2sq

    calls = []
    real = triton_l2sq.l2sq_fused_forward
    monkeypatch.setattr(triton_l2sq, "l2sq_fused_forward", lambda *a: calls.append(1) or real(*a))
    z = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    difference_alignment(z, y, "l2sq", backend="triton")
    assert len(calls) == 1
    difference_alignment(z, y, "l2sq", backend="torch")
    difference_alignment(z, y, "l2sq")  # auto on the CPU: torch
    assert len(calls) == 1
