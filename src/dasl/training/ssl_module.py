"""The LightningModule of self-supervised pretraining: SimCLR, DASL-cf, DASL-cu.

One training step: two views of each image of the batch go through the backbone and the
projection head (lightly's ``SimCLRProjectionHead``) in one pass, and the objective of
:func:`dasl.objective.build_objective` (a :class:`dasl.dar.TwoViewDASLLoss`) gives
``base(z0, z1) + lam * DAR(z, labels)`` with

- ``simclr``: no DAR (``dar.lam`` must be 0);
- ``dasl_cf``: labels = instance ids (dataset indices; the two views share one);
- ``dasl_cu``: labels = the k-means pseudo-labels of each image (one row per granularity)
  held in the ``pseudo_labels`` buffer (so checkpoints carry them), refreshed by
  :class:`dasl.training.ssl_callbacks.ClusterRefresh`; instance ids until the first
  clustering.

``forward(x)`` gives the backbone features (what k-NN and linear evaluation use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import Tensor, nn

from dasl.config import from_saved
from dasl.dar import TwoViewDASLLoss
from dasl.data.loaders import epoch_seed
from dasl.errors import ConfigError
from dasl.models import build_model
from dasl.objective import build_objective
from dasl.registry import unknown_choice
from dasl.ssl_config import OPTIMIZERS, PretrainConfig
from dasl.training.epoch_log import EpochLoggedModule


def build_backbone(cfg: PretrainConfig) -> nn.Module:
    """Backbone + pooling, no head, no normalization: ``(N, C, H, W) -> (N, feature_dim)``."""
    mcfg = cfg.model
    kwargs: dict[str, Any] = {}
    if mcfg.cifar_stem:
        kwargs["cifar_stem"] = True
    if mcfg.backbone == "vit_b_16" and cfg.data.image_size is not None:
        kwargs["image_size"] = cfg.data.image_size
    return build_model(
        mcfg.backbone,
        embedding_dim=None,
        pooling=mcfg.pooling,
        normalize=False,
        in_channels=cfg.data.in_channels,
        **kwargs,
    )


class SSLModule(EpochLoggedModule):
    """Backbone + projection head trained with a two-view objective (see module docstring).

    ``config``: the resolved, validated :class:`PretrainConfig` (checkpoints carry it as a
    dict, read back with :func:`dasl.config.from_saved`); ``num_train``: training images (the
    size of the pseudo-label table of ``dasl_cu``).
    """

    pseudo_labels: Tensor
    """``(G, num_train)`` cluster ids per granularity, -1 before the first clustering (a buffer)."""

    def __init__(self, config: PretrainConfig | dict[str, Any], num_train: int) -> None:
        super().__init__()
        self.cfg: PretrainConfig = (
            config if isinstance(config, PretrainConfig) else from_saved(PretrainConfig, config)
        )
        self.save_hyperparameters({"config": self.cfg.to_dict(), "num_train": num_train})
        from lightly.models.modules import SimCLRProjectionHead

        mcfg, scfg, dcfg = self.cfg.model, self.cfg.ssl, self.cfg.dar
        self.backbone = build_backbone(self.cfg)
        self.projection = SimCLRProjectionHead(
            self.backbone.feature_dim, mcfg.proj_hidden_dim, mcfg.proj_dim
        )
        if mcfg.channels_last:
            self.backbone = self.backbone.to(memory_format=torch.channels_last)
        # The chain estimator's permutations come from their own generator, reseeded from
        # (seed, step) every step (and the rank when the loss is per GPU): Lightning draws
        # from the global generator at points that differ between a fresh and a resumed
        # run, so that one is no good for this.
        self._chain_generator = torch.Generator()
        objective = build_objective(
            scfg,
            dcfg,
            gather_distributed=self.cfg.trainer.global_batch_loss,
            generator=self._chain_generator,
        )
        assert isinstance(objective, TwoViewDASLLoss)
        self.objective: TwoViewDASLLoss = objective
        granularities = len(self.cfg.clustering.num_clusters) if scfg.method == "dasl_cu" else 0
        # -1: not clustered yet (instance ids are used until the first clustering).
        self.register_buffer(
            "pseudo_labels", torch.full((granularities, num_train), -1, dtype=torch.long)
        )
        self._clustered_key: tuple[int, int] | None = None
        self._clustered_cached = False

    def forward(self, x: Tensor) -> Tensor:
        if self.cfg.model.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x)

    def project(self, x: Tensor) -> Tensor:
        return self.projection(self(x))

    def dar_labels(self, index: Tensor) -> Tensor:
        """Labels DAR sees for the images ``index`` of the training set: ``(B,)`` or ``(G, B)``."""
        if self.cfg.ssl.method == "dasl_cu" and self._clustered_this_epoch():
            return self.pseudo_labels[:, index]
        return index

    def _clustered_this_epoch(self) -> bool:
        """:attr:`clustered`, read once per training epoch (a host sync) rather than every
        step (#19): the clustering only changes at an epoch's start (``ClusterRefresh``)."""
        if self._trainer is None:
            return self.clustered
        key = (id(self._trainer), self.current_epoch)
        if self._clustered_key != key:
            self._clustered_key, self._clustered_cached = key, self.clustered
        return self._clustered_cached

    @property
    def clustered(self) -> bool:
        return self.pseudo_labels.numel() > 0 and bool((self.pseudo_labels[:, 0] >= 0).all())

    # ------------------------------------------------------------------ training

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x0, x1, index, _ = batch  # the true labels are never used for training
        # The same chain on every rank when DAR sees the global batch (it is then drawn over
        # the gathered views), one per rank otherwise.
        chain_rank = 0 if self.cfg.trainer.global_batch_loss else self.global_rank
        self._chain_generator.manual_seed(
            epoch_seed(self.cfg.seed, int(self.global_step), chain_rank)
        )
        z = self.project(torch.cat([x0, x1], dim=0))
        z0, z1 = z.chunk(2, dim=0)
        labels = self.dar_labels(index) if self.cfg.ssl.method != "simclr" else None
        loss = self.objective(z0, z1, labels)
        terms = {"train/loss": loss.detach(), "train/base_loss": self.objective.last_base_loss}
        if self.objective.last_regularizer is not None:
            terms["train/dar"] = self.objective.last_regularizer
        self.log_step_terms(terms, x0.shape[0])
        return loss

    # ---------------------------------------------------------------- optimizer

    def _param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        params = [p for p in self.parameters() if p.requires_grad]
        if not self.cfg.optim.exclude_bias_bn:
            return [{"params": params, "weight_decay": weight_decay}]
        # Biases and normalization weights (1-D) get no weight decay (and no LARS adaptation:
        # lightly's LARS skips parameters whose group has weight_decay 0), as in solo-learn.
        decay = [p for p in params if p.dim() > 1]
        no_decay = [p for p in params if p.dim() <= 1]
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        ocfg = self.cfg.optim
        lr = ocfg.lr
        if ocfg.lr_scaling == "linear":
            world = self.trainer.world_size if self._trainer is not None else 1
            lr = lr * self.cfg.data.batch_size * world / 256
        groups = self._param_groups(ocfg.weight_decay)
        if ocfg.optimizer == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=lr, momentum=ocfg.momentum
            )
        elif ocfg.optimizer == "lars":
            from lightly.utils.lars import LARS

            optimizer = LARS(groups, lr=lr, momentum=ocfg.momentum)
        elif ocfg.optimizer == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=lr)
        else:  # refused by the config already, unless it was built by hand
            wrong = unknown_choice("optimizer", ocfg.optimizer, OPTIMIZERS)
            raise ConfigError(f"optim.optimizer: {wrong}")
        return self.with_schedule(optimizer)


def load_ssl_module(path: str | Path, map_location: str = "cpu") -> SSLModule:
    """A trained :class:`SSLModule` from a checkpoint written by ``dasl pretrain``."""
    return SSLModule.load_from_checkpoint(path, map_location=map_location)


def is_ssl_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` was written by ``dasl pretrain`` (its config has an ``ssl`` section).

    Raises :class:`dasl.training.checkpoint_io.CheckpointError` naming the file when it is
    not a complete dasl checkpoint.
    """
    from dasl.training.checkpoint_io import read_checkpoint

    ckpt = read_checkpoint(path)
    config = ckpt.get("hyper_parameters", {}).get("config", {})
    return isinstance(config, dict) and "ssl" in config
