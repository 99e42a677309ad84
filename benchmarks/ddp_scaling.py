"""DDP scaling on the CPU: 1 vs 2 processes (gloo), global-batch vs local DASL loss.

Each setting runs in ``mp.spawn``-ed processes (one torch thread each) that train the demo's
small CNN (28 px, 64-d) with DASL-PA under ``DistributedDataParallel`` for ``--steps`` steps of
``--batch`` images per process, after warm-up steps. Reported per setting:

- images/s: global images per second (all processes);
- step ms: median wall time of one optimizer step;
- gather ms: median time of the global-batch loss's communication alone, the rank-order
  gather of embeddings and labels forward plus its all-reduce backward
  (:func:`dasl.utils.distributed.gather_with_grad`), timed in the same processes;
- loss ms: median time of the criterion forward+backward on the embeddings (global or local
  batch), which is where the global batch costs (DAR's exact estimator grows with the 4th
  power of the rows).

Usage: ``python -m benchmarks.ddp_scaling [--quick] [--steps 20] [--batch 60]``; prints a
Markdown table and writes ``benchmarks/results/ddp_scaling/default/ddp_scaling.json``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pytorch_metric_learning.losses import ProxyAnchorLoss
from torch import nn

from benchmarks.common import format_table, write_results
from dasl.dar import DASLLoss, DifferenceAlignmentRegularizer
from dasl.models import build_model
from dasl.utils.distributed import gather_no_grad, gather_with_grad

CLASSES = 20
M = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Net(nn.Module):
    def __init__(self, estimator: str, global_batch: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = build_model("small_cnn", embedding_dim=64, in_channels=1)
        reg = DifferenceAlignmentRegularizer(estimator=estimator)
        base = ProxyAnchorLoss(CLASSES, 64, margin=0.1, alpha=32)
        self.criterion = DASLLoss(base, reg, lam=1.0, gather_distributed=global_batch)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.criterion(self.model(x), y)


def _median_ms(times: list[float]) -> float:
    return 1e3 * statistics.median(times)


def _worker(rank: int, world: int, port: int, setting: dict[str, Any], out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        batch, steps, warmup = setting["batch"], setting["steps"], setting["warmup"]
        net = _Net(setting["estimator"], setting["global_batch"])
        ddp = nn.parallel.DistributedDataParallel(net)
        opt = torch.optim.SGD(ddp.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(rank)
        x = torch.randn(batch, 1, 28, 28, generator=g)
        y = torch.arange(rank * batch // M, (rank + 1) * batch // M).repeat_interleave(M)
        y = y % CLASSES
        step_t: list[float] = []
        for i in range(warmup + steps):
            dist.barrier()
            t0 = time.perf_counter()
            opt.zero_grad()
            ddp(x, y).backward()
            opt.step()
            if i >= warmup:
                step_t.append(time.perf_counter() - t0)
        # The parts, timed alone in the same processes.
        z = net.model(x).detach().requires_grad_()
        gather_t: list[float] = []
        loss_t: list[float] = []
        for _ in range(max(3, steps // 2)):
            dist.barrier()
            t0 = time.perf_counter()
            zg = gather_with_grad(z)
            gather_no_grad(y)
            zg.sum().backward()
            gather_t.append(time.perf_counter() - t0)
            dist.barrier()
            t0 = time.perf_counter()
            net.criterion(z, y).backward()
            loss_t.append(time.perf_counter() - t0)
        if rank == 0:
            step_ms = _median_ms(step_t)
            result = {
                "images_per_s": world * batch / (step_ms / 1e3),
                "step_ms": step_ms,
                "gather_ms": _median_ms(gather_t) if world > 1 and setting["global_batch"] else 0.0,
                "loss_ms": _median_ms(loss_t),
            }
            torch.save(result, Path(out) / "result.pt")
    finally:
        dist.destroy_process_group()


def run_setting(setting: dict[str, Any], world: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(world, _free_port(), setting, out), nprocs=world, join=True)
        return torch.load(Path(out) / "result.pt")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=60, help="images per process (multiple of 4)")
    ap.add_argument("--estimators", nargs="+", default=["chain", "exact"])
    ap.add_argument("--quick", action="store_true", help="3 steps of 16 images, chain only")
    ap.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/ddp_scaling/default/)"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.batch, args.estimators = 3, 1, 16, ["chain"]
    rows: list[dict[str, Any]] = []
    for estimator in args.estimators:
        for world, global_batch in ((1, True), (2, True), (2, False)):
            setting = {
                "estimator": estimator,
                "global_batch": global_batch,
                "batch": args.batch,
                "steps": args.steps,
                "warmup": args.warmup,
            }
            res = run_setting(setting, world)
            row = {
                "processes": world,
                "loss batch": "global" if global_batch or world == 1 else "local",
                "estimator": estimator,
                "images per process": args.batch,
                **res,
            }
            rows.append(row)
            print(row, flush=True)
    for row in rows:
        one = next(
            r["images_per_s"]
            for r in rows
            if r["processes"] == 1 and r["estimator"] == row["estimator"]
        )
        row["speed-up vs 1"] = row["images_per_s"] / one
    cols = [
        "processes",
        "loss batch",
        "estimator",
        "images per process",
        "images_per_s",
        "speed-up vs 1",
        "step_ms",
        "gather_ms",
        "loss_ms",
    ]
    print(format_table(rows, cols))
    path = write_results("ddp_scaling", {"quick": args.quick, "rows": rows}, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
