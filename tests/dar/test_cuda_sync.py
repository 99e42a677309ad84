"""No host sync in a training step with DAR on a GPU (issue #11, defect 5).

``torch.cuda.set_sync_debug_mode("error")`` turns every device-to-host synchronization
(``.item()``, ``nonzero``, a blocking copy ...) into an error, over a whole step: model
forward, DAR forward, backward and the optimizer update. Skipped without CUDA; the GPU suite
runs it (``pytest -m cuda``). The chain estimator is built on the device too (#19). The CPU
proof that the exact and chain paths have no data-dependent op is
``test_regularizer.py::test_{exact,chain}_paths_have_no_data_dependent_ops`` (meta tensors).
"""

from __future__ import annotations

import pytest
import torch

from dasl.dar import DifferenceAlignmentRegularizer

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

MEASURES = ["l2", "l1", "linf", "l2sq"]


def _step(estimator: str, measure: str, difference: str, h: int = 32) -> None:
    torch.manual_seed(0)
    dev = torch.device("cuda")
    model = torch.nn.Linear(16, h).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = DifferenceAlignmentRegularizer(measure, estimator, difference)
    x = torch.randn(24, 16, device=dev)
    y = torch.arange(6, device=dev).repeat_interleave(4)
    reg(torch.nn.functional.normalize(model(x), dim=1), y).backward()  # warm-up: lazy inits
    opt.zero_grad()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        z = torch.nn.functional.normalize(model(x), dim=1)
        loss = reg(z, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    assert torch.isfinite(loss).item()


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", ["signed", "abs", "ordered"])
def test_exact_step_has_no_host_sync(measure, difference):
    _step("exact", measure, difference)


@pytest.mark.parametrize("h", [4, 32])  # columns kernel (h < 16) and Gram kernel
def test_exact_l2_kernels_have_no_host_sync(h):
    _step("exact", "l2", "signed", h=h)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("difference", ["signed", "abs", "ordered"])
def test_chain_step_has_no_host_sync(measure, difference):
    # The chain is built on the device from the labels, equal-label steps masked (#19).
    _step("chain", measure, difference)


def test_chain_with_cpu_generator_has_no_host_sync():
    # A CPU generator draws the permutation on the host: a pinned, non-blocking copy.
    torch.manual_seed(0)
    dev = torch.device("cuda")
    reg = DifferenceAlignmentRegularizer(
        "l2", "chain", num_chains=2, generator=torch.Generator().manual_seed(1)
    )
    z = torch.randn(24, 8, device=dev, requires_grad=True)
    y = torch.arange(6, device=dev).repeat_interleave(4)
    reg(z, y).backward()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = reg(z, y)
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()
