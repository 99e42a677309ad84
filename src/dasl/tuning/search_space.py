"""The search space of ``dasl tune``: ``KEY=KIND:ARGS`` parameter specs, checked against the config.

Grammar (``KEY`` is a dotted config key, as in overrides)::

    KEY=loguniform:LO:HI    float, log-uniform on [LO, HI], 0 < LO < HI
    KEY=uniform:LO:HI       float, uniform on [LO, HI], LO < HI
    KEY=int:LO:HI           integer in [LO, HI], LO < HI
    KEY=choice:a,b,c        one of the listed values (YAML scalars, as in overrides)

A key is checked by applying trial values (both bounds, every choice) to the config through
the config machinery (:func:`dasl.config.apply_overrides` + :func:`dasl.config.validate`),
so a typo or a value of the wrong type is refused before anything trains, with the key named.
Keys that define the data or the objective (splits, dataset, seed, evaluation) are fixed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from dasl.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    parse_override,
    validate,
)

KINDS = ("loguniform", "uniform", "int", "choice")

FIXED_KEYS: dict[str, str] = {
    "name": "it names the study",
    "out_dir": "it locates the study",
    "compare": "tune one variant at a time",
    "seed": "every trial uses the config's seed, so that trials differ only in their parameters",
    "data.name": "it defines the data",
    "data.root": "it defines the data",
    "data.train_split": "it defines the data",
    "data.val_split": "it defines the objective",
    "data.test_split": "the test split is never read while tuning",
    "data.query_split": "the test split is never read while tuning",
    "data.gallery_split": "the test split is never read while tuning",
    "data.val_fraction": "it defines the validation classes, i.e. the objective",
    "data.val_by": "it defines the validation classes, i.e. the objective",
    "data.eval_max_per_class": "it defines the validation set, i.e. the objective",
    "data.allow_subset": "it defines the data",
    "data.skip_unreadable": "it defines the data",
    "eval": "it defines the objective",
}
"""Keys (or sections) a ``--param`` may not vary, with the reason given to the user."""


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter: a dotted config key and its distribution."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()
    text: str = ""
    """The spec as the user wrote it (stored with the study, shown in errors)."""

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` as given (every kind but ``choice`` has both)."""
        if self.low is None or self.high is None:
            raise ConfigError(f"{self.text or self.key}: a {self.kind} parameter needs low:high")
        return self.low, self.high

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.kind == "choice":
            return optuna.distributions.CategoricalDistribution(self.choices)
        low, high = self.bounds
        if self.kind == "loguniform":
            return optuna.distributions.FloatDistribution(low, high, log=True)
        if self.kind == "uniform":
            return optuna.distributions.FloatDistribution(low, high)
        return optuna.distributions.IntDistribution(int(low), int(high))

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value for this key (Optuna records it under the dotted key)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, self.choices)
        low, high = self.bounds
        if self.kind == "loguniform":
            return trial.suggest_float(self.key, float(low), float(high), log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.key, float(low), float(high))
        return trial.suggest_int(self.key, int(low), int(high))

    def probe_values(self) -> list[Any]:
        """Values that exercise the whole range: both bounds, or every choice."""
        if self.kind == "choice":
            return list(self.choices)
        low, high = self.bounds
        if self.kind == "int":
            return [int(low), int(high)]
        return [float(low), float(high)]


def _number(raw: str, spec: str, what: str, integer: bool) -> float | int:
    key = spec.split("=", 1)[0]
    value = parse_override(f"{key}={raw}")[1]
    if integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"--param {spec}: {what} {raw!r} is not an integer")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"--param {spec}: {what} {raw!r} is not a finite number")
    return float(value)


def parse_param(text: str) -> ParamSpec:
    """``"dar.lam=loguniform:0.01:10"`` -> :class:`ParamSpec`; a bad spec raises ``ConfigError``."""
    usage = "expected KEY=loguniform:LO:HI, uniform:LO:HI, int:LO:HI or choice:a,b,c"
    if "=" not in text:
        raise ConfigError(f"--param {text!r}: {usage}")
    key, rest = (part.strip() for part in text.split("=", 1))
    if not key:
        raise ConfigError(f"--param {text!r}: empty key; {usage}")
    kind, _, args = rest.partition(":")
    kind = kind.strip()
    if kind not in KINDS:
        raise ConfigError(f"--param {text}: unknown kind {kind!r}; {usage}")
    if kind == "choice":
        raw = [a.strip() for a in args.split(",")]
        if not args.strip() or any(not a for a in raw):
            raise ConfigError(f"--param {text}: choice needs values, e.g. {key}=choice:a,b,c")
        choices = tuple(parse_override(f"{key}={a}")[1] for a in raw)
        for raw_value, value in zip(raw, choices, strict=True):
            if value is not None and not isinstance(value, bool | int | float | str):
                raise ConfigError(f"--param {text}: choice {raw_value!r} is not a scalar")
        if len(set(choices)) != len(choices):
            raise ConfigError(f"--param {text}: choice lists a value twice")
        if len(choices) < 2:
            raise ConfigError(f"--param {text}: choice needs at least two values")
        return ParamSpec(key, kind, choices=choices, text=text)
    bounds = args.split(":")
    if len(bounds) != 2:
        raise ConfigError(f"--param {text}: {kind} needs LO:HI, e.g. {key}={kind}:1:10")
    integer = kind == "int"
    low = _number(bounds[0].strip(), text, "LO", integer)
    high = _number(bounds[1].strip(), text, "HI", integer)
    if not low < high:
        raise ConfigError(f"--param {text}: LO must be smaller than HI")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"--param {text}: loguniform needs LO > 0 (a log scale)")
    return ParamSpec(key, kind, low, high, text=text)


def _fixed_reason(key: str) -> str | None:
    for fixed, reason in FIXED_KEYS.items():
        if key == fixed or key.startswith(fixed + "."):
            return reason
    return None


def apply_params(cfg: ExperimentConfig, values: dict[str, Any]) -> ExperimentConfig:
    """``cfg`` with the trial's ``{dotted key: value}`` applied and validated."""
    return validate(dataclasses.replace(apply_overrides(cfg, values), compare=None))


def check_search_space(cfg: ExperimentConfig, specs: Sequence[ParamSpec]) -> None:
    """Refuse fixed or unknown keys, repeated keys, and values the config would reject.

    Every probe value (both bounds, every choice) is applied to ``cfg`` on its own, through
    the config machinery, so the error names the key exactly as a bad override would.
    """
    if not specs:
        raise ConfigError("no --param given; e.g. --param dar.lam=loguniform:0.01:10")
    seen: set[str] = set()
    for spec in specs:
        if spec.key in seen:
            raise ConfigError(f"--param {spec.key}: given twice; keep one")
        seen.add(spec.key)
        reason = _fixed_reason(spec.key)
        if reason is not None:
            raise ConfigError(f"--param {spec.key}: cannot be tuned ({reason})")
        for value in spec.probe_values():
            try:
                apply_params(cfg, {spec.key: value})
            except ConfigError as exc:
                raise ConfigError(f"--param {spec.text}: {exc}") from None
