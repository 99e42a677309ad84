"""``reproduce.json`` / ``reproduce.md``: our numbers beside the poster's, the gap, the anchors.

Percent throughout; ``gap = our mean - the poster's number`` in points. Ours is the mean over
the seeds that finished, with the 95% t-interval half-width when there are several
(:func:`dasl.reproduce.seed_summary.summarize`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dasl.reproduce.field_anchors import ANCHORS, MLRC_NOTE
from dasl.reproduce.paper_tables import POSTER, paper_number
from dasl.reproduce.seed_summary import summarize
from dasl.reproduce.tables import Column, Row, Table
from dasl.utils.io import atomic_write_json, atomic_write_text, make_dir

DASH = "—"


@dataclass
class RowRuns:
    """One row's runs: ``metrics`` per seed (``None`` while that seed has not finished)."""

    row: Row
    config: str
    run_dirs: dict[int, str]
    metrics: dict[int, dict[str, Any] | None] = field(default_factory=dict)


def _cell(runs: RowRuns, column: Column, table: str, with_paper: bool) -> dict[str, Any]:
    values = [
        100.0 * float(m[column.metric])
        for m in runs.metrics.values()
        if m is not None and isinstance(m.get(column.metric), int | float)
    ]
    cell: dict[str, Any] = {"values": values, "n": len(values)}
    if values:
        s = summarize(values)
        cell.update(mean=s.mean, ci95=s.half_width)
    else:
        cell.update(mean=None, ci95=None)
    if with_paper:
        paper = paper_number(table, runs.row.key, column.metric)
        cell["poster"] = None if paper is None else paper.value
        cell["poster_source"] = None if paper is None else paper.source()
        cell["poster_cell"] = None if paper is None else vars(paper)
        cell["gap"] = None if paper is None or not values else cell["mean"] - paper.value
    return cell


def build_report(
    table: Table,
    rows: Sequence[RowRuns],
    seeds: Sequence[int],
    *,
    command: str,
    overrides: Sequence[str],
    out_dir: Path,
) -> dict[str, Any]:
    """The content of ``reproduce.json``."""
    out_rows = []
    for runs in rows:
        done = sorted(s for s, m in runs.metrics.items() if m is not None)
        out_rows.append(
            {
                "key": runs.row.key,
                "label": runs.row.label,
                "config": runs.config,
                "seeds_done": done,
                "runs": {
                    str(s): {"run_dir": runs.run_dirs[s], "metrics": runs.metrics.get(s)}
                    for s in seeds
                },
                "columns": {c.metric: _cell(runs, c, table.name, True) for c in table.columns},
                "extra": {c.metric: _cell(runs, c, table.name, False) for c in table.extra},
            }
        )
    notes = [MLRC_NOTE] if table.command == "train" else []
    if not any(paper_number(table.name, r.row.key, c.metric) for r in rows for c in table.columns):
        notes.insert(0, f"The poster has no {table.title} numbers for these rows.")
    return {
        "table": table.name,
        "title": table.title,
        "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "overrides": list(overrides),
        "seeds": list(seeds),
        "units": "percent; gap = our mean - the poster's number, in points",
        "poster": POSTER,
        "out_dir": str(out_dir),
        "columns": [{"metric": c.metric, "label": c.label} for c in table.columns],
        "extra_columns": [{"metric": c.metric, "label": c.label} for c in table.extra],
        "rows": out_rows,
        "anchors": [vars(a) for a in ANCHORS.get(table.name, ())],
        "notes": notes,
    }


def _ours(cell: dict[str, Any], n_seeds: int) -> str:
    if cell["mean"] is None:
        return DASH
    text = f"{cell['mean']:.2f}"
    if cell["ci95"] is not None:
        text += f" ± {cell['ci95']:.2f}"
    if cell["n"] < n_seeds:
        text += f" ({cell['n']} of {n_seeds} seeds)"
    return text


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _label(column: dict[str, str], metric_labels: dict[str, str]) -> str:
    return metric_labels.get(column["metric"], column["metric"])


def _poster_cells(row: dict[str, Any]) -> list[str]:
    """The poster cells of a row, one line per (table, row label, note)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for cell in row["columns"].values():
        pc = cell["poster_cell"]
        if pc is not None:
            groups.setdefault((pc["table"], pc["row"], pc["note"]), []).append(pc["column"])
    return [
        f"{table}, row '{label}', columns {', '.join(cols)}" + (f" ({note})" if note else "")
        for (table, label, note), cols in groups.items()
    ]


def render_markdown(report: dict[str, Any]) -> str:
    """``reproduce.md``: the comparison table, the anchors, where every number comes from."""
    n_seeds = len(report["seeds"])
    labels = {c["metric"]: c["label"] for c in report["columns"] + report["extra_columns"]}
    seeds = report["seeds"]
    seed_text = f"seed {seeds[0]}" if n_seeds == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    lines = [
        f"# dasl reproduce {report['table']}: {report['title']}",
        "",
        f"Written {report['written']} by `{report['command']}`.",
        "",
        f"Ours beside the poster's numbers, in percent; ours = mean over {seed_text}"
        + (" ± the 95% t-interval half-width" if n_seeds > 1 else "")
        + "; gap = ours − poster, in points; — = no number.",
    ]
    if report["overrides"]:
        lines += [
            "",
            "Settings changed from the configs: `"
            + " ".join(report["overrides"])
            + "`. Numbers from another budget or setting are not comparable with the poster's.",
        ]
    header = ["row"]
    for c in report["columns"]:
        name = _label(c, labels)
        header += [name, f"{name} poster", "gap"]
    header += [_label(c, labels) for c in report["extra_columns"]]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report["rows"]:
        cells = [row["label"]]
        for c in report["columns"]:
            cell = row["columns"][c["metric"]]
            cells += [_ours(cell, n_seeds), _num(cell["poster"]), _num(cell["gap"], True)]
        cells += [_ours(row["extra"][c["metric"]], n_seeds) for c in report["extra_columns"]]
        lines.append("| " + " | ".join(cells) + " |")
    if report["anchors"]:
        lines += [
            "",
            "## The field, for context (other setups: not targets)",
            "",
            "| method | setup | metric | value | source |",
            "|---|---|---|---|---|",
        ]
        for a in report["anchors"]:
            metric = labels.get(a["metric"], a["metric"])
            lines.append(
                f"| {a['method']} | {a['setup']} | {metric} | {a['value']:.1f} | {a['source']} |"
            )
    lines += ["", "## Where the numbers come from", ""]
    for row in report["rows"]:
        runs = ", ".join(f"seed {s}: {r['run_dir']}" for s, r in row["runs"].items())
        lines.append(f"- {row['label']}: config `{row['config']}`; runs {runs}.")
        lines += [f"  - poster: {text}" for text in _poster_cells(row)]
    lines.append(f"- Poster: {report['poster']}.")
    for note in report["notes"]:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``reproduce.json`` then ``reproduce.md`` into ``out_dir``, each atomically."""
    make_dir(out_dir)
    json_path = atomic_write_json(out_dir / "reproduce.json", report)
    md_path = atomic_write_text(out_dir / "reproduce.md", render_markdown(report))
    return json_path, md_path
