"""Move the flat ``benchmarks/results/`` into ``benchmarks/results/<benchmark>/<run>/`` (#17).

    python -m benchmarks.ablation.migrate            # move, with git mv
    python -m benchmarks.ablation.migrate --dry-run  # print the moves only

Idempotent: every entry at the top of ``benchmarks/results/`` that is not a benchmark folder
of the new layout is moved, so re-running after files were added in the flat layout moves
just those. What goes where:

- ``dar_ablation*_cache/<dataset>/*.json`` (per-trial caches) leave git (``git rm --cached``)
  and join the git-ignored shared cache ``dar_ablation/cache/<dataset>/``; of two records of
  one trial the one finished later is kept;
- a report ``dar_ablation_<run>.json`` / ``.md``, and every file whose name starts with
  ``dar_ablation_<run>_`` (plots, queue scripts; the longest such run wins) go to
  ``dar_ablation/<run>/``, with ``<name>_summary.json``, the cache records of the trials the
  report lists (those whose numbers match the report; the others are kept from the report
  itself, without their config) and ``manifest.json`` (the commit and date of the report's
  last change, the command where it is known, the report's environment);
- ``dar_ablation_log_<x>.txt`` goes with the run ``<x>`` names, else to ``dar_ablation/logs/``;
- any other ``<benchmark>[_<variant>].<ext>`` to ``<benchmark>/<variant or default>/``
  (:func:`benchmarks.common.split_name`), plus the few names of :data:`SPECIAL`.

Paths under ``benchmarks/results/`` cited in ``benchmarks/RESULTS.md``, ``docs/*.md`` and in
the moved shell scripts are rewritten to the new places.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.ablation.cells import Cell, trial_id
from benchmarks.ablation.report import slim
from benchmarks.ablation.store import BENCHMARK, summary_path, write_summary
from benchmarks.common import BENCHMARKS, RESULTS_DIR, split_name
from dasl.utils.io import atomic_write_json

REPO = RESULTS_DIR.parent.parent
LOGS = "logs"
SPECIAL = {
    "glyphs_dar": "glyphs_testbed/dar",
    "gpu_l2_kernel_probe_h200.json": "gpu_suite/h200_probes",
    "gpu_loop_probe_h200.json": "gpu_suite/h200_probes",
}
"""Entries whose name says neither benchmark nor run: their folder (relative to the results)."""
KNOWN_COMMANDS = {
    "dar_ablation_glyphs_controls": (
        "python -m benchmarks.dar_ablation --datasets glyphs --bases proxyanchor "
        "--baseline-lrs 0.01 --dar-at-baseline-lr --seeds 5 --threads 1 --cache "
        "benchmarks/results/dar_ablation_glyphs_cache --no-plots --differences signed "
        "--measures l2sq --estimators exact --finalists 1 --lambdas 0.01 0.1 1 --tune-lambdas "
        "0.03 0.3 3 --extend-edges 2 --cached-lambdas 10 30 100 --controls compact_inter "
        "within_scatter batch_variance --name dar_ablation_glyphs_controls"
    ),
}
"""Commands of runs made before the manifest existed, where a committed script records them
(``dar_ablation_glyphs_controls_queue.sh`` step 3); the other manifests point at the scripts."""
TEXT_FILES = ("benchmarks/RESULTS.md", "docs/*.md", "benchmarks/results/*/*/*.sh")
MOVED = "moved.json"
"""``benchmarks/results/moved.json``: every path moved so far, old -> new; references to any
of them are rewritten on each run, so that text merged in later with old paths is fixed too."""


class Mover:
    """Moves with ``git mv`` (tracked) or a plain rename (untracked); ``dry`` only prints."""

    def __init__(self, root: Path, dry: bool, log: Callable[[str], None] = print) -> None:
        self.root, self.dry, self.log = root, dry, log
        self.moves: dict[str, str] = {}
        self.untracked: list[str] = []

    def git(self, *args: str) -> str:
        out = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def tracked(self, path: Path) -> bool:
        rel = str(path.relative_to(self.root))
        return bool(self.git("ls-files", "--", rel).strip())

    def move(self, src: Path, dst: Path) -> None:
        rel_src, rel_dst = (str(p.relative_to(self.root)) for p in (src, dst))
        self.moves[rel_src] = rel_dst
        self.log(f"{rel_src} -> {rel_dst}")
        if self.dry:
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        if self.tracked(src):
            # -f: a file re-made in the flat layout replaces its moved older version.
            self.git("mv", "-f", rel_src, rel_dst)
        else:
            if dst.exists():
                dst.unlink()
            src.rename(dst)

    def uncache(self, src: Path, dst: Path) -> None:
        """Move a cache file out of git into the ignored cache (the later record wins)."""
        rel_src = str(src.relative_to(self.root))
        self.untracked.append(rel_src)
        if self.dry:
            return
        if self.tracked(src):
            self.git("rm", "--cached", "-q", "--", rel_src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() and _finished(dst) > _finished(src):
            src.unlink()
        else:
            src.replace(dst)


def _finished(path: Path) -> str:
    try:
        return str(json.loads(path.read_text()).get("finished_utc") or "")
    except (OSError, ValueError):
        return ""


def _is_layout_folder(path: Path) -> bool:
    """A folder of the new layout (a benchmark's, or one :data:`SPECIAL` targets)."""
    tops = set(BENCHMARKS) | {v.split("/")[0] for v in SPECIAL.values()}
    return path.is_dir() and path.name in tops


def migrate_caches(results: Path, mover: Mover) -> int:
    n = 0
    for cache in sorted(results.glob(f"{BENCHMARK}*_cache")):
        if not cache.is_dir():
            continue
        for src in sorted(cache.rglob("*")):
            if src.is_file():
                mover.uncache(src, results / BENCHMARK / "cache" / src.relative_to(cache))
                n += 1
        if not mover.dry:
            shutil.rmtree(cache, ignore_errors=True)
        mover.moves[str(cache.relative_to(mover.root))] = str(
            (results / BENCHMARK / "cache").relative_to(mover.root)
        )
    return n


def report_names(results: Path) -> list[str]:
    """Report stems, flat or moved: ``dar_ablation*.json`` with a ``datasets`` section."""
    names = []
    paths = [*results.glob(f"{BENCHMARK}*.json"), *results.glob(f"{BENCHMARK}/*/{BENCHMARK}*.json")]
    for p in sorted(paths):
        if p.stem.endswith("_summary"):
            continue
        try:
            if "datasets" in json.loads(p.read_text()):
                names.append(p.stem)
        except ValueError:
            continue
    return names


def owner(stem: str, names: list[str], bare: bool = True) -> str | None:
    """The report whose name is ``stem`` or the longest that ``stem`` starts with (+ ``_``);
    ``bare=False``: not the run named just ``dar_ablation`` unless ``stem`` is that."""
    hits = [
        n for n in names if stem == n or (stem.startswith(n + "_") and (bare or n != BENCHMARK))
    ]
    return max(hits, key=len, default=None)


def target(entry: Path, results: Path, names: list[str]) -> Path:
    """Where a flat-layout entry goes (see the module docstring); a folder's own new place."""
    if entry.name in SPECIAL:
        folder = results / SPECIAL[entry.name]
        return folder if entry.is_dir() else folder / entry.name
    stem = entry.name[: -len(entry.suffix)] if entry.is_file() and entry.suffix else entry.name
    name = entry.name if entry.is_file() else ""
    if stem.startswith(f"{BENCHMARK}_log_"):
        # A log goes with the run it names, never by default with the bare-named run.
        run = owner(f"{BENCHMARK}_" + stem[len(f"{BENCHMARK}_log_") :], names[:], bare=False)
        return results / BENCHMARK / (split_name(run)[1] if run else LOGS) / name
    if stem.startswith(BENCHMARK):
        run = owner(stem, names)
        if run is not None:
            return results / BENCHMARK / split_name(run)[1] / name
    bench, run_name = split_name(stem)
    return results / bench / run_name / name


def build_summary(report: dict[str, Any], cache: Path) -> tuple[dict[str, Any], int, int]:
    """The summary of a report: per dataset, the cache record of each trial the report lists
    when its numbers are the report's (else the report's own record, without a config), and
    the raw-pixel record when its data config is the report's. Returns it, matched, unmatched.
    """
    out: dict[str, Any] = {}
    matched = unmatched = 0
    for ds, body in report["datasets"].items():
        listed: dict[str, dict[str, Any]] = {}
        for runs in list(body.get("screen", {}).values()) + list(body.get("finals", {}).values()):
            for rec in runs.values():
                listed.setdefault(rec["trial"], rec)
        expected_val: dict[str, float] = {}
        for tuned in (body.get("base_tuning") or {}).values():
            for b, val in tuned["val_map@r"].items():
                tid = trial_id(Cell(b), tuned["lr"], 0)
                listed.setdefault(tid, {})
                expected_val[tid] = val
        trials: dict[str, dict[str, Any]] = {}
        for tid, rec in listed.items():
            path = cache / ds / f"{tid}.json"
            cached = json.loads(path.read_text()) if path.is_file() else None
            if not rec:  # a base-tuning trial: the report keeps its validation score only
                same = cached is not None and cached["val_map@r"] == expected_val[tid]
            else:
                same = cached is not None and _canon(slim(cached)) == _canon(rec)
            if same:
                trials[tid] = cached
                matched += 1
            elif rec:
                trials[tid] = {"trial": tid, "config": None, **slim(rec)}
                unmatched += 1
        raw_path = cache / ds / "raw_pixels.json"
        raw = json.loads(raw_path.read_text()) if raw_path.is_file() else None
        if raw is not None and raw.get("data") != body.get("config", {}).get("data"):
            raw = body.get("raw_pixels")
        out[ds] = {"raw_pixels": raw or body.get("raw_pixels"), "trials": trials}
    return out, matched, unmatched


def _canon(rec: dict[str, Any]) -> str:
    return json.dumps(rec, sort_keys=True)


def write_manifest_of(folder: Path, name: str, report: dict[str, Any], mover: Mover) -> None:
    """The manifest of a run made before manifests: what git and the report know of it."""
    if (folder / "manifest.json").is_file() or mover.dry:
        return
    # The report's last commit in the flat layout (the moved path has no history yet).
    rel = f"benchmarks/results/{name}.json"
    log = mover.git("log", "-1", "--format=%H %cI", "--", rel).split()
    scripts = sorted(p.name for p in folder.glob("*.sh"))
    atomic_write_json(
        folder / "manifest.json",
        {
            "command": KNOWN_COMMANDS.get(name),
            "command_note": None
            if name in KNOWN_COMMANDS
            else "made before manifests (#17): see the scripts here and benchmarks/RESULTS.md"
            + (f" ({', '.join(scripts)})" if scripts else ""),
            "commit": log[0] if log else None,
            "date": log[1] if len(log) > 1 else None,
            "machine": report.get("environment"),
            "load": None,
            "migrated_from": f"benchmarks/results/{name}.json",
        },
    )


def rewrite_references(root: Path, moves: dict[str, str], dry: bool) -> list[Path]:
    """Replace each moved path (longest first, whole paths only) in the text files."""
    files = [p for pattern in TEXT_FILES for p in sorted(root.glob(pattern))]
    pairs = sorted(moves.items(), key=lambda kv: -len(kv[0]))
    changed = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text()
        new = text
        for old, dst in pairs:
            end = r"(?![\w~-]|\.\w)"
            new = re.sub(re.escape(old) + end, lambda _, d=dst: d, new)
            # RESULTS.md, in benchmarks/, cites results/... relative to itself.
            rel_old, rel_dst = (q.removeprefix("benchmarks/") for q in (old, dst))
            new = re.sub(r"(?<![\w/.~-])" + re.escape(rel_old) + end, lambda _, d=rel_dst: d, new)
        if new != text:
            changed.append(path)
            if not dry:
                path.write_text(new)
    return changed


def migrate(
    root: Path = REPO, dry: bool = False, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole migration under ``root`` (a checkout); returns what it did."""
    results = root / RESULTS_DIR.relative_to(REPO)
    mover = Mover(root, dry, log)
    n_cache = migrate_caches(results, mover)
    names = report_names(results)
    entries = [
        e
        for e in sorted(results.iterdir())
        if not _is_layout_folder(e) and not e.name.startswith(".") and e.name != MOVED
    ]
    for entry in entries:
        dst = target(entry, results, names)
        if entry.is_dir():
            dst = dst if entry.name in SPECIAL else dst / entry.name
            for f in sorted(entry.rglob("*")):
                if f.is_file():
                    mover.move(f, dst / f.relative_to(entry))
            mover.moves[str(entry.relative_to(root))] = str(dst.relative_to(root))
            if not dry:
                shutil.rmtree(entry, ignore_errors=True)
        else:
            mover.move(entry, dst)
    summaries = {}
    moved_now = {Path(k).stem for k in mover.moves}
    for name in names:
        folder = results / BENCHMARK / split_name(name)[1]
        report_path = folder / f"{name}.json"
        if dry or not report_path.is_file():
            continue
        if name not in moved_now and summary_path(folder, name).is_file():
            continue
        report = json.loads(report_path.read_text())
        datasets, matched, unmatched = build_summary(report, results / BENCHMARK / "cache")
        path = write_summary(summary_path(folder, name), name, datasets)
        write_manifest_of(folder, name, report, mover)
        mover.git(
            "add",
            "--",
            str(path.relative_to(root)),
            str((folder / "manifest.json").relative_to(root)),
        )
        summaries[name] = {"matched": matched, "without_config": unmatched}
        log(f"{name}: summary of {matched} cached trials, {unmatched} from the report only")
    moved_path = results / MOVED
    every = json.loads(moved_path.read_text()) if moved_path.is_file() else {}
    every.update(mover.moves)
    changed = rewrite_references(root, every, dry)
    if not dry:
        atomic_write_json(moved_path, dict(sorted(every.items())))
        changed.append(moved_path)
        mover.git("add", "--", *(str(p.relative_to(root)) for p in changed))
    return {
        "moved": len([k for k in mover.moves if (root / k).suffix]),
        "cache_files_out_of_git": n_cache,
        "summaries": summaries,
        "rewritten": [str(p.relative_to(root)) for p in changed],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the moves, change nothing")
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    done = migrate(args.root.resolve(), args.dry_run)
    print(json.dumps(done, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
