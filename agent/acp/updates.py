"""Loop events as ACP session updates, and a saved session replayed as the updates it would have sent.

A tool call becomes `tool_call` (kind, title, locations, raw input), its live output and its result
`tool_call_update`s (status, the output as content, a file change as `diff` content with the old and new text).
The translation knows tools only by what every event carries: kind, title, input, result meta.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from acp import helpers as h
from acp.schema import ToolCallLocation

from ghostline.agent import events as ev
from ghostline.compaction.toolcalls import tool_path

KINDS = {"read": "read", "edit": "edit", "shell": "execute", "other": "other"}
OUTPUT_SHOWN = 20000  # characters of a running command's output sent to the editor (the tail)

Update = Any  # an acp.schema session update
ReadText = Callable[[str], Awaitable["str | None"]]

PLAN_STATUSES = ("pending", "in_progress", "completed")
STOP_REASONS = {"success": "end_turn", "error_verification": "end_turn", "error_max_turns": "max_turn_requests",
                "error_budget": "max_tokens", "refusal": "refusal"}


def stop_reason(final: ev.Event | None) -> str:
    subtype = final.subtype if isinstance(final, ev.Done) else "success"
    return STOP_REASONS.get(subtype, "end_turn")


def _locations(name_input: dict[str, Any], cwd: Path, meta: dict[str, Any] | None = None) -> list[ToolCallLocation]:
    path = tool_path(name_input, meta)
    if not path:
        return []
    full = path if os.path.isabs(path) else str(cwd / path)
    return [ToolCallLocation(path=os.path.normpath(full))]


class Translator:
    """One prompt's events -> updates. `read_text(path)` gives a file's text now (editor buffer or disk), so an
    edit's diff can carry the whole old and new text."""

    def __init__(self, cwd: Path, read_text: ReadText) -> None:
        self.cwd = cwd
        self.read_text = read_text
        self._before: dict[str, tuple[str, str | None]] = {}  # call id -> (path, text before the call)
        self._output: dict[str, str] = {}

    async def updates(self, e: ev.Event) -> list[Update]:
        if isinstance(e, ev.TextDelta):
            return [h.update_agent_message_text(e.text)]
        if isinstance(e, ev.AssistantMessage):
            return [h.update_agent_thought_text(b["thinking"]) for b in e.message.get("content", [])
                    if b.get("type") == "thinking" and b.get("thinking")]
        if isinstance(e, ev.ToolCall):
            return [await self._call(e)]
        if isinstance(e, ev.ToolOutput):
            shown = (self._output.get(e.id, "") + e.text)[-OUTPUT_SHOWN:]
            self._output[e.id] = shown
            return [h.update_tool_call(e.id, status="in_progress", content=[h.tool_content(h.text_block(shown))])]
        if isinstance(e, ev.ToolResultEvent):
            return [await self._result(e), *plan(e.meta)]
        if isinstance(e, ev.ContextNote):
            return [h.update_agent_message_text(f"\n{e.text}\n")]
        return []

    async def _call(self, e: ev.ToolCall) -> Update:
        locations = _locations(e.input, self.cwd)
        if e.kind == "edit" and locations:
            self._before[e.id] = (locations[0].path, await self.read_text(locations[0].path))
        return h.start_tool_call(e.id, e.title or e.name, kind=KINDS.get(e.kind, "other"),  # type: ignore[arg-type]
                                 status="pending", locations=locations or None, raw_input=e.input)

    async def _result(self, e: ev.ToolResultEvent) -> Update:
        content: list[Any] = []
        before = self._before.pop(e.id, None)
        if before is not None and not e.is_error and e.meta.get("files_changed"):
            path, old = before
            new = await self.read_text(path)
            if new is not None:
                content.append(h.tool_diff_content(path, new, old))
        text = e.content if len(e.content) <= OUTPUT_SHOWN else "…" + e.content[-OUTPUT_SHOWN:]
        content.append(h.tool_content(h.text_block(text)))
        self._output.pop(e.id, None)
        return h.update_tool_call(e.id, status="failed" if e.is_error else "completed", content=content,
                                  raw_output={"content": e.content[:OUTPUT_SHOWN], "meta": e.meta})


def plan(meta: dict[str, Any]) -> list[Update]:
    """A todo list a tool reports (`meta["todos"]`: `{content, status}` items) as the editor's plan."""
    todos = meta.get("todos")
    if not isinstance(todos, list):
        return []
    entries = [h.plan_entry(str(t.get("content", "")), status=t.get("status") if t.get("status") in PLAN_STATUSES
                            else "pending") for t in todos if isinstance(t, dict)]
    return [h.update_plan(entries)]


def replay(records: Iterator[dict[str, Any]], cwd: Path) -> Iterator[Update]:
    """A saved session's conversation as updates (session/load): user and agent text, tool calls, results."""
    for r in records:
        kind = r.get("type")
        if kind == "user_message":
            yield h.update_user_message_text(r.get("text", ""))
        elif kind == "assistant_message":
            yield from _replay_assistant(r.get("message") or {})
        elif kind == "tool_call":
            inp = r.get("input") or {}
            yield h.start_tool_call(str(r.get("id")), str(r.get("title") or r.get("name")),
                                    kind=KINDS.get(str(r.get("kind")), "other"),  # type: ignore[arg-type]
                                    status="pending", locations=_locations(inp, cwd) or None, raw_input=inp)
        elif kind == "tool_result":
            content = [h.tool_content(h.text_block(str(r.get("content", ""))[-OUTPUT_SHOWN:]))]
            yield h.update_tool_call(str(r.get("id")), status="failed" if r.get("is_error") else "completed",
                                     content=content)
        elif kind in ("context_note", "shell_run"):
            yield h.update_agent_message_text(f"\n{r.get('text') or r.get('command', '')}\n")


def _replay_assistant(message: dict[str, Any]) -> Iterator[Update]:
    """Its text and thinking (its tool calls follow as their own `tool_call` records)."""
    for block in message.get("content", []):
        if block.get("type") == "text" and block.get("text"):
            yield h.update_agent_message_text(block["text"])
        elif block.get("type") == "thinking" and block.get("thinking"):
            yield h.update_agent_thought_text(block["thinking"])
