"""Paired differences over seeds, 95% t-intervals and Bonferroni-corrected contrasts."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.ablation.cells import Cell
from benchmarks.common import ci95

REPORTED = (("recall@1", "R@1"), ("map@r", "MAP@R"), ("nmi", "NMI"))


def paired_difference(
    treated: dict[int, float], control: dict[int, float]
) -> tuple[float, float, float, int]:
    """``d_s = treated[s] - control[s]`` over the seeds both have: mean, std, CI half-width, n."""
    seeds = sorted(set(treated) & set(control))
    if not seeds:
        return float("nan"), float("nan"), float("nan"), 0
    mean, std, half = ci95([treated[s] - control[s] for s in seeds])
    return mean, std, half, len(seeds)


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Means, CIs and paired differences of the finals; the screening table's numbers."""
    chosen, finals = result["chosen"], result["finals"]
    rows: dict[str, Any] = {}
    for key, by_seed in finals.items():
        cell = Cell.from_key(key)
        base_runs = finals.get(Cell(cell.base).key, {})
        row: dict[str, Any] = {"cell": key, "value": chosen[key], "seeds": sorted(by_seed)}
        for metric, _ in REPORTED:
            vals = {s: 100 * r["test"][metric] for s, r in by_seed.items()}
            row[metric] = list(ci95(list(vals.values())))
            if not cell.is_baseline:
                ctrl = {s: 100 * r["test"][metric] for s, r in base_runs.items()}
                row[f"delta_{metric}"] = list(paired_difference(vals, ctrl))
        for stat in ("mean", "std", "cv"):
            row[f"interclass_{stat}"] = list(
                ci95([r["interclass"][stat] for r in by_seed.values()])
            )
        row["gap_map@r"] = list(ci95([100 * r["gap_map@r"] for r in by_seed.values()]))
        steps = [r["step_s"] for r in by_seed.values() if r["step_s"]]
        row["step_ms"] = 1000 * statistics.median(steps) if steps else float("nan")
        rows[key] = row
    return rows


def contrast_pairs(
    result: dict[str, Any], extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """``(treated, control)`` final-cell pairs: every cell vs its base loss, every DAR finalist
    vs every control of the same base (#18: "a control matches DAR" is the decision rule),
    then ``extra`` (e.g. across bases: a tuned baseline vs the untuned one)."""
    finals = result["finals"]
    keys = list(finals)
    pairs = [(k, Cell(Cell.from_key(k).base).key) for k in keys if not Cell.from_key(k).is_baseline]
    for k in keys:
        cell = Cell.from_key(k)
        if cell.is_baseline or cell.is_control:
            continue
        pairs += [
            (k, c)
            for c in keys
            if Cell.from_key(c).is_control and Cell.from_key(c).base == cell.base
        ]
    pairs += [p for p in extra if p[0] in finals and p[1] in finals]
    return [p for p in pairs if p[1] in finals]


def contrasts(result: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Paired differences (same seed) of R@1, MAP@R, NMI (points) and of the inter-class
    distance mean and CV for each pair, with the 95% t-interval and the Bonferroni-corrected
    one for ``3 x len(pairs)`` comparisons (the three accuracy metrics of every pair)."""
    from scipy.stats import t as student_t

    finals = result["finals"]
    m = 3 * max(len(pairs), 1)
    rows = []
    for treated, control in pairs:
        row: dict[str, Any] = {"treated": treated, "control": control, "comparisons": m}
        for metric, _ in REPORTED:
            a = {s: 100 * r["test"][metric] for s, r in finals[treated].items()}
            b = {s: 100 * r["test"][metric] for s, r in finals[control].items()}
            mean, std, half, n = paired_difference(a, b)
            bonf = (
                float(student_t.ppf(1 - 0.05 / (2 * m), n - 1)) * std / math.sqrt(n)
                if n >= 2
                else float("nan")
            )
            row[metric] = {"mean": mean, "std": std, "ci95": half, "bonferroni": bonf, "n": n}
        for stat in ("mean", "cv"):
            a = {s: r["interclass"][stat] for s, r in finals[treated].items()}
            b = {s: r["interclass"][stat] for s, r in finals[control].items()}
            mean, std, half, n = paired_difference(a, b)
            row[f"interclass_{stat}"] = {"mean": mean, "std": std, "ci95": half, "n": n}
        rows.append(row)
    return rows
