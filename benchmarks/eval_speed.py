"""Retrieval evaluation speed: dasl.metrics.retrieval_metrics vs PML AccuracyCalculator.

SOP-scale by default: 60,502 x 512 L2-normalized embeddings, 11,316 classes of 2-12 images
(class centres + Gaussian noise, so the metrics are neither 0 nor 1). Both libraries see the same
embeddings in the same run. Parts timed separately (their sum is the full evaluation):

- kNN metrics: ours = Recall@{1,10,100} + MAP@R + R-precision (exact, symmetric half-matmul);
  PML = precision_at_1 + MAP@R + R-precision, k="max_bin_count" (faiss IndexFlatL2).
- NMI: faiss k-means (niter=20, k = #classes) + sklearn NMI in both (seeds differ: ours 0,
  PML faiss' default 1234).

    .venv/bin/python -m benchmarks.eval_speed [--quick] [--repeats N] [--background-load]
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import numpy as np
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

from benchmarks.common import format_table, median_time, write_results
from benchmarks.dar_speed import background_load
from dasl.metrics import nmi, retrieval_metrics

FULL = {"n": 60_502, "dim": 512, "classes": 11_316, "noise": 2.5}
QUICK = {"n": 8_000, "dim": 128, "classes": 1_500, "noise": 1.4}


def clustered_embeddings(
    n: int, dim: int, classes: int, *, seed: int = 0, noise: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` unit vectors in ``classes`` classes of 2-12 items: normalize(centre + noise)."""
    if not 2 * classes <= n <= 12 * classes:
        raise ValueError(f"n={n} cannot be split into {classes} classes of 2-12 items")
    rng = np.random.default_rng(seed)
    sizes = np.full(classes, 2)
    remaining = n - 2 * classes
    while remaining > 0:
        eligible = np.flatnonzero(sizes < 12)
        pick = rng.choice(eligible, size=min(remaining, len(eligible)), replace=False)
        sizes[pick] += 1
        remaining -= len(pick)
    labels = rng.permutation(np.repeat(np.arange(classes), sizes))
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=gen)
    y = torch.from_numpy(labels)
    x = centres[y] + noise * torch.randn(n, dim, generator=gen)
    return torch.nn.functional.normalize(x, dim=1), y


def run(
    n: int, dim: int, classes: int, *, repeats: int = 3, noise: float = 1.0, seed: int = 0
) -> dict[str, Any]:
    x, y = clustered_embeddings(n, dim, classes, seed=seed, noise=noise)
    cpu = torch.device("cpu")
    pml_knn = AccuracyCalculator(
        include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
        k="max_bin_count",
        device=cpu,
    )
    pml_nmi = AccuracyCalculator(include=("NMI",), k="max_bin_count", device=cpu)
    res: dict[str, Any] = {}

    def ours_knn() -> None:
        res["ours"] = retrieval_metrics(x, y, ks=(1, 10, 100), nmi=False)

    def ours_nmi() -> None:
        res["ours_nmi"] = nmi(x, y, seed=0)

    def theirs_knn() -> None:
        res["pml"] = pml_knn.get_accuracy(x, y)

    def theirs_nmi() -> None:
        res["pml_nmi"] = pml_nmi.get_accuracy(x, y)["NMI"]

    # Interleaved per repeat so load from other processes hits both sides alike.
    times: dict[str, list[float]] = {k: [] for k in ("ours_knn", "pml_knn", "ours_nmi", "pml_nmi")}
    fns = {"ours_knn": ours_knn, "pml_knn": theirs_knn, "ours_nmi": ours_nmi, "pml_nmi": theirs_nmi}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(median_time(fn, repeats=1, warmup=0)["median_s"])
    med = {k: float(np.median(v)) for k, v in times.items()}
    ours, pml = res["ours"], res["pml"]
    diffs = {
        "recall@1": abs(ours["recall@1"] - pml["precision_at_1"]),
        "map@r": abs(ours["map@r"] - pml["mean_average_precision_at_r"]),
        "r_precision": abs(ours["r_precision"] - pml["r_precision"]),
        "nmi": abs(res["ours_nmi"] - res["pml_nmi"]),
    }
    ours_total = med["ours_knn"] + med["ours_nmi"]
    pml_total = med["pml_knn"] + med["pml_nmi"]
    return {
        "config": {"n": n, "dim": dim, "classes": classes, "noise": noise, "repeats": repeats},
        "times_s": times,
        "median_s": med,
        "ratio": {
            "knn_metrics": med["ours_knn"] / med["pml_knn"],
            "nmi": med["ours_nmi"] / med["pml_nmi"],
            "overall": ours_total / pml_total,
        },
        "ours": {**ours, "nmi": res["ours_nmi"]},
        "pml": {**pml, "NMI": res["pml_nmi"]},
        "abs_diff": diffs,
    }


def table(out: dict[str, Any]) -> str:
    med, ratio = out["median_s"], out["ratio"]
    rows = [
        {
            "part": "kNN metrics",
            "dasl s": med["ours_knn"],
            "PML s": med["pml_knn"],
            "dasl/PML": ratio["knn_metrics"],
        },
        {
            "part": "NMI",
            "dasl s": med["ours_nmi"],
            "PML s": med["pml_nmi"],
            "dasl/PML": ratio["nmi"],
        },
        {
            "part": "overall",
            "dasl s": med["ours_knn"] + med["ours_nmi"],
            "PML s": med["pml_knn"] + med["pml_nmi"],
            "dasl/PML": ratio["overall"],
        },
    ]
    ours, pml, diff = out["ours"], out["pml"], out["abs_diff"]
    metric_rows = [
        {"metric": "Recall@1 / P@1", "dasl": ours["recall@1"], "PML": pml["precision_at_1"]},
        {"metric": "MAP@R", "dasl": ours["map@r"], "PML": pml["mean_average_precision_at_r"]},
        {"metric": "R-precision", "dasl": ours["r_precision"], "PML": pml["r_precision"]},
        {"metric": "NMI", "dasl": ours["nmi"], "PML": pml["NMI"]},
    ]
    for row, key in zip(metric_rows, ("recall@1", "map@r", "r_precision", "nmi"), strict=True):
        row["|diff|"] = f"{diff[key]:.2e}"
    return (
        format_table(rows, ["part", "dasl s", "PML s", "dasl/PML"])
        + "\n\n"
        + format_table(metric_rows, ["metric", "dasl", "PML", "|diff|"])
        + f"\n\ndasl Recall@10 {ours['recall@10']:.4f}, Recall@100 {ours['recall@100']:.4f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8,000 x 128 smoke size")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per part")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--dim", type=int, default=None)
    parser.add_argument("--classes", type=int, default=None)
    parser.add_argument(
        "--background-load",
        action="store_true",
        help="time beside two other 2-thread CPU jobs (the load of a shared machine)",
    )
    args = parser.parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    for key in ("n", "dim", "classes"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    repeats = args.repeats or (3 if args.quick else 1)
    load = background_load() if args.background_load else contextlib.nullcontext()
    with load:
        out = run(size["n"], size["dim"], size["classes"], repeats=repeats, noise=size["noise"])
    out["background_load"] = bool(args.background_load)
    print(f"n={size['n']} dim={size['dim']} classes={size['classes']} repeats={repeats}")
    print(table(out))
    name = "eval_speed_quick" if args.quick else "eval_speed"
    name += "_background_load" if args.background_load else ""
    print("wrote", write_results(name, out))


if __name__ == "__main__":
    main()
