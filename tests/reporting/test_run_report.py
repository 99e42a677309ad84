"""``dasl train`` and ``dasl eval`` write their report pages (#16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from report_fixtures import PageParser
from test_report_in_chromium import CHROMIUM, probe_counts

from dasl.cli.main import main
from dasl.config import load_config
from dasl.data import load_dataset
from dasl.training.run import run_experiment


def _parse(path: Path) -> PageParser:
    p = PageParser()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _top1_reference(emb: np.ndarray) -> np.ndarray:
    """Cosine nearest other item in float64, ties by the smaller index."""
    x = emb.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.array([np.lexsort((np.arange(len(row)), -row))[0] for row in sims])


def test_train_and_eval_write_their_pages(tmp_path, capsys):
    config = {
        "name": "rep",
        "out_dir": str(tmp_path / "runs"),
        "data": {"name": "digits", "batch_size": 40, "m_per_class": 8, "batches_per_epoch": 3},
        "model": {"backbone": "small_cnn", "embedding_dim": 16},
        "trainer": {"epochs": 1, "progress_bar": False},
        "eval": {"ks": [1, 2], "plots": False},
        "compare": {"proxyanchor": {"dar.lam": 0.0}, "dasl_pa": {"dar.lam": 1.0}},
    }
    path = tmp_path / "rep.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_experiment(load_config(str(path)), log=lambda s: None)
    run = tmp_path / "runs" / "rep"
    page = _parse(run / "report.html")
    md = (run / "comparison.md").read_text().splitlines()[2:]
    assert ["| " + " | ".join(r) + " |" for r in page.metrics] == md
    assert len(page.rows) == 12
    names = load_dataset("digits", None, "test").class_names
    for res in result.variants:
        labels = res.labels
        top1 = _top1_reference(res.embeddings)
        classes = np.unique(labels)
        recall = {c: float(np.mean(labels[top1[labels == c]] == c)) for c in classes}
        worst = sorted(classes, key=lambda c: (recall[c], c))[:10]
        rows = page.per_class[(res.name, "worst")]
        assert [r[0] for r in rows] == [names[c] for c in worst]
        assert [r[1] for r in rows] == [f"{100 * recall[c]:.1f}" for c in worst]
        for row in page.rows:
            q = row["query"]
            frames = [f for _, f in row["variants"][res.name]]
            assert frames[0] == ("hit" if labels[top1[q]] == labels[q] else "miss")
    if CHROMIUM is not None:  # the real page in a real browser (skipped where absent)
        counts = probe_counts((run / "report.html").read_text(encoding="utf-8"), tmp_path)
        assert counts["images"] == counts["decoded"] == 12 * (1 + 2 * 5)  # eval.plots=false
        assert counts["gallery_rows"] == 12 and counts["metric_rows"] == len(md)
    capsys.readouterr()

    ckpt = run / "dasl_pa" / "checkpoints" / "best.ckpt"
    assert main(["eval", "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {run / 'dasl_pa' / 'eval_report.html'}" in out
    evaluated = _parse(run / "dasl_pa" / "eval_report.html")
    # the same checkpoint, the same test images: the same per-class values and gallery
    assert evaluated.per_class[("dasl_pa", "worst")] == page.per_class[("dasl_pa", "worst")]
    assert [r["variants"]["dasl_pa"] for r in evaluated.rows] == [
        r["variants"]["dasl_pa"] for r in page.rows
    ]
    assert [r[0] for r in evaluated.metrics] == ["dasl_pa"]
