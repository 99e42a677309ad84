"""``dasl reproduce``: end to end at a toy budget on small datasets in the official layouts
(CUB-200-2011, ImageNet-100), finished rows skipped, resumed rows, and one-line refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from cli_output import one_line_error

from dasl.cli.main import main
from dasl.reproduce.seed_summary import summarize

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))

import fixtures
import ssl_fixtures

# Tiny images and model, 2 batches of 4, one epoch: seconds per row.
TOY = [
    "data.allow_subset=true",
    "data.num_workers=0",
    "data.transform=small",
    "data.image_size=8",
    "data.batch_size=4",
    "data.batches_per_epoch=2",
    "model.backbone=small_cnn",
    "model.pretrained=false",
    "model.embedding_dim=8",
    "model.pooling=avg",
    "model.freeze_bn=false",
    "model.channels_last=false",
    "optim.warmup_epochs=0",
    "trainer.epochs=1",
    "trainer.progress_bar=false",
    "trainer.log_every_n_steps=1",
    "eval.plots=false",
]


def _cub(tmp_path: Path) -> Path:
    return fixtures.make_cub_tree(
        tmp_path / "cub", classes=(1, 2, 3, 4, 101, 102, 103), per_class=4
    )


def _reproduce(root: Path, out: Path, *extra: str) -> int:
    return main(["reproduce", "cub200", "--root", str(root), "--out", str(out), *TOY, *extra])


def _mtimes(out: Path, row: str, seed: int = 0) -> tuple[int, int]:
    run = out / row / f"seed{seed}"
    return (
        (run / "metrics.json").stat().st_mtime_ns,
        (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns,
    )


def test_cub_rows_report_skip_select_resume_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, out = _cub(tmp_path), tmp_path / "out"
    assert _reproduce(root, out, "--rows", "npair,dasl_np") == 0
    stdout = capsys.readouterr().out
    assert "row 1 of 2: N-pair, seed 0 ... training into" in stdout
    assert "row 2 of 2: DASL-NP, seed 0 ... training into" in stdout

    report = json.loads((out / "reproduce.json").read_text())
    assert [r["key"] for r in report["rows"]] == ["npair", "dasl_np"]
    for row, poster_r1, poster_nmi in (("npair", 64.52, 69.53), ("dasl_np", 69.63, 73.52)):
        (entry,) = [r for r in report["rows"] if r["key"] == row]
        metrics = json.loads((out / row / "seed0" / "metrics.json").read_text())
        r1 = entry["columns"]["recall@1"]
        assert r1["mean"] == pytest.approx(100 * metrics["recall@1"])
        assert r1["poster"] == poster_r1 and r1["gap"] == pytest.approx(r1["mean"] - poster_r1)
        assert entry["columns"]["nmi"]["poster"] == poster_nmi
        assert entry["extra"]["map@r"]["mean"] == pytest.approx(100 * metrics["map@r"])
    md = (out / "reproduce.md").read_text()
    assert "| N-pair |" in md and "| DASL-NP |" in md and "64.52" in md and "69.63" in md

    # Rerun: finished rows are read, not trained.
    before = {row: _mtimes(out, row) for row in ("npair", "dasl_np")}
    assert _reproduce(root, out, "--rows", "npair,dasl_np") == 0
    stdout = capsys.readouterr().out
    assert "row 1 of 2: N-pair, seed 0: row done, skipping" in stdout
    assert "row 2 of 2: DASL-NP, seed 0: row done, skipping" in stdout
    assert "training into" not in stdout
    assert {row: _mtimes(out, row) for row in ("npair", "dasl_np")} == before

    # --rows chooses: the report then holds that row only.
    assert _reproduce(root, out, "--rows", "dasl_np") == 0
    assert "row 1 of 1: DASL-NP, seed 0: row done, skipping" in capsys.readouterr().out
    report = json.loads((out / "reproduce.json").read_text())
    assert [r["key"] for r in report["rows"]] == ["dasl_np"]

    # A run without metrics.json but with its last checkpoint resumes from it: the epoch it
    # finished is not trained again (the checkpoint is untouched), then it is evaluated.
    (out / "npair" / "seed0" / "metrics.json").unlink()
    last_before = before["npair"][1]
    assert _reproduce(root, out, "--rows", "npair") == 0
    assert "row 1 of 1: N-pair, seed 0 ... resuming from" in capsys.readouterr().out
    assert _mtimes(out, "npair")[1] == last_before

    # --seeds 2: seed 0 is done, seed 1 trains; mean ± t-interval over both.
    assert _reproduce(root, out, "--rows", "npair", "--seeds", "2") == 0
    stdout = capsys.readouterr().out
    assert "seed 0: row done, skipping" in stdout and "seed 1 ... training into" in stdout
    (entry,) = json.loads((out / "reproduce.json").read_text())["rows"]
    values = [
        100 * json.loads((out / "npair" / f"seed{s}" / "metrics.json").read_text())["recall@1"]
        for s in (0, 1)
    ]
    r1 = entry["columns"]["recall@1"]
    assert r1["n"] == 2 and r1["values"] == pytest.approx(values)
    assert r1["ci95"] == pytest.approx(summarize(values).half_width)

    # Other settings than the finished runs': refused before anything trains.
    assert _reproduce(root, out, "--rows", "npair", "trainer.epochs=2") == 2
    line = one_line_error(capsys)
    assert "trainer.epochs: 1 there, 2 now" in line and "npair/seed0" in line


def test_imagenet100_self_supervised_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dasl.data.imagenet import imagenet100_classes

    # five classes: the linear probe's top-5 needs at least five
    root = ssl_fixtures.make_imagenet_tree(tmp_path / "in100", imagenet100_classes()[:5], 4, 2)
    out = tmp_path / "out"
    argv = ["reproduce", "imagenet100", "--root", str(root), "--out", str(out), "--rows"]
    toy = [
        "data.allow_subset=true",
        "data.num_workers=0",
        "data.image_size=16",
        "data.batch_size=6",
        "data.batches_per_epoch=2",
        "data.val_fraction=0.2",
        "model.backbone=small_cnn",
        "model.proj_hidden_dim=16",
        "model.proj_dim=8",
        "model.channels_last=false",
        "optim.warmup_epochs=0",
        "trainer.epochs=1",
        "trainer.devices=1",
        "trainer.strategy=auto",
        "trainer.progress_bar=false",
        "eval.linear=fast",
        "eval.linear_epochs=2",
        "eval.monitor_every=1",
        "eval.plots=false",
    ]
    assert main([*argv, "simclr", *toy]) == 0
    assert "row 1 of 1: SimCLR, seed 0 ... training into" in capsys.readouterr().out
    (row,) = json.loads((out / "reproduce.json").read_text())["rows"]
    metrics = json.loads((out / "simclr" / "seed0" / "metrics.json").read_text())
    assert row["columns"]["knn_top1@200"]["poster"] == 55.9
    assert row["columns"]["linear_top1"]["poster"] == 61.3
    assert row["columns"]["linear_top5"]["mean"] == pytest.approx(100 * metrics["linear_top5"])
    assert row["extra"]["knn_top1@20"]["mean"] == pytest.approx(100 * metrics["knn_top1@20"])
    assert "| SimCLR |" in (out / "reproduce.md").read_text()
    # SimCLR and DASL differ in lambda: one value for both is refused before anything runs
    assert main([*argv, "simclr,dasl_cu", *toy, "dar.lam=0.5"]) == 2
    assert "write ROW.dar.lam=0.5 for one row" in one_line_error(capsys)


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "cub201"])
    assert exc.value.code == 2
    line = one_line_error(capsys, "dasl reproduce: error: ")
    assert "'cub201'" in line and all(
        name in line for name in ("cub200", "cars196", "sop", "inshop", "imagenet100")
    )

    out = tmp_path / "out"
    # No dataset under --root: the reader's message naming the missing file, before training.
    assert _reproduce(tmp_path / "empty", out) == 2
    line = one_line_error(capsys)
    assert "missing" in line and "CUB_200_2011/images.txt" in line
    assert not out.exists()
    # A partial copy: the reader's count check, with the setting that accepts it.
    root = _cub(tmp_path)
    assert main(["reproduce", "cub200", "--root", str(root), "--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert "expected 5,864 / 100" in line and line.endswith(
        "pass data.allow_subset=true to accept subsets."
    )
    assert not out.exists()

    cases = [
        (["--rows", "npair,arcface"], "its rows: npair, dasl_np, proxyanchor, dasl_pa"),
        (["--seeds", "0"], "--seeds"),
        (["seed=3"], "seed: set by --seeds"),
        (["dar.lam=3"], "write ROW.dar.lam=3 for one row"),
        (["--rows", "npair", "dasl_pa.dar.lam=3"], "row dasl_pa is not among the rows"),
        (["data.root=/x"], "--root DIR or data.root=DIR"),
        (["model.bakbone=x"], "model.bakbone"),
    ]
    for extra, needle in cases:
        assert _reproduce(tmp_path, out, *extra) == 2, extra
        assert needle in one_line_error(capsys), extra
    assert not out.exists()


def test_help_lists_tables_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "cub200, cars196, sop, inshop, imagenet100" in out
    assert "imagenet100: simclr, dasl_cf, dasl_cu" in out and "95% t-interval" in out
