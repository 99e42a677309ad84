"""``build_objective``: the objective both Lightning modules train, against the libraries'
own losses plus a separately built regularizer (#17)."""

from __future__ import annotations

import math

import pytest
import torch
from lightly.loss import NTXentLoss
from pytorch_metric_learning.losses import ArcFaceLoss, TripletMarginLoss

from dasl.config import config_from_dict
from dasl.dar import DASLLoss, DifferenceAlignmentRegularizer, TwoViewDASLLoss
from dasl.dar.controls import ControlRegularizer
from dasl.objective import build_objective
from dasl.ssl_config import pretrain_config_from_dict


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(4)
    return torch.randn(9, 4, generator=g, dtype=torch.float64), torch.arange(3).repeat(3)


def test_supervised_objective_is_the_registered_loss_plus_dar() -> None:
    cfg = config_from_dict({"loss": {"name": "triplet", "margin": 0.3}, "dar": {"lam": 0.2}})
    obj = build_objective(cfg.loss, cfg.dar, num_classes=3, embedding_dim=4)
    assert isinstance(obj, DASLLoss) and not obj.gather_distributed
    z, y = _batch()
    want = TripletMarginLoss(margin=0.3)(z, y) + 0.2 * DifferenceAlignmentRegularizer()(z, y)
    assert float(obj(z, y)) == pytest.approx(float(want), rel=1e-12)


def test_proxy_loss_gets_classes_dimension_and_its_defaults() -> None:
    cfg = config_from_dict({"loss": {"name": "arcface", "scale": 8.0}})
    obj = build_objective(cfg.loss, cfg.dar, num_classes=3, embedding_dim=4)
    assert isinstance(obj.base_loss, ArcFaceLoss)
    assert obj.base_loss.W.shape == (4, 3)
    assert obj.base_loss.scale == 8.0
    assert obj.base_loss.margin == pytest.approx(math.radians(28.6))  # PML stores radians


def test_pretraining_objective_is_lightly_base_plus_dar_on_unit_views() -> None:
    cfg = pretrain_config_from_dict(
        {
            "ssl": {"method": "dasl_cf", "temperature": 0.2},
            "dar": {"lam": 0.5, "estimator": "exact"},
        }
    )
    obj = build_objective(cfg.ssl, cfg.dar, gather_distributed=True)
    assert isinstance(obj, TwoViewDASLLoss) and obj.two_view_base and obj.normalize
    g = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    unit = torch.nn.functional.normalize(torch.cat([z0, z1]), dim=1)
    ids = torch.arange(6).repeat(2)
    want = NTXentLoss(temperature=0.2)(z0, z1) + 0.5 * DifferenceAlignmentRegularizer()(unit, ids)
    assert float(obj(z0, z1)) == pytest.approx(float(want), rel=1e-6)


def test_a_control_takes_dar_s_place_in_both_settings() -> None:
    dar = {"kind": "compact_inter", "lam": 1.0, "estimator": "exact"}
    sup = config_from_dict({"dar": dar})
    ssl = pretrain_config_from_dict({"ssl": {"method": "dasl_cf"}, "dar": dar})
    for obj in (
        build_objective(sup.loss, sup.dar, num_classes=3, embedding_dim=4),
        build_objective(ssl.ssl, ssl.dar),
    ):
        assert isinstance(obj.regularizer, ControlRegularizer)
        assert obj.regularizer.kind == "compact_inter"
