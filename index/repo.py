"""RepoIndex: the on-disk index of one repository, the one object its users hold.

It composes the store (`store.py`: SQLite with FTS5 for BM25 and sqlite-vec for vectors), the refresh
(`refresh.py`), the queries (`query.py`) and the watcher (`watch.py`)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ghostline.index.lazy_embedder import EmbeddingsMode, LazyEmbedder
from ghostline.index.query import SEARCH_MODES, Hit, ImportHit, IndexQuery, SearchMode, SymbolHit
from ghostline.index.refresh import Progress, Refresher, RefreshStats
from ghostline.index.store import SCHEMA_VERSION, IndexOpenError, IndexStore
from ghostline.index.watch import watch


@dataclass
class IndexStatus:
    root: str
    db_path: str
    schema_version: int
    files: int
    chunks: int
    symbols: int
    imports: int
    embedded_chunks: int
    pending_embeddings: int
    embeddings: str  # "on (model)", "off", "unavailable: reason", "auto (not loaded yet)"
    root_hash: str
    size_bytes: int
    last_refresh: float | None
    languages: dict[str, int] = field(default_factory=dict)


def default_index_dir(root: Path) -> Path:
    """<root>/.ghostline/index, or the user cache dir when the repository is not writable."""
    local = root / ".ghostline" / "index"
    try:
        local.mkdir(parents=True, exist_ok=True)
        probe = local / ".write-probe"
        probe.write_text("")
        probe.unlink()
        gi = local / ".gitignore"
        if not gi.exists():
            gi.write_text("*\n")
        return local
    except OSError:
        import platformdirs

        digest = hashlib.sha1(str(root).encode()).hexdigest()[:16]
        cache = Path(platformdirs.user_cache_dir("ghostline")) / "index" / digest
        cache.mkdir(parents=True, exist_ok=True)
        return cache


class RepoIndex:
    """One repository's index. Thread-safe; two processes may open the same index."""

    def __init__(self, root: Path, store: IndexStore, embeddings: EmbeddingsMode) -> None:
        self.root = root
        self._store = store
        self._embeddings = LazyEmbedder(embeddings, store, str(root))
        self._refresher = Refresher(root, store, self._embeddings)
        self._query = IndexQuery(root, store, self._embeddings)

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, embeddings: EmbeddingsMode = "auto",
             index_dir: str | os.PathLike[str] | None = None) -> RepoIndex:
        """Open (creating or rebuilding on a format change) the index of `root`.

        embeddings: "auto" loads the model when first needed and falls back to lexical-only if it cannot;
        "on" requires it (EmbeddingsUnavailable otherwise); "off" never loads it.
        """
        root_path = Path(root).expanduser().resolve()
        if not root_path.is_dir():
            raise IndexOpenError(f"not a directory: {root_path}")
        if embeddings not in ("auto", "on", "off"):
            raise ValueError(f"embeddings must be auto, on or off, not {embeddings!r}")
        directory = Path(index_dir) if index_dir is not None else default_index_dir(root_path)
        directory.mkdir(parents=True, exist_ok=True)
        index = cls(root_path, IndexStore.open(directory / "index.db", root_path), embeddings)
        if embeddings == "on":
            index._embeddings.get(required=True)
        return index

    @property
    def db_path(self) -> Path:
        return self._store.db_path

    @property
    def notice(self) -> str | None:
        """One line to show the user once when dense search is unavailable (None otherwise)."""
        return self._embeddings.notice

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> RepoIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- refresh -----------------------------------------------------------------------------
    def invalidate(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Mark files as changed (e.g. after the agent edited them): the next search or refresh re-reads
        them. Cheap; safe to call from an event loop."""
        self._refresher.invalidate(paths)

    def refresh(self, paths: Iterable[str | os.PathLike[str]] | None = None, *, embed: bool = True,
                embed_budget_s: float | None = None, progress: Progress | None = None) -> RefreshStats:
        """Bring the index up to date: the whole tree (paths=None) or only the given files.

        Unchanged files (same size and mtime, or same content hash) are not re-read or re-chunked.
        With embeddings enabled, new chunks are embedded (identical old chunks keep their vectors);
        embed_budget_s bounds that time and leaves the rest pending for a later refresh.
        progress(phase, done, total) is called during long phases ("index", "embed").
        """
        return self._refresher.refresh(paths, embed=embed, embed_budget_s=embed_budget_s, progress=progress)

    def watch(self, stop_event: threading.Event | None = None,
              on_refresh: Callable[[RefreshStats], None] | None = None, *, embed: bool = True,
              debounce_ms: int = 200) -> None:
        """Blocking: follow file changes under the root (watchfiles) and refresh the changed files.
        Returns when stop_event is set. For the daemon; run it in a thread."""
        watch(self.root, lambda paths: self.refresh(paths, embed=embed), stop_event, on_refresh, debounce_ms)

    # -- queries -----------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, mode: SearchMode = "hybrid") -> list[Hit]:
        """Ranked chunks for a query. "hybrid" fuses BM25 and dense ranks (reciprocal rank fusion);
        without embeddings every mode answers lexically."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"mode must be hybrid, lexical or dense, not {mode!r}")
        self._refresher.flush_dirty()
        return self._query.search(query, k, mode)

    def find_symbol(self, name: str, limit: int = 50) -> list[SymbolHit]:
        """Where is `name` defined: exact name or qualified name (`Class.method`), case-insensitive fallback."""
        self._refresher.flush_dirty()
        return self._query.find_symbol(name, limit)

    def importers(self, module: str, limit: int = 200) -> list[ImportHit]:
        """Who imports `module` (or a submodule of it): one hit per import statement."""
        self._refresher.flush_dirty()
        return self._query.importers(module, limit)

    def context_snippets(self, path: str | os.PathLike[str], text: str, cursor_line: int, k: int = 5,
                         budget_ms: float = 30.0) -> list[Hit]:
        """Top-k snippets from elsewhere in the repository for the code around cursor_line (1-based) of an
        open buffer (its text as in the editor, which may differ from disk). Definitions of identifiers
        near the cursor come first, then BM25 (and dense, if the model is already loaded) neighbours.
        Returns what it has when budget_ms runs out; never loads the embedding model."""
        return self._query.context_snippets(path, text, cursor_line, k, budget_ms)

    # -- status ------------------------------------------------------------------------------
    def status(self) -> IndexStatus:
        store = self._store
        with store.lock:
            counts = store.counts()
            last = store.meta("last_refresh")
            root_hash = store.meta("root_hash") or ""
        chunks, embedded = counts["chunks"], counts["embedded"]
        return IndexStatus(
            root=str(self.root), db_path=str(store.db_path), schema_version=SCHEMA_VERSION,
            files=counts["files"], chunks=chunks, symbols=counts["symbols"], imports=counts["imports"],
            embedded_chunks=embedded,
            pending_embeddings=chunks - embedded if self._embeddings.enabled else 0,
            embeddings=self._embeddings.describe(), root_hash=root_hash, size_bytes=store.size_bytes(),
            last_refresh=float(last) if last else None, languages=counts["languages"],
        )
