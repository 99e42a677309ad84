"""Every CLI test runs in its own empty working directory.

The default demo writes to ``runs/demo`` relative to where it is started, and ``dasl train``
refuses a folder that already holds a run (#16): a ``runs/demo`` left in the repository by
the README's first command must not change what these tests see.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
