"""Fused exact l2 CTV over all inter-class column pairs in Triton (#19), value and gradient.

``S = sum_{p<q} ||m_p - m_q||_2`` with columns ``m_p = s_p (z_i - z_j)`` for the pairs ``p =
(i, j)``, ``i < j``, ``y_i != y_j`` (``s_p = 1`` for ``"signed"``; ``s_p = sign(y_j - y_i)``
for ``"ordered"``, so every column points from the smaller label to the larger).

One kernel visits 4-D tiles ``(i, j, k, l)`` of ``B^4`` index quadruples (``p = (i, j)`` in the
``(I, J)`` block, ``q = (k, l)`` in the ``(K, L)`` block, ``(I, J) <= (K, L)``), masks in-kernel
``i < j``, ``k < l``, the labels (intra-class pairs) and ``p < q`` (no host sync), and needs
only six ``B x B`` blocks of the pairwise squared distances ``D_ab = ||z_a - z_b||^2``:

    ||m_p - m_q||^2 = D_ij + D_kl + t (D_ik + D_jl - D_il - D_jk),   t = s_p s_q.

Numerics (float32 arithmetic in the O(N^4) loop, float64 result within ~1e-7 of the float64
reference; docs/METHOD-NOTES.md, "Fused exact l2 kernel"): the identity cancels for
near-coincident columns, so ``D`` is computed once in float64 by direct differences (no Gram
identity: relative 1e-16 even for tiny ``D``) and handed to the kernel as float32 pairs
``hi + lo``; the six terms are summed error-free (TwoSum on the ``hi`` parts, the ``lo`` parts
and the rounding errors added last): float-float precision (~1e-14 of the ``D`` scale) from
float32 operations. Tile sums are accumulated per program with Kahan compensation and the
per-program partials are summed in float64 on the host.

Gradient: with ``W_pq = 1 / ||m_p - m_q||`` (0 at zero distance: the zero subgradient) and
``v_pq = s_p (e_i - e_j) - s_q (e_k - e_l)`` (``e`` unit vectors over the batch),
``dS/dZ = C Z`` with ``C = sum_{p<q} W_pq v_pq v_pq^T``, an ``N x N`` matrix the kernel
accumulates blockwise: ``C = Diag(w) - X - X^T`` with ``w[i, j] = sum_q W_pq`` (per column)
and ``X = sum_{p<q} t W_pq (e_i - e_j)(e_k - e_l)^T`` (four ``B x B`` reductions of each tile,
added atomically). ``C``'s entries carry ``1 / D`` for near-coincident columns, so ``C Z`` would
lose ``eps32 ||z|| / D`` relative; the kernel therefore splits ``C = C_n + C_c``: ``C_c`` holds
the column pairs whose class pattern cancels (``v_pq`` sums to zero on every class: the same
ordered class pair), for which ``v_pq^T Z = v_pq^T E`` with ``E = Z - (class means)`` exactly,
so ``dS/dZ = C_n Z + C_c E`` (both products in float64 on the host, ``O(N^2 h)``).

On a CUDA tensor the kernel is compiled; on a CPU tensor it runs in Triton's interpreter (an
``InterpretedFunction`` built here, so ``TRITON_INTERPRET`` need not be set; slow: for tests
at small N). Needs ``triton`` (shipped with torch's CUDA wheels).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from dasl.dar.grad_in_forward import GradInForward
from dasl.dar.triton_common import SUM as _SUM
from dasl.dar.triton_common import build_kernel, split_float, tl, two_sum, upper_block_pairs
from dasl.dar.triton_common import triton_available as triton_available

#: Tile side ``B`` (tiles hold ``B^4`` quadruples): 8 on a GPU (4,096 entries per tile, in
#: registers). The interpreter pays per operation more than per entry: 16 there (measured at
#: N=24, h=16, 1 thread: 0.27 s against 0.47 s with 8 and 3.9 s with 4).
BLOCK = 8
INTERPRETER_BLOCK = 16


def _add_reduced(ptr, w, sel, AX_A: tl.constexpr, AX_B: tl.constexpr, mask):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """``ptr += sum`` of ``w`` where ``sel`` over the tile axes ``AX_A`` then ``AX_B``
    (a ``B x B`` block of ``w[a, b]`` for one shared-point pattern)."""
    red = tl.reduce(tl.reduce(tl.where(sel, w, 0.0), AX_A, _SUM), AX_B, _SUM)
    tl.atomic_add(ptr, red, mask=mask)


# Runs as a Triton kernel (interpreted on CPU in the tests).
def _kernel(  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton kernel: typed by its JIT
    dhi,
    dlo,
    codes,
    blk_i,
    blk_j,
    xn,
    xc,
    wn,
    wc,
    part,
    n,
    nb,
    ORDERED: tl.constexpr,
    B: tl.constexpr,
):
    # Program (t, bk): the (I, J) = (blk_i[t], blk_j[t]) block of columns p against the
    # (K, L) blocks with K = bk and L running; (K, L) >= (I, J) and L >= K.
    t = tl.program_id(0)
    bk = tl.program_id(1)
    bi = tl.load(blk_i + t)
    bj = tl.load(blk_j + t)
    r = tl.arange(0, B)
    ii = bi * B + r
    jj = bj * B + r
    mi = ii < n
    mj = jj < n
    ci = tl.load(codes + ii, mask=mi, other=-1)
    cj = tl.load(codes + jj, mask=mj, other=-2)
    mij = mi[:, None] & mj[None, :]
    pmask = mij & (ii[:, None] < jj[None, :]) & (ci[:, None] != cj[None, :])
    if ORDERED:
        sp = tl.where(ci[:, None] < cj[None, :], 1.0, -1.0)
    else:
        sp = tl.full((B, B), 1.0, tl.float32)
    off_ij = ii[:, None] * n + jj[None, :]
    hij = tl.load(dhi + off_ij, mask=mij, other=0.0)
    lij = tl.load(dlo + off_ij, mask=mij, other=0.0)
    local_p = r[:, None] * B + r[None, :]
    wp_n = tl.full((B, B), 0.0, tl.float32)
    wp_c = tl.full((B, B), 0.0, tl.float32)
    total = 0.0
    comp = 0.0
    kk = bk * B + r
    mk = kk < n
    ck = tl.load(codes + kk, mask=mk, other=-3)
    mik = mi[:, None] & mk[None, :]
    mjk = mj[:, None] & mk[None, :]
    off_ik = ii[:, None] * n + kk[None, :]
    off_jk = jj[:, None] * n + kk[None, :]
    # X's (i, k) and (j, k) blocks do not change along the L loop: summed here, added once.
    xik_n = tl.full((B, B), 0.0, tl.float32)
    xjk_n = tl.full((B, B), 0.0, tl.float32)
    xik_c = tl.full((B, B), 0.0, tl.float32)
    xjk_c = tl.full((B, B), 0.0, tl.float32)
    start = tl.where(bk == bi, bj, bk)
    start = tl.where(bk < bi, nb, start)
    for bl in range(start, nb):
        ll = bl * B + r
        ml = ll < n
        cl = tl.load(codes + ll, mask=ml, other=-4)
        mkl = mk[:, None] & ml[None, :]
        qmask = mkl & (kk[:, None] < ll[None, :]) & (ck[:, None] != cl[None, :])
        if ORDERED:
            sq = tl.where(ck[:, None] < cl[None, :], 1.0, -1.0)
        else:
            sq = tl.full((B, B), 1.0, tl.float32)
        mil = mi[:, None] & ml[None, :]
        mjl = mj[:, None] & ml[None, :]
        off_kl = kk[:, None] * n + ll[None, :]
        off_il = ii[:, None] * n + ll[None, :]
        off_jl = jj[:, None] * n + ll[None, :]
        hkl = tl.load(dhi + off_kl, mask=mkl, other=0.0)[None, None, :, :]
        lkl = tl.load(dlo + off_kl, mask=mkl, other=0.0)[None, None, :, :]
        tt = sp[:, :, None, None] * sq[None, None, :, :]  # t = s_p s_q, axes (i, j, k, l)
        hik = tt * tl.load(dhi + off_ik, mask=mik, other=0.0)[:, None, :, None]
        lik = tt * tl.load(dlo + off_ik, mask=mik, other=0.0)[:, None, :, None]
        hjl = tt * tl.load(dhi + off_jl, mask=mjl, other=0.0)[None, :, None, :]
        ljl = tt * tl.load(dlo + off_jl, mask=mjl, other=0.0)[None, :, None, :]
        hil = -tt * tl.load(dhi + off_il, mask=mil, other=0.0)[:, None, None, :]
        lil = -tt * tl.load(dlo + off_il, mask=mil, other=0.0)[:, None, None, :]
        hjk = -tt * tl.load(dhi + off_jk, mask=mjk, other=0.0)[None, :, :, None]
        ljk = -tt * tl.load(dlo + off_jk, mask=mjk, other=0.0)[None, :, :, None]
        # Error-free sum of the hi parts (TwoSum: a + b = s + e exactly), the cancelling
        # cross terms first so that their exact difference is formed early.
        s1, e1 = two_sum(hik, hil)
        s2, e2 = two_sum(s1, hjl)
        s3, e3 = two_sum(s2, hjk)
        s4, e4 = two_sum(s3, hij[:, :, None, None])
        s5, e5 = two_sum(s4, hkl)
        low = ((lik + lil) + (ljl + ljk)) + (lij[:, :, None, None] + lkl)
        d2 = s5 + ((((e1 + e2) + (e3 + e4)) + e5) + low)
        later = (bk > bi) | (bl > bj)  # block (K, L) after block (I, J)
        order = later | (local_p[:, :, None, None] < local_p[None, None, :, :])
        keep = pmask[:, :, None, None] & qmask[None, None, :, :] & order & (d2 > 0.0)
        dist = tl.sqrt(tl.where(keep, d2, 1.0))
        w = tl.where(keep, 1.0 / dist, 0.0)
        # Kahan-compensated running sum of the tile sums.
        y = tl.reduce(tl.where(keep, dist, 0.0), None, _SUM) - comp
        tsum = total + y
        comp = (tsum - total) - y
        total = tsum
        ci4 = ci[:, None, None, None]
        cj4 = cj[None, :, None, None]
        ck4 = ck[None, None, :, None]
        cl4 = cl[None, None, None, :]
        same = (ci4 == ck4) & (cj4 == cl4)
        swapped = (ci4 == cl4) & (cj4 == ck4)
        cancel = tl.where(tt > 0.0, same, swapped)
        # A shared point (j = l or i = k when t > 0; i = l or j = k when t < 0) leaves
        # v = +-(e_a - e_b) for the two other points: W goes to w[a, b] alone, so that no
        # row gets large weights that only cancel in exact arithmetic (the shared point's).
        eq_ik = (ii[:, None] == kk[None, :])[:, None, :, None]
        eq_jl = (jj[:, None] == ll[None, :])[None, :, None, :]
        eq_il = (ii[:, None] == ll[None, :])[:, None, None, :]
        eq_jk = (jj[:, None] == kk[None, :])[None, :, :, None]
        shared = tl.where(tt > 0.0, eq_ik | eq_jl, eq_il | eq_jk)
        w_s = tl.where(shared, w, 0.0)
        w_c = tl.where(cancel & (w_s == 0.0), w, 0.0)
        w_n = w - w_c - w_s
        if (bi == bk) | (bj == bl):
            # t > 0: j = l leaves (i, k), i = k leaves (j, l); the pair's class decides
            # whether its weight multiplies z or the class residuals.
            pos = tl.where(tt > 0.0, w_s, 0.0)
            ws_c = tl.where(same, pos, 0.0)
            ws_n = pos - ws_c
            _add_reduced(wc + off_ik, ws_c, eq_jl, 3, 1, mik)
            _add_reduced(wn + off_ik, ws_n, eq_jl, 3, 1, mik)
            _add_reduced(wc + off_jl, ws_c, eq_ik, 2, 0, mjl)
            _add_reduced(wn + off_jl, ws_n, eq_ik, 2, 0, mjl)
        if (bi == bl) | (bj == bk):
            # t < 0: i = l leaves (j, k), j = k leaves (i, l).
            neg = tl.where(tt > 0.0, 0.0, w_s)
            ws_c = tl.where(swapped, neg, 0.0)
            ws_n = neg - ws_c
            _add_reduced(wc + off_jk, ws_c, eq_il, 3, 0, mjk)
            _add_reduced(wn + off_jk, ws_n, eq_il, 3, 0, mjk)
            _add_reduced(wc + off_il, ws_c, eq_jk, 2, 1, mil)
            _add_reduced(wn + off_il, ws_n, eq_jk, 2, 1, mil)
        wp_n += tl.reduce(tl.reduce(w_n, 3, _SUM), 2, _SUM)
        wp_c += tl.reduce(tl.reduce(w_c, 3, _SUM), 2, _SUM)
        tl.atomic_add(wn + off_kl, tl.reduce(tl.reduce(w_n, 1, _SUM), 0, _SUM), mask=mkl)
        tl.atomic_add(wc + off_kl, tl.reduce(tl.reduce(w_c, 1, _SUM), 0, _SUM), mask=mkl)
        tw = tt * w_n
        red3 = tl.reduce(tw, 3, _SUM)  # (i, j, k)
        red2 = tl.reduce(tw, 2, _SUM)  # (i, j, l)
        xik_n += tl.reduce(red3, 1, _SUM)
        xjk_n -= tl.reduce(red3, 0, _SUM)
        tl.atomic_add(xn + off_il, -tl.reduce(red2, 1, _SUM), mask=mil)
        tl.atomic_add(xn + off_jl, tl.reduce(red2, 0, _SUM), mask=mjl)
        tw = tt * w_c
        red3 = tl.reduce(tw, 3, _SUM)
        red2 = tl.reduce(tw, 2, _SUM)
        xik_c += tl.reduce(red3, 1, _SUM)
        xjk_c -= tl.reduce(red3, 0, _SUM)
        tl.atomic_add(xc + off_il, -tl.reduce(red2, 1, _SUM), mask=mil)
        tl.atomic_add(xc + off_jl, tl.reduce(red2, 0, _SUM), mask=mjl)
    tl.atomic_add(wn + off_ij, wp_n, mask=mij)
    tl.atomic_add(wc + off_ij, wp_c, mask=mij)
    tl.atomic_add(xn + off_ik, xik_n, mask=mik)
    tl.atomic_add(xn + off_jk, xjk_n, mask=mjk)
    tl.atomic_add(xc + off_ik, xik_c, mask=mik)
    tl.atomic_add(xc + off_jk, xjk_c, mask=mjk)
    # The sum and its Kahan correction, added in float64 on the host.
    tl.store(part + 2 * (t * nb + bk), total)
    tl.store(part + 2 * (t * nb + bk) + 1, -comp)


@functools.cache
def _compiled(interpreted: bool) -> Any:
    return build_kernel(_kernel, interpreted, {"_add_reduced": _add_reduced, "two_sum": two_sum})


def _laplacian(x: Tensor, w: Tensor) -> Tensor:
    """``C = Diag(w) - X - X^T``, ``Diag(w) = diag(rowsum w + colsum w) - w - w^T``."""
    c = -(x + x.T) - (w + w.T)
    c.diagonal().add_(w.sum(0) + w.sum(1))
    return c


def fused_l2_forward(
    z: Tensor, codes: Tensor, ordered: bool, need_grad: bool, block: int | None = None
) -> tuple[Tensor, Tensor | None]:
    """``(S, dS/dz)`` for float64 ``z`` (N, h) and dense class codes (N,) in label order."""
    n = z.shape[0]
    device = z.device
    if block is None:
        block = INTERPRETER_BLOCK if device.type == "cpu" else BLOCK
    zc = z - z.median(dim=0, keepdim=True).values  # translation-invariant: centre
    dist = torch.cdist(zc, zc, compute_mode="donot_use_mm_for_euclid_dist")
    dhi, dlo = split_float(dist * dist)
    bi, bj = upper_block_pairs(-(-n // block), device)
    num_blocks = int(bi.shape[0])
    nb = -(-n // block)
    zeros = [torch.zeros(n, n, dtype=torch.float32, device=device) for _ in range(4)]
    xn, xc, wn, wc = zeros
    part = torch.zeros(2 * num_blocks * nb, dtype=torch.float32, device=device)
    kernel = _compiled(device.type == "cpu")
    kernel[(num_blocks, nb)](
        dhi,
        dlo,
        codes.to(torch.int32).contiguous(),
        bi,
        bj,
        xn,
        xc,
        wn,
        wc,
        part,
        n,
        nb,
        ORDERED=ordered,
        B=block,
    )
    total = part.to(torch.float64).sum()
    if not need_grad:
        return total, None
    num_codes = n  # codes < n: a fixed size, no host sync
    sums = zc.new_zeros(num_codes, zc.shape[1]).index_add_(0, codes, zc)
    counts = zc.new_zeros(num_codes).index_add_(0, codes, torch.ones_like(zc[:, 0]))
    resid = zc - (sums / counts.clamp_min(1.0)[:, None]).index_select(0, codes)
    c_n = _laplacian(xn.to(torch.float64), wn.to(torch.float64))
    c_c = _laplacian(xc.to(torch.float64), wc.to(torch.float64))
    return total, c_n @ zc + c_c @ resid


class _FusedL2(GradInForward):
    @staticmethod
    def forward(ctx: FunctionCtx, z: Tensor, codes: Tensor, ordered: bool) -> Tensor:
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        total, grad = fused_l2_forward(z, codes, ordered, need_grad)
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


def ctv_l2_fused(z: Tensor, codes: Tensor, ordered: bool = False) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||_2`` over the inter-class columns of float64 ``z`` (N, h).

    ``codes``: dense class codes in label order (``regularizer.class_codes``); ``ordered``:
    columns oriented from the smaller label to the larger, else batch order ``i < j``.
    The gradient is computed in the forward pass (the regularizer is nearly always
    backpropagated) and kept as an ``N x h`` tensor.
    """
    out: Tensor = _FusedL2.apply(z, codes, ordered)
    return out
