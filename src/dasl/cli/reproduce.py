"""``dasl reproduce TABLE``: train every row of one of the poster's tables, then set our
numbers beside the poster's (``reproduce.md`` / ``reproduce.json``).

Each row is one config of the repository's ``configs/`` folder, run in this process by the
library's own entry points (:func:`dasl.training.run.run_experiment`,
:func:`dasl.training.ssl_run.run_pretrain`), one run folder per row and seed:
``<out>/<row>/seed<k>/``. A run whose ``metrics.json`` exists is not trained again; one with
``checkpoints/last.ckpt`` resumes from it (the ``--resume`` of ``dasl train``). Everything
that can be refused (table, rows, overrides, earlier runs of other settings, missing data) is
refused before the first row trains. Registered by :mod:`dasl.cli.main` (``register``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path
from typing import Any

from dasl.cli.errors import EXIT_OK, UserError, one_line, report_interrupt
from dasl.config import ConfigError, apply_overrides, dump_config, parse_override
from dasl.reproduce.report import RowRuns, build_report, render_markdown, write_report
from dasl.reproduce.run_state import State, flatten, inspect_run
from dasl.reproduce.tables import TABLES, Row, Table

RESERVED = {
    "seed": "--seeds",
    "name": "the row (run folders are <out>/<row>/seed<k>)",
    "out_dir": "--out",
    "compare": "the table (one config per row)",
}
"""Override keys that ``dasl reproduce`` sets itself, and what sets them."""


@dataclasses.dataclass
class Planned:
    row: Row
    seed: int
    cfg: Any
    run_dir: Path
    state: State
    metrics: dict[str, Any] | None


def configs_root(given: str | None) -> Path:
    """The ``configs/`` folder: ``--configs``, else the checkout's, else ``./configs``."""
    if given is not None:
        root = Path(given)
        if not root.is_dir():
            raise UserError(f"--configs: no such folder: {root}")
        return root
    import dasl

    for root in (Path(dasl.__file__).resolve().parents[2] / "configs", Path("configs")):
        if (root / "dml").is_dir():
            return root
    raise UserError(
        "cannot find the configs/ folder of the dasl repository; run from a clone of it or "
        "pass --configs DIR"
    )


def split_overrides(
    texts: list[str], table: Table, selected: tuple[Row, ...]
) -> tuple[list[str], dict[str, list[str]]]:
    """``KEY=VALUE`` texts for every row, and ``ROW.KEY=VALUE`` texts per row key."""
    shared: list[str] = []
    per_row: dict[str, list[str]] = {r.key: [] for r in selected}
    chosen = {r.key for r in selected}
    for text in texts:
        key, _ = parse_override(text)
        head, _, rest = key.partition(".")
        if head in table.row_keys:
            if head not in chosen:
                raise ConfigError(f"{key}: row {head} is not among the rows chosen by --rows")
            if not rest:
                raise ConfigError(f"{key}: name a key of the row, e.g. {head}.dar.lam=3")
            per_row[head].append(f"{rest}={text.split('=', 1)[1]}")
            key = rest
        else:
            shared.append(text)
        top = key.split(".", 1)[0]
        if top in RESERVED:
            raise ConfigError(f"{key}: set by {RESERVED[top]}, not by an override")
    return shared, per_row


def _loader(table: Table):  # -> (path, overrides) -> config
    if table.command == "train":
        from dasl.config import load_config

        return load_config
    from dasl.ssl_config import load_pretrain_config

    return load_pretrain_config


def check_shared(shared: list[str], bases: dict[str, Any], table: Table) -> None:
    """Refuse a shared override of a setting the rows differ in: it would erase the very
    difference the table compares (``dar.lam`` of N-pair vs DASL-NP, say)."""
    flat = {key: flatten(cfg.to_dict()) for key, cfg in bases.items()}
    keys = set().union(*(f.keys() for f in flat.values()))
    differ = {k for k in keys if k != "name" and len({repr(f.get(k)) for f in flat.values()}) > 1}
    for text in shared:
        key, _ = parse_override(text)
        hit = sorted(d for d in differ if d == key or d.startswith(key + "."))
        if hit:
            values = ", ".join(f"{r} {flat[r].get(hit[0])!r}" for r in flat)
            value = text.split("=", 1)[1]
            raise ConfigError(
                f"{key}: the rows of {table.name} differ in {hit[0]} ({values}), so one value "
                f"for all would erase that; write ROW.{key}={value} for one row, e.g. "
                f"{list(flat)[-1]}.{key}={value}"
            )


def _data_problem(name: str, exc: Exception) -> str:
    first = one_line(exc)
    marker = " Expected layout:"
    if first.endswith(marker):
        missing = first[: -len(marker)].rstrip(".")
        first = f"{missing}; `dasl data check {name} --root DIR` shows the expected layout"
    # the readers speak of their own option; here it is a config setting
    return first.replace("pass allow_subset=True", "pass data.allow_subset=true")


def check_data(table: Table, cfg: Any) -> None:
    """Load the splits ``cfg`` trains and evaluates on (indexes and file checks, no decoding)."""
    try:
        if table.command == "train":
            from dasl.run_data import MetricLearningData

            MetricLearningData(cfg.data, cfg.seed)
        else:
            from dasl.run_data import SSLData

            SSLData(cfg)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(_data_problem(cfg.data.name, exc)) from None


def plan(args: argparse.Namespace, table: Table, out: Path) -> list[Planned]:
    """Every (row, seed) run with its config and the state of its run folder."""
    selected = table.select([k for k in (args.rows or "").split(",") if k] or None)
    if args.seeds < 1:
        raise UserError(f"--seeds: expected a number of seeds >= 1, got {args.seeds}")
    shared, per_row = split_overrides(list(args.overrides), table, selected)
    root = configs_root(args.configs)
    if args.root is not None and any(parse_override(t)[0] == "data.root" for t in shared):
        raise UserError("give the data root once: --root DIR or data.root=DIR, not both")
    load = _loader(table)
    paths = {r.key: root / r.config for r in selected}
    bases = {r.key: load(paths[r.key]) for r in selected}
    check_shared(shared, bases, table)
    out_plan: list[Planned] = []
    for row in selected:
        cfg = load(paths[row.key], [*shared, *per_row[row.key]])
        if args.root is not None:
            cfg = apply_overrides(cfg, {"data.root": str(Path(args.root).resolve())})
        for seed in range(args.seeds):
            run_cfg = dataclasses.replace(
                cfg, seed=seed, name=f"seed{seed}", out_dir=str(out / row.key)
            )
            run_dir = out / row.key / f"seed{seed}"
            found = inspect_run(run_dir, dump_config(run_cfg))
            out_plan.append(Planned(row, seed, run_cfg, run_dir, found.state, found.metrics))
    return out_plan


def _command_line(args: argparse.Namespace, out: Path) -> str:
    parts = ["dasl", "reproduce", args.table]
    if args.root is not None:
        parts += ["--root", args.root]
    if args.rows:
        parts += ["--rows", args.rows]
    parts += ["--seeds", str(args.seeds), "--out", str(out)]
    if args.configs is not None:
        parts += ["--configs", args.configs]
    return shlex.join([*parts, *args.overrides])


def _rank_zero() -> bool:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _train(table: Table, item: Planned) -> None:
    resume = item.state is State.RESUME
    if table.command == "train":
        from dasl.training.run import run_experiment

        run_experiment(item.cfg, resume=resume)
    else:
        from dasl.training.ssl_run import run_pretrain

        run_pretrain(item.cfg, resume=resume)


def cmd_reproduce(args: argparse.Namespace) -> int:
    table = TABLES[args.table]
    out = Path(args.out) if args.out is not None else Path("runs") / f"reproduce-{table.name}"
    items = plan(args, table, out)
    pending = [p for p in items if p.state is not State.DONE]
    checked: list[Any] = []
    for item in pending:  # before any training: one check per distinct data setting
        if item.cfg.data not in checked:
            check_data(table, item.cfg)
            checked.append(item.cfg.data)

    rows = list(dict.fromkeys(p.row for p in items))
    seeds = list(range(args.seeds))
    runs = {
        r.key: RowRuns(
            r,
            r.config,
            {p.seed: str(p.run_dir) for p in items if p.row == r},
            {p.seed: p.metrics for p in items if p.row == r},
        )
        for r in rows
    }
    command = _command_line(args, out)

    def report() -> dict[str, Any]:
        content = build_report(
            table,
            [runs[r.key] for r in rows],
            seeds,
            command=command,
            overrides=list(args.overrides),
            out_dir=out,
        )
        if _rank_zero():
            write_report(content, out)
        return content

    from dasl.training.run_folder import RunInterrupted

    for item in items:
        where = f"row {rows.index(item.row) + 1} of {len(rows)}: {item.row.label}, seed {item.seed}"
        if item.state is State.DONE:
            print(f"{where}: row done, skipping ({item.run_dir / 'metrics.json'})", flush=True)
            continue
        how = (
            f"resuming from {item.run_dir / 'checkpoints' / 'last.ckpt'}"
            if item.state is State.RESUME
            else f"training into {item.run_dir}"
        )
        print(f"{where} ... {how}", flush=True)
        try:
            _train(table, item)
        except RunInterrupted as exc:
            report()
            return report_interrupt(f"{exc} (run the same dasl reproduce command to resume)")
        finished = inspect_run(item.run_dir, dump_config(item.cfg))
        runs[item.row.key].metrics[item.seed] = finished.metrics
        report()  # after every run: an interrupted reproduction keeps a current report
    content = report()
    if _rank_zero():
        print()
        print(render_markdown(content), end="")
        print(f"\nwrote {out / 'reproduce.md'} and {out / 'reproduce.json'}")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``reproduce`` to the ``dasl`` subcommands."""
    p = sub.add_parser(
        "reproduce",
        help="run every row of one of the poster's tables and compare with its numbers",
        description=(
            "Train every row of TABLE with its config from the repository's configs/ folder "
            "(one run folder per row and seed under --out), then write reproduce.md and "
            "reproduce.json there: our numbers beside the poster's, the gap in points, and "
            "the field's anchors. Finished runs are not trained again; interrupted ones "
            "resume from their last checkpoint. Overrides (KEY=VALUE, e.g. trainer.epochs=1) "
            "apply to every row; ROW.KEY=VALUE (e.g. dasl_pa.dar.lam=3) to one row."
        ),
    )
    p.add_argument("table", metavar="TABLE", choices=tuple(TABLES), help=", ".join(TABLES))
    p.add_argument("--root", help="dataset root folder (default: each config's data.root)")
    p.add_argument(
        "--rows",
        help="comma-separated rows to run (default: all), e.g. npair,dasl_np; rows: "
        + "; ".join(f"{t.name}: {', '.join(t.row_keys)}" for t in TABLES.values()),
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="seeds 0..N-1 per row; with N > 1 the report gives mean ± 95%% t-interval",
    )
    p.add_argument("--out", help="output folder (default: runs/reproduce-TABLE)")
    p.add_argument("--configs", help="the configs/ folder (default: the repository's)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=cmd_reproduce, overrides_anywhere=True)
