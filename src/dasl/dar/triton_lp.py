"""Fused exact l1 and linf CTV over all inter-class column pairs in Triton (#19), value and
gradient in one launch.

``S = sum_{p<q} ||m_p - m_q||`` (l1 or linf) over the columns ``m_p`` of the pairs
``p = (i, j)``, ``i < j``, ``y_i != y_j``: ``z_i - z_j`` (``"signed"``), oriented from the
smaller label to the larger (``"ordered"``) or ``|z_i - z_j|`` (``"abs"``). No Gram identity
exists for these measures: each column pair costs ``O(h)``.

Layout: the ``N (N - 1) / 2`` pairs ``i < j`` form a flat list (``triu_indices``, a shape
that does not depend on the labels); programs take the square blocks ``(a, b)``, ``a <= b``,
of ``B x B`` column pairs (``p`` in block ``a``, ``q`` in block ``b``; the block pair decoded
from the program id, no table), load the items' class codes and mask in-kernel the
intra-class pairs and ``p >= q`` (no host sync), and walk ``h`` in chunks of ``BH``,
gathering both columns from ``z`` (no column matrix).

Numerics (float32 arithmetic, docs/METHOD-NOTES.md "Fused exact l1 and linf kernels"): ``z``
is centred on its per-coordinate median in float64 (the CTV is translation invariant; an
offset of 100 would leave float32 differences 1e-5 relative) and handed over as float32
pairs ``hi + lo``. A column is formed as a float-float ``(hi, lo)`` (TwoSum of the ``hi``
parts, the ``lo`` difference added to the error) and so is ``m_p - m_q`` (TwoSum of the
column ``hi`` parts): ~48-bit differences from float32 operations, so every sign (l1's
subgradient), every ``|.|`` and the linf argmax (compared as float-float pairs) is that of
the float64 differences except within ~1e-14 of the data's scale. Terms are float32 (relative
6e-8), summed per program and the per-program sums added in float64 on the host.

Gradient (the torch paths' subgradients, ``dasl.dar.ctv``): l1 ``dS/dm_p = sum_{q != p}
sign(m_p - m_q)`` with ``sign(0) = 0``; linf ``sign(v_k*) e_k*`` at the first coordinate
``k*`` maximizing ``|v_k|`` of ``v = m_p - m_q`` (0 for ``v = 0``). Every term is an integer,
so ``dS/dz`` is accumulated in int32 by atomic adds (exact and independent of their order):
per chunk the ``B x BH`` row sums of the ``(p, q, k)`` signs for l1, per column pair the
four rows ``i, j, k, l`` at ``k*`` for linf, times the orientation (abs: times
``sign(z_i - z_j)`` at that coordinate).

On a CUDA tensor the kernel is compiled; on a CPU tensor it runs in Triton's interpreter
(slow: for tests at small N).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from dasl.dar.grad_in_forward import GradInForward
from dasl.dar.triton_common import (
    DIFF_CODES,
    MAX,
    MIN,
    SUM,
    block_pair,
    build_kernel,
    num_block_pairs,
    pow2_at_least,
    split_float,
    tl,
    two_sum,
)

#: Column-pair block ``B`` (programs hold ``B x B x BH`` float32 tiles) and ``h`` chunk on a
#: GPU (4,096 entries per temporary); the interpreter pays per operation, not per entry, so
#: it takes larger blocks (N=24, h=16, 276 pairs, l1: 4.7 s with 32, 1.6 s with 64, 1.0 s
#: with 128, 1.0 s with 256 on the shared 2-core CPU).
BLOCK = 32
BLOCK_H = 4
INTERPRETER_BLOCK = 128
INTERPRETER_BLOCK_H = 64


def _pair_block(pair_i, pair_j, codes, p, n_pairs, ORDERED: tl.constexpr):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """Source, target and validity (inside the list, inter-class) of the pairs ``p``."""
    inside = p < n_pairs
    src = tl.load(pair_i + p, mask=inside, other=0)
    dst = tl.load(pair_j + p, mask=inside, other=0)
    cs = tl.load(codes + src)
    cd = tl.load(codes + dst)
    if ORDERED:  # from the smaller label to the larger
        swap = cs > cd
        low = tl.where(swap, dst, src)
        dst = tl.where(swap, src, dst)
        src = low
    return src, dst, inside & (cs != cd)


def _column(zh, zl, src, dst, kk, mask, h):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """``z_src - z_dst`` on the coordinates ``kk`` as a float-float ``(hi, lo)``."""
    a = tl.load(zh + src[:, None] * h + kk[None, :], mask=mask, other=0.0)
    b = -tl.load(zh + dst[:, None] * h + kk[None, :], mask=mask, other=0.0)
    la = tl.load(zl + src[:, None] * h + kk[None, :], mask=mask, other=0.0)
    lb = tl.load(zl + dst[:, None] * h + kk[None, :], mask=mask, other=0.0)
    s, e = two_sum(a, b)
    low = e + (la - lb)
    hi = s + low
    return hi, (s - hi) + low


def _sign_at(zh, zl, src, dst, col, mask, h):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """``sign(z_src - z_dst)`` at the coordinates ``col`` (int32): ``hi`` decides, ``lo``
    breaks its ties (rounding to float32 is monotone)."""
    hs = tl.load(zh + src * h + col, mask=mask, other=0.0)
    hd = tl.load(zh + dst * h + col, mask=mask, other=0.0)
    ls = tl.load(zl + src * h + col, mask=mask, other=0.0)
    ld = tl.load(zl + dst * h + col, mask=mask, other=0.0)
    by_lo = tl.where(ls > ld, 1, tl.where(ls < ld, -1, 0))
    return tl.where(hs > hd, 1, tl.where(hs < hd, -1, by_lo))


# Runs as a Triton kernel (interpreted on CPU in the tests).
def _kernel(  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton kernel: typed by its JIT
    zh,
    zl,
    codes,
    pair_i,
    pair_j,
    gz,
    part,
    n_pairs,
    nb,
    h,
    LINF: tl.constexpr,
    DIFF: tl.constexpr,
    B: tl.constexpr,
    BH: tl.constexpr,
):
    t = tl.program_id(0)
    a, b = block_pair(t, nb)
    r = tl.arange(0, B)
    pa = a * B + r
    pb = b * B + r
    sa, da, va = _pair_block(pair_i, pair_j, codes, pa, n_pairs, DIFF == 2)
    sb, db, vb = _pair_block(pair_i, pair_j, codes, pb, n_pairs, DIFF == 2)
    keep = va[:, None] & vb[None, :] & (pa[:, None] < pb[None, :])
    keep3 = keep[:, :, None]
    val = tl.full((B, B), 0.0, tl.float32)
    best = tl.full((B, B), -1.0, tl.float32)  # below any |v_k|: chunk 0 always sets it
    best_lo = tl.full((B, B), 0.0, tl.float32)
    arg = tl.full((B, B), 0, tl.int32)
    sig = tl.full((B, B), 0, tl.int32)
    for k0 in range(0, h, BH):
        kk = k0 + tl.arange(0, BH)
        mk = kk < h
        ma = va[:, None] & mk[None, :]
        mb = vb[:, None] & mk[None, :]
        ah, al = _column(zh, zl, sa, da, kk, ma, h)
        bh, bl = _column(zh, zl, sb, db, kk, mb, h)
        if DIFF == 1:  # |z_i - z_j|: the float-float pair's sign is its hi part's
            sga = tl.where(ah > 0.0, 1, tl.where(ah < 0.0, -1, 0))
            sgb = tl.where(bh > 0.0, 1, tl.where(bh < 0.0, -1, 0))
            ah = tl.abs(ah)
            al = tl.where(sga < 0, -al, al)
            bh = tl.abs(bh)
            bl = tl.where(sgb < 0, -bl, bl)
        # v = m_p - m_q as float-float: TwoSum of the hi parts, the lo parts added last
        s, e = two_sum(ah[:, None, :], -bh[None, :, :])
        low = e + (al[:, None, :] - bl[None, :, :])
        vh = s + low
        sv = tl.where(vh > 0.0, 1, tl.where(vh < 0.0, -1, 0))
        if LINF:
            vl = (s - vh) + low
            mag = tl.where(mk[None, None, :], tl.abs(vh), -1.0)
            mag_lo = tl.where(vh < 0.0, -vl, vl)
            cmax = tl.reduce(mag, 2, MAX)
            top = mag == cmax[:, :, None]
            cmax_lo = tl.reduce(tl.where(top, mag_lo, -3.0e38), 2, MAX)
            top = top & (mag_lo == cmax_lo[:, :, None])
            kk3 = kk[None, None, :] + tl.full((B, B, BH), 0, tl.int32)
            carg = tl.reduce(tl.where(top, kk3, 2147483647), 2, MIN)  # the first maximizer
            csig = tl.reduce(tl.where(kk3 == carg[:, :, None], sv, 0), 2, SUM)
            # strictly larger (as a float-float pair): an earlier chunk keeps its coordinate
            better = (cmax > best) | ((cmax == best) & (cmax_lo > best_lo))
            best = tl.where(better, cmax, best)
            best_lo = tl.where(better, cmax_lo, best_lo)
            arg = tl.where(better, carg, arg)
            sig = tl.where(better, csig, sig)
        else:
            val += tl.reduce(tl.where(keep3, tl.abs(vh), 0.0), 2, SUM)
            g = tl.where(keep3, sv, 0)
            ga = tl.reduce(g, 1, SUM)  # d/d m_p, (B, BH)
            gb = -tl.reduce(g, 0, SUM)  # d/d m_q
            if DIFF == 1:
                ga = ga * sga
                gb = gb * sgb
            tl.atomic_add(gz + sa[:, None] * h + kk[None, :], ga, mask=ma)
            tl.atomic_add(gz + da[:, None] * h + kk[None, :], -ga, mask=ma)
            tl.atomic_add(gz + sb[:, None] * h + kk[None, :], gb, mask=mb)
            tl.atomic_add(gz + db[:, None] * h + kk[None, :], -gb, mask=mb)
    if LINF:
        val = tl.where(keep, best + best_lo, 0.0)
        ga = tl.where(keep, sig, 0)
        gb = -ga
        src_a = sa[:, None] + tl.full((B, B), 0, tl.int32)
        dst_a = da[:, None] + tl.full((B, B), 0, tl.int32)
        src_b = sb[None, :] + tl.full((B, B), 0, tl.int32)
        dst_b = db[None, :] + tl.full((B, B), 0, tl.int32)
        if DIFF == 1:
            ga = ga * _sign_at(zh, zl, src_a, dst_a, arg, keep, h)
            gb = gb * _sign_at(zh, zl, src_b, dst_b, arg, keep, h)
        tl.atomic_add(gz + src_a * h + arg, ga, mask=keep)
        tl.atomic_add(gz + dst_a * h + arg, -ga, mask=keep)
        tl.atomic_add(gz + src_b * h + arg, gb, mask=keep)
        tl.atomic_add(gz + dst_b * h + arg, -gb, mask=keep)
    tl.store(part + t, tl.reduce(val, None, SUM))


_HELPERS: dict[str, Callable[..., Any]] = {
    "_pair_block": _pair_block,
    "_column": _column,
    "_sign_at": _sign_at,
    "block_pair": block_pair,
    "two_sum": two_sum,
}


@functools.cache
def _compiled(interpreted: bool) -> Any:
    return build_kernel(_kernel, interpreted, _HELPERS)


def lp_fused_forward(
    z: Tensor,
    codes: Tensor,
    measure: str,
    difference: str,
    need_grad: bool,
    block: int | None = None,
    block_h: int | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``(S, dS/dz)`` for float64 ``z`` (N, h), dense class codes (N,) in label order
    (``pairs.class_codes``), ``measure`` ``"l1"`` or ``"linf"``."""
    n, h = z.shape
    device = z.device
    interpreted = device.type == "cpu"
    block = block or (INTERPRETER_BLOCK if interpreted else BLOCK)
    block_h = block_h or min(INTERPRETER_BLOCK_H if interpreted else BLOCK_H, pow2_at_least(h))
    n_pairs = n * (n - 1) // 2
    if n_pairs < 2 or h == 0:  # fewer than two columns
        return z.new_zeros(()), torch.zeros_like(z) if need_grad else None
    zc = z - z.median(dim=0, keepdim=True).values  # translation-invariant: centre
    zh, zl = split_float(zc.contiguous())
    pair_i, pair_j = torch.triu_indices(n, n, 1, device=device).to(torch.int32)
    nb = -(-n_pairs // block)
    programs = num_block_pairs(nb)
    gz = torch.zeros(n, h, dtype=torch.int32, device=device)
    part = torch.zeros(programs, dtype=torch.float32, device=device)
    _compiled(interpreted)[(programs,)](
        zh,
        zl,
        codes.to(torch.int32).contiguous(),
        pair_i.contiguous(),
        pair_j.contiguous(),
        gz,
        part,
        n_pairs,
        nb,
        h,
        LINF=measure == "linf",
        DIFF=DIFF_CODES[difference],
        B=block,
        BH=block_h,
    )
    total = part.to(torch.float64).sum()
    return total, gz.to(z.dtype) if need_grad else None


class _FusedLp(GradInForward):
    @staticmethod
    def forward(
        ctx: FunctionCtx, z: Tensor, codes: Tensor, measure: str, difference: str
    ) -> Tensor:
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        total, grad = lp_fused_forward(z, codes, measure, difference, need_grad)
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


def ctv_lp_fused(z: Tensor, codes: Tensor, measure: str, difference: str = "signed") -> Tensor:
    """``sum_{p<q} ||m_p - m_q||`` (``measure`` ``"l1"`` or ``"linf"``) over the inter-class
    columns of float64 ``z`` (N, h) (module docstring); ``codes``: dense class codes in label
    order (``pairs.class_codes``). The gradient is computed in the forward pass."""
    out: Tensor = _FusedLp.apply(z, codes, measure, difference)
    return out
