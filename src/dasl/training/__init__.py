"""Training pipelines (the only layer that knows Lightning)."""

from dasl.training.linear_eval import linear_eval
from dasl.training.module import MetricLearningModule
from dasl.training.run import (
    ExperimentResult,
    RunInterrupted,
    VariantResult,
    run_experiment,
    train_variant,
)

__all__ = [
    "ExperimentResult",
    "MetricLearningModule",
    "RunInterrupted",
    "VariantResult",
    "linear_eval",
    "run_experiment",
    "train_variant",
]
