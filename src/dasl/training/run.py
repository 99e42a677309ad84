"""Supervised training runs (``dasl train``): the :class:`Supervised` setting of the one run
pipeline (:mod:`dasl.training.pipeline`), fitted on labelled classes and evaluated by
retrieval on unseen classes."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from dasl.config import ExperimentConfig, check_splits, variants
from dasl.evaluation import embed, evaluate_embeddings, raw_pixels, shard
from dasl.metrics.interclass import interclass_cv
from dasl.reporting.tables import (
    comparison_columns,
    comparison_table,
    table_cells,
    timing_table,
)
from dasl.run_data import EvalSets, MetricLearningData, eval_loader, train_loader
from dasl.training.module import MetricLearningModule, load_module
from dasl.training.pipeline import (
    EpochBatches,
    Evaluation,
    ExperimentResult,
    Rows,
    Setting,
    VariantResult,
    history_columns,
)
from dasl.training.run_folder import Log, RunInterrupted
from dasl.training.trainer_factory import build_trainer, resolve_precision

# Re-exported: these lived here before the shared steps moved out (benchmarks import them).
__all__ = [
    "ExperimentResult",
    "RunInterrupted",
    "Supervised",
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

CURVE_KEYS = ("train/base_loss", "train/dar", "val/map@r")


class _Batches(EpochBatches):
    """Hands Lightning the loaders of :class:`MetricLearningData`, sharded by rank."""

    def __init__(self, data: MetricLearningData) -> None:
        super().__init__(data.seed, self._train_loader)
        self.data = data

    def _train_loader(self, rank: int, world: int, epoch: int) -> DataLoader:
        return train_loader(self.data.train, self.data.cfg, self.data.seed, rank, world, epoch)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if self.data.val is None:
            return []
        # Each rank embeds its own shard; the module gathers them back (no padding).
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        return eval_loader(shard(self.data.val, rank, world), self.data.cfg)


def _eval_sets(data: MetricLearningData) -> EvalSets:
    """The test sets; a pipeline that evaluates loaded them (``test=True``)."""
    assert data.eval_sets is not None
    return data.eval_sets


class Supervised(Setting):
    """Metric learning on labelled classes; retrieval (Recall@K, MAP@R, NMI) on unseen ones.

    ``best.ckpt`` is the epoch with the highest validation MAP@R. The run folder adds the
    plots ``embedding_map.png``, ``training_curves.png`` and ``interclass_distances.png``.
    """

    monitor = "val/map@r"

    def prepare(self, cfg: ExperimentConfig) -> None:
        check_splits(cfg)

    def load_data(
        self, cfg: ExperimentConfig, log: Log, *, test: bool = True
    ) -> MetricLearningData:
        log(f"[{cfg.name}] loading data ({cfg.data.name})")
        return MetricLearningData.for_experiment(cfg, test=test)

    def reusable(self, data: MetricLearningData, cfg: ExperimentConfig) -> bool:
        fresh = MetricLearningData.normalization_for(cfg)
        return (data.cfg, data.seed, data.normalization) == (cfg.data, cfg.seed, fresh)

    def module(self, cfg: ExperimentConfig, data: MetricLearningData) -> MetricLearningModule:
        return MetricLearningModule(cfg, num_classes=data.num_classes)

    def batches(self, data: MetricLearningData) -> _Batches:
        return _Batches(data)

    def callbacks(
        self, cfg: ExperimentConfig, data: MetricLearningData
    ) -> tuple[list[Callback], bool]:
        return [], data.val is not None

    def load_module(self, path: Path) -> MetricLearningModule:
        return load_module(path)

    def evaluate(
        self,
        cfg: ExperimentConfig,
        module: MetricLearningModule,
        data: MetricLearningData,
        checkpoint: Path,
        log: Log,
    ) -> Evaluation:
        t0 = time.perf_counter()
        device = module.device
        sets = _eval_sets(data)
        qset, gset = sets.query, sets.gallery
        n = len(qset) + (len(gset) if gset is not None else 0)
        log(f"[{cfg.name}] embedding {n} test images")
        emb, lab = embed(module, eval_loader(qset, cfg.data), device)
        ref = ref_lab = None
        if gset is not None:
            ref, ref_lab = embed(module, eval_loader(gset, cfg.data), device)
        timings = {"embed_s": time.perf_counter() - t0}
        t1 = time.perf_counter()
        nmi = ", k-means NMI" if cfg.eval.nmi else ""
        log(f"[{cfg.name}] metrics: exact k-NN retrieval{nmi}")
        metrics = evaluate_embeddings(
            emb, lab, tuple(cfg.eval.ks), cfg.eval.distance, cfg.eval.nmi, cfg.seed, ref, ref_lab
        )
        timings["metrics_s"] = time.perf_counter() - t1
        return Evaluation(metrics, emb, lab, timings, ref, ref_lab)

    def baseline(
        self, cfg: ExperimentConfig, data: MetricLearningData, log: Log
    ) -> tuple[dict[str, float] | None, dict[str, float] | None] | None:
        sets = _eval_sets(data)
        if sets.gallery is not None:
            return None
        log("raw-pixel baseline: metrics")
        raw = raw_pixels(sets.query)
        if raw is None:
            return None, None
        metrics = evaluate_embeddings(
            raw[0], raw[1], tuple(cfg.eval.ks), cfg.eval.distance, cfg.eval.nmi, cfg.seed
        )
        return metrics, {**metrics, **interclass_cv(raw[0], raw[1], cfg.seed)}

    def row(self, cfg: ExperimentConfig, result: VariantResult) -> dict[str, float]:
        return {**result.metrics, **interclass_cv(result.embeddings, result.labels, cfg.seed)}

    @staticmethod
    def _shown_ks(cfg: ExperimentConfig, results: list[VariantResult]) -> list[int]:
        return [k for k in cfg.eval.ks if f"recall@{k}" in results[0].metrics]

    def table(
        self, cfg: ExperimentConfig, rows: Rows, results: list[VariantResult], baseline: Any
    ) -> str | None:
        if cfg.compare is None and baseline is None:
            return None
        return comparison_table(rows, self._shown_ks(cfg, results))

    def plots(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        results: list[VariantResult],
        data: MetricLearningData,
        log: Log,
    ) -> None:
        from dasl.plots import (
            plot_embedding_maps,
            plot_interclass_distance_hist,
            plot_training_curves,
        )

        log("plots: embedding map (t-SNE), training curves, inter-class distances")
        by_method = {r.name: r.embeddings for r in results}
        labels = results[0].labels
        class_names = list(getattr(_eval_sets(data).query, "class_names", []) or []) or None
        plot_embedding_maps(
            by_method,
            labels,
            run_dir / "embedding_map.png",
            class_names=class_names,
            max_points=cfg.eval.tsne_points,
            seed=cfg.seed,
        )
        plot_training_curves(
            {r.name: history_columns(r.history, CURVE_KEYS) for r in results},
            run_dir / "training_curves.png",
            dar_weights={name: vcfg.dar.lam for name, vcfg in variants(cfg)},
        )
        plot_interclass_distance_hist(
            by_method, labels, run_dir / "interclass_distances.png", seed=cfg.seed
        )

    def report(
        self,
        cfg: ExperimentConfig,
        run_dir: Path,
        results: list[VariantResult],
        rows: Rows,
        data: MetricLearningData,
        log: Log,
    ) -> Path:
        """``report.html``: the comparison's cells, the plots, per-class Recall@1, the gallery."""
        from dasl.reporting.run_report import RetrievalInput, write_results_report

        log("report: report.html (per-class Recall@1, retrieval gallery)")
        sets = _eval_sets(data)
        return write_results_report(
            run_dir,
            f"dasl train: {cfg.name}",
            {
                r.name: RetrievalInput(r.embeddings, r.labels, r.ref_embeddings, r.ref_labels)
                for r in results
            },
            query_dataset=sets.query,
            gallery_dataset=sets.gallery,
            table=table_cells(rows, comparison_columns(self._shown_ks(cfg, results))),
            summary=[f"Test split: {sets.query.describe()}"],
            distance=cfg.eval.distance,
            seed=cfg.seed,
        )


_SETTING = Supervised()
train_variant = _SETTING.variant
"""One variant into its run folder, evaluated (:meth:`Setting.variant`)."""
run_experiment = _SETTING.experiment
"""Every variant of a config, then the comparison (:meth:`Setting.experiment`)."""
