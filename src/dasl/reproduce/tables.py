"""The tables ``dasl reproduce`` runs: their rows (one config each) and report columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dasl.errors import ConfigError


@dataclass(frozen=True)
class Column:
    metric: str
    """Key in a run's ``metrics.json`` (a fraction there; reported in percent)."""
    label: str


@dataclass(frozen=True)
class Row:
    key: str
    """Selects the row (``--rows``) and prefixes its own overrides (``dasl_pa.dar.lam=3``)."""
    label: str
    config: str
    """Path under the repository's ``configs/`` folder."""


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    command: str
    """``train`` (:func:`dasl.training.run.run_experiment`) or ``pretrain``
    (:func:`dasl.training.ssl_run.run_pretrain`)."""
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    """Compared with the poster (where it has the cell)."""
    extra: tuple[Column, ...] = ()
    """Ours only: what the field now expects beside the poster's columns."""

    @property
    def row_keys(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.rows)

    def select(self, keys: Sequence[str] | None) -> tuple[Row, ...]:
        """The rows named by ``keys`` in table order (all rows for ``None``).

        Raises ``ValueError`` naming the valid keys for an unknown one.
        """
        if not keys:
            return self.rows
        unknown = [k for k in keys if k not in self.row_keys]
        if unknown:
            raise ConfigError(
                f"--rows: {', '.join(unknown)} is not a row of {self.name}; "
                f"its rows: {', '.join(self.row_keys)}"
            )
        return tuple(r for r in self.rows if r.key in keys)


def _dml_rows(dataset: str) -> tuple[Row, ...]:
    labels = (
        ("npair", "N-pair"),
        ("dasl_np", "DASL-NP"),
        ("proxyanchor", "ProxyAnchor"),
        ("dasl_pa", "DASL-PA"),
    )
    return tuple(Row(key, label, f"dml/{dataset}_{key}.yaml") for key, label in labels)


def _recall(*ks: int) -> tuple[Column, ...]:
    return tuple(Column(f"recall@{k}", f"R@{k}") for k in ks)


_NMI = Column("nmi", "NMI")
_MAP_R = Column("map@r", "MAP@R")

TABLES: dict[str, Table] = {
    "cub200": Table(
        "cub200", "CUB-200-2011", "train", _dml_rows("cub200"), (_NMI, *_recall(1, 4, 8)), (_MAP_R,)
    ),
    "cars196": Table(
        "cars196", "Cars196", "train", _dml_rows("cars196"), (_NMI, *_recall(1, 4, 8)), (_MAP_R,)
    ),
    "sop": Table(
        "sop",
        "Stanford Online Products",
        "train",
        _dml_rows("sop"),
        (_NMI, *_recall(1, 10, 100)),
        (_MAP_R,),
    ),
    "inshop": Table(
        "inshop",
        "In-Shop Clothes Retrieval",
        "train",
        _dml_rows("inshop"),
        _recall(1, 10, 20, 30),
        (_MAP_R,),
    ),
    "imagenet100": Table(
        "imagenet100",
        "ImageNet-100, ResNet-50, 100 epochs (self-supervised)",
        "pretrain",
        (
            Row("simclr", "SimCLR", "ssl/in100_r50_100ep_simclr.yaml"),
            Row("dasl_cf", "DASL cluster-free", "ssl/in100_r50_100ep_dasl_cf.yaml"),
            Row("dasl_cu", "DASL cluster-used", "ssl/in100_r50_100ep_dasl_cu.yaml"),
        ),
        (
            Column("knn_top1@200", "k-NN top-1"),
            Column("linear_top1", "linear top-1"),
            Column("linear_top5", "linear top-5"),
        ),
        (Column("knn_top1@20", "k-NN top-1 (k=20)"),),
    ),
}
"""``dasl reproduce TABLE``: every table by name."""
