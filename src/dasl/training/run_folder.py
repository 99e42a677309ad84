"""The steps every run folder goes through: fit (interruptible, resumable), choose the
checkpoint to evaluate, write ``metrics.json`` / ``history.json`` once the run is complete.

Shared by supervised runs (``run.py``) and self-supervised pretraining (``ssl_run.py``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from dasl.errors import Interrupted
from dasl.training.checkpoint_io import resumable_checkpoint
from dasl.utils.io import atomic_write_json

Log = Callable[[str], None]


class RunInterrupted(Interrupted):
    """Training stopped before its last epoch (Ctrl-C); nothing final was written."""


def resume_path(run_dir: Path, resume: bool, name: str, log: Log = print) -> str | None:
    """The last complete checkpoint of ``run_dir`` when resuming, else ``None``."""
    if not resume:
        return None
    last = run_dir / "checkpoints" / "last.ckpt"
    found = resumable_checkpoint(last.parent, log)
    if found is None:
        log(
            f"[{name}] --resume: no complete checkpoint at {last}; training this variant "
            "from scratch (files already in its checkpoints/ folder will be replaced)"
        )
        return None
    return str(found)


def interrupted_message(name: str, epoch: int, epochs: int, last: Path) -> str:
    """Where an interrupted run stopped; epochs count from 0, as Lightning's progress bar."""
    stopped = (
        f"[{name}] interrupted in epoch {epoch} (of 0-{epochs - 1}, counted from 0 "
        "like the progress bar)"
    )
    if last.is_file() and epoch > 0:
        return f"{stopped}; --resume continues from {last} (end of epoch {epoch - 1})"
    return f"{stopped}, before its first checkpoint; --resume starts it again"


@dataclass
class FitOutcome:
    fit_s: float
    started: float
    """Wall-clock time (``time.time()``) at which the fit started."""


def fit(
    trainer: L.Trainer,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    ckpt_path: str | None,
    name: str,
    epochs: int,
    run_dir: Path,
) -> FitOutcome:
    """``trainer.fit``; raises :class:`RunInterrupted` unless every epoch was trained."""
    t1 = time.perf_counter()
    started = time.time()
    try:
        with warnings.catch_warnings():
            # Explained by resume_path when resuming; otherwise it fires for a re-run into an
            # old folder, whose checkpoints are replaced as they are written.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except SystemExit:
        # Lightning turns Ctrl-C into sys.exit(1) after a graceful shutdown.
        if not trainer.interrupted:
            raise
    fit_s = time.perf_counter() - t1
    # trainer.state, not current_epoch: with spawned DDP workers only the state comes back.
    if trainer.interrupted or not trainer.state.finished:
        last = run_dir / "checkpoints" / "last.ckpt"
        raise RunInterrupted(interrupted_message(name, trainer.current_epoch, epochs, last))
    return FitOutcome(fit_s, started)


def choose_checkpoint(
    run_dir: Path, checkpoint: ModelCheckpoint, has_val: bool, fit_started: float
) -> Path:
    """The checkpoint to evaluate: ``best`` by the monitored metric, else ``last``."""
    last = run_dir / "checkpoints" / "last.ckpt"
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    fixed_best = run_dir / "checkpoints" / "best.ckpt"
    # Spawned DDP workers do not send the callback state back; the file is this run's when
    # it was written after the fit started.
    fresh = fixed_best.is_file() and fixed_best.stat().st_mtime >= fit_started
    if best is None and has_val and fresh:
        best = fixed_best
    return best if best is not None and best.is_file() else last


def history_of(module: Any, run_dir: Path) -> list[dict[str, float]]:
    """The module's per-epoch history, or rank 0's copy saved in ``last.ckpt``."""
    history = module.history
    last = run_dir / "checkpoints" / "last.ckpt"
    if not history and last.is_file():
        # Spawned DDP workers trained a copy of the module: rank 0 saved its history.
        history = torch.load(last, map_location="cpu", weights_only=False).get("dasl_history", [])
    return history


def write_results(run_dir: Path, metrics: dict[str, Any], history: list[dict[str, float]]) -> None:
    """``history.json`` then ``metrics.json``, atomically, once the run is complete.

    ``metrics.json`` last: its presence marks a complete run.
    """
    atomic_write_json(run_dir / "history.json", history)
    atomic_write_json(run_dir / "metrics.json", metrics)
