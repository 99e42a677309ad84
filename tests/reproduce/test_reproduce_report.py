"""reproduce.json / reproduce.md: our numbers in percent beside the poster's, the gap, CIs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dasl.reproduce.report import RowRuns, build_report, render_markdown, write_report
from dasl.reproduce.seed_summary import summarize
from dasl.reproduce.tables import TABLES


def _report(tmp_path: Path) -> dict:
    table = TABLES["cub200"]
    npair, dasl_pa = table.rows[0], table.rows[3]
    runs = [
        RowRuns(
            npair,
            npair.config,
            {0: "r/npair/seed0", 1: "r/npair/seed1"},
            {0: {"recall@1": 0.60, "nmi": 0.5, "map@r": 0.2}, 1: {"recall@1": 0.64, "nmi": 0.6}},
        ),
        RowRuns(
            dasl_pa,
            dasl_pa.config,
            {0: "r/dasl_pa/seed0", 1: "r/dasl_pa/seed1"},
            {0: {"recall@1": 0.70}, 1: None},
        ),
    ]
    return build_report(
        table,
        runs,
        [0, 1],
        command="dasl reproduce cub200",
        overrides=["trainer.epochs=1"],
        out_dir=tmp_path,
    )


def test_numbers(tmp_path: Path) -> None:
    report = _report(tmp_path)
    npair, dasl_pa = report["rows"]
    r1 = npair["columns"]["recall@1"]
    assert r1["values"] == pytest.approx([60.0, 64.0])
    assert r1["mean"] == pytest.approx(62.0)
    assert r1["ci95"] == pytest.approx(summarize([60.0, 64.0]).half_width)
    assert r1["poster"] == 64.52 and r1["gap"] == pytest.approx(62.0 - 64.52)
    assert "Npair(Sohn, 2016)" in r1["poster_source"]
    # a metric one seed lacks is summarized over the other; MAP@R has no poster number
    assert npair["extra"]["map@r"]["n"] == 1 and "poster" not in npair["extra"]["map@r"]
    pa_r1 = dasl_pa["columns"]["recall@1"]
    assert dasl_pa["seeds_done"] == [0] and pa_r1["n"] == 1 and pa_r1["ci95"] is None
    assert pa_r1["gap"] == pytest.approx(70.0 - 73.96)
    assert dasl_pa["columns"]["recall@4"]["gap"] is None  # no value of ours yet
    assert [a["value"] for a in report["anchors"]] == [68.4, 69.9]


def test_markdown(tmp_path: Path) -> None:
    md = render_markdown(_report(tmp_path))
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| row |"))
    assert header.split(" | ")[1:4] == ["NMI", "NMI poster", "gap"]
    npair = next(line for line in lines if line.startswith("| N-pair |"))
    cells = [c.strip() for c in npair.strip("|").split("|")]
    half = summarize([60.0, 64.0]).half_width
    assert cells[4:7] == [f"62.00 ± {half:.2f}", "64.52", "-2.52"]
    pa = next(line for line in lines if line.startswith("| DASL-PA |"))
    assert "70.00 (1 of 2 seeds)" in pa and "73.96" in pa
    assert "`trainer.epochs=1`" in md and "not comparable" in md
    assert "Reality Check" in md and "tjddus9597" in md


def test_write_is_atomic_with_normal_permissions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    json_path, md_path = write_report(_report(tmp_path), out)
    assert json.loads(json_path.read_text())["table"] == "cub200"
    assert md_path.read_text().startswith("# dasl reproduce cub200")
    assert sorted(p.name for p in out.iterdir()) == ["reproduce.json", "reproduce.md"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(json_path.stat().st_mode) == 0o666 & ~umask


def test_in_shop_has_no_poster_numbers_and_says_so(tmp_path: Path) -> None:
    table = TABLES["inshop"]
    row = table.rows[0]
    runs = [RowRuns(row, row.config, {0: "r"}, {0: {"recall@1": 0.9, "recall@10": 0.95}})]
    report = build_report(table, runs, [0], command="c", overrides=[], out_dir=tmp_path)
    cell = report["rows"][0]["columns"]["recall@1"]
    assert cell["mean"] == pytest.approx(90.0) and cell["poster"] is None and cell["gap"] is None
    assert (
        report["notes"][0] == "The poster has no In-Shop Clothes Retrieval numbers for these rows."
    )
    md = render_markdown(report)
    assert "| N-pair | 90.00 | — | — | 95.00 | — | — |" in md
    assert "OML" in md and "Settings changed" not in md
