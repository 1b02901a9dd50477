"""Repository context for completion prompts: snippets the index ranks for the code around the cursor
(definitions of the identifiers there first, then BM25 neighbours), as extra chunks ahead of the editor's own.

The hot path never waits for retrieval, and typing keeps the prompt's leading context -- and so the KV cache --
unchanged: the snippets for a document are computed in a background thread when the cursor first comes to a place,
and are served, unchanged, while the code around the cursor stays about the same (at least `min_overlap` of the
identifiers within the lines around it are those of the place the snippets were computed for: typing, even new
lines, keeps that; jumping elsewhere does not). Places are compared by content, not line numbers, because editors
like llama.vim send only a window of lines around the cursor. A new place asks for new snippets; until they are
ready the old ones keep being served (one keystroke late, never blocking).
The index is kept fresh by its watch mode; it is lexical here (the daemon never loads the embedding model).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.daemon.engine.fim import ExtraChunk

log = logging.getLogger("ghostline.daemon.context")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def place_words(text: str, cursor_line: int, before: int = 30, after: int = 10) -> frozenset[str]:
    """The identifiers in the lines around the cursor (1-based line of `text`): what the snippets are for."""
    lines = text.split("\n")
    cur = max(0, min(len(lines), cursor_line) - 1)
    return frozenset(_IDENT.findall("\n".join(lines[max(0, cur - before) : cur + after])))


def overlap(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / max(1, len(a | b))


@dataclass
class _DocState:
    place: frozenset[str] | None = None  # the words of the place the served chunks were computed for
    asked: frozenset[str] | None = None  # ... and of the place last asked for (computing or queued)
    chunks: list[ExtraChunk] = field(default_factory=list)
    pending: tuple[int, str, frozenset[str]] | None = None  # (cursor line, text, words) waiting for the worker


class RepoContext:
    """Snippets from a repository index for a document's cursor neighbourhood. Thread-safe; `chunks_for` never
    blocks on the index."""

    def __init__(self, index: Any, *, k: int = 4, max_chars: int = 4000, min_overlap: float = 0.5,
                 budget_ms: float = 40.0, max_docs: int = 64) -> None:
        self.index = index
        self.k = k
        self.max_chars = max_chars
        self.min_overlap = min_overlap
        self.budget_ms = budget_ms
        self.max_docs = max_docs
        self.stats = {"served": 0, "computed": 0, "stale_served": 0, "errors": 0}
        self._docs: dict[str, _DocState] = {}
        self._cond = threading.Condition()
        self._queue: list[str] = []  # documents with a pending computation, oldest first
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.ready = threading.Event()  # set once the first refresh of the index is done

    @classmethod
    def open(cls, root: str | Path, **kwargs: Any) -> RepoContext:
        from ghostline.index import RepoIndex

        return cls(RepoIndex.open(root, embeddings="off"), **kwargs)

    # -- lifecycle --
    def start(self, watch: bool = True) -> None:
        worker = threading.Thread(target=self._work, name="ghostline-context", daemon=True)
        self._threads.append(worker)
        worker.start()
        if watch:
            watcher = threading.Thread(target=self._watch, name="ghostline-context-watch", daemon=True)
            self._threads.append(watcher)
            watcher.start()
        else:
            self.ready.set()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        try:
            self.index.close()
        except Exception:  # noqa: BLE001 - closing at shutdown
            pass

    def _watch(self) -> None:
        try:
            stats = self.index.refresh(embed=False)
            log.info("repository index: %d files (%d changed) in %.1f s", stats.scanned, stats.touched,
                     stats.seconds)
        except Exception:  # noqa: BLE001 - no repository context, completions still work
            log.exception("repository index refresh failed")
        finally:
            with self._cond:  # snippets computed on a half-built index: recompute at each document's next request
                for st in self._docs.values():
                    st.place = st.asked = None
            self.ready.set()
        try:
            self.index.watch(self._stop, embed=False)
        except Exception:  # noqa: BLE001 - the snippets already served stay; they just age
            log.exception("repository watch stopped")

    # -- the hot path --
    def chunks_for(self, filename: str, text: str, cursor_line: int) -> list[ExtraChunk]:
        """The repository chunks to put ahead of the editor's own for this document and cursor line (1-based).
        Never blocks: returns what is ready (possibly computed for an earlier cursor place, or nothing yet)."""
        if not filename:
            return []
        words = place_words(text, cursor_line)
        with self._cond:
            st = self._docs.get(filename)
            if st is None:
                st = self._docs[filename] = _DocState()
                if len(self._docs) > self.max_docs:  # forget the document seen longest ago
                    oldest = next(iter(self._docs))
                    self._docs.pop(oldest, None)
            else:  # most recently used last
                self._docs[filename] = self._docs.pop(filename)
            here = st.place is not None and overlap(words, st.place) >= self.min_overlap
            asked = st.asked is not None and overlap(words, st.asked) >= self.min_overlap
            if not here and not asked:
                st.pending = (cursor_line, text, words)
                st.asked = words
                if filename not in self._queue:
                    self._queue.append(filename)
                self._cond.notify()
            if not here and st.place is not None:
                self.stats["stale_served"] += 1
            self.stats["served"] += 1
            return list(st.chunks)

    # -- the worker --
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                filename = self._queue.pop(0)
                st = self._docs.get(filename)
                job = st.pending if st is not None else None
                if st is not None:
                    st.pending = None
            if job is None:
                continue
            line, text, words = job
            try:
                chunks = self._compute(filename, text, line)
            except Exception:  # noqa: BLE001 - keep serving what we had
                log.exception("repository context for %s failed", filename)
                self.stats["errors"] += 1
                with self._cond:
                    if st is not None and st.asked == words:
                        st.asked = None  # asked again at the next keystroke there
                continue
            with self._cond:
                st = self._docs.get(filename)
                if st is not None:
                    st.place, st.chunks = words, chunks
                self.stats["computed"] += 1

    def _compute(self, filename: str, text: str, cursor_line: int) -> list[ExtraChunk]:
        hits = self.index.context_snippets(filename, text, cursor_line, k=self.k, budget_ms=self.budget_ms)
        out: list[ExtraChunk] = []
        used = 0
        for h in hits:
            body = h.text if h.text.endswith("\n") else h.text + "\n"
            if used + len(body) > self.max_chars:
                continue
            used += len(body)
            out.append(ExtraChunk(body, h.path))
        # the best snippet last: nearest the cursor's code, and the last to go when the prompt must shrink
        out.reverse()
        return out


def merge_extra(repo: list[ExtraChunk], editor: list[ExtraChunk]) -> list[ExtraChunk]:
    """Repository chunks first (dropped first when the prompt must shrink), then the editor's own; a repository
    chunk the editor already sends (same file, its text inside the editor's chunk) is left out."""
    if not repo:
        return list(editor)
    kept = [c for c in repo if not any(e.filename == c.filename and c.text.strip() in e.text for e in editor)]
    return kept + list(editor)
