"""No host read per training step from dasl's code (#19), counted on the CPU with
:class:`dasl.utils.host_reads.HostReads` in real Lightning runs of both loops.

What is allowed, and why:

- ``dar/validation.py``'s ``check_finite``: its CPU branch reads ``bool(finite)`` to raise a
  clear DataError; on any other device the same check is ``torch._assert_async`` (no read),
  so only the CPU sees it.
- ``SSLModule.clustered`` (``ssl_module.py``): read once per epoch, at its first step (the
  pseudo-labels change only at an epoch's start; ``_clustered_this_epoch``).
- ``NonFiniteGuard._read`` reads its device record with ``.tolist()`` every
  ``log_every_n_steps`` steps; ``.tolist()`` of a CPU tensor dispatches no op, so the CPU
  counter cannot see it (the CUDA ``step_syncs`` section of the GPU suite does).

Reads made by Lightning (``torch.optim``'s per-parameter ``step.item()`` of a CPU optimizer
under Lightning's ``optimizer.step``) and by pytorch-metric-learning's losses are theirs and
reported apart; the plain PyTorch loop with the same loss has the same ones.
"""

from __future__ import annotations

import inspect
from collections import Counter
from pathlib import Path

import pytest
from ssl_configs import tiny_digits_pretrain
from training_configs import tiny_digits_config

from dasl.dar import validation
from dasl.training.module import MetricLearningModule
from dasl.training.run import train_variant
from dasl.training.ssl_module import SSLModule
from dasl.training.ssl_run import pretrain_variant
from dasl.training.step_reads import StepReads

QUIET = {"log": lambda s: None}
DASL = Path(validation.__file__).resolve().parents[1]
HERE = Path(__file__).resolve()


def _line(func: object, text: str) -> str:
    lines, start = inspect.getsourcelines(func)  # type: ignore[arg-type]
    path = Path(inspect.getsourcefile(func)).resolve()  # type: ignore[arg-type]
    return f"{path}:{start + next(i for i, s in enumerate(lines) if text in s)}"


CPU_ONLY = f"{_line(validation.check_finite, 'bool(finite)')} (_local_scalar_dense)"
PER_EPOCH = f"{_line(SSLModule.clustered.fget, 'bool(')} (_local_scalar_dense)"

SUPERVISED = {
    "dasl_pa exact l2sq": {"lam": 0.5, "estimator": "exact", "measure": "l2sq"},
    "dasl_pa chain": {"lam": 0.5, "estimator": "chain"},
    "baseline": {"lam": 0.0},
}
SELF_SUPERVISED = {
    "simclr": {"ssl.method": "simclr", "dar.lam": 0.0},
    "dasl_cu": {"ssl.method": "dasl_cu"},
}
# 4 (supervised) / 3 (ssl) batches an epoch, 2 epochs, the loggers every 3 steps.
RUN = {"trainer.epochs": 2, "trainer.log_every_n_steps": 3}


def _fit(name: str, tmp_path: Path, roots: list[Path]) -> StepReads:
    reads = StepReads(roots=roots)  # last: the others' batch-end hooks are inside the step
    if name in SUPERVISED:
        cfg = tiny_digits_config(tmp_path / "runs", dar=SUPERVISED[name], **RUN)
        train_variant(cfg, tmp_path / "run", callbacks=[reads], **QUIET)
    else:
        cfg = tiny_digits_pretrain(tmp_path / "runs", **RUN, **SELF_SUPERVISED[name])
        pretrain_variant(cfg, tmp_path / "run", callbacks=[reads], **QUIET)
    return reads


def _disallowed(reads: StepReads, epoch_starts: set[int]) -> Counter[str]:
    bad: Counter[str] = Counter()
    for r in reads.reads.reads:
        if r.step is None or r.where is None:
            continue
        key = f"{r.where} ({r.op})"
        if key == CPU_ONLY or (key == PER_EPOCH and r.step in epoch_starts):
            continue
        bad[f"step {r.step}: {key}"] += 1
    return bad


@pytest.mark.parametrize("name", [*SUPERVISED, *SELF_SUPERVISED])
def test_no_host_read_per_step_from_dasl(tmp_path: Path, name: str) -> None:
    reads = _fit(name, tmp_path, [DASL])
    per_epoch = 4 if name in SUPERVISED else 3
    assert reads.steps == list(range(2 * per_epoch))  # every step was counted
    assert not _disallowed(reads, {0, per_epoch})
    # the clustering flag: once an epoch at most
    assert sum(f"{r.where} ({r.op})" == PER_EPOCH for r in reads.reads.reads) <= 2


def test_a_planted_read_in_the_training_step_is_found(tmp_path: Path, monkeypatch) -> None:
    original = MetricLearningModule.training_step

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        loss = original(self, batch, batch_idx)
        self.planted = loss.detach().item()  # the read this test must find
        return loss

    monkeypatch.setattr(MetricLearningModule, "training_step", training_step)
    reads = _fit("baseline", tmp_path, [DASL, HERE.parent])
    line = _line(training_step, ".item()")
    assert _disallowed(reads, set()) == Counter(
        {f"step {s}: {line} (_local_scalar_dense)": 1 for s in range(8)}
    )


def test_cpu_only_line_is_the_cpu_branch() -> None:
    """The allowance is exactly the CPU branch: other devices take the async assert."""
    source = inspect.getsource(validation.check_finite)
    assert 'device.type == "cpu"' in source and "torch._assert_async(finite" in source
