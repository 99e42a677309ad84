"""Autograd functions whose forward already computes the whole gradient.

The CTV kernels (blocked l2, linf, the fused Triton l2) build ``d total / d input`` in the
same pass as the value, because recomputing the tiles in a backward would double their cost.
Their backward is then one product: ``grad * g``, and ``None`` for every other input.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable


class GradInForward(torch.autograd.Function):
    """Base for a function whose ``forward`` saves ``grad`` (or ``None``) with
    ``ctx.save_for_backward``; ``backward`` returns ``grad * g`` for the first input."""

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, g: Tensor) -> tuple[Tensor | None, ...]:
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        others = len(ctx.needs_input_grad) - 1  # type: ignore[attr-defined]  # set by autograd; not in FunctionCtx's stub
        return (None if grad is None else grad * g, *([None] * others))
