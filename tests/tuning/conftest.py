"""Fixtures of the tuning tests (the builders are in tuning_fixtures.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def quiet() -> list[str]:
    """Collects the progress lines instead of printing them."""
    return []
