"""Independent slow references for the DAR tests: float64 Python loops, and float64 autograd on
explicit differences (all column pairs broadcast, no Gram identity, no sorting trick)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

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


def oriented(i: int, j: int, labels: Sequence[int], difference: str) -> tuple[int, int]:
    """``"ordered"``: from the smaller label to the larger; otherwise as given."""
    if difference == "ordered" and labels[i] > labels[j]:
        return j, i
    return i, j


def pair_indices(labels: Sequence[int], difference: str) -> list[tuple[int, int]]:
    n = len(labels)
    return [
        oriented(i, j, labels, difference)
        for i in range(n)
        for j in range(i + 1, n)
        if labels[i] != labels[j]
    ]


def pair_columns(z: Sequence[Sequence[float]], labels: Sequence[int], difference: str) -> list:
    return [diff_ref(z[i], z[j], difference) for i, j in pair_indices(labels, difference)]


def exact_ref(z, labels, measure: str, difference: str, reduction: str) -> float:
    return ctv_ref(pair_columns(z, labels, difference), measure, reduction)


def columns_torch(z: torch.Tensor, pairs: Sequence[tuple[int, int]], difference: str):
    """Explicit difference columns ``z_a - z_b`` (or ``|.|``) in the dtype of ``z``."""
    src = torch.tensor([a for a, _ in pairs], dtype=torch.long)
    dst = torch.tensor([b for _, b in pairs], dtype=torch.long)
    d = z[src] - z[dst]
    return d.abs() if difference == "abs" else d


def ctv_torch(m: torch.Tensor, measure: str, reduction: str = "mean", block: int = 64):
    """``sum_{p<q} G(m_p - m_q)`` from explicit differences, autograd-differentiable, with safe
    kinks (``sqrt`` and ``abs`` give the zero subgradient at 0; linf differentiates through
    the first maximizing coordinate, as documented for dasl's kernel)."""
    h_cols = m.shape[0]
    total = m.new_zeros(())
    upper = torch.triu(torch.ones(h_cols, h_cols, dtype=torch.bool), 1)
    for a in range(0, h_cols, block):
        diff = m[a : a + block, None, :] - m[None, :, :]
        keep = upper[a : a + block]
        if measure == "l2":
            s = (diff * diff).sum(-1)
            pos = (s > 0) & keep
            g = torch.where(pos, s, torch.ones_like(s)).sqrt() * pos
        elif measure == "l2sq":
            g = (diff * diff).sum(-1) * keep
        elif measure == "l1":
            g = diff.abs().sum(-1) * keep
        else:
            absd = diff.abs()
            g = absd.gather(-1, absd.argmax(-1, keepdim=True)).squeeze(-1) * keep
        total = total + g.sum()
    if reduction == "mean":
        total = total / max(1, h_cols * (h_cols - 1) // 2)
    return total


def value_and_grad(fn, z: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = z.detach().clone().requires_grad_()
    out = fn(x)
    out.backward()
    return float(out.detach()), x.grad.detach()


def _sign(x: float) -> float:
    return float((x > 0) - (x < 0))


def exact_grad_ref(z, labels, measure: str, difference: str) -> list[list[float]]:
    """``d/dz sum_{p<q} G(m_p - m_q)`` over the inter-class columns, by explicit loops, for
    ``G`` l1 (``sign(0) = 0`` per coordinate) or linf (``sign(v_k) e_k`` at the first
    coordinate ``k`` of largest ``|v_k|``; 0 for ``v = 0``); abs columns chain through
    ``sign(z_a - z_b)`` (0 at 0)."""
    zl = z.tolist() if isinstance(z, torch.Tensor) else [list(r) for r in z]
    lab = labels.tolist() if isinstance(labels, torch.Tensor) else list(labels)
    pairs = pair_indices(lab, difference)
    cols = [diff_ref(zl[a], zl[b], difference) for a, b in pairs]
    dim = len(zl[0])
    gcol = [[0.0] * dim for _ in cols]
    for p in range(len(cols)):
        for q in range(p + 1, len(cols)):
            v = [x - y for x, y in zip(cols[p], cols[q], strict=True)]
            if measure == "l1":
                step = [_sign(x) for x in v]
            else:
                top = max(abs(x) for x in v)
                k = next(k for k, x in enumerate(v) if abs(x) == top)
                step = [0.0] * dim
                step[k] = _sign(v[k])
            for k in range(dim):
                gcol[p][k] += step[k]
                gcol[q][k] -= step[k]
    grad = [[0.0] * dim for _ in zl]
    for (a, b), g in zip(pairs, gcol, strict=True):
        for k in range(dim):
            chain = _sign(zl[a][k] - zl[b][k]) if difference == "abs" else 1.0
            grad[a][k] += chain * g[k]
            grad[b][k] -= chain * g[k]
    return grad
