"""DAR forward+backward speed and extra peak memory: dasl kernels vs straightforward PyTorch.

Cases: (N, h, classes) = (120, 512, 60), (256, 128, 64), (512, 128, 256); every estimator x
measure. Baselines (PERF.md): exact l2 = build M, blocked ``torch.cdist(M[block], M)`` summed
with autograd keeping the tiles; exact linf = the same with ``p=inf``; exact l1 = sort per
dimension through autograd; exact l2sq = closed form through autograd; chain = random
permutation + ``torch.pdist`` (steps between equal labels dropped). Each (case, implementation)
runs in a fresh subprocess so that CPU peak memory (``ru_maxrss`` minus the value after setup)
is its own; on CUDA ``torch.cuda.max_memory_allocated`` minus the setup allocation.

``--background-load`` (issue #9): two other 2-thread CPU jobs (matmul loops) run beside the
benchmark, as on a shared machine; only exact l2 is timed (median of 5) and the table gives
the dasl/straightforward time ratio under that load.

Usage: ``python -m benchmarks.dar_speed [--quick] [--device cuda] [--all] [--threads K]
[--background-load] [--only exact/l1 exact/l2]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import torch

from benchmarks.common import format_table, median_time, write_results
from dasl.dar import difference_alignment
from dasl.dar.pairs import inter_class_pairs

CASES: list[tuple[int, int, int]] = [(120, 512, 60), (256, 128, 64), (512, 128, 256)]
QUICK_CASES: list[tuple[int, int, int]] = [(48, 64, 16)]
COMBOS: list[tuple[str, str]] = [
    ("exact", "l2"),
    ("exact", "l1"),
    ("exact", "linf"),
    ("exact", "l2sq"),
    ("chain", "l2"),
    ("chain", "l1"),
    ("chain", "linf"),
    ("chain", "l2sq"),
]
_PDIST_P = {"l2": 2.0, "l1": 1.0, "linf": float("inf")}
# CPU cost guesses (seconds per unit) used only to skip cases that would take far too long.
_CPU_S_PER_ELEM = {"dasl_l2": 5e-9, "base_l2": 4e-10, "linf": 1e-8}


def make_inputs(n: int, h: int, classes: int, device: str, seed: int = 0) -> tuple:
    """L2-normalized random embeddings (requires grad) and ``classes`` x ``n/classes`` labels."""
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(n, h, generator=g), dim=1).to(device)
    labels = torch.arange(classes).repeat_interleave(n // classes).to(device)
    return z.requires_grad_(), labels


def dasl_fn(estimator: str, measure: str, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1) if estimator == "chain" else None
    return difference_alignment(z, labels, measure, estimator, generator=gen)


def baseline_fn(
    estimator: str, measure: str, z: torch.Tensor, labels: torch.Tensor, block: int = 256
) -> torch.Tensor:
    """Straightforward autograd implementations (mean reduction, as dasl's default)."""
    if estimator == "chain":
        perm = torch.randperm(z.shape[0], device=z.device)
        keep = labels[perm[:-1]] != labels[perm[1:]]
        m = (z[perm[:-1]] - z[perm[1:]])[keep]
        h_cols = m.shape[0]
        d = torch.pdist(m, p=2.0) ** 2 if measure == "l2sq" else torch.pdist(m, p=_PDIST_P[measure])
        return d.sum() / max(1, h_cols * (h_cols - 1) // 2)
    i, j = inter_class_pairs(labels)
    m = z[i] - z[j]
    h_cols = m.shape[0]
    pairs = h_cols * (h_cols - 1) // 2
    if measure == "l2sq":
        return (h_cols * (m * m).sum() - (m.sum(0) ** 2).sum()) / pairs
    if measure == "l1":
        s, _ = torch.sort(m, dim=0)
        coef = 2 * torch.arange(1, h_cols + 1, device=m.device, dtype=m.dtype) - h_cols - 1
        return (coef[:, None] * s).sum() / pairs
    p = _PDIST_P[measure]
    total = m.new_zeros(())
    for a in range(0, h_cols, block):
        total = total + torch.cdist(m[a : a + block], m, p=p).sum()
    return total / 2 / pairs


def _estimate_s(impl: str, estimator: str, measure: str, n: int, h: int, classes: int) -> float:
    if estimator != "exact" or measure not in ("l2", "linf"):
        return 0.0
    h_cols = (n * n - classes * (n // classes) ** 2) // 2
    elems = h_cols * h_cols / 2
    if measure == "linf":
        return elems * h * _CPU_S_PER_ELEM["linf"] * (2 if impl == "baseline" else 1)
    if impl == "dasl":
        return elems * _CPU_S_PER_ELEM["dasl_l2"]
    return elems * h * _CPU_S_PER_ELEM["base_l2"]


def run_case(
    impl: str,
    estimator: str,
    measure: str,
    n: int,
    h: int,
    classes: int,
    device: str,
    repeats: int,
    max_seconds: float,
) -> dict[str, Any]:
    """Time forward+backward of one implementation; return median seconds and peak memory."""
    z, labels = make_inputs(n, h, classes, device)
    fn = dasl_fn if impl == "dasl" else baseline_fn

    def step() -> None:
        z.grad = None
        fn(estimator, measure, z, labels).backward()

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base_mem = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    timing = median_time(step, repeats=repeats, warmup=1, device=device, max_seconds=max_seconds)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() - base_mem
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_mem
    return {"median_s": timing["median_s"], "runs": timing["runs"], "peak_mb": peak / 2**20}


def _subprocess_case(args: dict[str, Any], threads: int | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.dar_speed", "--worker", json.dumps(args)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def burn(seconds: float, threads: int = 2) -> None:
    """A CPU job: ``threads``-thread float32 matmuls for ``seconds`` (the background load)."""
    torch.set_num_threads(threads)
    a = torch.randn(384, 384)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        a = torch.tanh(a @ a)


@contextlib.contextmanager
def background_load(jobs: int = 2, seconds: float = 3600.0) -> Iterator[list[subprocess.Popen]]:
    """Run ``jobs`` 2-thread burner processes while the block runs; they are ended after it."""
    cmd = [sys.executable, "-m", "benchmarks.dar_speed", "--burn", str(seconds)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(jobs)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--all", action="store_true", help="run cases estimated to be very slow")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--max-est-s", type=float, default=60.0, help="skip cases estimated longer")
    ap.add_argument(
        "--background-load",
        action="store_true",
        help="exact l2 only, beside two other 2-thread CPU jobs; reports dasl/straightforward",
    )
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="ESTIMATOR/MEASURE",
        help="time only these combinations, e.g. exact/l1 exact/l2",
    )
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--burn", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.burn is not None:
        burn(args.burn)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker is not None:
        print(json.dumps(run_case(**json.loads(args.worker))))
        return
    if args.background_load:
        with background_load():
            _main_cases(args, [("exact", "l2")], repeats=5, name="dar_speed_background_load")
        return
    combos = COMBOS
    if args.only:
        combos = [tuple(c.split("/", 1)) for c in args.only]  # type: ignore[misc]
        unknown = [c for c in combos if c not in COMBOS]
        if unknown:
            ap.error(f"--only: unknown {unknown}; choose from {[f'{e}/{m}' for e, m in COMBOS]}")
    name = "dar_speed" if not args.only else "dar_speed_" + "_".join("-".join(c) for c in combos)
    _main_cases(args, combos, repeats=1 if args.quick else 5, name=name)


def _main_cases(
    args: argparse.Namespace, combos: list[tuple[str, str]], repeats: int, name: str
) -> None:
    cases = QUICK_CASES if args.quick else CASES
    rows: list[dict[str, Any]] = []
    for n, h, classes in cases:
        for estimator, measure in combos:
            row: dict[str, Any] = {
                "N": n,
                "h": h,
                "classes": classes,
                "estimator": estimator,
                "measure": measure,
            }
            for impl in ("dasl", "baseline"):
                est = _estimate_s(impl, estimator, measure, n, h, classes)
                if args.device == "cpu" and not args.all and est > args.max_est_s:
                    row[f"{impl}_ms"] = f"skipped (CPU, est. {est:.0f} s)"
                    continue
                res = _subprocess_case(
                    {
                        "impl": impl,
                        "estimator": estimator,
                        "measure": measure,
                        "n": n,
                        "h": h,
                        "classes": classes,
                        "device": args.device,
                        "repeats": repeats,
                        "max_seconds": 4 * max(est, 1.0),
                    },
                    args.threads,
                )
                if "error" in res:
                    row[f"{impl}_ms"] = f"error: {res['error']}"
                    continue
                row[f"{impl}_ms"] = res["median_s"] * 1e3
                row[f"{impl}_peak_mb"] = res["peak_mb"]
            if isinstance(row.get("dasl_ms"), float) and isinstance(row.get("baseline_ms"), float):
                row["speedup"] = row["baseline_ms"] / row["dasl_ms"]
                row["dasl/straightforward"] = row["dasl_ms"] / row["baseline_ms"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    cols = [
        "N",
        "h",
        "estimator",
        "measure",
        "dasl_ms",
        "baseline_ms",
        "speedup",
        "dasl/straightforward",
        "dasl_peak_mb",
        "baseline_peak_mb",
    ]
    print(format_table(rows, cols))
    path = write_results(
        name,
        {
            "device": args.device,
            "quick": args.quick,
            "threads": torch.get_num_threads(),
            "background_load": bool(args.background_load),
            "rows": rows,
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
