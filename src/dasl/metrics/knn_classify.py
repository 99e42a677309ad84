"""Weighted k-NN classification of frozen features (Wu et al. 2018, "InstDisc"), the SSL
k-NN protocol.

For a test feature ``x`` and a bank of training features ``f_j`` with labels ``y_j``:

    s_j = <x/|x|, f_j/|f_j|>                  cosine similarity
    N_k(x) = the k bank items with the largest s_j
    score_c(x) = sum_{j in N_k(x), y_j = c} exp(s_j / T)
    prediction = classes ranked by score_c descending

``top1`` is the fraction of test items whose label is the first-ranked class, ``top5`` whose
label is among the first five. Common settings: ``k=200, T=0.1`` (Wu et al., lightly) and
``k=20, T=0.07`` (solo-learn, DINO).

Hand-written rather than lightly's ``knn_predict`` or solo-learn's ``WeightedKNNClassifier``:
both hold the whole test-chunk x bank similarity matrix (1.28 M columns on ImageNet-1K), break
ties arbitrarily (``topk``/``argsort``), and lightly's one-hot ``(B, k, C)`` vote tensor is
800 MB per 1,024 test rows at k=200, C=1,000. Here the bank is chunked as well, ties follow a
fixed rule, and votes are summed in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dasl.errors import ConfigError, DataError
from dasl.metrics.validation import as_embeddings

# Default block: 1,024 test rows x 65,536 bank rows (256 MiB of float32 scores).
_TEST_CHUNK = 1024
_BANK_CHUNK = 65536


def _as_bank(x: Any) -> torch.Tensor:
    """The train bank as a tensor without copying it (chunks are cast to float32 when used)."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise DataError(
            f"train_features must be a non-empty 2-D (N, D) array; got {tuple(t.shape)}"
        )
    if not (
        t.is_floating_point()
        or t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
    ):
        raise DataError(f"train_features must hold real numbers; got dtype {t.dtype}")
    return t


def _labels(x: Any, n: int, name: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise DataError(f"{name} must be 1-D with one label per feature row ({n}); got {a.shape}")
    return a


def _chunks(chunk_size: Any) -> tuple[int, int]:
    if chunk_size is None:
        return _TEST_CHUNK, _BANK_CHUNK
    pair = (chunk_size, chunk_size) if isinstance(chunk_size, int | np.integer) else chunk_size
    try:
        a, b = pair
    except (TypeError, ValueError):
        raise ConfigError(
            f"chunk_size must be a positive int, a pair (test_rows, bank_rows) or None; "
            f"got {chunk_size!r}"
        ) from None
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ConfigError(f"chunk_size values must be positive ints; got {chunk_size!r}")
    return int(a), int(b)


def _block_candidates(s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``k`` columns of each row of ``s`` under (score desc, column asc), in that order.

    ``topk`` alone picks arbitrarily among scores tied at the k-th place; rows where the k-th
    and (k+1)-th scores tie are therefore redone with a stable full sort of the same block (the
    same float values, so the rule is exact).
    """
    width = s.shape[1]
    if width <= k:
        return s.sort(dim=1, descending=True, stable=True)
    v, i = s.topk(k + 1, dim=1)  # sorted descending
    tied = (v[:, k - 1] == v[:, k]).nonzero().flatten()
    v, i = v[:, :k], i[:, :k]
    # Within the chosen set, order equal scores by column: sort by column, then stable by score.
    i, perm = i.sort(dim=1)
    v = v.gather(1, perm)
    v, perm = v.sort(dim=1, descending=True, stable=True)
    i = i.gather(1, perm)
    if tied.numel():
        tv, ti = s[tied].sort(dim=1, descending=True, stable=True)
        v[tied], i[tied] = tv[:, :k], ti[:, :k]
    return v, i


def _neighbours(
    q: torch.Tensor, bank: torch.Tensor, inv_norm: torch.Tensor, k: int, bank_chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine scores and bank indices of the ``k`` nearest bank rows of each (unit) row of
    ``q``, ordered by (score desc, index asc), merged over bank chunks."""
    vals = idx = None
    for b0 in range(0, bank.shape[0], bank_chunk):
        g = bank[b0 : b0 + bank_chunk].to(device=q.device, dtype=torch.float32)
        s = (q @ g.T).mul_(inv_norm[b0 : b0 + bank_chunk].to(q.device)[None, :])
        v, i = _block_candidates(s, min(k, s.shape[1]))
        i = i + b0
        if vals is None or idx is None:
            vals, idx = v, i
            continue
        # Every earlier candidate has a smaller index than every new one, so a stable sort of
        # [old, new] by score keeps the (score desc, index asc) order.
        v = torch.cat([vals, v], dim=1)
        i = torch.cat([idx, i], dim=1)
        v, perm = v.sort(dim=1, descending=True, stable=True)
        vals, idx = v[:, :k], i.gather(1, perm[:, :k])
    assert vals is not None and idx is not None
    return vals, idx


def _inverse_norms(bank: torch.Tensor, bank_chunk: int) -> torch.Tensor:
    """``1/|f_j|`` per bank row (float64 norms, so huge finite values do not overflow)."""
    out = torch.empty(bank.shape[0], dtype=torch.float32)
    for b0 in range(0, bank.shape[0], bank_chunk):
        norms = torch.linalg.vector_norm(bank[b0 : b0 + bank_chunk].to(torch.float64), dim=1)
        if not bool(torch.isfinite(norms).all()):
            raise DataError("train_features has NaN or inf values; clean or drop those rows first")
        if bool((norms == 0).any()):
            raise DataError(
                "train_features has all-zero rows, which have no cosine similarity; drop them"
            )
        out[b0 : b0 + bank_chunk] = (1.0 / norms).to(torch.float32).cpu()
    return out


def knn_classify(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int | tuple[int, int] | None = None,
    ks: tuple[int, ...] = (1, 5),
) -> dict[str, float]:
    """Weighted k-NN accuracy of ``test_features`` against the bank ``train_features``.

    Returns ``{"top1": ..., "top5": ...}`` (fractions in [0, 1]; keys ``f"top{k}"`` for each
    entry of ``ks``). Features: torch tensors (any device; the computation runs on the test
    features' device, bank chunks are moved there) or numpy arrays; labels: any 1-D array of
    sortable values, compared by equality between train and test.

    Rules:
        - Neighbour ties: bank items are ranked by (cosine desc, bank index asc), so among equal
          similarities at the k-th place the smaller bank index wins; the result does not
          depend on ``chunk_size``.
        - Class ties: classes are ranked by (score desc, class asc) over all classes of the
          bank in sorted label order; classes without a vote score 0 and rank last.
        - ``k`` larger than the bank is clipped to the bank size.
        - A test label absent from the bank is counted wrong.
        - ``top{m}`` needs at least ``m`` classes in the bank (else every item would be right):
          ``ValueError``; pass ``ks=(1,)`` for top-1 only.
        - Votes ``exp((s_j - s_max) / T)`` are summed in float64; subtracting the row's largest
          similarity leaves the ranking unchanged and avoids overflow for small ``T``.

    Memory: the bank is never copied or normalised as a whole (only its ``N`` inverse norms are
    stored). With ``chunk_size=(Bq, Bg)`` (an int ``c`` means ``(c, c)``; default
    ``(1024, 65536)``) the working set is about ``4 * (Bq*Bg*3 + Bg*D + Bq*D) + 16*Bq*(k+C)``
    bytes plus ``4*N`` for the norms and ``8*N`` for the label codes: about 1 GiB for
    ImageNet-1K's 1.28 M x 2048 bank with the defaults, independent of ``N`` otherwise.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive int; got {k!r}")
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise ConfigError(f"temperature must be a positive number; got {temperature!r}") from None
    if not np.isfinite(temperature) or temperature <= 0:
        raise ConfigError(f"temperature must be a positive number; got {temperature!r}")
    if isinstance(ks, int | np.integer):
        ks = (int(ks),)
    ks = tuple(ks)
    if not ks or any(
        isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1 for m in ks
    ):
        raise ConfigError(f"ks must be a non-empty tuple of positive ints; got {ks!r}")
    test_rows, bank_rows = _chunks(chunk_size)

    bank = _as_bank(train_features)
    q_all = test_features.detach() if isinstance(test_features, torch.Tensor) else None
    q_all = as_embeddings(test_features if q_all is None else q_all, "test_features")
    if bool((q_all.abs().amax(dim=1) == 0).any()):
        raise DataError(
            "test_features has all-zero rows, which have no cosine similarity; drop them"
        )
    if bank.shape[1] != q_all.shape[1]:
        raise DataError(
            f"train_features have dimension {bank.shape[1]} but test_features have "
            f"{q_all.shape[1]}; they must match"
        )
    y_train = _labels(train_labels, bank.shape[0], "train_labels")
    y_test = _labels(test_labels, q_all.shape[0], "test_labels")
    classes, train_codes = np.unique(y_train, return_inverse=True)
    n_classes = classes.size
    for m in ks:
        if m > n_classes:
            raise DataError(
                f"top-{m} accuracy needs at least {m} classes in train_labels, which has "
                f"{n_classes}; every test item would count as right. Use ks=(1,) for top-1 only"
            )
    # Test labels as codes into ``classes``; -1 where the class is not in the bank.
    pos = np.searchsorted(classes, y_test).clip(0, n_classes - 1)
    test_codes = np.where(classes[pos] == y_test, pos, -1)

    device = q_all.device
    k_eff = min(int(k), bank.shape[0])
    inv_norm = _inverse_norms(bank, bank_rows)
    train_codes_t = torch.from_numpy(train_codes.reshape(-1).astype(np.int64)).to(device)
    test_codes_t = torch.from_numpy(test_codes.astype(np.int64)).to(device)
    max_m = max(ks)
    hits = {m: 0 for m in ks}
    for a0 in range(0, q_all.shape[0], test_rows):
        q = torch.nn.functional.normalize(q_all[a0 : a0 + test_rows], dim=1)
        sims, nbr = _neighbours(q, bank, inv_norm, k_eff, bank_rows)
        w = ((sims.double() - sims[:, :1].double()) / temperature).exp()
        labels = train_codes_t[nbr]
        scores = torch.zeros(q.shape[0], n_classes, dtype=torch.float64, device=device)
        # One column at a time: each row adds to one class per step, so no two additions hit
        # the same cell within a step and the float64 sums are deterministic (neighbour order).
        for j in range(k_eff):
            scores.scatter_add_(1, labels[:, j : j + 1], w[:, j : j + 1])
        ranking = scores.sort(dim=1, descending=True, stable=True).indices[:, :max_m]
        truth = test_codes_t[a0 : a0 + test_rows]
        match = ranking == truth[:, None]
        for m in ks:
            hits[m] += int(match[:, :m].any(dim=1).sum())
    n = q_all.shape[0]
    return {f"top{m}": hits[m] / n for m in ks}
