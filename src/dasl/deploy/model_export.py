"""Export an embedding model to ONNX or TorchScript, with its preprocessing recorded.

The exported graph is the evaluation model, ``EmbeddingModel.forward`` in eval mode:
``z = normalize(W . pool(backbone(x)) + b)`` (backbone, global pooling, linear head, L2
normalization). It takes the preprocessed float32 batch ``(N, C, H, W)`` (``N`` free; ``H, W``
the recorded input size) named ``images`` and returns float32 ``(N, d)`` ``embeddings``.

The preprocessing (:mod:`dasl.deploy.preprocessing`) is not part of the graph; one JSON
document (:func:`metadata`) records it with the model's shape and metric, in two places: the
sidecar ``FILE.json`` and inside the model file (ONNX ``metadata_props["dasl"]``, TorchScript
extra file ``dasl.json``), so that neither can be lost alone.

ONNX export uses torch's ``torch.export``-based exporter (``dynamo=True``, the default since
torch 2.9; it needs the ``onnx`` and ``onnxscript`` packages); the TorchScript-based one it
replaced is deprecated. TorchScript itself is deprecated by torch (2.14 warns on every
``torch.jit`` call): the format is kept for users of ``torch.jit.load``; prefer ONNX.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dasl import __version__
from dasl.deploy.preprocessing import Preprocessing
from dasl.errors import ConfigError, DependencyError
from dasl.models.embedding import EmbeddingModel
from dasl.registry import unknown_choice
from dasl.utils.io import atomic_output, atomic_write_bytes, atomic_write_json

FORMATS = ("onnx", "torchscript")
INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"
METADATA_KEY = "dasl"
"""ONNX ``metadata_props`` key of the metadata document."""
EXTRA_FILE = "dasl.json"
"""TorchScript extra file holding the metadata document."""
METADATA_FORMAT = 1

# What each format needs beyond dasl's own dependencies, to export and to run the export.
EXPORT_PACKAGES = {"onnx": ("onnx", "onnxscript"), "torchscript": ()}
RUN_PACKAGES = {"onnx": ("onnxruntime",), "torchscript": ()}
PIP_COMMAND = "pip install onnx onnxscript onnxruntime (or pip install 'dasl[export]')"


class MissingExportPackages(DependencyError):
    """A package an export format needs is not installed; the message names the pip command."""


def missing_packages(names: tuple[str, ...]) -> list[str]:
    """The packages of ``names`` that cannot be imported here."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def require_packages(fmt: str, run: bool = False) -> None:
    """Raise :class:`MissingExportPackages` unless what ``fmt`` needs (to export; with ``run``,
    also to run the exported file) is installed."""
    if fmt not in FORMATS:
        raise unknown_choice("export format", fmt, FORMATS)
    wanted = EXPORT_PACKAGES[fmt] + (RUN_PACKAGES[fmt] if run else ())
    missing = missing_packages(wanted)
    if missing:
        raise MissingExportPackages(
            f"{fmt} export needs the Python package(s) {', '.join(missing)}, not installed "
            f"here; install them with: {PIP_COMMAND}"
        )


def metadata(
    model: EmbeddingModel,
    preprocessing: Preprocessing,
    distance: str,
    checkpoint: str | os.PathLike[str],
    checkpoint_sha256: str,
    fmt: str,
) -> dict[str, Any]:
    """The document recorded with an exported model: what goes in, what comes out, and how
    embeddings compare."""
    if preprocessing.input_size is None:
        raise ConfigError("the preprocessing has no input size to export the model at")
    h, w = preprocessing.input_size
    dim = int(model.embedding_dim)
    return {
        "format": METADATA_FORMAT,
        "dasl_version": __version__,
        "model_format": fmt,
        "checkpoint": str(Path(checkpoint).resolve()),
        "checkpoint_sha256": checkpoint_sha256,
        "backbone": str(getattr(model, "backbone_name", type(model).__name__)),
        "embedding_dim": dim,
        "l2_normalized": bool(getattr(model, "normalize", False)),
        "distance": distance,
        "input": {
            "name": INPUT_NAME,
            "shape": ["N", preprocessing.in_channels, h, w],
            "dtype": "float32",
        },
        "output": {"name": OUTPUT_NAME, "shape": ["N", dim], "dtype": "float32"},
        "preprocessing": preprocessing.to_json(),
    }


def example_input(meta: dict[str, Any], batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A seeded standard-normal batch of the model's input shape (what tracing needs)."""
    _, c, h, w = meta["input"]["shape"]
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, c, h, w, generator=gen)


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # torch 2.14 warns on every torch.jit call that TorchScript is deprecated; the command
    # says so once in its own words (a filter on exactly those messages, nothing else).
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning
        )
        yield


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    import onnx

    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("N")},),
        verbose=False,
    )
    if program is None:  # only the TorchScript exporter (dynamo=False) returns nothing
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(meta)})
    atomic_write_bytes(path, proto.SerializeToString())


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    with _quiet_jit():
        traced = torch.jit.trace(model, (example,), check_trace=True)
        with atomic_output(path) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={EXTRA_FILE: json.dumps(meta)})


def export_model(
    model: nn.Module, path: str | os.PathLike[str], fmt: str, meta: dict[str, Any]
) -> Path:
    """Write ``model`` (eval mode, CPU, float32) to ``path`` in ``fmt`` with ``meta`` inside,
    then the sidecar ``path + ".json"``; both atomically."""
    require_packages(fmt)
    path = Path(path)
    model = model.to("cpu", torch.float32).eval()
    example = example_input(meta)
    with torch.no_grad():
        if fmt == "onnx":
            _export_onnx(model, example, path, meta)
        else:
            _export_torchscript(model, example, path, meta)
    atomic_write_json(sidecar_path(path), meta)
    return path


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def run_exported(path: str | os.PathLike[str], fmt: str, images: np.ndarray) -> np.ndarray:
    """Embeddings of a preprocessed float32 batch by the exported file (onnxruntime on CPU, or
    ``torch.jit.load``)."""
    x = np.ascontiguousarray(images, dtype=np.float32)
    if fmt == "onnx":
        import onnxruntime as ort

        runtime = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return np.asarray(runtime.run([OUTPUT_NAME], {INPUT_NAME: x})[0])
    with _quiet_jit():
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def embedded_metadata(path: str | os.PathLike[str], fmt: str) -> dict[str, Any]:
    """The metadata document stored inside an exported file."""
    if fmt == "onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
        return json.loads(props[METADATA_KEY])
    extra = {EXTRA_FILE: ""}
    with _quiet_jit():
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[EXTRA_FILE])
