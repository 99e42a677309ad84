"""Datasets and loaders for a metric-learning run, built from a :class:`DataConfig`."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dasl.choices import SAMPLERS
from dasl.config import DataConfig, ExperimentConfig
from dasl.data import build_transforms, load_dataset
from dasl.errors import ConfigError


def _dataset_options(cfg: DataConfig, seed: int, max_per_class: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "val_fraction": cfg.val_fraction,
        "seed": seed,
        "allow_subset": cfg.allow_subset,
        "skip_unreadable": cfg.skip_unreadable,
        "in_channels": cfg.in_channels,
    }
    if cfg.val_by is not None:
        options["val_by"] = cfg.val_by
    if max_per_class is not None:
        options["max_per_class"] = max_per_class
    return options


Normalization = tuple[tuple[float, ...], tuple[float, ...]] | None


def load_split(
    cfg: DataConfig, split: str, train: bool, seed: int, normalization: Normalization = None
) -> Dataset:
    """One split with the train or eval transform of ``cfg.transform``.

    ``normalization``: the ``(mean, std)`` the backbone's pretrained weights expect
    (:func:`dasl.models.input_normalization`); ``None`` keeps the transform's default.
    """
    mean, std = normalization if normalization is not None else (None, None)
    transform = build_transforms(
        cfg.transform,
        train=train,
        image_size=cfg.image_size,
        in_channels=cfg.in_channels,
        mean=mean,
        std=std,
    )
    cap = cfg.max_per_class if train else cfg.eval_max_per_class
    return load_dataset(
        cfg.name, cfg.root, split, transform=transform, **_dataset_options(cfg, seed, cap)
    )


@dataclass
class EvalSets:
    """What a run is evaluated on: a query set and an optional separate gallery (In-Shop)."""

    query: Dataset
    gallery: Dataset | None = None


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


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed for (run seed, epoch, rank), free of collisions between those triples."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0] >> 1)


def train_loader(
    dataset: Any, cfg: DataConfig, seed: int, rank: int = 0, world_size: int = 1, epoch: int = 0
) -> DataLoader:
    """Batches of one training epoch: m-per-class or shuffled, sharded by rank.

    Everything random in an epoch is a function of ``(seed, epoch, rank)``: the batches (the
    sampler's ``set_epoch``) and the augmentation seeds of the loader's workers
    (:func:`seed_worker`), so a run resumed at an epoch boundary sees exactly the same data.
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
    batch_sampler.set_epoch(epoch)
    return DataLoader(
        EpochSeeded(dataset, seed, epoch, rank),
        batch_sampler=batch_sampler,
        num_workers=cfg.num_workers,
        worker_init_fn=functools.partial(seed_worker, seed=seed, epoch=epoch, rank=rank),
        # page-locked batches: the copy to the GPU overlaps the step (Lightning copies with
        # non_blocking=True) instead of staging through pageable memory (#19)
        pin_memory=torch.cuda.is_available(),
    )


class EpochSeeded(Dataset):
    """``dataset`` whose item ``i`` draws its random augmentation from a seed of
    ``(seed, epoch, rank, i)`` alone, whatever process fetches it and whenever.

    Lightning fetches batches at points that differ between a fresh and a resumed run (and
    the DataLoader draws from the global generator when it starts an iterator), so seeding
    the global generator once per epoch is not enough for an exact resume. An image drawn
    twice in one epoch gets the same augmentation.
    """

    def __init__(self, dataset: Any, seed: int, epoch: int, rank: int = 0) -> None:
        self.dataset = dataset
        self.seed, self.epoch, self.rank = seed, epoch, rank

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            # Only the CPU generator: torch.manual_seed also seeds every CUDA device, which
            # costs ~50x more per image on CUDA builds; fork_rng(devices=[]) restores only
            # the CPU state anyway.
            seed = epoch_seed(self.seed, self.epoch, self.rank * (1 << 32) + int(index))
            torch.default_generator.manual_seed(seed)
            return self.dataset[index]


def seed_worker(worker_id: int, seed: int, epoch: int, rank: int) -> None:
    """Seed a loader worker from ``(seed, epoch, rank, worker_id)`` alone.

    The DataLoader's own worker seeds come from a generator whose state depends on how often
    the loader was iterated, which differs between a fresh and a resumed run.
    """
    s = epoch_seed(seed, epoch, rank * 1024 + worker_id + 1)
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s % 2**32)


def eval_loader(dataset: Dataset, cfg: DataConfig) -> DataLoader:
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
        from dasl.models import input_normalization

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
