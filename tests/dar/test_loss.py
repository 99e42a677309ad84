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
    v_dar, g_dar = _value_and_grad(difference_alignment, z, y)
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
