"""What the fused DAR kernels (``dar/triton_*.py``, #19) share: the optional triton import, the
named reduction combiners, building a kernel compiled (CUDA) or interpreted (CPU), block
tables and the float64 -> float32 ``hi + lo`` split.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from dasl.errors import DependencyError

try:  # triton ships with torch's CUDA wheels; the CPU-only install may lack it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None
    tl = None

#: The reductions name their combine function: the interpreter recognizes these and reduces
#: in numpy, where ``tl.sum`` (a jit function of triton's standard library) would need
#: ``TRITON_INTERPRET=1`` before triton's first import (which torch itself does).
SUM = None if tl is None else tl.standard._sum_combine
MAX = None if tl is None else tl.standard._elementwise_max
MIN = None if tl is None else tl.standard._elementwise_min

#: difference codes of the kernels' ``DIFF`` argument
DIFF_CODES: dict[str, int] = {"signed": 0, "abs": 1, "ordered": 2}

MISSING_TRITON = (
    "backend='triton' needs the triton package (it ships with torch's CUDA wheels): "
    "pip install triton, or use backend='torch'"
)


def triton_available() -> bool:
    return triton is not None


def build_kernel(
    kernel: Callable[..., Any],
    interpreted: bool,
    helpers: dict[str, Callable[..., Any]] | None = None,
) -> Any:
    """``kernel`` compiled by ``triton.jit`` or wrapped for Triton's interpreter (CPU tensors;
    no ``TRITON_INTERPRET`` needed). ``helpers`` (global name -> plain function) are device
    functions the kernel calls: each is wrapped the same way and bound in a copy of the
    kernel's globals (a jit-compiled helper cannot run inside an interpreted kernel, nor a
    plain one inside a compiled kernel)."""
    if triton is None:
        raise DependencyError(MISSING_TRITON)
    if interpreted:
        from triton.runtime.interpreter import InterpretedFunction

        wrap: Callable[[Callable[..., Any]], Any] = InterpretedFunction
    else:
        wrap = triton.jit
    if helpers:
        scope = dict(kernel.__globals__)
        scope.update({name: wrap(fn) for name, fn in helpers.items()})
        bound = types.FunctionType(kernel.__code__, scope, kernel.__name__)
        bound.__module__ = kernel.__module__
        bound.__qualname__ = kernel.__qualname__
        kernel = bound
    return wrap(kernel)


def upper_block_pairs(nb: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Block index pairs ``(a, b)``, ``a <= b < nb``, in row-major order (int32)."""
    a, b = torch.triu_indices(nb, nb, 0, device=device)
    return a.to(torch.int32).contiguous(), b.to(torch.int32).contiguous()


def pow2_at_least(x: int) -> int:
    """The smallest power of two ``>= x`` (``tl.arange`` extents are powers of two)."""
    return 1 << max(0, (x - 1).bit_length())


def split_float(x: Tensor) -> tuple[Tensor, Tensor]:
    """float64 ``x`` as float32 ``hi + lo`` (48 significant bits)."""
    hi = x.to(torch.float32)
    return hi, (x - hi.to(torch.float64)).to(torch.float32)
