"""Keeps benchmarks/eval_speed.py runnable: its functions at toy size, no timing asserts."""

import pytest

from benchmarks import eval_speed


def test_clustered_embeddings_shape_and_class_sizes():
    x, y = eval_speed.clustered_embeddings(100, 8, 20, seed=1)
    assert x.shape == (100, 8)
    counts = y.bincount()
    assert counts.numel() == 20
    assert int(counts.min()) >= 2
    assert int(counts.max()) <= 12
    with pytest.raises(ValueError, match="classes of 2-12"):
        eval_speed.clustered_embeddings(10, 8, 20)


def test_run_and_table_at_toy_size():
    out = eval_speed.run(120, 8, 30, repeats=1, noise=1.0)
    assert set(out["ratio"]) == {"knn_metrics", "nmi", "overall"}
    for key in ("recall@1", "map@r", "r_precision"):
        assert out["abs_diff"][key] < 1e-6
    assert "| kNN metrics |" in eval_speed.table(out)
