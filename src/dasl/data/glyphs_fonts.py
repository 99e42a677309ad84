"""Font faces for the ``glyphs`` dataset: which files, which faces, which characters each covers.

Faces come from Debian font packages (their file lists and versions via ``dpkg-query``) or,
when a ``root`` folder is given, from every font file under it. Coverage is each face's
Unicode cmap as fontTools reads it (``getBestCmap``), never guessed; whether a covered glyph
actually has ink is decided later, by rendering it (``glyphs_render``).

Only sfnt files are read (``.ttf``, ``.otf``, ``.ttc``/``.otc`` collections, one face per
collection member): fontTools has no Unicode cmap for Type 1 fonts, and the Type 1 files of
fonts-urw-base35 are the same 35 designs as its OpenType files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools import agl
from fontTools.ttLib import TTCollection, TTFont, TTLibError

from dasl.errors import MissingDataError

# The Debian packages the dataset is rendered from (issue #7; all free licences, see the card).
PACKAGES = (
    "fonts-noto-core",
    "fonts-dejavu-core",
    "fonts-dejavu-extra",
    "fonts-freefont-ttf",
    "fonts-liberation2",
    "fonts-urw-base35",
    "fonts-crosextra-carlito",
    "fonts-crosextra-caladea",
    "fonts-paratype",
)
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
# Letters and decimal digits; modifier letters (Lm) are excluded because scaled to their ink
# box they are copies of the letters they modify (U+02B0 MODIFIER LETTER SMALL H is an h).
CATEGORIES = ("Lu", "Ll", "Lt", "Lo", "Nd")


class MissingFontsError(MissingDataError):
    """A font package (or the font folder) the dataset needs is not there."""


@dataclass(frozen=True)
class Face:
    """One font face: ``path`` (+ ``index`` inside a collection) and the code points it maps."""

    source: str  # the package (or "root") it came from
    path: str
    index: int
    name: str  # "Family Style" from the name table
    cmap: frozenset[int]

    @property
    def key(self) -> str:
        return f"{self.path}#{self.index}"


def install_hint(packages: Iterable[str]) -> str:
    return "apt-get install -y " + " ".join(packages)


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """``{package: version}`` of the installed packages; raises naming the apt command."""
    if shutil.which("dpkg-query") is None:
        raise MissingFontsError(
            "glyphs: dpkg-query not found, so the Debian font packages cannot be located. On "
            f"Debian/Ubuntu run (as root) `{install_hint(packages)}`; elsewhere put the font "
            "files in a folder and pass it as root (data.root)."
        )
    versions, missing = {}, []
    for pkg in packages:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}\t${db:Status-Status}", pkg],
            capture_output=True,
            text=True,
            check=False,
        )
        version, _, status = proc.stdout.partition("\t")
        if proc.returncode != 0 or status.strip() != "installed":
            missing.append(pkg)
        else:
            versions[pkg] = version.strip()
    if missing:
        raise MissingFontsError(
            f"glyphs: font package(s) not installed: {', '.join(missing)}. Install them as "
            f"root with `{install_hint(missing)}` (scripts/bootstrap.sh does this), or pass a "
            "folder of font files as root (data.root)."
        )
    return versions


def package_font_files(packages: Sequence[str] = PACKAGES) -> list[tuple[str, Path]]:
    """``(package, path)`` of every sfnt font file the packages install, sorted by path."""
    files = []
    for pkg in packages:
        proc = subprocess.run(
            ["dpkg-query", "-L", pkg], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise MissingFontsError(
                f"glyphs: cannot list the files of {pkg}: {proc.stderr.strip()}. "
                f"Install it as root with `{install_hint([pkg])}`."
            )
        for line in proc.stdout.splitlines():
            path = Path(line.strip())
            if path.suffix.lower() in FONT_SUFFIXES and path.is_file():
                files.append((pkg, path))
    return sorted(set(files), key=lambda t: str(t[1]))


def folder_font_files(root: Path) -> list[tuple[str, Path]]:
    """``("root", path)`` of every sfnt font file under ``root`` (recursive), sorted."""
    if not root.is_dir():
        raise MissingFontsError(f"glyphs: font folder {root} does not exist")
    files = [
        ("root", p)
        for p in sorted(root.rglob("*"))
        if p.suffix.lower() in FONT_SUFFIXES and p.is_file()
    ]
    if not files:
        raise MissingFontsError(
            f"glyphs: no font files ({', '.join(FONT_SUFFIXES)}) under {root}; pass a folder of "
            f"fonts, or root=None to use the Debian packages ({install_hint(PACKAGES)})"
        )
    return files


def _face_name(font: TTFont) -> str:
    name = font["name"]
    family = name.getBestFamilyName() or "?"
    style = name.getBestSubFamilyName() or ""
    return f"{family} {style}".strip()


def is_symbol_face(cmap: dict[int, str]) -> bool:
    """True for a symbol-encoded face (Dingbats, Symbol): it maps the Basic Latin letters, but
    to glyphs whose names (fontTools: the font's own, or derived from the cmap when it has
    none) are not those letters by the Adobe Glyph List (Symbol's "a" is "alpha")."""
    letters = [cp for cp in (*range(0x41, 0x5B), *range(0x61, 0x7B)) if cp in cmap]
    if not letters:
        return False
    agree = sum(agl.toUnicode(cmap[cp]) == chr(cp) for cp in letters)
    return agree < len(letters) / 2


def read_faces(files: Sequence[tuple[str, Path]]) -> list[Face]:
    """Every face of ``files`` with its Unicode cmap (collections give one face per member).

    Files fontTools cannot parse, faces without a Unicode cmap and symbol-encoded faces
    (:func:`is_symbol_face`) are skipped: they cover nothing the dataset could use.
    """
    faces = []
    for source, path in files:
        try:
            if path.suffix.lower() in (".ttc", ".otc"):
                fonts = list(TTCollection(str(path), lazy=True).fonts)
            else:
                fonts = [TTFont(str(path), lazy=True)]
        except (TTLibError, OSError, AssertionError):
            continue
        for index, font in enumerate(fonts):
            cmap = font.getBestCmap()
            if cmap and not is_symbol_face(cmap):
                faces.append(Face(source, str(path), index, _face_name(font), frozenset(cmap)))
            font.close()
    return faces


def is_candidate(cp: int) -> bool:
    """A letter or decimal digit that is not a compatibility or presentation form.

    Compatibility decompositions (``<font>``, ``<wide>``, ``<isolated>``, ...) mark variants
    of another character (mathematical alphanumerics, fullwidth forms, Arabic presentation
    forms), which would be near-copies of their base class.
    """
    ch = chr(cp)
    return unicodedata.category(ch) in CATEGORIES and not unicodedata.decomposition(ch).startswith(
        "<"
    )


def coverage(faces: Sequence[Face]) -> dict[int, list[int]]:
    """``{code point: [face indices covering it]}`` over candidate code points, sorted."""
    cover: dict[int, list[int]] = {}
    for i, face in enumerate(faces):
        for cp in face.cmap:
            if is_candidate(cp):
                cover.setdefault(cp, []).append(i)
    return {cp: cover[cp] for cp in sorted(cover)}


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 of a font file (the cache key must change when a font changes)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def script_of(cp: int) -> str:
    """The first word of the character's Unicode name (LATIN, GREEK, CYRILLIC, DIGIT, ...)."""
    return unicodedata.name(chr(cp), "UNKNOWN").split(" ")[0]
