"""The data of a run in both settings, built from its validated config.

- ``dasl train`` (:class:`DataConfig`): :class:`MetricLearningData`, labelled splits under
  the train or eval transform of ``data.transform``, batches of the ``data.sampler`` sampler
  (:func:`train_loader`), a test split or query/gallery splits (:class:`EvalSets`);
- ``dasl pretrain`` (:class:`SSLDataConfig`): :class:`SSLData`, splits without a transform,
  two augmented views per training image (:meth:`SSLData.two_view_loader`), the labelled
  bank, validation and test images under the deterministic eval view.

Both training loaders are :func:`dasl.data.loaders.epoch_loader`: a run resumed at an epoch
boundary sees exactly the same batches and augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from dasl.choices import SAMPLERS
from dasl.config import DataConfig, ExperimentConfig
from dasl.data import ImageDataset, RandomBatchSampler, load_dataset
from dasl.data.classification import CLASSIFICATION_DATASETS, load_classification_split
from dasl.data.loaders import epoch_loader
from dasl.data.ssl_transforms import (
    TwoViewDataset,
    eval_transform,
    resolve_recipe,
    view_transform,
)
from dasl.data.transforms import Normalization, normalized_transforms
from dasl.errors import ConfigError
from dasl.models import input_normalization
from dasl.ssl_config import PretrainConfig, SSLDataConfig


def _dataset_options(
    cfg: DataConfig | SSLDataConfig, seed: int, max_per_class: int | None
) -> dict[str, Any]:
    """The options of :func:`dasl.data.load_dataset` that both settings' data sections set."""
    options: dict[str, Any] = {
        "val_fraction": cfg.val_fraction,
        "seed": seed,
        "allow_subset": cfg.allow_subset,
    }
    if max_per_class is not None:
        options["max_per_class"] = max_per_class
    return options


def _labelled_options(cfg: DataConfig, seed: int, max_per_class: int | None) -> dict[str, Any]:
    options = _dataset_options(cfg, seed, max_per_class)
    options["skip_unreadable"] = cfg.skip_unreadable
    options["in_channels"] = cfg.in_channels
    if cfg.val_by is not None:
        options["val_by"] = cfg.val_by
    return options


def load_split(
    cfg: DataConfig, split: str, train: bool, seed: int, normalization: Normalization = None
) -> ImageDataset:
    """One split with the train or eval transform of ``cfg.transform``.

    ``normalization``: the ``(mean, std)`` the backbone's pretrained weights expect
    (:func:`dasl.models.input_normalization`); ``None`` keeps the transform's default.
    """
    transform = normalized_transforms(
        cfg.transform, train, cfg.image_size, cfg.in_channels, normalization
    )
    cap = cfg.max_per_class if train else cfg.eval_max_per_class
    return load_dataset(
        cfg.name, cfg.root, split, transform=transform, **_labelled_options(cfg, seed, cap)
    )


@dataclass
class EvalSets:
    """What a run is evaluated on: a query set and an optional separate gallery (In-Shop)."""

    query: ImageDataset
    gallery: ImageDataset | None = None


def load_eval_sets(cfg: DataConfig, seed: int, normalization: Normalization = None) -> EvalSets:
    """The test split, or query/gallery splits when ``cfg.query_split`` is set."""
    if cfg.query_split is not None:
        if cfg.gallery_split is None:
            raise ConfigError("data.query_split is set but data.gallery_split is not; set both")
        return EvalSets(
            load_split(cfg, cfg.query_split, False, seed, normalization),
            load_split(cfg, cfg.gallery_split, False, seed, normalization),
        )
    return EvalSets(load_split(cfg, cfg.test_split, False, seed, normalization))


def train_loader(
    dataset: Any, cfg: DataConfig, seed: int, rank: int = 0, world_size: int = 1, epoch: int = 0
) -> DataLoader:
    """Batches of one training epoch: m-per-class or shuffled, sharded by rank.

    Everything random in an epoch is a function of ``(seed, epoch, rank)``
    (:func:`dasl.data.loaders.epoch_loader`), so a run resumed at an epoch boundary sees
    exactly the same data.
    The trainer rebuilds this loader every epoch.
    """
    batch_sampler = SAMPLERS.get(cfg.sampler)(
        dataset.labels,
        batch_size=cfg.batch_size,
        m_per_class=cfg.m_per_class,
        num_batches=cfg.batches_per_epoch,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )
    return epoch_loader(
        dataset,
        batch_sampler,
        seed=seed,
        epoch=epoch,
        rank=rank,
        num_workers=cfg.num_workers,
        # page-locked batches: the copy to the GPU overlaps the step (Lightning copies with
        # non_blocking=True) instead of staging through pageable memory (#19)
        pin_memory=torch.cuda.is_available(),
    )


def eval_loader(dataset: Dataset, cfg: DataConfig | SSLDataConfig) -> DataLoader:
    """``dataset`` in order, in batches of ``cfg.eval_batch_size`` (embedding, evaluation)."""
    return DataLoader(
        dataset, batch_size=cfg.eval_batch_size, shuffle=False, num_workers=cfg.num_workers
    )


class MetricLearningData:
    """The splits of one run; loaders are built per rank once the trainer knows its rank."""

    def __init__(
        self, cfg: DataConfig, seed: int, normalization: Normalization = None, test: bool = True
    ) -> None:
        """``test=False`` (hyperparameter search) never loads the test/query/gallery splits."""
        self.cfg = cfg
        self.seed = seed
        self.normalization = normalization
        self.train = load_split(cfg, cfg.train_split, True, seed, normalization)
        self.val = (
            load_split(cfg, cfg.val_split, False, seed, normalization)
            if cfg.val_split is not None
            else None
        )
        self.eval_sets = load_eval_sets(cfg, seed, normalization) if test else None

    @staticmethod
    def normalization_for(cfg: ExperimentConfig) -> Normalization:
        """The input statistics ``cfg``'s backbone expects (``None``: the transform's own)."""
        return input_normalization(cfg.model.backbone, cfg.data.in_channels)

    @classmethod
    def for_experiment(cls, cfg: ExperimentConfig, test: bool = True) -> MetricLearningData:
        """The data of ``cfg``, normalized the way its backbone's pretrained weights expect."""
        return cls(cfg.data, cfg.seed, cls.normalization_for(cfg), test=test)

    @property
    def num_classes(self) -> int:
        return int(self.train.num_classes)

    def describe(self) -> str:
        parts = [f"train: {self.train.describe()}"]
        if self.val is not None:
            parts.append(f"val: {self.val.describe()}")
        if self.eval_sets is None:
            return "; ".join(parts)
        parts.append(f"eval: {self.eval_sets.query.describe()}")
        if self.eval_sets.gallery is not None:
            parts.append(f"gallery: {self.eval_sets.gallery.describe()}")
        return "; ".join(parts)


def load_raw_split(cfg: SSLDataConfig, split: str, seed: int, cap: int | None) -> ImageDataset:
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
    return load_dataset(
        cfg.name, cfg.root, split, transform=None, **_dataset_options(cfg, seed, cap)
    )


class SSLData:
    """The splits of one pretraining run; loaders are built per rank by the trainer.

    ``train`` gives two augmented views per image (:class:`TwoViewDataset`) in batches of the
    rank-sharded :class:`RandomBatchSampler`; ``bank`` (the labelled training images under
    the deterministic eval view), ``val`` and ``test`` feed the k-NN monitor, the clustering
    of ``dasl_cu`` and the final evaluation.
    """

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

    def evaluated(self, dataset: ImageDataset) -> ImageDataset:
        return dataset.with_transform(self.eval_view)

    def bank(self) -> ImageDataset:
        """The labelled training images under the eval view (k-NN bank, linear probe)."""
        return self.evaluated(self.labelled)

    def cluster_bank(self) -> ImageDataset:
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
        return epoch_loader(
            TwoViewDataset(self.train, self.view),
            sampler,
            seed=self.seed,
            epoch=epoch,
            rank=rank,
            num_workers=dcfg.num_workers,
        )

    def eval_loader(self, dataset: Dataset) -> DataLoader:
        return eval_loader(dataset, self.cfg)

    def describe(self) -> str:
        parts = [f"train: {self.train.describe()}"]
        if self.val is not None:
            parts.append(f"val: {self.val.describe()}")
        parts.append(f"test: {self.test.describe()}")
        return "; ".join(parts) + f"; views: {self.recipe} recipe"
