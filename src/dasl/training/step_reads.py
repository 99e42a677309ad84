"""A Lightning callback that counts the host reads of each training step (#19).

Wraps :class:`dasl.utils.host_reads.HostReads` around a fit: a step runs from
``on_train_batch_start`` to ``on_train_batch_end`` (forward, loss, backward, optimizer step
and the callbacks' per-batch hooks); reads made between steps (epoch ends, validation,
Lightning's logger flush after a batch) are recorded with ``step=None``. Pass it last among
the callbacks so that the others' ``on_train_batch_end`` falls inside the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from dasl.utils.host_reads import HostReads


class StepReads(Callback):
    """Record host reads from ``on_fit_start`` to ``on_fit_end`` in :attr:`reads`."""

    def __init__(self, roots: Sequence[str | Path] = ()) -> None:
        self.reads = HostReads(roots)
        self.steps: list[int] = []  # global steps seen, in order

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.reads.__enter__()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.reads.__exit__(None, None, None)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self.reads in _active_modes():
            self.reads.__exit__(None, None, None)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.steps.append(trainer.global_step)
        self.reads.begin_step(trainer.global_step)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.reads.end_step()


def _active_modes() -> list[Any]:
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return list(_get_current_dispatch_mode_stack())
