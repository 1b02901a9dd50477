"""The `edit` tool: replace an exact string in a file (through `apply`'s ladder)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ghostline import apply
from ghostline.tools.base import BaseTool, Preview, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.files import changed, require_fresh_text
from ghostline.tools.paths import display, record, require_fresh, resolve, unread
from ghostline.tools.preview import read_for_preview, requested_change, unified_diff

DIFF_IN_CONTENT = 4000
IDENTICAL = "old_string and new_string are identical; nothing to change"


class EditTool(BaseTool):
    name = "edit"
    kind: ToolKind = "edit"
    subject_key = "path"
    path_key = "path"
    description = (
        "Replace text in a file. `old_string` must match the file's current text exactly (including "
        "indentation and whitespace) and be unique in the file: include enough surrounding lines to make "
        "it so, or set `replace_all` to replace every occurrence (e.g. renaming a variable). `new_string` is "
        "the literal replacement and must differ from `old_string`. You must `read` the file in this "
        "session before editing it, and it must not have changed on disk since (read it again if it "
        "did). Do not include the line-number prefixes that `read` shows. Use `write` to create files."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path, relative to the working directory or absolute."},
            "old_string": {"type": "string", "description": "The exact text to replace."},
            "new_string": {"type": "string", "description": "The replacement text."},
            "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."},
        },
        "required": ["path", "old_string", "new_string"],
        "additionalProperties": False,
    }

    def check(self, args: dict[str, Any], ctx: ToolContext) -> str | None:
        if args["old_string"] == args["new_string"]:
            return IDENTICAL
        # an editor's buffer (ctx.files) is read when the call runs: the rule is checked then
        return unread(ctx, args["path"], "edit it") if ctx.files is None else None

    def preview(self, args: dict[str, Any], ctx: ToolContext) -> Preview | None:
        name, old, new = args["path"], args["old_string"], args["new_string"]
        before = read_for_preview(ctx.cwd / Path(name).expanduser())
        if before is None or not old or old not in before:
            return Preview("diff", requested_change(name, old, new))
        after = before.replace(old, new) if args.get("replace_all") else before.replace(old, new, 1)
        return Preview("diff", unified_diff(before, after, name))

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given: str = args["path"]
        old: str = args["old_string"]
        new: str = args["new_string"]
        replace_all = bool(args.get("replace_all", False))
        if old == new:
            raise ToolError(IDENTICAL)
        path = resolve(ctx, given, write=True)
        try:
            text = await ctx.files.read_text(path) if ctx.files is not None else None
            if text is not None:  # an editor's buffer: the applier runs on its text, the editor writes it
                result = await _edit_through(ctx, path, given, text, old, new, replace_all)
            else:
                result = await asyncio.to_thread(_edit, ctx, path, given, old, new, replace_all)
        except ToolError as exc:
            request = ctx.rewrites.edit_failed(str(path), given)
            if request is None:
                raise
            raise ToolError(f"{exc}\n\n{request}") from None
        ctx.rewrites.edit_succeeded(str(path))
        return result


def _edit(ctx: ToolContext, path: Path, given: str, old: str, new: str, replace_all: bool) -> ToolResult:
    if not path.exists():
        raise ToolError(f"file not found: {given} (use `write` to create a new file)")
    if not path.is_file():
        raise ToolError(f"{given} is not a regular file")
    require_fresh(ctx, path, given, "edit it")
    if old == "":
        raise ToolError("old_string must not be empty (use `write` to replace a whole file)")
    result = apply.apply_edit(path, old, new, replace_all)
    name = display(ctx, path)
    if not result.applied:
        raise ToolError((result.error or f"could not apply the edit ({result.rung})").replace(str(path), name))
    record(ctx, path)
    return _edited(path, name, result)


async def _edit_through(ctx: ToolContext, path: Path, given: str, text: str, old: str, new: str,
                        replace_all: bool) -> ToolResult:
    assert ctx.files is not None
    require_fresh_text(ctx, path, text, given, "edit it")
    if old == "":
        raise ToolError("old_string must not be empty (use `write` to replace a whole file)")
    name = display(ctx, path)
    result, edited = apply.edit_text(text, old, new, replace_all, path=path, display=name)
    if not result.applied:
        raise ToolError(result.error or f"could not apply the edit ({result.rung})")
    if edited is not None:
        try:
            await ctx.files.write_text(path, edited)
        except OSError as exc:
            raise ToolError(f"cannot write {given}: {exc}") from None
        changed(ctx, path, edited)
    return _edited(path, name, result)


def _edited(path: Path, name: str, result: apply.ApplyResult) -> ToolResult:
    how = "" if result.rung in ("exact", "") else f" (matched by the {result.rung} rung)"
    summary = f"Edited {name}{how}."
    diff = _relabel(result.diff, str(path), name)
    if diff:
        shown = diff if len(diff) <= DIFF_IN_CONTENT else diff[:DIFF_IN_CONTENT] + "\n[diff cut]\n"
        summary += "\n" + shown.rstrip("\n")
    return ToolResult(
        summary,
        meta={"path": str(path), "diff": diff, "rung": result.rung, "files_changed": [str(path)]},
    )


def _relabel(diff: str, abspath: str, name: str) -> str:
    """Diff headers name the file as the model knows it (relative), not by its absolute path."""
    head, sep, rest = diff.partition("\n@@")
    head = head.replace(f"a/{abspath}", f"a/{name}").replace(f"b/{abspath}", f"b/{name}")
    head = head.replace(f"--- {abspath}", f"--- {name}").replace(f"+++ {abspath}", f"+++ {name}")
    return head + sep + rest
