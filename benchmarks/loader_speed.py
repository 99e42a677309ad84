"""Is data loading the bottleneck? images/s of dasl's training loader alone next to a step's.

Makes a CUB-200-2011-layout folder of generated 500 x 375 JPEGs (5,864 training images in
100 classes, CUB's zero-shot training split; a handful with ``--quick``), reads it with
``dataset: cub200``, ``transform: imagenet`` at 224 px (JPEG decode, RandomResizedCrop,
flip, normalization) and measures:

- ``loader``: batches of 120 (m-per-class 4) from ``dasl.run_data.train_loader``
  with ``--workers`` processes (pinned memory where CUDA is present), nothing else running;
- ``step``: one training step of the CUB config's model on one batch already on the device
  (ResNet-50 channels_last, bf16 autocast on CUDA; ``--model`` changes it; 64 px with
  ``--quick``), images/s;

and prints a table (``loader / step`` >= 1 means the loader keeps up) and writes JSON.

    .venv/bin/python -m benchmarks.loader_speed [--quick] [--device cuda] [--workers 8]
        [--images N] [--batches B] [--model resnet50] [--out PATH] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import format_table, sync, write_results

CUB_TRAIN_IMAGES, CUB_TRAIN_CLASSES = 5864, 100


def _write_jpeg(path: Path, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((500, 375), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-24, 25, (375, 500, 3))
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_cub_folder(root: Path, images: int, classes: int, workers: int = 1) -> Path:
    """``root/CUB_200_2011`` with ``images`` JPEGs (500 x 375, quality 90) spread over
    ``classes`` (<= 100: all in the zero-shot training split). Smooth colour fields plus
    noise, so that a JPEG is about as large as a photo's (~40-80 KB), not a flat one's.
    Image ``i`` is drawn from seed ``i``: the folder does not depend on ``workers``."""
    from concurrent.futures import ProcessPoolExecutor

    if not 1 <= classes <= CUB_TRAIN_CLASSES:
        raise ValueError(f"classes must be in 1..{CUB_TRAIN_CLASSES}, got {classes}")
    base = root / "CUB_200_2011"
    names, labels, paths = [], [], []
    for i in range(images):
        c = i % classes + 1
        folder = base / "images" / f"{c:03d}.class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"img_{i:05d}.jpg")
        names.append(f"{folder.name}/{paths[-1].name}")
        labels.append(c)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_jpeg, paths, range(images), chunksize=64))
    else:
        for i, path in enumerate(paths):
            _write_jpeg(path, i)
    (base / "images.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    (base / "image_class_labels.txt").write_text(
        "".join(f"{i + 1} {c}\n" for i, c in enumerate(labels))
    )
    all_classes = range(1, 2 * CUB_TRAIN_CLASSES + 1)
    (base / "classes.txt").write_text("".join(f"{c} {c:03d}.class_{c}\n" for c in all_classes))
    return root


def _config(root: Path, workers: int, batch: int, m: int, batches: int, model: str) -> Any:
    from dasl.config import config_from_dict

    return config_from_dict(
        {
            "seed": 0,
            "data": {
                "name": "cub200",
                "root": str(root),
                "transform": "imagenet",
                "image_size": 224,
                "in_channels": 3,
                "batch_size": batch,
                "m_per_class": m,
                "batches_per_epoch": batches,
                "num_workers": workers,
                "train_split": "train",
                "val_split": None,
                "allow_subset": True,  # CUB's test half is not generated
            },
            "model": {"backbone": model, "embedding_dim": 512, "pretrained": False},
            "loss": {"name": "proxyanchor"},
            "dar": {"lam": 0.0},
        }
    )


def loader_rate(cfg: Any, epochs: int = 2) -> dict[str, Any]:
    """Images/s of the training loader alone (the last epoch; the first starts the workers
    and fills the page cache)."""
    from dasl.run_data import load_split, train_loader

    ds = load_split(cfg.data, cfg.data.train_split, True, cfg.seed)
    rate, first_batch_s = 0.0, 0.0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        images, first = 0, None
        for x, _ in train_loader(ds, cfg.data, cfg.seed, epoch=epoch):
            if first is None:
                first = time.perf_counter() - t0
            images += x.shape[0]
        rate = images / (time.perf_counter() - t0)
        first_batch_s = first or 0.0
    return {"loader_images_per_s": rate, "first_batch_s": first_batch_s, "dataset": len(ds)}


def step_rate(cfg: Any, device: str, repeats: int, size: int = 224) -> dict[str, Any]:
    """Images/s of the training step (forward, DASL loss, backward, AdamW) on one batch."""
    from dasl.training.module import MetricLearningModule, step_loss

    batch = cfg.data.batch_size
    classes = batch // cfg.data.m_per_class
    module = MetricLearningModule(cfg.to_dict(), num_classes=classes).to(device).train()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.arange(classes, device=device).repeat_interleave(cfg.data.m_per_class)
    dtype = torch.bfloat16 if device.startswith("cuda") else None
    times = []
    for i in range(repeats + 1):
        sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            z = module(x)
        step_loss(module.criterion, z.float(), y, 0, i).backward()
        opt.step()
        sync(device)
        if i:  # the first step pays for lazy initialisation
            times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return {"step_ms": 1e3 * median, "step_images_per_s": batch / median}


def measure(
    device: str,
    quick: bool,
    workers: int,
    root: Path | None = None,
    images: int | None = None,
    batches: int | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Loader and step images/s (what ``gpu_suite``'s ``loader`` section reports)."""
    images = images or (24 if quick else CUB_TRAIN_IMAGES)
    classes = min(CUB_TRAIN_CLASSES, max(2, images // 6))
    batch, m = (8, 2) if quick else (120, 4)
    batches = batches or (2 if quick else images // batch)
    model = model or ("small_cnn" if quick else "resnet50")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(root) if root is not None else Path(tmp)
        if not (folder / "CUB_200_2011" / "images.txt").is_file():
            t0 = time.perf_counter()
            make_cub_folder(folder, images, classes, workers=max(1, workers))
            made_s = time.perf_counter() - t0
        else:
            made_s = 0.0
        cfg = _config(folder, workers, batch, m, batches, model)
        out: dict[str, Any] = {
            "images": images,
            "workers": workers,
            "batch": batch,
            "batches": batches,
            "model": model,
            "generate_s": made_s,
            **loader_rate(cfg),
            # --quick: a 64 px step (the toy model would take seconds per 224 px batch)
            **step_rate(cfg, device, repeats=2 if quick else 10, size=64 if quick else 224),
        }
    out["loader_over_step"] = out["loader_images_per_s"] / out["step_images_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="24 images, small_cnn (a smoke test)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--images", type=int, help=f"JPEGs to generate (default {CUB_TRAIN_IMAGES})")
    p.add_argument("--batches", type=int, help="loader batches per epoch (default: one pass)")
    p.add_argument("--model", help="backbone of the step (default resnet50)")
    p.add_argument("--root", type=Path, help="reuse (or create) the generated folder here")
    p.add_argument("--out", help="JSON path (default benchmarks/results/loader_speed/default/)")
    a = p.parse_args(argv)
    if a.workers < 0:
        p.error(f"--workers must be >= 0, got {a.workers}")
    row = measure(a.device, a.quick, a.workers, a.root, a.images, a.batches, a.model)
    cols = ["images", "workers", "loader_images_per_s", "model", "step_images_per_s"]
    print(f"device={a.device} threads={torch.get_num_threads()}")
    print(format_table([row], [*cols, "loader_over_step"]))
    config = {**vars(a), "root": None if a.root is None else str(a.root)}
    path = write_results("loader_speed", {"config": config, "row": row}, a.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
