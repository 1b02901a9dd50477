"""The per-document result cache: finished suggestions keyed by the cursor context they were made for (the end of
the text before the cursor, the start of the text after it), so that typing the start of a suggestion on screen
(typed-through) or deleting and retyping it is answered from here, without the engine.

Bounded: at most `per_doc` suggestions per document (least recently used go first), `max_docs` documents, and
each suggestion lives `ttl_s` seconds. Only deterministic requests are kept (greedy, one candidate).

It also infers what became of a suggestion for clients that never report it (llama.vim): a later request of the
same document whose text before the cursor holds the whole suggestion accepted it (all at once) or typed it
through (over several requests); one that moved elsewhere dismissed it, unless part of it was typed first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from ghostline.daemon.engine.types import CompletionRequest

TAIL_CHARS = 512  # of the text before the cursor: the window editors send shifts, its end does not
HEAD_CHARS = 256  # of the text after the cursor


@dataclass
class Entry:
    request_id: str
    tail: str
    head: str
    params: tuple[object, ...]
    text: str
    at: float
    reports_outcomes: bool = False
    typed: int = 0  # the most of `text` a later request had typed
    decided: bool = False  # its outcome is inferred (or the client reports it)


@dataclass
class Hit:
    entry: Entry
    typed: int  # characters of the suggestion typed since it was made

    @property
    def rest(self) -> str:
        return self.entry.text[self.typed :]


Outcome = tuple[str, str, int]  # (request id, accepted | typed_through | dismissed, characters)


def document_of(req: CompletionRequest) -> str:
    return req.client_id or req.filename or ""


def params_of(req: CompletionRequest) -> tuple[object, ...] | None:
    """What besides the context decides the answer; None: not cacheable (sampled, several candidates, warm-up)."""
    if req.temperature > 0 or req.n_cmpl > 1 or req.n_predict == 0:
        return None
    return (req.raw_prompt is None, req.n_predict, req.n_indent, req.stop_at_unit, tuple(req.stop))


def context_of(req: CompletionRequest) -> tuple[str, str]:
    prefix = req.prefix if req.raw_prompt is None else req.raw_prompt
    return prefix, req.suffix if req.raw_prompt is None else ""


class ResultCache:
    def __init__(self, *, ttl_s: float = 30.0, per_doc: int = 32, max_docs: int = 64):
        self.ttl_s = ttl_s
        self.per_doc = per_doc
        self.max_docs = max_docs
        self._docs: OrderedDict[str, OrderedDict[str, Entry]] = OrderedDict()
        self._shown: dict[str, Entry] = {}  # per document: the suggestion last answered there
        self.stats = {"lookups": 0, "hits": 0, "typed_through_hits": 0, "stores": 0, "expired": 0}

    def __len__(self) -> int:
        return sum(len(d) for d in self._docs.values())

    # --------------------------------------------------------------------------------------------- lookup
    def lookup(self, req: CompletionRequest, now: float | None = None) -> Hit | None:
        """A stored suggestion this request's context continues (the user typed its start, or came back to its
        place); the newest one that leaves something to show."""
        params = params_of(req)
        if params is None:
            return None
        self.stats["lookups"] += 1
        entries = self._docs.get(document_of(req))
        if not entries:
            return None
        now = time.monotonic() if now is None else now
        prefix, suffix = context_of(req)
        for key in reversed(list(entries)):
            e = entries[key]
            if now - e.at > self.ttl_s:
                del entries[key]
                self.stats["expired"] += 1
                continue
            if e.params != params or suffix[:HEAD_CHARS] != e.head:
                continue
            typed = _typed_into(prefix, e)
            if typed is not None and typed < len(e.text):
                entries.move_to_end(key)
                self.stats["hits"] += 1
                self.stats["typed_through_hits"] += typed > 0
                return Hit(e, typed)
        return None

    # ---------------------------------------------------------------------------------------------- store
    def store(self, req: CompletionRequest, text: str, now: float | None = None) -> Entry | None:
        params = params_of(req)
        if params is None or not text:
            return None
        prefix, suffix = context_of(req)
        e = Entry(req.request_id, prefix[-TAIL_CHARS:], suffix[:HEAD_CHARS], params, text,
                  time.monotonic() if now is None else now, req.reports_outcomes)
        doc = document_of(req)
        entries = self._docs.setdefault(doc, OrderedDict())
        self._docs.move_to_end(doc)
        entries[f"{e.tail}\x00{e.head}\x00{params}"] = e
        entries.move_to_end(f"{e.tail}\x00{e.head}\x00{params}")
        while len(entries) > self.per_doc:
            entries.popitem(last=False)
        while len(self._docs) > self.max_docs:
            gone, _ = self._docs.popitem(last=False)
            self._shown.pop(gone, None)
        self.stats["stores"] += 1
        return e

    # ------------------------------------------------------------------------------------------- outcomes
    def shown(self, req: CompletionRequest, entry: Entry) -> list[Outcome]:
        """`entry` was answered to a request of its document: the one shown there before it is decided."""
        doc = document_of(req)
        out = self.settle(req)
        self._shown[doc] = entry
        return out

    def settle(self, req: CompletionRequest) -> list[Outcome]:
        """A new request of the document: what became of the suggestion last shown there (for clients that do not
        report it). Typing part of it is remembered until the user moves on."""
        doc = document_of(req)
        e = self._shown.get(doc)
        if e is None or e.decided or e.reports_outcomes:
            return []
        prefix, _ = context_of(req)
        typed = _typed_into(prefix, e)
        if typed is not None and typed == len(e.text):
            e.decided = True
            self._shown.pop(doc, None)
            return [(e.request_id, "accepted" if e.typed == 0 else "typed_through", len(e.text))]
        if typed is not None:
            e.typed = max(e.typed, typed)
            return []
        e.decided = True
        self._shown.pop(doc, None)
        return [(e.request_id, "typed_through", e.typed) if e.typed else (e.request_id, "dismissed", 0)]


def _typed_into(prefix: str, e: Entry) -> int | None:
    """How much of e's suggestion the text before the cursor ends with, right after e's own context (None: it
    does not continue e's context). The context's end is searched for from the right, in reach of the cursor."""
    n = len(prefix)
    lo = max(0, n - len(e.text) - len(e.tail))
    end = n
    while True:
        i = prefix.rfind(e.tail, lo, end)
        if i < 0:
            return None
        t = n - i - len(e.tail)
        if prefix.endswith(e.text[:t]):
            return t
        end = i + len(e.tail) - 1
