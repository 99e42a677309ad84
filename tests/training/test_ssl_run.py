"""Pretraining end to end on digits: fit -> checkpoints -> k-NN; crash -> resume is exact."""

from __future__ import annotations

import json

import pytest
import torch
from crash import Boom, StopAtEpoch
from ssl_configs import tiny_digits_pretrain

from dasl.training.ssl_module import load_ssl_module
from dasl.training.ssl_run import pretrain_variant


def _quiet(_: str) -> None:
    pass


def _check_run_folder(res) -> None:
    folder = res.run_dir
    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("knn_top1@20", "knn_top5@20", "knn_top1@5"):
        assert 0.0 <= metrics[key] <= 1.0
    # Ten balanced classes: chance is 0.1; even two tiny epochs give features far above it.
    assert metrics["knn_top1@20"] > 0.3
    for name in ("config.yaml", "history.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        assert (folder / name).is_file(), name
    assert (folder / "logs" / "csv" / "metrics.csv").is_file()
    history = json.loads((folder / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0.0, 1.0]
    assert all("val/knn_top1" in row and "train/dar" in row for row in history)
    # Instance ids in epoch 0, k-means pseudo-labels from epoch 1 (one NMI per granularity).
    assert "cluster/nmi@5" not in history[0]
    assert 0.0 <= history[1]["cluster/nmi@5"] <= 1.0 and "cluster/nmi@10" in history[1]
    last = load_ssl_module(folder / "checkpoints" / "last.ckpt")
    assert last.pseudo_labels.shape[0] == 2  # one row per granularity, carried by the checkpoint
    assert int(last.pseudo_labels.min()) >= 0 and int(last.pseudo_labels[1].max()) < 10
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1


def test_pretrain_then_crash_then_resume_is_exact(tmp_path) -> None:
    cfg = tiny_digits_pretrain(tmp_path / "runs")
    full = pretrain_variant(cfg, tmp_path / "full", log=_quiet)
    _check_run_folder(full)
    crashed = tmp_path / "crashed"
    with pytest.raises(Boom):
        pretrain_variant(cfg, crashed, callbacks=[StopAtEpoch(1)], log=_quiet)
    assert (crashed / "checkpoints" / "last.ckpt").is_file()
    assert not (crashed / "metrics.json").exists()
    resumed = pretrain_variant(cfg, crashed, resume=True, log=_quiet)
    assert resumed.metrics.keys() == full.metrics.keys()
    for key, value in full.metrics.items():
        assert resumed.metrics[key] == pytest.approx(value, abs=1e-6), key
    for a, b in zip(full.history, resumed.history, strict=True):
        for key in ("train/loss", "train/dar", "val/knn_top1", "cluster/nmi@10"):
            if key in a:
                assert b[key] == pytest.approx(a[key], abs=1e-6), key
