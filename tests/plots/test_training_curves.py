import numpy as np
import pytest
from png_checks import check_png

from dasl.plots import plot_training_curves
from dasl.plots.training_curves import curve_series, training_curves_figure


def _hist(n, dar=True):
    h = {
        "epoch": list(range(1, n + 1)),
        "train/base_loss": [1.0 / e for e in range(1, n + 1)],
        "val/map@r": [None if e % 2 else 0.1 * e for e in range(1, n + 1)],
    }
    if dar:
        h["train/dar"] = [0.5 / e for e in range(1, n + 1)]
    return h


@pytest.mark.parametrize("methods", [["dasl"], ["baseline", "dasl", "dasl-0.5"]])
def test_curves_png(tmp_path, methods):
    hist = {m: _hist(5, dar=(m != "baseline")) for m in methods}
    out = plot_training_curves(hist, tmp_path / "curves.png")
    w, h = check_png(out)
    assert (w, h) == (round(3 * 4.4 * 120), round(3.8 * 120))


def test_curves_missing_keys_and_no_epoch(tmp_path):
    out = plot_training_curves(
        {"baseline": {"train/base_loss": [3.0, 2.0, 1.5]}}, tmp_path / "c.png"
    )
    check_png(out)


def test_curves_bad_input(tmp_path):
    with pytest.raises(ValueError, match="'train/base_loss' has 2 values, 'epoch' has 3"):
        plot_training_curves(
            {"m": {"epoch": [1, 2, 3], "train/base_loss": [1, 2]}}, tmp_path / "c.png"
        )
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_training_curves({}, tmp_path / "c.png")
    with pytest.raises(ValueError, match="must be numbers"):
        plot_training_curves({"m": {"train/dar": ["x"]}}, tmp_path / "c.png")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------ weighted DAR term (#16)


def test_dar_panel_plots_lambda_times_r():
    hist = {"proxyanchor": _hist(4, dar=False), "dasl_pa": _hist(4)}
    fig = training_curves_figure(hist, dar_weights={"proxyanchor": 0.0, "dasl_pa": 3.0})
    ax = fig.axes[1]
    (line,) = ax.get_lines()
    expected = [3.0 * 0.5 / e for e in range(1, 5)]  # λ · R, R = 0.5 / epoch
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    assert ax.get_title() == "λ·R_align, λ=3 (train)"
    assert line.get_label() == "dasl_pa (λ=3)"
    texts = [t.get_text() for t in ax.texts]
    assert "absent: proxyanchor" in texts


def test_dar_panel_several_lambdas_and_unweighted():
    hist = {"a": _hist(3), "b": _hist(3)}
    series = curve_series(hist, "train/dar", {"a": 0.5, "b": 2.0})
    np.testing.assert_allclose(series["b"][1], [2.0 * 0.5 / e for e in (1, 2, 3)])
    fig = training_curves_figure(hist, dar_weights={"a": 0.5, "b": 2.0})
    assert fig.axes[1].get_title() == "λ·R_align (train)"
    assert [ln.get_label() for ln in fig.axes[1].get_lines()] == ["a (λ=0.5)", "b (λ=2)"]
    fig = training_curves_figure(hist)
    assert fig.axes[1].get_title() == "R_align, unweighted (train)"
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), [0.5, 0.25, 0.5 / 3])
    with pytest.raises(ValueError, match="no λ for 'b'"):
        curve_series(hist, "train/dar", {"a": 1.0})


def test_gaps_are_dropped_from_the_series():
    series = curve_series({"m": _hist(4)}, "val/map@r")
    np.testing.assert_array_equal(series["m"][0], [2, 4])
    np.testing.assert_allclose(series["m"][1], [0.2, 0.4])
