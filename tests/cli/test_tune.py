"""``dasl tune`` on the command line: one-line errors with exit status 2, and a tiny real study."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_output import one_line_error

from dasl.cli.main import main
from dasl.config import load_config

TINY = {
    "name": "cmp",
    "seed": 0,
    "data": {"name": "digits", "batch_size": 40, "m_per_class": 8, "batches_per_epoch": 2},
    "model": {"backbone": "small_cnn", "embedding_dim": 16},
    "trainer": {"epochs": 2, "progress_bar": False, "log_every_n_steps": 1},
    "eval": {"ks": [1, 2], "raw_baseline": False, "plots": False},
    "compare": {"pa": {"dar.lam": 0.0}, "dasl": {"dar.lam": 1.0, "dar.estimator": "chain"}},
}


def _config(tmp_path: Path, compare: bool = True) -> str:
    data = {**TINY, "out_dir": str(tmp_path / "runs")}
    if not compare:
        data.pop("compare")
    path = tmp_path / ("cmp.yaml" if compare else "one.yaml")
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--param", "dar.lam=loguniform:0:1", "--variant", "pa"], "loguniform needs LO > 0"),
        (["--param", "dar.lamm=uniform:0:1", "--variant", "pa"], "dar.lamm: unknown key"),
        (["--param", "dar.lam=uniform:0:1"], "tuning needs one: add --variant"),
        (["--param", "dar.lam=uniform:0:1", "--variant", "x"], "unknown --variant 'x'; choose one"),
        (["--param", "dar.lam=uniform:0:1", "--variant", "pa", "--metric", "nmi"], "--metric"),
        (["--param", "dar.lam=uniform:0:1", "--variant", "pa", "optim.lrr=1"], "optim.lrr"),
        (["--param", "dar.lam=uniform:0:1", "--variant", "pa", "dar.lam=1"], "both --param"),
    ],
)
def test_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(["tune", "--config", _config(tmp_path), "--trials", "1", *args]) == 2
    assert needle in one_line_error(capsys)
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_variant_without_compare_and_bad_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = _config(tmp_path, compare=False)
    base = ["tune", "--config", one, "--param", "dar.lam=uniform:0:1"]
    assert main([*base, "--trials", "1", "--variant", "pa"]) == 2
    assert "no compare" in one_line_error(capsys)
    assert main([*base, "--trials", "0"]) == 2
    assert "--trials" in one_line_error(capsys)
    assert (
        main(
            [
                "tune",
                "--config",
                str(tmp_path / "no.yaml"),
                "--trials",
                "1",
                "--param",
                "dar.lam=uniform:0:1",
            ]
        )
        == 2
    )
    assert "no.yaml" in one_line_error(capsys)


def test_tunes_one_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", "--config", _config(tmp_path), "--variant", "dasl", "--trials", "1"]
    argv += ["--param", "dar.lam=loguniform:0.1:10", "--no-prune"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "trial 0 [1/1] dar.lam=" in out and "best map@r" in out
    tune_dir = tmp_path / "runs" / "cmp-dasl" / "tune"
    best = load_config(tune_dir / "best.yaml")
    # The variant's own settings are kept, its lambda replaced, and it is a plain config.
    assert best.compare is None and best.name == "cmp-dasl"
    assert best.dar.estimator == "chain" and 0.1 <= best.dar.lam <= 10
    assert (tune_dir / "study.db").is_file() and (tune_dir / "lambda_sensitivity.png").is_file()
