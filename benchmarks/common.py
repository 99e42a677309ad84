"""Shared helpers for benchmark scripts: median timing, a plain-text table, JSON output."""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from dasl.utils.io import atomic_write_json

OUT_DIR = Path(__file__).resolve().parent / "results"


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median_time(
    fn: Callable[[], Any],
    *,
    repeats: int = 5,
    warmup: int = 1,
    device: torch.device | str = "cpu",
    max_seconds: float | None = None,
) -> dict[str, float]:
    """Median (and min/max) wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup``.

    Stops early once ``max_seconds`` of timed runs have passed (at least one run is kept).
    """
    for _ in range(warmup):
        fn()
        sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - start_all > max_seconds:
            break
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "runs": len(times),
    }


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table of ``rows`` restricted to ``columns`` (floats to 4 significant digits)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any], out: str | Path | None = None) -> Path:
    """Write ``payload`` plus the environment to ``benchmarks/results/<name>.json`` (or ``out``)."""
    path = Path(out) if out is not None else OUT_DIR / f"{name}.json"
    payload = {"benchmark": name, "environment": environment(), **payload}
    return atomic_write_json(path, payload)


#: Two-sided 95% Student t quantiles by degrees of freedom (1.96 beyond 9).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def ci95(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, sample std and the half-width of the two-sided 95% t-interval of the mean."""
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return mean, 0.0, float("nan")
    std = statistics.stdev(values)
    return mean, std, T975.get(n - 1, 1.96) * std / math.sqrt(n)
