"""Self-supervised accuracy and throughput on Fashion-MNIST (issue #8, item 7).

Pretrains {SimCLR, DASL cluster-free, DASL cluster-used} with several seeds on the official
Fashion-MNIST training images (the demo's model, views and objective; a smaller budget so the
whole grid fits a shared 2-core machine), evaluates each frozen backbone on the official
t10k images by weighted k-NN (k = 200 and 20) and the fast linear probe, and reports mean,
std and 95% CI of each metric and the paired difference DASL - SimCLR per seed.
Evaluation is at the last epoch (no checkpoint selection), never on test during training.

Throughput: images per second of a training step (two views, forward + backward + optimizer
step, data already in memory) with and without DAR, interleaved repeats, median; target
>= 0.95x. Also the cost of DAR's estimators on a 2N-view batch (exact l2 grows as N^4).

    python -m benchmarks.fmnist_ssl                 # 3 seeds
    python -m benchmarks.fmnist_ssl --quick         # 1 seed, tiny budget (smoke test)
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import format_table, median_time, write_results
from benchmarks.fmnist_dml import ci95
from dasl.config import apply_overrides, parse_override
from dasl.run_data import SSLData
from dasl.ssl_config import PretrainConfig, load_pretrain_config
from dasl.training.ssl_run import pretrain_variant

METHODS = ("simclr", "dasl_cf", "dasl_cu")
METRICS = ("knn_top1@200", "knn_top1@20", "linear_top1", "linear_top5")
BUDGET = {
    "data.max_per_class": 250,
    "data.eval_max_per_class": 200,
    "trainer.epochs": 3,
    "eval.monitor_every": 0,
    "eval.plots": False,
    "eval.raw_baseline": False,
    "eval.linear_epochs": 50,
}
"""Per run: 2,500 training images x 3 epochs, test on 2,000 t10k images (200 per class)."""
QUICK = {
    "data.max_per_class": 40,
    "data.eval_max_per_class": 30,
    "data.batch_size": 64,
    "data.num_workers": 0,
    "trainer.epochs": 2,
    "eval.linear_epochs": 5,
    "clustering.num_clusters": [10],
}


def method_config(base: PretrainConfig, method: str, seed: int) -> PretrainConfig:
    assert base.compare is not None
    cfg = apply_overrides(dataclasses.replace(base, compare=None), base.compare[method])
    return dataclasses.replace(cfg, seed=seed, name=f"{method}-s{seed}")


def accuracy_grid(base: PretrainConfig, seeds: int, out: Path) -> dict[str, dict[int, dict]]:
    results: dict[str, dict[int, dict]] = {m: {} for m in METHODS}
    for seed in range(seeds):
        data = None
        for method in METHODS:
            cfg = method_config(base, method, seed)
            if data is None:
                data = SSLData(cfg)
            t0 = time.perf_counter()
            res = pretrain_variant(cfg, out / cfg.name, data=data, log=lambda s: None)
            row = {k: res.metrics.get(k) for k in METRICS}
            row["wall_s"] = time.perf_counter() - t0
            row["train_images_per_s"] = statistics.fmean(
                r["train/images_per_s"] for r in res.history if "train/images_per_s" in r
            )
            results[method][seed] = row
            print(f"seed {seed} {method}: " + ", ".join(f"{k}={v:.4f}" for k, v in row.items()))
    return results


def summarize(results: dict[str, dict[int, dict]]) -> tuple[list[dict], list[dict]]:
    rows, diffs = [], []
    for method in METHODS:
        row: dict[str, Any] = {"method": method}
        for metric in METRICS:
            vals = [r[metric] for r in results[method].values() if r.get(metric) is not None]
            if vals:
                mean, _, half = ci95([100 * v for v in vals])
                row[metric] = f"{mean:.2f} ± {half:.2f}" if len(vals) > 1 else f"{mean:.2f}"
        rows.append(row)
    for method in METHODS[1:]:
        for metric in METRICS:
            seeds = sorted(set(results[method]) & set(results["simclr"]))
            d = [
                100 * (results[method][s][metric] - results["simclr"][s][metric])
                for s in seeds
                if results[method][s].get(metric) is not None
            ]
            if not d:
                continue
            mean, _, half = ci95(d)
            lo, hi = mean - half, mean + half
            diffs.append(
                {
                    "comparison": f"{method} - simclr",
                    "metric": metric,
                    "per seed": ", ".join(f"{x:+.2f}" for x in d),
                    "mean": round(mean, 3),
                    "95% CI": f"[{lo:+.2f}, {hi:+.2f}]" if len(d) > 1 else "n/a",
                }
            )
    return rows, diffs


def step_throughput(base: PretrainConfig, repeats: int) -> list[dict[str, Any]]:
    """Images/s of one optimizer step per method on the same in-memory batch."""
    from dasl.training.ssl_module import SSLModule

    cfg0 = method_config(base, "simclr", 0)
    data = SSLData(cfg0)
    x0, x1, index, _ = next(iter(data.two_view_loader()))
    batch = x0.shape[0]
    runners = {}
    for method in METHODS:
        cfg = method_config(base, method, 0)
        torch.manual_seed(0)
        module = SSLModule(cfg.to_dict(), num_train=len(data.train))
        if method == "dasl_cu":  # pretend a clustering happened: 10 clusters
            module.pseudo_labels.copy_(torch.randint(0, 10, module.pseudo_labels.shape))
        opt = torch.optim.AdamW(module.parameters(), lr=1e-3)

        def step(module=module, opt=opt, method=method) -> None:
            z = module.project(torch.cat([x0, x1]))
            z0, z1 = z.chunk(2)
            labels = module.dar_labels(index) if method != "simclr" else None
            module.objective(z0, z1, labels).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        runners[method] = step
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(repeats):  # interleaved, so load changes hit every method alike
        for method, fn in runners.items():
            times[method].append(median_time(fn, repeats=3, warmup=1)["median_s"])
    base_s = statistics.median(times["simclr"])
    rows = []
    for method in METHODS:
        med = statistics.median(times[method])
        rows.append(
            {
                "method": method,
                "step_ms": round(1000 * med, 1),
                "images_per_s": round(batch / med, 1),
                "vs simclr": round(base_s / med, 3),
            }
        )
    return rows


def estimator_cost(sizes: tuple[int, ...], h: int, max_exact: int) -> list[dict[str, Any]]:
    """Forward + backward time of DAR on 2N unit vectors with instance ids, per estimator."""
    from dasl.dar import DifferenceAlignmentRegularizer

    rows = []
    for n in sizes:
        z = torch.nn.functional.normalize(torch.randn(2 * n, h), dim=1).requires_grad_(True)
        ids = torch.arange(n).repeat(2)
        row: dict[str, Any] = {"N (images)": n, "views": 2 * n, "h": h}
        for name, kwargs in (
            ("chain l2", {"estimator": "chain"}),
            ("exact l2sq", {"estimator": "exact", "measure": "l2sq"}),
            ("exact l2", {"estimator": "exact"}),
        ):
            if name == "exact l2" and n > max_exact:
                row[f"{name} ms"] = None
                continue
            reg = DifferenceAlignmentRegularizer(**kwargs)

            def fb(reg=reg, z=z, ids=ids) -> None:
                reg(z, ids).backward()
                z.grad = None

            row[f"{name} ms"] = round(1000 * median_time(fb, repeats=3, warmup=1)["median_s"], 2)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="throughput repeats")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out", help="JSON output (default benchmarks/results/fmnist_ssl/default/)"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. trainer.epochs=2")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    overrides = {**BUDGET, **(QUICK if args.quick else {})}
    base = load_pretrain_config(None, None)
    from dasl.data import fashion_mnist_available

    if fashion_mnist_available() is None:
        overrides.update({"data.name": "digits", "data.max_per_class": None})
        overrides["data.eval_max_per_class"] = None
        print("Fashion-MNIST not installed: running on digits")
    base = apply_overrides(base, overrides)
    if args.overrides:
        base = apply_overrides(base, dict(parse_override(o) for o in args.overrides))
    seeds = 1 if args.quick else args.seeds
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = accuracy_grid(base, seeds, Path(tmp))
    grid_s = time.perf_counter() - t0
    rows, diffs = summarize(results)
    print("\nAccuracy on the t10k images (%, mean ± 95% CI half-width over seeds):")
    print(format_table(rows, ["method", *METRICS]))
    print("\nPaired differences DASL - SimCLR (percentage points):")
    print(format_table(diffs, ["comparison", "metric", "per seed", "mean", "95% CI"]))
    tput = step_throughput(base, 2 if args.quick else args.repeats)
    print(f"\nTraining step throughput (batch {base.data.batch_size} images, two views each):")
    print(format_table(tput, ["method", "step_ms", "images_per_s", "vs simclr"]))
    sizes = (16, 32) if args.quick else (32, 64, 128, 256)
    est = estimator_cost(sizes, base.model.proj_dim, max_exact=32 if args.quick else 64)
    cols = ["N (images)", "views", "h", "chain l2 ms", "exact l2sq ms", "exact l2 ms"]
    print("\nDAR forward + backward on a 2N-view batch (instance ids; exact l2 only at small N):")
    print(format_table(est, cols))
    path = write_results(
        "fmnist_ssl" + ("_quick" if args.quick else ""),
        {
            "config": base.to_dict(),
            "seeds": seeds,
            "per_run": {m: {str(s): r for s, r in v.items()} for m, v in results.items()},
            "summary": rows,
            "paired_differences": diffs,
            "throughput": tput,
            "estimator_cost": est,
            "grid_wall_s": grid_s,
        },
        args.out,
    )
    print(f"\nwrote {path} (grid: {grid_s / 60:.1f} min)")


if __name__ == "__main__":
    main()
