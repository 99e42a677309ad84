import itertools
import math

import pytest
import torch

from dasl.utils.schedule import scheduler_config, warmup_cosine_factor


def _reference(step, total, warmup, cosine):
    """Linear warm-up over ``warmup`` steps (reaching 1 at the last one), then half a cosine
    period from 1 to 0 over the remaining steps (or a constant 1)."""
    if step < warmup:
        return (step + 1) / warmup
    if not cosine:
        return 1.0
    done = (step - warmup) / max(1, total - warmup)
    return (1 + math.cos(math.pi * min(done, 1.0))) / 2


@pytest.mark.parametrize(("total", "warmup"), [(100, 0), (100, 10), (7, 3), (1, 0), (5, 5)])
@pytest.mark.parametrize("cosine", [True, False])
def test_matches_reference_at_every_step(total, warmup, cosine):
    for step in range(total + 2):
        got = warmup_cosine_factor(step, total, warmup, cosine)
        assert got == pytest.approx(_reference(step, total, warmup, cosine), abs=1e-15)


def test_shape():
    f = [warmup_cosine_factor(s, 110, 10) for s in range(110)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0  # warm-up reaches 1 at its last step
    assert f[10] == 1.0  # cosine starts at 1
    assert f[60] == pytest.approx(0.5)  # half-way through the decay
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))  # non-increasing
    assert f[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert warmup_cosine_factor(500, 110, 10) == pytest.approx(0.0, abs=1e-15)
    assert warmup_cosine_factor(50, 110, 10, cosine=False) == 1.0


def test_scheduler_config_converts_warmup_epochs_to_steps_and_names_a_bad_scheduler() -> None:
    """100 steps over 4 epochs with 1 warm-up epoch: 25 warm-up steps, then cosine to 0."""
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=2.0)
    conf = scheduler_config(opt, total_steps=100, max_epochs=4, warmup_epochs=1, scheduler="cosine")
    assert conf["optimizer"] is opt and conf["lr_scheduler"]["interval"] == "step"
    sched = conf["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(2.0 / 25) and lrs[24] == pytest.approx(2.0)
    assert lrs[25] == pytest.approx(2.0) and lrs[99] < 0.01
    with pytest.raises(
        ValueError, match=r"^unknown scheduler 'step'; choose one of cosine, constant$"
    ):
        scheduler_config(opt, 100, 4, 1, "step")
