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
        self._buffers: dict[str, tuple[Counter[str], Counter[str]]] = {}
        self.files_indexed = 0

    def _mine(self, text: str) -> tuple[list[str], list[str]]:
        idents = [m for m in _IDENT.findall(text) if len(m) > 2]
        lines = []
        for ln in text.splitlines():
            s = ln.strip()
            if 3 <= len(s) <= self.max_line_len:
                lines.append(s)
        return idents, lines

    def add_text(self, text: str, weight: int = 1) -> None:
        idents, lines = self._mine(text)
        with self._lock:
            self.idents.add(idents, weight)
            self.lines.add(lines, weight)

    def update_buffer(self, name: str, text: str) -> None:
        """An open buffer (from the editor): replaces what was learnt from the same buffer before."""
        idents, lines = self._mine(text)
        ci, cl = Counter(idents), Counter(lines)
        with self._lock:
            old = self._buffers.get(name)
            if old is not None:
                self.idents.remove(old[0], self.BUFFER_WEIGHT)
                self.lines.remove(old[1], self.BUFFER_WEIGHT)
            self.idents.add(dict(ci), self.BUFFER_WEIGHT)
            self.lines.add(dict(cl), self.BUFFER_WEIGHT)
            self._buffers[name] = (ci, cl)

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
        """Up to n completions of the text at the cursor (what to insert, not the whole word/line)."""
        cur_line = prefix.rsplit("\n", 1)[-1]
        nxt = suffix.split("\n", 1)[0]
        want = n + 8  # some may repeat what follows the cursor and be dropped
        out: list[str] = []
        with self._lock:
            m = _TAIL_IDENT.search(cur_line)
            if m and len(m.group(0)) >= 1:
                frag = m.group(0)
                cands = self.idents.matches(frag)
                cands.sort(key=lambda kv: (-kv[1], len(kv[0]), kv[0]))
                for word, _ in cands[:want]:
                    out.append(word[len(frag) :])
            stripped = cur_line.lstrip()
            if len(out) < want and len(stripped) >= 2:
                cands = self.lines.matches(stripped)
                cands.sort(key=lambda kv: (-kv[1], len(kv[0]), kv[0]))
                for line, _ in cands:
                    rest = line[len(stripped) :]
                    if rest not in out:
                        out.append(rest)
                    if len(out) >= want:
                        break
        # never repeat what already follows the cursor
        return [c for c in out if c and not nxt.startswith(c)][:n]
