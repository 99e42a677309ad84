"""A crash planted at the start of an epoch, for the resume tests of both settings."""

from __future__ import annotations

import lightning as L


class Boom(RuntimeError):
    """The planted crash."""


class StopAtEpoch(L.Callback):
    """Simulates a crash at the start of ``epoch`` (after the previous epoch's checkpoint)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise Boom("simulated crash")
