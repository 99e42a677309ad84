"""Training pipelines (the only layer that knows Lightning)."""

# dasl.training.linear_eval is the documented name of the linear probe protocol (README); it
# lives in metrics/ (#17): a plain torch loop that needs no Lightning.
from dasl.metrics.linear_eval import linear_eval
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
