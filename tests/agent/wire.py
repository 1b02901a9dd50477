"""What a recorded model request carries, read the same way for both providers' wire formats (tests only)."""

from __future__ import annotations

import json
from typing import Any


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text(b.get("text") if b.get("type") == "text" else b.get("content", ""))
                         for b in content if isinstance(b, dict))
    return ""


def system_of(body: dict[str, Any]) -> str:
    if "system" in body:
        return _text(body["system"])
    return "\n".join(_text(m["content"]) for m in body["messages"] if m["role"] in ("system", "developer"))


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t.get("name") or t["function"]["name"] for t in body.get("tools") or []]


def conversation(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages without the system prompt."""
    return [m for m in body["messages"] if m["role"] not in ("system", "developer")]


def user_texts(body: dict[str, Any]) -> list[str]:
    out = []
    for m in conversation(body):
        if m["role"] != "user":
            continue
        blocks = m["content"] if isinstance(m["content"], list) else [{"type": "text", "text": m["content"]}]
        out += [b["text"] for b in blocks if b.get("type") == "text"]
    return out


def tool_results(body: dict[str, Any]) -> list[str]:
    """Every tool result's text, in order."""
    out = []
    for m in conversation(body):
        if m["role"] == "tool":
            out.append(_text(m["content"]))
        elif isinstance(m["content"], list):
            out += [_text(b["content"]) for b in m["content"] if b.get("type") == "tool_result"]
    return out


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False)
