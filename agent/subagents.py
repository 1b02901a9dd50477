"""Subagents: the `task` tool runs a sub-task in a fresh AgentLoop with its own context window.

A subagent shares what keeps the run safe and bounded, and nothing of the conversation: the same sandbox and
permission gate (the parent registry's policy and approver, with the tool set of its type), the parent's budgets
and counters (its turns, tokens and cost count against the run's limits and appear in the run's report), and the
parent turn's checkpoint (taken before a subagent that may edit starts, so /undo covers what it did). Its events
reach front ends as `SubagentEvent`s under the parent's call; its final text is the call's result.

A subagent gets no `task` tool of its own (no nesting), and one whose every tool reads is itself a read: several
run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.agent_types import DEFAULT_TYPE, AgentType
from ghostline.agent.instructions import EDIT_RULES, with_edit_rules
from ghostline.agent.loop import AgentLoop, CompactorLike
from ghostline.agent.providers.base import Provider, TurnUsage
from ghostline.apply.rewrite import RewriteRule
from ghostline.sandbox.policy import Action
from ghostline.tools.base import BaseTool, FileState, Tool, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.registry import ApprovalAnswer, ApprovalRequest, Approver, ToolRegistry

log = logging.getLogger(__name__)

STOPPED = {"error_max_turns": "it reached the run's turn limit", "error_budget": "it reached the run's token or "
           "cost budget", "error_verification": "its verification failed"}


@dataclass
class ChildModel:
    """The model a subagent runs on."""

    provider: Provider
    cost_of: Callable[[TurnUsage], float | None]
    max_output_tokens: int
    label: str
    owned: bool = False  # made for this subagent: closed when it ends (else it is the parent's)


def parent_model(parent: AgentLoop) -> ChildModel:
    p = parent.provider
    return ChildModel(p, parent.cost_of, parent.max_output_tokens, f"{p.name}:{p.model}")


@dataclass
class SubagentSetup:
    """What the run's composition (agent/runner.py) gives the task tool, so this module needs nothing of config:
    the agent types, a type's whole system prompt from its prompt, its model, and a compactor for its window
    (given the model, the subagent's registry and the parent call's id)."""

    types: dict[str, AgentType]
    system_for: Callable[[str], str] = lambda prompt: prompt
    model_for: Callable[[AgentType, AgentLoop], ChildModel] = lambda t, parent: parent_model(parent)
    compactor_for: Callable[[ChildModel, ToolRegistry, str], CompactorLike | None] = lambda m, r, c: None


class TaskTool(BaseTool):
    name = "task"
    kind: ToolKind = "other"  # the most a call can do; a call of a read-only type is a read (see `action`)
    subject_key = "description"

    def __init__(self, parent: AgentLoop, setup: SubagentSetup) -> None:
        self.parent = parent
        self.setup = setup
        self._asking = asyncio.Lock()  # subagents running in parallel ask the person one at a time
        self.description = task_description(setup.types)
        self.input_schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "A short (3-5 words) label for the task."},
                "prompt": {"type": "string", "minLength": 1,
                           "description": "The task, complete: the subagent sees nothing of this conversation."},
                "subagent_type": {"type": "string", "description": f"The agent type (default {DEFAULT_TYPE}): "
                                  + ", ".join(setup.types) + "."},
            },
            "required": ["description", "prompt"],
            "additionalProperties": False,
        }

    def agent_type(self, args: dict[str, Any]) -> AgentType | None:
        return self.setup.types.get(str(args.get("subagent_type") or DEFAULT_TYPE))

    def tools_for(self, agent_type: AgentType) -> list[Tool]:
        """The parent's tools the type names (all of them when it names none), never a task tool. Naming either
        edit tool (`edit`, `apply_patch`) names the one the session's model has."""
        names = set(agent_type.tools or ())
        if names & EDIT_RULES.keys():
            names |= EDIT_RULES.keys()
        return [t for t in self.parent.registry.tools if not isinstance(t, TaskTool)
                and (agent_type.tools is None or t.name in names)]

    def action(self, args: dict[str, Any]) -> Action:
        # Starting a subagent changes nothing by itself; each of its calls passes the same gate (self_contained).
        agent_type = self.agent_type(args)
        tools = self.tools_for(agent_type) if agent_type is not None else []
        read_only = bool(tools) and all(t.kind == "read" for t in tools)
        return Action(self.name, "read" if read_only else self.kind, self_contained=True)

    def title(self, args: dict[str, Any]) -> str:
        label = " ".join(str(args.get("description") or "").split()) or "sub-task"
        return f"{self.name} {args.get('subagent_type') or DEFAULT_TYPE}: {label}"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        agent_type = self.agent_type(args)
        if agent_type is None:
            raise ToolError(f"unknown subagent_type {args.get('subagent_type')!r}; the agent types are: "
                            f"{', '.join(self.setup.types)}")
        tools = self.tools_for(agent_type)
        if not tools:
            raise ToolError(f"agent type {agent_type.name!r} names no tool this agent has "
                            f"({', '.join(agent_type.tools or ())})")
        model = self.setup.model_for(agent_type, self.parent)
        try:
            return await self._run_child(agent_type, tools, model, str(args["prompt"]), ctx)
        finally:
            if model.owned:
                await _close(model.provider)

    async def _run_child(self, agent_type: AgentType, tools: list[Tool], model: ChildModel, prompt: str,
                         ctx: ToolContext) -> ToolResult:
        gate = self.parent.registry
        registry = ToolRegistry(tools, policy=gate.policy, approver=self._approver(agent_type.name),
                                project_root=gate.project_root)
        child = AgentLoop(provider=model.provider, registry=registry, ctx=_child_context(ctx),
                          system=with_edit_rules(self.setup.system_for(agent_type.prompt), [t.name for t in tools]),
                          budgets=self.parent.budgets,
                          stats=self.parent.stats, compactor=self.setup.compactor_for(model, registry, ctx.call_id),
                          cost_of=model.cost_of, max_output_tokens=model.max_output_tokens)
        tally = Tally(agent_type.name, model.label)
        async with contextlib.aclosing(child.run(prompt)) as events:
            async for e in events:
                tally.add(e)
                if ctx.report is not None:
                    ctx.report(e)
        return tally.result()

    def _approver(self, agent_type: str) -> Approver | None:
        """The parent's approver (None stays None: headless), asking about one call at a time and saying that a
        subagent wants it."""
        approver = self.parent.registry.approver
        if approver is None:
            return None

        async def ask(request: ApprovalRequest) -> ApprovalAnswer:
            async with self._asking:
                return await approver(dataclasses.replace(request, title=f"({agent_type}) {request.title}"))

        return ask


def _child_context(ctx: ToolContext) -> ToolContext:
    """The parent call's context for a fresh agent: same workspace, sandbox and approval mode; nothing seen yet
    (read-before-write starts over), and no front-end hooks (its own loop sets them per call)."""
    return dataclasses.replace(ctx, file_state=FileState(), rewrites=RewriteRule(), on_progress=None,
                               progress=None, on_report=None, report=None, call_id="")


@dataclass
class Tally:
    """What the task call reports of its subagent, from the subagent's events."""

    agent_type: str
    model: str
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    files_changed: list[str] = field(default_factory=list)
    final: ev.Done | ev.Failed | None = None

    def add(self, e: ev.Event) -> None:
        if isinstance(e, ev.TurnStarted):
            self.turns += 1
        elif isinstance(e, ev.Usage):
            self.input_tokens += e.input_tokens + e.cache_read_input_tokens + e.cache_creation_input_tokens
            self.output_tokens += e.output_tokens
        elif isinstance(e, ev.ToolResultEvent) and not e.is_error:
            for path in e.meta.get("files_changed") or []:
                if path not in self.files_changed:
                    self.files_changed.append(str(path))
        elif isinstance(e, (ev.Done, ev.Failed)):
            self.final = e

    def result(self) -> ToolResult:
        meta: dict[str, Any] = {"subagent_type": self.agent_type, "model": self.model, "turns": self.turns,
                                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.files_changed:
            meta["files_changed"] = self.files_changed
        final = self.final
        if isinstance(final, ev.Failed):
            return ToolResult(f"the subagent failed: {final.error}", is_error=True, meta=meta)
        if final is None:
            return ToolResult("the subagent ended without a result", is_error=True, meta=meta)
        meta["stop"] = final.subtype
        if final.subtype != "success":
            why = STOPPED.get(final.subtype, final.subtype)
            last = f" Its last message: {final.result}" if final.result else ""
            return ToolResult(f"the subagent stopped before it finished: {why}.{last}", is_error=True, meta=meta)
        return ToolResult(final.result or "(the subagent ended without a final message)", meta=meta)


def task_description(types: dict[str, AgentType]) -> str:
    """The task tool's description: when to use it, and the agent types (byte-stable for a run)."""
    lines = [
        "Launch a subagent: a fresh agent with its own context window that works on one task on its own and "
        "returns its final report as this call's result. Use it for broad searches and for self-contained pieces "
        "of work whose details would crowd your context. It sees nothing of this conversation: the prompt must "
        "say everything it needs (the goal, what you know, what to report back). Calls of read-only types in one "
        "message run in parallel. Trust its report, and check only what matters.",
        "",
        "Agent types (subagent_type):",
    ]
    for t in types.values():
        tools = ", ".join(t.tools) if t.tools is not None else "all tools but task"
        lines.append(f"- {t.name}: {t.description} (tools: {tools})")
    return "\n".join(lines)


async def _close(provider: Any) -> None:
    aclose = getattr(provider, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # closing a client must not turn a finished subagent into a failure
            log.debug("closing a subagent's provider failed", exc_info=True)
