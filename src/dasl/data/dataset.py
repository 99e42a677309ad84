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


class UnreadableImageError(OSError):
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
            raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
        if labels.size and (labels.min() < -1 or labels.max() >= len(class_names)):
            raise ValueError(
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
            raise ValueError(f"{indices.shape[0]} indices for {self.labels.shape[0]} labels")
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
    """Images stored as files; an item's raw image is a PIL RGB image."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        labels: np.ndarray,
        class_names: Sequence[str],
        name: str,
        split: str,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(labels, class_names, name, split, transform)
        if len(paths) != self.labels.shape[0]:
            raise ValueError(f"{len(paths)} paths for {self.labels.shape[0]} labels")
        # An object array of str pickles compactly to DataLoader workers, unlike a list of Paths.
        self._paths = np.asarray([str(p) for p in paths], dtype=object)

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in self._paths]

    def _raw(self, index: int) -> Image.Image:
        return load_rgb(self._paths[index])


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file as RGB, naming the file in any error."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"image file not found: {path}") from err
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise UnreadableImageError(
            f"cannot read image {path}: {err}. Pass skip_unreadable=True to drop unreadable "
            "images when the dataset is built, or run `dasl data check` to list them all."
        ) from err
