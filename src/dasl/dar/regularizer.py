"""Difference alignment regularization ``R_align`` on a mini-batch (METHOD.md, "Estimators").

``difference_alignment`` is the functional core; ``DifferenceAlignmentRegularizer`` is a thin
``nn.Module`` that stores the options (and the chain generator).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dasl.dar.ctv import ctv_sum, num_column_pairs, zero_like_graph
from dasl.dar.exact_l2 import DEFAULT_BLOCK_ELEMENTS, ctv_l2_columns, ctv_l2_pairs_gram
from dasl.dar.measures import DIFFERENCES, ESTIMATORS, MEASURES, REDUCTIONS, check_choice
from dasl.dar.pairs import chain_from_permutation, inter_class_pairs
from dasl.dar.validation import check_batch, check_finite, check_num_chains

#: ``l2`` kernel choice: "auto" picks per regime (see ``_use_gram``), or force one.
L2_KERNELS: tuple[str, ...] = ("auto", "gram", "columns")


def _use_gram(n: int, h: int, kernel: str) -> bool:
    """Gram tiles cost ~a dozen cheap passes per entry, matmul tiles ``3 x 2h`` flops per entry
    (forward tile plus two gradient matmuls). Measured on 1 CPU thread, N=120, 60 classes:
    h=512 Gram 0.11-0.18 s vs columns several seconds; the two meet around h ~ 8-16."""
    if kernel != "auto":
        return kernel == "gram"
    return h >= 16


def _differences(z: Tensor, src: Tensor, dst: Tensor, difference: str) -> Tensor:
    d = z.index_select(0, src) - z.index_select(0, dst)
    return d.abs() if difference == "abs" else d


def _l2sq_signed_exact(z: Tensor, labels: Tensor) -> tuple[Tensor, int]:
    """``sum_{p<q} ||m_p - m_q||^2`` for signed inter-class differences, without forming M.

    ``H sum_p ||m_p||^2 - ||sum_p m_p||^2`` with
    ``sum_p ||m_p||^2 = (N sum_i ||z_i||^2 - ||sum_i z_i||^2)
                       - sum_c (n_c sum_{i in c} ||z_i||^2 - ||s_c||^2)`` (all pairs minus
    intra-class pairs; ``s_c`` the class sums) and ``sum_p m_p = sum_i c_i z_i`` with
    ``c_i = #{j > i: y_j != y_i} - #{j < i: y_j != y_i}``. O(N h) float work (on centred z).
    """
    n = z.shape[0]
    zc = z - z.mean(0, keepdim=True)
    _, inv, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    h_cols = int((n * n - int((counts * counts).sum())) // 2)
    sqn = (zc * zc).sum(1)
    class_sums = zc.new_zeros(counts.shape[0], zc.shape[1]).index_add_(0, inv, zc)
    class_sq = zc.new_zeros(counts.shape[0]).index_add_(0, inv, sqn)
    total_sum = zc.sum(0)
    all_pairs = n * sqn.sum() - (total_sum * total_sum).sum()
    intra = (counts.to(zc.dtype) * class_sq).sum() - (class_sums * class_sums).sum()
    sum_sq = all_pairs - intra
    # c_i from per-class running counts: same-class items before i is i's rank within its
    # class; a stable sort by class gives it in O(N log N) memory O(N) (a one-hot cumsum
    # would be N x C, hundreds of MB with instance labels).
    idx = torch.arange(n, device=z.device)
    order = torch.sort(inv, stable=True).indices
    starts = torch.cumsum(counts, 0) - counts
    same_before = torch.empty_like(inv)
    same_before[order] = idx - starts[inv[order]]
    same_after = counts[inv] - 1 - same_before
    diff_before = idx - same_before
    diff_after = (n - 1 - idx) - same_after
    coef = (diff_after - diff_before).to(zc.dtype)
    vec = coef @ zc
    return h_cols * sum_sq - (vec * vec).sum(), h_cols


def _exact(
    z: Tensor, labels: Tensor, measure: str, difference: str, block: int, l2_kernel: str
) -> tuple[Tensor, int]:
    if measure == "l2sq" and difference == "signed":
        return _l2sq_signed_exact(z, labels)
    i_idx, j_idx = inter_class_pairs(labels)
    h_cols = int(i_idx.shape[0])
    if h_cols < 2:
        return zero_like_graph(z), h_cols
    if measure == "l2" and difference == "signed" and _use_gram(*z.shape, l2_kernel):
        return ctv_l2_pairs_gram(z, i_idx, j_idx, block), h_cols
    m = _differences(z, i_idx, j_idx, difference)
    if measure == "l2":
        return ctv_l2_columns(m, block), h_cols
    return ctv_sum(m, measure, block), h_cols


def _chain(
    z: Tensor,
    labels: Tensor,
    measure: str,
    difference: str,
    reduction: str,
    num_chains: int,
    generator: torch.Generator | None,
    block: int,
) -> Tensor:
    n = z.shape[0]
    lab = labels.detach().cpu().tolist()  # one host sync for device labels (chain is host-built)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    total = zero_like_graph(z)
    for _ in range(num_chains):
        perm = torch.randperm(n, generator=generator, device=gen_device).tolist()
        src, dst = chain_from_permutation(perm, lab)
        if len(src) < 2:
            continue
        src_t = torch.tensor(src, device=z.device)
        dst_t = torch.tensor(dst, device=z.device)
        value = ctv_sum(_differences(z, src_t, dst_t, difference), measure, block)
        if reduction == "mean":
            value = value / num_column_pairs(len(src))
        total = total + value
    return total / num_chains


def difference_alignment(
    embeddings: Tensor,
    labels: Tensor,
    measure: str = "l2",
    estimator: str = "exact",
    difference: str = "signed",
    reduction: str = "mean",
    num_chains: int = 1,
    generator: torch.Generator | None = None,
    *,
    l2_kernel: str = "auto",
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> Tensor:
    """The difference alignment regularizer ``R_align`` of one batch (a float scalar).

    Columns are first-order differences ``d(i, j) = z_i - z_j`` (``difference="signed"``; the
    orientation is the batch order ``i < j``, which is random under shuffling) or
    ``|z_i - z_j|`` elementwise (``"abs"``, orientation-free).

    - ``estimator="exact"``: ``||M||_ctv = sum_{p<q} G(m_p - m_q)`` over the columns
      ``d(i, j)``, ``i < j``, ``y_i != y_j`` (``H`` of them); the poster's identity:
      the sum of ``G(d(i,j) - d(k,l))`` over ordered pairs of distinct inter-class pairs is
      ``2 ||M||_ctv``. ``reduction="mean"`` divides by ``H (H - 1) / 2``.
    - ``estimator="chain"``: per chain, a random permutation (``torch.randperm`` with
      ``generator``) arranged by ``pairs.chain_from_permutation`` into ``b_0 .. b_n`` with
      differing consecutive labels; CTV of the ``n`` columns ``d(b_t, b_{t+1})`` (mean: divided
      by ``n (n - 1) / 2``), averaged over ``num_chains`` chains (a chain with fewer than two
      columns counts as 0). Labels are read on the host to build the chain (one device sync).

    ``G`` is ``measure``: ``"l2"``, ``"l1"``, ``"linf"`` (norms) or ``"l2sq"`` (squared l2,
    not a norm). Fewer than two columns (one class, ``N < 2``) give exactly 0 with a zero
    gradient. Half-precision input (or autocast) is computed in float32; the result is
    float64 for float64 input and float32 otherwise. At kinks (zero differences, l1 ties,
    linf ties) a zero / valid subgradient is used, never NaN.

    ``l2_kernel`` (signed l2 exact only): ``"gram"`` (tiles from the N x N Gram matrix),
    ``"columns"`` (matmul tiles of M) or ``"auto"``. ``block_elements`` bounds tile size.

    Example:
        >>> import torch
        >>> from dasl.dar import difference_alignment
        >>> z = torch.randn(8, 4, requires_grad=True)
        >>> y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
        >>> r = difference_alignment(z, y, measure="l2", reduction="mean")
        >>> r.backward()
        >>> bool(torch.isfinite(z.grad).all())
        True
    """
    check_batch(embeddings, labels)
    check_choice("measure", measure, MEASURES)
    check_choice("estimator", estimator, ESTIMATORS)
    check_choice("difference", difference, DIFFERENCES)
    check_choice("reduction", reduction, REDUCTIONS)
    check_choice("l2_kernel", l2_kernel, L2_KERNELS)
    num_chains = check_num_chains(num_chains)
    check_finite(embeddings)
    out_dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        z = embeddings.to(out_dtype)
        if estimator == "chain":
            return _chain(
                z, labels, measure, difference, reduction, num_chains, generator, block_elements
            )
        total, h_cols = _exact(z, labels, measure, difference, block_elements, l2_kernel)
        if h_cols < 2:
            return zero_like_graph(z)
        if reduction == "mean":
            total = total / num_column_pairs(h_cols)
        return total


class DifferenceAlignmentRegularizer(nn.Module):
    """``R_align(embeddings, labels)`` as a module; see ``difference_alignment`` for the formula.

    Args:
        measure: ``"l2"`` (default), ``"l1"``, ``"linf"``, ``"l2sq"``.
        estimator: ``"exact"`` (all inter-class pairs) or ``"chain"`` (stochastic form).
        difference: ``"signed"`` (``z_i - z_j``, orientation = batch order) or ``"abs"``.
        reduction: ``"mean"`` (per column pair) or ``"sum"`` (the literal ``||M||_ctv``).
        num_chains: chains averaged by the chain estimator.
        generator: ``torch.Generator`` for the chain permutations (reproducible draws).

    Example:
        >>> import torch
        >>> from dasl.dar import DifferenceAlignmentRegularizer
        >>> reg = DifferenceAlignmentRegularizer(measure="l1", reduction="sum")
        >>> z = torch.tensor([[0.0], [1.0], [3.0]])
        >>> float(reg(z, torch.tensor([0, 1, 1])))  # columns -1, -3: |-1 - -3|
        2.0
    """

    def __init__(
        self,
        measure: str = "l2",
        estimator: str = "exact",
        difference: str = "signed",
        reduction: str = "mean",
        num_chains: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.measure = check_choice("measure", measure, MEASURES)
        self.estimator = check_choice("estimator", estimator, ESTIMATORS)
        self.difference = check_choice("difference", difference, DIFFERENCES)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.num_chains = check_num_chains(num_chains)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}"
            )
        self.generator = generator

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return difference_alignment(
            embeddings,
            labels,
            measure=self.measure,
            estimator=self.estimator,
            difference=self.difference,
            reduction=self.reduction,
            num_chains=self.num_chains,
            generator=self.generator,
        )

    def extra_repr(self) -> str:
        return (
            f"measure={self.measure!r}, estimator={self.estimator!r}, "
            f"difference={self.difference!r}, reduction={self.reduction!r}, "
            f"num_chains={self.num_chains}"
        )


__all__ = [
    "DifferenceAlignmentRegularizer",
    "difference_alignment",
]
