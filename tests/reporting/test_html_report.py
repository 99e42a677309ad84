import base64
import io

import numpy as np
import pytest
from PIL import Image
from report_fixtures import (
    CLASS_NAMES,
    PageParser,
    image_of,
    planted,
    reference_neighbours,
    reference_per_class,
)

from dasl.reporting import render_report, write_report
from dasl.reporting.retrieval_view import sample_queries
from dasl.reporting.run_report import RetrievalInput, build_report
from dasl.reporting.tables import comparison_columns, comparison_table, table_cells

ROWS = {
    "raw pixels": {"recall@1": 0.25, "map@r": 0.05, "interclass_cv": 0.3},
    "proxyanchor": {"recall@1": 0.4567, "map@r": 0.0853, "interclass_cv": 0.21},
}


def make_report(**kw):
    emb_a, labels = planted(0)
    emb_b, _ = planted(1)  # another model of the same queries
    variants = {
        "proxyanchor": RetrievalInput(emb_a, labels),
        "dasl_pa": RetrievalInput(emb_b, labels),
    }
    report = build_report(
        "run 'x'",
        variants,
        query_images=image_of,
        class_names=CLASS_NAMES,
        table=table_cells(ROWS, comparison_columns([1])),
        plots=[("a plot", _png(40, 30))],
        seed=3,
        **kw,
    )
    return report, {"proxyanchor": emb_a, "dasl_pa": emb_b}, labels


def _png(w, h):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def _parse(html):
    p = PageParser()
    p.feed(html)
    return p


def test_per_class_tables_against_counting():
    report, embs, labels = make_report()
    page = _parse(render_report(report))
    for variant, emb in embs.items():
        expected = reference_per_class(labels, reference_neighbours(emb, 1))
        ranked_best = sorted(expected, key=lambda c: (-expected[c][0], c))
        ranked_worst = sorted(expected, key=lambda c: (expected[c][0], c))
        for which, order in (("best", ranked_best), ("worst", ranked_worst)):
            rows = page.per_class[(variant, which)]
            assert [r[0] for r in rows] == [CLASS_NAMES[c] for c in order[:10]]
            assert [r[1] for r in rows] == [f"{100 * expected[c][0]:.1f}" for c in order[:10]]
            assert [int(r[2]) for r in rows] == [expected[c][1] for c in order[:10]]


def test_gallery_frames_follow_the_labels():
    report, embs, labels = make_report()
    page = _parse(render_report(report))
    sample = sample_queries(labels.shape[0], 12, seed=3)
    assert [r["query"] for r in page.rows] == sample.tolist()
    n_wrong = 0
    for row in page.rows:
        q = row["query"]
        assert list(row["variants"]) == ["proxyanchor", "dasl_pa"]
        for variant, thumbs in row["variants"].items():
            nn = reference_neighbours(embs[variant], 5)[q]
            assert [lab for lab, _ in thumbs] == [CLASS_NAMES[labels[j]] for j in nn]
            frames = [f for _, f in thumbs]
            assert frames == ["hit" if labels[j] == labels[q] else "miss" for j in nn]
            n_wrong += frames.count("miss")
    assert n_wrong > 0  # both frames occur


def test_page_is_self_contained_and_escaped(tmp_path):
    report, _, _ = make_report()
    html = render_report(report)
    page = _parse(html)
    # 1 plot + 12 queries + 12 x 2 x 5 neighbours, every one an inline PNG that decodes
    assert len(page.images) == 1 + 12 + 12 * 2 * 5
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            im.load()
            assert im.size[0] > 0 and im.size[1] > 0
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "c1&lt;&amp;&gt;" in html and "c1<&>" not in html
    # the table shows the cells of comparison.md, unchanged
    md = comparison_table(ROWS, [1]).splitlines()[2:]
    assert ["| " + " | ".join(r) + " |" for r in page.metrics] == md
    out = write_report(tmp_path / "report.html", report)
    assert out.read_text(encoding="utf-8") == html
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_variants_must_share_their_queries():
    emb, labels = planted(0)
    with pytest.raises(ValueError, match="other queries"):
        build_report(
            "x",
            {"a": RetrievalInput(emb, labels), "b": RetrievalInput(emb, labels[::-1].copy())},
            query_images=image_of,
        )


def test_separate_gallery_split():
    emb, labels = planted(0)
    q, g = emb[::2], emb[1::2]
    ql, gl = labels[::2], labels[1::2]
    report = build_report(
        "x",
        {"m": RetrievalInput(q, ql, g, gl)},
        query_images=image_of,
        gallery_images=lambda i: image_of(100 + i),
        class_names=CLASS_NAMES,
    )
    x = q.astype(np.float64) / np.linalg.norm(q, axis=1, keepdims=True)
    y = g.astype(np.float64) / np.linalg.norm(g, axis=1, keepdims=True)
    for row in report.gallery:
        order = sorted(range(len(y)), key=lambda j: (-float(x[row.index] @ y[j]), j))[:5]
        assert [n.correct for n in row.neighbours["m"]] == [
            bool(gl[j] == ql[row.index]) for j in order
        ]
