"""Count the host reads of device values on any device, the CPU included (#19).

On a GPU, a host read of a device value (``.item()``, ``bool(t)``, an output whose shape
depends on the data) makes the host wait for every queued kernel: the step stops overlapping
with the next one. ``torch.cuda.set_sync_debug_mode("warn")`` sees them only on CUDA; this
counter sees the ops that cause them on every device, so a CPU test can hold the training
loop to "no host read per step".

What is seen (every dispatch of an aten op, through a :class:`TorchDispatchMode`):

- ``aten._local_scalar_dense``: ``.item()``, ``bool(t)``, ``float(t)``, ``int(t)``, ``if t:``;
- ``aten.is_nonzero`` and ``aten.equal`` (a Python bool from tensors);
- data-dependent output shapes: ``nonzero`` (and ``argwhere``, ``torch.where(mask)``),
  ``masked_select``, ``unique`` / ``unique_consecutive`` / ``unique_dim``, ``bincount``,
  ``histc``, ``repeat_interleave`` without ``output_size``, ``index`` / ``index_put_`` with a
  boolean mask (``t[mask]``, ``t[mask] = v``), ``nonzero_static`` is not one (fixed size);
- a copy from a non-CPU tensor to the CPU (``aten._to_copy`` / ``aten.copy_``): ``.cpu()``,
  ``.to("cpu")`` of a device tensor.

What is not seen from Python: ``.tolist()``, ``.numpy()`` and ``.cpu()`` of a tensor that
already is on the CPU read its memory without dispatching an op, so on the CPU they are
invisible (on a GPU the ``.cpu()`` they need is seen as a copy); reads inside C++ or
Triton kernels (a kernel launch that reads a device scalar for its grid), inside
``torch.distributed`` collectives, and syncs that are not reads (``torch.cuda.synchronize``,
events, a pageable host-to-device copy) are not ops and not counted.

Each read is attributed to the innermost Python frame outside torch (``path:line``); it is
dasl's when that frame is under ``roots`` (dasl's package by default). A read inside
Lightning or inside a loss library that dasl calls (pytorch-metric-learning's ProxyAnchor
reads its own positives count) is that library's, even though dasl's code is further up
the stack: :meth:`HostReads.others` lists them by their line.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten

#: Ops whose every call reads a device value on the host.
_ALWAYS = {
    _aten._local_scalar_dense.default,
    _aten.is_nonzero.default,
    _aten.equal.default,
    _aten.nonzero.default,
    _aten.nonzero.out,
    _aten.masked_select.default,
    _aten.masked_select.out,
    _aten._unique.default,
    _aten._unique2.default,
    _aten.unique_dim.default,
    _aten.unique_consecutive.default,
    _aten.unique_dim_consecutive.default,
    _aten.bincount.default,
    _aten.histc.default,
}
_REPEAT_INTERLEAVE = {
    _aten.repeat_interleave.Tensor,
    _aten.repeat_interleave.self_Tensor,
    _aten.repeat_interleave.self_int,
}
_INDEX = {_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default}
_COPY = {_aten._to_copy.default, _aten.copy_.default}


def _forms(path: Path) -> tuple[str, ...]:
    """``path`` as written and with its links resolved (a venv may be a link): frames carry
    the form they were imported by."""
    return tuple({str(path) + "/", str(path.resolve()) + "/"})


_DASL = Path(__file__).parents[1]  # src/dasl
_TORCH = _forms(Path(torch.__file__).parent)
_THIS = {__file__, str(Path(__file__).resolve())}


def _is_cpu(device: Any) -> bool:
    return device is not None and torch.device(device).type == "cpu"


def read_kind(func: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> str | None:
    """The name under which ``func(*args, **kwargs)`` reads a device value on the host,
    or ``None`` when it does not."""
    name = str(func.overloadpacket.__name__)
    if func in _ALWAYS:
        return name
    if func in _REPEAT_INTERLEAVE:
        return None if kwargs.get("output_size") is not None else name
    if func in _INDEX:
        indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
        masks = [
            t
            for t in indices or ()
            if isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8)
        ]
        return f"{name} (boolean mask)" if masks else None
    if func in _COPY:
        if func is _aten._to_copy.default:
            src, dst = args[0], kwargs.get("device")
        else:
            dst_t, src = args[0], args[1]
            dst = dst_t.device if isinstance(dst_t, torch.Tensor) else None
        if isinstance(src, torch.Tensor) and not _is_cpu(src.device) and _is_cpu(dst):
            return f"{name} (device to host)"
    return None


def _frames(roots: tuple[str, ...]) -> tuple[str | None, str]:
    """(the innermost frame outside torch if it is under ``roots``, else ``None``; the
    innermost frame outside torch) as ``path:line``. Torch's own Python (``nn.Module``
    calls, ``torch.nn.functional``, compiled graphs) is skipped: a read there belongs to
    whoever called torch."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path not in _THIS and not path.startswith(_TORCH):
            here = f"{path}:{frame.f_lineno}"
            return (here if path.startswith(roots) else None), here
        frame = frame.f_back
    return None, "?"


@dataclass(frozen=True)
class HostRead:
    """One host read: the op, the step it happened in (``None``: between steps), its line
    when that is under the roots (``None``: another library's) and the innermost frame
    outside torch."""

    op: str
    step: int | None
    where: str | None
    caller: str


class HostReads(TorchDispatchMode):
    """Record the host reads made inside ``with HostReads() as reads:``.

    :meth:`begin_step` labels what follows with a step, :meth:`end_step` labels it "between
    steps" again. ``roots`` are the source folders whose frames own a read (default: dasl's
    package).
    """

    def __init__(self, roots: Sequence[str | Path] = ()) -> None:
        super().__init__()
        self.roots = tuple(f for r in (roots or [_DASL]) for f in _forms(Path(r).absolute()))
        self.step: int | None = None
        self.reads: list[HostRead] = []

    def __enter__(self) -> HostReads:
        super().__enter__()
        return self

    def begin_step(self, step: int) -> None:
        self.step = step

    def end_step(self) -> None:
        self.step = None

    def __torch_dispatch__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        kind = read_kind(func, args, kwargs)
        if kind is not None:
            inside, outside = _frames(self.roots)
            self.reads.append(HostRead(kind, self.step, inside, outside))
        return func(*args, **kwargs)

    # ------------------------------------------------------------------ summaries

    def by_where(self, *, in_steps: bool = True) -> Counter[str]:
        """Reads under the roots, counted by ``path:line (op)``; ``in_steps``: only those
        made inside a step."""
        return Counter(
            f"{r.where} ({r.op})"
            for r in self.reads
            if r.where is not None and (r.step is not None or not in_steps)
        )

    def per_step(self, *, ours: bool = True) -> Counter[int]:
        """Reads per step (only the steps that made one): under the roots when ``ours``, else
        those outside them."""
        return Counter(
            r.step for r in self.reads if r.step is not None and (r.where is not None) == ours
        )

    def others(self) -> Counter[str]:
        """Reads made outside the roots (by Lightning, torch's optimizers ...), counted by the
        innermost frame outside torch."""
        return Counter(f"{r.caller} ({r.op})" for r in self.reads if r.where is None)
