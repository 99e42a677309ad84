"""The dasl command: help, one-line config errors, and a small end-to-end run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_output import one_line_error

from dasl.cli.main import main


@pytest.mark.parametrize("argv", [[], ["train"], ["eval"], ["embed"], ["data"], ["data", "check"]])
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: dasl" in capsys.readouterr().out


def test_unknown_key_exits_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "optim.lrr=0.1"]) == 2
    assert "optim.lrr" in one_line_error(capsys)


def test_wrong_type_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("trainer:\n  epochs: ten\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "trainer.epochs" in one_line_error(capsys)


def test_missing_data_root_exits_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert main(["train", f"data.root={missing}", "data.name=cub200"]) == 2
    line = one_line_error(capsys)
    assert "data.root" in line and str(missing) in line


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in one_line_error(capsys)


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--checkpoint", str(tmp_path / "x.ckpt")]) == 2
    assert "x.ckpt" in one_line_error(capsys)


def _modes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mode & 0o777
        for p in folder.rglob("*")
        if p.is_file() and "logs" not in p.parts
    }


def test_compare_train_eval_embed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "name": "cmp",
        "out_dir": str(tmp_path / "runs"),
        "data": {"name": "digits", "batch_size": 40, "m_per_class": 8, "batches_per_epoch": 3},
        "model": {"backbone": "small_cnn", "embedding_dim": 16},
        "trainer": {"epochs": 1, "progress_bar": False},
        "eval": {"ks": [1, 2, 4], "tsne_points": 200},
        "compare": {"proxyanchor": {"dar.lam": 0.0}, "dasl_pa": {"dar.lam": 1.0}},
    }
    path = tmp_path / "cmp.yaml"
    path.write_text(yaml.safe_dump(config))
    # An unusual umask, so that the test tells "the user's permissions" from any fixed mode.
    old_umask = os.umask(0o027)
    try:
        assert main(["train", "--config", str(path), "compare.dasl_pa.dar.lam=0.5"]) == 0
    finally:
        os.umask(old_umask)
    out = capsys.readouterr().out
    assert "| raw pixels |" in out and "| dasl_pa |" in out and "Where the time went" in out
    run = tmp_path / "runs" / "cmp"
    comparison = json.loads((run / "comparison.json").read_text())
    assert set(comparison) == {"raw pixels", "proxyanchor", "dasl_pa"}
    assert (run / "comparison.md").read_text().startswith("| method |")
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"proxyanchor", "dasl_pa"}
    for name in ("embedding_map.png", "training_curves.png", "interclass_distances.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for variant in ("proxyanchor", "dasl_pa"):
        assert (run / variant / "config.yaml").is_file()
        assert (run / variant / "checkpoints" / "last.ckpt").is_file()
    # The override reached its variant; the shared config.yaml shows no lam that no variant used.
    assert yaml.safe_load((run / "dasl_pa" / "config.yaml").read_text())["dar"]["lam"] == 0.5
    assert yaml.safe_load((run / "proxyanchor" / "config.yaml").read_text())["dar"]["lam"] == 0.0
    top = yaml.safe_load((run / "config.yaml").read_text())
    assert "lam" not in top["dar"] and top["compare"]["dasl_pa"]["dar.lam"] == 0.5
    # Every output has the user's permissions (umask 027 -> 0640), checkpoints included.
    modes = _modes(run)
    assert {"metrics.json", "comparison.md", "embedding_map.png"} <= set(modes)
    assert set(modes.values()) == {0o640}, modes

    ckpt = run / "dasl_pa" / "checkpoints" / "best.ckpt"
    out_json = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(ckpt), "--out", str(out_json)]) == 0
    evaluated = json.loads(out_json.read_text())
    assert evaluated["map@r"] == pytest.approx(metrics["dasl_pa"]["map@r"], abs=1e-6)

    emb_dir = tmp_path / "emb"
    old_umask = os.umask(0o027)
    try:
        assert main(["embed", "--checkpoint", str(ckpt), "--out", str(emb_dir), "--faiss"]) == 0
    finally:
        os.umask(old_umask)
    assert _modes(emb_dir) == {
        name: 0o640 for name in ("embeddings.npy", "labels.npy", "index.faiss", "embed.json")
    }
    emb = np.load(emb_dir / "embeddings.npy")
    labels = np.load(emb_dir / "labels.npy")
    assert emb.shape == (len(labels), 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    import faiss

    index = faiss.read_index(str(emb_dir / "index.faiss"))
    assert index.ntotal == len(labels)
    _, nn = index.search(emb[:5], 1)
    assert list(nn[:, 0]) == [0, 1, 2, 3, 4]

    # A truncated copy of that checkpoint, and a file that is no checkpoint at all: one
    # line naming the file and what is wrong, exit 2.
    cut = tmp_path / "cut.ckpt"
    data = ckpt.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    for bad, what in ((cut, "not a complete PyTorch checkpoint"), (path, "not a complete")):
        for command in (["eval"], ["embed", "--out", str(tmp_path / "e2")]):
            assert main([*command, "--checkpoint", str(bad)]) == 2
            line = one_line_error(capsys)
            assert str(bad) in line and what in line, line


def test_default_demo_falls_back_to_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dasl.data

    monkeypatch.setattr(dasl.data, "glyphs_available", lambda root=None: False)
    argv = [
        "train",
        "--out-dir",
        str(tmp_path),
        "trainer.epochs=1",
        "data.batches_per_epoch=2",
        "eval.plots=false",
        "trainer.progress_bar=false",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "glyphs font packages are not installed" in captured.err
    assert "apt-get install" in captured.err
    cfg = yaml.safe_load((tmp_path / "demo" / "config.yaml").read_text())
    assert cfg["data"]["name"] == "digits"
    # The digits budget replaced the demo's glyphs-specific choices ...
    assert cfg["data"]["val_fraction"] == 0.1 and cfg["optim"]["lr"] == 0.001
    # ... but not what the user set.
    assert cfg["trainer"]["epochs"] == 1
    assert (tmp_path / "demo" / "comparison.md").is_file()


def test_default_demo_is_glyphs_and_its_fallback_check_is_cheap() -> None:
    from dasl.config import load_config
    from dasl.data import glyphs_available

    cfg = load_config(None)
    assert cfg.data.name == "glyphs" and cfg.compare is not None
    assert load_config(packaged="fmnist_demo").data.name == "fashion-mnist"
    assert glyphs_available("/no/such/folder") is False


def test_data_check_reports_counts_and_trap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    import fixtures

    root = fixtures.make_cub_tree(tmp_path)
    # A 6-class fixture is not the 5,864 / 5,924 split: a data problem, exit status 2.
    assert main(["data", "check", "cub200", "--root", str(root)]) == 2
    out = capsys.readouterr().out
    assert "train" in out and "test" in out
    assert "5,864" in out or "5864" in out
    assert main(["data", "check", "cub200", "--root", str(tmp_path / "missing")]) == 2
    assert "images.txt" in capsys.readouterr().out
