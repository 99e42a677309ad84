"""The training benchmarks' building blocks, at toy size (no timing asserts): they must not rot."""

from __future__ import annotations

import json

import pytest
from scipy import stats

from benchmarks import fmnist_dml, train_throughput
from dasl.config import load_config


def test_ci95_matches_scipy_t_interval() -> None:
    values = [0.61, 0.64, 0.59, 0.66, 0.62]
    mean, std, half = fmnist_dml.ci95(values)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    assert mean == pytest.approx(sum(values) / 5)
    assert half == pytest.approx((hi - lo) / 2, rel=1e-3)
    assert std == pytest.approx(stats.tstd(values))


def test_method_configs_differ_only_in_loss_and_regularizer() -> None:
    base = load_config(None)
    stage = fmnist_dml.FINAL
    np_cfg = fmnist_dml.method_config(base, "npair", (1.0, "abs"), 3, stage)
    dnp = fmnist_dml.method_config(base, "dasl_np", (1.0, "abs"), 3, stage)
    pa = fmnist_dml.method_config(base, "proxyanchor", (1.0, "abs"), 3, stage)
    assert np_cfg.loss.name == dnp.loss.name == "npair" and pa.loss.name == "proxyanchor"
    assert np_cfg.dar.lam == 0.0 and pa.dar.lam == 0.0 and dnp.dar.lam == 1.0
    assert dnp.dar.difference == "abs" and dnp.seed == 3
    assert np_cfg.data == dnp.data and np_cfg.data.train_split == "trainval"
    assert np_cfg.data.val_split is None


def test_train_throughput_runs_on_digits(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("benchmarks.common.RESULTS_DIR", tmp_path)
    train_throughput.main(
        [
            "--quick",
            "data.name=digits",
            "data.batch_size=40",
            "data.m_per_class=8",
            "data.eval_max_per_class=null",
        ]
    )
    run = tmp_path / "train_throughput" / "quick"  # the run folder of #17, with its manifest
    out = json.loads((run / "train_throughput_quick.json").read_text())
    info = json.loads((run / "manifest.json").read_text())
    assert set(info) == {"command", "commit", "date", "machine", "load"}
    settings = [row["setting"] for row in out["rows"]]
    assert settings[0] == "no DAR" and "exact l2" in settings and "chain l2" in settings
    assert all(row["images_per_s"] > 0 for row in out["rows"])
