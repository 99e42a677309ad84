"""Training loaders whose randomness is a function of ``(seed, epoch, rank)`` alone.

A run resumed at an epoch boundary sees exactly the same batches and augmentations: the batch
sampler is reseeded per epoch (``set_epoch``), every item draws its augmentation from a seed of
``(seed, epoch, rank, index)`` (:class:`EpochSeeded`) and every loader worker from one of
``(seed, epoch, rank, worker)`` (:func:`seed_worker`). Both settings (``dasl train`` and
``dasl pretrain``) build their training loader with :func:`epoch_loader`.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed for (run seed, epoch, rank), free of collisions between those triples."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0] >> 1)


class EpochSeeded(Dataset[Any]):
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


class EpochBatchSampler(Protocol):
    """A batch sampler reseeded per epoch (:class:`dasl.data.MPerClassBatchSampler`,
    :class:`dasl.data.RandomBatchSampler`)."""

    def set_epoch(self, epoch: int) -> None: ...

    def __iter__(self) -> Iterator[list[int]]: ...

    def __len__(self) -> int: ...


def epoch_loader(
    dataset: Any,
    batch_sampler: EpochBatchSampler,
    *,
    seed: int,
    epoch: int,
    rank: int,
    num_workers: int,
    pin_memory: bool = False,
) -> DataLoader[Any]:
    """The batches of ``batch_sampler`` at ``epoch``, items of :class:`EpochSeeded`
    ``dataset``, workers seeded by :func:`seed_worker`. The trainer rebuilds it every epoch."""
    batch_sampler.set_epoch(epoch)
    return DataLoader(
        EpochSeeded(dataset, seed, epoch, rank),
        batch_sampler=batch_sampler,
        num_workers=num_workers,
        worker_init_fn=functools.partial(seed_worker, seed=seed, epoch=epoch, rank=rank),
        pin_memory=pin_memory,
    )
