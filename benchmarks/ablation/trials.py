"""Training one trial (with its per-epoch probe) and the per-trial cache on disk."""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import Subset

from benchmarks.ablation.cells import comparable, normalized
from dasl.config import ExperimentConfig
from dasl.evaluation import embed, evaluate_embeddings
from dasl.run_data import MetricLearningData, eval_loader, load_split
from dasl.utils.io import atomic_write_json


class EpochProbe(L.Callback):
    """Per epoch: MAP@R on a fixed subset of the *training* images (eval transform), and the
    pure optimizer-step time (``on_train_batch_start`` to ``_end``; data loading excluded).

    The train-class curve next to the validation-class one is what shows overfitting: the
    first keeps rising while the second peaks.
    """

    def __init__(self, probe: Any, cfg: ExperimentConfig) -> None:
        self.probe, self.cfg = probe, cfg
        self.rows: list[dict[str, float]] = []
        self.step_times: list[float] = []
        self._t = 0.0

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, idx: int) -> None:
        self.step_times.append(time.perf_counter() - self._t)

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        was_training = module.training
        emb, lab = embed(module, eval_loader(self.probe, self.cfg.data), module.device)
        module.train(was_training)
        m = evaluate_embeddings(emb, lab, (1,), self.cfg.eval.distance, nmi=False)
        self.rows.append(
            {"epoch": float(trainer.current_epoch), "map@r": m["map@r"], "recall@1": m["recall@1"]}
        )


def probe_subset(
    cfg: ExperimentConfig, normalization: Any, per_class: int, classes: int | None
) -> Subset:
    """The first ``per_class`` training images of each of the first ``classes`` training
    classes (all when ``None``), with the evaluation transform.

    Loaded with the training split's own cap, so every probe image is one the model trains
    on; ``classes`` = the number of validation classes gives the probe the validation set's
    shape, so that the two MAP@R curves are comparable.
    """
    dcfg = dataclasses.replace(cfg.data, eval_max_per_class=cfg.data.max_per_class)
    ds = load_split(dcfg, cfg.data.train_split, False, cfg.seed, normalization)
    labels = np.asarray(ds.labels)
    kept = np.unique(labels)[:classes]
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in kept])
    return Subset(ds, np.sort(keep).tolist())


class Runner:
    """Trains trials, caching data per (seed, data config) and results per trial on disk.

    ``known``: trial records of a committed run summary (``{trial id: record}``), and
    ``known_raw`` its raw-pixel record, consulted when the disk cache has no match, so that a
    report rebuilds without the cache. ``used`` collects every record handed out (the trials a
    report is made from) and ``raw`` the raw-pixel record: the next summary.
    """

    def __init__(
        self,
        cache_dir: Path,
        probe_per_class: int,
        log: Callable[[str], None] = print,
        known: dict[str, dict[str, Any]] | None = None,
        known_raw: dict[str, Any] | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.probe_per_class = probe_per_class
        self.log = log
        self.known = known or {}
        self.known_raw = known_raw
        self.used: dict[str, dict[str, Any]] = {}
        self.raw: dict[str, Any] | None = None
        self._data: dict[Any, tuple[MetricLearningData, Subset]] = {}

    def raw_pixels(self, cfg: ExperimentConfig) -> dict[str, Any] | None:
        """Test metrics of the flattened raw pixels (the no-learning reference), cached."""
        self.raw = self._raw_pixels(cfg)
        return self.raw

    def _raw_pixels(self, cfg: ExperimentConfig) -> dict[str, Any] | None:
        from dasl.evaluation import raw_pixels
        from dasl.plots import interclass_distance_stats

        path = self.cache_dir / "raw_pixels.json"
        data = comparable(cfg)["data"]
        if path.is_file():
            rec = json.loads(path.read_text())
            if rec.get("data") == data:
                return rec
        if self.known_raw is not None and self.known_raw.get("data") == data:
            return self.known_raw
        norm = MetricLearningData.normalization_for(cfg)
        raw = raw_pixels(load_split(cfg.data, cfg.data.test_split, False, cfg.seed, norm))
        if raw is None:
            return None
        metrics = evaluate_embeddings(raw[0], raw[1], tuple(cfg.eval.ks), cfg.eval.distance)
        stats = interclass_distance_stats(raw[0], raw[1], seed=cfg.seed)
        rec = {
            "data": data,
            "test": {k: float(v) for k, v in metrics.items() if isinstance(v, float)},
            "interclass": {k: float(stats[k]) for k in ("mean", "std", "cv")},
        }
        atomic_write_json(path, rec)
        return rec

    def cached(self, tid: str, cfg: ExperimentConfig) -> dict[str, Any] | None:
        """The record of trial ``tid`` if one with this very config (:func:`comparable`) is in
        the disk cache or, failing that, among the ``known`` records; else ``None``."""
        want = comparable(cfg)
        path = self.cache_dir / f"{tid}.json"
        rec = json.loads(path.read_text()) if path.is_file() else None
        if rec is None or normalized(rec.get("config") or {}) != want:
            rec = self.known.get(tid)
            if rec is None or normalized(rec.get("config") or {}) != want:
                return None
        self.used[tid] = rec
        return rec

    def run(self, tid: str, cfg: ExperimentConfig) -> dict[str, Any]:
        hit = self.cached(tid, cfg)
        if hit is not None:
            return hit
        from dasl.plots import interclass_distance_stats
        from dasl.training.run import train_variant

        key = (cfg.seed, repr(cfg.data))
        if key not in self._data:
            norm = MetricLearningData.normalization_for(cfg)
            data = MetricLearningData(cfg.data, cfg.seed, norm)
            n_val = len(np.unique(np.asarray(data.val.labels))) if data.val is not None else None
            probe = probe_subset(cfg, norm, self.probe_per_class, n_val)
            self._data[key] = (data, probe)
        data, probe = self._data[key]
        callback = EpochProbe(probe, cfg)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = train_variant(
                cfg, Path(tmp) / cfg.name, log=lambda s: None, data=data, callbacks=[callback]
            )
        seconds = time.perf_counter() - t0
        val = {int(r["epoch"]): r["val/map@r"] for r in res.history if "val/map@r" in r}
        train = {int(r["epoch"]): r["map@r"] for r in callback.rows}
        # ModelCheckpoint keeps the first epoch with the maximal validation MAP@R.
        best_epoch = max(sorted(val), key=lambda e: val[e]) if val else max(train, default=0)
        stats = interclass_distance_stats(res.embeddings, res.labels, seed=cfg.seed)
        test = {k: float(v) for k, v in res.metrics.items() if isinstance(v, float)}
        rec = {
            "trial": tid,
            "config": comparable(cfg),
            "test": test,
            "epochs": [
                {"epoch": e, "train_map@r": train.get(e), "val_map@r": val.get(e)}
                for e in sorted(set(val) | set(train))
            ],
            "best_epoch": best_epoch,
            "val_map@r": val.get(best_epoch, float("nan")),
            "train_map@r": train.get(best_epoch, float("nan")),
            "gap_map@r": train.get(best_epoch, float("nan")) - test["map@r"],
            # Per-epoch means of the logged training terms (loss, base, regularizer, and the
            # squared-l2 DAR decomposition of #18: class-mean, within-class, orientation).
            "train_terms": [
                {
                    k: v
                    for k, v in r.items()
                    if k == "epoch" or (k.startswith("train/") and not k.endswith("_s"))
                }
                for r in res.history
                if any(k.startswith("train/") for k in r)
            ],
            "interclass": {k: float(stats[k]) for k in ("mean", "std", "cv")},
            "step_s": statistics.median(callback.step_times) if callback.step_times else None,
            "steps": len(callback.step_times),
            "seconds": seconds,
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        atomic_write_json(self.cache_dir / f"{tid}.json", rec)
        self.used[tid] = rec
        return rec
