"""Unified diffs of one change, cheap on big files: only the changed window (plus context) goes to difflib."""

from __future__ import annotations

import difflib
import re
from typing import AnyStr

_HUNK_HEADER_RE = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def common_affix_lengths(a: AnyStr, b: AnyStr) -> tuple[int, int]:
    """Lengths of the longest common prefix of ``a`` and ``b`` and of their longest common suffix after it.

    Binary search on slice equality: a few C-speed comparisons instead of a Python loop per character, which
    matters on files of thousands of lines.
    """
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    prefix = lo
    lo, hi = 0, min(len(a), len(b)) - prefix
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return prefix, lo


def _lines_keeping_ends(s: str) -> list[str]:
    parts = s.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def make_diff(before: str, after: str, path: str, context: int = 3) -> str:
    """Unified diff of two normalised texts (``\\n`` newlines)."""
    if before == after:
        return ""
    prefix, suffix = common_affix_lengths(before, after)
    # The window: the changed characters widened to whole lines plus `context` lines on each side.
    start = before.rfind("\n", 0, prefix) + 1
    for _ in range(context):
        if start == 0:
            break
        start = before.rfind("\n", 0, start - 1) + 1
    lines_above = before.count("\n", 0, start)
    end_before, end_after = len(before) - suffix, len(after) - suffix
    for _ in range(context + 1):
        k = before.find("\n", end_before)
        if k == -1:
            end_before, end_after = len(before), len(after)
            break
        end_after += k + 1 - end_before
        end_before = k + 1
    out = []
    for line in difflib.unified_diff(
        _lines_keeping_ends(before[start:end_before]), _lines_keeping_ends(after[start:end_after]),
        f"a/{path}", f"b/{path}", n=context,
    ):
        m = _HUNK_HEADER_RE.match(line)
        if m:  # difflib numbers the lines of the window: shift them to the lines of the file
            a0, a1, b0, b1 = m.groups()
            line = f"@@ -{int(a0) + lines_above}{a1 or ''} +{int(b0) + lines_above}{b1 or ''} @@\n"
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)
