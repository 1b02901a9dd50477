"""The provider contract: stream one assistant turn from a provider-neutral transcript."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ghostline.compaction.errors import ContextOverflow
from ghostline.compaction.transcript import Message


class ProviderError(Exception):
    """A model call failed for good (after retries)."""


class ConfigError(Exception):
    """The user's model configuration is unusable (exit code 2); message says how to fix it."""


class ContextLengthError(ProviderError, ContextOverflow):
    """The request exceeded the model's context window. `limit` is the real window if the error revealed it.

    A `ContextOverflow`, so compaction recognises it without knowing provider names."""

    def __init__(self, message: str, limit: int | None = None):
        super().__init__(message, limit)


@dataclass
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class TurnUsage:
    input_tokens: int = 0  # uncached input tokens
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens


@dataclass
class StreamText:
    """A piece of assistant text as it streams."""

    text: str


@dataclass
class StreamRetry:
    """The provider is retrying the whole turn; anything streamed since the last retry is void."""

    attempt: int
    delay_s: float
    error: str


@dataclass
class TurnComplete:
    """The final item of a stream: the complete assistant message, usage and stop reason."""

    message: Message
    usage: TurnUsage = field(default_factory=TurnUsage)
    stop_reason: str = "end_turn"  # end_turn | tool_use | max_tokens | stop_sequence


StreamItem = StreamText | StreamRetry | TurnComplete


class Provider(Protocol):
    name: str  # "anthropic" | "openai" | ...
    model: str

    def stream_turn(
        self,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        max_output_tokens: int,
    ) -> AsyncIterator[StreamItem]:
        """Yield StreamText/StreamRetry items, then exactly one TurnComplete. Retries internally;
        raises ContextLengthError or ProviderError when it gives up."""
        ...
