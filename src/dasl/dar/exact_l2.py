"""Exact l2 CTV, ``sum_{p<q} ||m_p - m_q||_2``, in blocks, with the gradient computed in passing.

Two exact kernels, each an ``autograd.Function`` whose forward also accumulates the gradient
(the regularizer is nearly always backpropagated, so recomputing the tiles in backward would
double the work); only O(H h) or O(N h) tensors are kept for backward, never an H x H tile.
Tiles hold ``BLOCK_P`` columns ``P`` against chunks of ``BLOCK_Q`` later columns (symmetry:
only ``p < q`` is visited), so temporaries are O(BLOCK_P * BLOCK_Q).

With ``D_pq = ||m_p - m_q||``, ``W_pq = 1 / D_pq`` (0 where ``D_pq`` is numerically 0: the zero
subgradient) and ``w_p = sum_q W_pq``, the gradient is ``dS/dm_p = w_p m_p - sum_q W_pq m_q``.

- ``ctv_l2_columns(M)``: from the columns; tiles by matmul, ``O(H^2 h)`` flops.
- ``ctv_l2_pairs_gram(Z, I, J)``: signed differences ``m_p = z_{I_p} - z_{J_p}`` from the
  ``N x N`` Gram matrix ``K = Z Z^T``: ``<m_p, m_q> = K_{I_p I_q} - K_{I_p J_q} - K_{J_p I_q}
  + K_{J_p J_q}``, so a tile costs O(1) gathers per entry instead of ``h`` multiply-adds; the
  gradient is ``dS/dZ = E^T (diag(w) - W) E Z`` with ``E`` the H x N incidence matrix
  (``+1`` at ``I_p``, ``-1`` at ``J_p``), i.e. an ``N x N`` matrix accumulated by index_add.

Distances come from ``||m_p||^2 + ||m_q||^2 - 2 <m_p, m_q>``. That identity cancels: its
rounding error is about ``eps (||m_p||^2 + ||m_q||^2)``, far above ``||m_p - m_q||^2`` for
near-coincident columns (collapsed classes). So the kernels run in the dtype they are given
and the regularizer gives them float64 whatever the embeddings' dtype (differences of float32
values are exact there, and the identity's rounding is 1e-16 relative, not 6e-8), and the
vectors are centred on their coordinate-wise median first (CTV only sees differences of
columns, so a common shift changes nothing; the median is not dragged by one huge row).
There is no cutoff: only ``d2 <= 0`` (zero distance, or rounding below it) gets weight 0, the
zero subgradient; a truly zero distance (duplicate rows) that rounds to a tiny positive ``d2``
gets a huge weight times a difference that is exactly zero, ~1e-9 relative float64 noise in
the gradient (invisible in float32). Measured against float64 autograd on explicit
differences, float32 inputs, N=64 (8 x 8 classes), h=512 (tests/dar/test_conditioning.py
runs a smaller version): collapsed classes (noise 1e-5), one collapsed class and one 1000x
row give relative gradient errors of 6e-8, 3e-8 and 3e-8 (straightforward float32 autograd:
2.6e-5, 1.3e-7, 1.1e-7; the former float32 kernels with a global cutoff: 3.5e-2, 2.0e-3, 0.3).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx

from dasl.dar.grad_in_forward import GradInForward

#: tile shape: ``BLOCK_P`` columns ``p`` against chunks of ``BLOCK_Q`` columns ``q``. Large
#: tiles (256 x 8192 float64, 16 MiB per temporary) mean few operations: each is an OpenMP
#: region whose barrier waits for a descheduled thread when other jobs share the cores, so
#: 64 x 4096 tiles (~2,700 operations at N=120, h=512) made the kernel lose 29x its quiet
#: speed beside two other 2-thread jobs where the straightforward cdist lost 7.5x. Larger
#: tiles than these buy little more and cost memory (512 x 8192: 247 MB extra at N=256, h=128).
BLOCK_P = 256
BLOCK_Q = 8192
DEFAULT_BLOCK_ELEMENTS = BLOCK_P * BLOCK_Q


#: Squared norm given to masked-out columns (``valid`` False): every ``d2`` involving them is
#: hugely negative, so their weight is 0 and ``d2 * 0 = 0`` (finite: no NaN), with no extra
#: pass over the tiles.
_MASKED_SQ = -1e30


def mask_columns(sq: Tensor, valid: Tensor | None) -> Tensor:
    return sq if valid is None else torch.where(valid, sq, _MASKED_SQ)


#: Devices whose Gram-kernel gradient scatters through a sparse CSR matmul (else index_add_).
CSR_DEVICES: tuple[str, ...] = ("cpu",)


def _block_sizes(budget: int) -> tuple[int, int]:
    bp = max(1, min(BLOCK_P, budget // BLOCK_Q))
    return bp, max(bp, budget // bp)


def centre(x: Tensor) -> Tensor:
    """``x`` minus its coordinate-wise median row (robust: one huge row does not move it)."""
    return x - x.median(dim=0, keepdim=True).values


def _weights(d2: Tensor) -> Tensor:
    """``1 / sqrt(d2)``, and 0 where ``d2 <= 0`` (zero distance, or rounding below it):
    ``threshold`` maps those to ``inf`` so one ``pow`` gives 0 there (the zero subgradient, no
    NaN, no second masking pass)."""
    return torch.pow(F.threshold(d2, 0.0, math.inf), -0.5)


def _tile_weights(d2: Tensor, diagonal: int) -> tuple[Tensor, Tensor]:
    """Squared distances ``d2[q', p']`` -> (sum of distances, weights ``1/D``).

    The first ``diagonal`` rows overlap the ``p`` block: there only ``q > p`` is kept.
    Numerically zero distances get weight 0 and contribute 0; elsewhere ``D = d2 / sqrt(d2)``.
    """
    if diagonal:
        d2[:diagonal].tril_(-1)
    weights = _weights(d2)
    return torch.dot(d2.view(-1), weights.view(-1)), weights


def _ctv_l2_columns_fwd(
    m: Tensor, budget: int, need_grad: bool, valid: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    h_cols = m.shape[0]
    bp, bq = _block_sizes(budget)
    mc = centre(m)
    sq = mask_columns((mc * mc).sum(1), valid)
    total = mc.new_zeros(())
    grad = torch.zeros_like(mc) if need_grad else None
    w = mc.new_zeros(h_cols) if need_grad else None
    for a in range(0, h_cols - 1, bp):
        b = min(h_cols, a + bp)
        mp = mc[a:b]
        for c in range(a, h_cols, bq):
            e = min(h_cols, c + bq)
            # d2 = sq_q + sq_p - 2 <m_q, m_p>, as one addmm plus a broadcast add.
            d2 = torch.addmm(sq[c:e, None], mc[c:e], mp.T, alpha=-2.0).add_(sq[None, a:b])
            part, weights = _tile_weights(d2, (b - a) if c == a else 0)
            total += part
            if grad is not None and w is not None:
                w[c:e] += weights.sum(1)
                w[a:b] += weights.sum(0)
                grad[c:e].addmm_(weights, mp, alpha=-1.0)
                grad[a:b].addmm_(weights.T, mc[c:e], alpha=-1.0)
    if grad is not None and w is not None:
        grad += w[:, None] * mc
    return total, grad


def _incidence_csr(
    i_idx: Tensor, j_idx: Tensor, n: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor]:
    """CSR arrays (crow, col, val) of ``E^T`` restricted to a chunk of ``L`` columns (``n x L``;
    +1 at ``I_q``, -1 at ``J_q``). Scattering a tile through it with a sparse matmul is several
    times faster on CPU than ``index_add_`` (measured: 0.18 ms vs 1.4 ms for a 4096 x 64 tile)."""
    length = i_idx.shape[0]
    cols = torch.arange(length, device=i_idx.device).repeat(2)
    rows = torch.cat([i_idx, j_idx])
    order = torch.argsort(rows * length + cols)
    # index_add_ rather than bincount: no host sync for the output size on an accelerator.
    counts = torch.zeros(n, dtype=torch.int64, device=i_idx.device)
    counts.index_add_(0, rows, torch.ones_like(rows))
    crow = torch.zeros(n + 1, dtype=torch.int64, device=i_idx.device)
    crow[1:] = counts.cumsum(0)
    vals = torch.ones(2 * length, device=i_idx.device, dtype=dtype)
    vals[length:] = -1.0
    return crow, cols[order], vals[order]


def _ctv_l2_gram_fwd(
    z: Tensor, i_idx: Tensor, j_idx: Tensor, budget: int, need_grad: bool, valid: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    n = z.shape[0]
    h_cols = i_idx.shape[0]
    bp, bq = _block_sizes(budget)
    bq = max(bp, bq // bp * bp)  # P blocks never straddle a chunk of the fixed Q grid
    zc = centre(z)
    gram = zc @ zc.T
    diag = gram.diagonal()
    sq = mask_columns(diag[i_idx] + diag[j_idx] - 2.0 * gram[i_idx, j_idx], valid)
    total = zc.new_zeros(())
    chunks = [(c, min(h_cols, c + bq)) for c in range(0, h_cols, bq)]
    w = ut = None
    incidence: list[Tensor] = []
    # The CSR incidence matmul is the fast scatter on CPU; elsewhere index_add_ (atomics on a
    # GPU) needs no sparse kernels.
    use_csr = zc.device.type in CSR_DEVICES
    if need_grad:
        w = zc.new_zeros(h_cols)
        # ut accumulates (sum_{p<q} W_pq e_p e_q^T)^T; the off-diagonal part is ut + ut^T.
        ut = zc.new_zeros(n, n)
        for c, e in chunks if use_csr else ():
            crow, col, val = _incidence_csr(i_idx[c:e], j_idx[c:e], n, zc.dtype)
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                csr = torch.sparse_csr_tensor(crow, col, val, size=(n, e - c))
            incidence.append(csr)
    buf_d = zc.new_empty(bq * bp)
    buf_g = zc.new_empty(bq * bp)
    buf_w = zc.new_empty(bq * bp)
    for a in range(0, h_cols - 1, bp):
        b = min(h_cols, a + bp)
        width = b - a
        ip, jp = i_idx[a:b], j_idx[a:b]
        # r[k, p'] = -2 <z_k, m_p>; d2[q, p] = (r[I_q, p] + sq_p) - r[J_q, p] + sq_q.
        r = (gram.index_select(1, ip) - gram.index_select(1, jp)).mul_(-2.0)
        r_sq = r + sq[None, a:b]
        xt = zc.new_zeros(n, width) if need_grad else None
        for k in range(a // bq, len(chunks)):
            c, e = chunks[k]
            start = a - c if k == a // bq else 0  # rows q < a belong to earlier P blocks
            rows = e - c
            d2 = buf_d[: (rows - start) * width].view(rows - start, width)
            g_j = buf_g[: (rows - start) * width].view(rows - start, width)
            torch.index_select(r_sq, 0, i_idx[c + start : e], out=d2)
            torch.index_select(r, 0, j_idx[c + start : e], out=g_j)
            d2.sub_(g_j).add_(sq[c + start : e, None])
            if k == a // bq:
                d2[:width].tril_(-1)  # the P block itself: keep q > p only
            if xt is None:
                total += torch.dot(d2.view(-1), _weights(d2).view(-1))
                continue
            assert w is not None
            w_full = buf_w[: rows * width].view(rows, width)
            w_full[:start].zero_()
            weights = w_full[start:]
            torch.pow(F.threshold(d2, 0.0, math.inf), -0.5, out=weights)
            total += torch.dot(d2.view(-1), weights.view(-1))
            w[c + start : e] += weights.sum(1)
            w[a:b] += weights.sum(0)
            if use_csr:
                xt += incidence[k] @ w_full  # xt[k, p'] = sum_q E_qk W_qp
            else:
                xt.index_add_(0, i_idx[c + start : e], weights)
                xt.index_add_(0, j_idx[c + start : e], weights, alpha=-1.0)
        if xt is not None and ut is not None:
            ut.index_add_(1, ip, xt)
            ut.index_add_(1, jp, xt, alpha=-1.0)
    if ut is None or w is None:
        return total, None
    lap = -(ut + ut.T)  # E^T (diag(w) - W) E
    flat = lap.view(-1)
    flat.index_add_(0, i_idx * n + i_idx, w)
    flat.index_add_(0, j_idx * n + j_idx, w)
    flat.index_add_(0, i_idx * n + j_idx, w, alpha=-1.0)
    flat.index_add_(0, j_idx * n + i_idx, w, alpha=-1.0)
    return total, lap @ zc


class _CTVL2Columns(GradInForward):
    @staticmethod
    def forward(ctx: FunctionCtx, m: Tensor, budget: int, valid: Tensor | None) -> Tensor:
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        total, grad = _ctv_l2_columns_fwd(m, budget, need_grad, valid)
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


class _CTVL2Gram(GradInForward):
    @staticmethod
    def forward(
        ctx: FunctionCtx, z: Tensor, i_idx: Tensor, j_idx: Tensor, budget: int, valid: Tensor | None
    ) -> Tensor:
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        total, grad = _ctv_l2_gram_fwd(z, i_idx, j_idx, budget, need_grad, valid)
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


def ctv_l2_columns(
    m: Tensor, block_elements: int = DEFAULT_BLOCK_ELEMENTS, valid: Tensor | None = None
) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||_2`` over the rows of ``m`` (H, h); blocked matmul tiles.

    ``valid`` (bool, H): only those rows count (a mask instead of a selection: no host sync).
    """
    out: Tensor = _CTVL2Columns.apply(m, block_elements, valid)
    return out


def ctv_l2_pairs_gram(
    z: Tensor,
    i_idx: Tensor,
    j_idx: Tensor,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
    valid: Tensor | None = None,
) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||_2`` with ``m_p = z[I_p] - z[J_p]``, from the Gram matrix of z
    (only the columns where ``valid`` is True, when given)."""
    out: Tensor = _CTVL2Gram.apply(z, i_idx, j_idx, block_elements, valid)
    return out
