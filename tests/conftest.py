"""Suite-wide fixtures."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_sigint() -> Iterator[None]:
    """Lightning answers a KeyboardInterrupt inside ``fit`` by ignoring SIGINT for good
    (``signal.SIG_IGN``, never restored); a test that interrupts a fit in-process would leave
    the worker deaf to Ctrl-C, and every process it starts after inherits that (a CI run of
    2026-12-08 waited 13 minutes on a ``dasl train`` child that ignored its SIGINT)."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    if signal.getsignal(signal.SIGINT) is not handler:
        signal.signal(signal.SIGINT, handler)
