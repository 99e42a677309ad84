"""The host-read counter (#19) against planted reads: exact counts, named by file:line."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from torch import nn

from dasl.utils.host_reads import HostReads

HERE = Path(__file__).resolve()


class ItemOnce(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.abs().max().item()  # one read
        return x / (scale + 1.0)


class BoolMask(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[x > 0].sum()  # one read: the mask's count sizes the output


class NoRead(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, torch.zeros_like(x)).sum()


def _line_of(cls: type, text: str) -> int:
    lines, start = inspect.getsourcelines(cls)
    return start + next(i for i, line in enumerate(lines) if text in line)


def _run(module: nn.Module, steps: int = 3) -> HostReads:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with HostReads(roots=[HERE.parent]) as reads:
        for step in range(steps):
            reads.begin_step(step)
            module(x).sum().backward()
            reads.end_step()
    return reads


def test_item_once_per_step_is_one_read_per_step_at_its_line() -> None:
    reads = _run(ItemOnce())
    assert reads.per_step() == {0: 1, 1: 1, 2: 1}
    line = _line_of(ItemOnce, ".item()")
    assert reads.by_where() == {f"{HERE}:{line} (_local_scalar_dense)": 3}
    assert not reads.others()


def test_boolean_mask_is_one_read_in_forward_and_one_in_backward() -> None:
    """The backward of ``x[mask]`` scatters through the same mask (``index_put_``): a
    second read, named by the line that called ``backward()``."""
    reads = _run(BoolMask())
    assert reads.per_step() == {0: 2, 1: 2, 2: 2}
    line = _line_of(BoolMask, "x[x > 0]")
    back = inspect.getsourcelines(_run)[1] + 5  # the line of `.backward()`
    assert reads.by_where() == {
        f"{HERE}:{line} (index (boolean mask))": 3,
        f"{HERE}:{back} (index_put (boolean mask))": 3,
    }


def test_a_module_without_reads_counts_none() -> None:
    reads = _run(NoRead())
    assert reads.reads == []


def test_each_kind_of_read_is_seen() -> None:
    x = torch.tensor([0.0, 1.0, 2.0, 2.0])
    with HostReads(roots=[HERE.parent]) as reads:
        bool(x.sum() > 0)
        float(x.sum())
        int(x.argmax())
        torch.nonzero(x)
        torch.masked_select(x, x > 0)
        torch.unique(x)
        torch.bincount(x.long())
        torch.repeat_interleave(torch.tensor([1, 2]))
        torch.equal(x, x)
        # not reads: a fixed output size, a device-side select, a CPU tensor's .cpu()
        torch.repeat_interleave(torch.tensor([1, 2]), output_size=3)
        torch.where(x > 0, x, x)
        x.cpu()
    ops = [r.op for r in reads.reads]
    assert ops == [
        "_local_scalar_dense", "_local_scalar_dense", "_local_scalar_dense", "nonzero",
        "masked_select", "_unique2", "bincount", "repeat_interleave", "equal",
    ]  # fmt: skip
    assert all(r.step is None for r in reads.reads)  # outside a step


def test_reads_outside_the_roots_are_reported_apart() -> None:
    x = torch.ones(3)
    with HostReads(roots=["/nonexistent"]) as reads:
        reads.begin_step(0)
        x.sum().item()
    assert reads.per_step() == {} and reads.per_step(ours=False) == {0: 1}
    ((caller, n),) = reads.others().items()
    assert caller.startswith(f"{HERE}:") and n == 1
