"""The poster's numbers: transcribed faithfully, and consistent with what else the repository
says about them (the configs' "Paper's ..." comments)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dasl.reproduce.paper_tables import (
    PAPER,
    SSL_COLUMNS,
    SSL_ROWS,
    SUPERVISED_COLUMNS,
    paper_number,
)
from dasl.reproduce.tables import TABLES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# The poster's text lines (the PDF-to-text conversion, tabs kept), as the independent source.
BASELINES_LINE = (
    "Npair(Sohn, 2016) ProxyA.(Kim et al., 2020b)\t69.50 75.72\t82.57 87.71\t94.97 95.76\t"
    "95.92 97.86\t69.53 72.31\t64.52 69.72\t85.63 87.01\t91.15 92.41\t\t91.11 91.02\t"
    "76.21 78.39\t88.43 90.48\t92.08 96.16\t"
)
DASL_LINE = (
    "DASL-NP (ours) DASL-PA (ours)\t75.96↑ 77.32 ↑\t86.34↑ 92.31 ↑\t97.56↑ 97.82 ↑\t"
    "98.87↑ 98.90↑\t73.52↑ 76.50 ↑\t69.63↑ 73.96↑\t89.62↑ 90.54 ↑\t93.61↑ 94.21 ↑\t\t"
    "92.85↑ 93.86 ↑\t79.21↑ 83.32 ↑\t93.21↑ 93.86↑\t97.86↑ 97.95↑\t"
)
# ImageNet-100 / ResNet-50 / 100 epochs: one line per column, nine rows each; SimCLR first,
# DASL cluster-free and cluster-used last.
SSL_LINES = (
    "55.9 56.3 57.7 55.9 58.2 55.9 59.2 <u>60.5</u> 61.5",
    "61.3 65.5 60.2 60.2 61.0 60.8 61.1 65.2 67.3",
    "78.6 77.8 79.2 77.2 79.4 79.3 79.4 79.8 80.1",
)


def _cells(line: str) -> list[list[float]]:
    cells = [c for c in line.split("\t")[1:] if c.strip()]
    return [[float(v) for v in re.findall(r"\d+\.\d+", c)] for c in cells]


@pytest.mark.parametrize(
    ("line", "rows"),
    [(BASELINES_LINE, ("npair", "proxyanchor")), (DASL_LINE, ("dasl_np", "dasl_pa"))],
)
def test_supervised_numbers_are_the_printed_cells(line: str, rows: tuple[str, str]) -> None:
    cells = _cells(line)
    assert len(cells) == len(SUPERVISED_COLUMNS) == 12
    for (dataset, metric, column), pair in zip(SUPERVISED_COLUMNS, cells, strict=True):
        assert len(pair) == 2, column
        for row, value in zip(rows, pair, strict=True):
            number = paper_number(dataset, row, metric)
            assert number is not None and number.value == value, (row, column)
            assert number.column == column


def test_ssl_numbers_are_the_printed_cells() -> None:
    for (metric, _), line in zip(SSL_COLUMNS, SSL_LINES, strict=True):
        values = [float(v) for v in re.findall(r"\d+\.\d+", line)]
        assert len(values) == 9
        for row, index in (("simclr", 0), ("dasl_cf", 7), ("dasl_cu", 8)):
            assert paper_number("imagenet100", row, metric).value == values[index]  # type: ignore[union-attr]
    assert set(SSL_ROWS) == {"simclr", "dasl_cf", "dasl_cu"}


def _config_r1(path: Path) -> float:
    m = re.search(r"Paper's R@1 for this row \(for reference\): ([\d.]+)", path.read_text())
    assert m, path
    return float(m.group(1))


@pytest.mark.parametrize("table", ["cub200", "cars196", "sop"])
def test_r1_agrees_with_the_configs(table: str) -> None:
    for row in TABLES[table].rows:
        assert paper_number(table, row.key, "recall@1").value == _config_r1(  # type: ignore[union-attr]
            CONFIGS / row.config
        )


def test_ssl_numbers_agree_with_the_configs() -> None:
    for row in TABLES["imagenet100"].rows:
        text = (CONFIGS / row.config).read_text()
        m = re.search(r"k-NN (\d+\.\d), linear Top-1 (\d+\.\d), Top-5 (\d+\.\d)", text)
        assert m, row.config
        metrics = ("knn_top1@200", "linear_top1", "linear_top5")
        for metric, value in zip(metrics, m.groups(), strict=True):
            assert paper_number("imagenet100", row.key, metric).value == float(value)  # type: ignore[union-attr]


def test_every_compared_cell_has_a_number_except_in_shop() -> None:
    for name, table in TABLES.items():
        for row in table.rows:
            for col in table.columns:
                number = paper_number(name, row.key, col.metric)
                assert (number is None) == (name == "inshop"), (name, row.key, col.metric)
    assert PAPER["inshop"] == {}


def test_recall_grows_with_k_and_top5_above_top1() -> None:
    for dataset, ks in (("cub200", (1, 4, 8)), ("cars196", (1, 4, 8)), ("sop", (1, 10, 100))):
        for row, cells in PAPER[dataset].items():
            values = [cells[f"recall@{k}"].value for k in ks]
            assert values == sorted(values), (dataset, row)
    for cells in PAPER["imagenet100"].values():
        assert cells["linear_top1"].value < cells["linear_top5"].value


def test_every_number_names_its_cell() -> None:
    for rows in PAPER.values():
        for cells in rows.values():
            for number in cells.values():
                source = number.source()
                assert number.table in source and number.row in source and number.column in source
