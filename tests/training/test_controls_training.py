"""``dar.kind`` (#18): config checks, the criterion it builds, and the squared-l2 DAR
decomposition logged per step by a real (tiny) fit."""

from __future__ import annotations

import pytest
from training_configs import tiny_digits_config

from dasl.config import ConfigError, apply_overrides, validate
from dasl.dar import DifferenceAlignmentRegularizer
from dasl.dar.controls import ControlRegularizer
from dasl.objective import build_objective
from dasl.training.run import train_variant


def test_kind_selects_the_regularizer_and_bad_settings_are_refused(tmp_path) -> None:
    cfg = tiny_digits_config(tmp_path)
    crit = build_objective(cfg.loss, cfg.dar, num_classes=10, embedding_dim=16)
    assert isinstance(crit.regularizer, DifferenceAlignmentRegularizer)
    ctl = validate(apply_overrides(cfg, {"dar.kind": "within_scatter", "dar.lam": 2.0}))
    crit = build_objective(ctl.loss, ctl.dar, num_classes=10, embedding_dim=16)
    assert isinstance(crit.regularizer, ControlRegularizer)
    assert crit.regularizer.kind == "within_scatter" and crit.lam == 2.0
    with pytest.raises(
        ConfigError,
        match=r"^dar\.kind: unknown regularizer kind 'compaction'; choose one of dar, "
        r"compact_inter, ",
    ):
        validate(apply_overrides(cfg, {"dar.kind": "compaction"}))
    with pytest.raises(ConfigError, match=r"dar\.estimator: 'chain' is not used by dar\.kind"):
        validate(apply_overrides(cfg, {"dar.kind": "compact_inter", "dar.estimator": "chain"}))
    with pytest.raises(ConfigError, match=r"dar\.measure: 'l1' is not used"):
        validate(apply_overrides(cfg, {"dar.kind": "batch_variance", "dar.measure": "l1"}))


@pytest.mark.parametrize(
    ("kind", "terms"),
    [
        ("dar", ("class_mean", "within", "-orientation")),
        ("compact_inter", ("class_mean", "within")),
    ],
)
def test_decomposition_terms_are_logged_and_add_up_to_the_regularizer(tmp_path, kind, terms):
    """Per epoch, the means of the logged terms add up to the mean regularizer value: squared-l2
    DAR is class_mean + within - orientation, compact_inter is class_mean + within."""
    cfg = tiny_digits_config(
        tmp_path / "runs",
        **{"dar": {"lam": 0.5, "measure": "l2sq", "kind": kind}, "trainer.epochs": 2},
    )
    res = train_variant(cfg, tmp_path / "run", log=lambda s: None)
    for row in res.history:
        total = sum(
            (-1 if t.startswith("-") else 1) * row[f"train/l2sq_{t.lstrip('-')}"] for t in terms
        )
        assert row["train/dar"] == pytest.approx(total, rel=1e-5)
        assert row["train/l2sq_orientation"] >= 0.0


def test_arcface_is_pml_arcface_with_its_settings(tmp_path) -> None:
    """``loss.name=arcface`` builds PML's ArcFaceLoss with the configured margin and scale: the
    criterion's value (DAR off) is PML's own on the same weights."""
    import torch
    from pytorch_metric_learning.losses import ArcFaceLoss

    cfg = validate(
        apply_overrides(
            tiny_digits_config(tmp_path),
            {"loss.name": "arcface", "loss.margin": 20.0, "loss.scale": 16.0, "dar.lam": 0.0},
        )
    )
    crit = build_objective(cfg.loss, cfg.dar, num_classes=5, embedding_dim=8)
    ref = ArcFaceLoss(num_classes=5, embedding_size=8, margin=20.0, scale=16.0)
    ref.load_state_dict(crit.base_loss.state_dict())
    assert list(crit.loss_parameters())  # class weights: the proxy learning-rate group
    z = torch.randn(10, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    assert float(crit(z, y)) == pytest.approx(float(ref(z, y)), rel=1e-6)
    wrong = ArcFaceLoss(num_classes=5, embedding_size=8)  # PML defaults: another value
    wrong.load_state_dict(crit.base_loss.state_dict())
    assert float(crit(z, y)) != pytest.approx(float(wrong(z, y)), rel=1e-3)
    with pytest.raises(
        ConfigError,
        match=r"^loss\.scale: not used by base loss 'proxyanchor' \(only by npair, arcface\); "
        r"set it to null$",
    ):
        validate(apply_overrides(tiny_digits_config(tmp_path), {"loss.scale": 8.0}))
