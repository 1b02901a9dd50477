"""Helpers shared by the wire-format translators."""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ghostline.agent.providers.base import ContextLengthError
from ghostline.compaction.transcript import (
    ImageBlock,
    Message,
    SummaryBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)


@dataclass(frozen=True)
class ImageWire:
    """Images go to this model as images (up to `max_bytes` each); providers build one from the model table."""

    max_bytes: int

    def payload(self, block: ImageBlock) -> tuple[str, str] | None:
        """(media type, base64 data) to send, or None when the image cannot be sent (its kept file is gone or
        over this model's limit): its words (`block.as_text()`) stand in."""
        if block.data:
            return (block.media_type, block.data) if len(block.data) * 3 // 4 <= self.max_bytes else None
        try:
            st = os.stat(block.path)
        except OSError:
            return None
        if st.st_size > self.max_bytes:
            return None
        data = _encoded(block.path, st.st_size, st.st_mtime_ns)
        return (block.media_type, data) if data is not None else None


def image_wire(info: Any) -> ImageWire | None:
    """How a model with table entry `info` takes images; None: it takes none (images go as their words)."""
    if info is None or not getattr(info, "images", False):
        return None
    return ImageWire(int(getattr(info, "max_image_bytes", 0) or 3_750_000))


@functools.lru_cache(maxsize=32)
def _encoded(path: str, size: int, mtime_ns: int) -> str | None:
    """A kept image's base64, read once per version of the file (every request re-sends it)."""
    try:
        with open(path, "rb") as fh:
            return base64.b64encode(fh.read()).decode("ascii")
    except OSError:
        return None


def unsent_image(block: ImageBlock) -> str:
    """What the model reads instead of an image it is not sent."""
    return f"{block.as_text()} (not shown: this model is not sent this image)"


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
                blocks.extend(b.images)
            elif isinstance(b, ThinkingBlock):
                continue  # signed reasoning is only valid inside its own tool-use exchange
            else:
                blocks.append(b)
        out.append(Message(role=m.role, content=blocks))
    return out
