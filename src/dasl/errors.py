"""The exceptions dasl raises for user mistakes, under one base.

``DaslError`` and its subclasses mean "the input is wrong" (a config key or value, a data
folder, a checkpoint): the ``dasl`` command reports them in one line with exit status 2.
Anything else that escapes a command is a bug in dasl: a traceback and exit status 1.

:class:`Interrupted` (a run stopped by Ctrl-C, its resume point kept) is no mistake either:
the command reports it in one line with exit status 130.

Each class also derives from the built-in exception that code written before this module
caught (``ValueError``, ``FileNotFoundError``, ``OSError``), so ``except ValueError`` keeps
working for library users.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DaslError",
    "DataError",
    "DependencyError",
    "Interrupted",
    "MissingDataError",
    "UnreadableDataError",
]


class DaslError(Exception):
    """Base of every error caused by the user's input rather than by a bug in dasl."""


class ConfigError(DaslError, ValueError):
    """A config value or key is wrong; the message names the key and what is expected."""


class DataError(DaslError, ValueError):
    """A dataset is in the wrong layout or holds values dasl cannot use; the message says where."""


class MissingDataError(DaslError, FileNotFoundError):
    """A file or folder the user named (or a dataset needs) is not there."""


class UnreadableDataError(DaslError, OSError):
    """A file exists but cannot be decoded (a truncated image, a damaged archive)."""


class CheckpointError(DaslError, ValueError):
    """A file given as a checkpoint is not a complete checkpoint written by dasl."""


class DependencyError(DaslError, ImportError):
    """An optional package a command needs is not installed; the message names the extra."""


class Interrupted(DaslError, RuntimeError):
    """A run or study stopped (Ctrl-C) before it finished; the message says how to resume."""
