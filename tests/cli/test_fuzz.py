"""Fuzzing the command line: config files, dotted overrides and argument lists.

Whatever the input, ``dasl`` exits 0 or 2 with a one-line error (``dasl...: error: ...``),
never a traceback and never a hang. Training itself is replaced by a recorder: the fuzzed
part is everything before it. Examples are bounded and each has a deadline.
"""

from __future__ import annotations

import dataclasses
import string
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasl.cli.main import main
from dasl.config import ConfigError, ExperimentConfig, load_config

FUZZ = settings(
    max_examples=40,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def _keys() -> list[str]:
    keys = []
    for f in dataclasses.fields(ExperimentConfig):
        sub = getattr(ExperimentConfig(), f.name)
        if dataclasses.is_dataclass(sub):
            keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(sub)]
        else:
            keys.append(f.name)
    return keys


KEYS = _keys()
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),  # small numbers hit the edges: 0 images per class, -1 epochs
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["digits", "cub200", "l2", "chain", "cosine", "subtrain", "val", "test"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
KEY_TEXT = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(KEYS),  # twice: mostly real keys, so values get past the key check
    st.sampled_from(["compare.dasl_pa.dar.lam", "compare.x.y", "compare.", "compare", "a..b"]),
    st.text(alphabet=string.ascii_lowercase + "._-=", max_size=12),
)


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import dasl.training.run as run

    monkeypatch.setattr(run, "run_experiment", lambda cfg, resume=False: None)


def _exit_code(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage errors and --help
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert code in (0, 2), (argv, code, captured.err)
    if code == 2:
        first = captured.err.splitlines()[0]
        assert first.startswith("dasl") and ": error: " in first, captured.err
    return code


@FUZZ
@given(mapping=st.dictionaries(KEY_TEXT, VALUES, max_size=6))
def test_fuzz_config_files(
    mapping: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training: None
) -> None:
    nested: dict = {}
    for key, value in mapping.items():
        section, _, leaf = key.partition(".")
        if leaf and isinstance(nested.setdefault(section, {}), dict):
            nested[section][leaf] = value
        else:
            nested[key] = value
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(nested))
    _exit_code(["train", "--config", str(path)], capsys)


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_config_text(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(
    overrides=st.lists(
        st.tuples(KEY_TEXT, st.one_of(st.text(max_size=10), VALUES.map(str))), max_size=5
    )
)
def test_fuzz_overrides(
    overrides: list, capsys: pytest.CaptureFixture[str], no_training: None
) -> None:
    argv = ["train"] + [f"{k}={v}" for k, v in overrides]
    _exit_code(argv, capsys)


TOKENS = st.sampled_from(
    [
        "train", "eval", "embed", "data", "check", "--config", "--name", "--out-dir",
        "--resume", "--checkpoint", "--root", "--dataset", "--split", "--ks", "--out",
        "--faiss", "--max-per-class", "cub200", "sop", "folder", "nope", "x", "1", "-1",
        "seed=1", "trainer.epochs=0", "dar.lam=-1", "data.root=/no/such", "--", "-",
    ]
)  # fmt: skip


@FUZZ
@given(argv=st.lists(st.one_of(TOKENS, st.text(max_size=8)), max_size=7))
def test_fuzz_argument_lists(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_training: None,
) -> None:
    monkeypatch.chdir(tmp_path)  # relative names never point at real files
    if "--help" in argv or "-h" in argv:
        return
    _exit_code(argv, capsys)
