"""Image files as users have them: odd modes, truncated or empty files, in every file reader."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from fixtures import make_csv_dataset, make_cub_tree, make_folder_tree, write_image
from PIL import Image

from dasl.data import UnreadableImageError, load_dataset


def _truncated_jpeg(path: Path) -> Path:
    """A real JPEG cut in half: PIL opens it and verify() passes; decoding fails."""
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    data = buf.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_sixteen_bit_images_are_scaled_not_clipped() -> None:
    from dasl.data.dataset import convert_image

    a = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    img = Image.fromarray(a)
    assert img.mode == "I;16"
    gray = np.asarray(convert_image(img, "L"))
    # reference: v / 257 rounded (65535 -> 255)
    np.testing.assert_array_equal(gray, np.rint(a / 257.0).astype(np.uint8))
    rgb = np.asarray(convert_image(img, "RGB"))
    assert rgb.shape == (1, 4, 3)
    np.testing.assert_array_equal(rgb[..., 0], gray)
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    np.testing.assert_array_equal(np.asarray(convert_image(f, "L")), [[0, 128, 255]])
    big = Image.fromarray(np.array([[0, 300, 65535]], dtype=np.int32))
    assert big.mode == "I"
    np.testing.assert_array_equal(np.asarray(convert_image(big, "L")), [[0, 1, 255]])


def test_every_mode_in_a_folder_reader_matches_the_channels(tmp_path: Path) -> None:
    root = tmp_path / "modes"
    make_folder_tree(root, ("a", "b"), per_class=1)
    odd = root / "a"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(odd / "sixteen.png")
    pal = Image.new("P", (8, 8))
    pal.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    pal.paste(1, (0, 0, 8, 8))
    pal.info["transparency"] = 0
    pal.save(odd / "palette.png")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(odd / "cmyk.jpg")
    Image.new("1", (8, 8), 1).save(odd / "bilevel.png")
    Image.new("LA", (8, 8), (77, 9)).save(odd / "gray_alpha.png")

    for channels, mode in ((3, "RGB"), (1, "L")):
        ds = load_dataset("folder", root, "train", in_channels=channels)
        images = {p.name: ds[i][0] for i, p in enumerate(ds.paths)}
        assert {im.mode for im in images.values()} == {mode}
        px = {name: np.asarray(im)[0, 0] for name, im in images.items()}
        if channels == 3:
            np.testing.assert_array_equal(px["sixteen.png"], [128, 128, 128])
            np.testing.assert_array_equal(px["palette.png"], [200, 10, 20])
            assert px["cmyk.jpg"][0] > 200 and px["cmyk.jpg"][1:].max() < 60  # red
            np.testing.assert_array_equal(px["bilevel.png"], [255, 255, 255])
            np.testing.assert_array_equal(px["gray_alpha.png"], [77, 77, 77])
        else:
            assert int(px["sixteen.png"]) == 128 and int(px["gray_alpha.png"]) == 77
            # ITU-R 601 luma of (200, 10, 20), as PIL computes it
            assert abs(int(px["palette.png"]) - round(0.299 * 200 + 0.587 * 10 + 0.114 * 20)) <= 1
    with pytest.raises(ValueError, match="in_channels must be 1 or 3"):
        load_dataset("folder", root, "train", in_channels=2)


def _bad_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    garbage = folder / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    return [empty, garbage, _truncated_jpeg(folder / "truncated.jpg")]


def _check_skip_and_error(name: str, root: Path, split: str, bad: list[Path]) -> None:
    with pytest.warns(UserWarning, match=r"skipping 3 unreadable") as record:
        ds = load_dataset(name, root, split, skip_unreadable=True, allow_subset=True)
    message = str(record[0].message)
    assert all(str(p) in message for p in bad), message
    assert not {str(p) for p in bad} & {str(p) for p in ds.paths}
    for i in range(len(ds)):  # everything kept decodes
        ds[i]
    ds = load_dataset(name, root, split, allow_subset=True)
    kept = [str(p) for p in ds.paths]
    for p in bad:
        with pytest.raises(UnreadableImageError, match=rf"cannot read image {p}"):
            ds[kept.index(str(p))]


def test_folder_reader_skips_or_names_unreadable_files(tmp_path: Path) -> None:
    root = make_folder_tree(tmp_path / "f", ("a", "b", "c", "d"), per_class=2)
    bad = _bad_files(root / "a")
    _check_skip_and_error("folder", root, "train", bad)


def test_csv_reader_skips_or_names_unreadable_files(tmp_path: Path) -> None:
    path = make_csv_dataset(tmp_path, labels=("1", "2", "3", "4"), per_class=3)
    bad = _bad_files(tmp_path / "images")
    with open(path, "a") as fh:
        for p in bad:
            fh.write(f"images/{p.name},1\n")
    _check_skip_and_error("csv", path, "train", bad)


def test_cub_layout_skips_or_names_unreadable_files(tmp_path: Path) -> None:
    root = make_cub_tree(tmp_path)
    images = sorted((root / "CUB_200_2011" / "images").glob("001.*/*.jpg"))
    bad = [images[0], images[1], images[2]]
    bad[0].write_bytes(b"")
    bad[1].write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _truncated_jpeg(bad[2])
    _check_skip_and_error("cub200", root, "train", bad)


def test_check_reports_truncated_files(tmp_path: Path) -> None:
    from dasl.data import check_dataset

    root = make_folder_tree(tmp_path / "f", ("a", "b"), per_class=2)
    _truncated_jpeg(root / "a" / "cut.jpg")
    write_image(root / "b" / "fine.jpg", 1, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check_dataset("folder", root)
    assert not report.ok and "cut.jpg" in " ".join(report.problems)
