"""The results layout (#17): run folders, manifests, and the re-runnable migration into them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from benchmarks import common
from benchmarks.ablation import migrate
from benchmarks.ablation.store import load_summary, write_summary


@pytest.mark.parametrize(
    ("name", "expected"),
    [("eval_speed", ("eval_speed", "default")), ("eval_speed_quick", ("eval_speed", "quick")),
     ("dar_ablation_glyphs_controls", ("dar_ablation", "glyphs_controls")),
     ("dar_speed_exact-l1_exact-l2", ("dar_speed", "exact-l1_exact-l2")),
     ("gpu_suite_h200", ("gpu_suite", "h200")), ("new_bench", ("new_bench", "default"))],
)  # fmt: skip
def test_split_name(name: str, expected: tuple[str, str]) -> None:
    assert common.split_name(name) == expected


def test_write_results_puts_json_and_manifest_in_the_run_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    path = common.write_results("eval_speed_quick", {"rows": [1]})
    assert path == tmp_path / "eval_speed" / "quick" / "eval_speed_quick.json"
    info = json.loads((path.parent / "manifest.json").read_text())
    assert set(info) == {"command", "commit", "date", "machine", "load"}
    assert info["command"].startswith("python -m benchmarks.")
    assert info["load"]["cpus"] and len(info["load"]["loadavg_1_5_15"]) == 3
    payload = json.loads(path.read_text())
    assert payload["rows"] == [1] and payload["manifest"]["date"] == info["date"]


def test_summary_round_trip_one_trial_per_line(tmp_path) -> None:
    datasets = {
        "digits": {"raw_pixels": {"data": {"a": 1}}, "trials": {"t1": {"x": 1.5}, "t2": {}}},
        "glyphs": {"raw_pixels": None, "trials": {}},
    }
    path = write_summary(tmp_path / "s.json", "dar_ablation_x", datasets)
    assert load_summary(path) == datasets
    assert sum(line.startswith('"t') for line in path.read_text().splitlines()) == 2


def _git(root: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout


def _write(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


def _trial(tid: str, score: float) -> dict:
    return {"trial": tid, "config": {"seed": 0, "data": {"name": "digits"}}, "val_map@r": score,
            "test": {"map@r": score}, "finished_utc": "2026-12-01T00:00:00Z"}  # fmt: skip


def _report(tids: list[str], score: float) -> dict:
    slim = {t: {k: v for k, v in _trial(t, score).items() if k != "config"} for t in tids}
    return {"benchmark": "x", "environment": {"cpu": "toy"}, "datasets": {"digits": {
        "config": {"data": {"name": "digits"}}, "screen": {"c": {"1": slim[tids[0]]}},
        "finals": {"c": {str(i): slim[t] for i, t in enumerate(tids)}}}}}  # fmt: skip


def test_migration_moves_the_flat_layout_and_is_rerunnable(tmp_path) -> None:
    """A toy checkout in the flat layout: reports, plots, a log, a trial cache in git, another
    benchmark's JSON and RESULTS.md citing them. Migrated, re-run (no change), then files
    added in the flat layout afterwards (as a branch merged later adds them) are moved too."""
    root = tmp_path
    res = root / "benchmarks" / "results"
    tid = "npair__baseline__v0.01__s0"
    _write(res / "dar_ablation_x.json", _report([tid], 0.5))
    _write(res / "dar_ablation_x.md", "| table |")
    _write(res / "dar_ablation_x_digits_forest.png", "png")
    _write(res / "dar_ablation_x_queue.sh", "--cache benchmarks/results/dar_ablation_cache\n")
    _write(res / "dar_ablation_log_x.txt", "log")
    _write(res / "dar_ablation_log_other.txt", "log")
    _write(res / "dar_ablation_cache" / "digits" / f"{tid}.json", _trial(tid, 0.5))
    _write(res / "eval_speed_quick.json", {"rows": []})
    cite = "`benchmarks/results/dar_ablation_x.md`, `benchmarks/results/eval_speed_quick.json`\n"
    _write(root / "benchmarks" / "RESULTS.md", cite)
    # The project's own ignore rules: the shared cache must be one of the ignored paths.
    _write(root / ".gitignore", (Path(common.__file__).parent.parent / ".gitignore").read_text())
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "flat")
    head = _git(root, "rev-parse", "HEAD").strip()

    done = migrate.migrate(root, log=lambda s: None)
    run = res / "dar_ablation" / "x"
    assert sorted(p.name for p in run.iterdir()) == [
        "dar_ablation_log_x.txt", "dar_ablation_x.json", "dar_ablation_x.md",
        "dar_ablation_x_digits_forest.png", "dar_ablation_x_queue.sh",
        "dar_ablation_x_summary.json", "manifest.json",
    ]  # fmt: skip
    assert (res / "dar_ablation" / "logs" / "dar_ablation_log_other.txt").is_file()
    assert (res / "eval_speed" / "quick" / "eval_speed_quick.json").is_file()
    # The cache left git but not the disk: in the ignored shared cache.
    assert (res / "dar_ablation" / "cache" / "digits" / f"{tid}.json").is_file()
    assert not _git(root, "ls-files", "benchmarks/results/dar_ablation/cache")
    assert not (res / "dar_ablation_cache").exists()
    summary = load_summary(run / "dar_ablation_x_summary.json")
    assert summary["digits"]["trials"][tid]["config"] == _trial(tid, 0.5)["config"]
    assert done["summaries"] == {"dar_ablation_x": {"matched": 1, "without_config": 0}}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["commit"] == head and manifest["machine"] == {"cpu": "toy"}
    text = (root / "benchmarks" / "RESULTS.md").read_text()
    assert "benchmarks/results/dar_ablation/x/dar_ablation_x.md" in text
    assert "benchmarks/results/eval_speed/quick/eval_speed_quick.json" in text
    script = (run / "dar_ablation_x_queue.sh").read_text()
    assert script == "--cache benchmarks/results/dar_ablation/cache\n"
    _git(root, "commit", "-qm", "migrated")

    again = migrate.migrate(root, log=lambda s: None)
    assert again["moved"] == 0 and not again["summaries"]
    assert not _git(root, "status", "--porcelain")

    # Later, in the flat layout: a new report whose trial is in a new cache file (its number
    # differs from the cached one of a second trial: that one is kept from the report only),
    # and a RESULTS.md line citing the old place of a moved file.
    tid2 = "npair__baseline__v0.01__s1"
    _write(res / "dar_ablation_x_more.json", _report([tid, tid2], 0.5))
    _write(res / "dar_ablation_glyphs_cache" / "digits" / f"{tid2}.json", _trial(tid2, 0.7))
    with (root / "benchmarks" / "RESULTS.md").open("a") as f:
        f.write("Old: benchmarks/results/dar_ablation_x.json.\n")
    third = migrate.migrate(root, log=lambda s: None)
    assert (res / "dar_ablation" / "x_more" / "dar_ablation_x_more.json").is_file()
    assert third["summaries"] == {"dar_ablation_x_more": {"matched": 1, "without_config": 1}}
    assert (res / "dar_ablation" / "cache" / "digits" / f"{tid2}.json").is_file()
    text = (root / "benchmarks" / "RESULTS.md").read_text()
    assert "Old: benchmarks/results/dar_ablation/x/dar_ablation_x.json." in text
    assert not (res / "dar_ablation" / "x" / "dar_ablation_x_more.json").exists()
