"""DAR ablation (issue #7, section 3): does difference alignment help, and in which reading?

The command line of ``python -m benchmarks.dar_ablation``: parse and check the flags, build one
:class:`~benchmarks.ablation.search.Plan` per dataset, run it (or read it from the cache and the
run summary) and write the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.ablation.base_tuning import parse_base_grid, tune_bases
from benchmarks.ablation.cells import (
    ALL_BASES,
    BASES,
    CONTROLS,
    DIFFERENCES,
    ESTIMATORS,
    MEASURES,
    Cell,
    grid,
    parse_base,
)
from benchmarks.ablation.presets import BACKBONES, PRESETS, base_config
from benchmarks.ablation.report import report
from benchmarks.ablation.search import Plan, execute
from benchmarks.ablation.store import (
    BENCHMARK,
    CACHE_DIR,
    default_out,
    load_summary,
    summary_path,
    write_summary,
)
from benchmarks.ablation.trials import Runner
from benchmarks.common import environment, manifest, write_manifest
from dasl.config import parse_override
from dasl.dar.measures import DIFFERENCES as LIBRARY_DIFFERENCES
from dasl.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["glyphs", "fashion-mnist"])
    parser.add_argument(
        "--bases",
        nargs="+",
        default=list(BASES),
        help=f"base losses of {ALL_BASES}, optionally with options: proxyanchor~alpha16~margin0.2",
    )
    parser.add_argument(
        "--controls",
        nargs="+",
        default=[],
        choices=CONTROLS,
        help="compaction controls (#18), each a cell tuned over the lambdas like a finalist",
    )
    parser.add_argument(
        "--base-grid",
        nargs="+",
        default=[],
        metavar="OPTION=V1,V2",
        help="tune each base's loss options first (#18), e.g. alpha=8,16,64 margin=0,0.2: "
        "one option at a time around the config's values, then the best of each together; "
        "seed 0, the baseline's learning rate, validation MAP@R; the rest of the plan runs "
        "on the chosen base",
    )
    parser.add_argument(
        "--backbone",
        default="small_cnn",
        choices=sorted(BACKBONES),
        help="the model of every run (#18): small_cnn (the presets' own, from scratch) or "
        "efficientnet_lite0 (the packaged ImageNet weights, fine-tuned; 100 steps)",
    )
    parser.add_argument("--differences", nargs="+", default=list(DIFFERENCES))
    parser.add_argument("--measures", nargs="+", default=list(MEASURES))
    parser.add_argument(
        "--no-dar",
        action="store_true",
        help="no DAR cells: only the baselines (and --controls), e.g. a tuned base's finals",
    )
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    parser.add_argument(
        "--chain-measures",
        nargs="+",
        default=None,
        help="screen the chain estimator only on these measures (default: all)",
    )
    parser.add_argument(
        "--measure-stage",
        nargs="+",
        default=[],
        metavar="MEASURE/ESTIMATOR",
        help="variants (e.g. l1/exact l2/chain) screened after the finals, on each base "
        "loss's best difference type only",
    )
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    parser.add_argument(
        "--tune-lambdas",
        type=float,
        nargs="+",
        default=[],
        help="further lambdas tried for the finalists only (two-stage tuning)",
    )
    parser.add_argument(
        "--extend-edges",
        type=int,
        default=0,
        metavar="N",
        help="a finalist whose best lambda is at an edge of those tried gets up to N more, "
        "past that edge on the 1-3 series (0.1, 0.3, 1, 3, 10, ...)",
    )
    parser.add_argument(
        "--dar-at-baseline-lr",
        action="store_true",
        help="DAR cells train at the learning rate their baseline chose (else the config's)",
    )
    parser.add_argument(
        "--baseline-lrs",
        type=float,
        nargs="+",
        default=None,
        help="learning rates tried for the baselines (default: only the config's)",
    )
    parser.add_argument(
        "--transfer-finalists",
        action="store_true",
        help="datasets after the first screen only the first one's finalists (their lambda "
        "re-tuned on their own validation classes) and the baselines",
    )
    parser.add_argument(
        "--contrast",
        nargs=2,
        action="append",
        default=[],
        metavar=("TREATED", "CONTROL"),
        help="an extra paired comparison of two final cells, e.g. proxyanchor~alpha8/baseline "
        "proxyanchor/baseline (repeatable; every cell vs its base and every DAR finalist vs "
        "every control are always reported)",
    )
    parser.add_argument(
        "--cached-lambdas",
        type=float,
        nargs="+",
        default=[],
        help="lambdas a finalist or control also takes from the cache if it was trained there "
        "earlier (never trained for this run); its lambda is then the best over all it has",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--final-seeds",
        type=int,
        nargs="+",
        default=None,
        help="train only these final seeds (split the finals over processes sharing --cache)",
    )
    parser.add_argument("--finalists", type=int, default=2, help="difference types per base")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (on an oversubscribed machine 2 threads measured 9x slower per step)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="cache folder (default: OUT/NAME_cache with --out, else the shared, git-ignored "
        "benchmarks/results/dar_ablation/cache)",
    )
    parser.add_argument("--name", default="dar_ablation", help="output file stem")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the run folder benchmarks/results/dar_ablation/RUN, RUN "
        "being NAME without its dar_ablation_ prefix)",
    )
    parser.add_argument("--plan", action="store_true", help="count the runs; train nothing")
    parser.add_argument("--report-only", action="store_true", help="report from the cache")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run")
    return parser


def check(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, list[float]]]:
    """The difference types this dasl has, the bases and the base grid of ``args``; a flag
    that makes no sense raises :class:`ConfigError` with the one line to print."""
    missing = [d for d in args.differences if d not in LIBRARY_DIFFERENCES]
    if missing:
        print(f"note: this dasl has no difference type {missing}; screening without it")
    differences = [d for d in args.differences if d in LIBRARY_DIFFERENCES]
    for variant in args.measure_stage:
        m, _, e = variant.partition("/")
        if m not in MEASURES or e not in ESTIMATORS:
            raise ConfigError(
                f"--measure-stage {variant!r}: expected MEASURE/ESTIMATOR with a measure "
                f"of {MEASURES} and an estimator of {ESTIMATORS}, e.g. l1/exact"
            )
    unknown = [d for d in args.datasets if d not in PRESETS]
    if unknown:
        raise ConfigError(f"no preset for dataset(s) {unknown}; choose from {sorted(PRESETS)}")
    try:
        bases = [b for b in args.bases if parse_base(b)[0] in ALL_BASES]
        base_grid = parse_base_grid(args.base_grid)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if len(bases) != len(args.bases):
        raise ConfigError(f"--bases: each must start with one of {ALL_BASES}")
    return differences, bases, base_grid


def make_plans(args: argparse.Namespace, differences: list[str], bases: list[str]) -> list[Plan]:
    """One plan per ``--datasets`` entry: its config, cells and values to try."""
    extra = dict(parse_override(o) for o in args.overrides)
    plans = []
    for ds in args.datasets:
        cfg = base_config(ds, extra, args.backbone)
        cells = grid(
            bases,
            [] if args.no_dar else differences,
            args.measures,
            args.estimators,
            args.chain_measures,
        )
        cells += [Cell(b, control=k) for b in bases for k in args.controls]
        lrs = args.baseline_lrs or [cfg.optim.lr]
        plans.append(
            Plan(
                ds,
                cfg,
                cells,
                sorted(args.lambdas),
                sorted(lrs),
                args.seeds,
                args.finalists,
                list(args.measure_stage),
                sorted(args.tune_lambdas),
                args.dar_at_baseline_lr,
                None if args.report_only else args.final_seeds,
                args.extend_edges,
                sorted(args.cached_lambdas),
            )
        )
    return plans


def planned_runs(plan: Plan, args: argparse.Namespace) -> tuple[int, int]:
    """Screening and final runs of ``plan`` (an upper bound printed before training: every
    edge step taken); the controls are tuned and run their finals like a finalist (#18)."""
    n_bases = len({c.base for c in plan.cells})
    n_tuned = args.finalists * n_bases + len(plan.control_keys)
    n_screen = sum(len(plan.values(c)) for c in plan.cells)
    n_screen += len(plan.measure_stage) * len(plan.lambdas) * n_bases
    n_screen += (len(plan.tune_lambdas) + args.extend_edges) * n_tuned
    n_final = (args.seeds - 1) * (n_bases + n_tuned)
    return n_screen, n_final


def planned_base_trials(base_grid: dict[str, list[float]], extend_edges: int) -> int:
    """Runs of ``--base-grid`` per base (at most): the defaults, each value, the moved options
    together when more than one moves, and the edge steps of each option."""
    if not base_grid:
        return 0
    together = 1 if len(base_grid) > 1 else 0
    return 1 + sum(len(v) for v in base_grid.values()) + together + extend_edges * len(base_grid)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out if args.out is not None else default_out(args.name)
    try:
        differences, bases, base_grid = check(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    contrast_extra = [(a, b) for a, b in args.contrast]
    plans = make_plans(args, differences, bases)

    if not args.plan:
        out.mkdir(parents=True, exist_ok=True)
    if args.cache is not None:
        cache = args.cache
    else:
        cache = out / f"{args.name}_cache" if args.out is not None else CACHE_DIR
    # The committed summary stands in for the cache when a report is rebuilt without it.
    known = load_summary(summary_path(out, args.name)) if args.report_only else {}
    runners: dict[str, Runner] = {}
    info = manifest(sys.argv[1:] if argv is None else argv, f"benchmarks.{BENCHMARK}")

    def write_report() -> str:
        md = report(plans, results, out, args.name, not args.no_plots, contrast_extra)
        write_summary(
            summary_path(out, args.name),
            args.name,
            {ds: {"raw_pixels": r.raw, "trials": r.used} for ds, r in runners.items()},
        )
        # A rebuilt report keeps the manifest of the run that trained its trials.
        if not args.report_only or not (out / "manifest.json").is_file():
            write_manifest(out, info)
        return md

    results: dict[str, dict[str, Any]] = {}
    for i, plan in enumerate(plans):
        first = results.get(plans[0].dataset)
        if i > 0 and args.transfer_finalists:
            if first is None:
                print(f"{plan.dataset}: skipped: {plans[0].dataset} has no finalists", flush=True)
                continue
            plan.cells = [Cell(b) for b in args.bases] + [
                Cell.from_key(k) for b in args.bases for k in first["finalists"].get(b, [])
            ]
            plan.measure_stage = []
        runner = Runner(
            cache / plan.dataset,
            PRESETS[plan.dataset]["probe_per_class"],
            known=known.get(plan.dataset, {}).get("trials"),
            known_raw=known.get(plan.dataset, {}).get("raw_pixels"),
        )
        runners[plan.dataset] = runner
        n_screen, n_final = planned_runs(plan, args)
        n_base = planned_base_trials(base_grid, args.extend_edges) * len(bases)
        tuning_runs = f"{n_base} base-tuning runs + " if base_grid else ""
        print(
            f"{plan.dataset}: {len(plan.cells)} cells, {tuning_runs}{n_screen} screening runs + "
            f"{n_final} final runs (at most; cached runs are not trained again); "
            f"cache {runner.cache_dir}",
            flush=True,
        )
        if args.plan:
            continue
        if base_grid:
            fetch = runner.cached if args.report_only else runner.run
            tuning = tune_bases(plan, base_grid, fetch, log=lambda s: print(s, flush=True))
            chosen_bases = [t["chosen"] for t in tuning.values()]
            plan.cells = [dataclasses.replace(c, base=tuning[c.base]["chosen"]) for c in plan.cells]
            print(f"{plan.dataset}: tuned bases {chosen_bases}", flush=True)
        else:
            tuning = {}
        if args.report_only:
            results[plan.dataset] = execute(
                plan, runner.cached, log=lambda s: None, lookup=runner.cached
            )
            results[plan.dataset]["raw_pixels"] = runner.raw_pixels(plan.base_cfg)
            results[plan.dataset]["base_tuning"] = tuning
            continue
        try:
            results[plan.dataset] = execute(
                plan, runner.run, log=lambda s: print(s, flush=True), lookup=runner.cached
            )
            results[plan.dataset]["raw_pixels"] = runner.raw_pixels(plan.base_cfg)
            results[plan.dataset]["base_tuning"] = tuning
        except FileNotFoundError as exc:  # a dataset that is not installed
            print(f"{plan.dataset}: skipped: {exc}", flush=True)
        # Write the report after each dataset, so a later failure keeps the earlier one.
        write_report()
    if args.plan:
        return 0
    md = write_report()
    print(md)
    print(json.dumps({"environment": environment()}))
    return 0
