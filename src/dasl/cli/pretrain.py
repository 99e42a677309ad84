"""``dasl pretrain`` and the self-supervised protocols of ``dasl eval`` (``--protocol``).

Registered by :mod:`dasl.cli.main` (``register``); user errors raise
:class:`dasl.config.ConfigError`, which the entry point reports as one line, exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dasl.cli.launch import (
    add_training_command,
    check_data_root,
    demo_fallback,
    eval_overrides,
    launch,
)
from dasl.config import ConfigError, apply_overrides, parse_override

DIGITS_FALLBACK: dict[str, Any] = {
    "data.name": "digits",
    "data.root": None,
    "data.max_per_class": None,
    "data.eval_max_per_class": None,
    "data.batch_size": 128,
    "trainer.epochs": 8,
    "eval.tsne_points": 400,
}
"""Overrides that fit the pretraining demo to sklearn's 1,797 digits (8x8)."""


def _demo_data(cfg: Any, overrides: list[str]) -> Any:
    """Fashion-MNIST when installed (or given by data.root), else digits with a notice."""
    from dasl.data import fashion_mnist_available

    default_fmnist = cfg.data.name == "fashion-mnist" and cfg.data.root is None
    if not default_fmnist or fashion_mnist_available() is not None:
        return cfg
    notice = (
        "Fashion-MNIST is not installed (Debian: apt-get install dataset-fashion-mnist; or "
        "pass data.root=DIR with the four IDX .gz files); running the pretraining demo on "
        "scikit-learn's digits instead."
    )
    return demo_fallback(cfg, overrides, notice, DIGITS_FALLBACK)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from dasl.ssl_config import load_pretrain_config, pretrain_config_from_dict

    for text in args.overrides:
        parse_override(text)

    def fresh(cfg: Any) -> Any:
        return _demo_data(cfg, args.overrides) if args.config is None else cfg

    def check(cfg: Any) -> None:
        check_data_root(cfg.data.root)

    def pretrain(cfg: Any, resume: bool) -> object:
        from dasl.training.ssl_run import run_pretrain

        return run_pretrain(cfg, resume=resume)

    return launch(
        args, "pretrain", load_pretrain_config, pretrain_config_from_dict, fresh, check, pretrain
    )


def wants_ssl_eval(args: argparse.Namespace) -> bool:
    """``dasl eval`` of a pretrained backbone: ``--protocol`` given or an SSL checkpoint."""
    if getattr(args, "protocol", None) is not None:
        return True
    path = Path(args.checkpoint)
    if not path.is_file():
        return False
    from dasl.training.checkpoint_io import CheckpointError
    from dasl.training.ssl_module import is_ssl_checkpoint

    try:
        return is_ssl_checkpoint(path)
    except CheckpointError as exc:
        raise ConfigError(f"--checkpoint: {exc}") from None


def cmd_eval_ssl(args: argparse.Namespace) -> int:
    """k-NN or linear evaluation of a ``dasl pretrain`` checkpoint's frozen backbone."""
    from dasl.utils.io import atomic_write_json

    path = Path(args.checkpoint)
    if not path.is_file():
        raise ConfigError(f"--checkpoint: no such file: {path}")
    if args.split is not None:
        raise ConfigError(
            "--split does not apply to --protocol: k-NN and linear evaluation use the "
            "training split as bank/probe training set and the test split"
        )
    from dasl.training.ssl_module import is_ssl_checkpoint, load_ssl_module

    if not is_ssl_checkpoint(path):
        raise ConfigError(
            f"--protocol applies to checkpoints written by dasl pretrain; {path} was written "
            "by dasl train (evaluate it without --protocol)"
        )
    protocol = args.protocol or "knn"
    module = load_ssl_module(path)
    cfg = module.cfg
    overrides = eval_overrides(args)
    if protocol == "linear" and cfg.eval.linear == "none":
        overrides["eval.linear"] = "fast"
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    check_data_root(cfg.data.root)

    import numpy as np
    import torch

    from dasl.run_data import SSLData
    from dasl.training.ssl_callbacks import embed_views
    from dasl.training.ssl_run import _knn_metrics, _linear_metrics

    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = module.to(device)
    data = SSLData(cfg)
    if protocol == "knn" or cfg.eval.linear == "fast":
        train, _, train_labels = embed_views(module, data.eval_loader(data.bank()))
        test, _, test_labels = embed_views(module, data.eval_loader(data.evaluated(data.test)))
        feats = (train, train_labels, test, test_labels)
    else:
        empty = np.empty(0)
        feats = (empty, empty, empty, empty)
    if protocol == "knn":
        ks = tuple(args.ks) if args.ks else tuple(cfg.eval.knn_k)
        metrics = _knn_metrics(*feats, ks, cfg.eval.knn_temperature)
    else:
        metrics = _linear_metrics(cfg, module, data, feats)
    for key, value in metrics.items():
        print(f"{key:>16}: {value:.4f}")
    if args.out is not None:
        atomic_write_json(args.out, metrics)
        print(f"wrote {args.out}")
    return 0


def register(sub: Any) -> None:
    """Add ``pretrain`` to the ``dasl`` subcommands."""
    add_training_command(
        sub,
        "pretrain",
        help="self-supervised pretraining (no arguments: SimCLR vs DASL-cf vs DASL-cu demo)",
        description=(
            "Pretrain a backbone without labels from a YAML config and evaluate it by "
            "weighted k-NN and a linear probe. With no --config, runs the demo: SimCLR, DASL "
            "cluster-free and DASL cluster-used on Fashion-MNIST (or digits), a comparison "
            "table with the raw-pixel baseline, and plots. Overrides are dotted KEY=VALUE "
            "pairs, e.g. trainer.epochs=10 or, for one variant of a compare: block, "
            "compare.dasl_cf.dar.lam=0.5 (the demo's variants set dar.lam each, so a plain "
            "dar.lam=0.5 is refused: it would be ignored)."
        ),
        config_help="YAML config (default: the packaged demo; see configs/ssl/)",
        func=cmd_pretrain,
    )
