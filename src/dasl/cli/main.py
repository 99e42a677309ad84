"""The ``dasl`` command: ``train``, ``eval``, ``embed`` and ``data check``.

Thin by design: it turns arguments into a config and calls the library. User errors (bad
config keys or values, missing files) end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dasl.config import ConfigError, ExperimentConfig, apply_overrides, load_config, parse_override

EXIT_USAGE = 2

DIGITS_FALLBACK = {
    "data.name": "digits",
    "data.root": None,
    "data.batch_size": 60,
    "data.m_per_class": 12,
    "data.batches_per_epoch": 15,
    "data.eval_max_per_class": None,
    "data.max_per_class": None,
    "trainer.epochs": 10,
    "eval.tsne_points": 1000,
}
"""Overrides that fit the demo to sklearn's 1,797 8x8 digits when Fashion-MNIST is absent."""


class UserError(Exception):
    """An error caused by the user's input: reported as one line, no traceback."""


def _fail(message: str) -> int:
    first = " ".join(str(message).split("\n", 1)[0].split())
    print(f"dasl: error: {first}", file=sys.stderr)
    rest = str(message).split("\n", 1)[1:] if "\n" in str(message) else []
    if rest and rest[0].strip():
        print(rest[0].rstrip(), file=sys.stderr)
    return EXIT_USAGE


# ---------------------------------------------------------------------- train


def _check_paths(cfg: ExperimentConfig, *, pretrained_file: bool = True) -> None:
    root = cfg.data.root
    if root is not None and not Path(root).exists():
        raise UserError(f"data.root: no such file or directory: {root}")
    if not pretrained_file:
        return
    pretrained = cfg.model.pretrained
    if isinstance(pretrained, str) and not Path(pretrained).is_file():
        raise UserError(f"model.pretrained: no such file: {pretrained}")


def _default_demo_data(cfg: ExperimentConfig, user_keys: set[str]) -> ExperimentConfig:
    """Fashion-MNIST when it is installed (or given by data.root), else digits with a notice.

    The digits budget replaces the demo's, except for keys the user set on the command line.
    """
    from dasl.data import fashion_mnist_available

    default_fmnist = cfg.data.name == "fashion-mnist" and cfg.data.root is None
    if default_fmnist and fashion_mnist_available() is None:
        print(
            "notice: Fashion-MNIST is not installed (Debian: apt-get install "
            "dataset-fashion-mnist; or pass data.root=DIR with the four IDX .gz files); "
            "running the demo on scikit-learn's digits instead.",
            file=sys.stderr,
        )
        fallback = {k: v for k, v in DIGITS_FALLBACK.items() if k not in user_keys}
        return apply_overrides(cfg, fallback)
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from dasl.training.run import RunInterrupted, run_experiment

    cfg = load_config(args.config, args.overrides)
    if args.config is None:
        cfg = _default_demo_data(cfg, {parse_override(o)[0] for o in args.overrides})
    extra = {}
    if args.name is not None:
        extra["name"] = args.name
    if args.out_dir is not None:
        extra["out_dir"] = args.out_dir
    if extra:
        cfg = dataclasses.replace(cfg, **extra)
    _check_paths(cfg)
    try:
        run_experiment(cfg, resume=args.resume)
    except RunInterrupted as exc:
        print(f"dasl: {exc}", file=sys.stderr)
        return 130
    return 0


# ----------------------------------------------------------------- eval/embed


def _load_module(path: str):  # -> MetricLearningModule (Lightning is imported lazily)
    from dasl.training.module import load_module

    ckpt = Path(path)
    if not ckpt.is_file():
        raise UserError(f"--checkpoint: no such file: {ckpt}")
    return load_module(ckpt)


def _eval_config(module, args: argparse.Namespace) -> ExperimentConfig:
    cfg: ExperimentConfig = module.cfg
    overrides: dict[str, object] = {}
    if args.dataset is not None:
        overrides["data.name"] = args.dataset
        overrides["data.root"] = args.root
    elif args.root is not None:
        overrides["data.root"] = args.root
    if args.max_per_class is not None:
        overrides["data.eval_max_per_class"] = args.max_per_class
    cfg = apply_overrides(cfg, overrides) if overrides else cfg
    _check_paths(cfg, pretrained_file=False)
    return cfg


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class _Embedder:
    """A checkpoint's model, on the best device, embedding any split of its (overridden) data."""

    def __init__(self, args: argparse.Namespace) -> None:
        from dasl.training.datamodule import MetricLearningData

        module = _load_module(args.checkpoint)
        self.cfg = _eval_config(module, args)
        self.device = _device()
        self.module = module.to(self.device)
        self.norm = MetricLearningData.normalization_for(self.cfg)

    def __call__(self, split: str):  # -> (embeddings, labels) as numpy arrays
        from dasl.training.datamodule import eval_loader, load_split
        from dasl.training.evaluate import embed

        cfg = self.cfg
        ds = load_split(cfg.data, split, False, cfg.seed, self.norm)
        return embed(self.module, eval_loader(ds, cfg.data), self.device)


def cmd_eval(args: argparse.Namespace) -> int:
    from dasl.cli.pretrain import cmd_eval_ssl, wants_ssl_eval
    from dasl.training.evaluate import evaluate_embeddings

    if wants_ssl_eval(args):
        return cmd_eval_ssl(args)
    from dasl.utils.io import atomic_write_json

    embedder = _Embedder(args)
    cfg = embedder.cfg
    ref = ref_labels = None
    if args.split == "query-gallery" or (args.split is None and cfg.data.query_split):
        emb, labels = embedder(cfg.data.query_split or "query")
        ref, ref_labels = embedder(cfg.data.gallery_split or "gallery")
    else:
        emb, labels = embedder(args.split or cfg.data.test_split)
    ks = tuple(args.ks) if args.ks else tuple(cfg.eval.ks)
    metrics = evaluate_embeddings(
        emb, labels, ks, cfg.eval.distance, cfg.eval.nmi, cfg.seed, ref, ref_labels
    )
    for key, value in metrics.items():
        print(f"{key:>14}: {value:.4f}" if isinstance(value, float) else f"{key:>14}: {value}")
    if args.out is not None:
        atomic_write_json(args.out, metrics)
        print(f"wrote {args.out}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    import io

    import numpy as np

    from dasl.metrics import build_faiss_index, save_faiss_index
    from dasl.utils.io import atomic_write_bytes

    embedder = _Embedder(args)
    cfg = embedder.cfg
    emb, labels = embedder(args.split or cfg.data.test_split)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, array in (("embeddings.npy", emb), ("labels.npy", labels)):
        buf = io.BytesIO()
        np.save(buf, array)
        atomic_write_bytes(out / name, buf.getvalue())
    print(f"wrote {out / 'embeddings.npy'} {emb.shape} and {out / 'labels.npy'}")
    if args.faiss:
        index = build_faiss_index(emb, distance=cfg.eval.distance)
        save_faiss_index(index, out / "index.faiss")
        print(f"wrote {out / 'index.faiss'} ({index.ntotal} vectors, {cfg.eval.distance})")
    return 0


# ----------------------------------------------------------------------- data


def cmd_data_check(args: argparse.Namespace) -> int:
    from dasl.data import check_dataset

    report = check_dataset(args.name, args.root, allow_subset=args.allow_subset)
    print(report)
    return 0 if report.ok else 1


# ---------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dasl",
        description="Robust similarity learning with difference alignment regularization (DAR).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train and evaluate (no arguments: the ProxyAnchor vs DASL-PA demo)",
        description=(
            "Train a model from a YAML config and evaluate it on unseen classes. With no "
            "--config, runs the default demo: ProxyAnchor and DASL-PA on Fashion-MNIST (or "
            "digits), a comparison table with the raw-pixel baseline, and plots. "
            "Overrides are dotted KEY=VALUE pairs, e.g. dar.lam=0.5 trainer.epochs=10."
        ),
    )
    train.add_argument("--config", help="YAML config file (default: the packaged demo)")
    train.add_argument("--name", help="run name (folder under out_dir)")
    train.add_argument("--out-dir", help="parent folder of the run folder (default: runs)")
    train.add_argument(
        "--resume", action="store_true", help="continue from checkpoints/last.ckpt of the run"
    )
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    train.set_defaults(func=cmd_train)

    def add_model_data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--checkpoint", required=True, help="a .ckpt written by dasl train")
        p.add_argument("--dataset", help="dataset name (default: the one it was trained on)")
        p.add_argument("--root", help="dataset root folder")
        p.add_argument(
            "--split",
            help="split to use (default: the config's test split, or its query/gallery "
            "splits; 'query-gallery' forces those)",
        )
        p.add_argument("--max-per-class", type=int, help="cap images per class (quick checks)")

    ev = sub.add_parser(
        "eval",
        help="evaluate a checkpoint (Recall@K, MAP@R, R-precision, NMI)",
        description="Embed a split with a trained checkpoint and print retrieval metrics.",
    )
    add_model_data_args(ev)
    ev.add_argument("--ks", type=int, nargs="+", help="K values for Recall@K")
    ev.add_argument("--out", help="also write the metrics to this JSON file")
    ev.add_argument(
        "--protocol",
        choices=("knn", "linear"),
        help="a dasl pretrain checkpoint: weighted k-NN or linear probe of its frozen backbone",
    )
    ev.set_defaults(func=cmd_eval)

    em = sub.add_parser(
        "embed",
        help="write embeddings and labels (.npy) and optionally a faiss index",
        description="Embed a split with a trained checkpoint; write embeddings.npy, labels.npy "
        "and, with --faiss, index.faiss (inner product on normalized vectors for cosine).",
    )
    add_model_data_args(em)
    em.add_argument("--out", required=True, help="output folder")
    em.add_argument("--faiss", action="store_true", help="also build and save a faiss index")
    em.set_defaults(func=cmd_embed)

    from dasl.cli.pretrain import register as register_pretrain

    register_pretrain(sub)

    data = sub.add_parser("data", help="dataset tools", description="Dataset tools.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    check = dsub.add_parser(
        "check",
        help="check a dataset's layout and split sizes",
        description="Print the images and classes found per split, and what is wrong.",
    )
    check.add_argument(
        "name",
        help="cub200, cars196, sop, inshop, fashion-mnist, folder, csv, cifar10, cifar100, "
        "stl10, imagenet, imagenet100",
    )
    check.add_argument("--root", help="dataset root folder")
    check.add_argument(
        "--allow-subset",
        action="store_true",
        help="accept split sizes below the standard ones (a deliberately partial copy)",
    )
    check.set_defaults(func=cmd_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            # Validate overrides before anything heavy is imported.
            for text in args.overrides:
                parse_override(text)
        return int(args.func(args))
    except (ConfigError, UserError) as exc:
        return _fail(str(exc))
    except (FileNotFoundError, ValueError) as exc:
        # Library input errors carry a message written for users; DASL_DEBUG=1 shows the
        # traceback for bug reports.
        if os.environ.get("DASL_DEBUG"):
            raise
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("dasl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
