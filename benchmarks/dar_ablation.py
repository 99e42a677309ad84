"""DAR ablation (issue #7, section 3): does difference alignment help, and in which reading?

Grid: base loss {N-pair, ProxyAnchor} x difference {signed, abs, ordered (where the library
has it)} x measure {l2, l1, l2sq} x estimator {exact, chain}, plus the bare base losses.

Protocol (MLRC-style, test never used for any choice):

1. Screening, seed 0. Every run trains on the training classes minus the validation classes
   (``data.train_split``, class-disjoint carve-out ``data.val_by=classes``) and keeps the
   checkpoint of the epoch with the best validation-class MAP@R. Each DAR cell is trained
   for every lambda of a log grid; the baselines (lambda 0) for every learning rate of a
   grid of the same size, so both get the same tuning effort, budget and checkpoint
   selection. A cell's score is the best validation MAP@R over its grid.
2. Finalists: per base loss, the best cell of each of the ``--finalists`` best difference
   types (ranked by validation MAP@R), so that the finals compare readings. They are also
   trained at the ``--tune-lambdas`` (a finer grid), and with ``--extend-edges N`` a
   finalist whose best lambda is at an edge of the values tried gets up to N more past it.
3. Finals: finalists and baselines with their chosen setting, seeds 0..S-1 (seed 0 is the
   screening run itself: same config), evaluated once on the unseen test classes.

Reported per run: test R@1 / MAP@R / NMI, inter-class distance mean / std / CV on the
test classes, train-class MAP@R at the chosen checkpoint minus test MAP@R (the gap), and
the time per optimizer step (forward + backward + step, data loading excluded). Per final:
mean and 95% t-interval over seeds, and the paired difference to the base loss (same seed).

Every finished run is cached as one JSON file under
``benchmarks/results/dar_ablation_cache/<dataset>/`` (with its full config: a changed
config reruns), so a killed benchmark continues where it stopped. ``--report-only`` builds
the tables, plots and ``benchmarks/results/dar_ablation.json`` from the cache alone.

    python -m benchmarks.dar_ablation --datasets glyphs fashion-mnist
    python -m benchmarks.dar_ablation --plan            # count the runs, nothing trains
    python -m benchmarks.dar_ablation --report-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import Subset

from benchmarks.common import OUT_DIR, ci95, environment, write_results
from dasl.config import ExperimentConfig, apply_overrides, load_config, parse_override
from dasl.dar.measures import DIFFERENCES as LIBRARY_DIFFERENCES
from dasl.training.datamodule import MetricLearningData, eval_loader, load_split
from dasl.training.evaluate import embed, evaluate_embeddings
from dasl.utils.io import atomic_write_json, atomic_write_text

BASES = ("npair", "proxyanchor")
"""The poster's two base losses: the default of ``--bases``."""
ALL_BASES = (*BASES, "arcface", "multisimilarity", "contrastive", "supcon")
"""Every base loss ``--bases`` accepts (#18: beyond the poster's two)."""
BASE_TITLES = {
    "npair": "N-pair",
    "proxyanchor": "ProxyAnchor",
    "arcface": "ArcFace",
    "multisimilarity": "MultiSimilarity",
    "contrastive": "Contrastive",
    "supcon": "SupCon",
}
CONTROLS = ("compact_inter", "batch_variance", "within_scatter")
"""Compaction controls (issue #18; ``dasl.dar.controls``): cells ``BASE/control/KIND``."""
BASE_OPTIONS = ("alpha", "margin", "scale")
"""Loss options a base may carry, ``proxyanchor~alpha16~margin0.2`` (issue #18)."""
DIFFERENCES = ("signed", "abs", "ordered")
MEASURES = ("l2", "l1", "l2sq")
ESTIMATORS = ("exact", "chain")
REPO = Path(__file__).resolve().parent.parent

COMMON = {
    "eval.plots": False,
    "eval.raw_baseline": False,
    "eval.ks": [1, 2, 4, 8],
    "trainer.progress_bar": False,
    "trainer.log_every_n_steps": 5,
    "data.val_by": "classes",
    "data.val_split": "val",
}
"""Every run: no plots or raw-pixel baseline per run, class-disjoint validation carve-out."""

PRESETS: dict[str, dict[str, Any]] = {
    # CUB-like: few training classes (96 of the 969: val_fraction 0.9 hands the other 873 to
    # validation, which makes lambda selection far less noisy than 97 validation classes),
    # 8 faces each, no glyph augmentation, 400 steps. Measured with ProxyAnchor at its tuned
    # lr 1e-2: train-class MAP@R 79 -> 99.9 while validation-class MAP@R levels off at 67.
    "glyphs": {
        "config": "configs/dml/glyphs_proxyanchor.yaml",
        "overrides": {
            "data.name": "glyphs",
            "data.val_fraction": 0.9,
            "data.transform": "small",
            "data.image_size": None,
            "data.in_channels": 1,
            "data.max_per_class": 8,
            "data.eval_max_per_class": 10,
            "data.batch_size": 120,
            "data.m_per_class": 4,
            "data.batches_per_epoch": 50,
            "model.backbone": "small_cnn",
            "model.embedding_dim": 128,
            "model.pretrained": False,
            "trainer.epochs": 8,
            "optim.warmup_epochs": 0.5,
        },
        "probe_per_class": 8,
    },
    # Train classes 0, 2, 4 (100 images each, so the baseline overfits), validation classes
    # 6, 8, validation and test (the odd classes) capped at 300 images per class.
    "fashion-mnist": {
        "config": "packaged:fmnist_demo",
        "overrides": {
            "data.name": "fashion-mnist",
            "data.val_fraction": 0.4,
            "data.max_per_class": 100,
            "data.eval_max_per_class": 300,
            "data.batch_size": 60,
            "data.m_per_class": 20,
            "data.batches_per_epoch": 25,
            "trainer.epochs": 6,
            "optim.warmup_epochs": 0.5,
        },
        "probe_per_class": 100,
    },
    # sklearn's digits: only for the smoke test and trying the harness.
    "digits": {
        "config": "packaged:fmnist_demo",
        "overrides": {
            "data.name": "digits",
            "data.val_fraction": 0.4,
            "data.eval_max_per_class": None,
            "data.batch_size": 30,
            "data.m_per_class": 10,
            "data.batches_per_epoch": 4,
            "trainer.epochs": 2,
            "optim.warmup_epochs": 0.0,
        },
        "probe_per_class": 40,
    },
}

# ---------------------------------------------------------------------- statistics


def paired_difference(
    treated: dict[int, float], control: dict[int, float]
) -> tuple[float, float, float, int]:
    """``d_s = treated[s] - control[s]`` over the seeds both have: mean, std, CI half-width, n."""
    seeds = sorted(set(treated) & set(control))
    if not seeds:
        return float("nan"), float("nan"), float("nan"), 0
    mean, std, half = ci95([treated[s] - control[s] for s in seeds])
    return mean, std, half, len(seeds)


# ---------------------------------------------------------------------- the grid


def parse_base(base: str) -> tuple[str, dict[str, float]]:
    """``"proxyanchor~alpha16~margin0.2"`` -> ``("proxyanchor", {"alpha": 16, "margin": 0.2})``."""
    name, *opts = base.split("~")
    options: dict[str, float] = {}
    for opt in opts:
        key = next((k for k in BASE_OPTIONS if opt.startswith(k)), None)
        if key is None:
            raise ValueError(f"base {base!r}: unknown option {opt!r} (known: {BASE_OPTIONS})")
        options[key] = float(opt[len(key) :])
    return name, options


def base_name(name: str, options: dict[str, float]) -> str:
    """The inverse of :func:`parse_base` (options in ``BASE_OPTIONS`` order)."""
    return "".join([name] + [f"~{k}{options[k]:g}" for k in BASE_OPTIONS if k in options])


def base_title(base: str) -> str:
    name, options = parse_base(base)
    extra = ", ".join(f"{k} {v:g}" for k, v in options.items())
    return BASE_TITLES[name] + (f" ({extra})" if extra else "")


@dataclass(frozen=True)
class Cell:
    """One reading of DAR on one base loss; ``difference is None`` is the bare base loss;
    ``control`` (with ``difference is None``) a compaction control in DAR's place."""

    base: str
    difference: str | None = None
    measure: str | None = None
    estimator: str | None = None
    control: str | None = None

    @property
    def is_baseline(self) -> bool:
        return self.difference is None and self.control is None

    @property
    def is_control(self) -> bool:
        return self.control is not None

    @property
    def key(self) -> str:
        if self.is_control:
            return f"{self.base}/control/{self.control}"
        if self.is_baseline:
            return f"{self.base}/baseline"
        return f"{self.base}/{self.difference}/{self.measure}/{self.estimator}"

    @property
    def title(self) -> str:
        if self.is_control:
            return f"{base_title(self.base)} + {self.control}"
        if self.is_baseline:
            return base_title(self.base)
        return f"{base_title(self.base)} + DAR {self.difference} {self.measure} {self.estimator}"

    @classmethod
    def from_key(cls, key: str) -> Cell:
        parts = key.split("/")
        if parts[1] == "control":
            return cls(parts[0], control=parts[2])
        return cls(parts[0]) if parts[1] == "baseline" else cls(*parts)


def grid(
    bases: Sequence[str],
    differences: Sequence[str],
    measures: Sequence[str],
    estimators: Sequence[str],
    chain_measures: Sequence[str] | None,
) -> list[Cell]:
    """Baselines first, then every (difference, measure, estimator) cell of each base loss.

    ``chain_measures``: the measures on which the chain estimator is screened (``None``: all);
    the exact estimator is screened on every measure.
    """
    cells = [Cell(b) for b in bases]
    for b in bases:
        for d in differences:
            for m in measures:
                for e in estimators:
                    if e == "chain" and chain_measures is not None and m not in chain_measures:
                        continue
                    cells.append(Cell(b, d, m, e))
    return cells


def trial_config(
    base_cfg: ExperimentConfig, cell: Cell, value: float, seed: int, lr: float | None = None
) -> ExperimentConfig:
    """The config of ``cell`` at tuning value ``value`` (lambda for DAR, lr for a baseline);
    ``lr`` (DAR cells): the learning rate, else the config's."""
    name, options = parse_base(cell.base)
    overrides: dict[str, Any] = {"loss.name": name, "seed": seed}
    overrides.update({f"loss.{k}": v for k, v in options.items()})
    if cell.is_baseline:
        overrides.update({"dar.lam": 0.0, "optim.lr": value})
    elif cell.is_control:
        if lr is not None:
            overrides["optim.lr"] = lr
        overrides.update({"dar.lam": value, "dar.kind": cell.control})
    else:
        if lr is not None:
            overrides["optim.lr"] = lr
        overrides.update(
            {
                "dar.lam": value,
                "dar.difference": cell.difference,
                "dar.measure": cell.measure,
                "dar.estimator": cell.estimator,
            }
        )
    name = cell.key.replace("/", "_") + f"_v{value:g}_s{seed}"
    return dataclasses.replace(apply_overrides(base_cfg, overrides), name=name)


def trial_id(cell: Cell, value: float, seed: int) -> str:
    return cell.key.replace("/", "__") + f"__v{value:g}__s{seed}"


# ---------------------------------------------------------------------- one run


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
    """Trains trials, caching data per (seed, data config) and results per trial on disk."""

    def __init__(
        self, cache_dir: Path, probe_per_class: int, log: Callable[[str], None] = print
    ) -> None:
        self.cache_dir = cache_dir
        self.probe_per_class = probe_per_class
        self.log = log
        self._data: dict[Any, tuple[MetricLearningData, Subset]] = {}

    def raw_pixels(self, cfg: ExperimentConfig) -> dict[str, Any] | None:
        """Test metrics of the flattened raw pixels (the no-learning reference), cached."""
        from dasl.plots import interclass_distance_stats
        from dasl.training.evaluate import raw_pixels

        path = self.cache_dir / "raw_pixels.json"
        data = _comparable(cfg)["data"]
        if path.is_file():
            rec = json.loads(path.read_text())
            if rec.get("data") == data:
                return rec
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
        path = self.cache_dir / f"{tid}.json"
        if not path.is_file():
            return None
        rec = json.loads(path.read_text())
        return rec if _normalized(rec.get("config") or {}) == _comparable(cfg) else None

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
            "config": _comparable(cfg),
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
        return rec


LATER_KEYS = {("dar", "kind"): "dar", ("loss", "scale"): None, ("dar", "backend"): "auto"}
"""Config keys added after runs were cached (#18, #19), with the default that leaves a run as it
was: dropped from cache records at that default, so the earlier runs keep matching."""


def _normalized(d: dict[str, Any]) -> dict[str, Any]:
    for (section, key), default in LATER_KEYS.items():
        if key in d.get(section, {}) and d[section][key] == default:
            del d[section][key]
    return d


def _comparable(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as stored in the cache (JSON round-trip, so lists and tuples compare),
    without the :data:`LATER_KEYS` at their defaults."""
    return _normalized(json.loads(json.dumps(cfg.to_dict())))


# ---------------------------------------------------------------------- the protocol


@dataclass
class Plan:
    dataset: str
    base_cfg: ExperimentConfig
    cells: list[Cell]
    lambdas: list[float]
    lrs: list[float]
    seeds: int
    finalists: int
    measure_stage: list[str] = dataclasses.field(default_factory=list)
    tune_lambdas: list[float] = dataclasses.field(default_factory=list)
    """Extra lambdas tried (seed 0) for the finalists only, after screening every cell."""
    dar_at_baseline_lr: bool = False
    """DAR cells train at the learning rate their base loss's baseline chose on validation."""
    final_seeds: list[int] | None = None
    """The final seeds this process trains (None: 0 .. seeds-1); several processes sharing a
    cache split the finals this way, and ``--report-only`` then reads all of them."""
    extend_edges: int = 0
    """Up to this many lambdas tried past a finalist's grid edge while its best is there."""
    cached_lambdas: list[float] = dataclasses.field(default_factory=list)
    """Lambdas a tuned cell (finalist or control) takes from the cache when trained there
    earlier (never trained for this): its lambda is the best over every value it has."""

    def values(self, cell: Cell) -> list[float]:
        return self.lrs if cell.is_baseline else self.lambdas

    @property
    def control_keys(self) -> list[str]:
        """Control cells (#18): each tuned like a finalist and always in the finals."""
        return [c.key for c in self.cells if c.is_control]


def base_config(dataset: str, extra: dict[str, Any]) -> ExperimentConfig:
    preset = PRESETS[dataset]
    path = preset["config"]
    if path and path.startswith("packaged:"):
        cfg = load_config(packaged=path.split(":", 1)[1])
    else:
        cfg = load_config(REPO / path if path and (REPO / path).is_file() else None)
    cfg = dataclasses.replace(cfg, compare=None)
    return apply_overrides(cfg, {**COMMON, **preset["overrides"], **extra})


def select(
    plan: Plan, screen: dict[str, dict[float, dict[str, Any]]]
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Per cell the tuning value with the best validation MAP@R; per base the finalists.

    Finalists of a base loss: the best cell of each difference type, the ``plan.finalists``
    best difference types (by validation MAP@R; ties keep grid order).
    """
    chosen: dict[str, float] = {}
    for key, runs in screen.items():
        if runs:
            chosen[key] = max(runs, key=lambda v: runs[v]["val_map@r"])
    finalists: dict[str, list[str]] = {}
    for base in {c.base for c in plan.cells}:
        best_by_diff: dict[str, tuple[float, str]] = {}
        for cell in plan.cells:
            if cell.base != base or cell.is_baseline or cell.is_control or cell.key not in chosen:
                continue
            score = screen[cell.key][chosen[cell.key]]["val_map@r"]
            if cell.difference not in best_by_diff or score > best_by_diff[cell.difference][0]:
                best_by_diff[cell.difference] = (score, cell.key)
        ranked = sorted(best_by_diff.values(), key=lambda t: -t[0])
        finalists[base] = [k for _, k in ranked[: plan.finalists]]
    return chosen, finalists


def best_difference(
    plan: Plan, screen: dict[str, dict[float, dict[str, Any]]], base: str
) -> str | None:
    """The difference type of ``base``'s best screened cell (validation MAP@R)."""
    best: tuple[float, str] | None = None
    for cell in plan.cells:
        if cell.base != base or cell.is_baseline or cell.is_control:
            continue
        for rec in screen.get(cell.key, {}).values():
            if best is None or rec["val_map@r"] > best[0]:
                best = (rec["val_map@r"], str(cell.difference))
    return None if best is None else best[1]


Fetch = Callable[[str, ExperimentConfig], "dict[str, Any] | None"]


def execute(
    plan: Plan, fetch: Fetch, log: Callable[[str], None] = print, lookup: Fetch | None = None
) -> dict[str, Any]:
    """Screening, selection and finals of one dataset; returns everything the report needs.

    ``fetch(trial_id, config)`` trains a trial (or reads it from the cache); it may return
    ``None`` (report from a partial cache), and the trial is then left out. When
    ``plan.measure_stage`` is set (``"measure/estimator"`` items), those variants are screened
    after the finals (seed 0) on each base loss's best difference type only: screening rows,
    never finalists.
    """
    screen: dict[str, dict[float, dict[str, Any]]] = {}
    base_lr: dict[str, float] = {}

    def config(cell: Cell, v: float, seed: int) -> ExperimentConfig:
        return trial_config(plan.base_cfg, cell, v, seed, base_lr.get(cell.base))

    def screen_cells(cells: list[Cell]) -> None:
        for cell in cells:
            screen.setdefault(cell.key, {})
            for v in plan.values(cell):
                rec = fetch(trial_id(cell, v, 0), config(cell, v, 0))
                if rec is not None:
                    screen[cell.key][v] = rec
                    log(_progress(plan.dataset, "screen", cell, v, 0, rec))

    # Baselines first: with ``dar_at_baseline_lr`` the DAR cells of a base loss train at the
    # learning rate its baseline chose (a regularizer added to a tuned baseline).
    screen_cells([c for c in plan.cells if c.is_baseline])
    if plan.dar_at_baseline_lr:
        for key, runs in screen.items():
            if runs:
                base_lr[Cell.from_key(key).base] = max(runs, key=lambda v: runs[v]["val_map@r"])
    screen_cells([c for c in plan.cells if not c.is_baseline])
    chosen, finalists = select(plan, screen)
    # The controls (#18) are tuned exactly like the finalists and always run the finals.
    tuned = [k for b in sorted(finalists) for k in finalists[b]] + [
        k for k in plan.control_keys if screen.get(k)
    ]
    if plan.tune_lambdas:
        # Two-stage tuning: every cell screened on ``lambdas``, the finalists (the cells
        # whose seeds are paid for) also on ``tune_lambdas``; the finalist set stays fixed.
        for key in tuned:
            cell = Cell.from_key(key)
            for v in plan.tune_lambdas:
                if v in screen[key]:
                    continue
                rec = fetch(trial_id(cell, v, 0), config(cell, v, 0))
                if rec is not None:
                    screen[key][v] = rec
                    log(_progress(plan.dataset, "tune", cell, v, 0, rec))
        chosen = select(plan, screen)[0]
    if plan.extend_edges:
        # A best lambda at the edge of the values tried says the optimum may lie outside:
        # step along the 1-3 series past that edge until the best is inside (or the budget).
        for key in tuned:
            cell = Cell.from_key(key)
            for _ in range(plan.extend_edges):
                runs = screen[key]
                best = max(runs, key=lambda v: runs[v]["val_map@r"])
                if len(runs) < 2 or min(runs) < best < max(runs):
                    break
                v = series_step(best, up=best == max(runs))
                rec = fetch(trial_id(cell, v, 0), config(cell, v, 0))
                if rec is None:
                    break
                runs[v] = rec
                log(_progress(plan.dataset, "edge", cell, v, 0, rec))
        chosen = select(plan, screen)[0]
    if plan.cached_lambdas and lookup is not None:
        for key in tuned:
            cell = Cell.from_key(key)
            for v in plan.cached_lambdas:
                if v not in screen[key]:
                    rec = lookup(trial_id(cell, v, 0), config(cell, v, 0))
                    if rec is not None:
                        screen[key][v] = rec
                        log(_progress(plan.dataset, "cached", cell, v, 0, rec))
        chosen = select(plan, screen)[0]
    finals: dict[str, dict[int, dict[str, Any]]] = {}
    final_cells = [Cell(b) for b in sorted(finalists)] + [Cell.from_key(k) for k in tuned]
    # Seed-major, so that a run stopped early leaves every final cell with the same seeds.
    for seed in plan.final_seeds if plan.final_seeds is not None else range(plan.seeds):
        for cell in final_cells:
            if cell.key not in chosen:
                continue
            v = chosen[cell.key]
            rec = fetch(trial_id(cell, v, seed), config(cell, v, seed))
            if rec is not None:
                finals.setdefault(cell.key, {})[seed] = rec
                log(_progress(plan.dataset, "final", cell, v, seed, rec))
    if plan.measure_stage:
        # Secondary question, after the finals so that a short budget never costs their seeds.
        extra = []
        for base in sorted({c.base for c in plan.cells}):
            diff = best_difference(plan, screen, base)
            if diff is not None:
                for variant in plan.measure_stage:
                    measure, estimator = variant.split("/")
                    extra.append(Cell(base, diff, measure, estimator))
        extra = [c for c in extra if c not in plan.cells]
        plan.cells = plan.cells + extra
        screen_cells(extra)
        chosen.update(select(plan, screen)[0])
    return {"screen": screen, "chosen": chosen, "finalists": finalists, "finals": finals}


def parse_base_grid(items: Sequence[str]) -> dict[str, list[float]]:
    """``["alpha=8,16", "margin=0,0.2"]`` -> ``{"alpha": [8.0, 16.0], "margin": [0.0, 0.2]}``."""
    out: dict[str, list[float]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or key not in BASE_OPTIONS:
            raise ValueError(
                f"--base-grid {item!r}: expected OPTION=V1,V2 with OPTION in {BASE_OPTIONS}"
            )
        try:
            out[key] = [float(v) for v in values.split(",") if v]
        except ValueError:
            raise ValueError(f"--base-grid {item!r}: values must be numbers") from None
    return out


BASE_DEFAULTS = {
    "proxyanchor": {"alpha": 32.0, "margin": 0.1},
    "arcface": {"margin": 28.6, "scale": 64.0},
}
"""PML's defaults, which ``build_base_loss`` uses when ``loss.alpha``/``margin``/``scale``
are unset: the untuned base is named without options (its cached runs keep their names)."""


def tune_bases(
    plan: Plan, base_grid: dict[str, list[float]], fetch: Fetch, log: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Tune each baseline cell's loss options on validation (seed 0, its first learning rate).

    Stage 1 moves one option at a time away from the defaults; stage 2 tries the best value of
    each option together when more than one option moved. The variant with the best validation
    MAP@R is chosen (ties: the first tried, the defaults first). The untuned base keeps its
    plain name, so its cached runs are reused.
    """
    return {
        c.base: _tune_base(plan, c.base, base_grid, fetch, log) for c in plan.cells if c.is_baseline
    }


def _tune_base(
    plan: Plan,
    base: str,
    base_grid: dict[str, list[float]],
    fetch: Fetch,
    log: Callable[[str], None],
) -> dict[str, Any]:
    lr = plan.lrs[0]
    name, fixed = parse_base(base)
    defaults = {**BASE_DEFAULTS.get(name, {}), **fixed}
    runs: dict[str, dict[str, Any]] = {}

    def variant(opts: dict[str, float]) -> str:
        return base_name(name, {k: v for k, v in opts.items() if defaults.get(k) != v})

    def trial(opts: dict[str, float]) -> float | None:
        b = variant(opts)
        if b not in runs:
            c = Cell(b)
            rec = fetch(trial_id(c, lr, 0), trial_config(plan.base_cfg, c, lr, 0))
            if rec is None:
                return None
            runs[b] = rec
            log(_progress(plan.dataset, "base", c, lr, 0, rec))
        return float(runs[b]["val_map@r"])

    trial(dict(defaults))
    moved: dict[str, float] = {}
    for key, values in base_grid.items():
        scored = {v: trial({**defaults, key: v}) for v in [defaults.get(key), *values]}
        scored = {v: sc for v, sc in scored.items() if v is not None and sc is not None}
        if scored:
            best = max(scored, key=lambda v: scored[v])
            if best != defaults.get(key):
                moved[key] = best
    if len(moved) > 1:
        trial({**defaults, **moved})
    chosen = max(runs, key=lambda b: runs[b]["val_map@r"]) if runs else base
    # As for a finalist's lambda: a chosen option at the edge of the values tried gets up to
    # ``plan.extend_edges`` steps past it (x2 for alpha and scale, the grid's last gap for
    # margin), the other options as chosen.
    for key in base_grid:
        for _ in range(plan.extend_edges):
            opts = {**defaults, **parse_base(chosen)[1]}
            tried = sorted({defaults.get(key), *base_grid[key]} - {None})
            tried = sorted(
                set(tried) | {parse_base(b)[1].get(key, defaults.get(key)) for b in runs}
            )
            v = opts[key]
            if len(tried) < 2 or tried[0] < v < tried[-1]:
                break
            up = v == tried[-1]
            nxt = tried[-2] if up else tried[1]
            step = (v * v / nxt) if key in ("alpha", "scale") else (2 * v - nxt)
            if key == "margin" and step < 0:
                break
            trial({**opts, key: round(step, 10)})
            chosen = max(runs, key=lambda b: runs[b]["val_map@r"])
    return {
        "chosen": chosen,
        "lr": lr,
        "val_map@r": {b: r["val_map@r"] for b, r in runs.items()},
        "test_map@r": {b: r["test"]["map@r"] for b, r in runs.items()},
    }


def series_step(v: float, up: bool) -> float:
    """The neighbour of ``v`` on the 1-3 series (..., 0.1, 0.3, 1, 3, 10, ...) above or below.

    Values off the series step to the nearest series value strictly beyond them.
    """
    # Parsed from text so that 0.3 is the float a user types (3 * 0.1 is 0.30000000000000004,
    # which would make a cached trial's config differ).
    series = [float(f"{m}e{e}") for e in range(-8, 9) for m in (1, 3)]
    if up:
        return next(x for x in series if x > v * (1 + 1e-9))
    return next(x for x in reversed(series) if x < v * (1 - 1e-9))


def _progress(
    dataset: str, stage: str, cell: Cell, v: float, seed: int, rec: dict[str, Any]
) -> str:
    what = "lr" if cell.is_baseline else "lambda"
    t = rec["test"]
    return (
        f"{time.strftime('%H:%M:%S')} {dataset} {stage} {cell.key} {what}={v:g} seed={seed}: "
        f"val MAP@R={rec['val_map@r']:.4f} (epoch {rec['best_epoch']}), "
        f"test R@1={t['recall@1']:.4f} MAP@R={t['map@r']:.4f}, "
        f"step {1000 * (rec['step_s'] or 0):.0f} ms, {rec['seconds']:.0f} s"
    )


# ---------------------------------------------------------------------- the report

REPORTED = (("recall@1", "R@1"), ("map@r", "MAP@R"), ("nmi", "NMI"))


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Means, CIs and paired differences of the finals; the screening table's numbers."""
    chosen, finals = result["chosen"], result["finals"]
    rows: dict[str, Any] = {}
    for key, by_seed in finals.items():
        cell = Cell.from_key(key)
        base_runs = finals.get(Cell(cell.base).key, {})
        row: dict[str, Any] = {"cell": key, "value": chosen[key], "seeds": sorted(by_seed)}
        for metric, _ in REPORTED:
            vals = {s: 100 * r["test"][metric] for s, r in by_seed.items()}
            row[metric] = list(ci95(list(vals.values())))
            if not cell.is_baseline:
                ctrl = {s: 100 * r["test"][metric] for s, r in base_runs.items()}
                row[f"delta_{metric}"] = list(paired_difference(vals, ctrl))
        for stat in ("mean", "std", "cv"):
            row[f"interclass_{stat}"] = list(
                ci95([r["interclass"][stat] for r in by_seed.values()])
            )
        row["gap_map@r"] = list(ci95([100 * r["gap_map@r"] for r in by_seed.values()]))
        steps = [r["step_s"] for r in by_seed.values() if r["step_s"]]
        row["step_ms"] = 1000 * statistics.median(steps) if steps else float("nan")
        rows[key] = row
    return rows


def contrast_pairs(
    result: dict[str, Any], extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """``(treated, control)`` final-cell pairs: every cell vs its base loss, every DAR finalist
    vs every control of the same base (#18: "a control matches DAR" is the decision rule),
    then ``extra`` (e.g. across bases: a tuned baseline vs the untuned one)."""
    finals = result["finals"]
    keys = list(finals)
    pairs = [(k, Cell(Cell.from_key(k).base).key) for k in keys if not Cell.from_key(k).is_baseline]
    for k in keys:
        cell = Cell.from_key(k)
        if cell.is_baseline or cell.is_control:
            continue
        pairs += [
            (k, c)
            for c in keys
            if Cell.from_key(c).is_control and Cell.from_key(c).base == cell.base
        ]
    pairs += [p for p in extra if p[0] in finals and p[1] in finals]
    return [p for p in pairs if p[1] in finals]


def contrasts(result: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Paired differences (same seed) of R@1, MAP@R, NMI (points) and of the inter-class
    distance mean and CV for each pair, with the 95% t-interval and the Bonferroni-corrected
    one for ``3 x len(pairs)`` comparisons (the three accuracy metrics of every pair)."""
    from scipy.stats import t as student_t

    finals = result["finals"]
    m = 3 * max(len(pairs), 1)
    rows = []
    for treated, control in pairs:
        row: dict[str, Any] = {"treated": treated, "control": control, "comparisons": m}
        for metric, _ in REPORTED:
            a = {s: 100 * r["test"][metric] for s, r in finals[treated].items()}
            b = {s: 100 * r["test"][metric] for s, r in finals[control].items()}
            mean, std, half, n = paired_difference(a, b)
            bonf = (
                float(student_t.ppf(1 - 0.05 / (2 * m), n - 1)) * std / math.sqrt(n)
                if n >= 2
                else float("nan")
            )
            row[metric] = {"mean": mean, "std": std, "ci95": half, "bonferroni": bonf, "n": n}
        for stat in ("mean", "cv"):
            a = {s: r["interclass"][stat] for s, r in finals[treated].items()}
            b = {s: r["interclass"][stat] for s, r in finals[control].items()}
            mean, std, half, n = paired_difference(a, b)
            row[f"interclass_{stat}"] = {"mean": mean, "std": std, "ci95": half, "n": n}
        rows.append(row)
    return rows


def contrasts_table(rows: Sequence[dict[str, Any]], chosen: dict[str, float]) -> str:
    """Markdown: one line per pair, ``Δ (±95% CI) [±Bonferroni]``."""

    def setting(key: str) -> str:
        v = chosen.get(key)
        if v is None:
            return ""
        return f" (lr {v:g})" if Cell.from_key(key).is_baseline else f" (λ {v:g})"

    head = (
        "| treated − control | seeds | Δ R@1 | Δ MAP@R | Δ NMI | Δ inter-class mean | Δ CV |\n"
        "|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        cells = []
        for metric, _ in REPORTED:
            d = r[metric]
            cells.append(
                f"{d['mean']:+.2f} (±{d['ci95']:.2f}) [±{d['bonferroni']:.2f}]"
                if not math.isnan(d["ci95"])
                else f"{d['mean']:+.2f}"
            )
        for stat in ("mean", "cv"):
            d = r[f"interclass_{stat}"]
            cells.append(
                f"{d['mean']:+.3f} (±{d['ci95']:.3f})"
                if not math.isnan(d["ci95"])
                else f"{d['mean']:+.3f}"
            )
        lines.append(
            f"| {r['treated']}{setting(r['treated'])} − {r['control']}{setting(r['control'])} | "
            f"{r[REPORTED[0][0]]['n']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def _fmt(triple: Sequence[float], signed: bool = False, digits: int = 2) -> str:
    mean, _, half = triple[:3]
    if isinstance(mean, float) and math.isnan(mean):
        return "-"
    m = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return m if math.isnan(half) else f"{m} (±{half:.{digits}f})"


def screening_table(plan: Plan, result: dict[str, Any]) -> str:
    screen, chosen = result["screen"], result["chosen"]
    lams = sorted(
        set(plan.lambdas)
        | set(plan.tune_lambdas)
        | {v for k, runs in screen.items() if not Cell.from_key(k).is_baseline for v in runs}
    )
    head = (
        "| cell | "
        + " | ".join(f"val λ={v:g}" for v in lams)
        + " | chosen | test R@1 | test MAP@R | Δ R@1 | Δ MAP@R | CV | gap | ms/step |"
    )
    lines = [head, "|---|" + "---|" * (len(lams) + 8)]
    for cell in plan.cells:
        runs = screen.get(cell.key, {})
        if not runs:
            continue
        v = chosen[cell.key]
        best = runs[v]
        base = screen.get(Cell(cell.base).key, {})
        base_rec = base.get(chosen.get(Cell(cell.base).key)) if base else None
        if cell.is_baseline:
            vals = " | ".join(
                ("lr " + ", ".join(f"{lr:g}: {100 * r['val_map@r']:.2f}" for lr, r in runs.items()))
                if i == 0
                else ""
                for i in range(len(lams))
            )
            chosen_s = f"lr {v:g}"
        else:
            vals = " | ".join(
                f"{100 * runs[lam]['val_map@r']:.2f}" if lam in runs else "" for lam in lams
            )
            chosen_s = f"λ {v:g}"
        t = best["test"]
        if base_rec is not None and not cell.is_baseline:
            d1 = f"{100 * (t['recall@1'] - base_rec['test']['recall@1']):+.2f}"
            d2 = f"{100 * (t['map@r'] - base_rec['test']['map@r']):+.2f}"
        else:
            d1 = d2 = "-"
        lines.append(
            f"| {cell.key} | {vals} | {chosen_s} | {100 * t['recall@1']:.2f} | "
            f"{100 * t['map@r']:.2f} | {d1} | {d2} | {best['interclass']['cv']:.3f} | "
            f"{100 * best['gap_map@r']:.2f} | {1000 * (best['step_s'] or float('nan')):.0f} |"
        )
    return "\n".join(lines)


def finals_table(rows: dict[str, Any]) -> str:
    head = (
        "| cell | setting | seeds | R@1 | MAP@R | NMI | Δ R@1 | Δ MAP@R | Δ NMI | "
        "inter-class mean | std | CV | train−test MAP@R gap | ms/step |"
    )
    lines = [head, "|---|" + "---|" * 13]
    for key, r in rows.items():
        cell = Cell.from_key(key)
        setting = f"lr {r['value']:g}" if cell.is_baseline else f"λ {r['value']:g}"
        deltas = [
            "-" if cell.is_baseline else _fmt(r[f"delta_{m}"], signed=True) for m, _ in REPORTED
        ]
        lines.append(
            f"| {key} | {setting} | {len(r['seeds'])} | "
            + " | ".join(_fmt(r[m]) for m, _ in REPORTED)
            + " | "
            + " | ".join(deltas)
            + f" | {_fmt(r['interclass_mean'], digits=3)} | {_fmt(r['interclass_std'], digits=3)}"
            + f" | {_fmt(r['interclass_cv'], digits=3)} | {_fmt(r['gap_map@r'])}"
            + f" | {r['step_ms']:.0f} |"
        )
    return "\n".join(lines)


def overfit_table(result: dict[str, Any]) -> str:
    """Per epoch, the baselines' train-class and validation-class MAP@R (mean over seeds)."""
    lines = []
    for key, by_seed in sorted(result["finals"].items()):
        if not Cell.from_key(key).is_baseline:
            continue
        epochs: dict[int, list[tuple[float, float]]] = {}
        for rec in by_seed.values():
            for row in rec["epochs"]:
                if row["train_map@r"] is not None and row["val_map@r"] is not None:
                    epochs.setdefault(row["epoch"], []).append(
                        (row["train_map@r"], row["val_map@r"])
                    )
        if not lines:
            lines += ["| baseline | epoch | train-class MAP@R | val-class MAP@R | seeds |"]
            lines += ["|---|---|---|---|---|"]
        for e, pairs in sorted(epochs.items()):
            tr = statistics.fmean(p[0] for p in pairs)
            va = statistics.fmean(p[1] for p in pairs)
            lines.append(f"| {key} | {e} | {100 * tr:.2f} | {100 * va:.2f} | {len(pairs)} |")
    return "\n".join(lines)


def plot_all(
    plan: Plan, result: dict[str, Any], rows: dict[str, Any], out: Path, stem: str = "dar_ablation"
) -> list[Path]:
    """λ-sensitivity per base loss, forest plot of the paired differences, overfitting curves."""
    from matplotlib.figure import Figure

    paths: list[Path] = []
    screen = result["screen"]
    for base in sorted({c.base for c in plan.cells}):
        cells = [
            c
            for c in plan.cells
            if c.base == base and not c.is_baseline and not c.is_control and screen.get(c.key)
        ]
        if not cells:
            continue
        diffs = sorted({str(c.difference) for c in cells}, key=DIFFERENCES.index)
        variants = sorted(
            {(str(c.measure), str(c.estimator)) for c in cells},
            key=lambda v: (MEASURES.index(v[0]), ESTIMATORS.index(v[1])),
        )
        fig = Figure(figsize=(4.2 * len(diffs), 3.6))
        base_key = Cell(base).key
        base_rec = screen.get(base_key, {}).get(result["chosen"].get(base_key))
        for i, d in enumerate(diffs):
            ax = fig.add_subplot(1, len(diffs), i + 1)
            for k, (m, est) in enumerate(variants):
                runs = screen.get(Cell(base, d, m, est).key, {})
                if not runs:
                    continue
                lams = sorted(runs)
                val = [100 * runs[v]["val_map@r"] for v in lams]
                test = [100 * runs[v]["test"]["map@r"] for v in lams]
                ax.plot(lams, val, "o-", color=f"C{k}", label=f"{m} {est}: val")
                ax.plot(lams, test, "s:", color=f"C{k}", label=f"{m} {est}: test")
            if base_rec is not None:
                ax.axhline(100 * base_rec["val_map@r"], color="0.4", lw=0.9, label="base: val")
                ax.axhline(
                    100 * base_rec["test"]["map@r"], color="0.4", lw=0.9, ls=":", label="base: test"
                )
            ax.set_xscale("log")
            ax.set_title(f"{d} differences", fontsize=9)
            ax.set_xlabel("λ")
            ax.set_ylabel("MAP@R %")
            ax.legend(fontsize=6)
        fig.suptitle(
            f"{plan.dataset}, {base_title(base)} + DAR: MAP@R vs λ, seed 0 (λ chosen on val; "
            "test shown for reporting only)",
            fontsize=9,
        )
        fig.tight_layout()
        path = out / f"{stem}_{plan.dataset}_{base}_lambda.png"
        fig.savefig(path, dpi=110)
        paths.append(path)

    dar_rows = [(k, r) for k, r in rows.items() if not Cell.from_key(k).is_baseline]
    if dar_rows:
        fig = Figure(figsize=(11, 0.5 * len(dar_rows) + 1.6))
        for j, (metric, title) in enumerate(REPORTED):
            ax = fig.add_subplot(1, len(REPORTED), j + 1)
            for i, (_key, r) in enumerate(dar_rows):
                mean, _, half, _ = r[f"delta_{metric}"]
                err = 0.0 if math.isnan(half) else half
                ax.errorbar(mean, i, xerr=err, fmt="o", color="C3" if mean - err > 0 else "C0")
            ax.axvline(0.0, color="k", lw=0.8)
            ax.set_yticks(range(len(dar_rows)))
            ax.set_yticklabels(
                [f"{k} λ{r['value']:g}" for k, r in dar_rows] if j == 0 else [], fontsize=7
            )
            ax.invert_yaxis()
            ax.set_xlabel(f"Δ {title} (points), 95% CI")
        fig.suptitle(f"{plan.dataset}: DAR − base loss, paired by seed", fontsize=9)
        fig.tight_layout()
        path = out / f"{stem}_{plan.dataset}_forest.png"
        fig.savefig(path, dpi=110)
        paths.append(path)

    base_finals = {k: v for k, v in result["finals"].items() if Cell.from_key(k).is_baseline}
    if base_finals:
        fig = Figure(figsize=(5 * len(base_finals), 3.4))
        for j, (key, by_seed) in enumerate(sorted(base_finals.items())):
            ax = fig.add_subplot(1, len(base_finals), j + 1)
            for s, rec in sorted(by_seed.items()):
                ep = [r["epoch"] for r in rec["epochs"]]
                ax.plot(
                    ep,
                    [100 * (r["train_map@r"] or np.nan) for r in rec["epochs"]],
                    "-",
                    color="C1",
                    alpha=0.7,
                    label="train classes" if s == 0 else None,
                )
                ax.plot(
                    ep,
                    [100 * (r["val_map@r"] or np.nan) for r in rec["epochs"]],
                    "-",
                    color="C0",
                    alpha=0.7,
                    label="validation classes" if s == 0 else None,
                )
            ax.set_title(f"{plan.dataset}: {key}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel("MAP@R %")
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{stem}_{plan.dataset}_overfit.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def report(
    plans: list[Plan],
    results: dict[str, dict[str, Any]],
    out: Path,
    name: str,
    plots: bool = True,
    extra_contrasts: Sequence[tuple[str, str]] = (),
) -> str:
    """Markdown (printed and written) + JSON + plots for every dataset that has results."""
    text: list[str] = []
    payload: dict[str, Any] = {"datasets": {}}
    for plan in plans:
        result = results.get(plan.dataset)
        if result is None:
            continue
        rows = summarize(result)
        n_screen = sum(len(v) for v in result["screen"].values())
        n_total = sum(len(plan.values(c)) for c in plan.cells)
        n_total += len(plan.tune_lambdas) * sum(len(f) for f in result["finalists"].values())
        grid_values = set(plan.lambdas) | set(plan.tune_lambdas)
        n_total += sum(  # edge extensions: counted once they ran
            len(set(result["screen"].get(k, {})) - grid_values)
            for f in result["finalists"].values()
            for k in f
        )
        text.append(f"### {plan.dataset}\n")
        text.append(
            f"Screening (seed 0; {n_screen} of {n_total} runs; val = validation-class MAP@R %, "
            "test numbers for reporting only; Δ vs the tuned base loss, same seed):\n"
        )
        text.append(screening_table(plan, result) + "\n")
        text.append(
            "Finals (test classes, %: mean (±95% t-CI half-width) over seeds; Δ: paired "
            "difference to the base loss, same seed):\n"
        )
        text.append(finals_table(rows) + "\n")
        pairs = contrast_pairs(result, extra_contrasts)
        contrast_rows = contrasts(result, pairs)
        if contrast_rows:
            text.append(
                "Paired differences (test classes, points; same seed), 95% t-interval in (), "
                f"Bonferroni-corrected for {contrast_rows[0]['comparisons']} comparisons in []:\n"
            )
            text.append(contrasts_table(contrast_rows, result["chosen"]) + "\n")
        if result.get("base_tuning"):
            text.append(
                "Base-loss options tuned on validation (seed 0; validation / test MAP@R %):\n"
            )
            for base, t in result["base_tuning"].items():
                tried = ", ".join(
                    f"{b}: {100 * v:.2f} / {100 * t['test_map@r'][b]:.2f}"
                    for b, v in t["val_map@r"].items()
                )
                text.append(f"- {base} (lr {t['lr']:g}): {tried}; chosen **{t['chosen']}**\n")
        raw = result.get("raw_pixels")
        if raw is not None:
            t = raw["test"]
            text.append(
                f"Raw pixels on the same test images (no learning): R@1 {100 * t['recall@1']:.2f}, "
                f"MAP@R {100 * t['map@r']:.2f}, NMI {100 * t['nmi']:.2f}, inter-class distance "
                f"CV {raw['interclass']['cv']:.3f}.\n"
            )
        text.append("Baselines per epoch (overfitting check):\n")
        text.append(overfit_table(result) + "\n")
        paths = plot_all(plan, result, rows, out, name) if plots else []
        payload["datasets"][plan.dataset] = {
            "config": _comparable(plan.base_cfg),
            "lambdas": plan.lambdas,
            "tune_lambdas": plan.tune_lambdas,
            "extend_edges": plan.extend_edges,
            "baseline_lrs": plan.lrs,
            "seeds": plan.seeds,
            "cells": [c.key for c in plan.cells],
            "screen": {
                k: {f"{v:g}": _slim(r) for v, r in runs.items()}
                for k, runs in result["screen"].items()
            },
            "chosen": result["chosen"],
            "finalists": result["finalists"],
            "finals": {
                k: {str(s): _slim(r) for s, r in by_seed.items()}
                for k, by_seed in result["finals"].items()
            },
            "summary": rows,
            "contrasts": contrast_rows,
            "base_tuning": result.get("base_tuning"),
            "raw_pixels": result.get("raw_pixels"),
            "plots": [p.name for p in paths],
        }
    md = "\n".join(text)
    atomic_write_text(out / f"{name}.md", md)
    write_results(name, payload, out=out / f"{name}.json")
    return md


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "config"}


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["glyphs", "fashion-mnist"])
    parser.add_argument(
        "--bases",
        nargs="+",
        default=list(BASES),
        help=f"base losses of {ALL_BASES}, optionally with options: proxyanchor~alpha16~margin0.2",
    )
    parser.add_argument(
        "--controls",
        nargs="+",
        default=[],
        choices=CONTROLS,
        help="compaction controls (#18), each a cell tuned over the lambdas like a finalist",
    )
    parser.add_argument(
        "--base-grid",
        nargs="+",
        default=[],
        metavar="OPTION=V1,V2",
        help="tune each base's loss options first (#18), e.g. alpha=8,16,64 margin=0,0.2: "
        "one option at a time around the config's values, then the best of each together; "
        "seed 0, the baseline's learning rate, validation MAP@R; the rest of the plan runs "
        "on the chosen base",
    )
    parser.add_argument("--differences", nargs="+", default=list(DIFFERENCES))
    parser.add_argument("--measures", nargs="+", default=list(MEASURES))
    parser.add_argument(
        "--no-dar",
        action="store_true",
        help="no DAR cells: only the baselines (and --controls), e.g. a tuned base's finals",
    )
    parser.add_argument("--estimators", nargs="+", default=list(ESTIMATORS))
    parser.add_argument(
        "--chain-measures",
        nargs="+",
        default=None,
        help="screen the chain estimator only on these measures (default: all)",
    )
    parser.add_argument(
        "--measure-stage",
        nargs="+",
        default=[],
        metavar="MEASURE/ESTIMATOR",
        help="variants (e.g. l1/exact l2/chain) screened after the finals, on each base "
        "loss's best difference type only",
    )
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0])
    parser.add_argument(
        "--tune-lambdas",
        type=float,
        nargs="+",
        default=[],
        help="further lambdas tried for the finalists only (two-stage tuning)",
    )
    parser.add_argument(
        "--extend-edges",
        type=int,
        default=0,
        metavar="N",
        help="a finalist whose best lambda is at an edge of those tried gets up to N more, "
        "past that edge on the 1-3 series (0.1, 0.3, 1, 3, 10, ...)",
    )
    parser.add_argument(
        "--dar-at-baseline-lr",
        action="store_true",
        help="DAR cells train at the learning rate their baseline chose (else the config's)",
    )
    parser.add_argument(
        "--baseline-lrs",
        type=float,
        nargs="+",
        default=None,
        help="learning rates tried for the baselines (default: only the config's)",
    )
    parser.add_argument(
        "--transfer-finalists",
        action="store_true",
        help="datasets after the first screen only the first one's finalists (their lambda "
        "re-tuned on their own validation classes) and the baselines",
    )
    parser.add_argument(
        "--contrast",
        nargs=2,
        action="append",
        default=[],
        metavar=("TREATED", "CONTROL"),
        help="an extra paired comparison of two final cells, e.g. proxyanchor~alpha8/baseline "
        "proxyanchor/baseline (repeatable; every cell vs its base and every DAR finalist vs "
        "every control are always reported)",
    )
    parser.add_argument(
        "--cached-lambdas",
        type=float,
        nargs="+",
        default=[],
        help="lambdas a finalist or control also takes from the cache if it was trained there "
        "earlier (never trained for this run); its lambda is then the best over all it has",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--final-seeds",
        type=int,
        nargs="+",
        default=None,
        help="train only these final seeds (split the finals over processes sharing --cache)",
    )
    parser.add_argument("--finalists", type=int, default=2, help="difference types per base")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (on an oversubscribed machine 2 threads measured 9x slower per step)",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="cache folder (default: OUT/NAME_cache)"
    )
    parser.add_argument("--name", default="dar_ablation", help="output file stem")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--plan", action="store_true", help="count the runs; train nothing")
    parser.add_argument("--report-only", action="store_true", help="report from the cache")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out if args.out is not None else OUT_DIR
    out.mkdir(parents=True, exist_ok=True)

    missing = [d for d in args.differences if d not in LIBRARY_DIFFERENCES]
    if missing:
        print(f"note: this dasl has no difference type {missing}; screening without it")
    differences = [d for d in args.differences if d in LIBRARY_DIFFERENCES]
    for variant in args.measure_stage:
        m, _, e = variant.partition("/")
        if m not in MEASURES or e not in ESTIMATORS:
            print(
                f"error: --measure-stage {variant!r}: expected MEASURE/ESTIMATOR with a measure "
                f"of {MEASURES} and an estimator of {ESTIMATORS}, e.g. l1/exact",
                file=sys.stderr,
            )
            return 2
    unknown = [d for d in args.datasets if d not in PRESETS]
    if unknown:
        print(
            f"error: no preset for dataset(s) {unknown}; choose from {sorted(PRESETS)}",
            file=sys.stderr,
        )
        return 2
    try:
        bases = [b for b in args.bases if parse_base(b)[0] in ALL_BASES]
        base_grid = parse_base_grid(args.base_grid)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(bases) != len(args.bases):
        print(f"error: --bases: each must start with one of {ALL_BASES}", file=sys.stderr)
        return 2
    extra = dict(parse_override(o) for o in args.overrides)
    contrast_extra = [(a, b) for a, b in args.contrast]
    plans = []
    for ds in args.datasets:
        cfg = base_config(ds, extra)
        cells = grid(
            bases,
            [] if args.no_dar else differences,
            args.measures,
            args.estimators,
            args.chain_measures,
        )
        cells += [Cell(b, control=k) for b in bases for k in args.controls]
        lrs = args.baseline_lrs or [cfg.optim.lr]
        plans.append(
            Plan(
                ds,
                cfg,
                cells,
                sorted(args.lambdas),
                sorted(lrs),
                args.seeds,
                args.finalists,
                list(args.measure_stage),
                sorted(args.tune_lambdas),
                args.dar_at_baseline_lr,
                None if args.report_only else args.final_seeds,
                args.extend_edges,
                sorted(args.cached_lambdas),
            )
        )

    results: dict[str, dict[str, Any]] = {}
    for i, plan in enumerate(plans):
        first = results.get(plans[0].dataset)
        if i > 0 and args.transfer_finalists:
            if first is None:
                print(f"{plan.dataset}: skipped: {plans[0].dataset} has no finalists", flush=True)
                continue
            plan.cells = [Cell(b) for b in args.bases] + [
                Cell.from_key(k) for b in args.bases for k in first["finalists"].get(b, [])
            ]
            plan.measure_stage = []
        cache = args.cache if args.cache is not None else out / f"{args.name}_cache"
        runner = Runner(cache / plan.dataset, PRESETS[plan.dataset]["probe_per_class"])
        n_screen = sum(len(plan.values(c)) for c in plan.cells)
        n_screen += len(plan.measure_stage) * len(plan.lambdas) * len({c.base for c in plan.cells})
        n_screen += (
            (len(plan.tune_lambdas) + args.extend_edges)
            * args.finalists
            * len({c.base for c in plan.cells})
        )
        n_final = (args.seeds - 1) * len({c.base for c in plan.cells}) * (1 + args.finalists)
        print(
            f"{plan.dataset}: {len(plan.cells)} cells, {n_screen} screening runs + "
            f"{n_final} final runs; cache {runner.cache_dir}",
            flush=True,
        )
        if args.plan:
            continue
        if base_grid:
            fetch = runner.cached if args.report_only else runner.run
            tuning = tune_bases(plan, base_grid, fetch, log=lambda s: print(s, flush=True))
            chosen_bases = [t["chosen"] for t in tuning.values()]
            plan.cells = [dataclasses.replace(c, base=tuning[c.base]["chosen"]) for c in plan.cells]
            print(f"{plan.dataset}: tuned bases {chosen_bases}", flush=True)
        else:
            tuning = {}
        if args.report_only:
            results[plan.dataset] = execute(
                plan, runner.cached, log=lambda s: None, lookup=runner.cached
            )
            results[plan.dataset]["raw_pixels"] = runner.raw_pixels(plan.base_cfg)
            results[plan.dataset]["base_tuning"] = tuning
            continue
        try:
            results[plan.dataset] = execute(
                plan, runner.run, log=lambda s: print(s, flush=True), lookup=runner.cached
            )
            results[plan.dataset]["raw_pixels"] = runner.raw_pixels(plan.base_cfg)
            results[plan.dataset]["base_tuning"] = tuning
        except FileNotFoundError as exc:  # a dataset that is not installed
            print(f"{plan.dataset}: skipped: {exc}", flush=True)
        # Write the report after each dataset, so a later failure keeps the earlier one.
        report(plans, results, out, args.name, not args.no_plots, contrast_extra)
    if args.plan:
        return 0
    md = report(plans, results, out, args.name, not args.no_plots, contrast_extra)
    print(md)
    print(json.dumps({"environment": environment()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
