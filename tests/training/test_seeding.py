import random

import numpy as np
import torch

from dasl.training.datamodule import EpochSeeded, epoch_seed, seed_worker


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
