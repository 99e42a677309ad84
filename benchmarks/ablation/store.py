"""Where an ablation run lives: its folder, the shared trial cache, and the run summary.

A run ``NAME`` (``--name``) writes to ``benchmarks/results/dar_ablation/<run>/`` (``<run>``:
``NAME`` without the ``dar_ablation_`` prefix, ``default`` for the bare name): the report
(``NAME.md``, ``NAME.json``, plots), ``manifest.json`` and ``NAME_summary.json``, every trial
record the report is made from, config included. The per-trial cache is shared by all runs in
``benchmarks/results/dar_ablation/cache/<dataset>/`` and kept out of git: a trial is found by
its id and config wherever it was trained, and ``--report-only`` rebuilds a report from the
committed summary when the cache does not have it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, run_dir
from dasl.utils.io import atomic_write_text

BENCHMARK = "dar_ablation"
CACHE_DIR = RESULTS_DIR / BENCHMARK / "cache"
"""The trial cache of every run without ``--out`` (git-ignored)."""


def default_out(name: str) -> Path:
    """``benchmarks/results/dar_ablation/<run>/`` of the run named ``name``."""
    return run_dir(name if name.startswith(BENCHMARK) else f"{BENCHMARK}_{name}")


def summary_path(out: Path, name: str) -> Path:
    return out / f"{name}_summary.json"


def load_summary(path: Path) -> dict[str, dict[str, Any]]:
    """``{dataset: {"trials": {trial id: record}, "raw_pixels": record | None}}`` of a summary
    (empty when there is none)."""
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text())["datasets"])


def write_summary(path: Path, name: str, datasets: dict[str, dict[str, Any]]) -> Path:
    """The trial records a report is made from, per dataset, in the order they were used.

    One trial per line, so that git diffs of a summary show the trials that changed.
    """
    lines = ["{", f'"benchmark": {json.dumps(BENCHMARK)},', f'"name": {json.dumps(name)},']
    lines.append('"datasets": {')
    for i, (ds, body) in enumerate(datasets.items()):
        raw = json.dumps(body.get("raw_pixels"))
        lines.append(f'{json.dumps(ds)}: {{"raw_pixels": {raw}, "trials": {{')
        trials = list(body.get("trials", {}).items())
        for j, (tid, rec) in enumerate(trials):
            lines.append(
                f"{json.dumps(tid)}: {json.dumps(rec)}" + ("," if j + 1 < len(trials) else "")
            )
        lines.append("}}" + ("," if i + 1 < len(datasets) else ""))
    lines += ["}", "}"]
    return atomic_write_text(path, "\n".join(lines) + "\n")
