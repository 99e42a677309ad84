"""Training throughput with and without DAR, both in one run (issue #3 target: >= 0.95x).

Fits the default demo model (or any config) for a fixed number of batches with Lightning,
once without DAR and once per DAR setting, interleaved over several rounds so that machine
noise hits all of them alike; reports median images/s and the ratio to the no-DAR run.

    python -m benchmarks.train_throughput             # demo model, 30 batches x 3 rounds
    python -m benchmarks.train_throughput --quick
    python -m benchmarks.train_throughput --config configs/dml/cub200_dasl_pa.yaml data.root=...
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import format_table, write_results
from dasl.config import ExperimentConfig, apply_overrides, load_config, parse_override
from dasl.run_data import MetricLearningData
from dasl.training.module import MetricLearningModule
from dasl.training.run import _Batches, build_trainer

SETTINGS: dict[str, dict[str, Any]] = {
    "no DAR": {"dar.lam": 0.0},
    "exact l2": {"dar.lam": 1.0, "dar.estimator": "exact", "dar.measure": "l2"},
    "exact l1": {"dar.lam": 1.0, "dar.estimator": "exact", "dar.measure": "l1"},
    "exact l2sq": {"dar.lam": 1.0, "dar.estimator": "exact", "dar.measure": "l2sq"},
    "chain l2": {"dar.lam": 1.0, "dar.estimator": "chain", "dar.measure": "l2"},
}


def fit_images_per_s(cfg: ExperimentConfig, data: MetricLearningData, workdir: Path) -> float:
    """Median images/s over the epochs of a short fit (first epoch dropped as warm-up)."""
    module = MetricLearningModule(cfg.to_dict(), num_classes=data.num_classes)
    trainer, _ = build_trainer(cfg, workdir, has_val=False)
    trainer.fit(module, datamodule=_Batches(data))
    rates = [row["train/images_per_s"] for row in module.history]
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", help="YAML config (default: the Fashion-MNIST demo's, as in RESULTS.md)"
    )
    parser.add_argument("--batches", type=int, default=15, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per fit (first is warm-up)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.epochs, args.rounds = 3, 2, 1
    loaded = load_config(args.config, packaged="fmnist_demo")
    base = dataclasses.replace(loaded, compare=None)
    base = apply_overrides(
        base,
        {
            "data.batches_per_epoch": args.batches,
            "data.val_split": None,
            "trainer.epochs": args.epochs,
            "trainer.progress_bar": False,
            **dict(parse_override(o) for o in args.overrides),
        },
    )
    data = MetricLearningData.for_experiment(base)
    rates: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for name, overrides in SETTINGS.items():
                cfg = apply_overrides(base, overrides)
                rate = fit_images_per_s(cfg, data, Path(tmp) / f"{rnd}_{name.replace(' ', '_')}")
                rates[name].append(rate)
                print(f"round {rnd} {name}: {rate:.1f} images/s", flush=True)
    ref = statistics.median(rates["no DAR"])
    rows = []
    for name, values in rates.items():
        med = statistics.median(values)
        ratios = [v / b for v, b in zip(values, rates["no DAR"], strict=True)]
        rows.append(
            {
                "setting": name,
                "images_per_s": med,
                "ratio_vs_no_dar": med / ref,
                "median_paired_ratio": statistics.median(ratios),
            }
        )
    table = format_table(
        rows, ["setting", "images_per_s", "ratio_vs_no_dar", "median_paired_ratio"]
    )
    print(
        f"\nbatch {base.data.batch_size}, {base.model.backbone}, "
        f"{args.batches} batches x {args.epochs} epochs x {args.rounds} rounds\n{table}"
    )
    write_results(
        "train_throughput_quick" if args.quick else "train_throughput",
        {"config": base.to_dict(), "rates": rates, "rows": rows, "table": table},
    )


if __name__ == "__main__":
    main()
