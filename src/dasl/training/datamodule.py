"""Datasets and loaders for a metric-learning run, built from a :class:`DataConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset

from dasl.config import DataConfig
from dasl.data import MPerClassBatchSampler, build_transforms, load_dataset


def _dataset_options(cfg: DataConfig, seed: int, max_per_class: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "val_fraction": cfg.val_fraction,
        "seed": seed,
        "allow_subset": cfg.allow_subset,
        "skip_unreadable": cfg.skip_unreadable,
    }
    if cfg.val_by is not None:
        options["val_by"] = cfg.val_by
    if max_per_class is not None:
        options["max_per_class"] = max_per_class
    return options


def load_split(cfg: DataConfig, split: str, train: bool, seed: int) -> Dataset:
    """One split with the train or eval transform of ``cfg.transform``."""
    transform = build_transforms(
        cfg.transform, train=train, image_size=cfg.image_size, in_channels=cfg.in_channels
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


def load_eval_sets(cfg: DataConfig, seed: int) -> EvalSets:
    """The test split, or query/gallery splits when ``cfg.query_split`` is set."""
    if cfg.query_split is not None:
        if cfg.gallery_split is None:
            raise ValueError("data.query_split is set but data.gallery_split is not; set both")
        return EvalSets(
            load_split(cfg, cfg.query_split, train=False, seed=seed),
            load_split(cfg, cfg.gallery_split, train=False, seed=seed),
        )
    return EvalSets(load_split(cfg, cfg.test_split, train=False, seed=seed))


def train_loader(
    dataset: Any, cfg: DataConfig, seed: int, rank: int = 0, world_size: int = 1
) -> DataLoader:
    """Batches for training: m-per-class (epoch-seeded, rank-aware) or plain shuffling."""
    if cfg.sampler == "m_per_class":
        batch_sampler = MPerClassBatchSampler(
            dataset.labels,
            m=cfg.m_per_class,
            batch_size=cfg.batch_size,
            num_batches=cfg.batches_per_epoch,
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=cfg.num_workers,
            persistent_workers=cfg.num_workers > 0,
        )
    if cfg.sampler == "random":
        from dasl.data import RandomBatchSampler

        batch_sampler = RandomBatchSampler(
            len(dataset),
            batch_size=cfg.batch_size,
            num_batches=cfg.batches_per_epoch,
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            num_workers=cfg.num_workers,
            persistent_workers=cfg.num_workers > 0,
        )
    raise ValueError(f"data.sampler: unknown sampler {cfg.sampler!r}; use 'm_per_class' or 'random'")


def eval_loader(dataset: Dataset, cfg: DataConfig) -> DataLoader:
    return DataLoader(
        dataset, batch_size=cfg.eval_batch_size, shuffle=False, num_workers=cfg.num_workers
    )


class MetricLearningData:
    """The splits of one run; loaders are built per rank once the trainer knows its rank."""

    def __init__(self, cfg: DataConfig, seed: int) -> None:
        self.cfg = cfg
        self.seed = seed
        self.train = load_split(cfg, cfg.train_split, train=True, seed=seed)
        self.val = (
            load_split(cfg, cfg.val_split, train=False, seed=seed)
            if cfg.val_split is not None
            else None
        )
        self.eval_sets = load_eval_sets(cfg, seed)

    @property
    def num_classes(self) -> int:
        return int(self.train.num_classes)

    def describe(self) -> str:
        parts = [f"train: {self.train.describe()}"]
        if self.val is not None:
            parts.append(f"val: {self.val.describe()}")
        parts.append(f"eval: {self.eval_sets.query.describe()}")
        if self.eval_sets.gallery is not None:
            parts.append(f"gallery: {self.eval_sets.gallery.describe()}")
        return "; ".join(parts)
