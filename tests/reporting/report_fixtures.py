"""A small planted retrieval problem and an independent (float64, explicit loops) reference."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import torch

CLASS_NAMES = [f"c{i}<&>" for i in range(8)]  # markup characters: the page must escape them


def planted(seed: int = 0, n_classes: int = 8, per_class: int = 6, dim: int = 12, noise=0.8):
    """Class centres on random directions plus noise large enough for some mistakes."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    centres = rng.normal(size=(n_classes, dim))
    emb = centres[labels] + noise * rng.normal(size=(labels.shape[0], dim))
    return emb.astype(np.float32), labels


def image_of(i: int) -> torch.Tensor:
    """A (1, 8, 8) image in [0, 1] whose pixels depend on the item index."""
    g = torch.arange(64, dtype=torch.float32).reshape(1, 8, 8)
    return ((g * (i + 3)) % 97) / 96.0


def reference_neighbours(emb: np.ndarray, k: int) -> list[list[int]]:
    """Cosine top-k by explicit loops in float64, the query itself excluded, ties by index."""
    x = emb.astype(np.float64)
    out = []
    for i in range(x.shape[0]):
        sims = []
        for j in range(x.shape[0]):
            if j == i:
                continue
            cos = float(x[i] @ x[j]) / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
            sims.append((-cos, j))
        out.append([j for _, j in sorted(sims)[:k]])
    return out


def reference_per_class(labels: np.ndarray, nn: list[list[int]]) -> dict[int, tuple[float, int]]:
    """``{class: (Recall@1, queries)}`` by counting."""
    hits: dict[int, int] = {}
    total: dict[int, int] = {}
    for i, y in enumerate(labels.tolist()):
        total[y] = total.get(y, 0) + 1
        hits[y] = hits.get(y, 0) + int(labels[nn[i][0]] == y)
    return {c: (hits[c] / total[c], total[c]) for c in total}


class PageParser(HTMLParser):
    """Collects the per-class tables, the gallery rows (frame class + label of every thumb),
    the metrics table's cells and every img src."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.per_class: dict[tuple[str, str], list[list[str]]] = {}
        self.rows: list[dict] = []
        self.metrics: list[list[str]] = []
        self._table: tuple[str, str] | None = None
        self._in_metrics = False
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._variant: str | None = None
        self._tbody = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "table" and a.get("class") == "per-class":
            self._table = (a["data-variant"], a["data-which"])
            self.per_class[self._table] = []
        elif tag == "table" and a.get("id") == "metrics":
            self._in_metrics = True
        elif tag == "tbody":
            self._tbody = True
        elif tag == "tr" and self._tbody and (self._table or self._in_metrics):
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "tr" and a.get("class") == "gallery-row":
            self.rows.append({"query": int(a["data-query"]), "variants": {}})
        elif tag == "td" and "data-variant" in a and self.rows:
            self._variant = a["data-variant"]
            self.rows[-1]["variants"][self._variant] = []
        elif tag == "div" and "data-label" in a and self._variant:
            frame = "hit" if "hit" in a["class"].split() else "miss"
            self.rows[-1]["variants"][self._variant].append((a["data-label"], frame))

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._table:
                self.per_class[self._table].append(self._row)
            elif self._in_metrics:
                self.metrics.append(self._row)
            self._row = None
        elif tag == "table":
            self._table, self._in_metrics, self._tbody = None, False, False
        elif tag == "td":
            self._variant = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
