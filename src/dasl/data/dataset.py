"""The dataset objects every reader returns: ``(image, label)`` items plus label metadata."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dasl.errors import ConfigError, DataError, MissingDataError, UnreadableDataError


class UnreadableImageError(UnreadableDataError):
    """An image file exists but PIL cannot decode it."""


class ImageDataset(Dataset):
    """A split of a labelled image collection.

    Attributes:
        labels: ``int64`` array, one contiguous label in ``0..num_classes-1`` per item, in item
            order; ``-1`` marks an unlabeled item (STL-10's unlabeled split, for pretraining).
        num_classes: number of classes of the label mapping (for In-Shop query/gallery, the classes
            of query ∪ gallery, shared by both).
        class_names: original class name/id of each contiguous label (``class_names[label]``).
        name, split: dataset name and split name.
        transform: applied to the raw image (see subclasses for its type).
    """

    def __init__(
        self,
        labels: np.ndarray,
        class_names: Sequence[str],
        name: str,
        split: str,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.ndim != 1:
            raise DataError(f"labels must be 1-D, got shape {labels.shape}")
        if labels.size and (labels.min() < -1 or labels.max() >= len(class_names)):
            raise DataError(
                f"labels must lie in 0..{len(class_names) - 1} (one per class name) or be -1 "
                "(unlabeled), "
                f"got range {labels.min()}..{labels.max()}"
            )
        self.labels = labels
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.name = name
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def _raw(self, index: int) -> Any:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self._raw(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    def with_transform(self, transform: Callable[[Any], Any] | None) -> ImageDataset:
        """Shallow copy sharing the data, with another transform (train vs eval views)."""
        other = copy.copy(self)
        other.transform = transform
        return other

    def describe(self) -> str:
        """One line: ``"<name> <split>: N images, C classes"``."""
        present = int(np.unique(self.labels[self.labels >= 0]).size)
        extra = f" ({present} present)" if present != self.num_classes else ""
        return (
            f"{self.name} {self.split}: {len(self):,} images, {self.num_classes:,} classes{extra}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class ArrayImageDataset(ImageDataset):
    """Images held in one ``uint8``/integer array; items index into it.

    Grey ``(N_all, H, W)`` arrays (Fashion-MNIST, digits): an item's raw image is a float32
    tensor ``(1, H, W)`` equal to ``pixels / max_value``, in [0, 1]. RGB ``(N_all, H, W, 3)``
    ``uint8`` arrays (CIFAR, STL-10; any object with ``ndim == 4`` whose items are ``(H, W, 3)``
    arrays): a PIL RGB image, like the file-backed photo datasets, so the same transforms apply.
    """

    def __init__(
        self,
        images: np.ndarray,
        indices: np.ndarray,
        labels: np.ndarray,
        class_names: Sequence[str],
        name: str,
        split: str,
        max_value: float,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(labels, class_names, name, split, transform)
        indices = np.asarray(indices, dtype=np.int64)
        if indices.shape != self.labels.shape:
            raise DataError(f"{indices.shape[0]} indices for {self.labels.shape[0]} labels")
        self.images = images
        self.indices = indices
        self.max_value = float(max_value)
        self.paths: list[Path] | None = None

    def _raw(self, index: int) -> torch.Tensor | Image.Image:
        if self.images.ndim == 4:
            return Image.fromarray(np.asarray(self.images[self.indices[index]], dtype=np.uint8))
        pixels = torch.from_numpy(np.asarray(self.images[self.indices[index]]))
        return (pixels.to(torch.float32) / self.max_value).unsqueeze(0)


class FileImageDataset(ImageDataset):
    """Images stored as files; an item's raw image is a PIL image in ``mode`` ("RGB" or "L")."""

    def __init__(
        self,
        paths: Sequence[str | Path] | np.ndarray,
        labels: np.ndarray,
        class_names: Sequence[str],
        name: str,
        split: str,
        transform: Callable[[Any], Any] | None = None,
        mode: str = "RGB",
    ) -> None:
        super().__init__(labels, class_names, name, split, transform)
        if mode not in IMAGE_MODES:
            raise ConfigError(f"mode must be one of {IMAGE_MODES}, got {mode!r}")
        self.mode = mode
        if len(paths) != self.labels.shape[0]:
            raise DataError(f"{len(paths)} paths for {self.labels.shape[0]} labels")
        # An object array of str pickles compactly to DataLoader workers, unlike a list of Paths.
        self._paths = np.asarray([str(p) for p in paths], dtype=object)

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in self._paths]

    def _raw(self, index: int) -> Image.Image:
        return load_image(self._paths[index], self.mode)


IMAGE_MODES = ("RGB", "L")
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def to_8bit(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float gray image as 8-bit "L", scaled, not clipped.

    PIL's ``convert("L")``/``convert("RGB")`` clips such images at 255, turning most of a
    16-bit image white. 16-bit values (and 32-bit ones up to 65535, what older Pillow
    returns for 16-bit PNGs) map by ``v / 257`` (65535 -> 255); floats in [0, 1] by
    ``255 v``; anything larger by its own maximum.
    """
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        top = 1.0 if np.nanmax(arr, initial=0.0) <= 1.0 else float(np.nanmax(arr))
        scaled = arr / top * 255.0
    else:
        arr = arr.astype(np.float64)
        peak = float(arr.max(initial=0))
        if img.mode.startswith("I;16") or 255 < peak <= 65535:
            scaled = arr / 257.0
        elif peak > 65535:
            scaled = arr / peak * 255.0
        else:
            scaled = arr
    return Image.fromarray(np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8), "L")


def convert_image(img: Image.Image, mode: str = "RGB") -> Image.Image:
    """``img`` in ``mode`` ("RGB" or "L") whatever its own mode.

    High bit depths are scaled to 8 bits (:func:`to_8bit`); palette images go through RGBA
    (PIL warns about palette transparency otherwise) and alpha is dropped; CMYK, YCbCr,
    1-bit and the rest use PIL's conversions.
    """
    if img.mode in HIGH_DEPTH_MODES:
        img = to_8bit(img)
    elif img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    return img if img.mode == mode else img.convert(mode)


def load_image(path: str | Path, mode: str = "RGB") -> Image.Image:
    """Open an image file in ``mode``, naming the file in any error."""
    try:
        with Image.open(path) as img:
            img.load()  # decode now, inside the error handling, before the file closes
            return convert_image(img, mode)
    except FileNotFoundError as err:
        raise MissingDataError(f"image file not found: {path}") from err
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(
            f"cannot read image {path}: {err}. Set data.skip_unreadable=true to drop unreadable "
            "images when the dataset is built, or run `dasl data check` to list them all."
        ) from err


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file as RGB, naming the file in any error."""
    return load_image(path, "RGB")
