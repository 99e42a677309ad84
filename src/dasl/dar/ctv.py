"""The CTV norm of a set of columns, ``||M||_ctv = sum_{p<q} G(m_p - m_q)``, per measure.

Exact fast paths (METHOD.md, "exact" estimator), all with O(H h) memory:

- ``l2``: blocked tiles, gradient accumulated in passing (``exact_l2.ctv_l2_columns``).
- ``l1``: per dimension, sorted values ``a_(1) <= .. <= a_(H)`` give
  ``sum_{p<q} |a_p - a_q| = sum_k (2k - H - 1) a_(k)``; O(h H log H). Tied values share the
  average of their coefficients: the minimum-norm subgradient (each tied pair's
  ``sign(0)`` is 0, so a constant or dead dimension gets a zero gradient).
- ``linf``: no closed form; blocked ``(P, Q, h)`` tiles of at most ``block_elements`` entries;
  the subgradient of ``max_k |v_k|`` is ``sign(v_k*) e_k*`` at one maximizing coordinate
  ``k*`` (0 when ``v = 0``).
- ``l2sq``: ``sum_{p<q} ||m_p - m_q||^2 = H sum_p ||m_p - mean||^2`` (centred: no
  cancellation, never negative); O(H h).

``ctv_norm`` computes in float64 (exact differences of float32 inputs, rounding 1e-16) and
returns float32 for non-float64 input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from dasl.dar.exact_l2 import DEFAULT_BLOCK_ELEMENTS, ctv_l2_columns
from dasl.dar.grad_in_forward import GradInForward
from dasl.dar.measures import MEASURES, REDUCTIONS, check_choice
from dasl.errors import DataError


def zero_like_graph(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """A scalar 0 that is connected to ``x``'s graph with a zero gradient (no NaN even if x
    holds inf: it sums an empty slice rather than multiplying by 0)."""
    out = x.reshape(-1)[:0].sum()
    return out if dtype is None else out.to(dtype)


class _CTVL1Sort(GradInForward):
    @staticmethod
    def forward(ctx: FunctionCtx, m: Tensor, valid: Tensor | None) -> Tensor:
        # Sorted as (h, H) rows: a contiguous sort per dimension (measured 148 ms vs 205 ms
        # along dim 0 for 32,256 x 128 float64). Masked-out rows sort last as +inf; H counts
        # the valid ones (a device scalar then).
        mt = m.T.contiguous()
        h_cols: int | Tensor = m.shape[0]
        if valid is not None:
            mt = torch.where(valid[None, :], mt, math.inf)
            h_cols = valid.sum().to(m.dtype)
        values, order = torch.sort(mt, dim=1)
        del mt  # peak memory: the sort's outputs replace its input
        rank = torch.arange(m.shape[0], device=m.device, dtype=m.dtype)
        coef = 2.0 * rank - h_cols + 1.0  # 0-based rank k: 2(k + 1) - H - 1
        inside = None if valid is None else rank < h_cols
        terms = values * coef
        if inside is not None:
            coef = torch.where(inside, coef, 0.0)
            terms = torch.where(inside, terms, 0.0)  # not inf * 0 = NaN at masked rows
        total = terms.sum()  # ties are equal values: any order, same sum
        del terms
        grad = None
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
            avg = _tie_averaged_coef(values, h_cols, coef, inside)
            grad = torch.empty_like(values).scatter_(1, order, avg).T
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


def _tie_averaged_coef(
    values: Tensor, h_valid: int | Tensor, coef: Tensor, inside: Tensor | None
) -> Tensor:
    """Sort coefficients ``coef = 2k - H + 1`` (0-based rank ``k``; 0 outside ``inside``)
    averaged within each run of equal values of each row of ``values`` (sorted along dim 1):
    ``start + end - H + 1`` for a run ``[start, end]``. Every member of a run gets ``#below -
    #above``, the minimum-norm choice of the run's subgradients (their sum over the run is
    fixed)."""
    change = values[:, 1:] != values[:, :-1]
    if values.device.type == "cpu":
        return _tie_averaged_sparse(change, h_valid, coef, inside)
    return _tie_averaged_dense(change, h_valid, inside, values.dtype)


def _tie_averaged_dense(
    change: Tensor, h_valid: int | Tensor, inside: Tensor | None, dtype: torch.dtype
) -> Tensor:
    """:func:`_tie_averaged_coef` by dense run bookkeeping: no host sync (``nonzero``), for
    accelerators."""
    h_cols = change.shape[1] + 1
    rank = torch.arange(h_cols, device=change.device).expand(change.shape[0], h_cols)
    edge = torch.ones_like(change[:, :1])
    first = torch.cat([edge, change], dim=1)  # a run starts here
    last = torch.cat([change, edge], dim=1)  # a run ends here
    start = torch.where(first, rank, 0).cummax(1).values
    end = torch.where(last, rank, h_cols - 1).flip(1).cummin(1).values.flip(1)
    avg = (start + end).to(dtype) - (h_valid - 1)
    return avg if inside is None else torch.where(inside, avg, 0.0)


def _tie_averaged_sparse(
    change: Tensor, h_valid: int | Tensor, coef: Tensor, inside: Tensor | None
) -> Tensor:
    """:func:`_tie_averaged_coef` from the tied neighbours only. Float data has few ties
    (a handful per dimension), so this visits them instead of running ten dense passes
    (cummax, cummin, flips) over all ``h x H`` ranks: 80 ms of a 330 ms l1 step at N=256."""
    rows, width = change.shape[0], change.shape[1] + 1
    tied = ~change if inside is None else ~change & inside[1:]
    avg = coef.expand(rows, width).clone()
    flat = tied.reshape(-1).nonzero().squeeze(1)  # pair (k, k+1) of row r at r * (H-1) + k
    if not flat.numel():
        return avg
    r, k = flat // (width - 1), flat % (width - 1)
    starts = torch.ones_like(flat, dtype=torch.bool)
    starts[1:] = (flat[1:] != flat[:-1] + 1) | (r[1:] != r[:-1])
    run = starts.cumsum(0) - 1
    ends = torch.ones_like(starts)
    ends[:-1] = starts[1:]
    # Run j covers ranks [k of its first pair, k of its last pair + 1].
    value = (k[starts] + k[ends] + 1).to(avg.dtype) - (h_valid - 1)
    avg[r, k] = value[run]
    avg[r, k + 1] = value[run]
    return avg


class _CTVLinfBlocked(GradInForward):
    @staticmethod
    def forward(ctx: FunctionCtx, m: Tensor, budget: int, valid: Tensor | None) -> Tensor:
        h_cols, dim = m.shape
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        # Square (P, P, h) tiles with P^2 h <= budget (P >= 1): the fewest tiles for the memory.
        side = max(1, math.isqrt(max(1, budget // dim)))
        total = m.new_zeros(())
        grad = torch.zeros_like(m) if need_grad else None
        for a in range(0, h_cols - 1, side):
            b = min(h_cols, a + side)
            mp = m[a:b, None, :]
            for c in range(a, h_cols, side):  # c == a: the diagonal tile, keep q > p only
                e = min(h_cols, c + side)
                diff = mp - m[None, c:e, :]  # (P, Q, h)
                vals, arg = diff.abs().max(dim=-1)
                keep = None if valid is None else valid[a:b, None] & valid[None, c:e]
                if keep is not None:
                    vals *= keep
                if c == a:
                    vals.triu_(1)
                total += vals.sum()
                if grad is not None:
                    sign = diff.gather(-1, arg[..., None]).squeeze_(-1).sign_()
                    if keep is not None:
                        sign *= keep
                    if c == a:
                        sign.triu_(1)
                    grad[a:b].scatter_add_(1, arg, sign)
                    grad[c:e].scatter_add_(1, arg.T, sign.T.neg())
        ctx.save_for_backward(grad)  # type: ignore[arg-type]  # None saves None: no input grad
        return total


def ctv_sum_l1(m: Tensor, valid: Tensor | None = None) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||_1`` by sorting each dimension (rows where ``valid``)."""
    out: Tensor = _CTVL1Sort.apply(m, valid)
    return out


#: linf tiles are (P, Q, h): larger than the l2 tiles so that per-op overhead stays small
#: (4M float64 entries, 32 MiB per temporary, on CPU; 32M on an accelerator, where each of the
#: ~10 ops per tile is a kernel launch: N=120, h=512 gives ~400 tiles there, not ~3,000).
LINF_BLOCK_ELEMENTS = 1 << 22
LINF_BLOCK_ELEMENTS_ACCELERATOR = 1 << 25


#: exact l2 on an accelerator: 64M entries per temporary (256 MiB in float32). Measured on an
#: H200 (forward + backward, float32): N=256, h=128 44 ms vs 99 ms with the CPU's 2M tiles,
#: N=512 421 ms vs 905 ms; each tile is a dozen kernel launches, so fewer tiles is faster.
L2_BLOCK_ELEMENTS_ACCELERATOR = 1 << 26


def default_block_elements(measure: str, device: torch.device) -> int:
    """Tile budget (entries per temporary) when the caller gives none."""
    cpu = device.type == "cpu"
    if measure == "linf":
        return LINF_BLOCK_ELEMENTS if cpu else LINF_BLOCK_ELEMENTS_ACCELERATOR
    return DEFAULT_BLOCK_ELEMENTS if cpu else L2_BLOCK_ELEMENTS_ACCELERATOR


def ctv_sum_linf(
    m: Tensor, block_elements: int | None = None, valid: Tensor | None = None
) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||_inf`` in blocked tiles (O(H^2 h) work).

    Each temporary holds at most ``block_elements`` entries (``(P, P, h)`` tiles with
    ``P = isqrt(block_elements // h)``, at least 1).
    """
    budget = block_elements or default_block_elements("linf", m.device)
    out: Tensor = _CTVLinfBlocked.apply(m, budget, valid)
    return out


def ctv_sum_l2sq(m: Tensor, valid: Tensor | None = None) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||^2 = H sum_p ||m_p - mean||^2`` (closed form).

    The centred form is a sum of squares (never negative); the equivalent
    ``H sum_p ||m_p||^2 - ||sum_p m_p||^2`` cancels.
    """
    if valid is None:
        mc = m - m.mean(0, keepdim=True)
        return m.shape[0] * (mc * mc).sum()
    w = valid.to(m.dtype)
    h_cols = w.sum()
    mc = m - (w @ m) / h_cols.clamp_min(1.0)
    return h_cols * (w * (mc * mc).sum(1)).sum()


def ctv_sum(
    m: Tensor, measure: str, block_elements: int | None = None, valid: Tensor | None = None
) -> Tensor:
    """``sum_{p<q} G(m_p - m_q)`` over the rows of ``m`` (H >= 2), no checks, no reduction.

    ``block_elements`` bounds the entries of each tile temporary (None: the measure's default).
    ``valid`` (bool per row): only those rows count, a mask instead of a selection (no host
    sync for the number of rows).
    """
    budget = block_elements or default_block_elements(measure, m.device)
    if measure == "l2":
        return ctv_l2_columns(m, budget, valid)
    if measure == "l1":
        return ctv_sum_l1(m, valid)
    if measure == "linf":
        return ctv_sum_linf(m, budget, valid)
    return ctv_sum_l2sq(m, valid)


def num_column_pairs(h_cols: int) -> int:
    return h_cols * (h_cols - 1) // 2


def ctv_norm(columns: Tensor, measure: str = "l2", reduction: str = "mean") -> Tensor:
    """CTV norm of the rows ``m_p`` of ``columns`` (H, h): ``sum_{p<q} G(m_p - m_q)``.

    METHOD.md definition 4 (there ``M`` is h x H with columns ``m_p``; here the H vectors are
    the rows). ``reduction="mean"`` (default, as ``difference_alignment``: a value that keeps
    its scale across H) divides by ``H (H - 1) / 2``; ``"sum"`` is the literal norm. ``H < 2``
    gives exactly 0 with a zero gradient. Computed in float64; the result is float64 for
    float64 input and float32 otherwise.

    ``l2``, ``l1``, ``linf`` make this a seminorm (0 for identical columns); ``l2sq`` is not a
    norm (``||a M|| = a^2 ||M||``).

    Example:
        >>> import torch
        >>> from dasl.dar import ctv_norm
        >>> m = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
        >>> float(ctv_norm(m, "l2", reduction="sum"))  # 5 + 4 + 3
        12.0
        >>> float(ctv_norm(m, "l2"))  # mean over the 3 column pairs
        4.0
    """
    check_choice("measure", measure, MEASURES)
    check_choice("reduction", reduction, REDUCTIONS)
    if not isinstance(columns, Tensor) or columns.dim() != 2:
        shape = tuple(columns.shape) if isinstance(columns, Tensor) else type(columns).__name__
        raise DataError(f"columns must be a 2-D tensor (H, h), got {shape}")
    if not columns.dtype.is_floating_point:
        raise DataError(f"columns must be floating point, got dtype {columns.dtype}")
    out_dtype = torch.float64 if columns.dtype == torch.float64 else torch.float32
    h_cols = columns.shape[0]
    if h_cols < 2 or columns.shape[1] == 0:
        return zero_like_graph(columns, out_dtype)
    with torch.autocast(device_type=columns.device.type, enabled=False):
        total = ctv_sum(columns.to(torch.float64), measure)
    if reduction == "mean":
        total = total / num_column_pairs(h_cols)
    return total.to(out_dtype)
