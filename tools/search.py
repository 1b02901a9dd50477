"""The `search` tool: ranked code snippets from the repository index (BM25 + embeddings, fused)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from ghostline.tools.base import BaseTool, ToolContext, ToolError, ToolKind, ToolResult

DEFAULT_RESULTS = 8
MAX_RESULTS = 30
MAX_SNIPPET_LINES = 40
# Embedding new chunks is bounded per call; the rest is embedded by later calls (or `agent index build`).
EMBED_BUDGET_S = 20.0

_indexes: dict[tuple[str, str], Any] = {}
_indexes_lock = threading.Lock()


def embeddings_mode() -> str:
    """"auto" unless GHOSTLINE_EMBEDDINGS says off/on."""
    value = os.environ.get("GHOSTLINE_EMBEDDINGS", "auto").strip().lower()
    if value in ("0", "off", "false", "no", "none"):
        return "off"
    if value in ("1", "on", "true", "yes"):
        return "on"
    return "auto"


def _open_index(root: Path, mode: str) -> Any:
    from ghostline.index import RepoIndex

    key = (str(root), mode)
    with _indexes_lock:
        idx = _indexes.get(key)
        if idx is None:
            idx = RepoIndex.open(root, embeddings="auto" if mode == "on" else mode)  # type: ignore[arg-type]
            _indexes[key] = idx
        return idx


def notify_file_changed(path: str | os.PathLike[str]) -> None:
    """Tell every open index holding `path` that it changed (for ToolContext.on_file_changed): the next
    search re-reads it even when its size and mtime look unchanged."""
    full = os.path.realpath(path)
    with _indexes_lock:
        opened = list(_indexes.items())
    for (root, _mode), idx in opened:
        if full == root or full.startswith(root.rstrip(os.sep) + os.sep):
            idx.invalidate([full])


class SearchTool(BaseTool):
    name = "search"
    kind: ToolKind = "read"
    subject_key = "query"
    description = (
        "Search the repository's code by meaning or by identifier: a natural-language question "
        "(\"where are retries with backoff handled\") or names (`parse_config`, `HttpClient.send`). "
        "Returns the best-matching code snippets, ranked, each with its path, line range and the "
        "function/class it belongs to. Hybrid lexical (BM25 over identifiers) + semantic (embeddings) "
        "ranking over an index that follows your edits. Use grep for exact regex matches, this for "
        "finding where something is implemented."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for: a question, a description or identifiers."},
            "max_results": {
                "type": "integer",
                "description": f"How many snippets to return (default {DEFAULT_RESULTS}, at most {MAX_RESULTS}).",
                "minimum": 1,
                "maximum": MAX_RESULTS,
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        self._noticed: set[str] = set()

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        query = str(args.get("query", "")).strip()
        if not query:
            raise ToolError("query must not be empty")
        k = args.get("max_results", DEFAULT_RESULTS)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ToolError("max_results must be a positive integer")
        k = min(k, MAX_RESULTS)
        root = Path(ctx.workspace)
        mode = embeddings_mode()
        try:
            hits, stats, notice = await asyncio.to_thread(self._search, root, mode, query, k)
        except ToolError:
            raise
        except Exception as exc:  # noqa: BLE001 - an index problem is reported, never a crash
            raise ToolError(f"search index unavailable: {exc}".splitlines()[0]) from exc
        lines: list[str] = []
        if notice and str(root) not in self._noticed:
            self._noticed.add(str(root))
            lines.append(f"note: {notice}")
        if stats.pending_embeddings:
            lines.append(f"note: {stats.pending_embeddings} chunks are not embedded yet; semantic ranking is "
                         "partial (later searches continue embedding)")
        if not hits:
            lines.append(f"No results for {query!r}.")
            return ToolResult("\n".join(lines), meta={"count": 0, "results": []})
        results = []
        for n, h in enumerate(hits, 1):
            where = _display(ctx, root, h.path)
            label = f" ({h.symbol})" if h.symbol else ""
            lines.append(f"{n}. {where}:{h.start_line}-{h.end_line}{label}")
            snippet = h.text.splitlines()
            shown = snippet[:MAX_SNIPPET_LINES]
            width = len(str(h.start_line + len(shown)))
            for i, text in enumerate(shown):
                lines.append(f"{h.start_line + i:>{width}}\t{text}")
            if len(snippet) > len(shown):
                lines.append(f"{'':>{width}}\t... ({len(snippet) - len(shown)} more lines)")
            lines.append("")
            results.append({"path": h.path, "start_line": h.start_line, "end_line": h.end_line,
                            "symbol": h.symbol, "score": h.score})
        return ToolResult("\n".join(lines).rstrip() + "\n", meta={"count": len(hits), "results": results})

    @staticmethod
    def _search(root: Path, mode: str, query: str, k: int) -> tuple[Any, Any, str | None]:
        idx = _open_index(root, mode)
        stats = idx.refresh(embed_budget_s=EMBED_BUDGET_S)
        hits = idx.search(query, k=k, mode="hybrid")
        return hits, stats, idx.notice


def _display(ctx: ToolContext, root: Path, rel: str) -> str:
    """The path as the model should use it: relative to the working directory when inside it."""
    full = root / rel
    try:
        return os.path.relpath(full, ctx.cwd) if ctx.cwd != root else rel
    except ValueError:
        return str(full)
