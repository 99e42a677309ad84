"""Progress as lines: each epoch's end with an ETA over every variant of the run, a line per
interval while an epoch runs when no progress bar is drawn, and where a resumed fit starts.

A progress bar redraws itself with carriage returns: fine on a terminal, but a log file (CI,
``nohup``, ``| tee``) keeps every redraw (300 KB for the demo, #16). Without a terminal the bar
is off (:func:`bar_wanted`) and :class:`ProgressLines` prints a line every ``interval_s``
seconds instead.

ETA: ``mean seconds per trained epoch x epochs left`` over every variant of the run
(:class:`RunPlan`), so the 2 x 8 epochs of the demo get one estimate; evaluation and plots
after the fits are not included (the line says "training").
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

Log = Callable[[str], None]


def _say(text: str) -> None:
    print(text, flush=True)


def bar_wanted(progress_bar: bool) -> bool:
    """Lightning's redrawing bar only where it redraws in place: stdout is a terminal."""
    return progress_bar and sys.stdout.isatty()


def clock(seconds: float) -> str:
    """``1:05:09`` / ``5:09`` / ``9 s``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class RunPlan:
    """The epochs of every variant of one run, and the seconds the trained ones took."""

    def __init__(self, epochs: Sequence[int]) -> None:
        self.epochs = list(epochs)
        self.done = 0.0  # epochs finished or restored, all variants
        self.trained = 0  # epochs trained in this process
        self.seconds = 0.0  # their wall time

    @property
    def total(self) -> int:
        return sum(self.epochs)

    def eta(self, running: float = 0.0, running_s: float = 0.0) -> float | None:
        """Seconds left: the mean trained epoch (the running one counted by its fraction
        ``running`` done in ``running_s``) times the epochs left; None before any measure."""
        work = self.trained + running
        if work <= 0:
            return None
        per_epoch = (self.seconds + running_s) / work
        return per_epoch * max(0.0, self.total - self.done - running)


class ProgressLines(Callback):
    """Prints ``[name] epoch e of 0-E done in s (val/map@r v); training ETA ...`` after each
    epoch, ``[name] epoch e of 0-E: batch b/B, loss ..., img/s; ...`` every ``interval_s``
    seconds within one when ``lines`` (no bar is drawn), and a line when the fit was resumed.
    """

    def __init__(
        self,
        name: str,
        plan: RunPlan | None = None,
        *,
        lines: bool = True,
        interval_s: float = 10.0,
        log: Log = _say,
    ) -> None:
        self.name = name
        self.plan = plan
        self.lines = lines
        self.interval_s = interval_s
        self._log = log
        self._epoch_start = 0.0
        self._last_line = 0.0

    def __getstate__(self) -> dict:
        # ddp_spawn pickles the trainer's callbacks into each worker: a caller's closure as
        # ``log`` cannot travel, so a spawned copy prints instead.
        state = self.__dict__.copy()
        try:
            pickle.dumps(state["_log"])
        except (pickle.PicklingError, AttributeError, TypeError):
            state["_log"] = _say
        return state

    def _plan(self, trainer: L.Trainer) -> RunPlan:
        if self.plan is None:
            self.plan = RunPlan([trainer.max_epochs or 1])
        return self.plan

    def _eta(self, running: float, running_s: float) -> str:
        assert self.plan is not None
        eta = self.plan.eta(running, running_s)
        n = len(self.plan.epochs)
        scope = f"all {n} variants" if n > 1 else "this run"
        where = f"{self.plan.done:.0f} of {self.plan.total} epochs done"
        if eta is None:
            return f"{scope}: {where}"
        return f"{scope}: {where}, training ETA {clock(eta)}"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        plan = self._plan(trainer)
        start = trainer.current_epoch
        last = (trainer.max_epochs or 1) - 1
        if trainer.ckpt_path and start > 0:
            plan.done += start
            self._log(
                f"[{self.name}] resumed from epoch {start - 1} ({trainer.ckpt_path}); "
                f"training epochs {start}-{last}"
            )
        batches = trainer.num_training_batches
        self._log(
            f"[{self.name}] training epochs {start}-{last} (of 0-{last}), {batches} batches each"
        )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = self._last_line = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self.lines or trainer.global_rank != 0:
            return
        now = time.perf_counter()
        # The first batch at once (start-up is done, a first estimate), then every interval.
        if batch_idx > 0 and now - self._last_line < self.interval_s:
            return
        self._last_line = now
        total = trainer.num_training_batches
        frac = (batch_idx + 1) / total if isinstance(total, int) and total > 0 else 0.0
        metrics = trainer.progress_bar_metrics
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("train/") or k == "img/s"
        )
        self._log(
            f"[{self.name}] epoch {trainer.current_epoch} of 0-{(trainer.max_epochs or 1) - 1}: "
            f"batch {batch_idx + 1}/{total}"
            + (f", {shown}" if shown else "")
            + f"; {self._eta(frac, now - self._epoch_start)}"
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        plan = self._plan(trainer)
        seconds = time.perf_counter() - self._epoch_start
        plan.done += 1
        plan.trained += 1
        plan.seconds += seconds
        val = trainer.callback_metrics.get("val/map@r")
        shown = f" (val/map@r {float(val):.4f})" if val is not None else ""
        self._log(
            f"[{self.name}] epoch {trainer.current_epoch} of 0-{(trainer.max_epochs or 1) - 1} "
            f"done in {clock(seconds)}{shown}; {self._eta(0.0, 0.0)}"
        )
