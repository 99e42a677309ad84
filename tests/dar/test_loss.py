import pytest
import torch
from dar_reference import columns_torch, ctv_torch, pair_indices
from pytorch_metric_learning import losses

from dasl.dar import (
    DASLLoss,
    DifferenceAlignmentRegularizer,
    TwoViewDASLLoss,
    dasl_np,
    dasl_pa,
    difference_alignment,
)


def _batch(n=12, h=8, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(n, h, generator=g), dim=1)
    return z, torch.arange(classes).repeat_interleave(n // classes)


def _value_and_grad(loss_fn, z, *args, **kwargs):
    x = z.clone().requires_grad_()
    out = loss_fn(x, *args, **kwargs)
    out.backward()
    return out.detach(), x.grad


def _pa_pair(h=8, classes=4):
    torch.manual_seed(5)
    bare = losses.ProxyAnchorLoss(classes, h, margin=0.1, alpha=32)
    wrapped = dasl_pa(classes, h, lam=0.0)
    wrapped.base_loss.proxies.data.copy_(bare.proxies.data)
    return bare, wrapped


@pytest.mark.parametrize("kind", ["npairs", "proxyanchor", "triplet", "triplet_ref"])
def test_lam_zero_equals_bare_pml_loss(kind):
    z, y = _batch()
    kwargs = {}
    if kind == "npairs":
        bare, wrapped = losses.NPairsLoss(), dasl_np(lam=0.0)
        z, y = _batch(n=8, classes=4)
    elif kind == "proxyanchor":
        bare, wrapped = _pa_pair()
    else:
        bare = losses.TripletMarginLoss(margin=0.2)
        wrapped = DASLLoss(losses.TripletMarginLoss(margin=0.2), lam=0)
        if kind == "triplet_ref":
            ref, ref_y = _batch(seed=1)
            kwargs = {"ref_emb": ref, "ref_labels": ref_y}
    v0, g0 = _value_and_grad(bare, z, y, **kwargs)
    v1, g1 = _value_and_grad(wrapped, z, y, **kwargs)
    assert torch.equal(v0, v1) and torch.equal(g0, g1)
    assert wrapped.last_regularizer is None
    assert torch.equal(wrapped.last_base_loss, v0)


def test_lam_positive_is_base_plus_lam_dar():
    z, y = _batch()
    bare, wrapped = _pa_pair()
    wrapped.lam = 0.3
    v_base, g_base = _value_and_grad(bare, z, y)
    measure = wrapped.regularizer.measure  # dasl_pa's default: l2sq
    v_dar, g_dar = _value_and_grad(lambda x, t: difference_alignment(x, t, measure), z, y)
    v, g = _value_and_grad(wrapped, z, y)
    assert torch.allclose(v, v_base + 0.3 * v_dar, rtol=1e-6)
    assert torch.allclose(g, g_base + 0.3 * g_dar, rtol=1e-5, atol=1e-7)
    assert torch.allclose(wrapped.last_regularizer, v_dar)
    assert not wrapped.last_regularizer.requires_grad


def test_ref_emb_is_regularized_with_its_labels():
    z, y = _batch()
    ref, ref_y = _batch(seed=3)
    reg = DifferenceAlignmentRegularizer(measure="l1")
    wrapped = DASLLoss(losses.ContrastiveLoss(), reg, lam=2.0)
    out = wrapped(z, y, ref_emb=ref, ref_labels=ref_y)
    base = losses.ContrastiveLoss()(z, y, ref_emb=ref, ref_labels=ref_y)
    dar = reg(torch.cat([z, ref]), torch.cat([y, ref_y]))
    assert torch.allclose(out, base + 2.0 * dar)


@pytest.mark.parametrize("measure", ["l2", "l1", "l2sq"])
def test_gradients_flow_through_ref_emb(measure):
    """DAR's gradient reaches ref_emb (e.g. a memory bank that is not detached) and equals,
    for embeddings and ref_emb alike, the float64 gradient of base + lam * DAR on the
    concatenated batch, computed with explicit differences."""
    z, y = _batch()
    ref, ref_y = _batch(n=8, seed=3)
    zz, rr = z.double().requires_grad_(), ref.double().requires_grad_()
    wrapped = DASLLoss(losses.ContrastiveLoss(), DifferenceAlignmentRegularizer(measure), 0.7)
    wrapped(zz, y, ref_emb=rr, ref_labels=ref_y).backward()
    assert rr.grad is not None and float(rr.grad.abs().sum()) > 0
    z2, r2 = z.double().requires_grad_(), ref.double().requires_grad_()
    pairs = pair_indices(torch.cat([y, ref_y]).tolist(), "signed")
    base = losses.ContrastiveLoss()(z2, y, ref_emb=r2, ref_labels=ref_y)
    dar = ctv_torch(columns_torch(torch.cat([z2, r2]), pairs, "signed"), measure)
    (base + 0.7 * dar).backward()
    torch.testing.assert_close(zz.grad, z2.grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(rr.grad, r2.grad, rtol=1e-9, atol=1e-12)


def test_proxies_reach_the_optimizer():
    wrapped = dasl_pa(num_classes=5, embedding_size=8, lam=0.1)
    params = list(wrapped.parameters())
    assert any(p is wrapped.base_loss.proxies for p in params)
    assert [p for p in wrapped.loss_parameters()] == [wrapped.base_loss.proxies]
    z, y = _batch(n=10, classes=5)
    wrapped(z.requires_grad_(), y).backward()
    assert wrapped.base_loss.proxies.grad is not None


def test_default_regularizer_and_kwargs():
    assert isinstance(DASLLoss(losses.NPairsLoss()).regularizer, DifferenceAlignmentRegularizer)
    reg = dasl_np(lam=0.5, measure="l1", estimator="chain").regularizer
    assert (reg.measure, reg.estimator) == ("l1", "chain")


def _simclr_ntxent(z0, z1, temperature):
    z = torch.nn.functional.normalize(torch.cat([z0, z1]), dim=1)
    b = z0.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return torch.nn.functional.cross_entropy(sim, target)


def test_two_view_ntxent_lam_zero_equals_manual_simclr():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    loss_fn = TwoViewDASLLoss(losses.NTXentLoss(temperature=0.2), lam=0.0)
    a0, a1 = z0.clone().requires_grad_(), z1.clone().requires_grad_()
    out = loss_fn(a0, a1)
    out.backward()
    b0, b1 = z0.clone().requires_grad_(), z1.clone().requires_grad_()
    ref = _simclr_ntxent(b0, b1, 0.2)
    ref.backward()
    assert torch.allclose(out, ref, rtol=1e-5)
    assert torch.allclose(a0.grad, b0.grad, atol=1e-6) and torch.allclose(
        a1.grad, b1.grad, atol=1e-6
    )


def test_two_view_lam_positive_uses_instance_ids():
    z0, z1 = torch.randn(4, 3), torch.randn(4, 3)
    loss_fn = TwoViewDASLLoss(losses.NTXentLoss(), lam=0.5)
    out = loss_fn(z0, z1)
    ids = torch.arange(4).repeat(2)
    emb = torch.cat([z0, z1])
    want = losses.NTXentLoss()(emb, ids) + 0.5 * difference_alignment(emb, ids)
    assert torch.allclose(out, want)
    assert torch.allclose(loss_fn.last_regularizer, difference_alignment(emb, ids))


def test_errors():
    z, y = _batch()
    with pytest.raises(ValueError, match="DASLLoss needs labels"):
        DASLLoss(losses.NPairsLoss())(z)
    with pytest.raises(ValueError, match="ref_emb was given without ref_labels"):
        DASLLoss(losses.ContrastiveLoss())(z, y, ref_emb=z)
    with pytest.raises(ValueError, match="lam must be a non-negative number, got -1"):
        DASLLoss(losses.NPairsLoss(), lam=-1)
    with pytest.raises(ValueError, match=r"same shape .* got \(4, 3\) and \(5, 3\)"):
        TwoViewDASLLoss(losses.NTXentLoss())(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="z1 must be a 2-D tensor"):
        TwoViewDASLLoss(losses.NTXentLoss())(torch.randn(4, 3), torch.randn(4))
    with pytest.raises(ValueError, match="labels has 11 entries, embeddings has 12 rows"):
        DASLLoss(losses.ContrastiveLoss(), lam=1.0)(z, y[:11])


def test_two_argument_base_loss_works() -> None:
    """METHOD.md: any loss with the signature (embeddings, labels) must work."""
    torch.manual_seed(0)
    z = torch.randn(10, 4, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4])

    def plain(e: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        return e.pow(2).mean() + 0 * lab.sum()

    reg = DifferenceAlignmentRegularizer()
    loss = DASLLoss(plain, regularizer=reg, lam=0.1)
    expected = plain(z, y) + 0.1 * reg(z, y)
    assert torch.allclose(loss(z, y), expected)
    assert list(loss.loss_parameters()) == []

    class TwoArg(torch.nn.Module):
        def forward(self, e: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
            return e.abs().mean()

    assert torch.allclose(DASLLoss(TwoArg(), lam=0.0)(z, y), z.abs().mean())


# ---------------------------------------------------------------- PML habits (issues 9, 11)


def _f64_batch(n=12, h=5, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, h, generator=g, dtype=torch.float64)
    return z, torch.arange(classes).repeat_interleave(n // classes)


@pytest.mark.parametrize("measure", ["l2", "l1", "linf", "l2sq"])
@pytest.mark.parametrize("difference", ["signed", "abs"])
def test_indices_tuple_without_labels_aligns_its_negative_pairs(measure, difference):
    """All pairs: the labelled exact estimator; triplets: their (anchor, negative) pairs, each
    unordered pair once, checked against explicit columns and a loop CTV."""
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    z, y = _f64_batch()
    reg = DifferenceAlignmentRegularizer(measure=measure, difference=difference)
    base = losses.ContrastiveLoss()
    wrapped = DASLLoss(losses.ContrastiveLoss(), reg, lam=1.0)
    pairs = lmu.get_all_pairs_indices(y)
    got = wrapped(z, None, pairs) - base(z, None, pairs)
    assert torch.allclose(got, reg(z, y), rtol=1e-10)

    triplets = lmu.get_random_triplet_indices(y, t_per_anchor=2)
    got = wrapped(z, None, triplets) - base(z, None, triplets)
    cols = sorted(
        {
            (min(a, n), max(a, n))
            for a, n in zip(triplets[0].tolist(), triplets[2].tolist(), strict=True)
        }
    )
    m = torch.stack([z[i] - z[j] for i, j in cols])
    m = m.abs() if difference == "abs" else m
    norm = {
        "l2": lambda v: v.norm(),
        "l1": lambda v: v.abs().sum(),
        "linf": lambda v: v.abs().max(),
        "l2sq": lambda v: (v * v).sum(),
    }[measure]
    ref = sum(norm(m[p] - m[q]) for p in range(len(cols)) for q in range(p + 1, len(cols)))
    assert torch.allclose(got, ref / (len(cols) * (len(cols) - 1) / 2), rtol=1e-10)


def test_indices_tuple_without_labels_refusals():
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    z, y = _f64_batch()
    pairs = lmu.get_all_pairs_indices(y)
    chain = DASLLoss(losses.ContrastiveLoss(), DifferenceAlignmentRegularizer(estimator="chain"))
    with pytest.raises(ValueError, match=r"estimator='chain' draws chains .* needs labels"):
        chain(z, None, pairs)
    custom = DASLLoss(losses.ContrastiveLoss(), torch.nn.Identity())
    with pytest.raises(ValueError, match="needs the built-in DifferenceAlignmentRegularizer"):
        custom(z, None, pairs)
    with pytest.raises(ValueError, match="PML triplets"):
        DASLLoss(losses.ContrastiveLoss())(z, None, (pairs[0], pairs[1]))


def test_ref_emb_holding_the_batch_is_regularized_once():
    """PML's efficient DistributedLossWrapper passes ref_emb = cat(batch, other ranks)."""
    z, y = _f64_batch()
    other, other_y = _f64_batch(seed=5)
    ref, ref_y = torch.cat([z, other]), torch.cat([y, other_y])
    reg = DifferenceAlignmentRegularizer()
    wrapped = DASLLoss(losses.ContrastiveLoss(), reg, lam=1.0)
    got = wrapped(z, y, None, ref, ref_y) - losses.ContrastiveLoss()(z, y, None, ref, ref_y)
    assert torch.allclose(got, reg(ref, ref_y))


def test_memory_bank_is_refused_clearly_or_left_to_the_base_loss():
    """A CrossBatchMemory-sized ref_emb (4,096 rows, ~8 M columns) would be O(H^2)."""
    from pytorch_metric_learning.losses import CrossBatchMemory

    z, y = _f64_batch(n=16, h=4)
    bank = torch.randn(4096, 4, dtype=torch.float64)
    bank_y = torch.arange(4096) % 100
    with pytest.raises(
        ValueError,
        match=r"would align 8,\d{3},\d{3} inter-class columns.*"
        r"regularize_ref=False",
    ):
        DASLLoss(losses.ContrastiveLoss(), lam=1.0)(z, y, None, bank, bank_y)
    reg = DifferenceAlignmentRegularizer()
    bounded = DASLLoss(losses.ContrastiveLoss(), reg, lam=1.0, regularize_ref=False)
    got = bounded(z, y, None, bank, bank_y)
    want = losses.ContrastiveLoss()(z, y, None, bank, bank_y) + reg(z, y)
    assert torch.allclose(got, want)
    # PML's CrossBatchMemory accepts only its listed losses by class name: wrap it instead;
    # the bank then feeds the base loss and DAR sees the batch.
    xbm = DASLLoss(CrossBatchMemory(losses.ContrastiveLoss(), 4, memory_size=64), reg, lam=1.0)
    plain = CrossBatchMemory(losses.ContrastiveLoss(), 4, memory_size=64)
    for step in range(3):
        zb, yb = _f64_batch(n=16, h=4, seed=step)
        got, want = xbm(zb.float(), yb), plain(zb.float(), yb)
        assert torch.allclose(got, want + reg(zb.float(), yb), rtol=1e-5)


def test_pml_distributed_wrapper_accepts_dasl_loss():
    """Outside a process group PML's wrapper warns and calls the loss (the 2-process equality
    is in tests/training/test_distributed.py)."""
    from pytorch_metric_learning.utils.distributed import DistributedLossWrapper

    z, y = _f64_batch()
    loss = DASLLoss(losses.NPairsLoss(), lam=0.3)
    with pytest.warns(UserWarning, match="non-distributed"):
        out = DistributedLossWrapper(loss)(z, y)
    assert torch.allclose(out, loss(z, y))


def test_gather_distributed_is_a_no_op_in_one_process():
    z, y = _f64_batch()
    a = DASLLoss(losses.NPairsLoss(), lam=0.3)
    b = DASLLoss(losses.NPairsLoss(), lam=0.3, gather_distributed=True)
    assert torch.equal(a(z, y), b(z, y))
    with pytest.raises(ValueError, match="indices_tuple holds local row indices"):
        import unittest.mock

        with unittest.mock.patch("dasl.dar.loss.is_distributed", return_value=True):
            b(z, y, (y, y, y))


def test_ordered_differences_need_labels_with_indices_tuple():
    from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

    z, y = _f64_batch()
    pairs = lmu.get_all_pairs_indices(y)
    wrapped = DASLLoss(
        losses.ContrastiveLoss(), DifferenceAlignmentRegularizer(difference="ordered")
    )
    with pytest.raises(ValueError, match="ordered"):
        wrapped(z, None, pairs)


def test_dasl_pa_defaults_are_the_evidence_setting_and_overridable():
    """dasl_pa's defaults are the glyphs ablation's best finalist (l2sq, signed, exact,
    lambda 3); the poster's setting is one call away."""
    pa = dasl_pa(num_classes=5, embedding_size=8)
    reg = pa.regularizer
    assert pa.lam == 3.0 and reg.measure == "l2sq"
    assert (reg.difference, reg.estimator) == ("signed", "exact")
    poster = dasl_pa(5, 8, lam=1.0, measure="l2")
    assert poster.lam == 1.0 and poster.regularizer.measure == "l2"
    # The same value as an explicit DASLLoss with those settings.
    z, y = _batch(n=10, classes=5)
    explicit = DASLLoss(pa.base_loss, DifferenceAlignmentRegularizer(measure="l2sq"), 3.0)
    torch.testing.assert_close(pa(z, y), explicit(z, y))
