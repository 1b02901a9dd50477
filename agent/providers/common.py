"""Helpers shared by the wire-format translators."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from ghostline.agent.providers.base import ContextLengthError
from ghostline.compaction.transcript import (
    Message,
    SummaryBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)


def summary_text(block: SummaryBlock) -> str:
    return f"<conversation-summary>\n{block.text}\n</conversation-summary>"


def new_tool_id(prefix: str = "call") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def tool_use_from_json(call_id: str, name: str, raw: str | None) -> ToolUseBlock:
    """A tool call from its streamed JSON arguments. Text that is not a JSON object is kept as `raw_arguments`
    with an empty input: the gate answers it with an error result, and every server accepts `{}` back."""
    if raw is None or not raw.strip():
        return ToolUseBlock(call_id, name, {})
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        return ToolUseBlock(call_id, name, {}, raw_arguments=raw)
    return ToolUseBlock(call_id, name, value)


_LIMIT_PATTERNS = [
    re.compile(r"prompt is too long:\s*\d+\s*tokens\s*>\s*(\d+)\s*maximum", re.I),  # Anthropic
    re.compile(r"exceed context limit:\s*\d+\s*\+\s*\d+\s*>\s*(\d+)", re.I),  # Anthropic (input + max_tokens)
    re.compile(r"maximum context length is\s*(\d+)\s*tokens", re.I),  # OpenAI, vLLM, SGLang
    re.compile(r"context length of only\s*(\d+)\s*tokens", re.I),  # LM Studio
    re.compile(r"context (?:window|size|length)[^0-9]{0,40}?(\d{3,})\s*tokens", re.I),
]
_CONTEXT_WORDS = re.compile(
    r"prompt is too long|context[ _]length|context window|context size|exceeds? (?:the )?(?:available )?context|"
    r"too many tokens|maximum context",
    re.I,
)


def context_length_error(
    message: str, code: str | None = None, body: Any = None
) -> ContextLengthError | None:
    """A ContextLengthError (with the real limit when the message reveals it) if this error is about the context
    window, else None."""
    limit: int | None = None
    for pat in _LIMIT_PATTERNS:
        m = pat.search(message or "")
        if m:
            limit = int(m.group(1))
            break
    if isinstance(body, dict):  # llama.cpp server: {"type": "exceed_context_size_error", "n_ctx": 4096, ...}
        n_ctx = body.get("n_ctx")
        if limit is None and isinstance(n_ctx, int):
            limit = n_ctx
        if body.get("type") == "exceed_context_size_error":
            code = code or "exceed_context_size_error"
    is_ctx = (
        limit is not None
        or code in ("context_length_exceeded", "exceed_context_size_error", "string_above_max_length")
        or bool(_CONTEXT_WORDS.search(message or ""))
    )
    if not is_ctx:
        return None
    return ContextLengthError(f"context window exceeded: {message}", limit=limit)


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters per token) for servers that report no usage."""
    return (len(text) + 3) // 4


def has_tool_blocks(messages: list[Message]) -> bool:
    return any(isinstance(b, (ToolUseBlock, ToolResultBlock)) for m in messages for b in m.content)


def flatten_tool_blocks(messages: list[Message]) -> list[Message]:
    """Tool calls and results as plain text, for a request that offers no tools (e.g. a summarising call):
    the APIs refuse tool_use/tool_result blocks when no tools are defined."""
    names: dict[str, str] = {}
    out: list[Message] = []
    for m in messages:
        blocks: list[Any] = []
        for b in m.content:
            if isinstance(b, ToolUseBlock):
                names[b.id] = b.name
                args = json.dumps(b.input, ensure_ascii=False)
                blocks.append(TextBlock(f"[tool call {b.name} {args}]"))
            elif isinstance(b, ToolResultBlock):
                label = "error from" if b.is_error else "result of"
                blocks.append(TextBlock(f"[{label} {names.get(b.tool_use_id, 'tool')}]\n{b.content}"))
            elif isinstance(b, ThinkingBlock):
                continue  # signed reasoning is only valid inside its own tool-use exchange
            else:
                blocks.append(b)
        out.append(Message(role=m.role, content=blocks))
    return out
