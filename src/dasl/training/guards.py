"""Stop a diverging run before it writes NaN weights or NaN metrics.

A too-high learning rate makes the loss, then the gradients, then the weights NaN or
infinite; Lightning trains on, saves the NaN model as ``last.ckpt`` and the run ends with
NaN metrics. :class:`NonFiniteGuard` checks the embeddings the model outputs, the loss
before every backward pass, the gradients before every optimizer step and the weights
before validation and before each epoch's checkpoint, and raises :class:`TrainingDiverged`
naming the step and the last good checkpoint, which it never lets a NaN model overwrite.

Cost: ``isfinite`` reductions of the embeddings and the loss and one fused norm over the
gradients per step (device synchronisations), and a pass over the weights once per epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class TrainingDiverged(ValueError):
    """The loss, gradients or weights became NaN or infinite (usually: learning rate too high)."""


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    if not tensors:
        return True
    # One fused norm per tensor; a NaN or Inf anywhere makes its norm non-finite.
    norms = torch._foreach_norm([t.detach().float() for t in tensors])
    return bool(torch.isfinite(torch.stack(norms)).all())


class NonFiniteGuard(Callback):
    """Raise :class:`TrainingDiverged` as soon as training produces NaN or Inf.

    Args:
        checkpoint_dir: where the run's checkpoints are (``last.ckpt`` is named in the
            message when it exists).
    """

    def __init__(self, checkpoint_dir: str | Path) -> None:
        self.checkpoint_dir = Path(checkpoint_dir)
        self.batch_idx = 0
        self.saved_epoch: int | None = None
        self._hook: Any = None
        self._trainer: L.Trainer | None = None

    # ------------------------------------------------------------------ checks

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # The embeddings, checked where the model makes them: the loss code refuses NaN
        # inputs with a message that cannot know the step or the checkpoint.
        self._trainer = trainer
        self._hook = pl_module.register_forward_hook(self._check_embeddings)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _check_embeddings(self, module: Any, inputs: Any, output: Any) -> None:
        trainer = self._trainer
        if trainer is None or not isinstance(output, torch.Tensor) or trainer.sanity_checking:
            return
        if not bool(torch.isfinite(output.detach()).all()):
            where = "training" if module.training else "validation"
            self._stop(trainer, f"the {where} embeddings are NaN or infinite")

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.batch_idx = batch_idx

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        if not bool(torch.isfinite(loss.detach()).all()):
            self._stop(trainer, f"the loss is {float(loss.detach().float().sum())}")

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # With fp16 loss scaling, infinite gradients are expected now and then: the scaler
        # skips that step and lowers its scale. Not a divergence.
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            return
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if not _all_finite(grads):
            self._stop(trainer, "the gradients are NaN or infinite")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._check_weights(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs before the epoch's checkpoint is saved (Lightning runs checkpoint callbacks last).
        self._check_weights(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.saved_epoch = int(checkpoint.get("epoch", trainer.current_epoch))

    # ---------------------------------------------------------------- message

    def _check_weights(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _all_finite([p for p in pl_module.parameters()]):
            self._stop(trainer, "the weights are NaN or infinite")

    def _last_good(self) -> str:
        last = self.checkpoint_dir / "last.ckpt"
        if not last.is_file():
            return "none yet (the run diverged before its first checkpoint)"
        when = f" (end of epoch {self.saved_epoch})" if self.saved_epoch is not None else ""
        return f"{last}{when}"

    def _stop(self, trainer: L.Trainer, what: str) -> None:
        lrs = sorted(
            {
                g["lr"]
                for opt in trainer.optimizers
                for g in opt.param_groups
                if isinstance(g.get("lr"), float) and math.isfinite(g["lr"])
            }
        )
        lr = f" (learning rates now {', '.join(f'{x:.3g}' for x in lrs)})" if lrs else ""
        raise TrainingDiverged(
            f"training diverged at step {trainer.global_step} (epoch {trainer.current_epoch}, "
            f"batch {self.batch_idx}; counted from 0): {what}. Nothing was saved from this "
            f"epoch; last good checkpoint: {self._last_good()}. Lower optim.lr{lr} or "
            "optim.warmup_epochs up, then train again."
        )
