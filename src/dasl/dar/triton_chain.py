"""Fused chain CTV in Triton (#19): value and gradient of one chain in one kernel launch.

The chain estimator's columns are the steps of a permutation ``b`` of the batch (#19 chain
fix: ``dar/pairs.py``): ``m_t = z_{b_t} - z_{b_{t+1}}`` for ``t < N - 1`` (``"ordered"``:
oriented from the smaller label to the larger; ``"abs"``: elementwise ``|.|``), a step
counting only where its labels differ. The kernel computes

    S = sum_{s<t, both valid} G(m_s - m_t),    G in {l2, l1, linf, l2sq},

and ``dS/dz``, gathering the columns from ``z`` and testing the labels in-kernel (no
column matrix, no host sync, no shape that depends on the labels). Programs take square
``(s, t)`` blocks with ``s``'s block <= ``t``'s; each walks ``h`` in chunks, twice for l2
(the distance first, then ``W_st = 1 / ||m_s - m_t||`` times the differences) and linf (the
maximum and its first coordinate first, then the sign there), once for l1 and l2sq. The
column gradients go straight to ``dS/dz`` rows by atomic adds (``+`` at ``b_t``, ``-`` at
``b_{t+1}``, times the orientation, or times ``sign(z_{b_t} - z_{b_{t+1}})`` for abs).

Arithmetic is float64 (the regularizer's working dtype): the differences ``m_s - m_t`` are
formed directly, without the Gram identity, so value and gradient round at ~1e-16 relative
even for collapsed classes. Subgradients as the torch paths: 0 at a zero l2 distance,
``sign(0) = 0`` per coordinate for l1 (the tie-averaged one), the first maximizing
coordinate for linf. On a CUDA tensor the kernel is compiled; on a CPU tensor it runs in
Triton's interpreter (slow: for tests at small N).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from dasl.dar.grad_in_forward import GradInForward
from dasl.dar.triton_common import DIFF_CODES as DIFF_CODES
from dasl.dar.triton_common import MAX as _MAX
from dasl.dar.triton_common import MIN as _MIN
from dasl.dar.triton_common import SUM as _SUM
from dasl.dar.triton_common import block_pair, build_kernel, num_block_pairs, pow2_at_least, tl

#: measure codes of the kernel's ``MEASURE`` argument
MEASURE_CODES: dict[str, int] = {"l2": 0, "l1": 1, "linf": 2, "l2sq": 3}

#: Column block side (programs hold ``B x B`` column pairs) and ``h`` chunk on a GPU
#: (4,096 float64 entries per temporary); the interpreter pays per operation, not per
#: entry, so it takes the largest blocks.
BLOCK = 16
BLOCK_H = 16
INTERPRETER_BLOCK = 32
INTERPRETER_BLOCK_H = 64


def _chunk(z, src_s, dst_s, ins, src_t, dst_t, intt, kk, h):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """On the coordinates ``kk``: the two blocks' load masks and the steps' columns
    ``z_src - z_dst`` (B, BH) of both blocks."""
    mk = kk < h
    ms_ = mk[None, :] & ins[:, None]
    mt_ = mk[None, :] & intt[:, None]
    cs = tl.load(z + src_s[:, None] * h + kk[None, :], mask=ms_, other=0.0)
    cs -= tl.load(z + dst_s[:, None] * h + kk[None, :], mask=ms_, other=0.0)
    ct = tl.load(z + src_t[:, None] * h + kk[None, :], mask=mt_, other=0.0)
    ct -= tl.load(z + dst_t[:, None] * h + kk[None, :], mask=mt_, other=0.0)
    return ms_, mt_, cs, ct


# Runs as a Triton kernel (interpreted on CPU in the tests).
def _kernel(  # type: ignore[no-untyped-def]  # pragma: no cover - Triton kernel, typed by its JIT
    z,
    lab,
    perm,
    nb,
    gz,
    part,
    n_cols,
    h,
    MEASURE: tl.constexpr,
    DIFF: tl.constexpr,
    B: tl.constexpr,
    BH: tl.constexpr,
):
    pid = tl.program_id(0)
    ba, bb = block_pair(pid, nb)
    r = tl.arange(0, B)
    ts = ba * B + r
    tt = bb * B + r
    ins = ts < n_cols
    intt = tt < n_cols
    # step t joins perm[t] -> perm[t + 1]
    src_s = tl.load(perm + ts, mask=ins, other=0)
    dst_s = tl.load(perm + ts + 1, mask=ins, other=0)
    src_t = tl.load(perm + tt, mask=intt, other=0)
    dst_t = tl.load(perm + tt + 1, mask=intt, other=0)
    ls_a = tl.load(lab + src_s, mask=ins, other=0)
    ls_b = tl.load(lab + dst_s, mask=ins, other=0)
    lt_a = tl.load(lab + src_t, mask=intt, other=0)
    lt_b = tl.load(lab + dst_t, mask=intt, other=0)
    vs = ins & (ls_a != ls_b)
    vt = intt & (lt_a != lt_b)
    if DIFF == 2:  # ordered: from the smaller label to the larger
        sw_s = ls_a > ls_b
        sw_t = lt_a > lt_b
        lo_s = tl.where(sw_s, dst_s, src_s)
        dst_s = tl.where(sw_s, src_s, dst_s)
        src_s = lo_s
        lo_t = tl.where(sw_t, dst_t, src_t)
        dst_t = tl.where(sw_t, src_t, dst_t)
        src_t = lo_t
    keep = vs[:, None] & vt[None, :] & (ts[:, None] < tt[None, :])
    ks = tl.arange(0, BH)
    # Pass 1 (l2, linf): the pairwise quantity that the gradient needs first.
    d2 = tl.full((B, B), 0.0, tl.float64)
    best = tl.full((B, B), 0.0, tl.float64)
    arg = tl.full((B, B), 0, tl.int32)
    if MEASURE == 0 or MEASURE == 2:
        for k0 in range(0, h, BH):
            kk = k0 + ks
            _, _, cs, ct = _chunk(z, src_s, dst_s, ins, src_t, dst_t, intt, kk, h)
            if DIFF == 1:
                cs = tl.abs(cs)
                ct = tl.abs(ct)
            diff = cs[:, None, :] - ct[None, :, :]
            if MEASURE == 0:
                d2 += tl.reduce(diff * diff, 2, _SUM)
            else:
                ad = tl.abs(diff)
                cmax = tl.reduce(ad, 2, _MAX)
                kk3 = kk[None, None, :] + tl.full((B, B, BH), 0, tl.int32)
                carg = tl.reduce(tl.where(ad == cmax[:, :, None], kk3, 2147483647), 2, _MIN)
                better = cmax > best  # strictly: an earlier chunk keeps its coordinate
                arg = tl.where(better, carg, arg)
                best = tl.where(better, cmax, best)
    total = tl.full((B, B), 0.0, tl.float64)
    w = tl.full((B, B), 0.0, tl.float64)
    if MEASURE == 0:
        pos = keep & (d2 > 0.0)
        dist = tl.sqrt(tl.where(pos, d2, 1.0))
        total = tl.where(pos, dist, 0.0)
        w = tl.where(pos, 1.0 / dist, 0.0)
    if MEASURE == 2:
        total = tl.where(keep, best, 0.0)
    # Pass 2: value (l1, l2sq) and the gradient, chunk by chunk.
    for k0 in range(0, h, BH):
        kk = k0 + ks
        ms_, mt_, cs, ct = _chunk(z, src_s, dst_s, ins, src_t, dst_t, intt, kk, h)
        sgn_s = tl.where(cs > 0.0, 1.0, tl.where(cs < 0.0, -1.0, 0.0)).to(tl.float64)
        sgn_t = tl.where(ct > 0.0, 1.0, tl.where(ct < 0.0, -1.0, 0.0)).to(tl.float64)
        if DIFF == 1:
            cs = tl.abs(cs)
            ct = tl.abs(ct)
        diff = cs[:, None, :] - ct[None, :, :]
        keep3 = keep[:, :, None]
        sd = tl.where(diff > 0.0, 1.0, tl.where(diff < 0.0, -1.0, 0.0)).to(tl.float64)
        if MEASURE == 0:
            g = w[:, :, None] * diff
        elif MEASURE == 1:
            total += tl.reduce(tl.where(keep3, tl.abs(diff), 0.0), 2, _SUM)
            g = tl.where(keep3, sd, 0.0)
        elif MEASURE == 2:
            at = (kk[None, None, :] == arg[:, :, None]) & keep3
            g = tl.where(at, sd, 0.0)
        else:
            total += tl.reduce(tl.where(keep3, diff * diff, 0.0), 2, _SUM)
            g = tl.where(keep3, 2.0 * diff, 0.0)
        gs = tl.reduce(g, 1, _SUM)  # d/d m_s, (B, BH)
        gt = -tl.reduce(g, 0, _SUM)  # d/d m_t
        if DIFF == 1:
            gs = gs * sgn_s
            gt = gt * sgn_t
        ws_ = ms_ & vs[:, None]
        wt_ = mt_ & vt[:, None]
        tl.atomic_add(gz + src_s[:, None] * h + kk[None, :], gs, mask=ws_)
        tl.atomic_add(gz + dst_s[:, None] * h + kk[None, :], -gs, mask=ws_)
        tl.atomic_add(gz + src_t[:, None] * h + kk[None, :], gt, mask=wt_)
        tl.atomic_add(gz + dst_t[:, None] * h + kk[None, :], -gt, mask=wt_)
    tl.store(part + pid, tl.reduce(total, None, _SUM))


@functools.cache
def _compiled(interpreted: bool) -> Any:
    return build_kernel(_kernel, interpreted, {"_chunk": _chunk, "block_pair": block_pair})


def chain_fused_forward(
    z: Tensor, labels: Tensor, perm: Tensor, measure: str, difference: str, need_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """``(S, dS/dz)`` of the chain ``perm`` for float64 ``z`` (N, h), labels (N,) and a
    permutation (N,) on ``z``'s device. The gradient is computed whether or not it is
    needed (it is the kernel's by-product); ``need_grad`` only decides whether it is kept."""
    n, h = z.shape
    device = z.device
    interpreted = device.type == "cpu"
    block = INTERPRETER_BLOCK if interpreted else BLOCK
    block_h = min(INTERPRETER_BLOCK_H if interpreted else BLOCK_H, pow2_at_least(h))
    n_cols = n - 1
    nb = -(-n_cols // block)
    programs = num_block_pairs(nb)
    gz = torch.zeros_like(z)
    part = torch.zeros(programs, dtype=torch.float64, device=device)
    _compiled(interpreted)[(programs,)](
        z.contiguous(),
        labels.contiguous(),
        perm.contiguous(),
        nb,
        gz,
        part,
        n_cols,
        h,
        MEASURE=MEASURE_CODES[measure],
        DIFF=DIFF_CODES[difference],
        B=block,
        BH=block_h,
    )
    return part.sum(), gz if need_grad else None


class _FusedChain(GradInForward):
    @staticmethod
    def forward(
        ctx: FunctionCtx, z: Tensor, labels: Tensor, perm: Tensor, measure: str, difference: str
    ) -> Tensor:
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        total, grad = chain_fused_forward(z, labels, perm, measure, difference, need_grad)
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


def ctv_chain_fused(
    z: Tensor, labels: Tensor, perm: Tensor, measure: str, difference: str
) -> Tensor:
    """``sum_{s<t} G(m_s - m_t)`` over the valid steps of the chain ``perm`` (module
    docstring), float64 ``z`` (N >= 2, h); the gradient is computed in the forward pass."""
    out: Tensor = _FusedChain.apply(z, labels, perm, measure, difference)
    return out
