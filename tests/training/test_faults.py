"""Runs under faults: a process killed mid-write, a full disk, a diverging learning rate,
a resume without a checkpoint, and determinism of two identical runs.

The kills are real: a child process writes with ``RLIMIT_FSIZE`` set below the size of the
file being written and ``SIGXFSZ`` at its default action, so the kernel kills it in the
middle of the write, with no ``finally`` or ``atexit`` running (what ``kill -9`` does), and
a real partial file is left on disk.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from training_configs import tiny_digits_config

import dasl
from dasl.training.run import train_variant
from dasl.utils.io import atomic_write_json

HERE = Path(__file__).parent
QUIET = {"log": lambda s: None}


# Imported when called, so that every test runs (and fails for its own reason) on older code.
def check_checkpoint(path: Path) -> None:
    from dasl.training.checkpoint_io import check_checkpoint

    check_checkpoint(path)


def is_temporary(path: Path) -> bool:
    from dasl.utils.io import is_temporary

    return is_temporary(path)


def _child_env(tmpdir: Path) -> dict[str, str]:
    """The child imports the same dasl as this test (a worktree's or main's src)."""
    env = dict(os.environ)
    src = str(Path(dasl.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, str(HERE), env.get("PYTHONPATH", "")])
    env["TMPDIR"] = str(tmpdir)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run_child(code: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmpdir = tmp_path / "child-tmp"
    tmpdir.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_child_env(tmpdir),
        capture_output=True,
        text=True,
    )
    return proc, tmpdir


KILL_AT_NEXT_BIG_WRITE = """
import resource, signal

def kill_mid_write(limit):
    # The next write past `limit` bytes kills this process with SIGXFSZ, half-way.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
"""


def test_kill_during_checkpoint_write_then_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    code = (
        KILL_AT_NEXT_BIG_WRITE
        + f"""
import lightning as L
from pathlib import Path
from training_configs import tiny_digits_config
from dasl.training.run import train_variant

run_dir = Path({str(run_dir)!r})

class KillInEpoch1(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            kill_mid_write((run_dir / "checkpoints" / "last.ckpt").stat().st_size // 2)

cfg = tiny_digits_config(Path({str(tmp_path / "runs")!r}))
train_variant(cfg, run_dir, callbacks=[KillInEpoch1()], log=lambda s: None)
"""
    )
    proc, tmpdir = _run_child(code, tmp_path)
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr[-2000:]
    ckpts = run_dir / "checkpoints"
    partial = [p for p in ckpts.iterdir() if is_temporary(p)]
    assert partial and all(p.stat().st_size > 0 for p in partial)  # killed mid-write
    for p in ckpts.glob("*.ckpt"):  # no half-written file under a checkpoint name
        check_checkpoint(p)
    assert torch.load(ckpts / "last.ckpt", weights_only=False)["epoch"] == 0
    assert not (run_dir / "metrics.json").exists()
    assert list(tmpdir.iterdir()) == []  # nothing left behind in $TMPDIR either

    # --resume: debris removed, epoch 1 trained again from the complete epoch-0 checkpoint
    # (that a resumed run matches an uninterrupted one exactly is test_run.py's business).
    cfg = tiny_digits_config(tmp_path / "runs")
    resumed = train_variant(cfg, run_dir, resume=True, **QUIET)
    assert not [p for p in ckpts.iterdir() if is_temporary(p)]
    assert [row["epoch"] for row in resumed.history] == [0.0, 1.0]
    assert torch.load(ckpts / "last.ckpt", weights_only=False)["epoch"] == 1
    assert 0.0 <= resumed.metrics["map@r"] <= 1.0


def test_kill_during_metrics_json_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"map@r": 0.5})
    code = (
        KILL_AT_NEXT_BIG_WRITE
        + f"""
from dasl.utils.io import atomic_write_json
kill_mid_write(4096)
atomic_write_json({str(path)!r}, {{"map@r": 0.25, "pad": "x" * 100000}})
"""
    )
    proc, _ = _run_child(code, tmp_path)
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr[-2000:]
    assert json.loads(path.read_text()) == {"map@r": 0.5}
    partial = [p for p in tmp_path.iterdir() if is_temporary(p)]
    assert len(partial) == 1 and partial[0].stat().st_size == 4096
    from dasl.utils.io import remove_stale_temporaries

    assert remove_stale_temporaries(tmp_path) == partial
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child-tmp", "metrics.json"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a 1-epoch tiny digits run."""
    root = tmp_path_factory.mktemp("trained")
    cfg = tiny_digits_config(root / "runs", **{"trainer.epochs": 1})
    res = train_variant(cfg, root / "run", **QUIET)
    assert res.checkpoint is not None
    return res.checkpoint


def test_kill_during_embed_outputs_never_looks_complete(trained: Path, tmp_path: Path) -> None:
    from dasl.cli.main import main

    out = tmp_path / "emb"
    assert main(["embed", "--checkpoint", str(trained), "--out", str(out)]) == 0
    manifest = json.loads((out / "embed.json").read_text())
    old = np.load(out / "embeddings.npy")
    assert manifest["shape"] == list(old.shape)
    code = (
        KILL_AT_NEXT_BIG_WRITE
        + f"""
import dasl.utils.io as io_mod
from dasl.cli.main import main
real = io_mod.atomic_write_bytes

def limited(path, data):
    kill_mid_write(len(data) // 2)
    return real(path, data)

io_mod.atomic_write_bytes = limited
main(["embed", "--checkpoint", {str(trained)!r}, "--out", {str(out)!r}, "--split", "val"])
"""
    )
    proc, _ = _run_child(code, tmp_path)
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr[-2000:]
    # The manifest is gone: the folder no longer claims to be a complete output ...
    assert not (out / "embed.json").exists()
    # ... and every file under its own name is whole (the old one here).
    np.testing.assert_array_equal(np.load(out / "embeddings.npy"), old)
    assert any(is_temporary(p) for p in out.iterdir())


def test_full_disk_during_checkpoint_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint write that fails with ENOSPC half-way: one line, exit 2, old one intact."""
    import yaml

    from dasl.cli.main import main

    real_save = torch.save
    calls = {"n": 0}

    def full_disk_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:  # epoch 0: best.ckpt and last.ckpt
            return real_save(obj, f, *args, **kwargs)
        import io

        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        data = buf.getvalue()[: len(buf.getvalue()) // 2]
        if hasattr(f, "write"):
            f.write(data)
        else:
            Path(f).write_bytes(data)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk_save)
    cfg = tiny_digits_config(tmp_path / "runs").to_dict()
    cfg["compare"] = None
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "No space left on device" in err[0] and "checkpoint" in err[0]
    assert "Traceback" not in err[0]
    ckpts = tmp_path / "runs" / "tiny" / "checkpoints"
    check_checkpoint(ckpts / "last.ckpt")
    assert torch.load(ckpts / "last.ckpt", weights_only=False)["epoch"] == 0
    assert not [p for p in ckpts.iterdir() if is_temporary(p)]  # the failed write cleaned up


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)]).returncode
    return ok == 0


def test_full_tmpfs_during_run_keeps_previous_checkpoint(tmp_path: Path) -> None:
    """A real full filesystem (a 64 MB tmpfs, filled up at the start of epoch 1)."""
    from dasl.training.checkpoint_io import CheckpointWriteError

    disk = tmp_path / "disk"
    if not _can_mount_tmpfs(disk):
        pytest.skip("needs root to mount a tmpfs; the ENOSPC test above covers the logic")
    try:

        class FillDisk(L.Callback):
            def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule):
                if trainer.current_epoch == 1:
                    size = (disk / "run" / "checkpoints" / "last.ckpt").stat().st_size
                    st = os.statvfs(disk)
                    free = st.f_bavail * st.f_frsize
                    with open(disk / "filler", "wb") as fh:
                        fh.truncate(0)
                        fh.write(b"\0" * max(0, free - size // 2))

        cfg = tiny_digits_config(tmp_path / "runs")
        with pytest.raises(CheckpointWriteError, match="No space left on device") as info:
            train_variant(cfg, disk / "run", callbacks=[FillDisk()], **QUIET)
        assert "previous checkpoint there is intact" in str(info.value)
        ckpts = disk / "run" / "checkpoints"
        check_checkpoint(ckpts / "last.ckpt")
        assert torch.load(ckpts / "last.ckpt", weights_only=False)["epoch"] == 0
        assert not [p for p in ckpts.iterdir() if is_temporary(p)]
    finally:
        # Lazy: Lightning's TensorBoard writer thread may still hold a file open in it.
        subprocess.run(["umount", "-l", str(disk)], check=False)


class _LearningRateBlowUp(L.Callback):
    """From epoch 1 on, a learning rate of 1e30: the weights leave floating point range."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            for config in trainer.lr_scheduler_configs:
                config.scheduler.base_lrs = [1e30 for _ in config.scheduler.base_lrs]
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] = 1e30


def test_nan_stops_the_run_naming_step_and_checkpoint(tmp_path: Path) -> None:
    from dasl.training.guards import TrainingDiverged

    cfg = tiny_digits_config(tmp_path / "runs", **{"trainer.epochs": 3})
    run_dir = tmp_path / "nan"
    with pytest.raises(TrainingDiverged) as info:
        train_variant(cfg, run_dir, callbacks=[_LearningRateBlowUp()], **QUIET)
    message = str(info.value)
    assert "diverged at step" in message and "(epoch 1," in message
    assert str(run_dir / "checkpoints" / "last.ckpt") in message and "end of epoch 0" in message
    assert not (run_dir / "metrics.json").exists()
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert state["epoch"] == 0
    assert all(
        torch.isfinite(t).all() for t in state["state_dict"].values() if t.is_floating_point()
    )


def test_nan_through_the_cli_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from dasl.cli.main import main

    cfg = tiny_digits_config(tmp_path / "runs", **{"trainer.epochs": 1}).to_dict()
    cfg["optim"]["lr"] = 1e30
    cfg["optim"]["warmup_epochs"] = 0.0
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dasl: error: training diverged at step "), err
    assert "none yet" in err[0]


def test_resume_without_checkpoint_is_explained_not_warned(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    cfg = tiny_digits_config(tmp_path / "runs", **{"trainer.epochs": 1})
    run_dir = tmp_path / "fresh"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best.ckpt").write_bytes(b"left over")  # not empty, no last
    lines: list[str] = []
    train_variant(cfg, run_dir, resume=True, log=lines.append)
    assert any("no complete checkpoint" in s and "from scratch" in s for s in lines)
    assert not [w for w in recwarn if "exists and is not empty" in str(w.message)]


def test_truncated_last_checkpoint_is_never_resumed(tmp_path: Path) -> None:
    cfg = tiny_digits_config(tmp_path / "runs", **{"trainer.epochs": 1})
    run_dir = tmp_path / "cut"
    train_variant(cfg, run_dir, **QUIET)
    last = run_dir / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # e.g. copied half-way by another tool
    lines: list[str] = []
    res = train_variant(cfg, run_dir, resume=True, log=lines.append)
    assert any("not a complete PyTorch checkpoint" in s for s in lines), lines
    assert (run_dir / "checkpoints" / "last.ckpt.incomplete").is_file()
    check_checkpoint(last)  # retrained from scratch, written whole
    assert 0.0 <= res.metrics["map@r"] <= 1.0


def test_last_checkpoint_is_the_last_epoch(tmp_path: Path) -> None:
    """last.ckpt follows every epoch, also one whose validation score did not improve
    (Lightning's save_last=True skips those: a crash then resumed from an older epoch)."""
    cfg = tiny_digits_config(tmp_path / "runs", **{"trainer.epochs": 3})
    res = train_variant(cfg, tmp_path / "run", **QUIET)
    ckpts = tmp_path / "run" / "checkpoints"
    assert torch.load(ckpts / "last.ckpt", weights_only=False)["epoch"] == 2
    scores = [row["val/map@r"] for row in res.history]
    best_epoch = int(np.argmax(scores))
    assert torch.load(ckpts / "best.ckpt", weights_only=False)["epoch"] == best_epoch


def test_deterministic_runs_are_bit_identical(tmp_path: Path) -> None:
    cfg = tiny_digits_config(
        tmp_path / "runs", **{"trainer.deterministic": True, "trainer.epochs": 1}
    )
    a = train_variant(cfg, tmp_path / "a", **QUIET)
    b = train_variant(cfg, tmp_path / "b", **QUIET)
    assert a.metrics == b.metrics  # exact equality, not approx
    timing = ("train/images_per_s", "train/epoch_s")
    strip = [
        [{k: v for k, v in r.items() if k not in timing} for r in h] for h in (a.history, b.history)
    ]
    assert strip[0] == strip[1]
    assert np.array_equal(a.embeddings, b.embeddings)
