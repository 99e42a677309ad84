"""Markdown tables of a run folder: the method comparison and where the time went."""

from __future__ import annotations

from collections.abc import Sequence

from dasl.choices import RANKING_METRICS

Column = tuple[str, str, str]
"""``(key, title, kind)``: kind ``"pct"`` (value x 100, 2 decimals) or ``"num"`` (3 decimals)."""


def table_cells(
    rows: dict[str, dict[str, float]], columns: Sequence[Column], first: str = "method"
) -> tuple[list[str], list[list[str]]]:
    """The header and the formatted cells of the table (the first cell of a row is its name);
    missing values are blank. Shared by the Markdown table and ``report.html``."""
    header = [first, *(t for _, t, _ in columns)]
    body = []
    for name, m in rows.items():
        cells = [name]
        for key, _, kind in columns:
            v = m.get(key)
            if v is None:
                cells.append("")
            elif kind == "pct":
                cells.append(f"{100 * v:.2f}")
            else:
                cells.append(f"{v:.3f}")
        body.append(cells)
    return header, body


def markdown_table(
    rows: dict[str, dict[str, float]],
    columns: Sequence[Column],
    first: str = "method",
) -> str:
    """One row per entry of ``rows``, the cells of :func:`table_cells`."""
    header, body = table_cells(rows, columns, first)
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def comparison_columns(ks: Sequence[int]) -> list[Column]:
    """Recall@K for every K, then the ranking metrics (MAP@R, R-precision and any registered
    one), NMI (in %) and the inter-class CV."""
    ranking = [
        (name, RANKING_METRICS.entry(name).title or name, "pct") for name in RANKING_METRICS.names()
    ]
    return (
        [(f"recall@{k}", f"R@{k}", "pct") for k in ks]
        + ranking
        + [("nmi", "NMI", "pct"), ("interclass_cv", "inter-class dist. CV", "num")]
    )


def comparison_table(rows: dict[str, dict[str, float]], ks: Sequence[int]) -> str:
    """Markdown table: one row per method, Recall@K then MAP@R, R-precision, NMI (in %)."""
    return markdown_table(rows, comparison_columns(ks))


def timing_table(timings: dict[str, dict[str, float]]) -> str:
    """Markdown table: seconds per stage (and per step of a stage)."""
    lines = ["| stage | seconds |", "|---|---|"]
    for stage, parts in timings.items():
        for k, v in parts.items():
            step = k.removesuffix("_s")
            label = stage if step == stage or len(parts) == 1 else f"{stage}: {step}"
            lines.append(f"| {label} | {v:.1f} |")
    return "\n".join(lines)
