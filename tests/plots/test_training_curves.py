import pytest
from png_checks import check_png

from dasl.plots import plot_training_curves


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
