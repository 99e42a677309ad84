"""Steps every training command (``train``, ``pretrain``, ``tune``) takes the same way, and
the options ``dasl eval`` reads the same way for both kinds of checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from dasl.cli.errors import EXIT_OK, report_interrupt
from dasl.cli.run_dir import (
    RESUMABLE,
    describe_changes,
    is_rank_zero,
    move_aside,
    record_resume,
    refuse_taken,
    resumed_config,
)
from dasl.config import ComparingConfig, apply_command_line, apply_overrides, parse_override
from dasl.errors import ConfigError

C = TypeVar("C", bound=ComparingConfig)
"""The run config of the command (:class:`ExperimentConfig` or ``PretrainConfig``)."""


def with_run_name(cfg: C, args: argparse.Namespace) -> C:
    """``--name`` and ``--out-dir`` (where given) replace the config's ``name`` / ``out_dir``."""
    extra = {k: v for k, v in (("name", args.name), ("out_dir", args.out_dir)) if v is not None}
    return dataclasses.replace(cfg, **extra) if extra else cfg


def demo_fallback(cfg: C, overrides: list[str], notice: str, fallback: Mapping[str, Any]) -> C:
    """``cfg`` moved to the ``fallback`` settings (a demo's dataset is missing here), with
    ``notice`` on stderr; settings the user gave on the command line are kept."""
    print(f"notice: {notice}", file=sys.stderr)
    user_keys = {parse_override(o)[0] for o in overrides}
    kept = {k: v for k, v in fallback.items() if k not in user_keys}
    return apply_overrides(cfg, kept)


def add_run_options(p: argparse.ArgumentParser, command: str) -> None:
    """``--name``, ``--out-dir``, ``--resume`` and ``--overwrite`` of a training command."""
    p.add_argument("--name", help="run name (folder under out_dir)")
    p.add_argument("--out-dir", help="parent folder of the run folder (default: runs)")
    again = p.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the run from its last complete checkpoint (checkpoints/last.ckpt) with "
        "its own saved settings (config.yaml); overrides may change only "
        + ", ".join(RESUMABLE)
        + " (recorded in resumes.json); any other differing setting is refused",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help=f"start afresh in a folder that holds a run: the old run is moved aside to "
        f"<name>.old-<timestamp> (without it, dasl {command} refuses a used --name)",
    )


def add_training_command(
    sub: Any,
    command: str,
    *,
    help: str,
    description: str,
    config_help: str,
    func: Callable[[argparse.Namespace], int],
    **defaults: Any,
) -> argparse.ArgumentParser:
    """The ``dasl <command>`` parser of a training command: ``--config``, the run options of
    :func:`add_run_options` and the ``KEY=VALUE`` overrides; ``defaults`` go to
    ``set_defaults`` (``overrides_anywhere=True``, say)."""
    p = sub.add_parser(command, help=help, description=description)
    p.add_argument("--config", help=config_help)
    add_run_options(p, command)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=func, **defaults)
    return p


Loader = Callable[[Any, list[str]], C]


def prepare_run(
    args: argparse.Namespace,
    command: str,
    load: Loader[C],
    rebuild: Callable[[dict[str, Any]], C],
    fresh: Callable[[C], C] = lambda cfg: cfg,
    log: Callable[[str], None] = print,
) -> C:
    """The config a training command runs, its run folder made ready (issue #16).

    A new run (no ``--resume``): ``load(args.config, args.overrides)`` then ``fresh`` (the
    demo's fallback data); a folder that already holds a run is refused, or moved aside with
    ``--overwrite``. ``--resume``: the run's saved ``config.yaml`` with the command line's
    :data:`RESUMABLE` changes (see :func:`dasl.cli.run_dir.resumed_config`), recorded in
    ``resumes.json``.
    """
    if not args.resume:
        cfg = with_run_name(fresh(load(args.config, args.overrides)), args)
        run_dir = Path(cfg.out_dir) / cfg.name
        if not is_rank_zero():
            return cfg
        if args.overwrite:
            moved = move_aside(run_dir)
            if moved is not None:
                log(f"--overwrite: moved the previous run in {run_dir} to {moved}")
        else:
            refuse_taken(run_dir, command)
        return cfg
    if args.config is None:
        # Only where the run lives comes from the command line; the settings are the run's.
        placing = [o for o in args.overrides if parse_override(o)[0] in ("name", "out_dir")]
        where = with_run_name(load(None, placing), args)

        def given(saved: C) -> C:
            return apply_command_line(saved, args.overrides, rebuild)
    else:
        where = with_run_name(load(args.config, args.overrides), args)

        def given(saved: C) -> C:
            return where

    run_dir = Path(where.out_dir) / where.name
    cfg, changes = resumed_config(run_dir, given, lambda path: load(str(path), []))
    if is_rank_zero():
        record = record_resume(run_dir, changes)
        log(
            f"--resume: continuing {run_dir} with its saved settings ({run_dir / 'config.yaml'}); "
            f"{describe_changes(changes)} (recorded in {record})"
        )
    return cfg


def check_data_root(root: str | None) -> None:
    """A ``data.root`` that does not exist is refused before anything loads."""
    if root is not None and not Path(root).exists():
        raise ConfigError(f"data.root: no such file or directory: {root}")


def launch(
    args: argparse.Namespace,
    command: str,
    load: Loader[C],
    rebuild: Callable[[dict[str, Any]], C],
    fresh: Callable[[C], C],
    check: Callable[[C], None],
    run: Callable[[C, bool], object],
) -> int:
    """``dasl train`` / ``dasl pretrain``: the config and run folder of :func:`prepare_run`,
    ``check(cfg)``, then ``run(cfg, resume)``; a run stopped by Ctrl-C is reported as
    interrupted (exit 130, its ``checkpoints/last.ckpt`` kept for ``--resume``)."""
    from dasl.training.run_folder import RunInterrupted

    cfg = prepare_run(args, command, load, rebuild, fresh)
    check(cfg)
    try:
        run(cfg, args.resume)
    except RunInterrupted as exc:
        return report_interrupt(str(exc))
    return EXIT_OK


def eval_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """``dasl eval`` / ``dasl embed``'s ``--dataset``, ``--root`` and ``--max-per-class`` as
    config overrides of the checkpoint's own config (a new dataset drops the saved root)."""
    overrides: dict[str, Any] = {}
    if args.dataset is not None:
        overrides["data.name"] = args.dataset
        overrides["data.root"] = args.root
    elif args.root is not None:
        overrides["data.root"] = args.root
    if args.max_per_class is not None:
        overrides["data.eval_max_per_class"] = args.max_per_class
    return overrides
