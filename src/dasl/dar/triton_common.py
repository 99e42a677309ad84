"""What the fused DAR kernels (``dar/triton_*.py``, #19) share: the optional triton import, the
named reduction combiners, building a kernel compiled (CUDA) or interpreted (CPU), block
tables and the float64 -> float32 ``hi + lo`` split.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
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

__all__ = [
    "DIFF_CODES",
    "MAX",
    "MIN",
    "MISSING_TRITON",
    "SUM",
    "build_kernel",
    "tl",
    "triton",
    "triton_available",
]

MISSING_TRITON = (
    "backend='triton' needs the triton package (it ships with torch's CUDA wheels): "
    "pip install triton, or use backend='torch'"
)


def triton_available() -> bool:
    return triton is not None


def build_kernel(
    kernel: Callable[..., Any],
    interpreted: bool,
    helpers: Mapping[str, Callable[..., Any]] | None = None,
) -> Any:
    """``kernel`` compiled by ``triton.jit`` or wrapped for Triton's interpreter (CPU tensors;
    no ``TRITON_INTERPRET`` needed). ``helpers`` (global name -> plain function) are the
    device functions the kernel calls: each is wrapped the same way and bound, under its
    name, in copies of the globals of the kernel and of every helper (a jit-compiled helper
    cannot run inside an interpreted kernel, nor a plain one inside a compiled kernel)."""
    if triton is None:
        raise DependencyError(MISSING_TRITON)
    if interpreted:
        from triton.runtime.interpreter import InterpretedFunction

        wrap: Callable[[Callable[..., Any]], Any] = InterpretedFunction
    else:
        wrap = triton.jit
    if not helpers:
        return wrap(kernel)
    scopes: list[dict[str, Any]] = []

    def rebind(fn: Callable[..., Any]) -> Callable[..., Any]:
        scope = dict(fn.__globals__)
        scopes.append(scope)
        bound = types.FunctionType(fn.__code__, scope, fn.__name__)
        bound.__module__ = fn.__module__
        bound.__qualname__ = fn.__qualname__
        return bound

    wrapped = {name: wrap(rebind(fn)) for name, fn in helpers.items()}
    out = wrap(rebind(kernel))
    for scope in scopes:  # globals are looked up when the functions are compiled or run
        scope.update(wrapped)
    return out


def block_pair(t, nb):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """The ``t``-th block pair ``(a, b)``, ``a <= b < nb``, of the upper triangle in
    row-major order (int64): row ``a`` starts at ``a nb - a (a - 1) / 2``; a float64 square
    root estimates ``a``, two integer tests fix it by one either way."""
    t = t.to(tl.int64)
    tf = t.to(tl.float64)
    u = tf * 0.0 + (2 * nb + 1)
    a = ((u - tl.sqrt(u * u - 8.0 * tf)) * 0.5).to(tl.int64)
    nb64 = t * 0 + nb
    a = tl.where(a * nb64 - a * (a - 1) // 2 > t, a - 1, a)
    a = tl.where((a + 1) * nb64 - (a + 1) * a // 2 <= t, a + 1, a)
    return a, a + t - (a * nb64 - a * (a - 1) // 2)


def two_sum(a, b):  # type: ignore[no-untyped-def]  # pragma: no cover - a Triton device function
    """``a + b = s + e`` exactly (Knuth's TwoSum; no ordering of ``|a|``, ``|b|`` needed)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def num_block_pairs(nb: int) -> int:
    """Programs of a grid over the block pairs ``a <= b < nb`` (:func:`block_pair`)."""
    return nb * (nb + 1) // 2


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
