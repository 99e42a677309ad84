"""The exit-code convention and the errors a new user meets (issue #10, items 1-6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from cli_output import one_line_error

import dasl
from dasl.cli.main import main

# Literal codes (not imported) so that these tests also run, and fail, on older code.
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130

FIXTURES = Path(__file__).parents[1] / "data"


@pytest.fixture
def captured_runs(monkeypatch: pytest.MonkeyPatch) -> list:
    """``dasl train`` up to the point where it would train: the resolved configs."""
    import dasl.training.run as run

    seen: list = []
    monkeypatch.setattr(run, "run_experiment", lambda cfg, resume=False: seen.append(cfg))
    return seen


# ---------------------------------------------------------------- 1. compare overrides


def test_override_that_a_variant_sets_is_refused_with_its_spelling(
    capsys: pytest.CaptureFixture[str], captured_runs: list
) -> None:
    assert main(["train", "dar.lam=0.3", "trainer.epochs=1"]) == EXIT_USAGE
    line = one_line_error(capsys, prefix="dasl")
    assert "dar.lam" in line and "compare.dasl_pa.dar.lam=0.3" in line
    assert captured_runs == []


def test_per_variant_override_is_applied(captured_runs: list) -> None:
    from dasl.config import variants

    assert main(["train", "compare.dasl_pa.dar.lam=0.3", "trainer.epochs=1"]) == 0
    runs = dict(variants(captured_runs[0]))
    assert runs["dasl_pa"].dar.lam == 0.3 and runs["proxyanchor"].dar.lam == 0.0
    assert runs["dasl_pa"].trainer.epochs == runs["proxyanchor"].trainer.epochs == 1


def test_unknown_variant_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "compare.dasl_np.dar.lam=0.3"]) == EXIT_USAGE
    assert "proxyanchor, dasl_pa" in one_line_error(capsys, prefix="dasl")


# ----------------------------------------------------------- 6. options and overrides mix


def test_options_and_overrides_in_any_order(captured_runs: list) -> None:
    assert main(["train", "seed=1", "--name", "x", "trainer.epochs=2", "--out-dir", "o"]) == 0
    cfg = captured_runs[0]
    assert (cfg.seed, cfg.name, cfg.trainer.epochs, cfg.out_dir) == (1, "x", 2, "o")
    # later overrides win, wherever they stand
    assert main(["train", "trainer.epochs=2", "--name", "y", "trainer.epochs=3"]) == 0
    assert captured_runs[1].trainer.epochs == 3


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "seed=1", "--nmae", "x"],
        ["train", "--bogus"],
        ["eval", "--checkpoint", "c.ckpt", "seed=1"],
        ["data", "check", "cub200", "--rot", "x"],
        ["trian"],
    ],
)
def test_unknown_options_are_refused_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE
    line = one_line_error(capsys, prefix="dasl")
    assert "error:" in line and "--help" in line


# ------------------------------------------------------------------- 2. bad checkpoints


def test_checkpoint_that_is_not_dasls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "config.yaml"
    text.write_text("name: not a checkpoint\n")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(other.read_bytes()[:200])
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    cases = {
        text: "not a complete PyTorch checkpoint",
        other: "not a checkpoint written by dasl train",
        cut: "not a complete PyTorch checkpoint",
        empty: "empty file",
    }
    for path, what in cases.items():
        for command in (["eval"], ["embed", "--out", str(tmp_path / "e")]):
            assert main([*command, "--checkpoint", str(path)]) == EXIT_USAGE
            line = one_line_error(capsys, prefix="dasl")
            assert str(path) in line and what in line, line


# ------------------------------------------------------------------------ 4. exit codes


def test_data_check_missing_root_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "check", "cub200", "--root", str(tmp_path / "no/such/dir")]) == 2
    out = capsys.readouterr().out
    assert str(tmp_path / "no/such/dir") in out and "PROBLEMS" in out


def test_data_check_fashion_mnist_prints_resolved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(FIXTURES))
    import fixtures

    import dasl.data.fashion_mnist as fm

    root = fixtures.make_fashion_mnist_files(tmp_path / "fm", n_per_class=4, n_test_per_class=2)
    monkeypatch.setattr(fm, "default_roots", lambda: [tmp_path / "nothing", root])
    assert main(["data", "check", "fashion-mnist"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"dataset fashion-mnist at {root}: OK"
    monkeypatch.setattr(fm, "default_roots", lambda: [tmp_path / "nothing"])
    assert main(["data", "check", "fashion-mnist"]) == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert "None" not in first and str(tmp_path / "nothing") in first


def test_run_command_convention(capsys: pytest.CaptureFixture[str]) -> None:
    from dasl.cli.errors import UserError, run_command

    def raises(exc: BaseException):
        def command(args: object) -> int:
            raise exc

        return command

    assert run_command(raises(UserError("bad thing\nhint")), None) == EXIT_USAGE
    assert capsys.readouterr().err == "dasl: error: bad thing\nhint\n"
    assert run_command(raises(OSError(28, "No space left on device", "/x/y")), None) == 2
    err = capsys.readouterr().err
    assert err == "dasl: error: /x/y: No space left on device\n"
    assert run_command(raises(KeyboardInterrupt()), None) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "\ndasl: interrupted\n"
    assert run_command(raises(dasl.Interrupted("stopped; rerun")), None) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "\ndasl: stopped; rerun\n"
    assert run_command(raises(dasl.DataError("bad data")), None) == EXIT_USAGE
    assert capsys.readouterr().err == "dasl: error: bad data\n"
    with pytest.raises(ValueError):  # a bare ValueError is a bug since #17, not bad input
        run_command(raises(ValueError("bug")), None)
    with pytest.raises(NotADirectoryError):  # only the machine's refusals are exit 2
        run_command(raises(NotADirectoryError(20, "Not a directory", "/x")), None)
    with pytest.raises(ZeroDivisionError):  # a bug: Python's traceback, exit status 1
        run_command(raises(ZeroDivisionError("bug")), None)


def test_output_path_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], captured_runs: list
) -> None:
    afile = tmp_path / "taken"
    afile.write_text("x")
    assert main(["train", "--out-dir", str(afile), "trainer.epochs=1"]) == EXIT_USAGE
    assert str(afile) in one_line_error(capsys, prefix="dasl")
    assert captured_runs == []


def test_a_file_in_the_way_of_an_output_folder_is_a_config_error(tmp_path: Path) -> None:
    from dasl.errors import ConfigError
    from dasl.utils.io import atomic_write_json, make_dir

    afile = tmp_path / "taken"
    afile.write_text("x")
    with pytest.raises(ConfigError, match=f"{afile} is a file"):
        atomic_write_json(afile / "sub" / "m.json", {})
    with pytest.raises(ConfigError, match=f"{afile} is a file"):
        make_dir(afile)
    assert make_dir(tmp_path / "a" / "b").is_dir()


# ---------------------------------------------- #17: DaslError is bad input, the rest a bug


@pytest.fixture
def planted_run(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """``dasl train`` whose training raises the exception put in the returned list."""
    import dasl.training.run as run

    planted: list[BaseException] = []

    def run_experiment(cfg: object, resume: bool = False) -> None:
        raise planted[0]

    monkeypatch.setattr(run, "run_experiment", run_experiment)
    return planted


@pytest.mark.parametrize(
    "exc",
    [
        dasl.DaslError("bad input"),
        dasl.DataError("bad input"),
        dasl.MissingDataError("bad input"),
        dasl.UnreadableDataError("bad input"),
        dasl.CheckpointError("bad input"),
        dasl.DependencyError("bad input"),
        dasl.ConfigError("bad input\n  the layout it expects"),
    ],
)
def test_dasl_error_is_one_line_and_exit_2(
    exc: BaseException, planted_run: list, capsys: pytest.CaptureFixture[str]
) -> None:
    planted_run.append(exc)
    assert main(["train", "trainer.epochs=1"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("dasl: error: bad input\n") and "Traceback" not in err


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("planted bug"),
        FileNotFoundError(2, "No such file or directory", "/planted"),
        KeyError("planted"),
        RuntimeError("planted bug"),
        NotADirectoryError(20, "Not a directory", "/planted"),
    ],
)
def test_any_other_exception_is_a_bug(exc: BaseException, planted_run: list) -> None:
    """Built-in exceptions are no longer taken for bad input: they propagate (traceback)."""
    planted_run.append(exc)
    with pytest.raises(type(exc)):
        main(["train", "trainer.epochs=1"])


def test_planted_bug_exits_1_with_a_traceback(tmp_path: Path) -> None:
    code = (
        "import sys, dasl.training.run as run\n"
        "from dasl.cli.main import main\n"
        "def bug(cfg, resume=False):\n"
        "    raise ValueError('planted bug')\n"
        "run.run_experiment = bug\n"
        "sys.exit(main(['train', 'trainer.epochs=1', '--out-dir', sys.argv[1]]))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(dasl.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.rstrip().endswith("ValueError: planted bug")
    assert "dasl: error:" not in proc.stderr


def test_interrupted_is_130_with_its_message(planted_run: list, capsys) -> None:
    from dasl.training.run import RunInterrupted

    planted_run.append(RunInterrupted("[x] interrupted in epoch 1; resume with --resume"))
    assert main(["train", "trainer.epochs=1"]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "\ndasl: [x] interrupted in epoch 1; resume with --resume\n"


def test_every_exception_class_of_dasl_derives_from_dasl_error() -> None:
    """The classes dasl raises for the user, under one base (#17)."""
    from dasl.cli.errors import UserError
    from dasl.data import UnreadableImageError
    from dasl.data.glyphs_fonts import MissingFontsError
    from dasl.deploy import IndexFolderError
    from dasl.deploy.model_export import MissingExportPackages
    from dasl.training.guards import TrainingDiverged
    from dasl.training.run import RunInterrupted
    from dasl.tuning import TuneInterrupted

    expected = {
        UserError: dasl.DaslError,
        UnreadableImageError: dasl.UnreadableDataError,
        MissingFontsError: dasl.MissingDataError,
        IndexFolderError: dasl.DataError,
        MissingExportPackages: dasl.DependencyError,
        TrainingDiverged: dasl.DaslError,
        RunInterrupted: dasl.Interrupted,
        TuneInterrupted: dasl.Interrupted,
    }
    for cls, base in expected.items():
        assert issubclass(cls, base), cls


def test_worker_tracebacks_are_reduced_to_their_message() -> None:
    from dasl.cli.errors import one_line

    wrapped = (
        "Caught UnreadableImageError in DataLoader worker process 0.\nOriginal Traceback "
        '(most recent call last):\n  File "x.py", line 1, in f\n'
        "dasl.data.dataset.UnreadableImageError: cannot read image /d/a.jpg: truncated\n"
    )
    assert one_line(wrapped) == "cannot read image /d/a.jpg: truncated"


def test_unreadable_image_during_training_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A zero-byte image met by a DataLoader worker: one line naming the file, exit 2."""
    sys.path.insert(0, str(FIXTURES))
    import fixtures

    root = fixtures.make_folder_tree(tmp_path / "f", ("a", "b", "c", "d"), per_class=4)
    (root / "a" / "zero.jpg").write_bytes(b"")
    cfg = {
        "name": "bad",
        "out_dir": str(tmp_path / "runs"),
        "data": {
            "name": "folder",
            "root": str(root),
            "transform": "imagenet",
            "image_size": 16,
            "in_channels": 3,
            "batch_size": 8,
            "m_per_class": 4,
            "batches_per_epoch": 20,
            "val_split": None,
            "train_split": "train",
            "num_workers": 1,
        },
        "model": {"backbone": "small_cnn", "embedding_dim": 8},
        "trainer": {"epochs": 1, "progress_bar": False},
        "eval": {"raw_baseline": False, "plots": False},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path)]) == EXIT_USAGE
    line = one_line_error(capsys, prefix="dasl")
    assert f"cannot read image {root / 'a' / 'zero.jpg'}" in line, line


# ------------------------------------------------------------- 5. Ctrl-C and epoch numbers


def _default_sigint() -> None:
    # A child inherits an ignored or blocked SIGINT: give it Python's own Ctrl-C handling.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_message_on_its_own_line(tmp_path: Path) -> None:
    """A real SIGINT during the first epoch (stdout a pipe: progress lines, no bar since #16):
    the notice starts a line of its own and counts epochs from 0, like the progress lines;
    exit status 130."""
    cfg = {
        "name": "int",
        "out_dir": str(tmp_path / "runs"),
        "data": {"name": "digits", "batch_size": 40, "m_per_class": 8, "batches_per_epoch": 100000},
        "model": {"backbone": "small_cnn", "embedding_dim": 8},
        "trainer": {"epochs": 2, "progress_bar": True},
        "eval": {"raw_baseline": False, "plots": False},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(dasl.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dasl.cli.main", "train", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, as on a terminal
        env=env,
        # even if this process ignores or blocks Ctrl-C (a CI run of 2026-12-08 waited 13
        # minutes on a child that inherited it)
        preexec_fn=_default_sigint,
    )
    assert proc.stdout is not None
    seen = b""
    while b": batch 1/" not in seen:  # the first batch is trained (the progress line)
        chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
        if not chunk:
            break
        seen += chunk
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate()
    text = (seen + rest).decode(errors="replace")
    assert proc.returncode == EXIT_INTERRUPTED, text[-3000:]
    lines = text.replace("\r", "\n").splitlines()
    notice = [ln for ln in lines if "interrupted in epoch" in ln]
    assert notice and notice[0].startswith("dasl: [int] interrupted in epoch 0"), text[-2000:]
    assert "before its first checkpoint" in notice[0]
