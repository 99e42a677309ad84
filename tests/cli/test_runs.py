"""Run folders across commands (#16): --resume keeps the run's own settings, a used --name
is refused (or moved aside with --overwrite), and eval accepts a run folder."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import yaml
from cli_output import one_line_error

from dasl.cli.main import main
from dasl.cli.run_dir import changed_keys, is_rank_zero, move_aside, next_free_name
from dasl.config import config_from_dict, dump_config

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from ssl_configs import tiny_digits_pretrain

TINY = {
    "name": "tiny",
    "data": {"name": "digits", "batch_size": 40, "m_per_class": 8, "batches_per_epoch": 2},
    "model": {"backbone": "small_cnn", "embedding_dim": 8},
    "trainer": {"epochs": 1, "progress_bar": False},
    "eval": {"ks": [1], "raw_baseline": False, "plots": False, "nmi": False},
}


def _tiny(tmp_path: Path) -> list[str]:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return ["--config", str(path), "--out-dir", str(tmp_path / "runs")]


def _saved(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_resume_continues_with_the_runs_own_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run started with overrides, resumed with more epochs and nothing else: the saved
    settings stay (not the default demo's), the epoch change is applied and recorded."""
    run = tmp_path / "runs" / "c"
    assert main(["train", *_tiny(tmp_path), "--name", "c", "data.batches_per_epoch=3"]) == 0
    capsys.readouterr()
    out_dir = str(tmp_path / "runs")
    assert main(["train", "--out-dir", out_dir, "--name", "c", "--resume", "trainer.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "--resume: continuing" in out and "trainer.epochs 1 -> 2" in out
    saved = _saved(run)
    assert saved["data"]["batches_per_epoch"] == 3 and saved["data"]["name"] == "digits"
    assert saved["trainer"]["epochs"] == 2
    (record,) = json.loads((run / "resumes.json").read_text())
    assert record["changed"] == {"trainer.epochs": {"from": 1, "to": 2}}
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [0, 1]  # epoch 0 from the first run, 1 resumed


def test_resume_refuses_a_setting_that_differs_from_the_saved_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same --config again with --resume, but the run was started with an override."""
    run = tmp_path / "runs" / "c"
    assert main(["train", *_tiny(tmp_path), "--name", "c", "data.batches_per_epoch=3"]) == 0
    before = (run / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", *_tiny(tmp_path), "--name", "c", "--resume"]) == 2
    line = one_line_error(capsys)
    assert "data.batches_per_epoch" in line and "3" in line and "given 2" in line, line
    assert (run / "config.yaml").read_text() == before
    assert not (run / "resumes.json").exists()


def test_resume_without_a_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *_tiny(tmp_path), "--name", "none", "--resume"]) == 2
    assert "no run to continue" in one_line_error(capsys)


def test_a_used_name_is_refused_then_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "c"
    assert main(["train", *_tiny(tmp_path), "--name", "c"]) == 0
    first_metrics = (run / "metrics.json").read_text()
    capsys.readouterr()
    assert main(["train", *_tiny(tmp_path), "--name", "c", "optim.lr=0.01"]) == 2
    line = one_line_error(capsys)
    assert "--resume" in line and "--overwrite" in line and "--name c-2" in line, line
    assert _saved(run)["optim"]["lr"] == 0.001  # untouched

    assert main(["train", *_tiny(tmp_path), "--name", "c", "--overwrite", "optim.lr=0.01"]) == 0
    out = capsys.readouterr().out
    (old,) = (tmp_path / "runs").glob("c.old-*")
    assert f"moved the previous run in {run} to {old}" in out
    assert (old / "metrics.json").read_text() == first_metrics
    assert _saved(old)["optim"]["lr"] == 0.001 and _saved(run)["optim"]["lr"] == 0.01
    # The new run's logs start afresh, not beside the old run's.
    assert sorted(p.name for p in (run / "logs").iterdir()) == ["csv", "tensorboard"]


def test_resume_and_overwrite_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", "--overwrite"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_pretrain_shares_the_run_folder_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refusals happen before anything trains: a saved pretraining config is enough."""
    cfg = tiny_digits_pretrain(tmp_path / "runs")
    run = tmp_path / "runs" / "p"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(cfg))  # type: ignore[arg-type]
    where = ["--out-dir", str(tmp_path / "runs"), "--name", "p"]
    assert main(["pretrain", *where, "data.batch_size=64"]) == 2
    line = one_line_error(capsys)
    assert "--resume" in line and "--name p-2" in line, line
    assert main(["pretrain", *where, "--resume", "optim.lr=0.1"]) == 2
    line = one_line_error(capsys)
    assert "optim.lr" in line and "0.003" in line and "0.1" in line, line


def test_eval_accepts_a_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "c"
    assert main(["train", *_tiny(tmp_path), "--name", "c", "--overwrite"]) == 0
    capsys.readouterr()
    out_json = tmp_path / "m.json"
    assert main(["eval", "--checkpoint", str(run), "--out", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint: {run / 'checkpoints' / 'best.ckpt'} (the best validation" in out
    trained = json.loads((run / "metrics.json").read_text())
    assert json.loads(out_json.read_text())["map@r"] == pytest.approx(trained["map@r"], abs=1e-6)

    (tmp_path / "empty").mkdir()
    assert main(["eval", "--checkpoint", str(tmp_path / "empty")]) == 2
    assert "folder without checkpoints" in one_line_error(capsys)
    # A folder of compare variants: the user picks one.
    variants = tmp_path / "cmp"
    for name in ("a", "b"):
        (variants / name / "checkpoints").mkdir(parents=True)
        (variants / name / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert main(["eval", "--checkpoint", str(variants)]) == 2
    line = one_line_error(capsys)
    assert "variants a, b" in line and str(variants / "a") in line, line


def test_next_free_name_and_move_aside(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo-2").mkdir()
    assert next_free_name(tmp_path / "demo") == "demo-3"
    now = dt.datetime(2026, 12, 7, 18, 0, 0, tzinfo=dt.timezone.utc)
    assert move_aside(tmp_path / "demo", now) == tmp_path / "demo.old-20261207-180000"
    (tmp_path / "demo").mkdir()
    assert move_aside(tmp_path / "demo", now) == tmp_path / "demo.old-20261207-180000-2"
    assert move_aside(tmp_path / "demo", now) is None


def test_changed_keys_reads_compare_variants_key_by_key() -> None:
    base = config_from_dict({"compare": {"a": {"dar.lam": 0.0}, "b": {"dar.lam": 1.0}}})
    other = config_from_dict(
        {"trainer": {"epochs": 7}, "compare": {"a": {"dar.lam": 0.0}, "b": {"dar.lam": 2.0}}}
    )
    assert changed_keys(base, other) == {
        "trainer.epochs": (5, 7),
        "compare.b.dar.lam": (1.0, 2.0),
    }


def test_only_the_first_rank_checks_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOCAL_RANK", "NODE_RANK", "RANK"):
        monkeypatch.delenv(var, raising=False)
    assert is_rank_zero()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert not is_rank_zero()
