"""Building the ``glyphs`` dataset: which characters become classes, and their images.

The rules, in order (docs/DATA-glyphs.md explains them):

1. Candidates: letters and decimal digits (``glyphs_fonts.is_candidate``) that NFC leaves
   unchanged (OHM SIGN is Omega) and that at least ``min_faces`` faces map in their cmap.
2. Scripts (first word of the Unicode name: LATIN, GREEK, CYRILLIC, ...): a script is kept
   when the median cmap coverage of its candidates is at least ``2 * min_faces`` faces, so
   scripts seen in only a handful of (mostly sibling) faces do not dilute the set.
3. Rendering (``glyphs_render``): one image per (character, face); no-ink and ``.notdef``
   renderings are dropped.
4. Homoglyphs, by measured rendering similarity: two renderings in the same face are
   *near-identical* when their relative L1 difference is below ``NEAR_TOL``. Two characters
   are homoglyphs when they are near-identical in at least ``HOMOGLYPH_FRACTION`` of the faces
   that render both (Latin A / Greek Alpha / Cyrillic A). Of each connected group of
   homoglyphs one character is kept: the one with the most distinct renderings, then the
   lowest code point.
5. Stray look-alikes: where two kept characters are near-identical in some face (a face that
   draws ł as a plain l), that face's image is dropped from the higher code point.
6. Duplicates: faces rendering a character to the same bytes give one image (first face in
   face order).
7. A character is a class when at least ``min_faces`` images remain.

Rendering runs one face per task in a process pool (the faces are independent); results are
assembled in face order, so the output does not depend on scheduling.
"""

from __future__ import annotations

import os
import statistics
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dasl.data.glyphs_fonts import Face, coverage, script_of
from dasl.data.glyphs_render import near_identical_pairs, render_face, unique_rows

NEAR_TOL = 0.02
HOMOGLYPH_FRACTION = 0.1
MIN_FACES = 8


@dataclass
class GlyphSet:
    """Images ``(N, size, size)`` uint8 with the code point and face index of each."""

    images: np.ndarray
    code_points: np.ndarray
    face_index: np.ndarray
    stats: dict[str, object] = field(default_factory=dict)


@dataclass
class FaceResult:
    code_points: list[int]
    images: np.ndarray
    notdef: int
    empty: int
    near: list[tuple[int, int]]  # code point pairs (lower first) near-identical in this face


def candidate_code_points(
    faces: Sequence[Face], min_faces: int, only: Sequence[int] | None = None
) -> tuple[list[int], dict[str, object]]:
    """Rules 1-2: the code points worth rendering, and what the rules removed."""
    cover = coverage(faces)
    allowed = None if only is None else set(only)
    counts = {
        cp: len(fs)
        for cp, fs in cover.items()
        if len(fs) >= min_faces
        and unicodedata.normalize("NFC", chr(cp)) == chr(cp)
        and (allowed is None or cp in allowed)
    }
    by_script: dict[str, list[int]] = defaultdict(list)
    for cp, n in counts.items():
        by_script[script_of(cp)].append(n)
    scripts = sorted(s for s, ns in by_script.items() if statistics.median(ns) >= 2 * min_faces)
    kept = sorted(cp for cp in counts if script_of(cp) in scripts)
    info = {
        "candidates_covered": len(counts),
        "scripts_kept": scripts,
        "scripts_dropped": sorted(set(by_script) - set(scripts)),
        "candidates_in_kept_scripts": len(kept),
    }
    return kept, info


def _render_task(args: tuple[str, int, list[int], int, float]) -> FaceResult:
    path, index, cps, size, tol = args
    kept, images, notdef = render_face(path, index, cps, size)
    near = [(kept[i], kept[j]) for i, j in near_identical_pairs(images, tol)]
    return FaceResult(kept, images, notdef, len(cps) - len(kept) - notdef, near)


def _reported(
    results: Iterable[FaceResult], n: int, report: Callable[[str], None] | None, every_s: float
) -> list[FaceResult]:
    """``results`` as a list, with a line to ``report`` every ``every_s`` seconds (#16: the
    first rendering took 83 s without a word)."""
    out: list[FaceResult] = []
    start = last = time.perf_counter()
    for res in results:
        out.append(res)
        now = time.perf_counter()
        if report is not None and now - last >= every_s and len(out) < n:
            last = now
            left = (now - start) / len(out) * (n - len(out))
            report(f"glyphs: rendered {len(out)} of {n} font faces, about {left:.0f} s left")
    return out


def render_all(
    faces: Sequence[Face],
    code_points: Sequence[int],
    size: int,
    workers: int,
    report: Callable[[str], None] | None = None,
    every_s: float = 5.0,
) -> list[FaceResult]:
    """Rule 3 for every face (one task per face), in face order."""
    wanted = set(code_points)
    tasks = [(f.path, f.index, sorted(wanted & f.cmap), size, NEAR_TOL) for f in faces]
    if report is not None:
        report(
            f"glyphs: rendering {len(code_points)} characters from {len(tasks)} font faces "
            f"with {workers} process(es) (first use only: the result is cached)"
        )
    if workers <= 1:
        return _reported(map(_render_task, tasks), len(tasks), report, every_s)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return _reported(pool.map(_render_task, tasks, chunksize=4), len(tasks), report, every_s)


def _find(parent: dict[int, int], x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def homoglyph_groups(
    faces_of: dict[int, set[int]], near_faces: dict[tuple[int, int], set[int]]
) -> tuple[list[tuple[int, int, float]], list[list[int]]]:
    """Rule 4: homoglyph pairs ``(a, b, fraction)`` and their connected groups (size >= 2)."""
    pairs = []
    parent = {cp: cp for cp in faces_of}
    for (a, b), fs in sorted(near_faces.items()):
        shared = len(faces_of[a] & faces_of[b])
        frac = len(fs) / shared if shared else 0.0
        if frac >= HOMOGLYPH_FRACTION:
            pairs.append((a, b, frac))
            ra, rb = _find(parent, a), _find(parent, b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for cp in faces_of:
        groups[_find(parent, cp)].append(cp)
    return pairs, sorted(sorted(g) for g in groups.values() if len(g) > 1)


def build_glyph_set(
    faces: Sequence[Face],
    size: int,
    min_faces: int = MIN_FACES,
    only: Sequence[int] | None = None,
    workers: int | None = None,
    report: Callable[[str], None] | None = None,
) -> GlyphSet:
    """Rules 1-7 over ``faces``: the images of every class, sorted by (code point, face).
    ``report`` receives progress lines while rendering."""
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    cps, stats = candidate_code_points(faces, min_faces, only)
    results = render_all(faces, cps, size, workers, report)
    if report is not None:
        report("glyphs: merging homoglyphs and duplicate renderings")

    renders: dict[int, dict[int, np.ndarray]] = defaultdict(dict)  # cp -> face -> image
    near_faces: dict[tuple[int, int], set[int]] = defaultdict(set)
    for fi, res in enumerate(results):
        for cp, image in zip(res.code_points, res.images, strict=True):
            renders[cp][fi] = image
        for a, b in res.near:
            near_faces[(min(a, b), max(a, b))].add(fi)
    faces_of = {cp: set(by_face) for cp, by_face in renders.items()}

    def distinct(cp: int) -> int:
        return len(unique_rows(renders[cp][f] for f in sorted(renders[cp])))

    pairs, groups = homoglyph_groups(faces_of, near_faces)
    dropped_homoglyphs: dict[int, int] = {}  # dropped cp -> the cp kept for its group
    for group in groups:
        winner = min(group, key=lambda cp: (-distinct(cp), cp))
        dropped_homoglyphs.update({cp: winner for cp in group if cp != winner})

    stray = 0
    for (a, b), fs in near_faces.items():
        if a in dropped_homoglyphs or b in dropped_homoglyphs:
            continue
        for fi in fs:
            if renders[b].pop(fi, None) is not None:  # b > a: the higher code point loses it
                stray += 1

    images: list[np.ndarray] = []
    code_points: list[int] = []
    face_index: list[int] = []
    too_few = []
    for cp in sorted(renders):
        if cp in dropped_homoglyphs:
            continue
        order = sorted(renders[cp])
        keep = [order[i] for i in unique_rows(renders[cp][f] for f in order)]
        if len(keep) < min_faces:
            too_few.append(cp)
            continue
        images += [renders[cp][f] for f in keep]
        code_points += [cp] * len(keep)
        face_index += keep
    stats.update(
        {
            "renderings": sum(len(r.code_points) for r in results),
            "rejected_notdef": sum(r.notdef for r in results),
            "rejected_no_ink": sum(r.empty for r in results),
            "homoglyph_pairs": [[a, b, round(f, 4)] for a, b, f in pairs],
            "homoglyphs_dropped": {str(k): v for k, v in sorted(dropped_homoglyphs.items())},
            "stray_lookalike_images_dropped": stray,
            "classes_below_min_faces": len(too_few),
        }
    )
    size_ = (0, size, size)
    return GlyphSet(
        np.stack(images) if images else np.zeros(size_, np.uint8),
        np.asarray(code_points, dtype=np.int64),
        np.asarray(face_index, dtype=np.int64),
        stats,
    )
