"""Real tiny studies (Lightning training on digits, SQLite storage): resume after Ctrl-C without
rerunning trials, same seed -> same trials, pruning through the Lightning callback, best.yaml,
and blindness to the test split on a dataset whose test images cannot be read."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal

import lightning as L
import optuna
import pytest
from tuning_fixtures import digits_config, write_blind_csv

from dasl.config import ConfigError, load_config, variants
from dasl.run_data import MetricLearningData
from dasl.tuning import TuneInterrupted, objective_value, tune
from dasl.tuning.study import KeepLastEpoch, shared_items

PARAMS = ["dar.lam=loguniform:0.01:10", "optim.lr=choice:0.001,0.003,0.01"]


class _CountFits(L.Callback):
    def __init__(self) -> None:
        self.fits = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fits += 1


class _CtrlC(L.Callback):
    """Presses Ctrl-C at the start of epoch ``epoch`` of the ``fit``-th trial (1-based)."""

    def __init__(self, fit: int, epoch: int) -> None:
        self.fit, self.epoch, self.fits = fit, epoch, 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fits += 1

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.fits == self.fit and trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


class _PruneOddTrials(optuna.pruners.BasePruner):
    """A real Optuna pruner with a known decision: stop every odd-numbered trial."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number % 2 == 1


def _finished(result) -> list[tuple[dict, float]]:
    return [(t["params"], t["value"]) for t in result.trials if t["state"] == "complete"]


def test_objective_is_the_checkpointed_epoch() -> None:
    history = [
        {"epoch": 0.0, "val/map@r": 0.30, "val/recall@1": 0.70},
        {"epoch": 2.0, "val/map@r": 0.40, "val/recall@1": 0.60},
        {"epoch": 1.0, "val/map@r": 0.40, "val/recall@1": 0.80},
        {"epoch": 3.0, "train/loss": 1.0},
    ]
    # Reference by hand: the first epoch of highest MAP@R is epoch 1 (a tie with epoch 2,
    # which ModelCheckpoint would not take, as it replaces only on a strict gain).
    assert objective_value(history, "map@r") == (0.40, 1)
    assert objective_value(history, "recall@1") == (0.80, 1)
    with pytest.raises(RuntimeError, match="no validation metric"):
        objective_value([{"epoch": 0.0, "train/loss": 1.0}], "map@r")


def test_never_pruned_after_the_last_epoch() -> None:
    always = KeepLastEpoch(_PruneOddTrials(), epochs=3)
    study = optuna.create_study(direction="maximize")
    for last_step, expected in ((None, False), (0, True), (1, True), (2, False)):
        inter = {} if last_step is None else {s: 0.5 for s in range(last_step + 1)}
        trial = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING, intermediate_values=inter
        )
        trial.number = 1  # odd: the inner pruner says stop
        assert always.prune(study, trial) is expected, last_step


def test_interrupted_study_resumes_to_the_same_trials(tmp_path, quiet) -> None:
    # The reference: one uninterrupted study of 2 trials.
    cfg = digits_config(tmp_path / "a")
    full = tune(cfg, PARAMS, 2, log=quiet.append)
    assert [t["state"] for t in full.trials] == ["complete"] * 2
    assert len({t["params"]["dar.lam"] for t in full.trials}) == 2
    assert sum(line.startswith("trial ") for line in quiet) == 2

    # The same study, Ctrl-C in the 2nd trial's 2nd epoch: a clean stop, one trial stored.
    cfg_b = dataclasses.replace(cfg, out_dir=str(tmp_path / "b"))
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(TuneInterrupted, match="1 of 2 trials finished"):
        tune(cfg_b, PARAMS, 2, callbacks=[_CtrlC(fit=2, epoch=1)], log=quiet.append)
    assert signal.getsignal(signal.SIGINT) is handler  # Lightning's SIG_IGN undone
    tune_dir = tmp_path / "b" / "tiny" / "tune"
    stored = json.loads((tune_dir / "trials.json").read_text())["trials"]
    assert [t["state"] for t in stored] == ["complete", "fail"]
    first_history = (tune_dir / "trial_0" / "history.json").stat().st_mtime_ns

    # Rerun: only the missing trials train, and they are the ones the reference sampled.
    counter = _CountFits()
    resumed = tune(cfg_b, PARAMS, 2, callbacks=[counter], log=quiet.append)
    assert counter.fits == 1
    assert (tune_dir / "trial_0" / "history.json").stat().st_mtime_ns == first_history
    assert [t["state"] for t in resumed.trials] == ["complete", "fail", "complete"]
    got, want = _finished(resumed), _finished(full)
    assert [p for p, _ in got] == [p for p, _ in want]
    assert [v for _, v in got] == pytest.approx([v for _, v in want], abs=1e-6)
    assert resumed.best_params == full.best_params
    assert resumed.best_value == pytest.approx(full.best_value, abs=1e-6)

    # best.yaml: the whole config with the best parameters, loadable by `dasl train --config`.
    best = load_config(resumed.outputs["best.yaml"])
    assert best.dar.lam == resumed.best_params["dar.lam"]
    assert best.optim.lr == resumed.best_params["optim.lr"]
    # ... and nothing else changed.
    assert best == dataclasses.replace(
        cfg_b,
        dar=dataclasses.replace(cfg_b.dar, lam=best.dar.lam),
        optim=dataclasses.replace(cfg_b.optim, lr=best.optim.lr),
    )
    assert best == resumed.best_config
    # The best value is the validation metric of the checkpointed epoch of its trial.
    best_row = next(t for t in resumed.trials if t["number"] == resumed.best_trial)
    history = json.loads((tune_dir / f"trial_{best_row['number']}" / "history.json").read_text())
    assert objective_value(history, "map@r") == (resumed.best_value, best_row["epoch"])
    assert max(v for _, v in got) == resumed.best_value
    # Trials keep no checkpoints unless asked (they would fill the disk on big models).
    assert not (tune_dir / f"trial_{best_row['number']}" / "checkpoints").exists()

    # A complete study trains nothing more; a changed config is refused, naming the key.
    again = _CountFits()
    tune(cfg_b, PARAMS, 2, callbacks=[again], log=quiet.append)
    assert again.fits == 0
    changed = dataclasses.replace(cfg_b, optim=dataclasses.replace(cfg_b.optim, weight_decay=0.1))
    with pytest.raises(ConfigError, match=r"optim\.weight_decay"):
        tune(changed, PARAMS, 3, log=quiet.append)
    with pytest.raises(ConfigError, match="--param"):
        tune(cfg_b, PARAMS[:1], 3, log=quiet.append)


def test_trial_left_running_by_a_killed_process(tmp_path, quiet) -> None:
    cfg = digits_config(tmp_path)
    db = tmp_path / "tiny" / "tune" / "study.db"
    db.parent.mkdir(parents=True)
    # A process killed mid-trial leaves it RUNNING in the storage.
    killed = optuna.create_study(study_name="tiny", storage=f"sqlite:///{db}", direction="maximize")
    killed.ask()
    result = tune(cfg, ["dar.lam=loguniform:0.01:10"], 1, log=quiet.append)
    assert [t["state"] for t in result.trials] == ["fail", "complete"]
    assert "trial 0 was interrupted earlier; it does not count" in quiet


def test_pruned_trials_through_the_lightning_callback(tmp_path, quiet) -> None:
    cfg = digits_config(tmp_path)
    result = tune(
        cfg, ["dar.lam=loguniform:0.01:10"], 2, pruner=_PruneOddTrials(), log=quiet.append
    )
    first, second = result.trials
    assert (first["state"], second["state"]) == ("complete", "pruned")
    tune_dir = tmp_path / "tiny" / "tune"
    # The callback reported val/map@r of every epoch: the same numbers the trainer logged.
    history = json.loads((tune_dir / "trial_0" / "history.json").read_text())
    want = {int(r["epoch"]): r["val/map@r"] for r in history}
    assert first["intermediate"] == pytest.approx(want, rel=1e-6)  # logged as float32
    # Pruned after its first validation: one epoch trained, its value is that epoch's.
    with open(tune_dir / "trial_1" / "logs" / "csv" / "metrics.csv") as fh:
        logged = [r for r in csv.DictReader(fh) if r.get("val/map@r")]
    assert [int(r["epoch"]) for r in logged] == [0]
    assert float(logged[0]["val/map@r"]) == pytest.approx(second["value"], rel=1e-6)
    assert second["intermediate"] == {0: second["value"]}
    assert any("pruned after epoch 0 of 0-1" in line for line in quiet)
    assert result.best_trial == 0
    csv_lines = (tune_dir / "trials.csv").read_text().splitlines()
    assert csv_lines[0] == "number,state,value,dar.lam,epoch,duration_s,run_dir"
    assert [line.split(",")[1] for line in csv_lines[1:]] == ["complete", "pruned"]
    assert (tune_dir / "lambda_sensitivity.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_never_reads_the_test_split(tmp_path, quiet) -> None:
    csv_path = write_blind_csv(tmp_path / "data")
    cfg = digits_config(
        tmp_path / "runs",
        **{
            "data.name": "csv",
            "data.root": str(csv_path),
            "data.batch_size": 24,
            "data.m_per_class": 4,
            "data.val_fraction": 0.25,
        },
    )
    # The fixture bites: anything that loads the test split fails.
    with pytest.raises(FileNotFoundError, match="csv test"):
        MetricLearningData.for_experiment(cfg)
    result = tune(cfg, ["dar.lam=loguniform:0.01:10"], 1, log=quiet.append)
    assert result.trials[0]["state"] == "complete"
    assert 0.0 < result.best_value <= 1.0
    # Its validation classes are the 6 training classes (a quarter of their images held out).
    assert any("val: csv val: 18 images, 6 classes" in line for line in quiet)


def test_validation_images_in_the_training_split_are_refused(tmp_path, quiet) -> None:
    # `trainval` holds every training image, the validation carve-out included.
    cfg = digits_config(tmp_path, **{"data.train_split": "trainval"})
    with pytest.raises(ConfigError, match=r"shares 89 images with data\.val_split='val'"):
        tune(cfg, ["dar.lam=loguniform:0.01:10"], 1, log=quiet.append)
    clean = MetricLearningData.for_experiment(digits_config(tmp_path), test=False)
    assert shared_items(clean.train, clean.val) == 0
    assert shared_items(clean.train, clean.train) == len(clean.train)


def test_compare_config_is_refused_with_the_way_out(tmp_path, quiet) -> None:
    cfg = dataclasses.replace(
        digits_config(tmp_path), compare={"pa": {"dar.lam": 0.0}, "dasl": {"dar.lam": 1.0}}
    )
    with pytest.raises(ConfigError, match="tune one of them"):
        tune(cfg, ["dar.lam=loguniform:0.01:10"], 1, log=quiet.append)
    # The way out works: one variant is a plain config.
    (name, variant), _ = variants(cfg)
    assert name == "pa" and variant.compare is None
    with pytest.raises(ConfigError, match="--metric nmi"):
        tune(variant, ["dar.lam=loguniform:0.01:10"], 1, metric="nmi", log=quiet.append)
    no_val = dataclasses.replace(variant, data=dataclasses.replace(variant.data, val_split=None))
    with pytest.raises(ConfigError, match=r"data\.val_split"):
        tune(no_val, ["dar.lam=loguniform:0.01:10"], 1, log=quiet.append)
