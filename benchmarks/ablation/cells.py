"""What one trial of the ablation is: a cell (base loss x DAR reading), its config, its
cache key (the trial id plus the config as compared)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dasl.config import ExperimentConfig, apply_overrides

BASES = ("npair", "proxyanchor")
"""The poster's two base losses: the default of ``--bases``."""
ALL_BASES = (*BASES, "arcface", "multisimilarity", "contrastive", "supcon")
"""Every base loss ``--bases`` accepts (#18: beyond the poster's two)."""
BASE_TITLES = {
    "npair": "N-pair",
    "proxyanchor": "ProxyAnchor",
    "arcface": "ArcFace",
    "multisimilarity": "MultiSimilarity",
    "contrastive": "Contrastive",
    "supcon": "SupCon",
}
CONTROLS = ("compact_inter", "batch_variance", "within_scatter")
"""Compaction controls (issue #18; ``dasl.dar.controls``): cells ``BASE/control/KIND``."""
BASE_OPTIONS = ("alpha", "margin", "scale", "ereg", "temperature")
"""Loss options a base may carry, ``proxyanchor~alpha16~margin0.2`` (issue #18); each names
the ``loss.`` setting of :data:`OPTION_SETTINGS` (itself where absent)."""
OPTION_SETTINGS = {"ereg": "embedding_reg_weight"}
"""Short base-name keys of long ``loss.`` settings: ``npair~ereg0.01``."""
DIFFERENCES = ("signed", "abs", "ordered")
MEASURES = ("l2", "l1", "l2sq")
ESTIMATORS = ("exact", "chain")


def parse_base(base: str) -> tuple[str, dict[str, float]]:
    """``"proxyanchor~alpha16~margin0.2"`` -> ``("proxyanchor", {"alpha": 16, "margin": 0.2})``."""
    name, *opts = base.split("~")
    options: dict[str, float] = {}
    for opt in opts:
        key = next((k for k in BASE_OPTIONS if opt.startswith(k)), None)
        if key is None:
            raise ValueError(f"base {base!r}: unknown option {opt!r} (known: {BASE_OPTIONS})")
        options[key] = float(opt[len(key) :])
    return name, options


def base_name(name: str, options: dict[str, float]) -> str:
    """The inverse of :func:`parse_base` (options in ``BASE_OPTIONS`` order)."""
    return "".join([name] + [f"~{k}{options[k]:g}" for k in BASE_OPTIONS if k in options])


def base_title(base: str) -> str:
    name, options = parse_base(base)
    extra = ", ".join(f"{k} {v:g}" for k, v in options.items())
    return BASE_TITLES[name] + (f" ({extra})" if extra else "")


@dataclass(frozen=True)
class Cell:
    """One reading of DAR on one base loss; ``difference is None`` is the bare base loss;
    ``control`` (with ``difference is None``) a compaction control in DAR's place."""

    base: str
    difference: str | None = None
    measure: str | None = None
    estimator: str | None = None
    control: str | None = None

    @property
    def is_baseline(self) -> bool:
        return self.difference is None and self.control is None

    @property
    def is_control(self) -> bool:
        return self.control is not None

    @property
    def key(self) -> str:
        if self.is_control:
            return f"{self.base}/control/{self.control}"
        if self.is_baseline:
            return f"{self.base}/baseline"
        return f"{self.base}/{self.difference}/{self.measure}/{self.estimator}"

    @property
    def title(self) -> str:
        if self.is_control:
            return f"{base_title(self.base)} + {self.control}"
        if self.is_baseline:
            return base_title(self.base)
        return f"{base_title(self.base)} + DAR {self.difference} {self.measure} {self.estimator}"

    @classmethod
    def from_key(cls, key: str) -> Cell:
        parts = key.split("/")
        if parts[1] == "control":
            return cls(parts[0], control=parts[2])
        return cls(parts[0]) if parts[1] == "baseline" else cls(*parts)


def grid(
    bases: Sequence[str],
    differences: Sequence[str],
    measures: Sequence[str],
    estimators: Sequence[str],
    chain_measures: Sequence[str] | None,
) -> list[Cell]:
    """Baselines first, then every (difference, measure, estimator) cell of each base loss.

    ``chain_measures``: the measures on which the chain estimator is screened (``None``: all);
    the exact estimator is screened on every measure.
    """
    cells = [Cell(b) for b in bases]
    for b in bases:
        for d in differences:
            for m in measures:
                for e in estimators:
                    if e == "chain" and chain_measures is not None and m not in chain_measures:
                        continue
                    cells.append(Cell(b, d, m, e))
    return cells


def trial_config(
    base_cfg: ExperimentConfig, cell: Cell, value: float, seed: int, lr: float | None = None
) -> ExperimentConfig:
    """The config of ``cell`` at tuning value ``value`` (lambda for DAR, lr for a baseline);
    ``lr`` (DAR cells): the learning rate, else the config's."""
    name, options = parse_base(cell.base)
    overrides: dict[str, Any] = {"loss.name": name, "seed": seed}
    overrides.update({f"loss.{OPTION_SETTINGS.get(k, k)}": v for k, v in options.items()})
    if cell.is_baseline:
        overrides.update({"dar.lam": 0.0, "optim.lr": value})
    elif cell.is_control:
        if lr is not None:
            overrides["optim.lr"] = lr
        overrides.update({"dar.lam": value, "dar.kind": cell.control})
    else:
        if lr is not None:
            overrides["optim.lr"] = lr
        overrides.update(
            {
                "dar.lam": value,
                "dar.difference": cell.difference,
                "dar.measure": cell.measure,
                "dar.estimator": cell.estimator,
            }
        )
    name = cell.key.replace("/", "_") + f"_v{value:g}_s{seed}"
    return dataclasses.replace(apply_overrides(base_cfg, overrides), name=name)


def trial_id(cell: Cell, value: float, seed: int) -> str:
    return cell.key.replace("/", "__") + f"__v{value:g}__s{seed}"


LATER_KEYS = {
    ("dar", "kind"): "dar",
    ("loss", "scale"): None,
    ("dar", "backend"): "auto",
    ("loss", "embedding_reg_weight"): None,
}
"""Config keys added after runs were cached (#18, #19), with the default that leaves a run as it
was: dropped from cache records at that default, so the earlier runs keep matching."""

LATER_TOP_KEYS: dict[str, Any] = {"plugins": []}
"""Top-level config keys added later (#17: ``plugins``), dropped at their default likewise."""


def normalized(d: dict[str, Any]) -> dict[str, Any]:
    for key, default in LATER_TOP_KEYS.items():
        if key in d and d[key] == default:
            del d[key]
    for (section, key), default in LATER_KEYS.items():
        if key in d.get(section, {}) and d[section][key] == default:
            del d[section][key]
    return d


def comparable(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as stored in the cache (JSON round-trip, so lists and tuples compare),
    without the :data:`LATER_KEYS` and :data:`LATER_TOP_KEYS` at their defaults."""
    return normalized(json.loads(json.dumps(cfg.to_dict())))
