"""What the CLI tests read from captured output."""

from __future__ import annotations

import pytest


def one_line_error(capsys: pytest.CaptureFixture[str], prefix: str = "dasl: error: ") -> str:
    """The single stderr line of a refused command (it must start with ``prefix``)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(prefix), err
    return err[0]
