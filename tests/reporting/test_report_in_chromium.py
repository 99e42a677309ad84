"""``report.html`` in a real headless Chromium (Debian's ``chromium`` package; scripts/
bootstrap.sh installs it where it can): the DOM after load has the gallery rows, decoded
images and the metrics table, and a screenshot shows the green and red frames."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_html_report import make_report

from dasl.reporting import render_report

CHROMIUM = next(
    (
        p
        for p in map(shutil.which, ("chromium", "chromium-headless-shell", "chromium-browser"))
        if p
    ),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (Debian: apt-get install chromium; scripts/bootstrap.sh tries)",
)

# Run after the load event (every data: image decoded or failed): counts written into the DOM.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const out = {
    images: imgs.length,
    decoded: imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
    gallery_rows: document.querySelectorAll("#gallery tr.gallery-row").length,
    hits: document.querySelectorAll("#gallery .thumb.hit").length,
    misses: document.querySelectorAll("#gallery .thumb.miss").length,
    metric_rows: document.querySelectorAll("#metrics tbody tr").length,
    metrics_height: document.querySelector("#metrics").getBoundingClientRect().height,
    gallery_height: document.querySelector("#gallery").getBoundingClientRect().height,
  };
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


def _chromium(*args: str, cwd) -> subprocess.CompletedProcess:
    # A hang guard only (a loaded 2-core machine starts Chromium in seconds to a minute).
    return subprocess.run(
        [CHROMIUM, *FLAGS, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def probe_counts(html: str, tmp_path) -> dict:
    """Load ``html`` (plus :data:`PROBE`) in Chromium; the counts the probe wrote."""
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    res = _chromium("--virtual-time-budget=10000", "--dump-dom", page.as_uri(), cwd=tmp_path)
    found = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout)
    assert found, f"no probe output; chromium said: {res.stderr[-2000:]}"
    page.unlink()
    return json.loads(found.group(1))


def test_dom_after_load(tmp_path):
    report, _, _ = make_report()
    counts = probe_counts(render_report(report), tmp_path)
    n_images = 1 + 12 + 12 * 2 * 5
    assert counts["images"] == counts["decoded"] == n_images
    assert counts["gallery_rows"] == 12
    assert counts["hits"] + counts["misses"] == 12 * 2 * 5 and counts["misses"] > 0
    assert counts["metric_rows"] == 2 and counts["metrics_height"] > 20
    assert counts["gallery_height"] > 12 * 72


def _near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 30) -> int:
    return int((np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tol).sum())


def test_screenshot_shows_the_page(tmp_path):
    report, _, _ = make_report()
    page = tmp_path / "report.html"
    page.write_text(render_report(report), encoding="utf-8")
    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1400,2600", page.as_uri(), cwd=tmp_path)
    assert shot.is_file(), f"no screenshot; chromium said: {res.stderr[-2000:]}"
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (2600, 1400)
    white = _near(pixels, (255, 255, 255), 5)
    assert white < 0.97 * pixels.shape[0] * pixels.shape[1]  # not a blank page
    assert _near(pixels, (0x1A, 0x9B, 0x3C)) > 500  # green frames of correct neighbours
    assert _near(pixels, (0xDD, 0x22, 0x22)) > 500  # red frames of wrong ones
    assert _near(pixels, (200, 10, 10), 10) > 40 * 30 // 2  # the (red) plot image
