"""Shared helpers for benchmark scripts: median timing, a plain-text table, JSON output in the
results layout ``benchmarks/results/<benchmark>/<run>/`` with a manifest of each run."""

from __future__ import annotations

import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from dasl.utils.io import atomic_write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""``benchmarks/results/``: one folder per benchmark, one per run inside it (#17)."""
OUT_DIR = RESULTS_DIR
DEFAULT_RUN = "default"
"""The run folder of a benchmark's plain invocation (no variant in its result name)."""
BENCHMARKS = (
    "dar_ablation", "dar_speed", "ddp_scaling", "eval_speed", "fmnist_dml", "fmnist_ssl",
    "glyphs_ssl", "glyphs_testbed", "gpu_suite", "knn_classify_scale", "loader_speed",
    "train_throughput",
)  # fmt: skip
"""The benchmark scripts whose results live under ``RESULTS_DIR``, each in its own folder."""


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


def split_name(name: str) -> tuple[str, str]:
    """A result name ``<benchmark>[_<variant>]`` -> ``(benchmark, run)``, the run folder being
    the variant (``DEFAULT_RUN`` without one): ``eval_speed_quick`` -> ``("eval_speed", "quick")``.

    The benchmark is the longest of :data:`BENCHMARKS` that the name starts with; a name of
    none of them is a benchmark of its own.
    """
    known = [b for b in BENCHMARKS if name == b or name.startswith(b + "_")]
    bench = max(known, key=len, default=name)
    return bench, name[len(bench) + 1 :] or DEFAULT_RUN


def run_dir(name: str) -> Path:
    """``benchmarks/results/<benchmark>/<run>/`` of the result ``name`` (:func:`split_name`)."""
    bench, run = split_name(name)
    return RESULTS_DIR / bench / run


def _git_commit() -> str | None:
    """``HEAD`` of the repository holding the benchmarks, ``+dirty`` with uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def manifest(argv: Sequence[str] | None = None, module: str | None = None) -> dict[str, Any]:
    """What made a run: the command, the commit, the date (UTC), the machine and its load.

    ``argv`` defaults to the process's own arguments; ``module`` (``benchmarks.x``) to the
    running script's. The load is the 1/5/15-minute load average at writing time next to the
    CPU count: on a shared machine it is what makes two timings comparable or not.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if module is None:
        module = "benchmarks." + Path(sys.argv[0]).stem
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "command": shlex.join(["python", "-m", module, *args]),
        "commit": _git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), **environment()},
        "load": {"loadavg_1_5_15": list(load) if load else None, "cpus": os.cpu_count()},
    }


def write_manifest(folder: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``folder/manifest.json`` (``info`` or :func:`manifest` of this process)."""
    return atomic_write_json(Path(folder) / "manifest.json", info or manifest())


def write_results(name: str, payload: dict[str, Any], out: str | Path | None = None) -> Path:
    """Write ``payload`` plus the environment and the manifest to ``<run_dir(name)>/<name>.json``
    with ``manifest.json`` beside it, or to the file ``out`` (the manifest then only inside)."""
    info = manifest()
    if out is None:
        folder = run_dir(name)
        path = folder / f"{name}.json"
        write_manifest(folder, info)
    else:
        path = Path(out)
    payload = {"benchmark": name, "environment": environment(), "manifest": info, **payload}
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
