"""The poster's numbers for the rows ``dasl reproduce`` runs, each with where it was read.

Source: the ICLR 2024 poster of "Robust Similarity Learning with Difference Alignment
Regularization" (Chen, Niu, Gong, Koc, Yang, Sugiyama), available to the project only as a
PDF-to-text conversion whose table headers are garbled. The values below are transcribed in
the order the text prints them, so each tuple can be checked against its line of that text.
How the text was read, and where it is ambiguous, is recorded next to each table here and in
docs/METHOD-NOTES.md ("The poster's tables, as read for dasl reproduce").

Units: percent, as printed (NMI included).
"""

from __future__ import annotations

from dataclasses import dataclass

POSTER = (
    "ICLR 2024 poster, Chen et al., "
    "'Robust Similarity Learning with Difference Alignment Regularization'"
)


@dataclass(frozen=True)
class PaperNumber:
    """One number of the poster and the cell it was read from."""

    value: float
    table: str
    """The poster's table, by its heading."""
    row: str
    """The row label as printed."""
    column: str
    """The column, as ``<dataset or block> <metric>``."""
    note: str = ""
    """Why this reading, where the text leaves room for another."""

    def source(self) -> str:
        cell = f"{self.table}, row '{self.row}', column '{self.column}'"
        return f"{cell} ({self.note})" if self.note else cell


# ------------------------------------------------------------ supervised metric learning

SUPERVISED = "Experiments on Supervised Metric Learning"

# The header reads "CAR-196 | CUB-200 | SOP", four columns each. Cars first is what the text
# prints, and it agrees with the headline table of the project's method summary and the
# configs' "Paper's R@1" comments (CUB R@1 64.52 / 69.72 for N-pair / ProxyAnchor, Cars
# 82.57 / 87.71) and with the ProxyAnchor authors' own ResNet-50 results (CUB 69.9, Cars
# 87.7: field_anchors.py); Cars R@1 above CUB R@1 for every row is the field's usual order.
SUPERVISED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cars196", "nmi", "CAR-196 NMI"),
    ("cars196", "recall@1", "CAR-196 R@1"),
    ("cars196", "recall@4", "CAR-196 R@4"),
    ("cars196", "recall@8", "CAR-196 R@8"),
    ("cub200", "nmi", "CUB-200 NMI"),
    ("cub200", "recall@1", "CUB-200 R@1"),
    ("cub200", "recall@4", "CUB-200 R@4"),
    ("cub200", "recall@8", "CUB-200 R@8"),
    ("sop", "nmi", "SOP NMI"),
    ("sop", "recall@1", "SOP R@1"),
    ("sop", "recall@10", "SOP R@10"),
    ("sop", "recall@100", "SOP R@100"),
)
"""(dataset, our metric key, the poster's column) in the order the text prints them."""

# The rows "Npair(Sohn, 2016)" and "ProxyA.(Kim et al., 2020b)" share one line of the text:
# every cell prints N-pair's value then ProxyAnchor's (row-label order), e.g. "69.50 75.72".
# "DASL-NP (ours)" and "DASL-PA (ours)" share another the same way, with an up-arrow after
# each value ("75.96↑ 77.32 ↑"): the arrows are dropped.
_PAIRED_LINE = "printed on one line with ProxyA.; values alternate, N-pair first"
_PAIRED_LINE_PA = "printed on one line with Npair; values alternate, N-pair first"
_ARROWS = "printed on one line with DASL-PA, values alternating DASL-NP first, '↑' dropped"
_ARROWS_PA = "printed on one line with DASL-NP, values alternating DASL-NP first, '↑' dropped"

SUPERVISED_ROWS: dict[str, tuple[str, tuple[float, ...], str]] = {
    "npair": (
        "Npair(Sohn, 2016)",
        (69.50, 82.57, 94.97, 95.92, 69.53, 64.52, 85.63, 91.15, 91.11, 76.21, 88.43, 92.08),
        _PAIRED_LINE,
    ),
    "proxyanchor": (
        "ProxyA.(Kim et al., 2020b)",
        (75.72, 87.71, 95.76, 97.86, 72.31, 69.72, 87.01, 92.41, 91.02, 78.39, 90.48, 96.16),
        _PAIRED_LINE_PA,
    ),
    "dasl_np": (
        "DASL-NP (ours)",
        (75.96, 86.34, 97.56, 98.87, 73.52, 69.63, 89.62, 93.61, 92.85, 79.21, 93.21, 97.86),
        _ARROWS,
    ),
    "dasl_pa": (
        "DASL-PA (ours)",
        (77.32, 92.31, 97.82, 98.90, 76.50, 73.96, 90.54, 94.21, 93.86, 83.32, 93.86, 97.95),
        _ARROWS_PA,
    ),
}
"""row key -> (label as printed, the 12 values in :data:`SUPERVISED_COLUMNS` order, note)."""

# DASL-PA's SOP NMI (93.86) equals its SOP R@10 (93.86): possibly a copy slip in the poster,
# recorded as printed.
_SAME_AS_R10 = "equal to the same row's SOP R@10; recorded as printed"

# ------------------------------------------------------------- self-supervised learning

SELF_SUPERVISED = "Experiments on Self-Supervised Contrastive Learning"

# The header is garbled ("ImageN Net-100 ... #Arch", "100 epochs | 400 epochs | 300 epochs |
# 00 epocl"); the first block, "100 epochs", is ImageNet-100 with ResNet-50 (the
# "Res.50" column), three columns k-NN, Top-1, Top-5. Each column is printed as one line of
# nine values in row order (SimCLR, BYOL, CMC, PCL, SwAV, HCL, MetAug, DASL cluster-free,
# DASL cluster-used); all three columns of this block have exactly nine. Top-1/Top-5 are the
# linear evaluation (the standard protocol of those baselines). The poster does not say
# which k the k-NN column uses: the report compares it with our k=200 (T=0.1, the configs'
# first), and lists k=20 beside it.
IN100_BLOCK = "ImageNet-100, ResNet-50, 100 epochs"
SSL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("knn_top1@200", f"{IN100_BLOCK} k-NN"),
    ("linear_top1", f"{IN100_BLOCK} Top-1"),
    ("linear_top5", f"{IN100_BLOCK} Top-5"),
)
_KNN_K = "the poster does not state k; compared with our k=200"
SSL_ROWS: dict[str, tuple[str, tuple[float, ...]]] = {
    "simclr": ("SimCLR(Chen et al., 2020)", (55.9, 61.3, 78.6)),
    "dasl_cf": ("DASL (cluster-free)", (60.5, 65.2, 79.8)),
    "dasl_cu": ("DASL (cluster-used)", (61.5, 67.3, 80.1)),
}
"""row key -> (label as printed, values in :data:`SSL_COLUMNS` order)."""


def _supervised() -> dict[str, dict[str, dict[str, PaperNumber]]]:
    out: dict[str, dict[str, dict[str, PaperNumber]]] = {}
    for row, (label, values, note) in SUPERVISED_ROWS.items():
        for (dataset, metric, column), value in zip(SUPERVISED_COLUMNS, values, strict=True):
            cell_note = note
            if row == "dasl_pa" and column == "SOP NMI":
                cell_note = f"{note}; {_SAME_AS_R10}"
            out.setdefault(dataset, {}).setdefault(row, {})[metric] = PaperNumber(
                value, SUPERVISED, label, column, cell_note
            )
    return out


def _self_supervised() -> dict[str, dict[str, PaperNumber]]:
    out: dict[str, dict[str, PaperNumber]] = {}
    for row, (label, values) in SSL_ROWS.items():
        for (metric, column), value in zip(SSL_COLUMNS, values, strict=True):
            note = _KNN_K if metric.startswith("knn") else ""
            out.setdefault(row, {})[metric] = PaperNumber(
                value, SELF_SUPERVISED, label, column, note
            )
    return out


PAPER: dict[str, dict[str, dict[str, PaperNumber]]] = {
    **_supervised(),
    "inshop": {},  # the poster has no In-Shop table
    "imagenet100": _self_supervised(),
}
"""table name -> row key -> our metric key -> the poster's number."""


def paper_number(table: str, row: str, metric: str) -> PaperNumber | None:
    """The poster's number for a cell, or ``None`` where the poster has none."""
    return PAPER.get(table, {}).get(row, {}).get(metric)
