"""2-D maps of test-set embeddings (t-SNE or PCA), one panel per method, coloured by class."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dasl.plots._render import check_methods, class_colors, save_png

MAP_METHODS = ("tsne", "pca")
_MAX_LEGEND = 20  # beyond this a legend hides the plot


def stratified_subsample(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points, each class keeping its share.

    Class ``c`` with ``n_c`` of ``N`` points keeps ``max(1, floor(max_points * n_c / N))`` of
    them (a seeded random choice), so rare classes stay visible; all indices when ``N`` fits.
    """
    n = labels.shape[0]
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        k = max(1, int(max_points * idx.shape[0] // n))
        keep.append(rng.choice(idx, size=min(k, idx.shape[0]), replace=False))
    return np.sort(np.concatenate(keep))


def project_2d(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """``(N, D) -> (N, 2)`` by sklearn t-SNE (PCA init, seeded) or PCA."""
    if method not in MAP_METHODS:
        raise ValueError(f"unknown map method {method!r}; valid values are {list(MAP_METHODS)}")
    n = x.shape[0]
    if n < 3 or x.shape[1] < 2:
        out = np.zeros((n, 2))
        out[:, : min(2, x.shape[1])] = x[:, :2]
        return out
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (n - 1) / 3.0))  # sklearn requires perplexity < n
    tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed)
    return tsne.fit_transform(x)


def _name(class_names: Sequence[str] | Mapping[Any, str] | None, c: Any) -> str:
    if class_names is None:
        return str(c)
    if isinstance(class_names, Mapping):
        return str(class_names.get(c, c))
    try:
        return str(class_names[int(c)])
    except (IndexError, ValueError, TypeError):
        return str(c)


def plot_embedding_maps(
    embeddings_by_method: Mapping[str, Any],
    labels: Any,
    path: str | os.PathLike[str],
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    method: str = "tsne",
    max_points: int = 2000,
    seed: int = 0,
) -> Path:
    """One 2-D map per method, side by side; the same stratified subsample in every panel.

    ``class_names``: a sequence indexed by integer label or a ``{label: name}`` dict.
    """
    if method not in MAP_METHODS:
        raise ValueError(f"unknown map method {method!r}; valid values are {list(MAP_METHODS)}")
    emb_by_method, lab = check_methods(embeddings_by_method, labels)
    idx = stratified_subsample(lab, max_points, seed)
    lab = lab[idx]
    classes = np.unique(lab)
    colors = class_colors(classes.shape[0])
    n_panels = len(emb_by_method)
    fig = Figure(figsize=(4.2 * n_panels + 1.8, 4.4))
    axes = [fig.add_subplot(1, n_panels, k + 1) for k in range(n_panels)]
    for ax, (name, emb) in zip(axes, emb_by_method.items(), strict=True):
        xy = project_2d(emb[idx], method=method, seed=seed)
        for color, c in zip(colors, classes, strict=True):
            sel = lab == c
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=4,
                color=color,
                label=_name(class_names, c),
                alpha=0.8,
                linewidths=0,
            )
        ax.set_title(f"{name} ({method.upper() if method == 'pca' else 't-SNE'}, {idx.size} pts)")
        ax.set_xticks([])
        ax.set_yticks([])
    if classes.shape[0] <= _MAX_LEGEND:
        handles, names = axes[-1].get_legend_handles_labels()
        fig.legend(handles, names, loc="center right", markerscale=3, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0.0, 0.0, 1.0 - 1.6 / fig.get_figwidth(), 1.0))
    else:
        fig.suptitle(f"{classes.shape[0]} classes (legend omitted)", fontsize=9)
        fig.tight_layout()
    return save_png(fig, path)
