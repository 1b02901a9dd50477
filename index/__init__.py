"""The repository index shared by the `search` tool and the daemon.

Tree-sitter chunks, symbols and imports per file; BM25 (SQLite FTS5) over identifier-aware tokens;
dense vectors (local sentence-transformers model, sqlite-vec) when available; reciprocal rank fusion;
incremental refresh over a content-hash tree. Stored under <root>/.ghostline/index/.

    idx = RepoIndex.open(root, embeddings="auto")   # "auto" | "on" | "off"
    idx.refresh()                                   # RefreshStats
    idx.search("parse the config file", k=10)       # list[Hit]

The names below are imported on first use: the repository walker (`ghostline.index.walker`, used by the
tools and the daemon's classical completions) must not pull numpy and the SQLite layer in with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ghostline.index.chunker import Chunk, FileAnalysis, Import, Symbol, analyze
    from ghostline.index.embed import EmbeddingsUnavailable
    from ghostline.index.query import Hit, ImportHit, SymbolHit, rrf
    from ghostline.index.refresh import RefreshStats
    from ghostline.index.repo import IndexStatus, RepoIndex
    from ghostline.index.store import SCHEMA_VERSION, IndexOpenError, embedding_text

_HOME = {
    "Chunk": "chunker", "FileAnalysis": "chunker", "Import": "chunker", "Symbol": "chunker", "analyze": "chunker",
    "EmbeddingsUnavailable": "embed",
    "Hit": "query", "ImportHit": "query", "SymbolHit": "query", "rrf": "query",
    "RefreshStats": "refresh",
    "IndexStatus": "repo", "RepoIndex": "repo",
    "SCHEMA_VERSION": "store", "IndexOpenError": "store", "embedding_text": "store",
}

__all__ = [
    "Chunk",
    "EmbeddingsUnavailable",
    "FileAnalysis",
    "Hit",
    "Import",
    "ImportHit",
    "IndexOpenError",
    "IndexStatus",
    "RefreshStats",
    "RepoIndex",
    "SCHEMA_VERSION",
    "Symbol",
    "SymbolHit",
    "analyze",
    "embedding_text",
    "rrf",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
