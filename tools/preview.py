"""Approval previews of file changes: the unified diff a write or an edit would make, before it runs."""

from __future__ import annotations

import difflib
from pathlib import Path

MAX_PREVIEW_LINES = 400
MAX_FILE_BYTES = 2_000_000


def read_for_preview(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def clip(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= MAX_PREVIEW_LINES:
        return text.rstrip("\n")
    return "\n".join(lines[:MAX_PREVIEW_LINES] + [f"… ({len(lines) - MAX_PREVIEW_LINES} more lines)"])


def unified_diff(before: str, after: str, name: str) -> str:
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 f"a/{name}", f"b/{name}", n=3)
    return clip("".join(x if x.endswith("\n") else x + "\n" for x in lines))


def requested_change(name: str, old: str, new: str) -> str:
    """When the exact text is not in the file (the applier may still match it loosely): the change as asked."""
    body = "".join(f"-{line}\n" for line in old.splitlines())
    body += "".join(f"+{line}\n" for line in new.splitlines())
    return clip(f"--- a/{name}\n+++ b/{name}\n@@ (not found verbatim; the requested change) @@\n" + body)
