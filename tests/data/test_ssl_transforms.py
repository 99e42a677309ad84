"""Two-view SimCLR pipelines: sizes per recipe, two different views, seeded per item."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dasl.data import load_dataset
from dasl.data.classification import load_classification_split
from dasl.data.loaders import EpochSeeded
from dasl.data.ssl_transforms import (
    TwoViewDataset,
    eval_transform,
    probe_transform,
    resolve_recipe,
    view_transform,
)


@pytest.mark.parametrize(
    ("recipe", "channels", "size"),
    [("fashion-mnist", 1, 28), ("digits", 1, 8), ("cifar", 3, 32), ("stl10", 3, 96)],
)
def test_view_sizes(recipe: str, channels: int, size: int) -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(channels, size + 4, size + 4, generator=g)
    for build in (view_transform, eval_transform, probe_transform):
        out = build(recipe, channels)(image)
        assert out.shape == (channels, size, size) and out.dtype == torch.float32


def test_imagenet_recipe_on_a_pil_photo() -> None:
    from PIL import Image

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8))
    assert view_transform("imagenet", 3)(photo).shape == (3, 224, 224)
    assert eval_transform("imagenet", 3, 64)(photo).shape == (3, 64, 64)


def test_recipe_names() -> None:
    assert resolve_recipe("auto", "cifar100") == "cifar"
    assert resolve_recipe("auto", "imagenet100") == "imagenet"
    assert resolve_recipe("stl10", "folder") == "stl10"
    with pytest.raises(ValueError, match=r"unknown recipe 'mnist'; choose one of auto, "):
        resolve_recipe("mnist", "digits")


def test_two_views_share_the_instance_id_and_are_seeded_per_item() -> None:
    base = load_classification_split("digits", None, "test")
    two = TwoViewDataset(base, view_transform("digits", 1))
    a = EpochSeeded(two, seed=0, epoch=3)
    v0, v1, index, label = a[5]
    assert index == 5 and label == int(base.labels[5])
    assert not torch.equal(v0, v1)  # two independent draws of the augmentation
    np_state = np.random.get_state()[1].copy()
    w0, w1, _, _ = EpochSeeded(two, seed=0, epoch=3)[5]  # same (seed, epoch, item)
    assert torch.equal(v0, w0) and torch.equal(v1, w1)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # numpy left untouched
    x0, _, _, _ = EpochSeeded(two, seed=0, epoch=4)[5]
    assert not torch.equal(v0, x0)  # a new epoch draws new views


def test_registry_datasets_wrap_too() -> None:
    ds = load_dataset("digits", None, "test")
    v0, v1, i, _ = TwoViewDataset(ds, view_transform("digits", 1))[0]
    assert v0.shape == v1.shape == (1, 8, 8) and i == 0


@pytest.mark.parametrize("recipe", ["fashion-mnist", "digits", "cifar", "stl10", "imagenet"])
def test_eval_view_of_a_flat_image_is_its_normalized_value(recipe: str) -> None:
    """A flat image of value v/255 in every channel: after resize and crop every pixel of
    channel c is ``(v / 255 - mean_c) / std_c`` with the recipe's constants (written out here)."""
    from PIL import Image

    constants = {
        "fashion-mnist": ([0.5], [0.5]),
        "digits": ([0.5], [0.5]),
        "cifar": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
        "stl10": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    }
    mean, std = constants[recipe]
    channels = len(mean)
    v = 173
    mode = "L" if channels == 1 else "RGB"
    flat = Image.new(mode, (50, 40), v if channels == 1 else (v, v, v))
    out = eval_transform(recipe, channels)(flat)
    for c in range(channels):
        want = (v / 255 - mean[c]) / std[c]
        torch.testing.assert_close(out[c], torch.full_like(out[c], want), rtol=0, atol=1e-5)


def test_grayscale_views_at_the_recipe_rate() -> None:
    """STL-10 views of a colour image are grayscale (R = G = B after undoing the per-channel
    normalization) in about 20% of draws (binomial, 300 draws: a 3-sigma band)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = np.stack(
        [np.full((40, 40), 200), rng.integers(0, 255, (40, 40)), np.full((40, 40), 30)], axis=-1
    ).astype(np.uint8)
    photo = Image.fromarray(pixels)
    view = view_transform("stl10", 3)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.manual_seed(0)
    np.random.seed(0)
    draws, gray = 300, 0
    for _ in range(draws):
        raw = view(photo) * std + mean
        gray += int(
            torch.allclose(raw[0], raw[1], atol=2e-3) and torch.allclose(raw[1], raw[2], atol=2e-3)
        )
    sd = (draws * 0.2 * 0.8) ** 0.5
    assert abs(gray - 0.2 * draws) < 3 * sd, gray


def test_tensor_recipe_jitters_brightness_within_its_strength() -> None:
    """Fashion-MNIST views of a flat image c: crops and flips keep it flat; colour jitter
    (p 0.8, brightness 0.8 * 0.4) scales it by a factor in [0.68, 1.32], so each view is flat
    with value in c * [0.68, 1.32], and the share of views left exactly at c is about 0.2."""
    c = 0.5
    flat = torch.full((1, 28, 28), c)
    view = view_transform("fashion-mnist", 1)
    torch.manual_seed(1)
    draws, unchanged = 300, 0
    for _ in range(draws):
        raw = view(flat) * 0.5 + 0.5
        assert float(raw.max() - raw.min()) < 1e-6
        value = float(raw.mean())
        assert 0.68 * c - 1e-6 <= value <= 1.32 * c + 1e-6
        unchanged += int(abs(value - c) < 1e-7)
    sd = (draws * 0.2 * 0.8) ** 0.5
    assert abs(unchanged - 0.2 * draws) < 3 * sd, unchanged
