"""`@path` mentions in a message: the files they name are attached to what the model gets (no Textual here).

A mention is `@` at the start of the text or after whitespace, then a path up to the next whitespace
(`@"a path with spaces"` quotes one); trailing punctuation that is not part of an existing path is left out
(`see @app.py.`). Only mentions of existing files inside the workspace are attached; a mention of something
that does not exist stays plain text (it may be a handle or a decorator). Files outside the workspace, in
Ghostline's protected places (.git, .ghostline, its config and data) and binary files are refused with a note;
long files are cut with a note. Images are not inlined: their paths come back in `images`, and the front end
attaches them as image blocks (`agent.attachments.attach_images`, which checks them against the model).

Blocking file I/O: call it off the UI thread (`await asyncio.to_thread(expand_mentions, ...)`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ghostline.sandbox.paths import PathDenied, protected_reason, resolve_path
from ghostline.tools.images import IMAGE_EXTS
from ghostline.tools.read import decode_text

MAX_FILE_CHARS = 60_000
MAX_TOTAL_CHARS = 240_000
_MENTION = re.compile(r'(?:(?<=\s)|^)@(?:"([^"\n]+)"|([^\s"]+))')
_TRAILING = ".,;:!?)]}'"


@dataclass
class Expansion:
    text: str  # the message for the model: the user's text, then one block per attached file
    attached: list[str] = field(default_factory=list)  # workspace-relative paths, in mention order
    images: list[Path] = field(default_factory=list)  # mentioned images, for `attachments.attach_images`
    notes: list[str] = field(default_factory=list)  # one line each: refusals and cuts, for the user


def expand_mentions(text: str, cwd: Path, workspace: Path, *, max_file_chars: int = MAX_FILE_CHARS,
                    max_total_chars: int = MAX_TOTAL_CHARS) -> Expansion:
    """Attach the files that `@path` mentions in `text` name (paths relative to `cwd`, confined to
    `workspace`). The text itself is kept as typed; the blocks follow it."""
    out = Expansion(text)
    blocks: list[str] = []
    seen: set[Path] = set()
    budget = max_total_chars
    ws = Path(os.path.realpath(workspace))
    for mention in mentioned_paths(text, cwd):
        if not os.path.lexists(Path(cwd) / os.path.expanduser(mention)):
            continue  # a handle, a decorator, a path still to be written: plain text
        try:
            real = resolve_path(mention, cwd=cwd, workspace=workspace, write=False)
        except PathDenied as e:
            out.notes.append(f"@{mention} not attached: {e}")
            continue
        reason = protected_reason(real, workspace)
        if reason:
            out.notes.append(f"@{mention} not attached: {reason}")
            continue
        if real in seen:
            continue
        seen.add(real)
        if not real.is_file():
            out.notes.append(f"@{mention} not attached: not a regular file (mention the files in it)")
            continue
        shown = real.relative_to(ws).as_posix() if real.is_relative_to(ws) else str(real)
        if real.suffix.lower() in IMAGE_EXTS:
            out.images.append(real)
            continue
        block = _file_block(real, shown, min(max_file_chars, budget), out.notes)
        if block is not None:
            blocks.append(block)
            out.attached.append(shown)
            budget -= len(block)
    if blocks:
        out.text = text.rstrip() + "\n\n" + "\n\n".join(blocks)
    return out


def mentioned_paths(text: str, cwd: Path) -> list[str]:
    """The paths `@` mentions in `text` name, as typed (trailing punctuation dropped unless it is part of
    an existing path)."""
    found: list[str] = []
    for m in _MENTION.finditer(text):
        quoted, bare = m.group(1), m.group(2)
        path = quoted if quoted is not None else _strip_trailing(bare, cwd)
        if path:
            found.append(path)
    return found


def _strip_trailing(path: str, cwd: Path) -> str:
    while path and path[-1] in _TRAILING and not (cwd / path).exists():
        path = path[:-1]
    return path


def _file_block(real: Path, shown: str, limit: int, notes: list[str]) -> str | None:
    if limit <= 0:
        notes.append(f"@{shown} not attached: the attachments already fill the message")
        return None
    try:
        with open(real, "rb") as fh:
            data = fh.read(limit * 4 + 4)  # enough bytes for `limit` characters in any UTF-8
            size = os.fstat(fh.fileno()).st_size
    except OSError as e:
        notes.append(f"@{shown} not attached: {e.strerror or e}")
        return None
    body = decode_text(data)
    if body is None:
        notes.append(f"@{shown} not attached: binary file")
        return None
    cut = len(body) > limit or len(data) < size
    if cut:
        body = body[:limit]
        notes.append(f"@{shown} attached in part: the first {len(body):,} characters of {size:,} bytes")
    note = (f"\n[cut here: the first {len(body):,} characters of {size:,} bytes; read the file for the rest]"
            if cut else "")
    return f'<attached_file path="{shown}" bytes="{size}">\n{body}{note}\n</attached_file>'
