"""A run folder's name and settings across runs: refuse to mix two runs in one folder, move
an old run aside on request, and resume a run with its own saved config (issue #16).

Light by design (no torch): it runs before anything heavy is imported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dasl.config import ConfigError
from dasl.utils.io import atomic_write_text

RESUMABLE = (
    "trainer.epochs",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.precision",
    "trainer.progress_bar",
    "trainer.log_every_n_steps",
    "data.num_workers",
    "data.eval_batch_size",
)
"""Keys ``--resume`` may change: the length of the run, where and how fast it runs, what it
prints. Everything else defines the experiment and stays as the run was started."""

RUN_MARKERS = ("config.yaml", "checkpoints", "logs", "metrics.json")
"""What ``dasl train`` / ``dasl pretrain`` write into a run folder (a ``tune/`` study alone is
not a run: ``dasl tune``'s best.yaml trains under the same name)."""

RESUMES_FILE = "resumes.json"
"""Each ``--resume`` of a run: when, and which settings it changed."""


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds (part of) a training run."""
    return run_dir.is_dir() and any((run_dir / m).exists() for m in RUN_MARKERS)


def next_free_name(run_dir: Path) -> str:
    """``<name>-2``, ``<name>-3`` ...: the first sibling of ``run_dir`` that does not exist."""
    n = 2
    while (run_dir.parent / f"{run_dir.name}-{n}").exists():
        n += 1
    return f"{run_dir.name}-{n}"


def is_rank_zero() -> bool:
    """Whether this process is the first of a distributed launch (or the only process).

    Lightning's DDP launcher re-runs the command line for ranks 1..N-1 with ``LOCAL_RANK``
    set; those must neither refuse the folder rank 0 just created nor move it aside.
    """
    return all(os.environ.get(v, "0") == "0" for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def refuse_taken(run_dir: Path, command: str) -> None:
    """Raise :class:`ConfigError` telling what to type when ``run_dir`` already holds a run."""
    if not holds_run(run_dir):
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"--name: {run_dir} is a file, not a run folder; choose another name")
        blocker = next((p for p in run_dir.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise ConfigError(f"--out-dir: {blocker} is a file, not a folder; choose another one")
        return
    raise ConfigError(
        f"{run_dir} already holds a run: continue it with 'dasl {command} --resume', replace "
        f"it with --overwrite (the old run is moved aside), or start a new one with --name "
        f"{next_free_name(run_dir)}"
    )


def move_aside(run_dir: Path, now: dt.datetime | None = None) -> Path | None:
    """Rename ``run_dir`` to ``<name>.old-<UTC timestamp>`` (a free name); ``None`` if absent."""
    if not run_dir.exists():
        return None
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%d-%H%M%S")
    target = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
    n = 2
    while target.exists():
        target = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{n}")
        n += 1
    run_dir.rename(target)
    return target


def flatten(cfg: Any) -> dict[str, Any]:
    """Dotted keys -> values of a config dataclass; ``compare`` as ``compare.<variant>.<key>``."""
    data = dataclasses.asdict(cfg)
    compare = data.pop("compare", None) or {}
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")
            else:
                flat[f"{prefix}{k}"] = v

    walk(data, "")
    for variant, overrides in compare.items():
        for key, value in overrides.items():
            flat[f"compare.{variant}.{key}"] = value
    return flat


_MISSING = object()


def changed_keys(saved: Any, given: Any) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, given value)}`` for every setting that differs (name and out_dir,
    the folder's own location, aside)."""
    a, b = flatten(saved), flatten(given)
    out: dict[str, tuple[Any, Any]] = {}
    for key in [*a, *(k for k in b if k not in a)]:
        if key in ("name", "out_dir"):
            continue
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if va != vb:
            out[key] = (None if va is _MISSING else va, None if vb is _MISSING else vb)
    return out


def _setting(key: str) -> str:
    """``compare.<variant>.trainer.epochs`` -> ``trainer.epochs``."""
    if key.startswith("compare."):
        return key.split(".", 2)[2] if key.count(".") >= 2 else key
    return key


def resumed_config(
    run_dir: Path,
    given: Callable[[Any], Any],
    load_saved: Callable[[Path], Any],
) -> tuple[Any, dict[str, tuple[Any, Any]]]:
    """The config a ``--resume`` of ``run_dir`` continues with, and what it changes.

    ``given(saved)`` builds the config the command line asks for (from the saved one when no
    ``--config`` was given). Differences in :data:`RESUMABLE` keys are applied; any other
    difference is refused in one line naming the key, the saved and the given value.
    """
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"--resume: no run to continue at {run_dir} (no config.yaml there); drop --resume "
            "to start it"
        )
    saved = load_saved(path)
    wanted = given(saved)
    changes = changed_keys(saved, wanted)
    for key, (old, new) in changes.items():
        if _setting(key) not in RESUMABLE:
            raise ConfigError(
                f"{key}: the run in {run_dir} was started with {old!r}, given {new!r}; --resume "
                "keeps a run's settings (only trainer.epochs and the device, worker and "
                "logging settings may change: see --help); to change it, start a new run "
                f"with --name {next_free_name(run_dir)}"
            )
    resumed = dataclasses.replace(wanted, name=run_dir.name, out_dir=str(run_dir.parent))
    return resumed, changes


def record_resume(
    run_dir: Path, changes: Mapping[str, tuple[Any, Any]], now: dt.datetime | None = None
) -> Path:
    """Append ``{"at": ISO time, "changed": {key: {"from", "to"}}}`` to ``resumes.json``."""
    path = run_dir / RESUMES_FILE
    history: list[Any] = []
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
            history = loaded if isinstance(loaded, list) else []
        except (OSError, ValueError):
            history = []
    at = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    entry = {"at": at, "changed": {k: {"from": a, "to": b} for k, (a, b) in changes.items()}}
    atomic_write_text(path, json.dumps([*history, entry], indent=2) + "\n")
    return path


def describe_changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    """``trainer.epochs 1 -> 2, data.num_workers 0 -> 2`` or ``no setting changed``."""
    if not changes:
        return "no setting changed"
    return ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())


def checkpoint_in(path: Path) -> tuple[Path, str]:
    """The checkpoint a ``--checkpoint`` argument names, and why that one.

    A file is itself. A run folder (or its ``checkpoints/``) gives the checkpoint ``dasl
    train`` evaluated: ``best.ckpt`` (best validation epoch) when the run validated, else
    ``last.ckpt``. A folder of ``compare`` variants is refused naming them: which to
    evaluate is the user's choice.
    """
    if path.is_file() or not path.is_dir():
        return path, ""
    folder = path if path.name == "checkpoints" else path / "checkpoints"
    for name, why in (
        ("best.ckpt", "the best validation epoch, which the run evaluated"),
        ("last.ckpt", "the last epoch; the run has no best.ckpt"),
    ):
        if (folder / name).is_file():
            return folder / name, why
    variants = sorted(p.parent.parent.name for p in path.glob("*/checkpoints/*.ckpt"))
    if variants:
        names = ", ".join(dict.fromkeys(variants))
        raise ConfigError(
            f"--checkpoint: {path} holds the variants {names}; give one, e.g. --checkpoint "
            f"{path / variants[0]}"
        )
    raise ConfigError(
        f"--checkpoint: {path} is a folder without checkpoints (no {folder}/best.ckpt or "
        "last.ckpt); give a .ckpt file or a run folder that finished an epoch"
    )
