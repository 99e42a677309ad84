"""Two-view SimCLR pipelines: sizes per recipe, two different views, seeded per item."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dasl.data import load_dataset
from dasl.data.classification import load_classification_split
from dasl.data.ssl_transforms import (
    TwoViewDataset,
    eval_transform,
    probe_transform,
    resolve_recipe,
    view_transform,
)
from dasl.training.datamodule import EpochSeeded


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
    with pytest.raises(ValueError, match="unknown recipe"):
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
