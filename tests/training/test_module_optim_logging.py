"""One tiny real fit (digits, small CNN): optimizer parameter groups, the per-step learning
rate, and the DAR terms logged per step and averaged per epoch."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from training_configs import tiny_digits_config

from dasl.training.run import train_variant
from dasl.utils.schedule import warmup_cosine_factor

LR, BACKBONE_MULT, PROXY_MULT, WD = 0.003, 0.1, 50.0, 1e-3
EPOCHS, BATCHES = 2, 3


class _Recorder(L.Callback):
    def __init__(self) -> None:
        self.groups: list[dict] = []
        self.lrs: list[dict[str, float]] = []
        self.terms: list[dict[str, float]] = []
        self.module = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.module = pl_module
        opt = trainer.optimizers[0]
        self.groups = [
            {
                "name": g["name"],
                "initial_lr": g["initial_lr"],
                "weight_decay": g["weight_decay"],
                "params": {id(p) for p in g["params"]},
            }
            for g in opt.param_groups
        ]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        opt = trainer.optimizers[0]
        self.lrs.append({g["name"]: g["lr"] for g in opt.param_groups})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        crit = pl_module.criterion
        self.terms.append(
            {
                "epoch": trainer.current_epoch,
                "loss": float(outputs["loss"]),
                "base": float(crit.last_base_loss),
                "dar": float(crit.last_regularizer),
                "logged_dar": float(trainer.callback_metrics["train/dar"]),
            }
        )


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("optim")
    cfg = tiny_digits_config(
        tmp / "runs",
        **{
            "optim": {
                "lr": LR,
                "backbone_lr_mult": BACKBONE_MULT,
                "proxy_lr_mult": PROXY_MULT,
                "weight_decay": WD,
                "warmup_epochs": 1.0,
            },
            "trainer.epochs": EPOCHS,
            "data.batches_per_epoch": BATCHES,
            "dar.lam": 0.5,
        },
    )
    rec = _Recorder()
    res = train_variant(cfg, tmp / "run", callbacks=[rec], log=lambda s: None)
    return rec, res


def test_parameter_groups(fit):
    rec, _ = fit
    module = rec.module
    groups = {g["name"]: g for g in rec.groups}
    assert set(groups) == {"backbone", "head", "loss"}
    assert groups["backbone"]["initial_lr"] == pytest.approx(LR * BACKBONE_MULT)
    assert groups["head"]["initial_lr"] == pytest.approx(LR)
    assert groups["loss"]["initial_lr"] == pytest.approx(LR * PROXY_MULT)
    assert groups["backbone"]["weight_decay"] == WD and groups["head"]["weight_decay"] == WD
    assert groups["loss"]["weight_decay"] == 0.0  # no weight decay on the proxies
    proxies = {id(p) for p in module.criterion.parameters()}
    assert proxies and groups["loss"]["params"] == proxies
    assert groups["backbone"]["params"] == {id(p) for p in module.model.backbone_parameters()}
    assert groups["head"]["params"] == {id(p) for p in module.model.head_parameters()}
    every = {id(p) for p in module.parameters() if p.requires_grad}
    assert every == set().union(*(g["params"] for g in groups.values()))


def test_learning_rate_follows_warmup_cosine(fit):
    rec, _ = fit
    total = EPOCHS * BATCHES
    assert len(rec.lrs) == total
    for step, lrs in enumerate(rec.lrs):
        factor = warmup_cosine_factor(step, total, BATCHES, True)  # warm-up: one epoch
        assert lrs["head"] == pytest.approx(LR * factor)
        assert lrs["backbone"] == pytest.approx(LR * BACKBONE_MULT * factor)
        assert lrs["loss"] == pytest.approx(LR * PROXY_MULT * factor)


def test_dar_logged_per_step_and_averaged_per_epoch(fit):
    rec, res = fit
    assert len(rec.terms) == EPOCHS * BATCHES
    for t in rec.terms:
        assert t["loss"] == pytest.approx(t["base"] + 0.5 * t["dar"], rel=1e-6)
        assert t["logged_dar"] == pytest.approx(t["dar"], rel=1e-6)
        assert t["dar"] > 0
    for epoch in range(EPOCHS):
        rows = [t for t in rec.terms if t["epoch"] == epoch]
        row = next(r for r in res.history if r["epoch"] == epoch)
        assert row["train/dar"] == pytest.approx(sum(r["dar"] for r in rows) / len(rows), rel=1e-6)
        assert row["train/base_loss"] == pytest.approx(
            sum(r["base"] for r in rows) / len(rows), rel=1e-6
        )
        assert row["train/loss"] == pytest.approx(
            sum(r["loss"] for r in rows) / len(rows), rel=1e-6
        )
    # the epoch means are not all equal: they come from different batches
    assert res.history[0]["train/dar"] != res.history[1]["train/dar"]
    assert torch.isfinite(torch.tensor([r["train/dar"] for r in res.history])).all()


def test_step_values_reach_lightning_every_log_every_n_steps(tmp_path):
    """Every step-logged tensor costs a device sync in Lightning: with log_every_n_steps=2
    the step values are logged on steps 2, 4, 6 only, while the epoch means use every step."""
    cfg = tiny_digits_config(
        tmp_path / "runs",
        **{"trainer.epochs": 2, "data.batches_per_epoch": 3, "trainer.log_every_n_steps": 2},
    )

    class Seen(L.Callback):
        def __init__(self) -> None:
            self.logged: list[bool] = []
            self.dar: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            dar = float(pl_module.criterion.last_regularizer)
            shown = trainer.callback_metrics.get("train/dar")
            # A step that logged shows its own value; the others still show an older one.
            self.logged.append(shown is not None and float(shown) == pytest.approx(dar, rel=1e-6))
            self.dar.append(dar)

    seen = Seen()
    res = train_variant(cfg, tmp_path / "run", callbacks=[seen], log=lambda s: None)
    assert seen.logged == [False, True, False, True, False, True]
    for epoch in range(2):
        row = next(r for r in res.history if r["epoch"] == epoch)
        mean = sum(seen.dar[3 * epoch : 3 * epoch + 3]) / 3
        assert row["train/dar"] == pytest.approx(mean, rel=1e-6)
