"""Walking a tree the way ripgrep does: .gitignore files respected, `.git` skipped, symlinks not followed.

Semantics (kept identical to `rg --hidden --no-require-git --no-ignore-dot --no-ignore-global -g '!.git'`,
so the `grep` tool's Python fallback and its ripgrep path select the same files):

* every `.gitignore` from the walk root down applies to its own subtree, deeper files taking precedence;
* `.gitignore` files above the walk root apply too, up to and including the repository root (the first
  ancestor holding `.git`), or up to `/` when there is no repository; `.git/info/exclude` applies at the
  repository root with lower precedence than that directory's `.gitignore`;
* hidden files are included; entries named `.git` are skipped; symbolic links are not followed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pathspec


@dataclass(frozen=True)
class _Rules:
    base: str  # absolute directory the patterns are relative to
    spec: pathspec.GitIgnoreSpec
    lines: tuple[str, ...] = ()


def _load_rules(directory: str, filename: str) -> _Rules | None:
    path = os.path.join(directory, filename)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return None
    try:
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
    except Exception:  # a malformed pattern must not break the walk: skip the file like a bad line
        return None
    base = directory if filename == ".gitignore" else os.path.dirname(os.path.dirname(directory))
    return _Rules(base, spec, tuple(lines))


def _dir_rules(directory: str) -> list[_Rules]:
    """Rules that a directory contributes, lowest precedence first."""
    out: list[_Rules] = []
    git = os.path.join(directory, ".git")
    if os.path.isdir(git):
        exclude = _load_rules(os.path.join(git, "info"), "exclude")
        if exclude is not None:
            out.append(exclude)
    gi = _load_rules(directory, ".gitignore")
    if gi is not None:
        out.append(gi)
    return out


def _ancestor_rules(root: str) -> list[_Rules]:
    """Rules from directories above `root`, outermost first (lowest precedence first)."""
    if os.path.lexists(os.path.join(root, ".git")):
        return []
    chain: list[str] = []
    cur = root
    while True:
        parent = os.path.dirname(cur)
        if parent == cur:
            break
        chain.append(parent)
        if os.path.lexists(os.path.join(parent, ".git")):
            break
        cur = parent
    rules: list[_Rules] = []
    for d in reversed(chain):
        rules.extend(_dir_rules(d))
    return rules


def _is_ignored(rules: list[_Rules], abspath: str, is_dir: bool) -> bool:
    # Deepest rules first: the first file with an opinion decides (git's precedence).
    for r in reversed(rules):
        rel = os.path.relpath(abspath, r.base).replace(os.sep, "/")
        if rel.startswith("../"):
            continue
        if is_dir:
            rel += "/"
        res = r.spec.check_file(rel)
        if res.include is not None:
            return bool(res.include)
    return False


def walk_files(root: Path | str, *, explicit: bool = False) -> Iterator[Path]:
    """Yield the files under `root` (absolute paths) that are not ignored, in no particular order.

    explicit: `root` was named by the user (grep's `path`), so like ripgrep search it even when an
    ignore rule above it excludes it: the patterns that exclude `root` (or a directory between it and
    the rule file) are dropped, the other patterns of those files still apply.
    """
    root_s = os.path.abspath(root)
    rules = _ancestor_rules(root_s)
    if explicit:
        rules = [_without_patterns_covering(r, root_s) for r in rules]
    yield from _walk(root_s, rules + _dir_rules(root_s))


def _without_patterns_covering(rules: _Rules, root: str) -> _Rules:
    rel = os.path.relpath(root, rules.base).replace(os.sep, "/")
    parts = rel.split("/")
    dirs = ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
    if not any(rules.spec.check_file(d).include for d in dirs):
        return rules
    kept = []
    for line in rules.lines:
        try:
            one = pathspec.GitIgnoreSpec.from_lines([line])
        except Exception:
            continue
        if any(one.match_file(d) for d in dirs):
            continue
        kept.append(line)
    return _Rules(rules.base, pathspec.GitIgnoreSpec.from_lines(kept), tuple(kept))


def _walk(directory: str, rules: list[_Rules]) -> Iterator[Path]:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.name == ".git":
            continue
        try:
            if entry.is_symlink():
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            if _is_ignored(rules, entry.path, True):
                continue
            yield from _walk(entry.path, rules + _dir_rules(entry.path))
        elif is_file:
            if not _is_ignored(rules, entry.path, False):
                yield Path(entry.path)


# --- glob patterns ---------------------------------------------------------------------------------


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
                inner = pattern[start + 1 : i]
                alts = _split_top_level(inner)
                if len(alts) < 2:
                    continue
                head, tail = pattern[:start], pattern[i + 1 :]
                out: list[str] = []
                for alt in alts:
                    out.extend(expand_braces(head + alt + tail))
                return out
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


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob: `*` and `?` stay within one path component, `**` spans directories,
    `[...]` classes, `{a,b}` alternatives. Matched against a POSIX path relative to the search root."""
    alts = [_translate(p) for p in expand_braces(pattern)]
    return re.compile("^(?:" + "|".join(alts) + ")$", re.DOTALL)


def _translate(pat: str) -> str:
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == "*":
            j = i
            while j < n and pat[j] == "*":
                j += 1
            starts = i == 0 or pat[i - 1] == "/"
            ends = j == n or pat[j] == "/"
            if j - i >= 2 and starts and ends:
                if j == n:
                    out.append(".*")
                else:
                    out.append("(?:[^/]*/)*")
                    j += 1  # the slash is part of the `**/` group
            else:
                out.append("[^/]*")
            i = j
            continue
        if c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and pat[j] in "!^":
                j += 1
            if j < n and pat[j] == "]":
                j += 1
            while j < n and pat[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                body = pat[i + 1 : j]
                neg = body[:1] in ("!", "^")
                if neg:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append("[" + ("^/" if neg else "") + body + "]")
                i = j + 1
                continue
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pat[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def gitignore_style_match(pattern: str, rel_posix: str) -> bool:
    """How `grep`'s `glob` filter matches: a pattern without `/` matches the file name at any depth
    (`*.py`), one with `/` matches the path relative to the search root (`src/**/*.ts`)."""
    for alt in expand_braces(pattern):
        p = alt.lstrip("/") if alt.startswith("/") else alt
        target = rel_posix if "/" in alt else rel_posix.rsplit("/", 1)[-1]
        if glob_regex(p).match(target):
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
