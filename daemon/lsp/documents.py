"""The editor's open buffers as the LSP client describes them (didOpen / incremental didChange / didClose).

The text is the buffer, not the disk: unsaved edits count. Positions are LSP positions: a zero-based line
(lines end at "\\n", "\\r\\n" or "\\r" -- and nowhere else: not at form feeds or U+2028, which
`str.splitlines` would split at) and a character offset in the negotiated position encoding's code units
(UTF-16 by default; "utf-8" and "utf-32" when the client offers them). A character past the end of its line
means the end of the line; a line past the end of the document means the end of the document; an offset in
the middle of a character (half a surrogate pair) means the start of that character.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_EOL = re.compile(r"\r\n|\r|\n")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"

_clock = itertools.count(1)


def code_units(text: str, encoding: str = UTF16) -> int:
    """Length of `text` in the encoding's code units."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + len(_ASTRAL.findall(text))


def _char_index(line: str, units: int, encoding: str) -> int:
    """Index into `line` (code points) of the position `units` code units in, clamped to the line."""
    if units <= 0:
        return 0
    if encoding == UTF32 or line.isascii():
        return min(units, len(line))
    if encoding == UTF16 and not _ASTRAL.search(line):
        return min(units, len(line))
    used = 0
    for i, ch in enumerate(line):
        n = code_units(ch, encoding)
        if used + n > units:
            return i
        used += n
    return len(line)


@dataclass
class Document:
    uri: str
    text: str
    version: int = 0
    language_id: str = ""
    # recency: a global counter value, bumped on open and on every edit (the most recently edited is highest)
    touched: int = field(default_factory=lambda: next(_clock))
    edit_line: int = 0  # the line of the latest edit (where the user is working in that buffer)
    _starts: list[int] | None = field(default=None, repr=False)

    # -- lines --
    def line_starts(self) -> list[int]:
        if self._starts is None:
            self._starts = [0, *(m.end() for m in _EOL.finditer(self.text))]
        return self._starts

    def line_count(self) -> int:
        return len(self.line_starts())

    def line_bounds(self, line: int) -> tuple[int, int]:
        """(start, end) offsets of a line's content, without its line ending."""
        starts = self.line_starts()
        start = starts[line]
        if line + 1 < len(starts):
            end = starts[line + 1]
            end -= 2 if self.text.startswith("\r\n", end - 2) else 1
        else:
            end = len(self.text)
        return start, end

    def line_text(self, line: int) -> str:
        s, e = self.line_bounds(line)
        return self.text[s:e]

    # -- positions --
    def offset_at(self, line: int, character: int, encoding: str = UTF16) -> int:
        """The code-point offset into `text` of an LSP position."""
        if line < 0:
            return 0
        if line >= self.line_count():
            return len(self.text)
        s, e = self.line_bounds(line)
        return s + _char_index(self.text[s:e], character, encoding)

    def position_at(self, offset: int, encoding: str = UTF16) -> tuple[int, int]:
        """The LSP (line, character) of a code-point offset."""
        import bisect

        offset = max(0, min(offset, len(self.text)))
        starts = self.line_starts()
        line = bisect.bisect_right(starts, offset) - 1
        s, e = self.line_bounds(line)
        return line, code_units(self.text[s : min(offset, e)], encoding)

    # -- edits --
    def apply_change(self, change: object, encoding: str = UTF16) -> None:
        """One TextDocumentContentChangeEvent: {range, text} (incremental) or {text} (the whole document).
        Accepts lsprotocol objects or plain dicts."""
        text, rng = _change_parts(change)
        if rng is None:
            self.text = text
            self._starts = None
            self.edit_line = 0
        else:
            (sl, sc), (el, ec) = rng
            a = self.offset_at(sl, sc, encoding)
            b = self.offset_at(el, ec, encoding)
            if b < a:
                a, b = b, a
            self.text = self.text[:a] + text + self.text[b:]
            self._starts = None
            self.edit_line = max(0, sl)
        self.touched = next(_clock)


def _change_parts(change: object) -> tuple[str, tuple[tuple[int, int], tuple[int, int]] | None]:
    if isinstance(change, dict):
        text, rng = change.get("text", ""), change.get("range")
        if rng is None:
            return text, None
        s, e = rng["start"], rng["end"]
        return text, ((s["line"], s["character"]), (e["line"], e["character"]))
    text = getattr(change, "text", "")
    rng = getattr(change, "range", None)
    if rng is None:
        return text, None
    return text, ((rng.start.line, rng.start.character), (rng.end.line, rng.end.character))


@dataclass
class ExtraContext:
    """One chunk of another buffer for `input_extra` (llama.cpp: {text, filename})."""

    text: str
    filename: str


class DocumentStore:
    """The open documents, by URI, with their edit recency."""

    def __init__(self) -> None:
        self.docs: dict[str, Document] = {}

    def open(self, uri: str, text: str, version: int = 0, language_id: str = "") -> Document:
        doc = Document(uri, text, version, language_id)
        self.docs[uri] = doc
        return doc

    def change(self, uri: str, changes: Iterable[object], version: int | None = None,
               encoding: str = UTF16) -> Document | None:
        doc = self.docs.get(uri)
        if doc is None:
            return None
        for ch in changes:
            doc.apply_change(ch, encoding)
        if version is not None:
            doc.version = version
        return doc

    def close(self, uri: str) -> None:
        self.docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self.docs.get(uri)

    def __len__(self) -> int:
        return len(self.docs)

    def extra_context(self, current: str, name_of: object = None, *, n_chunks: int = 16, chunk_lines: int = 64,
                      max_chars: int = 32768) -> list[ExtraContext]:
        """Chunks of the other open buffers for input_extra, as llama.vim's ring buffer keeps them: one chunk of
        up to `chunk_lines` lines per buffer, around where that buffer was last edited; buffers are taken most
        recently edited first until `n_chunks` chunks or `max_chars` characters. The list comes back oldest
        first (the most recent last, nearest the cursor in the prompt): the order llama.vim sends and the one
        the daemon's prompt truncation expects (it drops input_extra from the front). While the user types in
        one buffer the chunks and their order stay the same, so the daemon's KV prefix cache keeps them."""
        others = sorted((d for u, d in self.docs.items() if u != current and d.text.strip()),
                        key=lambda d: d.touched, reverse=True)
        picked: list[ExtraContext] = []
        used = 0
        for d in others:
            if len(picked) >= n_chunks:
                break
            starts = d.line_starts()
            n = len(starts)
            lo = max(0, min(d.edit_line - chunk_lines // 2, n - chunk_lines))
            hi = min(n, lo + chunk_lines)
            text = d.text[starts[lo] : starts[hi] if hi < n else len(d.text)]
            if used + len(text) > max_chars:
                text = text[: max(0, max_chars - used)]
                cut = text.rfind("\n")
                text = text[: cut + 1] if cut >= 0 else ""
            if not text.strip():
                break
            used += len(text)
            name = name_of(d.uri) if callable(name_of) else d.uri
            picked.append(ExtraContext(text, name))
            if used >= max_chars:
                break
        picked.reverse()
        return picked
