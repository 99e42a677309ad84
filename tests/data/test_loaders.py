import random

import numpy as np
import torch

from dasl.data import RandomBatchSampler
from dasl.data.loaders import EpochSeeded, epoch_loader, epoch_seed, seed_worker


def test_epoch_seed_is_deterministic_63_bit_and_collision_free():
    seeds = {epoch_seed(s, e, r) for s in range(4) for e in range(50) for r in range(4)}
    assert len(seeds) == 4 * 50 * 4
    assert all(0 <= v < 2**63 for v in seeds)
    assert epoch_seed(3, 7, 1) == epoch_seed(3, 7, 1)
    # not a simple sum: (seed, epoch) pairs with the same sum differ
    assert epoch_seed(1, 2) != epoch_seed(2, 1)


class _Noisy:
    """An item is a draw from the global generator (like a random augmentation)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> float:
        return float(torch.rand(()))


def test_epoch_seeded_items_depend_on_seed_epoch_rank_index_only():
    ds = EpochSeeded(_Noisy(), seed=5, epoch=2, rank=0)
    forward = [ds[i] for i in range(10)]
    torch.manual_seed(123)  # whatever the global state and the fetch order
    backward = [ds[i] for i in reversed(range(10))][::-1]
    assert forward == backward
    assert len(set(forward)) == 10
    assert EpochSeeded(_Noisy(), 5, 3, 0)[4] != forward[4]  # next epoch: new draws
    assert EpochSeeded(_Noisy(), 5, 2, 1)[4] != forward[4]  # other rank: new draws
    state = torch.get_rng_state()
    ds[0]
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched


def _draws():
    return float(torch.rand(())), random.random(), float(np.random.random())


def test_seed_worker_seeds_every_generator_from_the_tuple():
    seed_worker(0, seed=1, epoch=4, rank=0)
    a = _draws()
    torch.manual_seed(99)
    random.seed(99)
    seed_worker(0, seed=1, epoch=4, rank=0)
    assert _draws() == a
    seed_worker(1, seed=1, epoch=4, rank=0)
    b = _draws()
    seed_worker(0, seed=1, epoch=5, rank=0)
    c = _draws()
    assert len({a, b, c}) == 3 and all(len(set(t)) == 3 for t in (a, b, c))


class _Indexed:
    """Item ``i`` is ``(i, a draw from the global generator)``."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> tuple[int, float]:
        return index, float(torch.rand(()))


def _batches(epoch: int, seed: int = 1, rank: int = 0) -> list[list[tuple[int, float]]]:
    sampler = RandomBatchSampler(12, batch_size=4, seed=seed)
    loader = epoch_loader(
        _Indexed(), sampler, seed=seed, epoch=epoch, rank=rank, num_workers=0, pin_memory=False
    )
    return [list(zip(i.tolist(), x.tolist(), strict=True)) for i, x in loader]


def test_epoch_loader_is_the_sampler_at_the_epoch_with_epoch_seeded_items():
    sampler = RandomBatchSampler(12, batch_size=4, seed=1)
    sampler.set_epoch(2)
    expected = [[(i, EpochSeeded(_Indexed(), 1, 2, 0)[i][1]) for i in b] for b in sampler]
    torch.manual_seed(7)  # whatever the global generator holds
    assert _batches(epoch=2) == expected
    assert _batches(epoch=3) != expected  # the epoch reshuffles and redraws
    assert [i for i, _ in _batches(epoch=2, rank=1)[0]] == [i for i, _ in expected[0]]
    assert _batches(epoch=2, rank=1)[0] != expected[0]  # same batch, other rank's draws
