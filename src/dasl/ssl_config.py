"""Configuration of self-supervised pretraining (``dasl pretrain``): typed dataclasses.

Same rules as :mod:`dasl.config` (whose builders, override parser and YAML handling it
reuses): unknown keys and wrong types are refused with a :class:`ConfigError` naming the
key; ``compare`` lists named variants (dotted overrides) trained with the same seed, data
and budget. Sections: ``data``, ``model``, ``ssl`` (method and base loss), ``dar`` (the
regularizer, :class:`dasl.config.DARConfig`), ``clustering`` (read by ``dasl_cu`` only),
``optim``, ``trainer`` (:class:`dasl.config.TrainerConfig`), ``eval``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dasl.config import (
    SCHEDULERS,
    ConfigError,
    DARConfig,
    TrainerConfig,
    _check_choice,
    apply_command_line,
    build_with_variants,
    read_config_mapping,
)

METHODS = ("simclr", "dasl_cf", "dasl_cu")
"""``simclr``: the base loss alone; ``dasl_cf``: + lam * DAR with instance ids;
``dasl_cu``: + lam * DAR with k-means pseudo-labels (instance ids before the first clustering)."""
BASE_LOSSES = ("ntxent", "dcl", "vicreg", "barlowtwins")
"""``(z0, z1) -> loss`` modules of lightly; ``vicreg`` and ``barlowtwins`` are non-contrastive."""
TEMPERATURE_LOSSES = ("ntxent", "dcl")
RECIPES = ("auto", "fashion-mnist", "digits", "cifar", "stl10", "imagenet")
OPTIMIZERS = ("sgd", "lars", "adamw")
LR_SCALINGS = ("none", "linear")
CLUSTER_FEATURES = ("projection", "backbone")
LINEAR_MODES = ("fast", "standard", "none")


@dataclass
class SSLDataConfig:
    name: str = "fashion-mnist"
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
    recipe: str = "auto"
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
    backbone: str = "small_cnn"
    pooling: str = "avg"
    proj_hidden_dim: int = 512
    proj_dim: int = 128
    cifar_stem: bool = False
    """ResNets: 3x3 stride-1 stem without max-pool (CIFAR/STL-sized images)."""
    channels_last: bool = False


@dataclass
class SSLMethodConfig:
    method: str = "simclr"
    base_loss: str = "ntxent"
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
    features: str = "projection"
    """Feature bank: L2-normalized ``projection`` outputs (as PCL) or ``backbone`` features."""
    niter: int = 20


@dataclass
class SSLOptimConfig:
    optimizer: str = "adamw"
    lr: float = 1e-3
    lr_scaling: str = "none"
    """``linear``: lr x global batch / 256 (SimCLR's rule)."""
    weight_decay: float = 1e-6
    momentum: float = 0.9
    warmup_epochs: float = 0.0
    scheduler: str = "cosine"
    grad_clip: float | None = None
    exclude_bias_bn: bool = True
    """No weight decay (and, for LARS, no adaptation) on biases and BatchNorm parameters."""


@dataclass
class SSLEvalConfig:
    knn_k: list[int] = field(default_factory=lambda: [200, 20])
    knn_temperature: float = 0.1
    monitor_every: int = 1
    """Epochs between k-NN top-1 on the validation split (curve, best checkpoint); 0: never."""
    linear: str = "fast"
    """``fast``: linear probe on cached features; ``standard``: augmented crops through the
    frozen backbone; ``none``."""
    linear_epochs: int = 100
    linear_lr: float = 0.1
    linear_batch_size: int = 256
    raw_baseline: bool = True
    plots: bool = True
    tsne_points: int = 2000


@dataclass
class PretrainConfig:
    name: str = "pretrain"
    out_dir: str = "runs"
    seed: int = 0
    data: SSLDataConfig = field(default_factory=SSLDataConfig)
    model: SSLModelConfig = field(default_factory=SSLModelConfig)
    ssl: SSLMethodConfig = field(default_factory=SSLMethodConfig)
    dar: DARConfig = field(default_factory=lambda: DARConfig(estimator="chain"))
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    optim: SSLOptimConfig = field(default_factory=SSLOptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: SSLEvalConfig = field(default_factory=SSLEvalConfig)
    compare: dict[str, dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate_pretrain(cfg: PretrainConfig, prefix: str = "") -> PretrainConfig:
    """Every named choice exists and the settings fit together (before anything trains)."""
    from dasl.dar.measures import BACKENDS, DIFFERENCES, ESTIMATORS, MEASURES, REDUCTIONS
    from dasl.data.classification import CLASSIFICATION_DATASETS
    from dasl.data.registry import DATASET_NAMES
    from dasl.models.backbones import BACKBONES
    from dasl.models.pooling import POOLINGS

    pre = f"{prefix}: " if prefix else ""
    try:
        datasets = tuple(dict.fromkeys((*CLASSIFICATION_DATASETS, *DATASET_NAMES)))
        choices = {
            "data.name": datasets,
            "data.recipe": RECIPES,
            "model.backbone": BACKBONES,
            "model.pooling": POOLINGS,
            "ssl.method": METHODS,
            "ssl.base_loss": BASE_LOSSES,
            "dar.measure": MEASURES,
            "dar.estimator": ESTIMATORS,
            "dar.difference": DIFFERENCES,
            "dar.reduction": REDUCTIONS,
            "dar.backend": BACKENDS,
            "clustering.features": CLUSTER_FEATURES,
            "optim.optimizer": OPTIMIZERS,
            "optim.lr_scaling": LR_SCALINGS,
            "optim.scheduler": SCHEDULERS,
            "eval.linear": LINEAR_MODES,
        }
        for key, valid in choices.items():
            section, name = key.split(".")
            _check_choice(key, getattr(getattr(cfg, section), name), valid)
        method, lam = cfg.ssl.method, cfg.dar.lam
        if method == "simclr" and lam != 0:
            raise ConfigError(
                f"dar.lam: {lam} with ssl.method 'simclr' (the base loss alone); set "
                "dar.lam=0, or use ssl.method dasl_cf / dasl_cu for DAR"
            )
        if method != "simclr" and not lam > 0:
            raise ConfigError(f"dar.lam: ssl.method {method!r} needs dar.lam > 0, got {lam}")
        uses_t = cfg.ssl.base_loss in TEMPERATURE_LOSSES
        if uses_t and (cfg.ssl.temperature is None or cfg.ssl.temperature <= 0):
            raise ConfigError(f"ssl.temperature: must be > 0 for {cfg.ssl.base_loss!r}")
        if not uses_t and cfg.ssl.temperature is not None:
            raise ConfigError(
                f"ssl.temperature: not used by base loss {cfg.ssl.base_loss!r}; set it to null"
            )
        if cfg.dar.num_chains < 1:
            raise ConfigError(f"dar.num_chains: must be >= 1, got {cfg.dar.num_chains}")
        ccfg = cfg.clustering
        if not ccfg.num_clusters or any(k < 2 for k in ccfg.num_clusters):
            raise ConfigError(
                f"clustering.num_clusters: a non-empty list of counts >= 2, got {ccfg.num_clusters}"
            )
        for key in ("every", "niter"):
            if getattr(ccfg, key) < 1:
                raise ConfigError(f"clustering.{key}: must be >= 1, got {getattr(ccfg, key)}")
        if ccfg.start_epoch < 0:
            raise ConfigError(f"clustering.start_epoch: must be >= 0, got {ccfg.start_epoch}")
        if method == "dasl_cu" and ccfg.start_epoch >= cfg.trainer.epochs:
            raise ConfigError(
                f"clustering.start_epoch: {ccfg.start_epoch} >= trainer.epochs "
                f"({cfg.trainer.epochs}): dasl_cu would never use its clusters"
            )
        for key in ("batch_size", "eval_batch_size"):
            if getattr(cfg.data, key) < 2:
                raise ConfigError(f"data.{key}: must be >= 2, got {getattr(cfg.data, key)}")
        if not 0 < cfg.data.val_fraction < 1:
            raise ConfigError(f"data.val_fraction: must lie in (0, 1), got {cfg.data.val_fraction}")
        if cfg.model.proj_dim < 1 or cfg.model.proj_hidden_dim < 1:
            raise ConfigError("model.proj_dim and model.proj_hidden_dim must be >= 1")
        if cfg.trainer.epochs < 1:
            raise ConfigError(f"trainer.epochs: must be >= 1, got {cfg.trainer.epochs}")
        if cfg.optim.lr <= 0:
            raise ConfigError(f"optim.lr: must be > 0, got {cfg.optim.lr}")
        if cfg.optim.warmup_epochs >= cfg.trainer.epochs:
            raise ConfigError(
                f"optim.warmup_epochs: {cfg.optim.warmup_epochs} must be smaller than "
                f"trainer.epochs ({cfg.trainer.epochs}), or the learning rate never peaks"
            )
        ecfg = cfg.eval
        if not ecfg.knn_k or any(k < 1 for k in ecfg.knn_k):
            raise ConfigError(f"eval.knn_k: a non-empty list of K >= 1, got {ecfg.knn_k}")
        if ecfg.knn_temperature <= 0:
            raise ConfigError(f"eval.knn_temperature: must be > 0, got {ecfg.knn_temperature}")
        if ecfg.monitor_every < 0:
            raise ConfigError(f"eval.monitor_every: must be >= 0, got {ecfg.monitor_every}")
        if ecfg.linear_epochs < 1:
            raise ConfigError(f"eval.linear_epochs: must be >= 1, got {ecfg.linear_epochs}")
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
