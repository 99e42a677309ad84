"""Dataset images as small PNG thumbnails, for inlining in ``report.html``.

The datasets yield, untransformed (``with_transform(None)``), either a float tensor
``(C, H, W)`` in [0, 1] (array-backed grey sets: glyphs, digits, Fashion-MNIST) or a PIL image
(image files, RGB arrays); both become an 8-bit PIL image, shrunk to fit ``size`` pixels.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from dasl.errors import DataError


def to_pil(image: Any) -> Image.Image:
    """A PIL image of a dataset item's raw image (PIL as is; ``(C, H, W)`` / ``(H, W)`` arrays
    in [0, 1] scaled by 255)."""
    if isinstance(image, Image.Image):
        return image
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr[:3], 0, -1)
    if arr.ndim not in (2, 3):
        raise DataError(f"cannot show an image of shape {arr.shape}")
    return Image.fromarray(np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8))


def thumbnail_png(image: Any, size: int = 72) -> bytes:
    """PNG bytes of ``image`` scaled to ``size`` pixels on its longer side (aspect kept;
    small images are enlarged with nearest-neighbour so that pixels stay sharp)."""
    pil = to_pil(image)
    if pil.mode not in ("L", "RGB"):
        pil = pil.convert("RGB")
    w, h = pil.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    buf = io.BytesIO()
    pil.resize(new, resample).save(buf, format="PNG")
    return buf.getvalue()
