"""The `write` tool: create a file or replace its whole content."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ghostline import apply
from ghostline.tools.base import BaseTool, Preview, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.files import changed, require_fresh_text
from ghostline.tools.paths import display, record, require_fresh, resolve, unread
from ghostline.tools.preview import read_for_preview, unified_diff


class WriteTool(BaseTool):
    name = "write"
    kind: ToolKind = "edit"
    subject_key = "path"
    path_key = "path"
    description = (
        "Create a file, or replace the whole content of one. Parent directories are created. To overwrite "
        "an existing file you must have read it with `read` in this session, and it must not have changed "
        "since; prefer `edit` for changes to part of a file. `content` is the complete new file text."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path, relative to the working directory or absolute."},
            "content": {"type": "string", "description": "The complete content of the file."},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    }

    def check(self, args: dict[str, Any], ctx: ToolContext) -> str | None:
        # an editor's buffer (ctx.files) is read when the call runs: the rule is checked then
        return unread(ctx, args["path"], "overwrite it") if ctx.files is None else None

    def preview(self, args: dict[str, Any], ctx: ToolContext) -> Preview | None:
        target = ctx.cwd / Path(args["path"]).expanduser()
        before = read_for_preview(target) if target.exists() else ""
        if before is None:
            return None
        return Preview("diff", unified_diff(before, args["content"], args["path"]))

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given: str = args["path"]
        content: str = args["content"]
        path = resolve(ctx, given, write=True)
        if ctx.files is not None:  # an editor keeps the files: it writes them (new ones too)
            current = await ctx.files.read_text(path)
            if current is not None or not path.exists():
                return await _write_through(ctx, path, given, content, current)
        return await asyncio.to_thread(_write, ctx, path, given, content)


async def _write_through(ctx: ToolContext, path: Path, given: str, content: str, current: str | None) -> ToolResult:
    assert ctx.files is not None
    name = display(ctx, path)
    before = _lf(current or "")
    after = _lf(content)
    if current is not None:
        require_fresh_text(ctx, path, current, given, "overwrite it")
        if ctx.rewrites.wants_rewrite(str(path)):
            why = apply.check_rewrite(before, after)
            if why:
                raise ToolError(f"{name}: {why}")
    try:
        await ctx.files.write_text(path, content)
    except OSError as exc:
        raise ToolError(f"cannot write {given}: {exc}") from None
    changed(ctx, path, content)
    ctx.rewrites.rewritten(str(path))
    return _written(path, name, content, current is not None, apply.make_diff(before, after, name))


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _write(ctx: ToolContext, path: Path, given: str, content: str) -> ToolResult:
    name = display(ctx, path)
    if path.is_dir():
        raise ToolError(f"{given} is a directory")
    existed = path.exists()
    if existed:
        require_fresh(ctx, path, given, "overwrite it")
    # The rewrite asked for after repeated failed edits is checked for truncation and elisions.
    rewrite = existed and ctx.rewrites.wants_rewrite(str(path))
    result = apply.write_file(path, content, display=name, check_truncation=rewrite)
    if not result.applied:
        raise ToolError(result.error or f"could not write {given}")
    record(ctx, path)
    ctx.rewrites.rewritten(str(path))
    return _written(path, name, content, existed, result.diff)


def _written(path: Path, name: str, content: str, existed: bool, diff: str) -> ToolResult:
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    if existed:
        added = sum(1 for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++"))
        removed = sum(1 for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---"))
        summary = f"Overwrote {name} ({lines} lines; +{added} -{removed})." if diff else (
            f"{name} already had this content; nothing changed."
        )
    else:
        summary = f"Created {name} ({lines} lines)."
    return ToolResult(
        summary,
        meta={"path": str(path), "diff": diff, "created": not existed, "action": "write",
              "files_changed": [str(path)]},
    )
