"""Global pooling of a backbone's feature map into one vector per image."""

from __future__ import annotations

import torch
from torch import nn

from dasl.choices import POOLINGS as POOLING_NAMES
from dasl.errors import DataError
from dasl.registry import unknown_choice

POOLINGS: tuple[str, ...] = ("avg", "max", "avg+max")
POOLING_NAMES.register_names(POOLINGS)


class GlobalPool(nn.Module):
    """Pool an ``(N, C, H, W)`` map to ``(N, C)``.

    - ``"avg"`` (GAP): ``f_c = mean_{h,w} x_{c,h,w}``
    - ``"max"`` (GMP): ``f_c = max_{h,w} x_{c,h,w}``
    - ``"avg+max"``: ``f_c = mean_{h,w} x_{c,h,w} + max_{h,w} x_{c,h,w}`` -- the *sum* of GAP and
      GMP (not their concatenation), as in the ProxyAnchor authors' code; MLRC lists it as a
      choice papers often leave undisclosed, so it is a named option here, never a silent default.
    """

    def __init__(self, mode: str = "avg") -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise unknown_choice("pooling", mode, POOLINGS)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:  # already pooled (N, C)
            return x
        if x.ndim != 4:
            raise DataError(f"GlobalPool expects an (N, C, H, W) map, got shape {tuple(x.shape)}")
        if self.mode == "avg":
            return x.mean(dim=(2, 3))
        if self.mode == "max":
            return x.amax(dim=(2, 3))
        return x.mean(dim=(2, 3)) + x.amax(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
