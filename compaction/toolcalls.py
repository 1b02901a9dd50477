"""What compaction knows about a tool call: its kind (the caller's lookup), its input, and its result's meta.

Compaction never decides by a tool's name. The caller maps a name to a kind (`kind_of`, the registry's
lookup): ``read`` (reads files or searches, no side effects), ``edit`` (changes files), ``shell`` (runs a
command) or ``other`` (anything else, e.g. MCP tools). Without a lookup every tool is ``other``.

The rest comes from the result's meta, which the tools set:

* ``path`` — the file a read showed (a ``read`` result is a read of that file only when it names it) or the
  file an edit was about; ``partial`` — the read showed part of the file;
* ``files_changed`` — the paths a call changed (any kind);
* ``action == "write"`` — the call replaced a whole file (so earlier reads of it are superseded);
* ``todos`` — the todo list after the call (a list of ``{content, status}``);
* ``exit_code`` — a command's exit status; ``denied`` — the call was refused; ``sha256`` — the file's hash.

A ``shell`` call's command line is its input's ``command``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

READ = "read"
EDIT = "edit"
SHELL = "shell"
OTHER = "other"

# Maps a tool name to its kind; `None` (a dict's `.get` on an unknown name) counts as "other".
KindOf = Callable[[str], "str | None"]

PATH_KEYS = ("path", "file_path", "filename", "file", "target")
PARTIAL_READ_KEYS = ("offset", "limit", "start_line", "end_line", "line_range")


def every_tool_other(name: str) -> str:
    """The lookup when the caller gives none: no tool is assumed to read, edit or run anything."""
    return OTHER


def tool_path(inp: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> str | None:
    """The file a tool call is about, from the result's meta or else the call's input."""
    for src in (meta or {}, inp or {}):
        for k in PATH_KEYS:
            v = src.get(k)
            if isinstance(v, str) and v:
                return v
    return None


def read_path(meta: dict[str, Any] | None) -> str | None:
    """The file a read-kind result shows, when the tool names one (a search result names none)."""
    v = (meta or {}).get("path")
    return v if isinstance(v, str) and v else None


def is_partial_read(inp: dict[str, Any] | None, meta: dict[str, Any] | None) -> bool:
    inp = inp or {}
    return bool((meta or {}).get("partial")) or any(inp.get(k) for k in PARTIAL_READ_KEYS)


def is_whole_file_write(meta: dict[str, Any] | None) -> bool:
    """The call replaced a whole file: its input is the file's new content."""
    return (meta or {}).get("action") == "write"


def files_changed(meta: dict[str, Any] | None) -> list[str]:
    return [p for p in (meta or {}).get("files_changed") or [] if isinstance(p, str) and p]


def todos_of(meta: dict[str, Any] | None) -> list[Any] | None:
    """The todo list a result reports, or None when it reports none."""
    todos = (meta or {}).get("todos")
    return todos if isinstance(todos, list) else None


def command_of(inp: dict[str, Any] | None) -> str | None:
    """The command line of a shell call (its input's ``command``)."""
    v = (inp or {}).get("command")
    if isinstance(v, str) and v:
        return v
    if isinstance(v, list) and v:
        return " ".join(str(x) for x in v)
    return None


def exit_code_of(meta: dict[str, Any] | None) -> int | None:
    if not meta:
        return None
    for k in ("exit_code", "returncode", "exit_status", "status_code"):
        v = meta.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            return v
    return None


_EXACT_ERROR = re.compile(
    r"^(?:E\s{2,}\S|error\b|fatal:|panic:|Traceback|[\w.]*(?:Error|Exception|Failure)\b:?)", re.I)
_STRONG_ERROR = re.compile(r"^FAIL\b|(?:Error|Exception)[:(]|error:", re.I)
_ERROR_LINE = re.compile(
    r"(error|exception|traceback|failed|fatal|denied|not found|no such|cannot|can't|invalid|refused|"
    r"mismatch|panic|undefined|unexpected)", re.I)


def error_line(text: str, limit: int = 240) -> str:
    """The most telling line of an error output: the last line that starts like an error (`E   KeyError: ...`,
    `ValueError: ...`, `error: ...`, `fatal: ...`), else the last line that mentions one, else the first line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    strong = weak = None
    for ln in reversed(lines[-80:]):
        if ln.startswith("[") or "=====" in ln:
            continue
        if _EXACT_ERROR.search(ln):
            return ln[:limit]
        if strong is None and _STRONG_ERROR.search(ln):
            strong = ln
        elif weak is None and _ERROR_LINE.search(ln):
            weak = ln
    picked = strong or weak or lines[0]
    return picked[:limit]


def short(s: str, n: int) -> str:
    """`s` on one line, cut to `n` characters."""
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def describe_call(name: str, inp: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> str:
    """A one-line description of a tool call: `bash "pytest -q"`, `edit src/x.py`."""
    inp = inp or {}
    cmd = command_of(inp)
    if cmd:
        return f'{name} "{short(cmd, 120)}"'
    path = tool_path(inp, meta)
    if path:
        extra = ""
        if isinstance(inp.get("old_string"), str):
            extra = f' (old_string "{short(inp["old_string"], 60)}")'
        return f"{name} {path}{extra}"
    for k in ("pattern", "query", "glob"):
        if isinstance(inp.get(k), str):
            return f'{name} "{short(inp[k], 80)}"'
    return f"{name} {short(json.dumps(inp, sort_keys=True, default=str), 100)}" if inp else name


_DENIED = re.compile(r"\b(declined|denied by|not approved|rejected by)\b", re.I)


def is_denied(content: str, is_error: bool, meta: dict[str, Any] | None) -> bool:
    """Whether a tool result says the call was refused (by the user or the sandbox policy)."""
    meta = meta or {}
    if meta.get("denied") or meta.get("rejected"):
        return True
    return bool(is_error and _DENIED.search(content[:300]))
