"""Ranking metrics from a neighbour-label matrix (row i: query i's neighbours, nearest first).

With ``match[i, j] = [neighbour_labels[i, j] == query_labels[i]]`` and ``R_i`` the number of
gallery items sharing query i's label (the query itself not counted):

- Recall@K (DML sense): mean_i [ any_{j <= K} match[i, j] ]
- R-precision: mean_i (1/R_i) sum_{j <= R_i} match[i, j]
- MAP@R (Musgrave et al. 2020): mean_i (1/R_i) sum_{j <= R_i} P_i(j) match[i, j],
  with P_i(j) = (1/j) sum_{l <= j} match[i, l]

Queries must have R_i >= 1 (callers drop lone-label queries first, as PML does).
Means are accumulated in float64.

The metrics of one query set besides Recall@K (which takes its K from ``eval.ks``) are the
entries of :data:`dasl.choices.RANKING_METRICS`: ``metric(neighbor_labels, query_labels,
num_relevant) -> float``, the neighbours at least ``max(max(ks), max_i R_i)`` deep;
:func:`dasl.metrics.retrieval_metrics` reports each by its name, the report tables under
its ``title``.
"""

from __future__ import annotations

import torch

from dasl.choices import RANKING_METRICS
from dasl.errors import ConfigError, DataError


def match_matrix(neighbor_labels: torch.Tensor, query_labels: torch.Tensor) -> torch.Tensor:
    """Boolean (N, k): neighbour j of query i has the query's label."""
    if neighbor_labels.ndim != 2 or query_labels.ndim != 1:
        raise DataError(
            f"neighbor_labels must be 2-D and query_labels 1-D; got shapes "
            f"{tuple(neighbor_labels.shape)} and {tuple(query_labels.shape)}"
        )
    if neighbor_labels.shape[0] != query_labels.shape[0]:
        raise DataError(
            f"neighbor_labels has {neighbor_labels.shape[0]} rows, query_labels has "
            f"{query_labels.shape[0]} entries"
        )
    return neighbor_labels == query_labels[:, None]


def _check_k(k: int, available: int, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"{what} must be a positive int; got {k!r}")
    if k > available:
        raise ConfigError(f"{what}={k} but only {available} neighbours per query were given")


def recall_at_k(neighbor_labels: torch.Tensor, query_labels: torch.Tensor, k: int) -> float:
    """Share of queries with at least one same-label item among their ``k`` nearest."""
    match = match_matrix(neighbor_labels, query_labels)
    _check_k(k, match.shape[1], "k")
    return match[:, :k].any(dim=1).double().mean().item()


def _relevance(num_relevant: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """Mask of the first R_i columns of each row."""
    if num_relevant.ndim != 1 or num_relevant.shape[0] != match.shape[0]:
        raise DataError(
            f"num_relevant must be 1-D with one entry per query ({match.shape[0]}); got shape "
            f"{tuple(num_relevant.shape)}"
        )
    if bool((num_relevant < 1).any()):
        raise DataError("num_relevant has entries < 1; drop queries without same-label items first")
    max_r = int(num_relevant.max())
    if max_r > match.shape[1]:
        raise DataError(
            f"a query has R={max_r} relevant items but only {match.shape[1]} neighbours were given"
        )
    cols = torch.arange(match.shape[1], device=match.device)
    return cols[None, :] < num_relevant.to(match.device)[:, None]


@RANKING_METRICS.register("map@r", title="MAP@R")
def map_at_r(
    neighbor_labels: torch.Tensor, query_labels: torch.Tensor, num_relevant: torch.Tensor
) -> float:
    """mean_i (1/R_i) sum_{j <= R_i} P_i(j) [neighbour j matches]."""
    match = match_matrix(neighbor_labels, query_labels)
    rel = _relevance(num_relevant, match)
    hit = match & rel
    ranks = torch.arange(1, match.shape[1] + 1, device=match.device, dtype=torch.float64)
    precision = hit.cumsum(dim=1).double() / ranks
    ap = (precision * hit).sum(dim=1) / num_relevant.to(precision)
    return ap.mean().item()


@RANKING_METRICS.register("r_precision", title="R-Prec")
def r_precision(
    neighbor_labels: torch.Tensor, query_labels: torch.Tensor, num_relevant: torch.Tensor
) -> float:
    """mean_i (#same-label among the first R_i neighbours) / R_i."""
    match = match_matrix(neighbor_labels, query_labels)
    rel = _relevance(num_relevant, match)
    hits = (match & rel).sum(dim=1).double()
    return (hits / num_relevant.to(hits)).mean().item()
