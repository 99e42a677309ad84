"""The fused chain kernel (#19) against float64 autograd on the chain's explicit columns.

The reference builds the chain by loops (``chain_from_permutation``, the same seeded
permutation), the columns by explicit differences and the CTV by broadcasting every column
pair (``dar_reference``); the kernel gathers, masks and orients in-kernel. On the CPU it runs
in Triton's interpreter: small N only, one size with two column blocks and two ``h`` chunks.
"""

from __future__ import annotations

import pytest
import torch
from dar_reference import columns_torch, ctv_torch, oriented, value_and_grad
from test_conditioning import CASES

from dasl.dar import difference_alignment
from dasl.dar.pairs import chain_from_permutation

pytest.importorskip("triton")

RTOL = 1e-6
MEASURES = ["l2", "l1", "linf", "l2sq"]
DIFFS = ["signed", "abs", "ordered"]


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want).norm() / want.norm().clamp_min(1e-300))


def _reference(y: torch.Tensor, seed: int, measure: str, difference: str, reduction: str):
    labels = y.tolist()
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
    src, dst = chain_from_permutation(perm, labels)
    steps = [oriented(a, b, labels, difference) for a, b in zip(src, dst, strict=True)]
    return lambda x: ctv_torch(columns_torch(x, steps, difference), measure, reduction)


def _check(z, y, measure, difference, reduction="mean", seed=7, rtol=RTOL):
    def ours(x):
        gen = torch.Generator().manual_seed(seed)
        return difference_alignment(
            x, y, measure, "chain", difference, reduction, generator=gen, backend="triton"
        )

    v, g = value_and_grad(ours, z)
    v64, g64 = value_and_grad(_reference(y, seed, measure, difference, reduction), z.double())
    assert g.dtype == z.dtype
    assert v == pytest.approx(v64, rel=rtol, abs=1e-30)
    assert _rel(g, g64) < rtol


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
def test_two_blocks_two_chunks_match_float64(measure, difference):
    # N - 1 = 40 columns: two 32-column blocks; h = 70: two 64-wide chunks
    g = torch.Generator().manual_seed(1)
    z = torch.randn(41, 70, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (41,), generator=g) * 3 - 4
    _check(z, y, measure, difference, reduction="sum", rtol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
def test_audit_cases_float32_match_float64(case, measure, difference):
    z, y = CASES[case]  # float32, N = 24, h = 16 (tests/dar/test_conditioning.py)
    _check(z, y, measure, difference)


def test_linf_ties_take_the_first_coordinate_across_chunks():
    # every column difference has its largest |coordinate| twice: at 3 and at 67 (another
    # chunk), and once more at 5 in half the rows: the first one takes the subgradient
    z = torch.zeros(9, 70, dtype=torch.float64)
    z[:, 3] = torch.arange(9, dtype=torch.float64) ** 2
    z[:, 67] = z[:, 3]
    z[::2, 5] = z[::2, 3]
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    for difference in DIFFS:
        _check(z, y, "linf", difference, reduction="sum", rtol=1e-12)


@pytest.mark.parametrize("measure", MEASURES)
def test_duplicate_and_zero_rows_give_the_reference_subgradient(measure):
    z = torch.zeros(6, 3, dtype=torch.float64)
    z[4] = torch.tensor([1.0, 0.5, -2.0])
    z[5] = z[4]
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    for difference in DIFFS:
        for seed in range(3):
            _check(z, y, measure, difference, seed=seed, rtol=1e-12)


@pytest.mark.parametrize("measure", MEASURES)
def test_fused_equals_torch_path_with_several_chains(measure):
    g = torch.Generator().manual_seed(2)
    z = torch.randn(12, 6, generator=g)
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3])  # many masked steps
    out = {}
    for backend in ("torch", "triton"):
        gen = torch.Generator().manual_seed(5)
        out[backend] = value_and_grad(
            lambda x, b=backend, gen=gen: difference_alignment(
                x, y, measure, "chain", num_chains=3, generator=gen, backend=b
            ),
            z,
        )
    assert out["triton"][0] == pytest.approx(out["torch"][0], rel=1e-6)
    assert _rel(out["triton"][1], out["torch"][1].double()) < 1e-6


# [0, 0, 1] is not here: a permutation such as (0, 2, 1) makes two inter-class steps
@pytest.mark.parametrize("labels", [[2, 2, 2, 2], [1], [0, 1]])
def test_fewer_than_two_columns_give_zero_and_zero_grad(labels):
    z = torch.randn(len(labels), 3, requires_grad=True)
    out = difference_alignment(z, torch.tensor(labels), "l2", "chain", backend="triton")
    out.backward()
    assert out.detach().item() == 0.0
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_kernel_compiles_for_a_gpu_without_one():
    """Triton's compiler accepts the kernel for every measure and difference (down to a
    cubin for sm_80) where the interpreter only runs it as Python."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from dasl.dar import triton_chain

    sig = {"z": "*fp64", "lab": "*i64", "perm": "*i64", "nb": "i32"}
    sig.update({"gz": "*fp64", "part": "*fp64", "n_cols": "i32", "h": "i32"})
    sig.update({k: "constexpr" for k in ("MEASURE", "DIFF", "B", "BH")})
    fn = triton_chain._compiled(False)  # jit, with its device functions bound
    for measure in range(4):
        consts = {"MEASURE": measure, "DIFF": 2 if measure % 2 else 1, "B": 16, "BH": 16}
        src = ASTSource(fn=fn, signature=sig, constexprs=consts)
        try:
            compiled = triton.compile(src, target=GPUTarget("cuda", 80, 32))
        except (ImportError, RuntimeError, FileNotFoundError) as exc:  # no CUDA backend
            pytest.skip(f"triton cannot compile for CUDA here: {exc}")
        assert "cubin" in compiled.asm


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", DIFFS)
def test_compiled_kernel_on_cuda_matches_float64(measure, difference):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(96, 40, generator=g)
    y = torch.randint(0, 12, (96,), generator=g)
    gen = torch.Generator().manual_seed(9)  # a CPU generator: the permutation is copied over
    v, grad = value_and_grad(
        lambda x: difference_alignment(
            x, y.cuda(), measure, "chain", difference, generator=gen, backend="auto"
        ),
        z.cuda(),
    )
    v64, g64 = value_and_grad(_reference(y, 9, measure, difference, "mean"), z.double())
    assert v == pytest.approx(v64, rel=RTOL)
    assert _rel(grad.cpu(), g64) < RTOL


def test_backend_triton_runs_the_kernel_and_torch_does_not(monkeypatch):
    # the float64 comparisons above would also pass on the torch path: check the dispatch
    from dasl.dar import triton_chain

    calls = []
    real = triton_chain.chain_fused_forward
    monkeypatch.setattr(triton_chain, "chain_fused_forward", lambda *a: calls.append(1) or real(*a))
    z = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    difference_alignment(z, y, "l1", "chain", num_chains=2, backend="triton")
    assert len(calls) == 2
    difference_alignment(z, y, "l1", "chain", backend="torch")
    difference_alignment(z, y, "l1", "chain")  # auto on the CPU: torch
    assert len(calls) == 2
