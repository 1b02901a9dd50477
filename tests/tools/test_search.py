"""The `search` tool, lexical-only (GHOSTLINE_EMBEDDINGS=off) except for the unavailable-model notice."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostline.index import embed as embed_mod
from ghostline.tools import search as search_mod
from ghostline.tools.base import ToolContext
from ghostline.tools.search import SearchTool
from tests.tools.conftest import call


@pytest.fixture(autouse=True)
def lexical_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTLINE_EMBEDDINGS", "off")


def _populate(ws: Path) -> None:
    (ws / "net").mkdir()
    (ws / "net" / "retry.py").write_text(
        "import time\n\n\ndef retry_with_backoff(fn, attempts=3):\n"
        "    for attempt in range(attempts):\n        try:\n            return fn()\n"
        "        except OSError:\n            time.sleep(2 ** attempt)\n    raise RuntimeError('gave up')\n"
    )
    (ws / "README.md").write_text("# demo\n\nA tiny project.\n")


def test_schema_and_flags() -> None:
    tool = SearchTool()
    assert tool.name == "search" and tool.kind == "read"
    assert tool.input_schema["required"] == ["query"]
    assert set(tool.input_schema["properties"]) == {"query", "max_results"}


async def test_returns_ranked_snippets_with_paths_and_lines(ws: Path, ctx: ToolContext) -> None:
    _populate(ws)
    res = await call(SearchTool(), ctx, query="retry with backoff", max_results=2)
    assert not res.is_error, res.content
    first = res.content.splitlines()[0]
    assert first == "1. net/retry.py:1-10 (retry_with_backoff)"
    assert "4\tdef retry_with_backoff(fn, attempts=3):" in res.content
    assert res.meta["count"] >= 1
    assert res.meta["results"][0]["path"] == "net/retry.py"
    assert (ws / ".ghostline" / "index" / "index.db").exists()


async def test_follows_edits_between_calls(ws: Path, ctx: ToolContext) -> None:
    _populate(ws)
    tool = SearchTool()
    assert "net/retry.py" in (await call(tool, ctx, query="retry_with_backoff")).content
    (ws / "net" / "retry.py").write_text("def circuit_breaker():\n    return None\n")
    res = await call(tool, ctx, query="retry_with_backoff")
    assert "retry_with_backoff" not in res.content
    assert "circuit_breaker" in (await call(tool, ctx, query="circuit breaker")).content


async def test_no_results_and_bad_arguments(ws: Path, ctx: ToolContext) -> None:
    _populate(ws)
    res = await call(SearchTool(), ctx, query="xyzzyplugh")
    assert not res.is_error and "No results" in res.content and res.meta["count"] == 0
    res = await call(SearchTool(), ctx, query="   ")
    assert res.is_error and "query" in res.content


async def test_paths_are_relative_to_cwd(ws: Path) -> None:
    _populate(ws)
    ctx = ToolContext(workspace=ws, cwd=ws / "net")
    res = await call(SearchTool(), ctx, query="retry_with_backoff", max_results=1)
    assert res.content.startswith("1. retry.py:1-10")


async def test_without_a_model_it_says_so_once(ws: Path, ctx: ToolContext, monkeypatch) -> None:
    _populate(ws)
    monkeypatch.setenv("GHOSTLINE_EMBEDDINGS", "auto")
    monkeypatch.setenv("GHOSTLINE_EMBED_MODEL", str(ws / "missing-model"))
    monkeypatch.setattr(embed_mod, "_loaded", None)
    monkeypatch.setattr(embed_mod, "_failure", None)
    monkeypatch.setattr(search_mod, "_indexes", {})
    tool = SearchTool()
    first = await call(tool, ctx, query="retry with backoff")
    second = await call(tool, ctx, query="retry with backoff")
    assert first.content.startswith("note: semantic search unavailable")
    assert "net/retry.py" in first.content
    assert "note:" not in second.content and second.content.startswith("1. net/retry.py")


def test_embeddings_mode_from_env(monkeypatch) -> None:
    for value, want in (("off", "off"), ("0", "off"), ("on", "on"), ("auto", "auto"), ("", "auto")):
        monkeypatch.setenv("GHOSTLINE_EMBEDDINGS", value)
        assert search_mod.embeddings_mode() == want


async def test_notify_file_changed_forces_a_reread(ws: Path, ctx: ToolContext) -> None:
    import os

    _populate(ws)
    tool = SearchTool()
    await call(tool, ctx, query="retry")
    p = ws / "net" / "retry.py"
    st = p.stat()
    text = p.read_text()
    p.write_text(text.replace("retry_with_backoff", "retry_with_jitterr"))  # same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # and same mtime: invisible to a stat scan
    assert "retry_with_backoff" in (await call(tool, ctx, query="retry_with_backoff")).content
    search_mod.notify_file_changed(p)
    res = await call(tool, ctx, query="retry_with_jitterr")
    assert "def retry_with_jitterr" in res.content
