"""Every code block of README.md and docs/*.md runs as written (issue #16, item 1).

Each page's ``python`` blocks run in order in one namespace (as a reader pastes them
into one session), in a scratch folder. A block that cannot run here says so in the
page, in a comment right above it::

    <!-- snippet: skip (needs a Dask scheduler and a shared folder) -->

and is skipped by that reason, by name. Shell blocks are not executed; every ``msma``
command in them must parse with the CLI's own parser, and ``make`` targets must exist.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = re.compile(r"<!--\s*snippet:\s*skip\s*\((.+?)\)\s*-->")


def blocks(page: Path):
    """``(language, first line number, code, skip reason or None)`` of each fenced block."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m and m.group(1):
            start, body = i + 1, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            above = "\n".join(lines[max(0, start - 4) : start - 1])
            skip = _SKIP.search(above)
            out.append((m.group(1), start + 1, "\n".join(body), skip.group(1) if skip else None))
        i += 1
    return out


PYTHON_PAGES = [p for p in PAGES if any(b[0] == "python" for b in blocks(p))]


@pytest.fixture
def registries_restored():
    """A page may register a method (docs/concepts.md shows how): the registries are put
    back as they were after the page, so later tests see the package's own."""
    from msma_sklearn import _registry
    from msma_sklearn.alignment import ABLATION_CONFIGS, BASELINES

    tables = [BASELINES, ABLATION_CONFIGS, _registry.SEGMENTATION_METHODS, _registry.OPERATORS]
    saved = [dict(t) for t in tables]
    yield
    for table, copy in zip(tables, saved, strict=True):
        table.clear()
        table.update(copy)


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.name)
def test_python_blocks_run_as_written(page, tmp_path, monkeypatch, registries_restored):
    from joblib.externals.loky import get_reusable_executor

    monkeypatch.chdir(tmp_path)
    # joblib's reused worker processes keep the directory they started in: restart them
    # here, or a relative path in a snippet (README's Memory("msma-cache")) lands in the
    # repository instead of tmp_path
    get_reusable_executor().shutdown(wait=True)
    namespace: dict = {"__name__": "__snippets__"}
    skipped = []
    for lang, line, code, skip in blocks(page):
        if lang != "python":
            continue
        if skip:
            skipped.append(f"line {line}: {skip}")
            continue
        exec(compile(code, f"{page.name}:{line}", "exec"), namespace)  # noqa: S102
    ran = [b for b in blocks(page) if b[0] == "python" and not b[3]]
    assert ran or skipped
    if skipped and not ran:
        pytest.skip("; ".join(skipped))


def test_every_skip_says_why_and_every_python_page_runs_something():
    for page in PAGES:
        text = page.read_text()
        for marker in re.findall(r"<!--\s*snippet:[^>]*-->", text):
            assert _SKIP.search(marker), f"{page.name}: malformed marker {marker}"
        py = [b for b in blocks(page) if b[0] == "python"]
        assert all(b[3] is None or b[3].strip() for b in py)


def _commands(code: str):
    joined = code.replace("\\\n", " ")
    for raw in joined.splitlines():
        text = raw.split("#", 1)[0].strip().rstrip("&").strip()
        if text:
            yield shlex.split(text)


def test_shell_blocks_name_real_commands():
    from msma_sklearn.cli._main import _parser

    makefile = (ROOT / "Makefile").read_text()
    seen = 0
    for page in PAGES:
        for lang, line, code, _ in blocks(page):
            if lang not in ("bash", "sh", "console"):
                continue
            for argv in _commands(code):
                where = f"{page.name}:{line}: {' '.join(argv)}"
                if argv[0] == "msma":
                    _parser().parse_args(argv[1:])  # argparse exits (SystemExit) on a bad one
                    seen += 1
                elif argv[0] == "make":
                    for target in argv[1:]:
                        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), where
                    seen += 1
    assert seen >= 6
