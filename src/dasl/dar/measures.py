"""Names of the difference measures ``G`` and their plain (per-vector) definitions.

METHOD.md, definition 3: ``G: R^h -> R+``. ``"l2"``, ``"l1"`` and ``"linf"`` are norms, so the
CTV of Theorem 1 is a (semi)norm with them. ``"l2sq"`` (squared Euclidean) is *not* a norm: it is
2-homogeneous and breaks the triangle inequality, so it falls outside Theorem 1; it is offered
because it is smooth and has an O(N h) closed form.
"""

from __future__ import annotations

from dasl.errors import ConfigError

MEASURES: tuple[str, ...] = ("l2", "l1", "linf", "l2sq")
REDUCTIONS: tuple[str, ...] = ("sum", "mean")
ESTIMATORS: tuple[str, ...] = ("exact", "chain")
DIFFERENCES: tuple[str, ...] = ("signed", "abs", "ordered")
#: Exact-estimator kernels: "auto" (Triton on CUDA when it imports, else torch) or forced (#19).
BACKENDS: tuple[str, ...] = ("auto", "triton", "torch")


def check_choice(kind: str, value: object, valid: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise a ValueError listing the options."""
    if not isinstance(value, str) or value not in valid:
        options = ", ".join(repr(v) for v in valid)
        raise ConfigError(f"unknown {kind} {value!r}; valid choices are {options}")
    return value
