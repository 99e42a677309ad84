"""The retrieval evaluation used in deep metric learning papers, in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from dasl.choices import RANKING_METRICS
from dasl.errors import ConfigError, DataError
from dasl.metrics.clustering import nmi as nmi_score
from dasl.metrics.knn import knn_scores
from dasl.metrics.ranking import recall_at_k
from dasl.metrics.validation import as_embeddings, as_label_codes, check_distance, check_ks


def retrieval_metrics(
    embeddings: Any,
    labels: Any,
    ks: Sequence[int] = (1, 2, 4, 8),
    ref: Any | None = None,
    ref_labels: Any | None = None,
    distance: str = "cosine",
    nmi: bool = True,
    seed: int = 0,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Recall@K, MAP@R, R-precision (and NMI) of ``embeddings`` as queries.

    Gallery: ``embeddings`` itself with each query's own row excluded by index (CUB/Cars/SOP
    protocol), or ``ref`` when given (In-Shop query/gallery; nothing excluded).
    With ``R_i`` = #gallery items sharing query i's label (self not counted):

    - ``recall@K``: mean_i [some same-label item among the K nearest]
    - ``r_precision``: mean_i (#same-label among the R_i nearest) / R_i
    - ``map@r``: mean_i (1/R_i) sum_{j<=R_i} P_i(j) [j-th nearest has the label]
    - any other entry of :data:`dasl.choices.RANKING_METRICS`, by its name
    - ``nmi``: NMI of k-means on the query embeddings (k = #distinct query labels, seeded,
      faiss niter=20) against the labels; on L2-normalized rows for ``distance="cosine"``.
      Every query is clustered, lone-label ones included.

    Queries with R_i = 0 (no same-label item in the gallery) are left out of recall@K, MAP@R
    and R-precision, as PML leaves them out of precision_at_1 / MAP@R / R-precision;
    ``num_queries`` (an int count, not a [0, 1] metric) says how many were used.
    Neighbours are exact (chunked matmul + top-k with k = max(max(ks), max R_i)); ties are
    broken by the smaller gallery index. ``distance``: "cosine", "euclidean" or "dot".
    """
    check_distance(distance)
    ks = check_ks(ks)
    dev = torch.device(device) if device is not None else None
    query = as_embeddings(embeddings, "embeddings")
    if ref is None and ref_labels is not None:
        raise ConfigError("ref_labels given without ref; pass both or neither")
    if ref is not None and ref_labels is None:
        raise ConfigError("ref given without ref_labels; pass the gallery labels as ref_labels")
    gallery = None if ref is None else as_embeddings(ref, "ref")
    if gallery is not None and gallery.shape[1] != query.shape[1]:
        raise DataError(
            f"embeddings have dimension {query.shape[1]} but ref has {gallery.shape[1]}; "
            "they must match"
        )
    if gallery is None:
        (q_codes,) = as_label_codes(labels, names=["labels"])
        g_codes = q_codes
    else:
        q_codes, g_codes = as_label_codes(labels, ref_labels, names=["labels", "ref_labels"])
        if g_codes.shape[0] != gallery.shape[0]:
            raise DataError(
                f"ref_labels has {g_codes.shape[0]} entries, ref has {gallery.shape[0]} rows"
            )
    if q_codes.shape[0] != query.shape[0]:
        raise DataError(
            f"labels has {q_codes.shape[0]} entries, embeddings has {query.shape[0]} rows"
        )
    self_gallery = gallery is None
    n_gallery = query.shape[0] if gallery is None else gallery.shape[0]
    available = n_gallery - int(self_gallery)
    if max(ks) > available:
        raise ConfigError(
            f"K={max(ks)} is larger than the gallery"
            f"{' minus the query itself' if self_gallery else ''} ({available} items); "
            "use smaller ks"
        )

    counts = torch.bincount(g_codes, minlength=int(max(q_codes.max(), g_codes.max())) + 1)
    num_relevant = counts[q_codes] - int(self_gallery)
    keep = num_relevant > 0
    if not bool(keep.any()):
        raise DataError(
            "no query has a same-label item in the gallery, so recall@K, MAP@R and R-precision "
            "are undefined; check the labels"
        )
    k = max(max(ks), int(num_relevant[keep].max()))

    if dev is not None:
        query = query.to(dev)
        gallery = None if gallery is None else gallery.to(dev)
    if self_gallery:
        _, idx = knn_scores(
            query, None, k, distance=distance, exclude_self=True, chunk_size=chunk_size
        )
        nb_labels = g_codes[idx.cpu()][keep]
    else:
        # Lone queries are dropped before the search: they would only be thrown away.
        _, idx = knn_scores(
            query[keep.to(query.device)], gallery, k, distance=distance, chunk_size=chunk_size
        )
        nb_labels = g_codes[idx.cpu()]
    q_kept, r_kept = q_codes[keep], num_relevant[keep]

    out: dict[str, float] = {f"recall@{K}": recall_at_k(nb_labels, q_kept, K) for K in ks}
    for name in RANKING_METRICS.names():  # map@r, r_precision and any registered one
        out[name] = RANKING_METRICS.get(name)(nb_labels, q_kept, r_kept)
    if nmi:
        out["nmi"] = nmi_score(query.cpu(), q_codes, seed=seed, normalize=distance == "cosine")
    out["num_queries"] = int(keep.sum())
    return out
