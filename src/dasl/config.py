"""Experiment configuration: typed dataclasses, YAML loading, dotted command-line overrides.

A config is a YAML mapping whose keys mirror :class:`ExperimentConfig`. Unknown keys and
values of the wrong type are rejected with a :class:`ConfigError` that names the key, so a
typo never silently falls back to a default. Overrides use dotted keys
(``optim.lr=3e-4 dar.lam=0.5``) whose values are parsed as YAML scalars.

Each named setting (``loss.name``, ``dar.estimator``, ``data.name`` ...) is checked against
the registry that its field names (:func:`choice`, registries of :mod:`dasl.choices`); ``plugins``
names modules imported first, which may register more entries (``docs/EXTENDING.md``).

``compare`` lists named variants of the base config (each a mapping of dotted overrides);
``dasl train`` runs every variant with the same seed, data and budget and writes a
comparison table. The default demo config uses it for ProxyAnchor vs DASL-PA. A command-line
override of a key that a variant sets would be ignored for that variant, so it is refused;
``compare.<variant>.<key>=<value>`` overrides it for one variant.

Splits (the names every reader accepts): ``train`` is the official training split (all
training classes), ``val`` the validation part carved from it, ``subtrain`` = ``train``
minus ``val``, ``test`` the official test split (unseen classes); ``trainval`` is an old
alias of ``train``. A run fits on ``data.train_split`` and selects checkpoints on
``data.val_split``: the default fits on ``subtrain`` so that selection never sees an image
it trained on.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import yaml

from dasl.choices import (
    BACKBONES,
    BASE_LOSSES,
    DAR_BACKENDS,
    DAR_DIFFERENCES,
    DAR_ESTIMATORS,
    DAR_KINDS,
    DAR_MEASURES,
    DAR_REDUCTIONS,
    DATASETS,
    DISTANCES,
    POOLINGS,
    SAMPLERS,
    SCHEDULERS,
    SUPERVISED_LOSSES,
    TRANSFORMS,
)
from dasl.errors import ConfigError
from dasl.registry import Registry, did_you_mean, unknown_choice

C = TypeVar("C")
"""A config dataclass (:class:`ExperimentConfig` or the pretraining one)."""


class ComparingConfig(Protocol):
    """What the override rules read of a run config with a ``compare`` block
    (:class:`ExperimentConfig`, :class:`dasl.ssl_config.PretrainConfig`)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    name: str
    out_dir: str
    compare: dict[str, dict[str, Any]] | None

    def to_dict(self) -> dict[str, Any]: ...


V = TypeVar("V", bound=ComparingConfig)
"""One kind of run config, kept through an override (the same kind comes back)."""
Choice = tuple[Registry[Any], tuple[str, ...] | str | None]
"""A named setting's registry and the kinds of its entries it accepts (``None``: any)."""


def choice(
    default: str, registry: Registry[Any], kinds: tuple[str, ...] | str | None = None
) -> Any:
    """A named setting of a config section: ``default``, an entry (of ``kinds``) of
    ``registry``, which :func:`check_choices` checks it against."""
    named: Choice = (registry, kinds)
    return field(default=default, metadata={"choice": named})


@dataclass
class DataConfig:
    name: str = choice("fashion-mnist", DATASETS)
    """Dataset name for :func:`dasl.data.load_dataset`."""
    root: str | None = None
    """Data root; ``None`` uses the dataset's default location (where it has one)."""
    train_split: str = "subtrain"
    """What the model is fit on: ``subtrain`` (train minus val) while ``val_split`` is set,
    ``train`` (all training images) for a final run with ``val_split: null``."""
    val_split: str | None = "val"
    """Validation split (for checkpoint selection and lambda tuning); ``None`` disables it."""
    test_split: str = "test"
    query_split: str | None = None
    """In-Shop style evaluation: query split against ``gallery_split`` instead of ``test_split``."""
    gallery_split: str | None = None
    val_fraction: float = 0.1
    val_by: str | None = None
    """"images" or "classes"; ``None`` keeps the dataset's default."""
    max_per_class: int | None = None
    """Cap on images per class in the training split (quick runs)."""
    eval_max_per_class: int | None = None
    """Cap on images per class in the validation and test splits (quick runs)."""
    allow_subset: bool = False
    skip_unreadable: bool = False
    """Drop images that cannot be decoded (with a warning naming them) instead of stopping
    with an error naming the first; checking decodes every image once when data loads."""
    transform: str = choice("small", TRANSFORMS)
    """"small" (28 px / 8 px array data), "small-flip", or "imagenet" (224 px crops)."""
    image_size: int | None = None
    in_channels: int = 1
    num_workers: int = 0
    sampler: str = choice("m_per_class", SAMPLERS)
    """"m_per_class" (m images of each of batch_size/m classes) or "random"."""
    m_per_class: int = 4
    batch_size: int = 120
    batches_per_epoch: int | None = None
    """Batches per epoch *per process* (under DDP each rank draws this many); ``None``: about
    one pass over the training split in all."""
    eval_batch_size: int = 512


@dataclass
class ModelConfig:
    backbone: str = choice("small_cnn", BACKBONES)
    embedding_dim: int = 64
    pretrained: bool | str = False
    pooling: str = choice("avg", POOLINGS)
    freeze_bn: bool = False
    channels_last: bool = False


@dataclass
class LossConfig:
    name: str = choice("proxyanchor", BASE_LOSSES, SUPERVISED_LOSSES)
    """A ``pair`` or ``proxy`` entry of :data:`dasl.choices.BASE_LOSSES` (:mod:`dasl.losses`);
    the settings below are its options (one it does not take must stay ``null``)."""
    margin: float | None = None
    """Loss margin; ``None`` keeps the loss's own default (ProxyAnchor 0.1, ArcFace 28.6
    degrees)."""
    alpha: float | None = None
    """ProxyAnchor alpha; ``None`` keeps 32."""
    scale: float | None = None
    """ArcFace scale (``None`` keeps 64); N-pair's logit scale (``None`` keeps 1)."""
    temperature: float | None = None
    """SupCon temperature; ``None`` keeps the loss default."""
    embedding_reg_weight: float | None = None
    """N-pair's embedding-norm penalty weight (#18); ``None`` keeps 0 (none)."""


@dataclass
class DARConfig:
    lam: float = 0.0
    """Weight of the regularizer; 0 trains the bare base loss."""
    measure: str = choice("l2", DAR_MEASURES)
    estimator: str = choice("exact", DAR_ESTIMATORS)
    difference: str = choice("signed", DAR_DIFFERENCES)
    reduction: str = choice("mean", DAR_REDUCTIONS)
    num_chains: int = 1
    backend: str = choice("auto", DAR_BACKENDS)
    """Fused Triton kernels (exact l2, l2sq, linf; the chain): "auto" (on CUDA), "triton" or
    "torch" (#19)."""
    kind: str = choice("dar", DAR_KINDS)
    """``"dar"``, or a compaction control of :data:`dasl.dar.controls.CONTROLS` (issue #18:
    ``compact_inter``, ``batch_variance``, ``within_scatter``) in its place, weighted by ``lam``."""


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    backbone_lr_mult: float = 1.0
    proxy_lr_mult: float = 100.0
    """Learning-rate multiplier for loss parameters (ProxyAnchor proxies)."""
    warmup_epochs: float = 0.0
    scheduler: str = choice("cosine", SCHEDULERS)
    """"cosine" (after warm-up) or "constant"."""
    grad_clip: float | None = 10.0


@dataclass
class TrainerConfig:
    epochs: int = 5
    precision: str = "auto"
    """"auto" (bf16-mixed on a GPU that has it, else 32-true) or any Lightning precision."""
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    deterministic: bool = False
    log_every_n_steps: int = 10
    progress_bar: bool = True
    limit_train_batches: int | float | None = None
    global_batch_loss: bool = True
    """Under DDP, base loss and DAR see the global batch of all ranks (gathered with gradients;
    equal to one process on the concatenated batch). False: each rank's local batch only
    (cheaper, see docs/DISTRIBUTED.md; DAR's exact l2 cost grows with the 4th power of the
    batch)."""


@dataclass
class EvalConfig:
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    distance: str = choice("cosine", DISTANCES)
    nmi: bool = True
    raw_baseline: bool = True
    """Also report the metrics of raw pixels (flattened inputs) on the test split."""
    plots: bool = True
    tsne_points: int = 2000


@dataclass
class RunConfig:
    """The top-level keys every run config starts with (``dasl train``'s
    :class:`ExperimentConfig`, ``dasl pretrain``'s ``PretrainConfig``); a subclass adds its
    sections after them and may change the default ``name``."""

    name: str = "run"
    out_dir: str = "runs"
    seed: int = 0
    plugins: list[str] = field(default_factory=list)
    """Modules imported before the config is validated: they register base losses, DAR
    estimators, metrics, datasets ... (``docs/EXTENDING.md``)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ExperimentConfig(RunConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    dar: DARConfig = field(default_factory=DARConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    compare: dict[str, dict[str, Any]] | None = None
    """Named variants (dotted overrides) trained with the same seed, data and budget."""


# ---------------------------------------------------------------- parsing and validation


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` checked against the annotation ``tp`` (int accepted for float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if tp is Any:
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: expected a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def dotted_keys(cfg: Any) -> list[str]:
    """Every dotted key of a config dataclass (``optim.lr``, ``trainer.epochs`` ...)."""
    keys: list[str] = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys += [f"{f.name}.{k}" for k in dotted_keys(value)]
        else:
            keys.append(f.name)
    return keys


def _build(cls: Any, mapping: Any, prefix: str) -> Any:
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        where = prefix or "config"
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in mapping.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            valid = ", ".join(sorted(names))
            guess = did_you_mean(str(key), names, prefix.rstrip(".") + "." if prefix else "")
            raise ConfigError(f"{full}: unknown key{guess} (valid keys here: {valid})")
        kwargs[key] = _coerce(value, hints[key], full)
    return cls(**kwargs)


SHARED_IN_COMPARE = ("data.", "seed", "plugins")
VAL_BY = ("images", "classes")
POSITIVE = {
    "data.batch_size": 1,
    "data.m_per_class": 1,
    "data.batches_per_epoch": 1,
    "data.eval_batch_size": 1,
    "data.num_workers": 0,
    "data.image_size": 1,
    "data.max_per_class": 1,
    "data.eval_max_per_class": 1,
    "model.embedding_dim": 1,
    "optim.lr": 0.0,
    "optim.weight_decay": 0.0,
    "optim.warmup_epochs": 0.0,
    "trainer.num_nodes": 1,
    "trainer.log_every_n_steps": 1,
    "eval.tsne_points": 2,
    "dar.lam": 0,
    "dar.num_chains": 1,
    "loss.embedding_reg_weight": 0.0,
    "trainer.epochs": 1,
}
"""Lower bounds of numeric settings (``None`` passes: it means "default" or "off")."""
ABOVE = {"loss.scale": 0.0}
"""Strict lower bounds, likewise."""
SPLITS_WITHIN_TRAIN = {"train": ("subtrain", "val"), "trainval": ("subtrain", "val")}
"""A split that contains others: fitting on it while validating on one of them leaks."""


def check_splits(cfg: ExperimentConfig) -> ExperimentConfig:
    """Refuse to train on a split that holds the validation split (for ``cfg`` and each variant).

    Checked where a run starts (:func:`load_config`, ``run_experiment``), not where a config
    is read back from a checkpoint: checkpoints written before the split rename of issue #10
    say ``train_split: train`` for what is now ``subtrain``, and must still load.
    """
    for _, run_cfg in variants(cfg):
        _check_splits(run_cfg.data)
    return cfg


def _check_splits(data: DataConfig) -> None:
    """Checkpoint selection must never see images the model was fit on."""
    inside = SPLITS_WITHIN_TRAIN.get(data.train_split, ())
    if data.val_split is not None and (
        data.val_split == data.train_split or data.val_split in inside
    ):
        raise ConfigError(
            f"data.train_split: {data.train_split!r} contains the validation split "
            f"{data.val_split!r}, so checkpoint selection would see training images; fit on "
            "'subtrain' (train minus val), or set data.val_split=null for a final run on 'train'"
        )


"""Compare variants share data and seed: that is what makes them comparable."""


def get_setting(cfg: Any, key: str) -> Any:
    """The value of the dotted ``key`` (``"optim.lr"``) of a config dataclass."""
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def check_choices(cfg: Any, prefix: str = "") -> None:
    """Each named setting of ``cfg`` and of its sections (the fields made by :func:`choice`)
    is an entry, of an accepted kind, of its registry."""
    for spec in dataclasses.fields(cfg):
        key, value = prefix + spec.name, getattr(cfg, spec.name)
        if "choice" in spec.metadata:
            registry, kinds = spec.metadata["choice"]
            try:
                registry.entry(value, kinds)
            except ConfigError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_choices(value, key + ".")


def check_bounds(
    cfg: Any, minimum: dict[str, float], above: dict[str, float] | None = None
) -> None:
    """``value >= minimum[key]`` and ``value > above[key]`` (``None`` passes: it means
    "default" or "off")."""
    for key, low in minimum.items():
        value = get_setting(cfg, key)
        if value is not None and value < low:
            raise ConfigError(f"{key}: must be >= {low}, got {value}")
    for key, low in (above or {}).items():
        value = get_setting(cfg, key)
        if value is not None and not value > low:
            raise ConfigError(f"{key}: must be > {low}, got {value}")


def check_control(dar: DARConfig) -> None:
    """A control (``dar.kind`` other than ``"dar"``) has no measure, difference or estimator:
    refuse settings it would ignore (``l2``, the default measure, and ``l2sq`` pass)."""
    if DAR_KINDS.entry(dar.kind).kind == "dar":
        return
    for key, value, allowed in (
        ("measure", dar.measure, ("l2", "l2sq")),
        ("estimator", dar.estimator, ("exact",)),
        ("difference", dar.difference, ("signed",)),
        ("num_chains", dar.num_chains, (1,)),
    ):
        if value not in allowed:
            raise ConfigError(
                f"dar.{key}: {value!r} is not used by dar.kind={dar.kind!r} (a compaction "
                "control); remove it, or set dar.kind=dar"
            )


def validate(cfg: ExperimentConfig, prefix: str = "") -> ExperimentConfig:
    """Check that every named choice exists and that settings fit together.

    Run for the base config and each ``compare`` variant before anything trains, so a typo
    in the last variant does not surface after the first has trained for an hour.
    """
    pre = f"{prefix}: " if prefix else ""
    try:
        check_choices(cfg)
        loss_options = {k: v for k, v in dataclasses.asdict(cfg.loss).items() if k != "name"}
        BASE_LOSSES.check_options(cfg.loss.name, loss_options, "loss.", SUPERVISED_LOSSES)
        check_bounds(cfg, POSITIVE, ABOVE)
        if not 0.0 <= cfg.data.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction: must be in [0, 1), got {cfg.data.val_fraction}")
        if cfg.data.in_channels not in (1, 3):
            raise ConfigError(f"data.in_channels: must be 1 or 3, got {cfg.data.in_channels}")
        if cfg.data.val_by not in (None, *VAL_BY):
            raise ConfigError(f"data.val_by: {unknown_choice('val_by', cfg.data.val_by, VAL_BY)}")
        if not cfg.eval.ks:
            raise ConfigError("eval.ks: give at least one K, e.g. [1, 2, 4, 8]")
        check_control(cfg.dar)
        if cfg.data.sampler == "m_per_class" and cfg.data.batch_size % cfg.data.m_per_class:
            raise ConfigError(
                f"data.batch_size: {cfg.data.batch_size} is not a multiple of "
                f"data.m_per_class ({cfg.data.m_per_class})"
            )
        if cfg.optim.warmup_epochs >= cfg.trainer.epochs:
            raise ConfigError(
                f"optim.warmup_epochs: {cfg.optim.warmup_epochs} must be smaller than "
                f"trainer.epochs ({cfg.trainer.epochs}), or the learning rate never peaks"
            )
        if any(k < 1 for k in cfg.eval.ks):
            raise ConfigError(f"eval.ks: every K must be >= 1, got {cfg.eval.ks}")
    except ConfigError as exc:
        raise ConfigError(f"{pre}{exc}") from None
    return cfg


def _shared_error(cfg: Any, validate_fn: Callable[..., Any]) -> str | None:
    """The error of ``cfg``'s shared part alone (its compare block aside), else ``None``."""
    try:
        validate_fn(dataclasses.replace(cfg, compare=None))
    except ConfigError as exc:
        return str(exc)
    return None


def build_with_variants(cls: Any, mapping: dict[str, Any], validate_fn: Callable[..., Any]) -> Any:
    """Build ``cls`` from a nested mapping and validate it, or each of its ``compare`` variants
    (``validate_fn(cfg, prefix)``); shared by the training and the pretraining configs. Its
    ``plugins`` are imported first: they add the names the config may use."""
    cfg = _build(cls, mapping, "")
    import_plugins(cfg.plugins)
    if cfg.compare is not None:
        for variant, overrides in cfg.compare.items():
            if not isinstance(overrides, dict):
                raise ConfigError(f"compare.{variant}: expected a mapping of dotted overrides")
            for key in overrides:
                if key.startswith(SHARED_IN_COMPARE):
                    raise ConfigError(
                        f"compare.{variant}.{key}: variants share the data and the seed so "
                        "that they are comparable; set it for the whole config instead"
                    )
            # Validate every variant now, not after the first one has trained for minutes.
            variant_cfg = apply_overrides(cfg, overrides, prefix=f"compare.{variant}")
            try:
                validate_fn(dataclasses.replace(variant_cfg, compare=None))
            except ConfigError as exc:
                # Named as the user wrote it: an error of the shared part (trainer.epochs=-1
                # for the whole config) plainly, one a variant's settings cause with it.
                if _shared_error(cfg, validate_fn) != str(exc):
                    raise ConfigError(f"compare.{variant}: {exc}") from None
                raise
    else:
        validate_fn(cfg)
    return cfg


def import_plugins(modules: typing.Iterable[str]) -> None:
    """Import each plugin module (``plugins:``), which registers its entries on import."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"plugins: cannot import {module!r} ({type(exc).__name__}: {exc}); put its "
                "folder on PYTHONPATH or install it"
            ) from None


def from_saved(cls: type[C], mapping: dict[str, Any]) -> C:
    """A config dataclass from the mapping its ``to_dict`` wrote (a checkpoint's hyper-
    parameters): keys and types are checked and its plugins imported; the settings are not
    validated again: they were where the config was made (and a checkpoint must load as it
    was written)."""
    cfg = _build(cls, mapping, "")
    import_plugins(getattr(cfg, "plugins", ()))
    return typing.cast(C, cfg)


def config_from_dict(mapping: dict[str, Any]) -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from a nested mapping."""
    return build_with_variants(ExperimentConfig, mapping, validate)


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=3e-4"`` -> ``("optim.lr", 0.0003)``; the value is a YAML scalar."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{key}: cannot parse value {raw!r}{_yaml_where(exc)}") from None
    # YAML 1.1 reads "1e-3" as a string; users mean a number.
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if any(c in value for c in ".eE") else value
    return key, value


def apply_overrides(cfg: V, overrides: dict[str, Any], prefix: str = "") -> V:
    """Return a copy of ``cfg`` with dotted ``overrides`` applied and validated."""
    data = cfg.to_dict()
    for key, value in overrides.items():
        parts = key.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                where = ".".join(parts[: i + 1])
                guess = did_you_mean(key, dotted_keys(cfg))
                raise ConfigError(f"{prefix + ': ' if prefix else ''}{where}: unknown key{guess}")
            node = node[part]
        if parts[-1] not in node and key != "compare":
            guess = did_you_mean(key, dotted_keys(cfg))
            raise ConfigError(f"{prefix + ': ' if prefix else ''}{key}: unknown key{guess}")
        node[parts[-1]] = value
    try:
        # type(cfg): the same overrides serve the pretraining config (dasl.ssl_config).
        return _build(type(cfg), data, "")
    except ConfigError as exc:
        raise ConfigError(f"{prefix}: {exc}" if prefix else str(exc)) from None


def _normalize_compare_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    """YAML reads ``dar.lam: 1`` as the key ``"dar.lam"``; nested mappings are flattened too."""
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            full = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                walk(v, full)
            else:
                flat[full] = v

    walk(mapping, "")
    return flat


def _yaml_where(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: where, and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {' '.join(str(problem).split())}"


PACKAGED_CONFIGS = ("default", "fmnist_demo")
"""Configs shipped in ``dasl/configs``: the demo (``default``) and the other demos."""


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    packaged: str = "default",
) -> ExperimentConfig:
    """Load a YAML config (the packaged config ``packaged`` when ``path`` is None: the
    default demo unless told otherwise), apply overrides and validate the result."""
    if path is None and packaged not in PACKAGED_CONFIGS:
        raise ConfigError(f"no packaged config {packaged!r}; choose from {PACKAGED_CONFIGS}")
    packaged_name = "the default config" if packaged == "default" else f"the {packaged} config"
    raw, _ = read_config_mapping(path, f"configs/{packaged}.yaml", packaged_name)
    cfg = config_from_dict(raw)
    if overrides:
        cfg = apply_command_line(cfg, overrides, config_from_dict)
    return check_splits(cfg)


def read_config_mapping(
    path: str | Path | None, packaged_file: str, packaged_name: str
) -> tuple[dict[str, Any], str]:
    """The top-level mapping of a YAML config file (``packaged_file`` inside the package when
    ``path`` is None) and the name to cite it by; ``compare`` variants' keys flattened."""
    if path is None:
        text = resources.files("dasl").joinpath(packaged_file).read_text()
        source = packaged_name
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        source = str(p)
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            where = f"byte {exc.start}"
            raise ConfigError(f"{source}: not UTF-8 text ({where}); not a config") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML{_yaml_where(exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    raw = copy.deepcopy(raw)
    if isinstance(raw.get("compare"), dict):
        raw["compare"] = {
            name: _normalize_compare_keys(ov) if isinstance(ov, dict) else ov
            for name, ov in raw["compare"].items()
        }
    return raw, source


COMPARE_PREFIX = "compare."


def apply_command_line(cfg: V, overrides: list[str], rebuild: Callable[[dict[str, Any]], V]) -> V:
    """Apply ``KEY=VALUE`` texts to ``cfg``; later ones win; the result is validated by
    ``rebuild`` (the ``*_from_dict`` builder of ``cfg``'s kind, :func:`config_from_dict` ...).

    ``compare.<variant>.<key>=<value>`` sets a key of one ``compare`` variant. A plain key
    that a variant sets (or a section holding it) is refused: that variant would silently
    keep its own value. The message names the per-variant spelling.
    """
    base: dict[str, Any] = {}
    texts: dict[str, str] = {}
    per_variant: list[tuple[str, str, Any]] = []
    for text in overrides:
        key, value = parse_override(text)
        raw = text.split("=", 1)[1]
        if key.startswith(COMPARE_PREFIX) and key != "compare":
            variant, _, rest = key[len(COMPARE_PREFIX) :].partition(".")
            per_variant.append((variant, rest, value))
        else:
            base[key] = value
            texts[key] = raw
    compare = cfg.compare if "compare" not in base else None
    if compare:
        for key in base:
            setters = [
                name
                for name, ov in compare.items()
                if any(k == key or k.startswith(key + ".") or key.startswith(k + ".") for k in ov)
            ]
            if setters:
                spelled = " or ".join(f"{COMPARE_PREFIX}{n}.{key}={texts[key]}" for n in setters)
                raise ConfigError(
                    f"{key}: the compare block sets it per variant ({', '.join(setters)}), "
                    f"so this override would be ignored there; write {spelled}"
                )
    if base:
        cfg = apply_overrides(cfg, base)
    if per_variant:
        if not cfg.compare:
            variant, rest, _ = per_variant[0]
            raise ConfigError(
                f"{COMPARE_PREFIX}{variant}.{rest}: this config has no compare block; "
                f"write {rest or 'KEY'}=VALUE"
            )
        compare = {name: dict(ov) for name, ov in cfg.compare.items()}
        for variant, rest, value in per_variant:
            if variant not in compare:
                raise ConfigError(
                    f"{COMPARE_PREFIX}{variant}: no such variant; the compare block has "
                    f"{', '.join(compare)}"
                )
            if not rest:
                raise ConfigError(
                    f"{COMPARE_PREFIX}{variant}: name a key, e.g. "
                    f"{COMPARE_PREFIX}{variant}.dar.lam=0.3"
                )
            compare[variant][rest] = value
        cfg = dataclasses.replace(cfg, compare=compare)
    # Validated whether or not there is a compare block: a bad override fails here, where
    # the config is made, not after the data has loaded.
    return rebuild(cfg.to_dict())


def variants(cfg: ExperimentConfig) -> list[tuple[str, ExperimentConfig]]:
    """The runs a config asks for: each ``compare`` variant, or the config itself."""
    if not cfg.compare:
        return [(cfg.name, cfg)]
    base = dataclasses.replace(cfg, compare=None)
    return [
        (name, apply_overrides(base, overrides, prefix=f"compare.{name}"))
        for name, overrides in cfg.compare.items()
    ]


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML (what ``config.yaml`` in a run folder holds).

    With ``compare``, keys that every variant sets are left out of the shared part: no
    variant used their base value. Loading the dump gives the same variants.
    """
    data = cfg.to_dict()
    if not data.get("plugins"):
        data.pop("plugins", None)  # the usual case: config.yaml as before plugins existed
    header = ""
    if cfg.compare:
        every = set.intersection(*(set(ov) for ov in cfg.compare.values()))
        for key in sorted(every):
            *parents, leaf = key.split(".")
            node: Any = data
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(leaf, None)
        if every:
            header = (
                "# Set by every compare variant, so not in the shared part: "
                + ", ".join(sorted(every))
                + "\n"
            )
    return header + yaml.safe_dump(data, sort_keys=False)
