"""One run pipeline for both settings (#17): supervised training (``dasl train``) and
self-supervised pretraining (``dasl pretrain``).

A run fits every variant of the config (:func:`dasl.config.variants`) into its folder
(resumable, progress and ETA over all variants), chooses and evaluates each variant's
checkpoint, then writes the comparison table, the plots, ``report.html``, ``timing.json`` and
(with ``compare``) the top-level ``metrics.json``. What the two settings do differently (the
data, the LightningModule and its objective, the callbacks that objective needs, the
evaluation, the table, plots and report) is what a :class:`Setting` supplies.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from dasl.config import dump_config, variants
from dasl.reporting.tables import timing_table
from dasl.training.epoch_log import EpochLoggedModule
from dasl.training.progress import ProgressLines, RunPlan
from dasl.training.run_folder import (
    Log,
    choose_checkpoint,
    fit,
    history_of,
    resume_path,
    write_results,
)
from dasl.training.trainer_factory import build_trainer, seeded_epoch_position
from dasl.utils.io import atomic_write_json, atomic_write_text


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


@dataclass
class Evaluation:
    """A setting's evaluation of one chosen checkpoint."""

    metrics: dict[str, float]
    embeddings: np.ndarray
    labels: np.ndarray
    timings: dict[str, float]
    ref_embeddings: np.ndarray | None = None
    ref_labels: np.ndarray | None = None


Rows = dict[str, dict[str, float]]


class EpochBatches(L.LightningDataModule):
    """Hands Lightning the training loader of the epoch about to be trained, on this rank:
    ``loader(rank, world_size, epoch)``, with the torch seed of that epoch set first."""

    def __init__(self, seed: int, loader: Callable[[int, int, int], DataLoader]) -> None:
        super().__init__()
        self.seed = seed
        self.loader = loader

    def train_dataloader(self) -> DataLoader:
        rank, world, epoch = seeded_epoch_position(self.trainer, self.seed)
        return self.loader(rank, world, epoch)


class Setting(ABC):
    """What a supervised run and a pretraining run do differently; ``cfg`` is the setting's
    config (``ExperimentConfig`` / ``PretrainConfig``), ``data`` its loaded splits."""

    monitor: ClassVar[str]
    """The validation metric ``checkpoints/best.ckpt`` maximizes."""
    save_on_train_epoch_end: ClassVar[bool | None] = None

    def prepare(self, cfg: Any) -> None:  # noqa: B027  (optional hook: nothing by default)
        """Checks made once, before any variant is fitted."""

    @abstractmethod
    def load_data(self, cfg: Any, log: Log, *, test: bool = True) -> Any:
        """The splits of ``cfg`` (``test=False``: never load the test split)."""

    @abstractmethod
    def reusable(self, data: Any, cfg: Any) -> bool:
        """Whether ``data``, loaded for an earlier variant, serves ``cfg`` too."""

    @abstractmethod
    def module(self, cfg: Any, data: Any) -> EpochLoggedModule:
        """A fresh LightningModule: the model and its objective."""

    @abstractmethod
    def batches(self, data: Any) -> L.LightningDataModule:
        """What Lightning takes its loaders from."""

    def callbacks(self, cfg: Any, data: Any) -> tuple[list[Callback], bool]:
        """The callbacks the objective needs and whether a validation metric is monitored."""
        return [], False

    @abstractmethod
    def load_module(self, path: Path) -> EpochLoggedModule:
        """The module saved in checkpoint ``path``."""

    @abstractmethod
    def evaluate(self, cfg: Any, module: Any, data: Any, checkpoint: Path, log: Log) -> Evaluation:
        """Test metrics and test embeddings of the checkpoint's ``module`` (on its device)."""

    @abstractmethod
    def baseline(self, cfg: Any, data: Any, log: Log) -> tuple[Any, Any] | None:
        """``(metrics, table row)`` of the raw-pixel baseline (each ``None`` where it cannot
        be made), or ``None`` where the baseline does not apply (no timing is recorded)."""

    def row(self, cfg: Any, result: VariantResult) -> dict[str, float]:
        """The comparison table's row of one variant."""
        return result.metrics

    @abstractmethod
    def table(
        self, cfg: Any, rows: Rows, results: list[VariantResult], baseline: Any
    ) -> str | None:
        """The comparison table (Markdown), or ``None`` where none is written."""

    @abstractmethod
    def plots(
        self, cfg: Any, run_dir: Path, results: list[VariantResult], data: Any, log: Log
    ) -> None:
        """The run's PNG plots (``eval.plots``)."""

    @abstractmethod
    def report(
        self,
        cfg: Any,
        run_dir: Path,
        results: list[VariantResult],
        rows: Rows,
        data: Any,
        log: Log,
    ) -> Path:
        """``report.html``; returns its path."""

    def variant(
        self,
        cfg: Any,
        run_dir: Path,
        *,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
        log: Log = print,
        data: Any = None,
        test: bool = True,
    ) -> VariantResult:
        """Fit one config into ``run_dir`` and evaluate its chosen checkpoint.

        ``test=False`` (hyperparameter search) stops after the fit: the result has the
        validation history (``history.json``) and the chosen checkpoint, no ``metrics``.
        ``metrics.json`` is written only after a complete run (atomically); an interrupted run
        raises :class:`RunInterrupted` and leaves ``checkpoints/last.ckpt`` for ``resume``.
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        if data is None:
            data = self.load_data(cfg, log, test=test)
            timings["data_s"] = time.perf_counter() - t0
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
        log(f"[{cfg.name}] {data.describe()}")

        module = self.module(cfg, data)
        own, has_val = self.callbacks(cfg, data)
        if not any(isinstance(c, ProgressLines) for c in callbacks):
            callbacks = [*callbacks, ProgressLines(cfg.name, log=log)]  # silent where log is
        trainer, checkpoint = build_trainer(
            cfg,
            run_dir,
            [*own, *callbacks],
            has_val=has_val,
            monitor=self.monitor,
            save_on_train_epoch_end=self.save_on_train_epoch_end,
        )
        ckpt_path = resume_path(run_dir, resume, cfg.name, log)
        batches = self.batches(data)
        outcome = fit(trainer, module, batches, ckpt_path, cfg.name, cfg.trainer.epochs, run_dir)
        timings["fit_s"] = outcome.fit_s
        if trainer.global_rank != 0:
            return _rank_result(cfg, run_dir, module.history)

        chosen = choose_checkpoint(run_dir, checkpoint, has_val, outcome.started)
        history = history_of(module, run_dir)
        if not test:
            atomic_write_json(run_dir / "history.json", history)
            timings["total_s"] = time.perf_counter() - t0
            return VariantResult(
                cfg.name, run_dir, {}, history, np.empty(0), np.empty(0), chosen, timings
            )
        if chosen.is_file():
            module = self.load_module(chosen)
            module.history = history
        # Test embeddings in float32 whatever the training precision, so that `dasl eval` of the
        # same checkpoint reports the same numbers.
        module = module.to(trainer.strategy.root_device)
        ev = self.evaluate(cfg, module, data, chosen, log)
        timings.update(ev.timings)
        timings["total_s"] = time.perf_counter() - t0
        write_results(run_dir, ev.metrics, history)
        log(
            f"[{cfg.name}] test: "
            + ", ".join(f"{k}={v:.4f}" for k, v in ev.metrics.items() if isinstance(v, float))
        )
        return VariantResult(
            cfg.name,
            run_dir,
            ev.metrics,
            history,
            ev.embeddings,
            ev.labels,
            chosen,
            timings,
            ev.ref_embeddings,
            ev.ref_labels,
        )

    def experiment(
        self,
        cfg: Any,
        *,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
        log: Log = print,
    ) -> ExperimentResult:
        """Every variant of ``cfg`` with the same seed and budget, then the comparison.

        Layout: ``<out_dir>/<name>/config.yaml``; one sub-folder per variant when ``compare`` is
        set (each with ``config.yaml``, ``metrics.json``, ``history.json``, ``checkpoints/``,
        ``logs/``), and at the top ``comparison.{json,md}``, ``timing.json``, the plots,
        ``report.html`` and, last (its presence marks a complete comparison), ``metrics.json``.
        """
        t0 = time.perf_counter()
        self.prepare(cfg)
        run_dir = Path(cfg.out_dir) / cfg.name
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
        runs = variants(cfg)
        single = cfg.compare is None
        timings: dict[str, dict[str, float]] = {}
        data: Any = None
        results: list[VariantResult] = []
        plan = RunPlan([v.trainer.epochs for _, v in runs])  # one ETA over every variant
        for name, vcfg in runs:
            vcfg = dataclasses.replace(vcfg, name=name)
            # Variants that differ only in their objective share the loaded data.
            if data is None or not self.reusable(data, vcfg):
                td = time.perf_counter()
                data = self.load_data(vcfg, log)
                timings[f"data ({name})"] = {"load_s": time.perf_counter() - td}
            res = self.variant(
                vcfg,
                run_dir if single else run_dir / name,
                resume=resume,
                callbacks=[*callbacks, ProgressLines(name, plan, log=log)],
                log=log,
                data=data,
            )
            results.append(res)
            timings[name] = res.timings
        if not results or results[0].checkpoint is None:  # not rank zero
            return ExperimentResult(run_dir, results, None, {})

        rows: Rows = {}
        baseline = None
        if cfg.eval.raw_baseline:
            tb = time.perf_counter()
            made = self.baseline(cfg, data, log)
            if made is not None:
                baseline, row = made
                if row is not None:
                    rows["raw pixels"] = row
                timings["raw-pixel baseline"] = {"metrics_s": time.perf_counter() - tb}
        for res in results:
            rows[res.name] = self.row(cfg, res)
        table = self.table(cfg, rows, results, baseline)
        if table is not None:
            atomic_write_json(run_dir / "comparison.json", rows)
            atomic_write_text(run_dir / "comparison.md", table + "\n")
            log("\n" + table)
        if cfg.eval.plots:
            tp = time.perf_counter()
            self.plots(cfg, run_dir, results, data, log)
            timings["plots"] = {"plots_s": time.perf_counter() - tp}
        tr = time.perf_counter()
        report = self.report(cfg, run_dir, results, rows, data, log)
        timings["report"] = {"report_s": time.perf_counter() - tr}
        timings["total"] = {"total_s": time.perf_counter() - t0}
        atomic_write_json(run_dir / "timing.json", timings)
        if not single:
            atomic_write_json(run_dir / "metrics.json", {r.name: r.metrics for r in results})
        log("\nWhere the time went:\n" + timing_table(timings))
        log(f"\nReport: {report}")
        log(f"\nRun folder: {run_dir}")
        return ExperimentResult(run_dir, results, baseline, timings)


def _rank_result(cfg: Any, run_dir: Path, history: list[dict[str, float]]) -> VariantResult:
    """What a rank other than zero returns: it evaluates nothing."""
    return VariantResult(cfg.name, run_dir, {}, history, np.empty(0), np.empty(0), None)


def history_columns(history: list[dict[str, float]], keys: Sequence[str]) -> dict[str, list[Any]]:
    """``{key: [value per epoch]}`` for ``epoch`` and each of ``keys`` logged in some epoch;
    an epoch without a value (no validation that epoch) is a gap (``None``) in the curve."""
    rows = sorted(history, key=lambda r: r["epoch"])
    return {k: [r.get(k) for r in rows] for k in ["epoch", *keys] if any(k in r for r in rows)}
