"""Keeps benchmarks/dar_speed.py runnable: its case functions on a toy size (no timing asserts)."""

import pytest
import torch

from benchmarks import dar_speed


@pytest.mark.parametrize(("estimator", "measure"), dar_speed.COMBOS)
def test_baseline_agrees_with_dasl_on_exact(estimator, measure):
    z, y = dar_speed.make_inputs(12, 6, 4, "cpu")
    ours = dar_speed.dasl_fn(estimator, measure, z, y)
    base = dar_speed.baseline_fn(estimator, measure, z, y, block=5)
    assert torch.isfinite(ours) and torch.isfinite(base)
    if estimator == "exact":
        assert float(ours.detach()) == pytest.approx(float(base.detach()), rel=1e-4)


def test_run_case_toy():
    res = dar_speed.run_case("dasl", "exact", "l2", 12, 6, 4, "cpu", repeats=1, max_seconds=1.0)
    assert set(res) == {"median_s", "runs", "peak_mb"}
    assert res["median_s"] > 0


def test_background_load_starts_and_ends_its_jobs():
    with dar_speed.background_load(jobs=2, seconds=30.0) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)
