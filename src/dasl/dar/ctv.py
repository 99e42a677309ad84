"""The CTV norm of a set of columns, ``||M||_ctv = sum_{p<q} G(m_p - m_q)``, per measure.

Exact fast paths (METHOD.md, "exact" estimator), all with O(H h) memory:

- ``l2``: blocked tiles, gradient accumulated in passing (``exact_l2.ctv_l2_columns``).
- ``l1``: per dimension, sorted values ``a_(1) <= .. <= a_(H)`` give
  ``sum_{p<q} |a_p - a_q| = sum_k (2k - H - 1) a_(k)``; O(h H log H). Tied values get
  coefficients of an arbitrary order among them: still a valid subgradient.
- ``linf``: no closed form; blocked ``(P, Q, h)`` tiles; the subgradient of ``max_k |v_k|`` is
  ``sign(v_k*) e_k*`` at one maximizing coordinate ``k*`` (0 when ``v = 0``).
- ``l2sq``: ``sum_{p<q} ||m_p - m_q||^2 = H sum_p ||m_p||^2 - ||sum_p m_p||^2``; O(H h).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from dasl.dar.exact_l2 import DEFAULT_BLOCK_ELEMENTS, ctv_l2_columns
from dasl.dar.measures import MEASURES, REDUCTIONS, check_choice


def zero_like_graph(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """A scalar 0 that is connected to ``x``'s graph with a zero gradient (no NaN even if x
    holds inf: it sums an empty slice rather than multiplying by 0)."""
    out = x.reshape(-1)[:0].sum()
    return out if dtype is None else out.to(dtype)


class _CTVL1Sort(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, m: Tensor) -> Tensor:  # type: ignore[override]
        h_cols = m.shape[0]
        values, order = torch.sort(m, dim=0)
        coef = torch.arange(1, h_cols + 1, device=m.device, dtype=m.dtype).mul_(2.0)
        coef.sub_(h_cols + 1)
        total = (values * coef[:, None]).sum()
        grad = None
        if ctx.needs_input_grad[0]:  # type: ignore[attr-defined]
            grad = torch.empty_like(m).scatter_(0, order, coef[:, None].expand_as(m))
        ctx.save_for_backward(grad)  # type: ignore[attr-defined]
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, g: Tensor) -> Tensor | None:  # type: ignore[override]
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return None if grad is None else grad * g


class _CTVLinfBlocked(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, m: Tensor, budget: int) -> Tensor:  # type: ignore[override]
        h_cols, dim = m.shape
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]
        side = max(1, math.isqrt(max(1, budget // dim)))
        total = m.new_zeros(())
        grad = torch.zeros_like(m) if need_grad else None
        ar = torch.arange(h_cols, device=m.device)
        for a in range(0, h_cols - 1, side):
            b = min(h_cols, a + side)
            mp = m[a:b]
            for c in range(a, h_cols, side):
                e = min(h_cols, c + side)
                diff = mp[:, None, :] - m[None, c:e, :]  # (P, Q, h)
                vals, arg = diff.abs().max(dim=-1)
                if c < b:  # tile touches the diagonal: keep q > p only
                    keep = ar[c:e][None, :] > ar[a:b][:, None]
                    vals = vals * keep
                total = total + vals.sum()
                if grad is not None:
                    sign = diff.gather(-1, arg[..., None]).squeeze(-1).sign_()
                    if c < b:
                        sign = sign * keep
                    grad[a:b].scatter_add_(1, arg, sign)
                    grad[c:e].scatter_add_(1, arg.T.contiguous(), -sign.T)
        ctx.save_for_backward(grad)  # type: ignore[attr-defined]
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, g: Tensor) -> tuple[Tensor | None, None]:  # type: ignore[override]
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return (None if grad is None else grad * g), None


def ctv_sum_l1(m: Tensor) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||_1`` by sorting each dimension."""
    return _CTVL1Sort.apply(m)


#: linf tiles are (P, Q, h): larger than the l2 tiles so that per-op overhead stays small.
LINF_BLOCK_ELEMENTS = 1 << 22


def ctv_sum_linf(m: Tensor, block_elements: int = LINF_BLOCK_ELEMENTS) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||_inf`` in blocked tiles (O(H^2 h) work, O(block) memory)."""
    return _CTVLinfBlocked.apply(m, block_elements)


def ctv_sum_l2sq(m: Tensor) -> Tensor:
    """``sum_{p<q} ||m_p - m_q||^2 = H sum_p ||m_p||^2 - ||sum_p m_p||^2`` (closed form).

    Computed on centred columns (``sum_p ||m_p - mean||^2`` times ``H``), the same value
    without the cancellation of the two large terms.
    """
    mc = m - m.mean(0, keepdim=True)
    return m.shape[0] * (mc * mc).sum()


def ctv_sum(m: Tensor, measure: str, block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> Tensor:
    """``sum_{p<q} G(m_p - m_q)`` over the rows of ``m`` (H >= 2), no checks, no reduction."""
    if measure == "l2":
        return ctv_l2_columns(m, block_elements)
    if measure == "l1":
        return ctv_sum_l1(m)
    if measure == "linf":
        return ctv_sum_linf(m, max(block_elements, LINF_BLOCK_ELEMENTS))
    return ctv_sum_l2sq(m)


def num_column_pairs(h_cols: int) -> int:
    return h_cols * (h_cols - 1) // 2


def ctv_norm(columns: Tensor, measure: str = "l2", reduction: str = "sum") -> Tensor:
    """CTV norm of the rows ``m_p`` of ``columns`` (H, h): ``sum_{p<q} G(m_p - m_q)``.

    METHOD.md definition 4 (there ``M`` is h x H with columns ``m_p``; here the H vectors are
    the rows). ``reduction="mean"`` divides by ``H (H - 1) / 2``. ``H < 2`` gives exactly 0
    with a zero gradient. Half precision is computed in float32 (result float32).

    ``l2``, ``l1``, ``linf`` make this a seminorm (0 for identical columns); ``l2sq`` is not a
    norm (``||a M|| = a^2 ||M||``).

    Example:
        >>> import torch
        >>> from dasl.dar import ctv_norm
        >>> m = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
        >>> float(ctv_norm(m, "l2"))  # 5 + 4 + 3
        12.0
    """
    check_choice("measure", measure, MEASURES)
    check_choice("reduction", reduction, REDUCTIONS)
    if not isinstance(columns, Tensor) or columns.dim() != 2:
        shape = tuple(columns.shape) if isinstance(columns, Tensor) else type(columns).__name__
        raise ValueError(f"columns must be a 2-D tensor (H, h), got {shape}")
    if not columns.dtype.is_floating_point:
        raise ValueError(f"columns must be floating point, got dtype {columns.dtype}")
    out_dtype = torch.float64 if columns.dtype == torch.float64 else torch.float32
    h_cols = columns.shape[0]
    if h_cols < 2 or columns.shape[1] == 0:
        return zero_like_graph(columns, out_dtype)
    with torch.autocast(device_type=columns.device.type, enabled=False):
        total = ctv_sum(columns.to(out_dtype), measure)
    if reduction == "mean":
        total = total / num_column_pairs(h_cols)
    return total
