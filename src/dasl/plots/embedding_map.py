"""2-D maps of test-set embeddings (t-SNE or PCA), one panel per method, coloured by class.

A test split of hundreds of classes with about ten images each cannot be read in one scatter
plot (colours repeat, no legend fits), so the map shows a readable subset: the ``n_classes``
largest classes (ties broken by the smaller class id), each with its own colour and a legend
entry, and says in its title how many of how many classes and points it shows (#16).

Functional core and drawing are separate: :func:`embedding_map_data` selects the points and
computes the 2-D coordinates, :func:`embedding_map_figure` draws them, and
:func:`plot_embedding_maps` writes the PNG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dasl.errors import ConfigError
from dasl.plots._render import check_methods, class_colors, save_png
from dasl.registry import unknown_choice

MAP_METHODS = ("tsne", "pca")
MAP_CLASSES = 20
"""Classes shown by default: as many as tab20 has distinct colours and a legend can hold."""


def stratified_subsample(labels: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points, each class keeping its share.

    Class ``c`` with ``n_c`` of ``N`` points keeps ``max(1, floor(max_points * n_c / N))`` of
    them (a seeded random choice), so rare classes stay visible; all indices when ``N`` fits.
    """
    n = labels.shape[0]
    if max_points < 1:
        raise ConfigError(f"max_points must be >= 1, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.nonzero(labels == c)[0]
        k = max(1, int(max_points * idx.shape[0] // n))
        keep.append(rng.choice(idx, size=min(k, idx.shape[0]), replace=False))
    return np.sort(np.concatenate(keep))


def largest_classes(labels: np.ndarray, n_classes: int = MAP_CLASSES) -> np.ndarray:
    """The ``n_classes`` classes with the most points, ordered by (count descending, id
    ascending): a total order, so ties never depend on input order."""
    if not isinstance(n_classes, int) or isinstance(n_classes, bool) or n_classes < 1:
        raise ConfigError(f"n_classes must be a positive int, got {n_classes!r}")
    classes, counts = np.unique(labels, return_counts=True)
    order = np.lexsort((classes, -counts))  # last key is primary
    return classes[order[:n_classes]]


def project_2d(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """``(N, D) -> (N, 2)`` by sklearn t-SNE (PCA init, seeded) or PCA."""
    if method not in MAP_METHODS:
        raise unknown_choice("map method", method, MAP_METHODS)
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


@dataclass
class MapData:
    """What the map draws: the chosen classes, their points and each method's 2-D coordinates.

    ``index``: sorted rows of the input shown; ``labels``: their labels; ``coords[method]``:
    ``(len(index), 2)``; ``total_classes`` / ``total_points``: the size of the whole input.
    """

    classes: np.ndarray
    index: np.ndarray
    labels: np.ndarray
    coords: dict[str, np.ndarray]
    total_classes: int
    total_points: int
    method: str

    def title(self) -> str:
        """``"20 of 969 classes, 200 points"`` (the largest classes)."""
        shown = self.classes.shape[0]
        what = (
            f"{shown} of {self.total_classes} classes"
            if shown < self.total_classes
            else (f"all {shown} classes")
        )
        extra = " (the largest)" if shown < self.total_classes else ""
        return f"{what}{extra}, {self.index.shape[0]:,} points"


def embedding_map_data(
    embeddings_by_method: Mapping[str, Any],
    labels: Any,
    *,
    n_classes: int = MAP_CLASSES,
    method: str = "tsne",
    max_points: int = 2000,
    seed: int = 0,
) -> MapData:
    """Choose the :func:`largest_classes`, keep at most ``max_points`` of their points
    (:func:`stratified_subsample`) and project each method's embeddings of those points
    (only those: the map shows their neighbourhoods, not the whole split's)."""
    if method not in MAP_METHODS:
        raise unknown_choice("map method", method, MAP_METHODS)
    emb_by_method, lab = check_methods(embeddings_by_method, labels)
    classes = largest_classes(lab, n_classes)
    chosen = np.nonzero(np.isin(lab, classes))[0]
    index = chosen[stratified_subsample(lab[chosen], max_points, seed)]
    coords = {m: project_2d(e[index], method=method, seed=seed) for m, e in emb_by_method.items()}
    return MapData(
        classes=classes,
        index=index,
        labels=lab[index],
        coords=coords,
        total_classes=int(np.unique(lab).shape[0]),
        total_points=int(lab.shape[0]),
        method=method,
    )


def _name(class_names: Sequence[str] | Mapping[Any, str] | None, c: Any) -> str:
    if class_names is None:
        return str(c)
    if isinstance(class_names, Mapping):
        return str(class_names.get(c, c))
    try:
        return str(class_names[int(c)])
    except (IndexError, ValueError, TypeError):
        return str(c)


def embedding_map_figure(
    data: MapData, class_names: Sequence[str] | Mapping[Any, str] | None = None
) -> Figure:
    """One panel per method, one colour and legend entry per chosen class (in
    :func:`largest_classes` order), the counts in the title."""
    colors = class_colors(data.classes.shape[0])
    n_panels = len(data.coords)
    fig = Figure(figsize=(4.2 * n_panels + 1.8, 4.6))
    axes = [fig.add_subplot(1, n_panels, k + 1) for k in range(n_panels)]
    proj = "PCA" if data.method == "pca" else "t-SNE"
    for ax, (name, xy) in zip(axes, data.coords.items(), strict=True):
        for color, c in zip(colors, data.classes, strict=True):
            sel = data.labels == c
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=12,
                color=color,
                label=_name(class_names, c),
                alpha=0.9,
                linewidths=0,
            )
        ax.set_title(f"{name} ({proj})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(data.title(), fontsize=10)
    handles, names = axes[-1].get_legend_handles_labels()
    fig.legend(
        handles,
        names,
        loc="center right",
        markerscale=1.5,
        fontsize=7,
        frameon=False,
        title="class",
        title_fontsize=8,
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - 1.6 / fig.get_figwidth(), 1.0))
    return fig


def plot_embedding_maps(
    embeddings_by_method: Mapping[str, Any],
    labels: Any,
    path: str | os.PathLike[str],
    class_names: Sequence[str] | Mapping[Any, str] | None = None,
    method: str = "tsne",
    max_points: int = 2000,
    seed: int = 0,
    n_classes: int = MAP_CLASSES,
) -> Path:
    """One 2-D map per method, side by side, of the ``n_classes`` largest classes (the same
    points in every panel); ``class_names``: a sequence indexed by integer label or a
    ``{label: name}`` dict."""
    data = embedding_map_data(
        embeddings_by_method,
        labels,
        n_classes=n_classes,
        method=method,
        max_points=max_points,
        seed=seed,
    )
    return save_png(embedding_map_figure(data, class_names), path)
