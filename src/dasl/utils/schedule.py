"""Learning-rate schedule: linear warm-up, then a registered decay, per optimizer step.

The decays are the entries of :data:`dasl.choices.SCHEDULERS`: ``factor(t) -> float``, the
multiplier of the base learning rate at the fraction ``t`` in [0, 1] of the post-warm-up
steps done (``cosine``: ``0.5 (1 + cos(pi t))``; ``constant``: 1).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dasl.choices import SCHEDULERS


@SCHEDULERS.register("cosine")
def cosine(t: float) -> float:
    """``0.5 * (1 + cos(pi * t))``: from 1 down to 0."""
    return 0.5 * (1.0 + math.cos(math.pi * t))


@SCHEDULERS.register("constant")
def constant(t: float) -> float:
    """1: the base learning rate after warm-up."""
    return 1.0


def schedule_factor(step: int, total_steps: int, warmup_steps: int, scheduler: str) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    ``(step + 1) / warmup_steps`` during warm-up; then ``SCHEDULERS[scheduler](t)`` with ``t``
    the fraction of the post-warm-up steps done.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return float(SCHEDULERS.get(scheduler)(t))


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, cosine: bool = True
) -> float:
    """:func:`schedule_factor` of ``cosine`` (or ``constant`` when ``cosine`` is False)."""
    return schedule_factor(step, total_steps, warmup_steps, "cosine" if cosine else "constant")


def scheduler_config(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    max_epochs: int,
    warmup_epochs: float,
    scheduler: str,
) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` dict: ``optimizer`` with the per-step schedule of
    :func:`schedule_factor` (``warmup_epochs`` converted to steps)."""
    SCHEDULERS.get(scheduler)  # a wrong name fails here, not at the first step
    total = max(1, total_steps)
    warmup = round(warmup_epochs * total / max(1, max_epochs))
    lr_lambda = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedule_factor(step, total, warmup, scheduler)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr_lambda, "interval": "step"}}
