"""The data of a run in both settings, built from its config (:mod:`dasl.run_data`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dasl.data import load_dataset
from dasl.errors import ConfigError
from dasl.run_data import MetricLearningData, SSLData, eval_loader, load_eval_sets
from tests.training.ssl_configs import tiny_digits_pretrain
from tests.training.training_configs import tiny_digits_config


def test_supervised_splits_follow_the_data_section(tmp_path: Path) -> None:
    cfg = tiny_digits_config(tmp_path)
    cfg.data.max_per_class = 3
    data = MetricLearningData.for_experiment(cfg)
    plain = load_dataset(
        "digits",
        None,
        "subtrain",
        val_fraction=cfg.data.val_fraction,
        seed=cfg.seed,
        max_per_class=3,
    )
    assert data.train.labels.tolist() == plain.labels.tolist()
    assert data.eval_sets is not None and data.eval_sets.gallery is None
    assert MetricLearningData.for_experiment(cfg, test=False).eval_sets is None
    _, y = next(iter(eval_loader(data.eval_sets.query, cfg.data)))
    assert y.tolist() == data.eval_sets.query.labels[: len(y)].tolist()  # in order


def test_query_split_needs_a_gallery_split(tmp_path: Path) -> None:
    cfg = tiny_digits_config(tmp_path)
    cfg.data.query_split = "test"
    with pytest.raises(ConfigError, match="gallery_split"):
        load_eval_sets(cfg.data, cfg.seed)


def test_pretraining_views_are_a_function_of_seed_epoch_rank(tmp_path: Path) -> None:
    cfg = tiny_digits_pretrain(tmp_path)
    data = SSLData(cfg)
    assert data.bank()[0][1] == data.labelled[0][1] and data.labelled is data.train
    first = next(iter(data.two_view_loader(epoch=1)))
    again = next(iter(data.two_view_loader(epoch=1)))
    later = next(iter(data.two_view_loader(epoch=2)))
    v0, v1, _, index = first
    assert v0.shape == v1.shape and not torch.equal(v0, v1)  # two different views
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(index, later[3])  # the next epoch reshuffles
