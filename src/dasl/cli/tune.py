"""``dasl tune``: search hyperparameters on the validation classes (see :mod:`dasl.tuning`)."""

from __future__ import annotations

import argparse
import dataclasses

from dasl.cli.errors import report_interrupt
from dasl.cli.launch import with_run_name
from dasl.config import ConfigError, ExperimentConfig, load_config, parse_override, variants
from dasl.registry import unknown_choice

DESCRIPTION = (
    "Search hyperparameters with Optuna (TPE seeded from the config seed, median pruning per "
    "epoch), training on data.train_split and scoring each trial on the validation classes "
    "(data.val_split); the test split is never read. The study is stored in "
    "<out_dir>/<name>/tune/study.db: rerunning the same command resumes it, and --trials N "
    "means N finished trials in total. Writes best.yaml (train it with dasl train --config "
    "best.yaml), trials.csv/json and lambda_sensitivity.png there. PARAM specs: "
    "KEY=loguniform:LO:HI, KEY=uniform:LO:HI, KEY=int:LO:HI, KEY=choice:a,b,c."
)


def add_tune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="search hyperparameters on the validation classes", description=DESCRIPTION
    )
    p.add_argument("--config", required=True, help="YAML config file")
    p.add_argument(
        "--trials", type=int, required=True, help="finished trials the study should hold"
    )
    p.add_argument(
        "--param",
        action="append",
        required=True,
        metavar="KEY=KIND:ARGS",
        help="a searched parameter, e.g. dar.lam=loguniform:0.01:10 (repeat for more)",
    )
    p.add_argument(
        "--metric", default="map@r", help="validation metric to maximize (default: map@r)"
    )
    p.add_argument(
        "--variant",
        help="for a config with compare: the variant to tune (its study: <name>-<variant>)",
    )
    p.add_argument("--name", help="run name (the study lives in <out_dir>/<name>/tune)")
    p.add_argument("--out-dir", help="parent folder of the run folder (default: runs)")
    p.add_argument("--no-prune", action="store_true", help="train every trial to the end")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep each trial's checkpoints/")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=cmd_tune, overrides_anywhere=True)


def select_variant(cfg: ExperimentConfig, variant: str | None) -> ExperimentConfig:
    """The one config to tune: ``cfg`` itself, or its ``compare`` variant ``variant``."""
    if variant is None:
        if cfg.compare:
            names = ", ".join(cfg.compare)
            raise ConfigError(
                f"the config compares variants ({names}); tuning needs one: add --variant "
                f"{next(iter(cfg.compare))} (or any of {names})"
            )
        return cfg
    if not cfg.compare:
        raise ConfigError("--variant: the config has no compare: block; drop --variant")
    chosen = dict(variants(cfg))
    if variant not in chosen:
        raise unknown_choice("--variant", variant, chosen)
    return dataclasses.replace(chosen[variant], name=f"{cfg.name}-{variant}", compare=None)


def cmd_tune(args: argparse.Namespace) -> int:
    import optuna

    from dasl.tuning import TuneInterrupted, parse_param, tune

    specs = [parse_param(text) for text in args.param]  # grammar errors before any import
    overridden = {parse_override(text)[0] for text in args.overrides}
    for spec in specs:
        if spec.key in overridden:
            raise ConfigError(
                f"{spec.key}: set by both --param and an override (the search would replace "
                "the override); drop one"
            )
    cfg = with_run_name(
        select_variant(load_config(args.config, args.overrides), args.variant), args
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress line replaces its log
    try:
        result = tune(
            cfg,
            specs,
            args.trials,
            metric=args.metric,
            pruner=optuna.pruners.NopPruner() if args.no_prune else None,
            keep_checkpoints=args.keep_checkpoints,
        )
    except TuneInterrupted as exc:
        return report_interrupt(str(exc))
    if result.best_trial is None:
        print("no trial completed (all pruned or failed); best.yaml not written")
        return 1
    print(
        f"best: trial {result.best_trial}, val {result.metric} {result.best_value:.4f}, "
        + ", ".join(f"{k}={v}" for k, v in result.best_params.items())
    )
    for path in result.outputs.values():
        print(f"wrote {path}")
    print(f"train it: dasl train --config {result.outputs['best.yaml']}")
    return 0
