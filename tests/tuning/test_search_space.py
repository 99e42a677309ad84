"""Param specs: the grammar, refused specs (one line naming the key), and real Optuna draws."""

from __future__ import annotations

import math

import optuna
import pytest
from tuning_fixtures import digits_config

from dasl.config import ConfigError
from dasl.tuning.search_space import ParamSpec, apply_params, check_search_space, parse_param


def test_each_kind_parses() -> None:
    assert parse_param("dar.lam=loguniform:0.01:10") == ParamSpec(
        "dar.lam", "loguniform", 0.01, 10.0, text="dar.lam=loguniform:0.01:10"
    )
    assert parse_param("optim.lr=uniform:1e-4:3e-3").low == pytest.approx(1e-4)
    spec = parse_param("data.m_per_class=int:2:8")
    assert (spec.kind, spec.low, spec.high) == ("int", 2, 8)
    assert isinstance(spec.low, int) and isinstance(spec.high, int)
    assert parse_param("dar.measure=choice:l2,l1,l2sq").choices == ("l2", "l1", "l2sq")
    # Choices are YAML scalars, as in overrides: numbers stay numbers.
    assert parse_param("model.embedding_dim=choice:16,32").choices == (16, 32)
    assert parse_param("optim.lr=choice:1e-3,3e-3").choices == (1e-3, 3e-3)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("dar.lam", "expected KEY="),
        ("=uniform:0:1", "empty key"),
        ("dar.lam=gauss:0:1", "unknown kind 'gauss'"),
        ("dar.lam=uniform:0", "needs LO:HI"),
        ("dar.lam=uniform:0:1:2", "needs LO:HI"),
        ("dar.lam=uniform:a:1", "LO 'a' is not a finite number"),
        ("dar.lam=uniform:0:nan", "HI 'nan' is not a finite number"),
        ("dar.lam=uniform:1:1", "LO must be smaller than HI"),
        ("dar.lam=uniform:2:1", "LO must be smaller than HI"),
        ("dar.lam=loguniform:0:1", "loguniform needs LO > 0"),
        ("dar.lam=loguniform:-1:1", "loguniform needs LO > 0"),
        ("trainer.epochs=int:1.5:3", "LO '1.5' is not an integer"),
        ("dar.measure=choice:", "choice needs values"),
        ("dar.measure=choice:l2,,l1", "choice needs values"),
        ("dar.measure=choice:l2", "at least two values"),
        ("dar.measure=choice:l2,l2", "lists a value twice"),
        ("dar.measure=choice:l2,[1]", "is not a scalar"),
    ],
)
def test_bad_spec_is_one_line(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_param(text)
    message = str(exc.value)
    assert needle in message and "\n" not in message


@pytest.mark.parametrize(
    ("texts", "needle"),
    [
        (["dar.lamm=uniform:0:1"], "dar.lamm: unknown key"),
        (["optimizer.lr=uniform:0:1"], "optimizer: unknown key"),
        (["dar.lam=uniform:-1:1"], "dar.lam: must be >= 0"),
        (["trainer.epochs=uniform:1:3"], "trainer.epochs: expected int"),
        (["dar.measure=choice:l2,l9"], "dar.measure: unknown measure 'l9'; choose one of l2"),
        (["seed=int:0:3"], "seed: cannot be tuned"),
        (["data.val_split=choice:val,test"], "data.val_split: cannot be tuned"),
        (["data.test_split=choice:test,val"], "data.test_split: cannot be tuned"),
        (["eval.ks=choice:1,2"], "eval.ks: cannot be tuned"),
        (["compare=choice:a,b"], "compare: cannot be tuned"),
        (["dar.lam=uniform:0:1", "dar.lam=loguniform:0.1:1"], "dar.lam: given twice"),
        ([], "no --param given"),
    ],
)
def test_search_space_checked_against_config(tmp_path, texts: list[str], needle: str) -> None:
    cfg = digits_config(tmp_path)
    with pytest.raises(ConfigError) as exc:
        check_search_space(cfg, [parse_param(t) for t in texts])
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_valid_space_passes_and_applies(tmp_path) -> None:
    cfg = digits_config(tmp_path)
    specs = [
        parse_param("dar.lam=loguniform:0.01:10"),
        parse_param("dar.measure=choice:l2,l1"),
        parse_param("data.m_per_class=int:2:8"),
    ]
    check_search_space(cfg, specs)
    applied = apply_params(cfg, {"dar.lam": 0.3, "dar.measure": "l1", "optim.lr": 0.01})
    assert (applied.dar.lam, applied.dar.measure, applied.optim.lr) == (0.3, "l1", 0.01)
    assert cfg.dar.lam == 0.5  # the base config is untouched


def test_real_optuna_draws_stay_in_their_space() -> None:
    specs = [
        parse_param("dar.lam=loguniform:0.01:10"),
        parse_param("optim.lr=uniform:0.001:0.002"),
        parse_param("data.m_per_class=int:2:8"),
        parse_param("dar.measure=choice:l2,l1,l2sq"),
    ]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    draws = []
    for _ in range(40):
        trial = study.ask()
        draws.append({s.key: s.suggest(trial) for s in specs})
        study.tell(trial, 0.0)
    for d in draws:
        assert 0.01 <= d["dar.lam"] <= 10 and 0.001 <= d["optim.lr"] <= 0.002
        assert isinstance(d["data.m_per_class"], int) and 2 <= d["data.m_per_class"] <= 8
        assert d["dar.measure"] in ("l2", "l1", "l2sq")
    # log-uniform: about half of the draws below the geometric midpoint sqrt(0.01 * 10).
    below = sum(d["dar.lam"] < math.sqrt(0.1) for d in draws)
    assert 10 <= below <= 30
    # The spec's distribution is the one Optuna stored.
    stored = study.trials[0].distributions
    for s in specs:
        assert stored[s.key] == s.distribution()
