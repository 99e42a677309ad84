"""Every Python block of the README and of docs/*.md runs (as open-metric-learning runs its
README): a block that stops working fails here. A block may be skipped only with a reason,
written just above it as ``<!-- docs-test: skip: REASON -->``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)
SKIP = re.compile(r"<!-- docs-test: skip: (?P<reason>.+?) -->")


def _blocks() -> list:
    params = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start("code"))
            skip = SKIP.search(match.group("before"))
            marks = [pytest.mark.skip(reason=skip.group("reason"))] if skip else []
            params.append(
                pytest.param(match.group("code"), id=f"{doc.relative_to(ROOT)}:{line}", marks=marks)
            )
    return params


BLOCKS = _blocks()


def test_docs_have_python_blocks() -> None:
    assert any(p.id.startswith("README.md") for p in BLOCKS)


@pytest.mark.parametrize("code", BLOCKS)
def test_python_block_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    exec(compile(code, "<docs block>", "exec"), {"__name__": "__docs__"})
