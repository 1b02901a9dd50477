"""The text ReAct protocol, for models served without native tool calling.

The model sees the tools described in its system prompt and answers in a strict text format::

    Thought: what to do next
    Action: {"tool": "read", "input": {"path": "a.py"}}

The harness replies with ``Observation: ...`` in the next user message. A reply without an Action is the final
answer. This wrapper runs any native provider *without* tools and translates both ways, so the loop sees the same
ToolUseBlock / ToolResultBlock transcript as with native tool calling.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from ghostline.agent.providers.base import StreamItem, StreamText, ToolSpec, TurnComplete
from ghostline.agent.providers.common import new_tool_id, summary_text
from ghostline.compaction.transcript import (
    ImageBlock,
    Message,
    SummaryBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

OBSERVATION = "Observation:"
STOP_SEQUENCES = ["\nObservation:"]

_ACTION = re.compile(r"^[ \t>*_#]*Action[ \t]*(?:\d+[ \t]*)?[*_]*:", re.I | re.M)
_FENCE_OPEN = re.compile(r"\A\s*```[a-zA-Z0-9_-]*[ \t]*\n?")
_FENCED_JSON = re.compile(r"```(?:json)?[ \t]*\n(\{.*?\})\s*```", re.S)
_OBS_LINE = re.compile(r"^[ \t]*Observation[ \t]*:", re.I | re.M)
_TOOL_NAME = re.compile(r'"(?:tool|name|action)"\s*:\s*"([^"]+)"')


def react_system_prompt(system: str, tools: list[ToolSpec]) -> str:
    lines = [system.rstrip(), "", "# Tools", ""] if system else ["# Tools", ""]
    lines.append("You can use these tools. Each takes a JSON object as input, described by its JSON schema.")
    lines.append("")
    for t in tools:
        lines.append(f"## {t.name}")
        if t.description:
            lines.append(t.description.strip())
        lines.append("Input schema: " + json.dumps(t.input_schema, sort_keys=True))
        lines.append("")
    lines += [
        "# How to reply",
        "",
        "To use a tool, reply in exactly this format and then stop:",
        "",
        "Thought: <your reasoning about what to do next>",
        'Action: {"tool": "<tool name>", "input": {<the tool input as JSON>}}',
        "",
        "The Action line holds one JSON object on a single line. You may write several Action lines to use "
        "several tools at once. Do not write an Observation yourself: the result of each action comes back to "
        "you in the next message, starting with 'Observation:'.",
        "When the task is done, reply with your final answer and no Action line.",
    ]
    return "\n".join(lines)


def _action_text(block: ToolUseBlock) -> str:
    return "Action: " + json.dumps(
        {"tool": block.name, "input": block.input}, ensure_ascii=False
    )


def _observation_text(block: ToolResultBlock, name: str | None, several: bool) -> str:
    label = OBSERVATION if not several else f"Observation ({name or block.tool_use_id}):"
    body = block.content if block.content else "(no output)"
    if block.is_error and not body.lower().startswith("error"):
        body = "ERROR: " + body
    return f"{label} {body}"


def to_text_transcript(messages: list[Message]) -> list[Message]:
    """Tool calls become Action lines in the assistant's text; tool results become Observation text."""
    names: dict[str, str] = {}
    out: list[Message] = []
    for msg in messages:
        parts: list[str] = []
        images: list[ImageBlock] = []  # passed on: the wrapped provider sends them or says they are there
        results = [b for b in msg.content if isinstance(b, ToolResultBlock)]
        for b in msg.content:
            if isinstance(b, ImageBlock):
                images.append(b)
            elif isinstance(b, TextBlock) and b.text:
                parts.append(b.text.rstrip())
            elif isinstance(b, SummaryBlock):
                parts.append(summary_text(b))
            elif isinstance(b, ToolUseBlock):
                names[b.id] = b.name
                parts.append(_action_text(b))
            elif isinstance(b, ToolResultBlock):
                parts.append(_observation_text(b, names.get(b.tool_use_id), len(results) > 1))
                images.extend(b.images)
        text = "\n".join(p for p in parts if p)
        if text or images:
            out.append(Message(role=msg.role, content=([TextBlock(text)] if text else []) + images))
    return out


def _extract_json_object(s: str) -> tuple[Any, str] | None:
    """The first JSON object at the start of `s` (after whitespace / a code-fence opener): (value, raw)."""
    m = _FENCE_OPEN.match(s)
    body = s[m.end() :] if m else s
    start = body.find("{")
    if start < 0 or body[:start].strip():
        return None
    try:
        value, end = json.JSONDecoder().raw_decode(body, start)
    except ValueError:
        return None
    return value, body[start:end]


def _action_to_block(value: Any, raw: str) -> ToolUseBlock:
    if isinstance(value, dict):
        name = value.get("tool") or value.get("name") or value.get("action")
        inp = value.get(
            "input", value.get("arguments", value.get("action_input", value.get("parameters", {})))
        )
        if isinstance(inp, str):  # some models double-encode the input
            try:
                inp = json.loads(inp)
            except ValueError:
                pass
        if isinstance(name, str) and name and isinstance(inp, dict):
            return ToolUseBlock(id=new_tool_id("react"), name=name, input=inp)
    return _bad_action(raw)


def _bad_action(raw: str) -> ToolUseBlock:
    m = _TOOL_NAME.search(raw)
    return ToolUseBlock(
        id=new_tool_id("react"),
        name=m.group(1) if m else "invalid_action",
        input={},
        raw_arguments=raw.strip(),
    )


def parse_reply(text: str) -> tuple[str, list[ToolUseBlock]]:
    """Split a model reply into (text before the first action, tool calls). Handles code fences, trailing text,
    several actions and a hallucinated Observation (everything from it on is dropped)."""
    obs = _OBS_LINE.search(text)
    if obs:
        text = text[: obs.start()]
    actions = list(_ACTION.finditer(text))
    calls: list[ToolUseBlock] = []
    if actions:
        prose = text[: actions[0].start()].rstrip()
        for i, m in enumerate(actions):
            end = actions[i + 1].start() if i + 1 < len(actions) else len(text)
            segment = text[m.end() : end]
            found = _extract_json_object(segment)
            if found is None:
                calls.append(_bad_action(segment.strip().strip("`").strip() or "(empty)"))
            else:
                calls.append(_action_to_block(*found))
        return prose, calls
    # No Action label: accept a fenced JSON block that is clearly a tool call.
    for m in _FENCED_JSON.finditer(text):
        try:
            value = json.loads(m.group(1))
        except ValueError:
            continue
        if isinstance(value, dict) and ("tool" in value) and ("input" in value):
            calls.append(_action_to_block(value, m.group(1)))
    if calls:
        first = _FENCED_JSON.search(text)
        return text[: first.start() if first else len(text)].rstrip(), calls
    return text.strip(), []


class _ActionFilter:
    """Streams the prose of a reply and holds back everything from the first Action line on."""

    def __init__(self) -> None:
        self.buf = ""
        self.emitted = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.buf += piece
        m = _ACTION.search(self.buf) or _OBS_LINE.search(self.buf)
        if m:
            self.stopped = True
            out = self.buf[self.emitted : m.start()]
            self.emitted = m.start()
            return out
        # Keep back the last line: it may be the beginning of an "Action:" label.
        safe = self.buf.rfind("\n") + 1
        if safe <= self.emitted:
            return ""
        out = self.buf[self.emitted : safe]
        self.emitted = safe
        return out

    def flush(self) -> str:
        if self.stopped:
            return ""
        out = self.buf[self.emitted :]
        self.emitted = len(self.buf)
        return out


class ReactProvider:
    """Wraps a native provider (OpenAI-compatible or Anthropic) and speaks the text ReAct protocol through it."""

    protocol = "react"

    def __init__(self, inner: Any):
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.info = getattr(inner, "info", None)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def stream_turn(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        max_output_tokens: int,
    ) -> AsyncIterator[StreamItem]:
        sys_prompt = react_system_prompt(system, tools) if tools else system
        wire = to_text_transcript(messages)
        filt = _ActionFilter()
        async for item in self.inner.stream_turn(
            sys_prompt, wire, [], max_output_tokens, stop=STOP_SEQUENCES
        ):
            if isinstance(item, StreamText):
                out = filt.feed(item.text)
                if out:
                    yield StreamText(out)
            elif isinstance(item, TurnComplete):
                rest = filt.flush()
                prose, calls = parse_reply(item.message.text) if tools else (item.message.text, [])
                if rest and not calls:
                    yield StreamText(rest)
                content: list[Any] = [TextBlock(prose)] if prose else []
                content.extend(calls)
                reason = "tool_use" if calls else item.stop_reason
                if reason == "stop_sequence":
                    reason = "end_turn"
                yield TurnComplete(
                    message=Message(role="assistant", content=content), usage=item.usage, stop_reason=reason
                )
            else:  # StreamRetry: start filtering afresh
                filt = _ActionFilter()
                yield item
