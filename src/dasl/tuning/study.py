"""The Optuna study behind ``dasl tune``: a trial is a training run scored on validation classes.

Objective of a trial: train ``cfg`` with the trial's parameters on ``data.train_split`` (train
minus validation) with the trainer of ``dasl train`` (:func:`dasl.training.run.train_variant`,
test evaluation off), then take the validation metric ``val/<metric>`` at the epoch that
``dasl train`` would keep as its best checkpoint (the first epoch of highest validation MAP@R):
the score of the model the tuned config would deliver. The test split is never loaded.

Search: TPE (Optuna's ``TPESampler``), re-created before every trial with a seed derived from
(config seed, number of finished trials); its other input is the study's history, so a resumed
study samples exactly what an uninterrupted one would. Pruning: Optuna's ``MedianPruner`` fed
per epoch by optuna-integration's ``PyTorchLightningPruningCallback`` on ``val/<metric>``
(never after the last epoch).
Storage: SQLite ``<out_dir>/<name>/tune/study.db``; a finished trial (complete or pruned) is
never rerun, an interrupted one is marked failed and run afresh. One process per study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from dasl.choices import RANKING_METRICS
from dasl.config import ConfigError, ExperimentConfig
from dasl.errors import Interrupted
from dasl.tuning.report import best_frozen_trial, trial_rows, write_reports
from dasl.tuning.search_space import ParamSpec, apply_params, check_search_space, parse_param
from dasl.utils.io import make_dir

Log = Callable[[str], None]


def print_flush(line: str) -> None:
    """Progress lines show at once, also when stdout is a pipe or a file."""
    print(line, flush=True)


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
"""Trials that count towards ``trials``: neither rerun nor replaced on resume."""

IGNORED_ON_RESUME = (
    "name",
    "out_dir",
    "trainer.progress_bar",
    "trainer.log_every_n_steps",
    "data.num_workers",
    "eval.plots",
    "eval.tsne_points",
)
"""Config keys that do not change a trial's result, so a resumed study may differ in them
(the study may also be moved or renamed)."""


class KeepLastEpoch(optuna.pruners.BasePruner):
    """``pruner``, except after the last epoch: stopping then saves no time and would turn a
    finished run into a pruned one (whose value TPE ranks below every complete trial)."""

    def __init__(self, pruner: optuna.pruners.BasePruner, epochs: int) -> None:
        self.pruner, self.epochs = pruner, epochs

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step >= self.epochs - 1:
            return False
        return self.pruner.prune(study, trial)


class TuneInterrupted(Interrupted):
    """The study stopped (Ctrl-C) before ``trials`` trials finished; rerun to resume it."""


@dataclass
class StudyResult:
    """A finished (or resumed-to-completion) study and its best trial on the validation classes."""

    study_dir: Path
    metric: str
    """Validation metric maximized, e.g. ``"map@r"`` (logged as ``val/map@r``)."""
    trials: list[dict[str, Any]]
    """One row per trial, as in ``trials.json`` (number, state, value, params, epoch, ...)."""
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_config: ExperimentConfig | None
    """The config with the best parameters applied (what ``best.yaml`` holds)."""
    outputs: dict[str, Path] = field(default_factory=dict)
    study: optuna.Study | None = None


def valid_metrics(cfg: ExperimentConfig) -> list[str]:
    """Validation metrics the trainer logs each epoch (``val/<name>``), all higher-is-better."""
    return [f"recall@{k}" for k in cfg.eval.ks] + list(RANKING_METRICS.names())


def study_dir_of(cfg: ExperimentConfig) -> Path:
    return Path(cfg.out_dir) / cfg.name / "tune"


def trial_seed(seed: int, finished: int) -> int:
    """The sampler's seed for the trial that follows ``finished`` finished trials."""
    return int(np.random.SeedSequence([seed, finished]).generate_state(1)[0])


def epoch_of(epoch: int, epochs: int) -> str:
    """``epoch 1 of 0-1``: counted from 0 like ``trials.csv``, ``best.yaml``, ``history.json``
    and Lightning's progress bar (one convention everywhere, #16)."""
    return f"epoch {epoch} of 0-{epochs - 1}"


def objective_value(history: Sequence[dict[str, float]], metric: str) -> tuple[float, int]:
    """``(val/<metric>, epoch)`` at the first epoch of highest ``val/map@r``: the epoch whose
    checkpoint ``dasl train`` keeps (Lightning's ModelCheckpoint replaces only on a strict gain).
    """
    rows = [r for r in sorted(history, key=lambda r: r["epoch"]) if "val/map@r" in r]
    if not rows:
        raise RuntimeError("the trial logged no validation metric (is data.val_split empty?)")
    best = max(rows, key=lambda r: r["val/map@r"])  # max() keeps the first of equal values
    key = f"val/{metric}"
    if key not in best:
        raise RuntimeError(f"the trial did not log {key} (logged: {sorted(best)})")
    return float(best[key]), int(best["epoch"])


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _fingerprint(cfg: ExperimentConfig, specs: Sequence[ParamSpec], metric: str) -> dict:
    config = {
        k: v
        for k, v in _flatten(cfg.to_dict()).items()
        if not any(k == i or k.startswith(i + ".") for i in IGNORED_ON_RESUME)
    }
    return {"config": config, "params": [s.text for s in specs], "metric": metric}


def _check_resumable(study: optuna.Study, mine: dict, db: Path) -> None:
    """A stored study may only be resumed with the same config, search space and metric."""
    stored = study.user_attrs.get("dasl")
    if stored is None:
        study.set_user_attr("dasl", mine)
        return
    how = f"rerun with the same settings, or delete {db.parent} (or use another --name)"
    if stored["metric"] != mine["metric"]:
        raise ConfigError(f"{db} was made with --metric {stored['metric']}; {how}")
    if stored["params"] != mine["params"]:
        raise ConfigError(f"{db} was made with --param {' '.join(stored['params'])}; {how}")
    old, new = stored["config"], mine["config"]
    for key in sorted(set(old) | set(new)):
        if old.get(key, "<absent>") != new.get(key, "<absent>"):
            raise ConfigError(
                f"{db} was made with {key}={old.get(key, '<absent>')!r}, not "
                f"{new.get(key, '<absent>')!r}; {how}"
            )


@contextlib.contextmanager
def _sigint_restored() -> Iterator[None]:
    """Lightning ignores further Ctrl-C after catching one; give the handler back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _describe_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def tune(
    cfg: ExperimentConfig,
    params: Sequence[ParamSpec | str],
    trials: int,
    *,
    metric: str = "map@r",
    pruner: optuna.pruners.BasePruner | None = None,
    startup_trials: int = 10,
    callbacks: Sequence[Any] = (),
    keep_checkpoints: bool = False,
    study_dir: str | Path | None = None,
    log: Log = print_flush,
) -> StudyResult:
    """Run (or resume) the study until ``trials`` trials have finished; write its reports.

    Args:
        cfg: one config (no ``compare``; pick a variant first with :func:`dasl.config.variants`).
        params: specs such as ``"dar.lam=loguniform:0.01:10"`` (see :mod:`.search_space`).
        trials: total number of finished trials (complete or pruned) the study should hold.
        metric: validation metric to maximize: ``map@r``, ``r_precision`` or ``recall@K``
            for a K of ``cfg.eval.ks``.
        pruner: Optuna pruner; default ``MedianPruner(n_startup_trials=5, n_warmup_steps=1)``.
            ``optuna.pruners.NopPruner()`` disables pruning.
        startup_trials: random trials before TPE takes over (TPE's ``n_startup_trials``).
        callbacks: extra Lightning callbacks for every trial's trainer.
        keep_checkpoints: keep each trial's ``checkpoints/`` (default: deleted once it finished).
        study_dir: default ``<out_dir>/<name>/tune``.
        log: receives the progress lines (one per trial).

    Writes ``study.db``, ``trials.{csv,json}``, ``best.yaml`` and ``lambda_sensitivity.png`` in
    ``study_dir`` and each trial's run folder in ``study_dir/trial_<number>``. Raises
    :class:`TuneInterrupted` on Ctrl-C (the finished trials are stored; rerun to resume) and
    ``ConfigError`` for a bad config, search space, metric or a mismatched stored study.
    """
    from optuna_integration import PyTorchLightningPruningCallback

    from dasl.run_data import MetricLearningData
    from dasl.training.run import RunInterrupted, train_variant

    specs = [p if isinstance(p, ParamSpec) else parse_param(p) for p in params]
    if cfg.compare:
        raise ConfigError(
            f"the config compares variants ({', '.join(cfg.compare)}); tune one of them "
            "(dict(dasl.config.variants(cfg))[name]; on the command line: --variant NAME)"
        )
    if cfg.data.val_split is None:
        raise ConfigError("data.val_split: tuning scores trials on validation classes; set it")
    if metric not in valid_metrics(cfg):
        raise ConfigError(
            f"--metric {metric}: not a validation metric; choose one of "
            f"{', '.join(valid_metrics(cfg))}"
        )
    if trials < 1:
        raise ConfigError(f"--trials: must be >= 1, got {trials}")
    check_search_space(cfg, specs)

    out = Path(study_dir) if study_dir is not None else study_dir_of(cfg)
    make_dir(out)
    db = out / "study.db"
    pruner = pruner or optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    study = optuna.create_study(
        study_name=cfg.name,
        storage=f"sqlite:///{db.resolve()}",
        direction="maximize",
        pruner=pruner,
        load_if_exists=True,
    )
    _check_resumable(study, _fingerprint(cfg, specs, metric), db)
    for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # Left RUNNING by a killed process: it never finished, so it neither counts nor
        # is rerun under its number; the next trial samples the same parameters afresh.
        study.tell(stale.number, state=TrialState.FAIL)
        log(f"trial {stale.number} was interrupted earlier; it does not count")

    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    if done >= trials:
        log(f"study {db} already holds {done} finished trials (asked for {trials})")
        return _result(
            study, cfg, specs, metric, out, write_reports(study, cfg, specs, metric, out)
        )
    log(f"tuning {cfg.name}: {trials - done} more trial(s) to {trials}; study {db}")

    data = _tuning_data(cfg, log)
    while done < trials:
        study.sampler = optuna.samplers.TPESampler(
            seed=trial_seed(cfg.seed, done), n_startup_trials=startup_trials
        )
        trial = study.ask()
        t0 = time.perf_counter()
        run_dir = out / f"trial_{trial.number}"
        try:
            values = {spec.key: spec.suggest(trial) for spec in specs}
            tcfg = dataclasses.replace(apply_params(cfg, values), name=run_dir.name)
            norm = MetricLearningData.normalization_for(tcfg)
            if (data.cfg, data.seed, data.normalization) != (tcfg.data, tcfg.seed, norm):
                data = _tuning_data(tcfg, log)  # a searched data.* key changes the loaders
            trial.set_user_attr("run_dir", str(run_dir))
            study.pruner = KeepLastEpoch(pruner, tcfg.trainer.epochs)
            pruning = PyTorchLightningPruningCallback(trial, monitor=f"val/{metric}")
            with _sigint_restored():
                res = train_variant(
                    tcfg,
                    run_dir,
                    callbacks=[pruning, *callbacks],
                    log=lambda s: None,
                    data=data,
                    test=False,
                )
            pruning.check_pruned()  # DDP: the decision travels through the storage
            value, epoch = objective_value(res.history, metric)
        except optuna.TrialPruned:
            frozen = study.tell(trial, state=TrialState.PRUNED)
            outcome = (
                f"pruned after {epoch_of(frozen.last_step or 0, tcfg.trainer.epochs)} "
                f"({metric} {_fmt(frozen.value)})"
            )
        except (RunInterrupted, KeyboardInterrupt):
            study.tell(trial, state=TrialState.FAIL)
            write_reports(study, cfg, specs, metric, out)
            raise TuneInterrupted(
                f"interrupted in trial {trial.number}; {done} of {trials} trials finished and "
                f"stored in {db}; rerun the same command to resume"
            ) from None
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            trial.set_user_attr("epoch", epoch)
            study.tell(trial, value)
            outcome = f"{metric} {_fmt(value)} ({epoch_of(epoch, tcfg.trainer.epochs)})"
        if not keep_checkpoints:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        done += 1
        log(
            f"trial {trial.number} [{done}/{trials}] {_describe_params(trial.params)}: "
            f"{outcome} | {_best_text(study, metric)} | {time.perf_counter() - t0:.1f} s"
        )
        write_reports(study, cfg, specs, metric, out, plot=False)
    return _result(study, cfg, specs, metric, out, write_reports(study, cfg, specs, metric, out))


def shared_items(a: Any, b: Any) -> int | None:
    """How many items two splits share (``None``: their items cannot be compared)."""
    from dasl.data.dataset import ArrayImageDataset, FileImageDataset

    if isinstance(a, FileImageDataset) and isinstance(b, FileImageDataset):
        return len({str(p) for p in a.paths} & {str(p) for p in b.paths})
    arrays = isinstance(a, ArrayImageDataset) and isinstance(b, ArrayImageDataset)
    if arrays and a.images.shape == b.images.shape:
        # Both index the official training array of the same files.
        return int(np.intersect1d(a.indices, b.indices).size)
    return None


def _tuning_data(cfg: ExperimentConfig, log: Log) -> Any:
    """Training and validation splits (never the test split), checked for leakage."""
    from dasl.run_data import MetricLearningData

    data = MetricLearningData.for_experiment(cfg, test=False)
    shared = shared_items(data.train, data.val)
    if shared:
        raise ConfigError(
            f"data.train_split={cfg.data.train_split!r} shares {shared} images with "
            f"data.val_split={cfg.data.val_split!r}: trials would be scored on images they "
            "were fitted on; set data.train_split to the training split without the "
            "validation carve-out"
        )
    log(f"data: {data.describe()}")
    return data


def _best_text(study: optuna.Study, metric: str) -> str:
    best = best_frozen_trial(study)
    if best is None:
        return "best: none yet"
    return f"best {metric} {_fmt(best.value)} (trial {best.number})"


def _result(
    study: optuna.Study,
    cfg: ExperimentConfig,
    specs: Sequence[ParamSpec],
    metric: str,
    out: Path,
    outputs: dict[str, Path],
) -> StudyResult:
    best = best_frozen_trial(study)
    return StudyResult(
        study_dir=out,
        metric=metric,
        trials=trial_rows(study, specs),
        best_trial=None if best is None else best.number,
        best_value=None if best is None or best.value is None else float(best.value),
        best_params={} if best is None else dict(best.params),
        best_config=None if best is None else apply_params(cfg, dict(best.params)),
        outputs=outputs,
        study=study,
    )
