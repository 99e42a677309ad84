"""Config loading, validation and overrides: every error names the key."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dasl.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
    parse_override,
    variants,
)
from dasl.ssl_config import PretrainConfig, pretrain_config_from_dict


def test_default_config_loads_with_two_variants() -> None:
    cfg = load_config()
    names = [name for name, _ in variants(cfg)]
    assert names == ["proxyanchor", "dasl_pa"]
    runs = dict(variants(cfg))
    assert runs["proxyanchor"].dar.lam == 0.0
    assert runs["dasl_pa"].dar.lam > 0
    # Same seed, data and budget for both variants.
    assert runs["proxyanchor"].data == runs["dasl_pa"].data
    assert runs["proxyanchor"].trainer == runs["dasl_pa"].trainer
    assert runs["proxyanchor"].seed == runs["dasl_pa"].seed


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown key"):
        config_from_dict({"optim": {"lrr": 0.1}})
    with pytest.raises(ConfigError, match=r"^bogus: unknown key"):
        config_from_dict({"bogus": 1})


def test_wrong_type_is_named() -> None:
    with pytest.raises(ConfigError, match=r"trainer\.epochs: expected int, got 'ten'"):
        config_from_dict({"trainer": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match=r"data\.batch_size: expected int"):
        config_from_dict({"data": {"batch_size": 1.5}})
    with pytest.raises(ConfigError, match=r"eval\.ks\[1\]: expected int"):
        config_from_dict({"eval": {"ks": [1, "x"]}})
    # bool is not an int, an int is a fine float
    with pytest.raises(ConfigError, match=r"trainer\.epochs"):
        config_from_dict({"trainer": {"epochs": True}})
    assert config_from_dict({"optim": {"lr": 1}}).optim.lr == 1.0


def test_overrides_parse_and_apply() -> None:
    assert parse_override("optim.lr=3e-4") == ("optim.lr", 3e-4)
    assert parse_override("dar.lam=0") == ("dar.lam", 0)
    assert parse_override("data.root=null") == ("data.root", None)
    assert parse_override("eval.ks=[1,10]") == ("eval.ks", [1, 10])
    cfg = apply_overrides(ExperimentConfig(), {"optim.lr": 3e-4, "dar.lam": 0.5})
    assert cfg.optim.lr == 3e-4 and cfg.dar.lam == 0.5
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("optim.lr")
    with pytest.raises(ConfigError, match=r"optim\.nope: unknown key"):
        apply_overrides(ExperimentConfig(), {"optim.nope": 1})
    with pytest.raises(ConfigError, match=r"nope\.lr: unknown key|nope: unknown key"):
        apply_overrides(ExperimentConfig(), {"nope.lr": 1})
    # load_config validates what the overrides make, compare block or not.
    with pytest.raises(
        ConfigError,
        match=r"^loss\.name: unknown base loss 'bogus'; choose one of proxyanchor, npair, ",
    ):
        load_config(None, ["compare=null", "loss.name=bogus"])


def test_compare_variants_validated_up_front() -> None:
    with pytest.raises(ConfigError, match=r"compare\.bad: .*dar\.lamda: unknown key"):
        config_from_dict({"compare": {"ok": {"dar.lam": 1.0}, "bad": {"dar.lamda": 1.0}}})


def test_yaml_file_nested_compare_and_errors(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ncompare:\n  a:\n    dar:\n      lam: 2\n  b: {}\n")
    cfg = load_config(p, ["seed=3"])
    runs = dict(variants(cfg))
    assert runs["a"].dar.lam == 2.0 and runs["b"].dar.lam == 0.0
    assert runs["a"].seed == 3
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(bad)


def test_dump_round_trip() -> None:
    import yaml

    cfg = load_config()
    again = config_from_dict(yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_named_choices_validated_in_every_variant() -> None:
    bad = {"a": {"dar.lam": 0.0}, "b": {"dar.measure": "l3"}}
    with pytest.raises(
        ConfigError,
        match=r"^compare\.b: dar\.measure: unknown measure 'l3'; choose one of l2, l1, linf, l2sq$",
    ):
        config_from_dict({"compare": bad})
    for key, value, what, guess in [
        ("loss.name", "proxy_anchor", "base loss", " (did you mean proxyanchor?)"),
        ("data.sampler", "rnd", "sampler", ""),
        ("optim.scheduler", "cos", "scheduler", " (did you mean cosine?)"),
        ("model.backbone", "vgg", "backbone", ""),
    ]:
        section, field = key.split(".")
        with pytest.raises(ConfigError) as err:
            config_from_dict({section: {field: value}})
        assert str(err.value).startswith(f"{key}: unknown {what} {value!r}; choose one of ")
        assert str(err.value).endswith(guess or "")


def test_settings_that_do_not_fit_are_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^loss\.alpha: not used by base loss 'npair' \(only by proxyanchor\); "
        r"set it to null$",
    ):
        config_from_dict({"loss": {"name": "npair", "alpha": 16}})
    with pytest.raises(ConfigError, match=r"data\.batch_size: 10 is not a multiple"):
        config_from_dict({"data": {"batch_size": 10, "m_per_class": 4}})
    with pytest.raises(ConfigError, match=r"optim\.warmup_epochs"):
        config_from_dict({"optim": {"warmup_epochs": 5}, "trainer": {"epochs": 5}})
    with pytest.raises(ConfigError, match=r"compare\.x\.data\.name: variants share the data"):
        config_from_dict({"compare": {"x": {"data.name": "digits"}}})


def test_fitting_on_the_split_that_holds_val_is_refused(tmp_path) -> None:
    """Selection on val must never see training images: train (= subtrain + val) with val
    is refused where a run starts; a checkpoint's stored config still loads."""
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  train_split: train\n  val_split: val\n")
    with pytest.raises(ConfigError, match=r"data\.train_split: 'train' contains .* 'val'"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"data\.train_split: 'trainval' contains"):
        load_config(None, ["data.train_split=trainval"])
    # a final run: all training images, no validation
    final = load_config(None, ["data.train_split=train", "data.val_split=null"])
    assert final.data.train_split == "train" and final.data.val_split is None
    # what old checkpoints hold: readable (only a new run is checked)
    old = config_from_dict({"data": {"train_split": "train", "val_split": "val"}})
    assert old.data.train_split == "train"
    assert ExperimentConfig().data.train_split == "subtrain"


def test_overrides_on_compare_configs() -> None:
    with pytest.raises(ConfigError, match=r"compare\.dasl_pa\.dar\.lam=0\.3"):
        load_config(None, ["dar.lam=0.3"])
    with pytest.raises(ConfigError, match=r"compare\.dasl_pa\.dar=\{\}"):
        load_config(None, ["dar={}"])  # a section holding a variant's key
    cfg = load_config(None, ["compare.dasl_pa.dar.lam=0.3", "optim.lr=0.002"])
    runs = dict(variants(cfg))
    assert runs["dasl_pa"].dar.lam == 0.3 and runs["proxyanchor"].dar.lam == 0.0
    assert runs["dasl_pa"].optim.lr == runs["proxyanchor"].optim.lr == 0.002
    with pytest.raises(ConfigError, match=r"no compare block"):
        load_config(None, ["compare=null", "compare.dasl_pa.dar.lam=0.3"])
    # the shared part of the dump leaves out what every variant sets, and reloads the same
    import yaml

    text = dump_config(cfg)
    assert "lam" not in yaml.safe_load(text)["dar"]
    again = config_from_dict(yaml.safe_load(text))
    assert dict(variants(again)) == runs


def test_non_finite_numbers_are_refused() -> None:
    for text in ("optim.lr=.nan", "dar.lam=.inf", "optim.lr=1e400"):
        with pytest.raises(ConfigError, match="finite"):
            load_config(None, [text, "compare=null"])
    for text, key in (("data.m_per_class=0", "data.m_per_class"), ("eval.ks=[]", "eval.ks")):
        with pytest.raises(ConfigError, match=key):
            load_config(None, [text])


def _named_settings(cfg: Any, prefix: str = "") -> list[str]:
    """The dotted keys of the fields made by ``dasl.config.choice``, section by section."""
    keys = []
    for spec in dataclasses.fields(cfg):
        value = getattr(cfg, spec.name)
        if "choice" in spec.metadata:
            keys.append(prefix + spec.name)
        elif dataclasses.is_dataclass(value):
            keys += _named_settings(value, prefix + spec.name + ".")
    return keys


DAR_KEYS = ["dar.measure", "dar.estimator", "dar.difference", "dar.reduction", "dar.backend"]


@pytest.mark.parametrize(
    ("cfg", "build", "expected"),
    [
        (
            ExperimentConfig(),
            config_from_dict,
            [
                "data.name",
                "data.transform",
                "data.sampler",
                "model.backbone",
                "model.pooling",
                "loss.name",
                *DAR_KEYS,
                "dar.kind",
                "optim.scheduler",
                "eval.distance",
            ],
        ),
        (
            PretrainConfig(),
            pretrain_config_from_dict,
            [
                "data.name",
                "data.recipe",
                "model.backbone",
                "model.pooling",
                "ssl.method",
                "ssl.base_loss",
                *DAR_KEYS,
                "dar.kind",
                "clustering.features",
                "optim.optimizer",
                "optim.lr_scaling",
                "optim.scheduler",
                "eval.linear",
            ],
        ),
    ],
)
def test_every_named_setting_is_checked_against_its_registry(cfg, build, expected) -> None:
    """Both configs check the same named settings as their former tables, each by its key."""
    assert _named_settings(cfg) == expected
    for key in expected:
        section, name = key.split(".")
        with pytest.raises(ConfigError, match=rf"^{key}: unknown .*'nope'"):
            build({section: {name: "nope"}})
