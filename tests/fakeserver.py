"""A protocol-faithful fake model server for tests and benchmarks.

It speaks the Anthropic Messages API (``POST /v1/messages``) and OpenAI Chat Completions
(``POST /v1/chat/completions``) over real HTTP on 127.0.0.1 (an ephemeral port, a background thread), streaming
(the real SSE event sequences, chunked transfer encoding) and not. The real SDKs talk to it unchanged::

    from tests.fakeserver import FakeModelServer, reply, overloaded

    with FakeModelServer([overloaded(retry_after="2"), reply(text="hi", tool_calls=[("read", {"path": "a.py"})])]) as srv:
        AsyncAnthropic(base_url=srv.anthropic_base_url, api_key="k")      # or OpenAI(base_url=srv.openai_base_url)
        ...
        srv.requests[-1].body["messages"]

The script is a list of replies consumed in order, or a callable ``(request_json, provider) -> Reply`` where
provider is "anthropic" or "openai" (a callable may also return a str, taken as reply text). Faults: a status
error (529/429/500 with retry-after), a stream cut mid tool-call JSON (the connection is closed), a stream
that ends properly but early (no message_stop / finish_reason), a context-length error (each provider's real error body), an error event inside the stream.

Requests are validated like the real APIs do it (roles, tool_use/tool_result pairing, required fields, images: base64
of a format the API takes that matches its media type, Anthropic's 5 MB, OpenAI's images only in user messages); a bad
request gets the real 400 error and is recorded in ``srv.errors``, as is a request after the script ran out.

Usage, unless scripted, is computed from the request size (about 4 characters a token), with prompt caching
simulated: Anthropic caches the prefix up to each cache_control breakpoint (from 1024 tokens, 2048 for Haiku
models, as the API does); OpenAI caches the longest common
prefix (of whole messages) seen before, from 1024 tokens, in steps of 128.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# ----------------------------------------------------------------------------------------------------------
# Script items


@dataclass
class Fault:
    kind: str  # "status" | "cut" | "truncate" | "context_length" | "stream_error"
    status: int = 500
    retry_after: str | None = None  # sent as the retry-after header, verbatim (seconds or an HTTP date)
    retry_after_ms: str | None = None
    error_type: str | None = None  # Anthropic error.type / OpenAI error.code
    message: str | None = None
    tokens: int = 0  # context_length: the request's size
    limit: int = 0  # context_length: the window


@dataclass
class Reply:
    text: str = ""
    # (name, input) pairs; input is a dict, or a str sent verbatim as the arguments (e.g. malformed JSON).
    # A third element, if given, is the tool call id.
    tool_calls: list[tuple[Any, ...]] = field(default_factory=list)
    usage: dict[str, int] | None = (
        None  # input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens
    )
    stop_reason: str | None = None  # Anthropic vocabulary; default tool_use / end_turn
    fault: Fault | None = None
    chunk_size: int = 7  # characters per text / JSON delta
    delay_s: float = 0.0  # pause before the response (benchmarks: simulated time to first token)
    chunk_delay_s: float = 0.0  # pause between streamed events (benchmarks: simulated decode speed)
    thinking: str = ""  # Anthropic only: a signed thinking block before the text (adaptive-thinking models)
    # Hold the response until this is set (at most `wait_timeout` s): a test proves two requests are in flight at
    # once by holding each until the other has arrived (the script runs under a lock, so it cannot wait itself).
    wait_for: threading.Event | None = None
    wait_timeout: float = 10.0


def reply(
    text: str = "",
    tool_calls: Iterable[tuple[Any, ...]] = (),
    usage: dict[str, int] | None = None,
    stop_reason: str | None = None,
    chunk_size: int = 7,
    delay_s: float = 0.0,
    chunk_delay_s: float = 0.0,
    thinking: str = "",
    wait_for: threading.Event | None = None,
) -> Reply:
    return Reply(
        text=text,
        tool_calls=list(tool_calls),
        usage=usage,
        stop_reason=stop_reason,
        chunk_size=chunk_size,
        delay_s=delay_s,
        chunk_delay_s=chunk_delay_s,
        thinking=thinking,
        wait_for=wait_for,
    )


def status_error(
    status: int,
    retry_after: str | float | None = None,
    retry_after_ms: str | float | None = None,
    message: str | None = None,
    error_type: str | None = None,
) -> Reply:
    return Reply(
        fault=Fault(
            "status",
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            retry_after_ms=None if retry_after_ms is None else str(retry_after_ms),
            message=message,
            error_type=error_type,
        )
    )


def overloaded(retry_after: str | float | None = None) -> Reply:
    """529 overloaded_error (Anthropic's; an OpenAI-compatible client sees a 529 server error)."""
    return status_error(529, retry_after)


def rate_limited(retry_after: str | float | None = "1", retry_after_ms: str | float | None = None) -> Reply:
    return status_error(429, retry_after, retry_after_ms)


def server_error(status: int = 500) -> Reply:
    return status_error(status)


def cut_stream(
    text: str = "", tool_calls: Iterable[tuple[Any, ...]] = (("read", {"path": "a.py"}),)
) -> Reply:
    """Stream the reply, then close the connection in the middle of the first tool call's JSON arguments
    (in the middle of the text when there are no tool calls)."""
    r = reply(text=text, tool_calls=tool_calls)
    r.fault = Fault("cut")
    return r


def truncated_stream(
    text: str = "", tool_calls: Iterable[tuple[Any, ...]] = (("read", {"path": "a.py"}),)
) -> Reply:
    """Like cut_stream, but the body ends properly (the last chunk is sent) at the same point: the SSE stream
    stops short of message_stop (OpenAI: of a finish_reason and [DONE])."""
    r = reply(text=text, tool_calls=tool_calls)
    r.fault = Fault("truncate")
    return r


def context_length(tokens: int = 215_000, limit: int = 200_000) -> Reply:
    return Reply(fault=Fault("context_length", status=400, tokens=tokens, limit=limit))


def stream_error(text: str = "") -> Reply:
    """Start streaming, then send an error inside the stream (Anthropic: an `error` event with
    overloaded_error; OpenAI: a data chunk with an `error` object)."""
    r = reply(text=text)
    r.fault = Fault("stream_error")
    return r


def thinking_signature(thinking: str) -> str:
    """The fake's signature of a thinking block (the real API's is opaque; this one is checkable)."""
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


Script = list[Any] | Callable[[dict[str, Any], str], Any]


@dataclass
class RecordedRequest:
    provider: str  # "anthropic" | "openai"
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]


# ----------------------------------------------------------------------------------------------------------
# Token estimation and prompt-cache simulation


def _tok(obj: Any) -> int:
    s = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return max(1, (len(s) + 3) // 4)


def _strip_cc(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_cc(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [_strip_cc(v) for v in obj]
    return obj


class _PromptCache:
    def __init__(self) -> None:
        self.anthropic: set[str] = set()
        self.openai: set[str] = set()
        self.lock = threading.Lock()

    def anthropic_usage(self, body: dict[str, Any]) -> tuple[int, int, int]:
        """(uncached input, cache read, cache write) for a Messages request: the prefix order is tools, system,
        messages; each element marked with cache_control is a breakpoint."""
        min_tokens = 2048 if "haiku" in str(body.get("model", "")) else 1024
        elements: list[tuple[Any, bool]] = []
        for t in body.get("tools") or []:
            elements.append((t, "cache_control" in t))
        system = body.get("system")
        if isinstance(system, str):
            elements.append((system, False))
        elif isinstance(system, list):
            for b in system:
                elements.append((b, isinstance(b, dict) and "cache_control" in b))
        for m in body.get("messages") or []:
            content = m.get("content")
            if isinstance(content, str):
                elements.append(({"role": m.get("role"), "text": content}, False))
                continue
            for b in content or []:
                elements.append(
                    ({"role": m.get("role"), "block": b}, isinstance(b, dict) and "cache_control" in b)
                )
        h = hashlib.sha256()
        total = 0
        breakpoints: list[tuple[str, int]] = []
        for el, is_bp in elements:
            h.update(json.dumps(_strip_cc(el), sort_keys=True).encode())
            total += _tok(_strip_cc(el))
            if is_bp and total >= min_tokens:  # shorter prefixes are not cacheable
                breakpoints.append((h.hexdigest(), total))
        with self.lock:
            read = 0
            for digest, tokens in reversed(breakpoints):
                if digest in self.anthropic:
                    read = tokens
                    break
            write = (breakpoints[-1][1] - read) if breakpoints else 0
            write = max(0, write)
            self.anthropic.update(d for d, _ in breakpoints)
        # the tokens that open the assistant's turn come after the last breakpoint: never cached (the real API
        # reports a few uncached input tokens even when everything else is read from the cache)
        return max(0, total - read - write) + 3, read, write

    def openai_usage(self, body: dict[str, Any]) -> tuple[int, int]:
        """(prompt tokens, cached tokens): the longest whole-message prefix seen before, >= 1024, in 128s."""
        h = hashlib.sha256()
        h.update(json.dumps(body.get("tools") or [], sort_keys=True).encode())
        total = _tok(body.get("tools")) if body.get("tools") else 0
        prefixes: list[tuple[str, int]] = []
        for m in body.get("messages") or []:
            h.update(json.dumps(m, sort_keys=True).encode())
            total += _tok(m)
            prefixes.append((h.hexdigest(), total))
        with self.lock:
            cached = 0
            for digest, tokens in reversed(prefixes):
                if digest in self.openai:
                    cached = tokens
                    break
            self.openai.update(d for d, _ in prefixes)
        cached = 0 if cached < 1024 else cached - cached % 128
        return max(total, 1), min(cached, total)


# ----------------------------------------------------------------------------------------------------------
# Validation (the checks the real APIs make that our translators could get wrong)


def _validate_anthropic(body: dict[str, Any]) -> str | None:
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    msgs = body["messages"]
    if not isinstance(msgs, list) or not msgs:
        return "messages: at least one message is required"
    tools = {t.get("name") for t in body.get("tools") or []}
    n_bp = sum(1 for t in body.get("tools") or [] if "cache_control" in t)
    sys_ = body.get("system")
    if isinstance(sys_, list):
        n_bp += sum(1 for b in sys_ if "cache_control" in b)
    prev_role = None
    pending: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        if role == prev_role:
            return f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row'
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks and not (i == len(msgs) - 1 and role == "assistant"):
            return f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
        ids_here = []
        seen_other = False
        for j, b in enumerate(blocks or []):
            n_bp += 1 if "cache_control" in b else 0
            t = b.get("type")
            if t == "text":
                if not b.get("text"):
                    return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
                seen_other = True
            elif t == "tool_use":
                if role != "assistant":
                    return f"messages.{i}.content.{j}: tool_use blocks can only be in assistant messages"
                if tools and b.get("name") not in tools:
                    pass  # the API accepts calls to tools no longer offered
                if not isinstance(b.get("input"), dict):
                    return f"messages.{i}.content.{j}.tool_use.input: Input should be a valid dictionary"
                ids_here.append(b.get("id"))
            elif t == "image":
                if role != "user":
                    return f"messages.{i}.content.{j}: image blocks can only be in user messages"
                err = _anthropic_image_error(b, f"messages.{i}.content.{j}")
                if err:
                    return err
                seen_other = True
            elif t == "tool_result":
                if role != "user":
                    return f"messages.{i}.content.{j}: tool_result blocks can only be in user messages"
                err = _tool_result_content_error(b.get("content"), f"messages.{i}.content.{j}.content")
                if err:
                    return err
                if seen_other:
                    return (
                        f"messages.{i}: tool_result blocks must come first in the user message content, "
                        "before any other block"
                    )
                if b.get("tool_use_id") not in pending:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )
                pending.discard(b.get("tool_use_id"))
            elif t == "thinking":
                if role != "assistant":
                    return f"messages.{i}.content.{j}: thinking blocks can only be in assistant messages"
                if b.get("signature") != thinking_signature(b.get("thinking", "")):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                seen_other = True
            else:
                seen_other = True
        if role == "user" and pending:
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(sorted(pending))}. Each `tool_use` block must have a corresponding `tool_result` "
                "block in the next message."
            )
        pending = set(ids_here) if role == "assistant" else set()
        prev_role = role
    if not body.get("tools") and any(
        isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result")
        for m in msgs
        if isinstance(m.get("content"), list)
        for b in m["content"]
    ):
        return "Requests which include `tool_use` or `tool_result` blocks must define tools."
    if n_bp > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {n_bp}."
    return None


_IMAGE_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
                "image/gif": (b"GIF87a", b"GIF89a"), "image/webp": (b"RIFF",)}
ANTHROPIC_IMAGE_MAX_BASE64 = 5 * 1024 * 1024


def _image_bytes_error(media_type: Any, data: Any, where: str) -> str | None:
    """The APIs' checks of one base64 image: a format they take, valid base64, bytes that are that format."""
    if media_type not in _IMAGE_MAGIC:
        return f"{where}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
    try:
        raw = base64.b64decode(data or "", validate=True)
    except (binascii.Error, ValueError):
        return f"{where}.source.data: invalid base64 data"
    if not raw.startswith(_IMAGE_MAGIC[media_type]):
        return f"{where}: Image does not match the provided media type {media_type}"
    return None


def _anthropic_image_error(b: dict[str, Any], where: str) -> str | None:
    src = b.get("source") or {}
    if src.get("type") != "base64":
        return f"{where}.source.type: Input should be 'base64' (this fake takes only base64 images)"
    if len(src.get("data") or "") > ANTHROPIC_IMAGE_MAX_BASE64:
        return f"{where}.image.source.base64: image exceeds 5 MB maximum"
    return _image_bytes_error(src.get("media_type"), src.get("data"), where)


def _tool_result_content_error(content: Any, where: str) -> str | None:
    if isinstance(content, str) or content is None:
        return None
    for k, part in enumerate(content):
        if part.get("type") == "image":
            err = _anthropic_image_error(part, f"{where}.{k}")
            if err:
                return err
        elif part.get("type") == "text":
            if not part.get("text"):
                return f"{where}.{k}.text: text content blocks must be non-empty"
        else:
            return f"{where}.{k}.type: Input should be 'text' or 'image'"
    return None


def _openai_content_error(m: dict[str, Any], i: int) -> str | None:
    content = m.get("content")
    if not isinstance(content, list):
        return None
    for part in content:
        t = part.get("type")
        if t == "image_url":
            if m.get("role") != "user":
                return (f"Invalid 'messages[{i}]'. Image URLs are only allowed for messages with role 'user', but "
                        f"this message with role '{m.get('role')}' contains an image URL.")
            url = (part.get("image_url") or {}).get("url") or ""
            head, _, data = url.partition(",")
            if not head.startswith("data:") or not head.endswith(";base64"):
                return f"Invalid 'messages[{i}]': this fake takes only base64 data URLs"
            err = _image_bytes_error(head[5:-7], data, f"messages[{i}].content.image_url")
            if err:
                return "Invalid image_url: " + err
        elif t != "text":
            return f"Invalid value: '{t}'. Supported values are: 'text' and 'image_url'."
    return None


def _validate_openai(body: dict[str, Any]) -> str | None:
    for key in ("model", "messages"):
        if key not in body:
            return f"Missing required parameter: '{key}'."
    msgs = body["messages"]
    if not isinstance(msgs, list) or not msgs:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1."
    if "max_tokens" in body and "max_completion_tokens" in body:
        return "max_tokens and max_completion_tokens cannot both be set"
    pending: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'tool'."
        err = _openai_content_error(m, i)
        if err:
            return err
        if role == "tool":
            if m.get("tool_call_id") not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    "with 'tool_calls'."
                )
            pending.discard(m.get("tool_call_id"))
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: "
                f"{', '.join(sorted(pending))}"
            )
        if role == "assistant":
            calls = m.get("tool_calls") or []
            if m.get("content") is None and not calls:
                return f"Invalid value for 'content': expected a string, got null. (messages.[{i}])"
            for c in calls:
                args = c.get("function", {}).get("arguments")
                if not isinstance(args, str):
                    return f"Invalid type for 'messages[{i}].tool_calls[].function.arguments': expected a string."
            pending = {c.get("id") for c in calls}
        elif m.get("content") is None:
            return f"Invalid value for 'content': expected a string, got null. (messages.[{i}])"
    if pending:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(pending))}"
        )
    return None


# ----------------------------------------------------------------------------------------------------------
# The server


_ANTHROPIC_ERROR = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ANTHROPIC_MSG = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}
_OPENAI_CODE = {429: "rate_limit_exceeded"}
_OPENAI_MSG = {
    429: "Rate limit reached for requests. Please try again shortly.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later",
}
_BREAKS = ("cut", "truncate")  # faults that stop a streamed body early
_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "stop_sequence": "stop"}


class FakeModelServer:
    def __init__(
        self, script: Script | None = None, *, api_key: str | None = None, model_name: str | None = None
    ):
        self.script: Script = script if script is not None else []
        self.api_key = api_key  # when set, requests must carry it (x-api-key / Authorization: Bearer)
        self.model_name = model_name
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # invalid requests and requests after the script ran out
        self.cache = _PromptCache()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> FakeModelServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-model-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def anthropic_base_url(self) -> str:  # the Anthropic SDK appends /v1/messages
        return self.base_url

    @property
    def openai_base_url(self) -> str:  # the OpenAI SDK appends /chat/completions
        return self.base_url + "/v1"

    # -- script --------------------------------------------------------------------------------------------
    def enqueue(self, *replies: Any) -> None:
        if callable(self.script):
            raise TypeError("the script is a callable")
        self.script.extend(replies)

    @property
    def remaining(self) -> int:
        return 0 if callable(self.script) else len(self.script)

    def bodies(self, provider: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if provider is None or r.provider == provider]

    def _next_reply(self, body: dict[str, Any], provider: str) -> Reply | None:
        with self._lock:
            if callable(self.script):
                try:
                    item = self.script(body, provider)
                except Exception as exc:  # a broken script must fail the test, not look like a network error
                    self.errors.append(f"fake server: the script raised {type(exc).__name__}: {exc}")
                    return None
                if item is None:
                    return None
            elif self.script:
                item = self.script.pop(0)
            else:
                return None
        if isinstance(item, str):
            return reply(text=item)
        if isinstance(item, dict):
            return Reply(**item)
        return item


class _Handler(BaseHTTPRequestHandler):
    fake: FakeModelServer
    _provider: str = "anthropic"
    _chunk_delay: float = 0.0
    protocol_version = "HTTP/1.1"
    server_version = "fake-model-server/1"
    # TCP_NODELAY, as API servers stream: otherwise an event written after an unacknowledged one waits for the
    # client's delayed ACK (40 ms on Linux), and a benchmark would count that wait as the agent's.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # silence
        pass

    # -- plumbing ----------------------------------------------------------------------------------------
    def _read_json(self) -> dict[str, Any] | None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _send_reply_json(self, obj: Any, headers: dict[str, str], fault: Fault | None) -> None:
        """A non-streaming 200 reply; a "cut" or "truncate" fault sends half the body and drops the connection, a
        "stream_error" fault becomes a 500."""
        if fault is not None and fault.kind == "stream_error":
            self._status_fault(self._provider, Fault("status", status=500))
            return
        if fault is None or fault.kind not in _BREAKS:
            self._send_json(200, obj, headers)
            return
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self._cut()

    def _start_stream(self, headers: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        """Drop the connection without finishing the chunked body: the client sees an incomplete read."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _break_off(self, f: Fault) -> None:
        """Stop a streamed body early: "truncate" ends it properly, "cut" drops the connection."""
        if f.kind == "truncate":
            self._end_stream()
        else:
            self._cut()

    def _sse(self, event: str | None, data: Any) -> None:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        prefix = f"event: {event}\n" if event else ""
        if self._chunk_delay:
            time.sleep(self._chunk_delay)
        self._chunk(f"{prefix}data: {payload}\n\n".encode())

    # -- routing ---------------------------------------------------------------------------------------------
    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/messages") and not path.endswith("/chat/messages"):
            provider = "anthropic"
        elif path.endswith("/chat/completions"):
            provider = "openai"
        else:
            self._send_json(404, {"error": {"message": f"Not found: {self.path}", "type": "not_found_error"}})
            return
        self._provider = provider
        body = self._read_json()
        headers = {k.lower(): v for k, v in self.headers.items()}
        if body is None:
            self._error(provider, 400, "invalid_request_error", "The request body is not valid JSON.")
            return
        fake = self.fake
        with fake._lock:
            fake.requests.append(RecordedRequest(provider, self.path, headers, body))
        if fake.api_key is not None:
            sent = headers.get("x-api-key") if provider == "anthropic" else None
            if sent is None and headers.get("authorization", "").lower().startswith("bearer "):
                sent = headers["authorization"][7:]
            if sent != fake.api_key:
                self._error(
                    provider,
                    401,
                    "authentication_error",
                    "invalid x-api-key" if provider == "anthropic" else "Incorrect API key provided.",
                    code="invalid_api_key",
                )
                return
        problem = _validate_anthropic(body) if provider == "anthropic" else _validate_openai(body)
        if problem:
            fake.errors.append(f"{provider}: {problem}")
            self._error(provider, 400, "invalid_request_error", problem)
            return
        n_errors = len(fake.errors)
        rep = fake._next_reply(body, provider)
        if rep is None:
            if len(fake.errors) == n_errors:
                fake.errors.append("fake server: the script has no reply left for this request")
            self._error(provider, 400, "invalid_request_error", fake.errors[-1])
            return
        if rep.wait_for is not None:
            rep.wait_for.wait(rep.wait_timeout)
        if rep.delay_s:
            time.sleep(rep.delay_s)
        self._chunk_delay = rep.chunk_delay_s
        f = rep.fault
        if f is not None and f.kind == "status":
            self._status_fault(provider, f)
            return
        if f is not None and f.kind == "context_length":
            self._context_fault(provider, f)
            return
        stream = bool(body.get("stream"))
        if provider == "anthropic":
            self._anthropic(body, rep, stream)
        else:
            self._openai(body, rep, stream)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": self.fake.model_name or "fake-model", "object": "model", "owned_by": "fake"}
                    ],
                },
            )
            return
        self._send_json(404, {"error": {"message": "Not found"}})

    # -- errors --------------------------------------------------------------------------------------------
    def _error(
        self,
        provider: str,
        status: int,
        etype: str,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if provider == "anthropic":
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": etype, "message": message},
                "request_id": "req_" + uuid.uuid4().hex[:24],
            }
            hdrs = {"request-id": body["request_id"], **(headers or {})}
        else:
            err = {"message": message, "type": etype, "param": None, "code": code, **(extra or {})}
            body = {"error": err}
            hdrs = {"x-request-id": "req_" + uuid.uuid4().hex[:24], **(headers or {})}
        self._send_json(status, body, hdrs)

    def _status_fault(self, provider: str, f: Fault) -> None:
        headers: dict[str, str] = {}
        if f.retry_after is not None:
            headers["retry-after"] = f.retry_after
        if f.retry_after_ms is not None:
            headers["retry-after-ms"] = f.retry_after_ms
        if provider == "anthropic":
            etype = f.error_type or _ANTHROPIC_ERROR.get(f.status, "api_error")
            msg = f.message or _ANTHROPIC_MSG.get(f.status, "Internal server error")
            self._error(provider, f.status, etype, msg, headers=headers)
        else:
            etype = (
                "requests"
                if f.status == 429
                else ("server_error" if f.status >= 500 else "invalid_request_error")
            )
            msg = f.message or _OPENAI_MSG.get(
                f.status, "The server had an error while processing your request."
            )
            self._error(
                provider,
                f.status,
                etype,
                msg,
                code=f.error_type or _OPENAI_CODE.get(f.status),
                headers=headers,
            )

    def _context_fault(self, provider: str, f: Fault) -> None:
        if provider == "anthropic":
            self._error(
                provider,
                400,
                "invalid_request_error",
                f"prompt is too long: {f.tokens} tokens > {f.limit} maximum",
            )
        else:
            self._error(
                provider,
                400,
                "invalid_request_error",
                f"This model's maximum context length is {f.limit} tokens. However, your messages "
                f"resulted in {f.tokens} tokens. Please reduce the length of the messages.",
                code="context_length_exceeded",
                extra={"param": "messages"},
            )

    # -- replies ---------------------------------------------------------------------------------------------
    @staticmethod
    def _calls(rep: Reply, prefix: str) -> list[tuple[str, str, str]]:
        """(id, name, arguments JSON text) for each scripted tool call."""
        out = []
        for i, call in enumerate(rep.tool_calls):
            name, inp = call[0], call[1]
            cid = call[2] if len(call) > 2 else f"{prefix}{uuid.uuid4().hex[:20]}{i}"
            args = inp if isinstance(inp, str) else json.dumps(inp)
            out.append((cid, name, args))
        return out

    @staticmethod
    def _pieces(s: str, n: int) -> list[str]:
        n = max(1, n)
        return [s[i : i + n] for i in range(0, len(s), n)]

    def _usage(self, body: dict[str, Any], rep: Reply, provider: str, output_text: str) -> dict[str, int]:
        scripted = rep.usage or {}
        out_tokens = scripted.get("output_tokens", _tok(output_text) if output_text else 1)
        if provider == "anthropic":
            inp, read, write = self.fake.cache.anthropic_usage(body)
            return {
                "input_tokens": scripted.get("input_tokens", inp),
                "cache_creation_input_tokens": scripted.get("cache_creation_input_tokens", write),
                "cache_read_input_tokens": scripted.get("cache_read_input_tokens", read),
                "output_tokens": out_tokens,
            }
        prompt, cached = self.fake.cache.openai_usage(body)
        if "input_tokens" in scripted or "cache_read_input_tokens" in scripted:
            cached = scripted.get("cache_read_input_tokens", 0)
            prompt = scripted.get("input_tokens", prompt) + cached
        return {"prompt_tokens": prompt, "cached_tokens": cached, "completion_tokens": out_tokens}

    def _anthropic(self, body: dict[str, Any], rep: Reply, stream: bool) -> None:
        model = body.get("model", "claude")
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        calls = self._calls(rep, "toolu_")
        stop = rep.stop_reason or ("tool_use" if calls else "end_turn")
        usage = self._usage(body, rep, "anthropic", rep.text + "".join(a for _, _, a in calls))
        headers = {"request-id": "req_" + uuid.uuid4().hex[:24]}
        if not stream:
            content: list[dict[str, Any]] = []
            if rep.thinking:
                content.append({"type": "thinking", "thinking": rep.thinking,
                                "signature": thinking_signature(rep.thinking)})
            if rep.text:
                content.append({"type": "text", "text": rep.text})
            for cid, name, args in calls:
                content.append({"type": "tool_use", "id": cid, "name": name, "input": json.loads(args)})
            self._send_reply_json(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                },
                headers,
                rep.fault,
            )
            return
        f = rep.fault
        self._start_stream(headers)
        if f is not None and f.kind in _BREAKS and not rep.text and not calls:
            self._break_off(f)
            return
        start_usage = {**usage, "output_tokens": 1}
        self._sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
        index = 0
        if rep.thinking:
            self._sse("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
            for piece in self._pieces(rep.thinking, rep.chunk_size):
                self._sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "thinking_delta", "thinking": piece}})
            self._sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "signature_delta",
                                                        "signature": thinking_signature(rep.thinking)}})
            self._sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        if rep.text:
            self._sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            self._sse("ping", {"type": "ping"})
            pieces = self._pieces(rep.text, rep.chunk_size)
            for k, piece in enumerate(pieces):
                self._sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
                if f is not None and k == len(pieces) // 2:
                    if f.kind in _BREAKS and not calls:
                        self._break_off(f)
                        return
                    if f.kind == "stream_error":
                        self._sse(
                            "error",
                            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                        )
                        self._end_stream()
                        return
            self._sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        elif f is not None and f.kind == "stream_error":
            self._sse(
                "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            )
            self._end_stream()
            return
        for n, (cid, name, args) in enumerate(calls):
            self._sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "tool_use", "id": cid, "name": name, "input": {}},
                },
            )
            self._sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": ""},
                },
            )
            pieces = self._pieces(args, rep.chunk_size)
            for k, piece in enumerate(pieces):
                self._sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
                if f is not None and f.kind in _BREAKS and n == 0 and k == max(0, len(pieces) // 2 - 1):
                    self._break_off(f)
                    return
            self._sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        self._sse(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage},
        )
        self._sse("message_stop", {"type": "message_stop"})
        self._end_stream()

    def _openai(self, body: dict[str, Any], rep: Reply, stream: bool) -> None:
        model = body.get("model", "gpt")
        cid_ = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        calls = self._calls(rep, "call_")
        finish = _FINISH.get(rep.stop_reason or ("tool_use" if calls else "end_turn"), "stop")
        u = self._usage(body, rep, "openai", rep.text + "".join(a for _, _, a in calls))
        usage = {
            "prompt_tokens": u["prompt_tokens"],
            "completion_tokens": u["completion_tokens"],
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cached_tokens"], "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        headers = {"x-request-id": "req_" + uuid.uuid4().hex[:24], "openai-processing-ms": "12"}
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": rep.text or None, "refusal": None}
            if calls:
                message["tool_calls"] = [
                    {"id": c, "type": "function", "function": {"name": n, "arguments": a}}
                    for c, n, a in calls
                ]
            self._send_reply_json(
                {
                    "id": cid_,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                },
                headers,
                rep.fault,
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        f = rep.fault

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            obj: dict[str, Any] = {
                "id": cid_,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                obj["usage"] = None
            self._sse(None, obj)

        self._start_stream(headers)
        chunk({"role": "assistant", "content": "", "refusal": None})
        if f is not None and f.kind in _BREAKS and not rep.text and not calls:
            self._break_off(f)
            return
        pieces = self._pieces(rep.text, rep.chunk_size) if rep.text else []
        for k, piece in enumerate(pieces):
            chunk({"content": piece})
            if f is not None and k == len(pieces) // 2:
                if f.kind in _BREAKS and not calls:
                    self._break_off(f)
                    return
                if f.kind == "stream_error":
                    self._sse(
                        None,
                        {
                            "error": {
                                "message": "The server had an error while processing your request.",
                                "type": "server_error",
                                "param": None,
                                "code": None,
                            }
                        },
                    )
                    self._end_stream()
                    return
        if not pieces and f is not None and f.kind == "stream_error":
            self._sse(
                None,
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
            self._end_stream()
            return
        for n, (cid, name, args) in enumerate(calls):
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": n,
                            "id": cid,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
            apieces = self._pieces(args, rep.chunk_size)
            for k, piece in enumerate(apieces):
                chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]})
                if f is not None and f.kind in _BREAKS and n == 0 and k == max(0, len(apieces) // 2 - 1):
                    self._break_off(f)
                    return
        chunk({}, finish)
        if include_usage:
            self._sse(
                None,
                {
                    "id": cid_,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": usage,
                },
            )
        self._sse(None, "[DONE]")
        self._end_stream()


def http_date(seconds_from_now: float) -> str:
    """An HTTP date (for retry-after) this many seconds from now."""
    return formatdate(time.time() + seconds_from_now, usegmt=True)
