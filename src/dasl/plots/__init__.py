"""PNG plots of a run: 2-D embedding maps, training curves, inter-class distance histograms.

Built on ``matplotlib.figure.Figure`` + the Agg canvas (no pyplot global state), written
atomically.
"""

from dasl.plots.distance_hist import (
    interclass_distance_stats,
    interclass_distances,
    plot_interclass_distance_hist,
)
from dasl.plots.embedding_map import plot_embedding_maps, project_2d, stratified_subsample
from dasl.plots.training_curves import CURVE_PANELS, plot_training_curves

__all__ = [
    "CURVE_PANELS",
    "interclass_distance_stats",
    "interclass_distances",
    "plot_embedding_maps",
    "plot_interclass_distance_hist",
    "plot_training_curves",
    "project_2d",
    "stratified_subsample",
]
