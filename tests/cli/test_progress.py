"""What `dasl train` prints when stdout is not a terminal (a log file, CI): lines, no redraws;
a line per stage; one ETA over every variant; no library warnings a user cannot act on (#16).

Run as a child process with stdout a pipe, as a user's log would see it (in-process, pytest
would intercept the warnings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

import dasl

BASE = {
    "data": {"name": "digits", "batch_size": 40, "m_per_class": 8, "batches_per_epoch": 2},
    "model": {"backbone": "small_cnn", "embedding_dim": 8},
    "trainer": {"epochs": 1, "progress_bar": True},
    "eval": {"ks": [1, 2], "raw_baseline": False, "plots": False},
}


def _train(tmp_path: Path, config: dict, *extra: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"out_dir": str(tmp_path / "runs"), **config}))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(dasl.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "dasl.cli.main", "train", "--config", str(path), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, as in a log file
        env=env,
        check=False,
    )
    text = proc.stdout.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


def test_log_has_lines_stages_and_one_eta_and_no_noise(tmp_path: Path) -> None:
    cfg = {
        **BASE,
        "name": "cmp",
        "compare": {"proxyanchor": {"dar.lam": 0.0}, "dasl_pa": {"dar.lam": 1.0}},
    }
    text = _train(tmp_path, cfg)
    assert "\r" not in text, "progress-bar redraws in a log"
    lines = text.splitlines()
    for name in ("proxyanchor", "dasl_pa"):
        assert f"[{name}] training epochs 0-0 (of 0-0), 2 batches each" in lines, text
        assert any(ln.startswith(f"[{name}] epoch 0 of 0-0: batch 1/2") for ln in lines), text
        assert any(ln.startswith(f"[{name}] embedding ") for ln in lines), text
        assert any(ln.startswith(f"[{name}] metrics: ") for ln in lines), text
    done = [ln for ln in lines if " done in " in ln]
    assert len(done) == 2, text
    assert "all 2 variants: 1 of 2 epochs done, training ETA " in done[0], done
    assert "all 2 variants: 2 of 2 epochs done, training ETA 0 s" in done[1], done
    for noise in ("LeafSpec", "_pytree", "log_every_n_steps", "WARNING clustering"):
        assert noise not in text, noise


def test_resume_says_where_it_continues(tmp_path: Path) -> None:
    cfg = {**BASE, "name": "r"}
    _train(tmp_path, cfg)
    text = _train(tmp_path, cfg, "--resume", "trainer.epochs=2")
    resumed = [ln for ln in text.splitlines() if "resumed from epoch" in ln]
    assert resumed and resumed[0].startswith("[r] resumed from epoch 0 ("), text
    assert resumed[0].endswith("training epochs 1-1"), resumed
    assert "1 of 2 epochs done" not in text.split(resumed[0])[0]
    assert "[r] epoch 1 of 0-1 done in " in text
    assert "this run: 2 of 2 epochs done" in text
