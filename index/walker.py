"""Which files of a repository are indexed: .gitignore rules (nested), default excludes, no binaries,
no huge or minified files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pathspec
from ghostline.index.langs import BINARY_EXTS

MAX_FILE_BYTES = 1_000_000
MAX_AVG_LINE = 400  # minified or generated: one enormous line
ALWAYS_SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".ghostline", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".nox",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".idea", ".eggs"}
)


@dataclass(frozen=True)
class FileStat:
    path: str  # relative, forward slashes
    size: int
    mtime_ns: int


class IgnoreRules:
    """.gitignore files from the root down (each applies to its own directory), plus .git/info/exclude."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._specs: dict[str, pathspec.PathSpec | None] = {}
        base: list[str] = []
        exclude = root / ".git" / "info" / "exclude"
        for f in (exclude,):
            try:
                base.extend(f.read_text(encoding="utf-8", errors="replace").splitlines())
            except OSError:
                pass
        self._base = pathspec.GitIgnoreSpec.from_lines(base) if base else None

    def _spec_for_dir(self, rel_dir: str) -> pathspec.PathSpec | None:
        if rel_dir not in self._specs:
            gi = self.root / rel_dir / ".gitignore" if rel_dir else self.root / ".gitignore"
            try:
                lines = gi.read_text(encoding="utf-8", errors="replace").splitlines()
                self._specs[rel_dir] = pathspec.GitIgnoreSpec.from_lines(lines)
            except OSError:
                self._specs[rel_dir] = None
        return self._specs[rel_dir]

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether a path (relative, forward slashes) is ignored; parents are assumed not ignored."""
        parts = rel.split("/")
        if any(p in ALWAYS_SKIP_DIRS for p in (parts if is_dir else parts[:-1])):
            return True
        probe = rel + "/" if is_dir else rel
        if self._base is not None and self._base.match_file(probe):
            return True
        for i in range(len(parts)):
            d = "/".join(parts[:i])
            spec = self._spec_for_dir(d)
            if spec is not None:
                sub = "/".join(parts[i:]) + ("/" if is_dir else "")
                if spec.match_file(sub):
                    return True
        return False

    def ignored_anywhere(self, rel: str) -> bool:
        """Like `ignored`, but also checks each parent directory (for single paths from a watcher)."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            if self.ignored("/".join(parts[:i]), is_dir=True):
                return True
        return self.ignored(rel)


def walk(root: Path, rules: IgnoreRules) -> list[FileStat]:
    """Every candidate file under root (cheap: names and stat only; content checks come later)."""
    out: list[FileStat] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(root / rel_dir if rel_dir else root))
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    if entry.name in ALWAYS_SKIP_DIRS or rules.ignored(rel, is_dir=True):
                        continue
                    stack.append(rel)
                elif entry.is_file():
                    if skip_by_name(entry.name) or rules.ignored(rel):
                        continue
                    st = entry.stat()
                    if st.st_size > MAX_FILE_BYTES or st.st_size == 0:
                        continue
                    out.append(FileStat(rel, st.st_size, st.st_mtime_ns))
            except OSError:
                continue
    out.sort(key=lambda f: f.path)
    return out


def skip_by_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in BINARY_EXTS


def decode_text(data: bytes) -> str | None:
    """The file as text, or None for binaries and minified blobs."""
    if b"\x00" in data[:8192]:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            return None
        if sum(1 for ch in text[:4096] if ord(ch) < 9 or 13 < ord(ch) < 32) > 8:
            return None
    if text.startswith("\ufeff"):
        text = text[1:]
    n_lines = text.count("\n") + 1
    if len(text) / n_lines > MAX_AVG_LINE and len(text) > 20_000:
        return None
    return text
