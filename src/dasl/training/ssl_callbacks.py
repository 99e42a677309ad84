"""Callbacks of a pretraining run: the k-NN monitor and the clustering of DASL-cu.

Both embed the training images under the eval view (the "bank") with the model in eval mode;
one pass gives backbone features (k-NN) and projections (clustering), cached per optimizer
step so the monitor at the end of epoch ``e`` and the clustering at the start of ``e + 1``
share it. Neither touches the training random streams (the module reseeds them per epoch).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from dasl.data.loaders import epoch_seed
from dasl.metrics.pseudo_labels import cluster_pseudo_labels, cluster_purity


@torch.no_grad()
def embed_views(
    module: Any, loader: DataLoader, projection: bool = False
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Backbone features (and projections) of ``loader``'s images, float32, eval mode."""
    was_training = module.training
    module.eval()
    feats, projs, labels = [], [], []
    try:
        for x, y in loader:
            x = x.to(module.device)
            f = module(x)
            feats.append(f.float().cpu())
            if projection:
                projs.append(module.projection(f).float().cpu())
            labels.append(torch.as_tensor(y).reshape(-1))
    finally:
        module.train(was_training)
    proj = torch.cat(projs).numpy() if projection else None
    return torch.cat(feats).numpy(), proj, torch.cat(labels).numpy()


class BankCache:
    """Bank features of the current weights (keyed by the global step)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self._key: int | None = None
        self._value: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None = None

    def get(
        self, module: Any, projection: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        step = int(module.global_step)
        if self._key != step or self._value is None or (projection and self._value[1] is None):
            self._value = embed_views(module, self.loader, projection)
            self._key = step
        return self._value


class KNNMonitor(L.Callback):
    """Every ``every`` epochs: weighted k-NN top-1 of the validation split against the bank,
    logged as ``val/knn_top1`` (selects ``best.ckpt``) and kept in the module's history."""

    def __init__(
        self, bank: BankCache, val_loader: DataLoader, k: int, temperature: float, every: int
    ) -> None:
        self.bank, self.val_loader = bank, val_loader
        self.k, self.temperature, self.every = k, temperature, every

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        from dasl.metrics import knn_classify

        epoch = trainer.current_epoch
        if self.every < 1 or ((epoch + 1) % self.every and epoch + 1 != trainer.max_epochs):
            return
        t0 = time.perf_counter()
        # dasl_cu clusters the same bank at the next epoch start: compute its projections now.
        wants_proj = pl_module.cfg.ssl.method == "dasl_cu"
        bank, _, bank_labels = self.bank.get(pl_module, projection=wants_proj)
        val, _, val_labels = embed_views(pl_module, self.val_loader)
        top1 = knn_classify(
            bank, bank_labels, val, val_labels, k=self.k, temperature=self.temperature, ks=(1,)
        )["top1"]
        pl_module.log("val/knn_top1", float(top1), prog_bar=True, sync_dist=True)
        pl_module.merge_history(
            {
                "epoch": float(epoch),
                "val/knn_top1": float(top1),
                "val/monitor_s": time.perf_counter() - t0,
            }
        )


class ClusterRefresh(L.Callback):
    """DASL-cu: at the start of epochs ``start, start + every, ...`` cluster the bank's
    projections (or backbone features) into each ``num_clusters`` and store the ids in the
    module's ``pseudo_labels``; log the NMI of every granularity against the true labels
    (monitoring only, never used for training) as ``cluster/nmi@K``."""

    def __init__(
        self,
        bank: BankCache,
        num_clusters: list[int],
        every: int,
        start_epoch: int,
        features: str,
        seed: int,
        niter: int = 20,
    ) -> None:
        self.bank = bank
        self.num_clusters = list(num_clusters)
        self.every, self.start_epoch = every, start_epoch
        self.features, self.seed, self.niter = features, seed, niter

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        if epoch < self.start_epoch or (epoch - self.start_epoch) % self.every:
            return
        t0 = time.perf_counter()
        feats, proj, labels = self.bank.get(pl_module, projection=self.features == "projection")
        bank = proj if self.features == "projection" else feats
        assert bank is not None
        seed = epoch_seed(self.seed, epoch) % 2**31
        pseudo = cluster_pseudo_labels(bank, self.num_clusters, seed, self.niter)
        pl_module.pseudo_labels.copy_(torch.from_numpy(pseudo).to(pl_module.pseudo_labels.device))
        row: dict[str, float] = {"epoch": float(epoch)}
        for k, score in zip(self.num_clusters, cluster_purity(pseudo, labels), strict=True):
            row[f"cluster/nmi@{k}"] = score
        row["cluster/seconds"] = time.perf_counter() - t0
        pl_module.merge_history(row)
