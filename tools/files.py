"""Helpers for `ToolContext.files` (tools.base.FileAccess): the file tools read and write text on the disk (the
default, `files is None`) or through another keeper of the files' truth — an editor hosting the agent (ACP's fs/read_text_file and fs/write_text_file), whose
unsaved buffers are what the user sees. The applier still runs on the text; only the reading and the writing
move. Reads that the keeper cannot answer (no such file there, a binary file) fall back to the disk."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ghostline.tools.base import FileSnapshot, ToolContext, ToolError


def text_snapshot(text: str) -> FileSnapshot:
    """What read-before-write remembers of a text read through a keeper (no mtime: the hash decides)."""
    return FileSnapshot(hashlib.sha256(text.encode("utf-8")).hexdigest(), 0)


def changed(ctx: ToolContext, path: Path, text: str) -> None:
    """After a change through the keeper: remember the new text and tell whoever follows file changes."""
    ctx.file_state.seen[str(path)] = text_snapshot(text)
    if ctx.on_file_changed is not None:
        ctx.on_file_changed(path)


def require_fresh_text(ctx: ToolContext, path: Path, text: str, given: str, action: str) -> None:
    """`require_fresh` for a text read through a keeper: read first, and unchanged since."""
    snap = ctx.file_state.seen.get(str(path))
    if snap is None:
        raise ToolError(
            f"{given} exists but has not been read in this session; read it first with `read`, then {action}")
    if text_snapshot(text).sha256 != snap.sha256:
        raise ToolError(
            f"{given} has changed since it was last read (in the editor, by a command or another tool); read it "
            f"again before you {action}")
