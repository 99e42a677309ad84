"""Every row of every table has its config, and the config is the row it claims to be."""

from __future__ import annotations

from pathlib import Path

import pytest

from dasl.config import load_config
from dasl.reproduce.tables import TABLES
from dasl.ssl_config import load_pretrain_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if t.command == "train"])
def test_supervised_rows(name: str) -> None:
    table = TABLES[name]
    assert table.row_keys == ("npair", "dasl_np", "proxyanchor", "dasl_pa")
    for row in table.rows:
        cfg = load_config(CONFIGS / row.config)
        assert cfg.data.name == name
        assert cfg.loss.name == ("npair" if "np" in row.key else "proxyanchor")
        assert (cfg.dar.lam > 0) == row.key.startswith("dasl")
        evaluated = {f"recall@{k}" for k in cfg.eval.ks} | ({"nmi"} if cfg.eval.nmi else set())
        wanted = {c.metric for c in table.columns if c.metric != "map@r"}
        assert wanted <= evaluated, row.config


def test_self_supervised_rows() -> None:
    table = TABLES["imagenet100"]
    for row in table.rows:
        cfg = load_pretrain_config(CONFIGS / row.config)
        assert cfg.data.name == "imagenet100" and cfg.ssl.method == row.key
        assert cfg.trainer.epochs == 100 and cfg.model.backbone == "resnet50"
        assert {200, 20} <= set(cfg.eval.knn_k) and cfg.eval.linear != "none"


def test_select_keeps_table_order_and_names_valid_rows() -> None:
    table = TABLES["cub200"]
    assert [r.key for r in table.select(["dasl_pa", "npair"])] == ["npair", "dasl_pa"]
    assert table.select(None) == table.rows
    with pytest.raises(ValueError, match="its rows: npair, dasl_np, proxyanchor, dasl_pa"):
        table.select(["npair", "arcface"])
