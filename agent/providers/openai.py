"""OpenAI Chat Completions through the official SDK (AsyncOpenAI), streaming, with native tool calling.

Works with any OpenAI-compatible base URL (vLLM, SGLang, Ollama, llama.cpp server, LM Studio, the daemon).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from ghostline.agent.providers.base import (
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
    estimate_tokens,
    flatten_tool_blocks,
    has_tool_blocks,
    image_wire,
    new_tool_id,
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
    ToolResultBlock,
    ToolUseBlock,
)

# What `client.chat.completions` imports: loaded in the background with the SDK, off the first request's path.
FIRST_REQUEST_MODULES = ("openai.resources.chat.chat", "openai.resources.chat.completions.completions")
_FINISH = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}


def messages_to_wire(system: str, messages: list[Message], images: ImageWire | None = None) -> list[dict[str, Any]]:
    """Our transcript -> Chat Completions messages. A user message's tool results become `tool` messages
    (first, right after the assistant message that called them); its text, summaries and images follow as a user
    message. Tool messages take only text, so the images a tool returned go in that user message, each after a
    line naming its call. `images`: how the model takes images (None: as their words)."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for msg in messages:
        if msg.role == "assistant":
            wire = _assistant_to_wire(msg)
            if wire is not None:
                out.append(wire)
            continue
        out.extend(_user_to_wire(msg, images))
    return out


def _assistant_to_wire(msg: Message) -> dict[str, Any] | None:
    texts: list[str] = []
    calls = []
    for b in msg.content:
        if isinstance(b, TextBlock) and b.text:
            texts.append(b.text)
        elif isinstance(b, SummaryBlock):
            texts.append(summary_text(b))
        elif isinstance(b, ToolUseBlock):
            calls.append({"id": b.id, "type": "function",
                          "function": {"name": b.name, "arguments": json.dumps(b.input)}})
    if not texts and not calls:
        return None
    wire: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        wire["tool_calls"] = calls
    return wire


def _user_to_wire(msg: Message, images: ImageWire | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    pictures: list[dict[str, Any]] = []  # content parts: the tool results' images, then the user's
    for b in msg.content:
        if isinstance(b, ToolResultBlock):
            out.append(_tool_message(b, images))
            for image in b.images:
                part = _image_part(image, images)
                if part is not None:
                    pictures += [{"type": "text", "text": f"[image returned by tool call {b.tool_use_id}]"}, part]
        elif isinstance(b, TextBlock) and b.text:
            texts.append(b.text)
        elif isinstance(b, SummaryBlock):
            texts.append(summary_text(b))
        elif isinstance(b, ImageBlock):
            part = _image_part(b, images)
            if part is None:
                texts.append(unsent_image(b))
            else:
                pictures.append(part)
    if pictures:
        head = [{"type": "text", "text": "\n\n".join(texts)}] if texts else []
        out.append({"role": "user", "content": head + pictures})
    elif texts:
        out.append({"role": "user", "content": "\n\n".join(texts)})
    return out


def _tool_message(b: ToolResultBlock, images: ImageWire | None) -> dict[str, Any]:
    content = b.content if b.content else "(no output)"
    if b.is_error and not content.lower().startswith("error"):
        content = "Error: " + content
    unsent = [i for i in b.images if images is None or images.payload(i) is None]
    if unsent:
        content += "".join(f"\n{unsent_image(i)}" for i in unsent)
    return {"role": "tool", "tool_call_id": b.tool_use_id, "content": content}


def _image_part(block: ImageBlock, images: ImageWire | None) -> dict[str, Any] | None:
    payload = images.payload(block) if images is not None else None
    if payload is None:
        return None
    media_type, data = payload
    return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}


def tools_to_wire(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
        }
        for t in tools
    ]


class OpenAIProvider(RetryingSDKProvider):
    name = "openai"
    protocol = "native"

    def __init__(
        self,
        model: str,
        *,
        info: Any = None,
        api_key: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        client: Any = None,
    ):
        self._sdk_loader = load_sdk("openai", "AsyncOpenAI", preload=FIRST_REQUEST_MODULES,
                                    then=start_tls_context)
        self.model = model
        self.info = info  # agent.models.ModelInfo, from make_provider
        self.retry = retry or RetryPolicy()
        self._client = client
        self._client_kwargs: dict[str, Any] = {"max_retries": 0, "timeout": timeout or 600.0}
        if api_key:
            self._client_kwargs["api_key"] = api_key
        if base_url:
            self._client_kwargs["base_url"] = base_url
        self.max_tokens_param = (info.max_tokens_param if info is not None else None) or "max_tokens"

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
            "messages": messages_to_wire(system, messages, image_wire(self.info)),
            "stream": True,
            "stream_options": {"include_usage": True},
            self.max_tokens_param: max_output_tokens,
        }
        if tools:
            params["tools"] = tools_to_wire(tools)
        if stop:
            params["stop"] = list(stop)[:4]
        return params

    async def _attempt(self, params: dict[str, Any]) -> AsyncIterator[StreamItem]:
        stream = await self.client.chat.completions.create(**params)
        text_parts: list[str] = []
        calls: list[dict[str, Any]] = []  # in order of first appearance
        by_index: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: TurnUsage | None = None
        try:
            async for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices or []:
                    if choice.index not in (0, None):
                        continue
                    delta = choice.delta
                    if delta is not None:
                        if delta.content:
                            text_parts.append(delta.content)
                            yield StreamText(delta.content)
                        for tc in delta.tool_calls or []:
                            _accumulate_call(tc, by_index, calls)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        finally:
            await stream.close()
        if finish is None:
            raise IncompleteStream("the stream ended before a finish_reason")

        content: list[Any] = []
        text = "".join(text_parts)
        if text:
            content.append(TextBlock(text))
        for c in calls:
            if not c["name"]:
                continue
            content.append(tool_use_from_json(c["id"] or new_tool_id(), c["name"], c["args"]))
        message = Message(role="assistant", content=content)
        if usage is None:  # a server without stream_options support: estimate so budgets still work
            usage = TurnUsage(
                input_tokens=estimate_tokens(
                    json.dumps(params.get("messages", [])) + json.dumps(params.get("tools", []))
                ),
                output_tokens=estimate_tokens(text + "".join(c["args"] for c in calls)),
            )
        reason = "tool_use" if message.tool_uses else _FINISH.get(finish, "end_turn")
        yield TurnComplete(message=message, usage=usage, stop_reason=reason)

    def _classify(self, exc: Exception) -> Failure:
        sdk = self._sdk
        where = f"openai-compatible server ({self.client.base_url})"
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            body = exc.body
            code = getattr(exc, "code", None)
            msg = _message(body) or exc.message or str(exc)
            if status in (400, 413, 422) or code == "context_length_exceeded":
                ctx = context_length_error(msg, code, body)
                if ctx is not None:
                    raise ctx from exc
            if status == 429 and code == "insufficient_quota":
                raise ProviderError(f"{where}: out of quota (429 insufficient_quota): {msg}") from exc
            advice = should_retry_header(exc.response.headers)
            retryable = status in (408, 409, 429) or status >= 500
            if advice is True or (advice is None and retryable):
                return Failure(f"{status} {code or 'error'}: {msg}", parse_retry_after(exc.response.headers))
            if status == 401:
                raise ProviderError(
                    f"{where} rejected the API key (401): check OPENAI_API_KEY ({msg})"
                ) from exc
            if status == 404:
                raise ProviderError(
                    f"{where} says not found (404): check the model name '{self.model}' and the base URL "
                    f"(OpenAI-compatible servers usually end in /v1) ({msg})"
                ) from exc
            raise ProviderError(f"{where} request failed ({status}): {msg}") from exc
        if isinstance(exc, sdk.APIConnectionError) or is_transport_error(exc):
            return transport_failure(exc, self.client.base_url)
        if isinstance(exc, sdk.APIError):  # an error object inside the stream
            msg = _message(exc.body) or exc.message or str(exc)
            ctx = context_length_error(msg, getattr(exc, "code", None), exc.body)
            if ctx is not None:
                raise ctx from exc
            return Failure(f"stream error: {msg}")
        raise ProviderError(f"{where}: unexpected {type(exc).__name__}: {exc}") from exc


def _accumulate_call(tc: Any, by_index: dict[int, dict[str, Any]], calls: list[dict[str, Any]]) -> None:
    idx = tc.index if tc.index is not None else len(calls)
    fn = tc.function
    cur = by_index.get(idx)
    # Some servers send every complete call with index 0: a new id at a used index starts a new call.
    if cur is None or (tc.id and cur["id"] and tc.id != cur["id"]):
        cur = {"id": tc.id or "", "name": "", "args": ""}
        by_index[idx] = cur
        calls.append(cur)
    if tc.id and not cur["id"]:
        cur["id"] = tc.id
    if fn is not None:
        # The name comes whole in the first delta; a server that streams it in pieces gets it joined, one that
        # repeats it on every delta gets it once.
        if fn.name and fn.name != cur["name"]:
            cur["name"] += fn.name
        if fn.arguments:
            cur["args"] += fn.arguments


def _usage(u: Any) -> TurnUsage:
    prompt = getattr(u, "prompt_tokens", 0) or 0
    completion = getattr(u, "completion_tokens", 0) or 0
    details = getattr(u, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    cached = min(cached, prompt)
    return TurnUsage(input_tokens=prompt - cached, output_tokens=completion, cache_read_input_tokens=cached)


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return body["message"]
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
    if isinstance(body, str):
        return body or None
    return None
