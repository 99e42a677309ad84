"""N-pair's options (#18): the embedding-norm penalty and the logit scale, against PML's losses
built directly and against an explicit float64 reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from pytorch_metric_learning.distances import DotProductSimilarity
from pytorch_metric_learning.losses import NPairsLoss
from pytorch_metric_learning.regularizers import LpRegularizer

from dasl.cli.main import main
from dasl.config import config_from_dict
from dasl.errors import ConfigError
from dasl.losses import LossContext, ScaledDotProduct, build_base_loss

EXIT_USAGE = 2
NPAIR_CONFIG = Path(__file__).parents[1] / "configs" / "dml" / "glyphs_npair.yaml"


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalized float64 embeddings, 4 classes in a shuffled order, 3 or 2 images each."""
    g = torch.Generator().manual_seed(7)
    z = 1.5 * torch.randn(11, 5, generator=g, dtype=torch.float64)
    y = torch.tensor([2, 0, 3, 1, 0, 2, 1, 3, 0, 2, 1])
    return z, y


def _npair_reference(z: torch.Tensor, y: torch.Tensor, scale: float, w: float) -> torch.Tensor:
    """N-pair with explicit loops: per class c (ascending), its first image a_c is the anchor and
    its second p_c the positive; loss = mean_c -log softmax_d(s · cos(a_c, p_d))[c], plus
    ``w · mean_i ||z_i||²`` over the whole batch."""
    classes = sorted({int(v) for v in y})
    first = [[i for i in range(len(y)) if int(y[i]) == c][:2] for c in classes]
    total = torch.zeros((), dtype=torch.float64)
    for ci, (a, _) in enumerate(first):
        logits = []
        for _, p in first:
            dot = sum(z[a, k] * z[p, k] for k in range(z.shape[1]))
            na = torch.sqrt(sum(z[a, k] ** 2 for k in range(z.shape[1])))
            npos = torch.sqrt(sum(z[p, k] ** 2 for k in range(z.shape[1])))
            logits.append(scale * dot / (na * npos))
        log_norm = torch.log(sum(torch.exp(v) for v in logits))
        total = total + (log_norm - logits[ci])
    reg = sum(sum(z[i, k] ** 2 for k in range(z.shape[1])) for i in range(len(y))) / len(y)
    return total / len(classes) + w * reg


def _value_and_grad(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    z = z.clone().requires_grad_(True)
    value = loss(z, y)
    (grad,) = torch.autograd.grad(value, z)
    return value.detach(), grad


def _build(**options: float) -> torch.nn.Module:
    return build_base_loss("npair", dict(options), LossContext(), kind="pair")


def test_defaults_are_pml_plain_npairs() -> None:
    z, y = _batch()
    got, got_grad = _value_and_grad(_build(), z, y)
    want, want_grad = _value_and_grad(NPairsLoss(), z, y)
    assert torch.equal(got, want) and torch.equal(got_grad, want_grad)
    # a setting left null keeps the default
    got, _ = _value_and_grad(_build(embedding_reg_weight=None, scale=None), z, y)  # type: ignore[arg-type]
    assert torch.equal(got, want)


@pytest.mark.parametrize(("w", "scale"), [(0.0, 1.0), (0.01, 1.0), (0.3, 1.0), (0.1, 8.0)])
def test_against_pml_built_directly_and_the_explicit_reference(w: float, scale: float) -> None:
    z, y = _batch()
    got, got_grad = _value_and_grad(_build(embedding_reg_weight=w, scale=scale), z, y)
    pml_options: dict = {
        "distance": ScaledDotProduct(scale) if scale != 1 else DotProductSimilarity()
    }
    if w:
        pml_options |= {
            "embedding_regularizer": LpRegularizer(p=2, power=2),
            "embedding_reg_weight": w,
        }
    want, want_grad = _value_and_grad(NPairsLoss(**pml_options), z, y)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-12, atol=1e-15)
    ref, ref_grad = _value_and_grad(lambda v, lab: _npair_reference(v, lab, scale, w), z, y)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=0)
    torch.testing.assert_close(got_grad, ref_grad, rtol=1e-9, atol=1e-12)


def test_the_penalty_is_the_weighted_mean_squared_norm() -> None:
    z, y = _batch()
    w = 0.05
    plain, plain_grad = _value_and_grad(_build(), z, y)
    reg, reg_grad = _value_and_grad(_build(embedding_reg_weight=w), z, y)
    sq = sum(float(z[i] @ z[i]) for i in range(len(y))) / len(y)
    assert float(reg - plain) == pytest.approx(w * sq, rel=1e-12)
    torch.testing.assert_close(reg_grad - plain_grad, 2 * w * z / len(y), rtol=1e-10, atol=1e-14)


def test_on_unit_norm_embeddings_the_penalty_is_a_constant_with_no_gradient() -> None:
    """dasl's model L2-normalizes its output: the penalty adds ``w`` and moves nothing."""
    z, y = _batch()
    w = 0.1
    h = z.clone().requires_grad_(True)
    unit = torch.nn.functional.normalize(h, dim=1)
    plain = _build()(unit, y)
    (plain_grad,) = torch.autograd.grad(plain, h)
    h2 = z.clone().requires_grad_(True)
    reg = _build(embedding_reg_weight=w)(torch.nn.functional.normalize(h2, dim=1), y)
    (reg_grad,) = torch.autograd.grad(reg, h2)
    assert float((reg - plain).detach()) == pytest.approx(w, rel=1e-12)
    torch.testing.assert_close(reg_grad, plain_grad, rtol=0, atol=1e-14)


def test_scale_multiplies_the_logits() -> None:
    """At scale s the loss on unit vectors equals the plain loss on ``sqrt(s) ·`` those vectors
    under an unnormalized dot product."""
    z, y = _batch()
    unit = torch.nn.functional.normalize(z, dim=1)
    got = _build(scale=4.0)(unit, y)
    want = NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=False))(2.0 * unit, y)
    assert float(got) == pytest.approx(float(want), rel=1e-12)
    assert not math.isclose(float(got), float(_build()(unit, y)))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"embedding_reg_weight": -0.1},
         r"^loss\.embedding_reg_weight: must be >= 0\.0, got -0\.1$"),
        ({"scale": 0.0}, r"^loss\.scale: must be > 0\.0, got 0\.0$"),
        ({"name": "proxyanchor", "embedding_reg_weight": 0.1},
         r"^loss\.embedding_reg_weight: not used by base loss 'proxyanchor' \(only by npair\)"),
    ],
)  # fmt: skip
def test_bad_values_are_config_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"loss": {"name": "npair", **overrides}})
    cfg = config_from_dict({"loss": {"name": "npair", "embedding_reg_weight": 0.01, "scale": 2}})
    assert (cfg.loss.embedding_reg_weight, cfg.loss.scale) == (0.01, 2.0)


def test_dasl_train_refuses_a_negative_weight_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["train", "--config", str(NPAIR_CONFIG), "loss.embedding_reg_weight=-1"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dasl: error: loss.embedding_reg_weight: must be >= 0.0, got -1.0"]
