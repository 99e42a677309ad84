"""DDP is exact: 2 CPU processes (gloo) against 1 process on the concatenated batch.

One ``mp.spawn`` runs every case (spawning is the expensive part); each rank saves what it
ended with and the parent compares with single-process references computed here. Plain SGD,
not Adam: Adam divides out a constant gradient scale and would hide a 1/world_size bug.

Cases (float64, 3 optimizer steps each, tiny linear model):
- the trainer's loss step (:func:`step_loss`, global batch) for DASL-PA (proxies included),
  DASL-NP and two-view DASL, exact and chain estimators; batches from the m-per-class sampler,
  whose rank slices must concatenate to the single-process global batch;
- ``DASLLoss`` inside PML's ``DistributedLossWrapper``, ``efficient=False`` and ``True``;
- the self-supervised objective (:class:`TwoViewDASLLoss` with ``two_view_base``: lightly's
  NT-Xent, which gathers for itself, plus DAR on the gathered views) with instance ids and
  with cluster labels;
- distributed evaluation: strided shards of 11 items (not divisible by 2), gathered back,
  metrics equal to one process's; BatchNorm statistics taken from rank 0.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pytorch_metric_learning import losses
from pytorch_metric_learning.utils.distributed import DistributedLossWrapper
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from dasl.dar import DASLLoss, DifferenceAlignmentRegularizer, TwoViewDASLLoss
from dasl.data import MPerClassBatchSampler
from dasl.evaluation import embed, evaluate_embeddings, gather_shards, shard
from dasl.training.module import step_loss
from dasl.utils.distributed import broadcast_buffers

WORLD = 2
STEPS = 3
B, M, DIN, DOUT = 8, 2, 6, 4  # per-rank batch: 4 classes x 2 images
N_ITEMS, N_CLASSES = 64, 16
LR = 0.05
CASES = (
    "pa_exact",
    "pa_chain",
    "np_exact",
    "np_chain",
    "twoview_exact",
    "twoview_chain",
    "sslcf_exact",
    "sslcf_chain",
    "sslcu_chain",
)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N_ITEMS, DIN, generator=g, dtype=torch.float64)
    y = torch.arange(N_CLASSES).repeat_interleave(N_ITEMS // N_CLASSES)
    return x, y


def _criterion(case: str, generator: torch.Generator | None = None) -> nn.Module:
    estimator = case.split("_")[1]
    reg = DifferenceAlignmentRegularizer(estimator=estimator, generator=generator)
    if case.startswith("ssl"):
        from lightly.loss import NTXentLoss

        base = NTXentLoss(temperature=0.5, gather_distributed=True)
        return TwoViewDASLLoss(base, reg, 0.7, two_view_base=True, normalize=True)
    if case.startswith("pa"):
        base: nn.Module = losses.ProxyAnchorLoss(N_CLASSES, DOUT, margin=0.1, alpha=32)
        return DASLLoss(base, reg, lam=0.7)
    if case.startswith("np"):
        return DASLLoss(losses.NPairsLoss(), reg, lam=0.7)
    return TwoViewDASLLoss(losses.NTXentLoss(temperature=0.5), reg, lam=0.7)


class _Net(nn.Module):
    """Model and criterion in one module, as in the LightningModule: DDP averages the proxies'
    gradients like the network's."""

    def __init__(self, case: str, rank: int = 0) -> None:
        super().__init__()
        self.rank = rank
        torch.manual_seed(0)
        self.model = nn.Linear(DIN, DOUT)
        # the self-supervised module's chain generator: seeded per step, the same on all ranks
        self.chain = torch.Generator()
        self.criterion = _criterion(case, self.chain if case.startswith("ssl") else None)
        self.case = case
        self.double()

    def forward(self, x: torch.Tensor, y: torch.Tensor, step: int) -> torch.Tensor:
        if self.case.startswith("ssl"):
            self.chain.manual_seed(500 + step)
            labels = y if self.case.startswith("sslcu") else None  # None: instance ids
            return self.criterion(self.model(x), self.model(x.flip(1) * 0.9), labels)
        if self.case.startswith("twoview"):
            # Second view: a fixed augmentation of the first. The chain (generator None) is
            # drawn from a seed broadcast by rank 0: the global generators differ between
            # ranks (as in training), and rank 0's matches the single-process reference's.
            torch.manual_seed(1000 + step + 7 * self.rank)
            return self.criterion(self.model(x), self.model(x.flip(1) * 0.9))
        crit = self.criterion
        assert isinstance(crit, DASLLoss)
        return step_loss(crit, self.model(x), y, seed=7, step=step)


def _params(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


def _train(case: str, rank: int, world: int) -> tuple[dict[str, torch.Tensor], list[float]]:
    """3 SGD steps; under a process group with world > 1, DDP on this rank's slice."""
    x_all, y_all = _data()
    net = _Net(case, rank)
    # The trainer seeds the global generator per (seed, epoch, rank): ranks differ, so a
    # chain drawn from it would differ between ranks.
    torch.manual_seed(1234 + rank)
    if world > 1:
        crit = net.criterion
        if isinstance(crit, DASLLoss):
            crit.gather_distributed = True  # what MetricLearningModule sets by default
        model: nn.Module = DistributedDataParallel(net)
    else:
        model = net
    if world == 1:  # the reference: one process on the global batch
        sampler = MPerClassBatchSampler(y_all, M, B * WORLD, STEPS, seed=11)
    else:
        sampler = MPerClassBatchSampler(y_all, M, B, STEPS, 11, rank, world)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    values = []
    for step, idx in enumerate(sampler):
        opt.zero_grad()
        loss = model(x_all[idx], y_all[idx], step)
        loss.backward()
        opt.step()
        values.append(float(loss.detach()))
    return _params(net), values


def _wrapper_case(efficient: bool, rank: int, world: int) -> dict[str, torch.Tensor]:
    """PML habit: DistributedLossWrapper(DASLLoss(...)); order-free DAR (abs differences)."""
    x_all, y_all = _data()
    torch.manual_seed(3)
    net = nn.Linear(DIN, DOUT).double()
    reg = DifferenceAlignmentRegularizer(difference="abs")
    loss_fn = DistributedLossWrapper(DASLLoss(losses.ContrastiveLoss(), reg, lam=0.5), efficient)
    ddp = DistributedDataParallel(net)
    opt = torch.optim.SGD(ddp.parameters(), lr=LR)
    sampler = MPerClassBatchSampler(y_all, M, B, STEPS, 11, rank, world)
    for idx in sampler:
        opt.zero_grad()
        loss_fn(ddp(x_all[idx]), y_all[idx]).backward()
        opt.step()
    return _params(net)


def _eval_case(rank: int, world: int) -> dict[str, object]:
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(11, 5, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 0])
    loader = DataLoader(shard(TensorDataset(feats, labels), rank, world), batch_size=2)
    emb, lab = embed(nn.Identity(), loader)
    emb_t, lab_t = gather_shards(torch.from_numpy(emb), torch.from_numpy(lab))
    metrics = evaluate_embeddings(emb_t.numpy(), lab_t.numpy(), (1, 2), "cosine", True, 0)
    return {"emb": emb_t, "labels": lab_t, "metrics": metrics, "local_rows": emb.shape[0]}


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result: dict[str, object] = {}
        for case in CASES:
            result[case] = _train(case, rank, world)
        for efficient in (False, True):
            result[f"wrapper_{efficient}"] = _wrapper_case(efficient, rank, world)
        _, y_all = _data()
        result["sampler"] = list(MPerClassBatchSampler(y_all, M, B, STEPS, 11, rank, world))
        result["eval"] = _eval_case(rank, world)
        bn = nn.BatchNorm1d(3)
        bn.running_mean.fill_(float(rank + 1))
        broadcast_buffers(bn)
        result["bn_mean"] = bn.running_mean.clone()
        torch.save(result, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, object]]:
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(WORLD, _free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=tol), (k, (a[k] - b[k]).abs().max())


@pytest.mark.parametrize("case", CASES)
def test_ddp_global_batch_equals_one_process(ranks, case) -> None:
    want, want_values = _train(case, 0, 1)
    start = _params(_Net(case))
    for r in range(WORLD):
        got, values = ranks[r][case]
        _assert_same(got, want, 1e-6)
        if not case.startswith("ssl"):  # lightly's NT-Xent averages over the local anchors
            # the loss each rank computed is the global one
            assert np.allclose(values, want_values, rtol=0, atol=1e-9)
    # the test can fail: training moved every parameter, proxies included
    for k, v in want.items():
        assert (v - start[k]).abs().max() > 1e-3, k


def _wrapper_reference(efficient: bool) -> dict[str, torch.Tensor]:
    """One process: the global loss (efficient=False), or PML's efficient objective: the sum
    over ranks of local anchors against all rows with the other ranks' rows detached."""
    x_all, y_all = _data()
    torch.manual_seed(3)
    net = nn.Linear(DIN, DOUT).double()
    reg = DifferenceAlignmentRegularizer(difference="abs")
    loss_fn = DASLLoss(losses.ContrastiveLoss(), reg, lam=0.5)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    from pytorch_metric_learning.utils.distributed import get_indices_tuple

    for idx in MPerClassBatchSampler(y_all, M, B * WORLD, STEPS, seed=11):
        opt.zero_grad()
        z, y = net(x_all[idx]), y_all[idx]
        if not efficient:
            loss = loss_fn(z, y)
        else:
            loss = 0.0
            for r in range(WORLD):
                cur, others = slice(r * B, (r + 1) * B), torch.ones(B * WORLD, dtype=torch.bool)
                others[cur] = False
                ref = torch.cat([z[cur], z[others].detach()])
                ref_y = torch.cat([y[cur], y[others]])
                loss = loss + loss_fn(z[cur], y[cur], get_indices_tuple(y[cur], ref_y), ref, ref_y)
        loss.backward()
        opt.step()
    return _params(net)


@pytest.mark.parametrize("efficient", [False, True])
def test_dasl_loss_inside_pml_distributed_wrapper(ranks, efficient) -> None:
    want = _wrapper_reference(efficient)
    for r in range(WORLD):
        _assert_same(ranks[r][f"wrapper_{efficient}"], want, 1e-6)


def test_sampler_ranks_split_the_global_batch(ranks) -> None:
    _, y_all = _data()
    single = list(MPerClassBatchSampler(y_all, M, B * WORLD, STEPS, seed=11))
    for step in range(STEPS):
        parts = [ranks[r]["sampler"][step] for r in range(WORLD)]
        assert not set(parts[0]) & set(parts[1])  # distinct samples on the ranks
        assert parts[0] + parts[1] == single[step]
        classes, counts = np.unique(y_all[single[step]].numpy(), return_counts=True)
        assert classes.size == WORLD * B // M and np.all(counts == M)


def test_ranks_evaluate_rank_zeros_batchnorm_statistics(ranks) -> None:
    for r in range(WORLD):
        assert torch.equal(ranks[r]["bn_mean"], torch.ones(3))


def test_distributed_evaluation_is_exact(ranks) -> None:
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(11, 5, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 0])
    want = evaluate_embeddings(feats.numpy(), labels.numpy(), (1, 2), "cosine", True, 0)
    assert [ranks[r]["eval"]["local_rows"] for r in range(WORLD)] == [6, 5]
    for r in range(WORLD):
        ev = ranks[r]["eval"]
        assert torch.equal(ev["emb"], feats) and torch.equal(ev["labels"], labels)
        for k, v in want.items():
            assert ev["metrics"][k] == pytest.approx(v, abs=1e-6), k


def test_unsharded_validation_loader_under_ddp_is_refused(monkeypatch) -> None:
    """Gathering full per-rank copies would count every item twice: refuse, don't mis-measure."""
    import sys
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).parent))
    from training_configs import tiny_digits_config

    from dasl.training import module as module_mod

    cfg = tiny_digits_config(Path("unused"))
    mod = module_mod.MetricLearningModule(cfg.to_dict(), num_classes=5)
    data = TensorDataset(torch.zeros(7, 1, 8, 8), torch.zeros(7, dtype=torch.long))
    monkeypatch.setattr(module_mod, "world", lambda: (1, 2))
    mod._trainer = SimpleNamespace(val_dataloaders=DataLoader(shard(data, 1, 2)))
    mod.on_validation_epoch_start()  # its own shard: fine
    mod._trainer = SimpleNamespace(val_dataloaders=DataLoader(data))
    with pytest.raises(RuntimeError, match="needs each rank's loader to hold its own shard"):
        mod.on_validation_epoch_start()
