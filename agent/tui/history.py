"""What the user sent from the TUI's input box, per project, kept across runs (no Textual here).

One JSON object per line, `{"t": <unix time>, "text": <what was sent>}`, appended as each message is sent, in
`data_dir()/history/<hash of the project root>.jsonl`. Appends are single `O_APPEND` writes, so two sessions
in one project interleave whole lines; a line torn by a crash is skipped when the file is read, and the next
append starts on a fresh line. The file is rewritten (atomically) down to the newest `limit` entries once it
holds twice as many.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from ghostline.dirs import data_dir
from ghostline.files import replace_file

HISTORY_LIMIT = 1000


def history_path(project_root: Path) -> Path:
    """The history file of the project at `project_root` (the same file from any of its subdirectories)."""
    digest = hashlib.sha256(str(project_root.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    return data_dir() / "history" / f"{digest[:16]}.jsonl"


class PromptHistory:
    """The sent messages of one project, oldest first; `add` persists at once (path None: memory only)."""

    def __init__(self, path: Path | None, limit: int = HISTORY_LIMIT) -> None:
        self.path = path
        self.limit = limit
        self.entries: list[str] = []
        self.write_error: str | None = None  # the last failure to persist, for the UI to mention once
        self._lines_in_file = 0
        self._load()

    @classmethod
    def for_project(cls, project_root: Path, limit: int = HISTORY_LIMIT) -> PromptHistory:
        return cls(history_path(project_root), limit)

    def __len__(self) -> int:
        return len(self.entries)

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            raw = self.path.read_bytes()
        except OSError:
            return
        self._lines_in_file = raw.count(b"\n") + (0 if raw.endswith(b"\n") or not raw else 1)
        for line in raw.split(b"\n"):
            text = _parse_line(line)
            if text is not None:
                self.entries.append(text)
        del self.entries[: -self.limit]

    def add(self, text: str) -> bool:
        """Record a sent message (blank ones and a repeat of the last one are not). True when recorded."""
        if not text.strip() or (self.entries and self.entries[-1] == text):
            return False
        self.entries.append(text)
        del self.entries[: -self.limit]
        if self.path is None:
            return True
        record = json.dumps({"t": round(time.time(), 3), "text": text}) + "\n"  # ASCII: any text encodes
        try:
            self._append(record.encode("ascii"))
            if self._lines_in_file > 2 * self.limit:
                self._rewrite()
        except OSError as e:
            self.write_error = f"cannot save the prompt history to {self.path}: {e.strerror or e}"
        return True

    def _append(self, data: bytes) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size and _last_byte(fd) != b"\n":
                data = b"\n" + data  # a torn last line must not swallow this entry
            os.write(fd, data)
        finally:
            os.close(fd)
        self._lines_in_file += 1

    def _rewrite(self) -> None:
        """Keep the newest `limit` records of the file as they are (other sessions' included)."""
        assert self.path is not None
        kept = [line for line in self.path.read_bytes().split(b"\n") if _parse_line(line) is not None]
        kept = kept[-self.limit:]
        replace_file(self.path, [line + b"\n" for line in kept], 0o600)
        self._lines_in_file = len(kept)

    def search(self, query: str) -> list[str]:
        """Entries containing `query` (case-insensitive), newest first, each once."""
        needle = query.casefold()
        seen: set[str] = set()
        out: list[str] = []
        for text in reversed(self.entries):
            if text not in seen and needle in text.casefold():
                seen.add(text)
                out.append(text)
        return out


def _parse_line(line: bytes) -> str | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except ValueError:  # a line torn by a crash, or not ours
        return None
    text = record.get("text") if isinstance(record, dict) else None
    return text if isinstance(text, str) and text.strip() else None


def _last_byte(fd: int) -> bytes:
    return os.pread(fd, 1, os.fstat(fd).st_size - 1)
