"""The self-supervised glyph benchmark (#18 3(d)): λ choice, paired statistics against a slow
reference, the deadline, and a toy run end to end (real pipeline, scikit-learn's digits)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pytest
from scipy.stats import t as student_t

from benchmarks import glyphs_ssl as gs
from dasl.config import apply_overrides
from dasl.errors import ConfigError
from dasl.ssl_config import load_pretrain_config

UTC = dt.timezone.utc


def _rec(val_map: float, val_r1: float = 0.5, test: dict | None = None) -> dict:
    test = test or {"recall@1": 0.5, "map@r": 0.2, "nmi": 0.6}
    return {
        "val": {"map@r": val_map, "recall@1": val_r1},
        "test": test,
        "interclass": {"mean": 1.0, "std": 0.1, "cv": 0.1},
    }


def test_choose_takes_best_validation_map_then_r1_then_smaller_lambda() -> None:
    screen = {
        "simclr": {0.0: _rec(0.3)},
        "dasl_cf": {0.3: _rec(0.40), 1.0: _rec(0.41)},
        "dasl_cu": {0.3: _rec(0.40, 0.6), 1.0: _rec(0.40, 0.5)},
        "compact_inter": {1.0: _rec(0.40), 0.3: _rec(0.40)},
    }
    chosen = {"simclr": 0.0, "dasl_cf": 1.0, "dasl_cu": 0.3, "compact_inter": 0.3}
    assert gs.choose(screen) == chosen


def test_paired_differences_match_a_loop_reference() -> None:
    base = {0: 0.600, 1: 0.620, 2: 0.655, 3: 0.610}
    delta = {"dasl_cf": [0.010, 0.031, 0.020, -0.004], "dasl_cu": [0.0, -0.01, 0.02, 0.005]}
    delta["compact_inter"] = [0.002, 0.001, 0.004, 0.0]

    def runs(shift: list[float]) -> dict[int, dict]:
        return {
            s: _rec(0.4, test={"recall@1": v + d, "map@r": v / 2 + d, "nmi": v + 2 * d})
            for (s, v), d in zip(base.items(), shift, strict=True)
        }

    finals = {"simclr": runs([0.0] * 4), **{f: runs(d) for f, d in delta.items()}}
    rows, diffs = gs.summarize(finals, {"simclr": 0.0, "dasl_cf": 1.0})
    assert [r["family"] for r in rows] == ["simclr", "dasl_cf", "dasl_cu", "compact_inter"]
    m = 3 * len(gs.PAIRS)
    assert len(diffs) == m
    treated, control = "dasl_cf", "compact_inter"
    d = [100.0 * (a - b) for a, b in zip(delta[treated], delta[control], strict=True)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = 3.182 * sd / math.sqrt(n)  # t(0.975, 3)
    bonf = float(student_t.ppf(1 - 0.05 / (2 * m), n - 1)) * sd / math.sqrt(n)
    row = next(
        r for r in diffs if r["comparison"] == "dasl_cf - compact_inter" and r["metric"] == "MAP@R"
    )
    assert row["per seed"] == ", ".join(f"{x:+.2f}" for x in d)
    assert row["mean"] == pytest.approx(round(mean, 2))
    assert row["95% CI"] == f"{mean:+.2f} ± {half:.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"
    assert row[f"Bonferroni (m={m})"].startswith(f"{mean:+.2f} ± {bonf:.2f}")
    nmi = next(r for r in diffs if r["comparison"] == "dasl_cu - simclr" and r["metric"] == "NMI")
    assert nmi["per seed"] == "+0.00, -2.00, +4.00, +1.00"


def test_deadline_is_the_next_occurrence_and_bad_text_is_refused() -> None:
    now = dt.datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    assert gs.parse_deadline("00:50", now) == dt.datetime(2026, 12, 8, 0, 50, tzinfo=UTC)
    assert gs.parse_deadline("23:45", now) == dt.datetime(2026, 12, 7, 23, 45, tzinfo=UTC)
    assert gs.parse_deadline(None, now) is None
    with pytest.raises(ConfigError, match="HH:MM"):
        gs.parse_deadline("half past", now)


def _toy_base():
    base = dataclasses.replace(load_pretrain_config(None, None), compare=None)
    tiny = {"data.max_per_class": 6, "data.eval_max_per_class": 5, "trainer.epochs": 1}
    tiny["clustering.start_epoch"] = 0  # one epoch: DASL-cu clusters before it
    return apply_overrides(base, {**gs.BUDGET, **gs.QUICK, **tiny})


def test_toy_run_end_to_end_then_reused_from_its_trials(tmp_path, monkeypatch) -> None:
    # dasl_cf is compact_inter's code path with DAR in place of the control: left out for time.
    families = [f for f in gs.FAMILIES if f != "dasl_cf"]
    base = _toy_base()
    past = dt.datetime.now(UTC)  # no seed after the screen fits before it
    info = {"command": "python -m benchmarks.glyphs_ssl --quick", "commit": None, "date": "d"}
    finals = gs.run(base, [0.5], 2, tmp_path, past, info, log=lambda s: None, families=families)
    assert {f: sorted(v) for f, v in finals.items()} == {f: [0] for f in families}
    for rec in (r for by in finals.values() for r in by.values()):
        assert 0 <= rec["test"]["map@r"] <= rec["test"]["recall@1"] <= 1
        assert rec["val"]["map@r"] > 0
    cu = json.loads((tmp_path / "trials" / "dasl_cu__l0.5__s0.json").read_text())
    assert cu["config"]["ssl"]["method"] == "dasl_cu" and cu["config"]["dar"]["lam"] == 0.5
    ctrl = json.loads((tmp_path / "trials" / "compact_inter__l0.5__s0.json").read_text())
    assert ctrl["config"]["dar"]["kind"] == "compact_inter"
    md = (tmp_path / "glyphs_ssl.md").read_text()
    assert "dasl_cu - simclr" in md and "compact_inter - simclr" in md and "Raw pixels" in md
    assert "dasl_cf" not in md
    assert json.loads((tmp_path / "manifest.json").read_text())["command"] == info["command"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished trial was trained again")

    monkeypatch.setattr(gs, "train_trial", no_training)
    again = gs.run(base, [0.5], 1, tmp_path, None, info, log=lambda s: None, families=families)
    assert again == finals


@pytest.mark.parametrize(
    "argv",
    [
        ["--families", "byol"],
        ["--seeds", "0"],
        ["--lambdas", "0"],
        ["--deadline", "soon"],
        ["trainer.epochs=0"],
    ],
)
def test_bad_input_exits_2_with_one_line(argv, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        gs.main(["--quick", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "trials").exists()
