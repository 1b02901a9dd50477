"""Anthropic Messages API through the official SDK (AsyncAnthropic), streaming, with native tool calling.

Prompt caching: cache_control breakpoints mark the stable prefix (the last tool definition, the system prompt)
and the two latest user messages, so every turn reads the previous turn's prefix from the cache (4 breakpoints,
the API's maximum).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from ghostline.agent.providers.base import (
    ContextLengthError,
    ProviderError,
    StreamItem,
    StreamText,
    ToolSpec,
    TurnComplete,
    TurnUsage,
)
from ghostline.agent.providers.common import (
    ImageWire,
    context_length_error,
    flatten_tool_blocks,
    has_tool_blocks,
    image_wire,
    summary_text,
    tool_use_from_json,
    unsent_image,
)
from ghostline.agent.providers.retry import (
    Failure,
    IncompleteStream,
    RetryPolicy,
    is_transport_error,
    parse_retry_after,
    should_retry_header,
    transport_failure,
)
from ghostline.agent.providers.sdk_import import load_sdk
from ghostline.agent.providers.sdk_provider import RetryingSDKProvider, start_tls_context
from ghostline.compaction.transcript import (
    ImageBlock,
    Message,
    SummaryBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

_EPHEMERAL = {"type": "ephemeral"}
# What `client.messages` imports: loaded in the background with the SDK, off the first request's path.
FIRST_REQUEST_MODULES = ("anthropic.resources.messages.messages",)
_RETRYABLE_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
_USER_ORDER = {"tool_result": 0, "image": 1}


def _image_to_wire(block: ImageBlock, images: ImageWire | None) -> dict[str, Any]:
    """An image content block (base64 source), or its words when the model is not sent it."""
    payload = images.payload(block) if images is not None else None
    if payload is None:
        return {"type": "text", "text": unsent_image(block)}
    media_type, data = payload
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _tool_result_to_wire(block: ToolResultBlock, images: ImageWire | None) -> dict[str, Any]:
    """A tool_result; the images a tool returned go inside it, after its text (the API takes both there)."""
    text = block.content if block.content else "(no output)"
    wire: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_use_id, "content": text}
    if block.images:
        wire["content"] = [{"type": "text", "text": text}] + [_image_to_wire(i, images) for i in block.images]
    if block.is_error:
        wire["is_error"] = True
    return wire


def _block_to_wire(block: Any, images: ImageWire | None = None) -> dict[str, Any] | None:
    if isinstance(block, ImageBlock):
        return _image_to_wire(block, images)
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text} if block.text else None  # the API refuses empty text
    if isinstance(block, SummaryBlock):
        return {"type": "text", "text": summary_text(block)}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if isinstance(block, ToolResultBlock):
        return _tool_result_to_wire(block, images)
    if isinstance(block, ThinkingBlock):
        # Returned verbatim: the API checks the signature of reasoning that precedes a tool call.
        if block.data:
            return {"type": "redacted_thinking", "data": block.data}
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    raise TypeError(f"unknown block {block!r}")


def messages_to_wire(messages: list[Message], images: ImageWire | None = None) -> list[dict[str, Any]]:
    """Our transcript -> Anthropic messages: roles alternate (same-role neighbours merge), tool_result blocks
    come first in their user message and images before text (as the API advises), empty messages are dropped,
    the first message is a user message. `images`: how the model takes images (None: as their words)."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        blocks = [w for w in (_block_to_wire(b, images) for b in msg.content) if w is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == msg.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": msg.role, "content": blocks})
    for m in out:
        if m["role"] == "user":
            m["content"].sort(key=lambda b: _USER_ORDER.get(b["type"], 2))  # stable
    if out and out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": "(conversation continues)"}]})
    return out


def tools_to_wire(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools]


def add_cache_breakpoints(params: dict[str, Any]) -> None:
    """cache_control on the last tool, the system prompt, and the last block of the two latest user messages."""
    tools = params.get("tools")
    if tools:
        tools[-1] = {**tools[-1], "cache_control": _EPHEMERAL}
    system = params.get("system")
    if system:
        system[-1] = {**system[-1], "cache_control": _EPHEMERAL}
    marked = 0
    for m in reversed(params["messages"]):
        if marked == 2:
            break
        if m["role"] != "user" or not m["content"]:
            continue
        m["content"][-1] = {**m["content"][-1], "cache_control": _EPHEMERAL}
        marked += 1


class AnthropicProvider(RetryingSDKProvider):
    name = "anthropic"
    protocol = "native"

    def __init__(
        self,
        model: str,
        *,
        info: Any = None,
        api_key: str | None = None,
        auth_token: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        prompt_caching: bool | None = None,
        client: Any = None,
    ):
        self._sdk_loader = load_sdk("anthropic", "AsyncAnthropic", preload=FIRST_REQUEST_MODULES,
                                    then=start_tls_context)
        self.model = model
        self.info = info  # agent.models.ModelInfo, from make_provider
        self.retry = retry or RetryPolicy()
        if prompt_caching is None:
            prompt_caching = info.prompt_caching if info is not None else True
        self.prompt_caching = prompt_caching
        self._client = client
        self._client_kwargs: dict[str, Any] = {"max_retries": 0, "timeout": timeout or 600.0}
        if api_key:
            self._client_kwargs["api_key"] = api_key
        elif auth_token:
            self._client_kwargs["auth_token"] = auth_token
        if base_url:
            self._client_kwargs["base_url"] = base_url

    def _client_options(self, client_class: type) -> dict[str, Any]:
        """No OpenTelemetry spans when nothing in the environment sets OpenTelemetry up: they would go to its
        no-op provider, and making them imports ~0.15 s of the SDK's types at the first request. With any
        OTEL_* or ANTHROPIC_OPEN_TELEMETRY* variable set, the SDK decides as it would."""
        if any(k.startswith(("OTEL_", "ANTHROPIC_OPEN_TELEMETRY")) for k in os.environ):
            return {}
        try:
            accepts = "open_telemetry" in inspect.signature(client_class).parameters
        except (TypeError, ValueError):
            accepts = False
        return {"open_telemetry": {"traces": {"enabled": False}}} if accepts else {}

    # -- request -------------------------------------------------------------------------------------------
    def request_params(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        max_output_tokens: int,
        stop: list[str] | None = None,
    ) -> dict[str, Any]:
        if not tools and has_tool_blocks(messages):
            messages = flatten_tool_blocks(messages)
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_output_tokens,
            "messages": messages_to_wire(messages, image_wire(self.info)),
        }
        if system:
            params["system"] = [{"type": "text", "text": system}]
        if tools:
            params["tools"] = tools_to_wire(tools)
        if stop:
            params["stop_sequences"] = list(stop)
        if self.prompt_caching:
            add_cache_breakpoints(params)
        return params

    # -- one attempt ---------------------------------------------------------------------------------------
    async def _attempt(self, params: dict[str, Any]) -> AsyncIterator[StreamItem]:
        stream = await self.client.messages.create(**params, stream=True)
        turn = _StreamedTurn()
        try:
            async for ev in stream:
                text = turn.add(ev)
                if text:
                    yield StreamText(text)
        finally:
            await stream.close()
        if not turn.done:
            raise IncompleteStream("the stream ended before message_stop")
        message = turn.message()
        yield TurnComplete(message=message, usage=turn.usage,
                           stop_reason=_stop_reason(turn.stop_reason, bool(message.tool_uses)))

    def _classify(self, exc: Exception) -> Failure:
        sdk = self._sdk
        where = f"anthropic ({self.client.base_url})"
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            etype = _error_type(exc.body)
            msg = getattr(exc, "api_message", None) or _error_message(exc.body) or str(exc)
            if status == 413 or etype == "request_too_large":
                raise context_length_error(msg) or _ctx(msg) from exc
            if status == 400 or etype == "invalid_request_error":
                ctx = context_length_error(msg)
                if ctx is not None:
                    raise ctx from exc
            advice = should_retry_header(exc.response.headers)
            retryable = status in (408, 409, 429) or status >= 500 or etype in _RETRYABLE_TYPES
            if advice is True or (advice is None and retryable):
                return Failure(f"{status} {etype or 'error'}: {msg}", parse_retry_after(exc.response.headers))
            if status == 401:
                raise ProviderError(
                    f"{where} rejected the credentials (401): check ANTHROPIC_API_KEY ({msg})"
                ) from exc
            if status == 403:
                raise ProviderError(f"{where} refused the request (403 permission denied): {msg}") from exc
            if status == 404:
                raise ProviderError(
                    f"{where} says not found (404): check the model name '{self.model}' and the base URL ({msg})"
                ) from exc
            raise ProviderError(f"{where} request failed ({status} {etype or ''}): {msg}") from exc
        if isinstance(exc, sdk.APIConnectionError) or is_transport_error(exc):
            return transport_failure(exc, self.client.base_url)
        if isinstance(exc, sdk.APIError):  # an error event in the stream without a status
            msg = _error_message(exc.body) or str(exc)
            ctx = context_length_error(msg)
            if ctx is not None:
                raise ctx from exc
            return Failure(f"stream error: {msg}")
        raise ProviderError(f"{where}: unexpected {type(exc).__name__}: {exc}") from exc


class _StreamedTurn:
    """The Messages API's stream events folded into one assistant message, its usage and its stop reason."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.usage = TurnUsage()
        self.stop_reason: str | None = None
        self.done = False

    def add(self, ev: Any) -> str:
        """Take one event; the text it streams to the user ("" for none)."""
        t = ev.type
        if t == "message_start":
            _apply_usage(self.usage, ev.message.usage)
        elif t == "content_block_start":
            return self._start(ev.index, ev.content_block)
        elif t == "content_block_delta":
            return self._delta(self.blocks.get(ev.index), ev.delta)
        elif t == "message_delta":
            self.stop_reason = ev.delta.stop_reason or self.stop_reason
            _apply_usage(self.usage, ev.usage)
        elif t == "message_stop":
            self.done = True
        return ""

    def _start(self, index: int, cb: Any) -> str:
        if cb.type == "text":
            self.blocks[index] = {"type": "text", "text": cb.text or ""}
            return cb.text or ""
        if cb.type == "thinking":
            self.blocks[index] = {"type": "thinking", "thinking": cb.thinking or "",
                                  "signature": getattr(cb, "signature", "") or ""}
        elif cb.type == "redacted_thinking":
            self.blocks[index] = {"type": "redacted_thinking", "data": cb.data}
        elif cb.type == "tool_use":
            self.blocks[index] = {"type": "tool_use", "id": cb.id, "name": cb.name, "json": "", "input": cb.input}
        return ""

    @staticmethod
    def _delta(block: dict[str, Any] | None, d: Any) -> str:
        if block is None:
            return ""  # a kind of block we do not keep
        kind = block["type"]
        if d.type == "text_delta" and kind == "text":
            block["text"] += d.text
            return d.text or ""
        if d.type == "input_json_delta" and kind == "tool_use":
            block["json"] += d.partial_json
        elif d.type == "thinking_delta" and kind == "thinking":
            block["thinking"] += d.thinking
        elif d.type == "signature_delta" and kind == "thinking":
            block["signature"] += d.signature
        return ""

    def message(self) -> Message:
        content: list[Any] = []
        for _, b in sorted(self.blocks.items()):
            if b["type"] == "text":
                if b["text"]:
                    content.append(TextBlock(b["text"]))
            elif b["type"] == "thinking":
                content.append(ThinkingBlock(thinking=b["thinking"], signature=b["signature"]))
            elif b["type"] == "redacted_thinking":
                content.append(ThinkingBlock(data=b["data"]))
            elif b["json"].strip():
                content.append(tool_use_from_json(b["id"], b["name"], b["json"]))
            else:
                content.append(ToolUseBlock(id=b["id"], name=b["name"], input=dict(b["input"] or {})))
        return Message(role="assistant", content=content)


def _ctx(msg: str) -> Exception:
    return ContextLengthError(f"context window exceeded: {msg}")


def _error_type(body: Any) -> str | None:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("type"), str):
            return err["type"]
    return None


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
    if isinstance(body, str):
        try:
            return _error_message(json.loads(body))
        except ValueError:
            return body or None
    return None


def _apply_usage(usage: TurnUsage, u: Any) -> None:
    """message_start carries the input side; message_delta carries cumulative output (and, in newer API
    versions, the input side again). Present fields overwrite."""
    if u is None:
        return
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        v = getattr(u, name, None)
        if isinstance(v, int):
            setattr(usage, name, v)


def _stop_reason(reason: str | None, has_tools: bool) -> str:
    if has_tools:
        return "tool_use"
    if reason in ("end_turn", "max_tokens", "stop_sequence", "tool_use"):
        return reason
    if reason == "model_context_window_exceeded":
        return "max_tokens"
    return "end_turn"
