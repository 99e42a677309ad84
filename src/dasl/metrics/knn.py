"""Exact k-nearest-neighbour search by chunked matmul + top-k, with a fixed tie rule.

Ranking rule (deterministic, one for every path): gallery items are ordered by score
descending, ties broken by the smaller gallery index, where a score that float32 rounding could
place on either side of a neighbour's is recomputed exactly (see :func:`_settle`). Scores are
similarities:

- ``cosine``: <q/|q|, g/|g|>            distance returned: 1 - score; ranked as
  ``-|u - v|^2 = 2 cos - 2`` on the unit vectors (centred as below), which resolves nearly
  parallel vectors that float32 cosines round together
- ``dot``: <q, g>                        distance returned: -score
- ``euclidean``: -(|q|^2 + |g|^2 - 2<q, g>)   distance returned: sqrt(max(-score, 0)),
  on vectors centred first (``euclidean_centre``): the identity cancels at the scale of
  ``|q|^2``, so uncentred features (e.g. offset by 100) would rank by float32 noise.

Hand-written rather than faiss ``IndexFlat``: faiss orders ties arbitrarily and cannot skip the
query itself by index, and with query = gallery the Gram matrix is symmetric, so computing only
the upper-triangular blocks (each block feeding the top-k of its rows *and* of its columns) halves
the matmul work. On the CPU the running top-k lists are faiss' own heaps (``addn``), fed by
numpy's BLAS (see :func:`_search_symmetric_heaps`): at SOP scale (60,502 x 512) 15.8 s against
32.5 s for PML's ``AccuracyCalculator`` in the same run (``benchmarks/eval_speed.py --repeats
3``, quiet machine), with identical R@1, MAP@R and R-precision.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dasl.errors import ConfigError, DataError
from dasl.metrics.validation import as_embeddings, check_distance
from dasl.utils.faiss_import import require_faiss

# Default block sizes. torch's CPU top-k switches from nth_element to a much cheaper heap-like
# partial sort once a row is wider than 64 k, so blocks are wide: a symmetric block is at most
# 8192 x 8192 floats (256 MiB, plus its transpose), a plain query chunk x gallery near 2^26
# floats (256 MiB). Measured at 16,000 x 512, k=100: 2048-blocks 11.2 s, 8192-blocks 6.9 s.
_SYM_BLOCK = 8192
_PLAIN_ELEMS = 1 << 26


def euclidean_centre(gallery: torch.Tensor) -> torch.Tensor:
    """A centre for euclidean scores: the gallery mean rounded to a power-of-two grid at the
    data's per-coordinate spread (rms distance to the mean / sqrt(D)).

    Subtracting it removes any offset (distances are translation-invariant), leaving residual
    offsets below the spread, so ``|q|^2 + |g|^2 - 2<q, g>`` rounds at the scale of the
    data's spread. Rounding to a coarse power-of-two grid keeps the subtraction exact for data
    on a grid (small integers, +-1), so exact ties stay exact ties.
    """
    g64 = gallery.double()
    mean = g64.mean(0)
    spread = math.sqrt(float((g64 - mean).square().sum(1).mean()) / max(1, g64.shape[1]))
    if not spread > 0 or not math.isfinite(spread):
        return mean.to(gallery.dtype)
    unit = 2.0 ** math.floor(math.log2(spread))
    return (torch.round(mean / unit) * unit).to(gallery.dtype)


def prepare(x: torch.Tensor, distance: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embeddings as used for scoring, plus squared norms for ``euclidean`` (else None)."""
    if distance == "cosine":
        return torch.nn.functional.normalize(x, dim=1), None
    if distance == "euclidean":
        return x, (x * x).sum(dim=1)
    return x, None


def block_scores(
    q: torch.Tensor,
    g: torch.Tensor,
    q_sq: torch.Tensor | None,
    g_sq: torch.Tensor | None,
) -> torch.Tensor:
    """Similarity block (higher = nearer) of rows ``q`` against rows ``g``."""
    s = q @ g.T
    if q_sq is not None and g_sq is not None:
        # -(|q|^2 + |g|^2 - 2 q.g), written symmetrically in q and g so a block and its
        # transpose give bit-identical scores (needed by the symmetric path).
        s.mul_(2.0).sub_(q_sq[:, None]).sub_(g_sq[None, :])
    return s


def _merge(
    vals: torch.Tensor, idx: torch.Tensor, new_vals: torch.Tensor, new_idx: torch.Tensor, kk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.cat([vals, new_vals], dim=1)
    i = torch.cat([idx, new_idx], dim=1)
    v, pos = v.topk(kk, dim=1)
    return v, i.gather(1, pos)


def _search_plain(
    q: torch.Tensor,
    g: torch.Tensor,
    q_sq: torch.Tensor | None,
    g_sq: torch.Tensor | None,
    kk: int,
    exclude_self: bool,
    chunk: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``kk`` candidates (unordered ties) per query row, chunked over queries."""
    out_v, out_i = [], []
    for a0 in range(0, q.shape[0], chunk):
        a1 = min(a0 + chunk, q.shape[0])
        s = block_scores(q[a0:a1], g, None if q_sq is None else q_sq[a0:a1], g_sq)
        if exclude_self:
            rows = torch.arange(a1 - a0, device=s.device)
            s[rows, rows + a0] = float("-inf")
        v, i = s.topk(kk, dim=1)
        out_v.append(v)
        out_i.append(i)
    return torch.cat(out_v), torch.cat(out_i)


def _search_symmetric(
    x: torch.Tensor, x_sq: torch.Tensor | None, kk: int, block: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``kk`` candidates per row of ``x`` against ``x`` itself (self excluded), from the
    upper-triangular blocks only: block (I, J) updates the rows of I and, transposed, those of J."""
    n = x.shape[0]
    vals = torch.full((n, kk), float("-inf"), device=x.device)
    idx = torch.full((n, kk), -1, dtype=torch.long, device=x.device)
    starts = list(range(0, n, block))
    for a0 in starts:
        a1 = min(a0 + block, n)
        xa, sa = x[a0:a1], None if x_sq is None else x_sq[a0:a1]
        # Row candidates of block I are merged once per row block (fewer small top-k calls);
        # column candidates go straight into their rows' running buffers.
        row_v, row_i = [vals[a0:a1]], [idx[a0:a1]]
        for b0 in starts:
            if b0 < a0:
                continue
            b1 = min(b0 + block, n)
            s = block_scores(xa, x[b0:b1], sa, None if x_sq is None else x_sq[b0:b1])
            if b0 == a0:
                s.fill_diagonal_(float("-inf"))
            v, i = s.topk(min(kk, b1 - b0), dim=1)
            row_v.append(v)
            row_i.append(i + b0)
            if b0 != a0:
                v, i = s.T.contiguous().topk(min(kk, a1 - a0), dim=1)
                vals[b0:b1], idx[b0:b1] = _merge(vals[b0:b1], idx[b0:b1], v, i + a0, kk)
        v, pos = torch.cat(row_v, dim=1).topk(kk, dim=1)
        vals[a0:a1], idx[a0:a1] = v, torch.cat(row_i, dim=1).gather(1, pos)
    return vals, idx


def _heap_arrays(n: int, kk: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """faiss min-heaps (the ``kk`` largest scores) of ``n`` rows over numpy buffers."""
    faiss = require_faiss()
    vals = np.empty((n, kk), dtype=np.float32)
    ids = np.empty((n, kk), dtype=np.int64)
    heaps = faiss.float_minheap_array_t()
    heaps.nh, heaps.k = n, kk
    heaps.val, heaps.ids = faiss.swig_ptr(vals), faiss.swig_ptr(ids)
    heaps.heapify()
    return heaps, vals, ids


def _augmented(x: torch.Tensor, x_sq: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """Operands whose plain product is the score: ``[2x, -|x|^2, -1] . [y, 1, |y|^2] =
    2<x, y> - |x|^2 - |y|^2`` (euclidean), else ``x`` and ``y`` themselves (dot).

    The norms ride in the GEMM's inner dimension (2 of 514 columns) instead of two more
    passes over every score block, which cost a third of the GEMM time at 60 k x 512.
    """
    x = x.detach()
    if x_sq is None:
        return x.numpy(), x.numpy()
    ones = torch.ones(x.shape[0], 1, dtype=x.dtype)
    sq = x_sq.detach()[:, None]
    left = torch.cat([2.0 * x, -sq, -ones], dim=1)
    right = torch.cat([x, ones, sq], dim=1)
    return left.numpy(), right.numpy()


def _search_symmetric_heaps(
    x: torch.Tensor, x_sq: torch.Tensor | None, kk: int, block: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """CPU version of :func:`_search_symmetric`: the same blocks, with faiss' heaps as the
    running top-k and numpy's BLAS for the block products.

    - faiss' ``addn`` streams a block through per-row heaps with one comparison against the
      row's current ``kk``-th best per score (as faiss' own flat search does), where a top-k
      moves every score.
    - Block (I, J) feeds the rows of I directly. The rows of J need its columns, and a
      transposed copy costs as much as the heap pass, so only the scores above row j's
      current ``kk``-th best are gathered (``s > top``, one vectorized pass) and pushed with
      explicit ids. The diagonal blocks go first, so every heap is full before any column
      is filtered: a block then holds about ``kk`` candidates per column, not ``block``.
    - numpy's OpenBLAS sgemm: on the AMD EPYC CI machine torch's MKL sgemm reaches 108
      GFLOP/s on a 7,563 x 7,563 x 512 block, OpenBLAS 205 GFLOP/s.
    """
    faiss = require_faiss()
    n = x.shape[0]
    heaps, vals, ids = _heap_arrays(n, kk)
    left, right = _augmented(x, x_sq)
    spans = [(a, min(a + block, n)) for a in range(0, n, block)]
    # One score buffer and one mask buffer: a fresh 229 MB array per block page-faults.
    buf = np.empty(block * block, dtype=np.float32)
    mask = np.empty(block * block, dtype=bool)

    def scores(a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
        out = buf[: (a[1] - a[0]) * (b[1] - b[0])].reshape(a[1] - a[0], b[1] - b[0])
        return np.matmul(left[a[0] : a[1]], right[b[0] : b[1]].T, out=out)

    threads = torch.get_num_threads()
    saved = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            for a in spans:
                s = scores(a, a)
                np.fill_diagonal(s, -np.inf)
                heaps.addn(s.shape[1], faiss.swig_ptr(s), a[0], a[0], s.shape[0])
            for ia, a in enumerate(spans):
                for b in spans[ia + 1 :]:
                    s = scores(a, b)
                    na, nb = s.shape
                    heaps.addn(nb, faiss.swig_ptr(s), b[0], a[0], na)
                    # numpy here: greater + flatnonzero measured 32 ms on a 7,563^2 block,
                    # torch's gt + nonzero 63 ms.
                    top = np.ascontiguousarray(vals[b[0] : b[1], 0])  # each heap's minimum
                    m = np.greater(s, top, out=mask[: na * nb].reshape(na, nb))
                    flat = np.flatnonzero(m)
                    if not flat.size:
                        continue
                    # Grouped by column, rows ascending within (a stable radix sort on int16).
                    col = (flat % nb).astype(np.int16 if nb <= 2**15 else np.int64)
                    flat = flat[np.argsort(col, kind="stable")]
                    i, j = np.divmod(flat, nb)
                    counts = np.bincount(j, minlength=nb)
                    pos = np.arange(j.size) - (np.cumsum(counts) - counts)[j]
                    width = int(counts.max())
                    cand = np.full((nb, width), -np.inf, dtype=np.float32)
                    cand[j, pos] = s.reshape(-1)[flat]
                    cand_ids = np.full((nb, width), -1, dtype=np.int64)
                    cand_ids[j, pos] = i + a[0]
                    heaps.addn_with_ids(
                        width,
                        faiss.swig_ptr(cand),
                        faiss.swig_ptr(cand_ids),
                        width,
                        b[0],
                        nb,
                    )
        heaps.reorder()  # each row sorted by score, descending
    finally:
        faiss.omp_set_num_threads(saved)
    return torch.from_numpy(vals), torch.from_numpy(ids)


def _order(vals: torch.Tensor, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First ``k`` of each row ordered by (score descending, index ascending)."""
    idx_sorted, perm = idx.sort(dim=1)
    vals = vals.gather(1, perm)
    vals, perm = vals.sort(dim=1, descending=True, stable=True)
    return vals[:, :k], idx_sorted.gather(1, perm)[:, :k]


def _unit_roundoff() -> float:
    """Unit roundoff of float32 matrix products under torch's matmul precision setting
    ("high" allows TF32, "medium" bfloat16; numpy's sgemm is always full float32)."""
    precision = torch.get_float32_matmul_precision()
    return {"highest": 2.0**-24, "high": 2.0**-11}.get(precision, 2.0**-8)


def _error_bound(q: torch.Tensor, g: torch.Tensor, euclidean: bool) -> torch.Tensor:
    """Per query row, a float32 bound on |float32 score - exact score| over every gallery row,
    for any summation order a BLAS may choose (Higham's ``|fl(x.y) - x.y| <= n u sum|x_i y_i|``).

    euclidean ``2<q, g> - |q|^2 - |g|^2`` (norms from a float32 sum, or riding in the product
    as two extra columns): ``(3D + 8) u (|q|^2 + max |g|^2)``; dot: ``(D + 2) u |q| max |g|``.
    The float32 norms are inflated by 1% for their own rounding.
    """
    d = q.shape[1]
    u = _unit_roundoff()
    qn = q.square().sum(1) * 1.01
    gn = qn.max() if g is q else g.square().sum(1).max() * 1.01
    if euclidean:
        return (3 * d + 8) * u * (qn + gn)
    return (d + 2) * u * (qn * gn).sqrt()


def _exact(
    q: torch.Tensor, g: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, euclidean: bool
) -> torch.Tensor:
    """float64 scores of the pairs ``(rows[i], cols[i])``: ``-sum_d (q_d - g_d)^2`` (euclidean)
    or ``sum_d q_d g_d`` (dot), each pair reduced on its own (no GEMM), so equal gallery rows
    get bit-equal scores whatever the pair's position, block or path."""
    out = torch.empty(rows.numel(), dtype=torch.float64, device=q.device)
    step = max(1, (1 << 22) // max(1, q.shape[1]))
    for c0 in range(0, rows.numel(), step):
        a = q[rows[c0 : c0 + step]].double()
        b = g[cols[c0 : c0 + step]].double()
        out[c0 : c0 + step] = -(a - b).square().sum(1) if euclidean else (a * b).sum(1)
    return out


def _by_rule(
    vals: torch.Tensor, idx: torch.Tensor, rows: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat pairs sorted by (row ascending, score descending, index ascending), then the first
    ``k`` of every row: ``(rows, vals, idx)`` of the kept pairs, each row's in rule order."""
    order = idx.argsort(stable=True)
    order = order[vals[order].argsort(descending=True, stable=True)]
    order = order[rows[order].argsort(stable=True)]
    r = rows[order]
    start = torch.searchsorted(r, r, right=False)
    keep = (torch.arange(r.numel(), device=r.device) - start) < k
    return r[keep], vals[order][keep], idx[order][keep]


def _full_rows(
    rows: torch.Tensor,
    q: torch.Tensor,
    g: torch.Tensor,
    q_sq: torch.Tensor | None,
    g_sq: torch.Tensor | None,
    bound: torch.Tensor,
    k: int,
    exclude_self: bool,
    chunk: int,
    euclidean: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows whose candidate list cannot decide the top ``k``: every gallery score in float32,
    then the exact score of each item within ``2 * bound`` of the k-th float32 score (this set
    holds every item of the exact top ``k``: each exact score is within ``bound`` of its float32
    one), sorted by the rule."""
    out_v = torch.empty(rows.numel(), k, dtype=torch.float64, device=q.device)
    out_i = torch.empty(rows.numel(), k, dtype=torch.long, device=q.device)
    for c0 in range(0, rows.numel(), chunk):
        r = rows[c0 : c0 + chunk]
        s = block_scores(q[r], g, None if q_sq is None else q_sq[r], g_sq)
        if exclude_self:
            s[torch.arange(r.numel(), device=s.device), r] = float("-inf")
        kth = s.topk(k, dim=1).values[:, -1].double()
        pr, pc = (s.double() >= (kth - 2 * bound[r])[:, None]).nonzero(as_tuple=True)
        if exclude_self:
            keep = pc != r[pr]
            pr, pc = pr[keep], pc[keep]
        v = _exact(q, g, r[pr], pc, euclidean)
        _, v, i = _by_rule(v, pc, pr, k)
        out_v[c0 : c0 + r.numel()] = v.view(-1, k)
        out_i[c0 : c0 + r.numel()] = i.view(-1, k)
    return out_v, out_i


def _settle(
    vals: torch.Tensor,
    idx: torch.Tensor,
    q: torch.Tensor,
    g: torch.Tensor,
    q_sq: torch.Tensor | None,
    g_sq: torch.Tensor | None,
    k: int,
    exclude_self: bool,
    chunk_size: int | None,
    euclidean: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``k`` neighbours by the rule, from each row's float32 top-``kk`` candidates.

    Paths (heap, blockwise, plain; CPU or accelerator) round the same score differently, so
    equal or nearly equal scores may come out in any order. With ``b`` the row's error bound
    (:func:`_error_bound`):

    - a row whose first ``k + 1`` float32 scores are each more than ``2b`` apart has one exact
      order, the float32 one (kept as it is: most rows);
    - any other row is rescored exactly (:func:`_exact`) and sorted by (exact score desc,
      index asc); the set is certain when the k-th exact score exceeds the last candidate's
      float32 score by more than ``b`` (no item outside the candidates can reach it);
    - otherwise the row is searched in full (:func:`_full_rows`).
    """
    n, kk = vals.shape
    # Placeholders rank last as -inf: heap slots never filled (id -1, -FLT_MAX) and the
    # query itself (plain path); NaN/overflowed scores too (then reported by the caller).
    bad = (idx < 0) | ~(vals > float("-inf"))
    if exclude_self:
        bad |= idx == torch.arange(n, device=idx.device)[:, None]
    vals = vals.masked_fill(bad, float("-inf"))
    v32, i32 = _order(vals, idx, kk)
    bound = _error_bound(q, g, euclidean)
    n_avail = g.shape[0] - int(exclude_self)
    # Differences of nearby float32 values are exact (Sterbenz); of distant ones, far above 2b.
    gaps = (v32[:, : min(k + 1, kk)].diff(dim=1).neg() <= 2 * bound[:, None]).any(1)
    # A row with a -inf candidate has fewer than kk finite scores; its -inf ones are
    # placeholders (self, heap slots never filled), ranked last.
    unclear = (gaps | ~torch.isfinite(v32[:, k - 1])).nonzero().flatten()
    out_v, out_i = v32[:, :k].clone(), i32[:, :k].clone()
    if unclear.numel():
        cv, ci = v32[unclear], i32[unclear]
        finite = torch.isfinite(cv)
        rows = unclear[:, None].expand(-1, kk)
        ex = torch.full(cv.shape, float("-inf"), dtype=torch.float64, device=cv.device)
        ex[finite] = _exact(q, g, rows[finite], ci[finite], euclidean)
        flat_rows = torch.arange(unclear.numel(), device=cv.device)[:, None].expand(-1, kk)
        _, sv, si = _by_rule(ex.flatten(), ci.flatten(), flat_rows.flatten(), k)
        sv, si = sv.view(-1, k), si.view(-1, k)
        complete = kk >= n_avail
        sure = sv[:, k - 1] > cv[:, kk - 1].double() + bound[unclear].double()
        if complete:
            sure = torch.ones_like(sure)
        out_v[unclear], out_i[unclear] = sv.float(), si
        redo = unclear[~sure]
        if redo.numel():
            chunk = chunk_size or max(1, min(redo.numel(), _PLAIN_ELEMS // max(g.shape[0], 1)))
            fv, out_i[redo] = _full_rows(
                redo, q, g, q_sq, g_sq, bound.double(), k, exclude_self, chunk, euclidean
            )
            out_v[redo] = fv.float()
    return out_v, out_i


# Candidates beyond k: near-ties straddling the k-th place are then settled from the candidate
# list instead of a full-row search.
_MARGIN = 2


def knn_scores(
    query: torch.Tensor,
    gallery: torch.Tensor | None,
    k: int,
    *,
    distance: str = "cosine",
    exclude_self: bool = False,
    chunk_size: int | None = None,
    symmetric: bool | None = None,
    path: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` similarity scores and gallery indices, ordered by the ranking rule.

    Inputs are validated float32 tensors on the compute device. ``gallery=None`` means the
    gallery is ``query`` itself; then ``symmetric`` (default True) uses the half-matmul path.
    ``path`` forces a candidate search ("heap": faiss heaps, the CPU default; "blockwise":
    top-k per block, the accelerator default; "plain": query chunks against the whole gallery)
    so tests can compare them; every path gives the same neighbours.
    """
    self_gallery = gallery is None
    g_emb = query if gallery is None else gallery
    n_q, n_g = query.shape[0], g_emb.shape[0]
    if exclude_self and n_q != n_g:
        raise DataError(
            f"exclude_self needs query i to be gallery item i, but query has {n_q} rows and "
            f"gallery {n_g}"
        )
    available = n_g - int(exclude_self)
    if not 1 <= k <= available:
        raise ConfigError(
            f"k={k} must be between 1 and the gallery size{' minus self' if exclude_self else ''} "
            f"({available})"
        )
    if path not in (None, "heap", "blockwise", "plain"):
        raise ConfigError(f"path must be None, 'heap', 'blockwise' or 'plain'; got {path!r}")
    internal = distance
    if distance == "cosine":
        # Rank unit vectors by -|u - v|^2 = 2 cos - 2 (centred, below): float32 cosines of
        # nearly parallel vectors (features far from the origin) cannot resolve 1 - cos ~
        # theta^2 / 2, the centred euclidean form can.
        query = torch.nn.functional.normalize(query, dim=1)
        g_emb = query if self_gallery else torch.nn.functional.normalize(g_emb, dim=1)
        internal = "euclidean"
    if internal == "euclidean":
        centre = euclidean_centre(g_emb)
        query = query - centre
        g_emb = query if self_gallery else g_emb - centre
    q, q_sq = prepare(query, internal)
    g, g_sq = (q, q_sq) if self_gallery else prepare(g_emb, internal)
    kk = min(k + 1 + _MARGIN, n_g)
    use_sym = self_gallery and exclude_self and (symmetric is None or symmetric)
    if path is not None:
        use_sym = path != "plain"
        if use_sym and not (self_gallery and exclude_self):
            raise ConfigError(f"path={path!r} needs gallery=None and exclude_self=True")
    if use_sym:
        # Equal blocks (60,502 -> 8 x 7,563) rather than 7 full ones and a thin remainder.
        block = chunk_size or -(-n_q // -(-n_q // _SYM_BLOCK))
        heap = path == "heap" or (path is None and q.device.type == "cpu")
        search = _search_symmetric_heaps if heap else _search_symmetric
        vals, idx = search(q, q_sq, kk, block)
    else:
        chunk = chunk_size or max(1, min(n_q, _PLAIN_ELEMS // max(n_g, 1)))
        vals, idx = _search_plain(q, g, q_sq, g_sq, kk, exclude_self, chunk)
    out_v, out_i = _settle(
        vals, idx, q, g, q_sq, g_sq, k, exclude_self, chunk_size, internal == "euclidean"
    )
    if not bool(torch.isfinite(out_v).all()):
        raise DataError("similarities overflowed float32 (inf/NaN scores); rescale the embeddings")
    if distance == "cosine":
        out_v = 1.0 + 0.5 * out_v  # cos = 1 - |u - v|^2 / 2
    return out_v, out_i


def scores_to_distances(scores: torch.Tensor, distance: str) -> torch.Tensor:
    if distance == "cosine":
        return 1.0 - scores
    if distance == "euclidean":
        return (-scores).clamp_min(0.0).sqrt()
    return -scores


def knn(
    query: Any,
    gallery: Any | None = None,
    k: int = 1,
    *,
    distance: str = "cosine",
    exclude_self: bool | None = None,
    chunk_size: int | None = None,
    device: str | torch.device | None = None,
    symmetric: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``k`` nearest gallery items of every query: ``(distances, indices)``, each (Nq, k).

    ``gallery=None`` searches ``query`` against itself and by default excludes each query's own
    row **by index** (duplicates of it stay eligible). Rows are ordered by distance ascending,
    ties by smaller gallery index. Distances: cosine ``1 - cos``, euclidean ``|q - g|``,
    dot ``-<q, g>``. ``chunk_size`` bounds memory (query rows per block); ``symmetric`` (only for
    ``gallery=None``) toggles the half-matmul path, which gives the same result.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive int; got {k!r}")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ConfigError(f"chunk_size must be a positive int or None; got {chunk_size!r}")
    check_distance(distance)
    dev = torch.device(device) if device is not None else None
    q = as_embeddings(query, "query")
    q = q.to(dev) if dev is not None else q
    g = None
    if gallery is not None:
        g = as_embeddings(gallery, "gallery").to(q.device)
        if g.shape[1] != q.shape[1]:
            raise DataError(
                f"query has dimension {q.shape[1]} but gallery has {g.shape[1]}; they must match"
            )
    if exclude_self is None:
        exclude_self = gallery is None
    scores, idx = knn_scores(
        q,
        g,
        k,
        distance=distance,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
        symmetric=symmetric,
    )
    return scores_to_distances(scores, distance), idx
