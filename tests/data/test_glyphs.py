"""The glyphs dataset on a real 20-face font folder (Liberation 2 + Carlito/Caladea).

The folder holds symlinks to fonts that scripts/bootstrap.sh installs; the whole-archive
counts (373 faces, about 2,000 classes, a minute and a half of rendering) are checked by
benchmarks/glyphs_testbed.py, not here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from dasl.cli.main import main
from dasl.data import check_dataset, load_dataset
from dasl.data import glyphs as glyphs_mod
from dasl.data.glyphs_build import (
    HOMOGLYPH_FRACTION,
    build_glyph_set,
    homoglyph_groups,
)
from dasl.data.glyphs_fonts import (
    MissingFontsError,
    folder_font_files,
    is_candidate,
    package_versions,
    read_faces,
)
from dasl.data.glyphs_render import (
    near_identical_pairs,
    render_face,
    render_notdef,
)

FONT_DIRS = ("/usr/share/fonts/truetype/liberation2", "/usr/share/fonts/truetype/crosextra")
FONTS = sorted(p for d in FONT_DIRS if Path(d).is_dir() for p in Path(d).glob("*.ttf"))
pytestmark = pytest.mark.skipif(
    len(FONTS) < 20,
    reason="needs fonts-liberation2 and fonts-crosextra-carlito/-caladea (scripts/bootstrap.sh)",
)
LATIN = [*range(0x30, 0x3A), *range(0x41, 0x5B), *range(0x61, 0x7B)]
GREEK_CYRILLIC = [*range(0x391, 0x3AA), *range(0x3B1, 0x3CA), *range(0x410, 0x450)]
SMALL = LATIN + GREEK_CYRILLIC


@pytest.fixture(scope="session")
def font_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fonts")
    for path in FONTS:
        (folder / path.name).symlink_to(path)
    return folder


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def cache_env(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir))
    return cache_dir


@pytest.fixture(scope="session")
def faces(font_dir: Path):
    return read_faces(folder_font_files(font_dir))


@pytest.fixture(scope="session")
def small_set(faces):
    return build_glyph_set(faces, 32, only=SMALL, workers=1)


def test_renderer_is_deterministic_and_independent_of_workers(faces, small_set) -> None:
    again = build_glyph_set(faces, 32, only=SMALL, workers=2)
    assert again.images.tobytes() == small_set.images.tobytes()
    assert np.array_equal(again.code_points, small_set.code_points)
    assert np.array_equal(again.face_index, small_set.face_index)
    face = faces[0]
    a = render_face(face.path, face.index, LATIN, 32)[1]
    b = render_face(face.path, face.index, LATIN, 32)[1]
    assert a.tobytes() == b.tobytes()


def test_images_have_ink_and_are_not_notdef(faces, small_set) -> None:
    assert small_set.images.shape[1:] == (32, 32)
    assert (small_set.images.reshape(len(small_set.images), -1).max(axis=1) >= 128).all()
    boxes = 0
    for fi, face in enumerate(faces):
        notdef = render_notdef(face.path, face.index, 32)
        if notdef is None:  # an empty .notdef: the ink check above covers those faces
            continue
        boxes += 1
        mine = small_set.images[small_set.face_index == fi]
        assert not (mine == notdef).all(axis=(1, 2)).any(), face.name
    assert boxes >= 10
    # a character the face lacks draws .notdef: render_face must reject it
    face = faces[0]
    kept, images, rejected = render_face(face.path, face.index, [0x4E00, 0x41], 32)
    assert kept == [0x41] and rejected == 1 and len(images) == 1


def test_glyph_is_centred_and_fills_the_box(faces) -> None:
    face = faces[0]
    _, images, _ = render_face(face.path, face.index, [ord("H")], 32)
    h = images[0]
    rows, cols = np.flatnonzero(h.any(axis=1)), np.flatnonzero(h.any(axis=0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 == 28  # 32 - 2 * pad
    assert abs((rows[0] + rows[-1]) / 2 - 15.5) <= 1 and abs((cols[0] + cols[-1]) / 2 - 15.5) <= 1


def test_classes_meet_the_rules(small_set) -> None:
    cps, counts = np.unique(small_set.code_points, return_counts=True)
    assert counts.min() >= 8
    assert all(is_candidate(int(cp)) for cp in cps)
    for cp in cps:  # duplicates (same bytes) were removed within each class
        rows = small_set.images[small_set.code_points == cp]
        assert len({r.tobytes() for r in rows}) == len(rows)
    # homoglyphs: Latin A stays, Greek Alpha and Cyrillic A (same outlines) are dropped
    assert ord("A") in cps and 0x391 not in cps and 0x410 not in cps
    dropped = small_set.stats["homoglyphs_dropped"]
    assert dropped[str(0x391)] == ord("A") and dropped[str(0x410)] == ord("A")
    # distinct Greek/Cyrillic letters survive
    assert 0x3A9 in cps and 0x416 in cps  # Omega, Zhe


def test_no_two_kept_classes_are_near_identical_in_any_face(small_set) -> None:
    by_cp: dict[int, dict[int, np.ndarray]] = {}
    for image, cp, fi in zip(
        small_set.images, small_set.code_points, small_set.face_index, strict=True
    ):
        by_cp.setdefault(int(cp), {})[int(fi)] = image.astype(np.float64)
    cps = sorted(by_cp)
    for i, a in enumerate(cps):  # slow reference: explicit loops over pairs and faces
        for b in cps[i + 1 :]:
            shared = sorted(set(by_cp[a]) & set(by_cp[b]))
            if not shared:
                continue
            x = np.stack([by_cp[a][f] for f in shared])
            y = np.stack([by_cp[b][f] for f in shared])
            ink = np.maximum(x.sum(axis=(1, 2)), y.sum(axis=(1, 2)))
            near = int((np.abs(x - y).sum(axis=(1, 2)) < 0.02 * ink).sum())
            assert near == 0, (chr(a), chr(b), near, len(shared))


def test_near_identical_pairs_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(6, 8, 8)).astype(np.uint8)
    images = np.concatenate([base, base[:3] ^ (rng.random((3, 8, 8)) < 0.01).astype(np.uint8)])
    got = set(near_identical_pairs(images, 0.02))
    want = set()
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            a, b = images[i].astype(np.float64), images[j].astype(np.float64)
            if np.abs(a - b).sum() < 0.02 * max(a.sum(), b.sum()):
                want.add((i, j))
    assert got == want and {(0, 6), (1, 7), (2, 8)} <= got


def test_homoglyph_groups_threshold_and_components() -> None:
    faces_of = {1: set(range(10)), 2: set(range(10)), 3: set(range(10)), 4: set(range(10))}
    near = {(1, 2): {0}, (2, 3): {0, 1, 2}, (3, 4): set()}  # 1/10 and 3/10 of shared faces
    pairs, groups = homoglyph_groups(faces_of, near)
    assert HOMOGLYPH_FRACTION == 0.1
    assert [(a, b) for a, b, _ in pairs] == [(1, 2), (2, 3)]
    assert groups == [[1, 2, 3]]


def test_splits_are_class_disjoint(font_dir: Path, cache_env: Path) -> None:
    kw = {"code_points": SMALL}
    train = load_dataset("glyphs", font_dir, "train", **kw)
    sub = load_dataset("glyphs", font_dir, "subtrain", **kw)
    val = load_dataset("glyphs", font_dir, "val", **kw)
    test = load_dataset("glyphs", font_dir, "test", **kw)
    names = {s: set(d.class_names) for s, d in (("tv", train), ("t", sub), ("v", val), ("x", test))}
    assert names["tv"].isdisjoint(names["x"])
    assert names["v"] <= names["tv"] and names["t"] <= names["tv"]
    assert names["v"].isdisjoint(names["t"]) and names["v"] | names["t"] == names["tv"]
    assert len(sub) + len(val) == len(train)
    # even ranks in code-point order train, odd ranks test
    all_cps = sorted(int(n.split()[0][2:], 16) for n in names["tv"] | names["x"])
    train_cps = {int(n.split()[0][2:], 16) for n in names["tv"]}
    assert train_cps == set(all_cps[0::2])
    image, label = test[0]
    assert image.shape == (1, 32, 32) and 0 <= label < test.num_classes
    assert float(image.max()) == 1.0


def test_cache_is_reused_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_env = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_env))
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for path in FONTS[:9]:
        (fonts / path.name).write_bytes(path.read_bytes())
    kw = {"code_points": LATIN, "min_faces": 4, "size": 16}
    first = load_dataset("glyphs", fonts, "test", **kw)
    folders = sorted((cache_env / "dasl" / "glyphs").iterdir())
    assert len(folders) == 1
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["counts"]["faces"] == 9 and manifest["options"]["size"] == 16

    def no_render(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    glyphs_mod._MEMO.clear()
    with monkeypatch.context() as m:
        m.setattr(glyphs_mod, "build_glyph_set", no_render)
        again = load_dataset("glyphs", fonts, "test", **kw)
    assert np.array_equal(first.labels, again.labels)

    # a changed font file changes the key: a new cache is rendered next to the old one
    glyphs_mod._MEMO.clear()
    st = (fonts / FONTS[0].name).stat()
    os.utime(fonts / FONTS[0].name, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    calls = []
    real = glyphs_mod.build_glyph_set
    monkeypatch.setattr(
        glyphs_mod, "build_glyph_set", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    load_dataset("glyphs", fonts, "test", **kw)
    assert calls == [1]
    assert len(list((cache_env / "dasl" / "glyphs").iterdir())) == len(folders) + 1

    # a damaged cache is rebuilt, not trusted
    glyphs_mod._MEMO.clear()
    newest = max((cache_env / "dasl" / "glyphs").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    (newest / "glyphs.npz").write_bytes(b"not a zip")
    load_dataset("glyphs", fonts, "test", **kw)
    assert calls == [1, 1]


def test_missing_fonts_are_a_clear_error(tmp_path: Path, capsys, monkeypatch, cache_env) -> None:
    with pytest.raises(MissingFontsError, match="apt-get install -y fonts-no-such-package"):
        package_versions(["fonts-no-such-package"])
    monkeypatch.setattr(glyphs_mod, "PACKAGES", ("fonts-no-such-package",))
    assert main(["data", "check", "glyphs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install -y fonts-no-such-package" in err[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "check", "glyphs", "--root", str(empty)]) == 2
    assert "no font files" in capsys.readouterr().err


def test_data_check_prints_counts(font_dir: Path, cache_env: Path, small_set) -> None:
    report = check_dataset("glyphs", font_dir, code_points=SMALL)
    assert report.ok, str(report)
    classes = len(set(small_set.code_points.tolist()))
    assert report.splits["train"].classes + report.splits["test"].classes == classes
    assert report.splits["train"].images + report.splits["test"].images == len(small_set.images)
    assert "faces per class" in str(report) and "val*" in str(report)


def test_options_are_checked(font_dir: Path, cache_env: Path) -> None:
    with pytest.raises(ValueError, match="size must be >= 8"):
        load_dataset("glyphs", font_dir, "test", size=4)
    with pytest.raises(ValueError, match="'size' does not apply"):
        load_dataset("digits", None, "test", size=16)


def test_shipped_cache_loads_without_fonts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rendered cache copied to a machine without the fonts (a GPU lease, #19) is read as
    it is from ``root``; other rendering options are refused in one line."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for path in FONTS[:9]:
        (fonts / path.name).write_bytes(path.read_bytes())
    kw = {"code_points": LATIN, "min_faces": 4, "size": 16}
    rendered = load_dataset("glyphs", fonts, "test", **kw)
    (folder,) = (tmp_path / "cache" / "dasl" / "glyphs").iterdir()
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for name in glyphs_mod.CACHE_FILES:
        (shipped / name).write_bytes((folder / name).read_bytes())
    for path in fonts.iterdir():
        path.unlink()
    glyphs_mod._MEMO.clear()
    monkeypatch.setattr(glyphs_mod, "PACKAGES", ("fonts-no-such-package",))
    assert glyphs_mod.glyphs_available(shipped) and not glyphs_mod.glyphs_available(fonts)
    again = load_dataset("glyphs", shipped, "test", **kw)
    assert np.array_equal(rendered.labels, again.labels)
    assert rendered.class_names == again.class_names
    with pytest.raises(ValueError, match=r"was made with .* this run asks for"):
        load_dataset("glyphs", shipped, "test", **{**kw, "size": 32})
    (shipped / "glyphs.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="incomplete or damaged rendered cache"):
        load_dataset("glyphs", shipped, "test", **kw)


def test_rendering_reports_progress(faces) -> None:
    """First use renders every face (83 s for the demo, #16): a line at the start, then one
    per interval (here every face) until the last."""
    from dasl.data.glyphs_build import render_all

    lines: list[str] = []
    results = render_all(faces, SMALL, 32, 1, report=lines.append, every_s=0.0)
    assert len(results) == len(faces)
    assert lines[0].startswith(f"glyphs: rendering {len(SMALL)} characters from {len(faces)}")
    assert "cached" in lines[0]
    assert lines[1:] == [
        f"glyphs: rendered {i} of {len(faces)} font faces, about {lines[i].split('about ')[1]}"
        for i in range(1, len(faces))
    ]
