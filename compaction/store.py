"""Full tool outputs kept beside the session, so a stub in the context can name a path the model can `read`."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ghostline.files import replace_file


def _safe(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return s[:80] or "output"


class OutputStore:
    """Writes each output once under `<root>/outputs/` (deterministic names) and keeps an index file."""

    def __init__(self, root: Path | str | None):
        self.root = Path(root) if root is not None else None
        self.entries: dict[str, tuple[str, str]] = {}  # key -> (path, description)
        self._dirty = False
        self._indexed = 0  # entries already written to the index

    @property
    def outputs_dir(self) -> Path | None:
        return self.root / "outputs" if self.root is not None else None

    @property
    def index_path(self) -> str | None:
        return str(self.root / "outputs" / "INDEX.md") if self.root is not None else None

    def save(self, key: str, content: str, description: str = "") -> str | None:
        """Store `content` for `key` (a tool-call id) and return its path; None when there is no store."""
        if self.root is None:
            return None
        known = self.entries.get(key)
        if known is not None:
            return known[0]
        d = self.outputs_dir
        assert d is not None
        d.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8", "surrogatepass")
        path = d / f"{_safe(key)}.txt"
        if path.exists() and path.read_bytes() != data:
            path = d / f"{_safe(key)}-{hashlib.sha256(data).hexdigest()[:10]}.txt"
        if not path.exists():
            # written once, never rewritten; a torn write (crash) is detected by the content check above
            with open(path, "wb") as f:
                f.write(data)
        self.entries[key] = (str(path), description)
        self._dirty = True
        return str(path)

    def register(self, key: str, path: str, description: str = "") -> str:
        """List an output that is already on disk (a tool saved it) in the index."""
        if self.root is not None and key not in self.entries:
            self.entries[key] = (str(path), description)
            self._dirty = True
        return str(path)

    def flush(self) -> None:
        """Append the outputs stored since the last flush to the index (one line each)."""
        if self.root is None or not self._dirty:
            return
        d = self.outputs_dir
        assert d is not None
        d.mkdir(parents=True, exist_ok=True)
        index = d / "INDEX.md"
        items = list(self.entries.items())
        new = items[self._indexed:]
        with open(index, "a", encoding="utf-8") as f:
            if self._indexed == 0 and (not index.exists() or index.stat().st_size == 0):
                f.write("# Full outputs of tool results removed from the context (tool call id · what · path)\n\n")
            for key, (path, desc) in new:
                f.write(f"- {key} · {desc} · {path}\n")
        self._indexed = len(items)
        self._dirty = False

    def write_text(self, name: str, text: str) -> str | None:
        if self.root is None:
            return None
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / name
        replace_file(path, [text.encode("utf-8")])
        return str(path)
