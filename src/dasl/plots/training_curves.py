"""Training curves per epoch: base loss, DAR term, validation MAP@R, one line per method."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dasl.plots._render import save_png

# (history key, panel title); a method lacking a key is listed as absent in that panel.
CURVE_PANELS: tuple[tuple[str, str], ...] = (
    ("train/base_loss", "base loss (train)"),
    ("train/dar", "DAR term (train)"),
    ("val/map@r", "MAP@R (validation)"),
)


def _series(values: Sequence[float | None], method: str, key: str) -> np.ndarray:
    try:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"history of {method!r}, key {key!r}: values must be numbers") from err


def plot_training_curves(
    history_by_method: Mapping[str, Mapping[str, Sequence[float | None]]],
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, str]] = CURVE_PANELS,
) -> Path:
    """One panel per ``(key, title)`` in ``panels``; x is ``history["epoch"]`` (else 1..n).

    Missing keys are skipped (e.g. a baseline has no DAR term: it is named as absent in that
    panel, never drawn as zero); ``None``/NaN entries are gaps (e.g. epochs without validation).
    """
    if not isinstance(history_by_method, Mapping) or not history_by_method:
        raise ValueError("history_by_method must be a non-empty dict {method name: history}")
    fig = Figure(figsize=(4.4 * len(panels), 3.8))
    for p, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1)
        absent = []
        for k, (method, hist) in enumerate(history_by_method.items()):
            if not isinstance(hist, Mapping):
                raise ValueError(f"history of {method!r} must be a dict of lists")
            if key not in hist or len(hist[key]) == 0:
                absent.append(str(method))
                continue
            y = _series(hist[key], method, key)
            x = _series(hist["epoch"], method, "epoch") if "epoch" in hist else None
            if x is None:
                x = np.arange(1, y.shape[0] + 1, dtype=np.float64)
            if x.shape != y.shape:
                raise ValueError(
                    f"history of {method!r}: {key!r} has {y.shape[0]} values, "
                    f"'epoch' has {x.shape[0]}"
                )
            ok = np.isfinite(y) & np.isfinite(x)
            ax.plot(x[ok], y[ok], marker="o", ms=3, lw=1.5, color=f"C{k % 10}", label=str(method))
        if absent:
            ax.text(
                0.02,
                0.02,
                "absent: " + ", ".join(absent),
                transform=ax.transAxes,
                fontsize=8,
                color="0.35",
                va="bottom",
            )
        if len(absent) == len(history_by_method):
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
        else:
            ax.legend(fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)
