"""The `glob` tool: files whose path matches a glob, newest first."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from ghostline.tools.base import BaseTool, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.globs import glob_match, literal_prefix, tool_files
from ghostline.tools.paths import display, resolve

MAX_FILES = 100


class GlobTool(BaseTool):
    name = "glob"
    kind: ToolKind = "read"
    subject_key = "pattern"
    path_key = "path"
    description = (
        "Find files by path pattern. `*` and `?` match within one path component, `**` matches any "
        "number of directories, `{a,b}` alternatives: `**/*.py`, `src/**/*.{ts,tsx}`, `*.md` (top level "
        "only). The pattern is matched against paths relative to `path` (default: the working directory). "
        f"Returns files (not directories), most recently modified first, at most {MAX_FILES}. Respects "
        ".gitignore and skips .git."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Glob pattern, e.g. `**/*.py`."},
            "path": {"type": "string", "description": "Directory to search in."},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern: str = args["pattern"].strip()
        if not pattern:
            raise ToolError("pattern must not be empty")
        base_arg = args.get("path") or "."
        if os.path.isabs(pattern):
            # An absolute pattern: its literal directories become the base.
            lead, rest = literal_prefix(pattern.lstrip("/"))
            base_arg, pattern = "/" + lead, rest
        base = resolve(ctx, base_arg, write=False)
        if not base.is_dir():
            raise ToolError(f"not a directory: {base_arg}")
        pattern = pattern.removeprefix("./")
        if pattern.endswith("/"):
            pattern += "**"  # a directory: everything under it
        lead, _ = literal_prefix(pattern)
        if lead:
            # The walk starts at the literal directories: they pass the path guard too (`../x/*`).
            resolve(ctx, str(base / lead), write=False)
        found = await asyncio.to_thread(_glob, base, pattern)
        if not found:
            return ToolResult(f"No files match {pattern!r}.", meta={"count": 0, "truncated": False})
        total = len(found)
        lines = [display(ctx, p) for _, p in found[:MAX_FILES]]
        text = "\n".join(lines)
        if total > MAX_FILES:
            text += f"\n[{total - MAX_FILES} more files not shown ({total} in all); use a narrower pattern or path]"
        return ToolResult(text, meta={"count": total, "truncated": total > MAX_FILES})


def _glob(base: Path, pattern: str) -> list[tuple[int, Path]]:
    lead, _ = literal_prefix(pattern)
    start = base / lead if lead else base
    if not start.is_dir():
        return []
    # Walk from the literal prefix; the rules of the .gitignore files above it (the base's too) still apply.
    prefix = f"{lead}/" if lead else ""
    found = [(f.mtime_ns, start / f.path) for f in tool_files(start) if glob_match(pattern, prefix + f.path)]
    found.sort(key=lambda t: (-t[0], str(t[1])))
    return found
