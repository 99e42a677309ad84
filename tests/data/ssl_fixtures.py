"""Tiny classification datasets in the exact official layouts: CIFAR python pickles (written
as Python 2 pickles, like the originals), STL-10 binaries, ILSVRC-2012 trees.

Pixel values follow :func:`pixel_pattern`, so tests can check that a reader puts rows, columns
and channels where they belong.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from fixtures import write_image


def pixel_pattern(index: int, side: int) -> np.ndarray:
    """The ``(side, side, 3)`` uint8 image number ``index``: value ``(7 i + 3 row + 5 col +
    60 channel) mod 256`` (rows, columns and channels all change the value differently)."""
    r, c, ch = np.meshgrid(np.arange(side), np.arange(side), np.arange(3), indexing="ij")
    return ((7 * index + 3 * r + 5 * c + 60 * ch) % 256).astype(np.uint8)


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the CIFAR files: protocol 2, ``str`` as
    BINSTRING (read back as ``bytes`` with ``encoding="bytes"``), numpy's 1.x module path."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def write_py2_pickle(path: Path, obj: object) -> Path:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def cifar_rows(first_index: int, n: int) -> np.ndarray:
    """``(n, 3072)`` uint8 rows in the official order: R plane, G plane, B plane, row-major."""
    return np.stack(
        [pixel_pattern(first_index + i, 32).transpose(2, 0, 1).reshape(-1) for i in range(n)]
    )


def make_cifar10(root: str | Path, train_per_batch: int = 4, n_test: int = 6) -> Path:
    """``root/cifar-10-batches-py/{batches.meta, data_batch_1..5, test_batch}``.

    Image ``j`` of the whole set (train batches in order, then test) has label ``j % 10`` and
    pixels ``pixel_pattern(j, 32)``.
    """
    base = Path(root) / "cifar-10-batches-py"
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]  # fmt: skip
    write_py2_pickle(
        base / "batches.meta",
        {"num_cases_per_batch": 10000, "label_names": names, "num_vis": 3072},
    )
    j = 0
    files = [(f"data_batch_{b}", f"training batch {b} of 5", train_per_batch) for b in range(1, 6)]
    files.append(("test_batch", "testing batch 1 of 1", n_test))
    for fname, label, n in files:
        batch = {
            "batch_label": label,
            "labels": [(j + i) % 10 for i in range(n)],
            "data": cifar_rows(j, n),
            "filenames": [f"img_{j + i:05d}.png" for i in range(n)],
        }
        write_py2_pickle(base / fname, batch)
        j += n
    return Path(root)


def make_cifar100(root: str | Path, n_train: int = 12, n_test: int = 5) -> Path:
    """``root/cifar-100-python/{meta, train, test}``; image ``j`` has fine label ``(7 j) % 100``
    and coarse label ``fine // 5``."""
    base = Path(root) / "cifar-100-python"
    write_py2_pickle(
        base / "meta",
        {
            "fine_label_names": [f"fine_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)],
        },
    )
    j = 0
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [(7 * (j + i)) % 100 for i in range(n)]
        write_py2_pickle(
            base / split,
            {
                "filenames": [f"img_{j + i:05d}.png" for i in range(n)],
                "batch_label": f"{split}ing batch 1 of 1",
                "fine_labels": fine,
                "coarse_labels": [f // 5 for f in fine],
                "data": cifar_rows(j, n),
            },
        )
        j += n
    return Path(root)


def stl10_bytes(first_index: int, n: int) -> bytes:
    """Images in the STL-10 file order: per image 3 planes of 96x96, each column-major."""
    return b"".join(
        pixel_pattern(first_index + i, 96).transpose(2, 1, 0).tobytes() for i in range(n)
    )


def make_stl10(root: str | Path, n_train: int = 20, n_test: int = 10, n_unlabeled: int = 7) -> Path:
    """``root/stl10_binary/*``; image ``j`` (train, then test, then unlabeled) has pixels
    ``pixel_pattern(j, 96)``; labelled image ``j`` has label ``j % 10 + 1`` in the file."""
    base = Path(root) / "stl10_binary"
    base.mkdir(parents=True, exist_ok=True)
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (base / "class_names.txt").write_text("\n".join(names) + "\n")
    j = 0
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        (base / f"{split}_X.bin").write_bytes(stl10_bytes(j, n))
        if split != "unlabeled":
            labels = np.array([(j + i) % 10 + 1 for i in range(n)], dtype=np.uint8)
            (base / f"{split}_y.bin").write_bytes(labels.tobytes())
        j += n
    (base / "fold_indices.txt").write_text(" ".join(str(i) for i in range(n_train)) + "\n")
    return Path(root)


def make_imagenet_tree(
    root: str | Path,
    wnids: Sequence[str] = ("n01440764", "n01443537", "n02869837", "n01749939"),
    train_per_class: int = 3,
    val_per_class: int = 2,
    val_layout: str = "folders",
    kaggle: bool = False,
    synset_mapping: bool = True,
) -> Path:
    """An ILSVRC-2012 tree: ``train/<wnid>/<wnid>_<i>.JPEG`` and ``val/`` as class folders
    (``val_layout="folders"``) or flat ``ILSVRC2012_val_<8 digits>.JPEG`` plus Kaggle's
    ``LOC_val_solution.csv`` (``"flat"``), under ``ILSVRC/Data/CLS-LOC/`` when ``kaggle``."""
    root = Path(root)
    base = root / "ILSVRC" / "Data" / "CLS-LOC" if kaggle else root
    for c, w in enumerate(wnids):
        for i in range(train_per_class):
            write_image(base / "train" / w / f"{w}_{i}.JPEG", c, i)
    rows = []
    n = 0
    # Interleave classes like the real val set (its images are not grouped by class).
    for i in range(val_per_class):
        for c, w in enumerate(wnids):
            n += 1
            image_id = f"ILSVRC2012_val_{n:08d}"
            if val_layout == "folders":
                write_image(base / "val" / w / f"{image_id}.JPEG", c, 100 + i)
            else:
                write_image(base / "val" / f"{image_id}.JPEG", c, 100 + i)
                rows.append(f"{image_id},{w} 1 2 7 7 {w} 0 0 5 5")
    if val_layout == "flat":
        text = "ImageId,PredictionString\n" + "\n".join(rows) + "\n"
        (root / "LOC_val_solution.csv").write_text(text)
    if synset_mapping:
        text = "".join(f"{w} synset {c}, name {c}\n" for c, w in enumerate(sorted(wnids)))
        (root / "LOC_synset_mapping.txt").write_text(text)
    return root
