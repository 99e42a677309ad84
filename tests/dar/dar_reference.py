"""Independent slow references (float64 Python loops) for the DAR tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

Vec = list[float]


def g_measure(v: Sequence[float], measure: str) -> float:
    if measure == "l2":
        return math.sqrt(sum(x * x for x in v))
    if measure == "l1":
        return sum(abs(x) for x in v)
    if measure == "linf":
        return max(abs(x) for x in v)
    if measure == "l2sq":
        return sum(x * x for x in v)
    raise AssertionError(measure)


def ctv_ref(cols: Sequence[Sequence[float]], measure: str, reduction: str = "sum") -> float:
    n = len(cols)
    total = 0.0
    for p in range(n):
        for q in range(p + 1, n):
            total += g_measure([a - b for a, b in zip(cols[p], cols[q], strict=True)], measure)
    if reduction == "mean":
        return total / (n * (n - 1) / 2) if n >= 2 else 0.0
    return total if n >= 2 else 0.0


def diff_ref(zi: Sequence[float], zj: Sequence[float], difference: str) -> Vec:
    d = [a - b for a, b in zip(zi, zj, strict=True)]
    return [abs(x) for x in d] if difference == "abs" else d


def pair_columns(z: Sequence[Sequence[float]], labels: Sequence[int], difference: str) -> list:
    n = len(z)
    return [
        diff_ref(z[i], z[j], difference)
        for i in range(n)
        for j in range(i + 1, n)
        if labels[i] != labels[j]
    ]


def exact_ref(z, labels, measure: str, difference: str, reduction: str) -> float:
    return ctv_ref(pair_columns(z, labels, difference), measure, reduction)
