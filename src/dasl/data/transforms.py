"""Image transforms for training and evaluation (torchvision.transforms.v2).

``imagenet``: photos (PIL or tensor) -> ``(3, S, S)`` float32 normalised with the ImageNet mean
and std; train = RandomResizedCrop(S) + horizontal flip, eval = Resize(S * 256/224) +
CenterCrop(S), S = ``image_size`` (default 224).
``small``/``small-flip``: small array images (Fashion-MNIST 28 px, digits 8 px) -> optional
resize to ``image_size``, train-time random shift (pad 2 px per 28 px, crop back;
``small-flip`` adds a horizontal flip; digits should not flip), then ``(x - 0.5) / 0.5``
per channel.
``glyphs``: rendered characters (``dasl.data.glyphs``, white ink on black) -> like ``small``,
with train-time :class:`StrokeWidth` (thicker or thinner strokes) then a small random affine
(rotation +-8 deg, shear +-8 deg, scale 0.9-1.1, shift +-6 %), never a flip (a mirrored
character is often another character).
All expand grayscale to ``in_channels`` channels (3 for an ImageNet backbone).
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from dasl.choices import TRANSFORMS
from dasl.errors import ConfigError, DataError
from dasl.registry import unknown_choice

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINDS = ("imagenet", "small", "small-flip", "glyphs")
TRANSFORMS.register_names(KINDS)


class MatchChannels(torch.nn.Module):
    """Make a ``(C, H, W)`` image have ``channels`` channels.

    1 -> 3 repeats the gray plane; 4 (RGBA) drops alpha; 3 -> 1 takes ITU-R 601 luma.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 or 3, got {channels}")
        self.channels = channels

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        c = img.shape[-3]
        if c == 4:
            img, c = img[..., :3, :, :], 3
        if c == self.channels:
            return img
        if c == 1 and self.channels == 3:
            return img.expand(*img.shape[:-3], 3, *img.shape[-2:]).clone()
        if c == 3 and self.channels == 1:
            return F.rgb_to_grayscale(img, num_output_channels=1)
        raise DataError(f"cannot turn a {c}-channel image into {self.channels} channels")


class RandomShift(torch.nn.Module):
    """Zero-pad by ``p = max(1, round(fraction * min(H, W)))`` pixels and crop a random
    ``H x W`` window back (2 px at 28 px for the default 2/28)."""

    def __init__(self, fraction: float = 2 / 28) -> None:
        super().__init__()
        self.fraction = fraction

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        p = max(1, round(self.fraction * min(h, w)))
        padded = F.pad(img, [p, p, p, p], fill=0)
        top = int(torch.randint(0, 2 * p + 1, ()).item())
        left = int(torch.randint(0, 2 * p + 1, ()).item())
        return F.crop(padded, top, left, h, w)


def stroke_width(img: torch.Tensor, weight: float, thicker: bool) -> torch.Tensor:
    """``x + weight * (f(x) - x)``, ``f`` the 3x3 max filter (``thicker``) or min filter over
    the in-bounds neighbours of each pixel; ``img`` is ``(C, H, W)`` or ``(N, C, H, W)``."""
    x = img.unsqueeze(0) if img.dim() == 3 else img
    pooled = torch.nn.functional.max_pool2d(x if thicker else -x, 3, stride=1, padding=1)
    filtered = pooled if thicker else -pooled
    return (x + weight * (filtered - x)).reshape(img.shape)


class StrokeWidth(torch.nn.Module):
    """Random stroke-width change of light-on-dark images: :func:`stroke_width` with
    ``weight ~ U(0, max_weight)`` and thicker or thinner with probability 1/2 each; a blend
    rather than the bare filter keeps the 1-2 px strokes of 32 px glyphs from vanishing."""

    def __init__(self, max_weight: float = 0.7) -> None:
        super().__init__()
        self.max_weight = max_weight

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        weight = float(torch.rand(())) * self.max_weight
        thicker = bool(torch.rand(()) < 0.5)
        return stroke_width(img, weight, thicker)


GLYPH_AFFINE = {"degrees": 8.0, "translate": (0.06, 0.06), "scale": (0.9, 1.1), "shear": 8.0}


Normalization = tuple[tuple[float, ...], tuple[float, ...]] | None
"""``(mean, std)`` of the inputs a backbone's pretrained weights expect
(:func:`dasl.models.input_normalization`); ``None``: the transform's own."""


def build_transforms(
    kind: str,
    train: bool,
    image_size: int | None = None,
    in_channels: int = 3,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> v2.Compose:
    """The transform pipeline for ``kind`` (``imagenet``, ``small``, ``small-flip``, ``glyphs``).

    Output: a plain float32 tensor ``(in_channels, S, S)``. ``mean``/``std`` override the
    ImageNet normalization of ``imagenet`` (a backbone's pretrained weights may expect
    other statistics, e.g. EfficientNet-Lite's ``(pixel - 127) / 128``).
    """
    if kind not in KINDS:
        raise unknown_choice("transform", kind, KINDS)
    if image_size is not None and image_size < 1:
        raise ConfigError(f"image_size must be >= 1, got {image_size}")
    steps: list[Any] = [v2.ToImage()]
    if kind == "imagenet":
        size = image_size or 224
        steps.append(MatchChannels(in_channels))
        if train:
            steps += [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
        else:
            steps += [v2.Resize(round(size * 256 / 224), antialias=True), v2.CenterCrop(size)]
        steps += [v2.ToDtype(torch.float32, scale=True)]
        if mean is None or std is None:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
            if in_channels == 1:
                mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        steps.append(v2.Normalize(mean, std))
    else:
        steps += [v2.ToDtype(torch.float32, scale=True), MatchChannels(in_channels)]
        if image_size is not None:
            steps.append(v2.Resize((image_size, image_size), antialias=True))
        if train and kind == "glyphs":
            steps += [StrokeWidth(), v2.RandomAffine(**GLYPH_AFFINE, fill=0.0)]
        elif train:
            steps.append(RandomShift(2 / 28))
            if kind == "small-flip":
                steps.append(v2.RandomHorizontalFlip())
        steps.append(v2.Normalize((0.5,) * in_channels, (0.5,) * in_channels))
    steps.append(v2.ToPureTensor())
    return v2.Compose(steps)


def normalized_transforms(
    kind: str, train: bool, image_size: int | None, in_channels: int, normalization: Normalization
) -> v2.Compose:
    """:func:`build_transforms` with the ``(mean, std)`` of ``normalization``."""
    mean, std = normalization if normalization is not None else (None, None)
    return build_transforms(kind, train, image_size, in_channels, mean, std)
