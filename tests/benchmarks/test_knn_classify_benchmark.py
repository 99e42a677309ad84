"""Keeps benchmarks/knn_classify_scale.py runnable at toy size (no timing asserts).

Only the dasl path: importing lightly's benchmarking module pulls in pytorch_lightning (10-20 s
on the CI machine); the agreement with lightly is what the benchmark itself reports.
"""

import argparse

from benchmarks import knn_classify_scale
from dasl.metrics import knn_classify


def test_dasl_path_at_toy_size():
    cfg = {"n": 300, "dim": 16, "m": 60, "classes": 10}
    a = argparse.Namespace(chunk=[16, 64], device="cpu", noise=1.0, k=20, t=0.1)
    row = knn_classify_scale.measure("dasl", cfg, a)
    bank, y_bank = knn_classify_scale.clustered(300, 16, 10, 1, "cpu", 1.0)
    test, y_test = knn_classify_scale.clustered(60, 16, 10, 2, "cpu", 1.0)
    want = knn_classify(bank, y_bank, test, y_test, k=20, temperature=0.1)
    assert 0.0 < row["top1"] < 1.0
    assert (row["top1"], row["top5"]) == (want["top1"], want["top5"])
    assert row["peak_extra_mib"] >= 0 and row["time_s"] > 0
