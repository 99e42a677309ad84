"""Configuration of self-supervised pretraining (``dasl pretrain``): typed dataclasses.

Same rules as :mod:`dasl.config` (whose builders, override parser and YAML handling it
reuses): unknown keys and wrong types are refused with a :class:`ConfigError` naming the
key; ``compare`` lists named variants (dotted overrides) trained with the same seed, data
and budget. Sections: ``data``, ``model``, ``ssl`` (method and base loss), ``dar`` (the
regularizer, :class:`dasl.config.DARConfig`), ``clustering`` (read by ``dasl_cu`` only),
``optim``, ``trainer`` (:class:`dasl.config.TrainerConfig`), ``eval``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dasl.choices import (
    BACKBONES,
    BASE_LOSSES,
    DATASETS,
    POOLINGS,
    SCHEDULERS,
    TWO_VIEW_LOSSES,
)
from dasl.config import (
    ConfigError,
    DARConfig,
    RunConfig,
    TrainerConfig,
    apply_command_line,
    build_with_variants,
    check_bounds,
    check_choices,
    check_control,
    choice,
    read_config_mapping,
)
from dasl.registry import Registry


def _names(what: str, names: tuple[str, ...]) -> Registry[str]:
    """A registry of the names of a pretraining setting that only this config reads."""
    registry: Registry[str] = Registry(what)
    registry.register_names(names)
    return registry


METHODS = _names("method", ("simclr", "dasl_cf", "dasl_cu"))
"""``simclr``: the base loss alone; ``dasl_cf``: + lam * DAR with instance ids;
``dasl_cu``: + lam * DAR with k-means pseudo-labels (instance ids before the first clustering)."""
RECIPES = _names("recipe", ("auto", "fashion-mnist", "digits", "cifar", "stl10", "imagenet"))
OPTIMIZERS = _names("optimizer", ("sgd", "lars", "adamw"))
LR_SCALINGS = _names("lr scaling", ("none", "linear"))
CLUSTER_FEATURES = _names("feature bank", ("projection", "backbone"))
LINEAR_MODES = _names("linear evaluation", ("fast", "standard", "none"))


@dataclass
class SSLDataConfig:
    name: str = choice("fashion-mnist", DATASETS)
    """Dataset: ``fashion-mnist`` and ``digits`` use their classification splits here (all
    classes on both sides); other names go to :func:`dasl.data.load_dataset`."""
    root: str | None = None
    train_split: str = "subtrain"
    """Pretraining images (their labels are never seen by the loss; k-NN bank and probe):
    by default the training images minus the validation ones."""
    val_split: str | None = "val"
    """Held out of ``train_split``: per-epoch k-NN monitor and best checkpoint; None: off."""
    test_split: str = "test"
    bank_split: str | None = None
    """Labelled images of the k-NN bank and the linear probe; None: ``train_split`` (set
    ``train`` for STL-10 pretrained on ``train+unlabeled``)."""
    val_fraction: float = 0.1
    max_per_class: int | None = None
    """Cap on training images per class (quick runs)."""
    eval_max_per_class: int | None = None
    """Cap on validation and test images per class (quick runs)."""
    allow_subset: bool = False
    recipe: str = choice("auto", RECIPES)
    """Two-view augmentation recipe; ``auto`` picks it from ``name``."""
    image_size: int | None = None
    """Crop size; None: the recipe's (28 Fashion-MNIST, 32 CIFAR, 96 STL-10, 224 ImageNet)."""
    in_channels: int = 1
    num_workers: int = 0
    batch_size: int = 256
    """Images per step per process (each gives two views); global = batch_size x devices."""
    batches_per_epoch: int | None = None
    eval_batch_size: int = 512


@dataclass
class SSLModelConfig:
    backbone: str = choice("small_cnn", BACKBONES)
    pooling: str = choice("avg", POOLINGS)
    proj_hidden_dim: int = 512
    proj_dim: int = 128
    cifar_stem: bool = False
    """ResNets: 3x3 stride-1 stem without max-pool (CIFAR/STL-sized images)."""
    channels_last: bool = False


@dataclass
class SSLMethodConfig:
    method: str = choice("simclr", METHODS)
    base_loss: str = choice("ntxent", BASE_LOSSES, TWO_VIEW_LOSSES)
    temperature: float | None = 0.1
    """NT-Xent / DCL temperature (must be null for the other base losses)."""
    gather_distributed: bool = True
    """Base loss over the global batch under DDP (lightly's gradient-carrying gather)."""


@dataclass
class ClusteringConfig:
    """k-means pseudo-labels of ``dasl_cu`` (ignored by the other methods)."""

    num_clusters: list[int] = field(default_factory=lambda: [10])
    """One entry per granularity; DAR is averaged over granularities (as PCL's losses)."""
    every: int = 1
    """Epochs between two clusterings of the feature bank."""
    start_epoch: int = 1
    """First epoch (0-based) trained on cluster ids; instance ids before it."""
    features: str = choice("projection", CLUSTER_FEATURES)
    """Feature bank: L2-normalized ``projection`` outputs (as PCL) or ``backbone`` features."""
    niter: int = 20


@dataclass
class SSLOptimConfig:
    optimizer: str = choice("adamw", OPTIMIZERS)
    lr: float = 1e-3
    lr_scaling: str = choice("none", LR_SCALINGS)
    """``linear``: lr x global batch / 256 (SimCLR's rule)."""
    weight_decay: float = 1e-6
    momentum: float = 0.9
    warmup_epochs: float = 0.0
    scheduler: str = choice("cosine", SCHEDULERS)
    grad_clip: float | None = None
    exclude_bias_bn: bool = True
    """No weight decay (and, for LARS, no adaptation) on biases and BatchNorm parameters."""


@dataclass
class SSLEvalConfig:
    knn_k: list[int] = field(default_factory=lambda: [200, 20])
    knn_temperature: float = 0.1
    monitor_every: int = 1
    """Epochs between k-NN top-1 on the validation split (curve, best checkpoint); 0: never."""
    linear: str = choice("fast", LINEAR_MODES)
    """``fast``: linear probe on cached features; ``standard``: augmented crops through the
    frozen backbone; ``none``."""
    linear_epochs: int = 100
    linear_lr: float = 0.1
    linear_batch_size: int = 256
    raw_baseline: bool = True
    plots: bool = True
    tsne_points: int = 2000


@dataclass
class PretrainConfig(RunConfig):
    name: str = "pretrain"
    data: SSLDataConfig = field(default_factory=SSLDataConfig)
    model: SSLModelConfig = field(default_factory=SSLModelConfig)
    ssl: SSLMethodConfig = field(default_factory=SSLMethodConfig)
    dar: DARConfig = field(default_factory=lambda: DARConfig(estimator="chain"))
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    optim: SSLOptimConfig = field(default_factory=SSLOptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: SSLEvalConfig = field(default_factory=SSLEvalConfig)
    compare: dict[str, dict[str, Any]] | None = None


AT_LEAST: dict[str, float] = {
    "dar.num_chains": 1,
    "clustering.every": 1,
    "clustering.niter": 1,
    "clustering.start_epoch": 0,
    "data.batch_size": 2,
    "data.eval_batch_size": 2,
    "model.proj_dim": 1,
    "model.proj_hidden_dim": 1,
    "trainer.epochs": 1,
    "eval.monitor_every": 0,
    "eval.linear_epochs": 1,
}
"""Lower bounds (``>=``) of numeric settings."""
ABOVE: dict[str, float] = {"ssl.temperature": 0, "optim.lr": 0, "eval.knn_temperature": 0}
"""Strict lower bounds (``>``) of numeric settings (``None`` passes)."""


def validate_pretrain(cfg: PretrainConfig, prefix: str = "") -> PretrainConfig:
    """Every named choice exists and the settings fit together (before anything trains)."""
    pre = f"{prefix}: " if prefix else ""
    try:
        check_choices(cfg)
        BASE_LOSSES.check_options(
            cfg.ssl.base_loss, {"temperature": cfg.ssl.temperature}, "ssl.", TWO_VIEW_LOSSES
        )
        check_bounds(cfg, AT_LEAST, ABOVE)
        check_control(cfg.dar)
        method, lam = cfg.ssl.method, cfg.dar.lam
        if method == "simclr" and lam != 0:
            raise ConfigError(
                f"dar.lam: {lam} with ssl.method 'simclr' (the base loss alone); set "
                "dar.lam=0, or use ssl.method dasl_cf / dasl_cu for DAR"
            )
        if method != "simclr" and not lam > 0:
            raise ConfigError(f"dar.lam: ssl.method {method!r} needs dar.lam > 0, got {lam}")
        ccfg = cfg.clustering
        if not ccfg.num_clusters or any(k < 2 for k in ccfg.num_clusters):
            raise ConfigError(
                f"clustering.num_clusters: a non-empty list of counts >= 2, got {ccfg.num_clusters}"
            )
        if method == "dasl_cu" and ccfg.start_epoch >= cfg.trainer.epochs:
            raise ConfigError(
                f"clustering.start_epoch: {ccfg.start_epoch} >= trainer.epochs "
                f"({cfg.trainer.epochs}): dasl_cu would never use its clusters"
            )
        if not 0 < cfg.data.val_fraction < 1:
            raise ConfigError(f"data.val_fraction: must lie in (0, 1), got {cfg.data.val_fraction}")
        if cfg.optim.warmup_epochs >= cfg.trainer.epochs:
            raise ConfigError(
                f"optim.warmup_epochs: {cfg.optim.warmup_epochs} must be smaller than "
                f"trainer.epochs ({cfg.trainer.epochs}), or the learning rate never peaks"
            )
        if not cfg.eval.knn_k or any(k < 1 for k in cfg.eval.knn_k):
            raise ConfigError(f"eval.knn_k: a non-empty list of K >= 1, got {cfg.eval.knn_k}")
    except ConfigError as exc:
        raise ConfigError(f"{pre}{exc}") from None
    return cfg


def pretrain_config_from_dict(mapping: dict[str, Any]) -> PretrainConfig:
    """Build and validate a :class:`PretrainConfig` (and each ``compare`` variant)."""
    return build_with_variants(PretrainConfig, mapping, validate_pretrain)


def load_pretrain_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> PretrainConfig:
    """A YAML pretraining config (None: the packaged demo) with dotted overrides applied,
    validated (the same reading and override rules as :func:`dasl.config.load_config`)."""
    raw, source = read_config_mapping(
        path, "configs/pretrain_demo.yaml", "the default pretraining config"
    )
    try:
        cfg = pretrain_config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if overrides:
        cfg = apply_command_line(cfg, overrides, pretrain_config_from_dict)
    return cfg
