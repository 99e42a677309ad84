"""Fused exact squared-l2 CTV over all inter-class columns in Triton (#19): two launches.

``S = sum_{p<q} ||m_p - m_q||^2 = H sum_p ||m_p - mbar||^2`` over the ``H`` inter-class
columns ``m_p`` of the pairs ``p = (i, j)``, ``i < j``, ``y_i != y_j``: ``z_i - z_j``
(``"signed"``), oriented from the smaller label to the larger (``"ordered"``), or
``|z_i - z_j|`` (``"abs"``). Seen from item ``i``, a pair's column is ``o_ij (z_i - z_j)``
with ``o_ij = +1`` where ``i`` is the pair's source and ``-1`` where it is its target.

1. ``_mean_kernel``: ``H`` and ``sum_p m_p`` (programs over row blocks x ``h`` chunks,
   each looping over all column items; atomic adds of the partial sums).
2. ``_value_kernel``: per pair, ``e_p = m_p - mbar`` (``mbar = sum_p m_p / H``),
   ``S / H = sum_p ||e_p||^2`` (each pair counted once, at its source row) and
   ``dS/dz_i = 2 H sum_j o_ij e_ij`` (abs: ``sign(z_i - z_j) e_ij``), written once per
   row: ``sum_p e_p = 0`` removes the derivative through ``mbar``.

Every term is a difference of inputs or a square, formed directly in float64 (no class
means, no cancelling closed form): relative rounding ~1e-16 on collapsed classes, offsets
and huge rows alike. ``O(N^2 h)`` work, which a GPU does in one pass; the torch path
(``regularizer._l2sq_oriented_exact``) is ``O(N h)`` in some thirty small kernels. On a
CPU tensor the kernels run in Triton's interpreter (slow: for tests at small N).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from dasl.dar.grad_in_forward import GradInForward
from dasl.dar.triton_common import DIFF_CODES, build_kernel, pow2_at_least, tl
from dasl.dar.triton_common import SUM as _SUM

#: Row block, column-item block and ``h`` chunk: 16 x 16 x 16 float64 tiles on a GPU; the
#: interpreter pays per operation, so it takes larger blocks.
BLOCK = 16
BLOCK_H = 16
INTERPRETER_BLOCK = 32
INTERPRETER_BLOCK_H = 64


def _item_block(z, codes, ii, kk, mk, n, h, absent):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """Items ``ii``: inside the batch, class codes (``absent`` outside), rows ``z[ii, kk]``."""
    mi = ii < n
    ci = tl.load(codes + ii, mask=mi, other=absent)
    xi = tl.load(z + ii[:, None] * h + kk[None, :], mask=mi[:, None] & mk[None, :], other=0.0)
    return ii, mi, ci, xi


def _program_rows(z, codes, n, h, B: tl.constexpr, BH: tl.constexpr):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """Program ``(bi, bh)``: its rows ``ii`` (block ``bi``) on the coordinates ``kk`` (chunk
    ``bh``): ``(arange(B), kk, kk < h, ii, ii < n, codes, z[ii, kk])``."""
    r = tl.arange(0, B)
    kk = tl.program_id(1) * BH + tl.arange(0, BH)
    mk = kk < h
    ii, mi, ci, xi = _item_block(z, codes, tl.program_id(0) * B + r, kk, mk, n, h, -1)
    return r, kk, mk, ii, mi, ci, xi


def _pair_masks(ii, mi, ci, jj, mj, cj, ORDERED: tl.constexpr):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """``(i, j)`` inter-class, and ``i`` the pair's source (the smaller label for ordered,
    else the earlier item)."""
    inter = mi[:, None] & mj[None, :] & (ci[:, None] != cj[None, :])
    if ORDERED:
        return inter, inter & (ci[:, None] < cj[None, :])
    return inter, inter & (ii[:, None] < jj[None, :])


def _mean_kernel(  # type: ignore[no-untyped-def]  # pragma: no cover - Triton kernel, typed by its JIT
    z,
    codes,
    msum,
    hcount,
    n,
    h,
    DIFF: tl.constexpr,
    B: tl.constexpr,
    BH: tl.constexpr,
):
    r, kk, mk, ii, mi, ci, xi = _program_rows(z, codes, n, h, B, BH)
    acc = tl.full((B, BH), 0.0, tl.float64)
    cnt = tl.full((B, B), 0.0, tl.float64)
    for bj in range(0, (n + B - 1) // B):
        jj, mj, cj, xj = _item_block(z, codes, bj * B + r, kk, mk, n, h, -2)
        _, src = _pair_masks(ii, mi, ci, jj, mj, cj, DIFF == 2)
        d = xi[:, None, :] - xj[None, :, :]
        if DIFF == 1:
            d = tl.abs(d)
        acc += tl.reduce(tl.where(src[:, :, None], d, 0.0), 1, _SUM)
        cnt += tl.where(src, 1.0, 0.0)
    tl.atomic_add(msum + kk, tl.reduce(acc, 0, _SUM), mask=mk)
    if tl.program_id(1) == 0:
        tl.atomic_add(hcount, tl.reduce(cnt, None, _SUM))


def _value_kernel(  # type: ignore[no-untyped-def]  # pragma: no cover - Triton kernel, typed by its JIT
    z,
    codes,
    msum,
    hcount,
    gz,
    part,
    n,
    h,
    DIFF: tl.constexpr,
    B: tl.constexpr,
    BH: tl.constexpr,
):
    r, kk, mk, ii, mi, ci, xi = _program_rows(z, codes, n, h, B, BH)
    mik = mi[:, None] & mk[None, :]
    hc = tl.load(hcount)
    mbar = tl.load(msum + kk, mask=mk, other=0.0) / tl.maximum(hc, 1.0)
    grad = tl.full((B, BH), 0.0, tl.float64)
    val = tl.full((B, BH), 0.0, tl.float64)
    for bj in range(0, (n + B - 1) // B):
        jj, mj, cj, xj = _item_block(z, codes, bj * B + r, kk, mk, n, h, -2)
        inter, src = _pair_masks(ii, mi, ci, jj, mj, cj, DIFF == 2)
        d = xi[:, None, :] - xj[None, :, :]
        if DIFF == 1:
            e = tl.abs(d) - mbar[None, None, :]
            sd = tl.where(d > 0.0, 1.0, tl.where(d < 0.0, -1.0, 0.0)).to(tl.float64)
            gterm = sd * e
            val += tl.reduce(tl.where(src[:, :, None], e * e, 0.0), 1, _SUM)
        else:
            o = tl.where(src, 1.0, -1.0).to(tl.float64)[:, :, None]
            e = o * d - mbar[None, None, :]
            gterm = o * e
            val += tl.reduce(tl.where(src[:, :, None], e * e, 0.0), 1, _SUM)
        grad += tl.reduce(tl.where(inter[:, :, None], gterm, 0.0), 1, _SUM)
    tl.store(gz + ii[:, None] * h + kk[None, :], 2.0 * hc * grad, mask=mik)
    pid = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
    tl.store(part + pid, tl.reduce(val, None, _SUM))


@functools.cache
def _compiled(interpreted: bool) -> tuple[Any, Any]:
    helpers: dict[str, Callable[..., Any]] = {
        "_item_block": _item_block,
        "_pair_masks": _pair_masks,
        "_program_rows": _program_rows,
    }
    return (
        build_kernel(_mean_kernel, interpreted, helpers),
        build_kernel(_value_kernel, interpreted, helpers),
    )


def l2sq_fused_forward(z: Tensor, codes: Tensor, difference: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(S, dS/dz, H)`` for float64 ``z`` (N, h) and integer class codes (N,) whose order
    is the labels' (``pairs.class_codes``); ``H`` a float64 device scalar."""
    n, h = z.shape
    device = z.device
    interpreted = device.type == "cpu"
    block = INTERPRETER_BLOCK if interpreted else BLOCK
    block_h = min(INTERPRETER_BLOCK_H if interpreted else BLOCK_H, pow2_at_least(h))
    grid = (-(-n // block), -(-h // block_h))
    zc = z.contiguous()
    codes32 = codes.to(torch.int32).contiguous()
    msum = torch.zeros(h, dtype=torch.float64, device=device)
    hcount = torch.zeros((), dtype=torch.float64, device=device)
    gz = torch.empty_like(zc)
    part = torch.zeros(grid[0] * grid[1], dtype=torch.float64, device=device)
    mean_k, value_k = _compiled(interpreted)
    dcode = DIFF_CODES[difference]
    mean_k[grid](zc, codes32, msum, hcount, n, h, DIFF=dcode, B=block, BH=block_h)
    value_k[grid](zc, codes32, msum, hcount, gz, part, n, h, DIFF=dcode, B=block, BH=block_h)
    return hcount * part.sum(), gz, hcount


class _FusedL2sq(GradInForward):
    @staticmethod
    def forward(
        ctx: FunctionCtx, z: Tensor, codes: Tensor, difference: str, h_out: list[Tensor]
    ) -> Tensor:
        total, grad, h_cols = l2sq_fused_forward(z, codes, difference)
        h_out.append(h_cols)
        keep = grad if ctx.needs_input_grad[0] else None  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        ctx.save_for_backward(keep)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


def ctv_l2sq_fused(z: Tensor, codes: Tensor, difference: str = "signed") -> tuple[Tensor, Tensor]:
    """``(S, H)``: ``S = sum_{p<q} ||m_p - m_q||^2`` over the inter-class columns of float64
    ``z`` (N, h) (module docstring) and their number ``H`` (a device scalar, no host sync)."""
    h_out: list[Tensor] = []
    total: Tensor = _FusedL2sq.apply(z, codes, difference, h_out)
    return total, h_out[0]
