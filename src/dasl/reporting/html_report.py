"""Render ``report.html`` from plain data: one self-contained page (CSS inline, images as
base64 ``data:`` URIs, no script, nothing fetched from the network).

Jinja2 with autoescaping: every value is HTML-escaped unless marked safe, so a class name
such as ``<`` (glyphs has one) can never break the page. Jinja2 comes with torch and is
declared in pyproject.toml.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from dasl.utils.io import atomic_write_text


@dataclass
class Neighbour:
    """One retrieved item: its thumbnail (PNG bytes), its class name, whether it is a hit."""

    image: bytes
    label: str
    correct: bool


@dataclass
class GalleryRow:
    """A query and, per variant, its top-k neighbours (nearest first)."""

    index: int
    image: bytes
    label: str
    neighbours: dict[str, list[Neighbour]]


@dataclass
class ClassRecall:
    name: str
    recall: float
    count: int


@dataclass
class Report:
    """Everything the page shows. ``table_header`` / ``table_rows``: the formatted cells of
    the comparison (:func:`dasl.reporting.tables.table_cells`); ``plots``: ``(caption, PNG)``;
    ``best`` / ``worst``: per variant, the classes by Recall@1."""

    title: str
    summary: list[str] = field(default_factory=list)
    table_header: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    plots: list[tuple[str, bytes]] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    best: dict[str, list[ClassRecall]] = field(default_factory=dict)
    worst: dict[str, list[ClassRecall]] = field(default_factory=dict)
    gallery: list[GalleryRow] = field(default_factory=list)
    k: int = 5
    gallery_note: str = ""
    notes: list[str] = field(default_factory=list)


def png_uri(data: bytes) -> str:
    """``data:image/png;base64,...``."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1600px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #bbb;padding:3px 8px;text-align:right;font-size:13px}
th:first-child,td:first-child{text-align:left}
.plots img{max-width:100%;display:block;margin:8px 0 2px}
.caption{font-size:12px;color:#555;margin-bottom:16px}
.classes{display:flex;flex-wrap:wrap;gap:24px}
.gallery td{padding:4px;vertical-align:middle}
.gallery img{display:block;image-rendering:pixelated}
.thumb{display:inline-block;margin:1px;border:4px solid transparent}
.hit{border-color:#1a9b3c}.miss{border-color:#d22}
.query{border-color:#888}
.lab{font-size:10px;text-align:center;max-width:80px;overflow:hidden;white-space:nowrap}
.note{font-size:12px;color:#555}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ r.title }}</title><style>{{ css }}</style></head>
<body>
<h1>{{ r.title }}</h1>
{% for line in r.summary %}<p class="note">{{ line }}</p>{% endfor %}
{% if r.table_rows %}
<h2>Metrics</h2>
<table id="metrics"><thead><tr>{% for h in r.table_header %}<th>{{ h }}</th>{% endfor %}</tr>
</thead><tbody>
{% for row in r.table_rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% endif %}
{% if r.plots %}
<h2>Plots</h2><div class="plots">
{% for caption, png in r.plots %}<img src="{{ uri(png) }}" alt="{{ caption }}">
<div class="caption">{{ caption }}</div>
{% endfor %}</div>
{% endif %}
{% if r.best %}
<h2>Recall@1 per test class</h2>
<p class="note">The 10 best and 10 worst test classes of each variant (ties: smaller class id
first); n is the number of queries of the class.</p>
<div class="classes">
{% for v in r.variants if v in r.best %}
{% for which, rows in (("best", r.best[v]), ("worst", r.worst[v])) %}
<table class="per-class" data-variant="{{ v }}" data-which="{{ which }}">
<thead><tr><th colspan="3">{{ v }}: {{ which }}</th></tr>
<tr><th>class</th><th>R@1 (%)</th><th>n</th></tr></thead><tbody>
{% for c in rows %}<tr><td>{{ c.name }}</td><td>{{ "%.1f"|format(100 * c.recall) }}</td>
<td>{{ c.count }}</td></tr>
{% endfor %}</tbody></table>
{% endfor %}{% endfor %}
</div>
{% endif %}
{% if r.gallery %}
<h2>Retrieval gallery</h2>
<p class="note">{{ r.gallery_note }} Each query (grey frame) with its {{ r.k }} nearest test
items per variant, nearest first: <span style="color:#1a9b3c">green</span> = same class,
<span style="color:#d22">red</span> = another class.</p>
<table class="gallery" id="gallery"><thead><tr><th>query</th>
{% for v in r.variants %}<th>{{ v }}</th>{% endfor %}</tr></thead><tbody>
{% for row in r.gallery %}<tr class="gallery-row" data-query="{{ row.index }}">
<td><div class="thumb query"><img src="{{ uri(row.image) }}" alt="query {{ row.index }}">
</div><div class="lab">{{ row.label }}</div></td>
{% for v in r.variants %}<td data-variant="{{ v }}">
{% for n in row.neighbours.get(v, []) %}<div class="thumb {{ 'hit' if n.correct else 'miss' }}"
data-label="{{ n.label }}"><img src="{{ uri(n.image) }}" alt="{{ n.label }}">
<div class="lab">{{ n.label }}</div></div>{% endfor %}
</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% endif %}
{% for line in r.notes %}<p class="note">{{ line }}</p>{% endfor %}
</body></html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _ENV.from_string(_TEMPLATE)


def render_report(report: Report) -> str:
    """The page's HTML text."""
    return _PAGE.render(r=report, css=_CSS, uri=png_uri)


def write_report(path: str | os.PathLike[str], report: Report) -> Path:
    """Render ``report`` and write it atomically to ``path``."""
    return atomic_write_text(path, render_report(report))
