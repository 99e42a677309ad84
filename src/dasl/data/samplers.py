"""Class-balanced batches (``C`` classes x ``m`` images) for metric learning, epoch-seeded and
DDP-aware.

Hand-written rather than PML's ``MPerClassSampler`` because that one is neither seeded per epoch
(a run resumed at an epoch boundary would draw other batches) nor distributed-aware: under DDP
each rank would draw its own overlapping batches (PML issue #546).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from dasl.choices import SAMPLERS
from dasl.errors import ConfigError, DataError


def _distributed_default(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return (
            dist.get_rank() if rank is None else rank,
            dist.get_world_size() if world_size is None else world_size,
        )
    return (0 if rank is None else rank), (1 if world_size is None else world_size)


class _EpochBatchSampler(Sampler[list[int]]):
    """What both batch samplers share: ``num_batches`` per rank, reseeded by ``set_epoch``."""

    num_batches: int
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches


class MPerClassBatchSampler(_EpochBatchSampler):
    """Yields batches of ``batch_size // m`` distinct classes with ``m`` images each.

    Batches of an epoch are a pure function of ``(seed, epoch)``. Under DDP ``batch_size`` is
    per rank: all ranks generate the same sequence of ``len(self)`` *global* batches of
    ``world_size * batch_size`` images from ``world_size * batch_size // m`` distinct classes
    (``m`` images each), and rank ``r`` takes slice ``r`` of each (``batch_size // m`` whole
    classes). The ranks' batches of one step are therefore disjoint, and their concatenation
    in rank order (what the global-batch loss sees) has the composition a single process
    with ``world_size * batch_size`` would draw. When the dataset has fewer classes than a
    global batch needs, rank ``r`` takes batches ``r, r + world_size, ...`` of one shared
    sequence of per-rank batches instead (classes distinct within a rank's batch only).
    Classes are visited in shuffled rounds (each class once per round, so class frequencies
    differ by at most one round) and each class's images in shuffled order without replacement
    until they run out; a class with fewer than ``m`` images is sampled with replacement.
    N-pair batches are ``m=2``.

    Args:
        labels: one integer label per dataset item.
        m: images per class in a batch.
        batch_size: images per batch; must be a multiple of ``m``.
        num_batches: batches per epoch per rank (``len(self)``); default
            ``len(labels) // (batch_size * world_size)`` (rounded up when ``drop_last=False``),
            at least 1.
        seed: base seed; call :meth:`set_epoch` each epoch to draw new batches.
        rank, world_size: this process's place in a DDP group (``None``: ask
            ``torch.distributed`` when initialised, else 0 and 1).
        drop_last: only affects the default ``num_batches`` (every batch is always full).

    Example:
        >>> s = MPerClassBatchSampler([0, 0, 1, 1, 2, 2], m=2, batch_size=4)
        >>> [len(b) for b in s]
        [4]
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        m: int,
        batch_size: int,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int | None = 0,
        world_size: int | None = 1,
        drop_last: bool = True,
    ) -> None:
        if isinstance(labels, torch.Tensor):
            labels = labels.cpu().numpy()
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.size == 0:
            raise DataError(f"labels must be a non-empty 1-D sequence, got shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"labels must be integers, got dtype {labels.dtype}")
        if m < 1 or batch_size < 1:
            raise ConfigError(f"m and batch_size must be >= 1, got m={m}, batch_size={batch_size}")
        if batch_size % m:
            raise ConfigError(
                f"batch_size={batch_size} is not a multiple of m={m}; use e.g. "
                f"batch_size={max(m, batch_size // m * m)}"
            )
        rank, world_size = _distributed_default(rank, world_size)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(
                f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
            )
        self.classes, inverse = np.unique(labels, return_inverse=True)
        self.classes_per_batch = batch_size // m
        if self.classes_per_batch > self.classes.size:
            raise ConfigError(
                f"batch_size // m = {self.classes_per_batch} classes per batch, but labels has "
                f"only {self.classes.size} classes; lower batch_size or raise m"
            )
        # One global batch needs world_size * classes_per_batch distinct classes; with fewer
        # classes (e.g. 100 CUB classes, 4 ranks x 30) each rank draws its own class-distinct
        # batch from one shared sequence instead (rank r takes batches r, r + W, ...), and a
        # class may then appear on two ranks in the same step.
        self.split_global = self.classes_per_batch * world_size <= self.classes.size
        # Item indices of each class, grouped: members[starts[c]:starts[c+1]].
        order = np.argsort(inverse, kind="stable")
        self._members = [order[s:e] for s, e in zip(*self._bounds(inverse), strict=True)]
        self.m, self.batch_size = m, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        if num_batches is None:
            denom = batch_size * world_size
            num_batches = labels.size // denom if drop_last else -(-labels.size // denom)
            num_batches = max(1, num_batches)
        if num_batches < 1:
            raise ConfigError(f"num_batches must be >= 1, got {num_batches}")
        self.num_batches = int(num_batches)
        self.epoch = 0

    @staticmethod
    def _bounds(inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = np.bincount(inverse)
        ends = np.cumsum(counts)
        return ends - counts, ends

    def _global_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n_classes, m = self.classes.size, self.m
        per_batch = self.world_size if self.split_global else 1
        cpb = self.classes_per_batch * per_batch  # classes of one generated batch
        queues = [rng.permutation(mem) for mem in self._members]
        heads = [0] * n_classes
        round_order = rng.permutation(n_classes)
        pos = 0
        batches = []
        for _ in range(self.num_batches * self.world_size // per_batch):
            if pos + cpb > round_order.size:
                # The batch straddles two rounds (each a full permutation of the classes). Open
                # the next round with classes the old round's leftovers lack, so the batch has
                # distinct classes and every class is still visited once per round.
                left = round_order[pos:]
                everyone = np.arange(n_classes)
                head = rng.choice(np.setdiff1d(everyone, left), cpb - left.size, replace=False)
                tail = rng.permutation(np.setdiff1d(everyone, head))
                round_order, pos = np.concatenate([left, head, tail]), 0
            chosen = round_order[pos : pos + cpb]
            pos += cpb
            batch = []
            for c in chosen:
                mem = self._members[c]
                if mem.size < m:
                    batch.extend(rng.choice(mem, size=m, replace=True).tolist())
                    continue
                if heads[c] + m > mem.size:
                    queues[c], heads[c] = rng.permutation(mem), 0
                batch.extend(queues[c][heads[c] : heads[c] + m].tolist())
                heads[c] += m
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        if not self.split_global:
            yield from self._global_batches()[self.rank :: self.world_size]
            return
        lo = self.rank * self.batch_size
        for batch in self._global_batches():
            yield batch[lo : lo + self.batch_size]


class RandomBatchSampler(_EpochBatchSampler):
    """Uniformly shuffled batches, epoch-seeded and DDP-aware like :class:`MPerClassBatchSampler`.

    Each epoch is a permutation of ``range(num_items)`` drawn from ``(seed, epoch)`` and cut
    into batches of ``batch_size`` (wrapping around when more batches are asked for than one
    permutation holds); rank ``r`` takes batches ``r, r + world_size, ...``. Written by hand
    because torch's ``DistributedSampler`` shards items, not batches, and is seeded once.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        num_batches: int | None = None,
        seed: int = 0,
        rank: int | None = 0,
        world_size: int | None = 1,
    ) -> None:
        if num_items < 1:
            raise DataError("cannot sample batches from an empty dataset")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > num_items:
            raise ConfigError(
                f"batch_size {batch_size} is larger than the dataset ({num_items} items); "
                "lower data.batch_size"
            )
        self.rank, self.world_size = _distributed_default(rank, world_size)
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} is outside world_size {self.world_size}")
        self.num_items = num_items
        self.batch_size = batch_size
        default = max(1, num_items // (batch_size * self.world_size))
        self.num_batches = default if num_batches is None else int(num_batches)
        if self.num_batches < 1:
            raise ConfigError(f"num_batches must be >= 1, got {num_batches}")
        self.seed = seed
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        total = self.num_batches * self.world_size * self.batch_size
        order = np.concatenate(
            [rng.permutation(self.num_items) for _ in range(-(-total // self.num_items))]
        )[:total]
        batches = order.reshape(-1, self.batch_size)
        for b in batches[self.rank :: self.world_size]:
            yield b.tolist()


# ``data.sampler`` entries: ``build(labels, *, batch_size, m_per_class, num_batches, seed, rank,
# world_size) -> batch sampler with set_epoch``.


@SAMPLERS.register("m_per_class", options={})
def m_per_class_sampler(
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    batch_size: int,
    m_per_class: int,
    num_batches: int | None,
    seed: int,
    rank: int,
    world_size: int,
) -> MPerClassBatchSampler:
    """``batch_size / m_per_class`` classes x ``m_per_class`` images per batch."""
    return MPerClassBatchSampler(
        labels,
        m=m_per_class,
        batch_size=batch_size,
        num_batches=num_batches,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )


@SAMPLERS.register("random", options={})
def random_sampler(
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    batch_size: int,
    num_batches: int | None,
    seed: int,
    rank: int,
    world_size: int,
    **_: int,
) -> RandomBatchSampler:
    """Uniformly shuffled batches (``m_per_class`` unused)."""
    return RandomBatchSampler(
        len(labels),
        batch_size=batch_size,
        num_batches=num_batches,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )
