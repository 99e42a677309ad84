"""The four extension examples of docs/EXTENDING.md, each a single plugin module taken from
the document as written, train one run together through ``dasl train`` (#17).

The run goes in a subprocess: the plugins register into the process-wide registries, which
the other tests of this process must not see.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "EXTENDING.md"
MODULES = ("ext_loss", "ext_estimator", "ext_metric", "ext_dataset")


def plugin_sources() -> dict[str, str]:
    """``{module: code}`` of each ``## ... (`ext_*.py`)`` section's Python block."""
    text = DOC.read_text(encoding="utf-8")
    found = {}
    for match in re.finditer(
        r"^## [^\n]*\(`(ext_\w+)\.py`\)\n(.*?)```python\n(.*?)\n```", text, re.M | re.S
    ):
        found[match.group(1)] = match.group(3)
    return found


def dasl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``dasl ARGS`` in a fresh process whose path holds the plugin modules of ``tmp_path``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    return subprocess.run(
        [sys.executable, "-m", "dasl.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )


def dasl_train(tmp_path: Path, config: dict, *overrides: str) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return dasl(tmp_path, "train", "--config", str(path), *overrides)


def tiny_config(tmp_path: Path) -> dict:
    return {
        "name": "ext",
        "out_dir": str(tmp_path / "runs"),
        "plugins": list(MODULES),
        "data": {
            "name": "stripes",
            "batch_size": 20,
            "m_per_class": 4,
            "batches_per_epoch": 2,
            "eval_batch_size": 256,
        },
        "model": {"backbone": "small_cnn", "embedding_dim": 8},
        "loss": {"name": "circle", "margin": 0.3},
        "dar": {"lam": 0.1, "estimator": "subsample"},
        "trainer": {"epochs": 1, "progress_bar": False},
        "eval": {"ks": [1, 2], "raw_baseline": False, "plots": False},
    }


def test_each_example_is_one_module() -> None:
    sources = plugin_sources()
    assert sorted(sources) == sorted(MODULES)
    for name, code in sources.items():
        compile(code, name, "exec")
        assert "register(" in code


def test_the_four_examples_train_through_the_cli(tmp_path: Path) -> None:
    for name, code in plugin_sources().items():
        (tmp_path / f"{name}.py").write_text(code + "\n")
    cfg = tiny_config(tmp_path)
    done = dasl_train(tmp_path, cfg)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "runs" / "ext"
    metrics = json.loads((run / "metrics.json").read_text())
    flat = json.dumps(metrics)
    assert '"mrr"' in flat, flat  # the registered metric, reported by its name
    values = [float(v) for v in re.findall(r'"mrr": ([0-9.eE+-]+)', flat)]
    assert values and all(0.0 < v <= 1.0 for v in values)
    assert yaml.safe_load((run / "config.yaml").read_text())["plugins"] == list(MODULES)
    history = json.loads((run / "history.json").read_text())
    rows = history if isinstance(history, list) else history.get("epochs", [])
    assert any("train/dar" in r for r in rows), history  # the plugin estimator ran

    # The checkpoint names its plugins: evaluating it imports them again.
    done = dasl(tmp_path, "eval", "--checkpoint", str(run))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "mrr" in done.stdout, done.stdout

    # Without the plugins the same names are unknown: one line, exit status 2.
    del cfg["plugins"]
    done = dasl_train(tmp_path, cfg, "--name", "bare")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "data.name: unknown dataset 'stripes'; choose one of" in done.stderr
