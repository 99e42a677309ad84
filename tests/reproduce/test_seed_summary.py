"""Mean and 95% t-interval over seeds, against float64 loops and printed t quantiles."""

from __future__ import annotations

import math

import pytest

from dasl.reproduce.seed_summary import summarize

# t_{0.975, df} from standard tables.
T975 = {1: 12.706204736174707, 2: 4.302652729749464, 4: 2.7764451051977987}


def _reference(values: list[float]) -> tuple[float, float]:
    n = len(values)
    total = 0.0
    for v in values:
        total += v
    mean = total / n
    ss = 0.0
    for v in values:
        ss += (v - mean) * (v - mean)
    return mean, T975[n - 1] * math.sqrt(ss / (n - 1)) / math.sqrt(n)


@pytest.mark.parametrize("values", [[61.0, 63.5], [70.1, 69.8, 71.3], [1.0, 2.0, 4.0, 8.0, 16.0]])
def test_matches_the_reference(values: list[float]) -> None:
    s = summarize(values)
    mean, half = _reference(values)
    assert s.n == len(values)
    assert s.mean == pytest.approx(mean, rel=1e-12)
    assert s.half_width == pytest.approx(half, rel=1e-9)


def test_one_value_has_no_interval_and_none_is_refused() -> None:
    s = summarize([64.5])
    assert (s.mean, s.half_width, s.n) == (64.5, None, 1)
    with pytest.raises(ValueError):
        summarize([])


def test_equal_values_give_zero_width() -> None:
    assert summarize([3.0, 3.0, 3.0]).half_width == 0.0
