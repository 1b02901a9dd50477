"""The one walk over a repository's files and its one ignore rule: git's, read by `pathspec`.

Used by the index, the daemon's classical completions and the `grep`/`glob` tools. The rule is the one
`rg --hidden --no-require-git --no-ignore-dot --no-ignore-global` applies, so the grep tool's ripgrep and
Python paths select the same files:

* every `.gitignore` from the walk root down applies to its own subtree; a deeper file's verdict wins, and
  within one file the last matching pattern does (`!pattern` re-includes);
* `.gitignore` files above the walk root apply too, up to and including the repository root (the first
  ancestor holding `.git`), or up to `/` when there is no repository; a repository's `.git/info/exclude`
  applies at its root with lower precedence than that directory's `.gitignore`;
* hidden files are walked; symbolic links are not followed; entries named in `skip` (by default the usual
  VCS, cache and virtualenv directories) are never walked into or listed.

What a walk lists besides that (no binaries by extension, no empty or oversize files) is a `FileFilter`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ghostline.index.langs import BINARY_EXTS

if TYPE_CHECKING:
    import pathspec

MAX_FILE_BYTES = 1_000_000
MAX_AVG_LINE = 400  # minified or generated: one enormous line
ALWAYS_SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".ghostline", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".nox",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".idea", ".eggs"}
)


@dataclass(frozen=True)
class FileStat:
    path: str  # relative to the rules' root, forward slashes
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FileFilter:
    """Which files a walk lists, besides what the ignore rules leave out."""

    max_bytes: int | None = MAX_FILE_BYTES  # larger files are left out; None: any size
    skip_empty: bool = True
    skip_binary_names: bool = True  # images, archives, compiled code by extension (`langs.BINARY_EXTS`)

    def keeps(self, name: str, size: int) -> bool:
        if self.skip_binary_names and skip_by_name(name):
            return False
        if self.skip_empty and size == 0:
            return False
        return self.max_bytes is None or size <= self.max_bytes


INDEX_FILES = FileFilter()
ALL_FILES = FileFilter(max_bytes=None, skip_empty=False, skip_binary_names=False)


@dataclass(frozen=True)
class _RuleFile:
    """One .gitignore (or info/exclude) file, and how a path relative to the root reads from its directory."""

    spec: pathspec.GitIgnoreSpec
    lines: tuple[str, ...]
    inside: int  # characters to strip: the rule file's directory under the root, with its slash ("" -> 0)
    outside: str  # to prepend: the root's path below a rule file above it, with a slash ("" otherwise)

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by a negation, None: no pattern of this file matches."""
        probe = self.outside + rel[self.inside:] + ("/" if is_dir else "")
        return self.spec.check_file(probe).include


def _read_rules(path: str, inside: int = 0, outside: str = "") -> _RuleFile | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [ln for ln in fh.read().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError:
        return None
    if not lines:
        return None
    import pathspec  # with the first ignore file, not at start (~15 ms)

    try:
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:  # noqa: BLE001 - a malformed pattern must not break the walk: skip the file
        return None
    return _RuleFile(spec, tuple(lines), inside, outside)


def _dir_rules(directory: str, inside: int, outside: str) -> list[_RuleFile]:
    """The rule files a directory holds, lowest precedence first."""
    out: list[_RuleFile] = []
    if os.path.isdir(os.path.join(directory, ".git")):
        exclude = _read_rules(os.path.join(directory, ".git", "info", "exclude"), inside, outside)
        if exclude is not None:
            out.append(exclude)
    gitignore = _read_rules(os.path.join(directory, ".gitignore"), inside, outside)
    if gitignore is not None:
        out.append(gitignore)
    return out


def _rules_above(root: str) -> list[_RuleFile]:
    """Rule files of the directories above `root` up to its repository's root, outermost first."""
    if os.path.lexists(os.path.join(root, ".git")):
        return []
    chain: list[str] = []
    cur = root
    while (parent := os.path.dirname(cur)) != cur:
        chain.append(parent)
        if os.path.lexists(os.path.join(parent, ".git")):
            break
        cur = parent
    rules: list[_RuleFile] = []
    for d in reversed(chain):
        below = os.path.relpath(root, d).replace(os.sep, "/") + "/"
        rules.extend(_dir_rules(d, 0, below))
    return rules


def _without_patterns_covering_root(rules: _RuleFile) -> _RuleFile:
    """A rule file above the root without the patterns that ignore the root or a directory above it."""
    parts = rules.outside.rstrip("/").split("/")
    dirs = ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
    if not any(rules.spec.check_file(d).include for d in dirs):
        return rules
    import pathspec  # loaded already: `rules` came from _read_rules

    kept = []
    for line in rules.lines:
        try:
            one = pathspec.GitIgnoreSpec.from_lines([line])
        except Exception:  # noqa: BLE001 - as in _read_rules
            continue
        if not any(one.match_file(d) for d in dirs):
            kept.append(line)
    return _RuleFile(pathspec.GitIgnoreSpec.from_lines(kept), tuple(kept), rules.inside, rules.outside)


class IgnoreRules:
    """Which paths under `root` are ignored (see the module's docstring). Rule files are read once.

    explicit: the root was named by the user (grep's `path`), so like ripgrep it is searched even when a rule
    above it ignores it: those patterns are dropped, the other patterns of their files still apply.
    """

    def __init__(self, root: str | os.PathLike[str], *, skip: frozenset[str] = ALWAYS_SKIP_DIRS,
                 explicit: bool = False) -> None:
        self.root = Path(os.path.abspath(root))
        self.skip = skip
        above = _rules_above(str(self.root))
        if explicit:
            above = [_without_patterns_covering_root(r) for r in above]
        self._chains: dict[str, tuple[_RuleFile, ...]] = {}
        self._above = tuple(above)

    def _chain(self, rel_dir: str) -> tuple[_RuleFile, ...]:
        """The rule files that apply inside a directory ("" is the root), lowest precedence first."""
        chain = self._chains.get(rel_dir)
        if chain is None:
            if rel_dir:
                parent = self._chain(rel_dir.rpartition("/")[0])
                own = _dir_rules(str(self.root / rel_dir), len(rel_dir) + 1, "")
            else:
                parent, own = self._above, _dir_rules(str(self.root), 0, "")
            chain = parent + tuple(own) if own else parent
            self._chains[rel_dir] = chain
        return chain

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether a path (relative, forward slashes) is ignored; its parent directories are assumed not."""
        parent, _, name = rel.rpartition("/")
        if name in self.skip:
            return True
        for rules in reversed(self._chain(parent)):
            verdict = rules.verdict(rel, is_dir)
            if verdict is not None:
                return verdict
        return False

    def ignored_anywhere(self, rel: str, is_dir: bool = False) -> bool:
        """Like `ignored`, but also checks each parent directory (for single paths from a watcher)."""
        parts = rel.split("/")
        return any(self.ignored("/".join(parts[:i]), is_dir=True) for i in range(1, len(parts))) \
            or self.ignored(rel, is_dir)


def iter_files(rules: IgnoreRules, under: str = "", files: FileFilter = INDEX_FILES) -> Iterator[FileStat]:
    """The files under `rules.root / under` (a directory taken as not ignored), in no particular order."""
    stack = [under]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = list(os.scandir(rules.root / rel_dir if rel_dir else rules.root))
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    if not rules.ignored(rel, is_dir=True):
                        stack.append(rel)
                elif entry.is_file() and not rules.ignored(rel):
                    st = entry.stat()
                    if files.keeps(entry.name, st.st_size):
                        yield FileStat(rel, st.st_size, st.st_mtime_ns)
            except OSError:
                continue


def walk(rules: IgnoreRules, under: str = "", files: FileFilter = INDEX_FILES) -> list[FileStat]:
    """`iter_files`, sorted by path."""
    return sorted(iter_files(rules, under, files), key=lambda f: f.path)


def relative_path(root: Path, path: str | os.PathLike[str]) -> str | None:
    """`path` (absolute, or relative to root) relative to root with forward slashes; None when outside it."""
    p = Path(path)
    if not p.is_absolute():
        p = root / p
    try:
        rel = os.path.relpath(os.path.abspath(p), root)
    except ValueError:
        return None
    rel = rel.replace(os.sep, "/")
    if rel.startswith("../") or rel in ("..", "."):
        return None
    return rel


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
