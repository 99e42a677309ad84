"""The ``glyphs`` dataset: characters rendered from font faces, cached, as a class-disjoint catalog.

Classes are characters, instances are the distinct faces that render them
(``glyphs_build`` has the rules). The rendered set is cached under
``$XDG_CACHE_HOME/dasl/glyphs/<key>/`` (default ``~/.cache``) as ``glyphs.npz``
(``np.savez_compressed``) plus ``manifest.json``; ``<key>`` hashes everything the images
depend on (renderer version, size, options, package versions, each font file's path, size and
mtime, Pillow/FreeType/fontTools versions), so a changed font or option builds a new cache.

``root``: ``None`` renders the Debian packages of ``glyphs_fonts.PACKAGES``; a folder renders
every font file under it instead (the cache stays in the user cache directory); a folder
holding a rendered cache itself (``glyphs.npz`` + ``manifest.json``, copied from another
machine: ``python -m benchmarks.ship_glyph_cache``) is read as it is, no fonts needed, if it
was rendered with the options asked for.

Split (hash-free, documented in docs/DATA-glyphs.md): classes sorted by code point get ranks
``r = 0, 1, ...``; even ranks are training classes, odd ranks test classes. The catalog lists
classes ordered by ``(r mod 20, r)``, so the class-wise validation carve-out (the last
``ceil(0.1 * C_train)`` training classes, ``val_by="classes"``, the default here) takes every
tenth training class in code-point order, spread over all scripts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dasl.data.catalog import Catalog, Pool
from dasl.data.glyphs_build import MIN_FACES, build_glyph_set
from dasl.data.glyphs_fonts import (
    PACKAGES,
    folder_font_files,
    package_font_files,
    package_versions,
    read_faces,
)
from dasl.data.glyphs_render import RENDERER_VERSION
from dasl.errors import ConfigError, DataError
from dasl.utils.io import atomic_write_bytes, atomic_write_json

FORMAT = 1
_MEMO: dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]] = {}


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/dasl/glyphs`` (``~/.cache/dasl/glyphs`` when it is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "dasl" / "glyphs"


def _versions() -> dict[str, str]:
    import fontTools
    import PIL
    from PIL import features

    return {
        "renderer": str(RENDERER_VERSION),
        "format": str(FORMAT),
        "pillow": PIL.__version__,
        "freetype": str(features.version("freetype2")),
        "fonttools": fontTools.version,
        "numpy_major": np.__version__.split(".")[0],
    }


def source_description(root: str | Path | None) -> dict[str, Any]:
    """What the images depend on, cheap to compute (no font parsing): the cache key's input."""
    if root is None:
        packages = package_versions(PACKAGES)
        files = package_font_files(PACKAGES)
    else:
        packages = {}
        files = folder_font_files(Path(root).expanduser().resolve())
    font_files = []
    for source, path in files:
        st = path.stat()
        font_files.append(
            {"source": source, "path": str(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
        )
    return {"packages": packages, "font_files": font_files, "versions": _versions()}


CACHE_FILES = ("glyphs.npz", "manifest.json")


def is_rendered_cache(root: str | Path | None) -> bool:
    """Whether ``root`` is a folder holding a rendered glyph cache (:data:`CACHE_FILES`)."""
    if root is None:
        return False
    folder = Path(root).expanduser()
    return all((folder / name).is_file() for name in CACHE_FILES)


def glyphs_available(root: str | Path | None = None) -> bool:
    """Whether ``glyphs`` can be built here: its font packages are installed (one
    ``dpkg-query`` call), or ``root`` is a folder holding font files or a rendered cache."""
    if is_rendered_cache(root):
        return True
    if root is not None:
        try:
            return bool(folder_font_files(Path(root).expanduser().resolve()))
        except (FileNotFoundError, NotADirectoryError):
            return False
    if shutil.which("dpkg-query") is None:
        return False
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status}\n", *PACKAGES],
        capture_output=True,
        text=True,
        check=False,
    )
    states = proc.stdout.split()
    return proc.returncode == 0 and states == ["installed"] * len(PACKAGES)


def cache_key(description: dict[str, Any], options: dict[str, Any]) -> str:
    blob = json.dumps({"source": description, "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_cache(folder: Path, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    manifest_path, data_path = folder / "manifest.json", folder / "glyphs.npz"
    if not (manifest_path.is_file() and data_path.is_file()):
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("key") != key:
            return None
        with np.load(data_path) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache is rebuilt, never trusted
    if len(arrays.get("images", ())) != manifest.get("counts", {}).get("images"):
        return None
    return manifest, arrays


def build_cache(
    root: str | Path | None,
    size: int,
    min_faces: int,
    code_points: Sequence[int] | None,
    workers: int | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The rendered set for these options: from the cache, else rendered and cached."""
    options = {
        "size": size,
        "min_faces": min_faces,
        "code_points": None if code_points is None else sorted(set(code_points)),
    }
    if root is not None and is_rendered_cache(root):
        return _read_shipped(Path(root).expanduser(), options)
    description = source_description(root)
    key = cache_key(description, options)
    if key in _MEMO:
        return _MEMO[key]
    folder = cache_root() / key
    cached = _read_cache(folder, key)
    if cached is None:
        cached = _render_and_store(folder, key, root, description, options, workers)
    _MEMO.clear()  # one dataset in memory at a time: they are ~100 MB
    _MEMO[key] = cached
    return cached


def _read_shipped(
    folder: Path, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A rendered cache copied from elsewhere: trusted for its fonts (they may be absent
    here), checked for the rendering options and its own completeness."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    cached = _read_cache(folder, str(manifest.get("key")))
    if cached is None:
        raise DataError(
            f"glyphs: {folder} holds an incomplete or damaged rendered cache; copy "
            "glyphs.npz and manifest.json again"
        )
    if manifest.get("options") != options:
        raise DataError(
            f"glyphs: the rendered cache in {folder} was made with {manifest.get('options')}, "
            f"this run asks for {options}; ship the cache rendered with these options"
        )
    return cached


def _render_and_store(
    folder: Path,
    key: str,
    root: str | Path | None,
    description: dict[str, Any],
    options: dict[str, Any],
    workers: int | None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    start = time.perf_counter()
    files = [(f["source"], Path(f["path"])) for f in description["font_files"]]
    faces = read_faces(files)
    gs = build_glyph_set(
        faces,
        options["size"],
        options["min_faces"],
        options["code_points"],
        workers,
        report=lambda line: print(line, flush=True),
    )
    seconds = time.perf_counter() - start
    print(f"glyphs: {len(gs.images)} images rendered in {seconds:.0f} s, cached in {folder}")
    classes, per_class = np.unique(gs.code_points, return_counts=True)
    arrays = {
        "images": gs.images,
        "code_points": gs.code_points.astype(np.int32),
        "face_index": gs.face_index.astype(np.int32),
    }
    manifest = {
        "key": key,
        "created_by": f"dasl glyphs v{RENDERER_VERSION}, python {platform.python_version()}",
        "options": options,
        **description,
        "faces": [
            {"path": f.path, "index": f.index, "name": f.name, "source": f.source} for f in faces
        ],
        "counts": {
            "images": len(gs.images),
            "classes": len(classes),
            "faces": len(faces),
            "faces_per_class_min": int(per_class.min()) if len(classes) else 0,
            "faces_per_class_median": float(np.median(per_class)) if len(classes) else 0.0,
            "faces_per_class_max": int(per_class.max()) if len(classes) else 0,
        },
        "class_code_points": classes.tolist(),
        "rules": gs.stats,
        "render_seconds": round(seconds, 1),
    }
    buffer = io.BytesIO()
    np.savez_compressed(  # by name: a **mapping could hold numpy's allow_pickle flag
        buffer,
        images=arrays["images"],
        code_points=arrays["code_points"],
        face_index=arrays["face_index"],
    )
    atomic_write_bytes(folder / "glyphs.npz", buffer.getvalue())
    atomic_write_json(folder / "manifest.json", manifest)  # written last: marks the cache complete
    return manifest, arrays


def class_name(cp: int) -> str:
    """``"U+0041 A"``: the code point and the character."""
    return f"U+{cp:04X} {chr(cp)}"


def split_classes(code_points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(catalog order, train mask, test mask)`` over classes sorted by code point.

    Rank ``r`` in code-point order: train if ``r`` is even, test if odd; catalog order sorts by
    ``(r mod 20, r)`` (see the module docstring).
    """
    ranks = np.arange(len(code_points))
    order = np.lexsort((ranks, ranks % 20))
    return order, ranks % 2 == 0, ranks % 2 == 1


def read_glyphs(
    root: str | Path | None,
    size: int | None = None,
    min_faces: int | None = None,
    code_points: Sequence[int] | None = None,
) -> Catalog:
    """The glyphs catalog: ``train``/``test`` pools of class-disjoint characters."""
    size = 32 if size is None else int(size)
    min_faces = MIN_FACES if min_faces is None else int(min_faces)
    if size < 8:
        raise ConfigError(f"glyphs: size must be >= 8 pixels, got {size}")
    if min_faces < 1:
        raise ConfigError(f"glyphs: min_faces must be >= 1, got {min_faces}")
    manifest, arrays = build_cache(root, size, min_faces, code_points)
    classes = np.asarray(manifest["class_code_points"], dtype=np.int64)
    if classes.size < 2:
        raise DataError(
            f"glyphs: only {classes.size} character(s) have >= {min_faces} faces; the "
            "class-disjoint split needs at least 2 (more fonts, or a smaller min_faces)"
        )
    order, train_mask, test_mask = split_classes(classes)
    catalog_cp = classes[order]  # catalog class index -> code point
    index_of = np.empty(classes.size, dtype=np.int64)
    index_of[order] = np.arange(classes.size)
    class_idx = index_of[np.searchsorted(classes, arrays["code_points"])]
    pools = {}
    for split, mask in (("train", train_mask), ("test", test_mask)):
        wanted = np.isin(arrays["code_points"], classes[mask])
        rows = np.flatnonzero(wanted)
        pools[split] = Pool(rows, class_idx[rows])
    counts = manifest["counts"]
    return Catalog(
        "glyphs",
        [class_name(int(cp)) for cp in catalog_cp],
        pools,
        images=arrays["images"],
        max_value=255.0,
        default_val_by="classes",
        notes=[
            f"{counts['classes']:,} characters from {counts['faces']:,} font faces, "
            f"{counts['faces_per_class_min']}-{counts['faces_per_class_max']} faces per class "
            f"(median {counts['faces_per_class_median']:g}), {size}x{size} px; "
            f"cache {cache_root() / manifest['key']}"
        ],
    )
