"""λ sensitivity of a tuning study: the validation metric of every trial against its λ."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from dasl.errors import DataError
from dasl.plots._render import save_png


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def plot_lambda_sensitivity(
    params: Sequence[Any],
    values: Sequence[float],
    pruned: Sequence[bool],
    path: str | os.PathLike[str],
    *,
    param: str = "dar.lam",
    metric: str = "validation MAP@R",
    log_x: bool | None = None,
    best_index: int | None = None,
    x_range: tuple[float, float] | None = None,
) -> Path:
    """One point per trial: ``values[i]`` (y) against ``params[i]`` (x).

    Complete trials are filled circles; pruned trials (value at the epoch they were stopped)
    are hollow triangles, so a reader sees which points are final; ``best_index`` is ringed.
    ``log_x=None`` uses a log axis when every x is a positive number (the natural scale of
    λ), a linear one otherwise; non-numeric x (choices) are placed as categories.
    ``x_range``: the searched interval, drawn as the axis limits so that gaps show.
    """
    n = len(params)
    if n == 0 or len(values) != n or len(pruned) != n:
        raise DataError(
            f"params, values and pruned must be non-empty and of one length, got "
            f"{n}, {len(values)}, {len(pruned)}"
        )
    y = np.asarray(values, dtype=np.float64)
    if not np.isfinite(y).all():
        raise DataError("values must be finite numbers")
    numeric = all(_is_number(p) for p in params)
    if numeric:
        x = np.asarray(params, dtype=np.float64)
        categories: list[str] = []
    else:
        categories = sorted({str(p) for p in params})
        x = np.asarray([categories.index(str(p)) for p in params], dtype=np.float64)
    if log_x is None:
        log_x = numeric and bool((x > 0).all())
    if log_x and not (numeric and (x > 0).all()):
        raise DataError(f"a log x-axis needs positive numbers for {param}")
    mask = np.asarray(pruned, dtype=bool)

    fig = Figure(figsize=(5.6, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(x[~mask], y[~mask], s=36, color="C0", label=f"complete ({int((~mask).sum())})")
    if mask.any():
        ax.scatter(
            x[mask],
            y[mask],
            s=40,
            marker="v",
            facecolors="none",
            edgecolors="C3",
            label=f"pruned, value when stopped ({int(mask.sum())})",
        )
    if best_index is not None:
        ax.scatter(
            [x[best_index]],
            [y[best_index]],
            s=160,
            facecolors="none",
            edgecolors="k",
            linewidths=1.5,
            label="best",
        )
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
    if x_range is not None and numeric:
        lo, hi = x_range
        pad = (hi / lo) ** 0.03 if log_x else 0.03 * (hi - lo)
        ax.set_xlim(*((lo / pad, hi * pad) if log_x else (lo - pad, hi + pad)))
    if categories:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(param + (" (log scale)" if log_x else ""))
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {param}, one point per trial ({n})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
