"""Markdown tables of a run folder: the method comparison and where the time went."""

from __future__ import annotations

from collections.abc import Sequence

METRIC_COLUMNS = ("map@r", "r_precision", "nmi")


def markdown_table(
    rows: dict[str, dict[str, float]],
    columns: Sequence[tuple[str, str, str]],
    first: str = "method",
) -> str:
    """One row per entry of ``rows``; ``columns`` are ``(key, title, kind)`` with kind
    ``"pct"`` (value x 100, 2 decimals) or ``"num"`` (3 decimals). Missing values are blank."""
    lines = [
        f"| {first} | " + " | ".join(t for _, t, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, m in rows.items():
        cells = []
        for key, _, kind in columns:
            v = m.get(key)
            if v is None:
                cells.append("")
            elif kind == "pct":
                cells.append(f"{100 * v:.2f}")
            else:
                cells.append(f"{v:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(rows: dict[str, dict[str, float]], ks: Sequence[int]) -> str:
    """Markdown table: one row per method, Recall@K then MAP@R, R-precision, NMI (in %)."""
    columns = (
        [(f"recall@{k}", f"R@{k}", "pct") for k in ks]
        + [(c, t, "pct") for c, t in zip(METRIC_COLUMNS, ("MAP@R", "R-Prec", "NMI"), strict=True)]
        + [("interclass_cv", "inter-class dist. CV", "num")]
    )
    return markdown_table(rows, columns)


def timing_table(timings: dict[str, dict[str, float]]) -> str:
    lines = ["| stage | seconds |", "|---|---|"]
    for stage, parts in timings.items():
        for k, v in parts.items():
            step = k.removesuffix("_s")
            label = stage if step == stage or len(parts) == 1 else f"{stage}: {step}"
            lines.append(f"| {label} | {v:.1f} |")
    return "\n".join(lines)
