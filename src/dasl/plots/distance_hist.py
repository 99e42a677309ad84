"""Inter-class distance histograms: the picture of what difference alignment does (the
distances and their statistics are :mod:`dasl.metrics.interclass`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dasl.metrics.interclass import (
    distance_stats,
    interclass_distance_stats,
    interclass_distances,
    interclass_pair_count,
)
from dasl.plots._render import check_methods, save_png

# Re-exported: dasl.plots.distance_hist was their home before #17.
__all__ = [
    "interclass_distance_stats",
    "interclass_distances",
    "interclass_pair_count",
    "plot_interclass_distance_hist",
]


def plot_interclass_distance_hist(
    embeddings_by_method: Mapping[str, Any],
    labels: Any,
    path: str | os.PathLike[str],
    max_pairs: int = 200_000,
    seed: int = 0,
    bins: int = 60,
    title: str | None = None,
) -> Path:
    """Overlaid density histograms of inter-class distances, one per method, on shared bins;
    each legend entry gives the method's mean, std and coefficient of variation."""
    emb_by_method, lab = check_methods(embeddings_by_method, labels)
    dists = {
        m: interclass_distances(e, lab, max_pairs=max_pairs, seed=seed)
        for m, e in emb_by_method.items()
    }
    lo = min(float(d.min()) for d in dists.values())
    hi = max(float(d.max()) for d in dists.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1).tolist()
    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    for k, (method, d) in enumerate(dists.items()):
        s = distance_stats(d)
        color = f"C{k % 10}"
        label = f"{method}: mean={s['mean']:.3f}, std={s['std']:.3f}, CV={s['cv']:.3f}"
        ax.hist(d, bins=edges, density=True, histtype="stepfilled", alpha=0.25, color=color)
        ax.hist(d, bins=edges, density=True, histtype="step", lw=1.5, color=color, label=label)
        ax.axvline(s["mean"], color=color, ls="--", lw=1)
    ax.set_xlabel("Euclidean distance between inter-class pairs")
    ax.set_ylabel("density")
    n_pairs = next(iter(dists.values())).shape[0]
    ax.set_title(title or f"Inter-class distances ({n_pairs:,} pairs per method)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_png(fig, path)
