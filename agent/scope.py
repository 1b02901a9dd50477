"""What one message may change for the run it starts: a custom command's `allowed-tools` (the gate admits only
those) and `model` (another model answers that message, the session's model the next one)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ghostline.agent.providers.base import Provider, TurnUsage
from ghostline.tools.base import ToolContext
from ghostline.tools.scope import ToolScope


@dataclass
class ModelSwitch:
    provider: Provider
    cost_of: Callable[[TurnUsage], float | None]
    max_output_tokens: int
    label: str = ""


@dataclass
class MessageScope:
    label: str  # what the user typed to get it, e.g. "/review"
    tools: ToolScope | None = None
    model: ModelSwitch | None = None


class ScopedLoop(Protocol):
    ctx: ToolContext
    provider: Provider
    cost_of: Callable[[TurnUsage], float | None]
    max_output_tokens: int


def enter_scope(loop: ScopedLoop, scope: MessageScope | None) -> Callable[[], Awaitable[None]]:
    """Put `scope` in force on `loop`; returns what puts things back (and closes the scope's own provider)."""
    tools_before = loop.ctx.tool_scope
    model_before = (loop.provider, loop.cost_of, loop.max_output_tokens)
    if scope is not None:
        loop.ctx.tool_scope = scope.tools
        if scope.model is not None:
            loop.provider, loop.cost_of = scope.model.provider, scope.model.cost_of
            loop.max_output_tokens = scope.model.max_output_tokens

    async def restore() -> None:
        loop.ctx.tool_scope = tools_before
        if scope is not None and scope.model is not None:
            loop.provider, loop.cost_of, loop.max_output_tokens = model_before
            aclose = getattr(scope.model.provider, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    return restore
