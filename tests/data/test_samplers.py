import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dasl.data import MPerClassBatchSampler


def _labels(seed=0, n_classes=12, max_count=9):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_count, size=n_classes)  # some classes smaller than m
    return rng.permutation(np.repeat(np.arange(n_classes) * 10, counts))


@pytest.mark.parametrize(("m", "batch_size"), [(2, 8), (4, 16), (3, 9), (1, 5)])
def test_batches_have_c_classes_times_m(m, batch_size):
    labels = _labels()
    s = MPerClassBatchSampler(labels, m=m, batch_size=batch_size, num_batches=20)
    batches = list(s)
    assert len(batches) == len(s) == 20
    for b in batches:
        assert len(b) == batch_size
        classes, counts = np.unique(labels[b], return_counts=True)
        assert classes.size == batch_size // m and np.all(counts == m)


def test_without_replacement_when_class_is_large_enough():
    labels = np.repeat(np.arange(4), [8, 8, 8, 2])
    s = MPerClassBatchSampler(labels, m=4, batch_size=8, num_batches=30)
    for b in s:
        for c in np.unique(labels[b]):
            idx = [i for i in b if labels[i] == c]
            if c != 3:
                assert len(set(idx)) == 4  # drawn without replacement
            assert all(labels[i] == c for i in idx)


@pytest.mark.parametrize(("n_classes", "batch_size", "num_batches"), [(10, 6, 40), (7, 8, 33)])
def test_class_frequencies_are_balanced(n_classes, batch_size, num_batches):
    labels = np.repeat(np.arange(n_classes), 5)
    s = MPerClassBatchSampler(labels, m=2, batch_size=batch_size, num_batches=num_batches)
    counts = np.bincount(np.concatenate([labels[b] for b in s]), minlength=n_classes) // 2
    assert counts.max() - counts.min() <= 1  # shuffled rounds visit each class once per round


def test_default_length_and_drop_last():
    labels = np.repeat(np.arange(10), 10)  # 100 items
    assert len(MPerClassBatchSampler(labels, 2, 16)) == 6
    assert len(MPerClassBatchSampler(labels, 2, 16, drop_last=False)) == 7
    assert len(MPerClassBatchSampler(labels, 2, 16, world_size=2, rank=1)) == 3
    assert len(MPerClassBatchSampler(labels, 2, 16, world_size=8, rank=0)) == 1


def test_deterministic_per_epoch_and_epochs_differ():
    labels = _labels(1)
    a = MPerClassBatchSampler(labels, 2, 8, num_batches=10, seed=5)
    b = MPerClassBatchSampler(labels, 2, 8, num_batches=10, seed=5)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(4)
    assert list(a) != first
    a.set_epoch(3)  # resuming at an epoch boundary reproduces the batches
    assert list(a) == first
    c = MPerClassBatchSampler(labels, 2, 8, num_batches=10, seed=6)
    c.set_epoch(3)
    assert list(c) != first


def test_ddp_ranks_split_global_batches():
    """batch_size is per rank: the ranks' batches of one step are disjoint slices of a global
    batch with world * batch_size / m distinct classes, m images each, equal to what one
    process drawing world * batch_size images gets."""
    labels = _labels(2)
    world = 3
    per_rank = [
        list(MPerClassBatchSampler(labels, 2, 4, num_batches=7, rank=r, world_size=world))
        for r in range(world)
    ]
    assert all(len(b) == 7 for b in per_rank)
    single = list(MPerClassBatchSampler(labels, 2, 4 * world, num_batches=7))
    for step in range(7):
        global_batch = [i for r in range(world) for i in per_rank[r][step]]
        assert global_batch == single[step]
        classes, counts = np.unique(labels[global_batch], return_counts=True)
        assert classes.size == world * 2 and np.all(counts == 2)
        # slices hold whole classes: no class is split between ranks
        for r in range(world):
            assert np.unique(labels[per_rank[r][step]]).size == 2
    # Too few classes for one global batch (3 x 6 > 12): each rank draws its own batches of
    # one shared sequence, still distinct batches.
    few = [
        list(MPerClassBatchSampler(labels, 2, 12, num_batches=5, rank=r, world_size=world))
        for r in range(world)
    ]
    seq = list(MPerClassBatchSampler(labels, 2, 12, num_batches=15))
    assert all(few[r] == seq[r::world] for r in range(world))


def test_works_as_dataloader_batch_sampler():
    labels = torch.arange(20) % 5
    ds = TensorDataset(torch.arange(20), labels)
    loader = DataLoader(ds, batch_sampler=MPerClassBatchSampler(labels, 2, 6, num_batches=4))
    batches = list(loader)
    assert len(batches) == 4 and all(y.shape == (6,) for _, y in batches)


def test_errors():
    labels = np.repeat(np.arange(3), 4)
    with pytest.raises(ValueError, match=r"not a multiple of m=4"):
        MPerClassBatchSampler(labels, 4, 10)
    with pytest.raises(ValueError, match=r"4 classes per batch, but labels has only 3"):
        MPerClassBatchSampler(labels, 2, 8)
    with pytest.raises(ValueError, match=r"non-empty 1-D"):
        MPerClassBatchSampler([], 2, 4)
    with pytest.raises(ValueError, match=r"integers"):
        MPerClassBatchSampler([0.5, 1.5], 1, 2)
    with pytest.raises(ValueError, match=r"rank < world_size"):
        MPerClassBatchSampler(labels, 2, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"num_batches must be >= 1"):
        MPerClassBatchSampler(labels, 2, 4, num_batches=0)


def test_random_batch_sampler_epochs_ranks_and_errors():
    from dasl.data import RandomBatchSampler

    s = RandomBatchSampler(50, batch_size=8, seed=3)
    assert len(s) == 50 // 8
    first = list(s)
    assert all(len(b) == 8 for b in first)
    flat = [i for b in first for i in b]
    assert len(set(flat)) == len(flat)  # one permutation: no repeats within an epoch
    assert list(s) == first  # same epoch, same batches
    s.set_epoch(1)
    assert list(s) != first
    # Wrap-around when more batches are asked for than one permutation holds.
    long = RandomBatchSampler(10, batch_size=4, num_batches=7)
    assert sum(len(b) for b in long) == 28
    # Ranks get distinct batches of the same global sequence.
    r0 = list(RandomBatchSampler(64, batch_size=8, seed=1, rank=0, world_size=2))
    r1 = list(RandomBatchSampler(64, batch_size=8, seed=1, rank=1, world_size=2))
    assert len(r0) == len(r1) == 4
    assert not set(map(tuple, r0)) & set(map(tuple, r1))
    with pytest.raises(ValueError, match="larger than the dataset"):
        RandomBatchSampler(5, batch_size=8)
    with pytest.raises(ValueError, match="empty dataset"):
        RandomBatchSampler(0, batch_size=1)
