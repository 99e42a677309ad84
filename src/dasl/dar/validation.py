"""Input checks for the regularizer: shapes, devices, dtypes and finiteness.

Finiteness without a host sync: on CPU a non-finite embedding raises ``ValueError`` at once
(``bool(tensor)`` costs nothing there). On an accelerator, turning a device tensor into a Python
bool would stall the stream on every training step, so ``torch._assert_async`` is queued instead:
the check runs on the device and a failure surfaces as a device-side assertion error (with our
message where the backend supports it) at the next synchronization point.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dasl.errors import ConfigError, DataError

_NONFINITE_MSG = (
    "embeddings contain NaN or inf values; check the model output (learning rate, loss scale, "
    "normalization of zero vectors) before the regularizer"
)


def check_batch(embeddings: Tensor, labels: Tensor) -> None:
    """Raise ValueError unless ``embeddings`` is (N, h), ``labels`` is (N,) integer, same device."""
    if not isinstance(embeddings, Tensor):
        raise DataError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}")
    if not isinstance(labels, Tensor):
        raise DataError(f"labels must be a torch.Tensor of class ids, got {type(labels).__name__}")
    if embeddings.dim() != 2:
        raise DataError(
            f"embeddings must be 2-D (batch, embedding_size), got shape {tuple(embeddings.shape)}"
        )
    if labels.dim() != 1:
        raise DataError(f"labels must be 1-D (batch,), got shape {tuple(labels.shape)}")
    if labels.shape[0] != embeddings.shape[0]:
        raise DataError(
            f"labels has {labels.shape[0]} entries, embeddings has {embeddings.shape[0]} rows; "
            "pass one label per embedding row"
        )
    if embeddings.shape[0] == 0:
        raise DataError("empty batch: embeddings has 0 rows")
    if embeddings.shape[1] == 0:
        raise DataError("embeddings have 0 columns (embedding_size must be at least 1)")
    if labels.device != embeddings.device:
        raise DataError(
            f"labels are on {labels.device} but embeddings are on {embeddings.device}; "
            "move both to the same device"
        )
    if labels.dtype.is_floating_point or labels.dtype.is_complex:
        raise DataError(
            f"labels must hold integer class ids, got dtype {labels.dtype}; convert with .long()"
        )
    if not (embeddings.dtype.is_floating_point):
        raise DataError(f"embeddings must be a floating-point tensor, got dtype {embeddings.dtype}")


def check_finite(embeddings: Tensor) -> None:
    """ValueError on CPU if any entry is NaN/inf; a non-blocking device assert elsewhere."""
    finite = torch.isfinite(embeddings.detach()).all()
    if embeddings.device.type == "cpu":
        if not bool(finite):
            raise DataError(_NONFINITE_MSG)
    else:
        torch._assert_async(finite, _NONFINITE_MSG)


def check_num_chains(num_chains: object) -> int:
    if isinstance(num_chains, bool) or not isinstance(num_chains, int) or num_chains < 1:
        raise ConfigError(f"num_chains must be an integer >= 1, got {num_chains!r}")
    return num_chains


def check_max_columns(h_cols: int, max_columns: int, measure: str) -> None:
    """ValueError when the exact estimator would do O(H^2) work on too many columns."""
    if h_cols > max_columns:
        raise ConfigError(
            f"exact DAR with measure {measure!r} over {h_cols:,} inter-class pairs needs "
            f"O(H^2) = {h_cols * h_cols:.1e} column comparisons (limit: {max_columns:,} "
            "columns); use estimator='chain' (O(N h)), measure='l2sq', or fewer embeddings "
            "(e.g. no large ref_emb / memory bank)"
        )
