"""``dasl pretrain`` and ``dasl eval --protocol``: a small end-to-end run and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_output import one_line_error

from dasl.cli.main import main


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["pretrain", "ssl.methd=simclr"], "ssl.methd"),
        (
            ["pretrain", "ssl.method=byol"],
            "compare block sets it per variant (simclr, dasl_cf, dasl_cu)",
        ),
        (["pretrain", "compare.dasl_cf.ssl.method=byol"], "compare.dasl_cf: ssl.method"),
        (
            ["pretrain", "compare.byol.dar.lam=1"],
            "compare.byol: no such variant; the compare block has simclr",
        ),
        (["pretrain", "data.root=/nowhere/at/all"], "data.root"),
        (["pretrain", "trainer.epochs"], "KEY=VALUE"),
        (["pretrain", "--config", "/nowhere/c.yaml"], "c.yaml"),
        (["eval", "--checkpoint", "/nowhere/x.ckpt", "--protocol", "knn"], "x.ckpt"),
    ],
)
def test_user_errors_exit_2(argv: list[str], needle: str, capsys) -> None:
    assert main(argv) == 2
    assert needle in one_line_error(capsys)


def test_pretrain_compare_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "name": "ssl",
        "out_dir": str(tmp_path / "runs"),
        "data": {"name": "digits", "batch_size": 32, "batches_per_epoch": 2},
        "model": {"proj_hidden_dim": 32, "proj_dim": 16},
        "clustering": {"num_clusters": [10], "start_epoch": 0},
        "trainer": {"epochs": 1, "progress_bar": False},
        "eval": {"knn_k": [20], "linear_epochs": 3, "tsne_points": 100},
        "compare": {
            "simclr": {"ssl.method": "simclr", "dar.lam": 0.0},
            "dasl_cf": {"ssl.method": "dasl_cf", "dar.lam": 1.0},
            "dasl_cu": {"ssl.method": "dasl_cu", "dar.lam": 1.0},
        },
    }
    path = tmp_path / "ssl.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["pretrain", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| raw pixels |" in out and "| dasl_cu |" in out and "Where the time went" in out
    run = tmp_path / "runs" / "ssl"
    comparison = json.loads((run / "comparison.json").read_text())
    assert set(comparison) == {"raw pixels", "simclr", "dasl_cf", "dasl_cu"}
    for row in comparison.values():
        assert 0.0 <= row["knn_top1@20"] <= 1.0 and 0.0 <= row["linear_top1"] <= 1.0
    for name in (
        "embedding_map.png",
        "knn_curves.png",
        "cluster_purity.png",
        "timing.json",
        "report.html",
    ):
        assert (run / name).is_file(), name
    ckpt = run / "dasl_cu" / "checkpoints" / "best.ckpt"
    # The checkpoint's k-NN through the CLI reproduces the run's own number.
    out_json = tmp_path / "knn.json"
    argv = ["eval", "--checkpoint", str(ckpt), "--protocol", "knn", "--out", str(out_json)]
    assert main(argv) == 0
    again = json.loads(out_json.read_text())
    assert again["knn_top1@20"] == pytest.approx(comparison["dasl_cu"]["knn_top1@20"], abs=1e-9)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(ckpt), "--protocol", "linear"]) == 0
    assert "linear_top1" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(ckpt), "--protocol", "knn", "--split", "val"]) == 2
    assert "--split" in one_line_error(capsys)


def test_demo_falls_back_to_digits(monkeypatch, capsys) -> None:
    import dasl.data
    from dasl.cli.pretrain import _demo_data
    from dasl.ssl_config import load_pretrain_config

    monkeypatch.setattr(dasl.data, "fashion_mnist_available", lambda root=None: None)
    cfg = _demo_data(load_pretrain_config(None, ["trainer.epochs=3"]), ["trainer.epochs=3"])
    assert cfg.data.name == "digits" and cfg.data.max_per_class is None
    assert cfg.trainer.epochs == 3  # what the user set wins over the digits budget
    assert "digits" in capsys.readouterr().err
