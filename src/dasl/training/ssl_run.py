"""Self-supervised pretraining runs end to end: fit, choose the checkpoint, evaluate the
frozen backbone (weighted k-NN, linear probe), write the run folder.

The run-folder steps (trainer, fit, checkpoint choice, metrics/history files, tables) are
the supervised pipeline's (:mod:`trainer_factory`, :mod:`run_folder`, :mod:`reports`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from dasl.config import dump_config, variants
from dasl.data.ssl_transforms import probe_transform
from dasl.ssl_config import PretrainConfig
from dasl.training.evaluate import raw_pixels
from dasl.training.reports import markdown_table, timing_table
from dasl.training.run_folder import (
    Log,
    choose_checkpoint,
    fit,
    history_of,
    resume_path,
    write_results,
)
from dasl.training.ssl_callbacks import BankCache, ClusterRefresh, KNNMonitor, embed_views
from dasl.training.ssl_data import SSLData
from dasl.training.ssl_module import SSLModule, load_ssl_module
from dasl.training.trainer_factory import build_trainer, seeded_epoch_position
from dasl.utils.io import atomic_write_json, atomic_write_text

MONITOR = "val/knn_top1"


@dataclass
class PretrainResult:
    """What one pretrained backbone gave on the test split."""

    name: str
    run_dir: Path
    metrics: dict[str, float]
    history: list[dict[str, float]]
    test_features: np.ndarray
    test_labels: np.ndarray
    checkpoint: Path | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class PretrainExperiment:
    run_dir: Path
    variants: list[PretrainResult]
    baseline: dict[str, float] | None
    timings: dict[str, dict[str, float]]


class _TwoViewBatches(L.LightningDataModule):
    """Hands Lightning the two-view loader of the epoch about to be trained, per rank."""

    def __init__(self, data: SSLData) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> DataLoader:
        rank, world, epoch = seeded_epoch_position(self.trainer, self.data.seed)
        return self.data.two_view_loader(rank, world, epoch)


def _knn_metrics(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    ks: Sequence[int],
    temperature: float,
) -> dict[str, float]:
    from dasl.metrics import knn_classify

    tops = (1, 5) if np.unique(train_labels).size >= 5 else (1,)
    out: dict[str, float] = {}
    for k in ks:
        res = knn_classify(
            train, train_labels, test, test_labels, k=k, temperature=temperature, ks=tops
        )
        for t in tops:
            out[f"knn_top{t}@{k}"] = float(res[f"top{t}"])
    return out


def _linear_metrics(
    cfg: PretrainConfig,
    module: SSLModule | None,
    data: SSLData,
    features: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, float]:
    ecfg = cfg.eval
    if ecfg.linear == "none":
        return {}
    if ecfg.linear == "fast" or module is None:
        from dasl.metrics import linear_probe

        res = linear_probe(*features, epochs=ecfg.linear_epochs)
    else:
        from dasl.training.linear_eval import linear_eval

        dcfg = data.cfg
        train = data.labelled.with_transform(
            probe_transform(data.recipe, dcfg.in_channels, dcfg.image_size)
        )
        res = linear_eval(
            module.backbone,
            train,
            data.evaluated(data.test),
            epochs=ecfg.linear_epochs,
            lr=ecfg.linear_lr,
            batch_size=ecfg.linear_batch_size,
        )
    return {f"linear_{key}": float(value) for key, value in res.items()}


def evaluate_backbone(
    module: SSLModule, data: SSLData, cfg: PretrainConfig
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """k-NN (each ``eval.knn_k``) and linear probe of the frozen backbone on the test split.

    Returns the metrics and the test features/labels (float32, whatever the precision the
    model trained in, so that ``dasl eval`` of the checkpoint reports the same numbers).
    """
    train, _, train_labels = embed_views(module, data.eval_loader(data.bank()))
    test, _, test_labels = embed_views(module, data.eval_loader(data.evaluated(data.test)))
    ecfg = cfg.eval
    metrics = _knn_metrics(train, train_labels, test, test_labels, ecfg.knn_k, ecfg.knn_temperature)
    metrics.update(_linear_metrics(cfg, module, data, (train, train_labels, test, test_labels)))
    return metrics, test, test_labels


def pretrain_variant(
    cfg: PretrainConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    log: Log = print,
    data: SSLData | None = None,
) -> PretrainResult:
    """Pretrain one config into ``run_dir`` and evaluate its chosen checkpoint.

    ``best.ckpt`` is the epoch with the highest k-NN top-1 on the validation split (carved
    from the training images; ``last.ckpt`` without one). ``metrics.json`` is written only
    after a complete run; an interrupted run raises :class:`RunInterrupted` and leaves
    ``checkpoints/last.ckpt`` for ``resume``.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if data is None:
        data = SSLData(cfg)
        timings["data_s"] = time.perf_counter() - t0
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
    log(f"[{cfg.name}] {data.describe()}")

    module = SSLModule(cfg.to_dict(), num_train=len(data.train))
    ecfg, ccfg = cfg.eval, cfg.clustering
    bank = BankCache(data.eval_loader(data.bank()))
    # The clustering bank is the pretraining set itself (pseudo-labels are indexed by it);
    # it is the k-NN bank too unless a separate labelled split is set (STL-10).
    cluster_bank = (
        bank if data.labelled is data.train else BankCache(data.eval_loader(data.cluster_bank()))
    )
    has_val = data.val is not None and ecfg.monitor_every > 0
    own: list[Callback] = []
    if has_val:
        assert data.val is not None
        val_loader = data.eval_loader(data.evaluated(data.val))
        own.append(
            KNNMonitor(bank, val_loader, ecfg.knn_k[0], ecfg.knn_temperature, ecfg.monitor_every)
        )
    if cfg.ssl.method == "dasl_cu":
        own.append(
            ClusterRefresh(
                cluster_bank,
                ccfg.num_clusters,
                ccfg.every,
                ccfg.start_epoch,
                ccfg.features,
                cfg.seed,
                ccfg.niter,
            )
        )
    trainer, checkpoint = build_trainer(
        cfg,  # type: ignore[arg-type]  # needs .trainer and .optim.grad_clip only
        run_dir,
        [*own, *callbacks],
        has_val=has_val,
        monitor=MONITOR,
        save_on_train_epoch_end=True,
    )
    ckpt_path = resume_path(run_dir, resume, cfg.name, log)
    outcome = fit(
        trainer, module, _TwoViewBatches(data), ckpt_path, cfg.name, cfg.trainer.epochs, run_dir
    )
    timings["fit_s"] = outcome.fit_s
    if trainer.global_rank != 0:
        return PretrainResult(cfg.name, run_dir, {}, module.history, np.empty(0), np.empty(0), None)

    chosen = choose_checkpoint(run_dir, checkpoint, has_val, outcome.started)
    history = history_of(module, run_dir)
    if chosen.is_file():
        module = load_ssl_module(chosen)
        module.history = history
    t2 = time.perf_counter()
    module = module.to(trainer.strategy.root_device)
    metrics, test, test_labels = evaluate_backbone(module, data, cfg)
    metrics["checkpoint_epoch"] = float(_epoch_of(chosen))
    timings["eval_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    write_results(run_dir, metrics, history)
    log(f"[{cfg.name}] test: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return PretrainResult(cfg.name, run_dir, metrics, history, test, test_labels, chosen, timings)


def _epoch_of(checkpoint: Path) -> int:
    if not checkpoint.is_file():
        return -1
    return int(torch.load(checkpoint, map_location="cpu", weights_only=False).get("epoch", -1))


# ------------------------------------------------------------------ experiments

COMPARISON_COLUMNS = (
    ("knn_top1@200", "k-NN top-1 (k=200)", "pct"),
    ("knn_top1@20", "k-NN top-1 (k=20)", "pct"),
    ("linear_top1", "linear top-1", "pct"),
    ("linear_top5", "linear top-5", "pct"),
)
CURVE_PANELS = (
    (MONITOR, "k-NN top-1 (validation)"),
    ("train/base_loss", "base loss (train)"),
    ("train/dar", "DAR term (train)"),
)


def comparison_columns(rows: dict[str, dict[str, float]], ks: Sequence[int]):
    """The table's columns: k-NN top-1 for every K asked for, then the linear probe."""
    cols = [(f"knn_top1@{k}", f"k-NN top-1 (k={k})", "pct") for k in ks]
    cols += [c for c in COMPARISON_COLUMNS if c[0].startswith("linear")]
    return [c for c in cols if any(c[0] in r for r in rows.values())]


def _curves(history: list[dict[str, float]], keys: Sequence[str]) -> dict[str, list[Any]]:
    rows = sorted(history, key=lambda r: r["epoch"])
    return {k: [r.get(k) for r in rows] for k in ["epoch", *keys] if any(k in r for r in rows)}


def _purity_curves(results: list[PretrainResult]) -> dict[str, dict[str, list[float]]]:
    """``{"<method> K=<k>": {"epoch": [...], "nmi": [...]}}`` for every clustering made."""
    out: dict[str, dict[str, list[float]]] = {}
    for res in results:
        for row in sorted(res.history, key=lambda r: r["epoch"]):
            for key, value in row.items():
                if key.startswith("cluster/nmi@"):
                    curve = out.setdefault(
                        f"{res.name} K={key.split('@')[1]}", {"epoch": [], "nmi": []}
                    )
                    curve["epoch"].append(row["epoch"])
                    curve["nmi"].append(value)
    return out


def raw_pixel_baseline(data: SSLData, cfg: PretrainConfig) -> dict[str, float] | None:
    """k-NN (and the fast linear probe) on the flattened raw pixels: no learning at all."""
    train = raw_pixels(data.labelled)
    test = raw_pixels(data.test)
    if train is None or test is None:
        return None
    ecfg = cfg.eval
    out = _knn_metrics(train[0], train[1], test[0], test[1], ecfg.knn_k, ecfg.knn_temperature)
    if ecfg.linear != "none":
        from dasl.metrics import linear_probe

        res = linear_probe(train[0], train[1], test[0], test[1], epochs=ecfg.linear_epochs)
        out.update({f"linear_{k}": float(v) for k, v in res.items()})
    return out


def run_pretrain(
    cfg: PretrainConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    log: Log = print,
) -> PretrainExperiment:
    """Every variant of ``cfg`` with the same seed, data and budget, then the comparison.

    Layout (as ``dasl train``): ``<out_dir>/<name>/config.yaml``; one sub-folder per variant
    when ``compare`` is set (``config.yaml``, ``metrics.json``, ``history.json``,
    ``checkpoints/{best,last}.ckpt``, ``logs/``), and at the top ``metrics.json``,
    ``comparison.{md,json}``, ``timing.json`` and the plots ``embedding_map.png`` (t-SNE of
    the test features by true class), ``knn_curves.png`` (validation k-NN per epoch, loss
    terms) and, with DASL-cu, ``cluster_purity.png`` (NMI of the pseudo-labels per clustering).
    """
    t0 = time.perf_counter()
    run_dir = Path(cfg.out_dir) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(cfg))  # type: ignore[arg-type]  # PretrainConfig duck-types it
    single = cfg.compare is None
    timings: dict[str, dict[str, float]] = {}
    data: SSLData | None = None
    results: list[PretrainResult] = []
    for name, vcfg in variants(cfg):  # type: ignore[arg-type]  # PretrainConfig duck-types it
        vcfg = dataclasses.replace(vcfg, name=name)
        if data is None or data.key != (vcfg.data, vcfg.seed):
            td = time.perf_counter()
            data = SSLData(vcfg)  # type: ignore[arg-type]  # variants() is typed for ExperimentConfig
            timings[f"data ({name})"] = {"load_s": time.perf_counter() - td}
        vdir = run_dir if single else run_dir / name
        res = pretrain_variant(
            vcfg,  # type: ignore[arg-type]  # variants() is typed for ExperimentConfig
            vdir,
            resume=resume,
            callbacks=callbacks,
            log=log,
            data=data,
        )
        results.append(res)
        timings[name] = res.timings
    if not results or results[0].checkpoint is None or data is None:  # not rank zero
        return PretrainExperiment(run_dir, results, None, {})

    rows: dict[str, dict[str, float]] = {}
    baseline = None
    if cfg.eval.raw_baseline:
        tb = time.perf_counter()
        baseline = raw_pixel_baseline(data, cfg)
        if baseline is not None:
            rows["raw pixels"] = baseline
        timings["raw-pixel baseline"] = {"metrics_s": time.perf_counter() - tb}
    for res in results:
        rows[res.name] = res.metrics
    table = markdown_table(rows, comparison_columns(rows, cfg.eval.knn_k))
    atomic_write_json(run_dir / "comparison.json", rows)
    atomic_write_text(run_dir / "comparison.md", table + "\n")
    log("\n" + table)
    if not single:
        atomic_write_json(run_dir / "metrics.json", {r.name: r.metrics for r in results})

    if cfg.eval.plots:
        from dasl.plots import plot_embedding_maps, plot_training_curves

        tp = time.perf_counter()
        names = list(getattr(data.test, "class_names", []) or []) or None
        plot_embedding_maps(
            {r.name: r.test_features for r in results},
            results[0].test_labels,
            run_dir / "embedding_map.png",
            class_names=names,
            max_points=cfg.eval.tsne_points,
            seed=cfg.seed,
        )
        keys = [k for k, _ in CURVE_PANELS]
        plot_training_curves(
            {r.name: _curves(r.history, keys) for r in results},
            run_dir / "knn_curves.png",
            panels=CURVE_PANELS,
            dar_weights={name: vcfg.dar.lam for name, vcfg in variants(cfg)},  # type: ignore[arg-type]  # duck-typed config
        )
        purity = _purity_curves(results)
        if purity:
            plot_training_curves(
                purity,
                run_dir / "cluster_purity.png",
                panels=(("nmi", "NMI of pseudo-labels vs true classes"),),
            )
        timings["plots"] = {"plots_s": time.perf_counter() - tp}
    tr = time.perf_counter()
    report = _write_report(cfg, run_dir, results, rows, data)
    timings["report"] = {"report_s": time.perf_counter() - tr}
    timings["total"] = {"total_s": time.perf_counter() - t0}
    atomic_write_json(run_dir / "timing.json", timings)
    log("\nWhere the time went:\n" + timing_table(timings))
    log(f"\nReport: {report}")
    log(f"\nRun folder: {run_dir}")
    return PretrainExperiment(run_dir, results, baseline, timings)


def _write_report(
    cfg: PretrainConfig,
    run_dir: Path,
    results: list[PretrainResult],
    rows: dict[str, dict[str, float]],
    data: SSLData,
) -> Path:
    """``report.html``: the k-NN / linear table, the plots, and the retrieval view of the
    frozen test features (per-class Recall@1 and the gallery within the test split)."""
    from dasl.reporting.run_report import RetrievalInput, write_results_report
    from dasl.training.reports import table_cells

    return write_results_report(
        run_dir,
        f"dasl pretrain: {cfg.name}",
        {r.name: RetrievalInput(r.test_features, r.test_labels) for r in results},
        query_dataset=data.test,
        table=table_cells(rows, comparison_columns(rows, cfg.eval.knn_k)),
        summary=[
            f"Test split: {data.test.describe()}. The table: k-NN and linear probes on the "
            "frozen features; below, the test features as a retrieval model (leave-one-out)."
        ],
        distance="cosine",
        seed=cfg.seed,
    )
