"""Atomic file output: a reader sees the old file or the whole new one, never half of it.

Every output goes through a temporary file in the target's folder (named
``.<name>.<random>.tmp``, so no glob for ``*.json`` or ``*.ckpt`` ever matches it), is
flushed and fsync'ed, then ``os.replace``-d over the target: ``os.replace`` is atomic on
POSIX and Windows when source and target share a filesystem, which the same folder
guarantees. The temporary file is created with mode ``0o666`` minus the process umask,
like any file the user's programs write (``tempfile.mkstemp`` would make it ``0600``).
A process killed mid-write leaves only the temporary file: :func:`remove_stale_temporaries`
clears those.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dasl.errors import ConfigError

TMP_SUFFIX = ".tmp"


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
        try:
            # 0o666 & ~umask, applied by the kernel: the user's normal permissions.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(f"could not create a temporary file for {folder / name}")


def make_dir(path: str | os.PathLike[str]) -> Path:
    """``mkdir -p path``; a file standing where the path needs a folder is a :class:`ConfigError`.

    The path is one the user named (``--out``, ``out_dir``): a file in its way is bad input,
    reported in one line, not an ``OSError`` traceback.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (path, *path.parents) if p.is_file()), path)
        raise ConfigError(
            f"{path}: cannot make this folder, {blocker} is a file; choose another path"
        ) from None
    return path


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on every platform.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to, by any means.

    On a clean exit the temporary file is fsync'ed and moved over ``path``; on an exception
    it is removed and ``path`` is left as it was. For writers that want a file name
    (``torch.save``, ``faiss.write_index``).
    """
    path = Path(path)
    make_dir(path.parent)
    fd, tmp = _create_temporary(path.parent, path.name)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically, with the user's normal permissions."""
    path = Path(path)
    make_dir(path.parent)
    fd, tmp = _create_temporary(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int = 2) -> Path:
    """Serialize ``obj`` to JSON, then write it atomically: a serialization error writes nothing."""
    text = json.dumps(obj, indent=indent, sort_keys=False, allow_nan=True) + "\n"
    return atomic_write_text(path, text)


def is_temporary(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a temporary file of this module (an unfinished write)."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TMP_SUFFIX) and name.count(".") >= 3


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that writes killed mid-way left in ``folder``.

    Only for folders this process alone writes to (a run folder being resumed).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and is_temporary(p)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
