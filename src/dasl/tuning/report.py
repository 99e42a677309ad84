"""What a study leaves behind: ``trials.{csv,json}``, ``best.yaml`` and the λ-sensitivity plot.

All written atomically, rewritten after every trial, so an interrupted study's files describe
the trials it stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from dasl.config import ExperimentConfig, dump_config
from dasl.tuning.search_space import ParamSpec, apply_params
from dasl.utils.io import atomic_write_json, atomic_write_text

LAMBDA_KEY = "dar.lam"


def trial_rows(study: optuna.Study, specs: Sequence[ParamSpec]) -> list[dict[str, Any]]:
    """One dict per trial: number, state, value, params, epoch, intermediate values, time.

    ``value`` of a pruned trial is its last reported validation value (Optuna's convention);
    ``epoch`` (0-based, as in ``history.json``) of a complete trial is the epoch whose
    checkpoint the value belongs to; of a pruned trial, the last epoch it was validated.
    """
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = t.duration.total_seconds() if t.duration is not None else None
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": {s.key: t.params.get(s.key) for s in specs},
                "epoch": t.user_attrs.get("epoch", t.last_step),
                "intermediate": {int(k): v for k, v in sorted(t.intermediate_values.items())},
                "duration_s": duration,
                "run_dir": t.user_attrs.get("run_dir"),
            }
        )
    return rows


def _csv_text(rows: list[dict[str, Any]], keys: list[str]) -> str:
    columns = ["number", "state", "value", *keys, "epoch", "duration_s", "run_dir"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {c: row.get(c) for c in columns if c not in keys}
        flat.update(row["params"])
        writer.writerow(flat)
    return buf.getvalue()


def best_yaml_text(
    cfg: ExperimentConfig, best: optuna.trial.FrozenTrial, metric: str, finished: int
) -> str:
    """The full config with the best trial's parameters, loadable by ``dasl train --config``."""
    best_cfg = apply_params(cfg, dict(best.params))
    params = ", ".join(f"{k}={v!r}" for k, v in best.params.items())
    header = (
        f"# dasl tune: best of {finished} finished trial(s), scored on the validation classes\n"
        f"# trial {best.number}: val {metric} = {best.value:.6g} at epoch "
        f"{best.user_attrs.get('epoch')} with {params}\n"
        "# train on the training classes and evaluate on the test classes with:\n"
        "#   dasl train --config best.yaml\n"
    )
    return header + dump_config(best_cfg)


def sensitivity_key(specs: Sequence[ParamSpec]) -> ParamSpec:
    """λ when it is searched, else the first parameter."""
    return next((s for s in specs if s.key == LAMBDA_KEY), specs[0])


def best_frozen_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The complete trial of highest value (the earliest of equal values), or ``None``."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    return max(complete, key=lambda t: (t.value, -t.number))


def write_reports(
    study: optuna.Study,
    cfg: ExperimentConfig,
    specs: Sequence[ParamSpec],
    metric: str,
    out: Path,
    plot: bool = True,
) -> dict[str, Path]:
    """Write the study's files into ``out``; return ``{name: path}`` of what was written.

    ``plot=False`` skips the PNG (rewritten after every trial, the tables are cheap; the plot
    is drawn when the study stops).
    """
    from dasl.plots.lambda_sensitivity import plot_lambda_sensitivity

    rows = trial_rows(study, specs)
    best = best_frozen_trial(study)
    keys = [s.key for s in specs]
    outputs = {
        "trials.json": atomic_write_json(
            out / "trials.json",
            {
                "metric": f"val/{metric}",
                "direction": "maximize",
                "params": [s.text for s in specs],
                "best_trial": None if best is None else best.number,
                "trials": rows,
            },
        ),
        "trials.csv": atomic_write_text(out / "trials.csv", _csv_text(rows, keys)),
    }
    finished = [r for r in rows if r["state"] in ("complete", "pruned") and r["value"] is not None]
    if best is not None:
        outputs["best.yaml"] = atomic_write_text(
            out / "best.yaml", best_yaml_text(cfg, best, metric, len(finished))
        )
    if finished and plot:
        spec = sensitivity_key(specs)
        outputs["lambda_sensitivity.png"] = plot_lambda_sensitivity(
            [r["params"][spec.key] for r in finished],
            [r["value"] for r in finished],
            [r["state"] == "pruned" for r in finished],
            out / "lambda_sensitivity.png",
            param=spec.key,
            metric=f"validation {metric}",
            x_range=None if spec.kind == "choice" else spec.bounds,
            best_index=next(
                (i for i, r in enumerate(finished) if best and r["number"] == best.number), None
            ),
        )
    return outputs
