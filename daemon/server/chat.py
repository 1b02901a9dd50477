"""OpenAI-compatible chat (`POST /v1/chat/completions`) on the local model: the request's messages under the
model's chat template become a plain prompt for the engine (so the answer passes the credential scanner like
every suggestion), and the answer comes back as a `chat.completion` or as `chat.completion.chunk` events.

This is what llama.vim's instruction mode and `agent run --model openai:local --base-url .../v1` (tools through
the text ReAct protocol: no `tools` field) talk to. Pure request/reply shaping; the handler is in `app`.
"""

from __future__ import annotations

import time
from typing import Any

from ghostline.daemon.engine.types import CompletionRequest, CompletionResult

ROLES = ("system", "user", "assistant", "developer", "tool")


class ChatError(ValueError):
    """The request is not a chat this daemon can answer (one line)."""


def chat_messages(body: dict[str, Any]) -> list[dict[str, str]]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ChatError("'messages' must be a non-empty list of {role, content}")
    if body.get("tools"):
        raise ChatError("tool calling is not supported here: use the text ReAct protocol (no 'tools')")
    out = []
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ChatError(f"each message needs a role ({', '.join(ROLES)}) and content")
        out.append({"role": "system" if m["role"] == "developer" else m["role"], "content": _text(m.get("content"))})
    return out


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ChatError("'content' must be a string or a list of content parts")


def chat_request(body: dict[str, Any], prompt: str, ends: list[str]) -> CompletionRequest:
    req = CompletionRequest(raw_prompt=prompt)
    n = body.get("max_completion_tokens", body.get("max_tokens", 512))
    if n is None:
        n = 512
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ChatError("'max_tokens' must be a positive integer")
    req.n_predict = n
    for key, attr, kind in (("temperature", "temperature", float), ("top_p", "top_p", float)):
        v = body.get(key)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ChatError(f"'{key}' must be a number")
            setattr(req, attr, kind(v))
    if body.get("n", 1) != 1:
        raise ChatError("'n' must be 1")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise ChatError("'stop' must be a string or a list of strings")
    req.stop = [*stop, *ends]
    req.stream = bool(body.get("stream"))
    return req


def finish_reason(stop_type: str) -> str:
    return "length" if stop_type in ("limit", "none") else "stop"


def chat_object(cid: str, model: str, res: CompletionResult) -> dict[str, Any]:
    c = res.completions[0] if res.completions else None
    return {
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": c.content if c else ""},
                     "finish_reason": finish_reason(c.stop_type if c else "none")}],
        "usage": {"prompt_tokens": res.prompt_tokens, "completion_tokens": res.predicted_n,
                  "total_tokens": res.prompt_tokens + res.predicted_n},
    }


def chat_chunk(cid: str, model: str, delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
