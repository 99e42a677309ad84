"""Hyperparameter search on the validation classes (``dasl tune``), with Optuna.

``tune(cfg, ["dar.lam=loguniform:0.01:10"], trials=20)`` runs or resumes a study stored in
``<out_dir>/<name>/tune/study.db`` and returns a :class:`StudyResult`; the test split is
never read. See :mod:`dasl.tuning.study` for the objective, sampler and pruner.
"""

from dasl.tuning.search_space import ParamSpec, apply_params, check_search_space, parse_param
from dasl.tuning.study import StudyResult, TuneInterrupted, objective_value, tune, valid_metrics

__all__ = [
    "ParamSpec",
    "StudyResult",
    "TuneInterrupted",
    "apply_params",
    "check_search_space",
    "objective_value",
    "parse_param",
    "tune",
    "valid_metrics",
]
