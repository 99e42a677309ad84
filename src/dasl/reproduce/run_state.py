"""What a row's run folder holds: a finished run, one to resume, or nothing yet.

A run folder written by ``dasl train`` / ``dasl pretrain`` is finished when its
``metrics.json`` exists (written last, atomically); it can be resumed when it holds
``checkpoints/last.ckpt``. Either only counts when the folder's ``config.yaml`` asks for
what the current command asks for: numbers from other settings would be reported as these.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dasl.errors import ConfigError, DataError

IGNORED_KEYS = frozenset(
    {
        "name",
        "out_dir",
        "data.root",
        "data.num_workers",
        "data.eval_batch_size",
        "trainer.progress_bar",
        "trainer.log_every_n_steps",
        "eval.plots",
        "eval.tsne_points",
    }
)
"""Settings that do not change a run's numbers: a folder written under other values of these
still counts (the data moved, more loader workers, no plots)."""


class State(enum.Enum):
    DONE = "done"
    RESUME = "resume"
    FRESH = "fresh"


@dataclass(frozen=True)
class RunFolder:
    state: State
    metrics: dict[str, Any] | None = None


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out


def config_differences(found: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``"key: <found> there, <wanted> now"`` for each setting that differs, sorted by key."""
    a, b = flatten(found), flatten(wanted)
    keys = sorted(k for k in set(a) | set(b) if k not in IGNORED_KEYS and a.get(k) != b.get(k))
    return [f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in keys]


def inspect_run(run_dir: Path, wanted_config: str) -> RunFolder:
    """The state of ``run_dir`` for a run of ``wanted_config`` (the YAML its config.yaml would
    hold). Raises ``ValueError`` (one line) when the folder holds a run of other settings."""
    metrics_file = run_dir / "metrics.json"
    last = run_dir / "checkpoints" / "last.ckpt"
    has_run = metrics_file.is_file() or last.is_file()
    if not has_run:
        return RunFolder(State.FRESH)
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise ConfigError(
            f"{run_dir} holds a run without its config.yaml; move it away or pass another --out"
        )
    try:
        found = yaml.safe_load(config_file.read_text()) or {}
    except yaml.YAMLError as exc:  # edited by hand: the user's file, not a bug
        raise DataError(
            f"{config_file}: not valid YAML ({getattr(exc, 'problem', None) or exc}); fix it, "
            "move the folder away or pass another --out"
        ) from None
    diffs = config_differences(found, yaml.safe_load(wanted_config) or {})
    if diffs:
        more = f" (and {len(diffs) - 2} more)" if len(diffs) > 2 else ""
        raise ConfigError(
            f"{run_dir} holds a run with other settings ({'; '.join(diffs[:2])}{more}); "
            "pass the same overrides as then, another --out, or delete that folder"
        )
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{metrics_file}: not JSON ({exc.msg}); delete it to rerun") from None
        if not isinstance(metrics, dict):
            raise DataError(f"{metrics_file}: expected a JSON object; delete it to rerun")
        return RunFolder(State.DONE, metrics)
    return RunFolder(State.RESUME)
