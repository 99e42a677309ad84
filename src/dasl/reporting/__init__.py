"""``report.html``: one self-contained page per run folder (#16).

:mod:`~dasl.reporting.retrieval_view` computes what the page shows from plain arrays (per-class
Recall@1, the gallery's neighbours), :mod:`~dasl.reporting.thumbnails` turns dataset images into
small PNGs, :mod:`~dasl.reporting.html_report` renders and writes the page from plain data, and
:mod:`~dasl.reporting.run_report` gathers a run folder's results into it;
:mod:`~dasl.reporting.tables` writes the Markdown tables of a run folder (the page shows the
same cells).
"""

from dasl.reporting.html_report import (
    ClassRecall,
    GalleryRow,
    Neighbour,
    Report,
    render_report,
    write_report,
)

__all__ = [
    "ClassRecall",
    "GalleryRow",
    "Neighbour",
    "Report",
    "render_report",
    "write_report",
]
