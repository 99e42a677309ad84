"""Input checks shared by the metric functions: arrays in, float32 / int64 tensors out (or,
for the numpy statistics, float64 / 1-D arrays)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dasl.choices import DISTANCES as DISTANCE_NAMES
from dasl.errors import ConfigError, DataError
from dasl.registry import unknown_choice

DISTANCES = ("cosine", "euclidean", "dot")
DISTANCE_NAMES.register_names(DISTANCES)


def as_embeddings(x: Any, name: str = "embeddings") -> torch.Tensor:
    """``x`` (torch tensor or array-like) as a 2-D, non-empty, finite float32 tensor."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise DataError(f"{name} must be 2-D (N, D); got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise DataError(
            f"{name} is empty (shape {tuple(t.shape)}); need at least one row and column"
        )
    integer = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
    if not (t.is_floating_point() or t.dtype in integer):
        raise DataError(f"{name} must hold real numbers; got dtype {t.dtype}")
    t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise DataError(f"{name} has NaN or inf values in {bad} rows; clean or drop them first")
    return t


def as_label_codes(*label_arrays: Any, names: Sequence[str]) -> list[torch.Tensor]:
    """Labels (any hashable dtype numpy can sort) as int64 codes shared across all arrays."""
    arrays = []
    for lab, name in zip(label_arrays, names, strict=True):
        a = lab.detach().cpu().numpy() if isinstance(lab, torch.Tensor) else np.asarray(lab)
        if a.ndim != 1:
            raise DataError(f"{name} must be 1-D (N,); got shape {a.shape}")
        arrays.append(a)
    _, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
    codes = torch.from_numpy(inverse.reshape(-1).astype(np.int64))
    return list(torch.split(codes, [len(a) for a in arrays]))


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise unknown_choice("distance", distance, DISTANCES)
    return distance


def check_ks(ks: Any) -> tuple[int, ...]:
    """``ks`` as a non-empty tuple of positive Python ints (bools and floats rejected)."""
    if isinstance(ks, int | np.integer) and not isinstance(ks, bool):
        ks = (ks,)
    try:
        ks = tuple(ks)
    except TypeError:
        raise ConfigError(f"ks must be a sequence of positive ints; got {ks!r}") from None
    if not ks:
        raise ConfigError("ks is empty; give at least one K, e.g. ks=(1, 2, 4, 8)")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"ks must hold positive ints; got {k!r} in {ks!r}")
    return tuple(int(k) for k in ks)


def as_array(x: Any, name: str) -> np.ndarray:
    """``x`` (numpy array, torch tensor or sequence) as a numpy array."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise DataError(f"{name} must be numeric, got an object array")
    return arr


def check_embeddings(
    embeddings: Any, labels: Any, name: str = "embeddings"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an ``(N, D)`` embedding matrix and its ``N`` labels; return float64 / 1-D arrays."""
    emb = as_array(embeddings, name)
    lab = as_array(labels, "labels")
    if emb.ndim != 2:
        raise DataError(f"{name} must be a 2-D (N, D) array, got shape {emb.shape}")
    if lab.ndim != 1:
        raise DataError(f"labels must be 1-D, got shape {lab.shape}")
    if lab.shape[0] != emb.shape[0]:
        raise DataError(f"labels has {lab.shape[0]} entries, {name} has {emb.shape[0]} rows")
    if emb.shape[0] == 0:
        raise DataError(f"{name} is empty")
    if not np.isfinite(emb).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return emb.astype(np.float64, copy=False), lab
