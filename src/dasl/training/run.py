"""Training runs end to end: fit, pick the best checkpoint, evaluate on unseen classes, write
the run folder (config, metrics, checkpoints, logs, plots)."""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from dasl.config import ExperimentConfig, check_splits, dump_config, variants
from dasl.training.checkpoint_io import AtomicCheckpointIO, resumable_checkpoint
from dasl.training.datamodule import MetricLearningData, epoch_seed, eval_loader, train_loader
from dasl.training.evaluate import embed, evaluate_embeddings, raw_pixels
from dasl.training.guards import NonFiniteGuard
from dasl.training.module import MetricLearningModule, load_module
from dasl.utils.io import atomic_write_json, atomic_write_text

Log = Callable[[str], None]

# Lightning's start-up chatter (accelerator lines, tips) buries the results table; its
# warnings still show.
for _name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class RunInterrupted(RuntimeError):
    """Training stopped before its last epoch (Ctrl-C); nothing final was written."""


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


@dataclass
class ExperimentResult:
    run_dir: Path
    variants: list[VariantResult]
    baseline: dict[str, float] | None
    timings: dict[str, dict[str, float]]


def resolve_precision(precision: str, accelerator: str) -> str:
    """``"auto"``: bf16 mixed precision on a GPU that supports it, full float32 elsewhere."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if on_gpu and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed" if on_gpu else "32-true"


class _Batches(L.LightningDataModule):
    """Hands Lightning the loaders of :class:`MetricLearningData`, sharded by rank."""

    def __init__(self, data: MetricLearningData) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> DataLoader:
        # Called at the start of every epoch (reload_dataloaders_every_n_epochs=1), after a
        # checkpoint has been restored, so the epoch number is the one about to be trained.
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        epoch = trainer.current_epoch if trainer is not None else 0
        # Lightning may fetch a first batch before on_train_epoch_start: seed it here too.
        torch.manual_seed(epoch_seed(self.data.seed, epoch, rank))
        return train_loader(self.data.train, self.data.cfg, self.data.seed, rank, world, epoch)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if self.data.val is None:
            return []
        return eval_loader(self.data.val, self.data.cfg)


def interrupted_message(name: str, epoch: int, cfg: ExperimentConfig, last: Path) -> str:
    """Where an interrupted run stopped; epochs count from 0, as Lightning's progress bar."""
    stopped = (
        f"[{name}] interrupted in epoch {epoch} (of 0-{cfg.trainer.epochs - 1}, counted from 0 "
        "like the progress bar)"
    )
    if last.is_file() and epoch > 0:
        return f"{stopped}; --resume continues from {last} (end of epoch {epoch - 1})"
    return f"{stopped}, before its first checkpoint; --resume starts it again"


def _log_version(kind: str, attempt: int) -> str:
    return kind if attempt == 1 else f"{kind}-resume{attempt - 1}"


def build_trainer(
    cfg: ExperimentConfig, run_dir: Path, callbacks: Sequence[Callback] = (), has_val: bool = True
) -> tuple[L.Trainer, ModelCheckpoint]:
    tcfg = cfg.trainer
    # last.ckpt after every epoch. Not save_last=True: since Lightning 2.2 that writes
    # last.ckpt only in epochs that also wrote best.ckpt, so a crash after an epoch without
    # improvement resumed from an older epoch.
    last = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="last",
        monitor=None,
        save_top_k=1,
        enable_version_counter=False,
    )
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor="val/map@r",
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
    )
    checkpoint = best if has_val else last
    # A resumed run logs into fresh version folders: Lightning would otherwise delete the
    # earlier attempt's CSV log. The full per-epoch history also lives in the checkpoint.
    attempt = 1
    while (run_dir / "logs" / _log_version("csv", attempt)).exists():
        attempt += 1
    loggers = [
        CSVLogger(run_dir, name="logs", version=_log_version("csv", attempt)),
        TensorBoardLogger(
            run_dir,
            name="logs",
            version=_log_version("tensorboard", attempt),
            default_hp_metric=False,
        ),
    ]
    trainer = L.Trainer(
        max_epochs=tcfg.epochs,
        accelerator=tcfg.accelerator,
        devices=tcfg.devices,
        num_nodes=tcfg.num_nodes,
        strategy=tcfg.strategy,
        precision=resolve_precision(tcfg.precision, tcfg.accelerator),
        gradient_clip_val=cfg.optim.grad_clip,
        deterministic=tcfg.deterministic,
        log_every_n_steps=tcfg.log_every_n_steps,
        enable_progress_bar=tcfg.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        # Our batch sampler already shards by rank and is seeded per epoch.
        use_distributed_sampler=False,
        reload_dataloaders_every_n_epochs=1,
        limit_train_batches=tcfg.limit_train_batches,
        logger=loggers,
        callbacks=[
            *([best] if has_val else []),
            last,
            NonFiniteGuard(run_dir / "checkpoints"),
            *callbacks,
        ],
        # Checkpoints are complete or absent, whenever the process dies (kill -9, full disk).
        plugins=[AtomicCheckpointIO()],
        default_root_dir=run_dir,
    )
    return trainer, checkpoint


def train_variant(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    log: Log = print,
    data: MetricLearningData | None = None,
) -> VariantResult:
    """Train one config into ``run_dir`` and evaluate its best checkpoint on unseen classes.

    ``metrics.json`` is written only after a complete run (atomically); an interrupted run
    raises :class:`RunInterrupted` and leaves its ``checkpoints/last.ckpt`` for ``resume``.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if data is None:
        data = MetricLearningData.for_experiment(cfg)
        timings["data_s"] = time.perf_counter() - t0
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
    log(f"[{cfg.name}] {data.describe()}")

    module = MetricLearningModule(cfg.to_dict(), num_classes=data.num_classes)
    trainer, checkpoint = build_trainer(cfg, run_dir, callbacks, has_val=data.val is not None)
    last = run_dir / "checkpoints" / "last.ckpt"
    found = resumable_checkpoint(last.parent, log) if resume else None
    ckpt_path = str(found) if found is not None else None
    if resume and ckpt_path is None:
        log(
            f"[{cfg.name}] --resume: no complete checkpoint at {last}; training this variant "
            "from scratch (files already in its checkpoints/ folder will be replaced)"
        )
    t1 = time.perf_counter()
    fit_started = time.time()
    try:
        with warnings.catch_warnings():
            # Explained above when resuming; otherwise it fires for a re-run into an old
            # folder, whose checkpoints are replaced as they are written.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
            trainer.fit(module, datamodule=_Batches(data), ckpt_path=ckpt_path)
    except SystemExit:
        # Lightning turns Ctrl-C into sys.exit(1) after a graceful shutdown.
        if not trainer.interrupted:
            raise
    timings["fit_s"] = time.perf_counter() - t1
    # trainer.state, not current_epoch: with spawned DDP workers only the state comes back.
    if trainer.interrupted or not trainer.state.finished:
        raise RunInterrupted(interrupted_message(cfg.name, trainer.current_epoch, cfg, last))
    if trainer.global_rank != 0:
        return VariantResult(cfg.name, run_dir, {}, module.history, np.empty(0), np.empty(0), None)

    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    fixed_best = run_dir / "checkpoints" / "best.ckpt"
    # Spawned DDP workers do not send the callback state back; the file is this run's when
    # it was written after the fit started.
    fresh = fixed_best.is_file() and fixed_best.stat().st_mtime >= fit_started
    if best is None and data.val is not None and fresh:
        best = fixed_best
    chosen = best if best is not None and best.is_file() else last
    history = module.history
    if not history and last.is_file():
        # Spawned DDP workers trained a copy of the module: rank 0 saved its history.
        history = torch.load(last, map_location="cpu", weights_only=False).get("dasl_history", [])
    if chosen.is_file():
        module = load_module(chosen)
        module.history = history
    t2 = time.perf_counter()
    device = trainer.strategy.root_device
    module = module.to(device)
    # Test embeddings in float32 whatever the training precision, so that `dasl eval` of the
    # same checkpoint reports the same numbers.
    qset, gset = data.eval_sets.query, data.eval_sets.gallery
    emb, lab = embed(module, eval_loader(qset, cfg.data), device)
    ref = ref_lab = None
    if gset is not None:
        ref, ref_lab = embed(module, eval_loader(gset, cfg.data), device)
    timings["embed_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    metrics = evaluate_embeddings(
        emb, lab, tuple(cfg.eval.ks), cfg.eval.distance, cfg.eval.nmi, cfg.seed, ref, ref_lab
    )
    timings["metrics_s"] = time.perf_counter() - t3
    timings["total_s"] = time.perf_counter() - t0
    # metrics.json last: its presence marks a complete run.
    atomic_write_json(run_dir / "history.json", history)
    atomic_write_json(run_dir / "metrics.json", metrics)
    log(
        f"[{cfg.name}] test: "
        + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    )
    return VariantResult(cfg.name, run_dir, metrics, history, emb, lab, chosen, timings)


# ------------------------------------------------------------------ experiments


def _history_columns(history: list[dict[str, float]]) -> dict[str, list[float | None]]:
    keys = ["epoch", "train/base_loss", "train/dar", "val/map@r"]
    rows = sorted(history, key=lambda r: r["epoch"])
    # Epochs without a value (no validation that epoch) stay as gaps in the curves.
    return {k: [r.get(k) for r in rows] for k in keys if any(k in r for r in rows)}


METRIC_COLUMNS = ("map@r", "r_precision", "nmi")


def comparison_table(rows: dict[str, dict[str, float]], ks: Sequence[int]) -> str:
    """Markdown table: one row per method, Recall@K then MAP@R, R-precision, NMI (in %)."""
    cols = [f"recall@{k}" for k in ks] + list(METRIC_COLUMNS) + ["interclass_cv"]
    titles = [f"R@{k}" for k in ks] + ["MAP@R", "R-Prec", "NMI", "inter-class dist. CV"]
    lines = ["| method | " + " | ".join(titles) + " |", "|---|" + "---|" * len(cols)]
    for method, m in rows.items():
        cells = []
        for c in cols:
            v = m.get(c)
            if v is None:
                cells.append("")
            elif c == "interclass_cv":
                cells.append(f"{v:.3f}")
            else:
                cells.append(f"{100 * v:.2f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing_table(timings: dict[str, dict[str, float]]) -> str:
    lines = ["| stage | seconds |", "|---|---|"]
    for stage, parts in timings.items():
        for k, v in parts.items():
            step = k.removesuffix("_s")
            label = stage if step == stage or len(parts) == 1 else f"{stage}: {step}"
            lines.append(f"| {label} | {v:.1f} |")
    return "\n".join(lines)


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
            data = MetricLearningData.for_experiment(vcfg)
            timings[f"data ({name})"] = {"load_s": time.perf_counter() - td}
        vdir = run_dir if single else run_dir / name
        res = train_variant(vcfg, vdir, resume=resume, callbacks=callbacks, log=log, data=data)
        results.append(res)
        timings[name] = res.timings

    if results and results[0].checkpoint is None:  # not rank zero
        return ExperimentResult(run_dir, results, None, {})

    rows: dict[str, dict[str, float]] = {}
    baseline = None
    seed = cfg.seed
    ks = tuple(cfg.eval.ks)
    labels = results[0].labels
    if cfg.eval.raw_baseline and data is not None and data.eval_sets.gallery is None:
        tb = time.perf_counter()
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
        table = comparison_table(rows, [k for k in ks if f"recall@{k}" in results[0].metrics])
        atomic_write_json(run_dir / "comparison.json", rows)
        atomic_write_text(run_dir / "comparison.md", table + "\n")
        log("\n" + table)
    if cfg.eval.plots:
        tp = time.perf_counter()
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
            {r.name: _history_columns(r.history) for r in results}, run_dir / "training_curves.png"
        )
        plot_interclass_distance_hist(
            by_method, labels, run_dir / "interclass_distances.png", seed=seed
        )
        timings["plots"] = {"plots_s": time.perf_counter() - tp}
    total = time.perf_counter() - t0
    timings["total"] = {"total_s": total}
    atomic_write_json(run_dir / "timing.json", timings)
    if not single:  # last: its presence marks a complete comparison
        atomic_write_json(run_dir / "metrics.json", {r.name: r.metrics for r in results})
    log("\nWhere the time went:\n" + timing_table(timings))
    log(f"\nRun folder: {run_dir}")
    return ExperimentResult(run_dir, results, baseline, timings)


def _cv(
    stats_fn: Callable[..., dict[str, Any]], emb: np.ndarray, lab: np.ndarray, seed: int
) -> dict[str, float]:
    stats = stats_fn(emb, lab, max_pairs=200_000, seed=seed)
    return {"interclass_cv": float(stats["cv"]), "interclass_mean": float(stats["mean"])}
