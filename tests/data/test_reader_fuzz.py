"""Fuzzing the CSV and folder readers: any content gives a dataset or a user error the CLI
reports in one line (``ValueError``, ``FileNotFoundError``, ``UnreadableImageError``), never
another exception or a hang."""

from __future__ import annotations

import string
from datetime import timedelta
from pathlib import Path

import pytest
from fixtures import write_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dasl.data import check_dataset, load_dataset

FUZZ = settings(
    max_examples=40,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
SPLITS = ("train", "subtrain", "val", "test", "query", "gallery", "trainval")
CELL = st.one_of(
    st.sampled_from(["train", "val", "test", "validation", "1", "0", "true", "a.jpg", "b.jpg", ""]),
    st.text(max_size=6),
)


def _is_one_line_user_error(exc: BaseException) -> bool:
    """What the CLI reports in one line with exit status 2 (not a bug's traceback)."""
    from dasl.cli.errors import is_user_error

    first = str(exc).split("\n", 1)[0]
    return is_user_error(exc) and bool(first.strip())


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(["path", "label", "split", "is_query", "is_gallery", "x"]), max_size=5
    ),
    rows=st.lists(st.lists(CELL, max_size=5), max_size=8),
    raw=st.binary(max_size=40),
    split=st.sampled_from(SPLITS),
)
def test_fuzz_csv_reader(header, rows, raw, split, tmp_path: Path) -> None:
    for name in ("a.jpg", "b.jpg"):
        if not (tmp_path / name).exists():
            write_image(tmp_path / name, 1, 1)
    text = "\n".join(",".join(r) for r in [header, *rows]).encode("utf-8", "surrogatepass")
    path = tmp_path / "d.csv"
    path.write_bytes(text + raw)
    try:
        ds = load_dataset("csv", path, split, val_fraction=0.3)
        ds[0]
    except Exception as exc:
        assert _is_one_line_user_error(exc), repr(exc)
    try:
        check_dataset("csv", path)
    except Exception as exc:
        assert _is_one_line_user_error(exc), repr(exc)


NAME = st.text(alphabet=string.ascii_letters + string.digits + " ._-", min_size=1, max_size=8)


@FUZZ
@given(
    files=st.lists(
        st.tuples(
            NAME,
            NAME,
            st.sampled_from([".jpg", ".png", ".txt", ""]),
            st.sampled_from(["ok", "bad"]),
        ),
        max_size=8,
    ),
    split=st.sampled_from(SPLITS),
    skip=st.booleans(),
)
def test_fuzz_folder_reader(files, split, skip, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("folder")
    for i, (cls, stem, ext, kind) in enumerate(files):
        if cls in (".", "..") or stem in (".", ".."):
            continue
        path = root / cls / f"{stem}{ext}"
        if path.exists() or path.parent.is_file():
            continue
        if kind == "ok" and ext in (".jpg", ".png"):
            write_image(path, i, i)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\x00" * i)
    try:
        ds = load_dataset("folder", root, split, skip_unreadable=skip, val_fraction=0.3)
        for k in range(len(ds)):
            ds[k]
    except Exception as exc:
        assert _is_one_line_user_error(exc), repr(exc)
