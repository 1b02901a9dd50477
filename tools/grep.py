"""The `grep` tool: regex search over files, ripgrep when on PATH, a pure-Python walk otherwise.

Both backends produce the same structure (per file: matching and context lines), which one formatter
turns into `path:line:text` / `path-line-text` lines, files in path order, paths relative to the
working directory.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.tools.base import BaseTool, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.globs import gitignore_style_match, tool_files
from ghostline.tools.paths import display, resolve

DEFAULT_MAX_RESULTS = 100
MAX_MAX_RESULTS = 2000
MAX_CONTEXT = 20
LINE_CUT = 500
RG_TIMEOUT_S = 60.0


@dataclass
class FileHits:
    path: str  # absolute
    entries: dict[int, tuple[str, bool]] = field(default_factory=dict)  # line -> (text, is_match)
    matches: int = 0  # all matching lines in the file, stored or not
    last_match: int | None = None  # last stored matching line
    closed: bool = False  # nothing more of this file is stored (the result cap was reached in it)


def _sort_key(path: str) -> tuple[str, ...]:
    return tuple(Path(path).parts)


class GrepTool(BaseTool):
    name = "grep"
    kind: ToolKind = "read"
    subject_key = "pattern"
    path_key = "path"
    description = (
        "Search file contents with a regular expression (ripgrep syntax; Python `re` when ripgrep is "
        "absent). Output lines are `path:line:text` for matches and `path-line-text` for context lines, "
        "files in path order, paths relative to the working directory. Respects .gitignore, skips .git "
        "and binary files. `path`: a directory or file to search (default: the working directory). "
        "`glob`: only files matching it, e.g. `*.py` (file name at any depth) or `src/**/*.ts` (path). "
        f"`context`: lines shown around each match (max {MAX_CONTEXT}). `max_results`: matching lines "
        f"shown (default {DEFAULT_MAX_RESULTS}); a note says how many more there were. Prefer this over "
        "`bash` with grep."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Regular expression to search for."},
            "path": {"type": "string", "description": "File or directory to search in."},
            "glob": {"type": "string", "description": "Only search files matching this glob."},
            "ignore_case": {"type": "boolean", "description": "Case-insensitive match."},
            "context": {"type": "integer", "minimum": 0, "description": "Context lines around matches."},
            "max_results": {"type": "integer", "minimum": 1, "description": "Matching lines to show."},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    def __init__(self, *, use_rg: bool | None = None) -> None:
        # None: ripgrep when it is on PATH. False forces the Python walk (tests compare the two).
        self.use_rg = use_rg

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern: str = args["pattern"]
        if pattern == "":
            raise ToolError("pattern must not be empty")
        target = resolve(ctx, args.get("path") or ".", write=False)
        if not target.exists():
            raise ToolError(f"path not found: {args.get('path')}")
        glob = args.get("glob") or None
        ignore_case = bool(args.get("ignore_case", False))
        context = min(int(args.get("context") or 0), MAX_CONTEXT)
        max_results = min(int(args.get("max_results") or DEFAULT_MAX_RESULTS), MAX_MAX_RESULTS)

        rg = shutil.which("rg") if self.use_rg is not False else None
        backend = "python"
        hits: list[FileHits] | None = None
        if rg:
            hits = await _run_rg(rg, pattern, target, glob, ignore_case, context, max_results)
            if hits is not None:
                backend = "rg"
        if hits is None:
            regex = _compile(pattern, ignore_case)
            hits = await asyncio.to_thread(_search_python, regex, target, glob, context, max_results)
        return _format(ctx, hits, context, max_results, backend)


# --- ripgrep ---------------------------------------------------------------------------------------


def _rg_text(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    if "text" in obj:
        return obj["text"]
    return base64.b64decode(obj.get("bytes", "")).decode("utf-8", errors="replace")


def _rg_type_glob(glob: str) -> str | None:
    """A `glob` without `/` selects by file name, which ripgrep's file types can do before reading files.
    (`-g` cannot be used: its globs override .gitignore.)"""
    if "/" in glob or glob.startswith("!") or ":" in glob or "\\" in glob:
        return None
    return glob


async def _run_rg(
    rg: str, pattern: str, target: Path, glob: str | None, ignore_case: bool, context: int, max_results: int
) -> list[FileHits] | None:
    """Run ripgrep. None when it cannot take the pattern (the caller retries with Python's `re`,
    which also produces the error message for a pattern neither accepts)."""
    cmd = [
        rg, "--json", "--no-config", "--hidden", "--no-require-git", "--no-ignore-dot",
        "--no-ignore-global", "--no-mmap", "--sort", "path", "--glob", "!.git",
    ]  # fmt: skip
    if ignore_case:
        cmd.append("--ignore-case")
    if context:
        cmd += ["--context", str(context)]
    if glob and target.is_dir():
        tg = _rg_type_glob(glob)
        if tg is not None:
            cmd += ["--type-add", f"ghostlinesel:{tg}", "--type", "ghostlinesel"]
    cmd += ["--regexp", pattern, "--", str(target)]

    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stderr_task = asyncio.create_task(proc.stderr.read())  # type: ignore[union-attr]
    stream = _RgStream(target, glob, context, max_results)
    try:
        async with asyncio.timeout(RG_TIMEOUT_S):
            assert proc.stdout is not None
            rest = b""
            while chunk := await proc.stdout.read(1 << 20):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    stream.feed(line)
            if rest:
                stream.feed(rest)
            await proc.wait()
    except TimeoutError:
        _kill(proc)
        stderr_task.cancel()
        raise ToolError(
            f"search timed out after {RG_TIMEOUT_S:.0f}s; narrow it with `path` or `glob`"
        ) from None
    except BaseException:
        _kill(proc)
        stderr_task.cancel()
        raise
    files = stream.files
    err = (await stderr_task).decode("utf-8", errors="replace")
    if proc.returncode == 2 and not files and ("regex" in err.lower() or "error parsing" in err.lower()):
        return None
    if proc.returncode not in (0, 1, 2):
        raise ToolError(f"ripgrep failed (exit {proc.returncode}): {_first_line(err)}")
    files.sort(key=lambda f: _sort_key(f.path))
    return files


class _RgStream:
    """Folds ripgrep's JSON lines into FileHits, storing at most `max_results` matching lines."""

    def __init__(self, target: Path, glob: str | None, context: int, max_results: int) -> None:
        self.root = str(target)
        self.glob = glob if target.is_dir() else None
        self.context = context
        self.max_results = max_results
        self.files: list[FileHits] = []
        self.stored = 0
        self.cur: FileHits | None = None

    def feed(self, line: bytes) -> None:
        cur = self.cur
        # Past the cap only counts matter: no JSON parsing for lines that will not be shown, except
        # the context lines that follow this file's last shown match.
        if self.stored >= self.max_results and cur is not None:
            if line.startswith(b'{"type":"match"'):
                cur.matches += 1
                cur.closed = True
                return
            if line.startswith(b'{"type":"context"') and (cur.closed or cur.last_match is None):
                return
        if not line.strip():
            return
        msg = json.loads(line)
        kind = msg.get("type")
        data = msg.get("data", {})
        if kind == "begin":
            self.cur = FileHits(os.path.abspath(_rg_text(data.get("path"))))
        elif kind in ("match", "context") and cur is not None:
            n = data.get("line_number")
            if n is None:
                return
            is_match = kind == "match"
            if is_match:
                cur.matches += 1
                self.stored += 1
                cur.last_match = n
            elif cur.last_match is not None and self.stored >= self.max_results and n - cur.last_match > self.context:
                cur.closed = True
                return
            cur.entries[n] = (_strip_eol(_rg_text(data.get("lines"))), is_match)
        elif kind == "end" and cur is not None:
            binary = data.get("binary_offset") is not None
            selected = True
            if self.glob:
                rel = os.path.relpath(cur.path, self.root).replace(os.sep, "/")
                selected = gitignore_style_match(self.glob, rel)
            if cur.matches and not binary and selected:
                self.files.append(cur)
            else:
                self.stored -= sum(1 for _, m in cur.entries.values() if m)
            self.cur = None



def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _first_line(s: str) -> str:
    for ln in s.splitlines():
        if ln.strip():
            return ln.strip()
    return ""


def _strip_eol(s: str) -> str:
    if s.endswith("\n"):
        s = s[:-1]
    if s.endswith("\r"):
        s = s[:-1]
    return s


# --- Python fallback ---------------------------------------------------------------------------------


def _compile(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise ToolError(f"invalid regular expression {pattern!r}: {exc}") from None


def _decode(data: bytes) -> str | None:
    """Text of a file as ripgrep sees it, or None for a binary file (a NUL byte after BOM sniffing)."""
    if data.startswith(codecs.BOM_UTF8):
        text = data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    elif data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        text = data.decode("utf-16", errors="replace")
    else:
        if b"\0" in data:
            return None
        return data.decode("utf-8", errors="replace")
    return None if "\0" in text else text


def _search_file(regex: re.Pattern[str], path: str, context: int, budget: int) -> FileHits | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    text = _decode(data)
    if text is None:
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    found = [i for i, line in enumerate(lines) if regex.search(line) is not None]
    if not found:
        return None
    hits = FileHits(path, matches=len(found))
    kept = found[:budget]
    # Nothing at or after the first match that is not kept is stored (ripgrep's path stops there too).
    limit = found[budget] if len(found) > budget else len(lines)
    for i in kept:
        hits.entries[i + 1] = (_strip_eol(lines[i]), True)
    for i in kept:
        for j in range(max(0, i - context), min(limit, i + context + 1)):
            if j + 1 not in hits.entries:
                hits.entries[j + 1] = (_strip_eol(lines[j]), False)
    return hits


def _search_python(
    regex: re.Pattern[str], target: Path, glob: str | None, context: int, max_results: int
) -> list[FileHits]:
    if target.is_file():
        paths = [str(target)]
    else:
        files = tool_files(target, explicit=True)
        paths = [os.path.join(target, f.path) for f in files if not glob or gitignore_style_match(glob, f.path)]
        paths.sort(key=_sort_key)
    out: list[FileHits] = []
    stored = 0
    for p in paths:
        hits = _search_file(regex, p, context, max(0, max_results - stored))
        if hits is not None:
            stored += min(hits.matches, max(0, max_results - stored))
            out.append(hits)
    return out


# --- output ----------------------------------------------------------------------------------------


def _cut(text: str) -> str:
    if len(text) <= LINE_CUT:
        return text
    return text[:LINE_CUT] + f" … [line cut, {len(text)} chars]"


def _format(ctx: ToolContext, files: list[FileHits], context: int, max_results: int, backend: str) -> ToolResult:
    total = sum(f.matches for f in files)
    meta: dict[str, Any] = {"matches": total, "files": len(files), "backend": backend}
    if total == 0:
        meta["truncated"] = False
        return ToolResult("No matches found.", meta=meta)
    out: list[str] = []
    shown = 0
    for f in files:
        if shown >= max_results:
            break
        name = display(ctx, f.path)
        lines = sorted(f.entries.items())
        # Keep matches up to the cap and the context lines that belong to kept matches.
        kept: list[tuple[int, str, bool]] = []
        last_kept_match = None
        for n, (text, is_match) in lines:
            if is_match:
                if shown >= max_results:
                    break
                shown += 1
                last_kept_match = n
                kept.append((n, text, True))
            else:
                if shown >= max_results and (last_kept_match is None or n - last_kept_match > context):
                    break
                kept.append((n, text, False))
        # Drop leading/trailing context that belongs to no kept match (can happen at the cap).
        while kept and not kept[-1][2] and (last_kept_match is None or kept[-1][0] - last_kept_match > context):
            kept.pop()
        prev = None
        if context and out:
            out.append("--")
        for n, text, is_match in kept:
            if context and prev is not None and n != prev + 1:
                out.append("--")
            sep = ":" if is_match else "-"
            out.append(f"{name}{sep}{n}{sep}{_cut(text)}")
            prev = n
    left = total - shown
    meta["truncated"] = left > 0
    meta["shown"] = shown
    text = "\n".join(out)
    if left > 0:
        text += (
            f"\n[{left} more matching lines not shown ({total} in {len(files)} files); "
            "narrow the pattern, path or glob, or raise max_results]"
        )
    return ToolResult(text, meta=meta)
