"""NonFiniteGuard without a per-step host sync (#19): a NaN planted at one step of a real
Lightning run is named in the message (step, epoch, batch), the run goes on only until the
next read (every ``log_every_n_steps`` steps, at the latest the end of the epoch) and the
bad step's update is skipped on the device, so the weights stay finite."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from training_configs import tiny_digits_config

from dasl.training.guards import TrainingDiverged
from dasl.training.run import train_variant

QUIET = {"log": lambda s: None}


class _PlantNaN(L.Callback):
    """At optimizer step ``step``: NaN in the input images or in one gradient tensor."""

    def __init__(self, step: int, where: str) -> None:
        self.step, self.where = step, where
        self.steps_started: list[int] = []
        self.module: L.LightningModule | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.module = pl_module
        self.steps_started.append(trainer.global_step)
        if self.where == "input" and trainer.global_step == self.step:
            batch[0].fill_(float("nan"))

    def on_after_backward(self, trainer, pl_module) -> None:
        if self.where == "gradient" and trainer.global_step == self.step:
            next(p for p in pl_module.parameters() if p.grad is not None).grad[0] = float("nan")


@pytest.mark.parametrize(
    ("where", "what"),
    [
        # the embeddings are replaced by zeros (the loss is finite); the backward through the
        # network's NaN activations still gives NaN gradients
        ("input", "the training embeddings are NaN or infinite; the gradients are NaN"),
        ("gradient", "the gradients are NaN or infinite"),
    ],
)
def test_planted_nan_names_its_step_and_no_nan_update_is_taken(
    tmp_path: Path, where: str, what: str
) -> None:
    # 4 batches per epoch, reads every 3 steps: step 5 (epoch 1, batch 1) is read at step 6.
    cfg = tiny_digits_config(
        tmp_path / "runs", **{"trainer.epochs": 3, "trainer.log_every_n_steps": 3}
    )
    plant = _PlantNaN(5, where)
    with pytest.raises(TrainingDiverged) as info:
        train_variant(cfg, tmp_path / "run", callbacks=[plant], **QUIET)
    message = str(info.value)
    assert message.startswith("training diverged at step 5 (epoch 1, batch 1; counted from 0)")
    assert f"counted from 0): {what}" in message
    assert "(that update was skipped; seen at step 6)" in message
    assert plant.steps_started == [0, 1, 2, 3, 4, 5]  # the steps after 5 waited for the read
    assert plant.module is not None
    for name, p in plant.module.named_parameters():
        assert torch.isfinite(p).all(), name


def test_nan_at_the_last_step_of_an_epoch_is_read_before_its_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_digits_config(
        tmp_path / "runs", **{"trainer.epochs": 2, "trainer.log_every_n_steps": 50}
    )
    plant = _PlantNaN(3, "gradient")  # batch 3 of epoch 0: no read until the epoch's end
    with pytest.raises(TrainingDiverged, match=r"at step 3 \(epoch 0, batch 3;") as info:
        train_variant(cfg, tmp_path / "run", callbacks=[plant], **QUIET)
    assert "none yet" in str(info.value)
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_clean_run_is_not_stopped(tmp_path: Path) -> None:
    cfg = tiny_digits_config(
        tmp_path / "runs", **{"trainer.epochs": 1, "trainer.log_every_n_steps": 3}
    )
    train_variant(cfg, tmp_path / "run", **QUIET)
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
