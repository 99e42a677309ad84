"""A compact conv net for small grayscale images (8x8 digits, 28x28 Fashion-MNIST)."""

from __future__ import annotations

import torch
from torch import nn

from dasl.errors import ConfigError


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Stages of conv3x3-BN-ReLU blocks with 2x2 max-pooling between stages.

    With the defaults (widths ``(16, 32, 64, 128)``, one conv per stage) a 28x28 input gives a
    128x4x4 map and an 8x8 input a 128x1x1 map (``ceil_mode`` pooling keeps odd sizes from
    vanishing). About 0.1 M parameters; the narrow full-resolution stage is what keeps a training
    step cheap on a couple of CPU cores (wider first stages cost 3-6x more per step).
    Output: ``(N, widths[-1], H', W')``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        convs_per_stage: int = 1,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {in_channels}")
        if not widths or convs_per_stage < 1:
            raise ConfigError("SmallCNN needs at least one stage and one conv per stage")
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            for _ in range(convs_per_stage):
                layers.append(_conv_bn_relu(c_in, width))
                c_in = width
        self.layers = nn.Sequential(*layers)
        self.out_channels = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
