"""Classical completions without a model: identifiers and lines mined from the open buffers and the repository,
prefix-matched and ranked by frequency (open buffers weigh more than the repository).

This is what `agent daemon` serves on a machine with no model, and what answers when the model misses its
deadline. Lookups are bisections over sorted keys, so a completion costs well under a millisecond.
"""

from __future__ import annotations

import bisect
import os
import re
import threading
from collections import Counter
from pathlib import Path

from ghostline.index.walker import FileFilter, IgnoreRules, walk

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TAIL_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_HEAD_IDENT = re.compile(r"[A-Za-z0-9_]+")
_ATTR = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_TAIL_ATTR = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]*)$")
# an assignment statement: its target, then the operator
_ASSIGNMENT = re.compile(r"^\s*([\w.\[\]'\"]+)\s*(?:[-+*/%&|^@]|//|\*\*|>>|<<)?=(?!=)")
_SOURCE_EXT = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".hpp",
    ".cs", ".rb", ".php", ".swift", ".scala", ".sh", ".lua", ".sql", ".md", ".toml", ".yaml", ".yml", ".json",
}
_MINED_FILES = FileFilter(skip_empty=False, skip_binary_names=False)  # up to walker.MAX_FILE_BYTES each


class _Index:
    """Counts plus a sorted key list kept up to date incrementally (insort/delete), so a keystroke that adds a
    new identifier costs a bisection, not a re-sort of the whole repository's vocabulary."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._sorted: list[str] = []
        self._dirty = False  # bulk additions are appended and sorted once, at the next lookup

    def add(self, items: list[str] | dict[str, int], weight: int = 1) -> None:
        pairs = items.items() if isinstance(items, dict) else ((it, 1) for it in items)
        new: list[str] = []
        for it, n in pairs:
            c = self.counts.get(it)
            if c is None:
                new.append(it)
                self.counts[it] = n * weight
            else:
                self.counts[it] = c + n * weight
        if self._dirty or len(new) > 64:
            self._sorted.extend(new)
            self._dirty = True
        else:
            for it in new:
                bisect.insort(self._sorted, it)

    def _sort(self) -> None:
        if self._dirty:
            self._sorted.sort()
            self._dirty = False

    def remove(self, items: dict[str, int], weight: int = 1) -> None:
        self._sort()
        for it, n in items.items():
            c = self.counts.get(it)
            if c is None:
                continue
            c -= n * weight
            if c > 0:
                self.counts[it] = c
            else:
                del self.counts[it]
                i = bisect.bisect_left(self._sorted, it)
                if i < len(self._sorted) and self._sorted[i] == it:
                    del self._sorted[i]

    def matches(self, start: str, limit: int = 4000) -> list[tuple[str, int]]:
        self._sort()
        i = bisect.bisect_left(self._sorted, start)
        out = []
        while i < len(self._sorted) and len(out) < limit:
            key = self._sorted[i]
            if not key.startswith(start):
                break
            if len(key) > len(start):
                out.append((key, self.counts[key]))
            i += 1
        return out


class ClassicalCompleter:
    BUFFER_WEIGHT = 4

    def __init__(self, max_line_len: int = 160):
        self.max_line_len = max_line_len
        self._lock = threading.Lock()
        self.idents = _Index()
        self.lines = _Index()
        self.attrs = _Index()  # "obj.attr" as seen in the text: what follows `obj.`
        self._buffers: dict[str, tuple[Counter[str], Counter[str], Counter[str]]] = {}
        self.files_indexed = 0

    def _mine(self, text: str) -> tuple[list[str], list[str], list[str]]:
        idents = [m for m in _IDENT.findall(text) if len(m) > 2]
        lines = []
        for ln in text.splitlines():
            s = ln.strip()
            if 3 <= len(s) <= self.max_line_len:
                lines.append(s)
        attrs = [f"{a}.{b}" for a, b in _ATTR.findall(text)]
        return idents, lines, attrs

    def add_text(self, text: str, weight: int = 1) -> None:
        idents, lines, attrs = self._mine(text)
        with self._lock:
            self.idents.add(idents, weight)
            self.lines.add(lines, weight)
            self.attrs.add(attrs, weight)

    def update_buffer(self, name: str, text: str) -> None:
        """An open buffer (from the editor): replaces what was learnt from the same buffer before."""
        counts = tuple(Counter(x) for x in self._mine(text))
        indexes = (self.idents, self.lines, self.attrs)
        with self._lock:
            old = self._buffers.get(name)
            for i, index in enumerate(indexes):
                if old is not None:
                    index.remove(old[i], self.BUFFER_WEIGHT)
                index.add(dict(counts[i]), self.BUFFER_WEIGHT)
            self._buffers[name] = counts  # type: ignore[assignment]

    def index_repository(self, root: str | Path, max_files: int = 3000, max_bytes: int = 32 * 2**20) -> int:
        """Mine the repository's source files (the index's walk: .gitignore honoured, VCS/cache/venv folders
        skipped). Returns the number of files read."""
        seen = 0
        total = 0
        rules = IgnoreRules(root)
        for f in walk(rules, files=_MINED_FILES):
            if os.path.splitext(f.path)[1] not in _SOURCE_EXT:
                continue
            try:
                text = (rules.root / f.path).read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            self.add_text(text)
            seen += 1
            total += f.size
            if seen >= max_files or total >= max_bytes:
                break
        self.files_indexed += seen
        return seen

    def complete(self, prefix: str, suffix: str = "", n: int = 1) -> list[str]:
        """Up to n completions of the text at the cursor (what to insert, not the whole word/line). What stands
        right of the cursor is respected: inside a word only an insertion that joins up with the rest of the word,
        a line only when it ends with the rest of the cursor line; after `obj.` the attributes seen after it."""
        cur_line = prefix.rsplit("\n", 1)[-1]
        rest = suffix.split("\n", 1)[0].rstrip("\r")
        head = _HEAD_IDENT.match(rest)
        right_word = head.group(0) if head else ""
        want = n + 8  # some may repeat what follows the cursor and be dropped
        out: list[str] = []
        with self._lock:
            attr = _TAIL_ATTR.search(cur_line)
            if attr:
                out += self._words(self.attrs, f"{attr.group(1)}.{attr.group(2)}", right_word, want)
            m = _TAIL_IDENT.search(cur_line)
            if m and not (attr and attr.group(2) == ""):
                out += [w for w in self._words(self.idents, m.group(0), right_word, want) if w not in out]
            stripped = cur_line.lstrip()
            if len(out) < want and len(stripped) >= 2 and not right_word:
                out += [x for x in self._lines(stripped, rest.rstrip(), want - len(out)) if x not in out]
        # never repeat what already follows the cursor
        return [c for c in out if c and not rest.startswith(c)][:n]

    @staticmethod
    def _words(index: _Index, frag: str, right_word: str, want: int) -> list[str]:
        """What to insert after `frag` for the best-ranked keys starting with it; with a word right of the cursor,
        only keys that end with it (the insertion joins the two halves)."""
        cands = index.matches(frag)
        cands.sort(key=lambda kv: (-kv[1], len(kv[0]), kv[0]))
        out = []
        for word, _ in cands:
            if right_word:
                if not word.endswith(right_word) or len(word) <= len(frag) + len(right_word):
                    continue
                ins = word[len(frag) : len(word) - len(right_word)]
            else:
                ins = word[len(frag) :]
            out.append(ins)
            if len(out) >= want:
                break
        return out

    def _lines(self, stripped: str, rest: str, want: int) -> list[str]:
        """Rests of known lines that start with the typed line, end with what stands right of the cursor, and do
        not assign to a target the user has not finished typing (`self.` must not become `self.x = 0`)."""
        cands = self.lines.matches(stripped)
        cands.sort(key=lambda kv: (-kv[1], len(kv[0]), kv[0]))
        out: list[str] = []
        for line, _ in cands:
            if rest and not (line.endswith(rest) and len(line) > len(stripped) + len(rest)):
                continue
            a = _ASSIGNMENT.match(line)
            if a and a.end(1) > len(stripped):
                continue
            ins = line[len(stripped) : len(line) - len(rest)]
            if ins not in out:
                out.append(ins)
            if len(out) >= want:
                break
        return out
