"""Every kind of named choice a config makes, one :class:`~dasl.registry.Registry` each.

Each registry is filled by its home module (named here), where the entries are implemented;
the home is imported on first use, so this module (and :mod:`dasl.config`, which validates
each config section with the registry it names) needs no torch. Add an entry in the home
module, or from a plugin (``docs/EXTENDING.md``)::

    from dasl.choices import BASE_LOSSES

    @BASE_LOSSES.register("my_loss", kind="pair")
    def my_loss(ctx, *, margin=0.2): ...

=====================  ===========================  ======================================
registry               home                         entry
=====================  ===========================  ======================================
``BASE_LOSSES``        :mod:`dasl.losses`           ``builder(ctx, **options) -> nn.Module``
``DAR_ESTIMATORS``     :mod:`dasl.dar.estimators`   ``estimator(z, labels, settings) -> R``
``RANKING_METRICS``    :mod:`dasl.metrics.ranking`  ``metric(nb_labels, labels, R) -> float``
``SCHEDULERS``         :mod:`dasl.utils.schedule`   ``factor(step, total, warmup) -> float``
``SAMPLERS``           :mod:`dasl.data.samplers`    ``batch sampler class``
``BACKBONES``          :mod:`dasl.models.backbones` ``factory(pretrained, **kw) -> trunk``
``DATASETS``           :mod:`dasl.data.registry`    ``reader(root, **options) -> Catalog``
=====================  ===========================  ======================================

The settings that are only a name, read where they are implemented (DAR measures,
differences, reductions and kernels, the regularizer kind, transforms, poolings and
distances), are registries of names in the same way.
"""

from __future__ import annotations

from typing import Any

from dasl.registry import Registry

BASE_LOSSES: Registry[Any] = Registry("base loss", home="dasl.losses")
"""Base similarity losses, tagged ``pair`` / ``proxy`` (supervised, PML) or ``two_view``
(self-supervised, lightly)."""
SUPERVISED_LOSSES = ("pair", "proxy")
"""Kinds of base loss a supervised run (``loss.name``) may use."""
TWO_VIEW_LOSSES = "two_view"
"""The kind of base loss a self-supervised run (``ssl.base_loss``) uses."""
DAR_ESTIMATORS: Registry[Any] = Registry("DAR estimator", home="dasl.dar.estimators")
"""How ``R_align`` is estimated on a batch, tagged ``exact`` (every inter-class pair) or
``sampled`` (draws from a generator: the trainer seeds it per step)."""
RANKING_METRICS: Registry[Any] = Registry("retrieval metric", home="dasl.metrics.ranking")
"""Retrieval metrics reported besides Recall@K (their ``title`` heads report columns)."""
SCHEDULERS: Registry[Any] = Registry("scheduler", home="dasl.utils.schedule")
"""Learning-rate multipliers after warm-up."""
SAMPLERS: Registry[Any] = Registry("sampler", home="dasl.data.samplers")
"""Batch samplers of the supervised training split."""
BACKBONES: Registry[Any] = Registry("backbone", home="dasl.models.backbones")
"""Backbone trunks (torchvision, timm, the small CNN)."""
DATASETS: Registry[Any] = Registry("dataset", home="dasl.data.registry")
"""Dataset readers, tagged ``retrieval`` (class-disjoint splits) or ``classification``."""

DAR_MEASURES: Registry[str] = Registry("measure", home="dasl.dar.measures")
DAR_DIFFERENCES: Registry[str] = Registry("difference", home="dasl.dar.measures")
DAR_REDUCTIONS: Registry[str] = Registry("reduction", home="dasl.dar.measures")
DAR_BACKENDS: Registry[str] = Registry("backend", home="dasl.dar.measures")
DAR_KINDS: Registry[str] = Registry("regularizer kind", home="dasl.dar.controls")
"""``dar`` or a compaction control (#18) in its place."""
TRANSFORMS: Registry[str] = Registry("transform", home="dasl.data.transforms")
POOLINGS: Registry[str] = Registry("pooling", home="dasl.models.pooling")
DISTANCES: Registry[str] = Registry("distance", home="dasl.metrics.validation")
