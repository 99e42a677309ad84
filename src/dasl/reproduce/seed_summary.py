"""Mean and 95% t-interval of a metric over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dasl.errors import DataError


@dataclass(frozen=True)
class SeedSummary:
    mean: float
    half_width: float | None
    """``None`` with one seed (no spread to estimate)."""
    n: int


def summarize(values: Sequence[float], level: float = 0.95) -> SeedSummary:
    """``mean ± t_{(1+level)/2, n-1} · s / sqrt(n)``, ``s`` the sample standard deviation
    (``n - 1`` in the denominator); the half-width is ``None`` for one value."""
    n = len(values)
    if n == 0:
        raise DataError("no values to summarize")
    mean = math.fsum(values) / n
    if n == 1:
        return SeedSummary(mean, None, 1)
    s = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    # scipy (and numpy) only here: `dasl --help` registers this command and stays light
    from scipy import stats

    t = float(stats.t.ppf(0.5 + level / 2, n - 1))
    return SeedSummary(mean, t * s / math.sqrt(n), n)
