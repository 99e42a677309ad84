"""Self-supervised pretraining runs (``dasl pretrain``): the :class:`Pretraining` setting of
the one run pipeline (:mod:`dasl.training.pipeline`), fitted on unlabelled two-view batches
and evaluated on the frozen backbone (weighted k-NN, linear probe)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from dasl.config import variants
from dasl.data.ssl_transforms import probe_transform
from dasl.evaluation import raw_pixels
from dasl.reporting.tables import markdown_table, table_cells
from dasl.run_data import SSLData
from dasl.ssl_config import PretrainConfig
from dasl.training import pipeline
from dasl.training.pipeline import Evaluation, Setting, VariantResult
from dasl.training.run_folder import Log
from dasl.training.ssl_callbacks import BankCache, ClusterRefresh, KNNMonitor, embed_views
from dasl.training.ssl_module import SSLModule, load_ssl_module

MONITOR = "val/knn_top1"


# The one pipeline's results (#17); these names are kept for the callers of run_pretrain.
PretrainResult = VariantResult
PretrainExperiment = pipeline.ExperimentResult


class _TwoViewBatches(pipeline.EpochBatches):
    """Hands Lightning the two-view loader of the epoch about to be trained, per rank."""

    def __init__(self, data: SSLData) -> None:
        super().__init__(data.seed, data.two_view_loader)
        self.data = data


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
        from dasl.metrics.linear_eval import linear_eval

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


def _purity_curves(results: list[VariantResult]) -> dict[str, dict[str, list[float]]]:
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


class Pretraining(Setting):
    """Two-view self-supervised learning; k-NN and linear probes of the frozen backbone.

    ``best.ckpt`` is the epoch with the highest k-NN top-1 on the validation split (carved
    from the training images; ``last.ckpt`` without one). The run folder adds the plots
    ``embedding_map.png`` (t-SNE of the test features by true class), ``knn_curves.png``
    (validation k-NN per epoch, loss terms) and, with DASL-cu, ``cluster_purity.png`` (NMI of
    the pseudo-labels per clustering).
    """

    monitor = MONITOR
    # The k-NN monitor logs at the end of the training epoch (there is no validation loop).
    save_on_train_epoch_end = True

    def load_data(self, cfg: PretrainConfig, log: Log, *, test: bool = True) -> SSLData:
        return SSLData(cfg)

    def reusable(self, data: SSLData, cfg: PretrainConfig) -> bool:
        return data.key == (cfg.data, cfg.seed)

    def module(self, cfg: PretrainConfig, data: SSLData) -> SSLModule:
        return SSLModule(cfg, num_train=len(data.train))

    def batches(self, data: SSLData) -> _TwoViewBatches:
        return _TwoViewBatches(data)

    def callbacks(self, cfg: PretrainConfig, data: SSLData) -> tuple[list[Callback], bool]:
        ecfg, ccfg = cfg.eval, cfg.clustering
        bank = BankCache(data.eval_loader(data.bank()))
        # The clustering bank is the pretraining set itself (pseudo-labels are indexed by it);
        # it is the k-NN bank too unless a separate labelled split is set (STL-10).
        cluster_bank = (
            bank
            if data.labelled is data.train
            else BankCache(data.eval_loader(data.cluster_bank()))
        )
        has_val = data.val is not None and ecfg.monitor_every > 0
        own: list[Callback] = []
        if has_val:
            assert data.val is not None
            val_loader = data.eval_loader(data.evaluated(data.val))
            own.append(
                KNNMonitor(
                    bank, val_loader, ecfg.knn_k[0], ecfg.knn_temperature, ecfg.monitor_every
                )
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
        return own, has_val

    def load_module(self, path: Path) -> SSLModule:
        return load_ssl_module(path)

    def evaluate(
        self, cfg: PretrainConfig, module: SSLModule, data: SSLData, checkpoint: Path, log: Log
    ) -> Evaluation:
        t0 = time.perf_counter()
        metrics, test, test_labels = evaluate_backbone(module, data, cfg)
        metrics["checkpoint_epoch"] = float(_epoch_of(checkpoint))
        return Evaluation(metrics, test, test_labels, {"eval_s": time.perf_counter() - t0})

    def baseline(
        self, cfg: PretrainConfig, data: SSLData, log: Log
    ) -> tuple[dict[str, float] | None, dict[str, float] | None]:
        made = raw_pixel_baseline(data, cfg)
        return made, made

    def table(
        self, cfg: PretrainConfig, rows: pipeline.Rows, results: list[VariantResult], baseline: Any
    ) -> str:
        return markdown_table(rows, comparison_columns(rows, cfg.eval.knn_k))

    def plots(
        self,
        cfg: PretrainConfig,
        run_dir: Path,
        results: list[VariantResult],
        data: SSLData,
        log: Log,
    ) -> None:
        from dasl.plots import plot_embedding_maps, plot_training_curves

        names = list(getattr(data.test, "class_names", []) or []) or None
        plot_embedding_maps(
            {r.name: r.embeddings for r in results},
            results[0].labels,
            run_dir / "embedding_map.png",
            class_names=names,
            max_points=cfg.eval.tsne_points,
            seed=cfg.seed,
        )
        keys = [k for k, _ in CURVE_PANELS]
        plot_training_curves(
            {r.name: pipeline.history_columns(r.history, keys) for r in results},
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

    def report(
        self,
        cfg: PretrainConfig,
        run_dir: Path,
        results: list[VariantResult],
        rows: pipeline.Rows,
        data: SSLData,
        log: Log,
    ) -> Path:
        """``report.html``: the k-NN / linear table, the plots, and the retrieval view of the
        frozen test features (per-class Recall@1 and the gallery within the test split)."""
        from dasl.reporting.run_report import RetrievalInput, write_results_report

        return write_results_report(
            run_dir,
            f"dasl pretrain: {cfg.name}",
            {r.name: RetrievalInput(r.embeddings, r.labels) for r in results},
            query_dataset=data.test,
            table=table_cells(rows, comparison_columns(rows, cfg.eval.knn_k)),
            summary=[
                f"Test split: {data.test.describe()}. The table: k-NN and linear probes on the "
                "frozen features; below, the test features as a retrieval model (leave-one-out)."
            ],
            distance="cosine",
            seed=cfg.seed,
        )


_SETTING = Pretraining()
pretrain_variant = _SETTING.variant
"""One variant into its run folder, evaluated (:meth:`Setting.variant`)."""
run_pretrain = _SETTING.experiment
"""Every variant of a config, then the comparison (:meth:`Setting.experiment`)."""
