"""Datasets and loaders of a pretraining run, built from :class:`SSLDataConfig`.

``train`` gives two augmented views per image (:class:`TwoViewDataset`), with per-item
augmentation seeds of ``(seed, epoch, rank, index)`` (:class:`EpochSeeded`) and batches of
the epoch-seeded, rank-sharded :class:`RandomBatchSampler`: a run resumed at an epoch
boundary sees exactly the same batches and views. ``bank`` (the training images under the
deterministic eval view), ``val`` and ``test`` feed the k-NN monitor, the clustering of
``dasl_cu`` and the final evaluation.
"""

from __future__ import annotations

import functools
from typing import Any

from torch.utils.data import DataLoader, Dataset

from dasl.data import RandomBatchSampler, load_dataset
from dasl.data.classification import CLASSIFICATION_DATASETS, load_classification_split
from dasl.data.ssl_transforms import (
    TwoViewDataset,
    eval_transform,
    resolve_recipe,
    view_transform,
)
from dasl.ssl_config import PretrainConfig, SSLDataConfig
from dasl.training.datamodule import EpochSeeded, seed_worker


def load_raw_split(cfg: SSLDataConfig, split: str, seed: int, cap: int | None) -> Any:
    """One split without a transform (classification splits for fashion-mnist/digits)."""
    if cfg.name in CLASSIFICATION_DATASETS:
        return load_classification_split(
            cfg.name,
            cfg.root,
            split,
            val_fraction=cfg.val_fraction,
            seed=seed,
            max_per_class=cap,
        )
    options: dict[str, Any] = {
        "val_fraction": cfg.val_fraction,
        "seed": seed,
        "allow_subset": cfg.allow_subset,
    }
    if cap is not None:
        options["max_per_class"] = cap
    return load_dataset(cfg.name, cfg.root, split, transform=None, **options)


class SSLData:
    """The splits of one pretraining run; loaders are built per rank by the trainer."""

    def __init__(self, cfg: PretrainConfig) -> None:
        dcfg = cfg.data
        self.cfg = dcfg
        self.seed = cfg.seed
        self.recipe = resolve_recipe(dcfg.recipe, dcfg.name)
        size, ch = dcfg.image_size, dcfg.in_channels
        self.view = view_transform(self.recipe, ch, size)
        self.eval_view = eval_transform(self.recipe, ch, size)
        self.train = load_raw_split(dcfg, dcfg.train_split, cfg.seed, dcfg.max_per_class)
        self.val = (
            load_raw_split(dcfg, dcfg.val_split, cfg.seed, dcfg.eval_max_per_class)
            if dcfg.val_split is not None
            else None
        )
        self.test = load_raw_split(dcfg, dcfg.test_split, cfg.seed, dcfg.eval_max_per_class)
        self.labelled = (
            load_raw_split(dcfg, dcfg.bank_split, cfg.seed, dcfg.max_per_class)
            if dcfg.bank_split is not None
            else self.train
        )

    @property
    def key(self) -> tuple[Any, ...]:
        """What decides the data: variants with the same key share one :class:`SSLData`."""
        return (self.cfg, self.seed)

    def evaluated(self, dataset: Any) -> Dataset:
        return dataset.with_transform(self.eval_view)

    def bank(self) -> Dataset:
        """The labelled training images under the eval view (k-NN bank, linear probe)."""
        return self.evaluated(self.labelled)

    def cluster_bank(self) -> Dataset:
        """The pretraining images under the eval view, in training-set order (DASL-cu)."""
        return self.evaluated(self.train)

    def two_view_loader(self, rank: int = 0, world_size: int = 1, epoch: int = 0) -> DataLoader:
        dcfg = self.cfg
        sampler = RandomBatchSampler(
            len(self.train),
            batch_size=dcfg.batch_size,
            num_batches=dcfg.batches_per_epoch,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )
        sampler.set_epoch(epoch)
        return DataLoader(
            EpochSeeded(TwoViewDataset(self.train, self.view), self.seed, epoch, rank),
            batch_sampler=sampler,
            num_workers=dcfg.num_workers,
            worker_init_fn=functools.partial(seed_worker, seed=self.seed, epoch=epoch, rank=rank),
            persistent_workers=False,
        )

    def eval_loader(self, dataset: Dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.cfg.eval_batch_size,
            shuffle=False,
            num_workers=self.cfg.num_workers,
        )

    def describe(self) -> str:
        parts = [f"train: {self.train.describe()}"]
        if self.val is not None:
            parts.append(f"val: {self.val.describe()}")
        parts.append(f"test: {self.test.describe()}")
        return "; ".join(parts) + f"; views: {self.recipe} recipe"
