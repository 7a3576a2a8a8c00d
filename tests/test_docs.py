"""Documentation that runs: every ```python block of README.md and docs/*.md executes.

Each block runs on its own, in a fresh namespace and a temporary working directory, so a
block must define (or load from the bundled samples) everything it uses.  A block that is
not meant to run (output shown, a display, a GPU or huge data needed) says so on its first
line with ``# doctest: skip (reason)``; the reason is required.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_SKIP = re.compile(r"^#\s*doctest:\s*skip\b\s*(.*)$")


def python_blocks(path: Path) -> list[tuple[int, int, str]]:
    """The ```python blocks of a Markdown file: (index, first line number, code)."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for index, match in enumerate(_FENCE.finditer(text)):
        line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((index, line, match.group(1)))
    return blocks


def _cases():
    for path in DOC_FILES:
        rel = path.relative_to(ROOT).as_posix()
        for index, line, code in python_blocks(path):
            yield pytest.param(rel, line, code, id=f"{rel}[{index}]")


CASES = list(_cases())


def test_blocks_are_found():
    assert len(CASES) >= 5, "the collector found too few ```python blocks"


@pytest.mark.parametrize(("rel", "line", "code"), CASES)
def test_doc_block_runs(rel, line, code, tmp_path, monkeypatch):
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    skip = _SKIP.match(first.strip())
    if skip:
        reason = skip.group(1).strip(" ()")
        assert reason, f"{rel}:{line}: '# doctest: skip' needs a reason in parentheses"
        pytest.skip(f"{rel}:{line}: {reason}")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_block__"}
    compiled = compile(code, f"{rel}:{line}", "exec")
    exec(compiled, namespace)  # noqa: S102 - the documentation's own examples


def test_collector_and_skip_marker(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("text\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n"
                   "```python\n# doctest: skip (needs a display)\nimport napari\n```\n")
    blocks = python_blocks(doc)
    assert [(i, line) for i, line, _ in blocks] == [(0, 4), (1, 12)]
    assert blocks[0][2] == "x = 1\n"
    assert _SKIP.match(blocks[1][2].splitlines()[0]).group(1) == "(needs a display)"
