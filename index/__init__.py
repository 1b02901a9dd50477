"""The repository index shared by the `search` tool and the daemon.

Tree-sitter chunks, symbols and imports per file; BM25 (SQLite FTS5) over identifier-aware tokens;
dense vectors (local sentence-transformers model, sqlite-vec) when available; reciprocal rank fusion;
incremental refresh over a content-hash tree. Stored under <root>/.ghostline/index/.

    idx = RepoIndex.open(root, embeddings="auto")   # "auto" | "on" | "off"
    idx.refresh()                                   # RefreshStats
    idx.search("parse the config file", k=10)       # list[Hit]
"""

from ghostline.index.chunker import Chunk, FileAnalysis, Import, Symbol, analyze
from ghostline.index.embed import EmbeddingsUnavailable
from ghostline.index.repo import (
    SCHEMA_VERSION,
    Hit,
    ImportHit,
    IndexOpenError,
    IndexStatus,
    RefreshStats,
    RepoIndex,
    SymbolHit,
    embedding_text,
    rrf,
)

__all__ = [
    "SCHEMA_VERSION",
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
    "Symbol",
    "SymbolHit",
    "analyze",
    "embedding_text",
    "rrf",
]
