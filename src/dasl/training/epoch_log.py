"""The Lightning base both modules share: the per-epoch log (training-term means,
throughput, history) and the per-step learning-rate schedule.

``history`` is one row per epoch (``{"epoch": e, "train/loss": ..., "val/map@r": ...}``),
merged from the training and validation hooks and any callback, and saved in checkpoints
so that a resumed run reports every epoch.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor

from dasl.data.loaders import epoch_seed
from dasl.utils.schedule import scheduler_config


class EpochLoggedModule(L.LightningModule):
    """Base of :class:`MetricLearningModule` and :class:`SSLModule`.

    Subclasses hold ``cfg`` with a ``seed`` and ``optim.warmup_epochs`` / ``optim.scheduler``,
    call :meth:`log_step_terms` from their ``training_step`` and return
    :meth:`with_schedule` from ``configure_optimizers``; each epoch's row holds the mean of
    every term over its batches, ``train/images_per_s`` and ``train/epoch_s``.
    """

    cfg: Any

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, float]] = []
        self._epoch_sums: dict[str, Tensor] = {}
        self._epoch_batches = 0
        self._epoch_images = 0
        self._epoch_start = 0.0

    def on_train_epoch_start(self) -> None:
        # Dropout, augmentations in the main process (num_workers=0) and anything else drawing
        # from the global generator: reseeded per (seed, epoch, rank) so a resumed run is exact.
        torch.manual_seed(epoch_seed(self.cfg.seed, self.current_epoch, self.global_rank))
        self._epoch_sums = {}
        self._epoch_batches = 0
        self._epoch_images = 0
        self._epoch_start = time.perf_counter()

    def log_step_terms(self, terms: dict[str, Tensor], batch_size: int) -> None:
        """Add one step's terms to the epoch's sums; every ``log_every_n_steps`` steps, log
        them and the running images/s to the progress bar and the loggers."""
        for key, value in terms.items():
            self._epoch_sums[key] = self._epoch_sums.get(key, 0.0) + value.detach().float()
        self._epoch_batches += 1
        self._epoch_images += batch_size
        # Lightning turns every step-logged tensor into a float for the progress bar, one device
        # sync each: on an H200 that cost the ResNet-50 loop 12% of its images/s. The loggers
        # only write every n steps anyway, and the epoch means above use every step.
        # set on the trainer by Lightning's logger connector; Trainer does not declare it
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1  # type: ignore[attr-defined]
        if (self.global_step + 1) % max(1, every):
            return
        elapsed = max(time.perf_counter() - self._epoch_start, 1e-9)
        self.log_dict(terms, prog_bar=True, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("img/s", self._epoch_images / elapsed, prog_bar=True, on_step=True)

    def on_train_epoch_end(self) -> None:
        elapsed = max(time.perf_counter() - self._epoch_start, 1e-9)
        row: dict[str, float] = {"epoch": float(self.current_epoch)}
        for key, total in self._epoch_sums.items():
            row[key] = float(total) / max(self._epoch_batches, 1)
        row["train/images_per_s"] = self._epoch_images / elapsed
        row["train/epoch_s"] = elapsed
        self.log_dict(
            {f"{k}_epoch": v for k, v in row.items() if k.startswith("train/")}, sync_dist=True
        )
        self.merge_history(row)

    def merge_history(self, row: dict[str, float]) -> None:
        """Update the history row of ``row["epoch"]`` with ``row`` (or append it)."""
        for existing in self.history:
            if existing["epoch"] == row["epoch"]:
                existing.update(row)
                return
        self.history.append(dict(row))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dasl_history"] = self.history

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("dasl_history", []))

    def with_schedule(self, optimizer: torch.optim.Optimizer) -> OptimizerLRSchedulerConfig:
        """``configure_optimizers``' answer: ``optimizer`` with the config's warm-up and
        cosine/constant schedule, stepped per optimizer step over the whole fit."""
        ocfg = self.cfg.optim
        conf = scheduler_config(
            optimizer,
            int(self.trainer.estimated_stepping_batches),
            self.trainer.max_epochs or 1,
            ocfg.warmup_epochs,
            ocfg.scheduler,
        )
        return {"optimizer": conf["optimizer"], "lr_scheduler": conf["lr_scheduler"]}
