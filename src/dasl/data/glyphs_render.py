"""Rendering one character of one face to a ``size x size`` grayscale image (Pillow/FreeType).

Each glyph is drawn at a font size of ``RENDER_SCALE * size`` pixels with Pillow's basic
layout engine (no shaping library: the same bytes whether or not libraqm is installed), cropped
to its ink bounding box (pixels > 0), scaled with its aspect ratio kept so that its longer side
is ``size - 2 * pad`` pixels (``pad = max(1, size // 16)``), and pasted centred on a black
canvas (ink is white, 0..255). Area averaging (``BOX``) when shrinking, bilinear when growing.

Two checks make sure an image shows the character the cmap promises: it must have ink
(at least one pixel >= ``MIN_INK``), and it must differ from the face's ``.notdef`` glyph
rendered the same way (some fonts map code points to a box-shaped placeholder).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RENDERER_VERSION = 2  # bump when rendering or the class rules change: part of the cache key
RENDER_SCALE = 4
MIN_INK = 128
# A code point no font here maps (plane-16 private use): drawing it draws glyph 0, .notdef.
NOTDEF_PROBE = 0x10FFFD


@lru_cache(maxsize=4)
def load_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    """The face at ``RENDER_SCALE * size`` px with the basic (shaping-free) layout engine."""
    return ImageFont.truetype(
        path, size=RENDER_SCALE * size, index=index, layout_engine=ImageFont.Layout.BASIC
    )


def ink_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(left, top, right, bottom)`` (exclusive) of the pixels > 0, or None if there are none."""
    rows = np.flatnonzero(pixels.any(axis=1))
    cols = np.flatnonzero(pixels.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def draw_raw(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    """``text`` drawn white on black on a canvas that holds its whole bounding box."""
    # whole pixels (what Image.new takes); Pillow's stub types the box as floats
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    margin = 2
    width, height = max(right - left, 1) + 2 * margin, max(bottom - top, 1) + 2 * margin
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).text((margin - left, margin - top), text, font=font, fill=255)
    return np.asarray(canvas)


def fit_to_box(pixels: np.ndarray, size: int) -> np.ndarray | None:
    """Crop ``pixels`` to its ink box, scale it into ``size - 2*pad`` keeping the aspect ratio,
    and centre it on a ``size x size`` black canvas; None when there is no ink."""
    box = ink_box(pixels)
    if box is None:
        return None
    left, top, right, bottom = box
    crop = Image.fromarray(np.ascontiguousarray(pixels[top:bottom, left:right]))
    pad = max(1, size // 16)
    inner = size - 2 * pad
    w, h = crop.size
    scale = inner / max(w, h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    scaled = crop.resize((new_w, new_h), method)
    out = Image.new("L", (size, size), 0)
    out.paste(scaled, ((size - new_w) // 2, (size - new_h) // 2))
    return np.asarray(out)


def render_glyph(font: ImageFont.FreeTypeFont, cp: int, size: int) -> np.ndarray | None:
    """Character ``cp`` of ``font`` as a ``(size, size)`` uint8 image, or None without ink."""
    image = fit_to_box(draw_raw(font, chr(cp)), size)
    if image is None or image.max() < MIN_INK:
        return None
    return image


def render_face(
    path: str, index: int, code_points: Sequence[int], size: int
) -> tuple[list[int], np.ndarray, int]:
    """Render ``code_points`` in one face, keeping those with ink that are not ``.notdef``.

    Returns ``(kept code points, images (n, size, size) uint8, number rejected as .notdef)``.
    """
    font = load_font(path, index, size)
    notdef = render_glyph(font, NOTDEF_PROBE, size)
    kept, images, rejected = [], [], 0
    for cp in code_points:
        image = render_glyph(font, cp, size)
        if image is None:
            continue
        if notdef is not None and np.array_equal(image, notdef):
            rejected += 1
            continue
        kept.append(cp)
        images.append(image)
    stack = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    return kept, stack, rejected


def render_notdef(path: str, index: int, size: int) -> np.ndarray | None:
    """The face's ``.notdef`` glyph rendered like a character (None if it has no ink)."""
    return render_glyph(load_font(path, index, size), NOTDEF_PROBE, size)


def unique_rows(images: Iterable[np.ndarray]) -> list[int]:
    """Indices of the first occurrence of each distinct image (exact bytes)."""
    seen: set[bytes] = set()
    keep = []
    for i, image in enumerate(images):
        key = image.tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def near_identical_pairs(images: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of images whose relative L1 difference
    ``sum|a - b| / max(sum a, sum b)`` is below ``tol``.

    Candidates come from the Gram matrix through the bound ``||a - b||_2^2 <= 255 ||a - b||_1``
    (pixels in 0..255), which no near-identical pair can fail; the exact L1 test runs on them.
    """
    n = len(images)
    if n < 2:
        return []
    flat = images.reshape(n, -1)
    x = flat.astype(np.float32)
    ink = x.sum(axis=1, dtype=np.float64)
    sq = (x * x).sum(axis=1, dtype=np.float64)
    gram = (x @ x.T).astype(np.float64)
    d2 = sq[:, None] + sq[None, :] - 2.0 * gram
    bound = 255.0 * tol * np.maximum(ink[:, None], ink[None, :])
    # slack for float32 rounding in the Gram matrix; the exact test below decides
    cand = np.argwhere(np.triu(d2 <= bound * 1.01 + 1e-3 * sq.max(), k=1))
    pairs = []
    signed = flat.astype(np.int32)
    for i, j in cand:
        diff = np.abs(signed[i] - signed[j]).sum()
        if diff < tol * max(ink[i], ink[j]):
            pairs.append((int(i), int(j)))
    return pairs
