"""λ-sensitivity, forest and overfitting plots of one run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ablation.cells import DIFFERENCES, ESTIMATORS, MEASURES, Cell, base_title
from benchmarks.ablation.search import Plan
from benchmarks.ablation.statistics import REPORTED


def plot_all(
    plan: Plan, result: dict[str, Any], rows: dict[str, Any], out: Path, stem: str = "dar_ablation"
) -> list[Path]:
    """λ-sensitivity per base loss, forest plot of the paired differences, overfitting curves."""
    from matplotlib.figure import Figure

    paths: list[Path] = []
    screen = result["screen"]
    for base in sorted({c.base for c in plan.cells}):
        cells = [
            c
            for c in plan.cells
            if c.base == base and not c.is_baseline and not c.is_control and screen.get(c.key)
        ]
        if not cells:
            continue
        diffs = sorted({str(c.difference) for c in cells}, key=DIFFERENCES.index)
        variants = sorted(
            {(str(c.measure), str(c.estimator)) for c in cells},
            key=lambda v: (MEASURES.index(v[0]), ESTIMATORS.index(v[1])),
        )
        fig = Figure(figsize=(4.2 * len(diffs), 3.6))
        base_key = Cell(base).key
        base_rec = screen.get(base_key, {}).get(result["chosen"].get(base_key))
        for i, d in enumerate(diffs):
            ax = fig.add_subplot(1, len(diffs), i + 1)
            for k, (m, est) in enumerate(variants):
                runs = screen.get(Cell(base, d, m, est).key, {})
                if not runs:
                    continue
                lams = sorted(runs)
                val = [100 * runs[v]["val_map@r"] for v in lams]
                test = [100 * runs[v]["test"]["map@r"] for v in lams]
                ax.plot(lams, val, "o-", color=f"C{k}", label=f"{m} {est}: val")
                ax.plot(lams, test, "s:", color=f"C{k}", label=f"{m} {est}: test")
            if base_rec is not None:
                ax.axhline(100 * base_rec["val_map@r"], color="0.4", lw=0.9, label="base: val")
                ax.axhline(
                    100 * base_rec["test"]["map@r"], color="0.4", lw=0.9, ls=":", label="base: test"
                )
            ax.set_xscale("log")
            ax.set_title(f"{d} differences", fontsize=9)
            ax.set_xlabel("λ")
            ax.set_ylabel("MAP@R %")
            ax.legend(fontsize=6)
        fig.suptitle(
            f"{plan.dataset}, {base_title(base)} + DAR: MAP@R vs λ, seed 0 (λ chosen on val; "
            "test shown for reporting only)",
            fontsize=9,
        )
        fig.tight_layout()
        path = out / f"{stem}_{plan.dataset}_{base}_lambda.png"
        fig.savefig(path, dpi=110)
        paths.append(path)

    dar_rows = [(k, r) for k, r in rows.items() if not Cell.from_key(k).is_baseline]
    if dar_rows:
        fig = Figure(figsize=(11, 0.5 * len(dar_rows) + 1.6))
        for j, (metric, title) in enumerate(REPORTED):
            ax = fig.add_subplot(1, len(REPORTED), j + 1)
            for i, (_key, r) in enumerate(dar_rows):
                mean, _, half, _ = r[f"delta_{metric}"]
                err = 0.0 if math.isnan(half) else half
                ax.errorbar(mean, i, xerr=err, fmt="o", color="C3" if mean - err > 0 else "C0")
            ax.axvline(0.0, color="k", lw=0.8)
            ax.set_yticks(range(len(dar_rows)))
            ax.set_yticklabels(
                [f"{k} λ{r['value']:g}" for k, r in dar_rows] if j == 0 else [], fontsize=7
            )
            ax.invert_yaxis()
            ax.set_xlabel(f"Δ {title} (points), 95% CI")
        fig.suptitle(f"{plan.dataset}: DAR − base loss, paired by seed", fontsize=9)
        fig.tight_layout()
        path = out / f"{stem}_{plan.dataset}_forest.png"
        fig.savefig(path, dpi=110)
        paths.append(path)

    base_finals = {k: v for k, v in result["finals"].items() if Cell.from_key(k).is_baseline}
    if base_finals:
        fig = Figure(figsize=(5 * len(base_finals), 3.4))
        for j, (key, by_seed) in enumerate(sorted(base_finals.items())):
            ax = fig.add_subplot(1, len(base_finals), j + 1)
            for s, rec in sorted(by_seed.items()):
                ep = [r["epoch"] for r in rec["epochs"]]
                for field, color, label in (
                    ("train_map@r", "C1", "train classes"),
                    ("val_map@r", "C0", "validation classes"),
                ):
                    ax.plot(
                        ep,
                        [100 * (r[field] or np.nan) for r in rec["epochs"]],
                        "-",
                        color=color,
                        alpha=0.7,
                        label=label if s == 0 else None,
                    )
            ax.set_title(f"{plan.dataset}: {key}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel("MAP@R %")
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{stem}_{plan.dataset}_overfit.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths
