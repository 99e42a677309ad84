"""Tuning a base loss's own options (alpha, margin, scale, ereg) on validation before DAR (#18)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.ablation.cells import (
    BASE_OPTIONS,
    Cell,
    base_name,
    parse_base,
    trial_config,
    trial_id,
)
from benchmarks.ablation.search import Fetch, Plan, progress


def parse_base_grid(items: Sequence[str]) -> dict[str, list[float]]:
    """``["alpha=8,16", "margin=0,0.2"]`` -> ``{"alpha": [8.0, 16.0], "margin": [0.0, 0.2]}``."""
    out: dict[str, list[float]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or key not in BASE_OPTIONS:
            raise ValueError(
                f"--base-grid {item!r}: expected OPTION=V1,V2 with OPTION in {BASE_OPTIONS}"
            )
        try:
            out[key] = [float(v) for v in values.split(",") if v]
        except ValueError:
            raise ValueError(f"--base-grid {item!r}: values must be numbers") from None
    return out


BASE_DEFAULTS = {
    "proxyanchor": {"alpha": 32.0, "margin": 0.1},
    "arcface": {"margin": 28.6, "scale": 64.0},
    "npair": {"scale": 1.0, "ereg": 0.0},
    "supcon": {"temperature": 0.1},
}
"""The defaults ``build_base_loss`` uses when ``loss.alpha``/``margin``/``scale``/
``embedding_reg_weight``/``temperature`` are unset (PML's; N-pair's: plain cosine logits, no
penalty): the untuned base is named without options (its cached runs keep their names)."""
MULTIPLICATIVE = ("alpha", "scale", "ereg", "temperature")
"""Options stepped past a grid edge by the grid's last ratio (the others by its last gap)."""


def tune_bases(
    plan: Plan, base_grid: dict[str, list[float]], fetch: Fetch, log: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Tune each baseline cell's loss options on validation (seed 0, its first learning rate).

    Stage 1 moves one option at a time away from the defaults; stage 2 tries the best value of
    each option together when more than one option moved. The variant with the best validation
    MAP@R is chosen (ties: the first tried, the defaults first). The untuned base keeps its
    plain name, so its cached runs are reused.
    """
    return {
        c.base: _tune_base(plan, c.base, base_grid, fetch, log) for c in plan.cells if c.is_baseline
    }


def _tune_base(
    plan: Plan,
    base: str,
    base_grid: dict[str, list[float]],
    fetch: Fetch,
    log: Callable[[str], None],
) -> dict[str, Any]:
    lr = plan.lrs[0]
    name, fixed = parse_base(base)
    defaults = {**BASE_DEFAULTS.get(name, {}), **fixed}
    runs: dict[str, dict[str, Any]] = {}

    def variant(opts: dict[str, float]) -> str:
        return base_name(name, {k: v for k, v in opts.items() if defaults.get(k) != v})

    def trial(opts: dict[str, float]) -> float | None:
        b = variant(opts)
        if b not in runs:
            c = Cell(b)
            rec = fetch(trial_id(c, lr, 0), trial_config(plan.base_cfg, c, lr, 0))
            if rec is None:
                return None
            runs[b] = rec
            log(progress(plan.dataset, "base", c, lr, 0, rec))
        return float(runs[b]["val_map@r"])

    trial(dict(defaults))
    moved: dict[str, float] = {}
    for key, values in base_grid.items():
        scored = {v: trial({**defaults, key: v}) for v in [defaults.get(key), *values]}
        scored = {v: sc for v, sc in scored.items() if v is not None and sc is not None}
        if scored:
            best = max(scored, key=lambda v: scored[v])
            if best != defaults.get(key):
                moved[key] = best
    if len(moved) > 1:
        trial({**defaults, **moved})
    chosen = max(runs, key=lambda b: runs[b]["val_map@r"]) if runs else base
    # As for a finalist's lambda: a chosen option at the edge of the values tried gets up to
    # ``plan.extend_edges`` steps past it (the grid's last ratio for alpha, scale and ereg,
    # x10 past a neighbour of 0, its last gap for margin), the other options as chosen;
    # none below 0.
    for key in base_grid:
        for _ in range(plan.extend_edges):
            opts = {**defaults, **parse_base(chosen)[1]}
            tried = sorted({defaults.get(key), *base_grid[key]} - {None})
            tried = sorted(
                set(tried) | {parse_base(b)[1].get(key, defaults.get(key)) for b in runs}
            )
            v = opts[key]
            if len(tried) < 2 or tried[0] < v < tried[-1]:
                break
            up = v == tried[-1]
            nxt = tried[-2] if up else tried[1]
            if key not in MULTIPLICATIVE:
                step = 2 * v - nxt
            elif nxt > 0:
                step = v * v / nxt
            else:  # a weight next to its default 0 (ereg): no ratio to repeat, a decade
                step = 10 * v
            if step < 0 or (key in MULTIPLICATIVE and step <= 0):
                break
            trial({**opts, key: round(step, 10)})
            chosen = max(runs, key=lambda b: runs[b]["val_map@r"])
    return {
        "chosen": chosen,
        "lr": lr,
        "val_map@r": {b: r["val_map@r"] for b, r in runs.items()},
        "test_map@r": {b: r["test"]["map@r"] for b, r in runs.items()},
    }
