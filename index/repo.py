"""RepoIndex: the on-disk index of one repository (SQLite: FTS5 for BM25, sqlite-vec for vectors)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ghostline.index import tokens as tok
from ghostline.index.chunker import FileAnalysis, analyze
from ghostline.index.embed import Embedder, EmbeddingsUnavailable, load_embedder, loaded_embedder
from ghostline.index.walker import IgnoreRules, decode_text, skip_by_name, walk

log = logging.getLogger("ghostline.index")

SCHEMA_VERSION = 4
# bumped when chunking or symbol extraction changes: the next refresh re-analyses every file (vectors of chunks
# whose text is unchanged are reused), where a schema change rebuilds from nothing
ANALYZER_VERSION = 3
EmbeddingsMode = Literal["auto", "on", "off"]
SearchMode = Literal["hybrid", "lexical", "dense"]
# Reciprocal rank fusion constant. Small values let the top ranks of each list dominate; 5 beat 60 (the
# web-search default) on both halves of the bench's tuning query set (bench/index_bench.py, seed 1).
RRF_K = 5
# Lexical: a chunk defining an identifier spelled in the query gains this many times the top BM25 score,
# unless the name has more than MAX_DEFINITIONS definitions.
DEFINITION_BOOST = 1.0
MAX_DEFINITIONS = 5
COMMON_TERM_FRACTION = 0.2
MAX_QUERY_TERMS = 12  # a long docstring query keeps its rarest terms: p95 16 -> 13 ms, same recall on the bench
# BM25 column weights: chunk body, names of the definitions it holds, its path.
BM25_WEIGHTS = (1.0, 3.0, 1.5)
_BATCH_FILES = 200
_EMBED_BATCH = 32
_notice_lock = threading.Lock()
_noticed: set[str] = set()


class IndexOpenError(RuntimeError):
    """An index that cannot be opened or used (one clear line for the user)."""


@dataclass
class Hit:
    path: str  # relative to the repository root, forward slashes
    start_line: int  # 1-based, inclusive
    end_line: int
    score: float
    text: str
    symbol: str | None = None


@dataclass
class SymbolHit:
    path: str
    name: str
    qualname: str
    kind: str
    signature: str
    line: int
    end_line: int


@dataclass
class ImportHit:
    path: str
    module: str
    line: int


@dataclass
class RefreshStats:
    scanned: int = 0  # files considered
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0  # binary, minified, undecodable
    chunks_written: int = 0
    embedded: int = 0  # chunks embedded in this refresh
    embeddings_reused: int = 0  # chunks whose vector was carried over from an identical old chunk
    pending_embeddings: int = 0  # chunks still without a vector (dense search does not see them yet)
    seconds: float = 0.0
    root_hash: str = ""

    @property
    def touched(self) -> int:
        return self.added + self.changed + self.removed


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


def _connect(db_path: Path) -> tuple[Any, bool]:
    """A connection with FTS5, and sqlite-vec loaded when possible: (connection, vec_available)."""
    import sqlite3 as std

    module: Any = std
    if not hasattr(std.Connection, "enable_load_extension"):
        try:
            import pysqlite3.dbapi2 as module  # type: ignore[no-redef]
        except ImportError:
            module = std
    conn = module.connect(str(db_path), timeout=15.0, check_same_thread=False, isolation_level=None)
    vec = False
    try:
        import sqlite_vec

        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        vec = True
    except Exception:  # noqa: BLE001 - no loadable extensions: dense search is unavailable
        vec = False
    conn.execute("PRAGMA busy_timeout=15000")
    conn.execute("PRAGMA journal_mode=WAL")
    # a build writes the whole index through the WAL: cut the file back after checkpoints instead of leaving it
    # at its high-water mark (it otherwise doubles the index's footprint on disk)
    conn.execute(f"PRAGMA journal_size_limit={16 * 2**20}")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn, vec


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY, hash TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    lang TEXT, n_chunks INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL, symbol TEXT, kind TEXT, text TEXT NOT NULL, embed_hash TEXT NOT NULL,
    embedded INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_pending ON chunks(embedded) WHERE embedded = 0;
CREATE TABLE IF NOT EXISTS symbols(
    path TEXT NOT NULL, name TEXT NOT NULL, qualname TEXT NOT NULL, kind TEXT NOT NULL,
    signature TEXT NOT NULL, line INTEGER NOT NULL, end_line INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS symbols_path ON symbols(path);
CREATE TABLE IF NOT EXISTS imports(path TEXT NOT NULL, module TEXT NOT NULL, line INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS imports_module ON imports(module);
CREATE INDEX IF NOT EXISTS imports_path ON imports(path);
CREATE TABLE IF NOT EXISTS tree(dir TEXT PRIMARY KEY, hash TEXT NOT NULL);
"""
_FTS_COLUMNS = "body, names, path, tokenize = \"unicode61 remove_diacritics 2 tokenchars '_'\""
# contentless: the FTS table keeps only its inverted index (the text is in `chunks`), a third of the index's
# size; deleting rows from it needs SQLite >= 3.43 (contentless_delete), else the table keeps its own copy
_FTS_CONTENTLESS = f"CREATE VIRTUAL TABLE chunks_fts USING fts5({_FTS_COLUMNS}, content='', contentless_delete=1)"
_FTS_WITH_CONTENT = f"CREATE VIRTUAL TABLE chunks_fts USING fts5({_FTS_COLUMNS})"


def _ensure_fts(conn: Any) -> bool:
    """Create the FTS table, contentless where SQLite can; an older index's table with its own copy of the text
    is replaced by a contentless one. True when the FTS rows must be rewritten (every file re-analysed)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='chunks_fts'").fetchone()
    if row is not None and "contentless_delete" in row[0]:
        return False
    try:
        conn.execute("SAVEPOINT fts")
        if row is not None:
            conn.execute("DROP TABLE chunks_fts")
        conn.execute(_FTS_CONTENTLESS)
        conn.execute("RELEASE fts")
        return row is not None
    except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError of whichever sqlite module is in use
        conn.execute("ROLLBACK TO fts")
        conn.execute("RELEASE fts")
        if "contentless_delete" not in str(exc):
            raise
        if row is None:
            conn.execute(_FTS_WITH_CONTENT)
        return False


def _notice_once(key: str, message: str) -> bool:
    with _notice_lock:
        if key in _noticed:
            return False
        _noticed.add(key)
    log.info("%s", message)
    return True


class RepoIndex:
    """One repository's index. Thread-safe; two processes may open the same index."""

    def __init__(self, root: Path, db_path: Path, conn: Any, vec_ok: bool, embeddings: EmbeddingsMode) -> None:
        self.root = root
        self.db_path = db_path
        self._conn = conn
        self._vec_ok = vec_ok
        self._mode: EmbeddingsMode = embeddings
        self._lock = threading.RLock()  # the connection (held briefly: queries, one write batch)
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._rules = IgnoreRules(root)
        self._dirty: set[str] = set()
        self._embedder: Embedder | None = None
        self._dense = _DenseMirror()
        self._df: dict[str, int] = {}  # document frequency per term (cleared when a refresh changes files)
        self._embed_error: str | None = None
        #: one line to show the user once when dense search is unavailable (None otherwise)
        self.notice: str | None = None
        if not vec_ok and embeddings != "off":
            self._disable_embeddings("sqlite-vec could not be loaded (this Python's sqlite3 cannot load extensions)")

    # -- opening -----------------------------------------------------------------------------
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
        db_path = directory / "index.db"
        conn, vec_ok = cls._open_db(db_path, root_path)
        index = cls(root_path, db_path, conn, vec_ok, embeddings)
        if embeddings == "on":
            index._ensure_embedder(required=True)
        return index

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """A write transaction (caller holds the lock): BEGIN IMMEDIATE ... COMMIT; on any error ROLLBACK and
        drop the in-memory vectors, which may hold writes that were rolled back."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            self._dense.invalidate()
            raise

    @staticmethod
    def _open_db(db_path: Path, root: Path) -> tuple[Any, bool]:
        for attempt in range(2):
            conn, vec_ok = _connect(db_path)
            try:
                row = conn.execute(
                    "SELECT value FROM meta WHERE key='schema_version'"
                ).fetchone() if _has_table(conn, "meta") else None
                if row is not None and int(row[0]) != SCHEMA_VERSION:
                    raise _Rebuild()
                conn.execute("BEGIN IMMEDIATE")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('root', ?)", (str(root),))
                fts_rebuilt = _ensure_fts(conn)
                row = conn.execute("SELECT value FROM meta WHERE key='analyzer_version'").fetchone()
                if fts_rebuilt:  # the old table's pages are free: compact after the re-analysis that follows
                    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('vacuum_pending', '1')")
                if fts_rebuilt or row is None or row[0] != str(ANALYZER_VERSION):
                    conn.execute("UPDATE files SET hash = '', size = -1")  # stale: re-analysed by the next refresh
                    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('analyzer_version', ?)",
                                 (str(ANALYZER_VERSION),))
                conn.execute("COMMIT")
                return conn, vec_ok
            except _Rebuild:
                conn.close()
                if attempt:
                    break
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.unlink(str(db_path) + suffix)
                    except FileNotFoundError:
                        pass
            except Exception as exc:
                conn.close()
                if attempt == 0 and ("malformed" in str(exc).lower() or "not a database" in str(exc).lower()):
                    for suffix in ("", "-wal", "-shm"):
                        try:
                            os.unlink(str(db_path) + suffix)
                        except FileNotFoundError:
                            pass
                    continue
                raise IndexOpenError(f"cannot open the index at {db_path}: {exc}") from exc
        raise IndexOpenError(f"cannot rebuild the index at {db_path}")

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> RepoIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- embeddings --------------------------------------------------------------------------
    @property
    def embeddings_enabled(self) -> bool:
        return self._mode != "off" and self._embed_error is None and self._vec_ok

    def _disable_embeddings(self, reason: str) -> None:
        self._embed_error = reason
        self.notice = f"semantic search unavailable ({reason}); using lexical search only"
        _notice_once(str(self.root) + reason, self.notice)

    def _ensure_embedder(self, required: bool = False) -> Embedder | None:
        if self._embedder is not None:
            return self._embedder
        if self._mode == "off":
            return None
        if self._embed_error is not None:
            if required:
                raise EmbeddingsUnavailable(self._embed_error)
            return None
        try:
            emb = load_embedder()
        except EmbeddingsUnavailable as exc:
            self._disable_embeddings(str(exc))
            if required:
                raise
            return None
        with self._lock:
            self._setup_vectors(emb)
            self._embedder = emb
        return emb

    def _setup_vectors(self, emb: Embedder) -> None:
        conn = self._conn
        row = conn.execute("SELECT value FROM meta WHERE key='embed_model'").fetchone()
        model_id = f"{emb.name}:{emb.dim}"
        with self._transaction():
            if row is not None and row[0] != model_id:
                conn.execute("DROP TABLE IF EXISTS chunk_vec")
                self._dense.invalidate()
                conn.execute("UPDATE chunks SET embedded = 0")
            conn.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS chunk_vec USING vec0("
                f"embedding float[{emb.dim}] distance_metric=cosine)"
            )
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('embed_model', ?)", (model_id,))
            # vectors orphaned by a lexical-only process that could not load sqlite-vec
            conn.execute("DELETE FROM chunk_vec WHERE rowid NOT IN (SELECT id FROM chunks WHERE embedded = 1)")
            self._dense.invalidate()

    # -- refresh -----------------------------------------------------------------------------
    def invalidate(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Mark files as changed (e.g. after the agent edited them): the next search or refresh re-reads
        them. Cheap; safe to call from an event loop."""
        with self._lock:
            for p in paths:
                rel = self._rel(p)
                if rel is not None:
                    self._dirty.add(rel)

    def refresh(self, paths: Iterable[str | os.PathLike[str]] | None = None, *, embed: bool = True,
                embed_budget_s: float | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> RefreshStats:
        """Bring the index up to date: the whole tree (paths=None) or only the given files.

        Unchanged files (same size and mtime, or same content hash) are not re-read or re-chunked.
        With embeddings enabled, new chunks are embedded (identical old chunks keep their vectors);
        embed_budget_s bounds that time and leaves the rest pending for a later refresh.
        progress(phase, done, total) is called during long phases ("scan", "index", "embed").
        """
        t0 = time.perf_counter()
        stats = RefreshStats()
        with self._refresh_lock:
            if paths is None:
                with self._lock:
                    forced = set(self._dirty)
                    self._dirty.clear()
                self._rules = IgnoreRules(self.root)  # .gitignore files may have changed
                self._refresh_all(stats, progress, forced)
            else:
                rels = {r for r in (self._rel(p) for p in paths) if r is not None}
                with self._lock:
                    self._dirty -= rels
                self._refresh_paths(sorted(rels), stats, progress)
            with self._lock:
                if stats.touched:
                    self._df.clear()
                    stats.root_hash = self._update_tree()
                else:
                    stats.root_hash = self._meta("root_hash") or ""
                self._set_meta("last_refresh", str(time.time()))
                if paths is None and self._meta("vacuum_pending"):
                    self._vacuum()
            if embed and self._mode != "off":
                with self._lock:
                    pending = self._pending_count()
                emb = self._ensure_embedder() if pending else self._embedder
                if emb is not None:
                    self._embed_pending(emb, stats, embed_budget_s, progress)
            with self._lock:
                stats.pending_embeddings = self._pending_count() if self.embeddings_enabled else 0
        stats.seconds = time.perf_counter() - t0
        return stats

    def _rel(self, p: str | os.PathLike[str]) -> str | None:
        path = Path(p)
        if not path.is_absolute():
            path = self.root / path
        try:
            rel = os.path.relpath(os.path.abspath(path), self.root)
        except ValueError:
            return None
        rel = rel.replace(os.sep, "/")
        if rel.startswith("../") or rel == ".." or rel == ".":
            return None
        return rel

    def _stored(self) -> dict[str, tuple[str, int, int]]:
        return {p: (h, s, m) for p, h, s, m in self._conn.execute("SELECT path, hash, size, mtime_ns FROM files")}

    def _refresh_all(self, stats: RefreshStats, progress: Callable[[str, int, int], None] | None,
                     forced: set[str]) -> None:
        """forced: invalidated paths, re-hashed even when their size and mtime look unchanged."""
        current = walk(self._rules)
        with self._lock:
            stored = self._stored()
        stats.scanned = len(current)
        todo = []
        seen = set()
        for f in current:
            seen.add(f.path)
            old = stored.get(f.path)
            if old is not None and old[1] == f.size and old[2] == f.mtime_ns and f.path not in forced:
                stats.unchanged += 1
            else:
                todo.append(f.path)
        removed = [p for p in stored if p not in seen]
        self._apply(todo, removed, stored, stats, progress)

    def _refresh_paths(self, rels: list[str], stats: RefreshStats,
                       progress: Callable[[str, int, int], None] | None) -> None:
        if not rels:
            return
        rels = self._expand_dirs(rels)
        stored = {}
        with self._lock:
            for rel in rels:
                row = self._conn.execute("SELECT hash, size, mtime_ns FROM files WHERE path=?", (rel,)).fetchone()
                if row is not None:
                    stored[rel] = tuple(row)
        todo, removed = [], []
        for rel in rels:
            full = self.root / rel
            ok = full.is_file() and not full.is_symlink() and not skip_by_name(full.name) \
                and not self._rules.ignored_anywhere(rel)
            if ok:
                try:
                    size = full.stat().st_size
                    ok = 0 < size <= _max_bytes()
                except OSError:
                    ok = False
            stats.scanned += 1
            if ok:
                todo.append(rel)
            elif rel in stored:
                removed.append(rel)
        self._apply(todo, removed, stored, stats, progress)

    def _expand_dirs(self, rels: list[str]) -> list[str]:
        """Directories (created, moved, deleted: watchers report them as one path) become their files,
        those on disk and those the index holds under them."""
        out: dict[str, None] = {}
        for rel in rels:
            full = self.root / rel
            if full.is_dir() and not full.is_symlink():
                if not self._rules.ignored_anywhere(rel, is_dir=True):
                    for f in walk(self._rules, under=rel):
                        out[f.path] = None
            elif full.exists():
                out[rel] = None
                continue
            with self._lock:
                for (p,) in self._conn.execute(
                    "SELECT path FROM files WHERE path LIKE ? ESCAPE '\\'", (_like_prefix(rel, "/"),)
                ):
                    out[p] = None
            if not full.is_dir():
                out[rel] = None
        return list(out)

    def _apply(self, todo: list[str], removed: list[str], stored: dict[str, Any], stats: RefreshStats,
               progress: Callable[[str, int, int], None] | None) -> None:
        total = len(todo)
        for start in range(0, max(total, 1), _BATCH_FILES):
            batch = todo[start : start + _BATCH_FILES]
            prepared = []
            for rel in batch:  # read + parse outside the write transaction
                full = self.root / rel
                try:
                    data = full.read_bytes()
                    st = full.stat()
                except OSError:
                    if rel in stored:
                        removed.append(rel)
                    continue
                digest = hashlib.blake2b(data, digest_size=16).hexdigest()
                old = stored.get(rel)
                if old is not None and old[0] == digest:
                    prepared.append((rel, digest, st, None, "touch"))
                    continue
                text = decode_text(data)
                analysis = analyze(rel, text) if text is not None else None
                prepared.append((rel, digest, st, analysis, "changed" if old is not None else "added"))
            with self._lock:
                self._write_batch(prepared, stats)
            if progress is not None and total:
                progress("index", min(start + _BATCH_FILES, total), total)
        if removed:
            with self._lock:
                with self._transaction():
                    for rel in removed:
                        self._delete_file(rel)
                        stats.removed += 1

    def _write_batch(self, prepared: list[Any], stats: RefreshStats) -> None:
        conn = self._conn
        with self._transaction():
            for rel, digest, st, analysis, what in prepared:
                if what == "touch":
                    conn.execute("UPDATE files SET size=?, mtime_ns=? WHERE path=?",
                                 (st.st_size, st.st_mtime_ns, rel))
                    stats.unchanged += 1
                    continue
                self._write_file(rel, digest, st.st_size, st.st_mtime_ns, analysis, stats)
                if what == "added":
                    stats.added += 1
                else:
                    stats.changed += 1
                if analysis is None:
                    stats.skipped += 1

    def _delete_file(self, rel: str, keep_row: bool = False) -> dict[str, bytes]:
        """Remove a file's chunks, symbols and imports; returns {embed_hash: vector} of its old chunks."""
        conn = self._conn
        ids = conn.execute("SELECT id, embed_hash, embedded FROM chunks WHERE path=?", (rel,)).fetchall()
        reusable: dict[str, bytes] = {}
        if ids:
            if self._vec_ok and _has_table(conn, "chunk_vec"):
                for cid, h, embedded in ids:
                    if embedded:
                        row = conn.execute("SELECT embedding FROM chunk_vec WHERE rowid=?", (cid,)).fetchone()
                        if row is not None:
                            reusable[h] = row[0]
                        conn.execute("DELETE FROM chunk_vec WHERE rowid=?", (cid,))
                        self._dense.delete(cid)
            conn.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(cid,) for cid, _, _ in ids])
            conn.execute("DELETE FROM chunks WHERE path=?", (rel,))
        conn.execute("DELETE FROM symbols WHERE path=?", (rel,))
        conn.execute("DELETE FROM imports WHERE path=?", (rel,))
        if not keep_row:
            conn.execute("DELETE FROM files WHERE path=?", (rel,))
        return reusable

    def _write_file(self, rel: str, digest: str, size: int, mtime_ns: int, analysis: FileAnalysis | None,
                    stats: RefreshStats) -> None:
        conn = self._conn
        reusable = self._delete_file(rel, keep_row=True)
        n_chunks = len(analysis.chunks) if analysis is not None else 0
        lang = (analysis.lang or "text") if analysis is not None else "binary"
        conn.execute(
            "INSERT OR REPLACE INTO files(path, hash, size, mtime_ns, lang, n_chunks) VALUES(?,?,?,?,?,?)",
            (rel, digest, size, mtime_ns, lang, n_chunks),
        )
        if analysis is None:
            return
        path_text = tok.index_text(os.path.splitext(rel)[0])  # `.py` in every path would be noise
        can_reuse = bool(reusable) and self._vec_ok and _has_table(conn, "chunk_vec")
        for ch in analysis.chunks:
            etext = embedding_text(rel, ch.symbol, ch.text)
            ehash = hashlib.blake2b(etext.encode("utf-8", "replace"), digest_size=12).hexdigest()
            vec = reusable.get(ehash) if can_reuse else None
            cur = conn.execute(
                "INSERT INTO chunks(path, start_line, end_line, symbol, kind, text, embed_hash, embedded) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (rel, ch.start_line, ch.end_line, ch.symbol, ch.kind, ch.text, ehash, 1 if vec else 0),
            )
            cid = cur.lastrowid
            names = " ".join(tok.index_text(n) for n in ch.symbols)
            conn.execute("INSERT INTO chunks_fts(rowid, body, names, path) VALUES(?,?,?,?)",
                         (cid, tok.index_text(ch.text), names, path_text))
            if vec is not None:
                conn.execute("INSERT INTO chunk_vec(rowid, embedding) VALUES(?, ?)", (cid, vec))
                self._dense.put(cid, vec)
                stats.embeddings_reused += 1
            stats.chunks_written += 1
        conn.executemany(
            "INSERT INTO symbols(path, name, qualname, kind, signature, line, end_line) VALUES(?,?,?,?,?,?,?)",
            [(rel, s.name, s.qualname, s.kind, s.signature, s.line, s.end_line) for s in analysis.symbols],
        )
        conn.executemany(
            "INSERT INTO imports(path, module, line) VALUES(?,?,?)",
            [(rel, _resolve_import(rel, analysis.lang, i.module), i.line) for i in analysis.imports],
        )

    def _vacuum(self) -> None:
        """Give back the pages an FTS migration freed (caller holds the lock). Needs the database to itself:
        when another process holds it, the flag stays and a later full refresh tries again."""
        try:
            self._conn.execute("VACUUM")
        except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError: database is locked / busy
            log.info("index VACUUM deferred: %s", exc)
            return
        self._conn.execute("DELETE FROM meta WHERE key='vacuum_pending'")
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM wrote the whole file through the WAL
        self._dense.invalidate()

    def _update_tree(self) -> str:
        """Merkle-style directory hashes over the file content hashes; returns the root hash."""
        children: dict[str, list[str]] = {}
        for path, h in self._conn.execute("SELECT path, hash FROM files ORDER BY path"):
            parent, _, name = path.rpartition("/")
            children.setdefault(parent, []).append(f"f {name} {h}")
            while parent:
                up, _, dname = parent.rpartition("/")
                lst = children.setdefault(up, [])
                marker = f"d {dname}"
                if marker not in lst:
                    lst.append(marker)
                else:
                    break
                parent = up
        hashes: dict[str, str] = {}
        for d in sorted(children, key=lambda x: x.count("/") + (1 if x else 0), reverse=True):
            lines = []
            for entry in sorted(children[d]):
                if entry.startswith("d "):
                    name = entry[2:]
                    sub = f"{d}/{name}" if d else name
                    lines.append(f"d {name} {hashes.get(sub, '')}")
                else:
                    lines.append(entry)
            hashes[d] = hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()
        root_hash = hashes.get("", hashlib.blake2b(b"", digest_size=16).hexdigest())
        conn = self._conn
        with self._transaction():
            conn.execute("DELETE FROM tree")
            conn.executemany("INSERT INTO tree(dir, hash) VALUES(?, ?)", sorted(hashes.items()))
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('root_hash', ?)", (root_hash,))
        return root_hash

    def _pending_count(self) -> int:
        row = self._conn.execute("SELECT count(*) FROM chunks WHERE embedded = 0").fetchone()
        return int(row[0])

    def _embed_pending(self, emb: Embedder, stats: RefreshStats, budget_s: float | None,
                       progress: Callable[[str, int, int], None] | None) -> None:
        deadline = time.perf_counter() + budget_s if budget_s is not None else None
        total = self._pending_count()
        done = 0
        last_id = 0
        while True:
            if deadline is not None and time.perf_counter() >= deadline:
                break
            with self._lock:
                rows = self._conn.execute(
                    "SELECT id, path, symbol, text FROM chunks WHERE embedded = 0 AND id > ? ORDER BY id LIMIT ?",
                    (last_id, _EMBED_BATCH * 4),
                ).fetchall()
            if not rows:
                break
            last_id = rows[-1][0]
            vecs = emb.encode([embedding_text(p, s, t) for _, p, s, t in rows], batch_size=_EMBED_BATCH)
            with self._lock:
                conn = self._conn
                with self._transaction():
                    for (cid, *_), v in zip(rows, vecs, strict=True):
                        # the chunk may have been replaced meanwhile (another thread or process)
                        cur = conn.execute("UPDATE chunks SET embedded = 1 WHERE id = ? AND embedded = 0", (cid,))
                        if cur.rowcount:
                            blob = v.astype(np.float32).tobytes()
                            conn.execute("INSERT OR REPLACE INTO chunk_vec(rowid, embedding) VALUES(?, ?)",
                                         (cid, blob))
                            self._dense.put(cid, blob)
            done += len(rows)
            stats.embedded += len(rows)
            if progress is not None:
                progress("embed", done, total)

    def watch(self, stop_event: threading.Event | None = None,
              on_refresh: Callable[[RefreshStats], None] | None = None, *, embed: bool = True,
              debounce_ms: int = 200) -> None:
        """Blocking: follow file changes under the root (watchfiles) and refresh the changed files.
        Returns when stop_event is set. For the daemon; run it in a thread."""
        from watchfiles import watch as fs_watch

        for changes in fs_watch(self.root, stop_event=stop_event, debounce=debounce_ms,
                                 watch_filter=self._watch_filter, raise_interrupt=False):
            paths = sorted({p for _, p in changes})
            stats = self.refresh(paths, embed=embed)
            if on_refresh is not None and stats.touched:
                on_refresh(stats)

    async def awatch(self, stop_event: Any = None,
                     on_refresh: Callable[[RefreshStats], None] | None = None, *, embed: bool = True,
                     debounce_ms: int = 200) -> None:
        """The asyncio form of `watch` (stop_event: an asyncio.Event); refreshes run in a worker thread."""
        import asyncio

        from watchfiles import awatch as fs_awatch

        async for changes in fs_awatch(self.root, stop_event=stop_event, debounce=debounce_ms,
                                       watch_filter=self._watch_filter):
            paths = sorted({p for _, p in changes})
            stats = await asyncio.to_thread(self.refresh, paths, embed=embed)
            if on_refresh is not None and stats.touched:
                on_refresh(stats)

    def _watch_filter(self, change: Any, path: str) -> bool:
        rel = self._rel(path)
        if rel is None:
            return False
        parts = rel.split("/")
        return not (parts[0] in (".git", ".ghostline") or "__pycache__" in parts)

    # -- queries -----------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, mode: SearchMode = "hybrid") -> list[Hit]:
        """Ranked chunks for a query. "hybrid" fuses BM25 and dense ranks (reciprocal rank fusion);
        without embeddings every mode answers lexically."""
        if mode not in ("hybrid", "lexical", "dense"):
            raise ValueError(f"mode must be hybrid, lexical or dense, not {mode!r}")
        self._flush_dirty()
        if k <= 0 or not query.strip():
            return []
        emb = self._ensure_embedder() if mode != "lexical" else None
        if emb is None or mode == "lexical":
            return self._hits(self._lexical_ids(query, k), k)
        if mode == "dense":
            return self._hits(self._dense_ids(emb, query, k), k)
        depth = max(k * 4, 40)
        fused = rrf([self._lexical_ids(query, depth), self._dense_ids(emb, query, depth)])
        return self._hits(fused, k)

    def _flush_dirty(self) -> None:
        if self._dirty:
            with self._lock:
                dirty = sorted(self._dirty)
            self.refresh(dirty, embed=False)

    def _lexical_ids(self, query: str, k: int, *, boost_definitions: bool = True) -> list[tuple[int, float]]:
        """BM25 over identifier tokens; chunks defining an identifier named in the query (written as code:
        snake_case, camelCase, dotted, or a lone word) rank first."""
        terms = tok.query_terms(query)
        if not terms:
            return []
        with self._lock:
            terms = self._prune_common(terms)
            rows = self._conn.execute(
                "SELECT rowid, bm25(chunks_fts, ?, ?, ?) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY s LIMIT ?",
                (*BM25_WEIGHTS, tok.fts_query(terms), max(k, 20) if boost_definitions else k),
            ).fetchall()
            ranked = [(int(r), -float(s)) for r, s in rows]
            defs = self._definition_chunks(query) if boost_definitions else {}
        if not defs:
            return ranked[:k]
        top = ranked[0][1] if ranked else 1.0
        scores = dict(ranked)
        for cid in defs:
            # a definition BM25 did not rank (its text may not even repeat the name) still comes first
            scores[cid] = scores.get(cid, top * 0.5) + top * DEFINITION_BOOST
        return sorted(scores.items(), key=lambda kv: -kv[1])[:k]

    def _prune_common(self, terms: list[str]) -> list[str]:
        """Drop terms found in over COMMON_TERM_FRACTION of chunks (near-zero IDF, long posting lists: they
        cost most of a query's time and add nothing to its ranking), then all but the MAX_QUERY_TERMS rarest;
        keeps at least the rarest term."""
        if len(terms) < 2:
            return terms
        conn = self._conn
        if "" not in self._df:
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, 'row')")
            self._df[""] = int(conn.execute("SELECT count(*) FROM chunks").fetchone()[0])
        total = self._df[""]
        for t in terms:
            if t not in self._df:
                row = conn.execute("SELECT doc FROM temp.chunks_vocab WHERE term = ?", (t,)).fetchone()
                self._df[t] = int(row[0]) if row else 0
        if total < 1000:
            return terms
        kept = [t for t in terms if self._df[t] <= COMMON_TERM_FRACTION * total]
        if len(kept) > MAX_QUERY_TERMS:
            kept = sorted(kept, key=lambda t: self._df[t])[:MAX_QUERY_TERMS]
        return kept or [min(terms, key=lambda t: self._df[t])]

    def _definition_chunks(self, query: str) -> dict[int, None]:
        """Chunks holding the definition of identifiers the query spells as code (caller holds the lock)."""
        words = tok.code_identifiers(query)
        if not words:
            return {}
        marks = ",".join("?" * len(words))
        rows = self._conn.execute(
            f"SELECT name, path, line FROM symbols WHERE name IN ({marks}) LIMIT ?", (*words, 4 * MAX_DEFINITIONS)
        ).fetchall()
        per_name: dict[str, int] = {}
        for name, _p, _l in rows:
            per_name[name] = per_name.get(name, 0) + 1
        out: dict[int, None] = {}
        for name, p, line in rows:
            if per_name[name] > MAX_DEFINITIONS:  # `__init__`, `run`: a definition says nothing
                continue
            c = self._conn.execute(
                "SELECT id FROM chunks WHERE path=? AND start_line<=? AND end_line>=? ORDER BY id LIMIT 1",
                (p, line, line),
            ).fetchone()
            if c is not None:
                out[int(c[0])] = None
        return out

    def _dense_ids(self, emb: Embedder, query: str, k: int) -> list[tuple[int, float]]:
        vec = np.asarray(emb.encode_query(query), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vec))
        with self._lock:
            current = self._dense.current(self._conn)
        if current is None or norm == 0.0:
            return []
        ids, matrix = current
        import torch  # loaded already with the embedding model; its own thread pool, so no BLAS oversubscription

        # cosine similarity, as sqlite-vec's distance_metric=cosine ranks; fp16 halves the memory-bound scan
        # (54k x 384: 1.6 ms vs 8.5 ms in fp32 here) and leaves the top 10 the same (9.98/10 measured)
        query16 = torch.from_numpy((vec / norm).astype(np.float16))
        scores = torch.mv(torch.from_numpy(matrix), query16).float().numpy()
        n = min(k, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def _hits(self, ranked: list[tuple[int, float]], k: int, exclude: Callable[[str, int, int], bool] | None = None
              ) -> list[Hit]:
        if not ranked:
            return []
        ids = [cid for cid, _ in ranked]
        with self._lock:
            rows = {}
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                for row in self._conn.execute(
                    f"SELECT id, path, start_line, end_line, text, symbol FROM chunks WHERE id IN ({marks})", part
                ):
                    rows[row[0]] = row
        out: list[Hit] = []
        for cid, score in ranked:
            row = rows.get(cid)
            if row is None:
                continue
            if exclude is not None and exclude(row[1], row[2], row[3]):
                continue
            out.append(Hit(row[1], row[2], row[3], float(score), row[4], row[5]))
            if len(out) >= k:
                break
        return out

    def find_symbol(self, name: str, limit: int = 50) -> list[SymbolHit]:
        """Where is `name` defined: exact name or qualified name (`Class.method`), case-insensitive fallback."""
        self._flush_dirty()
        name = name.strip()
        if not name:
            return []
        short = name.replace("::", ".").rsplit(".", 1)[-1]
        with self._lock:
            rows = self._conn.execute(
                "SELECT path, name, qualname, kind, signature, line, end_line FROM symbols "
                "WHERE name = ? COLLATE NOCASE ORDER BY path, line LIMIT ?",
                (short, limit * 4),
            ).fetchall()
        hits = [SymbolHit(*r) for r in rows]
        if short != name:
            want = name.replace("::", ".")
            hits = [h for h in hits if h.qualname.replace("::", ".") == want
                    or h.qualname.replace("::", ".").endswith("." + want)]
        exact = [h for h in hits if h.name == short]
        return (exact or hits)[:limit]

    def importers(self, module: str, limit: int = 200) -> list[ImportHit]:
        """Who imports `module` (or a submodule of it): one hit per import statement."""
        self._flush_dirty()
        module = module.strip()
        if not module:
            return []
        with self._lock:
            rows = self._conn.execute(
                "SELECT path, module, line FROM imports WHERE module = ? OR module LIKE ? ESCAPE '\\' "
                "OR module LIKE ? ESCAPE '\\' ORDER BY path, line LIMIT ?",
                (module, _like_prefix(module, "."), _like_prefix(module, "/"), limit),
            ).fetchall()
        return [ImportHit(*r) for r in rows]

    def context_snippets(self, path: str | os.PathLike[str], text: str, cursor_line: int, k: int = 5,
                         budget_ms: float = 30.0) -> list[Hit]:
        """Top-k snippets from elsewhere in the repository for the code around cursor_line (1-based) of an
        open buffer (its text as in the editor, which may differ from disk). Definitions of identifiers
        near the cursor come first, then BM25 (and dense, if the model is already loaded) neighbours.
        Returns what it has when budget_ms runs out; never loads the embedding model."""
        t_end = time.perf_counter() + budget_ms / 1000.0
        # a refresh writing a batch holds the connection: wait for it at most the budget
        if not self._lock.acquire(timeout=max(budget_ms / 1000.0, 0.001)):
            return []
        try:
            return self._context_snippets(path, text, cursor_line, k, t_end)
        finally:
            self._lock.release()

    def _context_snippets(self, path: str | os.PathLike[str], text: str, cursor_line: int, k: int,
                          t_end: float) -> list[Hit]:
        rel = self._rel(path) or str(path)
        lines = text.splitlines()
        cur = max(0, min(len(lines), cursor_line) - 1)
        lo, hi = max(0, cur - 30), min(len(lines), cur + 10)
        window_lines = lines[lo:hi]

        def overlaps(p: str, s: int, e: int) -> bool:
            return p == rel

        near = "\n".join(lines[max(0, cur - 6) : cur + 1])
        idents = []
        seen = set()
        for w in reversed(tok._WORD.findall(near) + tok._WORD.findall("\n".join(window_lines))):
            if len(w) > 2 and w.lower() not in tok.STOPWORDS and w not in seen:
                seen.add(w)
                idents.append(w)
        idents = idents[:24]
        lists: list[list[tuple[int, float]]] = []
        if idents:
            marks = ",".join("?" * len(idents))
            with self._lock:
                rows = self._conn.execute(
                    # config keys (`name`, `timeout`) are not what an identifier in code refers to
                    f"SELECT s.path, s.line, s.name FROM symbols s WHERE s.name IN ({marks}) AND s.path != ? "
                    "AND s.kind NOT IN ('key', 'table') LIMIT 64", (*idents, rel),
                ).fetchall()
                order = {w: i for i, w in enumerate(idents)}
                rows.sort(key=lambda r: order.get(r[2], 99))
                defs: list[tuple[int, float]] = []
                for p, line, _ in rows:
                    c = self._conn.execute(
                        "SELECT id FROM chunks WHERE path=? AND start_line<=? AND end_line>=? LIMIT 1", (p, line, line)
                    ).fetchone()
                    if c is not None and all(c[0] != d for d, _ in defs):
                        defs.append((int(c[0]), 1.0))
            lists.append(defs)
        if time.perf_counter() < t_end:
            query = "\n".join(window_lines[-12:])
            lists.append([(cid, s) for cid, s in self._lexical_ids(query, k * 4)])
        emb = loaded_embedder() if self.embeddings_enabled else None
        if emb is not None and self._embedder is None and time.perf_counter() < t_end:
            try:
                with self._lock:
                    self._setup_vectors(emb)
                    self._embedder = emb
            except Exception:  # noqa: BLE001
                emb = None
        if emb is not None and (t_end - time.perf_counter()) > 0.015:
            lists.append(self._dense_ids(emb, near or text[:500], k * 4))
        return self._hits(rrf(lists), k, exclude=overlaps)

    # -- status ------------------------------------------------------------------------------
    def status(self) -> IndexStatus:
        with self._lock:
            conn = self._conn
            files = conn.execute("SELECT count(*) FROM files WHERE n_chunks > 0").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            symbols = conn.execute("SELECT count(*) FROM symbols").fetchone()[0]
            imports = conn.execute("SELECT count(*) FROM imports").fetchone()[0]
            embedded = conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1").fetchone()[0]
            langs = dict(conn.execute(
                "SELECT lang, count(*) FROM files WHERE n_chunks > 0 GROUP BY lang ORDER BY count(*) DESC"
            ).fetchall())
            last = self._meta("last_refresh")
            root_hash = self._meta("root_hash") or ""
        if self._mode == "off":
            emb_state = "off"
        elif self._embed_error is not None:
            emb_state = f"unavailable: {self._embed_error}"
        elif self._embedder is not None:
            emb_state = f"on ({self._embedder.name})"
        else:
            emb_state = f"{self._mode} (model not loaded yet)"
        size = sum(
            os.path.getsize(str(self.db_path) + s) for s in ("", "-wal", "-shm")
            if os.path.exists(str(self.db_path) + s)
        )
        return IndexStatus(
            root=str(self.root), db_path=str(self.db_path), schema_version=SCHEMA_VERSION, files=files,
            chunks=chunks, symbols=symbols, imports=imports, embedded_chunks=embedded,
            pending_embeddings=chunks - embedded if self._mode != "off" and self._embed_error is None else 0,
            embeddings=emb_state, root_hash=root_hash, size_bytes=size,
            last_refresh=float(last) if last else None, languages=langs,
        )

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))


class _Rebuild(Exception):
    pass


def _has_table(conn: Any, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone() is not None


def _like_prefix(module: str, sep: str) -> str:
    escaped = module.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + sep + "%"


def _max_bytes() -> int:
    from ghostline.index.walker import MAX_FILE_BYTES

    return MAX_FILE_BYTES


def embedding_text(path: str, symbol: str | None, text: str) -> str:
    """What the embedding model sees for a chunk: where it is, what it defines, then the code."""
    head = f"{path}" + (f" {symbol}" if symbol else "")
    return f"{head}\n{text}"


class _DenseMirror:
    """The chunk vectors as one in-memory, L2-normalised float16 matrix: a dense query is a matrix-vector
    product (~2 ms for 50k chunks) where sqlite-vec scans every row (~40 ms). This connection's own writes
    are applied as deltas; a commit by another process (PRAGMA data_version) or a rollback reloads it all."""

    def __init__(self) -> None:
        self.ids: np.ndarray | None = None
        self.matrix: np.ndarray | None = None
        self.data_version: int | None = None
        self.deleted: set[int] = set()
        self.added: dict[int, bytes] = {}

    def invalidate(self) -> None:
        self.ids = self.matrix = None
        self.deleted.clear()
        self.added.clear()

    def delete(self, cid: int) -> None:
        if self.ids is not None:
            self.added.pop(cid, None)
            self.deleted.add(cid)

    def put(self, cid: int, blob: bytes) -> None:
        if self.ids is not None:
            self.deleted.add(cid)  # INSERT OR REPLACE: an old row with this id goes
            self.added[cid] = blob

    def current(self, conn: Any) -> tuple[np.ndarray, np.ndarray] | None:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self.ids is None or version != self.data_version:
            rows = conn.execute("SELECT rowid, embedding FROM chunk_vec").fetchall()
            self.invalidate()
            self.ids, self.matrix = self._build([r[0] for r in rows], [r[1] for r in rows])
            self.data_version = version
        elif self.deleted or self.added:
            keep = ~np.isin(self.ids, np.fromiter(self.deleted, dtype=np.int64, count=len(self.deleted)))
            new_ids, new_m = self._build(list(self.added), list(self.added.values()))
            self.ids = np.concatenate([self.ids[keep], new_ids])
            self.matrix = np.concatenate([self.matrix[keep], new_m]) if len(new_ids) else self.matrix[keep]
            self.deleted.clear()
            self.added.clear()
        if self.ids is None or not len(self.ids):
            return None
        return self.ids, self.matrix

    @staticmethod
    def _build(ids: list[int], blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        id_arr = np.asarray(ids, dtype=np.int64)
        if not blobs:
            return id_arr, np.zeros((0, 0), dtype=np.float16)
        m = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        m /= np.where(norms == 0, 1.0, norms)
        return id_arr, m.astype(np.float16)


def rrf(lists: list[list[tuple[int, float]]], k0: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists; ties keep first-seen order."""
    scores: dict[int, float] = {}
    for ranked in lists:
        for rank, (cid, _) in enumerate(ranked):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k0 + rank + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def _resolve_import(path: str, lang: str | None, module: str) -> str:
    """Python relative imports become absolute dotted names (`from .x import y` in pkg/a.py -> pkg.x)."""
    if lang != "python" or not module.startswith("."):
        return module
    level = len(module) - len(module.lstrip("."))
    rest = module[level:]
    parts = path.split("/")[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    base = ".".join(parts)
    return ".".join(x for x in (base, rest) if x)
