"""Learning-rate schedule: linear warm-up, then cosine decay (or constant), per optimizer step."""

from __future__ import annotations

import math
from typing import Any

import torch

from dasl.errors import ConfigError


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, cosine: bool = True
) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    ``(step + 1) / warmup_steps`` during warm-up; then ``0.5 * (1 + cos(pi * t))`` with
    ``t`` the fraction of the post-warm-up steps done (or 1 when ``cosine`` is False).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if not cosine:
        return 1.0
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * t))


def scheduler_config(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    max_epochs: int,
    warmup_epochs: float,
    scheduler: str,
) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` dict: ``optimizer`` with the per-step schedule of
    :func:`warmup_cosine_factor` (``warmup_epochs`` converted to steps)."""
    if scheduler not in ("cosine", "constant"):
        raise ConfigError(
            f"optim.scheduler: unknown scheduler {scheduler!r}; use 'cosine' or 'constant'"
        )
    total = max(1, total_steps)
    warmup = round(warmup_epochs * total / max(1, max_epochs))
    cosine = scheduler == "cosine"
    lr_lambda = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, total, warmup, cosine)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr_lambda, "interval": "step"}}
