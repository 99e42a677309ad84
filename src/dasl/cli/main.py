"""The ``dasl`` command: ``train``, ``tune``, ``pretrain``, ``eval``, ``embed``, ``search``,
``export``, ``data check``.

Thin by design: it turns arguments into a config and calls the library. Exit codes follow
:mod:`dasl.cli.errors` (0 ok, 2 bad input or data problem, 130 interrupted, 1 a bug).

Adding a subcommand: write ``add_<name>(sub)`` that calls ``sub.add_parser(...)`` and
``set_defaults(func=...)``, and append it to :data:`SUBCOMMANDS`; ``func(args) -> int`` runs
under :func:`dasl.cli.errors.run_command` (raise ``UserError`` or another ``dasl.DaslError``
for bad input). A subcommand with a positional ``overrides`` list (``nargs="*"``) and
``set_defaults(overrides_anywhere=True)`` takes ``KEY=VALUE`` tokens anywhere on the line.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

from dasl.cli.errors import (
    EXIT_OK,
    EXIT_USAGE,
    UserError,
    report_error,
    run_command,
)
from dasl.cli.launch import (
    add_training_command,
    check_data_root,
    demo_fallback,
    eval_overrides,
    launch,
)
from dasl.cli.run_dir import checkpoint_in
from dasl.config import (
    ExperimentConfig,
    apply_command_line,
    apply_overrides,
    config_from_dict,
    load_config,
    parse_override,
)

DIGITS_FALLBACK = {
    "data.name": "digits",
    "data.root": None,
    "data.transform": "small",
    "data.val_by": None,
    "data.val_fraction": 0.1,
    "optim.lr": 0.001,
    "data.batch_size": 60,
    "data.m_per_class": 12,
    "data.batches_per_epoch": 15,
    "data.eval_max_per_class": None,
    "data.max_per_class": None,
    "trainer.epochs": 10,
    "eval.tsne_points": 1000,
}
"""Overrides that fit the demo to sklearn's 1,797 8x8 digits when its dataset is absent."""


# ---------------------------------------------------------------------- train


def _check_paths(cfg: ExperimentConfig, *, pretrained_file: bool = True) -> None:
    check_data_root(cfg.data.root)
    if not pretrained_file:
        return
    pretrained = cfg.model.pretrained
    if isinstance(pretrained, str) and not Path(pretrained).is_file():
        raise UserError(f"model.pretrained: no such file: {pretrained}")


def _default_demo_data(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """The demo's dataset when it can be loaded here, else sklearn's digits with a notice.

    The digits budget replaces the demo's, except for keys the user set on the command line.
    """
    from dasl.data import glyphs_available
    from dasl.data.glyphs_fonts import PACKAGES, install_hint

    if cfg.data.name != "glyphs" or cfg.data.root is not None or glyphs_available():
        return cfg
    notice = (
        "the glyphs font packages are not installed (Debian, as root: "
        f"{install_hint(PACKAGES)}, which scripts/bootstrap.sh runs; or pass data.root=DIR "
        "with font files); running the demo on scikit-learn's digits instead."
    )
    return demo_fallback(cfg, overrides, notice, DIGITS_FALLBACK)


def cmd_train(args: argparse.Namespace) -> int:
    from dasl.training import run

    def fresh(cfg: ExperimentConfig) -> ExperimentConfig:
        return _default_demo_data(cfg, args.overrides) if args.config is None else cfg

    def train(cfg: ExperimentConfig, resume: bool) -> object:
        return run.run_experiment(cfg, resume=resume)

    return launch(args, "train", load_config, config_from_dict, fresh, _check_paths, train)


# ----------------------------------------------------------------- eval/embed


def _load_module(path: str):  # -> MetricLearningModule (Lightning is imported lazily)
    from dasl.training.checkpoint_io import CheckpointError, load_checked_module

    ckpt = Path(path)
    if not ckpt.is_file():
        raise UserError(f"--checkpoint: no such file: {ckpt}")
    try:
        return load_checked_module(ckpt)
    except CheckpointError as exc:
        raise UserError(f"--checkpoint: {exc}") from None


def _eval_config(module, args: argparse.Namespace) -> ExperimentConfig:
    cfg: ExperimentConfig = module.cfg
    overrides = eval_overrides(args)
    cfg = apply_overrides(cfg, overrides) if overrides else cfg
    _check_paths(cfg, pretrained_file=False)
    return cfg


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class _Embedder:
    """A checkpoint's model, on the best device, embedding any split of its (overridden) data."""

    def __init__(self, args: argparse.Namespace) -> None:
        from dasl.run_data import MetricLearningData

        module = _load_module(args.checkpoint)
        self.cfg = _eval_config(module, args)
        self.device = _device()
        self.module = module.to(self.device)
        self.norm = MetricLearningData.normalization_for(self.cfg)
        self.datasets: dict[str, object] = {}  # split -> dataset, for report.html's images

    def dataset(self, split: str):  # -> the split with the evaluation transform
        from dasl.run_data import load_split

        return load_split(self.cfg.data, split, False, self.cfg.seed, self.norm)

    def __call__(self, split: str, dataset=None):  # -> (embeddings, labels) as numpy arrays
        from dasl.evaluation import embed
        from dasl.run_data import eval_loader

        ds = self.dataset(split) if dataset is None else dataset
        self.datasets[split] = ds
        return embed(self.module, eval_loader(ds, self.cfg.data), self.device)


def _resolve_checkpoint(args: argparse.Namespace) -> None:
    """A run folder given as ``--checkpoint`` becomes the checkpoint it evaluated (said)."""
    chosen, why = checkpoint_in(Path(args.checkpoint))
    if why:
        print(f"checkpoint: {chosen} ({why})")
    args.checkpoint = str(chosen)


def cmd_eval(args: argparse.Namespace) -> int:
    from dasl.cli.pretrain import cmd_eval_ssl, wants_ssl_eval
    from dasl.evaluation import evaluate_embeddings

    _resolve_checkpoint(args)
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
    from dasl.reporting.run_report import write_eval_report

    sets = list(embedder.datasets.values())
    page = write_eval_report(
        args.checkpoint, cfg, metrics, (emb, labels, ref, ref_labels), sets[0], sets[1:]
    )
    print(f"wrote {page}")
    return 0


EMBED_MANIFEST = "embed.json"
"""Written last by ``dasl embed``: the outputs are complete when it exists."""


def cmd_embed(args: argparse.Namespace) -> int:
    import hashlib
    import io

    import numpy as np

    from dasl.deploy import index_folder
    from dasl.deploy.faiss_index import build_faiss_index, save_faiss_index
    from dasl.deploy.preprocessing import preprocessing_for
    from dasl.utils.io import atomic_write_bytes, atomic_write_json, make_dir

    _resolve_checkpoint(args)
    embedder = _Embedder(args)
    cfg = embedder.cfg
    split = args.split or cfg.data.test_split
    dataset = embedder.dataset(split)
    emb, labels = embedder(split, dataset)
    out = make_dir(args.out)
    # embed.json goes first and comes back last: while it is absent the folder may hold a
    # mix of old and new files (a write killed half-way), never one that claims to be whole.
    manifest = out / EMBED_MANIFEST
    manifest.unlink(missing_ok=True)
    files: dict[str, str] = {}
    for name, array in (("embeddings.npy", emb), ("labels.npy", labels)):
        buf = io.BytesIO()
        np.save(buf, array)
        atomic_write_bytes(out / name, buf.getvalue())
        files[name] = hashlib.sha256(buf.getvalue()).hexdigest()
    print(f"wrote {out / 'embeddings.npy'} {emb.shape} and {out / 'labels.npy'}")
    if args.faiss:
        index = build_faiss_index(emb, distance=cfg.eval.distance)
        save_faiss_index(index, out / "index.faiss")
        files["index.faiss"] = hashlib.sha256((out / "index.faiss").read_bytes()).hexdigest()
        print(f"wrote {out / 'index.faiss'} ({index.ntotal} vectors, {cfg.eval.distance})")
    else:
        (out / "index.faiss").unlink(missing_ok=True)  # an old index would not match
    d = cfg.data
    pre = preprocessing_for(d.transform, d.image_size, d.in_channels, embedder.norm, dataset)
    record = index_folder.manifest(
        checkpoint=args.checkpoint,
        dataset=dataset,
        shape=emb.shape,
        distance=cfg.eval.distance,
        preprocessing=pre,
        files=files,
    )
    atomic_write_json(manifest, record)
    return EXIT_OK


# ----------------------------------------------------------------------- data


def _check_split_settings(args: argparse.Namespace) -> dict[str, typing.Any]:
    """The split settings ``data check`` carves validation classes with: those of
    ``--config``, of the demo for the demo's dataset, else the defaults; plus overrides."""
    if args.config is None:
        demo = load_config(None, [])
        if args.name != demo.data.name:
            cfg = apply_command_line(ExperimentConfig(), args.overrides, config_from_dict)
        else:
            cfg = load_config(None, args.overrides)
            print(
                f"note: split settings of the demo (dasl train with no --config): "
                f"data.val_fraction={cfg.data.val_fraction}, data.val_by={cfg.data.val_by}, "
                f"seed={cfg.seed}; the demo fits on few classes and selects checkpoints on many "
                "(docs/METHOD-NOTES.md); give data.val_fraction=... or --config FILE for others"
            )
    else:
        cfg = load_config(args.config, args.overrides)
    options: dict[str, object] = {
        "val_fraction": cfg.data.val_fraction,
        "seed": cfg.seed,
        "allow_subset": args.allow_subset or cfg.data.allow_subset,
    }
    if cfg.data.val_by is not None:
        options["val_by"] = cfg.data.val_by
    return options


def cmd_data_check(args: argparse.Namespace) -> int:
    from dasl.data import check_dataset

    report = check_dataset(args.name, args.root, **_check_split_settings(args))
    print(report)
    if report.ok:
        return EXIT_OK
    # A dataset with problems is a data problem: exit 2 like every other bad input.
    n = len(report.problems)
    return report_error(f"dataset {args.name}: {n} problem{'s' if n > 1 else ''}, listed above")


# ---------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line (plus where to look), exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: error: {message}{_suggestion(message)} (see '{self.prog} --help')\n",
        )


def _suggestion(message: str) -> str:
    """`` (did you mean 'train'?)`` for argparse's "invalid choice: 'trian' (choose from ...)"."""
    import difflib
    import re

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if found is None:
        return ""
    choices = re.findall(r"'([^']*)'", found.group(2))
    close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _DatasetName(argparse.Action):
    """The ``name`` of ``data check``, whose help lists the dataset registry's names.

    The registry imports every reader (seconds): it is read only when the help is shown.
    """

    @property
    def help(self) -> str:
        from dasl.data.registry import DATASET_NAMES

        return "one of " + ", ".join(DATASET_NAMES)

    @help.setter
    def help(self, value: object) -> None:
        pass

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)


def add_train(sub: argparse._SubParsersAction) -> None:
    add_training_command(
        sub,
        "train",
        help="train and evaluate (no arguments: the ProxyAnchor vs DASL-PA demo)",
        description=(
            "Train a model from a YAML config and evaluate it on unseen classes. With no "
            "--config, runs the default demo: ProxyAnchor and DASL-PA on glyphs (characters "
            "rendered from Debian's font packages; digits when they are missing), a comparison "
            "table with the raw-pixel baseline, and plots. "
            "Overrides are dotted KEY=VALUE pairs, in any order with the options, e.g. "
            "trainer.epochs=10 or, for one variant of a compare: block, "
            "compare.dasl_pa.dar.lam=0.3."
        ),
        config_help="YAML config file (default: the packaged demo)",
        func=cmd_train,
        overrides_anywhere=True,
    )


def _add_model_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a .ckpt written by dasl train, or its run folder (then its best.ckpt, else "
        "last.ckpt: the checkpoint the run evaluated)",
    )
    p.add_argument("--dataset", help="dataset name (default: the one it was trained on)")
    p.add_argument("--root", help="dataset root folder")
    p.add_argument(
        "--split",
        help="split to use (default: the config's test split, or its query/gallery "
        "splits; 'query-gallery' forces those)",
    )
    p.add_argument("--max-per-class", type=int, help="cap images per class (quick checks)")


def add_eval(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "eval",
        help="evaluate a checkpoint (Recall@K, MAP@R, R-precision, NMI)",
        description="Embed a split with a trained checkpoint and print retrieval metrics.",
    )
    _add_model_data_args(ev)
    ev.add_argument("--ks", type=int, nargs="+", help="K values for Recall@K")
    ev.add_argument("--out", help="also write the metrics to this JSON file")
    ev.add_argument(
        "--protocol",
        choices=("knn", "linear"),
        help="a dasl pretrain checkpoint: weighted k-NN or linear probe of its frozen backbone",
    )
    ev.set_defaults(func=cmd_eval)


def add_embed(sub: argparse._SubParsersAction) -> None:
    em = sub.add_parser(
        "embed",
        help="write embeddings and labels (.npy) and optionally a faiss index",
        description="Embed a split with a trained checkpoint; write embeddings.npy, labels.npy "
        "and, with --faiss, index.faiss (inner product on normalized vectors for cosine), then "
        "embed.json last: the outputs are complete when embed.json exists. embed.json records "
        "what dasl search needs: the checkpoint and its SHA-256, the preprocessing, the metric, "
        "and each row's image path (DATASET:SPLIT[i] for in-memory datasets) and class.",
    )
    _add_model_data_args(em)
    em.add_argument("--out", required=True, help="output folder")
    em.add_argument("--faiss", action="store_true", help="also build and save a faiss index")
    em.set_defaults(func=cmd_embed)


def add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dataset tools", description="Dataset tools.")
    dsub = data.add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND", parser_class=_Parser
    )
    check = dsub.add_parser(
        "check",
        help="check a dataset's layout and split sizes",
        description="Print the images and classes found per split, and what is wrong "
        "(exit status 2 when something is). The validation classes are carved as a run "
        "would carve them: with --config's split settings, the demo's for the demo's "
        "dataset (dasl train with no --config), or KEY=VALUE overrides.",
    )
    check.add_argument("name", action=_DatasetName)
    check.add_argument("--root", help="dataset root folder")
    check.add_argument(
        "--config",
        help="take the split settings (data.val_fraction, data.val_by, seed) from this config; "
        "without it, the demo's for the demo's dataset, else the defaults",
    )
    check.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="e.g. data.val_fraction=0.5"
    )
    check.add_argument(
        "--allow-subset",
        action="store_true",
        help="accept split sizes below the standard ones (a deliberately partial copy)",
    )
    check.set_defaults(func=cmd_data_check, overrides_anywhere=True)


def add_tune(sub: argparse._SubParsersAction) -> None:
    from dasl.cli.tune import add_tune_parser

    add_tune_parser(sub)


def add_pretrain(sub: argparse._SubParsersAction) -> None:
    from dasl.cli.pretrain import register

    register(sub)


def add_reproduce(sub: argparse._SubParsersAction) -> None:
    from dasl.cli.reproduce import register

    register(sub)


def add_search(sub: argparse._SubParsersAction) -> None:
    from dasl.cli.search import register

    register(sub)


def add_export(sub: argparse._SubParsersAction) -> None:
    from dasl.cli.export import register

    register(sub)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_train,
    add_tune,
    add_pretrain,
    add_reproduce,
    add_eval,
    add_embed,
    add_search,
    add_export,
    add_data,
]
"""Each adds one subcommand to the ``dasl`` parser; other modules append theirs."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dasl",
        description="Robust similarity learning with difference alignment regularization (DAR). "
        "Exit status: 0 ok, 2 bad input or data problem, 130 interrupted, 1 a bug.",
    )
    from dasl import __version__

    parser.add_argument("--version", action="version", version=f"dasl {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def is_override(token: str) -> bool:
    """A ``KEY=VALUE`` token (not an option): what may follow options on the line."""
    return "=" in token and not token.startswith("-")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``, letting ``KEY=VALUE`` overrides and options mix in any order.

    argparse stops filling a positional list at the first option, so overrides after an
    option come back as unrecognized; for subcommands that take overrides they are
    appended in order (later ones win), anything else is refused in one line.
    """
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "overrides_anywhere", False):
        late = [t for t in extra if is_override(t)]
        extra = [t for t in extra if not is_override(t)]
        args.overrides = [*args.overrides, *late]
    if extra:
        prog = f"dasl {args.command}" if getattr(args, "command", None) else "dasl"
        shown = " ".join(extra)
        hint = " (overrides are KEY=VALUE)" if getattr(args, "overrides_anywhere", False) else ""
        print(
            f"{prog}: error: unrecognized arguments: {shown}{hint} (see '{prog} --help')",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    return args


def _validated(args: argparse.Namespace) -> int:
    # Validate overrides before anything heavy is imported.
    for text in getattr(args, "overrides", None) or []:
        parse_override(text)
    return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    return run_command(_validated, args)


__all__ = ["SUBCOMMANDS", "UserError", "build_parser", "main", "report_error", "run_command"]


if __name__ == "__main__":
    raise SystemExit(main())
