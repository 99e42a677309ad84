"""The LightningModule for supervised metric learning with a DASL loss.

This is the only layer that knows about Lightning. One training step is
``z = model(x)``; ``loss = base(z, y) + lam * DAR(z, y)``; the validation epoch embeds the
validation split and logs the core's retrieval metrics (``val/map@r`` selects the best
checkpoint).

Under DDP (``trainer.global_batch_loss``, the default) the loss gathers ``z`` and ``y`` of all
ranks in rank order with gradients, so base loss and DAR see the global batch, and a chain
estimator draws its chain from a generator seeded by ``(seed, global_step)``: the same chain on
every rank. Each rank embeds its shard of the validation split; the shards are gathered back
in dataset order and every rank computes the same metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor

from dasl.config import ExperimentConfig, from_saved
from dasl.dar import DASLLoss, DifferenceAlignmentRegularizer
from dasl.dar.controls import l2sq_decomposition
from dasl.dar.estimators import is_sampled
from dasl.evaluation import evaluate_embeddings, gather_shards
from dasl.models import build_model
from dasl.objective import build_objective
from dasl.training.epoch_log import EpochLoggedModule
from dasl.utils.distributed import broadcast_buffers, step_generator, world


def step_loss(criterion: DASLLoss, z: Tensor, y: Tensor, seed: int, step: int) -> Tensor:
    """The loss of one training step: ``criterion(z, y)``, with a sampled estimator drawing from
    a generator seeded by ``(seed, step)``: the same chain on every rank (the criterion
    gathers the global batch when ``gather_distributed``), reproducible, unchanged by a
    resume."""
    reg = criterion.regularizer
    if isinstance(reg, DifferenceAlignmentRegularizer) and is_sampled(reg.estimator):
        reg.generator = step_generator(seed, step)
    return criterion(z, y)


class MetricLearningModule(EpochLoggedModule):
    """Backbone + embedding head trained with ``DASLLoss``; validated by MAP@R.

    ``config`` is the resolved, validated :class:`ExperimentConfig` (checkpoints carry it as a
    plain dict, so that they hold everything needed to rebuild the model; that dict is read
    back with :func:`dasl.config.from_saved`), ``num_classes`` the number of training classes
    (ProxyAnchor needs one proxy per class). Load a trained model with :func:`load_module`,
    which skips the pretrained-weight download.
    """

    def __init__(
        self,
        config: ExperimentConfig | dict[str, Any],
        num_classes: int,
        load_pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.cfg: ExperimentConfig = (
            config if isinstance(config, ExperimentConfig) else from_saved(ExperimentConfig, config)
        )
        self.save_hyperparameters(
            {
                "config": self.cfg.to_dict(),
                "num_classes": num_classes,
                "load_pretrained": load_pretrained,
            }
        )
        mcfg = self.cfg.model
        self.model = build_model(
            mcfg.backbone,
            embedding_dim=mcfg.embedding_dim,
            # A checkpoint holds every weight: loading one must not need the original
            # pretrained file or a download (load_from_checkpoint(..., load_pretrained=False)).
            pretrained=mcfg.pretrained if load_pretrained else False,
            pooling=mcfg.pooling,
            freeze_bn=mcfg.freeze_bn,
            in_channels=self.cfg.data.in_channels,
        )
        if mcfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # Global batch under DDP (a no-op in one process); the proxies of ProxyAnchor are
        # parameters of this module, so DDP averages their gradients like the network's.
        criterion = build_objective(
            self.cfg.loss,
            self.cfg.dar,
            num_classes=num_classes,
            embedding_dim=self.model.embedding_dim,
            gather_distributed=self.cfg.trainer.global_batch_loss,
        )
        assert isinstance(criterion, DASLLoss)
        self.criterion: DASLLoss = criterion
        self._val_embeddings: list[Tensor] = []
        self._val_labels: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        if self.cfg.model.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    # ------------------------------------------------------------------ training

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        z = self(x)
        loss = step_loss(self.criterion, z, y, self.cfg.seed, self.global_step)
        base = self.criterion.last_base_loss
        dar = self.criterion.last_regularizer
        terms = {"train/loss": loss.detach()}
        if base is not None:  # set by every forward of the criterion
            terms["train/base_loss"] = base
        if self.cfg.dar.lam != 0 and dar is not None:
            terms["train/dar"] = dar
        terms.update(self._decomposition_terms(z, y))
        self.log_step_terms(terms, x.shape[0])
        return loss

    def _decomposition_terms(self, z: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Signed squared-l2 DAR of this rank's batch split into its class-mean, within-class
        and orientation terms (``dasl.dar.controls``; issue #18), whatever the loss: which term
        a regularizer moves is the question. O(N h) on the device, no host sync; logged at the
        logging cadence and averaged per epoch like the other terms."""
        diff = "ordered" if self.cfg.dar.difference == "ordered" else "signed"
        with torch.no_grad():
            parts = l2sq_decomposition(z.detach(), y, diff)
        return {
            "train/l2sq_class_mean": parts.class_mean,
            "train/l2sq_within": parts.within,
            "train/l2sq_orientation": parts.orientation,
        }

    # ---------------------------------------------------------------- validation

    def on_validation_epoch_start(self) -> None:
        # The ranks must evaluate one model, rank 0's (the checkpointed one), BatchNorm
        # statistics included. DDP's forward syncs buffers during fit, but trainer.validate()
        # calls the module directly: make it explicit (one broadcast per buffer per epoch).
        broadcast_buffers(self.model)
        rank, size = world()
        loaders = self.trainer.val_dataloaders if self._trainer is not None else None
        for loader in loaders if isinstance(loaders, list | tuple) else [loaders]:
            idx = getattr(getattr(loader, "dataset", None), "indices", None)
            if size > 1 and not (isinstance(idx, range) and (idx.start, idx.step) == (rank, size)):
                raise RuntimeError(
                    "validation under DDP needs each rank's loader to hold its own shard, "
                    "dasl.evaluation.shard(dataset): the shards are gathered back, so "
                    "a full copy per rank would count every item several times"
                )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self._val_embeddings.append(self(x).detach().float())
        self._val_labels.append(y.detach())

    def on_validation_epoch_end(self) -> None:
        if self._val_embeddings:
            emb = torch.cat(self._val_embeddings)
            lab = torch.cat(self._val_labels)
        else:  # no validation split, or this rank's shard is empty: still join the gather
            emb = torch.zeros(0, self.model.embedding_dim, device=self.device)
            lab = torch.zeros(0, dtype=torch.long, device=self.device)
        self._val_embeddings.clear()
        self._val_labels.clear()
        # Each rank embedded its shard of the split: put all shards back in dataset order;
        # every rank then computes the same metrics.
        emb, lab = gather_shards(emb, lab)
        if emb.shape[0] == 0:
            return
        ecfg = self.cfg.eval
        metrics = evaluate_embeddings(
            emb.cpu().numpy(),
            lab.cpu().numpy(),
            tuple(ecfg.ks),
            ecfg.distance,
            nmi=False,
            seed=self.cfg.seed,
        )
        logged = {f"val/{k}": float(v) for k, v in metrics.items() if isinstance(v, float)}
        # Every rank holds the same value; sync_dist only keeps Lightning's DDP check quiet.
        self.log_dict({k: v for k, v in logged.items() if k != "val/map@r"}, sync_dist=True)
        self.log("val/map@r", logged["val/map@r"], prog_bar=True, sync_dist=True)
        self.merge_history({"epoch": float(self.current_epoch), **logged})

    # ---------------------------------------------------------------- optimizer

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        ocfg = self.cfg.optim
        groups = [
            {
                "params": [p for p in self.model.backbone_parameters() if p.requires_grad],
                "lr": ocfg.lr * ocfg.backbone_lr_mult,
                "name": "backbone",
            },
            {
                "params": [p for p in self.model.head_parameters() if p.requires_grad],
                "lr": ocfg.lr,
                "name": "head",
            },
        ]
        loss_params = [p for p in self.criterion.parameters() if p.requires_grad]
        if loss_params:
            # Proxies move slowly at the network's learning rate; ProxyAnchor uses x100.
            groups.append(
                {
                    "params": loss_params,
                    "lr": ocfg.lr * ocfg.proxy_lr_mult,
                    "name": "loss",
                    "weight_decay": 0.0,
                }
            )
        groups = [g for g in groups if g["params"]]
        optimizer = torch.optim.AdamW(groups, lr=ocfg.lr, weight_decay=ocfg.weight_decay)
        return self.with_schedule(optimizer)


def load_module(path: str | Path, map_location: str = "cpu") -> MetricLearningModule:
    """A trained :class:`MetricLearningModule` from a checkpoint written by ``dasl train``."""
    return MetricLearningModule.load_from_checkpoint(
        path, map_location=map_location, load_pretrained=False
    )
