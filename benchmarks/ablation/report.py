"""The report: Markdown tables, the JSON payload and the plots of one run."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.ablation.cells import Cell, comparable
from benchmarks.ablation.plots import plot_all
from benchmarks.ablation.search import Plan
from benchmarks.ablation.statistics import REPORTED, contrast_pairs, contrasts, summarize
from benchmarks.common import write_results
from dasl.utils.io import atomic_write_text


def contrasts_table(rows: Sequence[dict[str, Any]], chosen: dict[str, float]) -> str:
    """Markdown: one line per pair, ``Δ (±95% CI) [±Bonferroni]``."""

    def setting(key: str) -> str:
        v = chosen.get(key)
        if v is None:
            return ""
        return f" (lr {v:g})" if Cell.from_key(key).is_baseline else f" (λ {v:g})"

    head = (
        "| treated − control | seeds | Δ R@1 | Δ MAP@R | Δ NMI | Δ inter-class mean | Δ CV |\n"
        "|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        cells = []
        for metric, _ in REPORTED:
            d = r[metric]
            cells.append(
                f"{d['mean']:+.2f} (±{d['ci95']:.2f}) [±{d['bonferroni']:.2f}]"
                if not math.isnan(d["ci95"])
                else f"{d['mean']:+.2f}"
            )
        for stat in ("mean", "cv"):
            d = r[f"interclass_{stat}"]
            cells.append(
                f"{d['mean']:+.3f} (±{d['ci95']:.3f})"
                if not math.isnan(d["ci95"])
                else f"{d['mean']:+.3f}"
            )
        lines.append(
            f"| {r['treated']}{setting(r['treated'])} − {r['control']}{setting(r['control'])} | "
            f"{r[REPORTED[0][0]]['n']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def _fmt(triple: Sequence[float], signed: bool = False, digits: int = 2) -> str:
    mean, _, half = triple[:3]
    if isinstance(mean, float) and math.isnan(mean):
        return "-"
    m = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return m if math.isnan(half) else f"{m} (±{half:.{digits}f})"


def screening_table(plan: Plan, result: dict[str, Any]) -> str:
    screen, chosen = result["screen"], result["chosen"]
    lams = sorted(
        set(plan.lambdas)
        | set(plan.tune_lambdas)
        | {v for k, runs in screen.items() if not Cell.from_key(k).is_baseline for v in runs}
    )
    head = (
        "| cell | "
        + " | ".join(f"val λ={v:g}" for v in lams)
        + " | chosen | test R@1 | test MAP@R | Δ R@1 | Δ MAP@R | CV | gap | ms/step |"
    )
    lines = [head, "|---|" + "---|" * (len(lams) + 8)]
    for cell in plan.cells:
        runs = screen.get(cell.key, {})
        if not runs:
            continue
        v = chosen[cell.key]
        best = runs[v]
        base = screen.get(Cell(cell.base).key, {})
        base_rec = base.get(chosen.get(Cell(cell.base).key)) if base else None
        if cell.is_baseline:
            vals = " | ".join(
                ("lr " + ", ".join(f"{lr:g}: {100 * r['val_map@r']:.2f}" for lr, r in runs.items()))
                if i == 0
                else ""
                for i in range(len(lams))
            )
            chosen_s = f"lr {v:g}"
        else:
            vals = " | ".join(
                f"{100 * runs[lam]['val_map@r']:.2f}" if lam in runs else "" for lam in lams
            )
            chosen_s = f"λ {v:g}"
        t = best["test"]
        if base_rec is not None and not cell.is_baseline:
            d1 = f"{100 * (t['recall@1'] - base_rec['test']['recall@1']):+.2f}"
            d2 = f"{100 * (t['map@r'] - base_rec['test']['map@r']):+.2f}"
        else:
            d1 = d2 = "-"
        lines.append(
            f"| {cell.key} | {vals} | {chosen_s} | {100 * t['recall@1']:.2f} | "
            f"{100 * t['map@r']:.2f} | {d1} | {d2} | {best['interclass']['cv']:.3f} | "
            f"{100 * best['gap_map@r']:.2f} | {1000 * (best['step_s'] or float('nan')):.0f} |"
        )
    return "\n".join(lines)


def finals_table(rows: dict[str, Any]) -> str:
    head = (
        "| cell | setting | seeds | R@1 | MAP@R | NMI | Δ R@1 | Δ MAP@R | Δ NMI | "
        "inter-class mean | std | CV | train−test MAP@R gap | ms/step |"
    )
    lines = [head, "|---|" + "---|" * 13]
    for key, r in rows.items():
        cell = Cell.from_key(key)
        setting = f"lr {r['value']:g}" if cell.is_baseline else f"λ {r['value']:g}"
        deltas = [
            "-" if cell.is_baseline else _fmt(r[f"delta_{m}"], signed=True) for m, _ in REPORTED
        ]
        lines.append(
            f"| {key} | {setting} | {len(r['seeds'])} | "
            + " | ".join(_fmt(r[m]) for m, _ in REPORTED)
            + " | "
            + " | ".join(deltas)
            + f" | {_fmt(r['interclass_mean'], digits=3)} | {_fmt(r['interclass_std'], digits=3)}"
            + f" | {_fmt(r['interclass_cv'], digits=3)} | {_fmt(r['gap_map@r'])}"
            + f" | {r['step_ms']:.0f} |"
        )
    return "\n".join(lines)


def overfit_table(result: dict[str, Any]) -> str:
    """Per epoch, the baselines' train-class and validation-class MAP@R (mean over seeds)."""
    lines = []
    for key, by_seed in sorted(result["finals"].items()):
        if not Cell.from_key(key).is_baseline:
            continue
        epochs: dict[int, list[tuple[float, float]]] = {}
        for rec in by_seed.values():
            for row in rec["epochs"]:
                if row["train_map@r"] is not None and row["val_map@r"] is not None:
                    epochs.setdefault(row["epoch"], []).append(
                        (row["train_map@r"], row["val_map@r"])
                    )
        if not lines:
            lines += ["| baseline | epoch | train-class MAP@R | val-class MAP@R | seeds |"]
            lines += ["|---|---|---|---|---|"]
        for e, pairs in sorted(epochs.items()):
            tr = statistics.fmean(p[0] for p in pairs)
            va = statistics.fmean(p[1] for p in pairs)
            lines.append(f"| {key} | {e} | {100 * tr:.2f} | {100 * va:.2f} | {len(pairs)} |")
    return "\n".join(lines)


def report(
    plans: list[Plan],
    results: dict[str, dict[str, Any]],
    out: Path,
    name: str,
    plots: bool = True,
    extra_contrasts: Sequence[tuple[str, str]] = (),
) -> str:
    """Markdown (printed and written) + JSON + plots for every dataset that has results."""
    text: list[str] = []
    payload: dict[str, Any] = {"datasets": {}}
    for plan in plans:
        result = results.get(plan.dataset)
        if result is None:
            continue
        rows = summarize(result)
        n_screen = sum(len(v) for v in result["screen"].values())
        n_total = sum(len(plan.values(c)) for c in plan.cells)
        n_total += len(plan.tune_lambdas) * sum(len(f) for f in result["finalists"].values())
        grid_values = set(plan.lambdas) | set(plan.tune_lambdas)
        n_total += sum(  # edge extensions: counted once they ran
            len(set(result["screen"].get(k, {})) - grid_values)
            for f in result["finalists"].values()
            for k in f
        )
        text.append(f"### {plan.dataset}\n")
        text.append(
            f"Screening (seed 0; {n_screen} of {n_total} runs; val = validation-class MAP@R %, "
            "test numbers for reporting only; Δ vs the tuned base loss, same seed):\n"
        )
        text.append(screening_table(plan, result) + "\n")
        text.append(
            "Finals (test classes, %: mean (±95% t-CI half-width) over seeds; Δ: paired "
            "difference to the base loss, same seed):\n"
        )
        text.append(finals_table(rows) + "\n")
        pairs = contrast_pairs(result, extra_contrasts)
        contrast_rows = contrasts(result, pairs)
        if contrast_rows:
            text.append(
                "Paired differences (test classes, points; same seed), 95% t-interval in (), "
                f"Bonferroni-corrected for {contrast_rows[0]['comparisons']} comparisons in []:\n"
            )
            text.append(contrasts_table(contrast_rows, result["chosen"]) + "\n")
        if result.get("base_tuning"):
            text.append(
                "Base-loss options tuned on validation (seed 0; validation / test MAP@R %):\n"
            )
            for base, t in result["base_tuning"].items():
                tried = ", ".join(
                    f"{b}: {100 * v:.2f} / {100 * t['test_map@r'][b]:.2f}"
                    for b, v in t["val_map@r"].items()
                )
                text.append(f"- {base} (lr {t['lr']:g}): {tried}; chosen **{t['chosen']}**\n")
        raw = result.get("raw_pixels")
        if raw is not None:
            t = raw["test"]
            text.append(
                f"Raw pixels on the same test images (no learning): R@1 {100 * t['recall@1']:.2f}, "
                f"MAP@R {100 * t['map@r']:.2f}, NMI {100 * t['nmi']:.2f}, inter-class distance "
                f"CV {raw['interclass']['cv']:.3f}.\n"
            )
        text.append("Baselines per epoch (overfitting check):\n")
        text.append(overfit_table(result) + "\n")
        paths = plot_all(plan, result, rows, out, name) if plots else []
        payload["datasets"][plan.dataset] = {
            "config": comparable(plan.base_cfg),
            "lambdas": plan.lambdas,
            "tune_lambdas": plan.tune_lambdas,
            "extend_edges": plan.extend_edges,
            "baseline_lrs": plan.lrs,
            "seeds": plan.seeds,
            "cells": [c.key for c in plan.cells],
            "screen": {
                k: {f"{v:g}": slim(r) for v, r in runs.items()}
                for k, runs in result["screen"].items()
            },
            "chosen": result["chosen"],
            "finalists": result["finalists"],
            "finals": {
                k: {str(s): slim(r) for s, r in by_seed.items()}
                for k, by_seed in result["finals"].items()
            },
            "summary": rows,
            "contrasts": contrast_rows,
            "base_tuning": result.get("base_tuning"),
            "raw_pixels": result.get("raw_pixels"),
            "plots": [p.name for p in paths],
        }
    md = "\n".join(text)
    atomic_write_text(out / f"{name}.md", md)
    write_results(name, payload, out=out / f"{name}.json")
    return md


def slim(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "config"}
