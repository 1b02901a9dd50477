"""What an approval prompt shows: the command, or a diff of the change a file tool is about to make."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

MAX_PREVIEW_LINES = 400
MAX_FILE_BYTES = 2_000_000


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _udiff(before: str, after: str, name: str) -> str:
    lines = list(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                      f"a/{name}", f"b/{name}", n=3))
    out = "".join(x if x.endswith("\n") else x + "\n" for x in lines)
    return _clip(out)


def _clip(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= MAX_PREVIEW_LINES:
        return text.rstrip("\n")
    return "\n".join(lines[:MAX_PREVIEW_LINES] + [f"… ({len(lines) - MAX_PREVIEW_LINES} more lines)"])


def preview(tool: str, args: dict[str, Any], cwd: Path) -> tuple[str, str]:
    """(kind, text): kind is "diff" (a unified diff), "command" (shell) or "text" (anything else)."""
    path = args.get("path")
    if tool == "bash" and "command" in args:
        return "command", str(args["command"])
    if tool == "edit" and isinstance(path, str):
        target = (cwd / Path(path).expanduser())
        before = _read(target)
        old, new = args.get("old_string"), args.get("new_string")
        if before is not None and isinstance(old, str) and isinstance(new, str) and old and old in before:
            after = before.replace(old, new) if args.get("replace_all") else before.replace(old, new, 1)
            return "diff", _udiff(before, after, path)
        # The exact text is not in the file (the applier may still match it loosely): show the request.
        body = "".join(f"-{line}\n" for line in str(old or "").splitlines())
        body += "".join(f"+{line}\n" for line in str(new or "").splitlines())
        return "diff", _clip(f"--- a/{path}\n+++ b/{path}\n@@ (not found verbatim; the requested change) @@\n"
                             + body)
    if tool == "write" and isinstance(path, str):
        target = (cwd / Path(path).expanduser())
        before = _read(target) if target.exists() else ""
        content = args.get("content")
        if isinstance(content, str) and before is not None:
            return "diff", _udiff(before, content, path)
    return "text", _clip(json.dumps(args, indent=2, ensure_ascii=False))
