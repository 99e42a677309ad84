"""Two-view augmentations of the SimCLR recipe, per dataset, and the two-view dataset.

Photos use lightly's ``SimCLRViewTransform`` (random resized crop, flips, colour jitter,
grayscale, Gaussian blur, normalize: the recipe of Chen et al. 2020 as solo-learn and lightly
ship it). The small grayscale arrays (Fashion-MNIST, digits) use the same steps written with
torchvision v2 on tensors instead: lightly's transform goes through PIL, which costs 2.5 ms
per view at 28 px against 1.3 ms, and the demo's budget is CPU-bound. Settings per recipe:

| recipe | size | crop scale | colour jitter (p, strength) | grayscale | blur | normalize |
|---|---|---|---|---|---|---|
| fashion-mnist | 28 | 0.2-1 | 0.8, 0.4 (brightness/contrast act on gray) | - | - | 0.5 / 0.5 |
| digits | 8 | 0.5-1, no flip | 0.8, 0.4 | - | - | 0.5 / 0.5 |
| cifar | 32 | 0.08-1 | 0.8, 0.5 | 0.2 | - (SimCLR: none at 32 px) | CIFAR mean/std |
| stl10 | 96 | 0.08-1 | 0.8, 1.0 | 0.2 | 0.5 | ImageNet mean/std |
| imagenet | 224 | 0.08-1 | 0.8, 1.0 | 0.2 | 0.5 | ImageNet mean/std |

lightly's transforms take PIL images: array-backed images (float tensors in [0, 1]) are
turned into PIL first. Its Gaussian blur draws from numpy's global generator, so
:class:`TwoViewDataset` seeds numpy and ``random`` from the torch generator (which
:class:`dasl.data.loaders.EpochSeeded` seeds per item): a resumed run sees exactly
the same views.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from dasl.errors import ConfigError
from dasl.registry import unknown_choice

IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
CIFAR_NORM = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}
GRAY_NORM = {"mean": [0.5], "std": [0.5]}


@dataclass(frozen=True)
class Recipe:
    size: int
    min_scale: float
    cj_prob: float
    cj_strength: float
    gray: float
    blur: float
    hflip: float
    normalize: dict[str, list[float]]
    resize_eval: int | None = None
    """Eval: resize the short side to this, then centre-crop ``size`` (None: resize to size)."""


RECIPES: dict[str, Recipe] = {
    "fashion-mnist": Recipe(28, 0.2, 0.8, 0.4, 0.0, 0.0, 0.5, GRAY_NORM),
    "digits": Recipe(8, 0.5, 0.8, 0.4, 0.0, 0.0, 0.0, GRAY_NORM),
    "cifar": Recipe(32, 0.08, 0.8, 0.5, 0.2, 0.0, 0.5, CIFAR_NORM),
    "stl10": Recipe(96, 0.08, 0.8, 1.0, 0.2, 0.5, 0.5, IMAGENET_NORM),
    "imagenet": Recipe(224, 0.08, 0.8, 1.0, 0.2, 0.5, 0.5, IMAGENET_NORM, resize_eval=256),
}
AUTO = {
    "fashion-mnist": "fashion-mnist",
    "digits": "digits",
    "cifar10": "cifar",
    "cifar100": "cifar",
    "stl10": "stl10",
    "imagenet": "imagenet",
    "imagenet100": "imagenet",
}


def resolve_recipe(recipe: str, dataset: str) -> str:
    """``auto`` -> the recipe of ``dataset`` (ImageNet's for any other photo dataset)."""
    if recipe != "auto":
        if recipe not in RECIPES:
            raise unknown_choice("recipe", recipe, ("auto", *RECIPES))
        return recipe
    return AUTO.get(dataset, "imagenet")


def _channels_of(norm: dict[str, list[float]], in_channels: int) -> dict[str, list[float]]:
    if len(norm["mean"]) == in_channels:
        return norm
    mean = float(np.mean(norm["mean"]))
    std = float(np.mean(norm["std"]))
    return {"mean": [mean] * in_channels, "std": [std] * in_channels}


class ToPIL:
    """PIL images pass through; ``(C, H, W)`` float tensors in [0, 1] and ``(H, W[, C])``
    uint8 arrays become PIL images (mode ``L`` or ``RGB``)."""

    def __call__(self, img: Any) -> Image.Image:
        if isinstance(img, Image.Image):
            return img
        if isinstance(img, torch.Tensor):
            arr = (img.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
            arr = arr.squeeze(0) if arr.shape[0] == 1 else arr.permute(1, 2, 0)
            return Image.fromarray(arr.numpy())
        return Image.fromarray(np.asarray(img, dtype=np.uint8))


TENSOR_RECIPES = ("fashion-mnist", "digits")


class ToTensorImage:
    """A float ``(in_channels, H, W)`` tensor in [0, 1] from a tensor, array or PIL image."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def __call__(self, img: Any) -> torch.Tensor:
        if not isinstance(img, torch.Tensor):
            img = ToChannels(self.channels)(ToPIL()(img))
            return v2.functional.to_dtype(v2.functional.pil_to_tensor(img), scale=True)
        img = img.float()
        if img.shape[0] == self.channels:
            return img
        if img.shape[0] == 1:
            return img.expand(self.channels, *img.shape[1:]).clone()
        return v2.functional.rgb_to_grayscale(img[:3], num_output_channels=1)


class ToChannels:
    """Convert a PIL image to ``L`` (1 channel) or ``RGB`` (3 channels)."""

    def __init__(self, channels: int) -> None:
        if channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 or 3, got {channels}")
        self.mode = "L" if channels == 1 else "RGB"

    def __call__(self, img: Image.Image) -> Image.Image:
        return img if img.mode == self.mode else img.convert(self.mode)


def view_transform(recipe: str, in_channels: int, image_size: int | None = None) -> Any:
    """One random view: ``PIL/tensor -> (in_channels, S, S)`` float32 (lightly's SimCLR view)."""
    from lightly.transforms.simclr_transform import SimCLRViewTransform

    r = RECIPES[recipe]
    size = image_size or r.size
    norm = _channels_of(r.normalize, in_channels)
    if recipe in TENSOR_RECIPES:
        s = r.cj_strength
        steps = [
            ToTensorImage(in_channels),
            v2.RandomResizedCrop(size, scale=(r.min_scale, 1.0), antialias=True),
            v2.RandomHorizontalFlip(r.hflip),
            v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s)], p=r.cj_prob),
            v2.Normalize(**norm),
        ]
        return v2.Compose(steps)
    view = SimCLRViewTransform(
        input_size=size,
        cj_prob=r.cj_prob,
        cj_strength=r.cj_strength,
        min_scale=r.min_scale,
        random_gray_scale=r.gray if in_channels == 3 else 0.0,
        gaussian_blur=r.blur,
        hf_prob=r.hflip,
        normalize=norm,
    )
    return v2.Compose([ToPIL(), ToChannels(in_channels), view])


def eval_transform(recipe: str, in_channels: int, image_size: int | None = None) -> Any:
    """The deterministic evaluation view: resize (+ centre crop for ImageNet), normalize."""
    r = RECIPES[recipe]
    size = image_size or r.size
    norm = _channels_of(r.normalize, in_channels)
    resize = round(size * r.resize_eval / r.size) if r.resize_eval else size
    steps = [ToPIL(), ToChannels(in_channels), v2.Resize(resize), v2.CenterCrop(size)]
    steps += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(**norm)]
    return v2.Compose(steps)


class TwoViewDataset(Dataset):
    """Item ``i`` of ``base`` as ``(view0, view1, i, label)``: two draws of ``transform``
    on the raw image, and the instance id ``i`` (the two views share it).

    ``base`` must offer ``with_transform`` (every :class:`dasl.data.ImageDataset` does): its
    own transform is dropped. numpy's and ``random``'s global state are seeded from torch's
    generator for the duration of the item and restored afterwards.
    """

    def __init__(self, base: Any, transform: Any) -> None:
        self.base = base.with_transform(None)
        self.transform = transform
        self.labels = self.base.labels

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        image, label = self.base[index]
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
        np_state, py_state = np.random.get_state(), random.getstate()
        np.random.seed(seed)
        random.seed(seed)
        try:
            v0 = self.transform(image)
            v1 = self.transform(image)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return v0, v1, int(index), int(label)


def probe_transform(recipe: str, in_channels: int, image_size: int | None = None) -> Any:
    """Training view of the standard linear probe: random resized crop + flip, normalize
    (no colour distortion), as in SimCLR's and solo-learn's linear evaluation."""
    r = RECIPES[recipe]
    size = image_size or r.size
    norm = _channels_of(r.normalize, in_channels)
    return v2.Compose(
        [
            ToTensorImage(in_channels),
            v2.RandomResizedCrop(size, scale=(r.min_scale, 1.0), antialias=True),
            v2.RandomHorizontalFlip(r.hflip),
            v2.Normalize(**norm),
        ]
    )
