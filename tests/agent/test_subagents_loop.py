"""The task tool against an in-process scripted provider: what a call is, approvals, cancellation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ghostline.agent import events as ev
from ghostline.agent.agent_types import BUILTIN, AgentType
from ghostline.agent.loop import AgentLoop
from ghostline.agent.subagents import SubagentSetup, TaskTool
from ghostline.sandbox.policy import Policy
from ghostline.tools import ApprovalAnswer, ApprovalRequest, ReadTool, ToolContext, ToolRegistry, WriteTool
from ghostline.tools.base import ToolResult
from tests.agent.test_loop import EchoTool, ScriptedProvider

TYPES = {t.name: t for t in BUILTIN} | {"writer": AgentType("writer", "writes", "You write.", ("write", "read"))}


def parent_loop(tmp_path, turns, tools, approver=None, approval="auto-edit", types=TYPES):
    provider = ScriptedProvider(turns)
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path, approval=approval)
    registry = ToolRegistry(tools, policy=Policy(remembered=False, level="bubblewrap"), approver=approver)
    loop = AgentLoop(provider=provider, registry=registry, ctx=ctx, system="parent")
    task = TaskTool(loop, SubagentSetup(types))
    registry.add(task)
    return provider, loop, task


def test_a_call_is_a_read_when_every_tool_of_its_type_reads(tmp_path):
    _, loop, task = parent_loop(tmp_path, [], [ReadTool(), WriteTool()])
    assert [t.name for t in task.tools_for(TYPES["general-purpose"])] == ["read", "write"]  # never task itself
    assert [t.name for t in task.tools_for(TYPES["explorer"])] == ["read"]
    explore = task.action({"description": "x", "prompt": "y", "subagent_type": "explorer"})
    general = task.action({"description": "x", "prompt": "y"})
    assert (explore.kind, general.kind) == ("read", "other") and explore.self_contained and general.self_contained
    assert task.title({"description": "find  it", "prompt": "y"}) == "task general-purpose: find it"
    assert "- explorer: " in task.description and "(tools: all tools but task)" in task.description


async def test_an_unknown_type_is_an_error_the_model_can_act_on(tmp_path):
    provider, loop, _ = parent_loop(tmp_path, [("", [("task", {"description": "x", "prompt": "y",
                                                               "subagent_type": "nope"})]), ("ok", [])],
                                    [ReadTool()])
    events = [e async for e in loop.run("go")]
    result = next(e for e in events if isinstance(e, ev.ToolResultEvent))
    assert result.is_error and "unknown subagent_type 'nope'" in result.content and "explorer" in result.content


async def test_a_subagents_approval_says_so_and_its_answer_counts(tmp_path):
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> ApprovalAnswer:
        asked.append(request)
        return ApprovalAnswer.deny("not now")

    turns = [("", [("task", {"description": "w", "prompt": "write a.txt", "subagent_type": "writer"})]),
             ("", [("write", {"path": "a.txt", "content": "x"})]), ("could not", []), ("fine", [])]
    provider, loop, _ = parent_loop(tmp_path, turns, [ReadTool(), WriteTool()], approver, approval="ask")
    events = [e async for e in loop.run("go")]
    assert [r.title for r in asked] == ["(writer) write a.txt"]
    assert not (tmp_path / "a.txt").exists()
    nested = [e.event for e in events if isinstance(e, ev.SubagentEvent)]
    assert any(isinstance(e, ev.ToolResultEvent) and "they said: not now" in e.content for e in nested)
    assert events[-1].result == "fine"


@dataclass
class Stuck(EchoTool):
    name: str = "stuck"
    started: asyncio.Event | None = None

    async def run(self, args, ctx):
        self.started.set()
        await asyncio.Event().wait()  # until cancelled
        return ToolResult("never")


async def test_cancelling_the_parent_stops_the_subagent_and_settles_the_call(tmp_path):
    stuck = Stuck(started=asyncio.Event())
    types = {"stuck": AgentType("stuck", "gets stuck", "You get stuck.", ("stuck",))}
    turns = [("", [("task", {"description": "s", "prompt": "go", "subagent_type": "stuck"})]),
             ("", [("stuck", {"text": "x"})])]
    provider, loop, _ = parent_loop(tmp_path, turns, [stuck], types=types)

    async def drive():
        return [e async for e in loop.run("go")]

    run = asyncio.ensure_future(drive())
    await asyncio.wait_for(stuck.started.wait(), 10)
    run.cancel()
    try:
        await run
    except asyncio.CancelledError:
        pass
    assert run.cancelled()
    closed = loop.mark_interrupted()
    assert len(closed) == 1 and loop.messages[-1].tool_results[0].meta == {"interrupted": True}
