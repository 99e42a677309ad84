"""Embedding extraction and test-set evaluation of a trained model (no Lightning needed).

Under DDP each rank embeds a strided shard of the split (items ``r, r + W, ...``:
:func:`shard`) and :func:`gather_shards` puts the rows of all ranks back in dataset order. No
padding is involved (unlike ``DistributedSampler``, which repeats items to even out the
shards), so every item is counted exactly once and the metrics equal one process's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from dasl.errors import DataError
from dasl.metrics import retrieval_metrics
from dasl.utils.distributed import collective_device, gather_rows, world


def shard(dataset: Dataset, rank: int | None = None, world_size: int | None = None) -> Dataset:
    """Items ``rank, rank + world_size, ...`` of ``dataset`` (the whole dataset for one rank).

    ``None``: the default process group's rank and size.
    """
    if rank is None or world_size is None:
        rank, world_size = world()
    if world_size == 1:
        return dataset
    return Subset(dataset, range(rank, len(dataset), world_size))  # type: ignore[arg-type]  # any map-style dataset, not Dataset[T]


def gather_shards(embeddings: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of every rank's :func:`shard`, back in dataset order (on every rank).

    Rank ``r`` holds items ``r, r + W, ...``, so its ``k``-th row is item ``r + k W``; the
    shards may differ in length by one. Without a process group the input is returned.
    """
    _, size = world()
    if size == 1:
        return embeddings, labels
    dev = collective_device()
    parts = gather_rows(embeddings.to(dev))
    label_parts = gather_rows(labels.to(dev).long())
    total = sum(p.shape[0] for p in parts)
    out = embeddings.new_empty((total, *embeddings.shape[1:]), device=dev)
    out_labels = torch.empty(total, dtype=torch.long, device=dev)
    for r, (p, q) in enumerate(zip(parts, label_parts, strict=True)):
        out[r::size] = p
        out_labels[r::size] = q
    return out, out_labels


@torch.no_grad()
def embed(
    model: Callable[[Tensor], Tensor] | nn.Module,
    loader: DataLoader,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over ``loader``; return float32 embeddings ``(N, d)`` and int64 labels."""
    device = torch.device(device)
    if isinstance(model, nn.Module):
        model.eval()
    outs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if autocast_dtype is not None:
            with torch.autocast(device.type, dtype=autocast_dtype):
                z = model(x)
        else:
            z = model(x)
        outs.append(z.float().cpu().numpy())
        labels.append(np.asarray(y, dtype=np.int64).reshape(-1))
    if not outs:
        raise DataError("cannot embed an empty dataset: the evaluation split has no images")
    return np.concatenate(outs), np.concatenate(labels)


def raw_pixels(dataset: Dataset, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray] | None:
    """Flattened raw inputs of an array-backed dataset (the 'no learning' baseline).

    Uses the dataset's untransformed images (``with_transform(None)``); returns ``None`` when
    the images are not equal-sized tensors (image files), where raw pixels are no baseline.
    """
    plain = dataset.with_transform(None) if hasattr(dataset, "with_transform") else dataset
    first = plain[0][0]
    if not isinstance(first, Tensor):
        return None
    loader = DataLoader(plain, batch_size=batch_size, shuffle=False)
    return embed(lambda x: x.flatten(1).float(), loader)


def evaluate_embeddings(
    query: np.ndarray,
    query_labels: np.ndarray,
    ks: tuple[int, ...],
    distance: str = "cosine",
    nmi: bool = True,
    seed: int = 0,
    ref: np.ndarray | None = None,
    ref_labels: np.ndarray | None = None,
) -> dict[str, float]:
    """:func:`dasl.metrics.retrieval_metrics`, with K values larger than the gallery dropped."""
    gallery = len(ref) if ref is not None else len(query) - 1
    usable = tuple(k for k in ks if k <= gallery)
    return retrieval_metrics(
        query,
        query_labels,
        ks=usable,
        ref=ref,
        ref_labels=ref_labels,
        distance=distance,
        nmi=nmi,
        seed=seed,
    )
