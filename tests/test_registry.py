"""``dasl.registry.Registry`` and the registries of ``dasl.choices`` (#17)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dasl.choices import (
    BACKBONES,
    BASE_LOSSES,
    DAR_ESTIMATORS,
    DATASETS,
    RANKING_METRICS,
    SAMPLERS,
    SCHEDULERS,
    SUPERVISED_LOSSES,
    TWO_VIEW_LOSSES,
)
from dasl.errors import ConfigError
from dasl.registry import REQUIRED, Registry

ROOT = Path(__file__).resolve().parents[1]


def _colours() -> Registry[str]:
    reg: Registry[str] = Registry("colour")
    reg.register("red", "#f00", kind="warm")
    reg.register("green", "#0f0", kind="cold")
    reg.register("blue", "#00f", kind="cold")
    return reg


def test_unknown_name_has_one_wording_with_the_closest_name() -> None:
    reg = _colours()
    with pytest.raises(ConfigError) as err:
        reg.get("gren")
    assert str(err.value) == (
        "unknown colour 'gren'; choose one of red, green, blue (did you mean green?)"
    )
    with pytest.raises(ConfigError) as err:
        reg.get("purple")
    assert str(err.value) == "unknown colour 'purple'; choose one of red, green, blue"
    with pytest.raises(ConfigError, match=r"unknown colour 3; choose"):
        reg.get(3)


def test_kind_filters_names_and_lookups() -> None:
    reg = _colours()
    assert reg.names() == ("red", "green", "blue")
    assert reg.names("cold") == ("green", "blue")
    assert reg.get("blue", "cold") == "#00f"
    with pytest.raises(ConfigError, match=r"^unknown colour 'red'; choose one of green, blue$"):
        reg.get("red", "cold")


def test_a_taken_name_is_refused_and_the_decorator_returns_the_function() -> None:
    reg: Registry[object] = Registry("thing")

    @reg.register("f")
    def f(ctx: object, *, a: float = 1.0, b: float) -> None:
        pass

    assert reg.get("f") is f
    assert dict(reg.entry("f").options) == {"a": 1.0, "b": REQUIRED}
    reg.register("f", f)  # the same object again: a re-import, harmless
    with pytest.raises(ValueError, match="thing 'f' is already registered"):
        reg.register("f", lambda: None)


def test_check_options_refuses_what_an_entry_does_not_take() -> None:
    reg: Registry[object] = Registry("loss")
    reg.register("a", lambda ctx, *, margin=0.1: None)
    reg.register("b", lambda ctx, *, temperature: None)
    assert reg.check_options("a", {"margin": 0.2, "temperature": None}) == {"margin": 0.2}
    with pytest.raises(ConfigError) as err:
        reg.check_options("a", {"temperature": 0.5}, prefix="loss.")
    assert str(err.value) == "loss.temperature: not used by loss 'a' (only by b); set it to null"
    with pytest.raises(ConfigError, match=r"^loss\.temperature: loss 'b' needs a value$"):
        reg.check_options("b", {}, prefix="loss.")


def test_the_registries_hold_the_built_in_choices() -> None:
    assert BASE_LOSSES.names(SUPERVISED_LOSSES) == (
        "proxyanchor",
        "npair",
        "triplet",
        "multisimilarity",
        "supcon",
        "contrastive",
        "arcface",
    )
    assert BASE_LOSSES.names(TWO_VIEW_LOSSES) == ("ntxent", "dcl", "vicreg", "barlowtwins")
    assert BASE_LOSSES.names("proxy") == ("proxyanchor", "arcface")
    assert DAR_ESTIMATORS.names() == ("exact", "chain")
    assert DAR_ESTIMATORS.entry("chain").kind == "sampled"
    assert RANKING_METRICS.names() == ("map@r", "r_precision")
    assert SCHEDULERS.names() == ("cosine", "constant")
    assert SAMPLERS.names() == ("m_per_class", "random")
    assert "resnet50" in BACKBONES and "small_cnn" in BACKBONES
    assert DATASETS.names("classification") == (
        "cifar10",
        "cifar100",
        "stl10",
        "imagenet",
        "imagenet100",
    )


def test_reading_the_choices_needs_no_torch_until_a_name_is_looked_up() -> None:
    """The registries load their home module on first use: ``dasl --help`` stays light."""
    code = (
        "import sys\nimport dasl.config\n"
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))\n"
        "from dasl.choices import SCHEDULERS\nSCHEDULERS.names()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    ).stdout.split("\n")
    assert out[:2] == ["[]", "True"]
