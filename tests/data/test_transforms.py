import numpy as np
import pytest
import torch
from PIL import Image

from dasl.data import build_transforms
from dasl.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MatchChannels,
    RandomShift,
    normalized_transforms,
)


def _pil(h=40, w=60, mode="RGB"):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_imagenet_shapes(train, mode):
    out = build_transforms("imagenet", train=train)(_pil(mode=mode))
    assert type(out) is torch.Tensor and out.dtype == torch.float32 and out.shape == (3, 224, 224)


def test_imagenet_eval_normalization_matches_formula():
    # a constant image survives resize/crop unchanged, so the output is (v/255 - mean) / std
    img = Image.new("RGB", (300, 260), (10, 128, 250))
    out = build_transforms("imagenet", train=False, image_size=32)(img)
    assert out.shape == (3, 32, 32)
    for c, v in enumerate((10, 128, 250)):
        expect = (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(out[c], torch.full((32, 32), expect), atol=1e-5)


def test_imagenet_accepts_gray_tensor():
    x = torch.rand(1, 28, 28)
    out = build_transforms("imagenet", train=False, image_size=64)(x)
    assert out.shape == (3, 64, 64)
    assert torch.allclose(
        out[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0],
        out[1] * IMAGENET_STD[1] + IMAGENET_MEAN[1],
        atol=1e-5,
    )


def test_small_eval_is_exact_affine():
    x = torch.rand(1, 28, 28)
    out = build_transforms("small", train=False, in_channels=1)(x)
    assert torch.allclose(out, (x - 0.5) / 0.5)
    out3 = build_transforms("small", train=False)(x)
    assert out3.shape == (3, 28, 28) and torch.allclose(out3[2], out[0])


@pytest.mark.parametrize(
    ("kind", "size", "shape"), [("small", None, (1, 8, 8)), ("small-flip", 32, (1, 32, 32))]
)
def test_small_train_shapes_and_range(kind, size, shape):
    torch.manual_seed(0)
    x = torch.rand(1, 8, 8) if size is None else torch.rand(1, 28, 28)
    out = build_transforms(kind, train=True, image_size=size, in_channels=1)(x)
    assert out.shape == shape and out.dtype == torch.float32
    assert out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6


def _shifted(x, dy, dx):
    """Reference: out[i, j] = x[i + dy, j + dx] where inside, else 0 (explicit loops)."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    for i in range(h):
        for j in range(w):
            if 0 <= i + dy < h and 0 <= j + dx < w:
                out[..., i, j] = x[..., i + dy, j + dx]
    return out


def test_random_shift_is_a_shift_with_zero_fill():
    torch.manual_seed(1)
    x = torch.rand(1, 28, 28) + 0.1
    refs = {(dy, dx): _shifted(x, dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
    seen = set()
    for _ in range(40):
        y = RandomShift(2 / 28)(x)
        matches = [k for k, r in refs.items() if torch.equal(y, r)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 5


def test_match_channels_and_errors():
    assert MatchChannels(1)(torch.rand(3, 4, 4)).shape == (1, 4, 4)
    assert MatchChannels(3)(torch.rand(4, 4, 4)).shape == (3, 4, 4)
    with pytest.raises(ValueError, match=r"in_channels must be 1 or 3"):
        MatchChannels(2)
    with pytest.raises(ValueError, match=r"^unknown transform .cifar.; choose one of imagenet, "):
        build_transforms("cifar", train=True)
    with pytest.raises(ValueError, match=r"image_size must be >= 1"):
        build_transforms("small", train=True, image_size=0)


def test_normalized_transforms_use_the_given_statistics():
    """The ``(mean, std)`` pair goes to the normalization step; ``None``: ImageNet's."""
    img = _pil(h=40, w=40)
    stats = ((0.5, 0.25, 0.0), (0.5, 0.5, 2.0))
    out = normalized_transforms("imagenet", False, 32, 3, stats)(img)
    plain = build_transforms("imagenet", False, 32, 3)(img)  # ImageNet statistics
    mean, std = (torch.tensor(s)[:, None, None] for s in (IMAGENET_MEAN, IMAGENET_STD))
    pixels = plain * std + mean
    expected = (pixels - torch.tensor(stats[0])[:, None, None]) / torch.tensor(stats[1])[
        :, None, None
    ]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(normalized_transforms("imagenet", False, 32, 3, None)(img), plain)
