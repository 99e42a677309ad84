"""Checkpoint files that are either complete or absent, and checks that tell them apart.

Lightning's ``TorchCheckpointIO`` writes through an fsspec transaction: a temporary file in
``$TMPDIR`` moved into place, a *copy* written in place when ``$TMPDIR`` is another
filesystem, never fsync'ed, and the temporary file left behind in ``$TMPDIR`` when the
process dies. :class:`AtomicCheckpointIO` writes a temporary file next to the target, fsyncs
it and ``os.replace``-s it (:func:`dasl.utils.io.atomic_write_bytes`), so a ``kill -9`` or a full
disk at any moment leaves the previous checkpoint as it was.

:func:`check_checkpoint` recognises what is not a complete dasl checkpoint (a text file, a
truncated zip, another program's checkpoint) without unpickling anything.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from dasl.errors import CheckpointError
from dasl.utils.io import TMP_SUFFIX, atomic_write_bytes, remove_stale_temporaries


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (full disk, no permission); the previous one is intact."""


def check_checkpoint(path: str | Path) -> None:
    """Raise :class:`CheckpointError` naming ``path`` unless it is a complete torch zip file.

    ``torch.save`` writes a zip archive whose central directory comes last, so a truncated
    file has none; ``testzip`` then checks every member's CRC (a file cut or damaged inside).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror})") from None
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            bad = zf.testzip()
    except zipfile.BadZipFile:
        raise CheckpointError(
            f"{path}: not a complete PyTorch checkpoint ({size:,} bytes; truncated, or not a "
            ".ckpt file at all)"
        ) from None
    except (OSError, EOFError, zipfile.LargeZipFile) as exc:
        raise CheckpointError(f"{path}: damaged checkpoint ({exc})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (member {bad} fails its CRC check)")
    if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        raise CheckpointError(f"{path}: a zip file, but not a PyTorch checkpoint")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of a complete dasl checkpoint, else :class:`CheckpointError`."""
    check_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling errors come in many types; all mean "not ours"
        raise CheckpointError(f"{path}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    config = ckpt.get("hyper_parameters", {}).get("config") if isinstance(ckpt, dict) else None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or not isinstance(config, dict):
        raise CheckpointError(
            f"{path}: a PyTorch file, but not a checkpoint written by dasl train (it has no "
            "state_dict with the run's config)"
        )
    return ckpt


def load_checked_module(path: str | Path):  # -> MetricLearningModule
    """:func:`dasl.training.module.load_module` after :func:`read_checkpoint`'s checks."""
    from dasl.training.module import MetricLearningModule

    ckpt = read_checkpoint(path)
    try:
        return MetricLearningModule.load_from_checkpoint(
            path, map_location="cpu", load_pretrained=False
        )
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        epoch = ckpt.get("epoch")
        raise CheckpointError(
            f"{path}: a dasl checkpoint (epoch {epoch}) whose model does not load: {exc}"
        ) from None


def resumable_checkpoint(folder: Path, log: Any = print) -> Path | None:
    """The checkpoint ``--resume`` continues from: ``last.ckpt`` when complete.

    Temporary files of writes that never finished are removed. A ``last.ckpt`` that is not
    complete (written by another tool, or copied partially) is reported and set aside as
    ``last.ckpt.incomplete``; ``None`` then means: start from scratch.
    """
    remove_stale_temporaries(folder)
    last = folder / "last.ckpt"
    if not last.is_file():
        return None
    try:
        check_checkpoint(last)
    except CheckpointError as exc:
        aside = last.with_name(last.name + ".incomplete")
        last.replace(aside)
        log(f"warning: {exc}; moved it to {aside.name}, not resuming from it")
        return None
    return last


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are atomic and durable, with the user's umask."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        target = Path(path)
        # Serialized in memory first, as Lightning does: torch.save's C++ file writer turns
        # a full disk into "RuntimeError: basic_ios::clear: iostream error", while Python's
        # write raises OSError(ENOSPC) that can be reported as what it is.
        try:
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            atomic_write_bytes(target, buffer.getbuffer())
        except OSError as exc:
            raise CheckpointWriteError(
                exc.errno,
                f"cannot write checkpoint {target}: {exc.strerror or exc}; the previous "
                f"checkpoint there is intact (free space, then run again with --resume)",
            ) from exc


__all__ = [
    "TMP_SUFFIX",
    "AtomicCheckpointIO",
    "CheckpointError",
    "CheckpointWriteError",
    "check_checkpoint",
    "load_checked_module",
    "read_checkpoint",
    "resumable_checkpoint",
]
