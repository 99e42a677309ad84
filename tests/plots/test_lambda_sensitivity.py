"""The λ-sensitivity plot: a valid PNG for numeric (log or linear) and categorical axes."""

from __future__ import annotations

import pytest
from png_checks import check_png

from dasl.plots.lambda_sensitivity import plot_lambda_sensitivity


def test_log_axis_with_pruned_and_best(tmp_path) -> None:
    path = plot_lambda_sensitivity(
        [0.01, 0.3, 1.0, 7.0],
        [0.41, 0.52, 0.50, 0.30],
        [False, False, False, True],
        tmp_path / "lambda_sensitivity.png",
        best_index=1,
        x_range=(0.01, 10.0),
    )
    width, height = check_png(path)
    assert width > 300 and height > 200


def test_linear_axis_when_lambda_zero_and_categories(tmp_path) -> None:
    check_png(plot_lambda_sensitivity([0.0, 0.5], [0.4, 0.5], [False, False], tmp_path / "a.png"))
    check_png(
        plot_lambda_sensitivity(
            ["l2", "l1", "l2"],
            [0.4, 0.5, 0.45],
            [False, True, False],
            tmp_path / "b.png",
            param="dar.measure",
        )
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        (([], [], []), {}, "non-empty and of one length"),
        (([1.0], [0.5, 0.6], [False]), {}, "non-empty and of one length"),
        (([1.0], [float("nan")], [False]), {}, "finite"),
        (([0.0, 1.0], [0.5, 0.6], [False, False]), {"log_x": True}, "positive numbers"),
    ],
)
def test_bad_input(tmp_path, args, kwargs, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        plot_lambda_sensitivity(*args, tmp_path / "x.png", **kwargs)
    assert not (tmp_path / "x.png").exists()
