"""The SSL benchmark's summary: paired differences per seed and their t-based 95% CI."""

from __future__ import annotations

import math

import pytest

from benchmarks.fmnist_ssl import METRICS, summarize


def test_paired_differences_and_ci() -> None:
    base = {0: 0.60, 1: 0.62, 2: 0.64}
    deltas = {0: 0.01, 1: 0.03, 2: 0.02}
    results = {
        m: {s: {k: base[s] + (deltas[s] if m != "simclr" else 0.0) for k in METRICS} for s in base}
        for m in ("simclr", "dasl_cf", "dasl_cu")
    }
    rows, diffs = summarize(results)
    assert [r["method"] for r in rows] == ["simclr", "dasl_cf", "dasl_cu"]
    assert rows[0]["knn_top1@200"] == "62.00 ± 4.97"  # mean 62, sd 2, t(2) = 4.303
    d = next(x for x in diffs if x["comparison"] == "dasl_cf - simclr")
    assert d["per seed"] == "+1.00, +3.00, +2.00"
    assert d["mean"] == pytest.approx(2.0)
    half = 4.303 * 1.0 / math.sqrt(3)
    assert d["95% CI"] == f"[{2 - half:+.2f}, {2 + half:+.2f}]"
