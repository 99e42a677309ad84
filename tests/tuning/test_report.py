"""Study files from a real Optuna study with known trials (no training): rows, CSV, best.yaml."""

from __future__ import annotations

import csv
import json

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from tuning_fixtures import digits_config

from dasl.config import load_config
from dasl.tuning.report import sensitivity_key, trial_rows, write_reports
from dasl.tuning.search_space import parse_param

SPECS = [parse_param("optim.lr=uniform:0.001:0.01"), parse_param("dar.lam=loguniform:0.01:10")]


def _study(states_values: list[tuple[TrialState, float | None, float]]) -> optuna.Study:
    """Trials with given (state, value, lam); lr fixed at 0.002."""
    study = optuna.create_study(direction="maximize")
    dists = {s.key: s.distribution() for s in SPECS}
    for state, value, lam in states_values:
        inter = {} if value is None else {0: value - 0.1, 1: value}
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params={"optim.lr": 0.002, "dar.lam": lam},
                distributions=dists,
                intermediate_values=inter,
                user_attrs={"epoch": 1} if state == TrialState.COMPLETE else {},
            )
        )
    return study


def test_reports_of_a_mixed_study(tmp_path) -> None:
    cfg = digits_config(tmp_path)
    study = _study(
        [
            (TrialState.COMPLETE, 0.40, 0.1),
            (TrialState.PRUNED, 0.20, 5.0),
            (TrialState.COMPLETE, 0.55, 1.0),
            (TrialState.FAIL, None, 0.3),
            (TrialState.COMPLETE, 0.55, 2.0),  # a tie: the earlier trial stays best
        ]
    )
    out = write_reports(study, cfg, SPECS, "map@r", tmp_path / "tune")
    assert set(out) == {"trials.json", "trials.csv", "best.yaml", "lambda_sensitivity.png"}

    rows = trial_rows(study, SPECS)
    assert [r["state"] for r in rows] == ["complete", "pruned", "complete", "fail", "complete"]
    assert rows[1]["value"] is None  # create_trial does not apply tell()'s pruned-value rule
    assert rows[0]["intermediate"] == {0: pytest.approx(0.3), 1: 0.4}

    data = json.loads(out["trials.json"].read_text())
    assert data["metric"] == "val/map@r" and data["best_trial"] == 2
    assert data["params"] == [s.text for s in SPECS]
    with open(out["trials.csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert [r["number"] for r in table] == ["0", "1", "2", "3", "4"]
    assert [float(r["dar.lam"]) for r in table] == [0.1, 5.0, 1.0, 0.3, 2.0]
    assert table[3]["value"] == ""

    text = out["best.yaml"].read_text()
    assert text.startswith("# dasl tune: best of 3 finished trial(s)")  # the failed one is out
    assert "trial 2: val map@r = 0.55" in text
    best = load_config(out["best.yaml"])
    assert (best.dar.lam, best.optim.lr, best.name) == (1.0, 0.002, cfg.name)
    assert best.compare is None


def test_no_complete_trial_no_best_yaml(tmp_path) -> None:
    cfg = digits_config(tmp_path)
    study = _study([(TrialState.FAIL, None, 0.3)])
    out = write_reports(study, cfg, SPECS, "map@r", tmp_path / "tune")
    assert set(out) == {"trials.json", "trials.csv"}
    assert not (tmp_path / "tune" / "best.yaml").exists()


def test_sensitivity_axis_is_lambda_else_the_first_param() -> None:
    assert sensitivity_key(SPECS).key == "dar.lam"
    assert sensitivity_key(SPECS[:1]).key == "optim.lr"
