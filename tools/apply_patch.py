"""The `apply_patch` tool: Codex's `*** Begin Patch` envelope, the edit tool of models trained on it (the GPT-5
family; the model table says which tool a model gets), through the same applier ladder as `edit`.

One call may add, update, delete and move several files; it applies whole or not at all. Every path it touches is in
its `Action`, so the policy judges each, and each passes the sandbox's path guard before anything is written. Results
report what `edit`'s do: the diff (every file's), the files changed, and refusals in the ladder's words (the closest
region, the candidates), with the whole-file fallback after repeated failures on a file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ghostline import apply
from ghostline.sandbox.policy import Action
from ghostline.tools.base import BaseTool, Preview, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.files import changed as remember_text
from ghostline.tools.paths import display, record, resolve
from ghostline.tools.preview import clip

DIFF_IN_CONTENT = 4000
MAX_DIFF_BYTES = 2_000_000  # files larger than this are changed, but not diffed for the result
GRAMMAR = """*** Begin Patch
*** Update File: path/to/file.py
@@ def greet():
-    print("hi")
+    print("hello")
*** Add File: path/to/new.py
+print("new")
*** Delete File: path/to/old.py
*** End Patch"""


class ApplyPatchTool(BaseTool):
    name = "apply_patch"
    kind: ToolKind = "edit"
    description = (
        "Edit files with a patch. `input` is the whole patch, from `*** Begin Patch` to `*** End Patch`. For each "
        "file: `*** Add File: <path>` then its lines, each starting with `+`; `*** Delete File: <path>`; or "
        "`*** Update File: <path>` (optionally followed by `*** Move to: <new path>`), then chunks: an `@@` line "
        "(optionally naming the class or function the chunk is in: `@@ def main():`), then the chunk's lines, "
        "each starting with ` ` (context), `-` (removed) or `+` (added). Give three lines of context above and "
        "below each change, and more `@@` lines when that is not unique. Paths are relative to the working "
        "directory. A patch applies whole or not at all; a refusal says which part failed and why.\n\nExample:\n"
        + GRAMMAR
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The entire patch, from *** Begin Patch to "
                                                                  "*** End Patch."}},
        "required": ["input"],
        "additionalProperties": False,
    }

    def action(self, args: dict[str, Any]) -> Action:
        return Action(self.name, self.kind, paths=tuple(patch_paths(str(args.get("input") or ""))))

    def title(self, args: dict[str, Any]) -> str:
        paths = patch_paths(str(args.get("input") or ""))
        if not paths:
            return self.name
        more = f" (+{len(paths) - 2} more)" if len(paths) > 2 else ""
        return f"{self.name} {', '.join(paths[:2])}{more}"

    def preview(self, args: dict[str, Any], ctx: ToolContext) -> Preview | None:
        outcome = _apply(args["input"], ctx, dry_run=True)
        return Preview("diff", clip(outcome.diff)) if outcome.diff else None

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if ctx.files is not None:  # an editor's buffers: the patch applies to their text, the editor writes it
            outcome = await _apply_through(args["input"], ctx)
        else:
            outcome = await asyncio.to_thread(_apply, args["input"], ctx, dry_run=False)
        refused = [r for r in outcome.results if not r.applied]
        if refused or not outcome.results:
            raise ToolError(_refusal(outcome, refused, ctx))
        for path in outcome.changed:
            ctx.rewrites.edit_succeeded(str(path))
            if ctx.files is None:  # through an editor, its writes were remembered as they were made
                _remember(ctx, path)
        return _applied(outcome, ctx)


def patch_paths(text: str) -> list[str]:
    """Every path a patch touches (moves: both ends), as written; none when it does not parse."""
    try:
        _, ops = apply.parse(text, "patch")
    except apply.ParseError:
        return []
    paths: list[str] = []
    for op in ops:
        for p in (op.path, op.move_to):
            if p and p.strip() not in paths:
                paths.append(p.strip())
    return paths


@dataclasses.dataclass
class _Plan:
    """A parsed patch whose paths passed the sandbox's guard, rebased on their common root."""

    fmt: str
    ops: list[apply.FileOp]
    root: Path
    targets: list[Path]  # every file it touches, absolute, in patch order (a move: both ends)


@dataclasses.dataclass
class _Outcome:
    results: list[apply.ApplyResult]
    root: Path
    changed: list[Path]  # the targets whose text changed
    diff: str


def _plan(text: str, ctx: ToolContext) -> _Plan:
    try:
        fmt, ops = apply.parse(text, "patch")
    except apply.ParseError as exc:
        raise ToolError(f"the patch could not be read ({exc}). Write it like this:\n{GRAMMAR}") from None
    if not ops:
        raise ToolError(f"the patch names no file. Write it like this:\n{GRAMMAR}")
    targets = {p: resolve(ctx, p, write=True) for op in ops for p in (op.path, op.move_to) if p}
    root = Path(os.path.commonpath([str(ctx.cwd), *map(str, targets.values())]))
    if not root.is_dir():
        root = root.parent
    ops = [dataclasses.replace(op, path=_under(root, targets[op.path]),
                               move_to=_under(root, targets[op.move_to]) if op.move_to else None) for op in ops]
    return _Plan(fmt, ops, root, list(dict.fromkeys(targets.values())))


def _apply(text: str, ctx: ToolContext, *, dry_run: bool) -> _Outcome:
    """Apply (or try) the patch on the disk."""
    plan = _plan(text, ctx)
    before = {p: _text(p) for p in plan.targets}
    results = apply.apply_ops(plan.fmt, plan.ops, plan.root, dry_run=dry_run)
    if dry_run:
        return _Outcome(results, plan.root, [], "".join(r.diff for r in results if r.applied))
    return _outcome(results, plan.root, before, {p: _text(p) for p in plan.targets}, ctx)


async def _apply_through(text: str, ctx: ToolContext) -> _Outcome:
    """Apply the patch where an editor keeps the files (its unsaved buffers are the truth): on a copy of the files
    as the editor has them, then every changed file written back through the editor (a deleted one removed)."""
    assert ctx.files is not None
    plan = _plan(text, ctx)
    current = {p: await ctx.files.read_text(p) for p in plan.targets}
    with tempfile.TemporaryDirectory(prefix="ghostline-patch-") as tmp:
        mirror = Path(tmp)
        for path in plan.targets:
            copy = mirror / _under(plan.root, path)
            copy.parent.mkdir(parents=True, exist_ok=True)
            buffer = current[path]
            if buffer is not None:
                copy.write_bytes(buffer.encode("utf-8"))
            elif path.is_file():
                shutil.copyfile(path, copy)
        before = {p: _text(mirror / _under(plan.root, p)) for p in plan.targets}
        results = apply.apply_ops(plan.fmt, plan.ops, mirror)
        after = {p: _text(mirror / _under(plan.root, p)) for p in plan.targets}
        written = {p: _raw(mirror / _under(plan.root, p)) for p in plan.targets}
    outcome = _outcome(results, plan.root, before, after, ctx)
    if all(r.applied for r in results):
        for path in outcome.changed:
            await _write_through(ctx, path, written[path])
    return outcome


def _raw(path: Path) -> str | None:
    """A file's text as it is (line endings kept), None when it does not exist."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace") if path.is_file() else None
    except OSError:
        return None


async def _write_through(ctx: ToolContext, path: Path, text: str | None) -> None:
    assert ctx.files is not None
    try:
        if text is None:
            path.unlink(missing_ok=True)
            _remember(ctx, path)
        else:
            await ctx.files.write_text(path, text)
            remember_text(ctx, path, text)
    except OSError as exc:
        raise ToolError(f"cannot write {display(ctx, path)}: {exc}") from None


def _outcome(results: list[apply.ApplyResult], root: Path, before: dict[Path, str | None],
             after: dict[Path, str | None], ctx: ToolContext) -> _Outcome:
    changed = [p for p in before if after[p] != before[p]]
    return _Outcome(results, root, changed, "".join(_diff(p, before[p], after[p], ctx) for p in changed))


def _under(root: Path, path: Path) -> str:
    return os.path.relpath(path, root)


def _text(path: Path) -> str | None:
    """A file's text (newlines normalised) for the diff; None when it does not exist or is too large."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_DIFF_BYTES:
            return None if not path.exists() else f"<{path.stat().st_size} bytes>"
        return path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
    except OSError:
        return None


def _diff(path: Path, before: str | None, after: str | None, ctx: ToolContext) -> str:
    name = display(ctx, path)
    diff = apply.make_diff(before or "", after or "", name)
    if before is None:
        diff = diff.replace(f"--- a/{name}", "--- /dev/null", 1)
    if after is None:
        diff = diff.replace(f"+++ b/{name}", "+++ /dev/null", 1)
    return diff


def _remember(ctx: ToolContext, path: Path) -> None:
    """After the patch: what the file now holds is what the model knows (it may patch it again); followers hear
    of every change, a deletion too."""
    if path.exists():
        record(ctx, path)
        return
    ctx.file_state.forget(path)
    if ctx.on_file_changed is not None:
        ctx.on_file_changed(path)


def _refusal(outcome: _Outcome, refused: list[apply.ApplyResult], ctx: ToolContext) -> str:
    """The refusals in the ladder's words (names relative to the working directory), nothing applied, and the
    whole-file fallback for a file that keeps failing."""
    if not outcome.results:
        return "the patch changes nothing"
    lines = ["the patch was not applied (a patch applies whole or not at all):"]
    for r in refused:
        name = display(ctx, outcome.root / r.path)
        error = (r.error or f"{r.path}: {r.rung}").replace(r.path, name, 1)
        lines.append("- " + error.replace("old_string was not found", "the chunk's lines were not found"))
    failed = {outcome.root / r.path for r in refused if r.rung != "not-applied"}
    for path in sorted(failed):
        request = ctx.rewrites.edit_failed(str(path), display(ctx, path))
        if request is not None:
            lines.append(request)
    return "\n".join(lines)


def _applied(outcome: _Outcome, ctx: ToolContext) -> ToolResult:
    names = [display(ctx, p) for p in outcome.changed]
    actions = {r.action for r in outcome.results}
    summary = f"Applied the patch: {', '.join(names) or 'no file changed'}."
    if outcome.diff:
        shown = outcome.diff if len(outcome.diff) <= DIFF_IN_CONTENT else outcome.diff[:DIFF_IN_CONTENT] + "\n[diff cut]\n"
        summary += "\n" + shown.rstrip("\n")
    meta: dict[str, Any] = {"path": str(outcome.changed[0]) if outcome.changed else "",
                            "paths": [str(p) for p in outcome.changed], "diff": outcome.diff,
                            "files_changed": [str(p) for p in outcome.changed],
                            "action": actions.pop() if len(actions) == 1 else "patch"}
    return ToolResult(summary, meta=meta)
