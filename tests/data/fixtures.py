"""Builders of tiny datasets in the exact official layouts, for tests (also used by training tests).

Every builder writes under ``root`` and returns the path to pass to ``load_dataset``. Images are
8x8 JPEGs whose colour encodes (class, index), so tests can tell images apart.
"""

from __future__ import annotations

import csv
import gzip
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, class_id: int, index: int, size: int = 8) -> Path:
    """A small RGB JPEG with a colour determined by (class_id, index)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([class_id, index])
    base = np.array([class_id * 37 % 256, index * 53 % 256, 128], dtype=np.int64)
    pixels = np.clip(base + rng.integers(-8, 9, size=(size, size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(
        path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None
    )
    return path


def write_corrupt(path: Path) -> Path:
    """A file with an image extension but truncated/garbage content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return path


# ---------------------------------------------------------------- Fashion-MNIST (IDX .gz files)
def idx_images_bytes(images: np.ndarray) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 2049, len(labels)) + np.asarray(labels, dtype=np.uint8).tobytes()


def make_fashion_mnist_arrays(
    n_per_class: int, n_test_per_class: int, size: int = 28, seed: int = 0
) -> dict[str, np.ndarray]:
    """Images whose mean brightness encodes the class: pixel ~ 20 * class + noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for part, n in (("train", n_per_class), ("test", n_test_per_class)):
        labels = np.repeat(np.arange(10), n)
        rng.shuffle(labels)
        noise = rng.integers(0, 10, size=(labels.size, size, size))
        out[f"{part}_images"] = (labels[:, None, None] * 20 + noise).astype(np.uint8)
        out[f"{part}_labels"] = labels.astype(np.uint8)
    return out


def make_fashion_mnist_files(
    root: str | Path, n_per_class: int = 6, n_test_per_class: int = 2, size: int = 28
) -> Path:
    """The four official ``*-ubyte.gz`` files with ``n_per_class`` train images per class."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    arrays = make_fashion_mnist_arrays(n_per_class, n_test_per_class, size)
    for part, prefix in (("train", "train"), ("test", "t10k")):
        (root / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_images_bytes(arrays[f"{part}_images"]))
        )
        (root / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(idx_labels_bytes(arrays[f"{part}_labels"]))
        )
    return root


# ---------------------------------------------------------------- folder / CSV
def make_folder_tree(
    root: str | Path, classes: Sequence[str] = ("a", "b", "c", "d"), per_class: int = 3
) -> Path:
    """``root/<class>/<i>.jpg``."""
    root = Path(root)
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{i}.jpg", c, i)
    return root


def make_csv_dataset(
    root: str | Path,
    labels: Sequence[str] = ("10", "11", "12", "13"),
    per_class: int = 3,
    split: Sequence[str] | None = None,
    query_gallery: bool = False,
    name: str = "dataset.csv",
) -> Path:
    """``root/images/<label>_<i>.jpg`` and ``root/<name>``; returns the CSV path.

    ``split`` gives each label's split value (one per label). ``query_gallery`` adds OML-style
    ``is_query``/``is_gallery`` columns: in each non-train class the first image is a query and
    the rest are gallery.
    """
    root = Path(root)
    header = ["path", "label"] + (["split"] if split is not None else [])
    header += ["is_query", "is_gallery"] if query_gallery else []
    rows = []
    for c, label in enumerate(labels):
        for i in range(per_class):
            rel = f"images/{label}_{i}.jpg"
            write_image(root / rel, c, i)
            row = [rel, label]
            if split is not None:
                row.append(split[c])
            if query_gallery:
                is_train = split is not None and split[c] == "train"
                row += ["0", "0"] if is_train else (["1", "0"] if i == 0 else ["0", "1"])
            rows.append(row)
    path = root / name
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------- CUB-200-2011
def make_cub_tree(
    root: str | Path, classes: Sequence[int] = (1, 2, 3, 101, 102, 103), per_class: int = 3
) -> Path:
    """``root/CUB_200_2011/{images.txt, image_class_labels.txt, classes.txt,
    train_test_split.txt, images/NNN.Name/Name_<i>.jpg}``; returns ``root``."""
    base = Path(root) / "CUB_200_2011"
    base.mkdir(parents=True, exist_ok=True)
    images, labels, split, names = [], [], [], []
    image_id = 1
    for c in classes:
        folder = f"{c:03d}.Bird_{c}"
        names.append(f"{c} {folder}")
        for i in range(per_class):
            rel = f"{folder}/Bird_{c}_{i:04d}.jpg"
            write_image(base / "images" / rel, c, i)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {c}")
            split.append(f"{image_id} {int(i % 2 == 0)}")  # the classification split (ignored)
            image_id += 1
    (base / "images.txt").write_text("\n".join(images) + "\n")
    (base / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (base / "classes.txt").write_text("\n".join(names) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(split) + "\n")
    return Path(root)


# ---------------------------------------------------------------- Cars196
def make_cars_tree(
    root: str | Path, classes: Sequence[int] = (1, 2, 3, 99, 100, 101), per_class: int = 3
) -> Path:
    """``root/cars_annos.mat`` (struct array ``annotations`` with relative_im_path, bbox_x1..y2,
    class, test; cell array ``class_names`` of 196 names) and ``root/car_ims/NNNNNN.jpg``."""
    from scipy.io import savemat

    root = Path(root)
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    records = []
    n = 0
    for c in classes:
        for i in range(per_class):
            n += 1
            rel = f"car_ims/{n:06d}.jpg"
            write_image(root / rel, c, i)
            records.append(
                (
                    rel,
                    np.uint8(1),
                    np.uint8(2),
                    np.uint16(7),
                    np.uint16(7),
                    np.uint8(c),
                    np.uint8(i % 2),
                )
            )
    ann = np.empty((1, len(records)), dtype=[(f, object) for f in fields])
    for j, rec in enumerate(records):
        for f, v in zip(fields, rec, strict=True):
            ann[0, j][f] = np.array([[v]]) if f != "relative_im_path" else np.array([v])
    class_names = np.empty((1, 196), dtype=object)
    for k in range(196):
        class_names[0, k] = f"Make Model {k + 1}"
    savemat(str(root / "cars_annos.mat"), {"annotations": ann, "class_names": class_names})
    return root


# ---------------------------------------------------------------- Stanford Online Products
def make_sop_tree(
    root: str | Path,
    train_classes: Sequence[int] = (1, 2, 3),
    test_classes: Sequence[int] = (11319, 11320, 11321),
    per_class: int = 2,
) -> Path:
    """``root/Stanford_Online_Products/{Ebay_train.txt, Ebay_test.txt, <super>_final/*.JPG}``."""
    base = Path(root) / "Stanford_Online_Products"
    image_id = 1
    for split, classes in (("train", train_classes), ("test", test_classes)):
        lines = ["image_id class_id super_class_id path"]
        for c in classes:
            superclass = ["bicycle", "cabinet", "chair"][c % 3]
            for i in range(per_class):
                rel = f"{superclass}_final/{c}{100000 + c}_{i}.JPG"
                write_image(base / rel, c, i)
                lines.append(f"{image_id} {c} {c % 3 + 1} {rel}")
                image_id += 1
        (base / f"Ebay_{split}.txt").write_text("\n".join(lines) + "\n")
    return Path(root)


# ---------------------------------------------------------------- In-Shop
def make_inshop_tree(
    root: str | Path, train_items: int = 3, test_items: int = 3, per_item: int = 3
) -> Path:
    """``root/list_eval_partition.txt`` + ``root/img/...``. Test items have one query image and
    ``per_item - 1`` gallery images."""
    root = Path(root)
    rows = []
    for k in range(train_items + test_items):
        item = f"id_{k + 1:08d}"
        for i in range(per_item):
            rel = f"img/WOMEN/Dresses/{item}/{i:02d}_1_front.jpg"
            write_image(root / rel, k, i)
            status = "train" if k < train_items else ("query" if i == 0 else "gallery")
            rows.append(f"{rel} {item} {status}")
    text = f"{len(rows)}\nimage_name item_id evaluation_status\n" + "\n".join(rows) + "\n"
    (root / "list_eval_partition.txt").write_text(text)
    return root
