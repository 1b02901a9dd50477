"""What the gate asks of hooks (user commands run around a tool call), and what they answer.

The registry knows hooks only through `ToolHooks`: before a call is judged (`before_tool`, Claude Code's
PreToolUse), after it ran (`after_tool`, PostToolUse) and when a person is about to be asked to approve one
(`approval_asked`, Notification). The agent implements it (running the configured commands); the registry
applies the answers: a block or a deny refuses the call, `updated_input` replaces its arguments (validated
again), allow/ask change what the policy's verdict leads to, and context reaches the model with the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ghostline.tools.base import ToolContext, ToolResult

HookDecision = Literal["allow", "deny", "ask"]


@dataclass(frozen=True)
class HookReport:
    """Something hooks did that people should see: they blocked an action, failed (a warning), or asked
    for the run to stop. `command` is the hook's command line ("" when several agreed)."""

    event: str  # PreToolUse, PostToolUse, UserPromptSubmit, Stop, ...
    kind: Literal["blocked", "warning", "stop"]
    message: str
    command: str = ""


@dataclass
class BeforeTool:
    """The hooks' answer before a call: `decision` None leaves the call to the policy; "deny" refuses it
    (an exit-2 block is a deny whose reason is the hook's stderr), "ask" makes a person decide, "allow" spares
    the prompt the policy would ask (a policy deny still stands)."""

    decision: HookDecision | None = None
    reason: str = ""
    updated_input: dict[str, Any] | None = None
    context: str = ""  # for the model, after the call's result
    reports: list[HookReport] = field(default_factory=list)


@dataclass
class AfterTool:
    """The hooks' answer after a call ran: `feedback` is appended to the result the model sees."""

    feedback: str = ""
    reports: list[HookReport] = field(default_factory=list)


class ToolHooks(Protocol):
    def handles(self, event: str) -> bool:
        """Whether any hook is configured for `event` (so the gate can skip the work when none is)."""
        ...

    async def before_tool(self, call_id: str, tool: str, args: dict[str, Any], ctx: ToolContext) -> BeforeTool: ...

    async def after_tool(self, call_id: str, tool: str, args: dict[str, Any], result: ToolResult,
                         ctx: ToolContext) -> AfterTool: ...

    async def approval_asked(self, tool: str, title: str, reason: str, ctx: ToolContext) -> list[HookReport]: ...
