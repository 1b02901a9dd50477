"""The transcript as the stages see it: where each tool call and result sits, and copies with blocks replaced.

Stages never mutate the caller's messages: they collect edits keyed by (message index, block index) and build
a copy with `with_blocks`, sharing every message they did not change.
"""

from __future__ import annotations

import json
from typing import Any

from ghostline.compaction.toolcalls import KindOf, every_tool_other
from ghostline.compaction.transcript import Message, ToolResultBlock, ToolUseBlock

# `meta["compaction"]` of a result a stage already replaced by a stub
STUB_KINDS = ("budget", "snipped", "superseded", "cleared")

Position = tuple[int, int]  # (message index, block index)


def validate_pairs(messages: list[Message]) -> list[str]:
    """Problems with tool_use/tool_result pairing (empty when valid): every tool_use is answered in the next
    message, and every tool_result answers a tool_use of the previous message."""
    problems = []
    for i, m in enumerate(messages):
        if m.role == "assistant":
            ids = [u.id for u in m.tool_uses]
            if ids:
                nxt = messages[i + 1] if i + 1 < len(messages) else None
                got = {r.tool_use_id for r in nxt.tool_results} if nxt is not None and nxt.role == "user" else set()
                missing = [x for x in ids if x not in got]
                if missing and nxt is not None:
                    problems.append(f"message {i}: tool_use without result: {missing}")
        else:
            prev = messages[i - 1] if i > 0 else None
            uses = {u.id for u in prev.tool_uses} if prev is not None and prev.role == "assistant" else set()
            orphans = [r.tool_use_id for r in m.tool_results if r.tool_use_id not in uses]
            if orphans:
                problems.append(f"message {i}: tool_result without tool_use: {orphans}")
        if not m.content:
            problems.append(f"message {i}: empty")
    return problems


def stub_kind(b: ToolResultBlock) -> str | None:
    k = b.meta.get("compaction") if b.meta else None
    return k if k in STUB_KINDS else None


def fingerprint(messages: list[Message]) -> int:
    parts = []
    for m in messages:
        for b in m.content:
            if isinstance(b, ToolUseBlock):
                parts.append((m.role, "u", b.id, b.name, json.dumps(b.input, sort_keys=True, default=str)))
            elif isinstance(b, ToolResultBlock):
                parts.append((m.role, "r", b.tool_use_id, b.content, b.is_error))
            else:
                parts.append((m.role, b.type, getattr(b, "text", "")))
    return hash(tuple(parts))


class ToolCallIndex:
    """Where each tool call and result sits in a transcript."""

    def __init__(self, msgs: list[Message], kind_of: KindOf = every_tool_other):
        self._kind_of = kind_of
        self.uses: dict[str, tuple[int, ToolUseBlock]] = {}
        self.results: list[tuple[int, int, ToolResultBlock]] = []
        self.turn_of_msg: dict[int, int] = {}  # assistant message index with tool uses -> tool-turn ordinal
        n = 0
        for mi, m in enumerate(msgs):
            if m.role == "assistant":
                us = [b for b in m.content if isinstance(b, ToolUseBlock)]
                if us:
                    self.turn_of_msg[mi] = n
                    n += 1
                for b in us:
                    self.uses[b.id] = (mi, b)
            else:
                for bi, b in enumerate(m.content):
                    if isinstance(b, ToolResultBlock):
                        self.results.append((mi, bi, b))
        self.n_tool_turns = n

    def name(self, call_id: str) -> str:
        u = self.uses.get(call_id)
        return u[1].name if u else "tool"

    def input(self, call_id: str) -> dict[str, Any]:
        u = self.uses.get(call_id)
        return u[1].input if u else {}

    def kind(self, call_id: str) -> str | None:
        return self._kind_of(self.name(call_id))

    def tool_turn(self, call_id: str) -> int:
        u = self.uses.get(call_id)
        return self.turn_of_msg.get(u[0], -1) if u else -1


def with_blocks(msgs: list[Message], edits: dict[Position, Any]) -> list[Message]:
    """A copy of `msgs` with blocks replaced (value a block) or removed (value None); other messages are shared."""
    by_msg: dict[int, dict[int, Any]] = {}
    for (mi, bi), v in edits.items():
        by_msg.setdefault(mi, {})[bi] = v
    out = list(msgs)
    for mi, repl in by_msg.items():
        content = []
        for bi, b in enumerate(msgs[mi].content):
            if bi in repl:
                if repl[bi] is not None:
                    content.append(repl[bi])
            else:
                content.append(b)
        out[mi] = Message(msgs[mi].role, content)
    return [m for m in out if m.content]


def merge_adjacent_assistants(msgs: list[Message]) -> list[Message]:
    out: list[Message] = []
    for m in msgs:
        if out and m.role == "assistant" and out[-1].role == "assistant":
            out[-1] = Message("assistant", list(out[-1].content) + list(m.content))
        else:
            out.append(m)
    return out
