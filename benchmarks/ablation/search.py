"""The tuning protocol: λ screens, finalists, two-stage tuning, edge extension, finals."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.ablation.cells import Cell, trial_config, trial_id
from dasl.config import ExperimentConfig


@dataclass
class Plan:
    dataset: str
    base_cfg: ExperimentConfig
    cells: list[Cell]
    lambdas: list[float]
    lrs: list[float]
    seeds: int
    finalists: int
    measure_stage: list[str] = dataclasses.field(default_factory=list)
    tune_lambdas: list[float] = dataclasses.field(default_factory=list)
    """Extra lambdas tried (seed 0) for the finalists only, after screening every cell."""
    dar_at_baseline_lr: bool = False
    """DAR cells train at the learning rate their base loss's baseline chose on validation."""
    final_seeds: list[int] | None = None
    """The final seeds this process trains (None: 0 .. seeds-1); several processes sharing a
    cache split the finals this way, and ``--report-only`` then reads all of them."""
    extend_edges: int = 0
    """Up to this many lambdas tried past a finalist's grid edge while its best is there."""
    cached_lambdas: list[float] = dataclasses.field(default_factory=list)
    """Lambdas a tuned cell (finalist or control) takes from the cache when trained there
    earlier (never trained for this): its lambda is the best over every value it has."""

    def values(self, cell: Cell) -> list[float]:
        return self.lrs if cell.is_baseline else self.lambdas

    @property
    def control_keys(self) -> list[str]:
        """Control cells (#18): each tuned like a finalist and always in the finals."""
        return [c.key for c in self.cells if c.is_control]


def select(
    plan: Plan, screen: dict[str, dict[float, dict[str, Any]]]
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Per cell the tuning value with the best validation MAP@R; per base the finalists.

    Finalists of a base loss: the best cell of each difference type, the ``plan.finalists``
    best difference types (by validation MAP@R; ties keep grid order).
    """
    chosen: dict[str, float] = {}
    for key, runs in screen.items():
        if runs:
            chosen[key] = max(runs, key=lambda v: runs[v]["val_map@r"])
    finalists: dict[str, list[str]] = {}
    for base in {c.base for c in plan.cells}:
        best_by_diff: dict[str, tuple[float, str]] = {}
        for cell in plan.cells:
            if cell.base != base or cell.is_baseline or cell.is_control or cell.key not in chosen:
                continue
            score = screen[cell.key][chosen[cell.key]]["val_map@r"]
            if cell.difference not in best_by_diff or score > best_by_diff[cell.difference][0]:
                best_by_diff[cell.difference] = (score, cell.key)
        ranked = sorted(best_by_diff.values(), key=lambda t: -t[0])
        finalists[base] = [k for _, k in ranked[: plan.finalists]]
    return chosen, finalists


def best_difference(
    plan: Plan, screen: dict[str, dict[float, dict[str, Any]]], base: str
) -> str | None:
    """The difference type of ``base``'s best screened cell (validation MAP@R)."""
    best: tuple[float, str] | None = None
    for cell in plan.cells:
        if cell.base != base or cell.is_baseline or cell.is_control:
            continue
        for rec in screen.get(cell.key, {}).values():
            if best is None or rec["val_map@r"] > best[0]:
                best = (rec["val_map@r"], str(cell.difference))
    return None if best is None else best[1]


Fetch = Callable[[str, ExperimentConfig], "dict[str, Any] | None"]


def execute(
    plan: Plan, fetch: Fetch, log: Callable[[str], None] = print, lookup: Fetch | None = None
) -> dict[str, Any]:
    """Screening, selection and finals of one dataset; returns everything the report needs.

    ``fetch(trial_id, config)`` trains a trial (or reads it from the cache); it may return
    ``None`` (report from a partial cache), and the trial is then left out. When
    ``plan.measure_stage`` is set (``"measure/estimator"`` items), those variants are screened
    after the finals (seed 0) on each base loss's best difference type only: screening rows,
    never finalists.
    """
    screen: dict[str, dict[float, dict[str, Any]]] = {}
    base_lr: dict[str, float] = {}

    def config(cell: Cell, v: float, seed: int) -> ExperimentConfig:
        return trial_config(plan.base_cfg, cell, v, seed, base_lr.get(cell.base))

    def screen_cells(cells: list[Cell]) -> None:
        for cell in cells:
            screen.setdefault(cell.key, {})
            for v in plan.values(cell):
                rec = fetch(trial_id(cell, v, 0), config(cell, v, 0))
                if rec is not None:
                    screen[cell.key][v] = rec
                    log(progress(plan.dataset, "screen", cell, v, 0, rec))

    # Baselines first: with ``dar_at_baseline_lr`` the DAR cells of a base loss train at the
    # learning rate its baseline chose (a regularizer added to a tuned baseline).
    screen_cells([c for c in plan.cells if c.is_baseline])
    if plan.dar_at_baseline_lr:
        for key, runs in screen.items():
            if runs:
                base_lr[Cell.from_key(key).base] = max(runs, key=lambda v: runs[v]["val_map@r"])
    screen_cells([c for c in plan.cells if not c.is_baseline])
    chosen, finalists = select(plan, screen)
    # The controls (#18) are tuned exactly like the finalists and always run the finals.
    tuned = [k for b in sorted(finalists) for k in finalists[b]] + [
        k for k in plan.control_keys if screen.get(k)
    ]
    if plan.tune_lambdas:
        # Two-stage tuning: every cell screened on ``lambdas``, the finalists (the cells
        # whose seeds are paid for) also on ``tune_lambdas``; the finalist set stays fixed.
        for key in tuned:
            cell = Cell.from_key(key)
            for v in plan.tune_lambdas:
                if v in screen[key]:
                    continue
                rec = fetch(trial_id(cell, v, 0), config(cell, v, 0))
                if rec is not None:
                    screen[key][v] = rec
                    log(progress(plan.dataset, "tune", cell, v, 0, rec))
        chosen = select(plan, screen)[0]
    if plan.extend_edges:
        # A best lambda at the edge of the values tried says the optimum may lie outside:
        # step along the 1-3 series past that edge until the best is inside (or the budget).
        for key in tuned:
            cell = Cell.from_key(key)
            for _ in range(plan.extend_edges):
                runs = screen[key]
                best = max(runs, key=lambda v: runs[v]["val_map@r"])
                if len(runs) < 2 or min(runs) < best < max(runs):
                    break
                v = series_step(best, up=best == max(runs))
                rec = fetch(trial_id(cell, v, 0), config(cell, v, 0))
                if rec is None:
                    break
                runs[v] = rec
                log(progress(plan.dataset, "edge", cell, v, 0, rec))
        chosen = select(plan, screen)[0]
    if plan.cached_lambdas and lookup is not None:
        for key in tuned:
            cell = Cell.from_key(key)
            for v in plan.cached_lambdas:
                if v not in screen[key]:
                    rec = lookup(trial_id(cell, v, 0), config(cell, v, 0))
                    if rec is not None:
                        screen[key][v] = rec
                        log(progress(plan.dataset, "cached", cell, v, 0, rec))
        chosen = select(plan, screen)[0]
    finals: dict[str, dict[int, dict[str, Any]]] = {}
    final_cells = [Cell(b) for b in sorted(finalists)] + [Cell.from_key(k) for k in tuned]
    # Seed-major, so that a run stopped early leaves every final cell with the same seeds.
    for seed in plan.final_seeds if plan.final_seeds is not None else range(plan.seeds):
        for cell in final_cells:
            if cell.key not in chosen:
                continue
            v = chosen[cell.key]
            rec = fetch(trial_id(cell, v, seed), config(cell, v, seed))
            if rec is not None:
                finals.setdefault(cell.key, {})[seed] = rec
                log(progress(plan.dataset, "final", cell, v, seed, rec))
    if plan.measure_stage:
        # Secondary question, after the finals so that a short budget never costs their seeds.
        extra = []
        for base in sorted({c.base for c in plan.cells}):
            diff = best_difference(plan, screen, base)
            if diff is not None:
                for variant in plan.measure_stage:
                    measure, estimator = variant.split("/")
                    extra.append(Cell(base, diff, measure, estimator))
        extra = [c for c in extra if c not in plan.cells]
        plan.cells = plan.cells + extra
        screen_cells(extra)
        chosen.update(select(plan, screen)[0])
    return {"screen": screen, "chosen": chosen, "finalists": finalists, "finals": finals}


def series_step(v: float, up: bool) -> float:
    """The neighbour of ``v`` on the 1-3 series (..., 0.1, 0.3, 1, 3, 10, ...) above or below.

    Values off the series step to the nearest series value strictly beyond them.
    """
    # Parsed from text so that 0.3 is the float a user types (3 * 0.1 is 0.30000000000000004,
    # which would make a cached trial's config differ).
    series = [float(f"{m}e{e}") for e in range(-8, 9) for m in (1, 3)]
    if up:
        return next(x for x in series if x > v * (1 + 1e-9))
    return next(x for x in reversed(series) if x < v * (1 - 1e-9))


def progress(dataset: str, stage: str, cell: Cell, v: float, seed: int, rec: dict[str, Any]) -> str:
    what = "lr" if cell.is_baseline else "lambda"
    t = rec["test"]
    return (
        f"{time.strftime('%H:%M:%S')} {dataset} {stage} {cell.key} {what}={v:g} seed={seed}: "
        f"val MAP@R={rec['val_map@r']:.4f} (epoch {rec['best_epoch']}), "
        f"test R@1={t['recall@1']:.4f} MAP@R={t['map@r']:.4f}, "
        f"step {1000 * (rec['step_s'] or 0):.0f} ms, {rec['seconds']:.0f} s"
    )
