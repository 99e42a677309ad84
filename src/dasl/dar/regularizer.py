"""Difference alignment regularization ``R_align`` on a mini-batch (METHOD.md, "Estimators").

``difference_alignment`` is the functional core; ``DifferenceAlignmentRegularizer`` is a thin
``nn.Module`` that stores the options (and the chain generator).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dasl.choices import DAR_ESTIMATORS
from dasl.dar.ctv import ctv_sum, default_block_elements, num_column_pairs, zero_like_graph
from dasl.dar.exact_l2 import ctv_l2_pairs_gram
from dasl.dar.measures import (
    BACKENDS,
    DIFFERENCES,
    MEASURES,
    REDUCTIONS,
    check_choice,
)
from dasl.dar.pairs import chain_steps, class_codes, inter_class_pairs, orient_by_label
from dasl.dar.validation import check_batch, check_finite, check_max_columns, check_num_chains
from dasl.errors import ConfigError, DependencyError

#: ``l2`` kernel choice: "auto" picks per regime (see ``_use_gram``), or force one.
L2_KERNELS: tuple[str, ...] = ("auto", "gram", "columns")

#: The exact estimator's l2, l1 and linf paths do O(H^2) work on H inter-class columns; past
#: this many columns (N ~ 720 with many classes; a PML CrossBatchMemory bank of 4,096 gives
#: H ~ 9M) a step would take hours, so they refuse (the chain estimator is O(N h)).
MAX_EXACT_COLUMNS = 1 << 18


def _use_gram(n: int, h: int, kernel: str, device: torch.device | None = None) -> bool:
    """Gram tiles cost ~a dozen cheap passes per entry, matmul tiles ``3 x 2h`` flops per entry
    (forward tile plus two gradient matmuls). Measured on 1 CPU thread, N=120, 60 classes:
    h=512 Gram 0.11-0.18 s vs columns several seconds; the two meet around h ~ 8-16. On an
    accelerator the matmuls are cheap and the Gram tiles' gathers and scatters are not:
    columns won at every size measured on an H200 (N=120/h=512 8.3 vs 10.1 ms, N=256/h=128
    44 vs 58 ms, N=512/h=128 421 vs 431 ms, both with 64M-entry tiles)."""
    if kernel != "auto":
        return kernel == "gram"
    if device is not None and device.type != "cpu":
        return False
    return h >= 16


def fused_supported(measure: str, difference: str) -> bool:
    """The fused exact Triton kernels: l2 with signed or ordered differences
    (``triton_l2``; abs differences, ``|z_i - z_j|`` elementwise, break its pairwise-distance
    identity) and l1 / linf with every difference (``triton_lp``); l2sq has its own (#19)."""
    return (measure == "l2" and difference != "abs") or measure in ("l1", "linf")


def fused_pays(measure: str, backend: str) -> bool:
    """Whether ``backend`` selects a supported fused exact kernel: ``"triton"`` always;
    ``"auto"`` all but l1, whose torch path sorts each dimension (``O(H h log H)``) where the
    pairwise kernel does ``O(H^2 h)``: at N=120, h=512 about 1.3e10 coordinate pairs (some
    2-5 ms on an H100/H200) against the sort's 1.8 ms measured (METHOD-NOTES, #19 l1/linf)."""
    return backend == "triton" or measure != "l1"


def use_triton(backend: str, device: torch.device) -> bool:
    """``"auto"``: Triton on CUDA when it imports; ``"triton"``: always (the interpreter on
    the CPU; a clear error when triton is missing); ``"torch"``: never."""
    from dasl.dar.triton_common import triton_available

    if backend == "torch":
        return False
    if backend == "auto":
        return device.type == "cuda" and triton_available()
    if not triton_available():
        raise DependencyError(
            "backend='triton' needs the triton package (it ships with torch's CUDA wheels): "
            "install triton, or use backend='torch'"
        )
    return True


def _exact_fused(
    z: Tensor, labels: Tensor, measure: str, difference: str, max_columns: int
) -> tuple[Tensor, Tensor]:
    """The fused kernel's ``(S, H)``, ``H`` a device scalar (no host sync)."""
    n = labels.shape[0]
    # The interpreter's O(N^4) work, and l1 / linf's O(H^2 h) anywhere (as on the torch
    # paths): refused past max_columns column candidates (a host number: no sync).
    if z.device.type == "cpu" or measure != "l2":
        check_max_columns(n * (n - 1) // 2, max_columns, measure)
    codes, counts, _ = class_codes(labels)
    cnt = counts.to(z.dtype)
    h_cols = (n * n - (cnt * cnt).sum()) / 2
    if measure == "l2":
        from dasl.dar.triton_l2 import ctv_l2_fused

        return ctv_l2_fused(z, codes, difference == "ordered"), h_cols
    from dasl.dar.triton_lp import ctv_lp_fused

    return ctv_lp_fused(z, codes, measure, difference), h_cols


def _differences(z: Tensor, src: Tensor, dst: Tensor, difference: str) -> Tensor:
    d = z.index_select(0, src) - z.index_select(0, dst)
    return d.abs() if difference == "abs" else d


def _l2sq_oriented_exact(z: Tensor, labels: Tensor, difference: str) -> tuple[Tensor, Tensor]:
    """``S = sum_{p<q} ||m_p - m_q||^2 = H sum_p ||m_p - mbar||^2`` for oriented (``signed``
    or ``ordered``) inter-class differences, in O(N h) and without forming M or a host sync.

    Class-centred so that nothing cancels at the scale of the class means: with class means
    ``mu_a`` (centred on the batch mean: ``mu^_a``), ``e_i = z_i - mu_{y_i}``, each column is
    ``m_p = nu_p + eta_p`` (``nu_p = mu_{y_src} - mu_{y_dst}``, ``eta_p = e_src - e_dst``) and

        sum_p ||m_p - mbar||^2 = A + X + E,
        A = N sum_a n_a ||mu^_a||^2 - H ||nubar||^2           (class level, >= 0)
        X = -2 <nubar, sum_p eta_p>                          (sum_p <nu_p, eta_p> = 0)
        E = sum_i (N - n_{y_i}) ||e_i||^2 - ||sum_p eta_p||^2 / H   (within-class, >= 0)

    with ``sum_p eta_p = sum_i c_i e_i`` and ``H nubar = sum_i c_i mu^_{y_i}``, where ``c_i``
    = (#columns leaving ``i``) - (#columns entering ``i``). Each term is computed in float64
    from small centred quantities; ``S >= 0``, so a rounding-level negative result is
    clamped to 0 (where ``S = 0`` all columns are equal and the true gradient is 0 too).
    Returns ``(S, H)`` with ``H`` a device scalar.
    """
    n = z.shape[0]
    codes, counts, rank = class_codes(labels)
    cnt = counts.to(z.dtype)
    n_own = counts[codes]
    h_cols = (n * n - (cnt * cnt).sum()) / 2
    sums = z.new_zeros(n, z.shape[1]).index_add_(0, codes, z)
    mu = sums / cnt.clamp_min(1.0)[:, None]
    e = z - mu.index_select(0, codes)
    mu_hat = mu - z.mean(0, keepdim=True)
    if difference == "ordered":  # the smaller label is the source
        less = (counts.cumsum(0) - counts)[codes]
        coef = (n - less - n_own) - less
    else:  # batch order: i is the source of later inter-class items, the target of earlier
        idx = torch.arange(n, device=z.device)
        diff_before = idx - rank
        diff_after = (n - 1 - idx) - (n_own - 1 - rank)
        coef = diff_after - diff_before
    coef = coef.to(z.dtype)
    h_safe = h_cols.clamp_min(1.0)
    nu_bar = (coef @ mu_hat.index_select(0, codes)) / h_safe
    eta_sum = coef @ e
    class_part = n * (cnt * (mu_hat * mu_hat).sum(1)).sum() - h_safe * (nu_bar * nu_bar).sum()
    cross = -2.0 * (nu_bar * eta_sum).sum()
    within = ((n - n_own).to(z.dtype) * (e * e).sum(1)).sum() - (eta_sum * eta_sum).sum() / h_safe
    return (h_cols * (class_part + cross + within)).clamp_min(0.0), h_cols


def _exact(
    z: Tensor,
    labels: Tensor,
    measure: str,
    difference: str,
    block: int | None,
    l2_kernel: str,
    max_columns: int,
    masked: bool,
    backend: str = "torch",
) -> tuple[Tensor, int | Tensor]:
    if measure == "l2sq" and use_triton(backend, z.device):  # two launches, no host sync
        from dasl.dar.triton_l2sq import ctv_l2sq_fused

        return ctv_l2sq_fused(z, class_codes(labels)[0], difference)
    if measure == "l2sq" and difference != "abs":
        return _l2sq_oriented_exact(z, labels, difference)
    if (
        fused_supported(measure, difference)
        and fused_pays(measure, backend)
        and use_triton(backend, z.device)
    ):
        return _exact_fused(z, labels, measure, difference, max_columns)
    valid: Tensor | None = None
    if masked:
        # All N(N-1)/2 pairs, intra-class ones masked out: the shapes do not depend on the
        # labels, so nothing waits for the device (selecting them would: a nonzero()).
        n = labels.shape[0]
        i_idx, j_idx = torch.triu_indices(n, n, 1, device=labels.device)
        valid = labels.index_select(0, i_idx) != labels.index_select(0, j_idx)
        n_cols = int(i_idx.shape[0])
        check_max_columns(n_cols, max_columns, measure)
        if n_cols < 2:
            return zero_like_graph(z), 0
        h_cols: int | Tensor = valid.sum().to(z.dtype)
    else:
        i_idx, j_idx = inter_class_pairs(labels)
        h_cols = int(i_idx.shape[0])
        check_max_columns(h_cols, max_columns, measure)
        if h_cols < 2:
            return zero_like_graph(z), h_cols
    if difference == "ordered":
        i_idx, j_idx = orient_by_label(labels, i_idx, j_idx)
    budget = block or default_block_elements("l2", z.device)
    n_rows, dim = z.shape
    if measure == "l2" and difference != "abs" and _use_gram(n_rows, dim, l2_kernel, z.device):
        return ctv_l2_pairs_gram(z, i_idx, j_idx, budget, valid), h_cols
    m = _differences(z, i_idx, j_idx, difference)
    return ctv_sum(m, measure, block, valid), h_cols


def _chain_perm(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """A uniform permutation on ``device``: drawn there when the generator lives there (or is
    None), else drawn by the generator and copied (pinned, non-blocking: no host sync)."""
    gen_device = generator.device if generator is not None else device
    perm = torch.randperm(n, generator=generator, device=gen_device)
    if perm.device != device:
        if device.type == "cuda":
            perm = perm.pin_memory()
        perm = perm.to(device, non_blocking=True)
    return perm


def _chain(
    z: Tensor,
    labels: Tensor,
    measure: str,
    difference: str,
    reduction: str,
    num_chains: int,
    generator: torch.Generator | None,
    block: int | None,
    backend: str = "torch",
) -> Tensor:
    n = z.shape[0]
    total = zero_like_graph(z)
    if n < 3:  # fewer than two steps: no column pair
        return total
    fused = use_triton(backend, z.device)
    for _ in range(num_chains):
        perm = _chain_perm(n, generator, z.device)
        src, dst, valid = chain_steps(perm, labels)
        if fused:  # one kernel: columns gathered and labels tested in-kernel
            from dasl.dar.triton_chain import ctv_chain_fused

            value = ctv_chain_fused(z, labels, perm, measure, difference)
        else:
            if difference == "ordered":
                src, dst = orient_by_label(labels, src, dst)
            value = ctv_sum(_differences(z, src, dst, difference), measure, block, valid)
        if reduction == "mean":
            cols = valid.sum().to(z.dtype)  # a chain with < 2 columns has value 0 already
            value = value / (cols * (cols - 1) / 2).clamp_min(1.0)
        total = total + value
    return total / num_chains


def _finish(total: Tensor, h_cols: int | Tensor, reduction: str, z: Tensor) -> Tensor:
    """Apply the reduction; fewer than two columns give exactly 0 (zero gradient)."""
    if isinstance(h_cols, int):
        if h_cols < 2:
            return zero_like_graph(z)
        return total / num_column_pairs(h_cols) if reduction == "mean" else total
    # device scalar H (the O(N h) l2sq path): no host sync
    if reduction == "mean":
        total = total / (h_cols * (h_cols - 1) / 2).clamp_min(1.0)
    return torch.where(h_cols >= 2, total, zero_like_graph(z))


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
    block_elements: int | None = None,
    max_columns: int = MAX_EXACT_COLUMNS,
    masked_pairs: bool | None = None,
    backend: str = "auto",
) -> Tensor:
    """The difference alignment regularizer ``R_align`` of one batch (a float scalar).

    Columns are first-order differences ``d(i, j) = z_i - z_j`` (``difference="signed"``; the
    orientation is the batch order ``i < j``, which is random under shuffling),
    ``z_a - z_b`` with ``y_a < y_b`` (``"ordered"``: oriented by label, so the column set does
    not depend on the batch order) or ``|z_i - z_j|`` elementwise (``"abs"``).

    - ``estimator="exact"``: ``||M||_ctv = sum_{p<q} G(m_p - m_q)`` over the columns
      ``d(i, j)``, ``i < j``, ``y_i != y_j`` (``H`` of them); the poster's identity:
      the sum of ``G(d(i,j) - d(k,l))`` over ordered pairs of distinct inter-class pairs is
      ``2 ||M||_ctv``. ``reduction="mean"`` divides by ``H (H - 1) / 2``.
    - ``estimator="chain"``: per chain, a uniformly random permutation ``b_0 .. b_{N-1}``
      of the batch (``torch.randperm`` with ``generator``, on its device; steps by
      ``pairs.chain_steps``); CTV of the ``n`` columns ``d(b_t, b_{t+1})`` between
      different labels (mean: divided by ``n (n - 1) / 2``),
      averaged over ``num_chains`` chains (a chain with fewer than two columns counts as 0).
      Built with tensor ops on the device, equal-label steps masked: no host sync.
      With ``"ordered"`` each step is oriented by label.

    ``G`` is ``measure``: ``"l2"``, ``"l1"``, ``"linf"`` (norms) or ``"l2sq"`` (squared l2,
    not a norm). Fewer than two columns (one class, ``N < 2``) give exactly 0 with a zero
    gradient. Everything is computed in float64 (differences of float32 inputs are exact
    there, and the cancelling identities of the fast paths keep 1e-16 rounding); the result
    is float64 for float64 input and float32 otherwise (also under autocast). At kinks (zero
    differences, linf ties) a zero / argmax subgradient is used, at l1 ties the minimum-norm
    one, never NaN.

    ``l2_kernel`` (l2 exact with signed/ordered differences): ``"gram"`` (tiles from the
    N x N Gram matrix), ``"columns"`` (matmul tiles of M) or ``"auto"``. ``block_elements``
    bounds the entries of each tile temporary (None: per-measure default). The exact l2, l1
    and linf paths refuse more than ``max_columns`` inter-class columns (O(H^2) work: e.g.
    a 4,096-entry memory bank as ``ref_emb``); use ``estimator="chain"`` there.

    Host syncs: the exact estimator on an accelerator (``masked_pairs=None``: whenever the
    labels are not on the CPU) visits all ``N (N - 1) / 2`` pairs with the intra-class ones
    masked out, so no shape depends on the labels and nothing waits for the device (on the
    CPU, selecting the ``H`` inter-class pairs is free and does less work). The chain
    estimator never waits for the device.

    ``backend``: ``"triton"`` runs the fused kernels (compiled on CUDA; Triton's interpreter
    on the CPU, slow: for tests at small N), ``"torch"`` the torch paths, ``"auto"``
    (default) Triton on CUDA when it imports, else torch. Fused: the exact estimator's l2
    with signed/ordered differences (``dasl.dar.triton_l2``; abs breaks its
    pairwise-distance identity), its l1 and linf with every difference
    (``dasl.dar.triton_lp``; ``"auto"`` keeps l1 on its sort, which does less work), its
    l2sq (``dasl.dar.triton_l2sq``) and the chain estimator, every measure and difference (one
    kernel per chain, ``dasl.dar.triton_chain``). The other exact paths always use torch.

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
    estimate = DAR_ESTIMATORS.get(estimator)
    check_choice("difference", difference, DIFFERENCES)
    check_choice("reduction", reduction, REDUCTIONS)
    check_choice("l2_kernel", l2_kernel, L2_KERNELS)
    check_choice("backend", backend, BACKENDS)
    num_chains = check_num_chains(num_chains)
    check_finite(embeddings)
    out_dtype = torch.float64 if embeddings.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=embeddings.device.type, enabled=False):
        z = embeddings.to(torch.float64)
        out: Tensor = estimate(
            z,
            labels,
            measure=measure,
            difference=difference,
            reduction=reduction,
            num_chains=num_chains,
            generator=generator,
            block_elements=block_elements,
            l2_kernel=l2_kernel,
            max_columns=max_columns,
            masked_pairs=masked_pairs,
            backend=backend,
        )
        return out.to(out_dtype)


class DifferenceAlignmentRegularizer(nn.Module):
    """``R_align(embeddings, labels)`` as a module; see ``difference_alignment`` for the formula.

    Args:
        measure: ``"l2"`` (default), ``"l1"``, ``"linf"``, ``"l2sq"``.
        estimator: ``"exact"`` (all inter-class pairs), ``"chain"`` (stochastic form), or
            another entry of :data:`dasl.choices.DAR_ESTIMATORS`.
        difference: ``"signed"`` (``z_i - z_j``, orientation = batch order), ``"ordered"``
            (oriented from the smaller label to the larger) or ``"abs"``.
        reduction: ``"mean"`` (per column pair) or ``"sum"`` (the literal ``||M||_ctv``).
        num_chains: chains averaged by the chain estimator.
        generator: ``torch.Generator`` for the chain permutations (reproducible draws).
        backend: ``"auto"`` (default: the fused Triton kernels on CUDA when triton imports),
            ``"triton"`` or ``"torch"``: the fused exact l2 (signed/ordered differences),
            l1, linf and l2sq kernels and the chain kernel (see ``difference_alignment``).

    The defaults are the poster's literal reading (signed differences, l2, all pairs), kept:
    no measured evidence favours another reading as DAR (``benchmarks/RESULTS.md``, sections
    "What DAR's gain is made of" and "``dar_ablation`` on glyphs": the one gain found, with
    squared l2 and ProxyAnchor, is compaction, which ``dasl.dar.controls`` provides without
    the differences).

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
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.backend = check_choice("backend", backend, BACKENDS)
        self.measure = check_choice("measure", measure, MEASURES)
        self.estimator = DAR_ESTIMATORS.entry(estimator).name
        self.difference = check_choice("difference", difference, DIFFERENCES)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.num_chains = check_num_chains(num_chains)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ConfigError(
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
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (
            f"measure={self.measure!r}, estimator={self.estimator!r}, "
            f"difference={self.difference!r}, reduction={self.reduction!r}, "
            f"num_chains={self.num_chains}, backend={self.backend!r}"
        )


__all__ = [
    "DifferenceAlignmentRegularizer",
    "difference_alignment",
]
