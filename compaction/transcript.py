"""The provider-neutral transcript: messages made of typed blocks.

It lives here, in the lowest package that needs it, because compaction must not
import `agent`; `agent` and the providers build on it. Everything serialises to
plain JSON (`to_dict`/`from_dict`) so sessions are JSONL and replay exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]


@dataclass
class TextBlock:
    text: str
    type: Literal["text"] = "text"


@dataclass
class ToolUseBlock:
    id: str
    name: str
    input: dict[str, Any]
    type: Literal["tool_use"] = "tool_use"
    # The model's arguments when they were not a JSON object (input is then {}): the call never runs, and its
    # error result shows the model what it sent.
    raw_arguments: str | None = None


@dataclass
class ImageBlock:
    """An image the model sees: one the user attached, or (in `ToolResultBlock.images`) one a tool returned. The
    bytes live in a file beside the session (`path`), so the session log stays small; `data` (base64) holds them
    only when no file could be kept. Providers that take images send it; others say in words that it is there."""

    media_type: str  # image/png | image/jpeg | image/gif | image/webp
    path: str = ""
    data: str = ""
    name: str = ""  # what people call it: the file as the user or the tool named it
    width: int | None = None
    height: int | None = None
    type: Literal["image"] = "image"

    def as_text(self) -> str:
        """The image in words, where only text goes (a summary; a model that takes no images)."""
        dims = f", {self.width}x{self.height}" if self.width and self.height else ""
        return f"[image {self.name or '(unnamed)'}: {self.media_type}{dims}]"


@dataclass
class ToolResultBlock:
    tool_use_id: str
    content: str
    is_error: bool = False
    # Facts for compaction and reports (exit_code, path, full_output_path, lines, ...); never sent to the model.
    meta: dict[str, Any] = field(default_factory=dict)
    # Images the tool returned (from its meta's "images" entries): sent with the content. A result compaction
    # rewrites (cleared, cut) leaves them out.
    images: list[ImageBlock] = field(default_factory=list)
    type: Literal["tool_result"] = "tool_result"


@dataclass
class SummaryBlock:
    """A compaction summary standing in for older turns (sent to the model as text)."""

    text: str
    type: Literal["summary"] = "summary"


@dataclass
class ThinkingBlock:
    """Model reasoning that a provider requires back verbatim within a tool-use exchange (Anthropic's thinking
    blocks carry a signature; redacted ones carry only opaque `data`). Never shown to other providers."""

    thinking: str = ""
    signature: str = ""
    data: str = ""  # redacted_thinking payload
    type: Literal["thinking"] = "thinking"


Block = TextBlock | ToolUseBlock | ToolResultBlock | SummaryBlock | ThinkingBlock | ImageBlock

_BLOCK_TYPES: dict[str, type] = {
    "text": TextBlock,
    "tool_use": ToolUseBlock,
    "tool_result": ToolResultBlock,
    "summary": SummaryBlock,
    "thinking": ThinkingBlock,
    "image": ImageBlock,
}


_OLD_RAW_KEY = "__raw_arguments__"


def block_to_dict(block: Block) -> dict[str, Any]:
    d = dict(block.__dict__)
    if isinstance(block, ToolResultBlock):
        if not block.meta:
            d.pop("meta")
        d.pop("images")
        if block.images:
            d["images"] = [block_to_dict(i) for i in block.images]
    if isinstance(block, ToolUseBlock) and block.raw_arguments is None:
        d.pop("raw_arguments")
    if isinstance(block, ImageBlock):
        d = {k: v for k, v in d.items() if v not in ("", None)}
    return d


def block_from_dict(d: dict[str, Any]) -> Block:
    cls = _BLOCK_TYPES[d["type"]]
    kwargs = {k: v for k, v in d.items() if k != "type"}
    if cls is ToolUseBlock and _OLD_RAW_KEY in kwargs.get("input", {}):  # sessions written before raw_arguments
        kwargs["raw_arguments"] = str(kwargs["input"][_OLD_RAW_KEY])
        kwargs["input"] = {}
    if cls is ToolResultBlock and kwargs.get("images"):
        kwargs["images"] = [block_from_dict({"type": "image", **i}) for i in kwargs["images"]]
    return cls(**kwargs)


@dataclass
class Message:
    role: Role
    content: list[Block]

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "content": [block_to_dict(b) for b in self.content]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(role=d["role"], content=[block_from_dict(b) for b in d["content"]])

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=[TextBlock(text)])

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def tool_results(self) -> list[ToolResultBlock]:
        return [b for b in self.content if isinstance(b, ToolResultBlock)]

    @property
    def images(self) -> list[ImageBlock]:
        return [b for b in self.content if isinstance(b, ImageBlock)]
