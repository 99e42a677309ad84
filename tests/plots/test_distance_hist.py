"""The inter-class distance histogram (the statistics: tests/metrics/test_interclass.py)."""

import pytest
from png_checks import check_png

from dasl.plots import plot_interclass_distance_hist


@pytest.mark.parametrize("n_methods", [1, 3])
def test_hist_png(tmp_path, blobs, n_methods):
    emb, labels = blobs
    methods = {f"m{k}": emb * (1 + k) for k in range(n_methods)}
    out = plot_interclass_distance_hist(methods, labels, tmp_path / "sub" / "hist.png")
    assert out == tmp_path / "sub" / "hist.png"
    w, h = check_png(out)
    assert (w, h) == (7 * 120, round(4.2 * 120))


def test_hist_rejects_mismatched_lengths(tmp_path, blobs):
    emb, labels = blobs
    with pytest.raises(ValueError, match=r"labels has 60 entries, embeddings of 'b' has 59 rows"):
        plot_interclass_distance_hist({"a": emb, "b": emb[:-1]}, labels, tmp_path / "h.png")
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_interclass_distance_hist({}, labels, tmp_path / "h.png")
    assert not list(tmp_path.iterdir())
