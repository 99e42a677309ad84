"""Training runs end to end: fit, pick the best checkpoint, evaluate on unseen classes, write
the run folder (config, metrics, checkpoints, logs, plots)."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from dasl.config import ExperimentConfig, check_splits, dump_config, variants
from dasl.training.datamodule import MetricLearningData, eval_loader, train_loader
from dasl.training.evaluate import embed, evaluate_embeddings, raw_pixels, shard
from dasl.training.module import MetricLearningModule, load_module
from dasl.training.progress import ProgressLines, RunPlan
from dasl.training.reports import (
    comparison_columns,
    comparison_table,
    table_cells,
    timing_table,
)
from dasl.training.run_folder import (
    Log,
    RunInterrupted,
    choose_checkpoint,
    fit,
    history_of,
    resume_path,
    write_results,
)
from dasl.training.trainer_factory import (
    build_trainer,
    resolve_precision,
    seeded_epoch_position,
)
from dasl.utils.io import atomic_write_json, atomic_write_text

# Re-exported: these lived here before the shared steps moved out (benchmarks import them).
__all__ = [
    "ExperimentResult",
    "RunInterrupted",
    "VariantResult",
    "build_trainer",
    "comparison_table",
    "resolve_precision",
    "run_experiment",
    "timing_table",
    "train_variant",
]

# Lightning's start-up chatter (accelerator lines, tips) buries the results table; its
# warnings still show.
for _name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass
class VariantResult:
    """What one trained model produced on the evaluation split."""

    name: str
    run_dir: Path
    metrics: dict[str, float]
    history: list[dict[str, float]]
    embeddings: np.ndarray
    labels: np.ndarray
    checkpoint: Path | None
    timings: dict[str, float] = field(default_factory=dict)
    ref_embeddings: np.ndarray | None = None
    """The gallery split's embeddings when it is separate from the queries (In-Shop)."""
    ref_labels: np.ndarray | None = None


@dataclass
class ExperimentResult:
    run_dir: Path
    variants: list[VariantResult]
    baseline: dict[str, float] | None
    timings: dict[str, dict[str, float]]


class _Batches(L.LightningDataModule):
    """Hands Lightning the loaders of :class:`MetricLearningData`, sharded by rank."""

    def __init__(self, data: MetricLearningData) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> DataLoader:
        rank, world, epoch = seeded_epoch_position(self.trainer, self.data.seed)
        return train_loader(self.data.train, self.data.cfg, self.data.seed, rank, world, epoch)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if self.data.val is None:
            return []
        # Each rank embeds its own shard; the module gathers them back (no padding).
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        return eval_loader(shard(self.data.val, rank, world), self.data.cfg)


def train_variant(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    log: Log = print,
    data: MetricLearningData | None = None,
    test: bool = True,
) -> VariantResult:
    """Train one config into ``run_dir`` and evaluate its best checkpoint on unseen classes.

    ``test=False`` (hyperparameter search) stops after the fit and never loads the test split:
    the result then has the validation history and the best checkpoint, no ``metrics``.

    ``metrics.json`` is written only after a complete run (atomically); an interrupted run
    raises :class:`RunInterrupted` and leaves its ``checkpoints/last.ckpt`` for ``resume``.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if data is None:
        log(f"[{cfg.name}] loading data ({cfg.data.name})")
        data = MetricLearningData.for_experiment(cfg, test=test)
        timings["data_s"] = time.perf_counter() - t0
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
    log(f"[{cfg.name}] {data.describe()}")

    module = MetricLearningModule(cfg, num_classes=data.num_classes)
    has_val = data.val is not None
    if not any(isinstance(c, ProgressLines) for c in callbacks):
        callbacks = [*callbacks, ProgressLines(cfg.name, log=log)]  # silent where log is
    trainer, checkpoint = build_trainer(cfg, run_dir, callbacks, has_val=has_val)
    ckpt_path = resume_path(run_dir, resume, cfg.name, log)
    outcome = fit(trainer, module, _Batches(data), ckpt_path, cfg.name, cfg.trainer.epochs, run_dir)
    timings["fit_s"] = outcome.fit_s
    if trainer.global_rank != 0:
        return VariantResult(cfg.name, run_dir, {}, module.history, np.empty(0), np.empty(0), None)

    chosen = choose_checkpoint(run_dir, checkpoint, has_val, outcome.started)
    history = history_of(module, run_dir)
    if not test:
        atomic_write_json(run_dir / "history.json", history)
        timings["total_s"] = time.perf_counter() - t0
        return VariantResult(
            cfg.name, run_dir, {}, history, np.empty(0), np.empty(0), chosen, timings
        )
    if chosen.is_file():
        module = load_module(chosen)
        module.history = history
    t2 = time.perf_counter()
    device = trainer.strategy.root_device
    module = module.to(device)
    # Test embeddings in float32 whatever the training precision, so that `dasl eval` of the
    # same checkpoint reports the same numbers.
    qset, gset = data.eval_sets.query, data.eval_sets.gallery
    log(f"[{cfg.name}] embedding {len(qset) + (len(gset) if gset is not None else 0)} test images")
    emb, lab = embed(module, eval_loader(qset, cfg.data), device)
    ref = ref_lab = None
    if gset is not None:
        ref, ref_lab = embed(module, eval_loader(gset, cfg.data), device)
    timings["embed_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    log(f"[{cfg.name}] metrics: exact k-NN retrieval" + (", k-means NMI" if cfg.eval.nmi else ""))
    metrics = evaluate_embeddings(
        emb, lab, tuple(cfg.eval.ks), cfg.eval.distance, cfg.eval.nmi, cfg.seed, ref, ref_lab
    )
    timings["metrics_s"] = time.perf_counter() - t3
    timings["total_s"] = time.perf_counter() - t0
    write_results(run_dir, metrics, history)
    log(
        f"[{cfg.name}] test: "
        + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    )
    return VariantResult(
        cfg.name, run_dir, metrics, history, emb, lab, chosen, timings, ref, ref_lab
    )


# ------------------------------------------------------------------ experiments


def _history_columns(history: list[dict[str, float]]) -> dict[str, list[float | None]]:
    keys = ["epoch", "train/base_loss", "train/dar", "val/map@r"]
    rows = sorted(history, key=lambda r: r["epoch"])
    # Epochs without a value (no validation that epoch) stay as gaps in the curves.
    return {k: [r.get(k) for r in rows] for k in keys if any(k in r for r in rows)}


def run_experiment(
    cfg: ExperimentConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    log: Log = print,
) -> ExperimentResult:
    """Every variant of ``cfg`` (see :func:`dasl.config.variants`), then the comparison.

    Layout: ``<out_dir>/<name>/config.yaml``; one sub-folder per variant when ``compare`` is
    set (each with ``config.yaml``, ``metrics.json``, ``history.json``, ``checkpoints/``,
    ``logs/``), and at the top ``metrics.json``, ``comparison.{json,md}``, ``timing.json``
    and the PNG plots.
    """
    from dasl.plots import (
        interclass_distance_stats,
        plot_embedding_maps,
        plot_interclass_distance_hist,
        plot_training_curves,
    )

    t0 = time.perf_counter()
    check_splits(cfg)
    run_dir = Path(cfg.out_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
    runs = variants(cfg)
    single = cfg.compare is None
    timings: dict[str, dict[str, float]] = {}
    data = None
    results: list[VariantResult] = []
    plan = RunPlan([v.trainer.epochs for _, v in runs])  # one ETA over every variant
    for name, vcfg in runs:
        vcfg = dataclasses.replace(vcfg, name=name)
        # Variants that differ only in loss/regularizer share the loaded data.
        fresh = MetricLearningData.normalization_for(vcfg)
        if data is None or (data.cfg, data.seed, data.normalization) != (
            vcfg.data,
            vcfg.seed,
            fresh,
        ):
            td = time.perf_counter()
            log(f"[{name}] loading data ({vcfg.data.name})")
            data = MetricLearningData.for_experiment(vcfg)
            timings[f"data ({name})"] = {"load_s": time.perf_counter() - td}
        vdir = run_dir if single else run_dir / name
        progress = ProgressLines(name, plan, log=log)
        res = train_variant(
            vcfg, vdir, resume=resume, callbacks=[*callbacks, progress], log=log, data=data
        )
        results.append(res)
        timings[name] = res.timings

    if results and results[0].checkpoint is None:  # not rank zero
        return ExperimentResult(run_dir, results, None, {})

    rows: dict[str, dict[str, float]] = {}
    baseline = None
    seed = cfg.seed
    ks = tuple(cfg.eval.ks)
    shown_ks = [k for k in ks if f"recall@{k}" in results[0].metrics]
    labels = results[0].labels
    if cfg.eval.raw_baseline and data is not None and data.eval_sets.gallery is None:
        tb = time.perf_counter()
        log("raw-pixel baseline: metrics")
        raw = raw_pixels(data.eval_sets.query)
        if raw is not None:
            baseline = evaluate_embeddings(
                raw[0], raw[1], ks, cfg.eval.distance, cfg.eval.nmi, seed
            )
            rows["raw pixels"] = {
                **baseline,
                **_cv(interclass_distance_stats, raw[0], raw[1], seed),
            }
        timings["raw-pixel baseline"] = {"metrics_s": time.perf_counter() - tb}
    for res in results:
        rows[res.name] = {
            **res.metrics,
            **_cv(interclass_distance_stats, res.embeddings, res.labels, seed),
        }

    if not single or baseline is not None:
        table = comparison_table(rows, shown_ks)
        atomic_write_json(run_dir / "comparison.json", rows)
        atomic_write_text(run_dir / "comparison.md", table + "\n")
        log("\n" + table)
    if cfg.eval.plots:
        tp = time.perf_counter()
        log("plots: embedding map (t-SNE), training curves, inter-class distances")
        by_method = {r.name: r.embeddings for r in results}
        class_names = list(getattr(data.eval_sets.query, "class_names", []) or []) or None
        plot_embedding_maps(
            by_method,
            labels,
            run_dir / "embedding_map.png",
            class_names=class_names,
            max_points=cfg.eval.tsne_points,
            seed=seed,
        )
        plot_training_curves(
            {r.name: _history_columns(r.history) for r in results},
            run_dir / "training_curves.png",
            dar_weights={name: vcfg.dar.lam for name, vcfg in runs},
        )
        plot_interclass_distance_hist(
            by_method, labels, run_dir / "interclass_distances.png", seed=seed
        )
        timings["plots"] = {"plots_s": time.perf_counter() - tp}
    tr = time.perf_counter()
    log("report: report.html (per-class Recall@1, retrieval gallery)")
    report = _write_report(cfg, run_dir, results, rows, shown_ks, data)
    timings["report"] = {"report_s": time.perf_counter() - tr}
    total = time.perf_counter() - t0
    timings["total"] = {"total_s": total}
    atomic_write_json(run_dir / "timing.json", timings)
    if not single:  # last: its presence marks a complete comparison
        atomic_write_json(run_dir / "metrics.json", {r.name: r.metrics for r in results})
    log("\nWhere the time went:\n" + timing_table(timings))
    log(f"\nReport: {report}")
    log(f"\nRun folder: {run_dir}")
    return ExperimentResult(run_dir, results, baseline, timings)


def _write_report(
    cfg: ExperimentConfig,
    run_dir: Path,
    results: list[VariantResult],
    rows: dict[str, dict[str, float]],
    ks: Sequence[int],
    data: MetricLearningData | None,
) -> Path:
    """``report.html``: the comparison's cells, the plots, per-class Recall@1, the gallery."""
    from dasl.reporting.run_report import RetrievalInput, write_results_report

    sets = data.eval_sets if data is not None else None
    return write_results_report(
        run_dir,
        f"dasl train: {cfg.name}",
        {
            r.name: RetrievalInput(r.embeddings, r.labels, r.ref_embeddings, r.ref_labels)
            for r in results
        },
        query_dataset=sets.query if sets is not None else None,
        gallery_dataset=sets.gallery if sets is not None else None,
        table=table_cells(rows, comparison_columns(ks)),
        summary=[f"Test split: {sets.query.describe()}"] if sets is not None else [],
        distance=cfg.eval.distance,
        seed=cfg.seed,
    )


def _cv(
    stats_fn: Callable[..., dict[str, Any]], emb: np.ndarray, lab: np.ndarray, seed: int
) -> dict[str, float]:
    stats = stats_fn(emb, lab, max_pairs=200_000, seed=seed)
    return {"interclass_cv": float(stats["cv"]), "interclass_mean": float(stats["mean"])}
