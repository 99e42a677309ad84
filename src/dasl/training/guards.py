"""Stop a diverging run before it writes NaN weights or NaN metrics.

A too-high learning rate makes the loss, then the gradients, then the weights NaN or
infinite; Lightning trains on, saves the NaN model as ``last.ckpt`` and the run ends with
NaN metrics. :class:`NonFiniteGuard` checks the embeddings the model outputs, the loss
before every backward pass, the gradients before every optimizer step and the weights
before validation and before each epoch's checkpoint, and raises :class:`TrainingDiverged`
naming the first bad step and the last good checkpoint, which it never lets a NaN model
overwrite.

No host sync per step (#19): the per-step checks are device flags. A bad step's update is
skipped on the device (its gradients are zeroed, the non-finite embeddings replaced by zeros
before the loss sees them) and the first bad step is recorded there; the record is read
once per ``log_every_n_steps`` (when Lightning syncs for its logs anyway), before
validation, before a checkpoint is written and at the end of each epoch and of training.
Cost per step: ``isfinite`` reductions of the embeddings and the loss, one fused norm over
the gradients and one masked fill per gradient tensor; a pass over the weights per epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from dasl.errors import DaslError


class TrainingDiverged(DaslError, ValueError):
    """The loss, gradients or weights became NaN or infinite (usually: learning rate too high)."""


#: Codes of the per-step checks (a bit each); the message lists them in this order.
_EMBEDDINGS, _LOSS, _GRADIENTS = 1, 2, 4
_WHAT = {
    _EMBEDDINGS: "the training embeddings are NaN or infinite",
    _LOSS: "the loss is NaN or infinite",
    _GRADIENTS: "the gradients are NaN or infinite",
}


def _norms_finite(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A device bool: every entry of every tensor is finite (one fused norm per tensor; a NaN
    or Inf anywhere makes its norm non-finite)."""
    norms = torch._foreach_norm([t.detach().float() for t in tensors])
    return torch.isfinite(torch.stack(norms)).all()


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    return not tensors or bool(_norms_finite(tensors))


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
        # On the device: (first bad step or -1, its check codes); read at the sync points.
        self._first: torch.Tensor | None = None
        self._step_bad: list[tuple[int, torch.Tensor]] = []  # this step's flags, device bools
        self._where: dict[int, tuple[int, int]] = {}  # step -> (epoch, batch) since last read

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

    def _check_embeddings(self, module: Any, inputs: Any, output: Any) -> Any:
        trainer = self._trainer
        if trainer is None or not isinstance(output, torch.Tensor) or trainer.sanity_checking:
            return None
        finite = torch.isfinite(output.detach()).all()
        if not module.training:  # validation and prediction: no per-step budget, check now
            if not bool(finite):
                self._stop(trainer, "the validation embeddings are NaN or infinite")
            return None
        self._step_bad.append((_EMBEDDINGS, ~finite))
        # The loss never sees them (it would refuse them with a device assert that kills
        # the process without naming the step); this step's update is skipped anyway.
        return torch.where(finite, output, torch.zeros_like(output))

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.batch_idx = batch_idx
        self._where[trainer.global_step] = (trainer.current_epoch, batch_idx)

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        self._step_bad.append((_LOSS, ~torch.isfinite(loss.detach()).all()))

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        # With fp16 loss scaling, infinite gradients are expected now and then: the scaler
        # skips that step and lowers its scale. Not a divergence.
        if grads and getattr(trainer.precision_plugin, "scaler", None) is None:
            self._step_bad.append((_GRADIENTS, ~_norms_finite(grads)))
        flags, self._step_bad = self._step_bad, []
        if not flags:
            return
        code = torch.stack([bad.to(torch.int64) * bit for bit, bad in flags]).sum()
        bad = code > 0
        for grad in grads:  # skip the update: zero gradients are a finite step
            grad.masked_fill_(bad, 0.0)
        if self._first is None or self._first.device != code.device:
            self._first = torch.full((2,), -1, dtype=torch.int64, device=code.device)
        new = bad & (self._first[0] < 0)
        record = torch.stack([code * 0 + trainer.global_step, code])
        self._first = torch.where(new, record, self._first)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # Read the record where the module's step log syncs anyway (epoch_log.py).
        every = trainer.log_every_n_steps  # type: ignore[attr-defined]  # set by Lightning's logger connector, undeclared
        if trainer.global_step % max(1, every) == 0:
            self._read(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._read(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._read(trainer)
        self._check_weights(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs before the epoch's checkpoint is saved (Lightning runs checkpoint callbacks last).
        self._read(trainer)
        self._check_weights(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._read(trainer)  # raising here writes nothing
        self.saved_epoch = int(checkpoint.get("epoch", trainer.current_epoch))

    # ---------------------------------------------------------------- message

    def _read(self, trainer: L.Trainer) -> None:
        """Raise if a step since the start was bad (one device sync)."""
        if self._first is None:
            return
        step, code = (int(v) for v in self._first.tolist())
        if step < 0:
            self._where.clear()
            return
        epoch, batch = self._where.get(step, (trainer.current_epoch, self.batch_idx))
        what = "; ".join(text for bit, text in _WHAT.items() if code & bit)
        self._stop(
            trainer,
            f"{what} (that update was skipped; seen at step {trainer.global_step})",
            (step, epoch, batch),
        )

    def _check_weights(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _all_finite([p for p in pl_module.parameters()]):
            self._stop(trainer, "the weights are NaN or infinite")

    def _last_good(self) -> str:
        last = self.checkpoint_dir / "last.ckpt"
        if not last.is_file():
            return "none yet (the run diverged before its first checkpoint)"
        when = f" (end of epoch {self.saved_epoch})" if self.saved_epoch is not None else ""
        return f"{last}{when}"

    def _stop(
        self, trainer: L.Trainer, what: str, where: tuple[int, int, int] | None = None
    ) -> None:
        step, epoch, batch = where or (trainer.global_step, trainer.current_epoch, self.batch_idx)
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
            f"training diverged at step {step} (epoch {epoch}, batch {batch}; counted from 0): "
            f"{what}. Nothing was saved from this "
            f"epoch; last good checkpoint: {self._last_good()}. Lower optim.lr{lr} or "
            "optim.warmup_epochs up, then train again."
        )
