"""Training curves per epoch: base loss, DAR term, validation MAP@R, one line per method.

The DAR panel shows the term as it enters the objective, ``λ · R_align`` (the history logs
``R_align`` alone as ``train/dar``), so its height compares with the base loss; each line's
legend gives its λ (#16). Without the weights the raw ``R_align`` is drawn and the panel says
it is unweighted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dasl.errors import DataError
from dasl.plots._render import save_png

DAR_KEY = "train/dar"

# (history key, panel title); a method lacking a key is listed as absent in that panel.
CURVE_PANELS: tuple[tuple[str, str], ...] = (
    ("train/base_loss", "base loss (train)"),
    (DAR_KEY, "DAR term (train)"),
    ("val/map@r", "MAP@R (validation)"),
)


def _series(values: Sequence[float | None], method: str, key: str) -> np.ndarray:
    try:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"history of {method!r}, key {key!r}: values must be numbers") from err


def _lam_text(lam: float) -> str:
    return f"{lam:g}"


def dar_panel_title(dar_weights: Mapping[str, float] | None, drawn: Sequence[str]) -> str:
    """``"λ·R_align, λ=3 (train)"`` when every drawn method has one λ, ``"λ·R_align (train)"``
    when they differ (each legend entry names its λ), ``"R_align, unweighted (train)"``
    without weights."""
    if dar_weights is None:
        return "R_align, unweighted (train)"
    lams = {dar_weights[m] for m in drawn}
    if len(lams) == 1:
        return f"λ·R_align, λ={_lam_text(lams.pop())} (train)"
    return "λ·R_align (train)"


def curve_series(
    history_by_method: Mapping[str, Mapping[str, Sequence[float | None]]],
    key: str,
    dar_weights: Mapping[str, float] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{method: (epochs, values)}`` drawn in the panel of ``key``: finite points only; for
    :data:`DAR_KEY` with ``dar_weights``, the values are ``λ_m · R_align``. Methods without
    ``key`` are left out."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for method, hist in history_by_method.items():
        if not isinstance(hist, Mapping):
            raise DataError(f"history of {method!r} must be a dict of lists")
        if key not in hist or len(hist[key]) == 0:
            continue
        y = _series(hist[key], method, key)
        x = _series(hist["epoch"], method, "epoch") if "epoch" in hist else None
        if x is None:
            x = np.arange(1, y.shape[0] + 1, dtype=np.float64)
        if x.shape != y.shape:
            raise DataError(
                f"history of {method!r}: {key!r} has {y.shape[0]} values, 'epoch' has {x.shape[0]}"
            )
        if key == DAR_KEY and dar_weights is not None:
            if method not in dar_weights:
                raise DataError(f"dar_weights has no λ for {method!r}, which logs {DAR_KEY!r}")
            y = float(dar_weights[method]) * y
        ok = np.isfinite(y) & np.isfinite(x)
        out[str(method)] = (x[ok], y[ok])
    return out


def training_curves_figure(
    history_by_method: Mapping[str, Mapping[str, Sequence[float | None]]],
    panels: Sequence[tuple[str, str]] = CURVE_PANELS,
    dar_weights: Mapping[str, float] | None = None,
) -> Figure:
    """The figure of :func:`plot_training_curves`."""
    if not isinstance(history_by_method, Mapping) or not history_by_method:
        raise DataError("history_by_method must be a non-empty dict {method name: history}")
    fig = Figure(figsize=(4.4 * len(panels), 3.8))
    colour = {m: f"C{k % 10}" for k, m in enumerate(history_by_method)}
    for p, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1)
        series = curve_series(history_by_method, key, dar_weights)
        absent = [str(m) for m in history_by_method if str(m) not in series]
        for method, (x, y) in series.items():
            label = method
            if key == DAR_KEY and dar_weights is not None:
                label = f"{method} (λ={_lam_text(float(dar_weights[method]))})"
            ax.plot(x, y, marker="o", ms=3, lw=1.5, color=colour[method], label=label)
        if key == DAR_KEY:
            title = dar_panel_title(dar_weights, list(series))
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
        if not series:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
        else:
            ax.legend(fontsize=8)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_training_curves(
    history_by_method: Mapping[str, Mapping[str, Sequence[float | None]]],
    path: str | os.PathLike[str],
    panels: Sequence[tuple[str, str]] = CURVE_PANELS,
    dar_weights: Mapping[str, float] | None = None,
) -> Path:
    """One panel per ``(key, title)`` in ``panels``; x is ``history["epoch"]`` (else 1..n).

    Missing keys are skipped (e.g. a baseline has no DAR term: it is named as absent in that
    panel, never drawn as zero); ``None``/NaN entries are gaps (e.g. epochs without validation).
    ``dar_weights``: ``{method: λ}``; the DAR panel then draws ``λ · R_align``.
    """
    return save_png(training_curves_figure(history_by_method, panels, dar_weights), path)
