"""The exit-code convention of the ``dasl`` command, shared by every subcommand.

====  ==============================================================================
code  meaning
====  ==============================================================================
0     success
2     bad input or a data problem (config key or value, missing or unreadable file,
      wrong dataset layout, a diverged run), or the machine refused a write (full
      disk, no permission): one line on stderr saying what and where
130   interrupted (Ctrl-C); the run's last complete checkpoint is kept for --resume
1     a bug in dasl: Python's traceback, to be reported
====  ==============================================================================

A subcommand is a function ``(args) -> int``; :func:`run_command` calls it and turns the
exceptions above into their exit codes and one-line messages: exactly :class:`dasl.DaslError`
(exit 2; its subclass :class:`dasl.errors.Interrupted`, 130), ``KeyboardInterrupt`` (130) and an
``OSError`` whose errno says the machine refused a write (exit 2). Every other exception is a
bug and keeps its traceback. ``DASL_DEBUG=1`` re-raises the user's errors too, for a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from dasl.errors import DaslError, Interrupted

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Write failures caused by the machine, not by dasl: reported in one line, exit 2.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
)


class UserError(DaslError):
    """A command-line argument is wrong: reported as one line, no traceback, exit 2."""


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is bad input or a refusing machine (exit 2) rather than a bug (exit 1).

    Bad input is exactly :class:`~dasl.errors.DaslError`: dasl raises it where it checks
    what the user gave, with a message written for the user. An ``OSError`` carrying one of
    :data:`ENVIRONMENT_ERRNOS` (full disk, read-only filesystem, no permission) is the
    machine's refusal, not a bug.
    """
    if isinstance(exc, DaslError):
        return True
    return isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS


def one_line(message: object) -> str:
    """The first meaningful line of an error message, whitespace collapsed.

    Exceptions re-raised by a DataLoader worker carry the worker's traceback in their
    message ("Caught X in DataLoader worker process 0. Original Traceback ..."): the
    original exception's own line is what the user needs.
    """
    text = str(message)
    if text.startswith("Caught ") and "Original Traceback" in text:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else text
        # "package.module.ErrorType: message" -> "message"
        head, sep, tail = last.partition(": ")
        text = tail if sep and " " not in head else last
    if isinstance(message, OSError) and message.strerror:
        # OSError's str() is "[Errno 28] No space left on device: 'path'"; say it plainly.
        text = str(message.strerror)
        if message.filename and str(message.filename) not in text:
            text = f"{message.filename}: {text}"
    first = text.split("\n", 1)[0]
    return " ".join(first.split()) or type(message).__name__


def hint_lines(message: object) -> str:
    """What follows the first line of a message (a layout tree, say), or ''."""
    text = str(message)
    if text.startswith("Caught ") and "Original Traceback" in text:
        return ""
    rest = text.split("\n", 1)[1:] if "\n" in text else []
    return rest[0].rstrip() if rest and rest[0].strip() else ""


def report_error(message: object, stream: TextIO | None = None) -> int:
    """Print ``dasl: error: <one line>`` (plus any hint lines) and return :data:`EXIT_USAGE`."""
    stream = sys.stderr if stream is None else stream
    print(f"dasl: error: {one_line(message)}", file=stream)
    hint = hint_lines(message)
    if hint:
        print(hint, file=stream)
    return EXIT_USAGE


def report_interrupt(message: str = "interrupted", stream: TextIO | None = None) -> int:
    """Print the interruption notice on a line of its own and return :data:`EXIT_INTERRUPTED`.

    A progress bar leaves its line open (no newline) when Ctrl-C arrives; the notice starts
    with a newline on the bar's stream so that it never gets glued to the bar.
    """
    stream = sys.stderr if stream is None else stream
    for s in (sys.stdout, stream):
        with contextlib.suppress(OSError, ValueError):
            s.flush()
    print(f"\ndasl: {message}", file=stream, flush=True)
    return EXIT_INTERRUPTED


def run_command(func: Callable[[Any], int], args: Any) -> int:
    """Run a subcommand with the exit-code convention of this module."""
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return report_interrupt()
    except Interrupted as exc:
        return report_interrupt(str(exc))
    except Exception as exc:
        if os.environ.get("DASL_DEBUG") or not is_user_error(exc):
            raise
        return report_error(exc)
