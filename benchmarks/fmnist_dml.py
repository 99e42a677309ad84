"""Accuracy benchmark on Fashion-MNIST's class-disjoint split (issue #3).

Trains {N-pair, DASL-NP, ProxyAnchor, DASL-PA} with several seeds on the default split
(train on the even classes, retrieval on the unseen odd classes), with the default demo's
model and budget.

Selection follows the MLRC protocol: lambda and the difference type of each DASL variant
are chosen on a *class-disjoint* validation split (training classes 0, 2, 4; validation
classes 6, 8; best validation MAP@R at the last epoch, seed 0), never on test; the final
runs then train on all five training classes with the chosen setting and are evaluated
once, at their last epoch, on the unseen odd classes. Prints mean, std and 95% CI of every
metric, and the paired difference DASL - base per seed with its CI.

    python -m benchmarks.fmnist_dml                 # 5 seeds, full grid
    python -m benchmarks.fmnist_dml --quick         # 2 seeds, 2 lambdas, short runs
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ci95, write_results
from dasl.config import ExperimentConfig, apply_overrides, load_config
from dasl.run_data import MetricLearningData
from dasl.training.run import train_variant

METRICS = ("recall@1", "recall@2", "recall@4", "recall@8", "map@r", "r_precision", "nmi")
PAIRS = {"dasl_np": "npair", "dasl_pa": "proxyanchor"}


SELECTION = {
    "data.val_by": "classes",
    "data.val_fraction": 0.4,
    "data.val_split": "val",
    "data.m_per_class": 40,
}
"""Tuning split: train on classes 0, 2, 4 and validate retrieval on the held-out 6, 8."""
FINAL = {"data.train_split": "trainval", "data.val_split": None}
"""Final runs: all five training classes, no checkpoint selection (last epoch)."""


def method_config(
    base: ExperimentConfig,
    method: str,
    setting: tuple[float, str],
    seed: int,
    stage: dict[str, Any],
) -> ExperimentConfig:
    lam, difference = setting
    loss = "npair" if method in ("npair", "dasl_np") else "proxyanchor"
    overrides: dict[str, Any] = {
        "loss.name": loss,
        "dar.lam": lam if method in PAIRS else 0.0,
        "dar.difference": difference,
        "seed": seed,
        "eval.plots": False,
        "eval.raw_baseline": False,
        "trainer.progress_bar": False,
        **stage,
    }
    return dataclasses.replace(apply_overrides(base, overrides), name=f"{method}_s{seed}")


def run_one(
    cfg: ExperimentConfig, workdir: Path, cache: dict[Any, MetricLearningData]
) -> dict[str, Any]:
    key = (cfg.seed, repr(cfg.data))
    if key not in cache:
        cache[key] = MetricLearningData.for_experiment(cfg)
    t0 = time.perf_counter()
    res = train_variant(cfg, workdir / cfg.name, log=lambda s: None, data=cache[key])
    val = [
        row["val/map@r"]
        for row in sorted(res.history, key=lambda r: r["epoch"])
        if "val/map@r" in row
    ]
    ips = [row["train/images_per_s"] for row in res.history if "train/images_per_s" in row]
    return {
        "test": {k: res.metrics[k] for k in METRICS if k in res.metrics},
        "last_val_map@r": val[-1] if val else float("nan"),
        "images_per_s": statistics.median(ips) if ips else float("nan"),
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.3, 1.0, 3.0])
    parser.add_argument("--differences", nargs="+", default=["signed", "abs"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. trainer.epochs=2")
    args = parser.parse_args(argv)
    base = dataclasses.replace(load_config(packaged="fmnist_demo"), compare=None)
    if args.quick:
        args.seeds, args.lambdas, args.differences = 2, [1.0], ["signed"]
        base = apply_overrides(base, {"trainer.epochs": 1, "data.batches_per_epoch": 10})
    if args.overrides:
        from dasl.config import parse_override

        base = apply_overrides(base, dict(parse_override(o) for o in args.overrides))

    cache: dict[Any, MetricLearningData] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # 1) lambda and difference type on the class-disjoint validation split, seed 0.
        sweep: dict[str, dict[str, float]] = {}
        chosen: dict[str, tuple[float, str]] = {}
        baseline_val: dict[str, float] = {}
        for method, basem in PAIRS.items():
            r = run_one(
                method_config(base, basem, (0.0, "signed"), 0, SELECTION),
                work / "sweep_base",
                cache,
            )
            baseline_val[basem] = r["last_val_map@r"]
            print(f"select {basem}: val MAP@R={r['last_val_map@r']:.4f}", flush=True)
            sweep[method] = {}
            for difference in args.differences:
                for lam in args.lambdas:
                    setting = (lam, difference)
                    r = run_one(
                        method_config(base, method, setting, 0, SELECTION),
                        work / f"sweep_{lam}_{difference}",
                        cache,
                    )
                    sweep[method][f"{lam:g}/{difference}"] = r["last_val_map@r"]
                    print(
                        f"select {method} lambda={lam:g} {difference}: "
                        f"val MAP@R={r['last_val_map@r']:.4f}",
                        flush=True,
                    )
            best = max(sweep[method], key=sweep[method].__getitem__)
            lam_s, diff_s = best.split("/")
            chosen[method] = (float(lam_s), diff_s)
        # 2) every method, every seed, all training classes, test metrics at the last epoch.
        runs: dict[str, list[dict[str, Any]]] = {
            m: [] for m in ("npair", "dasl_np", "proxyanchor", "dasl_pa")
        }
        for seed in range(args.seeds):
            for method in runs:
                setting = chosen.get(method, (0.0, "signed"))
                r = run_one(
                    method_config(base, method, setting, seed, FINAL), work / "final", cache
                )
                runs[method].append(r)
                print(
                    f"{method} seed={seed}: "
                    + ", ".join(f"{k}={v:.4f}" for k, v in r["test"].items())
                    + f" ({r['seconds']:.0f} s, {r['images_per_s']:.0f} img/s)",
                    flush=True,
                )

    summary: dict[str, dict[str, list[float]]] = {}
    lines = [
        "| method | lambda | " + " | ".join(METRICS) + " | img/s |",
        "|---|---|" + "---|" * (len(METRICS) + 1),
    ]
    for method, rs in runs.items():
        summary[method] = {}
        cells = []
        for k in METRICS:
            mean, std, half = ci95([100 * r["test"][k] for r in rs])
            summary[method][k] = [mean, std, half]
            cells.append(f"{mean:.2f} ± {std:.2f} (±{half:.2f})")
        ips = statistics.median(r["images_per_s"] for r in rs)
        lam, difference = chosen.get(method, (0.0, "-"))
        setting = f"{lam:g} ({difference})" if method in PAIRS else "-"
        lines.append(f"| {method} | {setting} | " + " | ".join(cells) + f" | {ips:.0f} |")
    diff_lines = [
        "| DASL - base | " + " | ".join(METRICS) + " | throughput ratio |",
        "|---|" + "---|" * (len(METRICS) + 1),
    ]
    paired: dict[str, dict[str, list[float]]] = {}
    for dasl, basem in PAIRS.items():
        paired[dasl] = {}
        cells = []
        for k in METRICS:
            d = [
                100 * (a["test"][k] - b["test"][k])
                for a, b in zip(runs[dasl], runs[basem], strict=True)
            ]
            mean, std, half = ci95(d)
            paired[dasl][k] = [mean, std, half]
            cells.append(f"{mean:+.2f} (±{half:.2f})")
        ratio = statistics.median(
            a["images_per_s"] / b["images_per_s"]
            for a, b in zip(runs[dasl], runs[basem], strict=True)
        )
        diff_lines.append(f"| {dasl} - {basem} | " + " | ".join(cells) + f" | {ratio:.3f} |")
    print("\nTest metrics on unseen classes, % (mean ± std over seeds, 95% CI half-width):")
    print("\n".join(lines))
    print("\nPaired differences per seed (DASL - base, % points, 95% CI half-width):")
    print("\n".join(diff_lines))
    print(
        "\nSelection on class-disjoint validation (MAP@R, seed 0): baselines",
        baseline_val,
        "DASL",
        sweep,
    )
    write_results(
        "fmnist_dml_quick" if args.quick else "fmnist_dml",
        {
            "config": base.to_dict(),
            "seeds": args.seeds,
            "selection_val_map@r": sweep,
            "selection_baseline_val_map@r": baseline_val,
            "chosen_lambda_difference": chosen,
            "runs": runs,
            "summary_mean_std_ci95": summary,
            "paired_difference_mean_std_ci95": paired,
            "table": "\n".join(lines),
            "paired_table": "\n".join(diff_lines),
            "quick": args.quick,
        },
    )


if __name__ == "__main__":
    main()
