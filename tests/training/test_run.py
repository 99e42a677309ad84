"""End to end on digits: train -> checkpoint -> resume -> eval, and the run folder."""

from __future__ import annotations

import dataclasses
import json

import lightning as L
import pytest
import torch
from crash import Boom, StopAtEpoch
from pytorch_metric_learning import losses as pml_losses
from training_configs import tiny_digits_config

from dasl.evaluation import embed, evaluate_embeddings
from dasl.run_data import MetricLearningData, eval_loader
from dasl.training.module import MetricLearningModule, step_loss
from dasl.training.run import train_variant
from dasl.utils.io import atomic_write_json

_UNTRAINED: dict[str, float] = {}


def untrained_map_r(cfg) -> float:
    """Test MAP@R of the same model, same seed, before any step: what training must beat."""
    key = f"{cfg.model.backbone}/{cfg.model.embedding_dim}/{cfg.seed}"
    if key not in _UNTRAINED:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        data = MetricLearningData.for_experiment(cfg)
        module = MetricLearningModule(cfg.to_dict(), num_classes=data.num_classes)
        emb, lab = embed(module, eval_loader(data.eval_sets.query, cfg.data))
        _UNTRAINED[key] = evaluate_embeddings(emb, lab, (1,), cfg.eval.distance, nmi=False)["map@r"]
    return _UNTRAINED[key]


def test_train_writes_run_folder(tmp_path) -> None:
    cfg = tiny_digits_config(tmp_path / "runs")
    res = train_variant(cfg, tmp_path / "plain", log=lambda s: None)
    folder = res.run_dir
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) >= {"recall@1", "recall@2", "map@r", "r_precision", "nmi"}
    assert metrics == pytest.approx(res.metrics)
    assert metrics["map@r"] > untrained_map_r(cfg) + 0.02
    assert (folder / "config.yaml").is_file()
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    assert (folder / "checkpoints" / "best.ckpt").is_file()
    assert (folder / "logs" / "csv" / "metrics.csv").is_file()
    history = json.loads((folder / "history.json").read_text())
    assert [row["epoch"] for row in history] == [0.0, 1.0]
    assert all("val/map@r" in row and "train/dar" in row for row in history)
    # Learned embeddings beat chance on unseen classes (5 test classes -> R@1 chance ~0.2).
    assert metrics["recall@1"] > 0.4


def test_resume_matches_uninterrupted(tmp_path) -> None:
    cfg = tiny_digits_config(tmp_path / "runs")
    full = train_variant(cfg, tmp_path / "full", log=lambda s: None)

    crashed_dir = tmp_path / "crashed"
    with pytest.raises(Boom):
        train_variant(cfg, crashed_dir, callbacks=[StopAtEpoch(1)], log=lambda s: None)
    # A crashed run leaves its last epoch's checkpoint but never a metrics.json.
    assert (crashed_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (crashed_dir / "metrics.json").exists()

    resumed = train_variant(cfg, crashed_dir, resume=True, log=lambda s: None)
    assert resumed.metrics.keys() == full.metrics.keys()
    for key, value in full.metrics.items():
        assert resumed.metrics[key] == pytest.approx(value, abs=1e-6), key
    assert [r["epoch"] for r in resumed.history] == [0.0, 1.0]


def test_baseline_without_dar_is_plain_loss(tmp_path) -> None:
    """With ``dar.lam = 0`` the module's training loss is PML's own ProxyAnchorLoss: the same
    value and the same gradients (embeddings and proxies) as a bare PML loss holding the same
    proxies, on a batch with several classes; and no DAR term is logged."""
    cfg = tiny_digits_config(tmp_path / "runs", **{"dar.lam": 0.0, "trainer.epochs": 1})
    module = MetricLearningModule(cfg.to_dict(), num_classes=5)
    plain = pml_losses.ProxyAnchorLoss(
        num_classes=5, embedding_size=cfg.model.embedding_dim, margin=0.1, alpha=32.0
    )
    with torch.no_grad():
        plain.proxies.copy_(module.criterion.base_loss.proxies)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(24, cfg.model.embedding_dim, generator=gen)
    y = torch.arange(24) % 5
    z_ours = z.clone().requires_grad_(True)
    z_plain = z.clone().requires_grad_(True)
    ours = step_loss(module.criterion, z_ours, y, cfg.seed, 0)
    want = plain(z_plain, y)
    ours.backward()
    want.backward()
    assert ours.item() == pytest.approx(want.item(), rel=1e-6)
    torch.testing.assert_close(z_ours.grad, z_plain.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(module.criterion.base_loss.proxies.grad, plain.proxies.grad)
    res = train_variant(cfg, tmp_path / "pa", log=lambda s: None)
    assert all("train/dar" not in row for row in res.history)


def test_atomic_metrics_never_truncated(tmp_path) -> None:
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"map@r": 0.5})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"map@r": object()})
    assert json.loads(path.read_text()) == {"map@r": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_other_losses_train(tmp_path) -> None:
    for loss in ("npair", "multisimilarity"):
        # 8 steps: MultiSimilarity barely moves in 4 (MAP@R +0.0004 over untrained; +0.03 in 8)
        cfg = tiny_digits_config(
            tmp_path / "runs", **{"trainer.epochs": 1, "data.batches_per_epoch": 8}
        )
        cfg = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, name=loss))
        res = train_variant(cfg, tmp_path / loss, log=lambda s: None)
        assert res.metrics["map@r"] > untrained_map_r(cfg) + 0.02, loss


def test_resume_exact_with_worker_processes(tmp_path) -> None:
    """Loader workers fetch batches before on_train_epoch_start: the epoch's batches and
    augmentation seeds must still be those of the uninterrupted run."""
    cfg = tiny_digits_config(tmp_path / "runs", **{"data.num_workers": 1})
    full = train_variant(cfg, tmp_path / "full", log=lambda s: None)
    crashed_dir = tmp_path / "crashed"
    with pytest.raises(Boom):
        train_variant(cfg, crashed_dir, callbacks=[StopAtEpoch(1)], log=lambda s: None)
    resumed = train_variant(cfg, crashed_dir, resume=True, log=lambda s: None)
    for key, value in full.metrics.items():
        assert resumed.metrics[key] == pytest.approx(value, abs=1e-6), key


def test_random_sampler_trains(tmp_path) -> None:
    cfg = tiny_digits_config(tmp_path / "runs", **{"data.sampler": "random", "trainer.epochs": 1})
    res = train_variant(cfg, tmp_path / "random", log=lambda s: None)
    assert res.metrics["map@r"] > untrained_map_r(cfg) + 0.02


def test_two_process_ddp_on_cpu(tmp_path) -> None:
    """DDP with the gloo backend: rank-sharded batches, rank 0 evaluates and writes the folder."""
    cfg = tiny_digits_config(
        tmp_path / "runs",
        **{"trainer.devices": 2, "trainer.strategy": "ddp_spawn", "trainer.accelerator": "cpu"},
    )
    res = train_variant(cfg, tmp_path / "ddp", log=lambda s: None)
    assert res.metrics["map@r"] > untrained_map_r(cfg) + 0.02
    assert [row["epoch"] for row in res.history] == [0.0, 1.0]
    assert (tmp_path / "ddp" / "metrics.json").is_file()
    # Validation was sharded over the 2 ranks and gathered back: its metrics equal one
    # process evaluating the last checkpoint on the whole validation split.
    from dasl.evaluation import embed, evaluate_embeddings
    from dasl.run_data import MetricLearningData, eval_loader
    from dasl.training.module import load_module

    data = MetricLearningData.for_experiment(cfg)
    assert len(data.val) % 2 == 1  # shards of unequal length
    module = load_module(tmp_path / "ddp" / "checkpoints" / "last.ckpt")
    emb, lab = embed(module, eval_loader(data.val, cfg.data))
    want = evaluate_embeddings(emb, lab, tuple(cfg.eval.ks), cfg.eval.distance, False, cfg.seed)
    floats = {k: v for k, v in want.items() if isinstance(v, float)}
    assert "map@r" in floats
    for key, value in floats.items():
        assert res.history[-1][f"val/{key}"] == pytest.approx(value, abs=1e-6), key
