"""Stage 3, microcompact (above `micro_at`): observations outside the last N tool turns become one-line stubs
naming their saved full output, oldest first, until under `micro_target`.

User messages and the latest todo list stay. The latest read of a file being edited, and observations of the
recent tool turns (down to `micro_min_keep`), go only when nothing else gets the transcript under its target.
Large inputs of old calls (whole-file writes) are cleared with the old results."""

from __future__ import annotations

from typing import Any

from ghostline.compaction.blocks import Position, ToolCallIndex, stub_kind, with_blocks
from ghostline.compaction.run import RunContext
from ghostline.compaction.toolcalls import (
    EDIT,
    READ,
    describe_call,
    error_line,
    exit_code_of,
    files_changed,
    read_path,
    todos_of,
    tool_path,
)
from ghostline.compaction.transcript import Message, ToolResultBlock, ToolUseBlock

BIG_INPUT_CHARS = 1600  # a call input value longer than this is cleared with the old results

Located = tuple[int, int, Any]  # message index, block index, ToolResultBlock or ToolUseBlock


class _Cleared:
    """What the clearing pass changed."""

    def __init__(self) -> None:
        self.edits: dict[Position, Any] = {}
        self.results = 0
        self.inputs = 0
        self.kept_from = 0  # tool turns from this ordinal on are untouched


def microcompact(run: RunContext, msgs: list[Message], target_frac: float, keep: int | None = None,
                 stage: str = "microcompact") -> list[Message]:
    before = run.tokens
    keep = run.cfg.keep_tool_turns if keep is None else keep
    idx = run.index(msgs)
    old, protected, recent = _tiers(run, idx, keep)
    old = sorted(old + _big_inputs(msgs, idx, idx.n_tool_turns - keep), key=lambda t: (t[0], t[1]))
    cleared = _clear(run, (old, protected, recent), run.target_tokens(target_frac), idx)
    if not cleared.edits:
        return msgs
    out = with_blocks(msgs, cleared.edits)
    after = run.measure(out)
    detail = f"{cleared.results} old tool result(s) cleared to one-line stubs"
    if cleared.inputs:
        detail += f", {cleared.inputs} large call input(s) cleared"
    kept = min(keep, idx.n_tool_turns - cleared.kept_from)
    detail += f" (kept the last {kept} tool turn(s) verbatim)"
    run.emit(stage, before, after, detail)
    return out


def _tiers(run: RunContext, idx: ToolCallIndex, keep: int) -> tuple[list[Located], list[Located], list[Located]]:
    """The results that may be cleared, in the order they go: old ones; old latest reads of edited files; then
    results inside the last `keep` tool turns but outside the last `micro_min_keep` (a last resort)."""
    horizon = idx.n_tool_turns - keep  # tool turns with ordinal < horizon are "old"
    min_horizon = idx.n_tool_turns - min(keep, run.cfg.micro_min_keep)
    protected_reads, latest_todo = _protected(idx)
    old: list[Located] = []
    protected: list[Located] = []
    recent: list[Located] = []
    for mi, bi, b in idx.results:
        if stub_kind(b) in ("cleared", "snipped", "superseded") or b.tool_use_id == latest_todo:
            continue
        ordinal = idx.tool_turn(b.tool_use_id)
        if ordinal >= horizon:
            if ordinal < min_horizon:
                recent.append((mi, bi, b))
            continue
        (protected if b.tool_use_id in protected_reads else old).append((mi, bi, b))
    return old, protected, recent


def _protected(idx: ToolCallIndex) -> tuple[set[str], str | None]:
    """The call ids of the latest read of each file an edit-kind call was about, and of the latest todo list."""
    edited: set[str] = set()
    latest_read: dict[str, str] = {}
    latest_todo: str | None = None
    for _mi, _bi, b in idx.results:
        kind = idx.kind(b.tool_use_id)
        if kind == EDIT:
            target = tool_path(idx.input(b.tool_use_id), b.meta)
            edited.update(([target] if target else []) + files_changed(b.meta))
        elif kind == READ and not b.is_error and not stub_kind(b):
            p = read_path(b.meta)
            if p:
                latest_read[p] = b.tool_use_id
        if todos_of(b.meta) is not None:
            latest_todo = b.tool_use_id
    return {latest_read[p] for p in edited if p in latest_read}, latest_todo


def _big_inputs(msgs: list[Message], idx: ToolCallIndex, horizon: int) -> list[Located]:
    """Calls of old tool turns with a large input value."""
    found: list[Located] = []
    for mi, ordinal in idx.turn_of_msg.items():
        if ordinal >= horizon:
            continue
        for bi, u in enumerate(msgs[mi].content):
            if isinstance(u, ToolUseBlock) and any(
                    isinstance(v, str) and len(v) > BIG_INPUT_CHARS for v in u.input.values()):
                found.append((mi, bi, u))
    return found


def _clear(run: RunContext, tiers: tuple[list[Located], ...], target: int, idx: ToolCallIndex) -> _Cleared:
    """Clear tier by tier, in order, until the estimate is under `target`."""
    done = _Cleared()
    cur = run.tokens
    for tier in tiers:
        for mi, bi, b in tier:
            if cur <= target:
                break
            new = _cleared_input(b) if isinstance(b, ToolUseBlock) else clear_stub(run, b, idx)
            gain = run.counter.block_tokens(b) - run.counter.block_tokens(new)
            if gain <= 0:
                continue
            done.edits[(mi, bi)] = new
            cur -= int(gain * run.acct.factor)
            if isinstance(b, ToolUseBlock):
                done.inputs += 1
            else:
                done.results += 1
                done.kept_from = max(done.kept_from, idx.tool_turn(b.tool_use_id) + 1)
    return done


def _cleared_input(u: ToolUseBlock) -> ToolUseBlock:
    new_input = {k: (f"[cleared: {v.count(chr(10)) + 1} lines, {len(v)} chars]"
                     if isinstance(v, str) and len(v) > BIG_INPUT_CHARS else v) for k, v in u.input.items()}
    return ToolUseBlock(u.id, u.name, new_input)


def clear_stub(run: RunContext, b: ToolResultBlock, idx: ToolCallIndex) -> ToolResultBlock:
    """A one-line stand-in for a result: what was called, its status, its first error line, its saved output."""
    desc = describe_call(idx.name(b.tool_use_id), idx.input(b.tool_use_id), b.meta)
    path = b.meta.get("full_output_path")
    n_tokens = b.meta.get("original_tokens") or run.counter.count(b.content)
    if path:
        run.store.register(b.tool_use_id, path, desc)
    elif n_tokens >= run.cfg.store_min_tokens:
        path = run.store.save(b.tool_use_id, b.content, desc)
    lines = b.meta.get("original_lines") or b.content.count("\n") + 1
    code = exit_code_of(b.meta)
    status = f"exit {code}" if code is not None else ("error" if b.is_error else "ok")
    text = f"[cleared: {desc} → {status}, {lines} lines"
    if b.is_error or (code not in (None, 0)):
        err = error_line(b.content, 160)
        if err:
            text += f"; error: {err}"
    text += f"; full output at {path}]" if path else "]"
    meta = {**b.meta, "compaction": "cleared"}
    if path:
        meta["full_output_path"] = path
    return ToolResultBlock(b.tool_use_id, text, b.is_error, meta)
