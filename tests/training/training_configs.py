from __future__ import annotations

from pathlib import Path

from dasl.config import ExperimentConfig, config_from_dict


def tiny_digits_config(out_dir: Path, **extra: object) -> ExperimentConfig:
    """A run on sklearn digits that trains in a few seconds on one CPU core."""
    base = {
        "name": "tiny",
        "out_dir": str(out_dir),
        "seed": 0,
        "data": {
            "name": "digits",
            "batch_size": 40,
            "m_per_class": 8,
            "batches_per_epoch": 4,
            "eval_batch_size": 256,
        },
        "model": {"backbone": "small_cnn", "embedding_dim": 16},
        "loss": {"name": "proxyanchor"},
        "dar": {"lam": 0.5},
        "optim": {"lr": 0.003, "warmup_epochs": 0.5},
        "trainer": {"epochs": 2, "progress_bar": False, "log_every_n_steps": 1},
        "eval": {"ks": [1, 2], "raw_baseline": False, "plots": False, "nmi": True},
    }
    for key, value in extra.items():
        section, _, field = key.partition(".")
        if field:
            base.setdefault(section, {})[field] = value  # type: ignore[index]
        else:
            base[section] = value
    return config_from_dict(base)
