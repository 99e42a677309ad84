"""Help and docs that agree with the code (#16): examples the demo accepts, lists generated
from the registry, errors named as typed, suggestions for typos, a fast ``--help``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_output import one_line_error

import dasl
from dasl.cli.main import build_parser, main
from dasl.config import load_config
from dasl.ssl_config import load_pretrain_config

REPO = Path(__file__).parents[2]


def _description(command: str) -> str:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return " ".join(sub.choices[command].description.split())


@pytest.mark.parametrize(
    ("command", "needle"), [("train", "DASL-PA"), ("pretrain", "SimCLR"), ("tune", "loguniform")]
)
def test_help_exits_zero_and_names_the_method(
    command: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert needle in capsys.readouterr().out


def test_train_and_pretrain_share_their_run_options() -> None:
    """One parser builder (#17): the same options, the same help but for the command's name."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")

    def options(command: str) -> dict[str, str]:
        return {
            a.dest: (a.help or "").replace(f"dasl {command} ", "dasl COMMAND ")
            for a in sub.choices[command]._actions
            if a.dest != "config"
        }

    train, pretrain = options("train"), options("pretrain")
    assert list(train) == ["help", "name", "out_dir", "resume", "overwrite", "overrides"]
    assert train == pretrain


@pytest.mark.parametrize(
    ("command", "load"), [("train", load_config), ("pretrain", load_pretrain_config)]
)
def test_help_examples_are_accepted_by_the_demo(command: str, load) -> None:
    """Every ``KEY=VALUE`` example offered as working is accepted by the default demo."""
    text = _description(command)
    # Examples the text says are refused ("a plain dar.lam=0.5 is refused") are not offers.
    words = [w.rstrip(".,;:)") for w in text.split()]
    offered = [
        w
        for i, w in enumerate(words)
        if re.fullmatch(r"[a-z_]+(\.[a-z_]+)+=\S+", w) and words[i + 1 : i + 3] != ["is", "refused"]
    ]
    assert offered, text
    for example in offered:
        load(None, [example])


def test_data_check_help_lists_every_registered_dataset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dasl.data.registry import DATASET_NAMES

    with pytest.raises(SystemExit):
        main(["data", "check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in DATASET_NAMES:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), name


def test_data_check_carves_val_as_the_run_would(capsys: pytest.CaptureFixture[str]) -> None:
    """Overrides reach the carving; the demo's dataset is split as the demo splits it."""
    from dasl.cli.main import _check_split_settings

    assert main(["data", "check", "digits", "data.val_fraction=0.5", "data.val_by=classes"]) == 0
    out = capsys.readouterr().out
    assert "val_fraction=0.5 by classes" in out
    counts = {r.split()[0]: r.split()[1:] for r in out.splitlines() if r.strip()[:1].isalpha()}
    # 5 training digits, half of them (rounded up) carved out; the default 0.1 carves 1.
    assert counts["subtrain*"][1] == "2" and counts["val*"][1] == "3", out

    args = build_parser().parse_args(["data", "check", "glyphs"])
    demo = load_config()
    assert demo.data.name == "glyphs"
    assert _check_split_settings(args) == {
        "val_fraction": demo.data.val_fraction,
        "seed": demo.seed,
        "allow_subset": False,
        "val_by": demo.data.val_by,
    }
    assert "split settings of the demo" in capsys.readouterr().out


def test_a_shared_key_is_reported_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "trainer.epochs=-1"]) == 2
    line = one_line_error(capsys)
    assert line == "dasl: error: trainer.epochs: must be >= 1, got -1", line
    # A variant's own key still names its variant.
    assert main(["train", "compare.dasl_pa.dar.lam=-1"]) == 2
    assert "compare.dasl_pa: dar.lam: must be >= 0" in one_line_error(capsys)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"dasl {dasl.__version__}"


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["train", "optim.lrr=0.1"], "(did you mean optim.lr?)"),
        (["train", "optm.lr=0.1"], "(did you mean optim.lr?)"),
        (["train", "trainer.epoch=3"], "(did you mean trainer.epochs?)"),
    ],
)
def test_misspelt_key_suggests_the_known_one(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert suggestion in one_line_error(capsys)


def test_misspelt_key_in_a_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lrr: 0.1\n")
    assert main(["train", "--config", str(path)]) == 2
    assert "optim.lrr: unknown key (did you mean optim.lr?)" in one_line_error(capsys)


def test_misspelt_subcommand_suggests_the_known_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["trian"])
    assert exc.value.code == 2
    assert "(did you mean 'train'?)" in one_line_error(capsys, prefix="dasl: error: ")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["train", "--help"]])
def test_help_and_version_import_no_torch(argv: list[str]) -> None:
    """``dasl --help`` took 5.5 s importing torch and Lightning it did not need."""
    code = (
        "import sys\nfrom dasl.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'numpy') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    env_path = str(REPO / "src")
    out = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "HEAVY []" in out, out


def test_bootstrap_header_names_each_demos_data() -> None:
    header = []
    for line in (REPO / "scripts" / "bootstrap.sh").read_text().splitlines()[1:]:
        if not line.startswith("#"):
            break
        header.append(line.lstrip("# "))
    text = " ".join(header)
    assert load_config().data.name in text  # glyphs: the default `dasl train`
    assert re.search(r"Fashion-MNIST package of the `dasl pretrain` demo", text), text
