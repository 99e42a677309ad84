from __future__ import annotations

from pathlib import Path

from dasl.ssl_config import PretrainConfig, pretrain_config_from_dict


def tiny_digits_pretrain(out_dir: Path, **extra: object) -> PretrainConfig:
    """A DASL-cu pretraining run on sklearn digits that takes seconds on one CPU core."""
    base: dict = {
        "name": "tiny-ssl",
        "out_dir": str(out_dir),
        "seed": 0,
        "data": {
            "name": "digits",
            "batch_size": 32,
            "batches_per_epoch": 3,
            "eval_batch_size": 512,
            "in_channels": 1,
        },
        "model": {"backbone": "small_cnn", "proj_hidden_dim": 32, "proj_dim": 16},
        "ssl": {"method": "dasl_cu", "temperature": 0.2},
        "dar": {"lam": 1.0, "estimator": "chain"},
        "clustering": {"num_clusters": [5, 10], "every": 1, "start_epoch": 1},
        "optim": {"lr": 0.003, "warmup_epochs": 0.5},
        "trainer": {"epochs": 2, "progress_bar": False, "log_every_n_steps": 1},
        "eval": {"knn_k": [20, 5], "linear": "none", "raw_baseline": False, "plots": False},
    }
    for key, value in extra.items():
        section, _, field = key.partition(".")
        if field:
            base.setdefault(section, {})[field] = value
        else:
            base[section] = value
    return pretrain_config_from_dict(base)
