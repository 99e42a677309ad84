"""The pretraining config: every packaged/paper config validates; bad input is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dasl.config import ConfigError
from dasl.ssl_config import load_pretrain_config, pretrain_config_from_dict

SSL_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "ssl").glob("*.yaml"))


def test_every_ssl_config_validates() -> None:
    # Every SSL row of the seed: ImageNet-100 and ImageNet-1K, ResNet-50 and ViT-B/16, two
    # schedules each, {simclr, dasl_cf, dasl_cu}.
    assert len(SSL_CONFIGS) == 24
    for path in SSL_CONFIGS:
        cfg = load_pretrain_config(path)
        assert cfg.name == path.stem
        assert path.read_text().startswith("# "), path  # headed by its settings and sources
        assert (cfg.ssl.method == "simclr") == (cfg.dar.lam == 0), path


def test_demo_config_variants() -> None:
    cfg = load_pretrain_config()
    assert list(cfg.compare) == ["simclr", "dasl_cf", "dasl_cu"]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"ssl": {"method": "byol"}},
            "ssl.method: unknown method 'byol'; choose one of simclr, dasl_cf, dasl_cu",
        ),
        ({"ssl": {"methd": "simclr"}}, "ssl.methd: unknown key"),
        ({"ssl": {"method": "simclr"}, "dar": {"lam": 1.0}}, "dar.lam: 1.0 with ssl.method"),
        ({"ssl": {"method": "dasl_cf"}}, "needs dar.lam > 0"),
        ({"ssl": {"base_loss": "vicreg"}}, "ssl.temperature: not used by base loss 'vicreg'"),
        ({"ssl": {"temperature": None}}, "ssl.temperature: base loss 'ntxent' needs a value"),
        ({"ssl": {"temperature": -0.5}}, "ssl.temperature: must be > 0, got -0.5"),
        ({"ssl": {"base_loss": "supcon"}}, "ssl.base_loss: unknown base loss 'supcon'; choose"),
        ({"model": {"proj_dim": 0}}, "model.proj_dim: must be >= 1, got 0"),
        ({"clustering": {"num_clusters": [1]}}, "clustering.num_clusters"),
        (
            {"optim": {"optimizer": "adam"}},
            "optim.optimizer: unknown optimizer 'adam'; choose one of sgd, lars, adamw (did you",
        ),
        ({"eval": {"knn_k": []}}, "eval.knn_k"),
        (
            {"data": {"name": "mnist"}},
            "data.name: unknown dataset 'mnist'; choose one of fashion-mnist, digits",
        ),
        ({"data": {"batch_size": "big"}}, "data.batch_size: expected int"),
        (
            {"ssl": {"method": "dasl_cu"}, "dar": {"lam": 1.0}, "clustering": {"start_epoch": 9}},
            "dasl_cu would never use its clusters",
        ),
    ],
)
def test_bad_settings_name_the_key(mapping: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        pretrain_config_from_dict(mapping)


def test_compare_variant_checked_before_training() -> None:
    with pytest.raises(ConfigError, match=r"compare\.cf: dar\.lam"):
        pretrain_config_from_dict({"compare": {"cf": {"ssl.method": "dasl_cf"}}})
    with pytest.raises(ConfigError, match="variants share the data"):
        pretrain_config_from_dict({"compare": {"a": {"data.name": "digits"}}})


def test_command_line_overrides_per_variant() -> None:
    cfg = load_pretrain_config(None, ["compare.dasl_cf.dar.lam=0.3", "trainer.epochs=2"])
    assert cfg.compare["dasl_cf"]["dar.lam"] == 0.3 and cfg.trainer.epochs == 2
    # A key every variant sets would be ignored: refused, naming the variants.
    with pytest.raises(ConfigError, match=r"compare block sets it per variant .*dasl_cf"):
        load_pretrain_config(None, ["dar.lam=0.3"])
    # Without a compare block a bad override is refused where the config is made.
    with pytest.raises(ConfigError, match=r"ssl\.method: unknown method 'bogus'"):
        load_pretrain_config(None, ["compare=null", "ssl.method=bogus"])
    single = load_pretrain_config(None, ["compare=null", "ssl.method=dasl_cf", "dar.lam=1"])
    assert single.compare is None and single.ssl.method == "dasl_cf"
