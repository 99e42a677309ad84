"""Names of the difference measures ``G`` and their plain (per-vector) definitions.

METHOD.md, definition 3: ``G: R^h -> R+``. ``"l2"``, ``"l1"`` and ``"linf"`` are norms, so the
CTV of Theorem 1 is a (semi)norm with them. ``"l2sq"`` (squared Euclidean) is *not* a norm: it is
2-homogeneous and breaks the triangle inequality, so it falls outside Theorem 1; it is offered
because it is smooth and has an O(N h) closed form.
"""

from __future__ import annotations

import torch
from torch import Tensor

MEASURES: tuple[str, ...] = ("l2", "l1", "linf", "l2sq")
REDUCTIONS: tuple[str, ...] = ("sum", "mean")
ESTIMATORS: tuple[str, ...] = ("exact", "chain")
DIFFERENCES: tuple[str, ...] = ("signed", "abs")


def check_choice(kind: str, value: object, valid: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise a ValueError listing the options."""
    if not isinstance(value, str) or value not in valid:
        options = ", ".join(repr(v) for v in valid)
        raise ValueError(f"unknown {kind} {value!r}; valid choices are {options}")
    return value


def apply_measure(diff: Tensor, measure: str) -> Tensor:
    """``G`` applied along the last dimension of ``diff`` (a slow, autograd-only helper).

    ``l2: ||v||_2``, ``l1: sum |v_k|``, ``linf: max |v_k|``, ``l2sq: ||v||_2^2``. Used for small
    inputs (chains of a few columns are handled by the blocked kernels instead); note that
    autograd's gradient of ``torch.linalg.vector_norm`` at 0 is already the zero subgradient.
    """
    check_choice("measure", measure, MEASURES)
    if measure == "l2":
        return torch.linalg.vector_norm(diff, ord=2, dim=-1)
    if measure == "l1":
        return diff.abs().sum(-1)
    if measure == "linf":
        return diff.abs().amax(-1)
    return (diff * diff).sum(-1)
