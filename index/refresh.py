"""Bringing the index up to date with the files on disk: walk, change detection (size and mtime, then the
content hash), analysis, the Merkle tree of directory hashes, and embedding the chunks that have no vector."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ghostline.index.chunker import FileAnalysis, analyze
from ghostline.index.lazy_embedder import LazyEmbedder
from ghostline.index.store import IndexStore, embedding_text
from ghostline.index.walker import INDEX_FILES, IgnoreRules, decode_text, relative_path, walk

Progress = Callable[[str, int, int], None]  # (phase: "index" | "embed", done, total)
_BATCH_FILES = 200
_EMBED_BATCH = 32


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
class _ReadFile:
    """A file read and analysed outside the write transaction."""

    rel: str
    digest: str
    size: int
    mtime_ns: int
    analysis: FileAnalysis | None  # None: not text (or unchanged, for "touch")
    what: str  # "added" | "changed" | "touch" (same content, new size/mtime)


class Refresher:
    """Keeps one index's store in step with its repository; one refresh at a time."""

    def __init__(self, root: Path, store: IndexStore, embeddings: LazyEmbedder) -> None:
        self.root = root
        self._store = store
        self._embeddings = embeddings
        self._rules = IgnoreRules(root)
        self._lock = threading.Lock()  # one refresh at a time
        self._dirty_lock = threading.Lock()
        self._dirty: set[str] = set()

    def invalidate(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Mark files as changed: the next query or refresh re-reads them."""
        rels = {r for r in (relative_path(self.root, p) for p in paths) if r is not None}
        with self._dirty_lock:
            self._dirty |= rels

    def flush_dirty(self) -> None:
        """Re-read the invalidated files now (before a query), without embedding."""
        if self._dirty:
            with self._dirty_lock:
                dirty = sorted(self._dirty)
            self.refresh(dirty, embed=False)

    def refresh(self, paths: Iterable[str | os.PathLike[str]] | None = None, *, embed: bool = True,
                embed_budget_s: float | None = None, progress: Progress | None = None) -> RefreshStats:
        """The whole tree (paths=None) or only the given files; see RepoIndex.refresh."""
        t0 = time.perf_counter()
        stats = RefreshStats()
        with self._lock:
            if paths is None:
                self._refresh_all(stats, progress)
            else:
                self._refresh_paths(paths, stats, progress)
            self._record(stats, full=paths is None)
            if embed and self._embeddings.mode != "off":
                self._embed(stats, embed_budget_s, progress)
            with self._store.lock:
                stats.pending_embeddings = self._store.pending_count() if self._embeddings.enabled else 0
        stats.seconds = time.perf_counter() - t0
        return stats

    def _refresh_all(self, stats: RefreshStats, progress: Progress | None) -> None:
        with self._dirty_lock:
            forced = set(self._dirty)  # re-hashed even when their size and mtime look unchanged
            self._dirty.clear()
        self._rules = IgnoreRules(self.root)  # .gitignore files may have changed
        current = walk(self._rules)
        with self._store.lock:
            stored = self._store.stored_files()
        stats.scanned = len(current)
        todo = []
        for f in current:
            old = stored.get(f.path)
            if old is not None and old[1] == f.size and old[2] == f.mtime_ns and f.path not in forced:
                stats.unchanged += 1
            else:
                todo.append(f.path)
        seen = {f.path for f in current}
        self._apply(todo, [p for p in stored if p not in seen], stored, stats, progress)

    def _refresh_paths(self, paths: Iterable[str | os.PathLike[str]], stats: RefreshStats,
                       progress: Progress | None) -> None:
        rels = sorted({r for r in (relative_path(self.root, p) for p in paths) if r is not None})
        with self._dirty_lock:
            self._dirty -= set(rels)
        if not rels:
            return
        rels = self._expand_dirs(rels)
        with self._store.lock:
            stored = {rel: row for rel in rels if (row := self._store.stored_file(rel)) is not None}
        todo, removed = [], []
        for rel in rels:
            stats.scanned += 1
            if self._indexable(rel):
                todo.append(rel)
            elif rel in stored:
                removed.append(rel)
        self._apply(todo, removed, stored, stats, progress)

    def _indexable(self, rel: str) -> bool:
        full = self.root / rel
        if not full.is_file() or full.is_symlink() or self._rules.ignored_anywhere(rel):
            return False
        try:
            size = full.stat().st_size
        except OSError:
            return False
        return INDEX_FILES.keeps(full.name, size)

    def _expand_dirs(self, rels: list[str]) -> list[str]:
        """Directories (created, moved, deleted: watchers report them as one path) become their files,
        those on disk and those the index holds under them."""
        out: dict[str, None] = {}
        for rel in rels:
            full = self.root / rel
            if full.is_dir() and not full.is_symlink():
                if not self._rules.ignored_anywhere(rel, is_dir=True):
                    out.update(dict.fromkeys(f.path for f in walk(self._rules, under=rel)))
            elif full.exists():
                out[rel] = None
                continue
            with self._store.lock:
                out.update(dict.fromkeys(self._store.paths_under(rel)))
            if not full.is_dir():
                out[rel] = None
        return list(out)

    def _apply(self, todo: list[str], removed: list[str], stored: dict[str, tuple[str, int, int]],
               stats: RefreshStats, progress: Progress | None) -> None:
        """Write the files in `todo` (read and parsed in batches outside the lock) and drop `removed`."""
        total = len(todo)
        for start in range(0, total, _BATCH_FILES):
            batch = []
            for rel in todo[start : start + _BATCH_FILES]:
                read = self._read(rel, stored.get(rel))
                if read is not None:
                    batch.append(read)
                elif rel in stored:  # gone since the walk
                    removed.append(rel)
            with self._store.lock:
                self._write_batch(batch, stats)
            if progress is not None:
                progress("index", min(start + _BATCH_FILES, total), total)
        if removed:
            with self._store.lock, self._store.transaction():
                for rel in removed:
                    self._store.delete_file(rel)
                    stats.removed += 1

    def _read(self, rel: str, old: tuple[str, int, int] | None) -> _ReadFile | None:
        full = self.root / rel
        try:
            data = full.read_bytes()
            st = full.stat()
        except OSError:
            return None
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if old is not None and old[0] == digest:
            return _ReadFile(rel, digest, st.st_size, st.st_mtime_ns, None, "touch")
        text = decode_text(data)
        analysis = analyze(rel, text) if text is not None else None
        what = "changed" if old is not None else "added"
        return _ReadFile(rel, digest, st.st_size, st.st_mtime_ns, analysis, what)

    def _write_batch(self, batch: list[_ReadFile], stats: RefreshStats) -> None:
        store = self._store
        with store.transaction():
            for f in batch:
                if f.what == "touch":
                    store.touch_file(f.rel, f.size, f.mtime_ns)
                    stats.unchanged += 1
                    continue
                written, reused = store.write_file(f.rel, f.digest, f.size, f.mtime_ns, f.analysis)
                stats.chunks_written += written
                stats.embeddings_reused += reused
                if f.what == "added":
                    stats.added += 1
                else:
                    stats.changed += 1
                if f.analysis is None:
                    stats.skipped += 1

    def _record(self, stats: RefreshStats, full: bool) -> None:
        """The Merkle tree when files changed, the refresh time, the compaction a migration left pending."""
        store = self._store
        with store.lock:
            if stats.touched:
                dir_hashes, stats.root_hash = tree_hashes(store.file_hashes())
                store.replace_tree(dir_hashes, stats.root_hash)
            else:
                stats.root_hash = store.meta("root_hash") or ""
            store.set_meta("last_refresh", str(time.time()))
            if full and store.meta("vacuum_pending"):
                store.vacuum()

    def _embed(self, stats: RefreshStats, budget_s: float | None, progress: Progress | None) -> None:
        """Embed the chunks without a vector (loading the model only when there are some)."""
        with self._store.lock:
            pending = self._store.pending_count()
        emb = self._embeddings.get() if pending else self._embeddings.model
        if emb is None:
            return
        deadline = time.perf_counter() + budget_s if budget_s is not None else None
        done = last_id = 0
        while deadline is None or time.perf_counter() < deadline:
            with self._store.lock:
                rows = self._store.unembedded_chunks(last_id, _EMBED_BATCH * 4)
            if not rows:
                break
            last_id = rows[-1][0]
            vectors = emb.encode([embedding_text(p, s, t) for _, p, s, t in rows], batch_size=_EMBED_BATCH)
            with self._store.lock:
                self._store.put_vectors([cid for cid, *_ in rows], vectors)
            done += len(rows)
            stats.embedded += len(rows)
            if progress is not None:
                progress("embed", done, pending)


def tree_hashes(files: list[tuple[str, str]]) -> tuple[dict[str, str], str]:
    """Merkle-style directory hashes over (path, content hash) rows sorted by path: ({dir: hash}, root)."""
    children: dict[str, list[str]] = {}
    for path, h in files:
        parent, _, name = path.rpartition("/")
        children.setdefault(parent, []).append(f"f {name} {h}")
        while parent:
            up, _, dname = parent.rpartition("/")
            lst = children.setdefault(up, [])
            marker = f"d {dname}"
            if marker in lst:
                break
            lst.append(marker)
            parent = up
    hashes: dict[str, str] = {}
    for d in sorted(children, key=lambda x: x.count("/") + (1 if x else 0), reverse=True):
        lines = []
        for entry in sorted(children[d]):
            if entry.startswith("d "):
                name = entry[2:]
                lines.append(f"d {name} {hashes.get(f'{d}/{name}' if d else name, '')}")
            else:
                lines.append(entry)
        hashes[d] = hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()
    return hashes, hashes.get("", hashlib.blake2b(b"", digest_size=16).hexdigest())
