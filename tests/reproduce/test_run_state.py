"""Which runs ``dasl reproduce`` trains, resumes or skips, read from their folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dasl.errors import ConfigError, DataError
from dasl.reproduce.run_state import State, config_differences, inspect_run

WANTED = {
    "name": "seed0",
    "out_dir": "a",
    "seed": 0,
    "data": {"root": "/x", "batch_size": 4},
    "trainer": {"epochs": 1},
}


def _folder(
    tmp_path: Path, config: dict | None, metrics: object = None, ckpt: bool = False
) -> Path:
    run = tmp_path / "run"
    run.mkdir(parents=True)
    if config is not None:
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        text = metrics if isinstance(metrics, str) else json.dumps(metrics)
        (run / "metrics.json").write_text(text)
    if ckpt:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    return run


def test_states(tmp_path: Path) -> None:
    wanted = yaml.safe_dump(WANTED)
    assert inspect_run(tmp_path / "absent", wanted).state is State.FRESH
    # config.yaml alone: the run stopped before its first checkpoint; trained from scratch.
    assert inspect_run(_folder(tmp_path / "a", WANTED), wanted).state is State.FRESH
    assert inspect_run(_folder(tmp_path / "b", WANTED, ckpt=True), wanted).state is State.RESUME
    done = inspect_run(_folder(tmp_path / "c", WANTED, {"recall@1": 0.5}, ckpt=True), wanted)
    assert done.state is State.DONE and done.metrics == {"recall@1": 0.5}


def test_settings_that_do_not_change_numbers_are_ignored(tmp_path: Path) -> None:
    moved = {**WANTED, "name": "x", "out_dir": "b", "data": {"root": "/y", "batch_size": 4}}
    run = _folder(tmp_path, moved, {"recall@1": 0.5})
    assert inspect_run(run, yaml.safe_dump(WANTED)).state is State.DONE


def test_other_settings_are_refused(tmp_path: Path) -> None:
    other = {**WANTED, "trainer": {"epochs": 2}, "seed": 1}
    run = _folder(tmp_path, other, {"recall@1": 0.5})
    with pytest.raises(ConfigError) as err:
        inspect_run(run, yaml.safe_dump(WANTED))
    assert "seed: 1 there, 0 now; trainer.epochs: 2 there, 1 now" in str(err.value)
    assert "\n" not in str(err.value)


def test_broken_folders_are_refused(tmp_path: Path) -> None:
    wanted = yaml.safe_dump(WANTED)
    with pytest.raises(ConfigError, match=r"without its config\.yaml"):
        inspect_run(_folder(tmp_path / "a", None, ckpt=True), wanted)
    with pytest.raises(DataError, match="not JSON"):
        inspect_run(_folder(tmp_path / "b", WANTED, "{"), wanted)
    with pytest.raises(DataError, match="expected a JSON object"):
        inspect_run(_folder(tmp_path / "c", WANTED, [1]), wanted)
    # A config.yaml edited by hand into invalid YAML: the user's file, one line (#17).
    broken = _folder(tmp_path / "d", WANTED, ckpt=True)
    (broken / "config.yaml").write_text("seed: [0\n")
    with pytest.raises(DataError, match=r"config\.yaml: not valid YAML"):
        inspect_run(broken, wanted)


def test_differences_cover_keys_on_one_side_only() -> None:
    diffs = config_differences({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}})
    assert diffs == ["a.c: None there, 2 now"]
