"""How an image file becomes a model input, recorded so that it can be redone exactly elsewhere.

An image file is decoded in ``image_mode`` (8-bit "L" or "RGB", :func:`dasl.data.load_image`),
turned into floats ``x / 255``, given ``in_channels`` channels, resized (``resize``: the
shorter side to that many pixels, or ``[H, W]``), center-cropped (``center_crop``) and
normalized per channel, ``(x - mean) / std``; the model then sees an
``(N, in_channels, H, W)`` tensor with ``[H, W] = input_size``.

The recorded numbers are read off the evaluation transform itself (its ``Resize``,
``CenterCrop`` and ``Normalize`` steps, :func:`summarize`), not restated from the config: they
say what was done. :meth:`Preprocessing.from_json` rebuilds the transform and refuses a record
whose steps this version of dasl would not redo identically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from dasl.data.dataset import ArrayImageDataset, load_image
from dasl.data.transforms import Normalization, normalized_transforms
from dasl.errors import DataError


def _size(value: Any) -> list[int] | int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    sizes = [int(v) for v in value]
    return sizes[0] if len(sizes) == 1 else sizes


def summarize(pipeline: v2.Compose) -> dict[str, Any]:
    """The geometric and photometric numbers of an evaluation ``pipeline``.

    ``resize``: an int (shorter side, aspect kept) or ``[H, W]``; ``center_crop``: ``[H, W]``;
    ``mean``/``std``: per channel; ``None`` where the pipeline has no such step.
    """
    out: dict[str, Any] = {"resize": None, "center_crop": None, "mean": None, "std": None}
    for step in pipeline.transforms:
        if isinstance(step, v2.Resize):
            out["resize"] = _size(step.size)
        elif isinstance(step, v2.CenterCrop):
            crop = _size(step.size)
            out["center_crop"] = [crop, crop] if isinstance(crop, int) else crop
        elif isinstance(step, v2.Normalize):
            out["mean"] = [float(m) for m in step.mean]
            out["std"] = [float(s) for s in step.std]
    return out


def fixed_output_size(summary: dict[str, Any]) -> tuple[int, int] | None:
    """``(H, W)`` every output of the pipeline has, or ``None`` (it keeps the image's size)."""
    if summary["center_crop"] is not None:
        h, w = summary["center_crop"]
        return int(h), int(w)
    if isinstance(summary["resize"], list):
        h, w = summary["resize"]
        return int(h), int(w)
    return None


def image_mode_of(dataset: Any) -> str:
    """The PIL mode a dataset's images reach its transform in: "L" (gray) or "RGB"."""
    mode = getattr(dataset, "mode", None)  # FileImageDataset
    if mode is not None:
        return str(mode)
    if isinstance(dataset, ArrayImageDataset):
        return "RGB" if dataset.images.ndim == 4 else "L"
    raise ValueError(f"cannot tell the image mode of {type(dataset).__name__}")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """The evaluation transform of a trained model, with the input size it was used at.

    ``transform``/``image_size``/``in_channels``/``normalization``: the arguments of
    :func:`dasl.data.build_transforms` (``train=False``); ``image_mode``: how image files are
    decoded; ``input_size``: ``(H, W)`` of the model's inputs, ``None`` where images keep
    their own size (file datasets under a ``small`` transform without ``image_size``).
    """

    transform: str
    image_size: int | None
    in_channels: int
    image_mode: str
    normalization: Normalization
    input_size: tuple[int, int] | None

    def pipeline(self) -> v2.Compose:
        return normalized_transforms(
            self.transform, False, self.image_size, self.in_channels, self.normalization
        )

    def to_json(self) -> dict[str, Any]:
        """Everything needed to redo the preprocessing, in and outside dasl."""
        summary = summarize(self.pipeline())
        return {
            "image_mode": self.image_mode,
            "in_channels": self.in_channels,
            "input_size": list(self.input_size) if self.input_size is not None else None,
            "value_scale": 255,
            **summary,
            "transform": self.transform,
            "image_size": self.image_size,
            "normalization": [list(m) for m in self.normalization]
            if self.normalization is not None
            else None,
            "steps": [repr(step) for step in self.pipeline().transforms],
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Preprocessing:
        """The preprocessing :meth:`to_json` wrote; ``ValueError`` when it is incomplete or
        when this dasl's transform of that name would compute something else."""
        try:
            norm = record["normalization"]
            size = record["input_size"]
            pre = cls(
                transform=str(record["transform"]),
                image_size=None if record["image_size"] is None else int(record["image_size"]),
                in_channels=int(record["in_channels"]),
                image_mode=str(record["image_mode"]),
                normalization=None
                if norm is None
                else (tuple(float(v) for v in norm[0]), tuple(float(v) for v in norm[1])),
                input_size=None if size is None else (int(size[0]), int(size[1])),
            )
            again = pre.to_json()
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise DataError(
                f"incomplete preprocessing record ({type(exc).__name__}: {exc})"
            ) from None
        changed = [k for k in ("resize", "center_crop", "mean", "std") if again[k] != record.get(k)]
        if changed:
            raise DataError(
                f"the recorded preprocessing differs from what this dasl's {pre.transform!r} "
                f"transform does ({', '.join(changed)})"
            )
        return pre

    def load(self, path: str | Path, note: Callable[[str], None] | None = None) -> torch.Tensor:
        """Image file -> the model's ``(C, H, W)`` input, as the evaluation transform makes it.

        An image whose transformed size differs from ``input_size`` is resized to it (bilinear,
        antialiased; after the per-channel normalization, which commutes with it), with a
        ``note``.
        """
        x = self.pipeline()(load_image(path, self.image_mode))
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            if note is not None:
                h, w = x.shape[-2:]
                ih, iw = self.input_size
                note(f"{path}: resized from {w}x{h} to {iw}x{ih} px, the model's input size")
            x = F.resize(x, list(self.input_size), antialias=True)
        return x


def preprocessing_for(
    transform: str,
    image_size: int | None,
    in_channels: int,
    normalization: Normalization,
    dataset: Any | None = None,
) -> Preprocessing:
    """The evaluation preprocessing of a config, with its input size.

    ``input_size``: the pipeline's fixed output size, else (array datasets, whose images all
    have one size) the size of ``dataset``'s first item, else ``None``. ``image_mode``:
    ``dataset``'s, else what the file readers use ("L" for one channel, else "RGB").
    """
    mode = image_mode_of(dataset) if dataset is not None else ("L" if in_channels == 1 else "RGB")
    pre = Preprocessing(transform, image_size, in_channels, mode, normalization, None)
    size = fixed_output_size(summarize(pre.pipeline()))
    if size is None and isinstance(dataset, ArrayImageDataset) and len(dataset):
        h, w = dataset[0][0].shape[-2:]
        size = (int(h), int(w))
    return dataclasses.replace(pre, input_size=size)
