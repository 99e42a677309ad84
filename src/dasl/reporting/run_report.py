"""Gather a run's results into a :class:`~dasl.reporting.html_report.Report` and write
``report.html`` (``dasl train``, ``dasl eval``, ``dasl pretrain``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dasl.errors import DataError
from dasl.reporting.html_report import ClassRecall, GalleryRow, Neighbour, Report, write_report
from dasl.reporting.retrieval_view import (
    best_and_worst,
    neighbours,
    per_class_recall_at_1,
    sample_queries,
)
from dasl.reporting.tables import comparison_columns, table_cells
from dasl.reporting.thumbnails import thumbnail_png

REPORT_FILE = "report.html"
GALLERY_QUERIES = 12
GALLERY_K = 5
PER_CLASS_SHOWN = 10

PLOT_CAPTIONS: tuple[tuple[str, str], ...] = (
    ("training_curves.png", "Training curves per epoch"),
    ("knn_curves.png", "Validation k-NN and loss terms per epoch"),
    ("cluster_purity.png", "NMI of the pseudo-labels per clustering"),
    ("embedding_map.png", "2-D map of test embeddings (the largest test classes)"),
    ("interclass_distances.png", "Distances between test items of different classes"),
)


@dataclass
class RetrievalInput:
    """A variant's test embeddings: queries, and the gallery when it is a separate split."""

    embeddings: np.ndarray
    labels: np.ndarray
    ref: np.ndarray | None = None
    ref_labels: np.ndarray | None = None


ImageSource = Callable[[int], Any]


def image_source(dataset: Any) -> ImageSource:
    """Item ``i``'s untransformed image (tensor or PIL) of a dasl dataset."""
    plain = dataset.with_transform(None) if hasattr(dataset, "with_transform") else dataset
    return lambda i: plain[int(i)][0]


def _name(class_names: Sequence[str] | None, c: int) -> str:
    if class_names is not None and 0 <= int(c) < len(class_names):
        return str(class_names[int(c)])
    return str(int(c))


def build_report(
    title: str,
    variants: Mapping[str, RetrievalInput],
    *,
    query_images: ImageSource | None,
    gallery_images: ImageSource | None = None,
    class_names: Sequence[str] | None = None,
    table: tuple[list[str], list[list[str]]] | None = None,
    plots: Sequence[tuple[str, bytes]] = (),
    summary: Sequence[str] = (),
    distance: str = "cosine",
    k: int = GALLERY_K,
    n_queries: int = GALLERY_QUERIES,
    seed: int = 0,
) -> Report:
    """Per variant: Recall@1 of every test class (its best and worst ``PER_CLASS_SHOWN``) and
    the top-``k`` neighbours of ``n_queries`` seeded queries, shown side by side.

    ``query_images`` / ``gallery_images``: item index -> image of the query / gallery split
    (``gallery_images`` only with a separate gallery); ``None``: no gallery section.
    """
    names = list(variants)
    report = Report(title=title, summary=list(summary), variants=names, plots=list(plots), k=k)
    if table is not None:
        report.table_header, report.table_rows = table
    if not variants:
        return report
    first = next(iter(variants.values()))
    for name, v in variants.items():
        if not np.array_equal(v.labels, first.labels):
            raise DataError(f"variant {name!r} was evaluated on other queries than {names[0]!r}")
    sample = sample_queries(first.labels.shape[0], n_queries, seed)
    tops: dict[str, np.ndarray] = {}
    for name, v in variants.items():
        nn = neighbours(v.embeddings, k, distance, v.ref)
        ref_labels = v.labels if v.ref is None else v.ref_labels
        assert ref_labels is not None
        classes, recall, counts = per_class_recall_at_1(v.labels, ref_labels[nn[:, 0]])
        best, worst = best_and_worst(classes, recall, PER_CLASS_SHOWN)
        report.best[name] = [
            ClassRecall(_name(class_names, classes[i]), float(recall[i]), int(counts[i]))
            for i in best
        ]
        report.worst[name] = [
            ClassRecall(_name(class_names, classes[i]), float(recall[i]), int(counts[i]))
            for i in worst
        ]
        tops[name] = nn[sample]
    if query_images is None:
        return report
    thumbs: dict[tuple[str, int], bytes] = {}

    def thumb(split: str, i: int) -> bytes:
        key = (split, int(i))
        if key not in thumbs:
            source = query_images if split == "query" else gallery_images
            assert source is not None
            thumbs[key] = thumbnail_png(source(i))
        return thumbs[key]

    for row, q in enumerate(sample):
        y = int(first.labels[q])
        per_variant = {}
        for name, v in variants.items():
            split = "query" if v.ref is None else "gallery"
            ref_labels = v.labels if v.ref is None else v.ref_labels
            assert ref_labels is not None
            per_variant[name] = [
                Neighbour(thumb(split, j), _name(class_names, ref_labels[j]), ref_labels[j] == y)
                for j in tops[name][row]
            ]
        report.gallery.append(
            GalleryRow(int(q), thumb("query", q), _name(class_names, y), per_variant)
        )
    report.gallery_note = (
        f"{len(sample)} test queries drawn with seed {seed} (the same for every variant)."
    )
    return report


def plot_files(run_dir: Path) -> list[tuple[str, bytes]]:
    """``(caption, PNG bytes)`` of the run folder's plots that exist, in a fixed order."""
    return [
        (caption, (run_dir / f).read_bytes())
        for f, caption in PLOT_CAPTIONS
        if (run_dir / f).is_file()
    ]


def write_results_report(
    run_dir: Path,
    title: str,
    variants: Mapping[str, RetrievalInput],
    *,
    query_dataset: Any | None,
    gallery_dataset: Any | None = None,
    table: tuple[list[str], list[list[str]]] | None = None,
    summary: Sequence[str] = (),
    distance: str = "cosine",
    seed: int = 0,
) -> Path:
    """``run_dir/report.html`` of a run's test results: the table, the run folder's plots,
    per-class Recall@1 and the gallery, thumbnails from the datasets' own images."""
    names = getattr(query_dataset, "class_names", None)
    report = build_report(
        title,
        variants,
        query_images=image_source(query_dataset) if query_dataset is not None else None,
        gallery_images=image_source(gallery_dataset) if gallery_dataset is not None else None,
        class_names=list(names) if names else None,
        table=table,
        plots=plot_files(run_dir),
        summary=summary,
        distance=distance,
        seed=seed,
    )
    return write_report(run_dir / REPORT_FILE, report)


EVAL_REPORT_FILE = "eval_report.html"


def eval_report_dir(checkpoint: str | Path) -> Path:
    """The run folder of a checkpoint: the folder itself, the folder holding ``checkpoints/``,
    else the checkpoint's own folder."""
    ckpt = Path(checkpoint)
    if ckpt.is_dir():
        return ckpt
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def write_eval_report(
    checkpoint: str | Path,
    cfg: Any,
    metrics: Mapping[str, float],
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    query_dataset: Any,
    gallery: Sequence[Any] = (),
) -> Path:
    """``eval_report.html`` in the checkpoint's run folder (beside ``dasl train``'s
    ``report.html``, which it leaves alone): the metrics of this evaluation, the folder's
    plots, per-class Recall@1 and the gallery of this one model."""
    emb, labels, ref, ref_labels = arrays
    ks = [int(k.split("@")[1]) for k in metrics if k.startswith("recall@")]
    folder = eval_report_dir(checkpoint)
    names = getattr(query_dataset, "class_names", None)
    report = build_report(
        f"dasl eval: {cfg.name}",
        {cfg.name: RetrievalInput(emb, labels, ref, ref_labels)},
        query_images=image_source(query_dataset),
        gallery_images=image_source(gallery[0]) if gallery else None,
        class_names=list(names) if names else None,
        table=table_cells({cfg.name: dict(metrics)}, comparison_columns(ks)),
        plots=plot_files(folder),
        summary=[
            f"Checkpoint: {checkpoint}",
            "Split: " + "; ".join(d.describe() for d in [query_dataset, *gallery]),
        ],
        distance=cfg.eval.distance,
        seed=cfg.seed,
    )
    return write_report(folder / EVAL_REPORT_FILE, report)
