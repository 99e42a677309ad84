"""The recorded preprocessing of dasl.deploy: read off the transform, rebuilt identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dasl.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from dasl.deploy.preprocessing import Preprocessing, preprocessing_for


def test_imagenet_record_says_resize_crop_and_statistics() -> None:
    pre = preprocessing_for("imagenet", None, 3, None)
    record = pre.to_json()
    assert record["image_mode"] == "RGB" and record["input_size"] == [224, 224]
    assert record["resize"] == 256 and record["center_crop"] == [224, 224]
    np.testing.assert_allclose(record["mean"], IMAGENET_MEAN)
    np.testing.assert_allclose(record["std"], IMAGENET_STD)
    assert Preprocessing.from_json(record) == pre


def test_backbone_statistics_and_image_size_are_recorded() -> None:
    norm = ((127 / 255,) * 3, (128 / 255,) * 3)  # EfficientNet-Lite's
    record = preprocessing_for("imagenet", 96, 3, norm).to_json()
    assert record["resize"] == round(96 * 256 / 224) and record["center_crop"] == [96, 96]
    np.testing.assert_allclose(record["mean"], [127 / 255] * 3)
    small = preprocessing_for("small", 20, 1, None).to_json()
    assert small["resize"] == [20, 20] and small["input_size"] == [20, 20]
    assert small["image_mode"] == "L" and small["mean"] == [0.5]


def test_a_record_this_dasl_would_not_redo_is_refused() -> None:
    record = preprocessing_for("small", None, 1, None).to_json()
    with pytest.raises(ValueError, match=r"differs from what this dasl's 'small' transform does"):
        Preprocessing.from_json({**record, "mean": [0.4]})
    with pytest.raises(ValueError, match="incomplete preprocessing record"):
        Preprocessing.from_json({k: v for k, v in record.items() if k != "in_channels"})


def test_load_equals_the_evaluation_transform_and_resizes_to_the_input_size(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "q.png"
    Image.fromarray(rng.integers(0, 256, size=(40, 30, 3), dtype=np.uint8), "RGB").save(path)
    pre = preprocessing_for("imagenet", 32, 3, None)
    direct = build_transforms("imagenet", train=False, image_size=32, in_channels=3)
    with Image.open(path) as img:
        expected = direct(img.convert("RGB"))
    torch.testing.assert_close(pre.load(path), expected, rtol=0, atol=0)
    # A fixed input size of 8x8 (an array dataset's) and a 40x30 file: resized, with a note.
    fixed = Preprocessing("small", None, 3, "RGB", None, (8, 8))
    notes: list[str] = []
    x = fixed.load(path, note=notes.append)
    assert x.shape == (3, 8, 8) and notes == [
        f"{path}: resized from 30x40 to 8x8 px, the model's input size"
    ]
