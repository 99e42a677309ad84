"""Weighted k-NN classification at scale: dasl.metrics.knn_classify vs lightly's knn_predict.

Clustered random features (``classes`` centres + Gaussian noise, float32), a bank of ``n``
training rows and ``m`` test rows, k=200, T=0.1 (Wu et al.). Both see the same features; lightly
gets the bank L2-normalised and transposed as its docs ask, and test batches of 256. Reported:
wall time, the peak extra host memory over the inputs (``ru_maxrss`` growth; GPU: peak
allocated) and top-1/top-5 (equal up to ties and float summation order).

    .venv/bin/python -m benchmarks.knn_classify_scale [--quick] [--device cuda]
        [--n N --dim D --m M --classes C] [--chunk Bq Bg]

The ImageNet-1K target (1.28 M x 2048 bank, 50,000 test rows) needs a GPU or a patient CPU:
``--n 1281167 --dim 2048 --m 50000 --classes 1000 --device cuda``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import format_table, sync, write_results
from dasl.metrics import knn_classify

FULL = {"n": 100_000, "dim": 512, "m": 2_000, "classes": 100}
QUICK = {"n": 20_000, "dim": 256, "m": 1_000, "classes": 100}


def clustered(
    n: int, dim: int, classes: int, seed: int, device: str, noise: float
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, classes, (n,), generator=g)
    x = torch.empty(n, dim)
    for a in range(0, n, 4096):  # in pieces, so generating does not set the memory peak
        b = min(a + 4096, n)
        x[a:b] = centres[labels[a:b]] + noise * torch.randn(b - a, dim, generator=g)
    return x.to(device), labels.to(device)


def peak_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    return peak_mib(device)


def run_ours(bank, y_bank, test, y_test, k, t, chunk, device) -> dict[str, Any]:
    base = reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    r = knn_classify(bank, y_bank, test, y_test, k=k, temperature=t, chunk_size=chunk)
    sync(device)
    return {"time_s": time.perf_counter() - t0, "peak_extra_mib": peak_mib(device) - base, **r}


def run_lightly(bank, y_bank, test, y_test, k, t, classes, device) -> dict[str, Any]:
    from lightly.utils.benchmarking import knn_predict

    base = reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    bank_t = F.normalize(bank, dim=1).T.contiguous()  # lightly wants (D, N), normalised
    preds = []
    for a in range(0, test.shape[0], 256):
        q = F.normalize(test[a : a + 256], dim=1)
        preds.append(knn_predict(q, bank_t, y_bank, classes, k, t)[:, :5])
    pred = torch.cat(preds)
    sync(device)
    elapsed = time.perf_counter() - t0
    hit = pred == y_test[:, None]
    return {
        "time_s": elapsed,
        "peak_extra_mib": peak_mib(device) - base,
        "top1": float(hit[:, 0].float().mean()),
        "top5": float(hit.any(dim=1).float().mean()),
    }


def measure(method: str, cfg: dict[str, Any], a: argparse.Namespace) -> dict[str, Any]:
    """One method in this process (so ``ru_maxrss`` growth is its own)."""
    chunk = tuple(a.chunk) if a.chunk else None
    bank, y_bank = clustered(cfg["n"], cfg["dim"], cfg["classes"], 1, a.device, a.noise)
    test, y_test = clustered(cfg["m"], cfg["dim"], cfg["classes"], 2, a.device, a.noise)
    if method == "lightly":
        r = run_lightly(bank, y_bank, test, y_test, a.k, a.t, cfg["classes"], a.device)
        return {"method": "lightly knn_predict (test batches of 256)", **r}
    r = run_ours(bank, y_bank, test, y_test, a.k, a.t, chunk, a.device)
    return {"method": f"dasl knn_classify (chunk {chunk or 'default'})", **r}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int)
    p.add_argument("--dim", type=int)
    p.add_argument("--m", type=int)
    p.add_argument("--classes", type=int)
    p.add_argument("--noise", type=float, default=4.0, help="noise std per dimension")
    p.add_argument("--k", type=int, default=200)
    p.add_argument("--t", type=float, default=0.1)
    p.add_argument("--chunk", type=int, nargs=2, metavar=("BQ", "BG"))
    p.add_argument("--methods", nargs="+", default=["dasl", "lightly"])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument(
        "--out", help="JSON path (default benchmarks/results/knn_classify_scale/default/)"
    )
    a = p.parse_args()
    cfg = dict(QUICK if a.quick else FULL)
    for key in cfg:
        if getattr(a, key) is not None:
            cfg[key] = getattr(a, key)
    if a.child:
        print("ROW " + json.dumps(measure(a.child, cfg, a)))
        return
    rows = []
    for method in a.methods:
        # a fresh process per method: its memory high-water mark is its own
        argv = [a for a in sys.argv[1:] if a != "--child"]
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.knn_classify_scale", *argv, "--child", method],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        rows.append(json.loads(next(ln[4:] for ln in out.splitlines() if ln.startswith("ROW "))))
    cols = ["method", "time_s", "peak_extra_mib", "top1", "top5"]
    print(f"n={cfg['n']:,} dim={cfg['dim']} m={cfg['m']:,} classes={cfg['classes']} "
          f"noise={a.noise} k={a.k} T={a.t} device={a.device} "
          f"threads={torch.get_num_threads()}")  # fmt: skip
    print(format_table(rows, cols))
    config = {**cfg, "noise": a.noise, "k": a.k, "t": a.t, "chunk": a.chunk}
    path = write_results("knn_classify_scale", {"config": config, "rows": rows}, a.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
