"""Slow, independent references (float64, full score matrix, explicit Python loops)."""

from __future__ import annotations

import numpy as np


def scores64(q: np.ndarray, g: np.ndarray, distance: str) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if distance == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
        return q @ g.T
    if distance == "dot":
        return q @ g.T
    s = np.empty((len(q), len(g)))
    for i in range(len(q)):
        for j in range(len(g)):
            s[i, j] = -float(((q[i] - g[j]) ** 2).sum())
    return s


def ranked(q, g, distance: str, exclude_self: bool) -> list[list[int]]:
    """Full ranking of gallery indices per query: score descending, then index ascending."""
    s = scores64(q, g, distance)
    out = []
    for i in range(len(q)):
        cand = [j for j in range(len(g)) if not (exclude_self and j == i)]
        out.append(sorted(cand, key=lambda j, i=i: (-s[i, j], j)))
    return out


def metrics(q, q_labels, ks, g=None, g_labels=None, distance="cosine") -> dict[str, float]:
    self_gallery = g is None
    if self_gallery:
        g, g_labels = q, q_labels
    q_labels, g_labels = list(np.asarray(q_labels)), list(np.asarray(g_labels))
    order = ranked(q, g, distance, exclude_self=self_gallery)
    rec = {k: [] for k in ks}
    aps, rps = [], []
    for i, row in enumerate(order):
        r = sum(1 for j in range(len(g_labels)) if g_labels[j] == q_labels[i])
        if self_gallery:
            r -= 1
        if r == 0:
            continue
        match = [g_labels[j] == q_labels[i] for j in row]
        for k in ks:
            rec[k].append(1.0 if any(match[:k]) else 0.0)
        rps.append(sum(match[:r]) / r)
        hits, ap = 0, 0.0
        for pos in range(r):
            if match[pos]:
                hits += 1
                ap += hits / (pos + 1)
        aps.append(ap / r)
    out = {f"recall@{k}": float(np.mean(v)) for k, v in rec.items()}
    out["map@r"] = float(np.mean(aps))
    out["r_precision"] = float(np.mean(rps))
    out["num_queries"] = len(aps)
    return out


def tie_data(n: int, seed: int, dim: int = 8) -> np.ndarray:
    """Rows with 4 entries in {-1, +1}, rest 0, many repeated: norm 2 exactly, so cosine, dot and
    euclidean scores are exact in float32 and ties are real ties."""
    rng = np.random.default_rng(seed)
    base = np.zeros((max(2, n // 3), dim), dtype=np.float32)
    for row in base:
        pos = rng.choice(dim, 4, replace=False)
        row[pos] = rng.choice([-1.0, 1.0], 4)
    return base[rng.integers(0, len(base), n)]
