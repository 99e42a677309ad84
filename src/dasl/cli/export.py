"""``dasl export``: a trained embedding model as an ONNX or TorchScript file.

The file holds the evaluation model (backbone, pooling, head, L2 normalization); its
preprocessing, input shape, embedding size and metric are recorded in ``FILE.json`` and inside
the file (:mod:`dasl.deploy.model_export`). The export is checked before the command ends: the
exported file and PyTorch embed the same seeded batch, and the largest difference is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dasl.cli.errors import EXIT_OK, UserError

CHECK_TOLERANCE = 1e-5
"""Largest difference of the exported model's embeddings from PyTorch's the check accepts."""


def run_checkpoint(path: Path) -> Path:
    """``path`` if a file; for a run folder of ``dasl train``, the checkpoint it evaluated
    (``checkpoints/best.ckpt``, else ``checkpoints/last.ckpt``)."""
    if path.is_file():
        return path
    if not path.exists():
        raise UserError(f"--checkpoint: no such file or folder: {path}")
    for name in ("best.ckpt", "last.ckpt"):
        candidate = path / "checkpoints" / name
        if candidate.is_file():
            return candidate
    variants = sorted(p.name for p in path.iterdir() if (p / "checkpoints").is_dir())
    if variants:
        raise UserError(
            f"--checkpoint {path}: a comparison run of {len(variants)} variants "
            f"({', '.join(variants)}); pass one, e.g. --checkpoint {path / variants[0]}"
        )
    raise UserError(
        f"--checkpoint {path}: a folder without checkpoints/best.ckpt or "
        "checkpoints/last.ckpt, not a run folder of dasl train"
    )


def _load(path: Path):  # -> MetricLearningModule
    from dasl.training.checkpoint_io import CheckpointError, load_checked_module
    from dasl.training.ssl_module import is_ssl_checkpoint

    try:
        if is_ssl_checkpoint(path):
            raise UserError(
                f"--checkpoint {path}: a dasl pretrain checkpoint (a backbone without an "
                "embedding head); dasl export takes the checkpoints of dasl train"
            )
        return load_checked_module(path)
    except CheckpointError as exc:
        raise UserError(f"--checkpoint: {exc}") from None


def _input_size_from_data(module, norm) -> tuple[int, int] | None:
    """The size of the first test image after the evaluation transform, or ``None`` when the
    data cannot be read here."""
    from dasl.run_data import load_split

    cfg = module.cfg
    try:
        ds = load_split(cfg.data, cfg.data.test_split, False, cfg.seed, norm)
        h, w = ds[0][0].shape[-2:]
    except (OSError, ValueError, IndexError):
        return None
    return int(h), int(w)


def cmd_export(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np
    import torch

    from dasl.deploy import model_export as mx
    from dasl.deploy.index_folder import file_sha256
    from dasl.deploy.preprocessing import preprocessing_for
    from dasl.run_data import MetricLearningData

    if args.image_size is not None and args.image_size < 1:
        raise UserError(f"--image-size must be >= 1, got {args.image_size}")
    try:
        mx.require_packages(args.format)
    except mx.MissingExportPackages as exc:
        raise UserError(str(exc)) from None
    ckpt = run_checkpoint(Path(args.checkpoint))
    if ckpt != Path(args.checkpoint):
        print(f"checkpoint: {ckpt}")
    module = _load(ckpt)
    cfg = module.cfg
    d = cfg.data
    norm = MetricLearningData.normalization_for(cfg)
    size = d.image_size if args.image_size is None else args.image_size
    pre = preprocessing_for(d.transform, size, d.in_channels, norm)
    if pre.input_size is None:
        # A "small" transform keeps each image's own size; the data tells which one it is.
        found = _input_size_from_data(module, norm)
        if found is None:
            raise UserError(
                f"the model's input size is not fixed by its transform ({d.transform!r} without "
                f"data.image_size) and its {d.name} test data cannot be read here; pass "
                "--image-size N"
            )
        pre = dataclasses.replace(pre, input_size=found)
    model = module.model
    meta = mx.metadata(model, pre, cfg.eval.distance, ckpt, file_sha256(ckpt), args.format)
    out = Path(args.out)
    mx.export_model(model, out, args.format, meta)
    print(f"wrote {out} ({args.format}) and {mx.sidecar_path(out)}")
    if args.format == "torchscript":
        print(
            "note: TorchScript is deprecated by PyTorch; ONNX (--format onnx) is the format "
            "to prefer",
            file=sys.stderr,
        )
    missing = mx.missing_packages(mx.RUN_PACKAGES[args.format])
    if missing:
        print(
            f"note: not checked against PyTorch ({', '.join(missing)} not installed: "
            f"{mx.PIP_COMMAND})",
            file=sys.stderr,
        )
        return EXIT_OK
    x = mx.example_input(meta, batch=4, seed=1)
    with torch.no_grad():
        expected = model(x).numpy()
    got = mx.run_exported(out, args.format, x.numpy())
    diff = float(np.max(np.abs(got - expected)))
    shape = "x".join(str(v) for v in x.shape)
    print(f"checked: max |exported - PyTorch| = {diff:.2e} on a {shape} batch")
    if not diff <= CHECK_TOLERANCE:
        out.unlink(missing_ok=True)  # an unfaithful model must not be left for use
        mx.sidecar_path(out).unlink(missing_ok=True)
        raise UserError(
            f"{out}: the exported model's embeddings differ from PyTorch's by {diff:.2e} "
            f"(more than {CHECK_TOLERANCE:g}); not faithful, so removed (please report it)"
        )
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dasl export`` to the ``dasl`` parser."""
    p = sub.add_parser(
        "export",
        help="write a trained embedding model as ONNX or TorchScript",
        description="Write the embedding model of a dasl train checkpoint (backbone, pooling, "
        "head and L2 normalization, in eval mode) as ONNX (onnxruntime, needs onnx and "
        "onnxscript) or TorchScript (torch.jit.load). Its input is the preprocessed float32 "
        "batch (N, C, H, W); the preprocessing (image mode, resize, crop, mean, std), input "
        "size, embedding size and metric are recorded in OUT.json and inside the file (ONNX "
        "metadata_props 'dasl', TorchScript extra file 'dasl.json'). The export is checked "
        "against PyTorch before the command ends.",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="a .ckpt of dasl train, or a run folder (its checkpoints/best.ckpt, else last.ckpt)",
    )
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    p.add_argument("--out", required=True, help="file to write (and OUT.json beside it)")
    p.add_argument(
        "--image-size",
        type=int,
        help="input size N (N x N) to export at (default: the size the model was evaluated at)",
    )
    p.set_defaults(func=cmd_export)
