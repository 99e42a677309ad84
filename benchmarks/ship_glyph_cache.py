"""Copy the rendered glyph cache of the demo into the repository tree, for a GPU machine.

A lent GPU machine may have no font packages, so ``glyphs`` cannot be rendered there; the
rendered set (``~/.cache/dasl/glyphs/<key>/glyphs.npz`` + ``manifest.json``, ~26 MB) can be
shipped instead. This renders it first when this machine has no cache yet, copies both files
to ``DEST`` (default ``.gl/glyphs``, ignored by git) and prints the ``gpu_suite`` option that
uses it:

    .venv/bin/python -m benchmarks.ship_glyph_cache [DEST]
    # on the device (carry .gl): python -m benchmarks.gpu_suite --out DIR --glyph-cache .gl/glyphs
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from dasl.data.glyphs import (
    CACHE_FILES,
    MIN_FACES,
    cache_key,
    cache_root,
    glyphs_available,
    read_glyphs,
    source_description,
)

#: The demo's rendering options (src/dasl/configs/default.yaml leaves glyphs' defaults).
DEMO_OPTIONS = {"size": 32, "min_faces": MIN_FACES, "code_points": None}


def ship(dest: Path) -> Path:
    """Copy the demo's rendered cache to ``dest`` (rendered first if absent); returns ``dest``."""
    read_glyphs(None)  # from the cache, or rendered into it
    folder = cache_root() / cache_key(source_description(None), DEMO_OPTIONS)
    dest.mkdir(parents=True, exist_ok=True)
    for name in CACHE_FILES:  # the manifest last: it marks the copy complete
        tmp = dest / f".{name}.part"
        shutil.copyfile(folder / name, tmp)
        tmp.replace(dest / name)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dest", nargs="?", default=".gl/glyphs", type=Path)
    a = p.parse_args(argv)
    if not glyphs_available():
        print(
            "ship_glyph_cache: the glyphs font packages are not installed here, so there is "
            "no cache to ship; run scripts/bootstrap.sh (as root) first",
            file=sys.stderr,
        )
        return 2
    dest = ship(a.dest)
    size = sum((dest / n).stat().st_size for n in CACHE_FILES) / 2**20
    print(f"copied the rendered glyphs ({size:.1f} MiB) to {dest}; use --glyph-cache {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
