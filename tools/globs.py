"""Path globs of the `glob` and `grep` tools, and the files those tools see.

A glob is translated by `pathspec` (git's wildmatch: `*` and `?` stay within one path component, `**` spans
directories, `[...]` classes), anchored at the search root; `{a,b}` alternatives, which git patterns lack,
are expanded first. The files are those of the repository walker (`ghostline.index.walker`) with ripgrep's
selection: every .gitignore honoured, hidden files included, only `.git` always skipped, no size or binary
filter (grep detects binaries by content, as ripgrep does).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache

from ghostline.index.walker import ALL_FILES, FileStat, IgnoreRules, walk

RIPGREP_SKIP = frozenset({".git"})  # `rg --glob '!.git'`


def tool_files(top: str | os.PathLike[str], *, explicit: bool = False) -> list[FileStat]:
    """The files under `top` that the tools search, paths relative to it, sorted.

    explicit: `top` was named by the user, so it is searched even when an ignore rule above it excludes it."""
    return walk(IgnoreRules(top, skip=RIPGREP_SKIP, explicit=explicit), files=ALL_FILES)


def expand_braces(pattern: str) -> list[str]:
    """`a.{py,pyi}` -> [`a.py`, `a.pyi`]; nested braces work; unbalanced braces stay literal."""
    depth = 0
    start = -1
    for i, c in enumerate(pattern):
        if c == "\\":
            continue
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                alts = _split_top_level(pattern[start + 1 : i])
                if len(alts) < 2:
                    continue
                head, tail = pattern[:start], pattern[i + 1 :]
                return [out for alt in alts for out in expand_braces(head + alt + tail)]
    return [pattern]


def _split_top_level(s: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for c in s:
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        cur.append(c)
    parts.append("".join(cur))
    return parts


@lru_cache(maxsize=512)
def _path_matcher(glob: str) -> Callable[[str], bool]:
    """Whether a path relative to the search root matches a brace-free glob (the path itself, not through a
    directory above it as a gitignore pattern would)."""
    # anchored (a leading `/`), so `!` and `#` are literal; trailing spaces escaped, git would drop them
    import pathspec  # loaded with the first glob, not at start (~15 ms)

    stripped = glob.rstrip(" ")
    line = "/" + stripped + "\\ " * (len(glob) - len(stripped))
    try:
        regex = pathspec.lookup_pattern("gitignore")(line).regex if glob else None
    except Exception:  # noqa: BLE001 - GitIgnorePatternError: a glob no path can match
        regex = None
    if regex is None:  # (the empty glob too: as a git pattern `/` it would match everything)
        return lambda _path: False
    if glob == "**" or glob.endswith("/**"):
        return lambda path: regex.match(path) is not None  # everything below the directory
    return lambda path: regex.fullmatch(path) is not None


def glob_match(pattern: str, rel_posix: str) -> bool:
    """The `glob` tool's match: the whole path relative to the search root (`*.py` is top level only)."""
    return any(_path_matcher(alt.lstrip("/"))(rel_posix) for alt in expand_braces(pattern))


def gitignore_style_match(pattern: str, rel_posix: str) -> bool:
    """How `grep`'s `glob` filter matches: a pattern without `/` matches the file name at any depth
    (`*.py`), one with `/` matches the path relative to the search root (`src/**/*.ts`)."""
    for alt in expand_braces(pattern):
        target = rel_posix if "/" in alt else rel_posix.rsplit("/", 1)[-1]
        if _path_matcher(alt.lstrip("/"))(target):
            return True
    return False


def literal_prefix(pattern: str) -> tuple[str, str]:
    """Split a glob into its leading directories without wildcards and the rest:
    `src/pkg/**/*.py` -> (`src/pkg`, `**/*.py`)."""
    parts = pattern.split("/")
    lead: list[str] = []
    for part in parts[:-1]:
        if any(ch in part for ch in "*?[{\\"):
            break
        lead.append(part)
    rest = parts[len(lead) :]
    return "/".join(lead), "/".join(rest)
